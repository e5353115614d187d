"""Across a sweep: varied keys, a statistic per run, mean / std / n per grid point, by hand."""
import math

import pytest

import sgdscope
from sgdscope.analysis import compare, config_columns, per_run, varied_keys

SQRT2 = math.sqrt(2)


def _row(table, lr):
    return table[table["optimizer.lr"] == lr].iloc[0]


def test_varied_keys_of_the_grid(sweep):
    # name and out differ in every run but are labels; optimizer.name is constant
    assert sorted(varied_keys(sweep)) == ["optimizer.lr", "seed"]
    assert {"config.name", "out", "optimizer.name", "optimizer.lr", "seed"} <= set(
        config_columns(sweep))


def test_per_run(sweep):
    got = per_run(sweep, "gradient_noise/lambda_1")
    assert sorted(got.columns) == ["optimizer.lr", "run", "seed", "value"]
    assert dict(zip(got["run"], got["value"])) == {
        "lr0.01_s0": 20, "lr0.01_s1": 19, "lr0.1_s0": 8, "lr0.1_s1": 10}


def test_compare_max(sweep):
    got = compare(sweep, "gradient_noise/lambda_1")
    assert list(got.columns) == ["optimizer.lr", "mean", "std", "n", "seeds", "values", "runs"]
    assert got["optimizer.lr"].tolist() == [0.01, 0.1]
    slow, fast = _row(got, 0.01), _row(got, 0.1)
    # lr 0.01: 20, 19 -> mean 19.5, std sqrt(0.5);  lr 0.1: 8, 10 -> mean 9, std sqrt(2)
    assert (slow["mean"], slow["std"], slow["n"]) == (19.5, pytest.approx(math.sqrt(0.5)), 2)
    assert (fast["mean"], fast["std"], fast["n"]) == (9.0, pytest.approx(SQRT2), 2)
    assert slow["seeds"] == (0, 1) and slow["values"] == (20.0, 19.0)
    assert fast["runs"] == ("lr0.1_s0", "lr0.1_s1") and fast["values"] == (8.0, 10.0)


@pytest.mark.parametrize("kwargs, fast, slow", [
    # argmax: steps 3, 3 | 4, 5
    ({"stat": "argmax"}, (3.0, 0.0), (4.5, math.sqrt(0.5))),
    # mean: 3.5, 4.9 | 9.8, 10.8
    ({"stat": "mean"}, (4.2, math.sqrt(0.98)), (10.3, math.sqrt(0.5))),
    # steps >= 5: max 4, 6 | 16, 19
    ({"after_step": 5}, (5.0, SQRT2), (17.5, math.sqrt(4.5))),
    # epoch >= 1 (from step 4): max 5, 9 | 20, 19
    ({"after_epoch": 1}, (7.0, math.sqrt(8)), (19.5, math.sqrt(0.5))),
    # last value up to accuracy >= 0.5 (steps 4, 3 | 6, 6): 5, 10 | 12, 13
    ({"stat": "last", "until_accuracy": 0.5}, (7.5, math.sqrt(12.5)), (12.5, math.sqrt(0.5))),
    # up to 0.6 (steps 5, 4 | 8, never): 4, 9 | 7, 6 (lr0.01_s1 keeps its whole run)
    ({"stat": "last", "until_accuracy": 0.6}, (6.5, math.sqrt(12.5)), (6.5, math.sqrt(0.5))),
])
def test_compare_stats_and_windows(sweep, kwargs, fast, slow):
    got = compare(sweep, "noise/lambda_1", **kwargs)
    for lr, (mean, std) in ((0.1, fast), (0.01, slow)):
        row = _row(got, lr)
        assert row["mean"] == pytest.approx(mean) and row["std"] == pytest.approx(std), lr


def test_nan_values_are_not_counted(sweep):
    # first value < 4 from step 4 on: steps 6, 7 | never, never
    got = compare(sweep, "noise/lambda_1", stat="first_below:4", after_step=4)
    fast, slow = _row(got, 0.1), _row(got, 0.01)
    assert (fast["mean"], fast["std"], fast["n"]) == (6.5, pytest.approx(math.sqrt(0.5)), 2)
    assert slow["n"] == 0 and math.isnan(slow["mean"]) and math.isnan(slow["std"])
    assert all(math.isnan(v) for v in slow["values"])
    # a metric only some runs recorded: crossed means 3/8 and 0 at lr 0.1, nothing at lr 0.01
    crossed = compare(sweep, "interpolation/crossed", stat="mean")
    fast, slow = _row(crossed, 0.1), _row(crossed, 0.01)
    assert fast["mean"] == pytest.approx(0.1875)
    assert fast["std"] == pytest.approx(0.375 / SQRT2)
    assert slow["n"] == 0


def test_by(sweep):
    one_seed = compare(sweep, "noise/lambda_1", by=["optimizer.lr", "seed"])
    assert len(one_seed) == 4 and (one_seed["n"] == 1).all() and one_seed["std"].isna().all()
    assert one_seed["mean"].tolist() == [20, 19, 8, 10]
    everything = compare(sweep, "noise/lambda_1", by=[])
    assert len(everything) == 1 and everything["n"].iloc[0] == 4
    assert everything["mean"].iloc[0] == pytest.approx((8 + 10 + 20 + 19) / 4)
    per_seed = compare(sweep, "noise/lambda_1", by="seed")
    assert per_seed["seed"].tolist() == [0, 1] and per_seed["mean"].tolist() == [14, 14.5]
    assert per_seed["seeds"].iloc[0] == (0, 0)
    assert all(type(s) is int for s in per_seed["seeds"].iloc[0])
    # several seed keys: each run's seed is a tuple of their values
    multi = compare(sweep, "noise/lambda_1", seed_key=("seed", "optimizer.name"))
    assert multi["seeds"].iloc[0] == ((0, "sgd"), (1, "sgd"))


def test_errors(sweep, run_a):
    with pytest.raises(ValueError, match="unknown statistic 'median'.*allowed: max"):
        compare(sweep, "noise/lambda_1", stat="median")
    with pytest.raises(KeyError, match="no probe of type 'hessian_norms'.*add the hessian_norms"):
        compare(sweep, "hessian_norms/spectral_norm")
    with pytest.raises(KeyError, match=r"by=\['batch'\] not among the sweep's config columns"):
        compare(sweep, "noise/lambda_1", by="batch")
    with pytest.raises(ValueError, match="compare needs a sweep frame"):
        compare(run_a, "noise/lambda_1")


def test_varied_keys_tell_labels_from_axes(tmp_path, write_run):
    root = tmp_path / "grid"
    for i, opt in enumerate(["sgd", "adam"]):
        write_run(root / f"r{i}", {"optimizer": {"name": opt}, "seed": 0, "tag": f"run-{i}",
                                   "name": f"r{i}"}, {"noise/lambda_1": [i + 1.0]})
    # one seed, two optimizers: optimizer.name is the grid but unique per run, like tag; nothing
    # else tells the runs apart, so both stay
    assert sorted(varied_keys(sgdscope.load_sweep(root))) == ["optimizer.name", "tag"]
    for i, lr in enumerate([0.1, 0.2, 0.1, 0.2]):
        write_run(root / f"s{i}", {"optimizer": {"name": "sgd", "lr": lr}, "seed": i // 2,
                                   "tag": f"run-{i}", "name": f"s{i}"},
                  {"noise/lambda_1": [1.0]})
    # tag differs in every run and lr x seed already tell the runs apart: a label, dropped
    sweep = sgdscope.load_sweep(root)
    part = sweep[sweep["run"].str.startswith("s")]
    assert sorted(varied_keys(part)) == ["optimizer.lr", "seed"]
    # a key some runs lack is varied (NaN counts as a value); a bool is a grid value
    assert "optimizer.lr" in varied_keys(sweep)
    for i, augment in enumerate([False, True]):
        write_run(root / f"b{i}", {"data": {"augment": augment}, "tag": f"b{i}"},
                  {"noise/lambda_1": [1.0]})
    bools = sgdscope.load_sweep(root)
    assert varied_keys(bools[bools["run"].str.startswith("b")]) == ["data.augment"]


def test_no_seed_column(tmp_path, write_run):
    root = tmp_path / "noseed"
    for i, lr in enumerate([0.1, 0.1, 0.2]):
        write_run(root / f"r{i}", {"lr": lr}, {"noise/lambda_1": [1.0 + i]})
    got = compare(sgdscope.load_sweep(root), "noise/lambda_1")
    assert got["lr"].tolist() == [0.1, 0.2] and got["n"].tolist() == [2, 1]
    assert got["seeds"].iloc[0] == (None, None) and got["mean"].iloc[0] == 1.5
