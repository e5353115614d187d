"""Probes from the ``[probes.*]`` tables of a run config."""
from __future__ import annotations

from .. import probes as P

__all__ = ["PROBE_TYPES", "build_probes"]

PROBE_TYPES = {
    "top_eigenvalues": P.top_eigenvalues,
    "hessian_norms": P.hessian_norms,
    "hessian_trace": P.hessian_trace,
    "spectral_density": P.spectral_density,
    "gradient_noise": P.gradient_noise,
    "hessian_noise": P.hessian_noise,
    "alignment": P.alignment,
    "stability": P.stability,
    "loss_change": P.loss_change,
    "distance_from_init": P.distance_from_init,
    "gradient_cosine": P.gradient_cosine,
    "bn_scale_norm": P.bn_scale_norm,
    "interpolation": P.interpolation,
    "sharpest_directions": P.sharpest_directions,
    "predictions": P.predictions,
}


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


def build_probes(tables: dict, *, total_steps: int, test_x=None) -> list:
    """One probe per table; ``predictions`` gets ``test_x``, the fixed test subset."""
    out = []
    for name, table in tables.items():
        kind = table.get("type", name)
        kwargs = {k: v for k, v in table.items() if k not in ("type", "every", "log_spaced", "at", "epoch_end")}
        factory = PROBE_TYPES[kind]
        if kind == "predictions":
            kwargs["x"] = test_x
        out.append(factory(**kwargs, every=_schedule(table, total_steps), name=name))
    return out
