"""Negative Hessian eigenvalues versus training loss (noise paper §4.1, Fig. 2a; App. A.3).

Near a minimal valley, at equilibrium, the second derivatives along the degenerate directions are
<d_j d_k L> = C sum_i d_j d_k lambda_i with C = (eta / 2S)(1 - S/M) (eq. 11), as is the excess
loss <L> - L* = C sum_i lambda_i: the negative eigenvalues grow linearly with the training loss.

The toy protocol (the paper's, shrunk to run in seconds on a CPU): a one-hidden-layer ReLU net
(its per-unit rescaling symmetry makes the minima degenerate) on synthetic two-class data with
flipped labels (so per-example gradients do not vanish at the minimum and SGD noise persists);
full-batch GD to a minimum; from there SGD at each (eta, S) to equilibrium; at snapshots, the
full training loss and the exact sum of negative eigenvalues (``dense_hessian(...).negative_sum``).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import torch
from torch import nn

from ..operators import dense_hessian
from ..problem import Problem
from ._fit import LineFit, fit_line

__all__ = ["NegativeEigenResult", "negative_eigenvalue_experiment"]


@dataclass(frozen=True)
class NegativeEigenResult:
    """One row per snapshot: ``lr`` (R,), ``batch_size`` (R,), ``loss`` (R,) full training loss,
    ``excess_loss`` (R,) = loss - ``base_loss`` (the GD minimum's), ``negative_sum`` (R,) sum of the
    negative Hessian eigenvalues; ``fit``: negative_sum ~ slope * excess_loss + intercept
    (prediction: slope < 0, intercept ~ 0); ``base_negative_sum`` at the GD minimum; ``dim`` D."""

    lr: torch.Tensor
    batch_size: torch.Tensor
    loss: torch.Tensor
    excess_loss: torch.Tensor
    negative_sum: torch.Tensor
    base_loss: float
    base_negative_sum: float
    fit: LineFit
    dim: int


def _data(n, d, classes, label_noise, generator, dtype):
    X = torch.randn(n, d, generator=generator, dtype=dtype)
    W = torch.randn(d, classes, generator=generator, dtype=dtype)
    y = (X @ W).argmax(1)
    flip = torch.rand(n, generator=generator) < label_noise
    other = (y + torch.randint(1, classes, (n,), generator=generator)) % classes
    return X, torch.where(flip, other, y)


def _net(d, hidden, classes, generator, dtype) -> nn.Module:
    model = nn.Sequential(nn.Linear(d, hidden), nn.ReLU(), nn.Linear(hidden, classes)).to(dtype)
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


def negative_eigenvalue_experiment(
    *,
    lrs: Sequence[float] = (0.02, 0.05, 0.1),
    batch_sizes: Sequence[int] = (2, 8),
    num_examples: int = 200,
    input_dim: int = 5,
    hidden: int = 8,
    num_classes: int = 2,
    label_noise: float = 0.2,
    gd_lr: float = 0.1,
    gd_steps: int = 4000,
    steps: int = 600,
    snapshots: int = 3,
    snapshot_every: int = 100,
    dtype: torch.dtype = torch.float64,
    generator: torch.Generator | None = None,
) -> NegativeEigenResult:
    """Equilibrate a small ReLU net at each (lr, batch size) from a GD minimum and record the
    training loss and the sum of negative Hessian eigenvalues (noise paper Fig. 2a).

    Each SGD run takes ``steps`` steps; the last ``snapshots`` multiples of ``snapshot_every``
    are measured. Cross-entropy loss; everything random comes from ``generator``.

    At this size (D = 66) the toy reproduces the sign and the growth (slope < 0, R^2 ~ 0.7-0.9
    over seeds) but not the paper's zero intercept: a fit through the origin is not implied.
    It runs in ~5 s on one CPU thread; on a busy small machine ``torch.set_num_threads(1)``
    is much faster than more threads for tensors this small.
    """
    if snapshots < 1 or snapshot_every < 1 or snapshots * snapshot_every > steps:
        raise ValueError(
            f"need 1 <= snapshots * snapshot_every <= steps, got {snapshots} * {snapshot_every} and steps={steps}"
        )
    if not 0 <= label_noise < 1:
        raise ValueError(f"label_noise must be a fraction in [0, 1), got {label_noise}")
    gen = torch.Generator().manual_seed(0) if generator is None else generator
    X, y = _data(num_examples, input_dim, num_classes, label_noise, gen, dtype)
    model = _net(input_dim, hidden, num_classes, gen, dtype)
    loss_fn = nn.CrossEntropyLoss()
    problem = Problem(model, loss_fn, [(X, y)])
    _train(model, loss_fn, X, y, lr=gd_lr, steps=gd_steps, batch_size=num_examples, generator=gen)
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
    )  # fmt: skip
