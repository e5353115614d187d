"""Barriers crossed per epoch (Walk Table 1, Fig. 4)."""
import numpy as np
import pytest

from sgdscope import load_run
from sgdscope.analysis import barriers_per_epoch, epoch_number


def test_epoch_number():
    assert epoch_number([0.2, 1.0, 1.2, 2.0]).tolist() == [1, 1, 2, 2]
    assert epoch_number([0, 1, 2]).tolist() == [0, 1, 2]           # an integer epoch counter
    assert int(epoch_number(0.1 * 30)) == 3                         # 3.0000000000000004


def test_one_run(run_a):
    # crossed at steps 0..4: 0 1 0 0 1 (epoch 1); at steps 6, 8, 9: 0 0 1 (epoch 2)
    got = barriers_per_epoch(run_a)
    assert list(got.columns) == ["epoch", "crossed", "probed", "barriers_epoch", "probed_epoch"]
    assert got["epoch"].tolist() == [1, 2]
    assert got["crossed"].tolist() == [2.0, 1.0] and got["probed"].tolist() == [5, 3]
    assert got["barriers_epoch"].tolist() == [2.0, 1.0]
    assert got["probed_epoch"].tolist() == [5.0, 3.0]


def test_sweep_per_run(sweep):
    got = barriers_per_epoch(sweep)
    assert list(got.columns[:2]) == ["run", "epoch"]
    assert got[["run", "epoch"]].values.tolist() == [["lr0.1_s0", 1], ["lr0.1_s0", 2],
                                                     ["lr0.1_s1", 1], ["lr0.1_s1", 2]]
    assert got["crossed"].tolist() == [2.0, 1.0, 0.0, 0.0]
    assert got["probed"].tolist() == [5, 3, 5, 5]
    assert np.isnan(got["barriers_epoch"].iloc[2:]).all()       # lr0.1_s1 logged no epoch counts
    one = barriers_per_epoch(sweep, run="lr0.1_s1")
    assert list(one.columns) == ["epoch", "crossed", "probed"] and one["crossed"].sum() == 0


def test_errors(tmp_path, write_run, sweep):
    bare = load_run(write_run(tmp_path / "a", {}, {"noise/lambda_1": [1.0]}))
    with pytest.raises(KeyError, match="no probe of type 'interpolation'.*add the interpolation"):
        barriers_per_epoch(bare)
    no_epoch = load_run(write_run(tmp_path / "b", {}, {"interpolation/crossed": [1, 0]},
                                  epochs=False))
    with pytest.raises(ValueError, match="rows without an epoch"):
        barriers_per_epoch(no_epoch)
    with pytest.raises(KeyError, match="no probe of type 'interpolation'"):
        barriers_per_epoch(sweep, run="lr0.01_s0")
