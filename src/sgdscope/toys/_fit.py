"""Least-squares line y = slope * x + intercept with its R^2."""
from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class LineFit:
    """``y ~ slope * x + intercept``; ``r2`` the coefficient of determination."""

    slope: float
    intercept: float
    r2: float


def fit_line(x: torch.Tensor, y: torch.Tensor) -> LineFit:
    """Ordinary least squares on (N,) points (N >= 2), in float64."""
    x = torch.as_tensor(x, dtype=torch.float64).reshape(-1).cpu()
    y = torch.as_tensor(y, dtype=torch.float64).reshape(-1).cpu()
    if x.shape != y.shape or x.numel() < 2:
        raise ValueError(
            f"fit_line needs two equal-length vectors of >= 2 points, got {tuple(x.shape)} and {tuple(y.shape)}"
        )
    xm, ym = x.mean(), y.mean()
    sxx = ((x - xm) ** 2).sum()
    if sxx == 0:
        raise ValueError("fit_line: all x are equal; a slope is undefined")
    slope = ((x - xm) * (y - ym)).sum() / sxx
    intercept = ym - slope * xm
    ss_res = ((y - slope * x - intercept) ** 2).sum()
    ss_tot = ((y - ym) ** 2).sum()
    r2 = 1 - ss_res / ss_tot if ss_tot > 0 else torch.tensor(1.0)
    return LineFit(float(slope), float(intercept), float(r2))
