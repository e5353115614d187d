"""Full-batch gradient descent plus designed Gaussian noise (noise paper §3, Theorem 2).

    theta <- theta - eta * (g + xi),   xi ~ N(0, C),

with g the gradient in ``.grad`` (full batch: the caller's loss over all training data) and C
one of the designs of :mod:`sgdscope.optim.noise_design` in the top-n Hessian eigenbasis, or
isotropic in the full space. ``noise=None`` or ``scale=0`` is plain GD, bit for bit.
"""
from __future__ import annotations

from typing import Callable

import torch

from ._subspace import _SubspaceOptimizer
from .noise_design import NOISE_KINDS, noise_variances, sample_isotropic_noise, sample_subspace_noise

__all__ = ["NoisyGD"]


class NoisyGD(_SubspaceOptimizer):
    """Gradient descent with Gaussian gradient noise of a designed covariance.

    Args:
        params: parameters or parameter groups (each group may set its own ``lr``).
        lr: eta; the noise enters the step as ``-eta * xi`` (step covariance eta^2 C).
        noise: ``"sgd"`` (C = s H on the top-n eigenspace, eq. 10), ``"isotropic_subspace"``
            (C = s V V^T, Corollary 2.1), ``"designed"`` (C_ii = s lambda_i df/dlambda_i,
            Theorem 2; give ``f``), ``"isotropic"`` (C = s I, full space) or ``None`` (plain GD).
        top_n: n, the dimension of the non-degenerate subspace (needed by the subspace designs).
        scale: s, the noise strength; for SGD-like noise ``sgd_noise_scale(S, M)`` = (1/S)(1 - S/M).
        f: for ``"designed"``: a function of the (n,) eigenvalues to be lowered (df/dlambda >= 0).
        problem: a :class:`~sgdscope.Problem` over (a subset of) these parameters whose Hessian
            gives the eigenbasis (of its mean loss over the examples, whatever the loss's
            reduction: train on the mean loss for ``C = s H`` to be SGD's scale);
            ``None``: give it with ``set_directions(V, eigenvalues)``.
        recompute_every: m; the eigenbasis is recomputed before steps 0, m, 2m, ... (warm-started
            Lanczos). The noise of each step uses the latest basis.
        lanczos_tol: relative Ritz-residual tolerance of that Lanczos.
        generator: the source of the noise and of the first Lanczos start (default: a CPU
            generator seeded from torch's global RNG); its state is in :meth:`state_dict`.
    """

    def __init__(
        self,
        params,
        lr: float,
        *,
        noise: str | None = "sgd",
        top_n: int | None = None,
        scale: float = 1.0,
        f: Callable[[torch.Tensor], torch.Tensor] | None = None,
        problem=None,
        recompute_every: int = 1,
        lanczos_tol: float = 1e-3,
        generator: torch.Generator | None = None,
    ):
        if noise is not None and noise not in NOISE_KINDS:
            raise ValueError(f"noise must be one of {NOISE_KINDS} or None, got {noise!r}")
        if scale < 0:
            raise ValueError(f"scale must be >= 0, got {scale}")
        subspace = noise not in (None, "isotropic")
        if subspace and top_n is None:
            raise ValueError(f"noise={noise!r} lives in the top-n eigenspace: give top_n (n >= 1)")
        if noise == "designed" and f is None:
            raise ValueError("noise='designed' needs f(eigenvalues) -> scalar")
        super().__init__(
            params,
            dict(lr=lr),
            k=int(top_n) if subspace else None,
            problem=problem,
            recompute_every=recompute_every,
            lanczos_tol=lanczos_tol,
            generator=generator,
        )
        self.noise, self.scale, self.f = noise, float(scale), f

    @property
    def _noisy(self) -> bool:
        return self.noise is not None and self.scale > 0

    def _subspace_noise(self) -> torch.Tensor:
        V = self._directions_for_step()
        lam = self.eigenvalues
        if lam is None and self.noise != "isotropic_subspace":
            raise RuntimeError(f"noise={self.noise!r} needs the eigenvalues: set_directions(V, eigenvalues)")
        if lam is None:
            lam = torch.zeros(V.shape[1], dtype=V.dtype, device=V.device)
        c = noise_variances(self.noise, lam, scale=self.scale, f=self.f)
        return sample_subspace_noise(V, c, generator=self.generator)

    @torch.no_grad()
    def step(self, closure=None):
        """One update from the (full-batch) gradients in ``.grad``."""
        loss = self._run_closure(closure)
        subspace = self._noisy and self.noise != "isotropic"
        flat_ids = {id(p) for p in self._flat} if subspace else set()
        if subspace:
            xi = self._subspace_noise()
            g = self._flat_grad()
            groups = self._group_of()
            self._apply_flat(g + xi.to(g.dtype), {id(p): -groups[id(p)]["lr"] for p in self._flat})
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None or id(p) in flat_ids:
                    continue
                if self._noisy:  # isotropic in the full space
                    xi = sample_isotropic_noise(
                        p.shape, scale=self.scale, generator=self.generator, dtype=p.dtype, device=p.device
                    )
                    p.add_(p.grad + xi, alpha=-group["lr"])
                else:
                    p.add_(p.grad, alpha=-group["lr"])
        self.steps += 1
        return loss
