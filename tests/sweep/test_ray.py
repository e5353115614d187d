"""The Ray executor on a real local Ray: a worker SIGKILLed mid-run is retried and resumes."""
import pandas as pd
import pytest

import sgdscope
from sgdscope.store import read_points
from sgdscope.sweep import run_sweep
from sgdscope.sweep.ray_executor import SweepStorageError, _ray_point
from _sweep_kit import GRID, SEEDS, base_config, kill_a_worker_when, metrics


def test_a_killed_ray_worker_is_retried_and_the_sweep_equals_an_undisturbed_one(ray_local, undisturbed, tmp_path):
    out = tmp_path / "sweep"
    victim = out / "runs" / "lr=0.1,seed=1"
    thread, killed = kill_a_worker_when(victim, 20)
    rows = run_sweep(base_config(tmp_path), grid=GRID, seeds=SEEDS, out=out, executor="ray", workers=2, threads=1, quiet=True)
    thread.join()
    assert killed, "the run was never seen at step 20"
    assert [r["state"] for r in rows] == ["done"] * 4
    log = (victim / "log.txt").read_text()
    assert log.count("--- ") == 2 and "resuming" in log  # the retry resumed from the checkpoint
    for name in read_points(undisturbed):
        pd.testing.assert_frame_equal(metrics(out / "runs" / name), metrics(undisturbed / "runs" / name))


def test_a_worker_that_cannot_see_the_folder_says_so(tmp_path):
    with pytest.raises(SweepStorageError, match=r"cannot see the sweep folder .*storage every node sees"):
        _ray_point({}, str(tmp_path / "run"), str(tmp_path / "not-shared"), 1)
