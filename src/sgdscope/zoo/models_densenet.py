"""DenseNet-BC for CIFAR (Huang et al. 2017) as in the noise paper, App. A.2.1.

Build it through ``sgdscope.zoo.build_model`` (seeded init).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

from ._shapes import _image_shape, _num_classes, _positive_ints


class _Bottleneck(nn.Module):
    """BN-ReLU-conv1x1(4k)-BN-ReLU-conv3x3(k); output concatenated to the input (k = growth)."""

    def __init__(self, c_in: int, growth: int):
        super().__init__()
        self.bn1 = nn.BatchNorm2d(c_in)
        self.relu1 = nn.ReLU()
        self.conv1 = nn.Conv2d(c_in, 4 * growth, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(4 * growth)
        self.relu2 = nn.ReLU()
        self.conv2 = nn.Conv2d(4 * growth, growth, 3, padding=1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv2(self.relu2(self.bn2(self.conv1(self.relu1(self.bn1(x))))))
        return torch.cat([out, x], dim=1)


class _Transition(nn.Module):
    """BN-ReLU-conv1x1-avgpool2 between dense blocks (compression = ``c_out / c_in``)."""

    def __init__(self, c_in: int, c_out: int):
        super().__init__()
        self.bn = nn.BatchNorm2d(c_in)
        self.relu = nn.ReLU()
        self.conv = nn.Conv2d(c_in, c_out, 1, bias=False)
        self.pool = nn.AvgPool2d(2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pool(self.conv(self.relu(self.bn(x))))


class _DenseNet(nn.Module):
    def __init__(self, c_in: int, num_classes: int, blocks: Sequence[int], growth: int, reduction: float):
        super().__init__()
        c = 2 * growth
        self.conv1 = nn.Conv2d(c_in, c, 3, padding=1, bias=False)
        stages: list[nn.Module] = []
        for i, n in enumerate(blocks):
            layers = []
            for _ in range(n):
                layers.append(_Bottleneck(c, growth))
                c += growth
            stages.append(nn.Sequential(*layers))
            if i < len(blocks) - 1:
                c_out = int(math.floor(c * reduction))
                stages.append(_Transition(c, c_out))
                c = c_out
        self.features = nn.Sequential(*stages)
        self.bn = nn.BatchNorm2d(c)
        self.relu = nn.ReLU()
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(c, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.relu(self.bn(self.features(self.conv1(x))))
        return self.fc(torch.flatten(self.pool(x), 1))


def densenet_cifar(
    input_shape: Sequence[int] = (3, 32, 32),
    num_classes: int = 10,
    *,
    blocks: Sequence[int] = (6, 12, 24, 16),
    growth_rate: int = 12,
    reduction: float = 0.5,
) -> nn.Module:
    """DenseNet with batch norm, blocks 6-12-24-16, growth rate 12 (noise paper App. A.2.1).

    DenseNet-BC layout: 3x3 stem with 2k channels, bottleneck layers
    (BN-ReLU-1x1 conv to 4k - BN-ReLU-3x3 conv to k, concatenated), transitions
    (BN-ReLU-1x1 conv with compression ``reduction``, 2x2 average pool), final BN-ReLU,
    global average pool, linear. Input ``N x C x H x W`` (H, W >= 8; 32 x 32 in the paper),
    output ``N x num_classes``.

    Parameters at 3 x 32 x 32: 1,000,618 with 10 classes; 1,035,268 with 100 (CIFAR-100, as
    in the paper).
    """
    c, _, _ = _image_shape("densenet_cifar", input_shape, min_hw=2 ** (len(tuple(blocks)) - 1))
    k = _num_classes("densenet_cifar", num_classes)
    blocks = _positive_ints("densenet_cifar", "blocks", blocks)
    (growth_rate,) = _positive_ints("densenet_cifar", "growth_rate", (growth_rate,))
    if not 0.0 < reduction <= 1.0:
        raise ValueError(f"densenet_cifar: reduction must be in (0, 1], got {reduction!r}")
    return _DenseNet(c, k, blocks, growth_rate, reduction)
