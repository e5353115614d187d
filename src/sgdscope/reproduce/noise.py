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

import math

import numpy as np
import torch

from .. import toys
from ..analysis import series
from .claim import Verdict, claim
from .noise_studies import GRAD_TOL, PAPER
from .regime import Precondition, each_run, probed_at_least, trajectory
from .rules import every_finished_run, runs

__all__ = []


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
_RESOLVED = 2.0  # the trace change at every eta beyond two standard errors
_MIN_RECORDED = 10  # recorded steps of a toy's chain means
_MIN_LATE = 2  # CS(H, C) probed at two epochs or more after the early phase


# --- reading runs ------------------------------------------------------------------------------------------------


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
    """:func:`~.rules.every_finished_run` over ``judge(frame, run) -> (shows, text, numbers)`` of every
    run that finished, ``summary(numbers of the runs)`` (our numbers over seeds) in front of the runs'
    own."""
    states = frame.drop_duplicates("run").set_index("run")["state"] if "state" in frame.columns else {}
    results, numbers = {}, {}
    for run in runs(frame):
        if states.get(run, "done") == "done":
            shows, text, numbers[run] = judge(frame, run)
            results[run] = (shows, text)
    v = every_finished_run(frame, results, what=what, numbers={"runs": numbers})
    if numbers:
        v.ours = f"{summary(list(numbers.values()))}; per run: {v.ours}"
    return v



# --- the regime of the claims (preconditions, fixed before any result was seen) ------------------------------------

def _measured(frame, run: str, metric: str):
    """(epochs, values) of ``metric`` in ``run`` by step, NaN left out; empty where it was not recorded."""
    t = trajectory(frame, run, metric)
    return t["epoch"].to_numpy(dtype=float), t["value"].to_numpy(dtype=float)


def _scalar(frame, run: str, metric: str) -> float:
    v = _measured(frame, run, metric)[1]
    return float(v[-1]) if len(v) else math.nan


def _resolved(frame, run: str, scale: str):
    r = _scalar(frame, run, "trace_rate/resolution")
    return bool(r >= _RESOLVED), (f"least |trace change| over the learning rates = {r:.3g} standard errors"
                                  if np.isfinite(r) else "trace_rate/resolution not recorded"), {"resolution": r}


CHANGE_RESOLVED = each_run(
    "change_resolved", check_run=_resolved,
    paper="§4.2, eq. 15: the trace evolution over the measured iterations after the ensemble equilibrated (Fig. 2b: "
          "1000 iterations to equilibrate, 1000 measured)",
    test=f"at every learning rate the measured trace change exceeds {_RESOLVED:g} standard errors (over chains): the "
         f"measured steps are long enough to see it",
    remedy="measure over more steps or more chains")


def _recorded(frame, run: str, scale: str):
    names = [f"noise_structure/{k}_{q}" for k in ("sgd", "isotropic_subspace") for q in ("trace", "det")]
    counts = {m: len(_measured(frame, run, m)[1]) for m in names}
    finite = all(np.isfinite(_measured(frame, run, m)[1]).all() for m in names)
    n = min(counts.values())
    return bool(n >= _MIN_RECORDED and finite), f"{n} recorded steps of the chain means, " + \
        ("all finite" if finite else "some not finite (chains left the valley)"), {"recorded": n, "finite": finite}


IN_VALLEY = each_run(
    "in_valley", check_run=_recorded,
    paper="§3 Theorem 1, Fig. 2c-d: the chains move within the valley from (0, 0, 1, 0) under each noise (20,000 "
          "iterations)",
    test=f"the chain means of trace and determinant under both noises recorded at {_MIN_RECORDED} or more steps, every "
         f"value finite",
    remedy="run more steps or a smaller learning rate")


def _stationary(frame, run: str, scale: str):
    values = _measured(frame, run, "valley_slope/noisy_theta_2_mean")[1]
    se = _scalar(frame, run, "valley_slope/stationary_stderr")
    late = values[-(len(values) // 3):] if len(values) >= 6 else np.array([])
    if len(late) < 2 or not np.isfinite(se):
        return False, f"{len(late)} recorded steps in the last third", {"n": len(late)}
    first, second = late[: len(late) // 2].mean(), late[len(late) // 2:].mean()
    drift, allowed = abs(second - first), _SIGMA * math.sqrt(2) * se
    return bool(drift <= allowed), (f"the chains' mean theta_2 over the halves of the last third: {first:.4g} and "
                                    f"{second:.4g} (drift {drift:.2g}, allowed {allowed:.2g})"), \
        {"drift": drift, "allowed": allowed}


STATIONARY = each_run(
    "stationary", check_run=_stationary,
    paper="App. A.6, eq. 38: the stationary distribution of theta_2 under noise ('<theta_2> = -0.02' at the steady "
          "state)",
    test=f"the chains' mean theta_2 does not drift over the last third of the run: the means of its two halves differ "
         f"by at most {_SIGMA:g} sqrt(2) standard errors (over chains)",
    remedy="run more steps")


def _at_minimum(frame, run: str, scale: str):
    g = _scalar(frame, run, "negative_sum/base_grad_norm")
    return bool(g <= GRAD_TOL), (f"gradient norm at the start = {g:.3g}" if np.isfinite(g) else
                                 "negative_sum/base_grad_norm not recorded"), {"base_grad_norm": g}


AT_MINIMUM = each_run(
    "at_minimum", check_run=_at_minimum,
    paper="§4.1, App. A.3: 'near a true minimum' (the snapshots around a minimum of the training loss)",
    test=f"the run starts at a true minimum: gradient norm <= {GRAD_TOL:g} after gradient descent",
    remedy="more gradient descent steps before the snapshots")

AFTER_EARLY_PHASE = probed_at_least(
    "hessian_noise/cosine", _MIN_LATE, key="after_early_phase", after_epoch=_EARLY_EPOCHS,
    what="probed epochs", paper="App. A.4: 'after several epochs of initial training'; §2: 'an early phase of training "
                                "corresponding to ~10 epochs'",
    remedy=f"train for more than {_EARLY_EPOCHS + _MIN_LATE - 1} epochs")


def _long_enough(frame, run: str, scale: str):
    epochs, raw = _measured(frame, run, "fdr/ratio")
    sub_epochs, sub = _measured(frame, run, "fdr/ratio_subspace")
    e_sub, e_raw = _first_below(sub_epochs, sub, _YAIDA), _first_below(epochs, raw, _YAIDA)
    last = float(epochs[-1]) if len(epochs) else 0.0
    need = _LONG * e_sub if e_sub is not None else float(_EARLY_EPOCHS)
    inside = e_raw is not None or last >= need
    return bool(inside), (f"{last:g} epochs; the top-1 ratio below {_YAIDA:g} from epoch {_epoch(e_sub)}, the raw from "
                          f"epoch {_epoch(e_raw)}; needs {need:g} epochs or the raw below it"), {"epochs": last, "need": need}


LONG_ENOUGH = each_run(
    "long_enough", check_run=_long_enough,
    paper="App. A.5: 'After several epochs, |O_L/O_R - 1| in top-1 subspace is already less then 10^-2 ... while the "
          "state in the whole parameter space is still far from equilibrium after 50 epoch of training'",
    test=f"the run lasts {_LONG} times the first epoch e_top with the top-1 ratio below {_YAIDA:g} (or "
         f"{_EARLY_EPOCHS} epochs, 'several', when it never gets there), unless the raw space gets below it too",
    remedy="train for more epochs")


def _converged(least: int):
    def check(frame, run: str, scale: str):
        _, converged = _measured(frame, run, "valley_path/converged")
        missed = int((converged < 0.5).sum())
        return bool(missed == 0 and len(converged) >= least), \
            f"{len(converged)} projected states, {missed} of them above the threshold", \
            {"states": len(converged), "not_converged": missed}
    return check


def _projected(least: int) -> Precondition:
    return each_run(
        "converged_states", check_run=_converged(least),
        paper="§2.1.1: the states of SGD projected to 'nearby minima' (the projection converges below the least training "
              "loss of the checkpoints)",
        test=f"every projection reached the threshold, and at least {least} projected states",
        remedy="more GD steps in the projection or more checkpoints")


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
                     "a linear relation as predicted'", preconditions=(CHANGE_RESOLVED,))
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
                     "'consistent with our analysis'", preconditions=(IN_VALLEY,))
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
                     "decreasing to negative infinity'", preconditions=(STATIONARY,))
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
       rule=f"each run (seed) starts at a true minimum (gradient descent to a gradient norm <= {GRAD_TOL:g}; the study "
            f"refuses a start that did not reach it) and fits negative_sum = w (L - L*) + b over its snapshots "
            f"(negative_sum/slope, intercept, r2). A run shows a line when w < 0 and R^2 >= {_LINEAR_R2}. Holds if every "
            f"run shows it and the mean intercept over the seeds is within {_SIGMA:g} standard errors (over seeds) of 0; "
            f"does not hold if no run shows a line, or every run does and the intercept is further from 0; "
            f"inconclusive if the runs disagree or there are fewer than {_MIN_SEEDS} seeds",
       paper_numbers="Fig. 2a (MNIST, 500 examples, a one-hidden-layer net of 6220 parameters, label smoothing; batch "
                     "sizes 5-250, lr 0.001-0.1): best fit y = w x + b with w = -40.07, b = 1.22e-5: 'the data is nearly "
                     "a straight line and the y-intercept is almost zero'", preconditions=(AT_MINIMUM,))
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
          figure="noise.fig5", rule=_ALIGNMENT_RULE, paper_numbers=_ALIGNMENT_PAPER, preconditions=(AFTER_EARLY_PHASE,),
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
    return e_raw is None or e_raw >= _LONG * e_sub, text, numbers


@claim("noise.fdr_timescales", paper=PAPER, where="§2.1.3, App. A.5, Fig. 6",
       statement="timescale separation: |O_L / O_R - 1| falls below 1e-2 in the top-1 Hessian eigenspace long before "
                 "it does in the raw parameter space",
       study="noise_fdr", figure="noise.fig6",
       rule=f"per run, |O_L / O_R - 1| over each epoch (fdr/ratio_subspace on the top-1 eigenvector, fdr/ratio in the raw "
            f"space): e_top = the first epoch with the top-1 value < {_YAIDA:g}, e_raw the same for the raw space. The "
            f"run shows it when e_top exists and e_raw >= {_LONG} e_top or the raw space never gets below {_YAIDA:g} (the "
            f"run's length is the precondition long_enough); it does not when the top-1 value never gets below "
            f"{_YAIDA:g} or e_raw < {_LONG} e_top. Holds if every run shows it; does not hold if none does; inconclusive "
            f"otherwise or if a run did not finish",
       paper_numbers="App. A.5, Fig. 6 (a small CNN on CIFAR-10): 'After several epochs, |O_L/O_R - 1| in top-1 subspace "
                     "is already less then 10^-2 ... while the state in the whole parameter space is still far from "
                     "equilibrium after 50 epoch of training'", preconditions=(LONG_ENOUGH,))
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
    return broken == 0, text, numbers


@claim("noise.valley_connected", paper=PAPER, where="§2.1.1, Fig. 1",
       statement="the states of SGD projected to nearby minima (full-batch GD to below the least training loss) form a "
                 "line-connected path: SGD moves within a minimal valley",
       study="noise_valley", figure="noise.fig1",
       rule="per run, the projected path (checkpoints at every epoch's end; between two projections that are not line "
            "connected, on 10 evenly spaced points below the threshold, the state halfway is projected too, down to "
            "adjacent steps; every projection reaching the threshold is the precondition converged_states): the run "
            "shows it when every consecutive pair is line connected (valley_path/connected = 1), does not when some "
            "pair of adjacent steps is not. Holds if every run shows it; does not hold if none does; inconclusive otherwise or if a run did "
            "not finish",
       paper_numbers="Fig. 1 (PreAct-ResNet18, VGG16 on CIFAR-10, 150 epochs; 2700 and 4020 projected points): 'after a "
                     "few epochs, the training loss along the path remains close to zero ... there exists at least one "
                     "minimal valley connected to the model state found by regular SGD'", preconditions=(_projected(2),))
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
                     "trace indeed decreases on average in both cases'", preconditions=(_projected(_MIN_STATES),))
def valley_trace(frame, scale):
    return _verdict(frame, _trend_run, what="a falling trace along the projected path",
                    summary=lambda ns: (f"Tr H at the first projected state: {_spread(n['first'] for n in ns)}, at the "
                                        f"last: {_spread(n['last'] for n in ns)}"))
