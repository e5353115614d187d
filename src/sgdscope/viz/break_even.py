"""Figures of the Break-Even Point (Jastrzebski et al. 2020), drawn from stored runs and sweeps.

``break_even.fig1``  trajectories embedded by their test predictions (UMAP, or PCA without
                     umap-learn) over a background of lambda_K^1 and of the training accuracy
``break_even.fig2``  lambda_H^1 and Delta L against lambda_K^1, coloured by learning rate
``break_even.fig3``  the spectra of K and H at the steps of their largest eigenvalue
``break_even.fig4``  lambda_K^1, lambda_K^*/lambda_K^1, lambda_H^1 against epoch per learning rate
``break_even.fig5``  the same per batch size
``break_even.fig7``  SimpleCNN against SimpleCNN-BN: lambda_K^1, the ratio, ||g||/||g_5||, ||gamma||
``break_even.app_e`` training and test accuracy and Tr K against epoch

Runs are grouped by the sweep's varied keys (the learning rate or batch size first); a group with
several seeds is drawn as the mean with a band from the lowest to the highest seed. The vertical
lines of Fig. 4-5 are where the training accuracy first reaches a threshold
(:func:`~sgdscope.analysis.accuracy_crossing`). Statistics come from :mod:`sgdscope.analysis`.
"""
from __future__ import annotations

import math
import warnings
from typing import Sequence

import numpy as np

from ..analysis import TRAIN_ACCURACY, MissingMetric, accuracy_crossing, moving_average, peak, series, window
from ..quantities import (BATCH_SIZE, DELTA_L, DENSITY_H, EIGENVALUES_H, G_RATIO, GAMMA_LAST as GAMMA, GRID_H, LAMBDA_H,
                          LAMBDA_K, LR, MODEL, PROBS, RATIO_K as RATIO, SPECTRUM_K, TRACE_K)
from . import groups as G
from .registry import figure
from .source import MissingData, Runs
from .style import colors, new_figure

__all__ = ["trajectory_embedding", "curvature_vs_noise", "spectra_at_peak", "lr_trajectories",
           "batch_size_trajectories", "batch_norm_comparison", "trace_and_accuracy"]


LABELS = {  # the paper's axis labels
    LAMBDA_K: r"$\lambda_K^1$", RATIO: r"$\lambda_K^*/\lambda_K^1$", TRACE_K: r"$\mathrm{Tr}(\mathbf{K})$",
    G_RATIO: r"$\|g\|/\|g_5\|$", LAMBDA_H: r"$\lambda_H^1$", DELTA_L: r"$\Delta\mathcal{L}$",
    GAMMA: r"$\|\gamma\|$", TRAIN_ACCURACY: "training accuracy", "evaluation/test_accuracy": "test accuracy",
    "evaluation/val_accuracy": "validation accuracy",
}
_LINESTYLES = ("-", "--", ":", "-.")
_POINT_COLOURS = ("tab:blue", "tab:red", "tab:orange", "tab:green", "tab:purple", "tab:brown", "tab:pink", "tab:cyan")


def _label(metric: str) -> str:
    return LABELS.get(metric, metric)


def _draw_curves(ax, runs: Runs, groups: list[G.Group], metric: str, palette, *, x: str, smooth: int) -> None:
    for color, group in zip(palette, groups):
        curve = G.group_curve(runs, metric, group.runs, x, smooth)
        if curve is None:
            continue
        G.plot_curve(ax, curve, color, group.label, lw=1.3)
    ax.set_xlabel(x)
    ax.set_ylabel(_label(metric))


def _crossings(runs: Runs, groups: list[G.Group], threshold: float, *, x: str, accuracy: str) -> list[float | None]:
    """Per group, where the training accuracy first reaches ``threshold`` (mean over the seeds that
    reach it); None where no run of the group does, or none records the accuracy."""
    out = []
    for group in groups:
        at = []
        for name in group.runs:
            try:
                point = accuracy_crossing(runs.frame, threshold, accuracy=accuracy, run=name)
            except MissingMetric:
                continue
            if point.step is not None:
                at.append(point.epoch if x == "epoch" else point.step)
        out.append(float(np.mean(at)) if at else None)
    return out


def _accuracy_lines(axes, crossings, palette, threshold: float, accuracy: str):
    """Dashed vertical lines at the crossings on every panel; the legend proxy (or None)."""
    from matplotlib.lines import Line2D

    for ax in axes:
        for color, at in zip(palette, crossings):
            if at is not None:
                ax.axvline(at, color=color, ls="--", lw=0.9, alpha=0.9)
    if all(at is None for at in crossings):
        return None
    what = "train acc." if accuracy == TRAIN_ACCURACY else accuracy
    return Line2D([], [], color="0.4", ls="--", lw=0.9, label=f"{what} $\\geq$ {threshold:.0%}")


# --- Fig. 4, 5, App. E: trajectories per grid point ------------------------------------------------

def _trajectory_panels(runs: Runs, metrics: Sequence[str], *, title: str, figure_name: str, prefer: Sequence[str],
                       require: str | None, by, threshold: float | None, accuracy: str, x: str, smooth: int,
                       log_y: bool | Sequence[str] = False, ylim: dict | None = None):
    G.check_x(x)
    groups = G.groups(runs, prefer=prefer, by=by, require=require, figure_name=figure_name)
    palette = colors(len(groups))
    fig, axes = new_figure(len(metrics), title=title)
    for ax, metric in zip(axes, metrics):
        _draw_curves(ax, runs, groups, metric, palette, x=x, smooth=smooth)
        if log_y is True or (not isinstance(log_y, bool) and metric in log_y):
            ax.set_yscale("log")
        if ylim and metric in ylim:
            ax.set_ylim(*ylim[metric])
    proxy = None
    if threshold is not None and runs.has(accuracy):
        proxy = _accuracy_lines(axes, _crossings(runs, groups, threshold, x=x, accuracy=accuracy), palette,
                                threshold, accuracy)
    G.outside_legend(fig, axes, [proxy], G.legend_title(groups))
    return fig


FIG4_NEEDS = (LAMBDA_K, RATIO, LAMBDA_H)


@figure("break_even.fig4", paper="Break-Even Fig. 4",
        title=r"lambda_K^1, lambda_K^*/lambda_K^1 and lambda_H^1 against epoch per learning rate, "
              "with the epochs where training accuracy first reaches a threshold",
        needs=FIG4_NEEDS, min_runs=2, varies="optimizer.lr")
def lr_trajectories(runs: Runs, *, threshold: float | None = 0.6, accuracy: str = TRAIN_ACCURACY,
                    by: str | Sequence[str] | None = None, x: str = "epoch", smooth: int = 1, log_y=False):
    """Break-Even Fig. 4 (and Fig. 5, left) over a learning-rate sweep: lambda_K^1,
    lambda_K^*/lambda_K^1 and lambda_H^1 against ``x`` ("epoch" or "step"), one line per learning
    rate (mean over seeds, band lowest to highest), dashed vertical lines where the training
    accuracy first reaches ``threshold`` (default 0.6, where the paper finds the maxima on
    CIFAR-10, §4.2; None: no lines). ``smooth``: trailing moving-average window ("curves are
    smoothed using moving average for clarity"); ``log_y``: True or a list of metrics."""
    runs.require(*FIG4_NEEDS, figure="break_even.fig4")
    return _trajectory_panels(runs, FIG4_NEEDS, title=r"Break-Even Fig. 4: $\lambda_K^1$, $\lambda_K^*/\lambda_K^1$, "
                              r"$\lambda_H^1$ per learning rate $\eta$", figure_name="break_even.fig4", prefer=(LR,),
                              require=LR if by is None else None, by=by, threshold=threshold, accuracy=accuracy, x=x,
                              smooth=smooth, log_y=log_y)


@figure("break_even.fig5", paper="Break-Even Fig. 5",
        title=r"lambda_K^1, lambda_K^*/lambda_K^1 and lambda_H^1 against epoch per batch size, "
              "with the epochs where training accuracy first reaches a threshold",
        needs=FIG4_NEEDS, min_runs=2, varies="train.batch_size")
def batch_size_trajectories(runs: Runs, *, threshold: float | None = 0.6, accuracy: str = TRAIN_ACCURACY,
                            by: str | Sequence[str] | None = None, x: str = "epoch", smooth: int = 1, log_y=False):
    """Break-Even Fig. 5 (and the batch-size rows of Fig. 4) over a sweep of ``train.batch_size``:
    the panels of :func:`lr_trajectories`, one line per batch size S."""
    runs.require(*FIG4_NEEDS, figure="break_even.fig5")
    return _trajectory_panels(runs, FIG4_NEEDS, title=r"Break-Even Fig. 5: $\lambda_K^1$, $\lambda_K^*/\lambda_K^1$, "
                              r"$\lambda_H^1$ per batch size $S$", figure_name="break_even.fig5", prefer=(BATCH_SIZE,),
                              require=BATCH_SIZE if by is None else None, by=by, threshold=threshold,
                              accuracy=accuracy, x=x, smooth=smooth, log_y=log_y)


@figure("break_even.app_e", paper="Break-Even App. E",
        title="training and held-out accuracy and Tr K against epoch per learning rate or batch size",
        needs=(TRAIN_ACCURACY, "evaluation/test_accuracy", TRACE_K))
def trace_and_accuracy(runs: Runs, *, held_out: str = "test", by: str | Sequence[str] | None = None,
                       x: str = "epoch", smooth: int = 1):
    """Break-Even App. E (Fig. 10-11): training accuracy, ``held_out`` accuracy (the evaluation
    set: "test", or "val" for the paper's validation set) and Tr K against ``x``, one line per
    learning rate (or batch size, or the sweep's other varied keys), mean over seeds."""
    metrics = (TRAIN_ACCURACY, f"evaluation/{held_out}_accuracy", TRACE_K)
    runs.require(*metrics, figure="break_even.app_e")
    return _trajectory_panels(runs, metrics, title=r"Break-Even App. E: accuracies and $\mathrm{Tr}(\mathbf{K})$",
                              figure_name="break_even.app_e", prefer=(LR, BATCH_SIZE), require=None, by=by,
                              threshold=None, accuracy=TRAIN_ACCURACY, x=x, smooth=smooth,
                              ylim={TRAIN_ACCURACY: (0, 1.02), metrics[1]: (0, 1.02)})


# --- Fig. 7: with and without batch norm -------------------------------------------------------------

FIG7_NEEDS = (LAMBDA_K, RATIO, G_RATIO, GAMMA)


@figure("break_even.fig7", paper="Break-Even Fig. 7",
        title="SimpleCNN against SimpleCNN-BN: lambda_K^1, lambda_K^*/lambda_K^1, ||g||/||g_5|| and ||gamma||",
        needs=FIG7_NEEDS, min_runs=2)
def batch_norm_comparison(runs: Runs, *, x: str = "epoch", smooth: int = 1):
    """Break-Even Fig. 7: lambda_K^1, lambda_K^*/lambda_K^1, ||g||/||g_5|| and ||gamma|| of the
    last batch-norm layer against ``x``, one line per run: colour by learning rate (or the
    sweep's other varied keys), line style by ``model.name`` (SimpleCNN solid, SimpleCNN-BN
    dashed in the order of the names), labelled by the varied keys. A run without batch norm
    records ||gamma|| as NaN and has no line in that panel."""
    G.check_x(x)
    runs.require(*FIG7_NEEDS, figure="break_even.fig7")
    configs = G.run_configs(runs)
    keys = G.sweep_keys(runs)
    style_key = MODEL if MODEL in keys else None
    colour_keys = [k for k in keys if k not in (MODEL, "seed")]
    if colour_keys:
        colour_groups = G.groups(runs, by=colour_keys)
        palette = colors(len(colour_groups))
        colour_of = {run: palette[i] for i, g in enumerate(colour_groups) for run in g.runs}
    else:  # only the model (or nothing) varies: a colour per run
        colour_of = dict(zip(runs.names, colors(len(runs.names))))
    styles = {}
    if style_key:
        models = sorted(set(configs[style_key]), key=G.order)
        styles = {m: _LINESTYLES[i % len(_LINESTYLES)] for i, m in enumerate(models)}
    label_keys = ([MODEL] if style_key else []) + colour_keys + (["seed"] if "seed" in keys else [])

    def order(run):
        return tuple(G.order(configs.loc[run, k]) for k in label_keys)

    fig, axes = new_figure(2, 2, title="Break-Even Fig. 7: with and without batch normalisation")
    for ax, metric in zip(axes, FIG7_NEEDS):
        for run in sorted(runs.names, key=order):
            s = G.run_series(runs, metric, run)
            if s is None or not len(s):
                continue
            values = moving_average(s["value"].to_numpy(), smooth) if smooth > 1 else s["value"].to_numpy()
            label = ", ".join(G.fmt(k, configs.loc[run, k]) for k in label_keys) if label_keys else run
            ax.plot(s[x].to_numpy(), values, color=colour_of[run], lw=1.2,
                    ls=styles.get(configs.loc[run, style_key], "-") if style_key else "-", label=label)
        ax.set_xlabel(x)
        ax.set_ylabel(_label(metric))
    G.outside_legend(fig, axes)
    return fig


# --- Fig. 2: lambda_H^1 and Delta L against lambda_K^1 --------------------------------------------------

FIG2_NEEDS = (LAMBDA_K, LAMBDA_H, DELTA_L)


def _paired(frame, x_metric: str, y_metric: str, run: str):
    """The steps of ``run`` where both metrics were recorded: a frame step, x, y."""
    a = series(frame, x_metric, run=run).dropna(subset=["value"])
    b = series(frame, y_metric, run=run).dropna(subset=["value"])
    return a[["step", "value"]].rename(columns={"value": "x"}).merge(
        b[["step", "value"]].rename(columns={"value": "y"}), on="step").sort_values("step")


@figure("break_even.fig2", paper="Break-Even Fig. 2",
        title="lambda_H^1 and Delta L against lambda_K^1 along the trajectory, coloured by learning rate",
        needs=FIG2_NEEDS)
def curvature_vs_noise(runs: Runs, *, by: str | Sequence[str] | None = None, until_accuracy: float | None = None,
                       accuracy: str = TRAIN_ACCURACY, log: bool = False):
    """Break-Even Fig. 2: lambda_H^1 (left) and Delta L (right) against lambda_K^1 at the steps
    where both were recorded, one colour per learning rate (every seed's points in its colour).
    Filled points lie up to the run's maximum of lambda_K^1 (the break-even point), hollow ones
    after it; Delta L = 0 (the stability boundary) is drawn. ``until_accuracy``: only the steps
    until the training accuracy first reaches it; ``log``: log axes for lambda_K^1, lambda_H^1."""
    runs.require(*FIG2_NEEDS, figure="break_even.fig2")
    groups = G.groups(runs, prefer=(LR,), by=by)
    frame = runs.frame if until_accuracy is None else window(runs.frame, until_accuracy=until_accuracy,
                                                             accuracy=accuracy)
    palette = colors(len(groups))
    fig, axes = new_figure(2, title=r"Break-Even Fig. 2: $\lambda_H^1$ and $\Delta\mathcal{L}$ against $\lambda_K^1$")
    drawn = False
    for ax, y_metric in zip(axes, (LAMBDA_H, DELTA_L)):
        for color, group in zip(palette, groups):
            for i, run in enumerate(group.runs):
                try:
                    pairs = _paired(frame, LAMBDA_K, y_metric, run)
                except MissingMetric:
                    continue
                if not len(pairs):
                    continue
                top = peak(series(frame, LAMBDA_K, run=run))
                filled = pairs["step"].to_numpy() <= (top.step if top.step is not None else math.inf)
                faces = [color if f else (0.0, 0.0, 0.0, 0.0) for f in filled]
                ax.scatter(pairs["x"], pairs["y"], s=14, facecolors=faces, edgecolors=[color], linewidths=0.8,
                           label=group.label if i == 0 else None)
                drawn = True
        ax.set_xlabel(_label(LAMBDA_K))
        ax.set_ylabel(_label(y_metric))
        if log:
            ax.set_xscale("log")
    if not drawn:
        raise MissingData(f"break_even.fig2 needs {LAMBDA_K} recorded at the same steps as {LAMBDA_H} or "
                          f"{DELTA_L}: give the gradient_noise, top_eigenvalues and loss_change probes one schedule")
    if log:
        axes[0].set_yscale("log")
    axes[1].axhline(0.0, color="0.3", lw=0.8)
    from matplotlib.lines import Line2D

    extra = [Line2D([], [], ls="", marker="o", color="0.4", label=r"up to max $\lambda_K^1$"),
             Line2D([], [], ls="", marker="o", mfc="none", color="0.4", label=r"after max $\lambda_K^1$")]
    G.outside_legend(fig, axes, extra, G.legend_title(groups))
    return fig


# --- Fig. 3: spectra at the maxima ---------------------------------------------------------------

FIG3_NEEDS = (LAMBDA_K, SPECTRUM_K, LAMBDA_H)
FEW_H = 3  # fewer top eigenvalues of H than this are drawn as labelled points on a linear axis
ZERO = 1e-9  # eigenvalues of K below ZERO * lambda_K^1 are numerical zeros, left out of the log plot


def _nearest(arrays: dict, step: int):
    """(stored step nearest to ``step`` (the earlier on a tie), its array)."""
    near = min(arrays, key=lambda s: (abs(s - step), s))
    return near, np.asarray(arrays[near], dtype=float)


def _at(step: int, near: int) -> str:
    return f"step {near}" if near == step else f"step {near}, max at {step}"


@figure("break_even.fig3", paper="Break-Even Fig. 3",
        title="spectra of K and H at the steps of the largest lambda_K^1 and lambda_H^1, per learning rate",
        needs=FIG3_NEEDS)
def spectra_at_peak(runs: Runs, *, by: str | Sequence[str] | None = None, hessian: str = "auto"):
    """Break-Even Fig. 3: the spectrum of K (left: all L eigenvalues of K^M, ``gradient_noise/
    spectrum``) at the step of the largest lambda_K^1, and of H (right) at the step of the largest
    lambda_H^1, one line per learning rate (the group's first seed), on a log eigenvalue axis
    against their rank. H is drawn from the top-k Lanczos eigenvalues (``hessian="eigenvalues"``)
    or the SLQ density (``"density"``, against the eigenvalue); ``"auto"`` takes the density where
    the runs hold one. Where the arrays were not stored at the maximum, the nearest stored step is
    drawn and named in the legend. K's numerically zero eigenvalues (below :data:`ZERO` times its
    largest: the L-th of L centred gradients) are left out."""
    runs.require(*FIG3_NEEDS, figure="break_even.fig3")
    if hessian not in ("auto", "eigenvalues", "density"):
        raise ValueError(f"hessian must be 'auto', 'eigenvalues' or 'density', got {hessian!r}")
    if hessian == "auto":
        hessian = "density" if runs.has(DENSITY_H) and runs.has(GRID_H) else "eigenvalues"
    if hessian == "eigenvalues" and not runs.has(EIGENVALUES_H):
        raise MissingData(f"break_even.fig3 needs the Hessian's spectrum: {EIGENVALUES_H} (the top_eigenvalues probe "
                          f"with k > 1) or {GRID_H} and {DENSITY_H} (add the spectral_density probe)")
    runs.require(*((GRID_H, DENSITY_H) if hessian == "density" else (EIGENVALUES_H,)), figure="break_even.fig3")
    groups = G.groups(runs, prefer=(LR,), by=by)
    palette = colors(len(groups))
    fig, (ax_k, ax_h) = new_figure(2, title="Break-Even Fig. 3: spectra of K and H at their maxima")
    highest = 0.0  # of the densities: the log axis stops 8 decades below it
    fewest = math.inf  # eigenvalues of H per run: below FEW_H, labelled points on a linear axis
    for color, group in zip(palette, groups):
        run = group.runs[0]
        top_k = peak(series(runs.frame, LAMBDA_K, run=run))
        if top_k.step is not None:
            near, spectrum = _nearest(runs.arrays(SPECTRUM_K, run), top_k.step)
            spectrum = spectrum[spectrum > ZERO * np.max(spectrum, initial=0.0)]  # K^M of L gradients has rank L - 1
            ax_k.plot(np.arange(1, len(spectrum) + 1), spectrum, color=color, marker=".", ms=4, lw=1,
                      label=f"{group.label} ({_at(top_k.step, near)})")
        top_h = peak(series(runs.frame, LAMBDA_H, run=run))
        if top_h.step is None:
            continue
        if hessian == "density":
            near, grid = _nearest(runs.arrays(GRID_H, run), top_h.step)
            density = np.asarray(runs.arrays(DENSITY_H, run)[near], dtype=float)
            ax_h.plot(grid, density, color=color, lw=1.1, label=f"{group.label} ({_at(top_h.step, near)})")
            highest = max(highest, float(np.nanmax(density, initial=0.0)))
        else:
            near, eigenvalues = _nearest(runs.arrays(EIGENVALUES_H, run), top_h.step)
            eigenvalues = np.atleast_1d(np.asarray(eigenvalues, dtype=float))
            fewest = min(fewest, len(eigenvalues))
            ax_h.plot(np.arange(1, len(eigenvalues) + 1), eigenvalues, color=color, marker="o" if len(eigenvalues) <
                      FEW_H else ".", ms=5 if len(eigenvalues) < FEW_H else 4, lw=1,
                      label=f"{group.label} ({_at(top_h.step, near)})")
            if len(eigenvalues) < FEW_H:
                for i, v in enumerate(eigenvalues, start=1):
                    ax_h.annotate(f"{v:.4g}", (i, v), textcoords="offset points", xytext=(4, 3), fontsize=7, color=color)
    ax_k.set_title(r"$\mathbf{K}$ at max $\lambda_K^1$", fontsize=9)
    ax_k.set_xlabel("rank $i$")
    ax_k.set_ylabel(r"$\lambda_K^i$")
    ax_h.set_title(r"$\mathbf{H}$ at max $\lambda_H^1$", fontsize=9)
    if hessian == "density":
        ax_h.set_xlabel(r"eigenvalue $\lambda_H$")
        ax_h.set_ylabel("density")
    else:
        ax_h.set_xlabel("rank $i$")
        ax_h.set_ylabel(r"$\lambda_H^i$")
    ax_k.set_yscale("log", nonpositive="mask")
    if hessian == "density" or fewest >= FEW_H:
        ax_h.set_yscale("log", nonpositive="mask")
    else:  # one or two eigenvalues a run are points, not a spectrum: their values, on a linear axis
        ax_h.set_xticks(range(1, int(fewest) + 1))
        ax_h.text(0.02, 0.02, f"a spectrum needs top_eigenvalues.k >= {FEW_H}", transform=ax_h.transAxes, fontsize=7,
                  color="0.4")
    for ax in (ax_k, ax_h):
        ax.legend(fontsize=7)
    if highest > 0:
        ax_h.set_ylim(bottom=max(ax_h.get_ylim()[0], highest * 1e-8))
    return fig


# --- Fig. 1: the trajectories embedded by their predictions ---------------------------------------------

FIG1_NEEDS = (PROBS, LAMBDA_K, TRAIN_ACCURACY)


def _embed(points: np.ndarray, method: str, random_state: int, n_neighbors: int | None) -> tuple[np.ndarray, str]:
    """(n, 2) coordinates of the rows of ``points`` and the method used ("UMAP" or "PCA")."""
    if method in ("auto", "umap"):
        try:
            import umap
        except ImportError:
            if method == "umap":
                raise ImportError("break_even.fig1 with method='umap' needs umap-learn: "
                                  "pip install 'sgdscope[umap]'") from None
        else:
            neighbours = n_neighbors or max(2, min(15, len(points) - 1))
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # n_jobs forced to 1 by random_state; spectral init on tiny graphs
                reducer = umap.UMAP(n_components=2, n_neighbors=neighbours, random_state=random_state, n_jobs=1)
                return np.asarray(reducer.fit_transform(points), dtype=float), "UMAP"
    elif method != "pca":
        raise ValueError(f"method must be 'auto', 'umap' or 'pca', got {method!r}")
    centred = points - points.mean(0)
    u, s, _ = np.linalg.svd(centred, full_matrices=False)
    coords = u[:, :2] * s[:2]
    if coords.shape[1] < 2:
        coords = np.pad(coords, ((0, 0), (0, 2 - coords.shape[1])))
    return coords, "PCA"


def _values_at(runs: Runs, metric: str, run: str, steps: np.ndarray) -> np.ndarray:
    """``metric`` of ``run`` at ``steps``: the stored value, linear between records, NaN outside them."""
    s = G.run_series(runs, metric, run)
    if s is None or not len(s):
        return np.full(len(steps), np.nan)
    return np.interp(steps, s["step"].to_numpy(dtype=float), s["value"].to_numpy(dtype=float), left=np.nan,
                     right=np.nan)


@figure("break_even.fig1", paper="Break-Even Fig. 1",
        title="trajectories embedded by their test predictions (UMAP), background lambda_K^1 and training accuracy",
        needs=FIG1_NEEDS)
def trajectory_embedding(runs: Runs, *, select: Sequence[str] | None = None, until_accuracy: float | None = 0.65,
                         accuracy: str = TRAIN_ACCURACY, metrics: Sequence[str] = (LAMBDA_K, TRAIN_ACCURACY),
                         method: str = "auto", n_neighbors: int | None = None, random_state: int = 0,
                         resolution: int = 200):
    """Break-Even Fig. 1: every model of the trajectories (the stored ``predictions/probs`` arrays)
    as a point, embedded in 2-D by its test-set predictions (UMAP with ``random_state``; PCA by SVD
    where umap-learn is not installed, said on the figure; ``method="pca"`` or ``"umap"`` picks
    one), one colour per learning rate. Each panel's background is ``metrics[i]`` (default
    lambda_K^1 and the training accuracy) of the embedded point nearest in the plane, as in the
    paper; a metric is read at a point's step, linearly between its records. ``select``: the runs
    to draw (default the first seed of each grid point); ``until_accuracy``: only the steps until
    the training accuracy first reaches it (the paper: 65%; None: all). The App. A variant (Fig. 8):
    ``metrics=("gradient_noise/ratio", "gradient_noise/trace", "top_eigenvalues/lambda_1")``."""
    from scipy.spatial import cKDTree

    runs.require(PROBS, *metrics, figure="break_even.fig1")
    groups = G.groups(runs, prefer=(LR,))
    palette = [_POINT_COLOURS[i % len(_POINT_COLOURS)] for i in range(len(groups))]
    if select is None:
        chosen = [(g.runs[0], g.label, c) for g, c in zip(groups, palette)]
    else:
        unknown = [r for r in select if r not in runs.names]
        if unknown:
            raise ValueError(f"select={unknown}: not among the runs {', '.join(runs.names)}")
        label_of = {run: (g.label, c) for g, c in zip(groups, palette) for run in g.runs}
        chosen = [(r, *label_of[r]) for r in select]
    steps, rows, owner = [], [], []
    for i, (run, _, _) in enumerate(chosen):
        stored = runs.arrays(PROBS, run)
        limit = math.inf
        if until_accuracy is not None and runs.has(accuracy):
            try:
                reached = accuracy_crossing(runs.frame, until_accuracy, accuracy=accuracy, run=run).step
            except MissingMetric:  # this run has no accuracy: all its steps
                reached = None
            limit = math.inf if reached is None else reached
        for step in sorted(s for s in stored if s <= limit):
            steps.append(step)
            rows.append(np.asarray(stored[step], dtype=np.float64).ravel())
            owner.append(i)
    if len({r.shape for r in rows}) > 1:
        raise ValueError("break_even.fig1: the runs' predictions/probs arrays differ in shape; embed runs "
                         "that share one test subset")
    if len(rows) < 3:
        raise MissingData(f"break_even.fig1 embeds at least 3 stored predictions, got {len(rows)}: record "
                          "predictions/probs more often (the predictions probe's every=)")
    coords, used = _embed(np.stack(rows), method, random_state, n_neighbors)
    steps, owner = np.asarray(steps), np.asarray(owner)
    lo, hi = coords.min(0), coords.max(0)
    pad = 0.05 * np.maximum(hi - lo, 1e-9)
    gx, gy = np.meshgrid(np.linspace(lo[0] - pad[0], hi[0] + pad[0], resolution),
                         np.linspace(lo[1] - pad[1], hi[1] + pad[1], resolution))
    title = f"Break-Even Fig. 1: trajectories embedded by their test predictions ({used})"
    fig, axes = new_figure(len(metrics), title=title, width=4.6)
    for ax, metric in zip(axes, metrics):
        values = np.full(len(steps), np.nan)
        for i, (run, _, _) in enumerate(chosen):
            values[owner == i] = _values_at(runs, metric, run, steps[owner == i])
        known = np.isfinite(values)
        if known.any():
            _, nearest = cKDTree(coords[known]).query(np.column_stack([gx.ravel(), gy.ravel()]))
            background = values[known][nearest].reshape(gx.shape)
            mesh = ax.pcolormesh(gx, gy, background, cmap="Greys", shading="auto", rasterized=True, alpha=0.75)
            fig.colorbar(mesh, ax=ax, label=_label(metric), shrink=0.9)
        else:
            ax.text(0.5, 0.02, f"{metric} not recorded at the embedded steps", transform=ax.transAxes,
                    ha="center", fontsize=7)
        for i, (run, label, color) in enumerate(chosen):
            xy = coords[owner == i]
            ax.plot(xy[:, 0], xy[:, 1], color=color, lw=0.6, alpha=0.8)
            ax.scatter(xy[:, 0], xy[:, 1], s=16, color=color, edgecolors="white", linewidths=0.5, zorder=3,
                       label=label if select is None else f"{label} ({run})")
            ax.scatter(xy[:1, 0], xy[:1, 1], s=40, marker="s", color=color, edgecolors="black", linewidths=0.6,
                       zorder=4)
        ax.set_title(f"background: {_label(metric)}", fontsize=9)
        ax.set_xlabel(f"{used} 1")
        ax.set_ylabel(f"{used} 2")
        ax.grid(False)
    axes[0].legend(fontsize=7, loc="best", framealpha=0.8)
    if used == "PCA" and method == "auto":
        fig.supxlabel("PCA of the predictions: umap-learn is not installed (pip install 'sgdscope[umap]' for the "
                      "paper's UMAP); squares mark each run's first step", fontsize=7)
    else:
        fig.supxlabel("squares mark each run's first step", fontsize=7)
    return fig
