"""Generic figures: any metric against step or epoch, and the SLQ spectral density."""
from __future__ import annotations

import numpy as np

from ..analysis import series, varied_keys
from .registry import figure
from .source import Runs
from .style import colors, new_figure

__all__ = ["metric_curve", "spectral_density"]


def _groups(runs: Runs) -> list[tuple[str, list[str]]]:
    """(label, run names) per grid point: runs that differ only in their seed are one group."""
    df = runs.frame
    keys = [k for k in varied_keys(df) if k != "seed"] if df["run"].nunique() > 1 and "state" in df.columns else []
    if not keys:
        return [(run, [run]) for run in runs.names]
    first = df.drop_duplicates("run").set_index("run")
    grouped: dict[tuple, list[str]] = {}
    for run in runs.names:
        grouped.setdefault(tuple(first.loc[run, k] for k in keys), []).append(run)
    return [(", ".join(f"{k.split('.')[-1]}={v:g}" if isinstance(v, float) else f"{k.split('.')[-1]}={v}"
                       for k, v in zip(keys, key)), names) for key, names in sorted(grouped.items())]


def metric_curve(runs: Runs, metric: str = "train/loss", *, x: str = "step", log_y: bool = False):
    """``metric`` against ``x`` ("step" or "epoch"): one line per run, or per grid point of a
    sweep with the mean over seeds and a band from the lowest to the highest seed."""
    if x not in ("step", "epoch"):
        raise ValueError(f"x must be 'step' or 'epoch', got {x!r}")
    runs.require(metric, figure="metric_curve")
    fig, (ax,) = new_figure(title=metric)
    groups = _groups(runs)
    for color, (label, names) in zip(colors(len(groups)), groups):
        curves = [series(runs.frame, metric, run=name).dropna(subset=["value"]) for name in names]
        if len(curves) == 1:
            ax.plot(curves[0][x], curves[0]["value"], color=color, label=label, lw=1.2)
            continue
        table = np.full((len(curves), len(curves[0])), np.nan)
        steps = curves[0][x].to_numpy()
        for i, c in enumerate(curves):
            aligned = c.set_index(x)["value"].reindex(steps).to_numpy()
            table[i] = aligned
        ax.plot(steps, np.nanmean(table, 0), color=color, label=f"{label} (mean of {len(curves)})", lw=1.2)
        ax.fill_between(steps, np.nanmin(table, 0), np.nanmax(table, 0), color=color, alpha=0.2, lw=0)
    ax.set_xlabel(x)
    ax.set_ylabel(metric)
    if log_y:
        ax.set_yscale("log")
    ax.legend(fontsize=7)
    return fig


figure("generic.metric", paper="generic", title="any metric against step (train/loss by default)",
       needs=("train/loss",))(metric_curve)


@figure("generic.spectral_density", paper="Break-Even Fig. 3 (H)", title="SLQ density of the Hessian spectrum",
        needs=("spectral_density/grid", "spectral_density/density"))
def spectral_density(runs: Runs, *, run: str | None = None, steps: int = 3):
    """The last ``steps`` SLQ densities of one run (the first run by default), on a log density axis."""
    run = run or runs.names[0]
    grids = runs.arrays("spectral_density/grid", run)
    dens = runs.arrays("spectral_density/density", run)
    chosen = sorted(grids)[-steps:]
    fig, (ax,) = new_figure(title=f"Hessian spectral density, {run}")
    for color, step in zip(colors(len(chosen)), chosen):
        ax.plot(grids[step], np.maximum(dens[step], 1e-12), color=color, label=f"step {step}", lw=1.2)
    ax.set_yscale("log")
    ax.set_xlabel("eigenvalue")
    ax.set_ylabel("density")
    ax.legend(fontsize=7)
    return fig
