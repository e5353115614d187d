"""Small convolutional nets: SimpleCNN (+BN), the noise paper's small CNN, a 4-layer MNIST ConvNet.

Build them through ``sgdscope.zoo.build_model`` (seeded init); the functions here return
modules with PyTorch's default (global-RNG) init.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence

from torch import nn

from ._shapes import _image_shape, _num_classes, _positive_ints


def _conv_block(prefix: str, c_in: int, c_out: int, batch_norm: bool) -> list[tuple[str, nn.Module]]:
    layers: list[tuple[str, nn.Module]] = [(f"conv{prefix}", nn.Conv2d(c_in, c_out, 3, padding=1))]
    if batch_norm:
        layers.append((f"bn{prefix}", nn.BatchNorm2d(c_out)))
    layers.append((f"relu{prefix}", nn.ReLU()))
    return layers


def simplecnn(
    input_shape: Sequence[int] = (3, 32, 32),
    num_classes: int = 10,
    *,
    filters: int = 32,
    dense: int = 128,
    batch_norm: bool = False,
) -> nn.Module:
    """SimpleCNN of the Break-Even paper (Jastrzebski et al. 2020, App. D), after Keras' cifar10_cnn.

    conv3x3(32) - conv3x3(32) - maxpool2 - conv3x3(64) - conv3x3(64) - maxpool2 - dense(128) -
    linear(num_classes); 'same' padding, ReLU after each layer, no dropout (as the authors'
    code). With ``batch_norm=True`` (SimpleCNN-BN, §4.3) a batch norm sits between each layer
    and its ReLU. Input ``N x C x H x W`` (H, W >= 4), output logits ``N x num_classes``.

    Parameters, default configuration (3 x 32 x 32, 10 classes): 591,274; with batch norm 591,914.
    """
    c, h, w = _image_shape("simplecnn", input_shape, min_hw=4)
    k = _num_classes("simplecnn", num_classes)
    (filters, dense) = _positive_ints("simplecnn", "filters and dense", (filters, dense))
    layers = _conv_block("1", c, filters, batch_norm) + _conv_block("2", filters, filters, batch_norm)
    layers.append(("pool1", nn.MaxPool2d(2)))
    layers += _conv_block("3", filters, 2 * filters, batch_norm)
    layers += _conv_block("4", 2 * filters, 2 * filters, batch_norm)
    layers += [("pool2", nn.MaxPool2d(2)), ("flatten", nn.Flatten())]
    layers.append(("dense", nn.Linear(2 * filters * (h // 4) * (w // 4), dense)))
    if batch_norm:
        layers.append(("bn5", nn.BatchNorm1d(dense)))
    layers += [("relu5", nn.ReLU()), ("classifier", nn.Linear(dense, k))]
    return nn.Sequential(OrderedDict(layers))


def simplecnn_bn(input_shape: Sequence[int] = (3, 32, 32), num_classes: int = 10, *, filters: int = 32, dense: int = 128) -> nn.Module:
    """SimpleCNN-BN (Break-Even §4.3): ``simplecnn`` with batch norm after each layer. 591,914 parameters."""
    return simplecnn(input_shape, num_classes, filters=filters, dense=dense, batch_norm=True)


def small_cnn(input_shape: Sequence[int] = (3, 32, 32), num_classes: int = 10, *, channels: Sequence[int] = (15, 20)) -> nn.Module:
    """The small CNN of the noise paper (Wei & Schwab 2019, App. A.5) for CIFAR-10.

    Three 3x3 conv layers with 15, 20 and 10 output channels. The paper gives only those
    sizes; our choices: 'same' padding, ReLU and 2x2 max-pool after the first two convs, and
    the third conv has ``num_classes`` channels (10 on CIFAR-10) whose global average is the
    logit vector ``N x num_classes``.

    Parameters, default configuration (3 x 32 x 32, 10 classes): 4,950.
    """
    c, _, _ = _image_shape("small_cnn", input_shape, min_hw=4)
    k = _num_classes("small_cnn", num_classes)
    if len(tuple(channels)) != 2:
        raise ValueError(f"small_cnn: channels must be two widths (the third conv has num_classes channels), got {tuple(channels)!r}")
    c1, c2 = _positive_ints("small_cnn", "channels", channels)
    return nn.Sequential(
        OrderedDict(
            conv1=nn.Conv2d(c, c1, 3, padding=1), relu1=nn.ReLU(), pool1=nn.MaxPool2d(2),
            conv2=nn.Conv2d(c1, c2, 3, padding=1), relu2=nn.ReLU(), pool2=nn.MaxPool2d(2),
            conv3=nn.Conv2d(c2, k, 3, padding=1), gap=nn.AdaptiveAvgPool2d(1), flatten=nn.Flatten(),
        )
    )


def convnet4(input_shape: Sequence[int] = (1, 28, 28), num_classes: int = 10, *, hidden: int = 128) -> nn.Module:
    """4-layer ConvNet for MNIST (noise paper App. A.2.2), as PyTorch's MNIST example without dropout.

    conv3x3(32) - conv3x3(64) - maxpool2 - dense(128) - linear(num_classes), 'valid' padding,
    ReLU after each hidden layer. The paper does not give the layers; this is our choice.
    Input ``N x 1 x 28 x 28`` (H, W >= 6), output ``N x num_classes``.

    Parameters, default configuration (1 x 28 x 28, 10 classes): 1,199,882.
    """
    c, h, w = _image_shape("convnet4", input_shape, min_hw=6)
    k = _num_classes("convnet4", num_classes)
    (hidden,) = _positive_ints("convnet4", "hidden", (hidden,))
    flat = 64 * ((h - 4) // 2) * ((w - 4) // 2)
    return nn.Sequential(
        OrderedDict(
            conv1=nn.Conv2d(c, 32, 3), relu1=nn.ReLU(),
            conv2=nn.Conv2d(32, 64, 3), relu2=nn.ReLU(), pool=nn.MaxPool2d(2), flatten=nn.Flatten(),
            fc1=nn.Linear(flat, hidden), relu3=nn.ReLU(), fc2=nn.Linear(hidden, k),
        )
    )
