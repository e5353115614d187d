"""The Break-Even Point (Jastrzebski et al. 2020): Conjectures 1 and 2 over the learning rate, the
batch size and momentum, the early phase of Fig. 2, and batch normalisation (§4.3).

Studies (a sweep at each scale; ``tiny``: scikit-learn's real digits, seconds per run, 2 seeds;
``cpu``: real Fashion-MNIST or a CIFAR-10 subset, minutes on 2 cores; ``paper``: the paper's own
settings on CIFAR-10, ``device = "cuda"``):

* ``be_lr``: the learning rate. tiny: MLP 64-64, lr 0.12 / 0.2, 4 epochs; cpu: the paper's MLP
  300-100 (App. D) on Fashion-MNIST, lr 0.03 / 0.1, 3 epochs, K from 25 mini-batches of the
  training batch size (§4.2: "the same batch size as the one used to train the model"); paper:
  SimpleCNN, lr 0.001 / 0.01 / 0.1, 3 seeds. Read by Conjectures 1-2 and by Fig. 2 (§4.1 studies
  the early phase on the same runs: SimpleCNN at eta = 0.01 and 0.001).
* ``be_bs``: the batch size S = 10 / 100 at lr 0.05 (App. D: "When varying the batch size, we use
  a learning rate of 0.05"), K always at M = 128 (§4.2: "We use the batch size of 128 to compute K
  when we vary the batch size"). Probes log-spaced in steps plus each epoch's end, so runs with
  ten times more steps get about as many probe points. tiny: lr 0.15, 6 epochs; cpu: 3 epochs.
* ``be_momentum``: SGD momentum 0.1 / 0.5 / 0.9 (App. F; tiny: 0.1 / 0.9), lr 0.1 at cpu (3 epochs)
  and 0.15 at tiny (4 epochs), the rest as ``be_lr``. App. F does not give its learning rate; ours
  are chosen so that the runs reach the heavy-ball edge (2 + 2 beta) / eta.
* ``be_bn``: SimpleCNN-BN (§4.3), lr 0.001 / 0.01 / 0.1 / 1.0 at the paper scale (cpu: 0.1 / 1.0,
  a SimpleCNN-BN of 16 filters and 64 dense units on 5,000 CIFAR-10 images, 6 epochs; tiny: 0.01 /
  1.0, 8 filters on the 8 x 8 digits), curvature and K with each batch's own statistics
  (``bn_mode = "train"``), ||gamma|| of the last batch-norm layer.

Windows. The maxima of Conjectures 1-2 leave out the initial transient: over the learning rate and
momentum the first probed step (``after_step``), as at initialisation K and H are not yet shaped by
the learning rate; over the batch size the first 0.1 epoch (``after_epoch``), the same number of
examples at every S (a run with S = 10 takes ten times more steps to leave its initialisation).
"Early" (||gamma||, §4.3) is the first epoch; "ends" (conditioning, §4.3) the second half of the
epochs, averaged over its probed steps since ||g||/||g_5|| is one mini-batch's.
"""
from __future__ import annotations

import math

import numpy as np

from ..analysis import compare, correlation_before_peak, moving_average, peak, series
from ..quantities import (BATCH_SIZE as BS, DELTA_L, G_RATIO, GAMMA_LAST as GAMMA, LAMBDA_H, LAMBDA_K, LR, MOMENTUM,
                          RATIO_K as RATIO, STABILITY, STABILITY_LAMBDA, TRACE_K, TRAIN_ACCURACY)
from .claim import Study, Verdict, claim, study
from .regime import Precondition, RunRegime, peak_inside, probed_at_least, reaches, run_value, trajectory
from .rules import after_epoch, after_step, describe, every_finished_run, ordered, ordering, runs, second_half, unfinished

__all__ = ["BREAK_EVEN_REACHED", "BREAK_EVEN_PASSED", "ACCURACY_REACHED"]

# --- the studies: one base per scale, each study its own changes to it ------------------------------------------

_BASES = {
    "tiny": {"data": {"name": "digits", "val_size": 200}, "model": {"name": "mlp", "widths": [64, 64]},
             "measure": {"curvature_examples": 256, "eval_examples": 500}, "train": {"eval_examples": 200}},
    "cpu": {"data": {"name": "fashion_mnist", "val_size": 5000, "normalize": False},
            "model": {"name": "mlp", "widths": [300, 100]},
            "measure": {"curvature_examples": 2560, "curvature_batch": 512, "eval_examples": 2000},
            "train": {"eval_examples": 1000}},
    "paper": {"data": {"name": "cifar10", "val_size": 5000, "augment": True}, "model": {"name": "simplecnn"},
              "device": "cuda", "measure": {"curvature_examples": 2500, "curvature_batch": 500, "eval_examples": 5000}},
}
_SEEDS = {"tiny": [0, 1], "cpu": [0, 1, 2], "paper": [0, 1, 2]}


def _merge(base: dict, changes: dict) -> dict:
    """``base`` with ``changes``: a section (a dict) is updated key by key, unless it names another thing
    (another data set or model: its ``name`` differs) or is ``probes``; then, like anything else, replaced."""
    out = dict(base)
    for k, v in changes.items():
        same = isinstance(v, dict) and isinstance(out.get(k), dict) and v.get("name", out[k].get("name")) == out[k].get("name")
        out[k] = {**out[k], **v} if same and k != "probes" else v
    return out


def _sweeps(name: str, scales: dict) -> dict:
    """``{scale: {"config", "grid", "seeds"}}`` from each scale's ``(changes to the base, grid)``."""
    return {scale: {"config": _merge(_BASES[scale], {"name": f"{name}-{scale}", **changes}), "grid": grid,
                    "seeds": _SEEDS[scale]} for scale, (changes, grid) in scales.items()}


def _probes(every: int | None = None, *, k_batch: int | None = None, spaced: int | None = None, **extra) -> dict:
    """The Break-Even instruments on one schedule (``every`` steps, or ``spaced`` log-spaced steps and every
    epoch's end): lambda_H^1, the K spectrum (25 mini-batches; of size ``k_batch``, else the training batch
    size), Delta L, the stability quantity of Eq. 1 and the training accuracy; ``extra`` adds or replaces tables."""
    when = {"every": every} if spaced is None else {"log_spaced": spaced, "epoch_end": True}
    noise = {"num_batches": 25, **({"batch_size": k_batch} if k_batch else {})}
    tables = {"top_eigenvalues": {"k": 1}, "gradient_noise": noise, "loss_change": {}, "stability": {},
              "evaluation": {}, **extra}
    return {kind: {**when, **args} for kind, args in tables.items()}


LR_STUDY = study(Study("be_lr", "Break-Even", sweeps=_sweeps("be-lr", {
    "tiny": ({"optimizer": {"name": "sgd", "lr": 0.12}, "train": {"epochs": 4, "batch_size": 32}, "probes": _probes(5)},
             {LR: [0.12, 0.2]}),
    "cpu": ({"optimizer": {"name": "sgd", "lr": 0.03}, "train": {"epochs": 3, "batch_size": 128},
             "probes": _probes(spaced=40)}, {LR: [0.03, 0.1]}),
    "paper": ({"optimizer": {"name": "sgd", "lr": 0.01}, "train": {"epochs": 200, "batch_size": 128},
               "probes": _probes(100)}, {LR: [0.001, 0.01, 0.1]}),
})))

_AFTER = {"tiny": 5, "cpu": 1, "paper": 100}  # the first probed step (step 0) is left out of the maxima


# --- the regime (§3): the break-even point reached, the maxima inside the runs, the accuracy of §4.1 -----------------

def _break_even(frame, scale, *, passed: bool = False) -> dict:
    """Per run: the break-even point reached from a stable start; ``passed``: also a run unstable from its start on
    (beyond the break-even point from the first probed step)."""
    out = {}
    for run in runs(frame):
        lr, beta = run_value(frame, run, LR), run_value(frame, run, MOMENTUM, 0.0)
        lam = trajectory(frame, run, STABILITY_LAMBDA)[["step", "value"]]
        lhs = series(frame, STABILITY, run=run)[["step", "value"]] if len(lam) else lam  # NaN values kept
        both = lam.merge(lhs, on="step", how="left", suffixes=("_lam", "_lhs")).dropna(subset=["value_lam"])
        if not len(both) or math.isnan(lr):
            out[run] = RunRegime(False, f"{STABILITY_LAMBDA} not recorded", {})
            continue
        lam_v, lhs_v = both["value_lam"].to_numpy(float), both["value_lhs"].to_numpy(float)
        noise = lhs_v - (1 - lr * lam_v) ** 2  # s^2 eta^2 (N - S) / (S (N - 1)); NaN where s^2 was not measured
        unmeasured = bool(np.isnan(noise).any())
        # heavy-ball momentum beta: the edge of a quadratic is lambda = (2 + 2 beta) / eta, that of plain SGD at
        # eta / (1 + beta); beta = 0 gives Eq. 1 as the stability probe stored it
        edge = (1 - lr * lam_v / (1 + beta)) ** 2 + np.nan_to_num(noise) / (1 + beta) ** 2
        steps = both["step"].to_numpy()
        # the break-even point: the LHS reaching 1 from below, SGD stable at the first probed step (§3 takes training
        # initialised where SGD is stable along e_H^1; a run unstable at its start is App. B's other case)
        later = np.flatnonzero(edge >= 1) if edge[0] < 1 else np.array([], int)
        i = int(np.argmax(edge))
        top = float(lr * lam_v.max())
        if len(later):
            where = f"{edge[0]:.3g} at step {int(steps[0])}, reaches 1 at step {int(steps[later[0]])}"
        elif edge[0] >= 1:
            where = f"{edge[0]:.3g} >= 1 already at the first probed step {int(steps[0])}: unstable from the start"
        else:
            where = "stays below 1"
        measured = (f"Eq. 1 LHS {where} (max {edge[i]:.3g} at step {int(steps[i])}); eta * max lambda_H^1 = {top:.3g}"
                    + (f" (the heavy-ball edge is {2 + 2 * beta:g})" if beta else " (the full-batch edge is 2)")
                    + ("; s^2 not measured at some steps: the noise term left out there" if unmeasured else ""))
        inside = bool(len(later)) or (passed and edge[0] >= 1)
        out[run] = RunRegime(inside, measured, {
            "max_lhs": float(edge[i]), "eta_lambda": top, "first_lhs": float(edge[0]),
            "break_even_step": int(steps[later[0]]) if len(later) else None})
    return out


BREAK_EVEN_REACHED = Precondition(
    "break_even_reached",
    "§3: 'Assuming that real DNNs reach the break-even point', the point where the LHS of Eq. 1 first reaches 1 "
    "(for S = N: lambda_H^1 = 2 / eta)",
    "the LHS of Eq. 1, (1 - eta lambda_H^1)^2 + s^2 eta^2 (N - S) / (S (N - 1)) from the stability probe, is below 1 "
    "at the first probed step (SGD stable along e_H^1 at the start, as §3 assumes) and reaches 1 at a later one (with "
    "heavy-ball momentum beta, at eta / (1 + beta): the edge lambda_H^1 = (2 + 2 beta) / eta; where s^2 cannot be measured, batch norm in train mode, the noise term is left out, a sufficient test)",
    "train longer or raise the learning rate", _break_even)

ACCURACY = 0.6  # §4.1: the maxima are found "close to reaching 60% training accuracy on CIFAR-10" (10 classes here too)
ACCURACY_REACHED = reaches(TRAIN_ACCURACY, ACCURACY, key="accuracy_reached", what="training accuracy",
                           paper="§4.1: lambda_K^1 and lambda_H^1 'reach their highest values early in training, close to "
                                 "reaching 60% training accuracy on CIFAR-10' (every study here has 10 classes)",
                           remedy="train longer")
BREAK_EVEN_PASSED = Precondition(
    "break_even_passed",
    "§4.3: the effects 'become visible after the break-even point'; SimpleCNN-BN is trained at eta up to 1.0, where SGD "
    "can be unstable along e_H^1 from the start",
    "the LHS of Eq. 1 (as for break_even_reached) >= 1 at some probed step: the break-even point reached, or training "
    "beyond it (unstable along e_H^1) from its first probed step on",
    "train longer or raise the learning rate", lambda frame, scale: _break_even(frame, scale, passed=True))

_MAXIMA = "§3, Conjectures 1-2: the maxima along the trajectory, reached at the break-even point early in training"


def _regime(metric: str, what: str, **window) -> tuple:
    """Conjectures 1-2: the break-even point reached, the training accuracy of §4.1 reached, and the maximum of
    ``metric`` inside the run."""
    return BREAK_EVEN_REACHED, ACCURACY_REACHED, peak_inside(metric, what=what, paper=_MAXIMA, key="maximum_inside",
                                                            **window)


claim("break_even.conjecture1_lambda_k", paper="Break-Even", where="Conjecture 1, Fig. 4",
      statement="the maximum of lambda_K^1 along the trajectory is smaller for a larger learning rate",
      study="be_lr", figure="break_even.fig4",
      rule=ordering(LAMBDA_K, LR, falls=True, what="max lambda_K^1", window=after_step(_AFTER)),
      preconditions=_regime(LAMBDA_K, "lambda_K^1", after_step=_AFTER),
      paper_numbers="SimpleCNN: max lambda_K^1 = 0.68 (lr 0.1) vs 3.30 (lr 0.01)")

claim("break_even.conjecture1_lambda_h", paper="Break-Even", where="Conjecture 1, Fig. 5",
      statement="the maximum of lambda_H^1 along the trajectory is smaller for a larger learning rate",
      study="be_lr", figure="break_even.fig4",
      rule=ordering(LAMBDA_H, LR, falls=True, what="max lambda_H^1", window=after_step(_AFTER)),
      preconditions=_regime(LAMBDA_H, "lambda_H^1", after_step=_AFTER),
      paper_numbers="SimpleCNN: max lambda_H^1 = 26.27 (lr 0.1) vs 211.17 (lr 0.01)")

claim("break_even.conjecture2_ratio", paper="Break-Even", where="Conjecture 2, Fig. 4",
      statement="the maximum of lambda_K^*/lambda_K^1 along the trajectory is larger for a larger learning rate",
      study="be_lr", figure="break_even.fig4",
      rule=ordering(RATIO, LR, falls=False, what="max lambda_K^*/lambda_K^1", window=after_step(_AFTER)),
      preconditions=_regime(RATIO, "lambda_K^*/lambda_K^1", after_step=_AFTER),
      paper_numbers="SimpleCNN: max lambda_K^*/lambda_K^1 = 0.37 (lr 0.1) vs 0.24 (lr 0.01)")


# --- Conjectures 1 and 2 over the batch size (§4.2, Fig. 4-5) ----------------------------------------------------

BS_STUDY = study(Study("be_bs", "Break-Even", sweeps=_sweeps("be-bs", {  # K at M = 128 (§4.2)
    "tiny": ({"optimizer": {"name": "sgd", "lr": 0.15}, "train": {"epochs": 6, "batch_size": 100},
              "probes": _probes(spaced=20, k_batch=128)}, {BS: [10, 100]}),
    "cpu": ({"optimizer": {"name": "sgd", "lr": 0.05}, "train": {"epochs": 3, "batch_size": 100},
             "probes": _probes(spaced=40, k_batch=128)}, {BS: [10, 100]}),
    "paper": ({"optimizer": {"name": "sgd", "lr": 0.05}, "train": {"epochs": 200, "batch_size": 100},
               "probes": _probes(spaced=60, k_batch=128)}, {BS: [10, 100]}),
})))

_AFTER_EPOCH = 0.1  # over the batch size: the first 0.1 epoch (the same examples seen at every S) is left out
_BS_WINDOW = after_epoch(_AFTER_EPOCH)

claim("break_even.conjecture1_bs_lambda_k", paper="Break-Even", where="Conjecture 1, Fig. 4 (batch size)",
      statement="the maximum of lambda_K^1 along the trajectory is smaller for a smaller batch size (K measured at "
                "M = 128 for every batch size)",
      study="be_bs", figure="break_even.fig5",
      rule=ordering(LAMBDA_K, BS, falls=False, what="max lambda_K^1", window=_BS_WINDOW),
      preconditions=_regime(LAMBDA_K, "lambda_K^1", after_epoch=_AFTER_EPOCH),
      paper_numbers="SimpleCNN, lr 0.05: no number in the text; Fig. 4: 'using a higher S in SGD leads to reaching a "
                    "higher maximum value of lambda_K^1'")

claim("break_even.conjecture1_bs_lambda_h", paper="Break-Even", where="Conjecture 1, Fig. 5 (batch size)",
      statement="the maximum of lambda_H^1 along the trajectory is smaller for a smaller batch size",
      study="be_bs", figure="break_even.fig5",
      rule=ordering(LAMBDA_H, BS, falls=False, what="max lambda_H^1", window=_BS_WINDOW),
      preconditions=_regime(LAMBDA_H, "lambda_H^1", after_epoch=_AFTER_EPOCH),
      paper_numbers="SimpleCNN and ResNet-32: no number in the text; Fig. 5 (right): 'using a larger S coincides with a "
                    "larger maximum value of lambda_H^1'")

claim("break_even.conjecture2_bs_ratio", paper="Break-Even", where="Conjecture 2, Fig. 4 (batch size)",
      statement="the maximum of lambda_K^*/lambda_K^1 along the trajectory is larger for a smaller batch size",
      study="be_bs", figure="break_even.fig5",
      rule=ordering(RATIO, BS, falls=True, what="max lambda_K^*/lambda_K^1", window=_BS_WINDOW),
      preconditions=_regime(RATIO, "lambda_K^*/lambda_K^1", after_epoch=_AFTER_EPOCH),
      paper_numbers="SimpleCNN, lr 0.05: no number in the text; Fig. 4: lower S, larger maximum lambda_K^*/lambda_K^1")

claim("break_even.conjecture2_bs_trace", paper="Break-Even", where="Conjecture 2, §4.2 ('a counter-intuitive effect')",
      statement="the maximum of Tr K is smaller for a smaller batch size, with K measured at M = 128 for every batch size",
      study="be_bs", figure="break_even.app_e",
      rule=ordering(TRACE_K, BS, falls=False, what="max Tr K", window=_BS_WINDOW),
      preconditions=_regime(TRACE_K, "Tr K", after_epoch=_AFTER_EPOCH),
      paper_numbers="SimpleCNN: max Tr K = 5.56 (S = 10) vs 10.86 (S = 100)")


# --- Fig. 2: the early phase (§4.1), on the learning-rate runs ----------------------------------------------------

_MIN_BEFORE_PEAK = 4  # probed steps up to the peak of lambda_H^1 a correlation needs
_R = 0.5  # "correlated": Pearson r above this
_SMOOTH = 3  # trailing moving average over this many probed steps (lambda_K^1 and Delta L)
_TOLERANCE = 3  # "near" the peak: within this many probed steps



@claim("break_even.fig2_correlation", paper="Break-Even", where="§4.1, Fig. 2 (left)",
       statement="lambda_K^1 and lambda_H^1 are correlated in the early phase, before lambda_H^1 reaches its maximum",
       study="be_lr", figure="break_even.fig2",
       rule=f"for each run, the Pearson r of gradient_noise/lambda_1 and top_eigenvalues/lambda_1 over the probed steps up "
            f"to and including the maximum of lambda_H^1 (analysis.correlation_before_peak, from the first probed step): "
            f"holds if r > {_R} in every run; does not hold if r <= {_R} in every run; inconclusive if the runs disagree "
            f"or a run did not finish",
       paper_numbers="no number in the text; §4.1: 'lambda_K^1 and lambda_H^1 increase approximately proportionally to "
                     "each other' (SimpleCNN, CIFAR-10, eta = 0.01 and 0.001, 5 seeds)",
       preconditions=(BREAK_EVEN_REACHED, peak_inside(LAMBDA_H, what="lambda_H^1", key="maximum_inside",
                                                      paper="§4.1: 'at least prior to reaching the break-even point', "
                                                            "up to the highest value of lambda_H^1"),
                      probed_at_least(LAMBDA_H, _MIN_BEFORE_PEAK, key="early_phase_resolved",
                                      before=lambda traj: peak(traj).step,
                                      what="probed steps up to the maximum", paper="§4.1, Fig. 2: the early phase, up to "
                                      "the maximum of lambda_H^1, resolved by the probes",
                                      remedy="probe more often early (log-spaced probe points)")))
def fig2_correlation(frame, scale):
    results, numbers = {}, {}
    for run in runs(frame):
        c = correlation_before_peak(frame, LAMBDA_K, LAMBDA_H, run=run)
        numbers[run] = {"r": c.r, "n": c.n, "peak_step": c.peak_step}
        text = f"r={c.r:.3g} over {c.n} steps to step {c.peak_step}"
        if c.n < _MIN_BEFORE_PEAK:
            results[run] = (f"too few probe points before the peak of lambda_H^1 ({c.n} steps up to step {c.peak_step}; "
                            f"need {_MIN_BEFORE_PEAK})", text)
        elif math.isnan(c.r):
            results[run] = ("no correlation: lambda_K^1 or lambda_H^1 constant before the peak", text)
        else:
            results[run] = (c.r > _R, text)
    return every_finished_run(frame, results, what=f"r > {_R} before the peak of lambda_H^1", numbers={"runs": numbers})


def _first_negative_near_peak(frame, run: str):
    """(shows, text, numbers) for one run: the step of the maximum of lambda_K^1 against the first
    step at which Delta L is negative, both smoothed, in probed steps (see the claim's rule)."""
    k = series(frame, LAMBDA_K, run=run)[["step", "value"]]
    d = series(frame, DELTA_L, run=run)[["step", "value"]]
    both = k.merge(d, on="step", suffixes=("_k", "_d")).dropna().sort_values("step").iloc[1:]  # first probed step out
    steps = both["step"].to_numpy()
    if len(both) < 2 * _TOLERANCE + 2:
        return f"too few probe points ({len(both)} probed steps with lambda_K^1 and Delta L)", f"{len(both)} steps", {}
    ks = moving_average(both["value_k"].to_numpy(), _SMOOTH)
    ds = moving_average(both["value_d"].to_numpy(), _SMOOTH)
    p = int(np.argmax(ks))
    negative = np.flatnonzero(ds < 0)
    q = int(negative[0]) if len(negative) else None
    numbers = {"peak_step": int(steps[p]), "first_negative_step": None if q is None else int(steps[q]),
               "probed_steps_apart": None if q is None else q - p}
    text = (f"peak of lambda_K^1 at step {steps[p]}, Delta L first negative at "
            + ("no step" if q is None else f"step {steps[q]} ({q - p:+d} probed steps)"))
    if p == len(both) - 1:
        return "the peak of lambda_K^1 was not reached before the run ended (maximum at the last probed step)", text, numbers
    if q is None:
        return False, text, numbers
    return abs(q - p) <= _TOLERANCE, text, numbers


@claim("break_even.fig2_instability", paper="Break-Even", where="§4.1, Fig. 2 (right)",
       statement="training is stable (Delta L > 0) before lambda_K^1 reaches its maximum, and Delta L starts to take "
                 "negative values as lambda_K^1 reaches it",
       study="be_lr", figure="break_even.fig2",
       rule=f"for each run, from the second probed step on (the first left out as the initial transient), with "
            f"loss_change/delta_loss and gradient_noise/lambda_1 each smoothed by a trailing mean over {_SMOOTH} probed "
            f"steps: the first probed step with smoothed Delta L < 0 lies within {_TOLERANCE} probed steps of the maximum "
            f"of smoothed lambda_K^1. Holds if so in every run; does not hold if in no run (Delta L first negative more than "
            f"{_TOLERANCE} probed steps before or after the peak, or never); inconclusive if the runs disagree, a run has "
            f"its maximum at its last probed step (the peak not reached before the run ended), has fewer than "
            f"{2 * _TOLERANCE + 2} probed steps, or did not finish",
       paper_numbers="no number in the text; §4.1: 'training becomes increasingly unstable (Delta L starts to take "
                     "negative values) as lambda_K^1 reaches the maximum value' (SimpleCNN, eta = 0.01 and 0.001)",
       preconditions=(BREAK_EVEN_REACHED, peak_inside(LAMBDA_K, what="lambda_K^1", key="maximum_inside",
                                                      paper="§4.1: 'as lambda_K^1 reaches the maximum value'")))
def fig2_instability(frame, scale):
    results, numbers = {}, {}
    for run in runs(frame):
        shows, text, numbers[run] = _first_negative_near_peak(frame, run)
        results[run] = (shows, text)
    return every_finished_run(frame, results, what=f"Delta L first negative within {_TOLERANCE} probed steps of the peak of "
                              "lambda_K^1", numbers={"runs": numbers})


# --- App. F: momentum --------------------------------------------------------------------------------------------

MOMENTUM_STUDY = study(Study("be_momentum", "Break-Even", sweeps=_sweeps("be-momentum", {  # Fig. 20: the K spectrum
    "tiny": ({"optimizer": {"name": "sgd", "lr": 0.15}, "train": {"epochs": 4, "batch_size": 32}, "probes": _probes(5)},
             {MOMENTUM: [0.1, 0.9]}),
    "cpu": ({"optimizer": {"name": "sgd", "lr": 0.1}, "train": {"epochs": 3, "batch_size": 128}, "probes": _probes(40)},
            {MOMENTUM: [0.1, 0.5, 0.9]}),
    "paper": ({"optimizer": {"name": "sgd", "lr": 0.01}, "train": {"epochs": 200, "batch_size": 128},
               "probes": _probes(100)}, {MOMENTUM: [0.1, 0.5, 0.9]}),
})))

claim("break_even.momentum_lambda_k", paper="Break-Even", where="App. F, Fig. 20",
      statement="a higher momentum acts like a higher learning rate: the maximum of lambda_K^1 along the trajectory is "
                "smaller for a larger momentum",
      study="be_momentum", figure="break_even.fig4",
      rule=ordering(LAMBDA_K, MOMENTUM, falls=True, what="max lambda_K^1", window=after_step(_AFTER)),
      preconditions=_regime(LAMBDA_K, "lambda_K^1", after_step=_AFTER),
      paper_numbers="SimpleCNN, beta = 0.1 / 0.5 / 0.9: no number in the text; App. F: 'using a higher momentum has an "
                    "analogous effect to using a higher learning rate'")

claim("break_even.momentum_ratio", paper="Break-Even", where="App. F, Fig. 20",
      statement="a higher momentum acts like a higher learning rate: the maximum of lambda_K^*/lambda_K^1 is larger for "
                "a larger momentum",
      study="be_momentum", figure="break_even.fig4",
      rule=ordering(RATIO, MOMENTUM, falls=False, what="max lambda_K^*/lambda_K^1", window=after_step(_AFTER)),
      preconditions=_regime(RATIO, "lambda_K^*/lambda_K^1", after_step=_AFTER),
      paper_numbers="SimpleCNN, beta = 0.1 / 0.5 / 0.9: no number in the text; App. F: 'Conjecture 1 and Conjecture 2 "
                    "generalize to momentum'")


# --- §4.3: batch normalisation ----------------------------------------------------------------------------------

_BN = {"measure": {"bn_mode": "train"}}  # curvature and K with each batch's own statistics (§4.3)
_K5 = {"num_batches": 25, "k": 5}  # ||g|| / ||g_5||: the top 5 directions of K

BN_STUDY = study(Study("be_bn", "Break-Even", sweeps=_sweeps("be-bn", {
    "tiny": ({"model": {"name": "simplecnn_bn", "filters": 8, "dense": 32}, "optimizer": {"name": "sgd", "lr": 0.01},
              "train": {"epochs": 3, "batch_size": 32}, "measure": {"curvature_examples": 256, "bn_mode": "train"},
              "probes": _probes(5, gradient_noise=_K5, bn_scale_norm={"every": 1})}, {LR: [0.01, 1.0]}),
    "cpu": ({"data": {"name": "cifar10", "val_size": 1000, "subset": 5000},
             "model": {"name": "simplecnn_bn", "filters": 16, "dense": 64},
             "optimizer": {"name": "sgd", "lr": 0.1}, "train": {"epochs": 6, "batch_size": 128, "eval_examples": 500},
             "measure": {"curvature_examples": 256, "curvature_batch": 128, "eval_examples": 500, "test_examples": 200,
                         "bn_mode": "train"},
             "probes": _probes(30, gradient_noise=_K5, bn_scale_norm={"every": 1})}, {LR: [0.1, 1.0]}),
    "paper": ({"data": {"name": "cifar10", "val_size": 5000}, "model": {"name": "simplecnn_bn"},
               "optimizer": {"name": "sgd", "lr": 0.1}, "train": {"epochs": 200, "batch_size": 128}, **_BN,
               "probes": _probes(spaced=60, gradient_noise=_K5, bn_scale_norm={})}, {LR: [0.001, 0.01, 0.1, 1.0]}),
})))

_EARLY_EPOCHS = 1.0  # "initially" (§4.3): the first epoch
_EARLY_PROBES = 5  # probed steps of ||gamma|| the first epoch needs


def _first_epoch(traj):
    """The last probed step of the first epoch."""
    early = traj[traj["epoch"] <= _EARLY_EPOCHS + 1e-9]
    return int(early["step"].max()) if len(early) else -1


EARLY_PROBED = probed_at_least(GAMMA, _EARLY_PROBES, key="early_phase_probed", before=_first_epoch,
                               what="probed steps in the first epoch",
                               paper="§4.3: 'eta = 1.0 and eta = 0.1 initially decrease the value of ||gamma||'",
                               remedy="probe bn_scale_norm more often")
_ENDS = (BREAK_EVEN_PASSED, ACCURACY_REACHED)  # "ends in a region": past the break-even point, trained to §4.1's accuracy


@claim("break_even.bn_gamma", paper="Break-Even", where="§4.3, Fig. 7 (bottom)",
       statement="in SimpleCNN-BN a larger learning rate lowers ||gamma|| of the last batch-norm layer early in training "
                 "('eta = 1.0 and eta = 0.1 initially decrease the value of ||gamma||')",
       study="be_bn", figure="break_even.fig7",
       rule="min of bn_scale_norm/last over the probed steps of the first epoch falls strictly as optimizer.lr grows, for "
            "every seed (all seeds the other way: does not hold; a run that did not finish or seeds that disagree: "
            "inconclusive)",
       paper_numbers="no number in the text; Fig. 7 (bottom): ||gamma|| goes down at first for eta = 1.0 and 0.1, not for "
                     "0.01 and 0.001", preconditions=(EARLY_PROBED,))
def bn_gamma(frame, scale):
    early = frame[frame["epoch"] <= _EARLY_EPOCHS + 1e-9]
    table = compare(early, GAMMA, stat="min", by=LR)
    reason = unfinished(frame)
    if reason:
        return Verdict("inconclusive", describe(table, LR), reason)
    return ordered(table, LR, falls=True, what="early min ||gamma||")


claim("break_even.bn_ratio", paper="Break-Even", where="§4.3, Fig. 7",
      statement="SimpleCNN-BN trained with a small learning rate ends in a worse-conditioned region: lambda_K^*/lambda_K^1 "
                "is smaller than with a large learning rate",
      study="be_bn", figure="break_even.fig7",
      rule=ordering(RATIO, LR, falls=False, what="late mean lambda_K^*/lambda_K^1", stat="mean", window=second_half()),
      preconditions=_ENDS,
      paper_numbers="lambda_K^*/lambda_K^1 reaches 0.343 (SimpleCNN-BN, eta = 0.001) vs 0.24 (SimpleCNN, eta = 0.01); "
                    "'using a large learning rate is necessary to observe the effect of loss smoothing' (eta = 1.0)")

claim("break_even.bn_g_ratio", paper="Break-Even", where="§4.3, Fig. 7",
      statement="SimpleCNN-BN trained with a small learning rate ends with the mini-batch gradient more contained in the "
                "top-5 eigenvectors of K (||g||/||g_5|| closer to 1: worse conditioned) than with a large learning rate",
      study="be_bn", figure="break_even.fig7",
      rule=ordering(G_RATIO, LR, falls=False, what="late mean ||g||/||g_5||", stat="mean", window=second_half()),
      preconditions=_ENDS,
      paper_numbers="max (min) ||g||/||g_5|| = 1.90 (1.37) for SimpleCNN-BN at eta = 0.001 and 2.02 (1.09) for SimpleCNN "
                    "at eta = 0.01; 'a value close to 1 implies that the mini-batch gradient is mostly contained in the "
                    "subspace spanned by the top 5 eigenvectors of K'")
