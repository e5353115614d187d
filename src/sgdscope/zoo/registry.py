"""``build_model`` / ``list_models``: the papers' architectures by name, with seeded init."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence
from typing import NamedTuple

import torch
from torch import nn

from . import models_cnn, models_densenet, models_lstm, models_mlp, models_resnet, models_vgg
from ._errors import _lookup
from ._init import init_parameters

__all__ = ["build_model", "list_models", "count_parameters"]


class _Entry(NamedTuple):
    builder: Callable[..., nn.Module]
    init: str  # scheme of ._init
    paper: str


_MODELS: dict[str, _Entry] = {
    "simplecnn": _Entry(models_cnn.simplecnn, "keras", "Break-Even App. D"),
    "simplecnn_bn": _Entry(models_cnn.simplecnn_bn, "keras", "Break-Even §4.3"),
    "small_cnn": _Entry(models_cnn.small_cnn, "torch", "noise paper App. A.5"),
    "convnet4": _Entry(models_cnn.convnet4, "torch", "noise paper App. A.2.2"),
    "resnet32": _Entry(models_resnet.resnet32, "he", "Break-Even App. D"),
    "resnet56": _Entry(models_resnet.resnet56, "he", "Walk with SGD §3"),
    "cifar_resnet": _Entry(models_resnet.cifar_resnet, "he", "He et al. 2015 §4.2"),
    "preact_resnet18": _Entry(models_resnet.preact_resnet18, "he", "noise paper §3, A.2.2"),
    "vgg11": _Entry(models_vgg.vgg11, "he", "Walk with SGD §3"),
    "vgg16": _Entry(models_vgg.vgg16, "he", "noise paper §3"),
    "densenet_cifar": _Entry(models_densenet.densenet_cifar, "he", "noise paper App. A.2.1"),
    "mlp": _Entry(models_mlp.mlp, "keras", "Break-Even App. D; Walk with SGD"),
    "mlp_70": _Entry(models_mlp.mlp_70, "keras", "noise paper App. A.4"),
    "mlp_6220": _Entry(models_mlp.mlp_6220, "keras", "noise paper §4.1"),
    "lstm": _Entry(models_lstm.lstm, "keras", "Break-Even App. D"),
}


def list_models() -> list[str]:
    """Names accepted by ``build_model``, sorted."""
    return sorted(_MODELS)


def _check_kwargs(name: str, builder: Callable[..., nn.Module], kwargs: dict) -> None:
    params = inspect.signature(builder).parameters
    allowed = [p for p in params if p not in ("input_shape", "num_classes")]
    bad = [k for k in kwargs if k not in allowed]
    if bad:
        raise TypeError(
            f"build_model({name!r}): unexpected keyword argument(s) {', '.join(map(repr, bad))}; "
            f"allowed: input_shape, num_classes, seed, device, dtype" + "".join(f", {a}" for a in allowed)
        )


def build_model(
    name: str,
    *,
    input_shape: Sequence[int] | None = None,
    num_classes: int | None = None,
    seed: int = 0,
    device: torch.device | str | None = None,
    dtype: torch.dtype | None = None,
    **kwargs,
) -> nn.Module:
    """Build a model of the papers by name, initialised deterministically from ``seed``.

    ``input_shape`` is the shape of one example without the batch dimension (``(C, H, W)`` for
    images, ``(T,)`` for token sequences); ``None`` takes the model's default (the paper's
    dataset). Further keyword arguments go to the builder (see ``docs/zoo.md`` or the builder's
    docstring, e.g. ``widths=`` for ``mlp``); unknown ones raise ``TypeError`` listing the
    allowed ones.

    The module is constructed inside ``torch.random.fork_rng`` and then every parameter is
    drawn from a local ``torch.Generator`` seeded with ``seed`` (scheme per model: Keras-style
    Glorot for the Break-Even models, He for ResNets/VGG/DenseNet, PyTorch's default for the
    rest), on the CPU, then moved to ``device`` / ``dtype``. The global RNG is not touched.
    The result is in training mode.
    """
    entry = _lookup("model", name, _MODELS)
    _check_kwargs(name, entry.builder, kwargs)
    if input_shape is not None:
        kwargs["input_shape"] = tuple(input_shape)
    if num_classes is not None:
        kwargs["num_classes"] = num_classes
    if int(seed) != seed:
        raise ValueError(f"build_model({name!r}): seed must be an integer, got {seed!r}")
    with torch.random.fork_rng(devices=[]):
        model = entry.builder(**kwargs)
    init_parameters(model, entry.init, int(seed))
    if device is not None or dtype is not None:
        model = model.to(device=device, dtype=dtype)
    return model.train()


def count_parameters(model: nn.Module, trainable_only: bool = True) -> int:
    """Number of scalar parameters of ``model`` (buffers such as BN running statistics excluded)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)
