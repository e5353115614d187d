"""Reading runs without a model: load_run, load_arrays, list_runs, load_sweep, TensorBoard."""
import importlib.util

import numpy as np
import pandas as pd
import pytest
import torch

from sgdscope.store import (
    RunWriter, export_tensorboard, find_runs, is_run_dir, list_arrays, list_runs, load_arrays,
    load_checkpoint, load_run, load_sweep, read_config, read_status,
)


def _write_run(path, lr, steps=3, *, state="done", arrays=True):
    with RunWriter(path, config={"optimizer": {"lr": lr, "name": "sgd"}, "sizes": [1, 2],
                                "step": "clash"}) as store:
        for step in range(steps):
            store.log(step, step / 2, "train",
                      {"loss": lr * (steps - step), "accuracy": step / steps})
            store.log(step, step / 2, "hessian", {"lambda_max": 10.0 * step, "other": 1.0})
            if arrays:
                store.log(step, step / 2, "hessian", {"spectrum": torch.arange(3.0) * step})
        store.set_status(state, message="finished" if state == "done" else "")
    return path


@pytest.fixture
def sweep(tmp_path):
    root = tmp_path / "sweep"
    _write_run(root / "lr_0.1", 0.1)
    _write_run(root / "lr_0.5", 0.5, steps=2, state="diverged")
    _write_run(root / "nested" / "lr_1", 1.0, arrays=False)
    (root / "not_a_run").mkdir()
    (root / ".hidden").mkdir()
    _write_run(root / ".hidden" / "run", 9.0)
    return root


def test_not_a_run_dir_errors_name_the_path(tmp_path):
    (tmp_path / "empty").mkdir()
    for fn in (load_run, read_config, read_status):
        with pytest.raises(FileNotFoundError, match=f"{tmp_path / 'empty'}: not a run directory"):
            fn(tmp_path / "empty")
    with pytest.raises(FileNotFoundError, match="not a run directory"):
        load_arrays(tmp_path / "missing", "p", "n")
    with pytest.raises(FileNotFoundError, match="no such directory"):
        list_runs(tmp_path / "missing")
    with pytest.raises(FileNotFoundError, match="no run directories below"):
        load_sweep(tmp_path / "empty")
    assert not is_run_dir(tmp_path / "empty") and list_runs(tmp_path / "empty").empty


def test_load_run_and_arrays(tmp_path):
    run = _write_run(tmp_path / "r", 0.1)
    df = load_run(run)
    assert list(df.columns) == ["step", "epoch", "probe", "type", "name", "value"]
    assert (df.type == df.probe).all()  # nothing declared: the type is the instance name
    assert df["step"].is_monotonic_increasing and len(df) == 3 * 4
    assert list_arrays(run) == [("hessian", "spectrum")]
    spectra = load_arrays(run, "hessian", "spectrum")
    assert list(spectra) == [0, 1, 2] and spectra[2].tolist() == [0.0, 2.0, 4.0]
    with pytest.raises(KeyError, match=r"probe='train', name='loss'.*\('hessian', 'spectrum'\)"):
        load_arrays(run, "train", "loss")
    assert read_config(run)["optimizer"] == {"lr": 0.1, "name": "sgd"}
    assert read_status(run)["state"] == "done"


def test_load_checkpoint_without_a_store(tmp_path):
    with RunWriter(tmp_path / "r") as store:
        store.save_checkpoint(4, model_state={"w": torch.arange(3.0)}, state={"step": 4})
    model_state, state = load_checkpoint(tmp_path / "r", 4)
    assert model_state["w"].tolist() == [0.0, 1.0, 2.0] and state == {"step": 4}
    with pytest.raises(FileNotFoundError, match=r"no checkpoint at step 5; stored steps: \[4\]"):
        load_checkpoint(tmp_path / "r", 5)


def test_find_runs_skips_hidden_and_does_not_descend_into_runs(sweep):
    assert [p.relative_to(sweep).as_posix() for p in find_runs(sweep)] == [
        "lr_0.1", "lr_0.5", "nested/lr_1"]
    assert find_runs(sweep / "lr_0.1") == [sweep / "lr_0.1"]


def test_list_runs(sweep):
    df = list_runs(sweep, metrics=["train/loss", "hessian/lambda_max"])
    assert df["run"].tolist() == ["lr_0.1", "lr_0.5", "nested/lr_1"]
    assert df["state"].tolist() == ["done", "diverged", "done"]
    assert df["step"].tolist() == [2, 1, 2] and df["epoch"].tolist() == [1.0, 0.5, 1.0]
    assert df["message"].tolist() == ["finished", "", "finished"]
    assert df["train/loss"].tolist() == pytest.approx([0.1, 0.5, 1.0])
    assert df["hessian/lambda_max"].tolist() == [20.0, 10.0, 20.0]
    assert "hessian/other" not in df.columns
    only = list_runs(sweep, metrics=["hessian/other"])
    assert [c for c in only.columns if "/" in c] == ["hessian/other"]


def test_list_runs_without_status(tmp_path):
    run = _write_run(tmp_path / "r", 0.1)
    (run / "status.json").unlink()
    row = list_runs(tmp_path).iloc[0]
    assert row["state"] == "unknown" and row["step"] == 2


def test_load_sweep(sweep):
    df = load_sweep(sweep)
    assert df.columns[:8].tolist() == ["run", "state", "step", "epoch", "probe", "type", "name", "value"]
    assert df.groupby("run")["state"].first().to_dict() == {"lr_0.1": "done", "lr_0.5": "diverged", "nested/lr_1": "done"}
    assert {"optimizer.lr", "optimizer.name", "sizes", "config.step"} <= set(df.columns)
    assert df.groupby("run").size().to_dict() == {"lr_0.1": 12, "lr_0.5": 8, "nested/lr_1": 12}
    lr = df.groupby("run")["optimizer.lr"].first()
    assert lr.to_dict() == {"lr_0.1": 0.1, "lr_0.5": 0.5, "nested/lr_1": 1.0}
    assert pd.api.types.is_float_dtype(df["optimizer.lr"]) and df["step"].dtype == "int64"
    assert df["sizes"].iloc[0] == (1, 2) and (df["config.step"] == "clash").all()
    last = df[df["name"] == "loss"].groupby("optimizer.lr")["value"].last()
    assert last.to_dict() == pytest.approx({0.1: 0.1, 0.5: 0.5, 1.0: 1.0})


def test_export_tensorboard_needs_the_package(tmp_path, monkeypatch):
    run = _write_run(tmp_path / "r", 0.1)
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "tensorboard" else real(name, *a))
    with pytest.raises(ImportError, match=r"pip install sgdscope\[tensorboard\]"):
        export_tensorboard(run)


def test_export_tensorboard_round_trip(tmp_path):
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing import event_accumulator

    run = _write_run(tmp_path / "r", 0.1)
    with RunWriter(run, resume=True) as store:
        store.log(3, 1.5, "train", {"loss": float("nan")})
    export_tensorboard(run)
    logdir = export_tensorboard(run)  # a second export replaces the first
    assert logdir == run / "tensorboard" and len(list(logdir.glob("events.out.tfevents.*"))) == 1
    acc = event_accumulator.EventAccumulator(str(logdir))
    acc.Reload()
    assert sorted(acc.Tags()["scalars"]) == [
        "hessian/lambda_max", "hessian/other", "train/accuracy", "train/loss"]
    loss = acc.Scalars("train/loss")
    assert [e.step for e in loss] == [0, 1, 2, 3]
    assert np.allclose([e.value for e in loss[:3]], [0.3, 0.2, 0.1]) and np.isnan(loss[3].value)
    other = export_tensorboard(run, tmp_path / "tb")
    assert other == tmp_path / "tb" and list(other.glob("events.out.tfevents.*"))


def test_import_sgdscope_loads_no_pandas_pyarrow_or_safetensors():
    """The store loads them when a run is read or written, not on import."""
    import subprocess
    import sys

    code = ("import sys, sgdscope; heavy = [m for m in ('pandas', 'pyarrow', 'safetensors', 'ray', 'matplotlib') "
            "if m in sys.modules]; print(heavy)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and out.stdout.strip() == "[]", out.stderr[-2000:]
