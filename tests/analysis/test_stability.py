"""Fraction of negative Delta L before and after the break-even point."""
import math

import pytest

from sgdscope import load_run
from sgdscope.analysis import NegativeFraction, negative_fraction


def test_split_at_the_peak_of_lambda_k(run_a, sweep):
    # run a: lambda_K^1 peaks at step 3; Delta L = .5 .4 .3 .2 | -.1 .1 -.2 -.1 .05 -.05
    # before (steps 0..3): 0 of 4 negative; after (4..9): 4 of 6
    assert negative_fraction(run_a) == NegativeFraction(0.0, pytest.approx(4 / 6), 4, 6, 3)
    # lr0.1_s1: peak at step 3; Delta L = .5 .4 -.1 .2 | .1 -.1 -.1 .1 -.2 .1
    got = negative_fraction(sweep, run="lr0.1_s1")
    assert got == NegativeFraction(0.25, 0.5, 4, 6, 3)


def test_given_split_and_other_metric(run_a):
    # split at step 6: steps 0..6 hold -.1 (4) and -.2 (6): 2 of 7; steps 7..9: -.1, -.05: 2 of 3
    assert negative_fraction(run_a, split_step=6) == NegativeFraction(
        pytest.approx(2 / 7), pytest.approx(2 / 3), 7, 3, 6)
    # split by another peak: lambda_H^1 (2 5 4 3 3 at even steps) peaks at step 2
    got = negative_fraction(run_a, split_of="top_eigenvalues/lambda_1")
    assert got.split_step == 2 and got.n_before == 3 and got.before == 0.0
    assert got.after == pytest.approx(4 / 7)


def test_empty_side_and_missing_probe(tmp_path, write_run):
    df = load_run(write_run(tmp_path / "r", {}, {"loss_change/delta_loss": [0.1, -0.2],
                                                  "noise/lambda_1": [1, 2]}))
    got = negative_fraction(df)                               # peak at the last step
    assert got.before == 0.5 and math.isnan(got.after) and got.n_after == 0
    bare = load_run(write_run(tmp_path / "s", {}, {"loss_change/delta_loss": [0.1]}))
    with pytest.raises(KeyError, match="add the gradient_noise probe"):
        negative_fraction(bare)
    given = negative_fraction(bare, split_step=0)
    assert given[:1] == (0.0,) and math.isnan(given.after) and given[2:] == (1, 0, 0)
