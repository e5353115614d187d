"""The studies of the noise paper's claims (:mod:`sgdscope.reproduce.noise`): the toys' recorders,
the CS(H, C) sweeps, and the networks a recorder trains itself (an FDR monitor fed at every step;
the projected path from every epoch's checkpoint). Each study is registered by name; the claims
read its runs. Scales and settings: the docstring of :mod:`sgdscope.reproduce.noise`.
"""
from __future__ import annotations

import contextlib
from pathlib import Path

import torch

from .. import toys
from ..landscape import losses_at, projected_path, trace_along
from ..linalg import lanczos
from ..operators import hessian_op
from ..optim import FDRMonitor
from ..run import build_run, resolve, restore, train, train_step
from ..store import MemorySink, checkpoint_steps, load_checkpoint, read_probes, read_status
from ..store.layout import STATUS
from .claim import SCALES, Study, study

__all__ = []

PAPER = "Noise and the Hessian spectrum"


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
GRAD_TOL = 1e-6
NEGATIVE = {
    "tiny": {"settings": {"lrs": [0.02, 0.05, 0.1], "batch_sizes": [2, 8], "steps": 600, "grad_tol": GRAD_TOL},
             "seeds": [0, 1, 2]},
    "cpu": {"settings": {"lrs": [0.01, 0.02, 0.05, 0.1], "batch_sizes": [2, 5, 10], "steps": 1000,
                         "grad_tol": GRAD_TOL}, "seeds": [0, 1, 2, 3, 4]},
    "paper": {"settings": {"num_examples": 500, "lrs": [0.001, 0.01, 0.03, 0.1], "batch_sizes": [5, 25, 100, 250],
                           "steps": 5000, "snapshot_every": 500, "grad_tol": GRAD_TOL}, "seeds": [0, 1, 2, 3, 4]},
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
    if not result.base_grad_norm <= GRAD_TOL:
        raise ValueError(f"noise_negative, seed {seed}: the start is not a minimum: gradient norm "
                         f"{result.base_grad_norm:.3g} > {GRAD_TOL:g} after {result.gd_steps} GD steps")


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
        "grid": {}, "seeds": [0, 1, 2] if scale == "cpu" else [0, 1]} for scale in SCALES}


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
                        "train": {"epochs": 20, "batch_size": 100}, "measure": {"curvature_examples": 256}},
             "seeds": [0, 1]},
    "cpu": {"config": {**_CIFAR_SGD, "data": {"name": "cifar10", "val_size": 1000, "subset": 5000},
                       "model": {"name": "small_cnn"}, "train": {"epochs": 60, "batch_size": 500},
                       "measure": {"curvature_examples": 500, "eval_examples": 1000}}, "seeds": [0, 1, 2]},
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
            "seeds": [0, 1, 2], "max_steps": 3000, "matvecs": 30},
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
