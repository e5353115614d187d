"""How noise affects the Hessian spectrum in overparameterized neural networks (the noise paper,
ICLR 2020 submission): the trace change against eta^2 (§4.2, Fig. 2b), SGD-like against
isotropic noise (Fig. 2c-d), the sloped valley's stationary theta_2 (App. A.6, Fig. 7), negative
eigenvalues against the training loss (§4.1, App. A.3, Fig. 2a), the H-C alignment (App. A.4,
Fig. 5), the timescale separation (App. A.5, Fig. 6) and the projected path (§2.1.1, §4.3,
Fig. 1, 3).

Studies (``tiny``: seconds, 2-3 seeds; ``cpu``: real data where the paper used real data, minutes
on 2 cores; ``paper``: the paper's settings, ``device = "cuda"`` where a network is trained). The
toys record with :mod:`sgdscope.toys.record`, one run folder per seed:

* ``noise_trace_rate`` (record): ``four_d``, SGD noise s = 1, eta = 0.002 ... 0.012 (6 values);
  tiny: 300 equilibration + 600 measured steps, 32 chains; cpu / paper: the paper's 1000 + 1000
  steps, 64 / 256 chains. 3 seeds.
* ``noise_structure`` (record): ``trace_vs_det`` from (0, 0, 1, 0), SGD noise against isotropic
  noise in the non-degenerate subspace, eta = 0.05, s = 1; tiny: 2,000 steps, 16 chains; cpu:
  5,000 steps, 64 chains; paper: 20,000 (Fig. 2c-d's axis), 64 chains. 3 seeds.
* ``noise_slope`` (record): L = 1/2 (theta_2^2 + 1) theta_1^2 + alpha theta_2 from (0.1, 0.1);
  cpu / paper: the paper's alpha = 1e-4, eta = 0.01, s = 1, 150,000 steps, 8 / 32 chains; tiny:
  alpha = 5e-4, eta = 0.05 (the same -2 alpha / (eta s) = -0.02, 25 times faster), 8,000 steps.
* ``noise_negative`` (record): the x^2-activation net of :mod:`sgdscope.toys.negative` started at a
  true minimum (gradient norm <= 1e-6); tiny: 200 examples, eta 0.02 / 0.05 / 0.1, S = 2 / 8, 600
  steps, 3 seeds; cpu: eta 0.01 ... 0.1, S = 2 / 5 / 10, 1,000 steps, 5 seeds; paper: 500
  examples (the paper's training set), eta 0.001 ... 0.1, S = 5 ... 250 (the paper's ranges),
  5,000 steps, 5 seeds.
* ``noise_hc_ls`` / ``noise_hc_mse`` (sweeps): the MLP with 70 hidden units on 7 x 7 grey,
  standardised images, label-smoothed cross entropy (smoothing 0.1) at lr 0.001 / MSE (torch's
  ``nn.MSELoss``: the mean over the outputs too) at lr 0.1, S = 512 (App. A.4); CS(H, C) (the
  ``hessian_noise`` probe: C from the per-example gradients of n examples, H on the curvature
  subset) at every epoch's end. tiny: digits, 20 epochs, n = 512, H on 512; cpu: CIFAR-10, 30
  epochs, n = 1,000, H on 2,000; paper: CIFAR-10, 100 epochs, n = 5,000, H on 45,000. 2 seeds.
* ``noise_fdr`` (record): the small CNN (3 x 3 convs, 15 / 20 / 10 channels; App. A.5), SGD lr 0.1,
  momentum 0.9, S = 500, label smoothing (the paper's CIFAR settings of §2.1.1; A.5 gives none);
  FDRMonitor over each epoch, the top-1 Hessian eigenvector (Lanczos on the curvature subset) at
  each epoch's start, ``log_fdr`` at its end. tiny: digits, S = 100, 10 epochs; cpu: 10,000
  CIFAR-10 images, 20 epochs; paper: CIFAR-10, 50 epochs. 2 seeds.
* ``noise_valley`` (record): SGD with label smoothing, lr 0.1, momentum 0.9 (§2.1.1), a checkpoint
  at every epoch's end; then the projected path (full-batch GD with the same lr and momentum to
  below the least training loss of the checkpoints, line connectedness on 10 points, bisection)
  appended to the run, with the validation loss and Hutchinson's Tr H on the curvature subset.
  tiny: MLP 32 on digits, S = 100, 4 epochs; cpu: the 70-unit MLP on 2,000 7 x 7 grey CIFAR-10
  images, S = 100, 10 epochs; paper: PreAct-ResNet18 and VGG16 on CIFAR-10, S = 500, 150 epochs.
  2 seeds.

Rules (written before any result was seen) are in each claim; the thresholds are the constants
below.
"""
from __future__ import annotations

import contextlib
import math
from pathlib import Path

import numpy as np
import torch

from .. import toys
from ..analysis import series
from ..landscape import losses_at, projected_path, trace_along
from ..linalg import lanczos
from ..operators import hessian_op
from ..optim import FDRMonitor
from ..run import build_run, resolve, restore, train, train_step
from ..store import MemorySink, checkpoint_steps, load_checkpoint, read_probes, read_status
from ..store.layout import STATUS
from .claim import SCALES, Study, Verdict, claim, study
from .rules import every_run, unfinished

__all__ = []

PAPER = "Noise and the Hessian spectrum"

# --- thresholds of the rules (fixed before any result was seen) -----------------------------------------------------

_LINEAR_R2 = 0.9  # "a linear relation" / "nearly a straight line": R^2 of the least-squares line at least 0.9
_THEORY = 0.25  # the fitted slope of Fig. 2b within 25% of eq. 15's
_ORIGIN = 0.1  # "proportional": |intercept| at most 10% of the fitted change at the largest eta
_SIGMA = 2.0  # a change, an intercept or a trend counts when it is beyond two standard errors
_THETA2 = -0.02  # the paper's stationary theta_2 (App. A.6: "<theta_2> = -0.02")
_BAND = 0.1  # "consistent with": within 10% of -0.02
_MIN_SEEDS = 3  # an intercept's spread over seeds needs at least three seeds
_CS = 0.9  # App. A.4: CS(H, C) "larger than 0.9"
_EARLY_EPOCHS = 10  # §2: "an early phase of training corresponding to ~10 epochs"
_YAIDA = 1e-2  # App. A.5: Yaida's threshold on |O_L / O_R - 1|
_LONG = 5  # "long before": the raw space reaches 1e-2 no earlier than 5 times the top-1 epoch, or never
_MIN_STATES = 3  # a trend along the projected path needs three projected states


# --- reading runs ------------------------------------------------------------------------------------------------

def _runs(frame) -> list[str]:
    return list(dict.fromkeys(frame["run"]))


def _values(frame, run: str, metric: str):
    """(epochs, values) of ``metric`` in ``run``, sorted by step, NaN values left out."""
    s = series(frame, metric, run=run).dropna(subset=["value"])
    return s["epoch"].to_numpy(dtype=float), s["value"].to_numpy(dtype=float)


def _last(frame, run: str, metric: str) -> float:
    return float(_values(frame, run, metric)[1][-1])


def _spread(values) -> str:
    """"1.02 +- 0.03 (n=3)": mean and standard deviation over seeds."""
    v = np.asarray([x for x in values if np.isfinite(x)], dtype=float)
    if not len(v):
        return "no value"
    spread = f" +- {v.std(ddof=1):.3g}" if len(v) > 1 else ""
    return f"{v.mean():.4g}{spread} (n={len(v)})"


def _verdict(frame, judge, *, what: str, summary) -> Verdict:
    """:func:`~.rules.every_run` over ``judge(frame, run) -> (shows, text, numbers)`` of every run that
    finished, ``summary(numbers of the runs)`` (our numbers over seeds) in front of the runs' own; a
    run that did not finish makes the claim inconclusive (:func:`~.rules.unfinished`)."""
    states = frame.drop_duplicates("run").set_index("run")["state"] if "state" in frame.columns else {}
    results, numbers = {}, {}
    for run in _runs(frame):
        if states.get(run, "done") == "done":
            shows, text, numbers[run] = judge(frame, run)
            results[run] = (shows, text)
    v = every_run(results, what=what, numbers={"runs": numbers})
    if numbers:
        v.ours = f"{summary(list(numbers.values()))}; per run: {v.ours}"
    reason = unfinished(frame)
    return Verdict("inconclusive", v.ours, reason, v.numbers) if reason else v


# --- the toy studies (record) -------------------------------------------------------------------------------------

def _finished(folder: Path) -> bool:
    return (folder / STATUS).is_file() and read_status(folder)["state"] == "done"


@contextlib.contextmanager
def _one_thread():
    """Tensors this small gain nothing from intra-op threads; on a busy 2-core machine they cost 10x."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(n)


def _record_toy(out, scale: str, plans: dict, experiment, recorder, *, accept=None) -> None:
    """One run folder ``seed=K`` per seed of ``plans[scale]`` (a finished one is kept): ``experiment``
    (settings, generator) -> ``recorder``, the settings and the seed in the run's config."""
    plan = plans[scale]
    for seed in plan["seeds"]:
        folder = Path(out) / f"seed={seed}"
        if _finished(folder):
            continue
        with _one_thread():
            result = experiment(**plan["settings"], generator=torch.Generator().manual_seed(seed))
        if accept is not None:
            accept(result, seed)
        recorder(result, folder, config={"seed": seed, "scale": scale, **plan["settings"]}, overwrite=True)


_ETAS = [0.002, 0.004, 0.006, 0.008, 0.010, 0.012]
TRACE_RATE = {
    "tiny": {"settings": {"etas": _ETAS, "equilibrate": 300, "measure": 600, "chains": 32}, "seeds": [0, 1, 2]},
    "cpu": {"settings": {"etas": _ETAS, "equilibrate": 1000, "measure": 1000, "chains": 64}, "seeds": [0, 1, 2]},
    "paper": {"settings": {"etas": _ETAS, "equilibrate": 1000, "measure": 1000, "chains": 256}, "seeds": [0, 1, 2]},
}
STRUCTURE = {
    "tiny": {"settings": {"lr": 0.05, "steps": 2000, "chains": 16, "record_every": 100}, "seeds": [0, 1, 2]},
    "cpu": {"settings": {"lr": 0.05, "steps": 5000, "chains": 64, "record_every": 100}, "seeds": [0, 1, 2]},
    "paper": {"settings": {"lr": 0.05, "steps": 20000, "chains": 64, "record_every": 200}, "seeds": [0, 1, 2]},
}
_SLOPE_PAPER = {"alpha": 1e-4, "lr": 0.01, "steps": 150_000, "record_every": 500}
SLOPE = {
    "tiny": {"settings": {"alpha": 5e-4, "lr": 0.05, "steps": 8000, "chains": 8, "record_every": 40}, "seeds": [0, 1, 2]},
    "cpu": {"settings": {**_SLOPE_PAPER, "chains": 8}, "seeds": [0, 1, 2]},
    "paper": {"settings": {**_SLOPE_PAPER, "chains": 32}, "seeds": [0, 1, 2]},
}
_GRAD_TOL = 1e-6
NEGATIVE = {
    "tiny": {"settings": {"lrs": [0.02, 0.05, 0.1], "batch_sizes": [2, 8], "steps": 600, "grad_tol": _GRAD_TOL},
             "seeds": [0, 1, 2]},
    "cpu": {"settings": {"lrs": [0.01, 0.02, 0.05, 0.1], "batch_sizes": [2, 5, 10], "steps": 1000,
                         "grad_tol": _GRAD_TOL}, "seeds": [0, 1, 2, 3, 4]},
    "paper": {"settings": {"num_examples": 500, "lrs": [0.001, 0.01, 0.03, 0.1], "batch_sizes": [5, 25, 100, 250],
                           "steps": 5000, "snapshot_every": 500, "grad_tol": _GRAD_TOL}, "seeds": [0, 1, 2, 3, 4]},
}


def record_trace_rate(out, scale: str) -> None:
    """Fig. 2b: :func:`~sgdscope.toys.trace_rate_experiment` per seed (:data:`TRACE_RATE`)."""
    _record_toy(out, scale, TRACE_RATE, toys.trace_rate_experiment, toys.record_trace_rate)


def record_noise_structure(out, scale: str) -> None:
    """Fig. 2c-d: :func:`~sgdscope.toys.noise_structure_experiment` per seed (:data:`STRUCTURE`)."""
    _record_toy(out, scale, STRUCTURE, toys.noise_structure_experiment, toys.record_noise_structure)


def record_valley_slope(out, scale: str) -> None:
    """Fig. 7: :func:`~sgdscope.toys.valley_slope_experiment` per seed (:data:`SLOPE`)."""
    _record_toy(out, scale, SLOPE, toys.valley_slope_experiment, toys.record_valley_slope)


def _at_minimum(result, seed: int) -> None:
    if not result.base_grad_norm <= _GRAD_TOL:
        raise ValueError(f"noise_negative, seed {seed}: the start is not a minimum: gradient norm "
                         f"{result.base_grad_norm:.3g} > {_GRAD_TOL:g} after {result.gd_steps} GD steps")


def record_negative_sum(out, scale: str) -> None:
    """Fig. 2a: :func:`~sgdscope.toys.negative_eigenvalue_experiment` per seed (:data:`NEGATIVE`), from a
    true minimum (an error names the seed where gradient descent did not reach the tolerance)."""
    _record_toy(out, scale, NEGATIVE, toys.negative_eigenvalue_experiment, toys.record_negative_sum,
                accept=_at_minimum)


TRACE_RATE_STUDY = study(Study("noise_trace_rate", PAPER, record=record_trace_rate))
STRUCTURE_STUDY = study(Study("noise_structure", PAPER, record=record_noise_structure))
SLOPE_STUDY = study(Study("noise_slope", PAPER, record=record_valley_slope))
NEGATIVE_STUDY = study(Study("noise_negative", PAPER, record=record_negative_sum))

# --- App. A.4: the H-C alignment (sweeps) -------------------------------------------------------------------------

_GREY = {"grey_resize": 7, "normalize": True}
_HC_DATA = {"tiny": {"name": "digits", "val_size": 200, **_GREY},
            "cpu": {"name": "cifar10", "val_size": 5000, **_GREY},
            "paper": {"name": "cifar10", "val_size": 5000, **_GREY}}
_HC_EPOCHS = {"tiny": 20, "cpu": 30, "paper": 100}
_HC_MEASURE = {"tiny": {"curvature_examples": 512, "curvature_batch": 512, "eval_examples": 1000},
               "cpu": {"curvature_examples": 2000, "curvature_batch": 1000, "eval_examples": 5000},
               "paper": {"curvature_examples": 45000, "curvature_batch": 5000, "eval_examples": 45000}}
_HC_EXAMPLES = {"tiny": 512, "cpu": 1000, "paper": 5000}  # examples behind C (Tr HC costs one product each)


def _hc_sweeps(loss: dict, lr: float, tag: str) -> dict:
    return {scale: {"config": {
        "name": f"noise-hc-{tag}-{scale}", "data": _HC_DATA[scale], "model": {"name": "mlp_70"}, "loss": loss,
        "optimizer": {"name": "sgd", "lr": lr}, "train": {"epochs": _HC_EPOCHS[scale], "batch_size": 512},
        "measure": _HC_MEASURE[scale], **({"device": "cuda"} if scale == "paper" else {}),
        "probes": {"hessian_noise": {"num_matvecs": 20, "num_examples": _HC_EXAMPLES[scale], "epoch_end": True}}},
        "grid": {}, "seeds": [0, 1]} for scale in SCALES}


HC_LS_STUDY = study(Study("noise_hc_ls", PAPER, sweeps=_hc_sweeps({"name": "label_smoothing", "smoothing": 0.1}, 0.001,
                                                                  "ls")))
# MSE as torch's nn.MSELoss, the mean over the 10 outputs too: with the sum over them, lr 0.1 diverges in 8 steps
HC_MSE_STUDY = study(Study("noise_hc_mse", PAPER, sweeps=_hc_sweeps({"name": "mse", "class_reduction": "mean"}, 0.1,
                                                                    "mse")))

# --- networks trained by a recorder: App. A.5 (FDR) and §2.1.1 (the projected path) ---------------------------------

_CIFAR_SGD = {"loss": {"name": "label_smoothing", "smoothing": 0.1},
              "optimizer": {"name": "sgd", "lr": 0.1, "momentum": 0.9}}
FDR = {
    "tiny": {"config": {**_CIFAR_SGD, "data": {"name": "digits", "val_size": 200}, "model": {"name": "small_cnn"},
                        "train": {"epochs": 10, "batch_size": 100}, "measure": {"curvature_examples": 256}},
             "seeds": [0, 1]},
    "cpu": {"config": {**_CIFAR_SGD, "data": {"name": "cifar10", "val_size": 1000, "subset": 10000},
                       "model": {"name": "small_cnn"}, "train": {"epochs": 20, "batch_size": 500},
                       "measure": {"curvature_examples": 500, "eval_examples": 1000}}, "seeds": [0, 1]},
    "paper": {"config": {**_CIFAR_SGD, "data": {"name": "cifar10", "val_size": 5000}, "model": {"name": "small_cnn"},
                         "train": {"epochs": 50, "batch_size": 500}, "device": "cuda",
                         "measure": {"curvature_examples": 5000, "curvature_batch": 1000, "eval_examples": 5000}},
              "seeds": [0, 1]},
}
VALLEY = {
    "tiny": {"configs": {"mlp32": {**_CIFAR_SGD, "data": {"name": "digits", "val_size": 200},
                                   "model": {"name": "mlp", "widths": [32]}, "train": {"epochs": 4, "batch_size": 100, "keep_checkpoints": 0},
                                   "measure": {"curvature_examples": 256, "eval_examples": 0}}},
             "seeds": [0, 1], "max_steps": 2000, "matvecs": 20},
    "cpu": {"configs": {"mlp70": {**_CIFAR_SGD, "data": {"name": "cifar10", "val_size": 1000, "subset": 2000, **_GREY},
                                  "model": {"name": "mlp_70"}, "train": {"epochs": 10, "batch_size": 100, "keep_checkpoints": 0},
                                  "measure": {"curvature_examples": 1000, "eval_examples": 0}}},
            "seeds": [0, 1], "max_steps": 3000, "matvecs": 30},
    "paper": {"configs": {name: {**_CIFAR_SGD, "data": {"name": "cifar10", "val_size": 5000}, "model": {"name": name},
                                 "train": {"epochs": 150, "batch_size": 500, "keep_checkpoints": 0}, "device": "cuda",
                                 "measure": {"curvature_examples": 5000, "curvature_batch": 500, "eval_examples": 5000}}
                          for name in ("preact_resnet18", "vgg16")},
              "seeds": [0, 1], "max_steps": 20000, "matvecs": 100},
}


class _Replay(MemorySink):
    """The sink of a run that replays training from a chosen checkpoint of ``folder``:
    :func:`~sgdscope.run.checkpointing.restore` loads ``chosen``, and nothing recorded is dropped."""

    def __init__(self, folder: Path):
        super().__init__()
        self.folder, self.chosen = folder, None

    def latest_checkpoint(self, *, trust: bool = False):
        return self.chosen, *load_checkpoint(self.folder, self.chosen, trust=trust)

    def truncate_after(self, step: int) -> None:
        pass


def _train(cfg: dict, folder: Path, hook=None) -> None:
    """Train ``cfg`` into ``folder`` (resumed from its last checkpoint when unfinished; a finished run is kept)."""
    if not _finished(folder):
        train(cfg, run_dir=folder, resume=folder.is_dir(), progress=False, hook=hook)


def _configs(plan: dict):
    """(run folder name, resolved config) of every model and seed of a plan."""
    names = plan["configs"] if "configs" in plan else {"": plan["config"]}
    for model, base in names.items():
        for seed in plan["seeds"]:
            name = f"{model},seed={seed}" if model else f"seed={seed}"
            yield name, resolve({**base, "name": name, "seed": seed})


class _FDRLog:
    """FDRMonitor fed at every step (the parameters before it, the mini-batch gradient and the
    momentum buffer it used), projected on the top-1 Hessian eigenvector computed at each epoch's
    start; ``log_fdr`` into the run at each epoch's end (a window of one epoch)."""

    def __init__(self):
        self.monitor = None

    def before(self, run):
        problem, tracker = run.scope.problem, run.scope.tracker
        if run.step % run.steps_per_epoch == 0 or self.monitor is None:
            top = lanczos(hessian_op(problem), 1, tol=tracker.lanczos_tol, v0=tracker.eigvecs, generator=tracker.generator)
            tracker.eigvecs = top.vectors.detach().clone()
            self.monitor = FDRMonitor(window=run.steps_per_epoch, basis=top.vectors)
        return problem.theta()

    def after(self, run, theta) -> None:
        problem, group = run.scope.problem, run.optimizer.param_groups[0]
        named = dict(run.parts.model.named_parameters())
        grad = problem.spec.flatten({n: named[n].grad for n in problem.spec.names})
        buffers = {n: run.optimizer.state[named[n]].get("momentum_buffer") for n in problem.spec.names}
        velocity = None if any(b is None for b in buffers.values()) else problem.spec.flatten(buffers)
        self.monitor.update(theta, grad, lr=group["lr"], momentum=group["momentum"], dampening=group["dampening"],
                            velocity=velocity)
        if run.step % run.steps_per_epoch == 0 or run.done:  # the step just taken ended an epoch
            toys.log_fdr(run.sink, run.step - 1, run.step / run.steps_per_epoch, self.monitor.result())


def record_fdr(out, scale: str) -> None:
    """App. A.5, Fig. 6: each seed of :data:`FDR` trained with :class:`_FDRLog` (resumed when unfinished)."""
    for name, cfg in _configs(FDR[scale]):
        _train(cfg, Path(out) / name, _FDRLog())


def _replayer(cfg: dict, folder: Path):
    """``state_at(k)``: the flat parameters after k updates of the run in ``folder``, from its
    checkpoint at or before k (every epoch's end) replayed forward; and the replaying run."""
    run = build_run(cfg, _Replay(folder))
    saved = checkpoint_steps(folder)  # trainer steps t: the state after t + 1 updates

    def state_at(k: int) -> torch.Tensor:
        start = [t for t in saved if t + 1 <= k]
        if not start:
            raise ValueError(f"{folder}: no checkpoint at or before {k} updates; checkpoints after {saved[0] + 1}")
        run.sink.chosen = start[-1]
        restore(run)
        while run.step < k:
            train_step(run)
        return run.scope.problem.theta()

    return state_at, run, [t + 1 for t in saved]


def _chunks(x, y, size: int = 1000) -> list:
    return [(x[i:i + size], y[i:i + size]) for i in range(0, len(y), size)]


def _project(cfg: dict, folder: Path, plan: dict) -> None:
    """The projected path of the run in ``folder`` (its checkpoints at every epoch's end), appended
    to the run with the validation loss and the trace at each projected state."""
    state_at, run, updates = _replayer(cfg, folder)
    data, curvature = run.parts.data, run.scope.problem
    train = curvature.subproblem(_chunks(data.train.x, data.train.y))
    threshold = min(float(train.loss(state_at(k))) for k in updates)  # "the minimal training loss" (§2.1.1)
    opt = cfg["optimizer"]
    path = projected_path(train, state_at, updates, lr=opt["lr"], momentum=opt["momentum"], threshold=threshold,
                          max_steps=plan["max_steps"])
    val = losses_at(curvature.subproblem(_chunks(data.val.x, data.val.y)), path.thetas)
    gen = torch.Generator(device=curvature.device).manual_seed(cfg["seed"])
    trace = trace_along(curvature, path.thetas, num_matvecs=plan["matvecs"], generator=gen)
    toys.record_valley_path(path, folder, val_loss=val, trace=trace, steps_per_epoch=run.steps_per_epoch, append=True)


def record_valley(out, scale: str) -> None:
    """§2.1.1, §4.3, Fig. 1 and 3: each model and seed of :data:`VALLEY` trained (every epoch's
    checkpoint kept), then its projected path appended (unless the run holds one already)."""
    plan = VALLEY[scale]
    for name, cfg in _configs(plan):
        folder = Path(out) / name
        _train(cfg, folder)
        if read_status(folder)["state"] == "done" and "valley_path" not in read_probes(folder):
            _project(cfg, folder, plan)


FDR_STUDY = study(Study("noise_fdr", PAPER, record=record_fdr))
VALLEY_STUDY = study(Study("noise_valley", PAPER, record=record_valley))


# --- Fig. 2b: the trace change against eta^2 ---------------------------------------------------------------------------

def _trace_rate_run(frame, run: str):
    slope, intercept = _last(frame, run, "trace_rate/slope"), _last(frame, run, "trace_rate/intercept")
    r2, predicted = _last(frame, run, "trace_rate/r2"), _last(frame, run, "trace_rate/predicted_slope")
    eta = max(frame.loc[frame["run"] == run, "experiment.etas"].iloc[0])
    ratio, origin = slope / predicted, abs(intercept) / abs(slope * eta**2)
    numbers = {"slope": slope, "predicted_slope": predicted, "ratio": ratio, "intercept": intercept, "r2": r2,
               "intercept_share": origin}
    text = (f"slope {slope:.4g} (eq. 15: {predicted:.4g}, ratio {ratio:.3g}), intercept {intercept:.3g} "
            f"({origin:.1%} of the change at eta = {eta:g}), R^2 {r2:.3f}")
    return bool(slope < 0 and r2 >= _LINEAR_R2 and abs(ratio - 1) <= _THEORY and origin <= _ORIGIN), text, numbers


@claim("noise.trace_rate_eta2", paper=PAPER, where="§4.2, eq. 15, Fig. 2b",
       statement="under SGD noise the trace of the Hessian changes proportionally to eta^2 over the measured steps, "
                 "at the rate eq. 15 predicts (-(steps / 4) s |grad T|^2 eta^2)",
       study="noise_trace_rate", figure="noise.fig2b",
       rule=f"per run (seed), the least-squares line of the trace change against eta^2 (trace_rate/slope, intercept, r2) "
            f"and eq. 15's slope (trace_rate/predicted_slope): the run shows it when slope < 0, R^2 >= {_LINEAR_R2}, "
            f"|slope / predicted - 1| <= {_THEORY} and |intercept| <= {_ORIGIN} |slope| max(eta)^2 (a line through "
            f"the origin). Holds if every run shows it; does not hold if none does; inconclusive if they disagree",
       paper_numbers="no number in the text; Fig. 2b (L = |t3 + t4| t1^2 + |t3 + 2 t4| t2^2, 1000 iterations to "
                     "equilibrate, 1000 measured): 'the trace evolution rate is proportional to eta^2 ... which shows "
                     "a linear relation as predicted'")
def trace_rate_eta2(frame, scale):
    return _verdict(frame, _trace_rate_run, what="a trace change linear in eta^2 through the origin at eq. 15's slope",
                    summary=lambda ns: (f"slope / eq. 15: {_spread(n['ratio'] for n in ns)}; "
                                        f"R^2: {_spread(n['r2'] for n in ns)}"))


# --- Fig. 2c-d: SGD-like against isotropic noise ------------------------------------------------------------------------

def _lowers(frame, run: str, kind: str, other: str, quantity: str):
    """(lowered, numbers): the chain mean of ``quantity`` under noise ``kind`` falls by more than
    _SIGMA standard errors from the first to the last recorded step, and ends below ``other``'s."""
    _, v = _values(frame, run, f"noise_structure/{kind}_{quantity}")
    se = _last(frame, run, f"noise_structure/{kind}_{quantity}_stderr")
    end_other = _last(frame, run, f"noise_structure/{other}_{quantity}")
    lowered = bool(v[-1] < v[0] - _SIGMA * se and v[-1] < end_other)
    return lowered, {"first": float(v[0]), "last": float(v[-1]), "stderr": se, "last_other": end_other}


def _structure_run(frame, run: str):
    trace, t = _lowers(frame, run, "sgd", "isotropic_subspace", "trace")
    det, d = _lowers(frame, run, "isotropic_subspace", "sgd", "det")
    text = (f"SGD noise: trace {t['first']:.4g} -> {t['last']:.4g} +- {t['stderr']:.2g} (isotropic: "
            f"{t['last_other']:.4g}); isotropic noise: det {d['first']:.4g} -> {d['last']:.4g} +- {d['stderr']:.2g} "
            f"(SGD: {d['last_other']:.4g})")
    return trace and det, text, {"sgd_trace": t, "isotropic_det": d}


@claim("noise.noise_structure", paper=PAPER, where="§3 Theorem 1, Corollary 2.1, §4.2, Fig. 2c-d",
       statement="SGD-like noise lowers the trace of the Hessian while isotropic noise in the non-degenerate subspace "
                 "lowers its determinant (on a toy where the two are anti-correlated)",
       study="noise_structure", figure="noise.fig2cd",
       rule=f"per run (seed), with the chain means at the first and last recorded steps: under SGD noise the trace "
            f"(noise_structure/sgd_trace) falls by more than {_SIGMA:g} standard errors (of its last value) and ends "
            f"below the trace under isotropic noise; under isotropic noise the determinant (isotropic_subspace_det) "
            f"falls by more than {_SIGMA:g} standard errors and ends below the determinant under SGD noise. The run shows "
            f"it when all four hold. Holds if every run shows it; does not hold if none does; inconclusive if they "
            f"disagree",
       paper_numbers="no number in the text; Fig. 2c-d (L = (4 - 2 exp(-t3^2 - t4^2)) t1^2 + exp(-(t3 - t4)^2) t2^2, "
                     "20,000 iterations): SGD noise (red) lowers the trace, isotropic noise (blue) the determinant, "
                     "'consistent with our analysis'")
def noise_structure(frame, scale):
    def summary(ns):
        t, d = [n["sgd_trace"] for n in ns], [n["isotropic_det"] for n in ns]
        return (f"last trace under SGD noise: {_spread(x['last'] for x in t)}, under isotropic: "
                f"{_spread(x['last_other'] for x in t)}; last det under isotropic noise: {_spread(x['last'] for x in d)}, "
                f"under SGD: {_spread(x['last_other'] for x in d)}")

    return _verdict(frame, _structure_run, what="SGD noise lowering the trace and isotropic noise the determinant",
                    summary=summary)


# --- Fig. 7: the sloped valley's stationary theta_2 -----------------------------------------------------------------

def _slope_run(frame, run: str):
    mean, se = _last(frame, run, "valley_slope/stationary"), _last(frame, run, "valley_slope/stationary_stderr")
    gd, predicted = _last(frame, run, "valley_slope/gd_theta_2"), _last(frame, run, "valley_slope/predicted")
    band = _BAND * abs(_THETA2)
    numbers = {"stationary": mean, "stderr": se, "gd_theta_2": gd, "predicted": predicted}
    text = f"stationary theta_2 {mean:.4g} +- {se:.2g} (eq. 38 for our settings: {predicted:.4g}), GD ends at {gd:.4g}"
    if not _SIGMA * se <= band:
        return f"too imprecise: {_SIGMA:g} standard errors ({_SIGMA * se:.2g}) exceed the band {band:g}", text, numbers
    return bool(abs(mean - _THETA2) <= band and gd < _THETA2 - band), text, numbers


@claim("noise.valley_slope_theta2", paper=PAPER, where="App. A.6, eq. 38, Fig. 7",
       statement="on the sloped valley L = 1/2 (theta_2^2 + 1) theta_1^2 + alpha theta_2, noisy GD stops at the "
                 "stationary theta_2 = -2 alpha / (eta s) = -0.02, where the entropic force balances the slope, while GD "
                 "keeps sliding down",
       study="noise_slope", figure="noise.fig7",
       rule=f"per run (seed): the chains' mean theta_2 over the last third of the run (valley_slope/stationary, with its "
            f"standard error over chains) within {_BAND:.0%} of the paper's {_THETA2} and GD's last theta_2 "
            f"(valley_slope/gd_theta_2) below that band; a run whose {_SIGMA:g} standard errors exceed the band cannot "
            f"tell. Holds if every run shows it; does not hold if none does; inconclusive if they disagree or a run "
            f"cannot tell",
       paper_numbers="App. A.6: alpha = 1e-4, eta = 0.01, s = 1, start (0.1, 0.1): 'From 38 it is easy to show that "
                     "<theta_2> = -0.02, which is consistent with the right column of Figure 7'; GD: 'theta_2 continues "
                     "decreasing to negative infinity'")
def valley_slope_theta2(frame, scale):
    return _verdict(frame, _slope_run, what=f"a stationary theta_2 within {_BAND:.0%} of {_THETA2} with GD below it",
                    summary=lambda ns: (f"stationary theta_2: {_spread(n['stationary'] for n in ns)} (paper {_THETA2}); "
                                        f"GD's last theta_2: {_spread(n['gd_theta_2'] for n in ns)}"))


# --- Fig. 2a: negative eigenvalues against the training loss ---------------------------------------------------------

def _negative_run(frame, run: str):
    slope, intercept = _last(frame, run, "negative_sum/slope"), _last(frame, run, "negative_sum/intercept")
    r2 = _last(frame, run, "negative_sum/r2")
    base, base_loss = _last(frame, run, "negative_sum/base_negative_sum"), _last(frame, run, "negative_sum/base_loss")
    numbers = {"slope": slope, "intercept": intercept, "r2": r2, "base_negative_sum": base, "base_loss": base_loss}
    text = (f"w {slope:.4g}, b {intercept:.3g}, R^2 {r2:.3f} (at the minimum: L* {base_loss:.4g}, "
            f"negative sum {base:.2g})")
    return bool(slope < 0 and r2 >= _LINEAR_R2), text, numbers


def _intercept_test(intercepts: list[float]) -> tuple[str | bool, str]:
    """Is the mean intercept over seeds within _SIGMA standard errors of 0? (True / False, or why not testable)."""
    b = np.asarray(intercepts, dtype=float)
    if len(b) < _MIN_SEEDS:
        return f"the intercept needs at least {_MIN_SEEDS} seeds, got {len(b)}", ""
    se = b.std(ddof=1) / math.sqrt(len(b))
    t = abs(b.mean()) / se if se > 0 else (0.0 if b.mean() == 0 else math.inf)
    return bool(t <= _SIGMA), f"intercept {b.mean():.3g} +- {se:.2g} (standard error over {len(b)} seeds, |t| = {t:.2g})"


@claim("noise.negative_sum_loss", paper=PAPER, where="§4.1, App. A.3, Fig. 2a",
       statement="near a true minimum, the sum of the negative Hessian eigenvalues is proportional to the training loss "
                 "(above the minimum's): a straight line through the origin with a negative slope",
       study="noise_negative", figure="noise.fig2a",
       rule=f"each run (seed) starts at a true minimum (gradient descent to a gradient norm <= {_GRAD_TOL:g}; the study "
            f"refuses a start that did not reach it) and fits negative_sum = w (L - L*) + b over its snapshots "
            f"(negative_sum/slope, intercept, r2). A run shows a line when w < 0 and R^2 >= {_LINEAR_R2}. Holds if every "
            f"run shows it and the mean intercept over the seeds is within {_SIGMA:g} standard errors (over seeds) of 0; "
            f"does not hold if no run shows a line, or every run does and the intercept is further from 0; "
            f"inconclusive if the runs disagree or there are fewer than {_MIN_SEEDS} seeds",
       paper_numbers="Fig. 2a (MNIST, 500 examples, a one-hidden-layer net of 6220 parameters, label smoothing; batch "
                     "sizes 5-250, lr 0.001-0.1): best fit y = w x + b with w = -40.07, b = 1.22e-5: 'the data is nearly "
                     "a straight line and the y-intercept is almost zero'")
def negative_sum_loss(frame, scale):
    v = _verdict(frame, _negative_run, what=f"a line with w < 0 and R^2 >= {_LINEAR_R2}",
                 summary=lambda ns: (f"w: {_spread(n['slope'] for n in ns)}; b: {_spread(n['intercept'] for n in ns)}; "
                                     f"R^2: {_spread(n['r2'] for n in ns)}"))
    if v.verdict != "holds":
        return v
    zero, text = _intercept_test([n["intercept"] for n in v.numbers["runs"].values()])
    v.numbers["intercept"] = text
    if isinstance(zero, str):
        return Verdict("inconclusive", v.ours, zero, v.numbers)
    if not zero:
        return Verdict("does not hold", v.ours, f"every run is a line, but not through the origin: {text}", v.numbers)
    return Verdict("holds", v.ours, f"every run is a line through the origin: {text}", v.numbers)


# --- App. A.4, Fig. 5: CS(H, C) after the early phase -------------------------------------------------------------------

def _alignment_run(frame, run: str):
    epochs, cs = _values(frame, run, "hessian_noise/cosine")
    late = cs[epochs > _EARLY_EPOCHS + 1e-9]
    numbers = {"epochs": epochs.tolist(), "cosine": cs.tolist(), "late_mean": float(late.mean()) if len(late) else math.nan,
               "late_min": float(late.min()) if len(late) else math.nan}
    text = (f"CS after epoch {_EARLY_EPOCHS}: min {numbers['late_min']:.3f}, mean {numbers['late_mean']:.3f} over "
            f"{len(late)} epochs (at the first probe: {cs[0]:.3f})" if len(cs) else "no CS(H, C) recorded")
    if not len(late):
        return f"too few probe points (none after epoch {_EARLY_EPOCHS})", text, numbers
    above = int((late > _CS).sum())
    if 0 < above < len(late):
        return f"epochs disagree: CS > {_CS} at {above} of {len(late)} probed epochs after epoch {_EARLY_EPOCHS}", text, numbers
    return above == len(late), text, numbers


def _alignment(frame, scale):
    return _verdict(frame, _alignment_run, what=f"CS(H, C) > {_CS} at every probed epoch after epoch {_EARLY_EPOCHS}",
                    summary=lambda ns: (f"mean CS(H, C) after epoch {_EARLY_EPOCHS}: {_spread(n['late_mean'] for n in ns)}; "
                                        f"least: {_spread(n['late_min'] for n in ns)}"))


_ALIGNMENT_RULE = (f"per run, CS(H, C) (hessian_noise/cosine, C from per-example gradients, H from Hessian-vector "
                   f"products, at every epoch's end) at the probed epochs after the early phase (epoch > {_EARLY_EPOCHS}, "
                   f"§2): the run shows it when every value is > {_CS}, does not when none is, cannot tell when some are "
                   f"(or none was probed). Holds if every run shows it; does not hold if none does; inconclusive "
                   f"otherwise or if a run did not finish")
_ALIGNMENT_PAPER = ("App. A.4, Fig. 5 (CIFAR-10 as 7 x 7 grey images, one hidden layer of 70 units, S = 512): 'in both "
                    "cases the cosine similarity between the Hessian and noise covariance is larger than 0.9 after "
                    "several epochs of initial training'; two random matrices of that size: about 0")
for _key, _study, _what in (("label_smoothing", "noise_hc_ls", "label-smoothed cross entropy, lr 0.001"),
                            ("mse", "noise_hc_mse", "mean-squared error, lr 0.1")):
    claim(f"noise.hc_alignment_{_key}", paper=PAPER, where="§2.1.2, App. A.4, Fig. 5", study=_study,
          figure="noise.fig5", rule=_ALIGNMENT_RULE, paper_numbers=_ALIGNMENT_PAPER,
          statement=f"after the early phase of training the gradient-noise covariance C is aligned with the Hessian H: "
                    f"CS(H, C) > 0.9 ({_what})")(_alignment)


# --- App. A.5, Fig. 6: timescale separation ---------------------------------------------------------------------------

def _first_below(epochs, values, threshold: float):
    below = np.flatnonzero(values < threshold)
    return float(epochs[below[0]]) if len(below) else None


def _epoch(e) -> str:
    return "never" if e is None else f"{e:g}"


def _fdr_run(frame, run: str):
    epochs, raw = _values(frame, run, "fdr/ratio")
    sub_epochs, sub = _values(frame, run, "fdr/ratio_subspace")
    e_sub, e_raw = _first_below(sub_epochs, sub, _YAIDA), _first_below(epochs, raw, _YAIDA)
    last = float(epochs[-1]) if len(epochs) else math.nan
    numbers = {"top1_below_at": e_sub, "raw_below_at": e_raw, "epochs": last,
               "top1_last": float(sub[-1]) if len(sub) else math.nan, "raw_last": float(raw[-1]) if len(raw) else math.nan}
    text = (f"top-1 below {_YAIDA:g} from epoch {_epoch(e_sub)}, raw from epoch {_epoch(e_raw)} (of {last:g}; "
            f"last values: top-1 {numbers['top1_last']:.2g}, raw {numbers['raw_last']:.2g})")
    if e_sub is None:
        return False, text, numbers
    if e_raw is not None:
        return e_raw >= _LONG * e_sub, text, numbers
    if last < _LONG * e_sub:
        return f"too short: the raw space was not below {_YAIDA:g} by epoch {last:g} < {_LONG} x {e_sub:g}", text, numbers
    return True, text, numbers


@claim("noise.fdr_timescales", paper=PAPER, where="§2.1.3, App. A.5, Fig. 6",
       statement="timescale separation: |O_L / O_R - 1| falls below 1e-2 in the top-1 Hessian eigenspace long before "
                 "it does in the raw parameter space",
       study="noise_fdr", figure="noise.fig6",
       rule=f"per run, |O_L / O_R - 1| over each epoch (fdr/ratio_subspace on the top-1 eigenvector, fdr/ratio in the raw "
            f"space): e_top = the first epoch with the top-1 value < {_YAIDA:g}, e_raw the same for the raw space. The "
            f"run shows it when e_top exists and e_raw >= {_LONG} e_top, or the raw space never gets below {_YAIDA:g} in a "
            f"run of at least {_LONG} e_top epochs; it does not when the top-1 value never gets below {_YAIDA:g} or "
            f"e_raw < {_LONG} e_top; a shorter run without e_raw cannot tell. Holds if every run shows it; does not hold "
            f"if none does; inconclusive otherwise or if a run did not finish",
       paper_numbers="App. A.5, Fig. 6 (a small CNN on CIFAR-10): 'After several epochs, |O_L/O_R - 1| in top-1 subspace "
                     "is already less then 10^-2 ... while the state in the whole parameter space is still far from "
                     "equilibrium after 50 epoch of training'")
def fdr_timescales(frame, scale):
    def first(ns, key):
        return _spread(math.nan if n[key] is None else n[key] for n in ns)

    return _verdict(frame, _fdr_run, what=f"the top-1 subspace below {_YAIDA:g} long before the raw space",
                    summary=lambda ns: (f"first epoch below {_YAIDA:g}, top-1: {first(ns, 'top1_below_at')}; raw: "
                                        f"{first(ns, 'raw_below_at')}; last raw value: {_spread(n['raw_last'] for n in ns)}"))


# --- §2.1.1, §4.3, Fig. 1 and 3: the projected path ---------------------------------------------------------------------

def _connected_run(frame, run: str):
    _, connected = _values(frame, run, "valley_path/connected")
    _, converged = _values(frame, run, "valley_path/converged")
    _, loss = _values(frame, run, "valley_path/train_loss")
    broken, missed = int((connected < 0.5).sum()), int((converged < 0.5).sum())
    numbers = {"states": len(converged), "pairs": len(connected), "not_connected": broken, "not_converged": missed,
               "max_train_loss": float(loss.max()) if len(loss) else math.nan}
    text = (f"{len(converged)} projected states, {broken} of {len(connected)} consecutive pairs not line connected, "
            f"training loss on the path <= {numbers['max_train_loss']:.4g}")
    if missed:
        return f"{missed} of {len(converged)} projections did not reach the threshold (no minimum)", text, numbers
    if not len(connected):
        return "too few projected states (fewer than two)", text, numbers
    return broken == 0, text, numbers


@claim("noise.valley_connected", paper=PAPER, where="§2.1.1, Fig. 1",
       statement="the states of SGD projected to nearby minima (full-batch GD to below the least training loss) form a "
                 "line-connected path: SGD moves within a minimal valley",
       study="noise_valley", figure="noise.fig1",
       rule="per run, the projected path (checkpoints at every epoch's end; between two projections that are not line "
            "connected, on 10 evenly spaced points below the threshold, the state halfway is projected too, down to "
            "adjacent steps): the run cannot tell if a projection did not reach the threshold; it shows it when every "
            "consecutive pair is line connected (valley_path/connected = 1), does not when some pair of adjacent steps "
            "is not. Holds if every run shows it; does not hold if none does; inconclusive otherwise or if a run did "
            "not finish",
       paper_numbers="Fig. 1 (PreAct-ResNet18, VGG16 on CIFAR-10, 150 epochs; 2700 and 4020 projected points): 'after a "
                     "few epochs, the training loss along the path remains close to zero ... there exists at least one "
                     "minimal valley connected to the model state found by regular SGD'")
def valley_connected(frame, scale):
    return _verdict(frame, _connected_run, what="a line-connected projected path",
                    summary=lambda ns: (f"projected states: {_spread(n['states'] for n in ns)}; pairs not connected: "
                                        f"{_spread(n['not_connected'] for n in ns)}"))


def _trend_run(frame, run: str):
    s = series(frame, "valley_path/trace", run=run).dropna(subset=["value"])
    epochs, trace = s["epoch"].to_numpy(dtype=float), s["value"].to_numpy(dtype=float)
    unit = "epoch" if np.isfinite(epochs).all() else "step"
    x = epochs if unit == "epoch" else s["step"].to_numpy(dtype=float)
    numbers = {"states": len(trace), "first": float(trace[0]) if len(trace) else math.nan,
               "last": float(trace[-1]) if len(trace) else math.nan}
    if len(trace) < _MIN_STATES:
        return f"too few projected states ({len(trace)})", f"{len(trace)} projected states", numbers
    fit = toys.fit_line(torch.tensor(x), torch.tensor(trace))
    t = math.inf if fit.r2 >= 1 else math.sqrt(max(fit.r2, 0.0) * (len(trace) - 2) / (1 - fit.r2))
    numbers.update(slope=fit.slope, unit=unit, t=t)
    text = (f"Tr H {numbers['first']:.4g} -> {numbers['last']:.4g} over {len(trace)} states, slope "
            f"{fit.slope:.3g} per {unit} (|t| = {t:.2g})")
    if t < _SIGMA:
        return f"no trend beyond {_SIGMA:g} standard errors (|t| = {t:.2g})", text, numbers
    return fit.slope < 0, text, numbers


@claim("noise.valley_trace", paper=PAPER, where="§4.3, Fig. 3",
       statement="the Hessian trace decreases on average along the projected path (Theorem 1 in a minimal valley)",
       study="noise_valley", figure="noise.fig3",
       rule=f"per run, the least-squares line of Tr H (valley_path/trace, Hutchinson on the curvature subset) against the "
            f"training step over the projected states (at least {_MIN_STATES}): the run shows it when the slope is "
            f"negative beyond {_SIGMA:g} standard errors (|t| = sqrt(R^2 (n - 2) / (1 - R^2)) >= {_SIGMA:g}), does not "
            f"when it is positive beyond them, cannot tell otherwise. Holds if every run shows it; does not hold if none "
            f"does; inconclusive otherwise or if a run did not finish",
       paper_numbers="Fig. 3 (PreAct-ResNet18, VGG16; mean and standard deviation over 10 initializations): 'the Hessian "
                     "trace indeed decreases on average in both cases'")
def valley_trace(frame, scale):
    return _verdict(frame, _trend_run, what="a falling trace along the projected path",
                    summary=lambda ns: (f"Tr H at the first projected state: {_spread(n['first'] for n in ns)}, at the "
                                        f"last: {_spread(n['last'] for n in ns)}"))
