"""The vocabulary: every stored quantity, by probe type and value name, with its meaning, scale and source.

A run stores rows ``(step, epoch, probe, name, value)`` and arrays ``(probe, name, step)``, where
``probe`` is the instance name (a user's label, by default the probe type) and ``name`` the value
name. ``probes.json`` in the run maps each instance to its type, so a reader finds a quantity by
``(type, name)`` whatever the label: figures, ``ls``, comparisons and claims take their names from
here, and a test checks that every probe returns exactly the names listed for its type.

Value names with a placeholder stand for a family: ``lambda_{i}`` (i = 1..k), ``cos_e{i}``,
``mean_M{m}`` (a batch size m), ``dloss_alpha_{a}`` (an alpha such as 0.5), ``{set}_loss`` (a named
evaluation set such as ``train``, ``val``, ``test``).

``RECORDED`` lists the quantities of ``RECORD_TYPES``, written by the recorders of
:mod:`sgdscope.toys.record` (toy experiments, the FDR check, the projected valley path) rather than
by probes; ``RECORDERS`` names the call that writes each type.

Papers: BE = the Break-Even Point (Jastrzebski et al. 2020), Walk = A Walk with SGD (Xing et al.
2018), SD = the sharpest-directions poster and Nudged SGD, NH = how noise shapes the Hessian spectrum.
Every loss is the mean over examples (the papers' L), every Hessian that of this mean loss.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["Quantity", "QUANTITIES", "RECORDED", "PROBE_TYPES", "RECORD_TYPES", "RECORDERS", "COMMON", "quantity",
           "names_of", "describe"]


@dataclass(frozen=True)
class Quantity:
    """One stored quantity: ``type`` (probe type), ``name`` (value name, maybe a template),
    ``meaning`` (one line), ``unit`` (scale or unit), ``source`` (paper equation or figure),
    ``array`` (stored under ``arrays/`` rather than as metric rows)."""

    type: str
    name: str
    meaning: str
    unit: str
    source: str
    array: bool = False

    def matches(self, name: str) -> bool:
        return _pattern(self.name).fullmatch(name) is not None


def _q(type_, rows):
    return tuple(Quantity(type_, *row) for row in rows)


_H = "loss / parameter^2"
_G2 = "(loss / parameter)^2"

QUANTITIES: tuple[Quantity, ...] = (
    *_q("top_eigenvalues", [
        ("lambda_{i}", "i-th largest Hessian eigenvalue of the mean loss on the curvature subset (Lanczos)", _H, "BE Fig. 4-5 lambda_H^1; SD Fig. 1a"),
        ("max_residual", "largest Ritz residual ||H v - lambda v|| of the returned pairs", _H, "-"),
        ("matvecs", "Hessian-vector products Lanczos used at this step", "count", "-"),
        ("eigenvalues", "the top-k eigenvalues, descending", _H, "SD Fig. 1a", True),
    ]),
    *_q("hessian_norms", [
        ("spectral_norm", "max(|lambda_max|, |lambda_min|) of H", _H, "SD Nudged SGD figure (solid)"),
        ("lambda_min", "smallest Hessian eigenvalue", _H, "NH §4"),
        ("frobenius_norm", "||H||_F = sqrt(Tr H^2), Hutchinson estimate", _H, "SD Nudged SGD figure (dashed)"),
        ("frobenius_stderr", "standard error of frobenius_norm", _H, "-"),
    ]),
    *_q("hessian_trace", [
        ("trace", "Tr H by Hutch++ (or Hutchinson)", _H, "NH §4.3"),
        ("trace_stderr", "standard error of trace", _H, "-"),
    ]),
    *_q("spectral_density", [
        ("grid", "eigenvalue grid of the density", _H, "BE Fig. 3", True),
        ("density", "SLQ spectral density on grid (Gaussian broadening)", "1 / (loss / parameter^2)", "BE Fig. 3", True),
        ("nodes", "Gauss quadrature nodes of every SLQ run", _H, "BE Fig. 3", True),
        ("weights", "Gauss quadrature weights of every SLQ run", "probability", "BE Fig. 3", True),
    ]),
    *_q("gradient_noise", [
        ("lambda_1", "largest eigenvalue of K^M, the covariance of L size-M mini-batch gradients", _G2 + ", K^M scale", "BE App. C, Fig. 4-5 lambda_K^1"),
        ("lambda_star", "smallest nonzero ((L-1)-th) eigenvalue of K^M", _G2 + ", K^M scale", "BE App. C lambda_K^*"),
        ("ratio", "lambda_star / lambda_1 (an inverse condition number of K)", "ratio", "BE Conjecture 2, Fig. 4-5"),
        ("trace", "Tr K^M", _G2 + ", K^M scale", "BE App. E"),
        ("lambda_1_per_example", "lambda_1 of the per-example covariance K = M (N-1)/(N-M) K^M", _G2 + ", per example", "BE §3"),
        ("trace_per_example", "Tr K of the per-example covariance", _G2 + ", per example", "BE §3"),
        ("M", "examples per mini-batch gradient", "count", "BE App. C"),
        ("L", "mini-batch gradients in the estimate", "count", "BE App. C"),
        ("N", "examples the mini-batches are drawn from", "count", "BE App. C"),
        ("g_ratio", "||g|| / ||g_5||: the step's gradient against its projection on the top-k eigenvectors of K", "ratio", "BE §4.3"),
        ("spectrum", "all L eigenvalues of K^M, descending", _G2 + ", K^M scale", "BE Fig. 3", True),
    ]),
    *_q("hessian_noise", [
        ("cosine", "CS(H, C) = Tr(HC) / sqrt(Tr H^2 Tr C^2)", "cosine", "NH eq. 35"),
        ("stderr", "standard error of cosine", "cosine", "NH App. A.4"),
    ]),
    *_q("alignment", [
        ("mean_M{m}", "mean over mini-batches of size m of g^T H g / ||g||^2", _H, "Walk eq. 4, Fig. 5"),
        ("std_M{m}", "standard deviation of g^T H g / ||g||^2 over mini-batches of size m", _H, "Walk Fig. 5"),
    ]),
    *_q("stability", [
        ("value", "(1 - eta lambda_1)^2 + s^2 eta^2 (N - S) / (S (N - 1)) along e_H^1: stable while <= 1", "ratio", "BE eq. 1"),
        ("lambda_1", "largest Hessian eigenvalue (the direction e_H^1)", _H, "BE eq. 1"),
        ("s2", "variance over examples of the per-example curvature e^T H_i e", "(loss / parameter^2)^2", "BE eq. 1"),
    ]),
    *_q("loss_change", [
        ("delta_loss", "L(theta before the step) - L(theta after), on the curvature subset: > 0 while stable", "loss", "BE §4.1"),
        ("loss_before", "loss on the curvature subset before the step", "loss", "BE §4.1"),
        ("loss_after", "loss on the curvature subset after the step", "loss", "BE §4.1"),
    ]),
    *_q("distance_from_init", [
        ("from_init", "||theta - theta_0||", "parameter", "Walk §3"),
        ("step_norm", "||theta_after - theta_before||", "parameter", "Walk §3"),
    ]),
    *_q("gradient_cosine", [
        ("cosine", "cos(g_{t-1}, g_t) of consecutive training mini-batch gradients", "cosine", "Walk eq. 5, Fig. 7"),
    ]),
    *_q("bn_scale_norm", [
        ("last", "||gamma|| of the last batch-norm layer (NaN without batch norm)", "parameter", "BE §4.3, Fig. 7"),
        ("all", "||gamma|| over all batch-norm layers", "parameter", "BE §4.3"),
    ]),
    *_q("evaluation", [
        ("{set}_loss", "mean loss on the named fixed set", "loss", "BE App. E; SD Nudged SGD"),
        ("{set}_accuracy", "accuracy on the named fixed set", "fraction", "BE Fig. 4-5 (vertical lines)"),
    ]),
    *_q("interpolation", [
        ("crossed", "1 if an interior point of the segment before -> after lies above both ends", "0/1", "Walk §2-3"),
        ("barrier", "max interior loss minus the higher end (> 0 iff crossed)", "loss", "Walk §2"),
        ("height", "2 max(interior) - both ends", "loss", "Walk Fig. 4"),
        ("valley_floor", "minimum loss on the segment", "loss", "Walk Fig. 1-3 (dashed)"),
        ("valley_alpha", "where on the segment (0 = before, 1 = after) the minimum lies", "fraction", "Walk Fig. 1-3"),
        ("barriers_epoch", "barriers crossed over the epoch's probed steps (at epoch ends)", "count", "Walk Table 1, Fig. 4"),
        ("probed_epoch", "steps probed over the epoch (at epoch ends)", "count", "Walk Table 1"),
        ("curve", "the loss at the interpolation points", "loss", "Walk Fig. 1-3", True),
    ]),
    *_q("sharpest_directions", [
        ("step_e1", "eta E_B|g_B . e_1|: expected SGD step along the top eigenvector", "parameter", "SD Fig. 2a"),
        ("lambda_1", "largest Hessian eigenvalue", _H, "SD Fig. 1b"),
        ("dloss_alpha_{a}", "mean loss change of SGD steps whose e_1 component is scaled by a", "loss", "SD Fig. 2b"),
        ("cos_e{i}", "|cos(step, e_i)| of the step and the i-th top eigenvector", "cosine", "SD §2"),
        ("loss_along", "loss at theta + k step_e1 e_1 over grid", "loss", "SD Fig. 2a", True),
        ("grid", "the multiples k of step_e1", "ratio", "SD Fig. 2a", True),
    ]),
    *_q("predictions", [
        ("probs", "softmax outputs on the fixed test subset", "probability", "BE Fig. 1 (UMAP)", True),
    ]),
    *_q("train", [
        ("loss", "training mini-batch loss of the step (before the update)", "loss", "-"),
        ("lr", "learning rate of the step", "lr", "-"),
    ]),
)

# Written by the recorders of sgdscope.toys.record (RECORDERS below), not by probes: kept apart from
# QUANTITIES (what probes and the trainer store, checked against every probe), found by the same
# quantity() / names_of() / describe(). Toy runs are full-batch, so their epoch is the step; results
# without a time axis are stored at step 0.
RECORDED: tuple[Quantity, ...] = (
    *_q("trace_rate", [
        ("eta", "the learning rates eta of the runs", "lr", "NH §4.2, Fig. 2b", True),
        ("trace_change", "mean over chains of T(after the measured steps) - T(after equilibration), per eta", _H, "NH eq. 15, Fig. 2b", True),
        ("stderr", "standard error over chains of trace_change, per eta", _H, "NH Fig. 2b", True),
        ("slope", "least-squares slope of trace_change against eta^2", _H + " / lr^2", "NH Fig. 2b (red line)"),
        ("intercept", "least-squares intercept of trace_change against eta^2", _H, "NH Fig. 2b (red line)"),
        ("r2", "R^2 of that line", "ratio", "NH Fig. 2b"),
        ("predicted_slope", "-(measured steps / 4) s |grad T|^2 at the start", _H + " / lr^2", "NH eq. 15"),
        ("resolution", "least |trace_change| / stderr over the learning rates (the change resolved, in standard errors)", "ratio", "NH Fig. 2b"),
    ]),
    *_q("noise_structure", [
        ("{noise}_trace", "chain mean of T = sum_i lambda_i under noise kind {noise} (e.g. sgd, isotropic_subspace)", _H, "NH Theorem 1, Fig. 2c"),
        ("{noise}_trace_stderr", "standard error over chains of {noise}_trace", _H, "NH Fig. 2c"),
        ("{noise}_det", "chain mean of Det = prod_i lambda_i under noise kind {noise}", "(loss / parameter^2)^n", "NH Corollary 2.1, Fig. 2d"),
        ("{noise}_det_stderr", "standard error over chains of {noise}_det", "(loss / parameter^2)^n", "NH Fig. 2d"),
    ]),
    *_q("valley_slope", [
        ("gd_theta_1", "theta_1 (the valley's curved direction) under plain GD", "parameter", "NH App. A.6, Fig. 7 (left)"),
        ("gd_theta_2", "theta_2 (along the sloped valley floor) under plain GD", "parameter", "NH Fig. 7 (left)"),
        ("noisy_theta_1", "theta_1 of the first noisy-GD chain", "parameter", "NH Fig. 7 (right)"),
        ("noisy_theta_2", "theta_2 of the first noisy-GD chain", "parameter", "NH Fig. 7 (right)"),
        ("noisy_theta_2_mean", "theta_2 averaged over the noisy-GD chains", "parameter", "NH Fig. 7 (right)"),
        ("noisy_theta_2_stderr", "standard error over chains of noisy_theta_2_mean", "parameter", "NH Fig. 7"),
        ("stationary", "mean theta_2 of the noisy chains over the tail of the run (at the last step)", "parameter", "NH eq. 38"),
        ("stationary_stderr", "standard error over chains of stationary", "parameter", "NH eq. 38"),
        ("predicted", "-2 alpha / (eta s), the stationary theta_2 of eq. 38", "parameter", "NH eq. 38"),
    ]),
    *_q("negative_sum", [
        ("lr", "learning rate of each snapshot's SGD run", "lr", "NH §4.1, Fig. 2a", True),
        ("batch_size", "batch size of each snapshot's SGD run", "count", "NH Fig. 2a", True),
        ("loss", "full training loss at each snapshot", "loss", "NH Fig. 2a (x)", True),
        ("excess_loss", "loss - base_loss at each snapshot", "loss", "NH App. A.3", True),
        ("negative_sum", "sum of the negative Hessian eigenvalues at each snapshot (dense)", _H, "NH Fig. 2a (y)", True),
        ("slope", "least-squares slope of negative_sum against excess_loss", "1 / parameter^2", "NH Fig. 2a (red line, w)"),
        ("intercept", "least-squares intercept of that line", _H, "NH Fig. 2a (red line, b)"),
        ("r2", "R^2 of that line", "ratio", "NH Fig. 2a"),
        ("base_loss", "training loss L* at the GD minimum the SGD runs start from", "loss", "NH App. A.3"),
        ("base_negative_sum", "sum of the negative Hessian eigenvalues at the GD minimum", _H, "NH §4.1"),
        ("base_grad_norm", "gradient norm at the GD minimum the SGD runs start from (a true minimum: <= 1e-6)", "loss / parameter", "NH §4.1"),
        ("dim", "number of parameters D", "count", "-"),
    ]),
    *_q("fdr", [
        ("ratio", "|O_L / O_R - 1| over the window, in the full parameter space", "ratio", "NH App. A.5, Fig. 6 (raw parameter)"),
        ("ratio_subspace", "|O_L / O_R - 1| projected on the subspace (the top-1 Hessian eigenvector)", "ratio", "NH Fig. 6 (top-1)"),
        ("o_left", "O_L = <theta . g> over the window", "loss", "NH FDR"),
        ("o_right", "O_R = eta (1 + mu) / (2 (1 - nu)) <|v|^2> over the window", "loss", "NH FDR"),
        ("o_left_subspace", "O_L of the projections on the subspace", "loss", "NH FDR'"),
        ("o_right_subspace", "O_R of the projections on the subspace", "loss", "NH FDR'"),
        ("window", "steps in the window", "count", "-"),
    ]),
    *_q("valley_path", [
        ("train_loss", "training loss of the state projected to the minimal valley (full-batch GD)", "loss", "NH §2.1.1, Fig. 1"),
        ("val_loss", "validation loss of the projected state", "loss", "NH Fig. 1"),
        ("trace", "Tr H of the training loss at the projected state (Hutchinson)", _H, "NH §4.3, Fig. 3"),
        ("trace_stderr", "standard error of trace", _H, "NH Fig. 3 (red bars)"),
        ("gd_steps", "GD steps the projection took", "count", "NH §2.1.1"),
        ("converged", "1 if the projection reached the loss threshold", "0/1", "NH §2.1.1"),
        ("connected", "1 if line connected to the previous projected state", "0/1", "NH §2.1.1"),
    ]),
)

RECORDERS: dict[str, str] = {  # types written by a recorder (sgdscope.toys.record) rather than a probe
    "trace_rate": "sgdscope.toys.record_trace_rate(trace_rate_experiment(...), RUN_DIR)",
    "noise_structure": "sgdscope.toys.record_noise_structure(noise_structure_experiment(...), RUN_DIR)",
    "valley_slope": "sgdscope.toys.record_valley_slope(valley_slope_experiment(...), RUN_DIR)",
    "negative_sum": "sgdscope.toys.record_negative_sum(negative_eigenvalue_experiment(...), RUN_DIR)",
    "fdr": "sgdscope.toys.log_fdr(sink, step, epoch, FDRMonitor.result()) in the training loop",
    "valley_path": "sgdscope.toys.record_valley_path(projected_path(...), RUN_DIR, val_loss=..., trace=trace_along(...))",
}
RECORD_TYPES: tuple[str, ...] = tuple(dict.fromkeys(q.type for q in RECORDED))

PROBE_TYPES: tuple[str, ...] = tuple(dict.fromkeys(q.type for q in QUANTITIES if q.type != "train"))
_NOT_PROBES = ("train", *RECORD_TYPES)  # types no probe writes: the trainer's rows and the recorders'
_ALL = QUANTITIES + RECORDED
_COMMON = {  # recorded for every probe beside its own values
    "seconds": ("wall time of the probe at this step", "s", "-"),
    "failed": ("1 where the probe raised at this step (its values are then NaN; the error is in status.json)", "0/1", "-"),
}
COMMON = tuple(_COMMON)


def _pattern(template: str) -> re.Pattern:
    parts = re.split(r"(\{\w+\})", template)
    body = "".join(r"[A-Za-z0-9_.+-]+" if p.startswith("{") else re.escape(p) for p in parts)
    return re.compile(body)


def quantity(type_: str, name: str) -> Quantity:
    """The entry for value ``name`` of probe type ``type_``; KeyError lists the type's names."""
    for q in _ALL:
        if q.type == type_ and q.matches(name):
            return q
    if name in _COMMON and type_ in PROBE_TYPES:
        return Quantity(type_, name, *_COMMON[name])
    known = names_of(type_) if type_ in PROBE_TYPES or type_ in _NOT_PROBES else None
    if known is None:
        raise KeyError(f"unknown probe type {type_!r}; known: {', '.join(PROBE_TYPES)} "
                       f"(and, written by recorders: {', '.join(RECORD_TYPES)})")
    raise KeyError(f"probe type {type_!r} has no value {name!r}; its values: {', '.join(known)}")


def names_of(type_: str) -> tuple[str, ...]:
    """The value names (templates included) of a probe type, in the order listed."""
    return tuple(q.name for q in _ALL if q.type == type_)


def describe(type_: str, name: str) -> str:
    """``"meaning [unit; source]"``, for labels and tables."""
    q = quantity(type_, name)
    return f"{q.meaning} [{q.unit}; {q.source}]"


def metric(type_: str, name: str) -> str:
    """``"TYPE/NAME"``, the form readers select a quantity by, checked against the vocabulary
    (KeyError names the type's values)."""
    quantity(type_, name)
    return f"{type_}/{name}"


# The metrics that figures and claims read, named once (readers import them from here).
LAMBDA_H = metric("top_eigenvalues", "lambda_1")
EIGENVALUES_H = metric("top_eigenvalues", "eigenvalues")
LAMBDA_K = metric("gradient_noise", "lambda_1")
RATIO_K = metric("gradient_noise", "ratio")
TRACE_K = metric("gradient_noise", "trace")
G_RATIO = metric("gradient_noise", "g_ratio")
SPECTRUM_K = metric("gradient_noise", "spectrum")
DELTA_L = metric("loss_change", "delta_loss")
GAMMA_LAST = metric("bn_scale_norm", "last")
STABILITY = metric("stability", "value")
STABILITY_LAMBDA = metric("stability", "lambda_1")
TRAIN_ACCURACY = metric("evaluation", "train_accuracy")
VAL_ACCURACY = metric("evaluation", "val_accuracy")
PROBS = metric("predictions", "probs")
GRID_H, DENSITY_H = metric("spectral_density", "grid"), metric("spectral_density", "density")

# The config keys that studies vary and figures group by ("section.name" of config.toml).
LR, BATCH_SIZE, MOMENTUM, MODEL = "optimizer.lr", "train.batch_size", "optimizer.momentum", "model.name"

__all__ += ["metric", "LAMBDA_H", "EIGENVALUES_H", "LAMBDA_K", "RATIO_K", "TRACE_K", "G_RATIO", "SPECTRUM_K", "DELTA_L",
            "GAMMA_LAST", "STABILITY", "STABILITY_LAMBDA", "TRAIN_ACCURACY", "VAL_ACCURACY", "PROBS", "GRID_H", "DENSITY_H",
            "LR", "BATCH_SIZE", "MOMENTUM", "MODEL"]
