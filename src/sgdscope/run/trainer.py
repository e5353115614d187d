"""The training loop of ``sgdscope run``: SGD on a config, probes through a :class:`~sgdscope.Scope`.

Everything random has its own ``torch.Generator`` (data order, augmentation, noisy optimizers,
measurements; the global RNG only feeds dropout), and a checkpoint holds all of their states,
the model, the optimizer and the position in the epoch, so ``resume=True`` after a kill gives
the same numbers as an uninterrupted run (same seed, same device). A NaN or inf training loss, or
one above ``train.divergence_factor`` times the first step's loss, stops the run, marks it
``diverged`` and keeps everything recorded.

The pieces: :func:`~sgdscope.run.build.build_run` (a run from a config),
:func:`~sgdscope.run.checkpointing.restore` (from its checkpoint), :func:`train_step` (one step)
and :func:`train` (the loop, which owns the run folder).
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import NamedTuple

import torch

from .. import zoo
from ..store import RunWriter
from .build import Run, build_run
from .config import ConfigError, check_run_name
from .checkpointing import restore, save_checkpoint
from .progress import Progress, resolve_mode

__all__ = ["train", "train_step", "run_dir_for", "SetupError", "StepResult"]


class StepResult(NamedTuple):
    loss: float  # the mini-batch loss (before the update)
    measured: dict  # {probe instance: values} of the probes that ran at this step


class SetupError(ConfigError):
    """Building or restoring a run failed (a missing dataset, a refused checkpoint...): the
    message names the run and the cause; the original exception is its ``__cause__``."""


def run_dir_for(cfg: dict) -> Path:
    """``out / name``, refused (``ConfigError``) unless it stays inside ``out``: ``name`` is one folder
    name, and an existing ``out / name`` that is a symbolic link (it could point anywhere) is not used."""
    out = Path(cfg["out"])
    path = out / check_run_name(cfg["name"])
    if path.is_symlink():
        raise ConfigError(f"{path} is a symbolic link (to {os.readlink(path)}); a run is written only to a real folder "
                          f"inside {out}")
    return path


def _batch(run: Run, pos: int):
    """The mini-batch at position ``pos`` of the current epoch (a new epoch draws a new order;
    resuming inside one replays its order from the saved generator state)."""
    if pos == 0 or run.perm is None:
        if pos == 0:
            run.perm_state = run.generators["data"].get_state()
        run.generators["data"].set_state(run.perm_state)
        n = len(run.parts.data.train)
        run.perm = torch.randperm(n, generator=run.generators["data"]).to(run.parts.data.train.y.device)
    idx = run.perm[pos * run.batch_size : (pos + 1) * run.batch_size]
    x, y = run.parts.data.train.x[idx], run.parts.data.train.y[idx]
    if run.cfg["data"]["augment"]:
        x = zoo.random_crop_flip(x, run.generators["augment"])
    return x, y


def train_step(run: Run) -> StepResult:
    """Take step ``run.step``: the SGD update, its log row, the probes due, the scheduler and a
    checkpoint when due. A loss that means divergence (:meth:`Run.diverged`) is logged and returned
    without updating the model or advancing ``run.step``."""
    step, model, scope = run.step, run.parts.model, run.scope
    epoch, pos = divmod(step, run.steps_per_epoch)
    x, y = _batch(run, pos)
    model.train()
    run.optimizer.zero_grad(set_to_none=True)
    loss = run.parts.loss_fn(model(x), y)
    lossf = float(loss.detach())
    if run.first_loss is None:
        run.first_loss = lossf
    if run.diverged(lossf):
        scope.log(step, "train", {"loss": lossf}, epoch=epoch + pos / run.steps_per_epoch)
        return StepResult(lossf, {})
    loss.backward()
    run.optimizer.step()
    epoch_end = pos == run.steps_per_epoch - 1 or step == run.total_steps - 1
    ep = epoch + (pos + 1) / run.steps_per_epoch
    if step % run.cfg["train"]["log_every"] == 0 or epoch_end:
        scope.log(step, "train", {"loss": lossf, "lr": run.optimizer.param_groups[0]["lr"]}, epoch=ep)
    measured = scope.after_step(step, optimizer=run.optimizer, batch=(x, y), loss=lossf, epoch=ep, epoch_end=epoch_end)
    if run.scheduler is not None:
        run.scheduler.step()
    every = run.cfg["train"]["checkpoint_every"]
    if ((every and step % every == 0) or epoch_end) and hasattr(run.sink, "save_checkpoint"):  # a MemorySink keeps none
        save_checkpoint(run, step)
    run.step += 1
    return StepResult(lossf, measured)


def train(cfg: dict, *, run_dir: str | Path | None = None, resume: bool = False, overwrite: bool = False,
          progress: bool | str = True, trust_checkpoint: bool = False, hook=None) -> Path:
    """Train as ``cfg`` (a resolved config) says; returns the run directory.

    The run folder is created here (``overwrite`` replaces an old run, ``resume`` continues it from
    its last checkpoint); if building the run fails, a folder this call created is removed again.
    ``progress``: ``True`` (a bar on a terminal, plain lines in a log file), ``False`` (silent), or
    one of ``"bar"``, ``"lines"``, ``"off"`` (see :mod:`.progress`). ``hook``: an object with
    ``before(run) -> x`` and ``after(run, x)``, called around every step (e.g. to feed a monitor the
    state before the step and the gradient it used)."""
    mode = resolve_mode(progress)
    run_dir = Path(run_dir) if run_dir is not None else run_dir_for(cfg)
    sink = RunWriter(run_dir, config=cfg, resume=resume, overwrite=overwrite)
    try:
        run = build_run(cfg, sink, progress=mode == "bar")
        if resume:
            restore(run, trust=trust_checkpoint)
    except BaseException as err:
        if resume:
            sink.abandon()  # the run's status stays as it was (a done run stays done)
        else:
            sink.discard()
        if isinstance(err, Exception):
            raise SetupError(f"{run_dir}: {'resuming' if resume else 'setting up'} the run failed: {err}") from err
        raise
    shown = Progress(run.total_steps, initial=run.step, name=cfg["name"], mode=mode)
    state, message = "done", f"{run.total_steps} steps"
    types = {p.name: p.type for p in run.scope.probes}
    try:
        while not run.done:
            before = hook.before(run) if hook is not None else None
            result = train_step(run)
            why = run.diverged(result.loss)
            if why:
                state, message = "diverged", why
                break
            if hook is not None:
                hook.after(run, before)
            shown.update(run.step - 1, run.step / run.steps_per_epoch, result.loss, result.measured, types)
    except KeyboardInterrupt:
        state, message = "interrupted", f"interrupted at step {run.step}"
        raise
    except Exception as err:
        state, message = "failed", f"{type(err).__name__}: {err}"
        raise
    finally:
        run.scope.close()
        info = {"probe_errors": dict(run.scope.failures)} if run.scope.failures else {}
        if run.scope.failures:
            message = f"{message}; {run.scope.failure_message}"
        sink.set_status(state, step=run.step, message=message, **info)
        sink.close()
        shown.close(state, message)
    return run_dir
