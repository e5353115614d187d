"""The Hessian of a :class:`~sgdscope.Problem` as a LinOp.

``H v = d/dt grad L(theta + t v)`` by forward-over-reverse: ``torch.func.jvp`` of
``torch.func.grad`` (one forward and one backward pass with dual numbers, about 2-3 gradients),
accumulated over the problem's fixed batches with the loss's reduction. A (D, k) block is
handled with ``vmap`` over the k tangents (falling back to a loop if the model does not vmap).

Modules that ``torch.func`` cannot transform (custom ``autograd.Function`` without forward-mode
support, hooks that mutate state...) are served by double backprop
(``autograd.grad`` of ``grad . v``), chosen automatically on the first product, with a warning.
"""
from __future__ import annotations

import warnings

import torch
from torch.func import grad, jvp, vmap

from ..problem import Problem
from .linop import FunctionOp

__all__ = ["hessian_op", "HessianOp"]

_BACKENDS = ("auto", "func", "autograd")


class HessianOp(FunctionOp):
    """H at fixed parameters ``theta`` (a copy taken at construction: later training steps do not
    change it; build a new operator, or call :meth:`at`, to follow training)."""

    def __init__(self, problem: Problem, theta: torch.Tensor | None = None, backend: str = "auto"):
        if backend not in _BACKENDS:
            raise ValueError(f"backend must be one of {_BACKENDS}, got {backend!r}")
        self.problem = problem
        self.theta = (problem.theta() if theta is None else theta.detach()).to(problem.device, problem.dtype)
        self.backend = backend
        self._vmap_ok = True
        super().__init__(self._hessian_matmat, problem.dim, problem.dtype, problem.device)

    def at(self, theta: torch.Tensor) -> "HessianOp":
        """The Hessian of the same problem at other parameters (keeps the chosen backend)."""
        return HessianOp(self.problem, theta, self.backend if self.backend != "auto" else self._resolved())

    def _resolved(self) -> str:
        return "autograd" if self.backend == "autograd" else "func"

    def _hessian_matmat(self, V: torch.Tensor) -> torch.Tensor:
        if self.backend == "autograd":
            return self._autograd_matmat(V)
        try:
            return self._func_matmat(V)
        except (RuntimeError, NotImplementedError) as err:
            if self.backend == "func":
                raise
            warnings.warn(
                "hessian_op: torch.func could not transform this model "
                f"({type(err).__name__}: {str(err).splitlines()[0][:200]}); "
                "falling back to double backprop (slower, same values).",
                RuntimeWarning,
                stacklevel=3,
            )
            self.backend = "autograd"
            return self._autograd_matmat(V)

    def _func_matmat(self, V: torch.Tensor) -> torch.Tensor:
        p = self.problem
        frozen = p.frozen_params()
        out = torch.zeros_like(V)
        with p.measuring():
            for w, batch in zip(p.weights, p.batches):
                g = grad(lambda t: p.batch_loss(t, batch, frozen=frozen))

                def hvp(v):
                    return jvp(g, (self.theta,), (v,))[1]

                out.add_(self._block(hvp, V), alpha=w)
        return out

    def _block(self, hvp, V):
        if V.shape[1] == 1:
            return hvp(V[:, 0])[:, None]
        if self._vmap_ok:
            try:
                return vmap(hvp, in_dims=1, out_dims=1)(V)
            except (RuntimeError, NotImplementedError):
                self._vmap_ok = False
        return torch.stack([hvp(V[:, j]) for j in range(V.shape[1])], dim=1)

    def _autograd_matmat(self, V: torch.Tensor) -> torch.Tensor:
        p = self.problem
        frozen = p.frozen_params()
        out = torch.zeros_like(V)
        with p.measuring(), torch.enable_grad():
            for w, batch in zip(p.weights, p.batches):
                t = self.theta.detach().requires_grad_(True)
                (g,) = torch.autograd.grad(p.batch_loss(t, batch, frozen=frozen), t, create_graph=True)
                for j in range(V.shape[1]):
                    (hv,) = torch.autograd.grad(g, t, V[:, j], retain_graph=j + 1 < V.shape[1])
                    out[:, j].add_(hv.detach(), alpha=w)
        return out


def hessian_op(problem: Problem, theta: torch.Tensor | None = None, *, backend: str = "auto") -> HessianOp:
    """The Hessian of ``problem``'s loss at ``theta`` (default: the model's current parameters).

    Returns a LinOp: ``op @ v`` for a (D,) vector or (D, k) block, ``op.shape == (D, D)``,
    ``op.dtype``, ``op.device``, ``op.matvecs``, ``op.to_scipy()``. ``backend``: ``"auto"``
    (torch.func, falling back to double backprop with a warning), ``"func"`` or ``"autograd"``.
    """
    return HessianOp(problem, theta, backend)
