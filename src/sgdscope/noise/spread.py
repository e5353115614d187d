"""Per-example curvature along a direction, and the stability condition of Break-Even eq. 1.

Along a unit direction e (Break-Even §3: e = e_H^1), each example has its own curvature
``h_i = e^T H_i e`` (H_i the Hessian of the example's loss). Their mean is the curvature of the
batch loss along e (``e^T H e`` for a mean reduction) and their variance ``s^2 = Var[h_i]``
measures how much SGD's curvature fluctuates between examples. SGD (step ``lr``, batch S of N)
is stable along e when (Break-Even eq. 1, after Wu et al. 2018)

    (1 - lr lambda)^2 + s^2 lr^2 (N - S) / (S (N - 1)) <= 1.

With a distributed Problem, ``batch`` is this rank's share of the examples (maybe none): each rank
computes its examples' h_i and the statistics are of all of them, in rank order, on every rank.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch.func import grad, jvp, vmap

from ..operators.hessian import double_backprop_hvp, forward_or_double_backprop
from ..problem import Problem
from .gradients import _check_per_example, _chunk, _single_loss, _slice

__all__ = ["curvature_spread", "CurvatureSpread", "stability"]


@dataclass(frozen=True)
class CurvatureSpread:
    """Per-example curvatures ``h_i = e^T H_i e`` along the unit direction e.

    Attributes:
        mean: (1/n) sum_i h_i (= e^T H e of the batch for a mean-reduced loss).
        var: s^2 = (1/n) sum_i (h_i - mean)^2, the variance over the n examples (population, 1/n,
            as Var[H_i] over the training examples in Break-Even eq. 1).
        samples: (n,) the h_i, float64 on the CPU.
        n: examples.
    """

    mean: float
    var: float
    samples: torch.Tensor
    n: int

    @property
    def std(self) -> float:
        return self.var**0.5


def curvature_spread(
    problem: Problem,
    v: torch.Tensor,
    batch,
    *,
    chunk_size: int | None = None,
    theta: torch.Tensor | None = None,
) -> CurvatureSpread:
    """Mean and variance over the examples of ``batch`` of ``e^T H_i e``, e = v / ||v||.

    Each ``h_i = e . (H_i e)``, the example's Hessian-vector product by forward over reverse
    (``jvp`` of ``grad``, as the Hessian operator's streamed products), vmapped over ``chunk_size``
    examples at a time. Not forward over forward (``jvp`` of ``jvp``, which needs no D-sized
    product): torch's nested forward-mode rules of ``layer_norm``, ``instance_norm`` and
    train-mode ``batch_norm`` drop a second-order term and give wrong values without an error
    (pytorch/pytorch#196700, #196699; torch 2.13). Models ``torch.func`` cannot transform
    (``nn.LSTM`` / ``nn.GRU`` on the CPU) are served by double backprop, one example at a time
    (:func:`~sgdscope.operators.hessian.forward_or_double_backprop`: same values, one warning per model).

    Args:
        problem: model, loss and parameter selection (per-example quantities: not batch norm
            in ``bn_mode="train"``).
        v: (D,) direction, e.g. the top Hessian eigenvector; normalised here.
        batch: ``(inputs, targets)`` with n examples (distributed: this rank's share, maybe none).
        chunk_size: examples per vmapped call (>= 1; default 8 on the CPU, 64 on an accelerator;
            memory is about two D-sized vectors plus activations per example).
        theta: (D,) parameters (default: the model's current ones).
    """
    _check_per_example(problem, "curvature_spread")
    v = problem.check_theta(v, "v")
    norm = torch.linalg.vector_norm(v)
    if not torch.isfinite(norm) or norm == 0:
        raise ValueError(f"v must be a finite nonzero direction, got norm {float(norm)}")
    e = v / norm
    theta = problem.check_theta(theta)
    x, y = problem.place(batch)
    chunk_size = _chunk(problem, chunk_size)
    frozen = problem.frozen_params()
    f = _single_loss(problem, frozen)

    def curvature(xi, yi):
        return jvp(grad(lambda t: f(t, xi, yi)), (theta,), (e,))[1] @ e

    n = len(y)

    def forward():
        per_example = vmap(curvature)
        return torch.cat([per_example(_slice(x, lo, lo + chunk_size), y[lo : lo + chunk_size]) for lo in range(0, n, chunk_size)])

    def double_backprop():  # e^T (H_i e), one example's gradient graph at a time
        def one(i):
            return e @ double_backprop_hvp(problem, theta, (_slice(x, i, i + 1), y[i : i + 1]), e[:, None], frozen=frozen)[:, 0]

        return torch.stack([one(i) for i in range(n)])

    with problem.measuring():
        h = forward_or_double_backprop(problem.model, forward, double_backprop) if n else e.new_empty(0)
    h = h.detach().to(torch.float64)
    if problem.comm is not None:  # every rank's h_i, in rank order
        h = problem.comm.gather_rows(h)
        n = len(h)
    if n == 0:
        raise ValueError("curvature_spread: the batch holds no examples (of any rank)")
    h = h.cpu()
    mean = h.mean()
    return CurvatureSpread(mean=float(mean), var=float(((h - mean) ** 2).mean()), samples=h, n=n)


def stability(lr, batch_size: int, n: int, lam, s2):
    """The left side of Break-Even eq. 1: ``(1 - lr lam)^2 + s2 lr^2 (N - S) / (S (N - 1))``.

    SGD is stable along e_H^1 while this is <= 1; the break-even point is where it first reaches 1.

    Args:
        lr: learning rate eta.
        batch_size: S, in [1, N].
        n: N, the training-set size (>= 2).
        lam: lambda_H^1, the curvature along e (e.g. ``CurvatureSpread.mean`` or a Lanczos value).
        s2: s^2 = Var[H_i] along e (``CurvatureSpread.var``).

    Floats or tensors (broadcast) in, the same out.
    """
    if int(n) < 2:
        raise ValueError(f"n (the training-set size N) must be >= 2, got {n}")
    if not 1 <= int(batch_size) <= int(n):
        raise ValueError(f"batch_size S must be in [1, N={n}], got {batch_size}")
    S, N = int(batch_size), int(n)
    return (1 - lr * lam) ** 2 + s2 * lr**2 * (N - S) / (S * (N - 1))
