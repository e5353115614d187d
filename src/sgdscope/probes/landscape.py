"""Landscape probes: the loss between and around iterates.

* ``interpolation`` (A Walk with SGD §2-3): the loss at ``num_points`` points on the segment
  from the parameters before the step to those after, on the fixed evaluation set, without
  keeping old checkpoints; whether a barrier was crossed (an interior point above both ends),
  its height, the valley floor (minimum of the segment); at epoch ends, the barriers counted
  over the epoch's probed steps.
* ``sharpest_directions`` (poster 2a-2b): with e_1 the top Hessian eigenvector and
  dtheta_1 = eta E_B|g_B . e_1| the expected size of the SGD step along it, the loss
  L(theta + k dtheta_1 e_1) on a grid of k; the mean loss change of SGD steps whose e_1
  component is rescaled by alpha in {0.5, 1, 2}; and |cos(step, e_i)| for i = 1..k.
"""
from __future__ import annotations

import torch

from ..landscape import interpolate_loss, loss_along
from .schedule import as_schedule

__all__ = ["interpolation", "sharpest_directions"]


class interpolation:  # noqa: N801 - a probe factory that keeps a counter, named like the others
    """``crossed`` (0/1), ``barrier`` (max interior loss minus the higher end; > 0 iff crossed),
    ``height`` (2 max interior - both ends, Walk Fig. 4), ``valley_floor``,
    ``valley_alpha``; array ``curve``; at epoch ends also ``barriers_epoch`` and ``probed_epoch``."""

    def __init__(self, num_points: int = 10, *, every=1, name: str = "interpolation"):
        if num_points < 3:
            raise ValueError(f"interpolation: num_points must be >= 3 (two ends and an interior point), got {num_points}")
        self.num_points = num_points
        self.schedule = as_schedule(every) | as_schedule("epoch_end")
        self.name = name
        self.type = "interpolation"
        self.before = True
        self._crossed = 0
        self._probed = 0

    def __call__(self, ctx) -> dict:
        res = interpolate_loss(ctx.eval_problem, ctx.theta_before, ctx.theta_after, num_points=self.num_points)
        self._crossed += int(bool(res.crossed))
        self._probed += 1
        out = {
            "crossed": float(bool(res.crossed)),
            "barrier": float(res.barrier),
            "height": float(res.height),
            "valley_floor": float(res.valley_floor),
            "valley_alpha": float(res.valley_alpha),
            "curve": torch.as_tensor(res.losses),
        }
        if ctx.epoch_end:
            out["barriers_epoch"], out["probed_epoch"] = float(self._crossed), float(self._probed)
            self._crossed = self._probed = 0
        return out

    def state_dict(self) -> dict:
        return {"crossed": self._crossed, "probed": self._probed}

    def load_state_dict(self, state: dict) -> None:
        self._crossed, self._probed = state["crossed"], state["probed"]


class sharpest_directions:  # noqa: N801
    """``step_e1`` (= dtheta_1), ``lambda_1``, ``dloss_alpha_{0.5,1,2}``, ``cos_e{i}``; array ``loss_along``
    (over ``grid``), ``grid``."""

    def __init__(self, k: int = 5, *, grid=None, alphas=(0.5, 1.0, 2.0), num_batches: int = 5, batch_size: int | None = None, every=100, name: str = "sharpest_directions"):
        if num_batches < 1 or k < 1:
            raise ValueError(f"sharpest_directions: need k >= 1 and num_batches >= 1, got k={k}, num_batches={num_batches}")
        self.k = k
        self.grid = torch.linspace(-3, 3, 13, dtype=torch.float64) if grid is None else torch.as_tensor(grid, dtype=torch.float64)
        self.alphas = tuple(float(a) for a in alphas)
        self.num_batches = num_batches
        self.batch_size = batch_size
        self.schedule = as_schedule(every)
        self.name = name
        self.type = "sharpest_directions"
        self.before = True

    def __call__(self, ctx) -> dict:
        res = ctx.top_eigen(self.k)
        E = res.vectors
        e1 = E[:, 0]
        M = int(self.batch_size or ctx.batch_size or 128)  # ctx.minibatch_gradients checks it against the pool
        G = ctx.minibatch_gradients(self.num_batches, M)
        along = G @ e1  # (L,) components of the mini-batch gradients on e1
        step_e1 = ctx.lr * float(along.abs().mean())
        theta = ctx.theta_after
        curve = loss_along(ctx.eval_problem, theta, e1 * step_e1, self.grid.to(theta.dtype))
        base = float(ctx.eval_problem.loss(theta))
        out = {"step_e1": step_e1, "lambda_1": float(res.values[0]), "loss_along": torch.as_tensor(curve), "grid": self.grid}
        for a in self.alphas:  # SGD steps -lr g with their e1 component scaled by alpha
            steps = -ctx.lr * (G + (a - 1.0) * along[:, None] * e1[None, :])
            out[f"dloss_alpha_{a:g}"] = sum(float(ctx.eval_problem.loss(theta + s)) - base for s in steps) / len(steps)
        step = ctx.theta_after - ctx.theta_before
        norm = torch.linalg.vector_norm(step)
        cos = (E.T @ step).abs() / norm.clamp_min(1e-30)
        for i, c in enumerate(cos):
            out[f"cos_e{i + 1}"] = float(c) if norm > 0 else float("nan")
        return out
