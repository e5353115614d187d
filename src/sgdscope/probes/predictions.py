"""Model predictions on a fixed test subset, for the trajectory embedding (Break-Even Fig. 1)."""
from __future__ import annotations

import torch

from .base import FunctionProbe
from .schedule import as_schedule

__all__ = ["predictions"]


def predictions(x: torch.Tensor, *, every=100, name: str = "predictions", chunk: int = 1024) -> FunctionProbe:
    """Array ``probs`` (n, C): softmax outputs at the parameters after the step, in measurement mode."""

    def fn(ctx):
        p = ctx.problem
        outs = []
        with p.measuring(), torch.no_grad():
            frozen = p.frozen_params()
            for i in range(0, len(x), chunk):
                outs.append(torch.softmax(p.forward(ctx.theta_after, p.place_inputs(x[i : i + chunk]), frozen=frozen), -1))
        return {"probs": torch.cat(outs).float()}

    return FunctionProbe(name, as_schedule(every), fn)
