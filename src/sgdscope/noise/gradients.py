"""Per-example and mini-batch gradients as rows of an (n, D) matrix.

Both are pure functions of the flat parameters ``theta`` of a :class:`~sgdscope.Problem`
(per-example rows by ``torch.func.vmap`` of ``grad``, mini-batch rows by ``torch.autograd.grad``
on a detached copy of ``theta``), evaluated under ``problem.measuring()``: the model's mode,
buffers, ``.grad`` and the global RNG are left as they were.

Conventions (Break-Even §3, App. C; Walk with SGD §4.1):

* per-example gradient ``g_i = d/dtheta loss_fn(f(x_i), y_i)``, the loss of the single example;
* mini-batch gradient ``g_B = (1/M) sum_{i in B} g_i`` -- the gradient of the mini-batch loss
  with a mean reduction, which is what SGD steps along. A loss with ``reduction="sum"`` is
  divided by M, so the mean of per-example rows is the mini-batch row in both cases.
"""
from __future__ import annotations

import warnings

import torch
from torch.func import grad, vmap

from .._batches import Pool
from ..problem import Problem
from ._data import minibatch_indices

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


_VMAP_EXAMPLES = {"cpu": 1024, "accelerator": 8192}  # examples per vmapped call of whole mini-batches


def _vmapped_rows(problem: Problem, theta, pool, indices, frozen, out) -> bool:
    """Fill ``out`` with the mini-batch gradients of ``indices`` (L, M), several whole mini-batches
    per ``vmap(grad)`` call (one batched forward and backward instead of L small ones). False if
    ``torch.func`` cannot vmap the model (the caller then loops over rows)."""
    L, M = indices.shape
    rows = max(1, _VMAP_EXAMPLES.get(problem.device.type, _VMAP_EXAMPLES["accelerator"]) // M)

    def batch_loss(t, x, y):
        return problem.batch_loss(t, (x, y), frozen=frozen)

    per_batch = vmap(grad(batch_loss), in_dims=(None, 0, 0))
    for lo in range(0, L, rows):
        idx = indices[lo : lo + rows]
        x, y = problem.place(pool.gather(idx.reshape(-1)))
        x = tuple(t.unflatten(0, idx.shape) for t in x) if isinstance(x, tuple) else x.unflatten(0, idx.shape)
        try:
            out[lo : lo + len(idx)] = per_batch(theta, x, y.unflatten(0, idx.shape))
        except (RuntimeError, NotImplementedError) as err:
            warnings.warn(
                "minibatch_gradients: torch.func could not vmap this model over mini-batches "
                f"({type(err).__name__}: {str(err).splitlines()[0][:200]}); looping over them instead (slower, same values).",
                RuntimeWarning,
                stacklevel=3,
            )
            return False
    return True


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
) -> torch.Tensor:
    """The (L, D) matrix of L mini-batch gradients ``g_B = (1/M) sum_{i in B} g_i``, |B| = M.

    Rows are computed several mini-batches at a time by ``vmap`` of ``torch.func.grad`` of the
    mini-batch loss (one batched pass instead of L small ones; nothing stored in ``.grad``), or by a
    loop of ``torch.autograd.grad``, one reverse pass per mini-batch, when ``chunk_size`` splits
    mini-batches or the model cannot be vmapped.
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

    Returns:
        (L, D) tensor on the problem's device and dtype.
    """
    pool = Pool(problem.batches if source is None else source)
    if indices is None:
        if batch_size is None:
            raise ValueError("minibatch_gradients: give batch_size (with num_batches and generator) or indices")
        indices = minibatch_indices(len(pool), batch_size=batch_size, num_batches=num_batches, generator=generator)
    indices = torch.as_tensor(indices)
    if indices.ndim != 2 or indices.shape[1] < 1 or indices.dtype not in (torch.int32, torch.int64):
        raise ValueError(f"indices must be an (L, M) integer tensor, got shape {tuple(indices.shape)} {indices.dtype}")
    if int(indices.min()) < 0 or int(indices.max()) >= len(pool):
        raise ValueError(f"indices must lie in [0, N={len(pool)}), got [{int(indices.min())}, {int(indices.max())}]")
    L, M = indices.shape
    chunk = M if chunk_size is None else int(chunk_size)
    if chunk < 1:
        raise ValueError(f"chunk_size must be >= 1, got {chunk_size}")
    if chunk < M and problem.bn_mode == "train" and problem.has_batchnorm:
        raise ValueError(
            f"chunk_size={chunk} < M={M} would split mini-batches whose batch-norm statistics (bn_mode='train') "
            "depend on all their examples; leave chunk_size=None"
        )
    theta = problem.check_theta(theta)
    frozen = problem.frozen_params()
    per_row = 1.0 / M if problem.reduction == "sum" else None
    out = torch.empty(L, problem.dim, dtype=problem.dtype, device=problem.device)
    with problem.measuring():
        if chunk >= M and _vmapped_rows(problem, theta, pool, indices, frozen, out):
            if per_row is not None:
                out.mul_(per_row)
            return out
        for l in range(L):
            row = out[l]
            row.zero_()
            for lo in range(0, M, chunk):
                part = indices[l, lo : lo + chunk]
                g = _autograd_grad(problem, theta, problem.place(pool.gather(part)), frozen)
                row.add_(g, alpha=per_row if per_row is not None else len(part) / M)
    return out
