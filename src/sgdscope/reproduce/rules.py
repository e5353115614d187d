"""Verdict rules shared by the claims: orderings over a grid with seeds, and the reasons a rule
cannot decide. Each takes the table of :func:`sgdscope.analysis.compare` (one row per grid point:
the key, mean, std, n, and each seed's value) and is stated before any result is seen.

:func:`ordering` is the rule shape "a statistic of a metric over a window rises (falls) with a grid
key" as data: it writes the rule's sentence and its check from the same arguments (a
:class:`~.claim.Rule`), with a :class:`Window` (:func:`after_step`, :func:`after_epoch`,
:func:`second_half`) saying which probed steps count.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import numpy as np

from ..analysis import compare
from .claim import Rule, Verdict

__all__ = ["ordered", "describe", "too_few", "effect", "ordering", "Window", "after_step", "after_epoch", "after_share", "second_half",
           "WHOLE_RUN"]


def describe(table, key: str, *, digits: int = 3) -> str:
    """"lr=0.01: 3.31 +- 0.20 (n=2); lr=0.1: 0.68 +- 0.05 (n=2)"."""
    short = key.split(".")[-1]
    parts = []
    for row in table.to_dict("records"):
        spread = "" if math.isnan(row["std"]) else f" +- {row['std']:.{digits}g}"
        parts.append(f"{short}={row[key]:g}: {row['mean']:.{digits}g}{spread} (n={row['n']})")
    return "; ".join(parts)


def too_few(table, key: str, *, least: int = 1) -> str | None:
    """A reason to be inconclusive: grid points with fewer than ``least`` finite values (runs
    diverged or failed, or the metric was never recorded)."""
    short = [f"{key.split('.')[-1]}={row[key]:g} (n={row['n']})" for row in table.to_dict("records") if row["n"] < least]
    return f"too few finite values at {', '.join(short)}" if short else None


def effect(table, key: str) -> dict:
    """The effect size of an ordering: the statistic at the largest grid point over that at the
    smallest, as the ratio of the means, each seed's ratio (its range), and how many seeds move
    the same way as the means. ``{}`` with fewer than two grid points."""
    table = table.sort_values(key).reset_index(drop=True)
    if len(table) < 2:
        return {}
    lo, hi = table.iloc[0], table.iloc[-1]
    first = dict(zip(lo["seeds"], lo["values"]))
    per_seed = {seed: v / first[seed] for seed, v in zip(hi["seeds"], hi["values"])
                if seed in first and first[seed] != 0 and np.isfinite(v) and np.isfinite(first[seed])}
    ratio = float(hi["mean"] / lo["mean"]) if lo["mean"] != 0 else math.nan
    ratios = list(per_seed.values())
    sign = np.sign(ratio - 1) if np.isfinite(ratio) else 0
    agree = sum(1 for r in ratios if sign != 0 and np.sign(r - 1) == sign)
    return {"from": lo[key].item() if hasattr(lo[key], "item") else lo[key],
            "to": hi[key].item() if hasattr(hi[key], "item") else hi[key], "ratio": ratio,
            "seed_min": min(ratios) if ratios else math.nan, "seed_max": max(ratios) if ratios else math.nan,
            "seeds_agree": agree, "seeds": len(ratios)}


def _effect_text(e: dict, key: str) -> str:
    if not e:
        return ""
    short = key.split(".")[-1]
    return (f"effect: {short}={e['to']:g} / {short}={e['from']:g} = x{e['ratio']:.3g} (seeds x{e['seed_min']:.3g} to "
            f"x{e['seed_max']:.3g}; {e['seeds_agree']} of {e['seeds']} seeds move that way)")


def ordered(table, key: str, *, falls: bool, what: str) -> Verdict:
    """Does the statistic fall (``falls=True``) or rise as ``key`` grows?

    Rule: with the grid points sorted by ``key``, the claim **holds** when every seed's values
    are strictly monotone in the stated direction; it **does not hold** when every seed's values
    are monotone the other way (or the means are and no seed follows the claim);
    otherwise it is **inconclusive** (seeds disagree, or no seed is monotone either way). A grid point without a finite value makes it
    inconclusive."""
    table = table.sort_values(key).reset_index(drop=True)
    size = effect(table, key)
    ours = "; ".join(filter(None, [describe(table, key), _effect_text(size, key)]))
    numbers = {"key": key, "points": table[[key, "mean", "std", "n"]].to_dict("records"), "effect": size}
    reason = too_few(table, key)
    if reason or len(table) < 2:
        return Verdict("inconclusive", ours, reason or "fewer than two grid points", numbers)
    per_seed = {}
    for values, seeds in zip(table["values"], table["seeds"]):
        for seed, value in zip(seeds, values):
            per_seed.setdefault(seed, []).append(value)
    sign = -1 if falls else 1

    def monotone(vals, s):
        return all(s * (b - a) > 0 for a, b in zip(vals, vals[1:]))

    seeds_ok = [monotone(v, sign) for v in per_seed.values() if len(v) == len(table)]
    seeds_against = [monotone(v, -sign) for v in per_seed.values() if len(v) == len(table)]
    direction = "falls" if falls else "rises"
    if seeds_ok and all(seeds_ok):
        return Verdict("holds", ours, f"{what} {direction} with {key} for every seed", numbers)
    means = table["mean"].tolist()
    if (seeds_against and all(seeds_against)) or (monotone(means, -sign) and not any(seeds_ok)):
        return Verdict("does not hold", ours, f"{what} does not fall with {key}" if falls else f"{what} does not rise with {key}",
                       numbers)
    if not any(seeds_ok) and not any(seeds_against):
        return Verdict("inconclusive", ours, f"no trend: no seed's {what} is monotone in {key} either way", numbers)
    return Verdict("inconclusive", ours, f"seeds disagree: {sum(seeds_ok)} of {len(seeds_ok)} seeds show {what} {direction} "
                                         f"with {key}", numbers)


def unfinished(frame) -> str | None:
    """A reason to be inconclusive: runs of a sweep frame that did not finish.

    Rule: a run whose ``state`` is not ``done`` (``diverged``, ``failed``, ``interrupted``,
    ``running``) has no whole trajectory to judge, and Break-Even's conjectures are "valid only for
    learning rates and batch sizes that guarantee that training converges" (§3): a claim over such
    a sweep is **inconclusive**, naming each such run and its state ("runs diverged: ..." when all
    of them diverged). A frame without ``run`` and ``state`` columns gives None."""
    if "state" not in frame.columns or "run" not in frame.columns:
        return None
    states = frame.drop_duplicates("run").set_index("run")["state"]
    bad = states[states != "done"]
    if not len(bad):
        return None
    what = "runs diverged" if set(bad) == {"diverged"} else "runs did not finish"
    return f"{what}: " + ", ".join(f"{run} ({state})" for run, state in bad.items())


def every_run(results: dict, *, what: str, numbers: dict | None = None) -> Verdict:
    """Does every run show ``what``? For statements about each trajectory (a correlation before a
    peak, where Delta L first turns negative), not about an ordering across the grid.

    ``results``: ``{run: (shows, ours)}`` where ``shows`` is True (the run shows it), False (the
    run can tell, and does not show it) or a string (why the run cannot tell: too few probe
    points, the peak not reached before the run ended), and ``ours`` the run's numbers in words.

    Rule: the claim **holds** when every run shows it; it **does not hold** when every run can
    tell and none shows it; otherwise it is **inconclusive**: some runs cannot tell (their
    reasons are given), or the runs disagree (k of n show it). No runs: inconclusive."""
    ours = "; ".join(f"{run}: {text}" for run, (_, text) in results.items())
    numbers = numbers if numbers is not None else {}
    if not results:
        return Verdict("inconclusive", ours, "no runs", numbers)
    cannot = {run: shows for run, (shows, _) in results.items() if isinstance(shows, str)}
    if cannot:
        return Verdict("inconclusive", ours, "; ".join(f"{run}: {why}" for run, why in cannot.items()), numbers)
    yes = sum(bool(shows) for shows, _ in results.values())
    if yes == len(results):
        return Verdict("holds", ours, f"every run shows {what}", numbers)
    if yes == 0:
        return Verdict("does not hold", ours, f"no run shows {what}", numbers)
    return Verdict("inconclusive", ours, f"runs disagree: {yes} of {len(results)} runs show {what}", numbers)


def every_finished_run(frame, results: dict, *, what: str, numbers: dict | None = None) -> Verdict:
    """:func:`every_run` over ``results``, unless a run of ``frame`` did not finish
    (:func:`unfinished`): then **inconclusive** with that reason, the runs' numbers kept."""
    reason = unfinished(frame)
    if reason:
        return Verdict("inconclusive", every_run(results, what=what).ours, reason, numbers if numbers is not None else {})
    return every_run(results, what=what, numbers=numbers)


def each_run_shows(frame, judge: Callable, *, what: str) -> Verdict:
    """:func:`every_finished_run` over ``judge(frame, run) -> (shows, text, numbers)`` of every run of
    ``frame``; the runs' numbers under ``numbers["runs"]``."""
    results, numbers = {}, {}
    for run in runs(frame):
        shows, text, numbers[run] = judge(frame, run)
        results[run] = (shows, text)
    return every_finished_run(frame, results, what=what, numbers={"runs": numbers})


def runs(frame) -> list[str]:
    """The runs of a sweep frame, in their order of appearance."""
    return list(dict.fromkeys(frame["run"]))


__all__ += ["unfinished", "every_run", "every_finished_run", "each_run_shows", "runs"]


# --- the ordering rule as data ---------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Window:
    """Which probed steps a statistic reads: ``text`` for the rule's sentence and ``bounds(frame,
    scale) -> dict`` of :func:`~sgdscope.analysis.compare`'s window keywords."""

    text: str
    bounds: Callable


WHOLE_RUN = Window("over the run", lambda frame, scale: {})


def after_step(steps: int | dict) -> Window:
    """From a step on; ``steps`` may map a scale to its step (the first probed step, left out)."""
    def bounds(frame, scale):
        return {"after_step": steps[scale] if isinstance(steps, dict) else steps}

    return Window("after the first probed step", bounds) if isinstance(steps, dict) else \
        Window(f"from step {steps}", bounds)


def after_epoch(epoch: float) -> Window:
    """From an epoch on (the same number of examples seen at every batch size)."""
    return Window(f"after the first {epoch:g} epoch", lambda frame, scale: {"after_epoch": epoch})


def after_share(share: float) -> Window:
    """From ``share`` of the study's last probed step on (0.75: the last quarter of the run)."""
    return Window(f"over the probed steps of the last {1 - share:.0%} of the run (steps >= {share:.0%} of the last "
                  f"probed step)", lambda frame, scale: {"after_step": math.ceil(share * int(frame["step"].max()))})


def second_half() -> Window:
    """The probed steps of the second half of the epochs (``train.epochs`` / 2 on, per the study's config)."""
    return Window("over the probed steps of the second half of the epochs",
                  lambda frame, scale: {"after_epoch": float(frame["train.epochs"].max()) / 2})


def ordering(metric: str, key: str, *, falls: bool, what: str, stat: str = "max", window: Window = WHOLE_RUN) -> Rule:
    """The rule "``stat`` of ``metric`` over ``window`` falls (``falls``) or rises strictly as ``key``
    grows, for every seed" (:func:`ordered`), inconclusive where a run did not finish
    (:func:`unfinished`); its sentence is written from these same arguments."""
    direction = "falls" if falls else "rises"
    text = (f"{stat} of {metric} {window.text} {direction} strictly as {key} grows, for every seed; all seeds the other "
            f"way: does not hold; seeds that disagree, no trend or a run that did not finish: inconclusive; the effect "
            f"is the ratio of the means at the largest and smallest {key}, with each seed's ratio")

    def check(frame, scale) -> Verdict:
        bounds = window.bounds(frame, scale)
        table = compare(frame, metric, stat=stat, by=key, **bounds)
        reason = unfinished(frame)
        if reason:
            return Verdict("inconclusive", describe(table, key), reason,
                           {"key": key, "points": table[[key, "mean", "std", "n"]].to_dict("records"), **bounds})
        v = ordered(table, key, falls=falls, what=what)
        v.numbers.update(bounds)
        return v

    return Rule(text, check)
