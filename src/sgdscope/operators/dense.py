"""Dense Hessians for small models (up to about 10k parameters): the exact oracle.

``dense_hessian`` builds H column block by column block with forward-over-reverse products on
identity columns (the same transform as ``torch.func.hessian = jacfwd(jacrev(f))``, chunked so
memory stays bounded), symmetrises it, and answers with ``eigh``.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import torch

from ..problem import Problem
from .hessian import hessian_op

__all__ = ["dense_hessian", "DenseHessian"]

MAX_DENSE_DIM = 20_000


@dataclass(frozen=True)
class DenseHessian:
    """An explicit symmetric (D, D) Hessian with its eigendecomposition (computed once, lazily)."""

    matrix: torch.Tensor

    @cached_property
    def _eigh(self):
        return torch.linalg.eigh(self.matrix)

    @property
    def eigenvalues(self) -> torch.Tensor:
        """All D eigenvalues, ascending."""
        return self._eigh[0]

    @property
    def eigenvectors(self) -> torch.Tensor:
        """(D, D), column i belongs to ``eigenvalues[i]``."""
        return self._eigh[1]

    def top(self, k: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
        """The k largest eigenvalues (descending) and their (D, k) eigenvectors."""
        return self.eigenvalues[-k:].flip(0), self.eigenvectors[:, -k:].flip(1)

    def bottom(self, k: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
        """The k smallest eigenvalues (ascending) and their (D, k) eigenvectors."""
        return self.eigenvalues[:k], self.eigenvectors[:, :k]

    @property
    def negative_sum(self) -> torch.Tensor:
        """Sum of the negative eigenvalues (noise paper §4.1)."""
        ev = self.eigenvalues
        return ev[ev < 0].sum()

    @property
    def trace(self) -> torch.Tensor:
        return torch.diagonal(self.matrix).sum()

    @property
    def frobenius_sq(self) -> torch.Tensor:
        """||H||_F^2 = Tr(H^2)."""
        return (self.matrix**2).sum()

    @property
    def spectral_norm(self) -> torch.Tensor:
        return self.eigenvalues.abs().max()


def dense_hessian(problem: Problem, theta: torch.Tensor | None = None, *, chunk_size: int = 256) -> DenseHessian:
    """The exact (D, D) Hessian of ``problem`` at ``theta``, for D up to ``MAX_DENSE_DIM``."""
    D = problem.dim
    if D > MAX_DENSE_DIM:
        raise ValueError(
            f"dense_hessian: D={D} parameters is too many for a dense matrix (at most {MAX_DENSE_DIM}); "
            "use hessian_op with lanczos / hutchinson_trace instead"
        )
    if chunk_size < 1:
        raise ValueError(f"chunk_size must be >= 1, got {chunk_size}")
    op = hessian_op(problem, theta)
    H = torch.empty(D, D, dtype=problem.dtype, device=problem.device)
    eye = torch.eye(D, dtype=problem.dtype, device=problem.device)
    for start in range(0, D, chunk_size):
        H[:, start : start + chunk_size] = op @ eye[:, start : start + chunk_size]
    return DenseHessian((H + H.T) / 2)
