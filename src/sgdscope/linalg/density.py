"""Spectral density by stochastic Lanczos quadrature (SLQ) with Gaussian broadening.

For each of ``num_runs`` Gaussian start vectors v (unit norm), ``lanczos_steps`` Lanczos steps
give nodes theta_j (Ritz values) and weights w_j = (e_1^T s_j)^2, a Gauss quadrature of the
spectral measure seen from v. The density is

    phi(t) = mean_runs sum_j w_j N(t; theta_j, sigma^2),

normalised to integrate to 1 (eigenvalue density per parameter: D phi(t) dt counts
eigenvalues). ``expectation(f)`` gives D * E[sum_j w_j f(theta_j)] ~ Tr f(H) with its stderr.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from ..operators.linop import LinOp
from ._basis import Basis
from ._draws import gaussian
from .estimate import Estimate

__all__ = ["spectral_density", "SpectralDensity"]


@dataclass(frozen=True)
class SpectralDensity:
    """``grid`` (G,), ``estimate`` (G,) density, ``stderr`` (G,) pointwise over runs,
    ``nodes``/``weights`` (runs, m) quadrature, ``sigma`` broadening, ``dim`` D."""

    grid: torch.Tensor
    estimate: torch.Tensor
    stderr: torch.Tensor
    nodes: torch.Tensor
    weights: torch.Tensor
    sigma: float
    dim: int
    matvecs: int

    def expectation(self, fn) -> Estimate:
        """Tr f(H) ~ D * E_v[sum_j w_j f(theta_j)] (e.g. ``fn=lambda x: x`` for the trace)."""
        per_run = self.dim * (self.weights * fn(self.nodes)).sum(1)
        return Estimate.from_samples(per_run, self.matvecs)


def spectral_density(
    op: LinOp,
    *,
    num_runs: int = 10,
    lanczos_steps: int = 80,
    grid: torch.Tensor | int = 1000,
    sigma: float | None = None,
    generator: torch.Generator | None = None,
) -> SpectralDensity:
    """SLQ density of a symmetric LinOp. ``grid``: points (tensor) or how many to spread over the
    node range padded by 5 sigma; ``sigma`` defaults to 1% of the node range."""
    D = op.shape[0]
    if num_runs < 1 or lanczos_steps < 1:
        raise ValueError(f"num_runs and lanczos_steps must be >= 1, got {num_runs}, {lanczos_steps}")
    steps = min(lanczos_steps, D)
    start = op.matvecs
    nodes = torch.zeros(num_runs, steps, dtype=torch.float64)
    weights = torch.zeros(num_runs, steps, dtype=torch.float64)
    for r in range(num_runs):
        basis = Basis(op, steps)
        basis.add(gaussian(D, dtype=op.dtype, device=op.device, generator=generator))
        while basis.m < steps and basis.add(basis.HQ[:, -1]):
            pass
        theta, S = basis.ritz()
        nodes[r, : basis.m] = theta
        weights[r, : basis.m] = S[0] ** 2  # unused slots keep weight 0
    lo, hi = float(nodes[weights > 0].min()), float(nodes[weights > 0].max())
    if sigma is None:
        sigma = max(0.01 * (hi - lo), 1e-12 * max(abs(lo), abs(hi), 1.0))
    if sigma <= 0:
        raise ValueError(f"sigma must be positive, got {sigma}")
    if isinstance(grid, int):
        grid = torch.linspace(lo - 5 * sigma, hi + 5 * sigma, grid, dtype=torch.float64)
    grid = torch.as_tensor(grid, dtype=torch.float64).cpu()
    z = (grid[None, None, :] - nodes[:, :, None]) / sigma
    per_run = (weights[:, :, None] * torch.exp(-0.5 * z**2)).sum(1) / (sigma * math.sqrt(2 * math.pi))
    stderr = per_run.std(0) / math.sqrt(num_runs) if num_runs > 1 else torch.full_like(grid, float("inf"))
    return SpectralDensity(grid, per_run.mean(0), stderr, nodes, weights, sigma, D, op.matvecs - start)
