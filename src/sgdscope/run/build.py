"""Building a run from a resolved config: the parts, probes, Scope, optimizer, schedule and generators.

A :class:`Run` holds everything one training run needs between steps; :func:`build_run` makes it
from a config and a sink, :mod:`.checkpointing` saves and restores it, and
:func:`~sgdscope.run.trainer.train_step` advances it. A sweep worker or a reproduction calls the
same pieces.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch

from ..probes import evaluation
from ..scope import Scope
from .config import ConfigError
from .optimizers import build_optimizer, is_full_batch
from .probe_factory import build_probes
from .setup import Parts, build_parts

__all__ = ["Run", "build_run"]


@dataclass
class Run:
    """One training run in progress. ``step`` is the next step to take (0-based);
    ``perm_state`` the data generator's state at the start of the current epoch."""

    def diverged(self, loss: float) -> str | None:
        """Why ``loss`` means the run diverged (NaN / inf, or above ``train.divergence_factor``
        times the first step's loss), or None."""
        if not math.isfinite(loss):
            return f"training loss {loss} at step {self.step}"
        factor = self.cfg["train"]["divergence_factor"]
        if factor and self.first_loss is not None and abs(loss) > factor * max(abs(self.first_loss), 1e-12):
            return (f"training loss {loss:.4g} at step {self.step} is above train.divergence_factor = {factor:g} "
                    f"times the first step's loss ({self.first_loss:.4g})")
        return None

    cfg: dict
    parts: Parts
    scope: Scope
    optimizer: torch.optim.Optimizer
    scheduler: object | None
    generators: dict[str, torch.Generator]
    batch_size: int
    steps_per_epoch: int
    total_steps: int
    step: int = 0
    first_loss: float | None = None  # the first step's loss: the scale divergence is judged on
    perm_state: torch.Tensor | None = None
    perm: torch.Tensor | None = field(default=None, repr=False)

    @property
    def sink(self):
        return self.scope.sink

    @property
    def done(self) -> bool:
        return self.step >= self.total_steps


def _generators(cfg: dict, device: torch.device) -> dict[str, torch.Generator]:
    """One generator per random stream: data order (CPU), augmentation, noisy optimizers."""
    gdev = device if device.type == "cuda" else "cpu"
    data_seed = cfg["train"]["data_seed"] if cfg["train"]["data_seed"] >= 0 else cfg["seed"] + 1
    return {
        "data": torch.Generator(device="cpu").manual_seed(data_seed),
        "augment": torch.Generator(device=gdev).manual_seed(cfg["seed"] + 2),
        "optimizer": torch.Generator(device=gdev).manual_seed(cfg["seed"] + 3),
    }


def build_run(cfg: dict, sink, *, progress: bool = False) -> Run:
    """A fresh run of ``cfg`` (a resolved config) writing to ``sink``, at step 0.

    Seeds the global RNG with ``cfg["seed"]`` (it feeds dropout only, and is checkpointed)."""
    torch.manual_seed(cfg["seed"])
    parts = build_parts(cfg)
    N = len(parts.data.train)
    if not is_full_batch(cfg["optimizer"]["name"]) and cfg["train"]["batch_size"] > N:
        raise ConfigError(f"config key 'train.batch_size' ({cfg['train']['batch_size']}) is larger than the training set "
                          f"({N} examples): use at most {N} (that many is full batch)")
    S = N if is_full_batch(cfg["optimizer"]["name"]) else cfg["train"]["batch_size"]
    steps_per_epoch = math.ceil(N / S)
    total = cfg["train"]["epochs"] * steps_per_epoch
    if cfg["train"]["max_steps"]:
        total = min(total, cfg["train"]["max_steps"])
    probes = build_probes(cfg["probes"], total_steps=total, test_x=parts.test_x, evaluation_sets=parts.evaluation)
    if not any(p.type == "evaluation" for p in probes):
        probes.append(evaluation(parts.evaluation, every="epoch_end"))
    meas = cfg["measure"]
    scope = Scope(
        parts.model, parts.loss_fn, parts.curvature, probes, sink=sink, eval_data=parts.eval_set,
        noise_data=parts.noise_source, train_size=N, batch_size=S, bn_mode=None if meas["bn_mode"] == "auto" else meas["bn_mode"], seed=meas["seed"],
        lanczos_tol=meas["lanczos_tol"], progress=progress,
    )
    device = parts.curvature[0][1].device
    gens = _generators(cfg, device)
    optimizer = build_optimizer(cfg["optimizer"], parts.model, problem=scope.problem, generator=gens["optimizer"])
    milestones = [int(m) * steps_per_epoch for m in cfg["lr_schedule"]["milestones"]]
    scheduler = (
        torch.optim.lr_scheduler.MultiStepLR(optimizer, milestones, gamma=cfg["lr_schedule"]["gamma"]) if milestones else None
    )
    return Run(cfg, parts, scope, optimizer, scheduler, gens, S, steps_per_epoch, total)
