"""Reading stored runs without any model: metrics as tidy DataFrames, arrays, config, status.

The layout is in :mod:`.layout`. pandas and pyarrow are imported when a run is read, not when
sgdscope is imported.
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Sequence
from urllib.parse import unquote

import numpy as np

from ._toml import flatten_config, read_toml
from .layout import (
    ARRAYS, CONFIG, METRICS, PROBES, STATUS, array_files, find_runs, is_run_dir, metric_parts,
    metrics_schema,
)

__all__ = [
    "load_run", "load_arrays", "list_arrays", "read_config", "read_status", "read_probes",
    "list_runs", "load_sweep", "TIDY_COLUMNS", "SWEEP_COLUMNS",
]

KEY_METRICS = ("train/loss", "evaluation/train_accuracy", "evaluation/test_accuracy", "top_eigenvalues/lambda_1",
               "gradient_noise/lambda_1")
TIDY_COLUMNS = ("step", "epoch", "probe", "type", "name", "value")
SWEEP_COLUMNS = ("run", "state", *TIDY_COLUMNS)


def _require_run(run_dir: str | os.PathLike) -> Path:
    run_dir = Path(run_dir)
    if not is_run_dir(run_dir):
        raise FileNotFoundError(
            f"{run_dir}: not a run directory (expected {STATUS}, {CONFIG} or {METRICS} inside)"
        )
    return run_dir


def read_part(path: Path):
    """One parquet file as a pyarrow Table with exactly the schema of :func:`.layout.metrics_schema`."""
    import pyarrow.parquet as pq

    schema = metrics_schema()
    return pq.read_table(path).select(schema.names).cast(schema)


def read_metrics_table(run_dir: Path):
    """The metrics of ``run_dir`` as a pyarrow Table in stored (logging) order; empty if none.
    (A plain ``metrics.parquet`` file instead of the folder is read too.)"""
    import pyarrow as pa

    path = Path(run_dir) / METRICS
    if path.is_file():
        return read_part(path)
    parts = [read_part(p) for _, p in metric_parts(run_dir)]
    return pa.concat_tables(parts) if parts else metrics_schema().empty_table()


def read_probes(run_dir: str | os.PathLike) -> dict[str, str]:
    """``{instance name: probe type}`` from ``probes.json`` (empty if the run declared none)."""
    path = Path(run_dir) / PROBES
    if not path.is_file():
        return {}
    with open(path, encoding="utf-8") as f:
        return {name: entry["type"] for name, entry in json.load(f).items()}


def load_run(run_dir: str | os.PathLike):
    """Tidy metrics of one run as a pandas DataFrame: columns step, epoch, probe (the instance
    name), type (its probe type from ``probes.json``; the instance name where none was declared),
    name, value; stably sorted by step (rows of one step keep their logging order). NaN / inf
    values are kept as stored. Select a quantity by ``type`` and ``name``, whatever the label."""
    run_dir = _require_run(run_dir)
    df = read_metrics_table(run_dir).to_pandas()
    df = df.sort_values("step", kind="stable", ignore_index=True)
    types = read_probes(run_dir)
    df.insert(3, "type", df["probe"].map(lambda p: types.get(p, p)).astype(object))
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


def _run_label(root: Path, run: Path) -> str:
    return run.relative_to(root).as_posix()


def _last_values(df, metrics: Sequence[str]) -> dict[str, float]:
    """The value at the largest step of each metric in ``metrics`` ("probe/name", "type/name" or
    a bare "name"), keyed "probe/name"."""
    last = df.drop_duplicates(["probe", "name"], keep="last")
    keys = last["probe"] + "/" + last["name"]
    by_type = last["type"] + "/" + last["name"]
    wanted = list(metrics)
    keep = keys.isin(wanted) | by_type.isin(wanted) | last["name"].isin(wanted)
    return dict(zip(keys[keep], last["value"][keep].astype(float)))


def list_runs(root: str | os.PathLike, *, metrics: Sequence[str] = KEY_METRICS):
    """One row per run at or below ``root`` (for ``sgdscope ls``).

    Columns: run (path relative to ``root``), path, state (``"unknown"`` without a status),
    step (the larger of the status's and the last logged step), epoch, updated, message, then
    one column "probe/name" per stored metric matching ``metrics`` (entries are "probe/name",
    "type/name", or a bare name matching any probe) holding its value at the last logged step.
    """
    import pandas as pd

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


def load_sweep(root: str | os.PathLike):
    """All runs below ``root`` in one tidy DataFrame: run, state (from ``status.json``), step,
    epoch, probe, type, name, value, then the flattened config ("optimizer.lr", ...; lists as tuples; a key that clashes with a
    tidy column is prefixed "config."). Raises FileNotFoundError if ``root`` holds no run."""
    import pandas as pd

    root = Path(root)
    runs = find_runs(root)
    if not runs:
        raise FileNotFoundError(f"{root}: no run directories below "
                                f"(expected {STATUS} or {CONFIG} inside)")
    frames = []
    for run in runs:
        df = load_run(run)
        df.insert(0, "run", _run_label(root, run))
        df.insert(1, "state", (read_status(run) if (run / STATUS).exists() else {}).get("state", "unknown"))
        config = read_config(run) if (run / CONFIG).exists() else {}
        extra = {}
        for key, value in flatten_config(config).items():
            dtype = object if isinstance(value, tuple) else None
            column = f"config.{key}" if key in SWEEP_COLUMNS else key
            extra[column] = pd.Series([value] * len(df), index=df.index, dtype=dtype)
        frames.append(pd.concat([df, pd.DataFrame(extra, index=df.index)], axis=1))
    frames = [f for f in frames if len(f)] or frames[:1]
    return pd.concat(frames, ignore_index=True)
