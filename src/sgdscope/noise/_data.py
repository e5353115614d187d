"""Mini-batch index draws shared by the gradient functions.

The examples they index are a :class:`~sgdscope._batches.Pool`: a data set as ``(X, Y)``, or a
list of ``(inputs, targets)`` batches read as one set of ``N = sum of batch sizes`` examples, in
order (no concatenated copy is made).
"""
from __future__ import annotations

import torch

__all__ = ["minibatch_indices", "draw_indices"]


def _check_generator(generator, what: str):
    if not isinstance(generator, torch.Generator):
        raise TypeError(
            f"{what}: generator must be a torch.Generator (all randomness is explicit), got {type(generator).__name__}"
        )


def minibatch_indices(n: int, *, batch_size: int, num_batches: int, generator: torch.Generator | None) -> torch.Tensor:
    """(L, M) long tensor (CPU) of example positions: L = ``num_batches`` mini-batches of
    M = ``batch_size`` distinct examples each, drawn uniformly without replacement within a
    mini-batch (independently across mini-batches) from ``generator``.

    ``batch_size == n`` is the full set (rows ``0..n-1``, no randomness; ``generator`` may be None).
    The same generator state gives the same indices: this is how :func:`minibatch_gradients`
    draws, so a caller can recover the examples behind each row.
    """
    if not 1 <= batch_size <= n:
        raise ValueError(f"batch_size must be in [1, N={n}] (the number of examples in the source), got {batch_size}")
    if num_batches < 1:
        raise ValueError(f"num_batches must be >= 1, got {num_batches}")
    if batch_size == n:
        return torch.arange(n).expand(num_batches, n).clone()
    _check_generator(generator, "minibatch_indices")
    dev = generator.device
    if batch_size * batch_size <= n:
        # M << N: draw with replacement and redraw the rows that repeat an example (a row of M
        # distinct draws is uniform among M-subsets, as a permutation's prefix; about M^2 / 2N of
        # the rows repeat one), instead of a permutation of all N per row
        idx = torch.randint(n, (num_batches, batch_size), generator=generator, device=dev)
        ordered = idx.sort(dim=1).values
        repeats = (ordered[:, 1:] == ordered[:, :-1]).any(dim=1).nonzero().flatten().tolist()
    else:
        idx, repeats = torch.empty(num_batches, batch_size, dtype=torch.long, device=dev), range(num_batches)
    for row in repeats:
        idx[row] = torch.randperm(n, generator=generator, device=dev)[:batch_size]
    return idx.to("cpu")


def draw_indices(n: int, indices, *, batch_size: int | None, num_batches: int, generator, what: str,
                 pool: str = "") -> torch.Tensor:
    """The (L, M) positions a gradient function works on: ``indices`` checked against ``n``
    examples, or a draw by :func:`minibatch_indices` when it is None. ``what``: the function, in
    errors; ``pool``: what the n examples are, in errors (e.g. " (the union of the ranks' pools)")."""
    if indices is None:
        if batch_size is None:
            raise ValueError(f"{what}: give batch_size (with num_batches and generator) or indices")
        indices = minibatch_indices(n, batch_size=batch_size, num_batches=num_batches, generator=generator)
    indices = torch.as_tensor(indices)
    if indices.ndim != 2 or min(indices.shape) < 1 or indices.dtype not in (torch.int32, torch.int64):
        raise ValueError(f"indices must be an (L, M) integer tensor, got shape {tuple(indices.shape)} {indices.dtype}")
    if int(indices.min()) < 0 or int(indices.max()) >= n:
        raise ValueError(f"indices must lie in [0, N={n}){pool}, got [{int(indices.min())}, {int(indices.max())}]")
    return indices
