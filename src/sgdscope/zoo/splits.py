"""``Split`` and ``Dataset``: tensors of a data set, plus its deterministic train/val/subset split."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch
from torch.utils.data import DataLoader, TensorDataset

__all__ = ["Split", "Dataset"]


@dataclass(frozen=True)
class Split:
    """One split: inputs ``x`` (``N x *input_shape``) and integer labels ``y`` (``N``, int64)."""

    x: torch.Tensor
    y: torch.Tensor

    def __post_init__(self) -> None:
        if self.x.shape[0] != self.y.shape[0]:
            raise ValueError(f"Split: x has {self.x.shape[0]} rows but y has {self.y.shape[0]}")

    def __len__(self) -> int:
        return int(self.y.shape[0])

    def tensor_dataset(self) -> TensorDataset:
        """``TensorDataset(x, y)``."""
        return TensorDataset(self.x, self.y)

    def loader(self, batch_size: int, *, shuffle: bool = False, seed: int | None = None, drop_last: bool = False) -> DataLoader:
        """A ``DataLoader`` over ``(x, y)``; with ``shuffle=True`` the order comes from a
        ``torch.Generator`` seeded with ``seed`` (0 when ``None``), so epochs are reproducible."""
        generator = torch.Generator().manual_seed(0 if seed is None else int(seed)) if shuffle else None
        return DataLoader(self.tensor_dataset(), batch_size=batch_size, shuffle=shuffle, generator=generator, drop_last=drop_last)

    def to(self, device: torch.device | str | None = None, dtype: torch.dtype | None = None) -> Split:
        """Move to ``device``; ``dtype`` applies to floating-point inputs only (token ids stay int64)."""
        x_dtype = dtype if (dtype is not None and self.x.is_floating_point()) else None
        return Split(self.x.to(device=device, dtype=x_dtype), self.y.to(device=device))


@dataclass(frozen=True)
class Dataset:
    """A data set with ``train``, ``val`` (possibly empty) and ``test`` splits.

    ``input_shape`` is the shape of one example, ``classes`` the class names (index = label),
    ``meta`` what the reader knows besides (source path, vocabulary, normalisation used...).
    """

    name: str
    train: Split
    val: Split
    test: Split
    num_classes: int
    input_shape: tuple[int, ...]
    classes: tuple[str, ...] = ()
    meta: dict = field(default_factory=dict)

    def to(self, device: torch.device | str | None = None, dtype: torch.dtype | None = None) -> Dataset:
        """All splits moved to ``device`` / floating inputs cast to ``dtype``."""
        return dataclasses.replace(self, **{s: getattr(self, s).to(device, dtype) for s in ("train", "val", "test")})

    def map_inputs(self, fn: Callable[[torch.Tensor], torch.Tensor], **meta) -> Dataset:
        """Apply ``fn`` to the inputs of every split; ``input_shape`` follows, ``meta`` is updated."""
        splits = {s: Split(fn(getattr(self, s).x), getattr(self, s).y) for s in ("train", "val", "test")}
        shape = tuple(splits["train"].x.shape[1:])
        return dataclasses.replace(self, **splits, input_shape=shape, meta={**self.meta, **meta})

    def __repr__(self) -> str:
        sizes = ", ".join(f"{s}={len(getattr(self, s))}" for s in ("train", "val", "test"))
        return f"Dataset({self.name!r}, {sizes}, input_shape={self.input_shape}, num_classes={self.num_classes})"


def _split_indices(n: int, val_size: int, subset: int | None, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices (sorted) of the validation split and of the training split.

    One permutation of ``range(n)`` from ``torch.Generator().manual_seed(seed)``: the first
    ``val_size`` entries are the validation split, the next ``subset`` (or all the rest) the
    training split. So the validation split does not depend on ``subset``, and subsets of
    growing size are nested.
    """
    if int(val_size) != val_size or not 0 <= val_size < n:
        raise ValueError(f"val_size must be an integer in [0, {n}) for {n} training examples, got {val_size!r}")
    rest = n - int(val_size)
    if subset is not None and (int(subset) != subset or not 0 < subset <= rest):
        raise ValueError(f"subset must be an integer in [1, {rest}] (training examples left after val_size={val_size}), got {subset!r}")
    if val_size == 0 and subset is None:
        return np.zeros(0, dtype=np.int64), np.arange(n)
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(int(seed))).numpy()
    val = np.sort(perm[: int(val_size)])
    train = np.sort(perm[int(val_size) : int(val_size) + (rest if subset is None else int(subset))])
    return val, train


def _to_tensor(x: np.ndarray, dtype: torch.dtype) -> torch.Tensor:
    """uint8 images ``N x H x W x C`` or ``N x C x H x W`` -> float in [0, 1]; floats cast; ints int64."""
    t = torch.from_numpy(np.ascontiguousarray(x))
    if t.dtype == torch.uint8:
        return t.to(dtype).div_(255.0)
    if t.is_floating_point():
        return t.to(dtype)
    return t.long()


def _make_dataset(
    name: str,
    train: tuple[np.ndarray, np.ndarray],
    test: tuple[np.ndarray, np.ndarray],
    *,
    num_classes: int,
    classes: tuple[str, ...] = (),
    meta: dict | None = None,
    val_size: int = 0,
    subset: int | None = None,
    seed: int = 0,
    device: torch.device | str | None = None,
    dtype: torch.dtype = torch.float32,
) -> Dataset:
    """Split, subset, convert (uint8 -> [0, 1] float ``dtype``) and move the arrays of a reader."""
    if not (isinstance(dtype, torch.dtype) and dtype.is_floating_point):
        raise ValueError(f"dtype must be a floating torch.dtype (e.g. torch.float32), got {dtype!r}")
    x, y = train
    val_idx, train_idx = _split_indices(len(y), val_size, subset, seed)

    def split(xs: np.ndarray, ys: np.ndarray) -> Split:
        return Split(_to_tensor(xs, dtype), torch.from_numpy(np.asarray(ys, dtype=np.int64)))

    whole = len(train_idx) == len(y)  # no val split, no subset: no copy
    ds = Dataset(
        name=name,
        train=split(x, y) if whole else split(x[train_idx], y[train_idx]),
        val=split(x[val_idx], y[val_idx]),
        test=split(*test),
        num_classes=int(num_classes),
        input_shape=tuple(int(s) for s in x.shape[1:]),
        classes=tuple(classes),
        meta={**(meta or {}), "val_size": int(val_size), "subset": subset, "seed": int(seed)},
    )
    return ds.to(device) if device is not None else ds
