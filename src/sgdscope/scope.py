"""``Scope``: the papers' measurements inside a user's own training loop.

    scope = sgdscope.Scope(model, loss_fn, curvature_data=subset, probes=sgdscope.probes.break_even(every=100))
    for step, (x, y) in enumerate(loader):
        opt.zero_grad(); loss = loss_fn(model(x), y); loss.backward(); opt.step()
        scope.after_step(step, optimizer=opt, batch=(x, y), loss=loss)
    df = sgdscope.load_run(scope.run_dir)

Call ``after_step`` after every optimizer step with consecutive step numbers, so that "before"
and "after" parameters belong to the same step. It costs nothing when no probe is due at this
step or the next (it keeps a copy of the parameters only before a step that probes will see).
"""
from __future__ import annotations

import math
import time
import warnings
from datetime import datetime
from pathlib import Path
from typing import Iterable, Sequence

import torch
from tqdm.auto import tqdm

from .probes.context import StepContext, Tracker
from .problem import Problem

__all__ = ["Scope"]


def _concat(batches: Sequence[tuple]) -> tuple[torch.Tensor, torch.Tensor]:
    return torch.cat([b[0] for b in batches]), torch.cat([b[1] for b in batches])


def _uses_before(probe) -> bool:
    """Whether a probe reads the previous step's parameters or gradient (assumed unless it says not)."""
    return bool(getattr(probe, "before", True))


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


class Scope:
    """Runs probes on their schedules after optimizer steps and records what they return.

    Args:
        model, loss_fn: the model being trained and its (mean-reduced) loss.
        curvature_data: the fixed subset curvature is measured on: ``(X, Y)``, a list of
            ``(x, y)`` batches, a map-style Dataset, or a DataLoader (read once).
        probes: probe objects (see :mod:`sgdscope.probes`).
        run_dir: where the run store goes (default ``runs/scope-<time>``). ``None`` with
            ``store=False`` keeps results in memory only (``scope.history``).
        eval_data: fixed set for the landscape probes (default: ``curvature_data``).
        noise_data: ``(X, Y)`` that mini-batches for K are drawn from (default: ``curvature_data``).
        train_size, batch_size: N and S of training (for the break-even stability and K normalisation).
        bn_mode, params: passed to :class:`~sgdscope.Problem`.
        seed: seeds the measurements' own generator (never the global RNG).
        progress: show a progress bar over the probes of a step while they run.
    """

    def __init__(
        self,
        model: torch.nn.Module,
        loss_fn,
        curvature_data,
        probes: Iterable = (),
        *,
        run_dir: str | Path | None = None,
        eval_data=None,
        noise_data=None,
        train_size: int | None = None,
        batch_size: int | None = None,
        bn_mode: str = "eval",
        params=None,
        seed: int = 0,
        config: dict | None = None,
        store: bool = True,
        resume: bool = False,
        overwrite: bool = False,
        lanczos_tol: float = 1e-3,
        progress: bool = False,
    ):
        self.model = model
        self.problem = Problem(model, loss_fn, curvature_data, params=params, bn_mode=bn_mode)
        self.eval_problem = (
            self.problem if eval_data is None else self.problem.subproblem(eval_data)
        )
        src = _concat(self.problem.batches) if noise_data is None else noise_data
        self.source = (self.problem.place_inputs(src[0]), src[1].to(self.problem.device))
        self.train_size = int(train_size or len(self.source[1]))
        self.batch_size = batch_size
        self.probes = list(probes)
        self.progress = progress
        names = [p.name for p in self.probes]
        if len(set(names)) != len(names):
            raise ValueError(f"probe names must be unique, got {names}")
        gdev = self.problem.device if self.problem.device.type == "cuda" else "cpu"
        self.tracker = Tracker(torch.Generator(device=gdev).manual_seed(seed), lanczos_tol=lanczos_tol, progress=progress)
        self.theta_init = self.problem.theta()
        # the parameters and training gradient at the last call, kept only when the next call may
        # fire a probe (which sees them as "before"); calls are expected at a regular stride
        self._theta_prev: torch.Tensor | None = self.theta_init.clone()
        self._prev_grad: torch.Tensor | None = None
        self._last_step: int | None = None
        self._stride: int | None = None
        self._regular = True
        self.history: list[tuple[int, str, dict, float]] = []
        self.store = None
        if store:
            from .run.store import RunStore

            if run_dir is None:
                run_dir = Path("runs") / f"scope-{datetime.now():%Y%m%d-%H%M%S}"
            cfg = config if config is not None else {"scope": {"probes": names, "seed": seed, "bn_mode": bn_mode}}
            self.store = RunStore(run_dir, config=cfg, resume=resume, overwrite=overwrite)

    @property
    def run_dir(self) -> Path | None:
        return None if self.store is None else Path(self.store.path)

    def _train_grad(self) -> torch.Tensor | None:
        named = dict(self.model.named_parameters())
        grads = [named[n].grad for n in self.problem.spec.names]
        if any(g is None for g in grads):
            return None
        return torch.cat([g.detach().reshape(-1) for g in grads]).to(self.problem.dtype)

    def after_step(
        self,
        step: int,
        *,
        optimizer=None,
        batch: tuple | None = None,
        loss=None,
        epoch: float | None = None,
        epoch_end: bool = False,
        lr: float | None = None,
    ) -> dict[str, dict]:
        """Run the probes due at ``step``; returns ``{probe name: values}`` of those that ran."""
        stride = step - self._last_step if self._last_step is not None else None
        if self._stride is not None and stride != self._stride:
            self._regular = False  # irregular calls: the next one cannot be predicted, keep a copy every call
        due = [p for p in self.probes if p.schedule(step, epoch_end)]
        theta_after = train_grad = None
        out: dict[str, dict] = {}
        unserved = [p.name for p in due if self._theta_prev is None and _uses_before(p)]
        if unserved:
            warnings.warn(
                f"Scope.after_step(step={step}): the previous call (step {self._last_step}) did not expect probes now, "
                f"so the parameters before this step are unknown and {unserved} are skipped; call after_step after "
                "every optimizer step with consecutive step numbers (from now on a copy is kept at every call)",
                RuntimeWarning,
                stacklevel=2,
            )
            due = [p for p in due if p.name not in unserved]
        if due:
            theta_after, train_grad = self.problem.theta(), self._train_grad()
            out = self._run(due, self._context(step, optimizer, batch, loss, epoch, epoch_end, lr, theta_after, train_grad))
        # keep the parameters (and the gradient) only when the next call may need them as "before"
        nxt = step + (stride or 1)
        if not self._regular or stride is None or any(p.schedule(nxt, True) for p in self.probes if _uses_before(p)):
            if theta_after is None:
                theta_after, train_grad = self.problem.theta(), self._train_grad()
            self._theta_prev, self._prev_grad = theta_after, train_grad
        else:
            self._theta_prev = self._prev_grad = None
        self._last_step, self._stride = step, stride
        return out

    def _context(self, step, optimizer, batch, loss, epoch, epoch_end, lr, theta_after, train_grad) -> StepContext:
        if lr is None:
            lr = float(optimizer.param_groups[0]["lr"]) if optimizer is not None else float("nan")
        if batch is not None:
            batch = (self.problem.place_inputs(batch[0]), batch[1].to(self.problem.device))
        return StepContext(
            step=int(step),
            epoch=float("nan") if epoch is None else float(epoch),
            epoch_end=bool(epoch_end),
            lr=float(lr),
            batch_size=int(self.batch_size or (len(batch[1]) if batch is not None else 0)),
            train_size=self.train_size,
            theta_before=self._theta_prev,
            theta_after=theta_after,
            theta_init=self.theta_init,
            batch=batch,
            batch_loss=None if loss is None else float(loss),
            problem=self.problem,
            eval_problem=self.eval_problem,
            source=self.source,
            model=self.model,
            optimizer=optimizer,
            tracker=self.tracker,
            train_grad=train_grad,
            prev_grad=self._prev_grad,
        )

    def _run(self, due, ctx: StepContext) -> dict[str, dict]:
        step = ctx.step
        out: dict[str, dict] = {}
        bar = tqdm(due, desc=f"probes @ step {step}", unit="probe", leave=False, disable=not self.progress or len(due) < 2)
        for probe in bar:
            bar.set_postfix_str(probe.name)
            t0 = time.perf_counter()
            try:
                values = probe(ctx)
            except FloatingPointError as err:  # a diverging model: record it, let training decide
                warnings.warn(f"probe {probe.name!r} at step {step}: {err}; recorded as non-finite", RuntimeWarning, stacklevel=3)
                values = {"nonfinite": float("nan")}
            _sync(self.problem.device)
            seconds = time.perf_counter() - t0
            out[probe.name] = values
            self.history.append((int(step), probe.name, values, seconds))
            if self.store is not None:
                self.store.log(int(step), ctx.epoch, probe.name, values, seconds=seconds)
        if self.store is not None:
            self.store.flush()
        return out

    def log(self, step: int, name: str, values: dict, *, epoch: float | None = None) -> None:
        """Record values the loop computed itself (e.g. training loss) beside the probes'."""
        self.history.append((int(step), name, values, math.nan))
        if self.store is not None:
            self.store.log(int(step), float("nan") if epoch is None else float(epoch), name, values)

    # ------------------------------------------------------------------ resume
    def state_dict(self) -> dict:
        return {
            "tracker": self.tracker.state_dict(),
            "theta_init": self.theta_init,
            "theta_prev": self._theta_prev,
            "prev_grad": self._prev_grad,
            "calls": {"last_step": self._last_step, "stride": self._stride, "regular": self._regular},
            "probes": {p.name: p.state_dict() for p in self.probes if hasattr(p, "state_dict")},
        }

    def load_state_dict(self, state: dict) -> None:
        self.tracker.load_state_dict(state["tracker"])
        self.theta_init = state["theta_init"]
        self._theta_prev = state["theta_prev"]
        self._prev_grad = state["prev_grad"]
        calls = state.get("calls", {"last_step": None, "stride": None, "regular": False})
        self._last_step, self._stride, self._regular = calls["last_step"], calls["stride"], calls["regular"]
        for p in self.probes:
            if hasattr(p, "load_state_dict") and p.name in state["probes"]:
                p.load_state_dict(state["probes"][p.name])

    def close(self) -> None:
        if self.store is not None:
            self.store.flush()
            self.store.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
