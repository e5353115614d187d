"""Per-example and mini-batch gradients as rows of an (n, D) matrix.

Both are pure functions of the flat parameters ``theta`` of a :class:`~sgdscope.Problem`
(per-example rows by ``torch.func.vmap`` of ``grad``, mini-batch rows by ``torch.autograd.grad``
on a detached copy of ``theta``), evaluated under ``problem.measuring()``: the model's mode,
buffers, ``.grad`` and the global RNG are left as they were.

Conventions (Break-Even §3, App. C; Walk with SGD §4.1):

* per-example gradient ``g_i = d/dtheta loss_fn(f(x_i), y_i)``, the loss of the single example;
* mini-batch gradient ``g_B = (1/M) sum_{i in B} g_i`` -- the gradient of the mini-batch loss
  with a mean reduction, which is what SGD steps along. A loss with ``reduction="sum"`` is
  divided by M (:meth:`~sgdscope.Problem.batch_loss` is always the mean over the batch's
  examples), so the mean of per-example rows is the mini-batch row in both cases.
"""
from __future__ import annotations

import warnings

import torch
from torch import nn
from torch.func import grad, vmap

from .._batches import Pool
from ..problem import Problem
from ._data import draw_indices
from ._gram import join_columns

__all__ = ["per_example_gradients", "minibatch_gradients"]


def _check_per_example(problem: Problem, what: str):
    if problem.bn_mode == "train" and problem.has_batchnorm:
        raise ValueError(
            f"{what}: the problem has batch norm in bn_mode='train', where an example's output depends on "
            "the other examples of its batch (batch statistics), so a per-example gradient is not defined. "
            "Use a Problem with bn_mode='eval' (running statistics), or mini-batch gradients with M > 1 "
            "(minibatch_gradients), which follow the batch statistics as training does."
        )


def _single_loss(problem: Problem, frozen):
    """``f(theta, x, y)``: the loss of one example (x, y without their batch dimension)."""

    def unsqueeze(t):
        return tuple(unsqueeze(s) for s in t) if isinstance(t, tuple) else t.unsqueeze(0)

    def f(theta, x, y):
        return problem.batch_loss(theta, (unsqueeze(x), y.unsqueeze(0)), frozen=frozen)

    return f


def _chunk(problem: Problem, chunk_size: int | None) -> int:
    """Examples per vmapped call: 8 on the CPU (fastest for conv nets there, see
    benchmarks/noise.py), 64 on an accelerator, unless given."""
    if chunk_size is None:
        return 8 if problem.device.type == "cpu" else 64
    if int(chunk_size) < 1:
        raise ValueError(f"chunk_size must be >= 1, got {chunk_size}")
    return int(chunk_size)


def _slice(x, lo, hi):
    return tuple(_slice(t, lo, hi) for t in x) if isinstance(x, tuple) else x[lo:hi]


def per_example_gradients(
    problem: Problem,
    batch,
    *,
    chunk_size: int | None = None,
    theta: torch.Tensor | None = None,
) -> torch.Tensor:
    """The (B, D) matrix of per-example gradients ``g_i`` of ``batch``.

    Row i is ``torch.func.grad`` of the loss of example i alone (``loss_fn`` applied to a batch of
    one), computed with ``vmap`` over the examples, ``chunk_size`` examples at a time, so memory
    stays at about ``chunk_size`` gradients plus activations besides the (B, D) output. Models
    that ``torch.func`` cannot ``vmap`` are served by a loop of autograd gradients (same values,
    slower; a ``RuntimeWarning`` says so).

    Args:
        problem: model, loss and parameter selection (its own batches are not used).
        batch: ``(inputs, targets)``; inputs a tensor or tuple of tensors with B examples.
        chunk_size: examples per vmapped call (>= 1; default 8 on the CPU, 64 on an accelerator).
        theta: (D,) parameters (default: the model's current ones).

    Returns:
        (B, D) tensor on the problem's device and dtype, in the units of the loss per parameter.

    Raises:
        ValueError: the problem has batch norm in ``bn_mode="train"`` (per-example gradients are
        ill-defined there: use ``bn_mode="eval"`` or :func:`minibatch_gradients` with M > 1).
    """
    _check_per_example(problem, "per_example_gradients")
    chunk_size = _chunk(problem, chunk_size)
    theta = problem.check_theta(theta)
    x, y = problem.place(batch)
    B = len(y)
    out = torch.empty(B, problem.dim, dtype=problem.dtype, device=problem.device)
    frozen = problem.frozen_params()
    f = _single_loss(problem, frozen)
    per_example = vmap(grad(f), in_dims=(None, 0, 0))
    with problem.measuring():
        for lo in range(0, B, chunk_size):
            hi = min(B, lo + chunk_size)
            xc, yc = _slice(x, lo, hi), y[lo:hi]
            if per_example is not None:
                try:
                    out[lo:hi] = per_example(theta, xc, yc)
                    continue
                except (RuntimeError, NotImplementedError) as err:
                    warnings.warn(
                        "per_example_gradients: torch.func could not vmap this model "
                        f"({type(err).__name__}: {str(err).splitlines()[0][:200]}); "
                        "falling back to a loop of autograd gradients (slower, same values).",
                        RuntimeWarning,
                        stacklevel=2,
                    )
                    per_example = None
            for i in range(lo, hi):
                out[i] = _autograd_grad(problem, theta, (_slice(x, i, i + 1), y[i : i + 1]), frozen)
    return out


# examples per vmapped call of whole mini-batches: L = 25 mini-batches of M = 128 in one call on the CPU
_VMAP_EXAMPLES = {"cpu": 4096, "accelerator": 8192}
# modules whose parameters vmap over whole mini-batches was measured to pay for (benchmarks/noise.py)
_VMAP_LAYERS = (nn.Linear,)


def _vmap_pays(problem: Problem) -> bool:
    """The automatic choice of :func:`minibatch_gradients`: vmap over whole mini-batches when every
    module holding parameters is an ``nn.Linear`` (an MLP), else the loop of one reverse pass per
    mini-batch.

    Why by what the model contains, not by timing it: the choice is then the same on every call and
    on a resumed run, so the rows (equal to float rounding either way) never depend on the machine's
    load. The loop is a plain training step's gradient per mini-batch, so it costs L plain gradients
    whatever the model. vmap runs the L mini-batches as one batched pass; for dense layers that saves
    the per-pass overhead (MLP 300-100, L = 25, M = 128, 2-core CPU: 0.8x the L plain gradients on
    2 threads, 0.8-0.9x on one, the loop 1.2-1.25x), for convolutions the batched per-mini-batch weight
    gradients are far slower than L ordinary passes (SimpleCNN: 3.3-3.6x; the loop 0.9-1.0x). ``benchmarks/noise.py``
    measures both methods on both models. Other layers (embeddings, normalisation, attention,
    recurrent cells) were not measured and take the loop."""
    for m in problem.model.modules():
        if next(m.parameters(recurse=False), None) is not None and not isinstance(m, _VMAP_LAYERS):
            return False
    return True


def _vmapped_rows(problem: Problem, theta, pool, indices, frozen) -> tuple[torch.Tensor, ...] | None:
    """The mini-batch gradients of ``indices`` (L, M) as column blocks, one (L, numel) block per
    selected parameter tensor, several whole mini-batches per ``vmap(grad)`` call (one batched
    forward and backward instead of L small ones). The derivative is taken per tensor, so no flat
    (L, D) copy is made; when one call covers all L, its blocks are returned as they are. None if
    ``torch.func`` cannot vmap the model (the caller then loops over rows)."""
    L, M = indices.shape
    rows = max(1, _VMAP_EXAMPLES.get(problem.device.type, _VMAP_EXAMPLES["accelerator"]) // M)
    parts = tuple(problem.spec.unflatten(theta).values())

    def batch_loss(ps, x, y):
        return problem.batch_loss(ps, (x, y), frozen=frozen)

    # each mini-batch differentiates its own view of the parameters (expanded: stride 0, nothing
    # copied), so a dense layer's forward runs as a batch of L products of M rows (bmm) rather than
    # one product of L * M rows against shared weights; same values, and on the CPU the batched
    # form was the faster one (MLP 300-100, L = 25, M = 128: rows 0.78-0.91x the L plain
    # gradients on one thread against 1.0-1.1x with shared weights; about 0.8x on two either way)
    per_batch = vmap(grad(batch_loss), in_dims=(0, 0, 0))
    out = None
    for lo in range(0, L, rows):
        idx = indices[lo : lo + rows]
        x, y = problem.place(pool.gather(idx.reshape(-1)))  # one gather per call
        x = tuple(t.unflatten(0, idx.shape) for t in x) if isinstance(x, tuple) else x.unflatten(0, idx.shape)
        try:
            own = tuple(p.expand(len(idx), *p.shape) for p in parts)
            g = [t.reshape(len(idx), -1) for t in per_batch(own, x, y.unflatten(0, idx.shape))]
        except (RuntimeError, NotImplementedError) as err:
            warnings.warn(
                "minibatch_gradients: torch.func could not vmap this model over mini-batches "
                f"({type(err).__name__}: {str(err).splitlines()[0][:200]}); looping over them instead (slower, same values).",
                RuntimeWarning,
                stacklevel=3,
            )
            return None
        if len(idx) == L:
            return tuple(g)
        if out is None:
            out = tuple(torch.empty(L, t.shape[1], dtype=problem.dtype, device=problem.device) for t in g)
        for o, t in zip(out, g):
            o[lo : lo + len(idx)] = t
    return out


def _autograd_grad(problem: Problem, theta, batch, frozen) -> torch.Tensor:
    with torch.enable_grad():
        t = theta.detach().requires_grad_(True)
        (g,) = torch.autograd.grad(problem.batch_loss(t, batch, frozen=frozen), t)
    return g.detach()


def minibatch_gradients(
    problem: Problem,
    source=None,
    *,
    batch_size: int | None = None,
    num_batches: int = 1,
    generator: torch.Generator | None = None,
    indices: torch.Tensor | None = None,
    chunk_size: int | None = None,
    theta: torch.Tensor | None = None,
    method: str = "auto",
    blocks: bool = False,
):
    """The (L, D) matrix of L mini-batch gradients ``g_B = (1/M) sum_{i in B} g_i``, |B| = M.

    Two ways to the same rows (equal up to float rounding; nothing is stored in ``.grad``):
    ``"loop"``, one ``torch.autograd.grad`` reverse pass per mini-batch (a plain training step's
    gradient, so L rows cost L plain gradients), and ``"vmap"``, several whole mini-batches per
    ``vmap`` of ``torch.func.grad`` (one batched pass instead of L small ones). ``"auto"`` takes
    vmap for models whose parameters all sit in ``nn.Linear`` layers, where it was measured faster
    than the loop on the CPU, and the loop otherwise (convolutions: vmap's batched per-mini-batch
    weight gradients are 3-4x slower there); it is decided by the model's modules, never by
    timing, so a run and its resumption take the same path. The loop also serves ``chunk_size`` < M
    and models that ``torch.func`` cannot vmap (with a warning).
    The mini-batches are drawn by :func:`minibatch_indices` (M distinct examples each, drawn
    independently, from ``generator``), or given as ``indices`` (L, M). ``batch_size`` equal to
    the number of examples N gives the full gradient. Batch norm follows the Problem's
    ``bn_mode``: in ``"train"`` each mini-batch is normalised with its own statistics, as in SGD.

    Args:
        problem: model, loss and parameter selection.
        source: ``(X, Y)`` tensors of a data set, a list of ``(inputs, targets)`` batches, a
            map-style Dataset or a DataLoader (read once): one pool of N examples, in order
            (:class:`~sgdscope._batches.Pool`); default: the problem's own batches.
        batch_size: M, in [1, N] (not used when ``indices`` is given).
        num_batches: L >= 1 (ignored when ``indices`` is given).
        generator: the ``torch.Generator`` that draws the mini-batches (not needed for M = N).
        indices: (L, M) long tensor of example positions in ``source``, instead of a draw.
        chunk_size: evaluate each mini-batch in pieces of at most this many examples, weighted
            by their share (bounds memory for large M; not allowed with batch norm in train mode,
            whose statistics would then change).
        theta: (D,) parameters (default: the model's current ones).
        method: ``"auto"`` (default), ``"loop"`` or ``"vmap"`` (whole mini-batches; needs
            ``chunk_size`` None or >= M), as above.
        blocks: return the rows as a tuple of column blocks (L, D_i), ``D = sum_i D_i``, in the
            order of the flat parameters, instead of one (L, D) matrix: one block per parameter
            tensor by ``"vmap"`` (as it computes them: no L x D copy), one block by ``"loop"``.
            :func:`covariance_spectrum` takes either.

    Returns:
        (L, D) tensor on the problem's device and dtype (or its column blocks, ``blocks=True``).
    """
    if method not in ("auto", "loop", "vmap"):
        raise ValueError(f"method must be 'auto', 'loop' or 'vmap', got {method!r}")
    pool = Pool(problem.batches if source is None else source)
    indices = draw_indices(len(pool), indices, batch_size=batch_size, num_batches=num_batches, generator=generator,
                           what="minibatch_gradients")
    L, M = indices.shape
    chunk = M if chunk_size is None else int(chunk_size)
    if chunk < 1:
        raise ValueError(f"chunk_size must be >= 1, got {chunk_size}")
    if chunk < M and problem.bn_mode == "train" and problem.has_batchnorm:
        raise ValueError(
            f"chunk_size={chunk} < M={M} would split mini-batches whose batch-norm statistics (bn_mode='train') "
            "depend on all their examples; leave chunk_size=None"
        )
    if method == "vmap" and chunk < M:
        raise ValueError(
            f"method='vmap' evaluates whole mini-batches: chunk_size={chunk} < M={M} needs method='loop' or 'auto'"
        )
    if method == "auto":
        method = "vmap" if chunk >= M and _vmap_pays(problem) else "loop"
    theta = problem.check_theta(theta)
    frozen = problem.frozen_params()
    with problem.measuring():
        if method == "vmap":
            G = _vmapped_rows(problem, theta, pool, indices, frozen)
            if G is not None:
                return G if blocks else join_columns(G)
        out = torch.empty(L, problem.dim, dtype=problem.dtype, device=problem.device)
        for l in range(L):
            row = out[l]
            row.zero_()
            for lo in range(0, M, chunk):
                part = indices[l, lo : lo + chunk]
                g = _autograd_grad(problem, theta, problem.place(pool.gather(part)), frozen)
                row.add_(g, alpha=len(part) / M)  # each part's mean loss, weighted by its share
    return (out,) if blocks else out
