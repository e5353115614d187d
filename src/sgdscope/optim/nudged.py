"""Nudged SGD (sharpest-directions poster, "Optimizing faster while finding a good sharp region").

SGD whose learning rate is ``gamma * eta`` along the top-K Hessian eigenvectors and ``eta``
elsewhere. With V (D, K) orthonormal eigenvectors and g the mini-batch gradient,

    theta <- theta - eta * (g + (gamma - 1) V V^T g).

gamma < 1 slows the sharpest directions down (the poster: faster training, sharper regions);
gamma = 1 is plain SGD, bit for bit.
"""
from __future__ import annotations

import torch

from ._subspace import _SubspaceOptimizer

__all__ = ["NudgedSGD"]


class NudgedSGD(_SubspaceOptimizer):
    """SGD with learning rate ``gamma * lr`` in the span of the top-``top_k`` Hessian eigenvectors.

    Args:
        params: parameters or parameter groups (each group may set its own ``lr`` and ``gamma``).
        lr: eta.
        gamma: the factor on the learning rate along the top-K directions (>= 0).
        top_k: K, the number of sharpest directions.
        problem: a :class:`~sgdscope.Problem` over (a subset of) these parameters whose Hessian
            gives the directions (the "curvature subset"). ``None``: give them with
            :meth:`set_directions`.
        recompute_every: m; the directions are recomputed before steps 0, m, 2m, ... by Lanczos
            warm-started from the previous ones.
        lanczos_tol: relative Ritz-residual tolerance of that Lanczos.
        generator: random start of the first Lanczos (default: a CPU generator seeded from torch's
            global RNG). Saved in :meth:`state_dict` with the directions and the step count, so a
            resume is exact.

    Attributes:
        eigenvectors: (D, K) current directions; ``eigenvalues`` (K,) their Ritz values
            (``None`` when the directions were set without them). D is the flat dimension of
            the problem's parameters (``problem.spec.names`` order).
        steps: the number of ``step()`` calls so far.

    With ``gamma == 1`` in every group no eigenvectors are computed and the update is
    ``p.add_(p.grad, alpha=-lr)``, exactly :class:`torch.optim.SGD`.
    """

    def __init__(
        self,
        params,
        lr: float,
        *,
        gamma: float,
        top_k: int,
        problem=None,
        recompute_every: int = 10,
        lanczos_tol: float = 1e-3,
        generator: torch.Generator | None = None,
    ):
        if gamma < 0:
            raise ValueError(f"gamma must be >= 0, got {gamma}")
        super().__init__(
            params,
            dict(lr=lr, gamma=gamma),
            k=int(top_k),
            problem=problem,
            recompute_every=recompute_every,
            lanczos_tol=lanczos_tol,
            generator=generator,
        )

    @torch.no_grad()
    def step(self, closure=None):
        """One update from the gradients in ``.grad`` (call after ``loss.backward()``)."""
        loss = self._run_closure(closure)
        nudged = any(g["gamma"] != 1 for g in self.param_groups)
        flat_ids = {id(p) for p in self._flat}
        if nudged:
            V = self._directions_for_step()
            g = self._flat_grad()
            proj = V @ (V.T @ g.to(V.dtype))
            groups = self._group_of()
            self._apply_flat(g, {id(p): -groups[id(p)]["lr"] for p in self._flat})
            self._apply_flat(proj, {id(p): -groups[id(p)]["lr"] * (groups[id(p)]["gamma"] - 1) for p in self._flat})
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None or (nudged and id(p) in flat_ids):
                    continue
                p.add_(p.grad, alpha=-group["lr"])
        self.steps += 1
        return loss
