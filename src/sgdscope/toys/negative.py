"""Negative Hessian eigenvalues versus training loss (noise paper §4.1, Fig. 2a; App. A.3).

Near a minimal valley, at equilibrium, the second derivatives along the degenerate directions are
<d_j d_k L> = C sum_i d_j d_k lambda_i with C = (eta / 2S)(1 - S/M) (eq. 11), as is the excess
loss <L> - L* = C sum_i lambda_i: the negative eigenvalues grow linearly with the training loss.

The toy protocol (the paper's, shrunk to run in seconds on a CPU): a one-hidden-layer net with
the square activation x^2 on synthetic two-class data with flipped labels (so per-example
gradients do not vanish at the minimum and SGD noise persists); full-batch gradient descent to
a true minimum, until the gradient norm is below ``grad_tol``; from there SGD at each (eta, S) to
equilibrium; at snapshots, the full training loss and the exact sum of negative eigenvalues
(``dense_hessian(...).negative_sum``).

Why x^2 and not ReLU: the activation is homogeneous (of degree 2), so each hidden unit's
rescaling (w, b, v) -> (a w, a b, v / a^2) leaves the function unchanged and the minima are
degenerate, as with ReLU's rescaling; but it is smooth. A ReLU net on data it cannot fit has
its minimum on a kink, where the gradient does not vanish: gradient descent there stalls at a
gradient norm of a few 1e-2 (at lr 0.1 and at 1 / lambda_max alike), the start is no minimum, and
excess losses measured from it can be negative.
"""
from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from typing import Sequence

import torch
from torch import nn
from torch.nn.utils import parameters_to_vector, vector_to_parameters

from ..operators import dense_hessian
from ..problem import Problem
from ._fit import LineFit, fit_line

__all__ = ["NegativeEigenResult", "negative_eigenvalue_experiment"]


@dataclass(frozen=True)
class NegativeEigenResult:
    """One row per snapshot: ``lr`` (R,), ``batch_size`` (R,), ``loss`` (R,) full training loss,
    ``excess_loss`` (R,) = loss - ``base_loss`` (the GD minimum's), ``negative_sum`` (R,) sum of the
    negative Hessian eigenvalues; ``fit``: negative_sum ~ slope * excess_loss + intercept
    (prediction: slope < 0, intercept ~ 0); ``base_negative_sum`` at the GD minimum; ``dim`` D;
    ``base_grad_norm`` the gradient norm at the GD minimum and ``gd_steps`` the GD steps taken."""

    lr: torch.Tensor
    batch_size: torch.Tensor
    loss: torch.Tensor
    excess_loss: torch.Tensor
    negative_sum: torch.Tensor
    base_loss: float
    base_negative_sum: float
    fit: LineFit
    dim: int
    base_grad_norm: float = math.nan
    gd_steps: int = 0


def _data(n, d, classes, label_noise, generator, dtype):
    X = torch.randn(n, d, generator=generator, dtype=dtype)
    W = torch.randn(d, classes, generator=generator, dtype=dtype)
    y = (X @ W).argmax(1)
    flip = torch.rand(n, generator=generator) < label_noise
    other = (y + torch.randint(1, classes, (n,), generator=generator)) % classes
    return X, torch.where(flip, other, y)


class _Square(nn.Module):
    """x -> x^2: smooth and homogeneous, so the net's minima are degenerate (module docstring)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * x


def _net(d, hidden, classes, generator, dtype) -> nn.Module:
    model = nn.Sequential(nn.Linear(d, hidden), _Square(), nn.Linear(hidden, classes)).to(dtype)
    with torch.no_grad():  # torch's default Linear init, drawn from the explicit generator
        for layer in (model[0], model[2]):
            bound = 1 / math.sqrt(layer.in_features)
            for p in (layer.weight, layer.bias):
                p.copy_(torch.rand(p.shape, generator=generator, dtype=dtype) * 2 * bound - bound)
    return model


def _train(model, loss_fn, X, y, *, lr, steps, batch_size, generator, on_step=None):
    opt = torch.optim.SGD(model.parameters(), lr=lr)
    for step in range(steps):
        if batch_size >= len(y):
            xb, yb = X, y
        else:
            idx = torch.randperm(len(y), generator=generator)[:batch_size]
            xb, yb = X[idx], y[idx]
        opt.zero_grad()
        loss_fn(model(xb), yb).backward()
        opt.step()
        if on_step is not None:
            on_step(step + 1)


def _loss_grad(model, loss_fn, X, y) -> tuple[float, torch.Tensor]:
    model.zero_grad(set_to_none=True)
    loss = loss_fn(model(X), y)
    loss.backward()
    return float(loss.detach()), parameters_to_vector([p.grad for p in model.parameters()])


def _descend(model, loss_fn, X, y, *, lr, tol, max_steps) -> tuple[int, float]:
    """Full-batch gradient descent until the gradient norm is <= ``tol`` (at most ``max_steps``
    steps); returns (steps taken, final gradient norm). Each step is backtracking (Armijo): the
    step size is halved until the loss falls by at least half the first-order prediction, and
    doubled again (up to ``lr``) after each step, so no step size has to be tuned to the curvature."""
    params = list(model.parameters())
    size = lr
    loss, grad = _loss_grad(model, loss_fn, X, y)
    for step in range(max_steps):
        norm = float(grad.norm())
        if norm <= tol:
            return step, norm
        theta = parameters_to_vector(params).detach()
        while size > 1e-12 * lr:
            with torch.no_grad():
                vector_to_parameters(theta - size * grad, params)
                if float(loss_fn(model(X), y)) <= loss - 0.5 * size * norm**2:
                    break
            size /= 2
        size = min(2 * size, lr)
        loss, grad = _loss_grad(model, loss_fn, X, y)
    return max_steps, float(grad.norm())


def negative_eigenvalue_experiment(
    *,
    lrs: Sequence[float] = (0.02, 0.05, 0.1),
    batch_sizes: Sequence[int] = (2, 8),
    num_examples: int = 200,
    input_dim: int = 5,
    hidden: int = 8,
    num_classes: int = 2,
    label_noise: float = 0.2,
    gd_lr: float = 1.0,
    gd_steps: int = 20000,
    grad_tol: float = 1e-6,
    steps: int = 600,
    snapshots: int = 3,
    snapshot_every: int = 100,
    dtype: torch.dtype = torch.float64,
    generator: torch.Generator | None = None,
) -> NegativeEigenResult:
    """Equilibrate a small net at each (lr, batch size) from a true minimum and record the
    training loss and the sum of negative Hessian eigenvalues (noise paper Fig. 2a).

    The minimum: full-batch gradient descent (backtracking steps of at most ``gd_lr``) until the
    gradient norm is <= ``grad_tol``, at most ``gd_steps`` steps; a ``RuntimeWarning`` says so
    when the tolerance was not reached (the start is then no minimum). Each SGD run takes
    ``steps`` steps; the last ``snapshots`` multiples of ``snapshot_every`` are measured.
    Cross-entropy loss; everything random comes from ``generator``.

    It runs in a few seconds on one CPU thread; on a busy small machine
    ``torch.set_num_threads(1)`` is much faster than more threads for tensors this small.
    """
    if snapshots < 1 or snapshot_every < 1 or snapshots * snapshot_every > steps:
        raise ValueError(
            f"need 1 <= snapshots * snapshot_every <= steps, got {snapshots} * {snapshot_every} and steps={steps}"
        )
    if not 0 <= label_noise < 1:
        raise ValueError(f"label_noise must be a fraction in [0, 1), got {label_noise}")
    if not grad_tol > 0 or not gd_lr > 0 or gd_steps < 0:
        raise ValueError(f"need grad_tol > 0, gd_lr > 0 and gd_steps >= 0, got {grad_tol}, {gd_lr}, {gd_steps}")
    gen = torch.Generator().manual_seed(0) if generator is None else generator
    X, y = _data(num_examples, input_dim, num_classes, label_noise, gen, dtype)
    model = _net(input_dim, hidden, num_classes, gen, dtype)
    loss_fn = nn.CrossEntropyLoss()
    problem = Problem(model, loss_fn, [(X, y)])
    taken, grad_norm = _descend(model, loss_fn, X, y, lr=gd_lr, tol=grad_tol, max_steps=gd_steps)
    if grad_norm > grad_tol:
        warnings.warn(f"negative_eigenvalue_experiment: gradient descent did not reach a minimum: gradient norm "
                      f"{grad_norm:.3g} > grad_tol = {grad_tol:g} after gd_steps = {gd_steps} steps", RuntimeWarning,
                      stacklevel=2)
    base = problem.theta()
    base_loss = float(problem.loss(base))
    base_neg = float(dense_hessian(problem, base).negative_sum)
    measured_from = steps - (snapshots - 1) * snapshot_every
    rows = []
    for lr in lrs:
        for S in batch_sizes:
            if not 1 <= S <= num_examples:
                raise ValueError(f"batch size must be in [1, {num_examples}], got {S}")
            with torch.no_grad():
                for p, v in zip(model.parameters(), problem.spec.unflatten(base).values()):
                    p.copy_(v)

            def measure(step, lr=lr, S=S):
                if step >= measured_from and (steps - step) % snapshot_every == 0:
                    theta = problem.theta()
                    rows.append((lr, S, float(problem.loss(theta)), float(dense_hessian(problem, theta).negative_sum)))

            _train(model, loss_fn, X, y, lr=lr, steps=steps, batch_size=S, generator=gen, on_step=measure)
    r = torch.tensor(rows, dtype=torch.float64)
    excess = r[:, 2] - base_loss
    return NegativeEigenResult(
        lr=r[:, 0], batch_size=r[:, 1].long(), loss=r[:, 2], excess_loss=excess, negative_sum=r[:, 3],
        base_loss=base_loss, base_negative_sum=base_neg, fit=fit_line(excess, r[:, 3]), dim=problem.dim,
        base_grad_norm=grad_norm, gd_steps=taken,
    )  # fmt: skip
