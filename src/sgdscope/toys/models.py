"""Analytic toy losses of the noise paper, in valley coordinates (eq. 1 and eq. 36):

    L(theta) = 1/2 sum_{i<=n} theta_i^2 lambda_i(theta_{n+1..D})  (+ g(theta_{n+1..D}))

The first n coordinates are non-degenerate; lambda_i are the Hessian eigenvalues on the valley
floor, so the block H[:n, :n] = diag(lambda) everywhere and T = sum lambda_i, Det = prod lambda_i
(Theorem 1, Corollary 2.1) are the trace and determinant of that block.

Every derivative here is written out by hand (no autograd) and broadcasts over leading batch
dimensions: ``theta`` (..., D) -> loss (...), grad (..., D), hessian (..., D, D),
curvatures (..., n), curvature_grad (..., n, D).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch

__all__ = ["ToyLoss", "four_d", "trace_vs_det", "valley_with_slope"]


@dataclass(frozen=True)
class ToyLoss:
    """A closed-form loss with its derivatives; ``n`` non-degenerate coordinates first."""

    name: str
    dim: int
    n: int
    loss: Callable[[torch.Tensor], torch.Tensor]
    grad: Callable[[torch.Tensor], torch.Tensor]
    hessian: Callable[[torch.Tensor], torch.Tensor]
    curvatures: Callable[[torch.Tensor], torch.Tensor]
    curvature_grad: Callable[[torch.Tensor], torch.Tensor]

    def trace(self, theta: torch.Tensor) -> torch.Tensor:
        """T = sum_i lambda_i (...), the trace of the non-degenerate Hessian block."""
        return self.curvatures(theta).sum(-1)

    def det(self, theta: torch.Tensor) -> torch.Tensor:
        """Det = prod_i lambda_i (...), the non-degenerate determinant (Corollary 2.1)."""
        return self.curvatures(theta).prod(-1)

    def trace_grad(self, theta: torch.Tensor) -> torch.Tensor:
        """grad T = sum_i grad lambda_i (..., D) (eq. 15)."""
        return self.curvature_grad(theta).sum(-2)


def _check(theta: torch.Tensor, dim: int, name: str) -> torch.Tensor:
    if theta.shape[-1] != dim:
        raise ValueError(f"{name}: expected theta of shape (..., {dim}), got {tuple(theta.shape)}")
    return theta


def _unbind(theta, dim, name):
    return _check(theta, dim, name).unbind(-1)


def _sym(theta: torch.Tensor, entries: dict[tuple[int, int], torch.Tensor], dim: int) -> torch.Tensor:
    """A symmetric (..., dim, dim) matrix from its upper-triangle entries (missing ones are 0)."""
    zero = theta.new_zeros(theta.shape[:-1])
    cells = [entries.get((min(i, j), max(i, j)), zero) for i in range(dim) for j in range(dim)]
    return torch.stack(cells, -1).unflatten(-1, (dim, dim))


# ------------------------------------------------- §4.2 / Fig. 2b: L = |t3 + t4| t1^2 + |t3 + 2 t4| t2^2
def _fd_loss(t):
    t1, t2, t3, t4 = _unbind(t, 4, "four_d")
    return (t3 + t4).abs() * t1**2 + (t3 + 2 * t4).abs() * t2**2


def _fd_grad(t):
    t1, t2, t3, t4 = _unbind(t, 4, "four_d")
    a, b = t3 + t4, t3 + 2 * t4
    sa, sb = a.sign(), b.sign()
    return torch.stack([2 * a.abs() * t1, 2 * b.abs() * t2, sa * t1**2 + sb * t2**2, sa * t1**2 + 2 * sb * t2**2], -1)


def _fd_hessian(t):
    t1, t2, t3, t4 = _unbind(t, 4, "four_d")
    a, b = t3 + t4, t3 + 2 * t4
    sa, sb = a.sign(), b.sign()
    return _sym(t, {(0, 0): 2 * a.abs(), (1, 1): 2 * b.abs(), (0, 2): 2 * sa * t1, (0, 3): 2 * sa * t1,
                    (1, 2): 2 * sb * t2, (1, 3): 4 * sb * t2}, 4)  # fmt: skip


def _fd_curv(t):
    _, _, t3, t4 = _unbind(t, 4, "four_d")
    return torch.stack([2 * (t3 + t4).abs(), 2 * (t3 + 2 * t4).abs()], -1)


def _fd_curv_grad(t):
    _, _, t3, t4 = _unbind(t, 4, "four_d")
    sa, sb = (t3 + t4).sign(), (t3 + 2 * t4).sign()
    z = torch.zeros_like(t3)
    return torch.stack([torch.stack([z, z, 2 * sa, 2 * sa], -1), torch.stack([z, z, 2 * sb, 4 * sb], -1)], -2)


four_d = ToyLoss("four_d", 4, 2, _fd_loss, _fd_grad, _fd_hessian, _fd_curv, _fd_curv_grad)
"""L = |t3 + t4| t1^2 + |t3 + 2 t4| t2^2 (noise paper §4.2, Fig. 2b): grad lambda is constant."""


# ------------------------------------------------- §4.2 / Fig. 2c-d:
#                                                   L = (4 - 2 e^{-t3^2-t4^2}) t1^2 + e^{-(t3-t4)^2} t2^2
def _td_parts(t):
    t1, t2, t3, t4 = _unbind(t, 4, "trace_vs_det")
    e1 = torch.exp(-(t3**2) - t4**2)
    d = t3 - t4
    e2 = torch.exp(-(d**2))
    return t1, t2, t3, t4, e1, d, e2


def _td_loss(t):
    t1, t2, _, _, e1, _, e2 = _td_parts(t)
    return (4 - 2 * e1) * t1**2 + e2 * t2**2


def _td_grad(t):
    t1, t2, t3, t4, e1, d, e2 = _td_parts(t)
    return torch.stack([
        2 * (4 - 2 * e1) * t1,
        2 * e2 * t2,
        4 * t3 * e1 * t1**2 - 2 * d * e2 * t2**2,
        4 * t4 * e1 * t1**2 + 2 * d * e2 * t2**2,
    ], -1)  # fmt: skip


def _td_hessian(t):
    t1, t2, t3, t4, e1, d, e2 = _td_parts(t)
    q = (4 * d**2 - 2) * e2 * t2**2  # d^2/dd^2 of e2, times t2^2
    return _sym(t, {
        (0, 0): 2 * (4 - 2 * e1), (1, 1): 2 * e2,
        (0, 2): 8 * t3 * e1 * t1, (0, 3): 8 * t4 * e1 * t1,
        (1, 2): -4 * d * e2 * t2, (1, 3): 4 * d * e2 * t2,
        (2, 2): 4 * e1 * (1 - 2 * t3**2) * t1**2 + q,
        (2, 3): -8 * t3 * t4 * e1 * t1**2 - q,
        (3, 3): 4 * e1 * (1 - 2 * t4**2) * t1**2 + q,
    }, 4)  # fmt: skip


def _td_curv(t):
    _, _, _, _, e1, _, e2 = _td_parts(t)
    return torch.stack([8 - 4 * e1, 2 * e2], -1)


def _td_curv_grad(t):
    _, _, t3, t4, e1, d, e2 = _td_parts(t)
    z = torch.zeros_like(t3)
    g1 = torch.stack([z, z, 8 * t3 * e1, 8 * t4 * e1], -1)
    g2 = torch.stack([z, z, -4 * d * e2, 4 * d * e2], -1)
    return torch.stack([g1, g2], -2)


trace_vs_det = ToyLoss("trace_vs_det", 4, 2, _td_loss, _td_grad, _td_hessian, _td_curv, _td_curv_grad)
"""L = (4 - 2 exp(-t3^2 - t4^2)) t1^2 + exp(-(t3 - t4)^2) t2^2 (noise paper §4.2, Fig. 2c-d)."""


# ------------------------------------------------- App. A.6 / Fig. 7: L = 1/2 (t2^2 + 1) t1^2 + alpha t2
def valley_with_slope(alpha: float = 1e-4) -> ToyLoss:
    """L = 1/2 (theta_2^2 + 1) theta_1^2 + alpha theta_2: a valley whose floor has slope alpha (eq. 36).

    lambda = theta_2^2 + 1, g = alpha theta_2; with SGD-like noise of strength s the stationary
    theta_2 solves eq. 38: alpha * 2 theta_2 = -(eta s / 4) (2 theta_2)^2, i.e. theta_2 = -2 alpha / (eta s).
    """
    alpha = float(alpha)

    def loss(t):
        t1, t2 = _unbind(t, 2, "valley_with_slope")
        return 0.5 * (t2**2 + 1) * t1**2 + alpha * t2

    def grad(t):
        t1, t2 = _unbind(t, 2, "valley_with_slope")
        return torch.stack([(t2**2 + 1) * t1, t2 * t1**2 + alpha], -1)

    def hessian(t):
        t1, t2 = _unbind(t, 2, "valley_with_slope")
        return _sym(t, {(0, 0): t2**2 + 1, (0, 1): 2 * t1 * t2, (1, 1): t1**2}, 2)

    def curvatures(t):
        _, t2 = _unbind(t, 2, "valley_with_slope")
        return (t2**2 + 1)[..., None]

    def curvature_grad(t):
        _, t2 = _unbind(t, 2, "valley_with_slope")
        return torch.stack([torch.zeros_like(t2), 2 * t2], -1)[..., None, :]

    return ToyLoss(f"valley_with_slope(alpha={alpha:g})", 2, 1, loss, grad, hessian, curvatures, curvature_grad)
