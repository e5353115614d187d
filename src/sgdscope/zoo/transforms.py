"""Transforms the papers use: normalisation, grey 7x7 images, CIFAR augmentation, shuffled labels.

Tensor functions take and return batches (``N x C x H x W`` images, ``N`` labels); the
``Dataset`` functions apply them to every split, with statistics from the training split.
All randomness comes from an explicit ``torch.Generator`` or seed.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import torch
import torch.nn.functional as F

from ._errors import _choice
from .splits import Dataset, Split

__all__ = [
    "channel_stats", "normalize", "standardize", "to_grayscale", "resize", "grey_resize",
    "random_crop_flip", "shuffle_labels", "shuffle_train_labels",
]

_LUMA = (0.299, 0.587, 0.114)  # ITU-R 601-2, as PIL's convert("L")


def channel_stats(x: torch.Tensor, *, chunk: int = 4096) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-channel mean and (population) standard deviation of ``N x C x ...`` inputs, each ``C``.

    Accumulated in float64 over chunks of ``chunk`` examples (shifted sums, so memory stays
    small and large means do not cancel), returned in ``x.dtype``.
    """
    if x.ndim < 2 or x.shape[0] == 0:
        raise ValueError(f"channel_stats: expected a non-empty N x C x ... tensor, got shape {tuple(x.shape)}")
    dims = [0] + list(range(2, x.ndim))
    shift = x[:1].double().mean(dim=dims)
    view = (1, -1) + (1,) * (x.ndim - 2)
    s1 = torch.zeros_like(shift)
    s2 = torch.zeros_like(shift)
    for start in range(0, x.shape[0], chunk):
        d = x[start : start + chunk].double() - shift.reshape(view)
        s1 += d.sum(dim=dims)
        s2 += d.square().sum(dim=dims)
    n = x.numel() // x.shape[1]
    mean = s1 / n
    var = (s2 / n - mean.square()).clamp_min(0.0)
    return (mean + shift).to(x.dtype), var.sqrt().to(x.dtype)


def _per_channel(v: torch.Tensor | Sequence[float], x: torch.Tensor, what: str) -> torch.Tensor:
    v = torch.as_tensor(v, dtype=x.dtype, device=x.device).reshape(-1)
    if v.numel() not in (1, x.shape[1]):
        raise ValueError(f"normalize: {what} has {v.numel()} values, expected 1 or {x.shape[1]} (channels of x)")
    return v.reshape(1, -1, *([1] * (x.ndim - 2)))


def normalize(x: torch.Tensor, mean: torch.Tensor | Sequence[float], std: torch.Tensor | Sequence[float]) -> torch.Tensor:
    """``(x - mean) / std`` per channel (dimension 1) of ``N x C x ...`` inputs."""
    std_t = _per_channel(std, x, "std")
    if bool((std_t <= 0).any()):
        raise ValueError(f"normalize: std must be positive, got {std_t.reshape(-1).tolist()}")
    return (x - _per_channel(mean, x, "mean")) / std_t


def standardize(ds: Dataset, mean: Sequence[float] | None = None, std: Sequence[float] | None = None) -> Dataset:
    """Normalise every split per channel with ``mean`` / ``std`` (default: the training split's).

    The values used are recorded in ``meta["normalization"]``. Not for token ids.
    """
    if not ds.train.x.is_floating_point():
        raise ValueError(f"standardize: {ds.name} inputs are {ds.train.x.dtype}, expected floating-point images or features")
    m, s = channel_stats(ds.train.x) if mean is None or std is None else (mean, std)
    m = torch.as_tensor(mean if mean is not None else m, dtype=ds.train.x.dtype).cpu()
    s = torch.as_tensor(std if std is not None else s, dtype=ds.train.x.dtype).cpu()
    return ds.map_inputs(lambda x: normalize(x, m, s), normalization={"mean": m.reshape(-1).tolist(), "std": s.reshape(-1).tolist()})


def to_grayscale(x: torch.Tensor) -> torch.Tensor:
    """RGB ``N x 3 x H x W`` -> grey ``N x 1 x H x W`` with ITU-R 601-2 luma weights (PIL's "L")."""
    if x.ndim != 4 or x.shape[1] != 3:
        raise ValueError(f"to_grayscale: expected N x 3 x H x W, got shape {tuple(x.shape)}")
    w = torch.tensor(_LUMA, dtype=x.dtype, device=x.device).reshape(1, 3, 1, 1)
    return (x * w).sum(1, keepdim=True)


def resize(x: torch.Tensor, size: int | tuple[int, int]) -> torch.Tensor:
    """Resize ``N x C x H x W`` to ``size`` with area interpolation (box averaging when shrinking)."""
    if x.ndim != 4:
        raise ValueError(f"resize: expected N x C x H x W, got shape {tuple(x.shape)}")
    size = (size, size) if isinstance(size, int) else tuple(size)
    return F.interpolate(x, size=size, mode="area")


def grey_resize(ds: Dataset, size: int | tuple[int, int] = 7) -> Dataset:
    """Grey-scale and resize every split (noise paper App. A.4: CIFAR-10 as 7 x 7 grey images).

    Follow with ``standardize`` for the paper's 'and normalized'.
    """
    def fn(x: torch.Tensor) -> torch.Tensor:
        return resize(to_grayscale(x) if x.shape[1] == 3 else x, size)

    return ds.map_inputs(fn, grey_resize=size)


def random_crop_flip(x: torch.Tensor, generator: torch.Generator, *, padding: int = 4, flip: bool = True) -> torch.Tensor:
    """Standard CIFAR augmentation of a batch ``N x C x H x W``: zero-pad by ``padding``, crop a
    random ``H x W`` window, and mirror horizontally with probability 1/2.

    Draws, in order, N row offsets, N column offsets (each uniform in ``0 .. 2*padding``) and N
    flip coins from ``generator`` (on its own device; results are moved to ``x.device``), so the
    same generator state gives the same batch. Returns a new tensor; ``x`` is not modified.
    """
    if x.ndim != 4:
        raise ValueError(f"random_crop_flip: expected N x C x H x W, got shape {tuple(x.shape)}")
    n, _, h, w = x.shape
    gdev = generator.device
    oy = torch.randint(0, 2 * padding + 1, (n,), generator=generator, device=gdev).to(x.device)
    ox = torch.randint(0, 2 * padding + 1, (n,), generator=generator, device=gdev).to(x.device)
    rows = oy[:, None] + torch.arange(h, device=x.device)
    cols = ox[:, None] + torch.arange(w, device=x.device)
    if flip:
        mirror = (torch.rand(n, generator=generator, device=gdev) < 0.5).to(x.device)
        cols = torch.where(mirror[:, None], cols.flip(1), cols)
    xp = F.pad(x, (padding, padding, padding, padding))
    out = xp[torch.arange(n, device=x.device)[:, None, None], :, rows[:, :, None], cols[:, None, :]]  # N x H x W x C
    return out.permute(0, 3, 1, 2).contiguous()


def shuffle_labels(
    y: torch.Tensor, fraction: float, *, seed: int = 0, num_classes: int | None = None, mode: str = "permute"
) -> tuple[torch.Tensor, torch.Tensor]:
    """Corrupt ``round(fraction * N)`` labels of ``y`` (noise paper App. A.2.2, 'shuffle set' B).

    The corrupted examples are a random subset chosen with ``torch.Generator().manual_seed(seed)``.
    ``mode="permute"``: their labels are permuted among themselves (class counts kept, some
    labels land where they were); ``mode="random"``: each gets a uniform label in
    ``[0, num_classes)``. Returns ``(new_labels, mask)`` with ``mask`` (bool, ``N``) marking
    the chosen examples. ``y`` is not modified.
    """
    _choice("shuffle mode", mode, ("permute", "random"))
    if not 0.0 <= fraction <= 1.0:
        raise ValueError(f"shuffle_labels: fraction must be in [0, 1], got {fraction!r}")
    n = y.shape[0]
    g = torch.Generator().manual_seed(int(seed))
    chosen = torch.randperm(n, generator=g)[: int(round(fraction * n))]
    out = y.clone()
    if mode == "permute":
        src = chosen[torch.randperm(len(chosen), generator=g)]
        out[chosen.to(y.device)] = y[src.to(y.device)]
    else:
        k = int(num_classes) if num_classes is not None else int(y.max()) + 1
        out[chosen.to(y.device)] = torch.randint(k, (len(chosen),), generator=g).to(y.device, y.dtype)
    mask = torch.zeros(n, dtype=torch.bool, device=y.device)
    mask[chosen.to(y.device)] = True
    return out, mask


def shuffle_train_labels(ds: Dataset, fraction: float, *, seed: int = 0, mode: str = "permute") -> Dataset:
    """``ds`` with ``shuffle_labels`` applied to the training split; the mask of corrupted
    examples is in ``meta["shuffled_mask"]``. Validation and test labels are kept."""
    y, mask = shuffle_labels(ds.train.y, fraction, seed=seed, num_classes=ds.num_classes, mode=mode)
    meta = {**ds.meta, "shuffled_mask": mask, "shuffled": {"fraction": fraction, "seed": seed, "mode": mode}}
    return dataclasses.replace(ds, train=Split(ds.train.x, y), meta=meta)
