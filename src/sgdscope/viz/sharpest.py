"""Figures of the sharpest-directions poster (Jastrzebski et al., "On the relation between the
sharpest directions of DNN loss and the SGD step length"), drawn from stored runs and sweeps.

``sharpest.fig1a``  the top-k Hessian eigenvalues over training, red (lambda_1) to blue (lambda_k)
``sharpest.fig1b``  lambda_1 and lambda_2 on a log scale, a line per learning rate
``sharpest.fig2a``  the loss along the top eigenvector, L(theta(t) + k dtheta_1(t)), at several
                    iterations t
``sharpest.fig2b``  the mean loss change of SGD steps whose e_1 component is scaled by alpha
                    (0.5, 1, 2: red, green, blue)
``sharpest.nsgd``   Nudged SGD against SGD: validation accuracy, and the spectral (solid) and
                    Frobenius (dashed) norms of H on a log scale

Runs of a sweep are grouped by its varied keys (learning rate, or the optimizer for the Nudged
SGD figure, first); a grid point with several seeds is drawn as the mean with a band from the
lowest to the highest seed, as in :mod:`sgdscope.viz.break_even`.
"""
from __future__ import annotations

import dataclasses
import math
import re
from typing import Sequence

import numpy as np

from ..analysis import MissingMetric, moving_average, series
from . import groups as G
from .registry import figure
from .source import MissingData, Runs, probe_hint
from .style import colors, new_figure

__all__ = ["top_eigenvalues", "top_two_per_lr", "loss_along_top", "loss_change_alpha", "nudged_sgd"]

LAMBDA, EIGENVALUES = "top_eigenvalues/lambda_{i}", "top_eigenvalues/eigenvalues"
LOSS_ALONG, GRID, STEP_E1 = "sharpest_directions/loss_along", "sharpest_directions/grid", "sharpest_directions/step_e1"
SPECTRAL, FROBENIUS = "hessian_norms/spectral_norm", "hessian_norms/frobenius_norm"
LR, BATCH_SIZE, OPTIMIZER = "optimizer.lr", "train.batch_size", "optimizer.name"
ALPHA_COLOURS = ("tab:red", "tab:green", "tab:blue", "tab:purple", "tab:brown", "tab:olive")
OPTIMIZER_NAMES = {"sgd": "SGD", "nudged_sgd": "NSGD", "gd": "GD", "noisy_gd": "noisy GD"}


def _family(runs: Runs, kind: str, pattern: str) -> dict[str, str]:
    """{value name: its group} for the stored names of probe ``kind`` matching ``pattern``."""
    frame = runs.frame
    column = "type" if "type" in frame.columns and (frame["type"] == kind).any() else "probe"
    found = {}
    for name in frame.loc[frame[column] == kind, "name"].unique():
        match = re.fullmatch(pattern, name)
        if match:
            found[name] = match.group(1)
    return found


def _red_to_blue(k: int):
    """``k`` colours from red (the largest eigenvalue) through purple to blue (the k-th)."""
    from matplotlib.colors import LinearSegmentedColormap

    cmap = LinearSegmentedColormap.from_list("red_blue", ["#d62728", "#8c2d8c", "#1f3fb4"])
    return cmap, [cmap(i / max(k - 1, 1)) for i in range(k)]


def _name_run(ax, run: str, runs: Runs) -> None:
    """The run's name above the panel where the figure draws one run of several."""
    if len(runs.names) > 1:
        ax.set_title(f"run {run}", fontsize=9)


# --- Fig. 1a: the top-k eigenvalues over training -----------------------------------------------------

def _eigenvalue_curves(runs: Runs, run: str, x: str, k: int | None):
    """[(x, values)] for lambda_1..lambda_k of one run: the lambda_i rows, or the eigenvalues
    arrays where the rows hold lambda_1 only (the arrays' steps, x from the rows' epochs)."""
    ranks = sorted(int(i) for i in _family(runs, "top_eigenvalues", r"lambda_(\d+)").values())
    if len(ranks) > 1 or not runs.has(EIGENVALUES) or not runs.folders:
        out = []
        for i in ranks[:k]:
            try:
                s = series(runs.frame, f"top_eigenvalues/lambda_{i}", run=run).dropna(subset=["value"])
            except MissingMetric:
                continue
            out.append((s[x].to_numpy(), s["value"].to_numpy()))
        return out
    arrays = runs.arrays(EIGENVALUES, run)
    steps = sorted(arrays)
    width = max(len(np.ravel(arrays[s])) for s in steps)
    table = np.full((len(steps), width), np.nan)
    for j, s in enumerate(steps):
        values = np.sort(np.ravel(arrays[s]))[::-1]
        table[j, :len(values)] = values
    xs = np.asarray(steps, dtype=float)
    if x == "epoch":
        rows = series(runs.frame, "top_eigenvalues/lambda_1", run=run).set_index("step")["epoch"]
        xs = rows.reindex(steps).to_numpy(dtype=float)
    return [(xs, table[:, i]) for i in range(width)][:k]


@figure("sharpest.fig1a", paper="Sharpest directions Fig. 1a",
        title="the top-k Hessian eigenvalues over training, red (lambda_1) to blue (lambda_k)",
        needs=("top_eigenvalues/lambda_1",))
def top_eigenvalues(runs: Runs, *, run: str | None = None, k: int | None = None, x: str = "epoch",
                    log_y: bool = False):
    """Sharpest directions Fig. 1a (and the poster's header figure): lambda_1 .. lambda_k of the
    Hessian against ``x`` for one run (default the first), coloured from red (lambda_1) to blue
    (lambda_k), from the ``top_eigenvalues/lambda_{i}`` rows (or the ``eigenvalues`` arrays where
    the rows hold lambda_1 only). ``k``: the first k (default all stored); ``log_y``."""
    G.check_x(x)
    run = G.one_run(runs, run)
    curves = _eigenvalue_curves(runs, run, x, k)
    if not curves:
        raise MissingData(f"sharpest.fig1a: run {run} has no top_eigenvalues/lambda_i rows: {probe_hint(LAMBDA)}")
    cmap, palette = _red_to_blue(len(curves))
    fig, (ax,) = new_figure(title=f"Sharpest Fig. 1a: top-{len(curves)} Hessian eigenvalues")
    _name_run(ax, run, runs)
    for i, ((xs, values), color) in enumerate(zip(curves, palette), start=1):
        ax.plot(xs, values, color=color, lw=1.1, label=rf"$\lambda_{{{i}}}$")
    ax.set_xlabel(G.xlabel(x))
    ax.set_ylabel(r"eigenvalue $\lambda_i$ of $H$")
    if log_y:
        ax.set_yscale("log", nonpositive="mask")
    if len(curves) <= 6:
        ax.legend(fontsize=7, ncols=2 if len(curves) > 3 else 1)
    else:
        from matplotlib.cm import ScalarMappable
        from matplotlib.colors import BoundaryNorm

        norm = BoundaryNorm(np.arange(0.5, len(curves) + 1), cmap.N)
        bar = fig.colorbar(ScalarMappable(norm=norm, cmap=cmap), ax=ax, label="rank $i$", shrink=0.9)
        bar.set_ticks(sorted({1, (len(curves) + 1) // 2, len(curves)}))
        bar.ax.invert_yaxis()  # lambda_1 on top, as its curve
    return fig


# --- Fig. 1b: lambda_1 and lambda_2 per learning rate ----------------------------------------------------

FIG1B_NEEDS = ("top_eigenvalues/lambda_1", "top_eigenvalues/lambda_2")


@figure("sharpest.fig1b", paper="Sharpest directions Fig. 1b",
        title="lambda_1 and lambda_2 of the Hessian on a log scale, a line per learning rate (or batch size)",
        needs=FIG1B_NEEDS, min_runs=2, varies=(LR, BATCH_SIZE))
def top_two_per_lr(runs: Runs, *, by: str | Sequence[str] | None = None, x: str = "epoch", smooth: int = 1):
    """Sharpest directions Fig. 1b: lambda_1 (left) and lambda_2 (right) against ``x`` on a log
    scale, a line per learning rate (the mean over seeds, a band from the lowest to the
    highest); ``by="train.batch_size"`` draws a line per batch size instead (the poster: a
    smaller batch acts like a larger learning rate). ``smooth``: a trailing moving average."""
    G.check_x(x)
    groups = G.groups(runs, prefer=(LR, BATCH_SIZE), by=by, figure_name="sharpest.fig1b")
    palette = colors(len(groups))
    fig, axes = new_figure(2, title=r"Sharpest Fig. 1b: $\lambda_1$ and $\lambda_2$ per " + (G.legend_title(groups) or "run"))
    for ax, metric, symbol in zip(axes, FIG1B_NEEDS, (r"$\lambda_1$", r"$\lambda_2$")):
        for color, group in zip(palette, groups):
            curve = G.group_curve(runs, metric, group.runs, x, smooth)
            if curve is None:
                continue
            G.plot_curve(ax, curve, color, group.label)
        ax.set_yscale("log", nonpositive="mask")
        ax.set_xlabel(G.xlabel(x))
        ax.set_ylabel(symbol)
    G.outside_legend(fig, axes, title=G.legend_title(groups))
    return fig


# --- Fig. 2a: the loss along the top eigenvector ----------------------------------------------------------

def _pick_steps(stored: list[int], steps) -> list[int]:
    """``steps`` stored steps spread evenly from the first to the last (an int), or the stored
    steps nearest to the given ones (a list)."""
    if np.ndim(steps) == 0:
        n = int(steps)
        if n < 1:
            raise ValueError(f"steps must be >= 1 or a list of steps, got {steps}")
        if n >= len(stored):
            return stored
        return [stored[i] for i in np.unique(np.round(np.linspace(0, len(stored) - 1, n)).astype(int))]
    return sorted({min(stored, key=lambda s: (abs(s - int(t)), s)) for t in steps})


@figure("sharpest.fig2a", paper="Sharpest directions Fig. 2a",
        title="the loss along the top Hessian eigenvector around the current parameters at several iterations",
        needs=(LOSS_ALONG, GRID))
def loss_along_top(runs: Runs, *, run: str | None = None, steps: int | Sequence[int] = 6, relative: bool = False):
    """Sharpest directions Fig. 2a: L(theta(t) + k dtheta_1(t)) against k, where dtheta_1(t) is
    the expected length of the SGD step along the top eigenvector e_1 at iteration t (the stored
    ``loss_along`` arrays over their ``grid``), a curve per probed iteration coloured by t
    (colour bar). ``run``: one run (default the first); ``steps``: how many probed iterations,
    spread from the first to the last (default 6), or a list (the nearest probed ones);
    ``relative``: subtract L(theta(t)) (the loss at k = 0, interpolated on the grid)."""
    from matplotlib.cm import ScalarMappable
    import matplotlib
    from matplotlib.colors import ListedColormap, Normalize

    run = G.one_run(runs, run)
    losses, grids = runs.arrays(LOSS_ALONG, run), runs.arrays(GRID, run)
    stored = sorted(s for s in losses if s in grids)
    if not stored:
        raise MissingData(f"sharpest.fig2a: run {run} has no step with both {LOSS_ALONG} and {GRID} arrays")
    chosen = _pick_steps(stored, steps)
    cmap = ListedColormap(matplotlib.colormaps["viridis"](np.linspace(0.0, 0.9, 256)))  # without the pale yellow end
    norm = Normalize(min(chosen), max(chosen) if len(chosen) > 1 else min(chosen) + 1)
    fig, (ax,) = new_figure(title="Sharpest Fig. 2a: the loss along $e_1$")
    _name_run(ax, run, runs)
    for step in chosen:
        grid = np.asarray(grids[step], dtype=float).ravel()
        loss = np.asarray(losses[step], dtype=float).ravel()
        if relative:
            loss = loss - np.interp(0.0, grid, loss)
        ax.plot(grid, loss, color=cmap(norm(step)), marker=".", ms=4, lw=1.1, label=f"t = {step}")
    ax.set_xlabel(r"$k$ (multiples of $\Delta\theta_1(t)$)")
    ax.set_ylabel(r"$\mathcal{L}(\theta(t) + k\,\Delta\theta_1(t)) - \mathcal{L}(\theta(t))$" if relative
                  else r"$\mathcal{L}(\theta(t) + k\,\Delta\theta_1(t))$")
    ax.axvline(0.0, color="0.5", lw=0.6, ls=":")
    fig.colorbar(ScalarMappable(norm=norm, cmap=cmap), ax=ax, label="iteration $t$", shrink=0.9)
    return fig


# --- Fig. 2b: the loss change of rescaled steps ------------------------------------------------------------

@figure("sharpest.fig2b", paper="Sharpest directions Fig. 2b",
        title="the mean loss change of SGD steps whose top-eigenvector component is scaled by alpha = 0.5, 1, 2",
        needs=("sharpest_directions/dloss_alpha_{a}",))
def loss_change_alpha(runs: Runs, *, run: str | None = None, x: str = "epoch", smooth: int = 1):
    """Sharpest directions Fig. 2b: the mean loss change of SGD steps whose component along e_1
    is scaled by alpha (the stored ``sharpest_directions/dloss_alpha_{a}``: 0.5, 1 and 2 in red,
    green and blue, as on the poster) against ``x``, for one run (default the first); the zero
    line drawn. ``smooth``: a trailing moving average of that many records."""
    G.check_x(x)
    run = G.one_run(runs, run)
    names = _family(runs, "sharpest_directions", r"dloss_alpha_(.+)")
    if not names:
        raise MissingData("sharpest.fig2b needs sharpest_directions/dloss_alpha_{a}: the sharpest_directions "
                          "probe ran but did not record it (its alphas=)")
    ordered = sorted(names, key=lambda n: float(names[n]))
    fig, (ax,) = new_figure(title=r"Sharpest Fig. 2b: steps rescaled along $e_1$")
    _name_run(ax, run, runs)
    for i, name in enumerate(ordered):
        try:
            s = series(runs.frame, f"sharpest_directions/{name}", run=run).dropna(subset=["value"])
        except MissingMetric:
            continue
        values = moving_average(s["value"].to_numpy(), smooth) if smooth > 1 else s["value"].to_numpy()
        ax.plot(s[x].to_numpy(), values, color=ALPHA_COLOURS[i % len(ALPHA_COLOURS)], lw=1.2,
                label=rf"$\alpha = {names[name]}$")
    ax.axhline(0.0, color="0.3", lw=0.7)
    ax.set_xlabel(G.xlabel(x))
    ax.set_ylabel(r"$\Delta\mathcal{L}$ of the rescaled step")
    ax.legend(fontsize=7)
    return fig


# --- Nudged SGD -------------------------------------------------------------------------------------------

def _optimizer_groups(runs: Runs, by) -> list:
    """The runs grouped by the optimizer's name first (kept even where the sweep's varied keys
    drop it as a label, e.g. when NSGD's own keys already tell the runs apart), then the other
    varied keys; labelled "SGD" / "NSGD" as on the poster, without the keys a run lacks (an
    SGD run has no gamma), plain SGD first."""
    if by is None:
        configs = runs.frame.drop_duplicates("run").set_index("run")
        named = OPTIMIZER in configs.columns and configs[OPTIMIZER].nunique() > 1
        keys = ([OPTIMIZER] if named else []) + [k for k in G.sweep_keys(runs) if k not in ("seed", OPTIMIZER)]
        by = keys or None
    out = []
    for group in G.groups(runs, prefer=(OPTIMIZER, LR), by=by):
        if group.values:
            parts = [OPTIMIZER_NAMES.get(str(v).lower(), str(v)) if k == OPTIMIZER else G.fmt(k, v)
                     for k, v in group.values.items() if not (isinstance(v, float) and math.isnan(v))]
            group = dataclasses.replace(group, label=", ".join(parts))
        out.append(group)
    return sorted(out, key=lambda g: str(g.values.get(OPTIMIZER, "")).lower() != "sgd")


@figure("sharpest.nsgd", paper="Sharpest directions, Nudged SGD figure",
        title="Nudged SGD against SGD: validation accuracy, and the spectral (solid) and Frobenius (dashed) "
              "norms of H on a log scale", needs=(SPECTRAL, FROBENIUS))
def nudged_sgd(runs: Runs, *, held_out: str = "auto", by: str | Sequence[str] | None = None, x: str = "epoch",
               smooth: int = 1):
    """The poster's Nudged SGD figure: the held-out accuracy (left; ``held_out="val"`` or
    ``"test"``, "auto": val where stored, else test) and the spectral norm (solid) and Frobenius
    norm (dashed) of the Hessian on a log scale (right) against ``x``, a colour per run or grid
    point (the optimizer first: SGD against NSGD), the mean over seeds with a band from the
    lowest to the highest."""
    from matplotlib.lines import Line2D

    G.check_x(x)
    if held_out == "auto":
        held_out = "val" if runs.has("evaluation/val_accuracy") else "test"
    accuracy = f"evaluation/{held_out}_accuracy"
    runs.require(accuracy, figure="sharpest.nsgd")
    groups = _optimizer_groups(runs, by)
    palette = colors(len(groups)) if len(groups) > 2 else ["tab:blue", "tab:red"][:len(groups)]
    fig, (ax_acc, ax_norm) = new_figure(2, title="Sharpest directions: Nudged SGD")
    for color, group in zip(palette, groups):
        for ax, metric, ls, label in ((ax_acc, accuracy, "-", group.label), (ax_norm, SPECTRAL, "-", None),
                                      (ax_norm, FROBENIUS, "--", None)):
            curve = G.group_curve(runs, metric, group.runs, x, smooth)
            if curve is None:
                continue
            G.plot_curve(ax, curve, color, label, lw=1.3, ls=ls, band=0.15)
    ax_acc.set_xlabel(G.xlabel(x))
    ax_acc.set_ylabel("validation accuracy" if held_out == "val" else f"{held_out} accuracy")
    ax_norm.set_xlabel(G.xlabel(x))
    ax_norm.set_ylabel(r"norm of $H$")
    ax_norm.set_yscale("log", nonpositive="mask")
    styles = [Line2D([], [], color="0.3", ls="-", label=r"spectral norm $\|H\|_2$"),
              Line2D([], [], color="0.3", ls="--", label=r"Frobenius norm $\|H\|_F$")]
    G.outside_legend(fig, [ax_acc, ax_norm], styles)
    return fig
