"""Fluctuation-dissipation check of stationarity (noise paper App. A.5, after Yaida 2019).

For SGD with momentum mu and dampening nu (torch's convention: v_{t+1} = mu v_t + (1 - nu) g_t,
theta_{t+1} = theta_t - eta v_{t+1}), stationarity of theta^2 and theta.v gives

    O_L = < theta . g >  =  eta (1 + mu) / (2 (1 - nu)) < |v|^2 >  = O_R          (FDR)
    < P theta . P g >    =  eta (1 + mu) / (2 (1 - nu)) < |P v|^2 >                (FDR')

with P = V V^T the projection on a subspace (e.g. the top-1 Hessian eigenspace). The distance
from stationarity is |O_L / O_R - 1| over a window of steps (Yaida's threshold: 1e-2).
"""
from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import torch

__all__ = ["fdr_observables", "fdr_ratio", "FDRResult", "FDRMonitor"]


@dataclass(frozen=True)
class FDRResult:
    """``o_left``, ``o_right`` window means; ``ratio`` = |o_left / o_right - 1| in the full space;
    ``*_subspace`` the same projected on the subspace (``None`` without one); ``steps`` in the window."""

    o_left: float
    o_right: float
    ratio: float
    o_left_subspace: float | None
    o_right_subspace: float | None
    ratio_subspace: float | None
    steps: int


def _factor(lr: float, momentum: float, dampening: float) -> float:
    if not 0 <= momentum < 1:
        raise ValueError(f"momentum must be in [0, 1), got {momentum}")
    if not 0 <= dampening < 1:
        raise ValueError(f"dampening must be in [0, 1), got {dampening}")
    return lr * (1 + momentum) / (2 * (1 - dampening))


def fdr_observables(theta, grad, velocity, *, lr: float, momentum: float = 0.0, dampening: float = 0.0, basis=None):
    """Per-step O_L = theta_t . g_t and O_R = eta (1+mu)/(2(1-nu)) |v_{t+1}|^2.

    ``theta``, ``grad``, ``velocity``: (D,) or (T, D) (theta before the step, the gradient used
    by the step, the velocity of the step: ``theta_{t+1} = theta_t - lr v_{t+1}``).
    ``basis``: (D, k) orthonormal; then the projected observables (FDR') are returned.
    Returns (O_L, O_R), each () or (T,).
    """
    c = _factor(lr, momentum, dampening)
    if basis is not None:
        theta, grad, velocity = theta @ basis, grad @ basis, velocity @ basis
    return (theta * grad).sum(-1), c * (velocity * velocity).sum(-1)


def _ratio(o_left: float, o_right: float) -> float:
    return abs(o_left / o_right - 1) if o_right != 0 else float("inf")


def fdr_ratio(
    thetas, grads, velocities, *, lr: float, momentum: float = 0.0, dampening: float = 0.0, basis=None
) -> FDRResult:
    """|O_L / O_R - 1| over a window of T steps given as (T, D) stacks (see :func:`fdr_observables`)."""
    if not thetas.shape == grads.shape == velocities.shape or thetas.ndim != 2:
        raise ValueError(
            f"expected three (T, D) stacks of equal shape, got {tuple(thetas.shape)}, {tuple(grads.shape)}, "
            f"{tuple(velocities.shape)}"
        )
    ol, orr = fdr_observables(thetas, grads, velocities, lr=lr, momentum=momentum, dampening=dampening)
    ol, orr = float(ol.mean()), float(orr.mean())
    sub = (None, None, None)
    if basis is not None:
        pl, pr = fdr_observables(thetas, grads, velocities, lr=lr, momentum=momentum, dampening=dampening, basis=basis)
        pl, pr = float(pl.mean()), float(pr.mean())
        sub = (pl, pr, _ratio(pl, pr))
    return FDRResult(ol, orr, _ratio(ol, orr), *sub, steps=thetas.shape[0])


class FDRMonitor:
    """Streaming FDR check over the last ``window`` steps, fed one step at a time.

    ``update(theta, grad, lr=, momentum=, dampening=, velocity=None)`` with ``theta`` the flat
    parameters *before* the step and ``grad`` the (mini-batch) gradient the step used. Without
    ``velocity`` it is tracked here with torch's SGD recursion (first step: v = g). The
    subspace (``basis`` (D, k), e.g. the top-1 Hessian eigenvector) may change between steps:
    each step is projected on the basis current at that step (:meth:`set_basis`).
    """

    def __init__(self, window: int = 1000, *, basis: torch.Tensor | None = None):
        if window < 1:
            raise ValueError(f"window must be >= 1 step, got {window}")
        self.window = int(window)
        self.basis = basis
        self._full: deque = deque(maxlen=self.window)
        self._sub: deque = deque(maxlen=self.window)
        self._velocity: torch.Tensor | None = None

    def set_basis(self, basis: torch.Tensor | None) -> None:
        """Project the following steps on span(basis) (D, k); ``None`` stops the projected check."""
        self.basis = None if basis is None else (basis[:, None] if basis.ndim == 1 else basis)

    def update(self, theta, grad, *, lr: float, momentum: float = 0.0, dampening: float = 0.0, velocity=None) -> None:
        theta, grad = theta.detach().reshape(-1), grad.detach().reshape(-1)
        if velocity is None:
            if self._velocity is None:
                velocity = grad.clone()
            else:
                velocity = momentum * self._velocity + (1 - dampening) * grad
        velocity = velocity.detach().reshape(-1)
        self._velocity = velocity
        ol, orr = fdr_observables(theta, grad, velocity, lr=lr, momentum=momentum, dampening=dampening)
        self._full.append(torch.stack([ol, orr]))  # stays on the device: no sync per step
        if self.basis is not None:
            pl, pr = fdr_observables(
                theta, grad, velocity, lr=lr, momentum=momentum, dampening=dampening, basis=self.basis
            )
            self._sub.append(torch.stack([pl, pr]))

    def result(self) -> FDRResult:
        """Window means and |O_L / O_R - 1| (full space and, if fed, the subspace)."""
        if not self._full:
            raise RuntimeError("FDRMonitor.result(): no step fed yet")
        ol, orr = torch.stack(list(self._full)).double().mean(0).tolist()
        sub = (None, None, None)
        if self._sub:
            pl, pr = torch.stack(list(self._sub)).double().mean(0).tolist()
            sub = (pl, pr, _ratio(pl, pr))
        return FDRResult(ol, orr, _ratio(ol, orr), *sub, steps=len(self._full))
