"""Example pools and mini-batch index draws shared by the gradient functions.

A *source* of examples is either a data set as tensors ``(X, Y)`` (``X`` a tensor or a tuple of
tensors fed as ``model(*X)``; first dimension = examples), or a list of ``(inputs, targets)``
batches, which is treated as one pool of ``N = sum of batch sizes`` examples, indexed in order
(no concatenated copy is made).
"""
from __future__ import annotations

import torch

__all__ = ["minibatch_indices"]


def _rows(x, idx: torch.Tensor):
    if isinstance(x, (tuple, list)):
        return tuple(_rows(t, idx) for t in x)
    return x.index_select(0, idx.to(x.device))


def _length(x) -> int:
    if isinstance(x, (tuple, list)):
        sizes = {_length(t) for t in x}
        if len(sizes) != 1:
            raise ValueError(f"the input tensors of a batch disagree on the number of examples: {sorted(sizes)}")
        return sizes.pop()
    return int(x.shape[0])


def _is_pair(obj) -> bool:
    return isinstance(obj, (tuple, list)) and len(obj) == 2 and isinstance(obj[1], torch.Tensor)


class _Pool:
    """N examples held as one or more ``(inputs, targets)`` blocks; ``gather(idx)`` -> one batch."""

    def __init__(self, source):
        if _is_pair(source) and isinstance(source, tuple):
            blocks = [source]
        else:
            blocks = list(source)
            if not blocks:
                raise ValueError("source: expected (X, Y) tensors or a non-empty list of batches, got an empty list")
        for i, b in enumerate(blocks):
            if not _is_pair(b):
                raise TypeError(
                    f"source: expected (X, Y) tensors or a list of (inputs, targets) batches; item {i} is "
                    f"{type(b).__name__}"
                )
            if _length(b[0]) != len(b[1]):
                raise ValueError(f"source batch {i}: {_length(b[0])} inputs but {len(b[1])} targets")
        self.blocks = [tuple(b) for b in blocks]
        sizes = torch.tensor([len(b[1]) for b in self.blocks])
        self.offsets = torch.cat([torch.zeros(1, dtype=torch.long), sizes.cumsum(0)])
        self.n = int(self.offsets[-1])

    def __len__(self) -> int:
        return self.n

    def gather(self, idx: torch.Tensor):
        """The examples ``idx`` (a 1-d long tensor of pool positions), in that order."""
        idx = idx.to("cpu", torch.long)
        if len(self.blocks) == 1:
            x, y = self.blocks[0]
            return _rows(x, idx), _rows(y, idx)
        which = torch.searchsorted(self.offsets, idx, right=True) - 1
        xs, ys, order = [], [], []
        for b in torch.unique(which).tolist():
            sel = (which == b).nonzero().flatten()
            local = idx[sel] - self.offsets[b]
            x, y = self.blocks[b]
            xs.append(_rows(x, local))
            ys.append(_rows(y, local))
            order.append(sel)
        inv = torch.argsort(torch.cat(order))  # back to the order of idx
        x = _cat(xs)
        return _rows(x, inv), _rows(torch.cat([t.to(ys[0].device) for t in ys]), inv)


def _cat(parts):
    if isinstance(parts[0], tuple):
        return tuple(_cat([p[j] for p in parts]) for j in range(len(parts[0])))
    return torch.cat([p.to(parts[0].device) for p in parts])


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
