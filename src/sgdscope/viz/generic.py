"""Generic figures: any metric against step or epoch, and the SLQ spectral density."""
from __future__ import annotations

import numpy as np

from . import groups as G
from .registry import figure
from .source import Runs
from .style import colors, new_figure

__all__ = ["metric_curve", "spectral_density"]


def metric_curve(runs: Runs, metric: str = "train/loss", *, x: str = "step", log_y: bool = False):
    """``metric`` against ``x`` ("step" or "epoch"): one line per run, or per grid point of a
    sweep with the mean over seeds and a band from the lowest to the highest seed."""
    G.check_x(x)
    runs.require(metric, figure="metric_curve")
    fig, (ax,) = new_figure(title=metric)
    groups = G.groups(runs)
    for color, group in zip(colors(len(groups)), groups):
        curve = G.group_curve(runs, metric, group.runs, x, 1)
        if curve is None:
            continue
        G.plot_curve(ax, curve, color, group.label)
    ax.set_xlabel(G.xlabel(x))
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
