"""Statistics along one trajectory: one number from the ``(step, value)`` rows of one run.

A trajectory is the frame of :func:`~sgdscope.analysis.series` for one run (columns ``step``,
``value``, optionally ``epoch``). NaN values (a probe that failed at a step) are skipped; inf
(a diverged run) is kept. An empty trajectory gives NaN. A statistic is named by a spec string,
the form ``sgdscope compare --stat`` and the claims use:

``max``, ``min``, ``mean``, ``last``   the value (largest, smallest, average, at the last step)
``argmax``                             the step of the (first) largest value
``first_below:X``                      the first step whose value is < X (NaN if none)

Break-Even compares the maximum of lambda_K^1, lambda_H^1 and lambda_K^*/lambda_K^1 along the
trajectory across learning rates and batch sizes (Fig. 4-5, Conjectures 1-2); ``first_below``
dates when a quantity such as the loss falls below a level.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

__all__ = ["Point", "Stat", "STATS", "parse_stat", "apply_stat", "peak"]

STATS = ("max", "min", "mean", "last", "argmax", "argmax_epoch", "first_below:X")
_PLAIN = ("max", "min", "mean", "last", "argmax", "argmax_epoch")
_WITH_X = ("first_below",)


class Point(NamedTuple):
    """A value on a trajectory and where: ``step`` (None where there is none) and ``epoch``."""

    value: float
    step: int | None
    epoch: float


_NOWHERE = Point(math.nan, None, math.nan)


def _clean(traj):
    """The finite-or-inf rows of one trajectory, sorted by step."""
    if "run" in traj.columns and traj["run"].nunique() > 1:
        raise ValueError(f"one trajectory expected, got {traj['run'].nunique()} runs; "
                         "select one with series(df, metric, run=...)")
    missing = {"step", "value"} - set(traj.columns)
    if missing:
        raise ValueError(f"a trajectory needs columns step and value; missing {sorted(missing)} "
                         f"(columns: {list(traj.columns)})")
    traj = traj[traj["value"].notna()]
    return traj.sort_values("step", kind="stable")


def _point(traj, i: int) -> Point:
    row = traj.iloc[i]
    epoch = float(row["epoch"]) if "epoch" in traj.columns else math.nan
    return Point(float(row["value"]), int(row["step"]), epoch)


def peak(traj) -> Point:
    """The largest value of a trajectory and its (first) step and epoch: Break-Even's
    "maximum lambda_K^1 / lambda_H^1 along the trajectory" (Fig. 4-5) and the break-even point's
    step, where training turns unstable (§4.1). NaN and step None if the trajectory is empty."""
    traj = _clean(traj)
    if not len(traj):
        return _NOWHERE
    return _point(traj, int(np.argmax(traj["value"].to_numpy())))


@dataclass(frozen=True)
class Stat:
    """A parsed statistic: ``kind`` (one of max, min, mean, last, argmax (the step of the maximum),
    argmax_epoch (its epoch: the same examples seen at every batch size), first_below) and
    ``x`` (the level of first_below). Call it on a trajectory to get a float."""

    kind: str
    x: float | None = None

    @property
    def gives_step(self) -> bool:
        """True where the result is a step (argmax, first_below), not a value of the metric."""
        return self.kind in ("argmax", "argmax_epoch", "first_below")

    def __str__(self) -> str:
        return self.kind if self.x is None else f"{self.kind}:{self.x:g}"

    def __call__(self, traj) -> float:
        traj = _clean(traj)
        if not len(traj):
            return math.nan
        v = traj["value"].to_numpy(dtype=float)
        if self.kind == "max":
            return float(v.max())
        if self.kind == "min":
            return float(v.min())
        if self.kind == "mean":
            return float(v.mean())
        if self.kind == "last":
            return float(v[-1])
        if self.kind == "argmax":
            return float(traj["step"].iloc[int(np.argmax(v))])
        if self.kind == "argmax_epoch":
            return float(traj["epoch"].iloc[int(np.argmax(v))])
        below = np.flatnonzero(v < self.x)
        return float(traj["step"].iloc[below[0]]) if len(below) else math.nan


def _bad(spec, why: str) -> ValueError:
    return ValueError(f"unknown statistic {spec!r} ({why}); allowed: {', '.join(STATS)} "
                      "(X a number, e.g. 'first_below:0.5')")


def parse_stat(spec: str | Stat) -> Stat:
    """The :class:`Stat` of a spec string (``"max"``, ``"first_below:0.5"``, ...; see
    :data:`STATS`). ``ValueError`` names the spec and the allowed ones."""
    if isinstance(spec, Stat):
        return spec
    if not isinstance(spec, str):
        raise _bad(spec, "a statistic is a string")
    kind, sep, arg = spec.strip().partition(":")
    if kind in _PLAIN:
        if sep:
            raise _bad(spec, f"{kind} takes no ':' argument")
        return Stat(kind)
    if kind in _WITH_X:
        try:
            x = float(arg)
        except ValueError:
            raise _bad(spec, f"{kind} needs a number after ':'") from None
        if math.isnan(x):
            raise _bad(spec, f"{kind} needs a number after ':', not nan")
        return Stat(kind, x)
    raise _bad(spec, "not a known name")


def apply_stat(traj, spec: str | Stat) -> float:
    """The statistic ``spec`` of one trajectory (see :func:`parse_stat`): a value of the metric,
    or a step (as a float) for argmax and first_below; NaN for an empty trajectory or a
    first_below level never crossed."""
    return parse_stat(spec)(traj)
