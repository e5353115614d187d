"""User data as ``(inputs, targets)`` batches: the one place that reads, checks, places and joins them.

A *batch* (or pair) is ``(inputs, targets)``: ``inputs`` a tensor, or a tuple of tensors fed as
``model(*inputs)``; ``targets`` a tensor; the first dimension of every tensor counts the examples,
and they agree. *Data* given by a user is one pair, a list of pairs, a map-style ``Dataset`` (its
items stacked into one pair) or a ``DataLoader`` / any other iterable of pairs (read once).

* :func:`as_batches` turns data into a list of checked pairs;
* :func:`check_batch` checks one pair, with errors that say what was wrong;
* :func:`place` moves a pair to the parameters' device (floating inputs cast to their dtype);
* :func:`concat_batches` joins data into one ``(X, Y)`` pair;
* :class:`Pool` indexes the examples of several pairs as one set of N, in order, without joining them.
"""
from __future__ import annotations

import torch
from torch.utils.data import Dataset, IterableDataset

__all__ = ["Batch", "as_batches", "check_batch", "concat_batches", "num_examples", "place", "place_inputs", "Pool"]

Batch = tuple  # (inputs, targets); inputs a tensor or a tuple of tensors fed as model(*inputs)


def _kind(obj) -> str:
    if isinstance(obj, (tuple, list)):
        return f"a {type(obj).__name__} of {len(obj)}"
    if isinstance(obj, torch.Tensor):
        return f"a tensor of shape {tuple(obj.shape)}"
    return type(obj).__name__


def _is_pair(obj) -> bool:
    """One pair given as data: a tuple of two whose second element is a tensor (a list is always
    read as a list of batches, so ``[pair, tensor]`` is not mistaken for a pair)."""
    return isinstance(obj, tuple) and len(obj) == 2 and isinstance(obj[1], torch.Tensor)


def num_examples(x) -> int:
    """Examples in a tensor or a tuple of tensors (their first dimension, which must agree)."""
    if isinstance(x, (tuple, list)):
        sizes = {num_examples(t) for t in x}
        if len(sizes) != 1:
            raise ValueError(f"the input tensors disagree on the number of examples: {sorted(sizes)}")
        return sizes.pop()
    if x.ndim == 0:
        raise ValueError("a 0-d tensor has no examples; expected a first dimension that counts them")
    return int(x.shape[0])


def check_batch(batch, what: str = "batch") -> Batch:
    """``batch`` as an ``(inputs, targets)`` tuple (list inputs become a tuple), after checking it.

    Raises:
        TypeError: not a pair, targets not a tensor, inputs neither a tensor nor a tuple of tensors.
        ValueError: the tensors disagree on the number of examples, or one has no first dimension.
    """
    if not (isinstance(batch, (tuple, list)) and len(batch) == 2):
        raise TypeError(f"{what}: expected an (inputs, targets) pair, got {_kind(batch)}")
    x, y = batch
    if not isinstance(y, torch.Tensor):
        raise TypeError(f"{what}: targets must be a tensor, got {_kind(y)}")
    if isinstance(x, list):
        x = tuple(x)
    if isinstance(x, tuple):
        if not x or not all(isinstance(t, torch.Tensor) for t in x):
            raise TypeError(
                f"{what}: inputs must be a tensor or a tuple of tensors, got a tuple of "
                f"({', '.join(type(t).__name__ for t in x)})"
            )
    elif not isinstance(x, torch.Tensor):
        raise TypeError(f"{what}: inputs must be a tensor or a tuple of tensors, got {_kind(x)}")
    try:
        n, m = num_examples(x), num_examples(y)
    except ValueError as err:
        raise ValueError(f"{what}: {err}") from None
    if n != m:
        raise ValueError(f"{what}: {n} inputs but {m} targets")
    return x, y


def _stack(items):
    if isinstance(items[0], (tuple, list)):
        return tuple(torch.stack([torch.as_tensor(it[j]) for it in items]) for j in range(len(items[0])))
    return torch.stack([torch.as_tensor(it) for it in items])


def as_batches(data, what: str = "batches") -> list[Batch]:
    """A list of checked ``(inputs, targets)`` pairs from one pair, a list of pairs, a map-style
    ``Dataset`` (all items stacked into one pair) or a ``DataLoader`` / iterable of pairs (read once).

    One pair is a tuple of two whose second element (the targets) is a tensor; anything else (a
    list included) is read as a sequence of pairs. ``what`` names the data in errors.
    """
    if _is_pair(data):
        return [check_batch(data, what)]
    if isinstance(data, Dataset) and not isinstance(data, IterableDataset):
        if len(data) == 0:
            raise ValueError(f"{what}: expected at least one batch, got an empty Dataset")
        xs, ys = zip(*(data[i] for i in range(len(data))))
        return [check_batch((_stack(xs), _stack(ys)), what)]
    out = [check_batch(b, f"{what}: batch {i}") for i, b in enumerate(data)]
    if not out:
        raise ValueError(f"{what}: expected at least one batch, got none")
    return out


def place_inputs(x, *, device, dtype):
    """Inputs on ``device``; floating ones cast to ``dtype`` (integer inputs, e.g. tokens, keep theirs)."""
    if isinstance(x, (tuple, list)):
        return tuple(place_inputs(t, device=device, dtype=dtype) for t in x)
    return x.to(device=device, dtype=dtype if x.is_floating_point() else x.dtype)


def place(batch: Batch, *, device, dtype) -> Batch:
    """A checked pair on ``device``: floating inputs cast to ``dtype``, targets keep their dtype."""
    x, y = batch
    return place_inputs(x, device=device, dtype=dtype), y.to(device)


def _rows(x, idx: torch.Tensor):
    if isinstance(x, tuple):
        return tuple(_rows(t, idx) for t in x)
    return x.index_select(0, idx.to(x.device))


def _cat(parts):
    """Join tensors (or tuples of tensors, componentwise) along the examples, on the first one's device."""
    if isinstance(parts[0], tuple):
        return tuple(_cat([p[j] for p in parts]) for j in range(len(parts[0])))
    return torch.cat([p.to(parts[0].device) for p in parts])


def concat_batches(data, what: str = "batches") -> tuple:
    """All examples of ``data`` (anything :func:`as_batches` reads) as one ``(X, Y)`` pair, in order.

    ``X`` is a tensor, or a tuple of tensors when the inputs are tuples; every batch must have the
    same structure. One batch is returned as it is (no copy); several are joined on the first
    batch's device.
    """
    batches = as_batches(data, what)
    if len(batches) == 1:
        return batches[0]
    arity = {len(x) if isinstance(x, tuple) else None for x, _ in batches}
    if len(arity) != 1:
        raise ValueError(
            f"{what}: cannot join batches whose inputs differ in structure (a tensor, or tuples of "
            f"{sorted(a for a in arity if a is not None)} tensors)"
        )
    return _cat([x for x, _ in batches]), _cat([y for _, y in batches])


class Pool:
    """The N examples of ``data`` (anything :func:`as_batches` reads) as one indexed set.

    The batches are kept as they are (``blocks``), in order: example i of the pool is row
    ``i - offsets[b]`` of block b. ``gather(idx)`` returns the examples ``idx`` as one batch.
    """

    def __init__(self, data, what: str = "source"):
        self.blocks = as_batches(data, what)
        sizes = torch.tensor([len(y) for _, y in self.blocks])
        self.offsets = torch.cat([torch.zeros(1, dtype=torch.long), sizes.cumsum(0)])
        self.n = int(self.offsets[-1])

    def __len__(self) -> int:
        return self.n

    def gather(self, idx: torch.Tensor) -> Batch:
        """The examples ``idx`` (a 1-d long tensor of pool positions), in that order, as one pair."""
        idx = torch.as_tensor(idx).to("cpu", torch.long)
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
        return _rows(_cat(xs), inv), _rows(_cat(ys), inv)
