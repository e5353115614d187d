"""Optimizers by name for the runner: SGD (momentum, weight decay), full-batch GD, the papers'
NudgedSGD and NoisyGD, and any ``torch.optim`` optimizer (case-insensitive class name)."""
from __future__ import annotations

import inspect

import torch

from ..optim import NoisyGD, NudgedSGD

__all__ = ["build_optimizer", "optimizer_names", "is_full_batch", "check_optimizer"]

_OURS = ("sgd", "gd", "nudged_sgd", "noisy_gd")


def _torch_optimizers() -> dict[str, type]:
    return {
        name.lower(): cls
        for name, cls in vars(torch.optim).items()
        if isinstance(cls, type) and issubclass(cls, torch.optim.Optimizer) and cls is not torch.optim.Optimizer
    }


def optimizer_names() -> list[str]:
    return sorted(set(_OURS) | set(_torch_optimizers()))


def is_full_batch(name: str) -> bool:
    """GD and noisy GD take the whole training set every step."""
    return name.lower() in ("gd", "noisy_gd")


def _keywords(name: str) -> list[str]:
    """The config keys an optimizer takes (besides ``name`` and ``lr``)."""
    cls = {"sgd": torch.optim.SGD, "gd": torch.optim.SGD, "nudged_sgd": NudgedSGD, "noisy_gd": NoisyGD}.get(name)
    cls = cls or _torch_optimizers()[name]
    skip = {"self", "params", "lr", "problem", "generator"}
    keys = [p.name for p in inspect.signature(cls.__init__).parameters.values()
            if p.name not in skip and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]
    return sorted(set(keys) | {"momentum", "weight_decay"})


def check_optimizer(cfg: dict) -> None:
    """Raise ValueError naming an ``optimizer`` key the optimizer does not take (with the keys it
    takes) or a value it refuses (by building it on one dummy parameter, as torch checks values)."""
    name = cfg["name"].lower()
    allowed = _keywords(name)
    bad = [k for k in cfg if k not in ("name", "lr", *allowed)]
    if bad:
        raise ValueError(f"config key 'optimizer.{bad[0]}' is not an argument of {cfg['name']!r}; "
                         f"allowed: name, lr, {', '.join(allowed)}")
    if name not in ("nudged_sgd", "noisy_gd"):  # those need a problem; their checks run when the run is built
        build_optimizer(cfg, torch.nn.Linear(1, 1))


def build_optimizer(cfg: dict, model: torch.nn.Module, *, problem=None, generator: torch.Generator | None = None):
    """``cfg`` is the resolved ``optimizer`` table; ``problem`` is the curvature subset (NudgedSGD,
    NoisyGD recompute eigenvectors on it); ``generator`` drives their randomness (noise, Lanczos starts)."""
    opts = dict(cfg)
    name = opts.pop("name").lower()
    lr = opts.pop("lr")
    params = [p for p in model.parameters() if p.requires_grad]
    try:
        if name in ("sgd", "gd"):
            return torch.optim.SGD(params, lr=lr, **opts)
        momentum, wd = opts.pop("momentum"), opts.pop("weight_decay")
        if name == "nudged_sgd":
            if momentum or wd:
                raise ValueError(f"nudged_sgd takes no momentum / weight_decay, got {momentum} / {wd}")
            return NudgedSGD(params, lr, problem=problem, generator=generator, **opts)
        if name == "noisy_gd":
            if momentum or wd:
                raise ValueError(f"noisy_gd takes no momentum / weight_decay, got {momentum} / {wd}")
            return NoisyGD(params, lr, problem=problem, generator=generator, **opts)
        cls = _torch_optimizers().get(name)
        if cls is None:
            raise ValueError(f"optimizer.name must be one of {', '.join(optimizer_names())}, got {cfg['name']!r}")
        extra = {"weight_decay": wd} if wd else {}
        if momentum:
            extra["momentum"] = momentum
        return cls(params, lr=lr, **extra, **opts)
    except (TypeError, ValueError) as err:
        raise ValueError(f"optimizer {cfg['name']!r}: {err}") from err
