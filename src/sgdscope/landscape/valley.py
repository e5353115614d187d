"""Minimal valleys (noise paper §2.1.1, §4.3): project training states to nearby minima, check
that consecutive minima are line connected, and follow the projected path between checkpoints.

* Projection: full-batch GD from the state, with the training hyperparameters, until the
  training loss is below a threshold (the paper: the minimal training loss, ~0.005).
* Line connectedness: 10 evenly spaced points of the segment all below the threshold.
* Bisection: between states A (step a) and B (step b) that are not line connected, insert the
  state at step (a + b) // 2 and recurse, until every consecutive pair is connected or adjacent.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

import torch

from ..linalg import hutchinson_trace
from ..operators import hessian_op
from ..problem import Problem
from .interpolation import line_connected

__all__ = ["Projection", "project_to_valley", "ProjectedPath", "projected_path", "TraceProfile", "trace_along"]


@dataclass(frozen=True)
class Projection:
    """``theta`` (D,) the projected state, ``loss`` its training loss, ``steps`` the GD steps
    taken, ``converged`` whether the loss went below the threshold within ``max_steps``."""

    theta: torch.Tensor
    loss: float
    steps: int
    converged: bool


def project_to_valley(
    problem: Problem,
    theta: torch.Tensor,
    *,
    lr: float,
    threshold: float,
    max_steps: int,
    momentum: float = 0.0,
) -> Projection:
    """Full-batch (heavy-ball, torch convention) GD on ``problem`` from ``theta`` (D,) until the loss
    is below ``threshold`` or ``max_steps`` steps were taken. Pure: the model is not changed.
    The loss is the problem's mean over its examples, so ``lr`` is a learning rate on the mean loss."""
    if lr <= 0 or max_steps < 0 or not 0 <= momentum < 1:
        raise ValueError(f"need lr > 0, max_steps >= 0 and momentum in [0, 1), got {lr}, {max_steps}, {momentum}")
    theta = problem.check_theta(theta, "theta").clone()  # the result never aliases the caller's tensor
    velocity = None
    for step in range(max_steps + 1):
        loss, grad = problem.loss_and_grad(theta)
        if float(loss) < threshold:
            return Projection(theta, float(loss), step, True)
        if step == max_steps:
            break
        velocity = grad if velocity is None else momentum * velocity + grad
        theta = theta - lr * velocity
    return Projection(theta, float(loss), max_steps, False)


@dataclass(frozen=True)
class ProjectedPath:
    """The projected path: ``steps`` (P,) training steps of the states that were projected (the
    checkpoints and the inserted midpoints, ascending), ``thetas`` (P, D) their projections,
    ``train_loss`` (P,), ``gd_steps`` (P,) and ``converged`` (P,) of each projection, and
    ``connected`` (P-1,): consecutive projections line connected (False only where the two
    states were adjacent steps and still not connected)."""

    steps: torch.Tensor
    thetas: torch.Tensor
    train_loss: torch.Tensor
    gd_steps: torch.Tensor
    converged: torch.Tensor
    connected: torch.Tensor


def projected_path(
    problem: Problem,
    state_at: Callable[[int], torch.Tensor],
    checkpoints: Sequence[int],
    *,
    lr: float,
    threshold: float,
    max_steps: int,
    momentum: float = 0.0,
    num_points: int = 10,
) -> ProjectedPath:
    """Project the training states at ``checkpoints`` (increasing steps) and, recursively, at the
    midpoints between consecutive ones that are not line connected (noise paper §2.1.1).

    ``state_at(step)`` returns the flat (D,) training state after ``step`` steps (load a saved
    checkpoint, or replay training from the previous one with the same seed). Each state is
    projected once (cached).
    """
    checkpoints = [int(s) for s in checkpoints]
    if len(checkpoints) < 2 or any(b <= a for a, b in zip(checkpoints, checkpoints[1:])):
        raise ValueError(f"checkpoints must be >= 2 strictly increasing steps, got {checkpoints}")
    cache: dict[int, Projection] = {}

    def proj(step: int) -> Projection:
        if step not in cache:
            cache[step] = project_to_valley(
                problem, state_at(step), lr=lr, threshold=threshold, max_steps=max_steps, momentum=momentum
            )
        return cache[step]

    steps, connected = [checkpoints[0]], []
    for a, b in zip(checkpoints, checkpoints[1:]):
        stack = [(a, b)]
        while stack:
            lo, hi = stack.pop()
            ok = line_connected(problem, proj(lo).theta, proj(hi).theta, threshold=threshold, num_points=num_points)
            if ok or hi - lo <= 1:
                steps.append(hi)
                connected.append(ok)
            else:
                mid = (lo + hi) // 2
                stack += [(mid, hi), (lo, mid)]  # (lo, mid) first: the path stays in order
    ps = [cache[s] for s in steps]
    return ProjectedPath(
        steps=torch.tensor(steps),
        thetas=torch.stack([p.theta for p in ps]),
        train_loss=torch.tensor([p.loss for p in ps], dtype=torch.float64),
        gd_steps=torch.tensor([p.steps for p in ps]),
        converged=torch.tensor([p.converged for p in ps]),
        connected=torch.tensor(connected, dtype=torch.bool),
    )


@dataclass(frozen=True)
class TraceProfile:
    """Hutchinson estimates of Tr H at P states: ``estimate`` (P,), ``stderr`` (P,), ``matvecs``."""

    estimate: torch.Tensor
    stderr: torch.Tensor
    matvecs: int


def trace_along(
    problem: Problem,
    thetas: torch.Tensor,
    *,
    num_matvecs: int = 100,
    block_size: int = 16,
    generator: torch.Generator | None = None,
) -> TraceProfile:
    """Tr H of ``problem`` at each row of ``thetas`` (P, D), with error bars (noise paper §4.3, Fig. 3):
    :func:`~sgdscope.hutchinson_trace` with ``num_matvecs`` probes, ``block_size`` at a time."""
    thetas = problem.check_theta(thetas, "trace_along: thetas", rows=True)
    ests = [
        hutchinson_trace(hessian_op(problem, t), num_matvecs, generator=generator, block_size=block_size)
        for t in thetas
    ]
    return TraceProfile(
        estimate=torch.tensor([e.estimate for e in ests], dtype=torch.float64),
        stderr=torch.tensor([e.stderr for e in ests], dtype=torch.float64),
        matvecs=sum(e.matvecs for e in ests),
    )
