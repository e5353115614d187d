"""Losses of the papers as ``nn.Module``s with a ``reduction`` attribute (``"mean"`` by default).

- ``cross_entropy``: Walk with SGD and Break-Even.
- ``label_smoothing``: cross-entropy against ``(1 - s) * onehot + s / K`` (Szegedy et al. 2016),
  the noise paper's loss (§3, §4.1, App. A.4), ``s = smoothing``.
- ``mse``: squared error between the logits and the one-hot targets (noise paper App. A.4).
  Integer labels are one-hot encoded internally (float targets of the output's shape are used
  as given). Per example the squared errors are *summed* over the K classes
  (``class_reduction="sum"``, default) or averaged (``"mean"``, i.e. ``F.mse_loss`` scaled);
  then ``reduction`` averages (``"mean"``) or sums over examples. No factor 1/2.
"""

from __future__ import annotations

import torch
from torch import nn

from ._errors import _choice, _lookup

__all__ = ["build_loss", "list_losses", "OneHotMSELoss"]

_REDUCTIONS = ("mean", "sum", "none")


class OneHotMSELoss(nn.Module):
    """Squared error to one-hot targets: logits ``N x K``, integer labels ``N`` (or floats ``N x K``)."""

    def __init__(self, reduction: str = "mean", class_reduction: str = "sum"):
        super().__init__()
        _choice("reduction", reduction, _REDUCTIONS)
        _choice("class_reduction", class_reduction, ("sum", "mean"))
        self.reduction = reduction
        self.class_reduction = class_reduction

    def forward(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        if target.is_floating_point():
            if target.shape != output.shape:
                raise ValueError(f"mse: float targets must have the output's shape {tuple(output.shape)}, got {tuple(target.shape)}")
            onehot = target
        else:
            # by comparison, not F.one_hot, whose range check is data-dependent and cannot be vmapped
            onehot = (target.unsqueeze(-1) == torch.arange(output.shape[-1], device=target.device)).to(output.dtype)
        per_example = (output - onehot).pow(2)
        per_example = per_example.sum(-1) if self.class_reduction == "sum" else per_example.mean(-1)
        if self.reduction == "mean":
            return per_example.mean()
        return per_example.sum() if self.reduction == "sum" else per_example

    def extra_repr(self) -> str:
        return f"reduction={self.reduction!r}, class_reduction={self.class_reduction!r}"


def _cross_entropy(reduction: str = "mean") -> nn.Module:
    return nn.CrossEntropyLoss(reduction=reduction)


def _label_smoothing(reduction: str = "mean", smoothing: float = 0.1) -> nn.Module:
    if not 0.0 <= smoothing <= 1.0:
        raise ValueError(f"label_smoothing: smoothing must be in [0, 1], got {smoothing!r}")
    return nn.CrossEntropyLoss(reduction=reduction, label_smoothing=float(smoothing))


def _mse(reduction: str = "mean", class_reduction: str = "sum") -> nn.Module:
    return OneHotMSELoss(reduction=reduction, class_reduction=class_reduction)


_LOSSES = {"cross_entropy": _cross_entropy, "label_smoothing": _label_smoothing, "mse": _mse}


def list_losses() -> list[str]:
    """Names accepted by ``build_loss``."""
    return sorted(_LOSSES)


def build_loss(name: str, *, reduction: str = "mean", **kwargs) -> nn.Module:
    """A loss module by name: ``cross_entropy``; ``label_smoothing`` (``smoothing=0.1``);
    ``mse`` (``class_reduction="sum"``). Called as ``loss(logits N x K, labels N)``."""
    fn = _lookup("loss", name, _LOSSES)
    _choice("reduction", reduction, _REDUCTIONS)
    allowed = [k for k in fn.__code__.co_varnames[: fn.__code__.co_argcount] if k != "reduction"]
    bad = [k for k in kwargs if k not in allowed]
    if bad:
        raise TypeError(f"build_loss({name!r}): unexpected keyword argument(s) {', '.join(map(repr, bad))}; allowed: reduction" + "".join(f", {a}" for a in allowed))
    return fn(reduction=reduction, **kwargs)
