"""The correlation of two metrics over the steps up to the peak of one of them.

Break-Even's theory assumes that lambda_K^1 and lambda_H^1 are correlated early in training,
"at least prior to reaching the break-even point" (§4.1, Fig. 2): after lambda_H^1 peaks it
decays while lambda_K^1 may keep growing, so the correlation is taken before the peak.
"""
from __future__ import annotations

import math
from typing import NamedTuple

from .metrics import Metric, one_run, series
from .trajectory import _clean, peak

__all__ = ["Correlation", "correlation_before_peak"]

_METHODS = ("pearson", "spearman")


class Correlation(NamedTuple):
    """``r`` (NaN with fewer than 2 common steps or a constant series), ``n`` the common steps
    used, ``peak_step`` the step of the peak that ends the window (None if ``peak_of`` is empty)."""

    r: float
    n: int
    peak_step: int | None


def correlation_before_peak(df, x: str | Metric, y: str | Metric, *,
                            peak_of: str | Metric | None = None, method: str = "pearson",
                            run: str | None = None) -> Correlation:
    """The ``method`` ("pearson" or "spearman", rank) correlation of metrics ``x`` and ``y`` over
    the steps at which both were recorded (NaN dropped) up to and including the step of the
    maximum of ``peak_of`` (default ``y``; the first step if the maximum repeats).

    Break-Even Fig. 2 / §4.1: ``correlation_before_peak(df, "gradient_noise/lambda_1",
    "top_eigenvalues/lambda_1")`` (lambda_K^1 against lambda_H^1 before lambda_H^1 peaks).
    ``run`` picks one run of a sweep frame."""
    if method not in _METHODS:
        raise ValueError(f"method must be one of {_METHODS}, got {method!r}")
    df = one_run(df, run)
    xs, ys = _clean(series(df, x)), _clean(series(df, y))
    top = peak(ys if peak_of is None else series(df, peak_of))
    if top.step is None:
        return Correlation(math.nan, 0, None)
    both = xs[["step", "value"]].merge(ys[["step", "value"]], on="step", suffixes=("_x", "_y"))
    both = both[both["step"] <= top.step]
    n = len(both)
    if n < 2:
        return Correlation(math.nan, n, top.step)
    r = both["value_x"].corr(both["value_y"], method=method)
    return Correlation(float(r), n, top.step)
