"""VGG-11 / VGG-16 for CIFAR (Simonyan & Zisserman 2015; Walk with SGD, noise paper §3).

Build them through ``sgdscope.zoo.build_model`` (seeded init).
"""

from __future__ import annotations

from collections.abc import Sequence

from torch import nn

from ._shapes import _image_shape, _num_classes

_CONFIGS: dict[str, tuple[int | str, ...]] = {
    "vgg11": (64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"),
    "vgg16": (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"),
}


def vgg(input_shape: Sequence[int] = (3, 32, 32), num_classes: int = 10, *, config: str = "vgg11", batch_norm: bool = True) -> nn.Module:
    """CIFAR VGG: the conv stacks of VGG (configurations A and D), 3x3 convs with padding 1, each
    followed by batch norm (``batch_norm=True``) and ReLU, five 2x2 max-pools, then a single
    linear classifier on the flattened ``512 x H/32 x W/32`` features (the usual CIFAR variant;
    the 4096-unit dense layers of the ImageNet model are dropped).

    Input ``N x C x H x W`` (H, W >= 32), output logits ``N x num_classes``.
    Parameters at 3 x 32 x 32, 10 classes: vgg11 9,231,114 (9,225,610 without batch norm),
    vgg16 14,728,266 (14,719,818 without batch norm).
    """
    if config not in _CONFIGS:
        raise ValueError(f"vgg: unknown config {config!r}; expected one of: {', '.join(_CONFIGS)}")
    c, h, w = _image_shape(config, input_shape, min_hw=32)
    k = _num_classes(config, num_classes)
    layers: list[nn.Module] = []
    for v in _CONFIGS[config]:
        if v == "M":
            layers.append(nn.MaxPool2d(2))
            continue
        layers.append(nn.Conv2d(c, int(v), 3, padding=1))
        if batch_norm:
            layers.append(nn.BatchNorm2d(int(v)))
        layers.append(nn.ReLU())
        c = int(v)
    model = nn.Sequential()
    model.add_module("features", nn.Sequential(*layers))
    model.add_module("flatten", nn.Flatten())
    model.add_module("classifier", nn.Linear(c * (h // 32) * (w // 32), k))
    return model


def vgg11(input_shape: Sequence[int] = (3, 32, 32), num_classes: int = 10, *, batch_norm: bool = True) -> nn.Module:
    """VGG-11 for CIFAR (Walk with SGD). 9,231,114 parameters (9,225,610 without batch norm)."""
    return vgg(input_shape, num_classes, config="vgg11", batch_norm=batch_norm)


def vgg16(input_shape: Sequence[int] = (3, 32, 32), num_classes: int = 10, *, batch_norm: bool = True) -> nn.Module:
    """VGG-16 for CIFAR (noise paper §3). 14,728,266 parameters (14,719,818 without batch norm)."""
    return vgg(input_shape, num_classes, config="vgg16", batch_norm=batch_norm)
