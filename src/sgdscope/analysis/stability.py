"""How often the loss goes up after a step, before and after the break-even point.

Break-Even §4.1 (Fig. 2, right): training is generally stable (Delta L > 0, the step reduced
the loss) before lambda_K^1 reaches its maximum, and Delta L < 0 appears as it does.
"""
from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

from .metrics import Metric, one_run, series
from .trajectory import _clean, peak

__all__ = ["NegativeFraction", "negative_fraction"]


class NegativeFraction(NamedTuple):
    """Fractions of negative values ``before`` (steps <= ``split_step``) and ``after`` (steps >
    ``split_step``), over ``n_before`` and ``n_after`` recorded values (NaN where a side is
    empty)."""

    before: float
    after: float
    n_before: int
    n_after: int
    split_step: int | None


def _fraction(values: np.ndarray) -> float:
    return float(np.mean(values < 0)) if len(values) else math.nan


def negative_fraction(df, metric: str | Metric = "loss_change/delta_loss", *,
                      split_step: int | None = None,
                      split_of: str | Metric = "gradient_noise/lambda_1",
                      run: str | None = None) -> NegativeFraction:
    """The fraction of negative values of ``metric`` (default Delta L = L(before) - L(after) of
    the loss_change probe) at steps up to ``split_step`` (inclusive) and after it.

    ``split_step`` defaults to the step of the maximum of ``split_of`` (lambda_K^1 of the
    gradient_noise probe: the break-even point); if that metric has no values the split is None
    and every value counts as ``before``. NaN values are not counted. Break-Even §4.1: ``after``
    should exceed ``before``. ``run`` picks one run of a sweep frame."""
    df = one_run(df, run)
    traj = _clean(series(df, metric))
    if split_step is None:
        split_step = peak(series(df, split_of)).step
    v, steps = traj["value"].to_numpy(dtype=float), traj["step"].to_numpy()
    first = steps <= split_step if split_step is not None else np.ones(len(v), bool)
    return NegativeFraction(_fraction(v[first]), _fraction(v[~first]), int(first.sum()),
                            int((~first).sum()), split_step)
