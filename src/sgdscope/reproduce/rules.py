"""Verdict rules shared by the claims: orderings over a grid with seeds, and the reasons a rule
cannot decide. Each takes the table of :func:`sgdscope.analysis.compare` (one row per grid point:
the key, mean, std, n, and each seed's value) and is stated before any result is seen.
"""
from __future__ import annotations

import math

from .claim import Verdict

__all__ = ["ordered", "describe", "too_few"]


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


def ordered(table, key: str, *, falls: bool, what: str) -> Verdict:
    """Does the statistic fall (``falls=True``) or rise as ``key`` grows?

    Rule: with the grid points sorted by ``key``, the claim **holds** when every seed's values
    are strictly monotone in the stated direction; it **does not hold** when every seed's values
    are monotone the other way (or the means are and no seed follows the claim);
    otherwise it is **inconclusive** (seeds disagree). A grid point without a finite value makes it
    inconclusive."""
    table = table.sort_values(key).reset_index(drop=True)
    ours = describe(table, key)
    numbers = {"key": key, "points": table[[key, "mean", "std", "n"]].to_dict("records")}
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
    return Verdict("inconclusive", ours, f"seeds disagree: {sum(seeds_ok)} of {len(seeds_ok)} seeds show {what} {direction} "
                                         f"with {key}", numbers)
