"""Across a sweep: which config keys vary, one statistic per run, and its spread over seeds.

The papers' comparisons are across a grid: Break-Even's maximum lambda_K^1, lambda_H^1 and
lambda_K^*/lambda_K^1 against the learning rate and the batch size (Fig. 4-5, Conjectures 1-2),
Walk's barriers against the architecture (Table 1). ``compare`` gives one row per grid point
with the seeds' mean, standard deviation and values: what ``sgdscope compare`` prints and the
claims' verdicts read.
"""
from __future__ import annotations

import math
import numbers
from typing import Sequence

import numpy as np

from ..store.reader import SWEEP_COLUMNS
from .accuracy import TRAIN_ACCURACY
from .metrics import Metric, resolve_metric
from .trajectory import Stat, parse_stat
from .windows import window

__all__ = ["LABEL_KEYS", "config_columns", "varied_keys", "per_run", "compare"]

# per-run labels and paths of a config, never grid axes ("name" clashes with the tidy column,
# so load_sweep calls it "config.name")
LABEL_KEYS = ("config.name", "name", "out")


def _require_sweep(df, what: str):
    if "run" not in df.columns:
        raise ValueError(f"{what} needs a sweep frame (sgdscope.load_sweep: a 'run' column); "
                         f"got columns {list(df.columns)}")


def config_columns(sweep_df) -> list[str]:
    """The flattened config columns of a sweep frame: all but run, state and the tidy columns."""
    _require_sweep(sweep_df, "config_columns")
    return [c for c in sweep_df.columns if c not in SWEEP_COLUMNS]


def _configs(sweep_df):
    """One row per run (in the frame's order): run and its config columns."""
    first = sweep_df.drop_duplicates("run")
    return first[["run", *config_columns(sweep_df)]].reset_index(drop=True)


def _is_grid_value(values) -> bool:
    return all(isinstance(v, (numbers.Number, np.bool_)) for v in values)


def varied_keys(sweep_df) -> list[str]:
    """The config keys that take more than one value across the runs (a run without the key
    counts as one more value), in column order: the grid axes plus the seed.

    Excluded: the per-run labels :data:`LABEL_KEYS` (the config's ``name``, stored as
    ``config.name``, and ``out``), and the keys that look like labels (values not numbers or
    bools, different in every run) when the other varied keys already tell every run apart. A
    non-numeric axis (``optimizer.name``) is not unique per run once there are several seeds or
    another axis; where it is (one seed, one axis) it stays, beside any label-like key."""
    runs = _configs(sweep_df)
    varied = [c for c in runs.columns[1:]
              if c not in LABEL_KEYS and runs[c].nunique(dropna=False) > 1]

    def label_like(c):
        return not _is_grid_value(runs[c].dropna()) and runs[c].nunique(dropna=False) == len(runs)

    labels = [c for c in varied if label_like(c)]
    grid = [c for c in varied if c not in labels]
    if labels and grid and not runs.duplicated(grid).any():
        return grid
    return varied


def _seed_keys(seed_key) -> list[str]:
    return [seed_key] if isinstance(seed_key, str) else list(seed_key)


def per_run(sweep_df, metric: str | Metric, *, stat: str | Stat = "max",
            after_step: int | None = None, after_epoch: float | None = None,
            until_accuracy: float | None = None, accuracy: str | Metric = TRAIN_ACCURACY):
    """One row per run: ``run``, its :func:`varied_keys` values, and ``value``, the statistic
    ``stat`` (see :func:`~sgdscope.analysis.parse_stat`) of ``metric`` inside the window (see
    :func:`~sgdscope.analysis.window`). A run without rows of the metric, or with none in the
    window, has NaN. ``KeyError`` (naming the probe to add) if no run has the metric."""
    _require_sweep(sweep_df, "per_run")
    stat = parse_stat(stat)
    m = resolve_metric(sweep_df, metric)
    runs = _configs(sweep_df)[["run", *varied_keys(sweep_df)]]
    df = window(sweep_df, after_step=after_step, after_epoch=after_epoch,
                until_accuracy=until_accuracy, accuracy=accuracy)
    rows = df.loc[m.mask(df), ["run", "step", "epoch", "value"]]
    values = {run: stat(traj) for run, traj in rows.groupby("run", sort=False)}
    return runs.assign(value=[values.get(r, math.nan) for r in runs["run"]])


def compare(sweep_df, metric: str | Metric, *, stat: str | Stat = "max",
            after_step: int | None = None, after_epoch: float | None = None,
            until_accuracy: float | None = None, accuracy: str | Metric = TRAIN_ACCURACY,
            by: str | Sequence[str] | None = None, seed_key: str | Sequence[str] = "seed"):
    """The statistic ``stat`` of ``metric`` per run (:func:`per_run`, same window arguments),
    summarised per grid point: one row per value of ``by`` (default: the varied keys other than
    ``seed_key``), sorted by them, with columns

    * the ``by`` keys; ``mean``, ``std`` (ddof=1; NaN for fewer than 2 values) and ``n`` over the
      group's runs with a non-NaN value;
    * ``seeds``, ``values``, ``runs``: tuples, one entry per run of the group, ordered by seed
      (``seeds`` holds the ``seed_key`` value, a tuple of them for several keys, None if the
      frame has no such column).

    E.g. Break-Even Fig. 4: ``compare(sweep, "gradient_noise/lambda_1", until_accuracy=0.6)``
    over a learning-rate grid: the mean maximum lambda_K^1 should fall as the learning rate grows.
    """
    import pandas as pd

    _require_sweep(sweep_df, "compare")
    seeds = _seed_keys(seed_key)
    runs = per_run(sweep_df, metric, stat=stat, after_step=after_step, after_epoch=after_epoch,
                   until_accuracy=until_accuracy, accuracy=accuracy)
    if by is None:
        keys = [k for k in runs.columns[1:-1] if k not in seeds]
    else:
        keys = [by] if isinstance(by, str) else list(by)
        unknown = [k for k in keys if k not in config_columns(sweep_df)]
        if unknown:
            raise KeyError(f"by={unknown} not among the sweep's config columns: "
                           f"{', '.join(config_columns(sweep_df))}")
    configs = _configs(sweep_df).set_index("run")
    present = [k for k in seeds if k in configs.columns]

    def seed_of(run):
        values = configs.loc[run, present].tolist()
        return None if not present else values[0] if len(present) == 1 else tuple(values)

    runs = runs[["run", "value"]].assign(
        **{k: configs.loc[runs["run"], k].to_numpy() for k in keys},
        _seed=[seed_of(r) for r in runs["run"]])
    if present:
        runs = runs.sort_values("_seed", kind="stable")
    groups = runs.groupby(keys, sort=True, dropna=False) if keys else [((), runs)]
    out = []
    for key, g in groups:
        v = g["value"].to_numpy(dtype=float)
        ok = v[~np.isnan(v)]
        key = key if isinstance(key, tuple) else (key,)
        out.append({**dict(zip(keys, key)),
                    "mean": float(ok.mean()) if len(ok) else math.nan,
                    "std": float(ok.std(ddof=1)) if len(ok) > 1 else math.nan,
                    "n": len(ok), "seeds": tuple(g["_seed"]), "values": tuple(v.tolist()),
                    "runs": tuple(g["run"])})
    return pd.DataFrame(out, columns=[*keys, "mean", "std", "n", "seeds", "values", "runs"])


def seed_columns(table):
    """A :func:`compare` table for reading: the ``seeds`` / ``values`` tuples spread into one
    column per seed (``seed=0``, ``seed=1``, ...), ``runs`` dropped."""
    out = table.drop(columns=["seeds", "values", "runs"])
    seeds = sorted({s for row in table["seeds"] for s in row}, key=repr)
    for seed in seeds:
        out[f"seed={seed}"] = [dict(zip(row_seeds, row_values)).get(seed, math.nan)
                               for row_seeds, row_values in zip(table["seeds"], table["values"])]
    return out
