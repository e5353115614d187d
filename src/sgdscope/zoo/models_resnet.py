"""CIFAR ResNets (He et al. 2015, §4.2) and the pre-activation ResNet-18 (He et al. 2016).

Build them through ``sgdscope.zoo.build_model`` (seeded init).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ._shapes import _image_shape, _num_classes


def _conv3x3(c_in: int, c_out: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1, bias=False)


class _BasicBlock(nn.Module):
    """conv-BN-ReLU-conv-BN plus shortcut, then ReLU. The shortcut is option A of He et al.
    (2015): identity, or stride-2 subsampling with zero-padded channels (no parameters)."""

    def __init__(self, c_in: int, c_out: int, stride: int):
        super().__init__()
        self.conv1 = _conv3x3(c_in, c_out, stride)
        self.bn1 = nn.BatchNorm2d(c_out)
        self.relu1 = nn.ReLU()
        self.conv2 = _conv3x3(c_out, c_out)
        self.bn2 = nn.BatchNorm2d(c_out)
        self.relu2 = nn.ReLU()
        self.stride = stride
        self.pad = c_out - c_in

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.bn2(self.conv2(self.relu1(self.bn1(self.conv1(x)))))
        shortcut = x
        if self.stride != 1:
            shortcut = shortcut[:, :, :: self.stride, :: self.stride]
        if self.pad:
            shortcut = F.pad(shortcut, (0, 0, 0, 0, self.pad // 2, self.pad - self.pad // 2))
        return self.relu2(out + shortcut)


class _CifarResNet(nn.Module):
    def __init__(self, c_in: int, num_classes: int, n: int, widths: Sequence[int] = (16, 32, 64)):
        super().__init__()
        self.conv1 = _conv3x3(c_in, widths[0])
        self.bn1 = nn.BatchNorm2d(widths[0])
        self.relu = nn.ReLU()
        stages, c = [], widths[0]
        for i, w in enumerate(widths):
            blocks = [_BasicBlock(c if j == 0 else w, w, 2 if (i > 0 and j == 0) else 1) for j in range(n)]
            stages.append(nn.Sequential(*blocks))
            c = w
        self.stage1, self.stage2, self.stage3 = stages
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(c, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.relu(self.bn1(self.conv1(x)))
        x = self.stage3(self.stage2(self.stage1(x)))
        return self.fc(torch.flatten(self.pool(x), 1))


def cifar_resnet(input_shape: Sequence[int] = (3, 32, 32), num_classes: int = 10, *, depth: int = 32) -> nn.Module:
    """CIFAR ResNet of depth 6n+2 (He et al. 2015, §4.2): three stages of n basic blocks with
    16/32/64 channels, option-A (parameter-free) shortcuts, global average pool, linear.

    Input ``N x C x H x W`` (H, W >= 4), output logits ``N x num_classes``. Parameters at
    3 x 32 x 32, 10 classes: depth 20: 269,722; 32: 464,154; 56: 853,018.
    """
    c, _, _ = _image_shape(f"resnet{depth}", input_shape, min_hw=4)
    k = _num_classes(f"resnet{depth}", num_classes)
    if int(depth) != depth or depth < 8 or (depth - 2) % 6:
        raise ValueError(f"cifar_resnet: depth must be 6n+2 with n >= 1 (20, 32, 44, 56, 110, ...), got {depth!r}")
    return _CifarResNet(c, k, (int(depth) - 2) // 6)


def resnet32(input_shape: Sequence[int] = (3, 32, 32), num_classes: int = 10) -> nn.Module:
    """ResNet-32 (n = 5) of the Break-Even paper. 464,154 parameters (3 x 32 x 32, 10 classes)."""
    return cifar_resnet(input_shape, num_classes, depth=32)


def resnet56(input_shape: Sequence[int] = (3, 32, 32), num_classes: int = 10) -> nn.Module:
    """ResNet-56 (n = 9) of Walk with SGD. 853,018 parameters (3 x 32 x 32, 10 classes)."""
    return cifar_resnet(input_shape, num_classes, depth=56)


class _PreActBlock(nn.Module):
    """BN-ReLU-conv-BN-ReLU-conv plus shortcut (He et al. 2016); a 1x1 projection where the
    shape changes, applied to the pre-activated input."""

    def __init__(self, c_in: int, c_out: int, stride: int):
        super().__init__()
        self.bn1 = nn.BatchNorm2d(c_in)
        self.relu1 = nn.ReLU()
        self.conv1 = _conv3x3(c_in, c_out, stride)
        self.bn2 = nn.BatchNorm2d(c_out)
        self.relu2 = nn.ReLU()
        self.conv2 = _conv3x3(c_out, c_out)
        self.shortcut = None
        if stride != 1 or c_in != c_out:
            self.shortcut = nn.Conv2d(c_in, c_out, 1, stride=stride, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pre = self.relu1(self.bn1(x))
        shortcut = x if self.shortcut is None else self.shortcut(pre)
        out = self.conv2(self.relu2(self.bn2(self.conv1(pre))))
        return out + shortcut


class _PreActResNet(nn.Module):
    def __init__(self, c_in: int, num_classes: int, blocks: Sequence[int], widths: Sequence[int]):
        super().__init__()
        self.conv1 = _conv3x3(c_in, widths[0])
        layers, c = [], widths[0]
        for i, (n, w) in enumerate(zip(blocks, widths)):
            layers.append(nn.Sequential(*[_PreActBlock(c if j == 0 else w, w, 2 if (i > 0 and j == 0) else 1) for j in range(n)]))
            c = w
        self.layer1, self.layer2, self.layer3, self.layer4 = layers
        self.bn = nn.BatchNorm2d(c)
        self.relu = nn.ReLU()
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(c, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.layer4(self.layer3(self.layer2(self.layer1(self.conv1(x)))))
        return self.fc(torch.flatten(self.pool(self.relu(self.bn(x))), 1))


def preact_resnet18(input_shape: Sequence[int] = (3, 32, 32), num_classes: int = 10) -> nn.Module:
    """Pre-activation ResNet-18 for CIFAR (He et al. 2016; noise paper §3 and A.2.2).

    3x3 stem with 64 channels (no max-pool), four stages of two pre-activation blocks with
    64/128/256/512 channels (strides 1/2/2/2), final BN-ReLU, global average pool, linear.
    Input ``N x C x H x W`` (H, W >= 8), output ``N x num_classes``.

    Parameters, default configuration (3 x 32 x 32, 10 classes): 11,172,170.
    """
    c, _, _ = _image_shape("preact_resnet18", input_shape, min_hw=8)
    k = _num_classes("preact_resnet18", num_classes)
    return _PreActResNet(c, k, (2, 2, 2, 2), (64, 128, 256, 512))
