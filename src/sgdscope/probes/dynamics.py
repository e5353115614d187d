"""Training-dynamics probes: cheap quantities of the step itself.

* ``loss_change``: Delta L = L(theta_before) - L(theta_after) on the curvature subset
  (Break-Even §4.1: training is stable while Delta L > 0), in the problem's ``bn_mode``.
* ``distance_from_init``: ||theta - theta_0||.
* ``gradient_cosine``: cos(g_{t-1}, g_t) of consecutive training mini-batch gradients (Walk eq. 5).
* ``bn_scale_norm``: ||gamma|| of the last batch-norm layer and of all of them (Break-Even §4.3).
* ``evaluation``: loss and accuracy of the model on fixed sets (train subset, validation).
"""
from __future__ import annotations

import torch
from torch import nn

from .base import FunctionProbe
from .schedule import as_schedule

__all__ = ["loss_change", "distance_from_init", "gradient_cosine", "bn_scale_norm", "evaluation"]


def loss_change(*, every=100, name: str = "loss_change") -> FunctionProbe:
    """``delta_loss`` = L(before) - L(after), ``loss_before``, ``loss_after`` on the curvature subset."""

    def fn(ctx):
        before = float(ctx.problem.loss(ctx.theta_before))
        after = ctx.loss_after()
        return {"delta_loss": before - after, "loss_before": before, "loss_after": after}

    return FunctionProbe(name, as_schedule(every), fn, type="loss_change")


def distance_from_init(*, every=100, name: str = "distance_from_init") -> FunctionProbe:
    """``from_init`` = ||theta - theta_0|| and ``step_norm`` = ||theta_after - theta_before||."""

    def fn(ctx):
        return {
            "from_init": float(torch.linalg.vector_norm(ctx.theta_after - ctx.theta_init)),
            "step_norm": float(torch.linalg.vector_norm(ctx.theta_after - ctx.theta_before)),
        }

    return FunctionProbe(name, as_schedule(every), fn, type="distance_from_init")


def gradient_cosine(*, every=100, name: str = "gradient_cosine") -> FunctionProbe:
    """``cosine`` of this step's and the previous step's training gradients (NaN at the first step)."""

    def fn(ctx):
        if ctx.prev_grad is None:
            return {"cosine": float("nan")}
        g = ctx.grad()
        return {"cosine": float(torch.dot(g, ctx.prev_grad) / (g.norm() * ctx.prev_grad.norm()).clamp_min(1e-30))}

    return FunctionProbe(name, as_schedule(every), fn, type="gradient_cosine")


def bn_scale_norm(*, every=100, name: str = "bn_scale_norm") -> FunctionProbe:
    """``last`` = ||gamma|| of the last batch-norm layer, ``all`` = over all of them (NaN without BN)."""

    def fn(ctx):
        gammas = [m.weight.detach() for m in ctx.model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.weight is not None]
        if not gammas:
            return {"last": float("nan"), "all": float("nan")}
        return {"last": float(gammas[-1].norm()), "all": float(torch.cat([g.reshape(-1) for g in gammas]).norm())}

    return FunctionProbe(name, as_schedule(every), fn, before=False, type="bn_scale_norm")


def _loss_acc(problem, theta, x, y):
    out, y = problem.outputs(theta, x), y.to(problem.device)
    return float(problem.mean_loss(out, y)), float((out.argmax(-1) == y).double().mean())


def evaluation(sets: dict, *, every="epoch_end", name: str = "evaluation") -> FunctionProbe:
    """``{set}_loss`` and ``{set}_accuracy`` for each named ``(X, Y)`` set (e.g. train subset, val)."""
    if not sets:
        raise ValueError("evaluation: give at least one named (X, Y) set")

    def fn(ctx):
        out = {}
        for key, (x, y) in sets.items():
            loss, acc = _loss_acc(ctx.problem, ctx.theta_after, x, y)
            out[f"{key}_loss"], out[f"{key}_accuracy"] = loss, acc
        return out

    return FunctionProbe(name, as_schedule(every), fn, before=False, type="evaluation")
