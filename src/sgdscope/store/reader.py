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
    "list_runs", "load_sweep", "TIDY_COLUMNS", "SWEEP_COLUMNS", "CorruptFile", "read_json",
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


class CorruptFile(ValueError):
    """A run-store file that cannot be read (truncated, overwritten, not the format): the message
    names the file and what is wrong with it, in one line."""


def read_json(path: str | os.PathLike, what: str):
    """The JSON document at ``path`` (``what`` it is, for the message); :class:`CorruptFile` if it is not JSON."""
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except (ValueError, UnicodeDecodeError) as e:
        raise CorruptFile(f"{path}: the {what} is damaged (not valid JSON: {e})") from None


def read_part(path: Path):
    """One parquet file as a pyarrow Table with exactly the schema of :func:`.layout.metrics_schema`;
    :class:`CorruptFile` naming it if it cannot be read (a truncated or foreign file)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    schema = metrics_schema()
    try:
        return pq.read_table(path).select(schema.names).cast(schema)
    except (pa.ArrowException, OSError, KeyError, ValueError) as e:
        raise CorruptFile(f"{path}: the metrics part is damaged ({' '.join(str(e).split())})") from None


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
    return {name: entry["type"] for name, entry in read_json(path, "probe declaration").items()}


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
    return read_json(path, "run status")


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
    out = {}
    for step, file in files:
        try:
            out[step] = np.load(file, allow_pickle=False)
        except (ValueError, OSError, EOFError) as e:  # an object array (needs pickle: refused) or a damaged file
            raise CorruptFile(f"{file}: the array cannot be read without running code or is damaged "
                              f"({' '.join(str(e).split())})") from None
    return out


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


def _writer_gone(status: dict) -> bool:
    """A "running" status whose writing process is not alive on this host (killed without a word)."""
    import socket

    from ._lock import pid_alive

    return status.get("host") == socket.gethostname() and status.get("pid") is not None and not pid_alive(status["pid"])


def list_runs(root: str | os.PathLike, *, metrics: Sequence[str] = KEY_METRICS, require: bool = False):
    """One row per run at or below ``root`` (for ``sgdscope ls``).

    Columns: run (path relative to ``root``), path, state (``"unknown"`` without a status),
    step (the larger of the status's and the last logged step), epoch, updated, message, then
    one column "probe/name" per stored metric matching ``metrics`` (entries are "probe/name",
    "type/name", or a bare name matching any probe) holding its value at the last logged step.
    A run that cannot be read is listed with state ``unreadable`` and the damaged file in its
    message; a ``running`` run whose writer died on this host is listed as ``interrupted``.
    ``require``: a metric of ``metrics`` that no run records is an error (``KeyError``) naming it.
    """
    import pandas as pd

    root = Path(root)
    rows, seen = [], set()
    for run in find_runs(root):
        try:
            status = read_status(run) if (run / STATUS).exists() else {}
            df = load_run(run)
        except CorruptFile as err:  # this run cannot be read; the others are listed as usual
            rows.append({"run": _run_label(root, run), "path": str(run), "state": "unreadable", "step": None,
                         "epoch": None, "updated": None, "message": str(err)})
            continue
        seen |= set(df["probe"] + "/" + df["name"]) | set(df["type"] + "/" + df["name"]) | set(df["name"])
        steps = [s for s in (status.get("step"), df["step"].max() if len(df) else None)
                 if s is not None]
        state, message = status.get("state", "unknown"), status.get("message", "")
        if state == "running" and _writer_gone(status):
            state, message = "interrupted", f"its writer (pid {status['pid']}) is gone; resume the run to continue it"
        rows.append({
            "run": _run_label(root, run), "path": str(run),
            "state": state, "step": int(max(steps)) if steps else None,
            "epoch": status.get("epoch"), "updated": status.get("updated"),
            "message": message, **_last_values(df, metrics),
        })
    if require and rows:
        missing = [m for m in metrics if m not in seen]
        if missing:
            raise KeyError(f"no run below {root} records {', '.join(map(repr, missing))}; recorded (probe/name): "
                           f"{', '.join(sorted(m for m in seen if m.count('/') == 1)[:40]) or 'nothing'}")
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
