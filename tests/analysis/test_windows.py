"""Windows after a step, after an epoch, until an accuracy: per run, bounds inclusive."""
import shutil

import pytest

import sgdscope
from sgdscope import load_run
from sgdscope.analysis import apply_stat, crossing_steps, series, window
from sgdscope.store import RunWriter

# training accuracy first >= 0.6 (conftest.TABLES): lr0.1_s0 at step 5, lr0.1_s1 at step 4,
# lr0.01_s0 at step 8, lr0.01_s1 never (0.59 at most)
CROSS_60 = {"lr0.1_s0": 5, "lr0.1_s1": 4, "lr0.01_s0": 8, "lr0.01_s1": None}


def _last_steps(df):
    return df.groupby("run")["step"].max().to_dict()


def test_crossing_steps(sweep, run_a):
    assert crossing_steps(sweep, 0.6) == CROSS_60
    assert crossing_steps(sweep, 0.5) == {"lr0.1_s0": 4, "lr0.1_s1": 3, "lr0.01_s0": 6,
                                          "lr0.01_s1": 6}
    assert crossing_steps(run_a, 0.6) == {None: 5}


def test_until_accuracy_keeps_every_metric_up_to_the_crossing(sweep):
    cut = window(sweep, until_accuracy=0.6)
    assert _last_steps(cut) == {"lr0.1_s0": 5, "lr0.1_s1": 4, "lr0.01_s0": 8, "lr0.01_s1": 9}
    # lambda_K^1 at the last kept step, by hand: 4 (step 5), 9 (step 4), 7 (step 8), 6 (all)
    last = {r: apply_stat(series(cut, "noise/lambda_1", run=r), "last") for r in CROSS_60}
    assert last == {"lr0.1_s0": 4, "lr0.1_s1": 9, "lr0.01_s0": 7, "lr0.01_s1": 6}
    # every metric is cut, not only the accuracy: the hessian record at step 6 is gone
    assert series(cut, "hessian/lambda_1", run="lr0.1_s0")["step"].tolist() == [0, 2, 4]


def test_after_step_and_after_epoch(sweep, run_a):
    assert window(sweep, after_step=5).groupby("run")["step"].min().tolist() == [5] * 4
    # epoch >= 1 starts at step 4, whose recorded epoch is exactly 1.0
    after = window(run_a, after_epoch=1)
    assert after["step"].min() == 4 and apply_stat(series(after, "noise/lambda_1"), "max") == 5
    both = window(run_a, after_step=3, until_accuracy=0.6)
    assert sorted(set(both["step"])) == [3, 4, 5]
    assert window(sweep) is not None and len(window(sweep)) == len(sweep)


def test_custom_accuracy_and_missing_accuracy(sweep, run_a, tmp_path):
    # any metric can play the accuracy: the first step with lambda_K^1 >= 6 is 2 in run a
    assert window(run_a, until_accuracy=6, accuracy="noise/lambda_1")["step"].max() == 2
    with RunWriter(tmp_path / "r") as w:
        w.log(0, 0.2, "noise", {"lambda_1": 1.0})
    with pytest.raises(KeyError, match="no probe of type 'evaluation'.*add the evaluation probe"):
        window(load_run(tmp_path / "r"), until_accuracy=0.6)


def test_a_sweep_run_without_the_accuracy_is_an_error(sweep_root, tmp_path, write_run):
    root = tmp_path / "mixed"
    shutil.copytree(sweep_root / "lr0.1_s0", root / "a")
    write_run(root / "b", {"seed": 1}, {"noise/lambda_1": [1, 2]})
    with pytest.raises(KeyError, match="runs without evaluation/train_accuracy rows cannot be "
                                       "cut at an accuracy: b"):
        window(sgdscope.load_sweep(root), until_accuracy=0.6)
