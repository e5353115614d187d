"""The Hessian of a :class:`~sgdscope.Problem` as a LinOp.

Two ways to apply H, same values (tested against a dense oracle):

* **retained graph** (default when it fits): the gradient of every batch is built once with
  ``create_graph=True`` and kept; each product is then one backward pass through it,
  ``H v = d(g . v)/dtheta`` (the trick PyHessian uses), after a one-off set-up that builds the
  graph. Iterative solvers apply H dozens of times at one theta, so this wins; the retained
  tensors are counted while the graph is built and, above ``cache_bytes``, it is dropped for the
  streaming path.
* **forward-over-reverse** (``torch.func.jvp`` of ``torch.func.grad``), streaming over the batches
  with nothing retained; a (D, k) block is ``vmap``ped over its k tangents.

What each costs in gradients, and the set-up, is measured by ``benchmarks/curvature.py`` (its
last recorded run, in ``benchmarks/README.md``: on SimpleCNN a retained-graph product costs about
half a streamed one).

The retained graph is plain autograd, so it serves any model. On the streaming path, modules
``torch.func`` cannot transform (a custom ``autograd.Function`` without forward-mode support, the
CPU kernels of ``nn.LSTM`` / ``nn.GRU``...) are served by double backprop.
:func:`forward_or_double_backprop` makes that choice for every forward-mode computation of the
package (here and the per-example curvatures of :mod:`sgdscope.noise.spread`): once per model,
with one warning, remembered for the model's lifetime.

Data parallel (a Problem with a process group): each rank applies the Hessian of its shard's
batches, weighted by ``n_b / N`` with N the examples of every rank, and the (D, k) result is
all-reduced: one collective per product, the same result on every rank, the Hessian of the mean
loss over the union of the shards. Whether to retain the graph is agreed by all ranks (if it
exceeds ``cache_bytes`` on any rank, every rank streams), so ``op.loss`` exists on every rank or
on none.
"""
from __future__ import annotations

import warnings
import weakref
from typing import Callable, TypeVar

import torch
from torch import nn
from torch.func import grad, jvp, vmap

from ..problem import Problem
from .linop import FunctionOp

__all__ = ["hessian_op", "HessianOp"]

_BACKENDS = ("auto", "graph", "func", "autograd")
DEFAULT_CACHE_BYTES = 2 * 1024**3

_T = TypeVar("_T")
# models whose forward-mode computations failed -> the first error: they use double backprop from then on
_NO_FORWARD_MODE: "weakref.WeakKeyDictionary[nn.Module, str]" = weakref.WeakKeyDictionary()


def forward_or_double_backprop(model: nn.Module, forward: Callable[[], _T], double_backprop: Callable[[], _T]) -> _T:
    """``forward()``, a ``torch.func`` computation with forward mode (``jvp``, maybe ``vmap``), unless
    ``model`` is known to fail there; then, or if it raises now, ``double_backprop()`` (plain
    autograd, same values, slower). The first failure warns once and is remembered for the model's
    lifetime, so later calls (any operator or probe, any step) go straight to double backprop.
    Out-of-memory errors are raised, not taken for a missing forward-mode rule.
    """
    if model not in _NO_FORWARD_MODE:
        try:
            return forward()
        except torch.cuda.OutOfMemoryError:  # torch.OutOfMemoryError (2.5+) is this class
            raise
        except (RuntimeError, NotImplementedError) as err:
            reason = f"{type(err).__name__}: {str(err).splitlines()[0][:200] if str(err) else ''}"
            _NO_FORWARD_MODE[model] = reason
            warnings.warn(
                f"torch.func could not transform this model (forward mode or vmap: {reason}); falling back to double "
                "backprop for its Hessian-vector products and per-example curvatures from now on (slower, same values).",
                RuntimeWarning,
                stacklevel=3,
            )
    return double_backprop()


def double_backprop_hvp(problem: Problem, theta: torch.Tensor, batch, V: torch.Tensor, *, frozen=None) -> torch.Tensor:
    """(D, k) ``H_b V`` of one batch's loss at ``theta`` by double backprop: the batch's gradient
    graph is built once and each column is one backward pass through it (call inside
    ``problem.measuring()``)."""
    with torch.enable_grad():
        t = theta.detach().requires_grad_(True)
        g = _gradient_graph(problem, t, batch, problem.frozen_params() if frozen is None else frozen)
        out = torch.zeros_like(V)
        _add_products(out, t, 1.0, g, V, keep_last=False)
    return out


def _gradient_graph(problem: Problem, t, batch, frozen, losses=None):
    """This batch's gradient at ``t`` with its graph kept (call inside measuring/enable_grad)."""
    loss = problem.batch_loss(t, batch, frozen=frozen)
    if losses is not None:
        losses.append(loss.detach())
    return torch.autograd.grad(loss, t, create_graph=True)[0]


def _add_products(out, t, w, g, V, *, keep_last: bool = True):
    """out += w * H_batch V, one backward pass through ``g``'s graph per column."""
    for j in range(V.shape[1]):
        (hv,) = torch.autograd.grad(g, t, V[:, j], retain_graph=keep_last or j + 1 < V.shape[1])
        out[:, j].add_(hv, alpha=w)


class _TooBig(Exception):
    pass


class HessianOp(FunctionOp):
    """H at fixed parameters ``theta`` (a copy taken at construction: later training steps do not
    change it; build a new operator, or call :meth:`at`, to follow training)."""

    def __init__(self, problem: Problem, theta: torch.Tensor | None = None, backend: str = "auto", cache_bytes: int = DEFAULT_CACHE_BYTES):
        if backend not in _BACKENDS:
            raise ValueError(f"backend must be one of {_BACKENDS}, got {backend!r}")
        self.problem = problem
        # a copy: later in-place steps on the caller's tensor do not move the operator
        self.theta = problem.theta() if theta is None else problem.check_theta(theta).clone()
        self.backend = self.requested = backend
        self.cache_bytes = int(cache_bytes)
        self._graphs = None  # [(weight, gradient with graph)] once built
        self.loss: torch.Tensor | None = None  # the loss at theta, a by-product of building the graphs
        self._vmap_ok = True
        super().__init__(self._hessian_matmat, problem.dim, problem.dtype, problem.device)

    def at(self, theta: torch.Tensor) -> "HessianOp":
        """The Hessian of the same problem at other parameters."""
        return HessianOp(self.problem, theta, self.requested, self.cache_bytes)

    # ------------------------------------------------------------------ dispatch
    def _hessian_matmat(self, V: torch.Tensor) -> torch.Tensor:
        out = self._shard_matmat(V)
        comm = self.problem.comm
        return out if comm is None else comm.sum(out)  # one all-reduce per product: H of the union's mean loss

    def _shard_matmat(self, V: torch.Tensor) -> torch.Tensor:
        """This process's part of H V: its batches, weighted by n_b / N (all of H without a process group)."""
        if self.backend in ("auto", "graph"):
            try:
                return self._graph_matmat(V)
            except _TooBig:
                self.backend = "func"  # auto only: stream from now on
        if self.backend == "autograd":
            return self._autograd_matmat(V)
        if self.requested == "func":
            return self._func_matmat(V)

        def double_backprop():
            self.backend = "autograd"
            return self._autograd_matmat(V)

        return forward_or_double_backprop(self.problem.model, lambda: self._func_matmat(V), double_backprop)

    # ------------------------------------------------------------------ retained graph
    def _build_graphs(self):
        p = self.problem
        frozen = p.frozen_params()
        t = self.theta.detach().requires_grad_(True)
        counted = [0]
        limit = self.cache_bytes if self.backend == "auto" else None

        def pack(x):
            counted[0] += x.numel() * x.element_size()
            if limit is not None and counted[0] > limit:
                raise _TooBig
            return x

        with p.measuring(), torch.enable_grad(), torch.autograd.graph.saved_tensors_hooks(pack, lambda x: x):
            losses = []
            graphs = [(w, _gradient_graph(p, t, batch, frozen, losses)) for w, batch in zip(p.weights, p.batches)]
        self.retained_bytes = counted[0]
        return t, graphs, sum(w * l for w, l in zip(p.weights, losses))

    def _ensure_graphs(self):
        """Build the retained graphs once; raise ``_TooBig`` (on every rank alike) when they do not fit."""
        comm = self.problem.comm
        if comm is None:
            t, graphs, self.loss = self._build_graphs()
            self._graphs = (t, graphs)
            return
        try:
            built = self._build_graphs()
        except _TooBig:
            built = None
        # one collective: [ranks whose graph fits, loss]; every rank retains, or every rank streams
        agree = torch.zeros(2, dtype=self.problem.dtype, device=self.problem.device)
        if built is not None:
            agree[0], agree[1] = 1, built[2]
        comm.sum(agree)
        if int(agree[0]) < comm.size:
            raise _TooBig
        self._graphs, self.loss = built[:2], agree[1]

    def _graph_matmat(self, V: torch.Tensor) -> torch.Tensor:
        if self._graphs is None:
            self._ensure_graphs()
        t, graphs = self._graphs
        out = torch.zeros_like(V)
        for w, g in graphs:
            _add_products(out, t, w, g, V)
        return out

    # ------------------------------------------------------------------ streaming
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
        """Double backprop, one batch's graph at a time, nothing kept between calls."""
        p = self.problem
        frozen = p.frozen_params()
        out = torch.zeros_like(V)
        with p.measuring():
            for w, batch in zip(p.weights, p.batches):
                out.add_(double_backprop_hvp(p, self.theta, batch, V, frozen=frozen), alpha=w)
        return out


def hessian_op(problem: Problem, theta: torch.Tensor | None = None, *, backend: str = "auto", cache_bytes: int = DEFAULT_CACHE_BYTES) -> HessianOp:
    """The Hessian of ``problem``'s loss at ``theta`` (default: the model's current parameters).

    Returns a LinOp: ``op @ v`` for a (D,) vector or (D, k) block, ``op.shape == (D, D)``,
    ``op.dtype``, ``op.device``, ``op.matvecs``, ``op.to_scipy()``, ``op.at(theta)``.

    ``backend``: ``"auto"`` (retain the gradient graph if it needs at most ``cache_bytes``, else
    stream forward-over-reverse; double backprop where torch.func fails, with a warning),
    ``"graph"`` (always retain), ``"func"`` (forward-over-reverse only), ``"autograd"``
    (double backprop, nothing retained between products).
    """
    return HessianOp(problem, theta, backend, cache_bytes)
