"""The uncentred second moment of the gradients, ``G = K + g g^T`` (Walk with SGD eq. 2, App. B).

For the negative log-likelihood, ``H = C + g g^T + (second-order term)`` (Walk App. B, eqs. 6-11),
with ``C = (1/N) sum_i (g_i - g)(g_i - g)^T``: so lambda_1(C + g g^T) is the Gauss-Newton-like
part of lambda_H^1 (and Break-Even §3 Assumption 2 compares it with the Hessian's top).

Scale: **per example**. Here K is the per-example covariance C, estimated from mini-batch rows
as ``c K^M`` (App. C's K^M times ``c = M (N-1)/(N-M)``, or M without N; see
:mod:`sgdscope.noise.covariance`), not the paper's K^M that :func:`covariance_spectrum` reports
as primary: the comparison with lambda_H^1 is with the per-example C of Walk eq. 2, and adding
``gbar gbar^T`` to K^M (whose noise shrinks like 1/M) would mix two scales.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from ._gram import check_rows, gram, per_example_scale, top_eigh, unit_columns

__all__ = ["uncentred_moment_top", "MomentSpectrum"]


@dataclass(frozen=True)
class MomentSpectrum:
    """Top eigenpairs of ``K + gbar gbar^T``, K the per-example covariance ``c K^M`` (per-example scale).

    Attributes:
        values: (k,) largest eigenvalues, descending.
        vectors: (D, k) unit eigenvectors.
        trace: Tr(K) + ||gbar||^2 = c Tr K^M + ||gbar||^2.
        mean_sq_norm: ||gbar||^2, the part of the trace carried by the mean gradient.
        L, M, N: rows, examples per row, population (None if not given).
    """

    values: torch.Tensor
    vectors: torch.Tensor
    trace: float
    mean_sq_norm: float
    L: int
    M: int
    N: int | None

    @property
    def lambda_1(self) -> float:
        """The largest eigenvalue of K + gbar gbar^T (per-example scale), to compare with lambda_H^1."""
        return float(self.values[0])


def uncentred_moment_top(
    G: torch.Tensor,
    *,
    k: int = 1,
    batch_size: int = 1,
    population: int | None = None,
) -> MomentSpectrum:
    """Top-k eigenpairs of the uncentred moment ``K + gbar gbar^T`` from L gradient rows.

    On the **per-example** scale: ``K = c K^M = (c/L) sum_l (g_l - gbar)(g_l - gbar)^T``, i.e.
    :func:`covariance_spectrum`'s K^M times its ``scale`` ``c = M (N-1)/(N-M)`` (``c = M``
    without ``population``), and ``gbar`` is the mean row. For per-example rows (M = 1)
    this is exactly ``(1/L) sum_l g_l g_l^T`` = C + g g^T of Walk App. B. The Gram trick runs on
    the L + 1 rows ``A = [sqrt(c/L) (g_l - gbar); gbar]``, since ``A^T A = K + gbar gbar^T``.

    Args:
        G: (L, D) gradient rows, L >= 1.
        k: eigenpairs, in [1, L] (L + 1 rows, rank at most L).
        batch_size, population: M and N as in :func:`covariance_spectrum`.
    """
    check_rows(G, "uncentred_moment_top", least=1)
    L = G.shape[0]
    if not 1 <= k <= L:
        raise ValueError(f"k must be in [1, L={L}], got {k}")
    c = per_example_scale(batch_size, population)
    mean = G.mean(0)
    s = (c / L) ** 0.5
    n2 = float((mean.double() @ mean.double()))
    cross = (G @ mean).double().cpu() - n2  # (g_l - gbar) . gbar
    A = torch.empty(L + 1, L + 1, dtype=torch.float64)
    A[:L, :L] = gram(G, mean).cpu() * s**2
    A[:L, L] = A[L, :L] = cross * s
    A[L, L] = n2
    vals, U = top_eigh(A)
    Uk = U[:, :k].to(device=G.device, dtype=G.dtype)
    top, last = Uk[:L], Uk[L]
    vectors = unit_columns(s * (G.T @ top - mean[:, None] * top.sum(0)) + mean[:, None] * last)
    return MomentSpectrum(
        values=vals[:k].to(device=G.device, dtype=G.dtype),
        vectors=vectors,
        trace=float(torch.trace(A)),
        mean_sq_norm=n2,
        L=L,
        M=int(batch_size),
        N=None if population is None else int(population),
    )
