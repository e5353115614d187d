"""Parameters <-> one flat vector.

A :class:`FlatSpec` records names, shapes and offsets of a selection of tensors so that a
flat vector of length ``D = sum(numel)`` can be cut back into named views without copies.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

import torch

__all__ = ["FlatSpec"]


@dataclass(frozen=True)
class FlatSpec:
    names: tuple[str, ...]
    shapes: tuple[torch.Size, ...]

    @classmethod
    def of(cls, named: Mapping[str, torch.Tensor]) -> "FlatSpec":
        return cls(tuple(named), tuple(t.shape for t in named.values()))

    @property
    def numels(self) -> tuple[int, ...]:
        return tuple(int(torch.Size(s).numel()) for s in self.shapes)

    @property
    def dim(self) -> int:
        return sum(self.numels)

    def flatten(self, named: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """Concatenate ``named[n]`` for every name of the spec into a (D,) vector."""
        return torch.cat([named[n].reshape(-1) for n in self.names])

    def unflatten(self, vec: torch.Tensor) -> dict[str, torch.Tensor]:
        """Cut a (D,) vector into named views of the recorded shapes."""
        if vec.ndim != 1 or vec.shape[0] != self.dim:
            raise ValueError(f"expected a flat vector of shape ({self.dim},), got {tuple(vec.shape)}")
        parts = torch.split(vec, self.numels)
        return {n: p.view(s) for n, p, s in zip(self.names, parts, self.shapes)}

    def slices(self) -> dict[str, slice]:
        """Where each named tensor lives in the flat vector."""
        out, start = {}, 0
        for n, k in zip(self.names, self.numels):
            out[n] = slice(start, start + k)
            start += k
        return out


