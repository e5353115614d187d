"""An orthonormal basis Q that grows one vector at a time, with H Q and T = Q^T H Q kept alongside.

It is the one mechanism behind Lanczos (expand by the Ritz residual: in exact arithmetic this
is the Krylov direction, so a single start vector gives Lanczos with full reorthogonalisation)
and stochastic Lanczos quadrature (expand by the last product: the Krylov space of one vector).
Every added vector costs exactly one product with the operator.
"""
from __future__ import annotations

import torch

from ..operators.linop import LinOp


class Basis:
    """Vectors are stored as rows (``_Q[j]`` contiguous), so appending one and projecting against
    all of them are contiguous passes; :attr:`Q` and :attr:`HQ` are the usual (D, m) views."""

    def __init__(self, op: LinOp, capacity: int):
        self.op = op
        self.dim = op.shape[0]
        self.m = 0
        cap = max(1, min(capacity, self.dim))
        self._Q = torch.empty(cap, self.dim, dtype=op.dtype, device=op.device)
        self._HQ = torch.empty_like(self._Q)
        self.T = torch.zeros(cap, cap, dtype=torch.float64)  # small, on the CPU

    @property
    def Q(self) -> torch.Tensor:
        """(D, m) orthonormal basis (a view)."""
        return self._Q[: self.m].T

    @property
    def HQ(self) -> torch.Tensor:
        """(D, m) products H Q (a view)."""
        return self._HQ[: self.m].T

    def _grow(self):
        cap = min(self.dim, 2 * self._Q.shape[0])
        for name in ("_Q", "_HQ"):
            old = getattr(self, name)
            new = torch.empty(cap, self.dim, dtype=old.dtype, device=old.device)
            new[: self.m] = old[: self.m]
            setattr(self, name, new)
        T = torch.zeros(cap, cap, dtype=torch.float64)
        T[: self.m, : self.m] = self.T[: self.m, : self.m]
        self.T = T

    def add(self, w: torch.Tensor, *, rel_tol: float = 1e-6) -> bool:
        """Orthogonalise ``w`` against Q (twice), append it and its product; False if ``w`` lies in span(Q)."""
        if self.m >= self.dim:
            return False
        w = w.to(self.op.dtype).clone()
        norm0 = torch.linalg.vector_norm(w)
        if not torch.isfinite(norm0) or norm0 == 0:
            return False
        Q = self._Q[: self.m]
        for _ in range(2):  # classical Gram-Schmidt, twice, is enough
            if self.m:
                w -= (Q @ w) @ Q
        norm = torch.linalg.vector_norm(w)
        if norm <= rel_tol * norm0:
            return False
        if self.m == self._Q.shape[0]:
            self._grow()
        q = w / norm
        hq = self.op @ q
        if not torch.isfinite(hq).all():
            raise FloatingPointError("the operator returned a non-finite product (NaN or inf in H v)")
        j = self.m
        self._Q[j] = q
        self._HQ[j] = hq
        col = (self._Q[: j + 1] @ hq).to(torch.float64).cpu()
        self.T[: j + 1, j] = col
        self.T[j, : j + 1] = col
        self.m += 1
        return True

    def ritz(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Ritz values (ascending, float64 CPU) and coefficients S (m, m) of the projected matrix."""
        T = self.T[: self.m, : self.m]
        return torch.linalg.eigh((T + T.T) / 2)
