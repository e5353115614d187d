"""The sharpest-directions poster (Jastrzebski et al., "On the relation between the sharpest
directions of DNN loss and the SGD step length"): the top Hessian eigenvalues rise then settle
(Fig. 1a), a larger learning rate or a smaller batch gives a smaller and earlier peak (Fig. 1b),
the SGD step overshoots along the sharpest direction (Fig. 2b), and Nudged SGD trains faster into
a sharper region (the NSGD figure).

Studies (a sweep at each scale; ``tiny``: scikit-learn's real digits, seconds per run, 2 seeds;
``cpu``: real Fashion-MNIST, minutes on 2 cores; ``paper``: SimpleCNN on CIFAR-10 as on the
poster, vanilla SGD without momentum, ``device = "cuda"``):

* ``sd_lr``: the learning rate; the top-k Hessian eigenvalues (k = 5 / 10 / 30) and the
  sharpest-directions probe (the loss along e_1, the loss change of SGD steps with their e_1
  component scaled by alpha = 0.5, 1, 2) log-spaced in steps plus every epoch's end. tiny: MLP 64-64,
  lr 0.02 / 0.2, S = 32, 5 epochs; cpu: MLP 300-100 on Fashion-MNIST, lr 0.01 / 0.03 / 0.1, S = 128,
  5 epochs; paper: SimpleCNN, lr 0.005 (the poster's) / 0.01 / 0.05, S = 128, 50 epochs, top 30.
* ``sd_bs``: the batch size at a fixed learning rate, lambda_1 and lambda_2. tiny: S = 16 / 128 at
  lr 0.05; cpu: S = 32 / 128 / 512 at lr 0.05; paper: S = 32 / 128 / 512 at lr 0.005.
* ``sd_nsgd``: Nudged SGD's gamma, 0.1 against 1.0 (gamma = 1 is plain SGD, bit for bit), top-K
  directions recomputed every 10 steps; the spectral and Frobenius norms of H and the validation
  accuracy. tiny: digits, lr 0.05, K = 3, 5 epochs; cpu: MLP 300-100 on Fashion-MNIST at lr 0.1,
  K = 5, 5 epochs (the regime where plain SGD's lambda_1 is held near 2 / eta, where Nudged SGD
  shows its effect); paper: SimpleCNN, lr 0.005, K = 5, 50 epochs.

The poster gives eta = 0.005 and S = 128 for Fig. 1a and 2; the other learning rates and batch
sizes of Fig. 1b and the settings of the NSGD figure are not given (ours are above).
"""
from __future__ import annotations

import math

import numpy as np

from ..analysis import compare, peak, series
from .claim import Study, Verdict, claim, study
from .rules import describe, every_finished_run, ordered, runs, unfinished

__all__ = []

LAMBDA = "top_eigenvalues/lambda_1"
ALPHA_HALF, ALPHA_ONE = "sharpest_directions/dloss_alpha_0.5", "sharpest_directions/dloss_alpha_1"
SPECTRAL, FROBENIUS, VAL_ACC = "hessian_norms/spectral_norm", "hessian_norms/frobenius_norm", "evaluation/val_accuracy"
LR, BS, GAMMA = "optimizer.lr", "train.batch_size", "optimizer.gamma"

# --- the studies ------------------------------------------------------------------------------------------------

_TINY = {"data": {"name": "digits", "val_size": 200}, "model": {"name": "mlp", "widths": [64, 64]},
         "measure": {"curvature_examples": 256, "eval_examples": 0}}
_CPU = {"data": {"name": "fashion_mnist", "val_size": 5000}, "model": {"name": "mlp", "widths": [300, 100]},
        "measure": {"curvature_examples": 2560, "curvature_batch": 512, "eval_examples": 2000}}
_PAPER = {"data": {"name": "cifar10", "val_size": 5000}, "model": {"name": "simplecnn"}, "device": "cuda",
          "measure": {"curvature_fraction": 0.05, "curvature_batch": 500, "eval_examples": 5000}}


def _spaced(num: int, probes: dict) -> dict:
    return {k: {**v, "log_spaced": num, "epoch_end": True} for k, v in probes.items()}


def _lr_probes(k: int, num: int) -> dict:
    return _spaced(num, {"top_eigenvalues": {"k": k}, "sharpest_directions": {"k": 5, "num_batches": 10}})


LR_STUDY = study(Study("sd_lr", "Sharpest directions", sweeps={
    "tiny": {"config": {**_TINY, "name": "sd-lr-tiny", "optimizer": {"name": "sgd", "lr": 0.02},
                        "train": {"epochs": 5, "batch_size": 32}, "probes": _lr_probes(5, 30)},
             "grid": {LR: [0.02, 0.2]}, "seeds": [0, 1]},
    "cpu": {"config": {**_CPU, "name": "sd-lr-cpu", "optimizer": {"name": "sgd", "lr": 0.01},
                       "train": {"epochs": 5, "batch_size": 128}, "probes": _lr_probes(10, 40)},
            "grid": {LR: [0.01, 0.03, 0.1]}, "seeds": [0, 1]},
    "paper": {"config": {**_PAPER, "name": "sd-lr-paper", "optimizer": {"name": "sgd", "lr": 0.005},
                         "train": {"epochs": 50, "batch_size": 128, "checkpoint_every": 500},
                         "probes": _lr_probes(30, 60)},
              "grid": {LR: [0.005, 0.01, 0.05]}, "seeds": [0, 1, 2]},
}))

_TOP2 = {"top_eigenvalues": {"k": 2}}

BS_STUDY = study(Study("sd_bs", "Sharpest directions", sweeps={
    "tiny": {"config": {**_TINY, "name": "sd-bs-tiny", "optimizer": {"name": "sgd", "lr": 0.05},
                        "train": {"epochs": 5, "batch_size": 32}, "probes": _spaced(30, _TOP2)},
             "grid": {BS: [16, 128]}, "seeds": [0, 1]},
    "cpu": {"config": {**_CPU, "name": "sd-bs-cpu", "optimizer": {"name": "sgd", "lr": 0.05},
                       "train": {"epochs": 5, "batch_size": 128}, "probes": _spaced(40, _TOP2)},
            "grid": {BS: [32, 128, 512]}, "seeds": [0, 1]},
    "paper": {"config": {**_PAPER, "name": "sd-bs-paper", "optimizer": {"name": "sgd", "lr": 0.005},
                         "train": {"epochs": 50, "batch_size": 128, "checkpoint_every": 500},
                         "probes": _spaced(60, _TOP2)},
              "grid": {BS: [32, 128, 512]}, "seeds": [0, 1, 2]},
}))


def _nsgd(lr: float, top_k: int) -> dict:
    return {"name": "nudged_sgd", "lr": lr, "gamma": 0.1, "top_k": top_k, "recompute_every": 10}


NSGD_STUDY = study(Study("sd_nsgd", "Sharpest directions", sweeps={
    "tiny": {"config": {**_TINY, "name": "sd-nsgd-tiny", "optimizer": _nsgd(0.05, 3),
                        "train": {"epochs": 5, "batch_size": 32},
                        "probes": {"hessian_norms": {"every": 10, "epoch_end": True}}},
             "grid": {GAMMA: [0.1, 1.0]}, "seeds": [0, 1]},
    "cpu": {"config": {**_CPU, "name": "sd-nsgd-cpu", "optimizer": _nsgd(0.1, 5),
                       "train": {"epochs": 5, "batch_size": 128},
                       "probes": {"hessian_norms": {"every": 100, "epoch_end": True}}},
            "grid": {GAMMA: [0.1, 1.0]}, "seeds": [0, 1]},
    "paper": {"config": {**_PAPER, "name": "sd-nsgd-paper", "optimizer": _nsgd(0.005, 5),
                         "train": {"epochs": 50, "batch_size": 128, "checkpoint_every": 500},
                         "probes": {"hessian_norms": {"log_spaced": 60, "epoch_end": True}}},
              "grid": {GAMMA: [0.1, 1.0]}, "seeds": [0, 1, 2]},
}))

# --- thresholds of the rules (fixed before any result was seen) -----------------------------------------------------

_MIN_POINTS = 5  # probed steps a trajectory needs
_RISE = 2.0  # "a sharp increase": the maximum at least twice the first probed value
_REACHED = 0.75  # a peak counts as reached when it lies before 3/4 of the run's last probed step
_EARLY = 0.1  # the early phase: the first 10% of the run's steps
_LATE = 0.75  # "the region it reaches": the last quarter of the run's steps



def _peak(frame, run: str, metric: str = LAMBDA) -> dict:
    """The maximum of ``metric`` in one run: value, step, epoch, the first value, the last probed step,
    the number of probed steps, and whether the peak was reached (before ``_REACHED`` of the run)."""
    traj = series(frame, metric, run=run).dropna(subset=["value"])
    if not len(traj):
        return {"n": 0}
    p = peak(traj)
    last = int(traj["step"].max())
    return {"value": p.value, "step": p.step, "epoch": p.epoch, "first": float(traj["value"].iloc[0]), "last_step": last,
            "n": len(traj), "reached": p.step < _REACHED * last}


def _table(frame, values: dict, key: str):
    """A :func:`~sgdscope.analysis.compare`-style table (key, mean, std, n, seeds, values, runs) of one
    value per run, for statistics ``compare`` does not take (the epoch of a peak)."""
    import pandas as pd

    configs = frame.drop_duplicates("run").set_index("run")
    rows = []
    for point, group in configs.groupby(key, sort=True):
        group = group.sort_values("seed") if "seed" in group.columns else group
        v = np.array([values.get(run, math.nan) for run in group.index], dtype=float)
        ok = v[~np.isnan(v)]
        rows.append({key: point, "mean": float(ok.mean()) if len(ok) else math.nan,
                     "std": float(ok.std(ddof=1)) if len(ok) > 1 else math.nan, "n": len(ok),
                     "seeds": tuple(group["seed"]) if "seed" in group.columns else (None,) * len(group),
                     "values": tuple(v.tolist()), "runs": tuple(group.index)})
    return pd.DataFrame(rows, columns=[key, "mean", "std", "n", "seeds", "values", "runs"])


def _numbers(table, key: str, **extra) -> dict:
    return {"key": key, "points": table[[key, "mean", "std", "n"]].to_dict("records"), **extra}


# --- Fig. 1a: rise then settle ----------------------------------------------------------------------------------

@claim("sharpest.rise_then_settle", paper="Sharpest directions", where="Fig. 1a",
       statement="the top eigenvalues of the Hessian follow a predictable pattern: a sharp increase, then they settle "
                 "(stabilise or decrease steadily)",
       study="sd_lr", figure="sharpest.fig1a",
       rule=f"for each run, on top_eigenvalues/lambda_1 (at least {_MIN_POINTS} probed steps): the run shows it when its "
            f"maximum is at least {_RISE:g} times its value at the first probed step (a sharp increase) and lies before "
            f"{_REACHED:.0%} of the run's last probed step (it settles: the last quarter or more of the run stays below "
            f"it); it does not when the maximum is below {_RISE:g} times the first value; a run whose maximum lies later "
            f"cannot tell (peak not reached before the run ended). Holds if every run shows it; does not hold if none "
            f"does; inconclusive if the runs disagree, a run cannot tell, has too few probed steps, or did not finish",
       paper_numbers="no number in the text; Fig. 1a (SimpleCNN, CIFAR-10, eta = 0.005, the 10 largest eigenvalues): 'a "
                     "sharp increase and a steady decrease afterwards'; 'curvature along this direction initially grows, "
                     "and then stabilizes or decays'")
def rise_then_settle(frame, scale):
    results, numbers = {}, {}
    for run in runs(frame):
        p = numbers[run] = _peak(frame, run)
        if p["n"] < _MIN_POINTS:
            results[run] = (f"too few probe points ({p['n']} probed steps of lambda_1)", f"{p['n']} steps")
            continue
        ratio = p["value"] / p["first"] if p["first"] > 0 else math.inf
        p["ratio"] = ratio
        text = (f"lambda_1 {p['first']:.3g} at the first probed step, max {p['value']:.3g} (x{ratio:.3g}) at step "
                f"{p['step']} of {p['last_step']}")
        if ratio < _RISE:
            results[run] = (False, text)
        elif not p["reached"]:
            results[run] = (f"peak not reached before the run ended (maximum at step {p['step']}, after "
                            f"{_REACHED:.0%} of {p['last_step']})", text)
        else:
            results[run] = (True, text)
    what = f"lambda_1 rising x{_RISE:g} or more to a peak before {_REACHED:.0%} of the run"
    return every_finished_run(frame, results, what=what, numbers={"runs": numbers})


# --- Fig. 1b: the peak against the learning rate and the batch size -------------------------------------------------

def _peak_ordered(frame, key: str, *, field: str, falls: bool, what: str) -> Verdict:
    """``ordered`` over ``key`` on each run's peak of lambda_1 (``field``: value or epoch), inconclusive where
    a run did not finish or did not reach its peak."""
    peaks = {run: _peak(frame, run) for run in runs(frame)}
    values = {run: p.get(field, math.nan) for run, p in peaks.items()}
    table = _table(frame, values, key)
    numbers = _numbers(table, key, runs=peaks)
    reason = unfinished(frame)
    short = [run for run, p in peaks.items() if p["n"] < _MIN_POINTS]
    late = [f"{run} (maximum at step {p['step']} of {p['last_step']})" for run, p in peaks.items()
            if p["n"] >= _MIN_POINTS and not p["reached"]]
    if not reason and short:
        reason = "too few probe points: " + ", ".join(short)
    if not reason and late:
        reason = f"peak not reached before the run ended (after {_REACHED:.0%} of the run): " + ", ".join(late)
    if reason:
        return Verdict("inconclusive", describe(table, key), reason, numbers)
    v = ordered(table, key, falls=falls, what=what)
    v.numbers = numbers
    return v


_PEAK_RULE = (f"; a run whose maximum lies after {_REACHED:.0%} of its last probed step has not reached its peak and makes "
              f"the claim inconclusive, as do a run with fewer than {_MIN_POINTS} probed steps and a run that did not "
              f"finish")


@claim("sharpest.peak_lr_height", paper="Sharpest directions", where="Fig. 1b",
       statement="a larger learning rate correlates with a smaller peak of the spectral norm (lambda_1)",
       study="sd_lr", figure="sharpest.fig1b",
       rule="max of top_eigenvalues/lambda_1 over the run falls strictly as optimizer.lr grows, for every seed (all seeds "
            "the other way: does not hold; seeds that disagree: inconclusive)" + _PEAK_RULE,
       paper_numbers="no number in the text; Fig. 1b (SimpleCNN, lambda_1 and lambda_2 on a log scale for different "
                     "learning rates): 'a larger learning rate (or a smaller batch-size) correlates with a smaller and "
                     "earlier peak of the spectral norm and the subsequent largest eigenvalue'")
def peak_lr_height(frame, scale):
    return _peak_ordered(frame, LR, field="value", falls=True, what="the peak of lambda_1")


@claim("sharpest.peak_lr_time", paper="Sharpest directions", where="Fig. 1b",
       statement="a larger learning rate correlates with an earlier peak of the spectral norm (lambda_1)",
       study="sd_lr", figure="sharpest.fig1b",
       rule="the epoch of the maximum of top_eigenvalues/lambda_1 (its first probed step) falls strictly as optimizer.lr "
            "grows, for every seed (all seeds the other way: does not hold; seeds that disagree, ties included: "
            "inconclusive)" + _PEAK_RULE,
       paper_numbers="no number in the text; Fig. 1b: 'a larger learning rate ... correlates with a smaller and earlier "
                     "peak of the spectral norm'")
def peak_lr_time(frame, scale):
    return _peak_ordered(frame, LR, field="epoch", falls=True, what="the epoch of the peak of lambda_1")


@claim("sharpest.peak_bs_height", paper="Sharpest directions", where="Fig. 1b (batch size)",
       statement="a smaller batch size correlates with a smaller peak of the spectral norm (lambda_1)",
       study="sd_bs", figure="sharpest.fig1b",
       rule="max of top_eigenvalues/lambda_1 over the run rises strictly as train.batch_size grows, for every seed (all "
            "seeds the other way: does not hold; seeds that disagree: inconclusive)" + _PEAK_RULE,
       paper_numbers="no number in the text; 'a larger learning rate (or a smaller batch-size) correlates with a smaller "
                     "and earlier peak'")
def peak_bs_height(frame, scale):
    return _peak_ordered(frame, BS, field="value", falls=False, what="the peak of lambda_1")


@claim("sharpest.peak_bs_time", paper="Sharpest directions", where="Fig. 1b (batch size)",
       statement="a smaller batch size correlates with an earlier peak of the spectral norm (lambda_1), in epochs",
       study="sd_bs", figure="sharpest.fig1b",
       rule="the epoch of the maximum of top_eigenvalues/lambda_1 rises strictly as train.batch_size grows, for every seed "
            "(epochs, not steps: the same examples seen at every batch size; all seeds the other way: does not hold; "
            "seeds that disagree, ties included: inconclusive)" + _PEAK_RULE,
       paper_numbers="no number in the text; 'a larger learning rate (or a smaller batch-size) correlates with a smaller "
                     "and earlier peak'")
def peak_bs_time(frame, scale):
    return _peak_ordered(frame, BS, field="epoch", falls=False, what="the epoch of the peak of lambda_1")


# --- Fig. 2b: the SGD step overshoots along e_1 ----------------------------------------------------------------------

def _overshoot_run(frame, run: str):
    half = series(frame, ALPHA_HALF, run=run)[["step", "value"]]
    one = series(frame, ALPHA_ONE, run=run)[["step", "value"]]
    both = half.merge(one, on="step", suffixes=("_half", "_one")).dropna()
    if not len(both):
        return "no probed step with both alphas", "no steps", {"n": 0}
    start = _EARLY * int(both["step"].max())
    late = both[both["step"] >= start]
    a, b = (float(late["value_half"].mean()), float(late["value_one"].mean())) if len(late) else (math.nan, math.nan)
    numbers = {"n": len(late), "from_step": math.ceil(start), "dloss_alpha_0.5": a, "dloss_alpha_1": b}
    text = f"mean Delta L: alpha 0.5 {a:.3g}, alpha 1 {b:.3g} over {len(late)} probed steps from step {math.ceil(start)}"
    if len(late) < _MIN_POINTS:
        return f"too few probe points ({len(late)} probed steps after the early phase; need {_MIN_POINTS})", text, numbers
    return a < b, text, numbers


@claim("sharpest.overshoot", paper="Sharpest directions", where="Fig. 2b",
       statement="the SGD step does not minimise the loss along the sharpest direction: halving its component along e_1 "
                 "(alpha = 0.5) lowers the loss more than the SGD step itself (alpha = 1)",
       study="sd_lr", figure="sharpest.fig2b",
       rule=f"for each run, over the probed steps after the early phase (steps >= {_EARLY:.0%} of the run's last probed "
            f"step; at least {_MIN_POINTS} of them): the mean of sharpest_directions/dloss_alpha_0.5 is below the mean of "
            f"sharpest_directions/dloss_alpha_1. Holds if so in every run; does not hold if in none; inconclusive if the "
            f"runs disagree, a run has too few probed steps, or did not finish",
       paper_numbers="no number in the text; Fig. 2b (SimpleCNN, eta = 0.005, S = 128; average loss change for alpha = "
                     "0.5, 1, 2): 'the SGD step-size in the direction of the sharpest direction does not minimize the "
                     "loss. However, halving the step size can further minimize the loss in this direction'")
def overshoot(frame, scale):
    results, numbers = {}, {}
    for run in runs(frame):
        shows, text, numbers[run] = _overshoot_run(frame, run)
        results[run] = (shows, text)
    what = "alpha = 0.5 lowering the loss more than alpha = 1 after the early phase"
    return every_finished_run(frame, results, what=what, numbers={"runs": numbers})


# --- Nudged SGD ----------------------------------------------------------------------------------------------------

def _nsgd_ordered(frame, metric: str, *, what: str, stat: str = "mean", late: bool = False) -> Verdict:
    window = {}
    if late:
        window["after_step"] = math.ceil(_LATE * int(series(frame, metric)["step"].max()))
    table = compare(frame, metric, stat=stat, by=GAMMA, **window)
    reason = unfinished(frame)
    if reason:
        return Verdict("inconclusive", describe(table, GAMMA), reason, _numbers(table, GAMMA, **window))
    v = ordered(table, GAMMA, falls=True, what=what)
    v.numbers.update(window)
    return v


_NSGD_NOTE = ("the poster: 'NSGD trains faster and steers towards an order of magnitude sharper region' (SimpleCNN; "
              "validation accuracy, spectral norm solid and Frobenius norm dashed on a log scale); no number in the text")


@claim("sharpest.nsgd_faster", paper="Sharpest directions", where="Nudged SGD figure (left)",
       statement="Nudged SGD with gamma < 1 (a learning rate gamma * eta along the top-K sharpest directions) trains "
                 "faster than SGD",
       study="sd_nsgd", figure="sharpest.nsgd",
       rule="mean of evaluation/val_accuracy over the epoch ends (the area under the validation accuracy curve) falls "
            "strictly as optimizer.gamma grows from 0.1 (Nudged SGD) to 1 (plain SGD), for every seed (all seeds the "
            "other way: does not hold; seeds that disagree or a run that did not finish: inconclusive)",
       paper_numbers=_NSGD_NOTE)
def nsgd_faster(frame, scale):
    return _nsgd_ordered(frame, VAL_ACC, what="mean validation accuracy")


@claim("sharpest.nsgd_spectral", paper="Sharpest directions", where="Nudged SGD figure (right, solid)",
       statement="Nudged SGD with gamma < 1 steers towards a sharper region: a larger spectral norm of the Hessian",
       study="sd_nsgd", figure="sharpest.nsgd",
       rule=f"mean of hessian_norms/spectral_norm over the probed steps of the last quarter of the run (steps >= "
            f"{_LATE:.0%} of the last probed step) falls strictly as optimizer.gamma grows from 0.1 to 1, for every seed "
            f"(all seeds the other way: does not hold; seeds that disagree or a run that did not finish: inconclusive)",
       paper_numbers=_NSGD_NOTE)
def nsgd_spectral(frame, scale):
    return _nsgd_ordered(frame, SPECTRAL, what="late spectral norm of H", late=True)


@claim("sharpest.nsgd_frobenius", paper="Sharpest directions", where="Nudged SGD figure (right, dashed)",
       statement="Nudged SGD with gamma < 1 steers towards a sharper region: a larger Frobenius norm of the Hessian",
       study="sd_nsgd", figure="sharpest.nsgd",
       rule=f"mean of hessian_norms/frobenius_norm (Hutchinson estimate) over the probed steps of the last quarter of the "
            f"run (steps >= {_LATE:.0%} of the last probed step) falls strictly as optimizer.gamma grows from 0.1 to 1, "
            f"for every seed (all seeds the other way: does not hold; seeds that disagree or a run that did not finish: "
            f"inconclusive)",
       paper_numbers=_NSGD_NOTE)
def nsgd_frobenius(frame, scale):
    return _nsgd_ordered(frame, FROBENIUS, what="late Frobenius norm of H", late=True)
