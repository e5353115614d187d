"""The verdict rules on small sweeps the test writes: a claim that holds, fails and is inconclusive."""
import math

import pytest

import sgdscope
from sgdscope.analysis import compare
from sgdscope.reproduce import CLAIMS, Verdict
from sgdscope.reproduce.rules import ordered
from sgdscope.store import RunWriter


def _sweep(root, maxima):
    """maxima: {(lr, seed): peak of gradient_noise/lambda_1}; the first step (excluded) is larger."""
    for (lr, seed), peak in maxima.items():
        name = f"lr={lr},seed={seed}"
        with RunWriter(root / name, config={"optimizer": {"lr": lr}, "seed": seed, "name": name}) as w:
            w.declare({"gradient_noise": "gradient_noise"})
            for step, value in enumerate([100.0, peak / 2, peak, peak / 3]):
                w.log(5 * step, step, "gradient_noise", {"lambda_1": value, "ratio": 1 / (1 + value)})
            w.set_status("done")
    return sgdscope.load_sweep(root)


def _verdict(frame, **kw) -> Verdict:
    table = compare(frame, "gradient_noise/lambda_1", stat="max", after_step=5, by="optimizer.lr")
    return ordered(table, "optimizer.lr", falls=True, what="max lambda_K^1", **kw)


def test_holds_when_every_seed_falls(tmp_path):
    frame = _sweep(tmp_path, {(0.01, 0): 3.3, (0.01, 1): 3.0, (0.1, 0): 0.7, (0.1, 1): 0.6})
    v = _verdict(frame)
    assert v.verdict == "holds" and "every seed" in v.reason
    assert v.ours.startswith("lr=0.01: 3.15 +- 0.212 (n=2); lr=0.1: 0.65 +- 0.0707 (n=2); ")  # the first step's 100 out
    # the effect: the mean at lr 0.1 over the mean at lr 0.01, each seed's own ratio, and the seeds that agree
    e = v.numbers["effect"]
    assert e["ratio"] == pytest.approx(0.65 / 3.15) and e["seed_min"] == pytest.approx(0.6 / 3.0)
    assert e["seed_max"] == pytest.approx(0.7 / 3.3) and (e["seeds_agree"], e["seeds"]) == (2, 2)
    assert "effect: lr=0.1 / lr=0.01 = x0.206 (seeds x0.2 to x0.212; 2 of 2 seeds move that way)" in v.ours


def test_does_not_hold_when_every_seed_rises(tmp_path):
    frame = _sweep(tmp_path, {(0.01, 0): 0.5, (0.01, 1): 0.6, (0.1, 0): 0.7, (0.1, 1): 0.9})
    assert _verdict(frame).verdict == "does not hold"


def test_inconclusive_when_seeds_disagree_or_a_point_has_no_value(tmp_path):
    v = _verdict(_sweep(tmp_path / "a", {(0.01, 0): 3.0, (0.01, 1): 0.5, (0.1, 0): 0.7, (0.1, 1): 0.9}))
    assert v.verdict == "inconclusive" and v.reason.startswith("seeds disagree: 1 of 2 seeds")
    v = _verdict(_sweep(tmp_path / "c", {(0.01, 0): 1.0, (0.1, 0): 0.5, (1.0, 0): 2.0}))  # down then up
    assert v.verdict == "inconclusive" and v.reason == "no trend: no seed's max lambda_K^1 is monotone in optimizer.lr either way"
    v = _verdict(_sweep(tmp_path / "b", {(0.01, 0): 3.0, (0.1, 0): math.nan}))
    assert v.verdict == "inconclusive" and "too few finite values at lr=0.1 (n=0)" in v.reason


def test_the_break_even_claims_read_the_right_statistic(tmp_path):
    frame = _sweep(tmp_path, {(0.01, 0): 3.3, (0.01, 1): 3.0, (0.1, 0): 0.7, (0.1, 1): 0.6})
    assert CLAIMS["break_even.conjecture1_lambda_k"].check(frame, "tiny").verdict == "holds"
    # ratio = 1 / (1 + lambda): its maximum rises with lr exactly when lambda's falls
    assert CLAIMS["break_even.conjecture2_ratio"].check(frame, "tiny").verdict == "holds"


def test_the_effect_counts_seeds_moving_against_the_means(tmp_path):
    v = _verdict(_sweep(tmp_path, {(0.01, 0): 3.0, (0.01, 1): 0.5, (0.1, 0): 0.7, (0.1, 1): 0.9}))
    e = v.numbers["effect"]  # means 1.75 -> 0.8 fall; seed 1 rises (0.5 -> 0.9)
    assert e["ratio"] == pytest.approx(0.8 / 1.75) and (e["seeds_agree"], e["seeds"]) == (1, 2)
    assert e["seed_max"] == pytest.approx(1.8)


def test_a_verdict_is_one_of_four():
    with pytest.raises(ValueError, match="verdict must be one of"):
        Verdict("probably", "")
