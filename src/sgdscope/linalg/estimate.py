"""The result of a stochastic estimator: a value with its standard error."""
from __future__ import annotations

from dataclasses import dataclass

import torch

__all__ = ["Estimate"]


@dataclass(frozen=True)
class Estimate:
    """``estimate`` +- ``stderr`` (one standard error of the mean), from ``samples`` that
    cost ``matvecs`` operator products in total."""

    estimate: float
    stderr: float
    samples: torch.Tensor
    matvecs: int

    @classmethod
    def from_samples(cls, samples: torch.Tensor, matvecs: int, offset: float = 0.0) -> "Estimate":
        s = samples.detach().to(torch.float64).cpu()
        stderr = float(s.std(unbiased=True) / len(s) ** 0.5) if len(s) > 1 else float("inf")
        return cls(float(s.mean()) + offset, stderr, s, matvecs)

    def __float__(self) -> float:
        return self.estimate

    def __repr__(self) -> str:
        return f"Estimate({self.estimate:.6g} +- {self.stderr:.2g}, matvecs={self.matvecs})"
