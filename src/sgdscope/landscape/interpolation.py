"""The loss along lines in parameter space: between two states (A Walk with SGD §2-3) and along a
direction around one state (sharpest-directions poster, 2a).

Every loss is ``problem.loss`` semantics (all of the problem's batches, measurement mode, no
gradient), evaluated as a pure function of flat parameters: the model is never changed. Points
are evaluated together with ``torch.vmap`` in chunks where the model allows it, one by one otherwise.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import torch

from ..problem import Problem

__all__ = ["losses_at", "Interpolation", "interpolate_loss", "line_connected", "loss_along"]


def losses_at(problem: Problem, thetas: torch.Tensor, *, chunk_size: int = 16) -> torch.Tensor:
    """The loss of ``problem`` at each row of ``thetas`` (P, D) -> (P,)."""
    thetas = problem.check_theta(thetas, "losses_at: thetas", rows=True)
    if chunk_size < 1:
        raise ValueError(f"chunk_size must be >= 1, got {chunk_size}")
    frozen = problem.frozen_params()

    def total(theta):
        return sum(w * problem.batch_loss(theta, b, frozen=frozen) for w, b in zip(problem.weights, problem.batches))

    out = []
    with problem.measuring(), torch.no_grad():
        for start in range(0, thetas.shape[0], chunk_size):
            chunk = thetas[start : start + chunk_size]
            try:
                out.append(torch.vmap(total)(chunk).reshape(-1))
            except (RuntimeError, NotImplementedError, ValueError):
                out.append(torch.stack([total(t).reshape(()) for t in chunk]))
    out = torch.cat(out)
    return out if problem.comm is None else problem.comm.sum(out)  # data parallel: the union's mean loss


@dataclass(frozen=True)
class Interpolation:
    """The loss on ``alphas`` (P,) in [0, 1] along theta(alpha) = (1 - alpha) theta_a + alpha theta_b.

    ``barrier``: max over the interior points of the loss minus max(loss at the ends);
    ``crossed``: an interior point is above both ends (barrier > 0: SGD crossed a barrier, A Walk
    with SGD §2); ``height``: 2 max(interior) - loss_a - loss_b (the barrier height of A Walk with
    SGD Fig. 4; read it where ``crossed``: on a monotone curve it is about |loss_a - loss_b|);
    ``valley_floor`` the minimum of the curve, at ``valley_alpha``.
    """

    alphas: torch.Tensor
    losses: torch.Tensor
    barrier: float
    crossed: bool
    height: float
    valley_floor: float
    valley_alpha: float


def interpolate_loss(
    problem: Problem, theta_a: torch.Tensor, theta_b: torch.Tensor, *, num_points: int = 10
) -> Interpolation:
    """The loss at ``num_points`` evenly spaced points from ``theta_a`` to ``theta_b``, ends included."""
    if num_points < 3:
        raise ValueError(f"num_points must be >= 3 (two ends and an interior point), got {num_points}")
    a, b = problem.check_theta(theta_a, "theta_a"), problem.check_theta(theta_b, "theta_b")
    alphas = torch.linspace(0, 1, num_points, dtype=problem.dtype, device=problem.device)
    losses = losses_at(problem, torch.lerp(a[None], b[None], alphas[:, None]))
    ends = torch.maximum(losses[0], losses[-1])
    top = losses[1:-1].max()
    i = int(torch.argmin(losses))
    return Interpolation(
        alphas=alphas,
        losses=losses,
        barrier=float(top - ends),
        crossed=bool(top > ends),
        height=float(2 * top - losses[0] - losses[-1]),
        valley_floor=float(losses[i]),
        valley_alpha=float(alphas[i]),
    )


def line_connected(
    problem: Problem, theta_a: torch.Tensor, theta_b: torch.Tensor, *, threshold: float, num_points: int = 10
) -> bool:
    """Line connectedness (noise paper §2.1.1): the loss at ``num_points`` evenly spaced points of
    the segment (ends included) is below ``threshold`` everywhere."""
    return bool((interpolate_loss(problem, theta_a, theta_b, num_points=num_points).losses < threshold).all())


def loss_along(
    problem: Problem, theta: torch.Tensor, direction: torch.Tensor, ks: Sequence[float] | torch.Tensor
) -> torch.Tensor:
    """L(theta + k direction) for each k of ``ks`` (K,) -> (K,) (poster 2a: direction = the expected
    SGD step along the top eigenvector)."""
    theta = problem.check_theta(theta, "theta")
    direction = problem.check_theta(direction, "direction")
    ks = torch.as_tensor(ks, dtype=problem.dtype).to(problem.device).reshape(-1)
    return losses_at(problem, theta[None] + ks[:, None] * direction[None])
