import math
import subprocess
import sys
import textwrap

import numpy as np
import pandas as pd
import pytest

import sgdscope
from sgdscope.store import checkpoint_steps, read_status
from sgdscope.run.config import ConfigError, resolve
from sgdscope.run.trainer import train
from _tiny_run import tiny_config


def _metrics(run_dir):
    df = sgdscope.load_run(run_dir)
    return df[df.name != "seconds"].reset_index(drop=True)


def test_a_run_records_probes_evaluation_and_checkpoints(tmp_path):
    run = train(resolve(tiny_config(tmp_path)), progress=False)
    assert read_status(run)["state"] == "done"
    df = _metrics(run)
    assert set(df.probe) >= {"top_eigenvalues", "gradient_noise", "interpolation", "loss_change", "evaluation", "train"}
    steps = 3 * 6  # 96 / 16 per epoch
    assert df[df.probe == "train"].step.max() == steps - 1
    ev = df[(df.probe == "evaluation") & (df.name == "test_accuracy")]
    assert len(ev) == 3 and ev.value.between(0, 1).all()
    assert list(df[(df.probe == "top_eigenvalues") & (df.name == "lambda_1")].step) == [0, 4, 8, 12, 16]
    # interpolation also runs at epoch ends and counts the epoch's barriers there
    assert set(df[(df.probe == "interpolation") & (df.name == "barriers_epoch")].step) == {5, 11, 17}
    assert checkpoint_steps(run)[-1] == steps - 1
    assert len(sgdscope.load_arrays(run, "interpolation", "curve")[3]) == 5
    assert sgdscope.read_config(run)["optimizer"]["lr"] == 0.1


def test_same_seed_same_numbers_and_kill_then_resume_is_exact(tmp_path):
    reference = train(resolve(tiny_config(tmp_path / "a")), progress=False)
    # the same run in a subprocess that kills itself (SIGKILL) inside step 11, after the checkpoint
    # of step 10: the resume starts in the middle of the second epoch (6 steps per epoch)
    script = textwrap.dedent(f"""
        import os, signal
        import sgdscope.run.build as B
        import sgdscope.run.trainer as T
        from sgdscope.probes import probe
        from sgdscope.run.config import ConfigError, resolve
        import sys; sys.path.insert(0, {str(__import__('pathlib').Path(__file__).parents[1])!r})
        from _tiny_run import tiny_config
        original = B.build_probes
        def with_killer(*a, **k):
            return original(*a, **k) + [probe("killer", lambda ctx: os.kill(os.getpid(), signal.SIGKILL), every=[11])]
        B.build_probes = with_killer
        T.train(resolve(tiny_config({str(tmp_path / 'b')!r})), progress=False)
    """)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert proc.returncode == -9, proc.stderr[-2000:]
    run_b = tmp_path / "b" / "tiny"
    assert read_status(run_b)["state"] == "running"  # killed: nobody marked it
    assert checkpoint_steps(run_b)[-1] == 10  # every 5 steps and at epoch ends (5, 11)
    resumed = train(resolve(tiny_config(tmp_path / "b")), resume=True, progress=False)
    assert read_status(resumed)["state"] == "done"
    a, b = _metrics(reference), _metrics(resumed)
    pd.testing.assert_frame_equal(a, b)
    for name in ("curve",):
        arr_a, arr_b = sgdscope.load_arrays(reference, "interpolation", name), sgdscope.load_arrays(resumed, "interpolation", name)
        assert arr_a.keys() == arr_b.keys()
        for k in arr_a:
            np.testing.assert_array_equal(arr_a[k], arr_b[k])


def test_divergence_stops_and_keeps_what_was_recorded(tmp_path):
    """With the divergence factor off, the run goes on until the loss is inf / NaN; the probes meet
    non-finite parameters first: their failures are recorded (NaN, failed = 1), not fatal."""
    cfg = resolve(tiny_config(tmp_path, loss={"name": "mse"}, train={"divergence_factor": 0.0},
                              optimizer={"name": "sgd", "lr": 30.0, "momentum": 0.9}))
    with pytest.warns(RuntimeWarning, match="failed at step"):
        run = train(cfg, progress=False)
    status = read_status(run)
    assert status["state"] == "diverged" and "training loss" in status["message"]
    assert "probe_errors" in status and "failed at step" in status["message"]
    df = sgdscope.load_run(run)
    last = df[df.probe == "train"].iloc[-1]
    assert not math.isfinite(last.value)
    assert (df.step < last.step).any()  # earlier probes are kept


def test_existing_run_needs_resume_or_overwrite(tmp_path):
    cfg = resolve(tiny_config(tmp_path, train={"epochs": 1, "batch_size": 48}, probes={}))
    train(cfg, progress=False)
    with pytest.raises(FileExistsError, match="already holds a run"):
        train(cfg, progress=False)
    train(cfg, overwrite=True, progress=False)


@pytest.mark.parametrize("opt", [
    {"name": "gd", "lr": 0.5},
    {"name": "adam", "lr": 0.01},
    {"name": "nudged_sgd", "lr": 0.1, "gamma": 0.5, "top_k": 2, "recompute_every": 3},
    {"name": "noisy_gd", "lr": 0.1, "noise": "isotropic", "scale": 0.01},
])
def test_optimizers_by_name(tmp_path, opt):
    cfg = resolve(tiny_config(tmp_path, optimizer={**opt, "momentum": 0.0}, train={"epochs": 2, "batch_size": 16}, probes={"loss_change": {"every": 1}}))
    run = train(cfg, progress=False)
    df = _metrics(run)
    losses = df[(df.probe == "train") & (df.name == "loss")].value
    assert read_status(run)["state"] == "done"
    if opt["name"] in ("gd", "noisy_gd"):
        assert len(losses) == 2  # one full-batch step per epoch
    assert losses.iloc[-1] < losses.iloc[0] * 1.5


def test_an_exploding_run_ends_diverged_and_keeps_its_records(tmp_path):
    """lr = 50: the loss grows by orders of magnitude while staying finite; the run stops as
    diverged once it passes train.divergence_factor times the first loss, records kept."""
    cfg = resolve(tiny_config(tmp_path, dtype="float32", optimizer={"name": "sgd", "lr": 50.0, "momentum": 0.9}))
    run = train(cfg, progress=False)
    status = read_status(run)
    assert status["state"] == "diverged" and "train.divergence_factor" in status["message"]
    losses = sgdscope.load_run(run).query("probe == 'train' and name == 'loss'").value
    assert math.isfinite(losses.iloc[-1]) and losses.iloc[-1] > 1e4 * losses.iloc[0]
    assert status["step"] == len(losses) - 1  # the step that diverged was not taken
    off = resolve(tiny_config(tmp_path / "off", train={"epochs": 1, "divergence_factor": 0.0}, dtype="float32",
                              optimizer={"name": "sgd", "lr": 50.0, "momentum": 0.9}, probes={}))
    assert read_status(train(off, progress=False))["state"] in ("done", "diverged")  # only NaN / inf count


def test_status_follows_the_run_while_it_goes(tmp_path):
    from sgdscope.run import build_run, train_step
    from sgdscope.store import RunWriter

    cfg = resolve(tiny_config(tmp_path))
    writer = RunWriter(tmp_path / "live", config=cfg)
    run = build_run(cfg, writer)
    for _ in range(5):
        train_step(run)
    status = read_status(tmp_path / "live")  # the probes of step 4 flushed the rows
    assert status["state"] == "running" and status["step"] == 4


def test_a_failing_build_leaves_no_run_folder_and_a_one_line_error(tmp_path):
    from sgdscope.run.trainer import SetupError

    cfg = resolve(tiny_config(tmp_path, data={"name": "cifar10", "root": str(tmp_path / "nowhere"), "options": {}}))
    with pytest.raises(SetupError, match=r"setting up the run failed: .*nowhere: does not exist"):
        train(cfg, progress=False)
    assert not (tmp_path / "tiny").exists()


def test_keep_checkpoints_and_a_hook_around_every_step(tmp_path):
    """``train.keep_checkpoints = 0`` keeps every checkpoint (3 epochs of 6 steps, every 5: steps 0, 5, 10,
    15 and the epoch ends 5, 11, 17); the hook sees each step before and after it, the parameters
    before it differing from those after it by exactly the step's update."""
    class Hook:
        def __init__(self):
            self.seen = []

        def before(self, run):
            return run.step, run.scope.problem.theta().clone()

        def after(self, run, before):
            step, theta = before
            self.seen.append((step, run.step, float((run.scope.problem.theta() - theta).norm())))

    hook = Hook()
    cfg = tiny_config(tmp_path, train={"epochs": 3, "batch_size": 16, "checkpoint_every": 5, "keep_checkpoints": 0},
                      probes={})
    run = train(resolve(cfg), progress=False, hook=hook)
    assert checkpoint_steps(run) == [0, 5, 10, 11, 15, 17]
    assert [(a, b) for a, b, _ in hook.seen] == [(k, k + 1) for k in range(18)]
    assert all(moved > 0 for _, _, moved in hook.seen)
    default = tiny_config(tmp_path / "default", probes={})  # the last two
    assert checkpoint_steps(train(resolve(default), progress=False)) == [15, 17]
    with pytest.raises(ConfigError, match=r"'train.keep_checkpoints' must be >= 0 \(0: every checkpoint\), got -1"):
        resolve(tiny_config(tmp_path, train={"keep_checkpoints": -1}))
