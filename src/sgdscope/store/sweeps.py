"""The sweep folder format: its layout, the points' record, and a table of its runs (written by
:mod:`sgdscope.sweep`, read by anything).

    SWEEP/
      sweep.toml          the base config, the grid and the seeds (what was asked)
      points.json         every point: its varied values and its last known state
      runs/NAME/          one ordinary run folder per point (+ log.txt, the point's own output)
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Sequence

from ._atomic import atomic_write_json
from .reader import KEY_METRICS, list_runs, load_sweep, read_json

__all__ = ["MARKER", "POINTS", "RUNS", "is_sweep_dir", "write_points", "read_points", "sweep_table", "load_sweep_folder"]

MARKER, POINTS, RUNS = "sweep.toml", "points.json", "runs"


def is_sweep_dir(path: str | os.PathLike) -> bool:
    return (Path(path) / MARKER).is_file()


def write_points(out: Path, points, states: dict) -> None:
    atomic_write_json(Path(out) / POINTS, {p.name: {"values": p.values, "state": states.get(p.name, "new")} for p in points})


def read_points(out: str | os.PathLike) -> dict:
    """``{point name: {"values": {key: value}, "state": ...}}`` of a sweep folder."""
    path = Path(out) / POINTS
    if not path.is_file():
        raise FileNotFoundError(f"{out}: not a sweep folder (no {POINTS}; run `sgdscope sweep` first)")
    return read_json(path, "sweep's list of points")


def sweep_table(out: str | os.PathLike, *, metrics: Sequence[str] = KEY_METRICS, require: bool = False):
    """One row per point (for ``sgdscope ls SWEEP``): its varied values, state, step, the chosen
    metrics' last values ("type/name" or "probe/name"), the message; points never started show as "new"."""
    import pandas as pd

    points = read_points(out)
    runs = list_runs(Path(out) / RUNS, metrics=metrics, require=require) if (Path(out) / RUNS).is_dir() else pd.DataFrame(columns=["run"])
    by_name = {row["run"]: row for row in runs.to_dict("records")}
    rows = []
    for name, point in points.items():
        run = by_name.get(name, {})
        extra = {k: v for k, v in run.items() if k not in ("run", "path", "state", "step", "epoch", "updated", "message")}
        rows.append({"run": name, **point["values"], "state": run.get("state", "new"), "step": run.get("step"),
                     **extra, "message": run.get("message", "")})
    return pd.DataFrame(rows)


def load_sweep_folder(path: str | os.PathLike):
    """:func:`~sgdscope.load_sweep` of a sweep folder's runs (or of any folder of runs)."""
    return load_sweep(Path(path) / RUNS if is_sweep_dir(path) else path)
