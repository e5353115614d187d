"""Stochastic trace and Frobenius-norm estimators of a symmetric LinOp.

* ``hutchinson_trace``: Tr(H) = E[z^T H z] over Rademacher z (noise paper §4.3).
* ``hutchpp_trace``: Hutch++ (Meyer et al. 2021): the trace of a rank-s sketch exactly, plus
  Hutchinson on the deflated remainder; same product budget, lower variance when H has a few
  dominant eigenvalues (as Hessians of networks do).
* ``frobenius_sq``: ||H||_F^2 = Tr(H^2) = E[||H z||^2] (the poster's Frobenius norm).
"""
from __future__ import annotations

import torch

from ..operators.linop import LinOp
from ._draws import rademacher
from .estimate import Estimate

__all__ = ["hutchinson_trace", "hutchpp_trace", "frobenius_sq"]


def _probes(D: int, n: int, op: LinOp, generator) -> torch.Tensor:
    """(D, n) Rademacher probes in the operator's dtype and device."""
    return rademacher((D, n), dtype=op.dtype, device=op.device, generator=generator)


def _products(op: LinOp, Z: torch.Tensor, block_size: int) -> torch.Tensor:
    return torch.cat([op @ Z[:, i : i + block_size] for i in range(0, Z.shape[1], block_size)], dim=1)


def _check(num_matvecs: int, least: int, block_size: int):
    if num_matvecs < least:
        raise ValueError(f"num_matvecs must be at least {least} (for a standard error), got {num_matvecs}")
    if block_size < 1:
        raise ValueError(f"block_size must be >= 1, got {block_size}")


def hutchinson_trace(op: LinOp, num_matvecs: int = 100, *, generator=None, block_size: int = 1) -> Estimate:
    """Tr(H) from ``num_matvecs`` Rademacher probes; ``block_size`` probes go through ``op`` at once."""
    _check(num_matvecs, 2, block_size)
    Z = _probes(op.shape[0], num_matvecs, op, generator)
    samples = (Z * _products(op, Z, block_size)).sum(0)
    return Estimate.from_samples(samples, num_matvecs)


def hutchpp_trace(op: LinOp, num_matvecs: int = 102, *, generator=None, block_size: int = 1) -> Estimate:
    """Hutch++ with ``s = num_matvecs // 3`` sketch columns: Tr(Q^T H Q) + Hutchinson on
    (I - QQ^T) H (I - QQ^T). The standard error is that of the Hutchinson part (the sketch is exact)."""
    _check(num_matvecs, 4, block_size)
    D = op.shape[0]
    s = max(1, min(num_matvecs // 3, D))
    n = num_matvecs - 2 * s
    S = _probes(D, s, op, generator)
    Q, _ = torch.linalg.qr(_products(op, S, block_size))
    low_rank = float(torch.trace(Q.T @ _products(op, Q, block_size)).double())
    Z = _probes(D, n, op, generator)
    Z = Z - Q @ (Q.T @ Z)
    samples = (Z * _products(op, Z, block_size)).sum(0)
    return Estimate.from_samples(samples, num_matvecs, offset=low_rank)


def frobenius_sq(op: LinOp, num_matvecs: int = 100, *, generator=None, block_size: int = 1) -> Estimate:
    """||H||_F^2 = Tr(H^2) = E||H z||^2 over Rademacher z."""
    _check(num_matvecs, 2, block_size)
    Z = _probes(op.shape[0], num_matvecs, op, generator)
    samples = (_products(op, Z, block_size) ** 2).sum(0)
    return Estimate.from_samples(samples, num_matvecs)
