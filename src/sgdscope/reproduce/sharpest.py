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

from ..analysis import peak, series
from .claim import Rule, Study, claim, study
from .regime import each_run, peak_inside, probed_at_least, run_value, trajectory
from .rules import after_share, each_run_shows, ordering

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
    "tiny": {"config": {**_TINY, "name": "sd-lr-tiny", "optimizer": {"name": "sgd", "lr": 0.05},
                        "train": {"epochs": 8, "batch_size": 32}, "probes": _lr_probes(5, 30)},
             "grid": {LR: [0.05, 0.2]}, "seeds": [0, 1]},
    "cpu": {"config": {**_CPU, "name": "sd-lr-cpu", "optimizer": {"name": "sgd", "lr": 0.01},
                       "train": {"epochs": 5, "batch_size": 128}, "probes": _lr_probes(10, 30)},
            "grid": {LR: [0.02, 0.05, 0.1]}, "seeds": [0, 1, 2]},
    "paper": {"config": {**_PAPER, "name": "sd-lr-paper", "optimizer": {"name": "sgd", "lr": 0.005},
                         "train": {"epochs": 50, "batch_size": 128, "checkpoint_every": 500},
                         "probes": _lr_probes(30, 60)},
              "grid": {LR: [0.005, 0.01, 0.05]}, "seeds": [0, 1, 2]},
}))

_TOP2 = {"top_eigenvalues": {"k": 2}}

BS_STUDY = study(Study("sd_bs", "Sharpest directions", sweeps={
    "tiny": {"config": {**_TINY, "name": "sd-bs-tiny", "optimizer": {"name": "sgd", "lr": 0.05},
                        "train": {"epochs": 12, "batch_size": 32}, "probes": _spaced(30, _TOP2)},
             "grid": {BS: [16, 128]}, "seeds": [0, 1]},
    "cpu": {"config": {**_CPU, "name": "sd-bs-cpu", "optimizer": {"name": "sgd", "lr": 0.05},
                       "train": {"epochs": 5, "batch_size": 128}, "probes": _spaced(40, _TOP2)},
            "grid": {BS: [32, 128, 512]}, "seeds": [0, 1, 2]},
    "paper": {"config": {**_PAPER, "name": "sd-bs-paper", "optimizer": {"name": "sgd", "lr": 0.005},
                         "train": {"epochs": 50, "batch_size": 128, "checkpoint_every": 500},
                         "probes": _spaced(60, _TOP2)},
              "grid": {BS: [32, 128, 512]}, "seeds": [0, 1, 2]},
}))


def _nsgd(lr: float, top_k: int) -> dict:
    return {"name": "nudged_sgd", "lr": lr, "gamma": 0.1, "top_k": top_k, "recompute_every": 10}


NSGD_STUDY = study(Study("sd_nsgd", "Sharpest directions", sweeps={
    "tiny": {"config": {**_TINY, "name": "sd-nsgd-tiny", "optimizer": _nsgd(0.1, 3),
                        "train": {"epochs": 5, "batch_size": 32},
                        "probes": {"hessian_norms": {"every": 10, "epoch_end": True}}},
             "grid": {GAMMA: [0.1, 1.0]}, "seeds": [0, 1]},
    "cpu": {"config": {**_CPU, "name": "sd-nsgd-cpu", "optimizer": _nsgd(0.1, 5),
                       "train": {"epochs": 5, "batch_size": 128},
                       "probes": {"hessian_norms": {"every": 150, "epoch_end": True}}},
            "grid": {GAMMA: [0.1, 1.0]}, "seeds": [0, 1, 2]},
    "paper": {"config": {**_PAPER, "name": "sd-nsgd-paper", "optimizer": _nsgd(0.005, 5),
                         "train": {"epochs": 50, "batch_size": 128, "checkpoint_every": 500},
                         "probes": {"hessian_norms": {"log_spaced": 60, "epoch_end": True}}},
              "grid": {GAMMA: [0.1, 1.0]}, "seeds": [0, 1, 2]},
}))

# --- thresholds of the rules and preconditions (fixed before any result was seen) ------------------------------------

_MIN_POINTS = 5  # probed steps a rise (up to the peak) or the late phase needs
_RISE = 2.0  # "a sharp increase": the maximum at least twice the first probed value
_REACHED = 0.75  # the peak lies before 3/4 of the run's last probed step: a settled phase of a quarter of the run follows
_EARLY = 0.1  # the early phase: the first 10% of the run's steps
_LATE = 0.75  # "the region it reaches": the last quarter of the run's steps
_EDGE = 1.0  # plain SGD's step limits its curvature: eta * max lambda_1 >= 1 (half the stability edge 2 / eta)

# --- the regime of the poster's claims -------------------------------------------------------------------------------

PEAK_SETTLED = peak_inside(
    LAMBDA, what="lambda_1", key="peak_settled", before_share=_REACHED,
    paper="Fig. 1a: 'a sharp increase and a steady decrease afterwards'; 'curvature ... initially grows, and then "
          "stabilizes or decays' (the peak reached, then a settled phase)",
    remedy="train longer (more epochs) so that the peak is followed by a settled phase")


RISE_PROBED = probed_at_least(
    LAMBDA, _MIN_POINTS, key="rise_probed", before=lambda traj: peak(traj).step, what="probed steps up to the peak",
    paper="Fig. 1a-b: the evolution of the top eigenvalues from the start of training (the rise to the peak seen)",
    remedy="probe lambda_1 more often early (more log-spaced probe points)")

LATE_PROBED = probed_at_least(
    ALPHA_ONE, _MIN_POINTS, key="late_probed", after=lambda traj: math.ceil(_EARLY * int(traj["step"].max())),
    what=f"probed steps after the early phase (the first {_EARLY:.0%} of the run)",
    paper="Fig. 2b: the average loss change along the sharpest direction over training, after the bowl-like shape "
          "forms 'in the beginning of training' (Fig. 2a)",
    remedy="probe the sharpest directions more often")


def _at_edge(frame, run: str, scale: str):
    gamma, lr = run_value(frame, run, GAMMA, 1.0), run_value(frame, run, LR)
    if gamma != 1.0:
        return True, f"Nudged SGD (gamma = {gamma:g}): the regime is read on plain SGD", {"gamma": gamma}
    traj = trajectory(frame, run, SPECTRAL)
    if not len(traj):
        return False, f"{SPECTRAL} not recorded", {}
    top = float(traj["value"].max())
    return bool(lr * top >= _EDGE), f"eta * max lambda_1 = {lr:g} * {top:.4g} = {lr * top:.3g}", \
        {"eta_lambda_max": lr * top, "lambda_max": top}


SGD_AT_EDGE = each_run(
    "sgd_at_edge", check_run=_at_edge,
    paper="the poster's conclusions: 'SGD steers from the beginning towards increasingly sharp regions ... up to a level "
          "dependent on the learning rate' and 'SGD step is large compared to the curvature along the sharpest "
          "directions' (Nudged SGD lowers the step along them)",
    test=f"the plain SGD runs (gamma = 1) reach eta * max lambda_1 >= {_EDGE:g} (the spectral norm of "
         f"hessian_norms) at some probed step, half the stability edge 2 / eta",
    remedy="raise the learning rate or train longer")


# --- Fig. 1a: rise then settle ----------------------------------------------------------------------------------

def _rise_run(frame, run: str):
    traj = trajectory(frame, run, LAMBDA)
    if not len(traj):
        return f"{LAMBDA} not recorded", "no steps", {"n": 0}
    p = peak(traj)
    first = float(traj["value"].iloc[0])
    ratio = p.value / first if first > 0 else math.inf
    numbers = {"value": p.value, "step": p.step, "epoch": p.epoch, "first": first, "ratio": ratio,
               "last_step": int(traj["step"].max()), "n": len(traj)}
    text = (f"lambda_1 {first:.3g} at the first probed step, max {p.value:.3g} (x{ratio:.3g}) at step {p.step} of "
            f"{numbers['last_step']}")
    return ratio >= _RISE, text, numbers


claim("sharpest.rise_then_settle", paper="Sharpest directions", where="Fig. 1a",
      statement="the top eigenvalues of the Hessian follow a predictable pattern: a sharp increase, then they settle "
                "(stabilise or decrease steadily)",
      study="sd_lr", figure="sharpest.fig1a",
      rule=Rule(f"for each run, on {LAMBDA}: the run shows a sharp increase when its maximum is at least {_RISE:g} times "
                f"its value at the first probed step, and does not when it is below that (the settled phase after the "
                f"peak is the precondition peak_settled). Holds if every run shows it; does not hold if none does; "
                f"inconclusive if the runs disagree or a run did not finish",
                lambda frame, scale: each_run_shows(frame, _rise_run, what=f"lambda_1 rising x{_RISE:g} or more to "
                                                                           f"its peak")),
      preconditions=(PEAK_SETTLED, RISE_PROBED),
      paper_numbers="no number in the text; Fig. 1a (SimpleCNN, CIFAR-10, eta = 0.005, the 10 largest eigenvalues): 'a "
                    "sharp increase and a steady decrease afterwards'; 'curvature along this direction initially grows, "
                    "and then stabilizes or decays'")


# --- Fig. 1b: the peak against the learning rate and the batch size -------------------------------------------------

_FIG1B = ("no number in the text; Fig. 1b (SimpleCNN, lambda_1 and lambda_2 on a log scale for different learning "
          "rates): 'a larger learning rate (or a smaller batch-size) correlates with a smaller and earlier peak of the "
          "spectral norm and the subsequent largest eigenvalue'")

claim("sharpest.peak_lr_height", paper="Sharpest directions", where="Fig. 1b",
      statement="a larger learning rate correlates with a smaller peak of the spectral norm (lambda_1)",
      study="sd_lr", figure="sharpest.fig1b", paper_numbers=_FIG1B, preconditions=(PEAK_SETTLED, RISE_PROBED),
      rule=ordering(LAMBDA, LR, falls=True, what="the peak of lambda_1", stat="max"))

claim("sharpest.peak_lr_time", paper="Sharpest directions", where="Fig. 1b",
      statement="a larger learning rate correlates with an earlier peak of the spectral norm (lambda_1)",
      study="sd_lr", figure="sharpest.fig1b", paper_numbers=_FIG1B, preconditions=(PEAK_SETTLED, RISE_PROBED),
      rule=ordering(LAMBDA, LR, falls=True, what="the epoch of the peak of lambda_1", stat="argmax_epoch"))

claim("sharpest.peak_bs_height", paper="Sharpest directions", where="Fig. 1b (batch size)",
      statement="a smaller batch size correlates with a smaller peak of the spectral norm (lambda_1)",
      study="sd_bs", figure="sharpest.fig1b", paper_numbers=_FIG1B, preconditions=(PEAK_SETTLED, RISE_PROBED),
      rule=ordering(LAMBDA, BS, falls=False, what="the peak of lambda_1", stat="max"))

claim("sharpest.peak_bs_time", paper="Sharpest directions", where="Fig. 1b (batch size)",
      statement="a smaller batch size correlates with an earlier peak of the spectral norm (lambda_1), in epochs (the "
                "same examples seen at every batch size)",
      study="sd_bs", figure="sharpest.fig1b", paper_numbers=_FIG1B, preconditions=(PEAK_SETTLED, RISE_PROBED),
      rule=ordering(LAMBDA, BS, falls=False, what="the epoch of the peak of lambda_1", stat="argmax_epoch"))


# --- Fig. 2b: the SGD step overshoots along e_1 ----------------------------------------------------------------------

def _overshoot_run(frame, run: str):
    half = series(frame, ALPHA_HALF, run=run)[["step", "value"]]
    one = series(frame, ALPHA_ONE, run=run)[["step", "value"]]
    both = half.merge(one, on="step", suffixes=("_half", "_one")).dropna()
    if not len(both):
        return "no probed step with both alphas", "no steps", {"n": 0}
    start = math.ceil(_EARLY * int(both["step"].max()))
    late = both[both["step"] >= start]
    a, b = float(late["value_half"].mean()), float(late["value_one"].mean())
    numbers = {"n": len(late), "from_step": start, "dloss_alpha_0.5": a, "dloss_alpha_1": b}
    text = f"mean Delta L: alpha 0.5 {a:.3g}, alpha 1 {b:.3g} over {len(late)} probed steps from step {start}"
    return a < b, text, numbers


@claim("sharpest.overshoot", paper="Sharpest directions", where="Fig. 2b",
       statement="the SGD step does not minimise the loss along the sharpest direction: halving its component along e_1 "
                 "(alpha = 0.5) lowers the loss more than the SGD step itself (alpha = 1)",
       study="sd_lr", figure="sharpest.fig2b", preconditions=(LATE_PROBED,),
       rule=f"for each run, over the probed steps after the early phase (steps >= {_EARLY:.0%} of the run's last probed "
            f"step): the mean of {ALPHA_HALF} is below the mean of {ALPHA_ONE}. Holds if so in every run; does not hold "
            f"if in none; inconclusive if the runs disagree or a run did not finish",
       paper_numbers="no number in the text; Fig. 2b (SimpleCNN, eta = 0.005, S = 128; average loss change for alpha = "
                     "0.5, 1, 2): 'the SGD step-size in the direction of the sharpest direction does not minimize the "
                     "loss. However, halving the step size can further minimize the loss in this direction'")
def overshoot(frame, scale):
    return each_run_shows(frame, _overshoot_run, what="alpha = 0.5 lowering the loss more than alpha = 1 after the "
                                                      "early phase")


# --- Nudged SGD ----------------------------------------------------------------------------------------------------

_NSGD_NOTE = ("the poster: 'NSGD trains faster and steers towards an order of magnitude sharper region' (SimpleCNN; "
              "validation accuracy, spectral norm solid and Frobenius norm dashed on a log scale); no number in the text")

claim("sharpest.nsgd_faster", paper="Sharpest directions", where="Nudged SGD figure (left)",
      statement="Nudged SGD with gamma < 1 (a learning rate gamma * eta along the top-K sharpest directions) trains "
                "faster than SGD (the mean of the validation accuracy over the epoch ends: the area under its curve)",
      study="sd_nsgd", figure="sharpest.nsgd", paper_numbers=_NSGD_NOTE, preconditions=(SGD_AT_EDGE,),
      rule=ordering(VAL_ACC, GAMMA, falls=True, what="mean validation accuracy", stat="mean"))

claim("sharpest.nsgd_spectral", paper="Sharpest directions", where="Nudged SGD figure (right, solid)",
      statement="Nudged SGD with gamma < 1 steers towards a sharper region: a larger spectral norm of the Hessian",
      study="sd_nsgd", figure="sharpest.nsgd", paper_numbers=_NSGD_NOTE, preconditions=(SGD_AT_EDGE,),
      rule=ordering(SPECTRAL, GAMMA, falls=True, what="late spectral norm of H", stat="mean", window=after_share(_LATE)))

claim("sharpest.nsgd_frobenius", paper="Sharpest directions", where="Nudged SGD figure (right, dashed)",
      statement="Nudged SGD with gamma < 1 steers towards a sharper region: a larger Frobenius norm of the Hessian "
                "(Hutchinson estimate)",
      study="sd_nsgd", figure="sharpest.nsgd", paper_numbers=_NSGD_NOTE, preconditions=(SGD_AT_EDGE,),
      rule=ordering(FROBENIUS, GAMMA, falls=True, what="late Frobenius norm of H", stat="mean",
                    window=after_share(_LATE)))
