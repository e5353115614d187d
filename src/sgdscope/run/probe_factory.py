"""Probes from the ``[probes.*]`` tables of a run config."""
from __future__ import annotations

from .. import probes as P

__all__ = ["PROBE_TYPES", "build_probes"]

PROBE_TYPES = P.BY_TYPE
_FROM_DATA = ("x", "sets")  # filled from the data, not the config: predictions' inputs, evaluation's sets


def _schedule(table: dict, total_steps: int) -> P.Schedule:
    parts = []
    if "every" in table:
        parts.append(P.as_schedule(table["every"]))
    if "log_spaced" in table:
        parts.append(P.log_spaced(int(table["log_spaced"]), max(total_steps - 1, 0)))
    if "at" in table:
        parts.append(P.at(table["at"]))
    if table.get("epoch_end"):
        parts.append(P.epoch_end())
    if not parts:
        return P.never()
    sched = parts[0]
    for p in parts[1:]:
        sched = sched | p
    return sched


def build_probes(tables: dict, *, total_steps: int, test_x=None, evaluation_sets=None) -> list:
    """One probe per table, named by the table; ``predictions`` gets ``test_x`` (the fixed test
    subset), ``evaluation`` gets ``evaluation_sets`` (``{"train": (X, Y), ...}``)."""
    out = []
    for name, table in tables.items():
        kind = table.get("type", name)
        kwargs = {k: v for k, v in table.items() if k not in ("type", "every", "log_spaced", "at", "epoch_end")}
        factory = PROBE_TYPES[kind]
        if kind == "predictions":
            kwargs["x"] = test_x
        if kind == "evaluation":
            kwargs["sets"] = evaluation_sets
        out.append(factory(**kwargs, every=_schedule(table, total_steps), name=name))
    return out
