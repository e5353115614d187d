"""Barriers crossed per epoch, from the interpolation probe.

A Walk with SGD counts, per epoch, the update steps whose interpolation between the parameters
before and after crosses a barrier (an interior point above both ends): Table 1 and Fig. 4
("SGD rarely crosses barriers").
"""
from __future__ import annotations

import numpy as np

from .metrics import is_sweep, one_run, resolve_metric, series
from .windows import _EPS

__all__ = ["epoch_number", "barriers_per_epoch"]

CROSSED, BARRIERS_EPOCH, PROBED_EPOCH = (
    "interpolation/crossed", "interpolation/barriers_epoch", "interpolation/probed_epoch")


def epoch_number(epoch):
    """The 1-based epoch a step belongs to: ``ceil(epoch)`` of its recorded epoch. The trainer
    records the epochs completed after the step, in (k - 1, k] for the steps of the k-th epoch
    (the epoch-end rows at exactly k); a loop that logs an integer epoch counter e gets e.
    Works on a scalar, an array or a Series."""
    return np.ceil(np.asarray(epoch, dtype=float) - _EPS).astype("int64")


def _per_epoch(df, metric: str):
    s = series(df, metric)
    if s["epoch"].isna().any():
        raise ValueError(f"{metric} rows without an epoch (the Scope was called without "
                         "epoch=); barriers per epoch need the epoch of each step")
    s = s.assign(epoch=epoch_number(s["epoch"]))
    return s[s["value"].notna()]


def barriers_per_epoch(df, *, run: str | None = None):
    """One row per epoch (1-based, see :func:`epoch_number`) of the interpolation probe:

    * ``crossed``: the sum of "interpolation/crossed" (0/1 per probed step) over the epoch's
      steps, i.e. the barriers crossed; ``probed``: how many steps were probed;
    * where the frame has them, ``barriers_epoch`` and ``probed_epoch``: the probe's own counts
      recorded at the epoch's end (equal to crossed and probed when every probed step is stored).

    A sweep frame without ``run`` gives these per run (a ``run`` column first). Walk Table 1,
    Fig. 4. ``KeyError`` names the interpolation probe if the frame has no crossed rows."""
    if run is not None:
        df = one_run(df, run)
    keys = ["run", "epoch"] if is_sweep(df) and run is None else ["epoch"]
    crossed = _per_epoch(df, CROSSED)
    out = crossed.groupby(keys, sort=True)["value"].agg(crossed="sum", probed="count").reset_index()
    out["probed"] = out["probed"].astype("int64")
    for metric in (BARRIERS_EPOCH, PROBED_EPOCH):
        try:
            resolve_metric(df, metric)
        except KeyError:
            continue
        name = metric.split("/")[1]
        at_end = _per_epoch(df, metric).groupby(keys, sort=True)["value"].last().rename(name)
        out = out.merge(at_end.reset_index(), on=keys, how="outer")
    return out.sort_values(keys, ignore_index=True)
