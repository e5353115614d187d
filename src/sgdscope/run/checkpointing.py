"""Saving a :class:`~sgdscope.run.build.Run` to its run folder and restoring it, for an exact resume.

A checkpoint holds the model, the optimizer and scheduler, the Scope's state (warm-start vectors,
its generator, stateful probes), every generator's state, the global RNG (dropout) and the data
order of the current epoch: a resumed run gives the same numbers as an uninterrupted one.
"""
from __future__ import annotations

import warnings

import torch

from .build import Run

__all__ = ["save_checkpoint", "restore"]


def _rng_state(gens: dict[str, torch.Generator]) -> dict:
    state = {k: g.get_state() for k, g in gens.items()}
    state["torch_global"] = torch.get_rng_state()
    if torch.cuda.is_available():
        state["cuda_global"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(gens: dict[str, torch.Generator], state: dict) -> None:
    for k, g in gens.items():
        g.set_state(state[k])
    torch.set_rng_state(state["torch_global"])
    if "cuda_global" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda_global"])


def save_checkpoint(run: Run, step: int) -> None:
    """Checkpoint ``run`` after ``step`` (everything of that step logged)."""
    run.sink.save_checkpoint(
        step,
        keep=run.cfg["train"]["keep_checkpoints"] or None,
        model_state={k: v.detach() for k, v in run.parts.model.state_dict().items()},
        state={
            "optimizer": run.optimizer.state_dict(),
            "scheduler": None if run.scheduler is None else run.scheduler.state_dict(),
            "scope": run.scope.state_dict(),
            "rng": _rng_state(run.generators),
            "perm_state": run.perm_state,
            "first_loss": run.first_loss,
        },
    )


def restore(run: Run, *, trust: bool = False) -> None:
    """Load the run folder's latest checkpoint into ``run`` and drop what was recorded after it
    (it is recomputed); without a checkpoint, start over. ``trust``: see
    :func:`~sgdscope.store.load_checkpoint`."""
    ckpt = run.sink.latest_checkpoint(trust=trust)
    skipped = [*(f"metrics part {p}" for p in getattr(run.sink, "damaged", [])), *getattr(run.sink, "skipped", [])]
    if skipped:  # said once, in the run's status and as a warning: what was set aside and why
        note = "resumed past damaged files: " + "; ".join(skipped)
        warnings.warn(f"{getattr(run.sink, 'path', 'run')}: {note}", stacklevel=2)
        if hasattr(run.sink, "set_status"):
            run.sink.set_status("running", message=note)
    if ckpt is None:
        run.sink.truncate_after(-1)
        run.step = 0
        return
    step, model_state, state = ckpt
    run.parts.model.load_state_dict(model_state)
    run.optimizer.load_state_dict(state["optimizer"])
    if run.scheduler is not None:
        run.scheduler.load_state_dict(state["scheduler"])
    run.scope.load_state_dict(state["scope"])
    _set_rng_state(run.generators, state["rng"])
    run.perm_state, run.perm = state["perm_state"], None
    run.first_loss = state.get("first_loss")
    run.step = step + 1
    run.sink.truncate_after(step)
