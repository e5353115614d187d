"""Reading stored runs without any model: metrics as tidy DataFrames, arrays, config, status.

On-disk layout of one run (written by :class:`~sgdscope.run.store.RunStore`)::

    RUN_DIR/
      config.toml                  resolved config
      metrics.parquet/             a parquet dataset: part-00000000.parquet, part-00000001...
                                   (step int64, epoch float64, probe str, name str, value float64)
                                   pd.read_parquet / pq.read_table of the folder: the full table
      arrays/PROBE/NAME/step_00000123.npy   one array per (probe, name, step)
      checkpoints/step_00000123/   model.safetensors (model tensors; metadata: step, key order)
                                   + state.pt (torch.save: optimizer, RNG, counters, ...)
      status.json                  {"state", "step", "epoch", "updated", "message", ...}

PROBE and NAME are percent-encoded in paths (``urllib.parse.quote``), so any string is safe.
"""
from __future__ import annotations

import json
import os
import pickle
import re
import warnings
from pathlib import Path
from typing import Any, Iterator, Sequence
from urllib.parse import quote, unquote

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import torch
from safetensors import safe_open
from safetensors.torch import load_file

from ._toml import flatten_config, read_toml

__all__ = [
    "load_run", "load_arrays", "list_arrays", "read_config", "read_status", "list_runs",
    "load_sweep", "find_runs", "is_run_dir", "flatten_config", "load_checkpoint",
    "checkpoint_steps", "METRICS_SCHEMA",
]

CONFIG, METRICS, ARRAYS, CHECKPOINTS, STATUS = (
    "config.toml", "metrics.parquet", "arrays", "checkpoints", "status.json",
)
METRICS_SCHEMA = pa.schema([
    ("step", pa.int64()), ("epoch", pa.float64()), ("probe", pa.string()),
    ("name", pa.string()), ("value", pa.float64()),
])
MODEL_FILE, STATE_FILE = "model.safetensors", "state.pt"
STEP_DIR = re.compile(r"^step_(\d+)$")
PART_FILE = re.compile(r"^part-(\d+)\.parquet$")
ARRAY_FILE = re.compile(r"^step_(\d+)\.npy$")
KEY_METRICS = ("loss", "accuracy", "lambda_max", "lambda_1")
_TIDY = ("run", "step", "epoch", "probe", "name", "value")


def is_run_dir(path: str | os.PathLike) -> bool:
    """Whether ``path`` holds a run (``status.json``, ``config.toml`` or ``metrics.parquet``)."""
    path = Path(path)
    return path.is_dir() and any((path / f).exists() for f in (STATUS, CONFIG, METRICS))


def find_runs(root: str | os.PathLike) -> list[Path]:
    """The run directories at or below ``root``, sorted (not looking into runs or hidden dirs)."""
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: no such directory (expected a run or a folder of runs)")
    found = []
    for dirpath, dirnames, _ in os.walk(root):
        if is_run_dir(dirpath):
            found.append(Path(dirpath))
            dirnames[:] = []
        else:
            dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
    return sorted(found)


def _require_run(run_dir: str | os.PathLike) -> Path:
    run_dir = Path(run_dir)
    if not is_run_dir(run_dir):
        raise FileNotFoundError(
            f"{run_dir}: not a run directory (expected {STATUS}, {CONFIG} or {METRICS} inside)"
        )
    return run_dir


def metric_parts(run_dir: Path) -> list[tuple[int, Path]]:
    """(index, file) of the parts of ``metrics.parquet/``, in logging order."""
    folder = Path(run_dir) / METRICS
    if not folder.is_dir():
        return []
    return sorted((int(m.group(1)), p)
                  for p in folder.iterdir() if (m := PART_FILE.match(p.name)))


def read_part(path: Path) -> pa.Table:
    """One parquet file as a Table with exactly :data:`METRICS_SCHEMA`."""
    return pq.read_table(path).select(METRICS_SCHEMA.names).cast(METRICS_SCHEMA)


def read_metrics_table(run_dir: Path) -> pa.Table:
    """The metrics of ``run_dir`` as a pyarrow Table in stored (logging) order; empty if none.
    (A plain ``metrics.parquet`` file instead of the folder is read too.)"""
    path = Path(run_dir) / METRICS
    if path.is_file():
        return read_part(path)
    parts = [read_part(p) for _, p in metric_parts(run_dir)]
    return pa.concat_tables(parts) if parts else METRICS_SCHEMA.empty_table()


def load_run(run_dir: str | os.PathLike) -> pd.DataFrame:
    """Tidy metrics of one run: columns step, epoch, probe, name, value, stably sorted by step
    (rows of one step keep their logging order). NaN / inf values are kept as stored."""
    table = read_metrics_table(_require_run(run_dir))
    df = table.to_pandas()
    df = df.sort_values("step", kind="stable", ignore_index=True)
    return df.astype({"step": "int64", "epoch": "float64", "value": "float64"})


def read_config(run_dir: str | os.PathLike) -> dict:
    """The resolved config of a run (``config.toml``) as a nested dict."""
    path = _require_run(run_dir) / CONFIG
    if not path.exists():
        raise FileNotFoundError(f"{path}: missing (the run directory has no config)")
    return read_toml(path)


def read_status(run_dir: str | os.PathLike) -> dict:
    """The run's ``status.json``: state, step, epoch, updated (ISO time), message, ..."""
    path = _require_run(run_dir) / STATUS
    if not path.exists():
        raise FileNotFoundError(f"{path}: missing (the run has never set a status)")
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def array_dir(run_dir: Path, probe: str, name: str) -> Path:
    """Where the arrays of (probe, name) live."""
    return Path(run_dir) / ARRAYS / quote(probe, safe="") / quote(name, safe="")


def array_files(run_dir: Path, probe: str, name: str) -> Iterator[tuple[int, Path]]:
    """(step, file) for every stored array of (probe, name), in no particular order."""
    folder = array_dir(run_dir, probe, name)
    if folder.is_dir():
        for file in folder.iterdir():
            m = ARRAY_FILE.match(file.name)
            if m:
                yield int(m.group(1)), file


def list_arrays(run_dir: str | os.PathLike) -> list[tuple[str, str]]:
    """The sorted (probe, name) pairs that have arrays in a run."""
    root = _require_run(run_dir) / ARRAYS
    if not root.is_dir():
        return []
    return sorted(
        (unquote(p.name), unquote(n.name))
        for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")
        for n in p.iterdir() if n.is_dir() and not n.name.startswith(".")
    )


def load_arrays(run_dir: str | os.PathLike, probe: str, name: str) -> dict[int, np.ndarray]:
    """step -> array for (probe, name), sorted by step. KeyError lists what the run has."""
    run_dir = _require_run(run_dir)
    files = sorted(array_files(run_dir, probe, name))
    if not files:
        raise KeyError(
            f"{run_dir}: no arrays for probe={probe!r}, name={name!r}; "
            f"stored (probe, name) pairs: {list_arrays(run_dir)}"
        )
    return {step: np.load(file, allow_pickle=False) for step, file in files}


def checkpoint_steps(run_dir: str | os.PathLike) -> list[int]:
    """Sorted steps of the complete checkpoints of a run."""
    folder = Path(run_dir) / CHECKPOINTS
    if not folder.is_dir():
        return []
    return sorted(int(m.group(1)) for p in folder.iterdir() if (m := STEP_DIR.match(p.name)))


def load_checkpoint(run_dir: str | os.PathLike, step: int) -> tuple[dict[str, torch.Tensor], Any]:
    """``(model_state, state)`` of the checkpoint at ``step`` (CPU tensors, saved key order).

    ``state.pt`` is loaded with ``weights_only=True``, allowing numpy arrays and dtypes (numpy
    RNG states); anything else falls back to ``weights_only=False`` with a warning."""
    folder = Path(run_dir) / CHECKPOINTS / f"step_{step:08d}"
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder}: no checkpoint at step {step}; "
                                f"stored steps: {checkpoint_steps(run_dir)}")
    tensors = load_file(folder / MODEL_FILE)
    with safe_open(folder / MODEL_FILE, framework="pt") as f:
        keys = json.loads((f.metadata() or {}).get("keys", "[]"))
    if sorted(keys) == sorted(tensors):
        tensors = {k: tensors[k] for k in keys}
    return tensors, _load_state(folder / STATE_FILE)


def _load_state(path: Path) -> Any:
    safe_globals = getattr(torch.serialization, "safe_globals", None)
    if safe_globals is not None:
        try:
            with safe_globals(_numpy_globals()):
                return torch.load(path, map_location="cpu", weights_only=True)
        except pickle.UnpicklingError:
            unsafe = torch.serialization.get_unsafe_globals_in_checkpoint(path)
            reason = "it needs " + ", ".join(unsafe)
    else:  # pragma: no cover - torch < 2.5
        reason = "this torch has no torch.serialization.safe_globals"
    warnings.warn(f"{path}: cannot be loaded with weights_only=True ({reason}); loading with "
                  "weights_only=False, which runs pickled code: only for checkpoints you trust",
                  stacklevel=3)
    return torch.load(path, map_location="cpu", weights_only=False)


def _numpy_globals() -> list:
    """The numpy objects needed to unpickle plain numeric arrays and scalars (no object dtype)."""
    multiarray = getattr(np, "_core", None) or np.core
    dtypes = {type(np.dtype(c)) for c in np.typecodes["All"] if c != "O"}
    core = multiarray.multiarray
    return [np.ndarray, np.dtype, core._reconstruct, core.scalar, *dtypes]


def _run_label(root: Path, run: Path) -> str:
    return run.relative_to(root).as_posix()


def _last_values(df: pd.DataFrame, metrics: Sequence[str]) -> dict[str, float]:
    """The value at the largest step of each metric in ``metrics`` ("probe/name" or "name")."""
    last = df.drop_duplicates(["probe", "name"], keep="last")
    keys = last["probe"] + "/" + last["name"]
    keep = keys.isin(list(metrics)) | last["name"].isin(list(metrics))
    return dict(zip(keys[keep], last["value"][keep].astype(float)))


def list_runs(root: str | os.PathLike, *, metrics: Sequence[str] = KEY_METRICS) -> pd.DataFrame:
    """One row per run at or below ``root`` (for ``sgdscope ls``).

    Columns: run (path relative to ``root``), path, state (``"unknown"`` without a status),
    step (the larger of the status's and the last logged step), epoch, updated, message, then
    one column "probe/name" per stored metric matching ``metrics`` (entries are "probe/name"
    or a bare name matching any probe) holding its value at the last logged step.
    """
    root = Path(root)
    rows = []
    for run in find_runs(root):
        status = read_status(run) if (run / STATUS).exists() else {}
        df = load_run(run)
        steps = [s for s in (status.get("step"), df["step"].max() if len(df) else None)
                 if s is not None]
        rows.append({
            "run": _run_label(root, run), "path": str(run),
            "state": status.get("state", "unknown"), "step": int(max(steps)) if steps else None,
            "epoch": status.get("epoch"), "updated": status.get("updated"),
            "message": status.get("message", ""), **_last_values(df, metrics),
        })
    base = ["run", "path", "state", "step", "epoch", "updated", "message"]
    df = pd.DataFrame(rows, columns=base + sorted({k for r in rows for k in r} - set(base)))
    return df.astype({"step": "Int64"})


def load_sweep(root: str | os.PathLike) -> pd.DataFrame:
    """All runs below ``root`` in one tidy DataFrame: run, step, epoch, probe, name, value,
    then the flattened config ("optimizer.lr", ...; lists as tuples; a key that clashes with a
    tidy column is prefixed "config."). Raises FileNotFoundError if ``root`` holds no run."""
    root = Path(root)
    runs = find_runs(root)
    if not runs:
        raise FileNotFoundError(f"{root}: no run directories below "
                                f"(expected {STATUS} or {CONFIG} inside)")
    frames = []
    for run in runs:
        df = load_run(run)
        df.insert(0, "run", _run_label(root, run))
        config = read_config(run) if (run / CONFIG).exists() else {}
        extra = {}
        for key, value in flatten_config(config).items():
            dtype = object if isinstance(value, tuple) else None
            column = f"config.{key}" if key in _TIDY else key
            extra[column] = pd.Series([value] * len(df), index=df.index, dtype=dtype)
        frames.append(pd.concat([df, pd.DataFrame(extra, index=df.index)], axis=1))
    frames = [f for f in frames if len(f)] or frames[:1]
    return pd.concat(frames, ignore_index=True)
