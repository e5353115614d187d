"""Store the noise paper's experiment results as ordinary run folders, so its figures read them.

Each recorder writes one run folder (``config.toml`` with an ``[experiment]`` table, ``probes.json``,
``metrics.parquet/``, ``arrays/``, ``status.json`` "done") through :class:`~sgdscope.store.RunWriter`,
under a probe type of its own (``sgdscope.quantities.RECORD_TYPES``):

==========================  ==================  ====================================================
recorder                    type                stored
==========================  ==================  ====================================================
``record_trace_rate``       ``trace_rate``      step 0: arrays eta, trace_change, stderr; rows slope,
                                                intercept, r2, predicted_slope (Fig. 2b)
``record_noise_structure``  ``noise_structure`` per recorded step: {noise}_trace, {noise}_det and
                                                their _stderr (Fig. 2c-d)
``record_valley_slope``     ``valley_slope``    per recorded step: gd_theta_1/2, noisy_theta_1/2 (the
                                                first chain), noisy_theta_2_mean/_stderr; at the last
                                                step stationary, stationary_stderr, predicted (Fig. 7)
``record_negative_sum``     ``negative_sum``    step 0: arrays lr, batch_size, loss, excess_loss,
                                                negative_sum; rows of the line fit and the GD minimum
                                                (Fig. 2a)
``record_valley_path``      ``valley_path``     per projected state (its training step): train_loss,
                                                val_loss, trace, trace_stderr, gd_steps, converged,
                                                connected (Fig. 1, 3)
``log_fdr``                 ``fdr``             one row set per call, into a sink the caller owns:
                                                ratio, ratio_subspace, o_left, ... (Fig. 6)
==========================  ==================  ====================================================

The toys are full-batch (an analytic loss plus designed noise), so a toy run's epoch is its step.
The recorders take results, not settings: pass the experiment's settings as ``config`` to keep
them beside the numbers.
"""
from __future__ import annotations

import math
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping

import torch

from ..store import RunWriter, read_status

if TYPE_CHECKING:
    from ..landscape import ProjectedPath, TraceProfile
    from ..optim import FDRResult
    from ..store import Sink
    from .experiments import NoiseStructureResult, SlopeValleyResult, TraceRateResult
    from .negative import NegativeEigenResult

__all__ = [
    "record_trace_rate", "record_noise_structure", "record_valley_slope", "record_negative_sum",
    "record_valley_path", "log_fdr",
]  # fmt: skip


def _float(x) -> float:
    return float(x.item() if isinstance(x, torch.Tensor) else x)


def _write(out, kind: str, rows, *, config: Mapping[str, Any] | None, overwrite: bool) -> Path:
    """One run folder at ``out`` holding ``rows`` [(step, epoch, values)] of probe type ``kind``."""
    with RunWriter(out, config={"experiment": {"name": kind, **(config or {})}}, overwrite=overwrite,
                   flush_every_s=None) as w:
        w.declare({kind: kind})
        for step, epoch, values in rows:
            w.log(int(step), epoch, kind, values)
        w.flush()
        w.set_status("done", message=f"recorded by sgdscope.toys.record ({kind})")
    return Path(out)


def record_trace_rate(result: "TraceRateResult", out: str | os.PathLike, *, config: Mapping[str, Any] | None = None,
                      overwrite: bool = False) -> Path:
    """Noise paper Fig. 2b: :func:`~sgdscope.toys.trace_rate_experiment`'s result at step 0, with
    ``resolution``: the least |trace change| over the learning rates, in its standard errors."""
    fit = result.fit
    resolution = (result.trace_change.abs() / result.stderr).min()  # the least |change| in standard errors
    values = {"eta": result.etas, "trace_change": result.trace_change, "stderr": result.stderr,
              "slope": fit.slope, "intercept": fit.intercept, "r2": fit.r2,
              "predicted_slope": result.predicted_slope, "resolution": _float(resolution)}  # fmt: skip
    return _write(out, "trace_rate", [(0, 0.0, values)], config=config, overwrite=overwrite)


def record_noise_structure(result: "NoiseStructureResult", out: str | os.PathLike, *,
                           config: Mapping[str, Any] | None = None, overwrite: bool = False) -> Path:
    """Noise paper Fig. 2c-d: the chain means of T and Det per noise kind at each recorded step."""
    rows = []
    for i, step in enumerate(result.steps.tolist()):
        values = {}
        for kind in result.trace:
            values[f"{kind}_trace"] = _float(result.trace[kind][i])
            values[f"{kind}_trace_stderr"] = _float(result.trace_stderr[kind][i])
            values[f"{kind}_det"] = _float(result.det[kind][i])
            values[f"{kind}_det_stderr"] = _float(result.det_stderr[kind][i])
        rows.append((step, float(step), values))
    return _write(out, "noise_structure", rows, config=config, overwrite=overwrite)


def record_valley_slope(result: "SlopeValleyResult", out: str | os.PathLike, *, config: Mapping[str, Any] | None = None,
                        overwrite: bool = False) -> Path:
    """Noise paper Fig. 7: GD and the first noisy chain (theta_1, theta_2), the chains' mean theta_2
    with its standard error at each recorded step; the stationary value and eq. 38's at the last."""
    theta2 = result.theta_noisy[..., 1]  # (R, C)
    chains = theta2.shape[1]
    mean = theta2.mean(1)
    stderr = theta2.std(1) / chains**0.5 if chains > 1 else torch.full_like(mean, math.inf)
    steps = result.steps.tolist()
    rows = []
    for i, step in enumerate(steps):
        values = {"gd_theta_1": _float(result.theta_gd[i, 0]), "gd_theta_2": _float(result.theta_gd[i, 1]),
                  "noisy_theta_1": _float(result.theta_noisy[i, 0, 0]),
                  "noisy_theta_2": _float(result.theta_noisy[i, 0, 1]),
                  "noisy_theta_2_mean": _float(mean[i]), "noisy_theta_2_stderr": _float(stderr[i])}  # fmt: skip
        if i == len(steps) - 1:
            values.update(stationary=result.stationary, stationary_stderr=result.stationary_stderr,
                          predicted=result.predicted)
        rows.append((step, float(step), values))
    return _write(out, "valley_slope", rows, config=config, overwrite=overwrite)


def record_negative_sum(result: "NegativeEigenResult", out: str | os.PathLike, *,
                        config: Mapping[str, Any] | None = None, overwrite: bool = False) -> Path:
    """Noise paper Fig. 2a: :func:`~sgdscope.toys.negative_eigenvalue_experiment`'s snapshots at step 0."""
    fit = result.fit
    values = {"lr": result.lr, "batch_size": result.batch_size, "loss": result.loss, "excess_loss": result.excess_loss,
              "negative_sum": result.negative_sum, "slope": fit.slope, "intercept": fit.intercept, "r2": fit.r2,
              "base_loss": result.base_loss, "base_negative_sum": result.base_negative_sum,
              "base_grad_norm": result.base_grad_norm, "dim": result.dim}  # fmt: skip
    return _write(out, "negative_sum", [(0, 0.0, values)], config=config, overwrite=overwrite)


def record_valley_path(path: "ProjectedPath", out: str | os.PathLike, *, val_loss=None,
                       trace: "TraceProfile | None" = None, steps_per_epoch: int | None = None,
                       config: Mapping[str, Any] | None = None, append: bool = False, overwrite: bool = False) -> Path:
    """Noise paper Fig. 1 and 3: the projected path of :func:`~sgdscope.landscape.projected_path`, one
    row set per projected state at its training step, with ``val_loss`` (P,)
    (``losses_at(val_problem, path.thetas)``) and ``trace`` (``trace_along(problem, path.thetas)``)
    when given. ``epoch`` = step / ``steps_per_epoch`` (NaN without it: the figures then use steps).

    ``append=True`` adds the path to the existing run at ``out`` (the training run it was projected
    from) as the probe "valley_path", keeping that run's config and status: Fig. 1 then draws the
    run's own training curve as its inset."""
    n = len(path.steps)
    extra = {"val_loss": val_loss, "trace": None if trace is None else trace.estimate,
             "trace_stderr": None if trace is None else trace.stderr}
    for name, value in extra.items():
        if value is not None and tuple(torch.as_tensor(value).shape) != (n,):
            raise ValueError(f"record_valley_path: {name} must have one value per projected state, shape ({n},), "
                             f"got {tuple(torch.as_tensor(value).shape)}")
    if steps_per_epoch is not None and steps_per_epoch <= 0:
        raise ValueError(f"steps_per_epoch must be > 0, got {steps_per_epoch}")
    rows = []
    for i, step in enumerate(path.steps.tolist()):
        values = {"train_loss": _float(path.train_loss[i]), "gd_steps": _float(path.gd_steps[i]),
                  "converged": _float(path.converged[i])}
        if i > 0:
            values["connected"] = _float(path.connected[i - 1])
        values.update({name: _float(v[i]) for name, v in extra.items() if v is not None})
        rows.append((step, step / steps_per_epoch if steps_per_epoch else math.nan, values))
    if not append:
        return _write(out, "valley_path", rows, config=config, overwrite=overwrite)
    if config is not None or overwrite:
        raise ValueError("record_valley_path(append=True) keeps the run's own config: "
                         "pass neither config nor overwrite")
    old = read_status(out)
    if old["state"] == "running":
        raise ValueError(f"{out}: the run is still running; append the valley path once it has stopped")
    with RunWriter(out, resume=True, flush_every_s=None) as w:
        try:
            w.declare({"valley_path": "valley_path"})
            for step, epoch, values in rows:
                w.log(int(step), epoch, "valley_path", values)
            w.flush()
        finally:  # the training run keeps its own status, whatever happens here
            w.set_status(old["state"], step=old.get("step"), epoch=old.get("epoch"), message=old.get("message", ""))
    return Path(out)


def log_fdr(sink: "Sink", step: int, epoch: float, result: "FDRResult", *, name: str = "fdr") -> None:
    """Noise paper Fig. 6: one :class:`~sgdscope.optim.FDRResult` (``FDRMonitor.result()``) into
    ``sink`` (a RunWriter, e.g. the trainer's, or a MemorySink) at ``step``, as probe ``name`` of
    type "fdr". The subspace values are left out when the monitor had no basis."""
    sink.declare({name: "fdr"})
    values = {"ratio": result.ratio, "o_left": result.o_left, "o_right": result.o_right, "window": result.steps}
    if result.ratio_subspace is not None:
        values.update(ratio_subspace=result.ratio_subspace, o_left_subspace=result.o_left_subspace,
                      o_right_subspace=result.o_right_subspace)
    sink.log(step, epoch, name, values)
