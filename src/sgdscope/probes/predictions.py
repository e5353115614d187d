"""Model predictions on a fixed test subset, for the trajectory embedding (Break-Even Fig. 1)."""
from __future__ import annotations

import torch

from .base import FunctionProbe
from .schedule import as_schedule

__all__ = ["predictions"]


def predictions(x: torch.Tensor, *, every=100, name: str = "predictions", chunk: int = 1024) -> FunctionProbe:
    """Array ``probs`` (n, C): softmax outputs at the parameters after the step, in measurement mode."""

    def fn(ctx):
        return {"probs": torch.softmax(ctx.problem.outputs(ctx.theta_after, x, chunk=chunk), -1).float()}

    return FunctionProbe(name, as_schedule(every), fn, before=False, type="predictions")
