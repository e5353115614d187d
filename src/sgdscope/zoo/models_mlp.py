"""Multi-layer perceptrons of the papers (Break-Even App. D, noise paper §4.1 and A.4, Walk with SGD).

Build them through ``sgdscope.zoo.build_model`` (seeded init).
"""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Sequence

from torch import nn

from ._errors import _lookup
from ._shapes import _num_classes, _positive_ints

ACTIVATIONS: dict[str, type[nn.Module]] = {
    "relu": nn.ReLU,
    "tanh": nn.Tanh,
    "sigmoid": nn.Sigmoid,
    "gelu": nn.GELU,
    "elu": nn.ELU,
    "softplus": nn.Softplus,
    "leaky_relu": nn.LeakyReLU,
    "identity": nn.Identity,
}


def mlp(
    input_shape: Sequence[int] = (1, 28, 28),
    num_classes: int = 10,
    *,
    widths: Sequence[int] = (300, 100),
    activation: str = "relu",
    bias: bool = True,
) -> nn.Module:
    """Fully connected net: flatten, then ``Linear-activation`` per hidden width, then a linear
    classifier. Input ``N x *input_shape``, output logits ``N x num_classes``.

    Default: two hidden layers of 300 and 100 ReLU units, the MLP on Fashion-MNIST of the
    Break-Even paper (App. D). Parameters, default configuration (1 x 28 x 28, 10 classes):
    266,610. In general ``sum_l (d_{l-1} + 1) d_l`` over consecutive widths
    ``(prod(input_shape), *widths, num_classes)`` (without the ``+ 1`` if ``bias=False``).
    """
    dims = (math.prod(int(s) for s in input_shape), *_positive_ints("mlp", "widths", widths), _num_classes("mlp", num_classes))
    if dims[0] < 1:
        raise ValueError(f"mlp: input_shape must have positive sizes, got {tuple(input_shape)!r}")
    act = _lookup("activation", activation, ACTIVATIONS)
    layers: list[tuple[str, nn.Module]] = [("flatten", nn.Flatten())]
    for i, (d_in, d_out) in enumerate(zip(dims[:-1], dims[1:]), start=1):
        layers.append((f"fc{i}", nn.Linear(d_in, d_out, bias=bias)))
        if i < len(dims) - 1:
            layers.append((f"act{i}", act()))
    return nn.Sequential(OrderedDict(layers))


def mlp_70(input_shape: Sequence[int] = (1, 7, 7), num_classes: int = 10, *, activation: str = "relu") -> nn.Module:
    """One hidden layer of 70 units on 7 x 7 grey CIFAR-10 (noise paper App. A.4).

    The paper's 'transformed into grey scale and resized to 7 x 7 pixels and normalized':
    use ``sgdscope.zoo.grey_resize(ds, 7)`` then ``standardize``. Parameters (1 x 7 x 7,
    10 classes): 4,210.
    """
    return mlp(input_shape, num_classes, widths=(70,), activation=activation)


def mlp_6220(input_shape: Sequence[int] = (1, 14, 14), num_classes: int = 10, *, activation: str = "relu") -> nn.Module:
    """The 6,220-parameter single-hidden-layer net on 500 MNIST images (noise paper §4.1, Fig. 2a).

    The paper states only 'a single hidden layer fully-connected network with 6220 parameters'.
    With biases, ``(d + 1) h + (h + 1) 10 = 6220`` means ``h (d + 11) = 6210``; the only square
    image size among the solutions is d = 14 x 14 = 196 with h = 30 hidden units, i.e. MNIST
    downsampled 2x (``sgdscope.zoo.resize``). Parameters: 196*30 + 30 + 30*10 + 10 = 6,220.
    """
    return mlp(input_shape, num_classes, widths=(30,), activation=activation)
