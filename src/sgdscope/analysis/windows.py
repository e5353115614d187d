"""Windows of training: the rows after a step, after an epoch, or until an accuracy is reached.

A window keeps whole steps of a tidy frame (every metric at a kept step), per run in a sweep,
so any statistic can then be taken over it. Break-Even compares its maxima "before reaching"
a training accuracy (vertical lines of Fig. 4-6; lambda_K^1 and lambda_H^1 peak near 60% on
CIFAR-10, §4.2); skipping the first steps or epochs keeps an initial transient out of a maximum.
"""
from __future__ import annotations

import math

import numpy as np

from .accuracy import TRAIN_ACCURACY, _first_reaching
from .metrics import Metric, is_sweep, series

__all__ = ["window", "crossing_steps"]

_EPS = 1e-9  # epochs are fractions such as k + i / steps_per_epoch


def crossing_steps(df, threshold: float, *, accuracy: str | Metric = TRAIN_ACCURACY) -> dict:
    """``{run: first step with accuracy >= threshold, or None}`` for a sweep frame, ``{None: step}``
    for one run's frame. ``KeyError`` if the accuracy metric is missing, or names the runs of a
    sweep that never recorded it (they cannot be windowed)."""
    acc = series(df, accuracy)
    if not is_sweep(df):
        return {None: _first_reaching(acc, threshold).step}
    lacking = sorted(set(df["run"]) - set(acc["run"]))
    if lacking:
        raise KeyError(f"runs without {accuracy!s} rows cannot be cut at an accuracy: "
                       f"{', '.join(lacking)}")
    return {run: _first_reaching(traj, threshold).step
            for run, traj in acc.groupby("run", sort=False)}


def window(df, *, after_step: int | None = None, after_epoch: float | None = None,
           until_accuracy: float | None = None, accuracy: str | Metric = TRAIN_ACCURACY):
    """The rows of ``df`` (tidy, one run or a sweep) inside a window; all bounds inclusive:

    * ``after_step=S``: steps >= S;
    * ``after_epoch=E``: recorded epoch >= E (the trainer records the epochs completed after
      the step, so ``after_epoch=1`` starts at the last step of the first epoch);
    * ``until_accuracy=A``: steps <= the first step at which ``accuracy`` (default the
      training-subset accuracy) is >= A, per run. A run that never reaches A keeps all its
      rows (its whole record lies before the crossing).

    Rows without an epoch (NaN: a Scope called without ``epoch=``) fall outside ``after_epoch``.
    No bound given: ``df`` unchanged."""
    import pandas as pd

    keep = pd.Series(True, index=df.index)
    if after_step is not None:
        keep &= df["step"] >= after_step
    if after_epoch is not None:
        keep &= df["epoch"] >= after_epoch - _EPS
    if until_accuracy is not None:
        steps = {run: math.nan if step is None else step
                 for run, step in crossing_steps(df, until_accuracy, accuracy=accuracy).items()}
        limit = df["run"].map(steps) if is_sweep(df) else steps[None]
        keep &= (df["step"] <= limit) | np.isnan(limit)
    return df[keep]
