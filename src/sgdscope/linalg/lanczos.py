"""Extreme eigenpairs of a symmetric LinOp by Lanczos with full reorthogonalisation.

The basis is expanded by the Ritz residual of the least converged wanted pair. From one start
vector this spans exactly the Krylov space (it *is* Lanczos, with explicit reorthogonalisation
against the whole basis). A warm start from a (D, m) block of previous eigenvectors (tracking
training) starts from their sum: every previous direction is in the start vector, and the Krylov
space of one vector separates a cluster of eigenvalues in fewer products than a block-Krylov space
of the block (measured in ARCHITECTURE.md and benchmarks/README.md).

Residuals are explicit: ``||H y - theta y||`` from the stored products H Q, at no extra product.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass

import torch
from tqdm.auto import tqdm

from ..operators.linop import LinOp
from ._basis import Basis
from ._draws import gaussian

__all__ = ["lanczos", "LanczosResult"]

_WHICH = ("LA", "SA", "LM")


@dataclass(frozen=True)
class LanczosResult:
    """k Ritz pairs: ``values`` (k,) ordered from the extreme inwards, ``vectors`` (D, k) unit
    columns, ``residuals`` (k,) = ||H v_i - values_i v_i||, ``matvecs`` products spent,
    ``converged`` whether every residual met the tolerance."""

    values: torch.Tensor
    vectors: torch.Tensor
    residuals: torch.Tensor
    matvecs: int
    converged: bool


def _wanted(theta: torch.Tensor, k: int, which: str) -> torch.Tensor:
    if which == "LA":
        return torch.arange(len(theta) - 1, max(len(theta) - k, 0) - 1, -1)
    if which == "SA":
        return torch.arange(min(k, len(theta)))
    return torch.argsort(theta.abs(), descending=True)[:k]


def lanczos(
    op: LinOp,
    k: int = 1,
    *,
    which: str = "LA",
    tol: float = 1e-3,
    max_iter: int | None = None,
    v0: torch.Tensor | None = None,
    generator: torch.Generator | None = None,
    progress: bool = False,
) -> LanczosResult:
    """The k largest (``"LA"``), smallest (``"SA"``) or largest-magnitude (``"LM"``) eigenpairs.

    Stops when every wanted Ritz residual ``||H v - lambda v|| <= tol * |lambda_1|``, where
    ``lambda_1`` is the most extreme wanted Ritz value, or after ``max_iter`` products
    (default ``min(D, 20 k + 100)``; a ``RuntimeWarning`` then says it did not converge).

    Args:
        op: symmetric (D, D) LinOp, e.g. :func:`~sgdscope.hessian_op`.
        v0: start vector (D,), or a (D, m) block (previous eigenvectors) for a warm start: the
            sum of its unit columns is the start vector.
        generator: the source of the random start vector (and of restarts after an exact
            invariant subspace); the result is deterministic given it.
        progress: show a progress bar of products (out of ``max_iter``) with the current
            largest relative residual.
    """
    D = op.shape[0]
    if which not in _WHICH:
        raise ValueError(f"which must be one of {_WHICH}, got {which!r}")
    if not 1 <= k <= D:
        raise ValueError(f"k must be in [1, D={D}], got {k}")
    if tol <= 0:
        raise ValueError(f"tol must be positive, got {tol}")
    max_iter = min(D, 20 * k + 100) if max_iter is None else int(max_iter)
    if not k <= max_iter <= D:
        raise ValueError(f"max_iter must be in [k={k}, D={D}], got {max_iter}")

    first = op.matvecs
    basis = Basis(op, min(max_iter, 2 * k + 20))
    if v0 is not None:
        if v0.ndim not in (1, 2) or v0.shape[0] != D:
            raise ValueError(f"v0 must have shape ({D},) or ({D}, m), got {tuple(v0.shape)}")
        start = v0 if v0.ndim == 1 else (v0 / torch.linalg.vector_norm(v0, dim=0).clamp_min(1e-300)).sum(1)
        basis.add(start.to(op.device))  # a zero or non-finite start is refused: random below
    if basis.m == 0:
        basis.add(gaussian(D, dtype=op.dtype, device=op.device, generator=generator))

    bar = tqdm(total=max_iter, initial=basis.m, desc=f"lanczos top-{k} {which}", unit="Hv", leave=False, disable=not progress)
    converged = False
    while True:
        theta, S = basis.ritz()
        idx = _wanted(theta, k, which)
        vals = theta[idx]
        Sw = S[:, idx].to(op.dtype).to(op.device)
        Y = basis.Q @ Sw
        R = basis.HQ @ Sw - Y * vals.to(op.dtype).to(op.device)
        res = torch.linalg.vector_norm(R, dim=0).to(torch.float64).cpu()
        scale = vals.abs().max()
        if len(idx) == k and bool((res <= tol * scale).all()):
            converged = True
            break
        if basis.m >= max_iter:
            break
        worst = int(torch.argmax(res / scale.clamp_min(1e-300)))
        bar.update(1)
        bar.set_postfix(residual=f"{float(res[worst] / scale.clamp_min(1e-300)):.1e}", refresh=False)
        if not basis.add(R[:, worst]):
            # the residual lies in span(Q) numerically: an invariant subspace; restart randomly
            added = False
            for _ in range(3):
                if basis.add(gaussian(D, dtype=op.dtype, device=op.device, generator=generator)):
                    added = True
                    break
            if not added:
                converged = bool((res <= tol * scale).all()) and len(idx) == k
                break
    bar.close()
    if not converged:
        warnings.warn(
            f"lanczos: {k} {which} pairs not converged to tol={tol} after {basis.m} products "
            f"(largest relative residual {float((res / scale.clamp_min(1e-300)).max()):.2e}); "
            "raise max_iter or tol",
            RuntimeWarning,
            stacklevel=2,
        )
    return LanczosResult(
        values=vals.to(op.dtype).to(op.device),
        vectors=Y,
        residuals=res.to(op.dtype).to(op.device),
        matvecs=op.matvecs - first,
        converged=converged,
    )
