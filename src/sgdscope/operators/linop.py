"""A small linear-operator protocol (after scipy's ``LinearOperator``).

A LinOp has ``shape``, ``dtype``, ``device``, ``op @ v`` for a (D,) vector or a (D, k) matrix,
and ``matvecs``: the number of matrix-vector products done so far (a (D, k) product counts k).
"""
from __future__ import annotations

from typing import Callable, Protocol, runtime_checkable

import torch

__all__ = ["LinOp", "FunctionOp", "dense_op"]


@runtime_checkable
class LinOp(Protocol):
    shape: tuple[int, int]
    dtype: torch.dtype
    device: torch.device
    matvecs: int

    def __matmul__(self, v: torch.Tensor) -> torch.Tensor: ...


class FunctionOp:
    """A symmetric D x D operator defined by a function on (D, k) blocks.

    Args:
        matmat: ``(D, k) -> (D, k)``; it is handed 2-d blocks only.
        dim, dtype, device: what the operator acts on.
    """

    def __init__(self, matmat: Callable[[torch.Tensor], torch.Tensor], dim: int, dtype: torch.dtype, device):
        self._matmat = matmat
        self.shape = (dim, dim)
        self.dtype = dtype
        self.device = torch.device(device)
        self.matvecs = 0

    def __matmul__(self, v: torch.Tensor) -> torch.Tensor:
        if v.ndim not in (1, 2) or v.shape[0] != self.shape[1]:
            raise ValueError(f"expected a ({self.shape[1]},) vector or ({self.shape[1]}, k) matrix, got {tuple(v.shape)}")
        if v.dtype != self.dtype or v.device != self.device:
            v = v.to(dtype=self.dtype, device=self.device)
        block = v if v.ndim == 2 else v[:, None]
        self.matvecs += block.shape[1]
        out = self._matmat(block)
        return out if v.ndim == 2 else out[:, 0]

    def matvec(self, v: torch.Tensor) -> torch.Tensor:
        return self @ v

    def to_scipy(self):
        """A ``scipy.sparse.linalg.LinearOperator`` over numpy float arrays (for references such as eigsh)."""
        import numpy as np
        from scipy.sparse.linalg import LinearOperator

        np_dtype = torch.empty((), dtype=self.dtype).numpy().dtype

        def mv(x):
            t = torch.as_tensor(np.asarray(x).reshape(self.shape[1], -1), dtype=self.dtype, device=self.device)
            return (self @ t).cpu().numpy().reshape(np.shape(x))

        return LinearOperator(self.shape, matvec=mv, matmat=mv, rmatvec=mv, dtype=np_dtype)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(shape={self.shape}, dtype={self.dtype}, device={self.device}, matvecs={self.matvecs})"


def dense_op(matrix: torch.Tensor) -> FunctionOp:
    """Wrap an explicit symmetric (D, D) matrix as a LinOp (for tests, toys and small models)."""
    if matrix.ndim != 2 or matrix.shape[0] != matrix.shape[1]:
        raise ValueError(f"expected a square matrix, got shape {tuple(matrix.shape)}")
    return FunctionOp(lambda V: matrix @ V, matrix.shape[0], matrix.dtype, matrix.device)
