"""Figures of A Walk with SGD (Xing et al. 2018), drawn from stored runs and sweeps.

``walk.fig1``    the loss between consecutive iterates over a window of iterations (the stored
                 interpolation curves), with the valley floor dashed (Fig. 1-3: one figure for
                 every architecture of the paper)
``walk.table1``  barriers crossed / steps probed during single epochs, per run or grid point
``walk.fig4``    barriers crossed per epoch, and the heights of the crossed barriers
``walk.fig5``    g_B^T H g_B / ||g_B||^2 against the batch size B, mean and std over mini-batches
                 (Fig. 5-6)
``walk.fig7``    the cosine of consecutive mini-batch gradients per batch size

The interpolation probe stores, at step t (the update from theta_t to theta_t+1), the loss at
``num_points`` equally spaced points from theta_t (alpha = 0) to theta_t+1 (alpha = 1) on the
fixed evaluation set, so the curve of step t is drawn at x = t + alpha. Runs of a sweep are
grouped by its varied keys (:func:`sgdscope.viz.break_even` does the same); counts and
statistics come from :mod:`sgdscope.analysis`.
"""
from __future__ import annotations

import dataclasses
import re
from typing import Sequence

import numpy as np

from ..analysis import MissingMetric, barriers_per_epoch, epoch_number, series
from . import groups as G
from .registry import figure
from .source import MissingData, Runs, probe_hint
from .style import colors, new_figure

__all__ = ["interpolation_window", "barrier_table", "barriers", "alignment", "gradient_cosine"]

CURVE, FLOOR, FLOOR_ALPHA = "interpolation/curve", "interpolation/valley_floor", "interpolation/valley_alpha"
CROSSED, HEIGHT = "interpolation/crossed", "interpolation/height"
COSINE = "gradient_cosine/cosine"
LR, BATCH_SIZE = "optimizer.lr", "train.batch_size"
FLOOR_COLOUR = "tab:orange"
ALIGNMENT_LABEL = r"$g_B^\top H g_B \,/\, \|g_B\|^2$"


def _walk_groups(runs: Runs, *, prefer: Sequence[str], by) -> list:
    """The grid points of :func:`sgdscope.viz.break_even._groups`, the batch size written B as in the paper."""
    return [dataclasses.replace(g, label=g.label.replace("$S$=", "$B$="))
            for g in G.groups(runs, prefer=prefer, by=by)]


# --- Fig. 1-3: the loss between consecutive iterates ---------------------------------------------------

def _default_starts(runs: Runs, run: str, stored: list[int], window: int) -> list[int]:
    """Windows at the first stored step of epoch 1 and of epoch 2, and the last ``window``
    iterations of the run (the paper shows epochs 1, 2, 25 and 100), leaving out one that
    overlaps the one before; the first stored step where the rows have no epochs."""
    try:
        rows = series(runs.frame, FLOOR, run=run)
    except MissingMetric:
        return stored[:1]
    rows = rows[rows["step"].isin(stored) & rows["epoch"].notna()]
    if not len(rows):
        return stored[:1]
    first = rows.assign(epoch=epoch_number(rows["epoch"])).groupby("epoch")["step"].min()
    candidates = [int(first[e]) for e in (1, 2) if e in first.index]
    candidates.append(min(s for s in stored if s > stored[-1] - window))
    starts: list[int] = []
    for start in sorted(set(candidates)):
        if not starts or start >= starts[-1] + window:
            starts.append(start)
    return starts


def _segments(curves: dict, steps: list[int]) -> tuple[np.ndarray, np.ndarray]:
    """x = step + alpha and the loss of the curves of ``steps``, joined where the steps are
    consecutive (theta_t+1 ends one curve and starts the next), NaN-separated at gaps."""
    xs, ys = [], []
    for i, step in enumerate(steps):
        curve = np.asarray(curves[step], dtype=float).ravel()
        if i and step != steps[i - 1] + 1:
            xs.append([np.nan])
            ys.append([np.nan])
        xs.append(step + np.linspace(0.0, 1.0, len(curve)))
        ys.append(curve)
    return np.concatenate(xs), np.concatenate(ys)


@figure("walk.fig1", paper="Walk Fig. 1-3",
        title="the loss between consecutive iterates over a window of iterations, valley floor dashed",
        needs=(CURVE, FLOOR, FLOOR_ALPHA))
def interpolation_window(runs: Runs, *, run: str | None = None, start: int | Sequence[int] | None = None,
                         window: int = 40, floor: bool = True):
    """Walk Fig. 1-3: the loss over ``window`` iterations from ``start``, with the stored
    ``interpolation/curve`` of each step t (the loss at equally spaced points from theta_t to
    theta_t+1 on the evaluation set) drawn at x = t + alpha; grey vertical lines at the iterates;
    the valley floor (the minimum of each segment, ``valley_floor`` at t + ``valley_alpha``)
    joined by a dashed orange line (``floor=False``: none). ``run``: one run (default the
    first); ``start``: a step, or a list of steps (one panel each); default windows from the
    first stored steps of epoch 1 and epoch 2 and over the last ``window`` iterations, as the
    paper shows early and late windows (one that overlaps the window before is left out).
    The x axis ends where the stored curves do."""
    run = G.one_run(runs, run)
    if window < 1:
        raise ValueError(f"window must be >= 1 iteration, got {window}")
    curves = runs.arrays(CURVE, run)
    stored = sorted(curves)
    if start is None:
        starts = _default_starts(runs, run, stored, window)
    else:
        starts = [int(start)] if np.ndim(start) == 0 else [int(s) for s in start]
    floors = series(runs.frame, FLOOR, run=run).set_index("step")["value"]
    alphas = series(runs.frame, FLOOR_ALPHA, run=run).set_index("step")["value"]
    epochs = series(runs.frame, FLOOR, run=run).set_index("step")["epoch"]
    ncols = len(starts) if len(starts) <= 3 else 2
    fig, axes = new_figure(ncols, -(-len(starts) // ncols),
                           title=f"Walk Fig. 1: loss between iterates, {run}")
    for ax in axes[len(starts):]:
        ax.remove()
    for ax, first in zip(axes, starts):
        steps = [s for s in stored if first <= s < first + window]
        if not steps:
            raise ValueError(f"walk.fig1: run {run} has no {CURVE} in steps [{first}, {first + window}); "
                             f"stored steps {stored[0]}..{stored[-1]} ({len(stored)} curves)")
        x, y = _segments(curves, steps)
        last = min(first + window, steps[-1] + 1)  # the window, cut where the curves end
        ax.vlines(np.arange(first, last + 1), 0, 1, transform=ax.get_xaxis_transform(), colors="0.8",
                  lw=0.5, zorder=0)
        ax.plot(x, y, color="tab:blue", lw=1.0, label="loss between iterates")
        iterates = {s: float(np.ravel(curves[s])[0]) for s in steps}
        for s in steps:  # theta_t+1 ends the segment of step t
            iterates.setdefault(s + 1, float(np.ravel(curves[s])[-1]))
        at = sorted(iterates)
        ax.plot(at, [iterates[s] for s in at], ls="", marker="o", ms=2.5, color="tab:blue",
                label=r"iterates $\theta_t$")
        if floor:
            at = [s for s in steps if s in floors.index and s in alphas.index]
            ax.plot([s + float(alphas[s]) for s in at], [float(floors[s]) for s in at], ls="--", lw=1.1,
                    color=FLOOR_COLOUR, label="valley floor")
        ax.set_xlim(first, last)
        ax.set_xlabel(G.xlabel("step"))
        ax.set_ylabel(r"loss $\mathcal{L}$")
        known = first in epochs.index and np.isfinite(epochs[first])
        where = f", epoch {int(epoch_number(epochs[first]))}" if known else ""
        ax.set_title(f"iterations {first}-{last}{where}", fontsize=9)
    axes[0].legend(fontsize=7, loc="best")
    return fig


# --- Table 1 and Fig. 4: barriers per epoch ----------------------------------------------------------

def _barrier_counts(runs: Runs, names: Sequence[str]):
    """(epoch -> mean crossed over the runs, epoch -> mean probed, n runs with counts)."""
    import pandas as pd

    parts = []
    for name in names:
        try:
            parts.append(barriers_per_epoch(runs.frame, run=name).assign(run=name))
        except MissingMetric:
            continue
    if not parts:
        return None
    table = pd.concat(parts, ignore_index=True)
    per_epoch = table.groupby("epoch")[["crossed", "probed"]].mean()
    return per_epoch["crossed"], per_epoch["probed"], len(parts)


def _counted(runs: Runs, groups, figure_name: str):
    counts = [_barrier_counts(runs, g.runs) for g in groups]
    if all(c is None for c in counts):
        raise MissingData(f"{figure_name} needs {CROSSED}: {probe_hint(CROSSED)}")
    return counts


def _fmt_count(value: float) -> str:
    return f"{value:.0f}" if float(value).is_integer() else f"{value:.1f}"


def _table_epochs(available: list[int], epochs) -> list[int]:
    if epochs is not None:
        missing = [e for e in epochs if e not in available]
        if missing:
            raise ValueError(f"epochs {missing} have no barrier counts; epochs with counts: "
                             f"{available[0]}..{available[-1]}")
        return list(epochs)
    paper = [e for e in (1, 10, 25, 100) if e in available]
    if len(paper) >= 3 or len(available) <= 6:
        return paper if len(paper) >= 3 else available
    picks = np.unique(np.round(np.linspace(0, len(available) - 1, 6)).astype(int))
    return [available[i] for i in picks]


@figure("walk.table1", paper="Walk Table 1",
        title="barriers crossed / steps probed during single epochs, per run or grid point", needs=(CROSSED,))
def barrier_table(runs: Runs, *, epochs: Sequence[int] | None = None, by: str | Sequence[str] | None = None):
    """Walk Table 1: the barriers crossed during single epochs (the steps whose interpolation
    has an interior point above both ends, counted by :func:`~sgdscope.analysis.barriers_per_epoch`)
    over the steps probed in that epoch, a row per run or grid point of a sweep (the mean over
    seeds, to one decimal). ``epochs``: the columns (1-based); default the paper's 1, 10, 25, 100
    where the runs reach them, otherwise up to six epochs from the first to the last."""
    groups = _walk_groups(runs, prefer=(LR, BATCH_SIZE), by=by)
    counts = _counted(runs, groups, "walk.table1")
    available = sorted({int(e) for c in counts if c is not None for e in c[0].index})
    columns = _table_epochs(available, epochs)
    rows, labels = [], []
    for group, count in zip(groups, counts):
        if count is None:
            continue
        crossed, probed, n = count
        rows.append([f"{_fmt_count(crossed[e])} / {_fmt_count(probed[e])}" if e in crossed.index else "-"
                     for e in columns])
        labels.append(G.mean_label(group.label, n))
    fig, (ax,) = new_figure(width=max(4.2, 1.6 + 1.0 * len(columns) + 0.05 * max(map(len, labels))),
                            height=0.9 + 0.32 * (len(rows) + 1),
                            title="Walk Table 1: barriers crossed / steps probed per epoch")
    ax.axis("off")
    table = ax.table(cellText=rows, rowLabels=labels, colLabels=[f"epoch {e}" for e in columns], loc="center",
                     cellLoc="center")
    table.auto_set_font_size(False)
    table.set_fontsize(8)
    table.scale(1.0, 1.3)
    return fig


@figure("walk.fig4", paper="Walk Fig. 4",
        title="barriers crossed per epoch, and the heights of the crossed barriers", needs=(CROSSED,))
def barriers(runs: Runs, *, by: str | Sequence[str] | None = None, heights: bool = True):
    """Walk Fig. 4: the barriers crossed in each epoch (bars, a colour per run or grid point of a
    sweep, the mean over its seeds), out of the steps probed (named in the panel title). Where
    ``interpolation/height`` is stored (``heights=True``), a second panel shows the height
    2 max(interior) - L(theta_t) - L(theta_t+1) of every crossed barrier against its epoch (log
    scale), beside the valley floor of the same step, a lower bound of the loss there: the
    paper notes the heights are far below the loss."""
    groups = _walk_groups(runs, prefer=(LR, BATCH_SIZE), by=by)
    counts = _counted(runs, groups, "walk.fig4")
    palette = colors(len(groups))
    show_heights = heights and runs.has(HEIGHT)
    fig, axes = new_figure(2 if show_heights else 1, title="Walk Fig. 4: barriers crossed during training")
    ax = axes[0]
    drawn = [(g, c, col) for g, c, col in zip(groups, counts, palette) if c is not None]
    width = 0.8 / len(drawn)
    probed = []
    for i, (group, (crossed, n_probed, n), color) in enumerate(drawn):
        offset = (i - (len(drawn) - 1) / 2) * width
        ax.bar(crossed.index.to_numpy() + offset, crossed.to_numpy(), width=width, color=color,
               label=G.mean_label(group.label, n))
        probed.extend(n_probed.to_numpy())
    lo, hi = int(np.min(probed)), int(np.max(probed))
    ax.set_title(f"of {lo if lo == hi else f'{lo}-{hi}'} probed steps per epoch", fontsize=9)
    ax.set_xlabel("epoch")
    ax.set_ylabel("barriers crossed")
    top = max(float(c[0].max()) for _, c, _ in drawn)
    ax.set_ylim(0, max(1.0, 1.1 * top))
    if top == 0:
        ax.text(0.5, 0.5, "no barrier crossed", transform=ax.transAxes, ha="center", va="center", fontsize=9)
    ax.xaxis.get_major_locator().set_params(integer=True)
    ax.yaxis.get_major_locator().set_params(integer=True)
    if show_heights:
        offsets = {g.label: (i - (len(drawn) - 1) / 2) * width for i, (g, _, _) in enumerate(drawn)}
        _draw_heights(axes[1], runs, groups, palette, offsets)
        axes[1].set_xlim(ax.get_xlim())
        axes[1].xaxis.get_major_locator().set_params(integer=True)
    if len(drawn) > 1:
        G.outside_legend(fig, axes, title=G.legend_title(groups))
    return fig


def _draw_heights(ax, runs: Runs, groups, palette, offsets: dict) -> None:
    """The height of every crossed barrier (filled) and the valley floor of its step (hollow)
    at its epoch (1-based, as the bars), shifted as the group's bars."""
    from matplotlib.lines import Line2D

    found = False
    for group, color in zip(groups, palette):
        for name in group.runs:
            try:
                crossed = series(runs.frame, CROSSED, run=name).rename(columns={"value": "crossed"})
                height = series(runs.frame, HEIGHT, run=name)[["step", "value"]].rename(columns={"value": "height"})
            except MissingMetric:
                continue
            rows = crossed.merge(height, on="step")
            rows = rows[rows["crossed"] > 0]
            if not len(rows):
                continue
            found = True
            rows = rows.assign(epoch=epoch_number(rows["epoch"]) + offsets.get(group.label, 0.0))
            ax.scatter(rows["epoch"], rows["height"], s=14, color=color, zorder=3)
            try:
                floor = rows.merge(series(runs.frame, FLOOR, run=name)[["step", "value"]], on="step")
                ax.scatter(floor["epoch"], floor["value"], s=14, facecolors="none", edgecolors=[color], lw=0.8)
            except MissingMetric:
                pass
    if found:
        ax.set_yscale("log", nonpositive="mask")
        ax.legend(handles=[Line2D([], [], ls="", marker="o", color="0.4", label="barrier height"),
                           Line2D([], [], ls="", marker="o", mfc="none", color="0.4", label="valley floor (loss)")],
                  fontsize=7, loc="best")
    else:
        ax.text(0.5, 0.5, "no barrier crossed", transform=ax.transAxes, ha="center", va="center", fontsize=9)
    ax.set_title("crossed barriers", fontsize=9)
    ax.set_xlabel("epoch")
    ax.set_ylabel("height")


# --- Fig. 5-6: alignment of mini-batch gradients with the Hessian ---------------------------------------

def _family(runs: Runs, kind: str, pattern: str) -> list[str]:
    """The stored value names of probe ``kind`` matching ``pattern`` (a regex with one group)."""
    frame = runs.frame
    column = "type" if "type" in frame.columns and (frame["type"] == kind).any() else "probe"
    names = frame.loc[frame[column] == kind, "name"].unique()
    return [n for n in names if re.fullmatch(pattern, n)]


def _alignment_table(runs: Runs, run: str, sizes: list[int]):
    """(means, stds): frames indexed by step, a column per batch size, of one run."""
    import pandas as pd

    means, stds = {}, {}
    for m in sizes:
        try:
            means[m] = series(runs.frame, f"alignment/mean_M{m}", run=run).set_index("step")["value"]
            stds[m] = series(runs.frame, f"alignment/std_M{m}", run=run).set_index("step")["value"]
        except MissingMetric:
            continue
    if not means:
        return None
    return pd.DataFrame(means).sort_index(), pd.DataFrame(stds).sort_index()


def _at_steps(table, at):
    """The rows of a step-indexed table for ``at`` ("last", "mean" or a step: the nearest
    stored, the earlier on a tie); (rows, steps used)."""
    steps = table.index.to_numpy()
    if at == "mean":
        return table, list(steps)
    if at == "last":
        return table.iloc[[-1]], [int(steps[-1])]
    near = int(min(steps, key=lambda s: (abs(s - int(at)), s)))
    return table.loc[[near]], [near]


@figure("walk.fig5", paper="Walk Fig. 5-6",
        title="g^T H g / ||g||^2 against the mini-batch size, mean and std over mini-batches",
        needs=("alignment/mean_M{m}", "alignment/std_M{m}"))
def alignment(runs: Runs, *, steps: int | str | Sequence[int | str] = "last", by: str | Sequence[str] | None = None,
              log_y: bool = False):
    """Walk Fig. 5-6: the alignment g_B^T H g_B / ||g_B||^2 of mini-batch gradients with the
    Hessian against the batch size B (log axis; the sizes are read from the stored
    ``alignment/mean_M{m}`` names), the mean over mini-batches with error bars of one standard
    deviation (``std_M{m}``), a line per run or grid point. ``steps``: "last" (the last probed
    step), a step (the nearest probed one), "mean" (the mean over the probed steps), or a list
    of these, one panel each (the paper: the ends of epochs 5 and 10). Several records (seeds
    of a grid point, or the steps of "mean") are pooled: the mean of the means, with the root
    mean square of the standard deviations."""
    import pandas as pd
    from matplotlib.ticker import NullLocator

    sizes = sorted({int(n[len("mean_M"):]) for n in _family(runs, "alignment", r"mean_M(\d+)")})
    if not sizes:
        raise MissingData(f"walk.fig5 (Walk Fig. 5-6) needs alignment/mean_M{{m}} and alignment/std_M{{m}}: "
                          f"{probe_hint('alignment/mean_M')}")
    panels = [steps] if isinstance(steps, (str, int, np.integer)) else list(steps)
    for at in panels:
        if isinstance(at, str) and at not in ("last", "mean"):
            raise ValueError(f"steps entries must be 'last', 'mean' or a step, got {at!r}")
    groups = _walk_groups(runs, prefer=(LR, BATCH_SIZE), by=by)
    palette = colors(len(groups))
    fig, axes = new_figure(len(panels), title=r"Walk Fig. 5: alignment of $g_B$ with $H$")
    factors = 1.04 ** (np.arange(len(groups)) - (len(groups) - 1) / 2)  # spread the error bars apart
    for ax, at in zip(axes, panels):
        used: set[int] = set()
        for color, factor, group in zip(palette, factors, groups):
            means, variances, n = [], [], 0
            for name in group.runs:
                tables = _alignment_table(runs, name, sizes)
                if tables is None:
                    continue
                mean_rows, chosen = _at_steps(tables[0], at)
                means.append(mean_rows)
                variances.append(tables[1].loc[chosen] ** 2)
                used.update(chosen)
                n += 1
            if not n:
                continue
            mean = pd.concat(means).mean()
            std = np.sqrt(pd.concat(variances).mean())
            ax.errorbar(mean.index.to_numpy() * factor, mean.to_numpy(), yerr=std.reindex(mean.index).to_numpy(),
                        color=color, marker="o", ms=4, lw=1.2, capsize=3, label=G.mean_label(group.label, n))
        ax.set_xscale("log")
        ax.set_xticks(sizes, [str(m) for m in sizes])
        ax.xaxis.set_minor_locator(NullLocator())
        if log_y:
            ax.set_yscale("log", nonpositive="mask")
        ax.set_xlabel("batch size $B$")
        ax.set_ylabel(ALIGNMENT_LABEL)
        ax.set_title(_step_title(runs, at, sorted(used)), fontsize=9)
    if len(groups) > 1:
        axes[0].legend(fontsize=7, title=G.legend_title(groups), title_fontsize=7, loc="best")
    return fig


def _step_title(runs: Runs, at, used: list[int]) -> str:
    if at == "mean":
        return f"mean over {len(used)} probed steps"
    if len(used) != 1:
        return f"{'last probed steps' if at == 'last' else f'nearest to {int(at)}'}: {', '.join(map(str, used))}"
    step = used[0]
    frame = runs.frame
    epochs = frame.loc[(frame["step"] == step) & frame["name"].str.startswith("mean_M"), "epoch"].dropna().unique()
    epoch = f", epoch {epochs[0]:.3g}" if len(epochs) == 1 else ""  # runs of several batch sizes differ
    what = "last probed step: " if at == "last" else ("" if int(at) == step else f"nearest to {int(at)}: ")
    return f"{what}step {step}{epoch}"


# --- Fig. 7: cosine of consecutive mini-batch gradients ----------------------------------------------

@figure("walk.fig7", paper="Walk Fig. 7",
        title="cosine of consecutive mini-batch gradients against iteration per batch size, and its mean and std",
        needs=(COSINE,))
def gradient_cosine(runs: Runs, *, by: str | Sequence[str] | None = None, x: str = "step", smooth: int = 1,
                    summary: bool = True):
    """Walk Fig. 7: cos(g_t-1, g_t) of consecutive mini-batch gradients (eq. 5) against ``x``
    ("step" or "epoch"), a line per batch size (or the sweep's other varied keys; the mean over
    seeds with a band from the lowest to the highest), smoothed by a trailing moving average of
    ``smooth`` records. ``summary``: a second panel with the mean and standard deviation over
    all recorded steps per batch size (the paper: smaller for larger batches)."""
    G.check_x(x)
    groups = _walk_groups(runs, prefer=(BATCH_SIZE, LR), by=by)
    palette = colors(len(groups))
    fig, axes = new_figure(2 if summary else 1, title="Walk Fig. 7: cosine of consecutive mini-batch gradients")
    ax = axes[0]
    stats = []
    for color, group in zip(palette, groups):
        curve = G.group_curve(runs, COSINE, group.runs, x, smooth)
        values = []
        for name in group.runs:
            try:
                values.extend(series(runs.frame, COSINE, run=name)["value"].dropna())
            except MissingMetric:
                continue
        stats.append((np.mean(values), np.std(values)) if values else (np.nan, np.nan))
        if curve is None:
            continue
        G.plot_curve(ax, curve, color, group.label, lw=1.1)
    ax.axhline(0.0, color="0.3", lw=0.7)
    ax.set_xlabel(G.xlabel(x))
    ax.set_ylabel(r"$\cos(g_{t-1}, g_t)$")
    if summary:
        pos = np.arange(len(groups))
        for i, (color, (mu, sd)) in enumerate(zip(palette, stats)):
            ax2 = axes[1]
            ax2.errorbar([pos[i]], [mu], yerr=[sd], color=color, marker="o", ms=5, capsize=4, lw=1.4)
        axes[1].set_xticks(pos, [g.label for g in groups], fontsize=8, rotation=30 if len(groups) > 4 else 0)
        axes[1].set_xlim(-0.6, len(groups) - 0.4)
        axes[1].axhline(0.0, color="0.3", lw=0.7)
        axes[1].set_ylabel(r"$\cos(g_{t-1}, g_t)$, mean $\pm$ std")
        axes[1].set_title("over all recorded steps", fontsize=9)
    G.outside_legend(fig, axes, title=G.legend_title(groups))
    return fig
