"""The spectrum of the gradient covariance K from L gradient rows, by the Gram trick.

Normalisation (Break-Even §3 and App. C)
---------------------------------------
Rows ``g_1..g_L`` are gradients of mini-batches of M examples (M = 1: per-example gradients),
``gbar = (1/L) sum_l g_l`` their mean (the estimate of the full gradient) and
``d_l = g_l - gbar``. The covariance of size-M mini-batch gradients is estimated with **1/L**,

    Cov_M = (1/L) sum_l d_l d_l^T,   i.e. the Gram matrix K^M_ij = (1/L) <d_i, d_j>   (App. C),

the convention of the paper, and the one under which L = N per-example rows give exactly the
paper's ``K = (1/N) sum_i (g_i - g)(g_i - g)^T``. (Multiply by L/(L-1) for the unbiased estimate.)
A mean of M examples drawn without replacement from N has covariance ``(N-M)/(M(N-1)) K``, so
the per-example covariance reported here is

    K = c Cov_M,   c = M (N-1)/(N-M)  when ``population`` N is given,  c = M  otherwise (N >> M).

Every eigenvalue, the trace and the spectrum are those of K (divide by ``scale`` = c for the
paper's raw K^M of App. C). Centring removes one dimension: L rows give at most L-1 nonzero
eigenvalues, and lambda_* (the smallest nonzero one) is the (L-1)-th largest.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from ._gram import check_rows, gram, per_example_scale, top_eigh, unit_columns

__all__ = ["covariance_spectrum", "CovarianceSpectrum", "projection_ratio"]


@dataclass(frozen=True)
class CovarianceSpectrum:
    """Eigen-summary of the per-example gradient covariance K estimated from L rows of M examples.

    Attributes:
        values: (k,) the k largest eigenvalues of K, descending (units: squared loss gradient).
        vectors: (D, k) their unit eigenvectors in parameter space (``K e = lambda e``), sign arbitrary.
        spectrum: (L,) all eigenvalues of the (scaled) Gram matrix, descending; the last is ~0.
        trace: Tr(K) = c (1/L) sum_l ||g_l - gbar||^2.
        scale: c, the factor from Cov_M to K (M, or M (N-1)/(N-M)).
        L, M, N: rows, examples per row, population (None if not given).
    """

    values: torch.Tensor
    vectors: torch.Tensor
    spectrum: torch.Tensor
    trace: float
    scale: float
    L: int
    M: int
    N: int | None

    @property
    def top(self) -> float:
        """lambda_1, the largest eigenvalue of K (Break-Even's lambda_K^1)."""
        return float(self.spectrum[0])

    @property
    def smallest_nonzero(self) -> float:
        """lambda_*, the (L-1)-th largest eigenvalue of K (Break-Even App. C's lambda_K^*)."""
        return float(self.spectrum[self.L - 2])

    @property
    def conditioning(self) -> float:
        """lambda_* / lambda_1 (Break-Even Conjecture 2; larger is better conditioned)."""
        return self.smallest_nonzero / self.top


def covariance_spectrum(
    G: torch.Tensor,
    *,
    k: int = 5,
    batch_size: int = 1,
    population: int | None = None,
) -> CovarianceSpectrum:
    """Top-k eigenpairs, lambda_*, and trace of the gradient covariance K from L rows.

    Uses the (L, L) Gram matrix of the centred rows (never a D x D matrix; memory O(L D) for the
    rows plus O(L^2)); eigenvectors are mapped back to parameter space as ``D^T u / ||D^T u||``.
    See the module docstring for the normalisation: 1/L over the rows, times M (or
    ``M (N-1)/(N-M)`` with ``population=N``) to give the per-example K.

    Args:
        G: (L, D) gradient rows, e.g. from :func:`per_example_gradients` (M = 1) or
            :func:`minibatch_gradients` (M = ``batch_size``); L >= 2.
        k: eigenpairs to return, in [1, L-1].
        batch_size: M, the examples averaged in each row.
        population: N, the size of the set the mini-batches are drawn from without replacement.
    """
    check_rows(G, "covariance_spectrum", least=2)
    L = G.shape[0]
    if not 1 <= k <= L - 1:
        raise ValueError(f"k must be in [1, L-1={L - 1}] (centring leaves L-1 nonzero eigenvalues), got {k}")
    c = per_example_scale(batch_size, population)
    mean = G.mean(0)
    spectrum, U = top_eigh(gram(G, mean) * (c / L))
    Uk = U[:, :k].to(device=G.device, dtype=G.dtype)
    vectors = unit_columns((Uk.T @ G - Uk.sum(0)[:, None] * mean).T)  # D^T U, row-major: one pass over G
    return CovarianceSpectrum(
        values=spectrum[:k].to(device=G.device, dtype=G.dtype),
        vectors=vectors,
        spectrum=spectrum.to(device=G.device, dtype=G.dtype),
        trace=float(spectrum.sum()),
        scale=c,
        L=L,
        M=int(batch_size),
        N=None if population is None else int(population),
    )


def projection_ratio(g: torch.Tensor, vectors: torch.Tensor) -> torch.Tensor:
    """``||g|| / ||P g||``, P the orthogonal projection onto the span of the columns of ``vectors``.

    Break-Even §4.3 tracks ``||g|| / ||g_5||`` with ``g_5`` the mini-batch gradient projected on
    the top-5 eigenvectors of K: 1 means g lies in that subspace, larger means it does not.

    Args:
        g: (D,) gradient, or (n, D) rows (one ratio each).
        vectors: (D, k) linearly independent spanning vectors (need not be orthonormal).

    Returns:
        0-d tensor (or (n,)), >= 1; ``inf`` when g is orthogonal to the span.
    """
    if vectors.ndim != 2 or g.shape[-1] != vectors.shape[0] or g.ndim not in (1, 2):
        raise ValueError(
            f"projection_ratio: expected g (D,) or (n, D) and vectors (D, k) with the same D, got "
            f"{tuple(g.shape)} and {tuple(vectors.shape)}"
        )
    V = vectors.to(device=g.device, dtype=g.dtype)
    # ||P g||^2 = b^T (V^T V)^+ b with b = V^T g: two thin products and a k x k solve, no QR of (D, k)
    b = (g @ V).to(torch.float64)
    gram = (V.T @ V).to(torch.float64)
    proj_sq = (b * (b @ torch.linalg.pinv(gram, hermitian=True))).sum(-1).clamp_min(0)
    return torch.linalg.vector_norm(g, dim=-1) / proj_sq.sqrt().to(g.dtype)
