"""The Break-Even Point (Jastrzebski et al. 2020): Conjectures 1 and 2 over the learning rate, the
batch size and momentum, the early phase of Fig. 2, and batch normalisation (§4.3).

Studies (a sweep at each scale; ``tiny``: scikit-learn's real digits, seconds per run, 2 seeds;
``cpu``: real Fashion-MNIST or a CIFAR-10 subset, minutes on 2 cores; ``paper``: the paper's own
settings on CIFAR-10, ``device = "cuda"``):

* ``be_lr``: the learning rate. tiny: MLP 64-64, lr 0.02 / 0.2, 3 epochs; cpu: the paper's MLP
  300-100 (App. D) on Fashion-MNIST, lr 0.01 / 0.1, 2 epochs, K from 25 mini-batches of the
  training batch size (§4.2: "the same batch size as the one used to train the model"); paper:
  SimpleCNN, lr 0.001 / 0.01 / 0.1, 3 seeds. Read by Conjectures 1-2 and by Fig. 2 (§4.1 studies
  the early phase on the same runs: SimpleCNN at eta = 0.01 and 0.001).
* ``be_bs``: the batch size S = 10 / 100 at lr 0.05 (App. D: "When varying the batch size, we use
  a learning rate of 0.05"), K always at M = 128 (§4.2: "We use the batch size of 128 to compute K
  when we vary the batch size"). Probes log-spaced in steps plus each epoch's end, so runs with
  ten times more steps get about as many probe points.
* ``be_momentum``: SGD momentum 0.1 / 0.5 / 0.9 (App. F; tiny: 0.1 / 0.9), lr 0.01 (tiny 0.02),
  the rest as ``be_lr``. App. F does not give its learning rate; 0.01 is SimpleCNN's in §4.1.
* ``be_bn``: SimpleCNN-BN (§4.3), lr 0.001 / 0.01 / 0.1 / 1.0 (tiny: 0.01 / 1.0, a SimpleCNN-BN
  of 8 filters on the 8 x 8 digits), curvature and K with each batch's own statistics
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

from ..analysis import compare, correlation_before_peak, moving_average, series
from .claim import Study, Verdict, claim, study
from .rules import describe, every_finished_run, ordered, runs, unfinished

__all__ = []

LAMBDA_K, LAMBDA_H, RATIO, TRACE_K = ("gradient_noise/lambda_1", "top_eigenvalues/lambda_1", "gradient_noise/ratio",
                                      "gradient_noise/trace")
G_RATIO, GAMMA, DELTA_L = "gradient_noise/g_ratio", "bn_scale_norm/last", "loss_change/delta_loss"
LR, BS, MOMENTUM = "optimizer.lr", "train.batch_size", "optimizer.momentum"

_PROBES = {
    "top_eigenvalues": {"k": 1, "every": 10},
    "gradient_noise": {"num_batches": 25, "every": 10},
    "loss_change": {"every": 10},
}

_TINY = {"data": {"name": "digits", "val_size": 200}, "model": {"name": "mlp", "widths": [64, 64]},
         "measure": {"curvature_examples": 256}}
_CPU = {"data": {"name": "fashion_mnist", "val_size": 5000, "normalize": False},
        "model": {"name": "mlp", "widths": [300, 100]}, "measure": {"curvature_examples": 2560, "curvature_batch": 512}}
_PAPER = {"data": {"name": "cifar10", "val_size": 5000, "augment": True}, "model": {"name": "simplecnn"},
          "device": "cuda", "measure": {"curvature_examples": 2500, "curvature_batch": 500}}


def _every(n: int, probes=_PROBES) -> dict:
    return {k: {**v, "every": n} for k, v in probes.items()}


LR_STUDY = study(Study("be_lr", "Break-Even", sweeps={
    "tiny": {"config": {"name": "be-lr-tiny", "data": {"name": "digits", "val_size": 200},
                        "model": {"name": "mlp", "widths": [64, 64]}, "optimizer": {"name": "sgd", "lr": 0.02},
                        "train": {"epochs": 3, "batch_size": 32}, "measure": {"curvature_examples": 256},
                        "probes": {k: {**v, "every": 5} for k, v in _PROBES.items()}},
             "grid": {"optimizer.lr": [0.02, 0.2]}, "seeds": [0, 1]},
    "cpu": {"config": {"name": "be-lr-cpu", "data": {"name": "fashion_mnist", "val_size": 5000, "normalize": False},
                       "model": {"name": "mlp", "widths": [300, 100]}, "optimizer": {"name": "sgd", "lr": 0.01},
                       "train": {"epochs": 2, "batch_size": 128},
                       "measure": {"curvature_examples": 2560, "curvature_batch": 512},
                       "probes": {k: {**v, "every": 25} for k, v in _PROBES.items()}},
            "grid": {"optimizer.lr": [0.01, 0.1]}, "seeds": [0, 1]},
    "paper": {"config": {"name": "be-lr-paper", "data": {"name": "cifar10", "val_size": 5000, "augment": True},
                         "model": {"name": "simplecnn"}, "optimizer": {"name": "sgd", "lr": 0.01},
                         "train": {"epochs": 200, "batch_size": 128}, "device": "cuda",
                         "measure": {"curvature_examples": 2500, "curvature_batch": 500},
                         "probes": {k: {**v, "every": 100} for k, v in _PROBES.items()}},
              "grid": {"optimizer.lr": [0.001, 0.01, 0.1]}, "seeds": [0, 1, 2]},
}))

_AFTER = {"tiny": 5, "cpu": 25, "paper": 100}  # the first probed step is left out of the maxima


def _ordered(frame, metric: str, key: str, *, falls: bool, what: str, stat: str = "max", **window) -> Verdict:
    """``ordered`` on ``compare(frame, metric, stat, window, by=key)``, inconclusive where a run did not finish."""
    table = compare(frame, metric, stat=stat, by=key, **window)
    reason = unfinished(frame)
    if reason:
        return Verdict("inconclusive", describe(table, key), reason,
                       {"key": key, "points": table[[key, "mean", "std", "n"]].to_dict("records")})
    return ordered(table, key, falls=falls, what=what)


@claim("break_even.conjecture1_lambda_k", paper="Break-Even", where="Conjecture 1, Fig. 4",
       statement="the maximum of lambda_K^1 along the trajectory is smaller for a larger learning rate",
       study="be_lr", figure="break_even.fig4",
       rule="max of gradient_noise/lambda_1 after the first probed step falls strictly as optimizer.lr grows, for every "
            "seed (all seeds the other way: does not hold; otherwise inconclusive)",
       paper_numbers="SimpleCNN: max lambda_K^1 = 0.68 (lr 0.1) vs 3.30 (lr 0.01)")
def conjecture1_lambda_k(frame, scale):
    return _ordered(frame, LAMBDA_K, LR, falls=True, what="max lambda_K^1", after_step=_AFTER[scale])


@claim("break_even.conjecture1_lambda_h", paper="Break-Even", where="Conjecture 1, Fig. 5",
       statement="the maximum of lambda_H^1 along the trajectory is smaller for a larger learning rate",
       study="be_lr", figure="break_even.fig4",
       rule="max of top_eigenvalues/lambda_1 after the first probed step falls strictly as optimizer.lr grows, for every "
            "seed (all seeds the other way: does not hold; otherwise inconclusive)",
       paper_numbers="SimpleCNN: max lambda_H^1 = 26.27 (lr 0.1) vs 211.17 (lr 0.01)")
def conjecture1_lambda_h(frame, scale):
    return _ordered(frame, LAMBDA_H, LR, falls=True, what="max lambda_H^1", after_step=_AFTER[scale])


@claim("break_even.conjecture2_ratio", paper="Break-Even", where="Conjecture 2, Fig. 4",
       statement="the maximum of lambda_K^*/lambda_K^1 along the trajectory is larger for a larger learning rate",
       study="be_lr", figure="break_even.fig4",
       rule="max of gradient_noise/ratio after the first probed step rises strictly as optimizer.lr grows, for every seed "
            "(the early transient at initialisation excluded; all seeds the other way: does not hold)",
       paper_numbers="SimpleCNN: max lambda_K^*/lambda_K^1 = 0.37 (lr 0.1) vs 0.24 (lr 0.01)")
def conjecture2_ratio(frame, scale):
    return _ordered(frame, RATIO, LR, falls=False, what="max lambda_K^*/lambda_K^1", after_step=_AFTER[scale])


# --- Conjectures 1 and 2 over the batch size (§4.2, Fig. 4-5) ----------------------------------------------------

_BS_PROBES = {"top_eigenvalues": {"k": 1}, "gradient_noise": {"num_batches": 25, "batch_size": 128}}  # K at M = 128


def _spaced(num: int, probes: dict) -> dict:
    return {k: {**v, "log_spaced": num, "epoch_end": True} for k, v in probes.items()}


BS_STUDY = study(Study("be_bs", "Break-Even", sweeps={
    "tiny": {"config": {**_TINY, "name": "be-bs-tiny", "optimizer": {"name": "sgd", "lr": 0.05},
                        "train": {"epochs": 3, "batch_size": 100}, "probes": _spaced(20, _BS_PROBES)},
             "grid": {BS: [10, 100]}, "seeds": [0, 1]},
    "cpu": {"config": {**_CPU, "name": "be-bs-cpu", "optimizer": {"name": "sgd", "lr": 0.05},
                       "train": {"epochs": 2, "batch_size": 100}, "probes": _spaced(40, _BS_PROBES)},
            "grid": {BS: [10, 100]}, "seeds": [0, 1]},
    "paper": {"config": {**_PAPER, "name": "be-bs-paper", "optimizer": {"name": "sgd", "lr": 0.05},
                         "train": {"epochs": 200, "batch_size": 100}, "probes": _spaced(60, _BS_PROBES)},
              "grid": {BS: [10, 100]}, "seeds": [0, 1, 2]},
}))

_AFTER_EPOCH = 0.1  # over the batch size: the first 0.1 epoch (the same examples seen at every S) is left out


@claim("break_even.conjecture1_bs_lambda_k", paper="Break-Even", where="Conjecture 1, Fig. 4 (batch size)",
       statement="the maximum of lambda_K^1 along the trajectory is smaller for a smaller batch size (K measured at "
                 "M = 128 for every batch size)",
       study="be_bs", figure="break_even.fig5",
       rule="max of gradient_noise/lambda_1 (M = 128) after the first 0.1 epoch rises strictly as train.batch_size grows, "
            "for every seed (all seeds the other way: does not hold; a run that did not finish or seeds that disagree: "
            "inconclusive)",
       paper_numbers="SimpleCNN, lr 0.05: no number in the text; Fig. 4: 'using a higher S in SGD leads to reaching a "
                     "higher maximum value of lambda_K^1'")
def conjecture1_bs_lambda_k(frame, scale):
    return _ordered(frame, LAMBDA_K, BS, falls=False, what="max lambda_K^1", after_epoch=_AFTER_EPOCH)


@claim("break_even.conjecture1_bs_lambda_h", paper="Break-Even", where="Conjecture 1, Fig. 5 (batch size)",
       statement="the maximum of lambda_H^1 along the trajectory is smaller for a smaller batch size",
       study="be_bs", figure="break_even.fig5",
       rule="max of top_eigenvalues/lambda_1 after the first 0.1 epoch rises strictly as train.batch_size grows, for every "
            "seed (all seeds the other way: does not hold; otherwise inconclusive)",
       paper_numbers="SimpleCNN and ResNet-32: no number in the text; Fig. 5 (right): 'using a larger S coincides with a "
                     "larger maximum value of lambda_H^1'")
def conjecture1_bs_lambda_h(frame, scale):
    return _ordered(frame, LAMBDA_H, BS, falls=False, what="max lambda_H^1", after_epoch=_AFTER_EPOCH)


@claim("break_even.conjecture2_bs_ratio", paper="Break-Even", where="Conjecture 2, Fig. 4 (batch size)",
       statement="the maximum of lambda_K^*/lambda_K^1 along the trajectory is larger for a smaller batch size",
       study="be_bs", figure="break_even.fig5",
       rule="max of gradient_noise/ratio (M = 128) after the first 0.1 epoch falls strictly as train.batch_size grows, for "
            "every seed (all seeds the other way: does not hold; otherwise inconclusive)",
       paper_numbers="SimpleCNN, lr 0.05: no number in the text; Fig. 4: lower S, larger maximum lambda_K^*/lambda_K^1")
def conjecture2_bs_ratio(frame, scale):
    return _ordered(frame, RATIO, BS, falls=True, what="max lambda_K^*/lambda_K^1", after_epoch=_AFTER_EPOCH)


@claim("break_even.conjecture2_bs_trace", paper="Break-Even", where="Conjecture 2, §4.2 ('a counter-intuitive effect')",
       statement="the maximum of Tr K is smaller for a smaller batch size, with K measured at M = 128 for every batch size",
       study="be_bs", figure="break_even.app_e",
       rule="max of gradient_noise/trace (Tr K^M, M = 128) after the first 0.1 epoch rises strictly as train.batch_size "
            "grows, for every seed (all seeds the other way: does not hold; otherwise inconclusive)",
       paper_numbers="SimpleCNN: max Tr K = 5.56 (S = 10) vs 10.86 (S = 100)")
def conjecture2_bs_trace(frame, scale):
    return _ordered(frame, TRACE_K, BS, falls=False, what="max Tr K", after_epoch=_AFTER_EPOCH)


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
            f"holds if r > {_R} in every run; does not hold if r <= {_R} in every run; inconclusive if the runs disagree, "
            f"a run has fewer than {_MIN_BEFORE_PEAK} probed steps up to the peak, or a run did not finish",
       paper_numbers="no number in the text; §4.1: 'lambda_K^1 and lambda_H^1 increase approximately proportionally to "
                     "each other' (SimpleCNN, CIFAR-10, eta = 0.01 and 0.001, 5 seeds)")
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
                     "negative values) as lambda_K^1 reaches the maximum value' (SimpleCNN, eta = 0.01 and 0.001)")
def fig2_instability(frame, scale):
    results, numbers = {}, {}
    for run in runs(frame):
        shows, text, numbers[run] = _first_negative_near_peak(frame, run)
        results[run] = (shows, text)
    return every_finished_run(frame, results, what=f"Delta L first negative within {_TOLERANCE} probed steps of the peak of "
                              "lambda_K^1", numbers={"runs": numbers})


# --- App. F: momentum --------------------------------------------------------------------------------------------

_K_ONLY = {"gradient_noise": _PROBES["gradient_noise"]}  # Fig. 20: lambda_K^1, lambda_K^*/lambda_K^1, Tr K

MOMENTUM_STUDY = study(Study("be_momentum", "Break-Even", sweeps={
    "tiny": {"config": {**_TINY, "name": "be-momentum-tiny", "optimizer": {"name": "sgd", "lr": 0.02},
                        "train": {"epochs": 3, "batch_size": 32}, "probes": _every(5, _K_ONLY)},
             "grid": {MOMENTUM: [0.1, 0.9]}, "seeds": [0, 1]},
    "cpu": {"config": {**_CPU, "name": "be-momentum-cpu", "optimizer": {"name": "sgd", "lr": 0.01},
                       "train": {"epochs": 2, "batch_size": 128}, "probes": _every(25, _K_ONLY)},
            "grid": {MOMENTUM: [0.1, 0.5, 0.9]}, "seeds": [0, 1]},
    "paper": {"config": {**_PAPER, "name": "be-momentum-paper", "optimizer": {"name": "sgd", "lr": 0.01},
                         "train": {"epochs": 200, "batch_size": 128}, "probes": _every(100, _K_ONLY)},
              "grid": {MOMENTUM: [0.1, 0.5, 0.9]}, "seeds": [0, 1, 2]},
}))


@claim("break_even.momentum_lambda_k", paper="Break-Even", where="App. F, Fig. 20",
       statement="a higher momentum acts like a higher learning rate: the maximum of lambda_K^1 along the trajectory is "
                 "smaller for a larger momentum",
       study="be_momentum", figure="break_even.fig4",
       rule="max of gradient_noise/lambda_1 after the first probed step falls strictly as optimizer.momentum grows, for "
            "every seed (all seeds the other way: does not hold; otherwise inconclusive)",
       paper_numbers="SimpleCNN, beta = 0.1 / 0.5 / 0.9: no number in the text; App. F: 'using a higher momentum has an "
                     "analogous effect to using a higher learning rate'")
def momentum_lambda_k(frame, scale):
    return _ordered(frame, LAMBDA_K, MOMENTUM, falls=True, what="max lambda_K^1", after_step=_AFTER[scale])


@claim("break_even.momentum_ratio", paper="Break-Even", where="App. F, Fig. 20",
       statement="a higher momentum acts like a higher learning rate: the maximum of lambda_K^*/lambda_K^1 is larger for "
                 "a larger momentum",
       study="be_momentum", figure="break_even.fig4",
       rule="max of gradient_noise/ratio after the first probed step rises strictly as optimizer.momentum grows, for every "
            "seed (all seeds the other way: does not hold; otherwise inconclusive)",
       paper_numbers="SimpleCNN, beta = 0.1 / 0.5 / 0.9: no number in the text; App. F: 'Conjecture 1 and Conjecture 2 "
                     "generalize to momentum'")
def momentum_ratio(frame, scale):
    return _ordered(frame, RATIO, MOMENTUM, falls=False, what="max lambda_K^*/lambda_K^1", after_step=_AFTER[scale])


# --- §4.3: batch normalisation ----------------------------------------------------------------------------------

_BN_PROBES = {"gradient_noise": {"num_batches": 25, "k": 5}, "bn_scale_norm": {}}  # k = 5: ||g|| / ||g_5||

BN_STUDY = study(Study("be_bn", "Break-Even", sweeps={
    "tiny": {"config": {**_TINY, "name": "be-bn-tiny", "model": {"name": "simplecnn_bn", "filters": 8, "dense": 32},
                        "optimizer": {"name": "sgd", "lr": 0.01}, "train": {"epochs": 3, "batch_size": 32},
                        "measure": {"curvature_examples": 256, "bn_mode": "train"},
                        "probes": {"gradient_noise": {**_BN_PROBES["gradient_noise"], "every": 5},
                                   "bn_scale_norm": {"every": 1}}},
             "grid": {LR: [0.01, 1.0]}, "seeds": [0, 1]},
    "cpu": {"config": {"name": "be-bn-cpu", "data": {"name": "cifar10", "val_size": 1000, "subset": 5000},
                       "model": {"name": "simplecnn_bn"}, "optimizer": {"name": "sgd", "lr": 0.01},
                       "train": {"epochs": 3, "batch_size": 128, "eval_examples": 500},
                       "measure": {"curvature_examples": 256, "curvature_batch": 128, "eval_examples": 500,
                                   "test_examples": 200, "bn_mode": "train"},
                       "probes": {"gradient_noise": {**_BN_PROBES["gradient_noise"], "every": 10},
                                  "bn_scale_norm": {"every": 1}}},
            "grid": {LR: [0.001, 0.01, 0.1, 1.0]}, "seeds": [0, 1]},
    "paper": {"config": {**_PAPER, "name": "be-bn-paper", "data": {"name": "cifar10", "val_size": 5000},
                         "model": {"name": "simplecnn_bn"}, "optimizer": {"name": "sgd", "lr": 0.1},
                         "train": {"epochs": 200, "batch_size": 128},
                         "measure": {"curvature_examples": 2500, "curvature_batch": 500, "bn_mode": "train"},
                         "probes": {k: {**v, "log_spaced": 60, "every": 1000} for k, v in _BN_PROBES.items()}},
              "grid": {LR: [0.001, 0.01, 0.1, 1.0]}, "seeds": [0, 1, 2]},
}))

_EARLY_EPOCHS = 1.0  # "initially" (§4.3): the first epoch


def _late(frame):
    """The rows of the second half of the epochs (``train.epochs`` / 2 on), per the study's config."""
    half = float(frame["train.epochs"].max()) / 2
    return {"after_epoch": half}


@claim("break_even.bn_gamma", paper="Break-Even", where="§4.3, Fig. 7 (bottom)",
       statement="in SimpleCNN-BN a larger learning rate lowers ||gamma|| of the last batch-norm layer early in training "
                 "('eta = 1.0 and eta = 0.1 initially decrease the value of ||gamma||')",
       study="be_bn", figure="break_even.fig7",
       rule="min of bn_scale_norm/last over the probed steps of the first epoch falls strictly as optimizer.lr grows, for "
            "every seed (all seeds the other way: does not hold; a run that did not finish or seeds that disagree: "
            "inconclusive)",
       paper_numbers="no number in the text; Fig. 7 (bottom): ||gamma|| goes down at first for eta = 1.0 and 0.1, not for "
                     "0.01 and 0.001")
def bn_gamma(frame, scale):
    early = frame[frame["epoch"] <= _EARLY_EPOCHS + 1e-9]
    table = compare(early, GAMMA, stat="min", by=LR)
    reason = unfinished(frame)
    if reason:
        return Verdict("inconclusive", describe(table, LR), reason)
    return ordered(table, LR, falls=True, what="early min ||gamma||")


@claim("break_even.bn_ratio", paper="Break-Even", where="§4.3, Fig. 7",
       statement="SimpleCNN-BN trained with a small learning rate ends in a worse-conditioned region: lambda_K^*/lambda_K^1 "
                 "is smaller than with a large learning rate",
       study="be_bn", figure="break_even.fig7",
       rule="mean of gradient_noise/ratio over the probed steps of the second half of the epochs rises strictly as "
            "optimizer.lr grows, for every seed (all seeds the other way: does not hold; otherwise inconclusive)",
       paper_numbers="lambda_K^*/lambda_K^1 reaches 0.343 (SimpleCNN-BN, eta = 0.001) vs 0.24 (SimpleCNN, eta = 0.01); "
                     "'using a large learning rate is necessary to observe the effect of loss smoothing' (eta = 1.0)")
def bn_ratio(frame, scale):
    return _ordered(frame, RATIO, LR, falls=False, what="late mean lambda_K^*/lambda_K^1", stat="mean", **_late(frame))


@claim("break_even.bn_g_ratio", paper="Break-Even", where="§4.3, Fig. 7",
       statement="SimpleCNN-BN trained with a small learning rate ends with the mini-batch gradient more contained in the "
                 "top-5 eigenvectors of K (||g||/||g_5|| closer to 1: worse conditioned) than with a large learning rate",
       study="be_bn", figure="break_even.fig7",
       rule="mean of gradient_noise/g_ratio (||g||/||g_5||, k = 5) over the probed steps of the second half of the epochs "
            "rises strictly as optimizer.lr grows, for every seed (all seeds the other way: does not hold; otherwise "
            "inconclusive)",
       paper_numbers="max (min) ||g||/||g_5|| = 1.90 (1.37) for SimpleCNN-BN at eta = 0.001 and 2.02 (1.09) for SimpleCNN "
                     "at eta = 0.01; 'a value close to 1 implies that the mini-batch gradient is mostly contained in the "
                     "subspace spanned by the top 5 eigenvectors of K'")
def bn_g_ratio(frame, scale):
    return _ordered(frame, G_RATIO, LR, falls=False, what="late mean ||g||/||g_5||", stat="mean", **_late(frame))
