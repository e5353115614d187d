"""Figures of "How noise affects the Hessian spectrum in overparameterized neural networks" (the noise
paper, NH), drawn from stored runs.

``noise.fig1``   training and validation loss along the projected path (inset: along the training path)
``noise.fig2a``  sum of the negative Hessian eigenvalues against the training loss, with the fitted line
``noise.fig2b``  the trace change against eta^2, with the fitted line and eq. 15's slope
``noise.fig2cd`` trace and determinant against iteration under SGD-like and isotropic noise
``noise.fig3``   the Hessian trace along the projected path, with error bars
``noise.fig5``   the H-C cosine similarity and the training curve
``noise.fig6``   |O_L/O_R - 1| in the raw parameter space and the top-1 eigenspace
``noise.fig7``   the sloped-valley toy under GD and noisy GD

Fig. 5 reads the ``hessian_noise`` probe; the others read runs written by the recorders of
:mod:`sgdscope.toys.record` (``sgdscope.quantities.RECORDERS`` names the call for each type), so a
missing quantity is reported with the recorder that writes it. Several runs holding the same
quantity are drawn side by side (a panel per run) or, for the toy results, as separate series.
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np

from ..analysis import series
from ..quantities import RECORDERS, quantity
from .registry import figure
from .source import MissingData, Runs, probe_hint
from .style import colors, new_figure

__all__ = ["projected_path_loss", "negative_eigenvalues", "trace_rate", "noise_structure", "projected_path_trace",
           "hessian_noise_alignment", "fdr_stationarity", "sloped_valley"]

TRAIN_CURVES = ("evaluation/train_loss", "train/loss")  # the training curve: the full-set loss where recorded
_TRAIN, _VAL = "tab:blue", "tab:orange"
_NOISE = {  # noise kind -> colour and label (the paper: SGD red, isotropic blue)
    "sgd": ("tab:red", "SGD noise"),
    "isotropic_subspace": ("tab:blue", "isotropic noise (non-degenerate subspace)"),
    "isotropic": ("tab:green", "isotropic noise (all directions)"),
    "designed": ("tab:purple", "designed noise"),
}
_MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*")


# --- reading ---------------------------------------------------------------------------------------

def _require(runs: Runs, *metrics: str, figure: str) -> None:
    """MissingData naming every absent metric and what writes it: the recorder for a recorded
    type (:data:`~sgdscope.quantities.RECORDERS`), otherwise the probe."""
    missing = [m for m in metrics if not runs.has(m)]
    if not missing:
        return
    by_type: dict[str, list[str]] = {}
    for m in missing:
        by_type.setdefault(m.split("/", 1)[0], []).append(m)
    present = set(runs.frame["type"]) if "type" in runs.frame.columns else set()
    parts = []
    for kind, ms in by_type.items():
        if kind in RECORDERS:
            how = f"written by {RECORDERS[kind]}"
        elif kind in present:
            how = f"the {kind} probe ran but did not record it"
        else:
            how = probe_hint(ms[0])
        parts.append(f"{', '.join(ms)}: {how}")
    raise MissingData(f"{figure} needs " + "; ".join(parts))


def _holding(runs: Runs, metric: str) -> list[str]:
    """The runs that hold ``metric`` (rows, or arrays for an array quantity), in order."""
    kind, name = metric.split("/", 1)
    if quantity(kind, name).array:
        out = []
        for run in runs.names:
            try:
                runs.arrays(metric, run)
                out.append(run)
            except MissingData:
                pass
        return out
    f = runs.frame
    mask = ((f["type"] == kind) | (f["probe"] == kind)) & (f["name"] == name)
    return list(dict.fromkeys(f.loc[mask, "run"]))


class _Series(NamedTuple):
    step: np.ndarray
    epoch: np.ndarray
    value: np.ndarray


def _series(runs: Runs, metric: str, run: str) -> _Series:
    """One run's ``metric`` as float arrays, sorted by step, NaN values left out."""
    s = series(runs.frame, metric, run=run).dropna(subset=["value"])
    return _Series(s["step"].to_numpy(), s["epoch"].to_numpy(float), s["value"].to_numpy(float))


def _at(runs: Runs, metric: str, run: str, steps: np.ndarray) -> np.ndarray:
    """``metric`` of one run at ``steps`` (NaN where not stored), e.g. a standard error beside its value."""
    s = _series(runs, metric, run)
    out = np.full(len(steps), np.nan)
    index = {step: i for i, step in enumerate(s.step)}
    for j, step in enumerate(steps):
        if step in index:
            out[j] = s.value[index[step]]
    return out


def _last(runs: Runs, metric: str, run: str) -> float:
    return float(_series(runs, metric, run).value[-1])


def _array(runs: Runs, metric: str, run: str) -> np.ndarray:
    """The array stored at the last step (the recorded results without a time axis are at step 0)."""
    stored = runs.arrays(metric, run)
    return np.asarray(stored[max(stored)], dtype=float)


def _x(s, x: str):
    """(values, label) of the x axis: epochs where recorded (NaN epochs fall back to steps)."""
    if x not in ("step", "epoch"):
        raise ValueError(f"x must be 'step' or 'epoch', got {x!r}")
    if x == "epoch" and not np.isnan(s.epoch).all():
        return s.epoch, "epoch"
    return s.step, "step"


def _title(ax, run: str, many: bool) -> None:
    if many:
        ax.set_title(run, fontsize=9)


# --- Fig. 1 and 3: the projected path ----------------------------------------------------------------

FIG1_NEEDS = ("valley_path/train_loss", "valley_path/val_loss")


@figure("noise.fig1", paper="Noise Fig. 1", title="training and validation loss along the projected path "
        "(inset: along the training path)", needs=FIG1_NEEDS)
def projected_path_loss(runs: Runs, *, x: str = "epoch", log_y: bool = False, inset: bool = True):
    """Noise paper Fig. 1: the training and validation loss of the states projected to the minimal
    valley, against ``x`` ("epoch", or "step"), a panel per run. The inset shows the run's own
    training curve (``evaluation/train_loss``, else ``train/loss``) and ``evaluation/val_loss``,
    where the same run holds them (record the path with ``record_valley_path(..., append=True)``)."""
    _require(runs, *FIG1_NEEDS, figure="noise.fig1 (Noise Fig. 1)")
    names = _holding(runs, FIG1_NEEDS[0])
    fig, axes = new_figure(len(names), title="Noise Fig. 1: loss along the projected path")
    for ax, run in zip(axes, names):
        for metric, color, label in ((FIG1_NEEDS[0], _TRAIN, "training loss"),
                                     (FIG1_NEEDS[1], _VAL, "validation loss")):
            s = _series(runs, metric, run)
            xs, xlabel = _x(s, x)
            ax.plot(xs, s.value, color=color, lw=1.2, label=label)
        ax.set_xlabel(xlabel)
        ax.set_ylabel("loss (projected path)")
        if log_y:
            ax.set_yscale("log")
        _title(ax, run, len(names) > 1)
        if inset:
            _training_inset(ax, runs, run, x, log_y)
    fig.legend(*axes[0].get_legend_handles_labels(), loc="outside lower center", ncols=2, fontsize=7)
    return fig


_PLACES = tuple((x0, y0) for y0 in (0.52, 0.3, 0.08) for x0 in (0.52, 0.06))  # inset corners, axes fraction
_INSET = 0.42  # its width and height, axes fraction


def _emptiest_place(ax) -> tuple[float, float]:
    """Where in ``ax`` an inset (with its title) covers the fewest line points (upper right on a tie)."""
    ax.autoscale_view()
    pts = [line.get_xydata() for line in ax.get_lines()]
    if not pts:
        return _PLACES[0]
    xy = ax.transAxes.inverted().transform(ax.transData.transform(np.concatenate(pts)))

    def covered(place):
        x0, y0 = place
        return int(((xy[:, 0] >= x0 - 0.04) & (xy[:, 0] <= x0 + _INSET + 0.04)
                    & (xy[:, 1] >= y0 - 0.06) & (xy[:, 1] <= y0 + _INSET + 0.1)).sum())

    return min(_PLACES, key=covered)


def _training_inset(ax, runs: Runs, run: str, x: str, log_y: bool) -> None:
    """The run's own training (and validation) curve in an inset, where it holds them."""
    train = next((m for m in TRAIN_CURVES if run in _holding(runs, m)), None)
    curves = [(m, c) for m, c in ((train, _TRAIN), ("evaluation/val_loss", _VAL))
              if m is not None and run in _holding(runs, m)]
    if not curves:
        return
    sub = ax.inset_axes([*_emptiest_place(ax), _INSET, _INSET])
    for metric, color in curves:
        s = _series(runs, metric, run)
        sub.plot(*(_x(s, x)[0], s.value), color=color, lw=0.8)
    sub.set_title("training path", fontsize=6, pad=2)
    sub.tick_params(labelsize=5)
    if log_y:
        sub.set_yscale("log")


FIG3_NEEDS = ("valley_path/trace", "valley_path/trace_stderr")


@figure("noise.fig3", paper="Noise Fig. 3", title="Hessian trace along the projected path, with error bars",
        needs=FIG3_NEEDS)
def projected_path_trace(runs: Runs, *, x: str = "epoch"):
    """Noise paper Fig. 3: Tr H at the projected states (Hutchinson, ``trace_along``) against ``x``,
    red error bars of one standard error, a panel per run. The paper's prediction: it decreases."""
    _require(runs, *FIG3_NEEDS, figure="noise.fig3 (Noise Fig. 3)")
    names = _holding(runs, FIG3_NEEDS[0])
    fig, axes = new_figure(len(names), title="Noise Fig. 3: Hessian trace along the projected path")
    for ax, run in zip(axes, names):
        s = _series(runs, FIG3_NEEDS[0], run)
        err = _at(runs, FIG3_NEEDS[1], run, s.step)
        xs, xlabel = _x(s, x)
        ax.errorbar(xs, s.value, yerr=err, color="tab:blue", ecolor="tab:red", elinewidth=0.8, lw=1.0,
                    marker=".", ms=3, capsize=0)
        ax.set_xlabel(xlabel)
        ax.set_ylabel(r"$\mathrm{Tr}(\mathbf{H})$")
        _title(ax, run, len(names) > 1)
    return fig


# --- Fig. 2: the toys ------------------------------------------------------------------------------

FIG2A_NEEDS = ("negative_sum/excess_loss", "negative_sum/negative_sum", "negative_sum/lr", "negative_sum/batch_size",
               "negative_sum/slope", "negative_sum/intercept")


@figure("noise.fig2a", paper="Noise Fig. 2a", title="sum of the negative Hessian eigenvalues against the training "
        "loss, with the fitted line", needs=FIG2A_NEEDS)
def negative_eigenvalues(runs: Runs):
    """Noise paper Fig. 2a: the sum of the negative Hessian eigenvalues against the training loss
    above that of the GD minimum the runs start from (L - L*, the x of the stored fit; the paper
    takes L* ~ 0), a colour per learning rate and a marker per batch size, and the fitted line
    y = w x + b in red (prediction: w < 0, b ~ 0)."""
    _require(runs, *FIG2A_NEEDS, figure="noise.fig2a (Noise Fig. 2a)")
    names = _holding(runs, FIG2A_NEEDS[0])
    fig, (ax,) = new_figure(title="Noise Fig. 2a: negative eigenvalues and the loss", height=3.8)
    from matplotlib.lines import Line2D

    legend = []
    for i, run in enumerate(names):
        xs, ys = _array(runs, FIG2A_NEEDS[0], run), _array(runs, FIG2A_NEEDS[1], run)
        lrs, sizes = _array(runs, "negative_sum/lr", run), _array(runs, "negative_sum/batch_size", run)
        ulr, usize = np.unique(lrs), np.unique(sizes)
        palette = colors(len(ulr))
        for j, lr in enumerate(ulr):
            for k, size in enumerate(usize):
                sel = (lrs == lr) & (sizes == size)
                ax.scatter(xs[sel], ys[sel], color=palette[j], marker=_MARKERS[k % len(_MARKERS)], s=22,
                           edgecolor="k", linewidth=0.3, zorder=3)
        slope, intercept = _last(runs, "negative_sum/slope", run), _last(runs, "negative_sum/intercept", run)
        line = np.linspace(min(0.0, xs.min()), xs.max(), 50)
        fit = f"fit: w = {slope:.3g}, b = {intercept:.2g}" + (f" ({run})" if len(names) > 1 else "")
        ax.plot(line, slope * line + intercept, color="tab:red", lw=1.2, ls="-" if i == 0 else "--", zorder=2)
        legend.append(Line2D([], [], color="tab:red", lw=1.2, ls="-" if i == 0 else "--", label=fit))
        if i == 0:
            legend += [Line2D([], [], color=c, marker="o", ls="", label=rf"$\eta$={lr:g}")
                       for c, lr in zip(palette, ulr)]
            legend += [Line2D([], [], color="0.5", marker=_MARKERS[k % len(_MARKERS)], ls="", label=f"S={size:g}")
                       for k, size in enumerate(usize)]
    ax.axhline(0, color="0.5", lw=0.6)
    ax.set_xlabel(r"training loss $L - L^*$")
    ax.set_ylabel("sum of negative eigenvalues")
    fig.legend(handles=legend, loc="outside lower center", ncols=3, fontsize=7)
    return fig


FIG2B_NEEDS = ("trace_rate/eta", "trace_rate/trace_change", "trace_rate/stderr", "trace_rate/slope",
               "trace_rate/intercept")


@figure("noise.fig2b", paper="Noise Fig. 2b", title="trace change against the squared learning rate, with the "
        "fitted line", needs=FIG2B_NEEDS)
def trace_rate(runs: Runs, *, predicted: bool = True):
    """Noise paper Fig. 2b: the change of the trace over the measured steps (mean over chains, error
    bars of one standard error) against eta^2, the fitted line in red, and (``predicted``) eq. 15's
    line -(steps / 4) s |grad T|^2 eta^2 dashed."""
    _require(runs, *FIG2B_NEEDS, figure="noise.fig2b (Noise Fig. 2b)")
    names = _holding(runs, FIG2B_NEEDS[0])
    fig, (ax,) = new_figure(title=r"Noise Fig. 2b: trace change against $\eta^2$")
    for i, run in enumerate(names):
        eta2 = _array(runs, "trace_rate/eta", run) ** 2
        change, err = _array(runs, "trace_rate/trace_change", run), _array(runs, "trace_rate/stderr", run)
        tag = f" ({run})" if len(names) > 1 else ""
        ax.errorbar(eta2, change, yerr=err, color="tab:blue", marker="o", ms=4, ls="", capsize=2,
                    label=f"noisy GD, SGD noise{tag}", zorder=3)
        slope, intercept = _last(runs, "trace_rate/slope", run), _last(runs, "trace_rate/intercept", run)
        line = np.linspace(0.0, eta2.max() * 1.05, 50)
        ax.plot(line, slope * line + intercept, color="tab:red", lw=1.2, label=f"fit: slope {slope:.3g}{tag}")
        if predicted and run in _holding(runs, "trace_rate/predicted_slope"):
            p = _last(runs, "trace_rate/predicted_slope", run)
            ax.plot(line, p * line, color="0.3", lw=1.0, ls="--", label=f"eq. 15: slope {p:.3g}{tag}")
    ax.axhline(0, color="0.5", lw=0.6)
    ax.set_xlabel(r"$\eta^2$")
    ax.set_ylabel(r"$\Delta\mathrm{Tr}$ over the measured steps")
    ax.ticklabel_format(axis="x", style="sci", scilimits=(-3, 3))
    ax.legend(fontsize=7)
    return fig


FIG2CD_NEEDS = tuple(f"noise_structure/{kind}_{q}" for kind in ("sgd", "isotropic_subspace") for q in ("trace", "det"))


def _noise_kinds(runs: Runs, run: str) -> list[str]:
    f = runs.frame
    rows = f[(f["run"] == run) & (f["type"] == "noise_structure")]
    kinds = [n[: -len("_trace")] for n in dict.fromkeys(rows["name"]) if n.endswith("_trace")]
    return sorted(kinds, key=lambda k: (list(_NOISE).index(k) if k in _NOISE else len(_NOISE), k))


@figure("noise.fig2cd", paper="Noise Fig. 2c-d", title="trace and determinant against iteration under SGD-like "
        "and isotropic noise", needs=FIG2CD_NEEDS)
def noise_structure(runs: Runs):
    """Noise paper Fig. 2c-d: the non-degenerate trace (c) and determinant (d) against iteration,
    mean over chains with a band of one standard error, SGD noise in red and isotropic noise in the
    non-degenerate subspace in blue (other stored noise kinds in other colours). SGD noise lowers
    the trace, isotropic noise the determinant."""
    _require(runs, *FIG2CD_NEEDS, figure="noise.fig2cd (Noise Fig. 2c-d)")
    names = _holding(runs, FIG2CD_NEEDS[0])
    fig, axes = new_figure(2, title="Noise Fig. 2c-d: SGD-like against isotropic noise")
    extra = iter(colors(8, "tab10"))
    styles = ("-", "--", ":", "-.")
    for i, run in enumerate(names):
        for kind in _noise_kinds(runs, run):
            color, label = _NOISE.get(kind, (next(extra), kind))
            label += f" ({run})" if len(names) > 1 else ""
            for ax, q in zip(axes, ("trace", "det")):
                s = _series(runs, f"noise_structure/{kind}_{q}", run)
                err = _at(runs, f"noise_structure/{kind}_{q}_stderr", run, s.step)
                ax.plot(s.step, s.value, color=color, lw=1.3, ls=styles[i % len(styles)], label=label)
                ax.fill_between(s.step, s.value - err, s.value + err, color=color, alpha=0.2, lw=0)
    for ax, letter, what in zip(axes, "cd", (r"trace $T=\sum_i\lambda_i$", r"determinant $\prod_i\lambda_i$")):
        ax.set_xlabel("iteration")
        ax.set_ylabel(what)
        ax.set_title(f"({letter})", fontsize=9)
    fig.legend(*axes[0].get_legend_handles_labels(), loc="outside lower center", ncols=2, fontsize=7)
    return fig


# --- App. A.4-A.6: Fig. 5, 6, 7 ----------------------------------------------------------------------

COSINE = "hessian_noise/cosine"


@figure("noise.fig5", paper="Noise Fig. 5", title="cosine similarity of H and C, and the training curve",
        needs=(COSINE,))
def hessian_noise_alignment(runs: Runs, *, loss: str | None = None, x: str = "epoch"):
    """Noise paper Fig. 5: CS(H, C) (eq. 35; a band of one standard error where ``hessian_noise/stderr``
    is stored) above the training curve ``loss`` (default ``evaluation/train_loss``, else the
    trainer's mini-batch ``train/loss``), against ``x``, a column per run."""
    _require(runs, COSINE, figure="noise.fig5 (Noise Fig. 5)")
    names = _holding(runs, COSINE)
    curves = [loss] if loss is not None else list(TRAIN_CURVES)
    found = {run: next((m for m in curves if run in _holding(runs, m)), None) for run in names}
    lacking = [run for run, m in found.items() if m is None]
    if lacking:
        raise MissingData(f"noise.fig5 (Noise Fig. 5) needs a training curve in {', '.join(lacking)}: "
                          + " or ".join(f"{m} ({probe_hint(m)})" for m in curves))
    n = len(names)
    fig, axes = new_figure(n, 2, title="Noise Fig. 5: H-C alignment, training curve", height=2.6)
    for j, run in enumerate(names):
        top, bottom = axes[j], axes[n + j]
        s = _series(runs, COSINE, run)
        xs, xlabel = _x(s, x)
        top.plot(xs, s.value, color="tab:blue", lw=1.2, marker=".", ms=3)
        if run in _holding(runs, "hessian_noise/stderr"):
            err = _at(runs, "hessian_noise/stderr", run, s.step)
            top.fill_between(xs, s.value - err, s.value + err, color="tab:blue", alpha=0.2, lw=0)
        top.set_ylabel(r"$\mathrm{CS}(\mathbf{H}, \mathbf{C})$")
        top.set_ylim(min(0.0, float(s.value.min()) - 0.05), 1.02)
        _title(top, run, n > 1)
        c = _series(runs, found[run], run)
        cx, _ = _x(c, xlabel)
        bottom.plot(cx, c.value, color="tab:orange", lw=1.0)
        bottom.set_ylabel("training loss" if found[run] != "train/loss" else "training loss (mini-batch)")
        bottom.set_xlabel(xlabel)
        bottom.set_xlim(top.get_xlim())
    return fig


FIG6_NEEDS = ("fdr/ratio", "fdr/ratio_subspace")
YAIDA_THRESHOLD = 1e-2


@figure("noise.fig6", paper="Noise Fig. 6", title="|O_L/O_R - 1| in the raw parameter space and the top-1 "
        "eigenspace", needs=FIG6_NEEDS)
def fdr_stationarity(runs: Runs, *, x: str = "epoch", threshold: float | None = YAIDA_THRESHOLD):
    """Noise paper Fig. 6: the fluctuation-dissipation distance |O_L/O_R - 1| (``FDRMonitor``, logged
    with ``log_fdr``) in the raw parameter space and projected on the top-1 Hessian eigenvector,
    on a log axis against ``x``, a panel per run; ``threshold`` (Yaida's 1e-2) dotted."""
    _require(runs, *FIG6_NEEDS, figure="noise.fig6 (Noise Fig. 6)")
    names = _holding(runs, FIG6_NEEDS[0])
    fig, axes = new_figure(len(names), title=r"Noise Fig. 6: $|O_L/O_R - 1|$ along training")
    for ax, run in zip(axes, names):
        for metric, color, label in ((FIG6_NEEDS[0], "tab:blue", "raw parameter"),
                                     (FIG6_NEEDS[1], "tab:orange", "projection to top-1 eigenvector")):
            s = _series(runs, metric, run)
            xs, xlabel = _x(s, x)
            ax.plot(xs, np.maximum(s.value, 1e-12), color=color, lw=1.2, label=label)
        if threshold is not None:
            ax.axhline(threshold, color="0.4", lw=0.8, ls=":", label=f"threshold {threshold:g}")
        ax.set_yscale("log")
        ax.set_xlabel(xlabel)
        ax.set_ylabel(r"$|O_L/O_R - 1|$")
        _title(ax, run, len(names) > 1)
        ax.legend(fontsize=7)
    return fig


FIG7_NEEDS = ("valley_slope/gd_theta_1", "valley_slope/gd_theta_2", "valley_slope/noisy_theta_1",
              "valley_slope/noisy_theta_2")


@figure("noise.fig7", paper="Noise Fig. 7", title="the sloped-valley toy under gradient descent and noisy gradient "
        "descent", needs=FIG7_NEEDS)
def sloped_valley(runs: Runs, *, run: str | None = None):
    """Noise paper Fig. 7 on L = 1/2 (theta_2^2 + 1) theta_1^2 + alpha theta_2: theta_1 (top) and theta_2
    (bottom) against iteration under GD (left) and noisy GD (right: the first chain; in the theta_2
    panel also the mean over chains with a band of one standard error and eq. 38's stationary value
    -2 alpha / (eta s) dashed). ``run``: which run (the first holding the toy by default)."""
    _require(runs, *FIG7_NEEDS, figure="noise.fig7 (Noise Fig. 7)")
    names = _holding(runs, FIG7_NEEDS[0])
    run = run or names[0]
    if run not in names:
        raise MissingData(f"noise.fig7: run {run!r} holds no valley_slope rows; runs that do: {', '.join(names)}")
    title = "Noise Fig. 7: GD (left) and noisy GD (right)" + (f", {run}" if len(names) > 1 else "")
    fig, axes = new_figure(2, 2, title=title, height=2.8)
    for ax, metric, color in zip(axes, ("gd_theta_1", "noisy_theta_1", "gd_theta_2", "noisy_theta_2"),
                                 ("tab:blue", "tab:red", "tab:blue", "tab:red")):
        s = _series(runs, f"valley_slope/{metric}", run)
        faint = metric == "noisy_theta_2"  # drawn under the chains' mean
        ax.plot(s.step, s.value, color=color, lw=0.8 if metric.startswith("noisy") else 1.3, alpha=0.6 if faint else 1,
                label="one chain" if faint else None)
        ax.set_ylabel(r"$\theta_1$" if metric.endswith("1") else r"$\theta_2$")
        ax.ticklabel_format(axis="x", style="sci", scilimits=(-3, 4))
    axes[0].set_title("gradient descent", fontsize=9)
    axes[1].set_title("noisy gradient descent", fontsize=9)
    for ax in axes[2:]:
        ax.set_xlabel("iteration")
    ax = axes[3]
    if run in _holding(runs, "valley_slope/noisy_theta_2_mean"):
        m = _series(runs, "valley_slope/noisy_theta_2_mean", run)
        err = _at(runs, "valley_slope/noisy_theta_2_stderr", run, m.step)
        err = np.where(np.isfinite(err), err, 0.0)
        ax.plot(m.step, m.value, color="k", lw=1.2, label="mean over chains")
        ax.fill_between(m.step, m.value - err, m.value + err, color="k", alpha=0.2, lw=0)
    if run in _holding(runs, "valley_slope/predicted"):
        p = _last(runs, "valley_slope/predicted", run)
        ax.axhline(p, color="tab:green", lw=1.2, ls="--", label=rf"eq. 38: $-2\alpha/(\eta s)$ = {p:.3g}")
    ax.legend(fontsize=7, loc="upper right")
    return fig
