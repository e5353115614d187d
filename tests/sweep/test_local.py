"""The local executor: resuming a killed sweep, a killed worker, --retry-failed, a changed grid."""
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pandas as pd
import pytest

import sgdscope
from sgdscope.run.config import ConfigError
from sgdscope.store import read_points
from sgdscope.store._lock import FolderLocked, pid_alive
from sgdscope.sweep import run_sweep
from _sweep_kit import GRID, SEEDS, base_config, kill_a_worker_when, metrics


def _attempts(run_dir):
    return (run_dir / "log.txt").read_text().count("--- ")


def test_a_sweep_runs_every_point_once_and_again_is_a_no_op(undisturbed):
    points = read_points(undisturbed)
    assert sorted(points) == sorted(["lr=0.1,seed=0", "lr=0.1,seed=1", "lr=0.05,seed=0", "lr=0.05,seed=1"])
    assert all(p["state"] == "done" for p in points.values())
    assert points["lr=0.05,seed=1"]["values"] == {"optimizer.lr": 0.05, "seed": 1}
    rows = run_sweep(base_config(undisturbed.parent), grid=GRID, seeds=SEEDS, out=undisturbed, workers=2, quiet=True)
    assert [r["state"] for r in rows] == ["done"] * 4
    assert all(_attempts(undisturbed / "runs" / name) == 1 for name in points)  # finished runs are skipped
    df = sgdscope.load_sweep(undisturbed / "runs")
    assert set(df["optimizer.lr"]) == {0.1, 0.05} and set(df["seed"]) == {0, 1}
    # seeds and learning rates really differ
    a, b = metrics(undisturbed / "runs" / "lr=0.1,seed=0"), metrics(undisturbed / "runs" / "lr=0.1,seed=1")
    assert not a.value.equals(b.value)


def test_a_changed_grid_is_an_error_unless_extended(undisturbed, tmp_path):
    with pytest.raises(ConfigError, match=r"differs from the one stored in sweep.toml: grid.optimizer.lr .*--extend"):
        run_sweep(base_config(undisturbed.parent), grid={"optimizer.lr": [0.1]}, seeds=SEEDS, out=undisturbed, quiet=True)
    with pytest.raises(ConfigError, match=r"base.train.epochs"):
        cfg = base_config(undisturbed.parent)
        cfg["train"]["epochs"] = 2
        run_sweep(cfg, grid=GRID, seeds=SEEDS, out=undisturbed, quiet=True, extend=True)


def test_killing_the_sweep_then_running_it_again_gives_the_undisturbed_metrics(undisturbed, tmp_path):
    out = tmp_path / "sweep"
    script = textwrap.dedent(f"""
        import sys; sys.path.insert(0, {str(os.path.dirname(os.path.dirname(__file__)))!r})
        from _sweep_kit import GRID, SEEDS, base_config
        from sgdscope.sweep import run_sweep
        run_sweep(base_config({str(tmp_path)!r}), grid=GRID, seeds=SEEDS, out={str(out)!r}, workers=2, quiet=True)
    """)
    driver = subprocess.Popen([sys.executable, "-c", script], start_new_session=True)
    first = out / "runs" / "lr=0.1,seed=0"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:  # kill the driver and its workers (one process group) mid-run
        status = first / "status.json"
        if status.exists() and (sgdscope.read_status(first).get("step") or 0) >= 12:
            break
        time.sleep(0.02)
    os.killpg(driver.pid, signal.SIGKILL)
    driver.wait()
    assert sgdscope.read_status(first)["state"] == "running"  # nobody could mark it
    rows = run_sweep(base_config(tmp_path), grid=GRID, seeds=SEEDS, out=out, workers=2, quiet=True)
    assert [r["state"] for r in rows] == ["done"] * 4
    assert "resuming" in (first / "log.txt").read_text()
    for name in read_points(undisturbed):
        pd.testing.assert_frame_equal(metrics(out / "runs" / name), metrics(undisturbed / "runs" / name))


def _driver(tmp_path, out, *, workers=2):
    """A sweep driver in its own process (its workers are its children), as ``sgdscope sweep`` starts one."""
    script = textwrap.dedent(f"""
        import sys; sys.path.insert(0, {str(os.path.dirname(os.path.dirname(__file__)))!r})
        from _sweep_kit import GRID, SEEDS, base_config
        from sgdscope.sweep import run_sweep
        run_sweep(base_config({str(tmp_path)!r}), grid=GRID, seeds=SEEDS, out={str(out)!r}, workers={workers}, quiet=True)
    """)
    # as a driver started in the background (`sgdscope sweep ... &`): SIGINT ignored, and its workers inherit that
    return subprocess.Popen([sys.executable, "-c", script], start_new_session=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN))


def _running(run_dir, step=8, timeout=120.0):
    """The status of ``run_dir`` once it is running at ``step`` or later."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            status = sgdscope.read_status(run_dir)
        except (OSError, ValueError):
            status = {}
        if status.get("state") == "running" and (status.get("step") or 0) >= step:
            return status
        time.sleep(0.02)
    raise AssertionError(f"{run_dir} never ran to step {step}")


def test_workers_die_with_their_driver_and_a_rerun_has_one_writer_per_run(undisturbed, tmp_path):
    out = tmp_path / "sweep"
    driver = _driver(tmp_path, out)
    first = out / "runs" / "lr=0.1,seed=0"
    worker = _running(first)["pid"]
    assert worker != driver.pid
    os.kill(driver.pid, signal.SIGKILL)  # the driver only: its workers are left without a parent
    driver.wait()
    deadline = time.monotonic() + 30
    while pid_alive(worker) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not pid_alive(worker), "the worker outlived its driver"
    assert sgdscope.read_status(first)["state"] == "interrupted"  # it said so itself, before it ended
    rows = run_sweep(base_config(tmp_path), grid=GRID, seeds=SEEDS, out=out, workers=2, quiet=True)
    assert [r["state"] for r in rows] == ["done"] * 4
    for name in read_points(undisturbed):
        pd.testing.assert_frame_equal(metrics(out / "runs" / name), metrics(undisturbed / "runs" / name))


def test_a_second_sweep_on_a_folder_in_use_is_refused_naming_the_holder(tmp_path):
    out = tmp_path / "sweep"
    driver = _driver(tmp_path, out, workers=1)
    try:
        _running(out / "runs" / "lr=0.1,seed=0", step=2)
        with pytest.raises(FolderLocked, match=rf"{out}: another process writes this sweep \(host \S+, pid {driver.pid}\)"):
            run_sweep(base_config(tmp_path), grid=GRID, seeds=SEEDS, out=out, workers=1, quiet=True)
    finally:
        os.killpg(driver.pid, signal.SIGKILL)  # kill -9 of the holder and its workers frees the folder
        driver.wait()
    rows = run_sweep(base_config(tmp_path), grid=GRID, seeds=SEEDS, out=out, workers=2, quiet=True)
    assert [r["state"] for r in rows] == ["done"] * 4


def test_a_killed_worker_marks_its_run_interrupted_and_the_others_go_on(undisturbed, tmp_path):
    out = tmp_path / "sweep"
    victim = out / "runs" / "lr=0.05,seed=0"
    thread, killed = kill_a_worker_when(victim, 20)
    rows = run_sweep(base_config(tmp_path), grid=GRID, seeds=SEEDS, out=out, workers=2, quiet=True)
    thread.join()
    assert killed, "the run was never seen at step 20"
    states = {r["name"]: r["state"] for r in rows}
    assert states.pop("lr=0.05,seed=0") == "interrupted" and set(states.values()) == {"done"}
    assert "exit code -9" in sgdscope.read_status(victim)["message"]
    rows = run_sweep(base_config(tmp_path), grid=GRID, seeds=SEEDS, out=out, workers=2, quiet=True)
    assert {r["state"] for r in rows} == {"done"} and _attempts(victim) == 2
    pd.testing.assert_frame_equal(metrics(victim), metrics(undisturbed / "runs" / victim.name))


def _with_an_interrupted_point(tmp_path):
    """A sweep whose point lr=0.05,seed=0 had its worker killed at step 20: (sweep folder, that run's folder)."""
    out = tmp_path / "sweep"
    victim = out / "runs" / "lr=0.05,seed=0"
    thread, killed = kill_a_worker_when(victim, 20)
    run_sweep(base_config(tmp_path), grid=GRID, seeds=SEEDS, out=out, workers=2, quiet=True)
    thread.join()
    assert killed and sgdscope.read_status(victim)["state"] == "interrupted"
    return out, victim


def test_a_moved_sweep_folder_resumes_its_interrupted_points_in_the_new_place(undisturbed, tmp_path):
    out, victim = _with_an_interrupted_point(tmp_path)
    moved = tmp_path / "elsewhere" / "sweep"
    moved.parent.mkdir()
    out.rename(moved)
    rows = run_sweep(base_config(tmp_path), grid=GRID, seeds=SEEDS, out=moved, workers=2, quiet=True)
    assert [r["state"] for r in rows] == ["done"] * 4
    assert "resuming" in (moved / "runs" / victim.name / "log.txt").read_text()
    assert sgdscope.read_config(moved / "runs" / victim.name)["out"] == str(moved / "runs")
    pd.testing.assert_frame_equal(metrics(moved / "runs" / victim.name), metrics(undisturbed / "runs" / victim.name))


def test_a_point_whose_resume_is_refused_says_why_and_keeps_its_status(tmp_path, capfd):
    import torch

    out, victim = _with_an_interrupted_point(tmp_path)
    before = sgdscope.read_status(victim)
    last = sorted((victim / "checkpoints").iterdir())[-1]
    torch.save({"obj": Path(".")}, last / "state.pt")  # needs code to load: refused
    capfd.readouterr()
    rows = run_sweep(base_config(tmp_path), grid=GRID, seeds=SEEDS, out=out, workers=2, quiet=False)
    err = capfd.readouterr().err
    assert {r["name"]: r["state"] for r in rows}[victim.name] == "interrupted"
    assert f"[sweep] {victim.name}: " in err and "resuming the run failed" in err and "died" not in err
    assert sgdscope.read_status(victim) == before
    assert err.count("3/4 done, 0 running, 0 failed, 0 diverged, 1 interrupted; ETA 0s") == 1  # the final line once


def test_failed_and_diverged_points_are_rerun_only_when_asked(tmp_path):
    cfg = base_config(tmp_path)
    cfg["train"]["epochs"] = 1
    grid = {"optimizer.lr": [0.1, 1e4]}  # the second diverges at once
    rows = run_sweep(cfg, grid=grid, out=tmp_path / "s", workers=2, quiet=True)
    assert [r["state"] for r in rows] == ["done", "diverged"]
    bad = tmp_path / "s" / "runs" / "lr=10000.0"
    run_sweep(cfg, grid=grid, out=tmp_path / "s", workers=2, quiet=True)
    assert _attempts(bad) == 1
    rows = run_sweep(cfg, grid=grid, out=tmp_path / "s", workers=2, quiet=True, retry_failed=True)
    assert [r["state"] for r in rows] == ["done", "diverged"] and _attempts(bad) == 2
    assert _attempts(tmp_path / "s" / "runs" / "lr=0.1") == 1


def test_each_progress_notice_shows_every_worker_busy_while_runs_wait(tmp_path):
    """One notice per round of changes: a run that ends and the one started in its place are
    reported together, so no notice shows an idle worker while runs are waiting."""
    from sgdscope.run.config import resolve
    from sgdscope.sweep.driver import Task
    from sgdscope.sweep.local import run_local

    tasks = [Task(f"seed={k}", resolve({**base_config(tmp_path), "seed": k, "name": f"seed={k}",
                                        "train": {"epochs": 1, "batch_size": 16}, "probes": {}}),
                  tmp_path / "runs" / f"seed={k}") for k in range(3)]
    seen = []
    final = run_local(tasks, workers=2, threads=1, on_change=lambda states: seen.append(dict(states)))
    assert final == {t.name: "done" for t in tasks}
    assert seen[-1] == final and len(seen) >= 2
    for states in seen:
        if "pending" in states.values():
            assert list(states.values()).count("running") == 2, seen
