"""Statistics along one trajectory against hand computations on the fixture's tables."""
import math

import pandas as pd
import pytest

from sgdscope.analysis import STATS, Point, Stat, apply_stat, parse_stat, peak, series

# lambda_K^1 of the four runs (conftest.TABLES), by hand:
#   lr0.1_s0  [1, 3, 6, 8, 5, 4, 3, 2, 2, 1]          max 8 @3, min 1, mean 3.5, last 1
#   lr0.1_s1  [2, 4, 7, 10, 9, 6, 4, 3, 2, 2]         max 10 @3, min 2, mean 4.9, last 2
#   lr0.01_s0 [1, 5, 9, 14, 20, 16, 12, 9, 7, 5]      max 20 @4, min 1, mean 9.8, last 5
#   lr0.01_s1 [2, 6, 11, 15, 18, 19, 13, 10, 8, 6]    max 19 @5, min 2, mean 10.8, last 6
EXPECTED = {
    "lr0.1_s0": {"max": 8, "min": 1, "mean": 3.5, "last": 1, "argmax": 3, "first_below:3": 0,
                 "first_below:0.5": math.nan},
    "lr0.1_s1": {"max": 10, "min": 2, "mean": 4.9, "last": 2, "argmax": 3, "first_below:3": 0,
                 "first_below:0.5": math.nan},
    "lr0.01_s0": {"max": 20, "min": 1, "mean": 9.8, "last": 5, "argmax": 4, "first_below:3": 0,
                  "first_below:0.5": math.nan},
    "lr0.01_s1": {"max": 19, "min": 2, "mean": 10.8, "last": 6, "argmax": 5, "first_below:3": 0,
                  "first_below:0.5": math.nan},
}


@pytest.mark.parametrize("run", list(EXPECTED))
def test_stats_by_hand(sweep, run):
    traj = series(sweep, "gradient_noise/lambda_1", run=run)
    for spec, want in EXPECTED[run].items():
        got = apply_stat(traj, spec)
        assert (math.isnan(got) and math.isnan(want)) or got == pytest.approx(want), spec


def test_first_below_is_strict_and_gives_the_step(sweep):
    traj = series(sweep, "noise/lambda_1", run="lr0.1_s0")
    after = traj[traj["step"] >= 4]                      # 5, 4, 3, 2, 2, 1 at steps 4..9
    assert apply_stat(after, "first_below:4") == 6       # 3 < 4 at step 6 (4 is not < 4)
    assert apply_stat(after, "first_below:1.5") == 9


def test_peak_gives_value_step_and_epoch(sweep):
    assert peak(series(sweep, "noise/lambda_1", run="lr0.01_s1")) == Point(19.0, 5, 1.2)
    # a repeated maximum: the first step
    tie = pd.DataFrame({"step": [0, 1, 2], "value": [1.0, 4.0, 4.0]})
    assert peak(tie) == (4.0, 1, pytest.approx(math.nan, nan_ok=True))


def test_argmax_epoch_is_the_epoch_of_the_peak_step(sweep):
    # the fixture's epoch is (step + 1) / 5: the peaks at steps 5 and 3 sit at epochs 1.2 and 0.8
    assert apply_stat(series(sweep, "noise/lambda_1", run="lr0.01_s1"), "argmax_epoch") == pytest.approx(1.2)
    assert apply_stat(series(sweep, "noise/lambda_1", run="lr0.1_s0"), "argmax_epoch") == pytest.approx(0.8)
    assert parse_stat("argmax_epoch").gives_step


def test_nan_skipped_inf_kept_empty_nan():
    traj = pd.DataFrame({"step": [3, 1, 2, 0], "value": [math.nan, 2.0, 5.0, 1.0]})
    assert apply_stat(traj, "last") == 5.0               # sorted by step; step 3 is NaN
    assert apply_stat(traj, "mean") == pytest.approx(8 / 3)
    diverged = pd.DataFrame({"step": [0, 1, 2], "value": [1.0, math.inf, 3.0]})
    assert apply_stat(diverged, "max") == math.inf and apply_stat(diverged, "argmax") == 1
    empty = traj.iloc[:0]
    assert all(math.isnan(apply_stat(empty, s)) for s in ("max", "argmax", "first_below:1"))
    assert peak(empty).step is None


def test_parse_stat():
    assert parse_stat("max") == Stat("max") and parse_stat(" mean ") == Stat("mean")
    assert parse_stat("first_below:0.5") == Stat("first_below", 0.5)
    assert str(parse_stat("first_below:1e-3")) == "first_below:0.001"
    assert parse_stat("argmax").gives_step and not parse_stat("max").gives_step
    assert parse_stat(Stat("min")) == Stat("min")
    assert STATS == ("max", "min", "mean", "last", "argmax", "argmax_epoch", "first_below:X")


@pytest.mark.parametrize("spec, why", [
    ("median", "not a known name"), ("first_below", "needs a number"),
    ("first_below:abc", "needs a number"), ("max:3", "takes no ':' argument"),
    ("first_below:nan", "not nan"), (3, "a statistic is a string"),
])
def test_bad_stat_names_the_allowed(spec, why):
    allowed = "allowed: max, min, mean, last, argmax, argmax_epoch, first_below:X"
    with pytest.raises(ValueError, match=f"unknown statistic {spec!r} \\(.*{why}.*{allowed}"):
        parse_stat(spec)


def test_a_statistic_wants_one_trajectory(sweep):
    with pytest.raises(ValueError, match="one trajectory expected, got 4 runs"):
        apply_stat(series(sweep, "noise/lambda_1"), "max")
    with pytest.raises(ValueError, match="missing \\['step'\\]"):
        apply_stat(pd.DataFrame({"value": [1.0]}), "max")
