"""Checks of the ``input_shape`` / ``num_classes`` arguments shared by the model builders."""

from __future__ import annotations

from collections.abc import Sequence


def _image_shape(name: str, input_shape: Sequence[int], min_hw: int = 1) -> tuple[int, int, int]:
    """Validate an image shape ``(C, H, W)`` with ``H, W >= min_hw``; return it as a tuple."""
    shape = tuple(int(s) for s in input_shape)
    if len(shape) != 3 or min(shape) < 1:
        raise ValueError(f"{name}: input_shape must be (channels, height, width), got {tuple(input_shape)!r}")
    if shape[1] < min_hw or shape[2] < min_hw:
        raise ValueError(f"{name}: input_shape {shape!r} is too small; height and width must be >= {min_hw}")
    return shape


def _num_classes(name: str, num_classes: int) -> int:
    if int(num_classes) != num_classes or num_classes < 1:
        raise ValueError(f"{name}: num_classes must be a positive integer, got {num_classes!r}")
    return int(num_classes)


def _positive_ints(name: str, what: str, values: Sequence[int]) -> tuple[int, ...]:
    vals = tuple(values)
    if any(int(v) != v or v < 1 for v in vals):
        raise ValueError(f"{name}: {what} must be positive integers, got {vals!r}")
    return tuple(int(v) for v in vals)
