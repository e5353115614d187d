"""The regime a claim is about: its preconditions, checked on the runs' own measurements.

A paper states each claim about a regime ("Assuming that real DNNs reach the break-even point",
Break-Even §3). A :class:`Precondition` names that regime in the paper's words with the section,
says how it is tested on a stored run, and what would reach it when a run does not; its ``check``
reads the study's sweep frame and gives, per run, whether the run is inside and the measurement
that shows it. :func:`judge` applies a claim's preconditions before its rule: a claim any of whose
runs is outside the regime is **out of regime**, with those runs, their measurements and the
remedy, and ``holds`` / ``does not hold`` are only ever said of runs inside it.

The constructors below build the preconditions that recur (a metric reaching a level, the maximum
of a metric inside the run, enough probed steps); the papers' own are in their claim modules.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import numpy as np

from ..analysis import series
from ..analysis.metrics import MissingMetric
from .claim import Claim, Verdict
from .rules import runs, unfinished

__all__ = ["Precondition", "RunRegime", "assess", "outside", "judge", "reaches", "peak_inside", "probed_at_least", "each_run", "run_value", "trajectory"]


@dataclass(frozen=True)
class RunRegime:
    """One run against one precondition: ``inside`` the regime or not, and ``measured``, the
    measurement that shows it ("max Eq. 1 LHS = 1.32 at step 120")."""

    inside: bool
    measured: str
    numbers: dict


@dataclass(frozen=True)
class Precondition:
    """``key`` (a short name), ``paper`` (the regime in the paper's words, with the section),
    ``test`` (how it is checked on a run, in words), ``remedy`` (what would reach it), and
    ``check(frame, scale) -> {run: RunRegime}``."""

    key: str
    paper: str
    test: str
    remedy: str
    check: Callable

    def describe(self) -> str:
        return f"{self.key}: {self.test} ({self.paper})"


def assess(preconditions, frame, scale: str) -> list[dict]:
    """Each precondition on every run of ``frame``: ``{"key", "paper", "test", "remedy", "inside"
    (every run inside), "runs": {run: {"inside", "measured", **numbers}}}``."""
    out = []
    for p in preconditions:
        per_run = p.check(frame, scale)
        out.append({"key": p.key, "paper": p.paper, "test": p.test, "remedy": p.remedy,
                    "inside": bool(per_run) and all(r.inside for r in per_run.values()),
                    "runs": {run: {"inside": r.inside, "measured": r.measured, **r.numbers} for run, r in per_run.items()}})
    return out


def outside(regime: list[dict]) -> str:
    """The reason of an ``out of regime`` verdict: each failed precondition, the runs outside it
    with their measurements, and the remedy; "" when every run is inside every precondition."""
    parts = []
    for r in regime:
        if r["inside"]:
            continue
        bad = [f"{run}: {v['measured']}" for run, v in r["runs"].items() if not v["inside"]] or ["no runs"]
        parts.append(f"{r['key']} not met ({r['test']}): {'; '.join(bad)}; to reach it: {r['remedy']}")
    return " | ".join(parts)


def judge(claim: Claim, frame, scale: str) -> tuple[Verdict, list[dict]]:
    """The claim's verdict and its regime: the rule's verdict when every run is inside every
    precondition, otherwise ``out of regime`` (our numbers kept, the rule's verdict not said). A
    sweep with a run that did not finish keeps the rule's ``inconclusive`` (:func:`~.rules.unfinished`
    names the runs): such a run has no whole trajectory to place inside or outside a regime."""
    regime = assess(claim.preconditions, frame, scale)
    verdict = claim.check(frame, scale)
    reason = outside(regime)
    if reason and not (verdict.verdict == "inconclusive" and unfinished(frame)):
        return Verdict("out of regime", verdict.ours, reason, verdict.numbers), regime
    return verdict, regime


# --- constructors -------------------------------------------------------------------------------------------------

def run_value(frame, run: str, column: str, default=math.nan) -> float:
    """A run's config value ``column`` ("optimizer.lr") from the sweep frame; ``default`` where absent."""
    if column not in frame.columns:
        return default
    values = frame.loc[frame["run"] == run, column].dropna()
    return float(values.iloc[0]) if len(values) else default


def trajectory(frame, run: str, metric: str, after_step: int = 0, after_epoch: float = 0.0):
    """The run's probed values of ``metric`` in the window, by step; empty where it was not recorded."""
    try:
        traj = series(frame, metric, run=run).dropna(subset=["value"])
    except MissingMetric:
        return frame.iloc[:0].assign(step=[], epoch=[], value=[])
    return traj[(traj["step"] >= after_step) & (traj["epoch"] >= after_epoch - 1e-12)].sort_values("step")


def reaches(metric: str, level: float, *, key: str, paper: str, remedy: str, what: str | None = None,
            digits: int = 3) -> Precondition:
    """Inside when ``metric`` reaches ``level`` (>=) at some probed step of the run."""
    what = what or metric

    def check(frame, scale):
        out = {}
        for run in runs(frame):
            traj = trajectory(frame, run, metric)
            if not len(traj):
                out[run] = RunRegime(False, f"{metric} not recorded", {})
                continue
            i = int(np.argmax(traj["value"].to_numpy()))
            best, step = float(traj["value"].iloc[i]), int(traj["step"].iloc[i])
            first = traj[traj["value"] >= level]
            numbers = {"max": best, "max_step": step, "first_step": int(first["step"].iloc[0]) if len(first) else None}
            at = f", first at step {numbers['first_step']}" if len(first) else ""
            out[run] = RunRegime(best >= level, f"max {what} = {best:.{digits}g} at step {step}{at}", numbers)
        return out

    return Precondition(key, paper, f"{what} >= {level:g} at some probed step", remedy, check)


def peak_inside(metric: str, *, what: str, paper: str, after_step: int | dict = 0, after_epoch: float = 0.0,
                key: str | None = None, before_share: float = 1.0, remedy: str = "train longer") -> Precondition:
    """Inside when the maximum of ``metric`` (over the probed steps from ``after_step`` / ``after_epoch``)
    lies before the run's last probed step: the peak was reached and followed by lower values. With
    ``before_share`` < 1, the maximum must lie before that share of the last probed step (a settled
    phase of at least the rest of the run after it). ``after_step`` may map a scale to its step."""

    def check(frame, scale):
        start = after_step.get(scale, 0) if isinstance(after_step, dict) else after_step
        out = {}
        for run in runs(frame):
            traj = trajectory(frame, run, metric, start, after_epoch)
            if len(traj) < 2:
                out[run] = RunRegime(False, f"{len(traj)} probed steps of {metric}", {"n": len(traj)})
                continue
            i = int(np.argmax(traj["value"].to_numpy()))
            step, last = int(traj["step"].iloc[i]), int(traj["step"].iloc[-1])
            inside = i < len(traj) - 1 and (before_share >= 1 or step < before_share * last)
            out[run] = RunRegime(inside, f"max {what} at step {step} of {last}",
                                 {"peak_step": step, "last_step": last, "n": len(traj)})
        return out

    where = "before the run's last probed step" if before_share >= 1 else \
        f"before {before_share:.0%} of the run's last probed step"
    return Precondition(key or f"peak_inside({metric})", paper, f"the maximum of {what} {where}", remedy, check)


def probed_at_least(metric: str, least: int, *, key: str, paper: str, remedy: str, before: Callable | None = None,
                    after: Callable | None = None, after_epoch: float | None = None,
                    what: str = "probed steps") -> Precondition:
    """Inside when ``metric`` was recorded at ``least`` probed steps or more; with ``before(traj)``
    (a step), only those up to and including that step count; with ``after(traj)`` (a step), only
    those from that step on; with ``after_epoch``, only those at a later epoch."""

    def check(frame, scale):
        out = {}
        for run in runs(frame):
            traj = trajectory(frame, run, metric)
            if after_epoch is not None:
                traj = traj[traj["epoch"] > after_epoch + 1e-9]
            upto = before(traj) if before is not None and len(traj) else None
            start = after(traj) if after is not None and len(traj) else None
            keep = np.ones(len(traj), dtype=bool)
            if upto is not None:
                keep &= (traj["step"] <= upto).to_numpy()
            if start is not None:
                keep &= (traj["step"] >= start).to_numpy()
            n = int(keep.sum())
            at = (f" up to step {upto}" if upto is not None else "") + (f" from step {start}" if start is not None else "")
            at += f" after epoch {after_epoch:g}" if after_epoch is not None else ""
            out[run] = RunRegime(n >= least, f"{n} {what}{at}", {"n": n})
        return out

    return Precondition(key, paper, f"at least {least} {what} of {metric}", remedy, check)


def each_run(key: str, *, paper: str, test: str, remedy: str, check_run: Callable) -> Precondition:
    """A precondition from a per-run test: ``check_run(frame, run, scale) -> (inside, measured, numbers)``."""

    def check(frame, scale):
        return {run: RunRegime(*check_run(frame, run, scale)) for run in runs(frame)}

    return Precondition(key, paper, test, remedy, check)
