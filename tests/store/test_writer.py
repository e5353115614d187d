"""RunWriter: metrics, arrays, status, checkpoints, atomicity and exact resume."""
import dataclasses
import json
import os
import random
import signal
import subprocess
import sys
import textwrap
import time
import warnings

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch
from torch import nn

from sgdscope.store import CorruptFile, RunWriter, checkpoint_steps, load_arrays, load_run, read_config, read_status


@dataclasses.dataclass
class Counters:  # not allowlisted for weights_only loading
    epoch: int


def test_new_run_layout(tmp_path):
    run = tmp_path / "runs" / "a"
    store = RunWriter(run, config={"optimizer": {"lr": 1e-3}})
    assert {p.name for p in run.iterdir()} == {
        "config.toml", "metrics.parquet", "arrays", "checkpoints", "status.json", ".lock"}  # .lock: one writer
    store.declare({"top": "top_eigenvalues"})
    assert (run / "probes.json").is_file()
    assert read_config(run) == {"optimizer": {"lr": 1e-3}} == store.config
    assert load_run(run).empty  # readable before the first flush
    assert read_status(run)["state"] == "running"


def test_metrics_round_trip_types_order_nan(tmp_path):
    with RunWriter(tmp_path / "r") as store:
        store.log(2, 0.5, "train", {"loss": torch.tensor(0.25), "acc": 1, "ok": True})
        store.log(0, 0.0, "hessian", {"lambda_max": np.float32(3.5), "nan": float("nan"),
                                      "inf": np.array(np.inf), "ninf": -float("inf")},
                  seconds=0.125)
        store.log(2, 0.5, "eval", {"loss": 0.5})
    table = pq.read_table(tmp_path / "r" / "metrics.parquet")
    assert table.schema.types == [pa.int64(), pa.float64(), pa.string(), pa.string(), pa.float64()]
    assert table.column_names == ["step", "epoch", "probe", "name", "value"]
    df = load_run(tmp_path / "r")
    assert df["step"].dtype == "int64" and df["epoch"].dtype == "float64"
    assert df["value"].dtype == "float64"
    assert pd.api.types.is_string_dtype(df["probe"]) and pd.api.types.is_string_dtype(df["name"])
    # sorted by step; within a step, logging order
    assert list(zip(df["step"], df["probe"], df["name"])) == [
        (0, "hessian", "lambda_max"), (0, "hessian", "nan"), (0, "hessian", "inf"),
        (0, "hessian", "ninf"), (0, "hessian", "seconds"),
        (2, "train", "loss"), (2, "train", "acc"), (2, "train", "ok"), (2, "eval", "loss")]
    values = df["value"].to_numpy()
    assert values[0] == 3.5 and np.isnan(values[1]) and values[2] == np.inf and values[3] == -np.inf
    assert values[4] == 0.125 and list(values[5:]) == [0.25, 1.0, 1.0, 0.5]


def test_arrays_go_to_files_and_round_trip(tmp_path):
    spectrum = torch.linspace(0, 1, 5, dtype=torch.float64, requires_grad=True) * 2
    with RunWriter(tmp_path / "r") as store:
        store.log(0, 0.0, "lanczos", {"ritz": spectrum, "top": spectrum[0]})
        store.log(10, 1.0, "lanczos", {"ritz": np.array([np.nan, 1.0])})
        store.log(10, 1.0, "interp/x", {"curve 1": [[1, 2], [3, 4]],
                                        "bf16": torch.tensor([1.5, -2.0], dtype=torch.bfloat16)})
    ritz = load_arrays(tmp_path / "r", "lanczos", "ritz")
    assert list(ritz) == [0, 10]
    assert ritz[0].dtype == np.float64 and np.array_equal(ritz[0], spectrum.detach().numpy())
    assert np.isnan(ritz[10][0])
    assert load_arrays(tmp_path / "r", "interp/x", "curve 1")[10].tolist() == [[1, 2], [3, 4]]
    bf16 = load_arrays(tmp_path / "r", "interp/x", "bf16")[10]
    assert bf16.dtype == np.float32 and bf16.tolist() == [1.5, -2.0]
    assert list(load_run(tmp_path / "r")["name"]) == ["top"]  # 0-d tensors are metrics


def test_log_rejects_bad_input(tmp_path):
    store = RunWriter(tmp_path / "r")
    with pytest.raises(TypeError, match="'train'.*'loss'.*str"):
        store.log(0, 0.0, "train", {"loss": "high"})
    with pytest.raises(TypeError, match="'obj'"):
        store.log(0, 0.0, "train", {"obj": object()})
    with pytest.raises(ValueError, match="step must be an int >= 0, got -1"):
        store.log(-1, 0.0, "train", {"loss": 1.0})
    with pytest.raises(ValueError, match="step must be an int"):
        store.log(1.5, 0.0, "train", {"loss": 1.0})
    with pytest.raises(ValueError, match="probe must be a non-empty str"):
        store.log(0, 0.0, "", {"loss": 1.0})
    with pytest.raises(ValueError, match="'seconds' is both"):
        store.log(0, 0.0, "train", {"seconds": 1.0}, seconds=2.0)
    store.close()
    assert load_run(tmp_path / "r").empty  # nothing half-logged
    with pytest.raises(RuntimeError, match="closed"):
        store.log(0, 0.0, "train", {"loss": 1.0})


def test_existing_run_needs_resume_or_overwrite(tmp_path):
    run = tmp_path / "r"
    with RunWriter(run, config={"seed": 1}) as store:
        store.log(0, 0.0, "train", {"loss": 1.0, "v": np.ones(2)})
    with pytest.raises(FileExistsError, match=f"{run}.*resume=True.*overwrite=True"):
        RunWriter(run)
    with pytest.raises(ValueError, match="not both"):
        RunWriter(run, resume=True, overwrite=True)
    with pytest.raises(FileNotFoundError, match="no run to resume"):
        RunWriter(tmp_path / "missing", resume=True)
    with pytest.raises(ValueError, match=r"differs .*\(stored vs given\): seed \(1 vs 2\)"):
        RunWriter(run, resume=True, config={"seed": 2})
    resumed = RunWriter(run, resume=True, config={"seed": 1})
    assert resumed.config == {"seed": 1} and len(load_run(run)) == 1
    resumed.close()
    (run / "notes.txt").write_text("mine")
    RunWriter(run, overwrite=True, config={"seed": 3}).close()
    assert read_config(run) == {"seed": 3} and load_run(run).empty
    assert not (run / "arrays" / "train").exists() and (run / "notes.txt").exists()


def test_status(tmp_path):
    store = RunWriter(tmp_path / "r")
    store.log(7, 1.75, "train", {"loss": 1.0})
    store.set_status("diverged", message="loss is nan", lr=0.5, where=torch.tensor([1, 2]))
    status = read_status(tmp_path / "r")
    assert status["state"] == "diverged" and status["step"] == 7 and status["epoch"] == 1.75
    assert status["message"] == "loss is nan" and status["lr"] == 0.5 and status["where"] == [1, 2]
    assert pd.Timestamp(status["updated"]).tzinfo is not None
    store.set_status("done", step=9)
    assert read_status(tmp_path / "r")["step"] == 9
    with pytest.raises(ValueError, match="one of .*'running'.*got 'finished'"):
        store.set_status("finished")


@pytest.mark.parametrize("error, state",
                         [(RuntimeError, "failed"), (KeyboardInterrupt, "interrupted")])
def test_leaving_with_block_on_error_flushes_and_marks_status(tmp_path, error, state):
    with pytest.raises(error):
        with RunWriter(tmp_path / "r", flush_every_s=None) as store:
            store.log(0, 0.0, "train", {"loss": 1.0})
            raise error("boom")
    assert read_status(tmp_path / "r")["state"] == state
    assert read_status(tmp_path / "r")["message"] == f"{error.__name__}: boom"
    assert len(load_run(tmp_path / "r")) == 1


def test_flush_every_s(tmp_path):
    store = RunWriter(tmp_path / "r", flush_every_s=0)
    store.log(0, 0.0, "train", {"loss": 1.0})
    assert len(load_run(tmp_path / "r")) == 1
    lazy = RunWriter(tmp_path / "s", flush_every_s=None)
    lazy.log(0, 0.0, "train", {"loss": 1.0})
    assert load_run(tmp_path / "s").empty
    lazy.flush()
    assert len(load_run(tmp_path / "s")) == 1


# -- checkpoints ----------------------------------------------------------------------------------
def _model_state():
    g = torch.Generator().manual_seed(0)
    tied = torch.randn(4, 3, generator=g)
    return {
        "embed.weight": tied, "head.weight": tied,  # tied weights share storage
        "w64": torch.randn(3, 5, dtype=torch.float64, generator=g).t(),  # non-contiguous
        "bf16": torch.randn(6, generator=g).to(torch.bfloat16),
        "count": torch.tensor(7), "mask": torch.tensor([True, False]),
        "empty": torch.empty(0, 3), "param": nn.Parameter(torch.randn(2, generator=g)),
    }


def _rng_state():
    gen = torch.Generator().manual_seed(5)
    return {"torch": torch.get_rng_state(), "generator": gen.get_state(),
            "numpy": np.random.get_state(),
            "numpy_gen": np.random.default_rng(3).bit_generator.state,
            "python": random.getstate(), "loader": {"epoch": 2, "index": 17, "order": np.arange(5)}}


def test_checkpoint_round_trip_is_exact(tmp_path):
    store = RunWriter(tmp_path / "r")
    assert store.latest_checkpoint() is None
    model_state = _model_state()
    model = nn.Linear(3, 2)
    opt = torch.optim.Adam(model.parameters(), lr=0.1)
    model(torch.ones(1, 3)).sum().backward()
    opt.step()
    state = {"optimizer": opt.state_dict(), "rng": _rng_state(),
             "trainer": {"step": 3, "nan": float("nan")}}
    store.save_checkpoint(3, model_state=model_state, state=state)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # loads with weights_only=True, numpy RNG state included
        step, loaded_model, loaded = store.latest_checkpoint()
    assert step == 3 and list(loaded_model) == list(model_state)
    for key, t in model_state.items():
        assert loaded_model[key].dtype == t.dtype and torch.equal(loaded_model[key], t.detach())
    assert not loaded_model["param"].requires_grad
    opt2 = torch.optim.Adam(nn.Linear(3, 2).parameters(), lr=0.1)
    opt2.load_state_dict(loaded["optimizer"])
    for s1, s2 in zip(opt.state_dict()["state"].values(), opt2.state_dict()["state"].values()):
        assert all(torch.equal(s1[k], s2[k]) for k in s1)
    assert loaded["trainer"]["step"] == 3 and np.isnan(loaded["trainer"]["nan"])
    assert np.array_equal(loaded["rng"]["loader"]["order"], np.arange(5))


def test_checkpoint_restores_rng_streams(tmp_path):
    store = RunWriter(tmp_path / "r")
    gen = torch.Generator().manual_seed(1)
    np_gen = np.random.default_rng(2)
    torch.rand(3), np.random.rand(), random.random(), torch.rand(2, generator=gen), np_gen.random()
    state = {"torch": torch.get_rng_state(), "gen": gen.get_state(), "numpy": np.random.get_state(),
             "np_gen": np_gen.bit_generator.state, "python": random.getstate()}
    store.save_checkpoint(0, model_state={}, state=state)
    expected = [torch.rand(4), np.random.rand(4), random.random(), torch.rand(4, generator=gen),
                np_gen.random(4)]
    _, _, loaded = store.latest_checkpoint()
    torch.set_rng_state(loaded["torch"])
    gen.set_state(loaded["gen"])
    np.random.set_state(loaded["numpy"])
    np_gen.bit_generator.state = loaded["np_gen"]
    random.setstate(loaded["python"])
    again = [torch.rand(4), np.random.rand(4), random.random(), torch.rand(4, generator=gen),
             np_gen.random(4)]
    assert torch.equal(expected[0], again[0]) and np.array_equal(expected[1], again[1])
    assert expected[2] == again[2] and torch.equal(expected[3], again[3])
    assert np.array_equal(expected[4], again[4])


def test_checkpoint_refuses_to_store_objects_that_would_need_code_to_load(tmp_path):
    store = RunWriter(tmp_path / "r")
    with pytest.raises(TypeError, match=r"state\['c'\]: a Counters cannot be stored"):
        store.save_checkpoint(1, model_state={"w": torch.ones(1)}, state={"c": Counters(4)})
    assert store.latest_checkpoint() is None  # nothing half-written


def test_keep_last_checkpoints_and_replace_same_step(tmp_path):
    store = RunWriter(tmp_path / "r")
    for step in range(5):
        store.save_checkpoint(step, model_state={"w": torch.full((2,), float(step))}, state={})
    assert sorted(p.name for p in (tmp_path / "r" / "checkpoints").iterdir()) == [
        "step_00000003", "step_00000004"]
    store.save_checkpoint(4, model_state={"w": torch.zeros(2)}, state={"again": True}, keep=1)
    step, model_state, state = store.latest_checkpoint()
    assert step == 4 and state == {"again": True} and model_state["w"].tolist() == [0.0, 0.0]
    assert [p.name for p in (tmp_path / "r" / "checkpoints").iterdir()] == ["step_00000004"]
    with pytest.raises(ValueError, match=r"keep must be an int >= 1 or None \(every checkpoint\), got 0"):
        store.save_checkpoint(5, model_state={}, state={}, keep=0)
    for step in (5, 6, 7):
        store.save_checkpoint(step, model_state={}, state={}, keep=None)
    assert checkpoint_steps(tmp_path / "r") == [4, 5, 6, 7]


def test_save_checkpoint_flushes_metrics_first(tmp_path):
    store = RunWriter(tmp_path / "r", flush_every_s=None)
    store.log(0, 0.0, "train", {"loss": 1.0})
    store.save_checkpoint(0, model_state={}, state={})
    assert len(load_run(tmp_path / "r")) == 1


# -- atomicity ------------------------------------------------------------------------------------
def test_failed_replace_leaves_previous_version(tmp_path, monkeypatch):
    run = tmp_path / "r"
    store = RunWriter(run, flush_every_s=None)
    store.log(0, 0.0, "train", {"loss": 1.0})
    store.save_checkpoint(0, model_state={"w": torch.zeros(1)}, state={})
    store.log(1, 0.0, "train", {"loss": 2.0})

    def crash(*args):
        raise OSError("disk on fire")

    monkeypatch.setattr(os, "replace", crash)
    monkeypatch.setattr(os, "rename", crash)
    with pytest.raises(OSError, match="disk on fire"):
        store.flush()
    with pytest.raises(OSError, match="disk on fire"):
        store.save_checkpoint(1, model_state={"w": torch.ones(1)}, state={})
    with pytest.raises(OSError, match="disk on fire"):
        store.set_status("done")
    monkeypatch.undo()
    assert load_run(run)["value"].tolist() == [1.0]  # the previous version
    assert store.latest_checkpoint()[0] == 0 and read_status(run)["state"] == "running"
    leftovers = [p for p in run.rglob("*") if ".tmp-" in p.name]
    assert leftovers == []
    store.flush()  # the rows stayed buffered
    assert load_run(run)["value"].tolist() == [1.0, 2.0]


WRITER = textwrap.dedent("""
    import os, sys, time, numpy as np
    from sgdscope.store import RunWriter
    fsync = os.fsync
    def slow_fsync(fd):  # most of the time a temp file is written but not yet renamed
        fsync(fd)
        time.sleep(0.005)
    os.fsync = slow_fsync
    store = RunWriter(sys.argv[1], flush_every_s=0)  # flush (rewrite the file) on every log
    step = 0
    while True:
        store.log(step, step / 10, "train", {"loss": float(step), "sq": float(step) ** 2})
        if step % 5 == 0:
            store.log(step, step / 10, "spec", {"v": np.full(3, step)})
        step += 1
""")


def test_sigkill_mid_write_leaves_a_readable_prefix(tmp_path):
    run = tmp_path / "r"
    proc = subprocess.Popen([sys.executable, "-c", WRITER, str(run)])
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if len(load_run(run)) > 100:
                    break
            except (FileNotFoundError, OSError, pa.ArrowInvalid, CorruptFile):  # a read racing the writer
                pass
            time.sleep(0.02)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    df = load_run(run)
    steps = np.arange(len(df) // 2)
    assert len(df) % 2 == 0 and len(df) > 100
    assert df["step"].tolist() == np.repeat(steps, 2).tolist()
    assert df["value"].tolist() == np.stack([steps, steps**2], 1).ravel().astype(float).tolist()
    for step, v in load_arrays(run, "spec", "v").items():
        assert v.tolist() == [step] * 3
    store = RunWriter(run, resume=True)  # cleans temp files a killed writer may have left
    assert not [p for p in run.rglob("*") if ".tmp-" in p.name]
    store.close()


# -- exact resume ---------------------------------------------------------------------------------
def _train(store, model, opt, start, stop, *, crash_at=None):
    """A tiny training loop using the global torch / numpy / python RNGs, checkpointing every 3."""
    for step in range(start, stop):
        x, y = torch.randn(4, 3), torch.randn(4, 1)
        noise = np.random.rand() * 1e-3 + random.random() * 1e-3
        loss = ((model(x) - y) ** 2).mean() + noise
        opt.zero_grad()
        loss.backward()
        opt.step()
        store.log(step, step / 4, "train", {"loss": loss, "noise": noise, "w": model.weight})
        if crash_at is not None and step == crash_at - 1:
            store.flush()  # rows after the checkpoint reach the disk, then the run dies
        if step == crash_at:
            return
        if step % 3 == 2:
            store.save_checkpoint(step, model_state=model.state_dict(), state={
                "optimizer": opt.state_dict(), "torch": torch.get_rng_state(),
                "numpy": np.random.get_state(), "python": random.getstate()})


def _fresh():
    torch.manual_seed(0)
    np.random.seed(0)
    random.seed(0)
    model = nn.Linear(3, 1)
    return model, torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)


def test_resume_ends_with_the_same_metrics_as_an_uninterrupted_run(tmp_path):
    model, opt = _fresh()
    with RunWriter(tmp_path / "straight") as store:
        _train(store, model, opt, 0, 12)
    expected_weight = model.weight.detach().clone()

    model, opt = _fresh()
    store = RunWriter(tmp_path / "resumed", flush_every_s=None)
    _train(store, model, opt, 0, 12, crash_at=7)  # checkpoint at 5; steps 6 on disk, 7 lost
    del store
    assert load_run(tmp_path / "resumed")["step"].max() == 6

    model, opt = _fresh()
    with RunWriter(tmp_path / "resumed", resume=True) as store:
        step, model_state, state = store.latest_checkpoint()
        assert step == 5
        model.load_state_dict(model_state)
        opt.load_state_dict(state["optimizer"])
        torch.set_rng_state(state["torch"])
        np.random.set_state(state["numpy"])
        random.setstate(state["python"])
        store.truncate_after(step)
        assert load_run(tmp_path / "resumed")["step"].max() == 5
        assert max(load_arrays(tmp_path / "resumed", "train", "w")) == 5
        _train(store, model, opt, step + 1, 12)
    pd.testing.assert_frame_equal(load_run(tmp_path / "straight"), load_run(tmp_path / "resumed"))
    a, b = (load_arrays(tmp_path / r, "train", "w") for r in ("straight", "resumed"))
    assert list(a) == list(b) == list(range(12))
    assert all(np.array_equal(a[s], b[s]) for s in a)
    assert torch.equal(model.weight.detach(), expected_weight)


def test_truncate_after_drops_later_rows_arrays_checkpoints(tmp_path):
    store = RunWriter(tmp_path / "r", flush_every_s=None)
    for step in range(6):
        store.log(step, 0.0, "p", {"x": step, "v": np.ones(2) * step})
        store.save_checkpoint(step, model_state={}, state={}, keep=10)
    store.log(6, 0.0, "p", {"x": 6})  # still buffered
    store.truncate_after(3)
    assert load_run(tmp_path / "r")["step"].tolist() == [0, 1, 2, 3]
    assert list(load_arrays(tmp_path / "r", "p", "v")) == [0, 1, 2, 3]
    assert store.latest_checkpoint()[0] == 3
    assert json.loads((tmp_path / "r" / "status.json").read_text())["state"] == "running"


def test_truncate_after_minus_one_drops_everything(tmp_path):
    store = RunWriter(tmp_path / "r")
    store.log(0, 0.0, "p", {"x": 1.0, "v": np.ones(2)})
    store.save_checkpoint(0, model_state={}, state={})
    store.truncate_after(-1)
    assert load_run(tmp_path / "r").empty and store.latest_checkpoint() is None
    assert not list((tmp_path / "r" / "arrays").rglob("*.npy"))
    with pytest.raises(ValueError, match="step must be an int >= -1, got -2"):
        store.truncate_after(-2)


def test_metrics_roll_over_into_parts(tmp_path, monkeypatch):
    monkeypatch.setattr("sgdscope.store.writer.PART_ROWS", 4)
    run = tmp_path / "r"
    store = RunWriter(run, flush_every_s=0)  # a flush per log: 3 rows each
    for step in range(10):
        store.log(step, step / 10, "p", {"a": step, "b": -step, "c": float("nan")})
    parts = sorted(p.name for p in (run / "metrics.parquet").iterdir())
    assert parts == [f"part-{i:08d}.parquet" for i in range(5)]  # a part takes 3 + 3 rows
    expected = [(s, n) for s in range(10) for n in "abc"]
    plain = pd.read_parquet(run / "metrics.parquet")  # any parquet reader sees the full table
    assert list(zip(plain["step"], plain["name"])) == expected
    assert list(zip(load_run(run)["step"], load_run(run)["name"])) == expected
    store.truncate_after(4)
    assert load_run(run)["step"].max() == 4 and len(load_run(run)) == 15
    assert len(list((run / "metrics.parquet").iterdir())) == 3
    store.close()
    resumed = RunWriter(run, resume=True, flush_every_s=0)
    resumed.log(5, 0.5, "p", {"a": 5})
    assert load_run(run)["step"].tolist()[-4:] == [4, 4, 4, 5]


def test_bad_config_fails_before_touching_the_directory(tmp_path):
    with pytest.raises(TypeError, match="config key model.act.*function"):
        RunWriter(tmp_path / "new", config={"model": {"act": torch.relu}})
    assert not (tmp_path / "new").exists()
    RunWriter(tmp_path / "old", config={"seed": 1}).close()
    with pytest.raises(TypeError, match="config key model.act"):
        RunWriter(tmp_path / "old", config={"model": {"act": torch.relu}}, overwrite=True)
    assert read_config(tmp_path / "old") == {"seed": 1}
