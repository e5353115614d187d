"""What a probe sees at one step: an explicit, read-only record plus shared lazy measurements.

``StepContext`` carries the step, epoch, learning rate, the flat parameters before and after
the optimizer step (and at initialisation), the mini-batch, and the fixed problems to measure
on. Quantities several probes need (the mini-batch gradient, the top Hessian eigenpairs,
L mini-batch gradients for K) are computed at most once per step through its methods; the
top eigenvectors are warm-started from the previous step's through the :class:`Tracker`,
which is the only state carried between steps (and is checkpointed).

Data parallel (a problem with a process group): ``source`` is this rank's shard of the noise
pool, ``pool_size`` the N of the union of every rank's shard; ``minibatch_gradients`` draws over
the union (each rank computes its share of the rows, :mod:`sgdscope.noise.sharded`) and
``pool_head(n)`` is this rank's part of the union's first n examples, so every measurement equals
the single-process one on the union.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch

from .._dist import starts
from ..linalg import LanczosResult, lanczos
from ..operators import hessian_op
from ..problem import Problem

__all__ = ["StepContext", "Tracker"]


@dataclass
class Tracker:
    """State carried across steps: warm-start eigenvectors and the measurements' own RNG."""

    generator: torch.Generator
    eigvecs: torch.Tensor | None = None
    lanczos_tol: float = 1e-3
    progress: bool = False

    def state_dict(self) -> dict:
        return {"generator": self.generator.get_state(), "eigvecs": self.eigvecs, "lanczos_tol": self.lanczos_tol}

    def load_state_dict(self, state: dict) -> None:
        self.generator.set_state(state["generator"])
        self.eigvecs = state["eigvecs"]
        self.lanczos_tol = state["lanczos_tol"]


@dataclass(frozen=True)
class StepContext:
    """One optimizer step, as probes see it. Tensors are flat (D,) vectors over ``problem.spec``.

    Attributes:
        step, epoch, epoch_end: where training is (``epoch`` may be fractional or NaN if unknown).
        lr: the learning rate of the step on the mean loss (the optimizer's; times S for a loss
            summed over the mini-batch); ``batch_size``: S, the training mini-batch size (0 if unknown).
        theta_before, theta_after, theta_init: parameters before / after this step, and at the start.
        batch: the training mini-batch ``(x, y)`` of this step (or None), ``batch_loss`` its loss as
            the training loop gave it (the loss's own reduction).
        problem: the fixed curvature subset; ``eval_problem``: the fixed evaluation set (landscape).
        source: ``(X, Y)`` data mini-batches for K are drawn from (this rank's shard when
            distributed); ``train_size``: N of training.
        train_grad: the training gradient of this step (from ``.grad``, of the mean loss) if available.
        prev_grad: the previous step's training gradient if available.
        pool_size: the examples of the noise pool, over every rank's shard (None: ``len(source[1])``).
    """

    step: int
    epoch: float
    epoch_end: bool
    lr: float
    batch_size: int
    train_size: int
    theta_before: torch.Tensor
    theta_after: torch.Tensor
    theta_init: torch.Tensor
    batch: tuple | None
    batch_loss: float | None
    problem: Problem
    eval_problem: Problem
    source: tuple[torch.Tensor, torch.Tensor]
    model: torch.nn.Module
    optimizer: Any
    tracker: Tracker
    train_grad: torch.Tensor | None = None
    prev_grad: torch.Tensor | None = None
    pool_size: int | None = None
    _memo: dict = field(default_factory=dict, repr=False, compare=False)

    def __post_init__(self):
        if self.pool_size is None:
            object.__setattr__(self, "pool_size", len(self.source[1]))

    def pool_head(self, n: int) -> tuple:
        """The first ``n`` examples of the noise pool (all of it if smaller), as ``(x, y)``: with a
        process group, this rank's part of the first n of the union of the shards (maybe none)."""
        x, y = self.source
        comm = self.problem.comm
        if comm is None:
            return x[:n], y[:n]
        if "pool_start" not in self._memo:  # this rank's first position in the union (one collective a step)
            self._memo["pool_start"] = starts(comm.sizes(len(y)))[comm.rank]
        start = self._memo["pool_start"]
        lo, hi = min(start, n), min(start + len(y), n)
        part = slice(lo - start, max(hi - start, 0))
        return (tuple(t[part] for t in x) if isinstance(x, tuple) else x[part]), y[part]

    def grad(self) -> torch.Tensor:
        """The mini-batch gradient of this step at ``theta_before`` (the training one when known)."""
        if self.train_grad is not None:
            return self.train_grad
        if "grad" not in self._memo:
            if self.batch is None:
                raise ValueError("this probe needs the step's mini-batch: pass batch=(x, y) to after_step")
            sub = self.problem.subproblem([self.batch])
            self._memo["grad"] = sub.loss_and_grad(self.theta_before)[1]
        return self._memo["grad"]

    def hessian(self):
        """The Hessian of the curvature subset at ``theta_after`` (a LinOp)."""
        if "hessian" not in self._memo:
            self._memo["hessian"] = hessian_op(self.problem, self.theta_after)
        return self._memo["hessian"]

    def loss_after(self) -> float:
        """The loss of the curvature subset at ``theta_after`` (a by-product of the Hessian's graph when built)."""
        if "loss_after" not in self._memo:
            op = self._memo.get("hessian")
            loss = op.loss if op is not None and op.loss is not None else self.problem.loss(self.theta_after)
            self._memo["loss_after"] = float(loss)
        return self._memo["loss_after"]

    def top_eigen(self, k: int) -> LanczosResult:
        """Top-k Hessian eigenpairs at ``theta_after``, warm-started from the last measurement."""
        memo = self._memo.get("top_eigen")
        if memo is not None and len(memo.values) >= k:
            return _first(memo, k)
        res = lanczos(
            self.hessian(), k, tol=self.tracker.lanczos_tol, v0=self.tracker.eigvecs, generator=self.tracker.generator,
            progress=self.tracker.progress,
        )
        self._memo["top_eigen"] = res
        self.tracker.eigvecs = res.vectors.detach().clone()
        return res

    def minibatch_gradients(self, num_batches: int, batch_size: int) -> torch.Tensor:
        """(L, D) gradients of L random size-M mini-batches of ``source`` at ``theta_after``
        (with a process group: drawn over the union of the shards, all L rows on every rank).

        Raises:
            ValueError: M >= N, the examples of ``source``, unless M = N = ``train_size`` (the
            full training gradient, as full-batch training takes it); the message names the
            arguments to change (``noise_data=``, the probe's ``batch_size=``) and the numbers.
        """
        rows = self.noise_rows(num_batches, batch_size)
        key = ("gathered", num_batches, batch_size)
        if key not in self._memo:
            from ..noise._gram import join_columns

            self._memo[key] = join_columns(rows) if isinstance(rows, tuple) else rows.gather()
        return self._memo[key]

    def noise_rows(self, num_batches: int, batch_size: int):
        """The rows of :meth:`minibatch_gradients` as they are computed: in one process, their column
        blocks (``minibatch_gradients(..., blocks=True)``: one per parameter tensor, no L x D copy);
        with a process group, this rank's share of them
        (:class:`~sgdscope.noise.sharded.ShardedRows`, for K's spectrum without gathering them).
        The same draw either way, made once per step."""
        N = self.pool_size
        if batch_size > N or (batch_size == N and N != self.train_size):
            raise ValueError(
                f"mini-batches of M={batch_size} examples cannot be drawn at random from a noise pool of N={N} examples "
                f"({'more than it holds' if batch_size > N else 'each would be the whole pool'}); pass a larger pool, "
                "Scope(noise_data=(X, Y)) (e.g. the training set), or a smaller M with the probe's batch_size="
            )
        key = ("minibatch_gradients", num_batches, batch_size)
        if key not in self._memo:
            from ..noise import minibatch_gradients, sharded_minibatch_gradients

            draw = dict(batch_size=batch_size, num_batches=num_batches, generator=self.tracker.generator)
            self._memo[key] = (minibatch_gradients(self.problem, self.source, blocks=True, **draw) if self.problem.comm is None
                               else sharded_minibatch_gradients(self.problem, self.source, **draw))
        return self._memo[key]


def _first(res: LanczosResult, k: int) -> LanczosResult:
    return LanczosResult(res.values[:k], res.vectors[:, :k], res.residuals[:k], res.matvecs, res.converged)
