"""What NudgedSGD and NoisyGD share: a flat view of the optimizer's parameters and the top
Hessian eigenvectors in that view, recomputed every ``m`` steps by warm-started Lanczos.

The flat order is ``problem.spec.names`` when a :class:`~sgdscope.Problem` is given (its
parameters must all be in the optimizer), else the order of the parameters in ``param_groups``.
Parameters of the optimizer outside the problem get the plain (S)GD step.
"""
from __future__ import annotations

import torch

from ..linalg import lanczos
from ..operators import hessian_op

__all__: list[str] = []

_STATE_KEY = "sgdscope"


def _new_generator() -> torch.Generator:
    """A CPU generator seeded by one draw from torch's global RNG (so ``torch.manual_seed`` fixes it)."""
    seed = int(torch.randint(0, 2**62, (1,)).item())
    return torch.Generator().manual_seed(seed)


class _SubspaceOptimizer(torch.optim.Optimizer):
    """Base of the optimizers that act in the top-k eigenspace of the Hessian (not public)."""

    def __init__(self, params, defaults, *, k, problem, recompute_every, lanczos_tol, generator):
        if defaults["lr"] < 0:
            raise ValueError(f"lr must be >= 0, got {defaults['lr']}")
        super().__init__(params, defaults)
        if recompute_every < 1:
            raise ValueError(f"recompute_every must be >= 1 step, got {recompute_every}")
        if lanczos_tol <= 0:
            raise ValueError(f"lanczos_tol must be positive, got {lanczos_tol}")
        self.problem = problem
        self.recompute_every = int(recompute_every)
        self.lanczos_tol = float(lanczos_tol)
        self.generator = _new_generator() if generator is None else generator
        self.steps = 0  # step() calls so far
        self.eigenvectors: torch.Tensor | None = None  # (D, k)
        self.eigenvalues: torch.Tensor | None = None  # (k,)
        self.lanczos_matvecs = 0
        self._flat = self._flat_params(problem)
        self.dim = sum(p.numel() for p in self._flat)
        if k is not None and not 1 <= k <= self.dim:
            raise ValueError(f"the number of directions must be in [1, D={self.dim}], got {k}")
        self.k = k

    @staticmethod
    def _run_closure(closure):
        if closure is None:
            return None
        with torch.enable_grad():
            return closure()

    # ------------------------------------------------------------ flat view
    def _flat_params(self, problem) -> list[torch.Tensor]:
        mine = [p for g in self.param_groups for p in g["params"]]
        if problem is None:
            return mine
        ids = {id(p) for p in mine}
        named = dict(problem.model.named_parameters())
        out = []
        for name in problem.spec.names:
            if id(named[name]) not in ids:
                raise ValueError(
                    f"problem parameter {name!r} is not among the optimizer's parameters; "
                    "expected a problem over (a subset of) the optimized parameters"
                )
            out.append(named[name])
        return out

    def _flat_grad(self) -> torch.Tensor:
        """(D,) gradient in the flat order; a missing ``.grad`` counts as zeros."""
        return torch.cat([(p.grad if p.grad is not None else torch.zeros_like(p)).reshape(-1) for p in self._flat])

    def _apply_flat(self, vec: torch.Tensor, alphas: dict[int, float]) -> None:
        """``p += alpha_p * vec[slice of p]`` for every flat parameter (views, no copies of p)."""
        start = 0
        for p in self._flat:
            n = p.numel()
            p.add_(vec[start : start + n].view_as(p).to(p.dtype), alpha=alphas[id(p)])
            start += n

    def _group_of(self) -> dict[int, dict]:
        return {id(p): g for g in self.param_groups for p in g["params"]}

    # ------------------------------------------------------------ directions
    def set_directions(self, vectors: torch.Tensor, eigenvalues: torch.Tensor | None = None) -> None:
        """Use these directions (D, k) (orthonormalised here) until the next scheduled recompute.

        ``eigenvalues`` (k,) are only needed by noise designs that depend on them.
        """
        ref = self._flat[0]
        if vectors.ndim == 1:
            vectors = vectors[:, None]
        if vectors.ndim != 2 or vectors.shape[0] != self.dim or vectors.shape[1] < 1:
            raise ValueError(f"directions must have shape ({self.dim}, k), got {tuple(vectors.shape)}")
        Q, _ = torch.linalg.qr(vectors.detach().to(device=ref.device, dtype=ref.dtype))
        if eigenvalues is not None:
            eigenvalues = torch.as_tensor(eigenvalues).detach().to(device=ref.device, dtype=ref.dtype).reshape(-1)
            if eigenvalues.shape[0] != Q.shape[1]:
                raise ValueError(
                    f"expected {Q.shape[1]} eigenvalues for {Q.shape[1]} directions, got {eigenvalues.shape[0]}"
                )
        self.eigenvectors, self.eigenvalues = Q, eigenvalues

    def recompute_directions(self) -> None:
        """Top-k Hessian eigenpairs of ``problem`` at the current parameters (warm-started Lanczos)."""
        if self.problem is None:
            raise RuntimeError("no problem to compute Hessian directions from; pass problem= or call set_directions(V)")
        with torch.enable_grad():
            op = hessian_op(self.problem)
            res = lanczos(op, self.k, which="LA", tol=self.lanczos_tol, v0=self.eigenvectors, generator=self.generator)
        self.lanczos_matvecs += res.matvecs
        self.eigenvectors, self.eigenvalues = res.vectors.detach(), res.values.detach()

    def _directions_for_step(self) -> torch.Tensor:
        due = self.problem is not None and self.steps % self.recompute_every == 0
        if due or (self.eigenvectors is None and self.problem is not None):
            self.recompute_directions()
        if self.eigenvectors is None:
            raise RuntimeError("no directions: pass problem= (Lanczos) or call set_directions(V) before step()")
        return self.eigenvectors

    # ------------------------------------------------------------ state
    def state_dict(self) -> dict:
        out = super().state_dict()
        out[_STATE_KEY] = {
            "steps": self.steps,
            "eigenvectors": None if self.eigenvectors is None else self.eigenvectors.clone(),
            "eigenvalues": None if self.eigenvalues is None else self.eigenvalues.clone(),
            "generator": self.generator.get_state(),
            "lanczos_matvecs": self.lanczos_matvecs,
        }
        return out

    def load_state_dict(self, state_dict: dict) -> None:
        state_dict = dict(state_dict)
        extra = state_dict.pop(_STATE_KEY, None)
        if extra is None:
            raise ValueError(f"state_dict lacks the {_STATE_KEY!r} entry written by {type(self).__name__}.state_dict()")
        super().load_state_dict(state_dict)
        ref = self._flat[0]
        self.steps = int(extra["steps"])
        vecs, vals = extra["eigenvectors"], extra["eigenvalues"]
        self.eigenvectors = None if vecs is None else vecs.to(device=ref.device, dtype=ref.dtype).clone()
        self.eigenvalues = None if vals is None else vals.to(device=ref.device, dtype=ref.dtype).clone()
        self.generator.set_state(extra["generator"].clone())
        self.lanczos_matvecs = int(extra["lanczos_matvecs"])
