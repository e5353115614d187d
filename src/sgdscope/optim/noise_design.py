"""Gradient noise designed in the Hessian's top-n eigenbasis (noise paper §3).

Noisy gradient descent adds the noise to the gradient,

    theta <- theta - eta * (grad L(theta) + xi),    xi ~ N(0, C),

so C plays the role of the mini-batch gradient covariance (eq. 3) and the step's own noise has
covariance eta^2 C. In the eigenbasis V (D, n) of the n largest Hessian eigenvalues lambda,
C = V diag(c) V^T with

* ``"sgd"``: c_i = s * lambda_i, s = (1/S)(1 - S/M) (eq. 5 / eq. 10; Theorem 1, f = sum lambda);
* ``"isotropic_subspace"``: c_i = s (Corollary 2.1, f = log prod lambda: lowers the determinant);
* ``"designed"``: c_i = s * lambda_i * df/dlambda_i for a user f (Theorem 2, eq. 12);
* ``"isotropic"``: C = s I in the full space (the baseline; needs no eigenbasis).

All functions broadcast over leading batch dimensions (many chains of a toy at once).
"""
from __future__ import annotations

from typing import Callable

import torch

from ..linalg._draws import gaussian

__all__ = [
    "NOISE_KINDS",
    "sgd_noise_scale",
    "noise_variances",
    "noise_covariance",
    "sample_subspace_noise",
    "sample_isotropic_noise",
]

NOISE_KINDS = ("sgd", "isotropic_subspace", "designed", "isotropic")


def sgd_noise_scale(batch_size: int, num_examples: int) -> float:
    """s = (1/S)(1 - S/M): the factor between mini-batch gradient covariance and the Hessian (eq. 5)."""
    if not 1 <= batch_size <= num_examples:
        raise ValueError(f"batch_size must be in [1, num_examples={num_examples}], got {batch_size}")
    return (1.0 / batch_size) * (1.0 - batch_size / num_examples)


def noise_variances(
    kind: str,
    eigenvalues: torch.Tensor,
    *,
    scale: float = 1.0,
    f: Callable[[torch.Tensor], torch.Tensor] | None = None,
) -> torch.Tensor:
    """The noise variances c (..., n) along the eigenvectors of ``eigenvalues`` (..., n).

    ``"sgd"`` clamps negative eigenvalues to 0 (no noise along negative curvature). ``"designed"``
    needs ``f``: (n,) eigenvalues -> scalar, differentiable by ``torch.func.grad``, with
    df/dlambda_i >= 0 where lambda_i > 0 (Theorem 2); a negative or non-finite variance is an error.
    """
    if scale < 0:
        raise ValueError(f"noise scale must be >= 0, got {scale}")
    lam = eigenvalues
    if kind == "sgd":
        return scale * lam.clamp_min(0)
    if kind == "isotropic_subspace":
        return torch.full_like(lam, scale)
    if kind == "designed":
        if f is None:
            raise ValueError(
                "noise='designed' needs f(eigenvalues) -> scalar (Theorem 2: C_ii = lambda_i df/dlambda_i)"
            )
        dfdl = _grad_f(f, lam)
        c = scale * lam * dfdl
        bad = ~torch.isfinite(c) | (c < 0)
        if bool(bad.any()):
            raise ValueError(
                f"designed noise: lambda_i * df/dlambda_i must be finite and >= 0, got {c[bad][:4].tolist()} "
                f"at eigenvalues {lam[bad][:4].tolist()}"
            )
        return c
    if kind == "isotropic":
        raise ValueError("noise='isotropic' acts in the full space: use sample_isotropic_noise")
    raise ValueError(f"noise kind must be one of {NOISE_KINDS}, got {kind!r}")


def _grad_f(f, lam: torch.Tensor) -> torch.Tensor:
    """df/dlambda for each row of ``lam`` (..., n); plain autograd for one row (the optimizer's case)."""
    flat = lam.detach().reshape(-1, lam.shape[-1])
    if flat.shape[0] == 1:
        with torch.enable_grad():
            row = flat[0].clone().requires_grad_(True)
            (g,) = torch.autograd.grad(f(row), row)
        return g.reshape(lam.shape)
    return torch.vmap(torch.func.grad(f))(flat).reshape(lam.shape)


def noise_covariance(eigenvectors: torch.Tensor, variances: torch.Tensor) -> torch.Tensor:
    """C = V diag(c) V^T (..., D, D) from V (..., D, n) and c (..., n) (for checks; never needed to sample)."""
    return (eigenvectors * variances[..., None, :]) @ eigenvectors.transpose(-1, -2)


def sample_subspace_noise(
    eigenvectors: torch.Tensor, variances: torch.Tensor, *, generator: torch.Generator | None
) -> torch.Tensor:
    """xi = V (sqrt(c) * z), z ~ N(0, I_n) from ``generator``: a (..., D) draw from N(0, V diag(c) V^T)."""
    if eigenvectors.shape[-1] != variances.shape[-1]:
        raise ValueError(
            f"{eigenvectors.shape[-1]} eigenvectors but {variances.shape[-1]} variances; expected equal counts"
        )
    z = gaussian(variances.shape, generator=generator, dtype=eigenvectors.dtype, device=eigenvectors.device)
    return (eigenvectors @ (variances.sqrt() * z)[..., None])[..., 0]


def sample_isotropic_noise(
    shape, *, scale: float, generator: torch.Generator | None, dtype=torch.float32, device="cpu"
) -> torch.Tensor:
    """xi ~ N(0, scale * I) of the given shape (the full-space baseline)."""
    if scale < 0:
        raise ValueError(f"noise scale must be >= 0, got {scale}")
    return scale**0.5 * gaussian(tuple(shape), generator=generator, dtype=dtype, device=device)
