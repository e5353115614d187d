"""The spectrum of the gradient covariance from L gradient rows, by the Gram trick.

Normalisation (Break-Even §3 and App. C)
---------------------------------------
Rows ``g_1..g_L`` are the gradients of L mini-batches of M examples each (M = 1: per-example
gradients). The full-batch gradient g is estimated by their mean ``gbar = (1/L) sum_l g_l``.
The **primary** quantity, on the paper's scale, is App. C's

    K^M = (1/L) sum_l (g_l - gbar)(g_l - gbar)^T,   Gram matrix  K^M_ij = (1/L) <g_i - gbar, g_j - gbar>,

with 1/L and no rescaling: ``values``, ``spectrum``, ``trace``, ``lambda_1``, ``lambda_star`` and
``ratio`` of :class:`CovarianceSpectrum` are those of K^M, the numbers Break-Even reports as
lambda_K^1, lambda_K^*, lambda_K^*/lambda_K^1 and Tr K (e.g. SimpleCNN on CIFAR-10, M = 128:
max lambda_K^1 = 0.68 at lr 0.1 and 3.30 at lr 0.01). Centring on gbar removes one dimension:
L rows give at most L-1 nonzero eigenvalues, and lambda_* (the smallest nonzero one) is the
(L-1)-th largest (App. C). With the L = N per-example rows of a whole set, K^1 is exactly the
per-example ``K = (1/N) sum_i (g_i - g)(g_i - g)^T`` of Break-Even §3.

Per-example scale (explicit names only). The gradient of M examples drawn without replacement
from N has covariance ``Cov_M = (N-M)/(M(N-1)) K``, so

    c K^M estimates K,   c = ``scale`` = M (N-1)/(N-M)  with ``population`` N,   c = M  without (N >> M),

reported as ``scale``, ``lambda_1_per_example`` = c lambda_1 and ``trace_per_example`` = c Tr K^M
(up to the factor (L-1)/L of centring, below). This scale compares runs with different M (for
M = 128 of N = 5085 examples, c = 131.3); with all size-M subsets of N as the rows, c K^M is
exactly the K of the N per-example rows.

Estimating g by gbar, as the paper does: ``E[Tr K^M] = E[(1/L) sum_l ||g_l - gbar||^2] =
(L-1)/L Tr Cov_M`` for independent mini-batches (multiply by L/(L-1) for the unbiased
estimate). Centring on the full-batch gradient g instead would cost one more full gradient, make
the estimate unbiased, ``E[(1/L) sum_l ||g_l - g||^2] = Tr Cov_M``, and lose no dimension: L
nonzero eigenvalues instead of L-1 (lambda_* would then be the L-th).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from ._gram import centred_gram, column_blocks, join_columns, per_example_scale, rows_times, top_eigh

__all__ = ["covariance_spectrum", "CovarianceSpectrum", "projection_ratio", "projection_ratio_from_rows"]


@dataclass(frozen=True)
class CovarianceSpectrum:
    """Eigen-summary of App. C's K^M from L mini-batch gradient rows of M examples each.

    Primary values are on the paper's K^M scale (1/L over the centred rows, no rescaling); the
    per-example K is ``scale`` times them (module docstring).

    Attributes:
        values: (k,) the k largest eigenvalues of K^M, descending (units: squared loss gradient).
        vectors: (D, k) their unit eigenvectors in parameter space (``K^M e = lambda e``), sign
            arbitrary; the same for the per-example K, which differs by the factor ``scale``.
            None when not asked for (``vectors=False``): ``coefficients`` give them from the rows.
        coefficients: (L, k) float64, the eigenvectors as combinations of the rows,
            ``vectors = G^T coefficients`` (column j: ``P u_j / sqrt(L lambda_j)`` for the unit
            eigenvector ``u_j`` of the Gram matrix, ``P = I - 1 1^T / L``; zero where
            ``lambda_j <= L eps lambda_1``, eps of the rows' dtype: a direction the rows do not
            resolve, whose vector is set by rounding).
        spectrum: (L,) all eigenvalues of the Gram matrix of K^M, descending; the last is ~0.
        trace: Tr K^M = (1/L) sum_l ||g_l - gbar||^2.
        scale: c, the factor from K^M to the per-example K: M (N-1)/(N-M), or M without N.
        L, M, N: rows, examples per row, population (None if not given).
    """

    values: torch.Tensor
    vectors: torch.Tensor | None
    coefficients: torch.Tensor
    spectrum: torch.Tensor
    trace: float
    scale: float
    L: int
    M: int
    N: int | None

    @property
    def lambda_1(self) -> float:
        """The largest eigenvalue of K^M (Break-Even's lambda_K^1, as reported in the paper)."""
        return float(self.spectrum[0])

    @property
    def lambda_star(self) -> float:
        """lambda_*, the (L-1)-th largest eigenvalue of K^M (App. C's smallest nonzero one, lambda_K^*)."""
        return float(self.spectrum[self.L - 2])

    @property
    def ratio(self) -> float:
        """lambda_* / lambda_1 (Break-Even Conjecture 2; an inverse condition number, larger is better
        conditioned; the same on either scale)."""
        return self.lambda_star / self.lambda_1

    @property
    def lambda_1_per_example(self) -> float:
        """c lambda_1, the largest eigenvalue of the per-example covariance K estimated as c K^M."""
        return self.scale * self.lambda_1

    @property
    def trace_per_example(self) -> float:
        """c Tr K^M, the trace of the per-example covariance K (Break-Even App. C: (1/N) sum_i ||g_i - g||^2)."""
        return self.scale * self.trace


def covariance_spectrum(
    G: torch.Tensor,
    *,
    k: int = 5,
    batch_size: int = 1,
    population: int | None = None,
    vectors: bool = True,
) -> CovarianceSpectrum:
    """Top-k eigenpairs, lambda_*, and trace of App. C's K^M from L gradient rows.

    The primary scale is the paper's, with g estimated by the mean row ``gbar = (1/L) sum_l g_l``:

        K^M = (1/L) sum_l (g_l - gbar)(g_l - gbar)^T,   K^M_ij = (1/L) <g_i - gbar, g_j - gbar>   (App. C),

    so ``values``, ``spectrum``, ``trace``, ``lambda_1``, ``lambda_star`` and ``ratio`` are K^M's,
    with no factor of M. The per-example covariance is ``K = c K^M``,
    ``c = M (N-1)/(N-M)`` (``c = M`` without ``population``): ``scale``, ``lambda_1_per_example``
    and ``trace_per_example``. Centring on gbar leaves L-1 nonzero eigenvalues and
    ``E[Tr K^M] = (L-1)/L Tr Cov_M`` (Cov_M: the covariance of one size-M mini-batch gradient);
    centring on the full-batch gradient instead would give L nonzero eigenvalues and the unbiased
    ``E[(1/L) sum_l ||g_l - g||^2] = Tr Cov_M`` (module docstring).

    Uses the (L, L) Gram matrix of the centred rows (never a D x D matrix; memory O(L D) for the
    rows plus O(L^2)); eigenvectors are mapped back to parameter space as ``D^T u / ||D^T u||``
    (one more pass over the rows, skipped with ``vectors=False``: the ratio ||g|| / ||g_k|| of
    Break-Even §4.3 then comes from the rows, :func:`projection_ratio_from_rows`).

    Args:
        G: (L, D) gradient rows, e.g. from :func:`per_example_gradients` (M = 1) or
            :func:`minibatch_gradients` (M = ``batch_size``), or a list of (L, D_i) column blocks
            of them (``minibatch_gradients(..., blocks=True)``: no L x D copy); L >= 2.
        k: eigenpairs to return, in [1, L-1].
        batch_size: M, the examples averaged in each row (used only for the per-example scale c).
        population: N, the size of the set the mini-batches are drawn from without replacement
            (used only for c).
        vectors: map the top-k eigenvectors to parameter space (default); False leaves ``vectors``
            None and saves a pass over the rows (``coefficients`` are always there).
    """
    blocks = column_blocks(G, "covariance_spectrum", least=2)
    L = blocks[0].shape[0]
    if not 1 <= k <= L - 1:
        raise ValueError(f"k must be in [1, L-1={L - 1}] (centring leaves L-1 nonzero eigenvalues), got {k}")
    KM = centred_gram(blocks) / L  # (L, L) Gram matrix of K^M, float64: one pass over G

    def back(PU):
        PU = PU.to(device=blocks[0].device, dtype=blocks[0].dtype).T
        return join_columns([PU @ b for b in blocks])

    return spectrum_from_gram(KM, back if vectors else None, k=k, batch_size=batch_size, population=population,
                              like=blocks[0])


def spectrum_from_gram(KM: torch.Tensor, back, *, k: int, batch_size: int, population: int | None,
                       like: torch.Tensor) -> CovarianceSpectrum:
    """The :class:`CovarianceSpectrum` of the (L, L) float64 Gram matrix ``KM`` of K^M.
    ``back(P U)``: ``G^T (P U)`` as (k, D) for the top-k eigenvectors U of KM, P = I - 1 1^T / L
    (D^T U = (G - 1 gbar^T)^T U = G^T (P U): one more pass over the rows, with no centred copy),
    or None for no eigenvectors; ``like``: the rows' dtype and device."""
    spectrum, U = top_eigh(KM)
    L = KM.shape[0]
    PU = U[:, :k] - U[:, :k].mean(0)
    lam = spectrum[:k]  # ||D^T u_j||^2 = u_j^T D D^T u_j = L lambda_j
    resolved = lam > L * torch.finfo(like.dtype).eps * spectrum[0].clamp_min(0)  # else rounding decides u_j
    coefficients = torch.where(resolved, PU / (L * lam.clamp_min(torch.finfo(lam.dtype).tiny)).sqrt(), torch.zeros_like(PU))
    vectors = None
    if back is not None:
        V = back(PU)  # (k, D), then normalised in place
        vectors = V.div_(torch.linalg.vector_norm(V, dim=1, keepdim=True).clamp_min(torch.finfo(V.dtype).tiny)).T
    return CovarianceSpectrum(
        values=spectrum[:k].to(device=like.device, dtype=like.dtype),
        vectors=vectors,
        coefficients=coefficients,
        spectrum=spectrum.to(device=like.device, dtype=like.dtype),
        trace=float(torch.trace(KM)),
        scale=per_example_scale(batch_size, population),
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


def projection_ratio_from_rows(g: torch.Tensor, rows, spec: CovarianceSpectrum) -> torch.Tensor:
    """``projection_ratio(g, spec.vectors)`` computed from the rows ``spec`` was computed from,
    without the eigenvectors: with ``vectors = G^T C`` (C = ``spec.coefficients``, orthonormal
    columns), ``||P g||^2 = ||C^T (G g)||^2``, one matrix-vector pass over the rows (the eigenvectors
    cost a k-column product and k D more numbers). Directions the rows do not resolve (zero
    ``coefficients``) are left out.

    Args:
        g: (D,) gradient, or (n, D) rows (one ratio each).
        rows: the gradient rows given to :func:`covariance_spectrum` (a matrix or its column blocks),
            or the :class:`~sgdscope.noise.ShardedRows` given to ``sharded_covariance_spectrum``.
        spec: their spectrum.

    Returns:
        0-d tensor (or (n,)), >= 1; ``inf`` when g is orthogonal to the span.
    """
    from .sharded import ShardedRows  # sharded builds on this module

    Gg = rows.times(g) if isinstance(rows, ShardedRows) else rows_times(column_blocks(rows, "projection_ratio_from_rows"), g)
    C = spec.coefficients.to(Gg.device)
    if Gg.shape[0] != C.shape[0]:
        raise ValueError(f"projection_ratio_from_rows: {Gg.shape[0]} rows, but the spectrum is of L={C.shape[0]}")
    b = C.T @ Gg  # (k,) or (k, n): V^T g
    return torch.linalg.vector_norm(g, dim=-1) / torch.linalg.vector_norm(b, dim=0).to(device=g.device, dtype=g.dtype)
