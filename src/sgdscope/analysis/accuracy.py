"""Where training accuracy first reaches a threshold, and a metric's value there.

Break-Even marks "epochs at which the training accuracy is larger (for the first time) than a
manually picked threshold" (vertical lines of Fig. 4-6) and reports that lambda_K^1 and
lambda_H^1 peak close to 60% training accuracy on CIFAR-10 (§4.2): comparing runs at equal
accuracy rules out differences in training speed.
"""
from __future__ import annotations

import numpy as np

from .metrics import Metric, one_run, resolve_metric, series
from .trajectory import Point, _NOWHERE, _clean, _point

__all__ = ["TRAIN_ACCURACY", "accuracy_crossing", "value_at_accuracy"]

from ..quantities import TRAIN_ACCURACY  # noqa: E402 (named once, in the vocabulary)


def _first_reaching(traj, threshold: float) -> Point:
    """The first row of a trajectory whose value is >= threshold (NaN / None if none)."""
    traj = _clean(traj)
    hit = np.flatnonzero(traj["value"].to_numpy(dtype=float) >= threshold)
    return _point(traj, int(hit[0])) if len(hit) else _NOWHERE


def accuracy_crossing(df, threshold: float, *, accuracy: str | Metric = TRAIN_ACCURACY,
                      run: str | None = None) -> Point:
    """The first recorded step at which ``accuracy`` (a fraction, default the training-subset
    accuracy of the evaluation probe) is >= ``threshold``, with its epoch and accuracy value:
    Break-Even's vertical lines (Fig. 4-6). ``Point(nan, None, nan)`` if it never gets there.
    ``run`` picks one run of a sweep frame."""
    return _first_reaching(series(df, accuracy, run=run), threshold)


def value_at_accuracy(df, metric: str | Metric, threshold: float, *,
                      accuracy: str | Metric = TRAIN_ACCURACY, run: str | None = None) -> Point:
    """The value of ``metric`` when ``accuracy`` first reaches ``threshold`` (>=), e.g.
    lambda_K^1 at 60% training accuracy (Break-Even §4.2, Fig. 4-5).

    No interpolation in value: the metric is read at the first step *at or after* the accuracy
    crossing at which it was recorded (the nearest later record, so a metric logged less often
    than the accuracy is read after, never before, the threshold is reached). Returns
    ``Point(value, step, epoch)`` of that record; ``Point(nan, None, nan)`` if the accuracy never
    reaches the threshold or the metric has no record from then on."""
    df = one_run(df, run)
    m = resolve_metric(df, metric)
    at = accuracy_crossing(df, threshold, accuracy=accuracy)
    if at.step is None:
        return at
    traj = _clean(series(df, m))
    later = np.flatnonzero(traj["step"].to_numpy() >= at.step)
    return _point(traj, int(later[0])) if len(later) else _NOWHERE
