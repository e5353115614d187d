"""``Scope``: the papers' measurements inside a user's own training loop.

    scope = sgdscope.Scope(model, loss_fn, curvature_data=subset, probes=sgdscope.probes.break_even(every=100),
                           noise_data=(x_train, y_train), train_size=len(y_train), sink="runs/mine")
    for step, (x, y) in enumerate(loader):
        opt.zero_grad(); loss = loss_fn(model(x), y); loss.backward(); opt.step()
        scope.after_step(step, optimizer=opt, batch=(x, y), loss=loss)
    scope.close()
    df = sgdscope.load_run("runs/mine")

Call ``after_step`` after every optimizer step with consecutive step numbers, so that "before"
and "after" parameters belong to the same step. It costs nothing when no probe is due at this
step or the next (it keeps a copy of the parameters only before a step that probes will see).
Results go to a sink (:mod:`sgdscope.store`): a run folder, or memory.

Inside a DDP loop (``distributed=True`` or ``process_group=...``): every rank builds the Scope
with its own shard of the curvature, evaluation and noise data and calls ``after_step`` at every
step with its own batch; the measurements use every rank (they equal one process's on the union
of the shards and batches, in rank order), and only rank 0 records them (the other ranks create
no folder and write nothing). A probe that fails on any rank is recorded as failed (rank 0
writes NaN) and, with ``strict=True``, raises on every rank. What is not handled: a rank that
fails *between* the collectives of a measurement (out of memory, say) leaves the others waiting
in a collective until the process group's timeout (``init_process_group(timeout=...)``).
"""
from __future__ import annotations

import math
import os
import time
import warnings
from datetime import datetime
from pathlib import Path
from typing import Iterable

import torch
from tqdm.auto import tqdm

from ._batches import concat_batches
from ._dist import total
from .probes.context import StepContext, Tracker
from .problem import Problem, _resolve_bn_mode
from .quantities import QUANTITIES
from .store.sink import DiscardSink, Sink
from .store.writer import RunWriter

__all__ = ["Scope"]


# probe types that draw examples or mini-batches from the noise pool (noise_data); stability also uses N (train_size)
_POOL_TYPES = ("gradient_noise", "sharpest_directions", "alignment", "stability", "hessian_noise")
_N_TYPES = ("stability",)


def _uses_before(probe) -> bool:
    """Whether a probe reads the previous step's parameters or gradient (assumed unless it says not)."""
    return bool(getattr(probe, "before", True))


def _probe_type(probe) -> str:
    return getattr(probe, "type", None) or probe.name


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


class Scope:
    """Runs probes on their schedules after optimizer steps and records what they return.

    Args:
        model, loss_fn: the model being trained and its loss (see :class:`~sgdscope.Problem`).
        curvature_data: the fixed subset curvature is measured on: ``(X, Y)``, a list of
            ``(x, y)`` batches, a map-style Dataset, or a DataLoader (read once).
        probes: probe objects (see :mod:`sgdscope.probes`); instance names must be unique.
        sink: where results go: a run folder (a path; a new run is created there and this Scope
            ends it ``done`` on :meth:`close`, ``failed`` when an exception leaves its ``with``
            block), a :class:`~sgdscope.store.Sink` you own (a
            :class:`~sgdscope.store.RunWriter`, or :class:`~sgdscope.store.MemorySink` to keep
            results in memory), or None for a new folder ``runs/scope-<time>``.
        eval_data: fixed set for the landscape probes (default: ``curvature_data``).
        noise_data: ``(X, Y)`` that mini-batches for K are drawn from (default: ``curvature_data``,
            with a warning when a probe draws from it: give the training set, or a large sample of it).
        train_size, batch_size: N and S of training (for the break-even stability; default: N the
            examples of ``noise_data``, with a warning when the stability probe is used; S the size of
            each step's ``batch``).
        bn_mode, params, reduction: passed to :class:`~sgdscope.Problem`: every quantity is of the
            mean loss over the examples. ``loss_fn`` is taken to be the loss training steps on: with
            ``reduction="sum"`` the probes see the step on the mean loss (``ctx.lr`` = lr * S, the
            training gradient / S). ``bn_mode=None`` (not chosen) is ``"eval"``, with a warning for a
            model with batch norm.
        seed: seeds the measurements' own generator (never the global RNG).
        progress: show a progress bar over the probes of a step while they run.
        strict: re-raise an exception raised inside a probe (default: record it and go on).
        distributed, process_group: measure over every rank of the default ``torch.distributed``
            process group (or this one), inside a DDP loop (module docstring): the data arguments
            are this rank's shards (the noise pool's N is their union's; ``train_size`` and
            ``batch_size``, when given, are the whole training set's and the global batch's),
            ``model`` is the module DDP wraps (``ddp.module``), its parameters equal on every rank.
            Only rank 0 uses ``sink``; elsewhere it is ignored (a path creates nothing).
    """

    def __init__(
        self,
        model: torch.nn.Module,
        loss_fn,
        curvature_data,
        probes: Iterable = (),
        *,
        sink: Sink | str | os.PathLike | None = None,
        eval_data=None,
        noise_data=None,
        train_size: int | None = None,
        batch_size: int | None = None,
        bn_mode: str | None = None,
        params=None,
        reduction: str | None = None,
        seed: int = 0,
        lanczos_tol: float = 1e-3,
        progress: bool = False,
        strict: bool = False,
        distributed: bool = False,
        process_group=None,
    ):
        self.model = model
        bn_mode = _resolve_bn_mode(model, bn_mode)  # warns here, at the caller's line, when not chosen
        self.problem = Problem(model, loss_fn, curvature_data, params=params, bn_mode=bn_mode, reduction=reduction,
                               distributed=distributed, process_group=process_group)
        self.comm = self.problem.comm
        self.eval_problem = (
            self.problem if eval_data is None else self.problem.subproblem(eval_data)
        )
        self.source = self.problem.place(concat_batches(self.problem.batches if noise_data is None else noise_data, "noise_data"))
        self.pool_size = total(self.comm, len(self.source[1]))  # N of the noise pool (the union of the shards)
        self.train_size = int(train_size or self.pool_size)
        self.batch_size = batch_size
        self.probes = list(probes)
        self.progress = progress
        self.strict = strict
        names = [p.name for p in self.probes]
        if len(set(names)) != len(names):
            raise ValueError(f"probe names must be unique, got {names}")
        self._warn_defaults(noise_data is None, train_size is None)
        gdev = self.problem.device if self.problem.device.type == "cuda" else "cpu"
        self.tracker = Tracker(torch.Generator(device=gdev).manual_seed(seed), lanczos_tol=lanczos_tol, progress=progress)
        self.theta_init = self.problem.theta()
        if self.comm is not None:
            self._check_same_parameters()
        # the parameters and training gradient at the last call, kept only when the next call may
        # fire a probe (which sees them as "before"); calls are expected at a regular stride
        self._theta_prev: torch.Tensor | None = self.theta_init.clone()
        self._prev_grad: torch.Tensor | None = None
        self._last_step: int | None = None
        self._stride: int | None = None
        self._regular = True
        self.failures: dict[str, str] = {}  # probe name -> the last error it raised
        self.writes = self.comm is None or self.comm.rank == 0  # with a process group only rank 0 records
        if not self.writes:
            sink = DiscardSink()
        self.owns_sink = sink is None or isinstance(sink, (str, os.PathLike))
        if self.owns_sink:
            if sink is None:
                sink = Path("runs") / f"scope-{datetime.now():%Y%m%d-%H%M%S}"
            config = {"scope": {"probes": {p.name: _probe_type(p) for p in self.probes}, "seed": seed, "bn_mode": bn_mode,
                                "reduction": self.problem.reduction}}
            if self.comm is not None:
                config["scope"]["ranks"] = self.comm.size
            sink = RunWriter(sink, config=config)
        self.sink = sink
        self.sink.declare({p.name: _probe_type(p) for p in self.probes})

    def _check_same_parameters(self) -> None:
        """Raise on every rank when the parameters differ from rank 0's (one broadcast of D numbers)."""
        mine = self.theta_init
        first = self.comm.broadcast(mine.clone(), 0)
        differ = int(((mine != first) & ~(mine.isnan() & first.isnan())).sum())
        if self.comm.flag(differ > 0):
            raise ValueError(
                f"Scope(distributed=True): the model's parameters differ across ranks (here, on rank {self.comm.rank}, "
                f"{differ} of {mine.numel()} differ from rank 0's); build the Scope after wrapping the model in "
                "DistributedDataParallel (which broadcasts rank 0's parameters), or seed every rank alike"
            )

    def _warn_defaults(self, no_pool: bool, no_size: bool) -> None:
        """One warning naming ``noise_data=`` / ``train_size=`` when probes rely on their defaults."""
        pool = [p.name for p in self.probes if _probe_type(p) in _POOL_TYPES] if no_pool else []
        size = [p.name for p in self.probes if _probe_type(p) in _N_TYPES] if no_size else []
        n = self.pool_size
        parts = []
        if pool:
            parts.append(f"noise_data=(X, Y), the pool {pool} draw examples and mini-batches from (e.g. the training set; "
                         f"now the curvature subset, {n} examples: mini-batches of that size or larger cannot be drawn from it)")
        if size:
            parts.append(f"train_size=N, the training-set size of Break-Even eq. 1 in {size} (now N = {self.train_size}, "
                         "the examples of the noise pool)")
        if parts:
            warnings.warn("Scope: pass " + "; and ".join(parts), UserWarning, stacklevel=3)

    @property
    def run_dir(self) -> Path | None:
        """The run folder results are written to (None for a sink without one)."""
        path = getattr(self.sink, "path", None)
        return None if path is None else Path(path)

    def _step_size(self, batch) -> int:
        """S, the examples of this step's mini-batch (0 if unknown); with a process group, of every
        rank's batch (a collective, unless ``batch_size`` was given)."""
        if self.batch_size:
            return int(self.batch_size)
        return total(self.comm, len(batch[1]) if batch is not None else 0)

    @property
    def _ranks(self) -> int:
        return 1 if self.comm is None else self.comm.size

    def _train_grad(self, S: int) -> torch.Tensor | None:
        """The training gradient in ``.grad``, of the mean loss of the step's S examples (None if unknown).

        A summed loss's gradient is S times the mean's; under DDP, which averages the R ranks'
        gradients, S / R times (exactly so whatever the ranks' batch sizes)."""
        named = dict(self.model.named_parameters())
        grads = [named[n].grad for n in self.problem.spec.names]
        if any(g is None for g in grads) or (self.problem.reduction == "sum" and not S):
            return None
        g = torch.cat([g.detach().reshape(-1) for g in grads]).to(self.problem.dtype)
        return g * (self._ranks / S) if self.problem.reduction == "sum" else g

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
        # keep the parameters (and the gradient) only when the next call may need them as "before"
        nxt = step + (stride or 1)
        keep = not self._regular or stride is None or any(p.schedule(nxt, True) for p in self.probes if _uses_before(p))
        S = self._step_size(batch) if due or keep else 0  # (the same decision on every rank: a collective)
        if due:
            theta_after, train_grad = self.problem.theta(), self._train_grad(S)
            out = self._run(due, self._context(step, optimizer, batch, loss, epoch, epoch_end, lr, theta_after, train_grad, S))
        if keep:
            if theta_after is None:
                theta_after, train_grad = self.problem.theta(), self._train_grad(S)
            self._theta_prev, self._prev_grad = theta_after, train_grad
        else:
            self._theta_prev = self._prev_grad = None
        self._last_step, self._stride = step, stride
        return out

    def _context(self, step, optimizer, batch, loss, epoch, epoch_end, lr, theta_after, train_grad, S) -> StepContext:
        if lr is None:
            lr = float(optimizer.param_groups[0]["lr"]) if optimizer is not None else float("nan")
        if self.problem.reduction == "sum":  # a step lr * sum_i g_i is a step lr * S on the mean loss (S / R under DDP)
            if not S:
                warnings.warn("Scope: the loss is summed over the mini-batch, so the step on the mean loss is lr * S; "
                              "pass batch_size=S to Scope or batch=(x, y) to after_step (the learning rate is NaN "
                              "to the probes until then)", RuntimeWarning, stacklevel=3)
            lr = lr * S / self._ranks if S else float("nan")
        if batch is not None:
            batch = self.problem.place(batch)
        return StepContext(
            step=int(step),
            epoch=float("nan") if epoch is None else float(epoch),
            epoch_end=bool(epoch_end),
            lr=float(lr),
            batch_size=S,
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
            pool_size=self.pool_size,
        )

    def _run(self, due, ctx: StepContext) -> dict[str, dict]:
        step = ctx.step
        out: dict[str, dict] = {}
        bar = tqdm(due, desc=f"probes @ step {step}", unit="probe", leave=False,
                   disable=not self.progress or len(due) < 2 or not self.writes)
        for probe in bar:
            bar.set_postfix_str(probe.name)
            t0 = time.perf_counter()
            try:
                values, err = probe(ctx), None
            except Exception as caught:  # a failing measurement never ends the user's training
                values, err = None, caught
            if self.comm is not None:
                err = self._agree(probe, err)
            if err is not None:
                if self.strict:
                    raise err
                values = self._failed(probe, step, err)
            _sync(self.problem.device)
            seconds = time.perf_counter() - t0
            out[probe.name] = values
            self.sink.log(int(step), ctx.epoch, probe.name, values, seconds=seconds)
        self.sink.flush()
        return out

    def _agree(self, probe, err: Exception | None) -> Exception | None:
        """With a process group: whether the probe failed on any rank, the same answer on every rank
        (one all-reduce of a flag per probe run); a rank where it succeeded gets the failing ranks' errors."""
        if not self.comm.flag(err is not None):
            return None
        import torch.distributed as dist

        message = "" if err is None else f"{type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}"
        messages = [None] * self.comm.size
        dist.all_gather_object(messages, message, group=self.comm.group)
        if err is not None:
            return err
        failed = "; ".join(f"rank {r}: {m}" for r, m in enumerate(messages) if m)
        return RuntimeError(f"probe {probe.name!r} failed on another rank ({failed})")

    def _failed(self, probe, step: int, err: Exception) -> dict:
        """The values a failed probe records: NaN for each of its metrics and ``failed`` = 1."""
        message = f"{type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}".rstrip(": ")
        if probe.name not in self.failures:
            warnings.warn(f"probe {probe.name!r} failed at step {step} ({message}); its values are recorded as NaN "
                          "and training goes on (Scope(strict=True) re-raises)", RuntimeWarning, stacklevel=4)
        self.failures[probe.name] = f"step {step}: {message}"
        values = {q.name: math.nan for q in QUANTITIES if q.type == _probe_type(probe) and not q.array and "{" not in q.name}
        values["failed"] = 1.0
        self.sink.set_status(getattr(self.sink, "state", "running"), message=self.failure_message, probe_errors=dict(self.failures))
        return values

    @property
    def failure_message(self) -> str:
        """One line naming each probe that failed, where, and its error ("" if none did)."""
        return "; ".join(f"probe {name!r} failed at {err}" for name, err in self.failures.items())

    def log(self, step: int, name: str, values: dict, *, epoch: float | None = None) -> None:
        """Record values the loop computed itself (e.g. training loss) beside the probes'."""
        self.sink.log(int(step), float("nan") if epoch is None else float(epoch), name, values)

    # ------------------------------------------------------------------ resume
    def state_dict(self) -> dict:
        return {
            "tracker": self.tracker.state_dict(),
            "theta_init": self.theta_init,
            "theta_prev": self._theta_prev,
            "prev_grad": self._prev_grad,
            "calls": {"last_step": self._last_step, "stride": self._stride, "regular": self._regular},
            "probes": {p.name: p.state_dict() for p in self.probes if hasattr(p, "state_dict")},
            "failures": dict(self.failures),
        }

    def load_state_dict(self, state: dict) -> None:
        self.tracker.load_state_dict(state["tracker"])
        self.theta_init = state["theta_init"]
        self._theta_prev = state["theta_prev"]
        self._prev_grad = state["prev_grad"]
        calls = state.get("calls", {"last_step": None, "stride": None, "regular": False})
        self._last_step, self._stride, self._regular = calls["last_step"], calls["stride"], calls["regular"]
        self.failures = dict(state.get("failures", {}))
        for p in self.probes:
            if hasattr(p, "load_state_dict") and p.name in state["probes"]:
                p.load_state_dict(state["probes"][p.name])

    def close(self, state: str = "done", message: str = "") -> None:
        """Flush the sink; a sink this Scope opened is closed and its run set to ``state``."""
        self.sink.flush()
        if self.owns_sink:
            info = {"probe_errors": dict(self.failures)} if self.failures else {}
            self.sink.set_status(state, message=message or self.failure_message, **info)
            self.sink.close()

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        if exc_type is None:
            self.close()
        else:
            state = "interrupted" if issubclass(exc_type, KeyboardInterrupt) else "failed"
            self.close(state, f"{exc_type.__name__}: {exc}" if str(exc) else exc_type.__name__)
