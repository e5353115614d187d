"""Runs grouped by grid point, and the curves and legends the paper figures share.

A sweep's runs that differ only by their seed form one :class:`Group` (a grid point), labelled
with the paper's symbols (``$\\eta$=0.1``); :func:`group_curve` gives the seed mean and the band
from the lowest to the highest seed of one metric along the steps.
"""
from __future__ import annotations

import numbers
import warnings
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from ..analysis import MissingMetric, moving_average, series, varied_keys
from .source import MissingData, Runs

__all__ = ["Group", "SYMBOLS", "fmt", "order", "run_configs", "sweep_keys", "groups", "run_series", "group_curve",
           "check_x", "outside_legend", "legend_title", "xlabel", "one_run", "mean_label", "plot_curve"]

SYMBOLS = {"optimizer.lr": r"$\eta$", "train.batch_size": r"$S$", "optimizer.momentum": r"$\beta$", "model.name": "model"}


@dataclass(frozen=True)
class Group:
    label: str  # e.g. "$\eta$=0.1" or "$\eta$=0.1, model=simplecnn_bn"
    values: dict  # config key -> value
    runs: tuple[str, ...]  # ordered by seed


def fmt(key: str, value) -> str:
    shown = f"{value:g}" if isinstance(value, float) else str(value)
    return f"{SYMBOLS.get(key, key.split('.')[-1])}={shown}"


def order(value):
    """Sort key mixing numbers and strings (numbers first, by value)."""
    if isinstance(value, numbers.Number) and not isinstance(value, bool):
        return (0, float(value), "")
    return (1, 0.0, str(value))


def run_configs(runs: Runs):
    return runs.frame.drop_duplicates("run").set_index("run")


def sweep_keys(runs: Runs) -> list[str]:
    """The varied config keys of a sweep (seed included); none for one run or a frame without configs."""
    frame = runs.frame
    if len(runs.names) < 2 or "state" not in frame.columns:
        return []
    return varied_keys(frame)


def groups(runs: Runs, *, prefer: Sequence[str] = (), by: str | Sequence[str] | None = None,
            require: str | None = None, figure_name: str = "this figure") -> list[Group]:
    """One group per grid point: the runs that differ only by their seed, ordered by the ``prefer``
    keys first (then the other varied keys) and by value. ``by`` names the keys instead;
    ``require`` a key the sweep must vary (MissingData otherwise)."""
    configs = run_configs(runs)
    if by is not None:
        keys = [by] if isinstance(by, str) else list(by)
        unknown = [k for k in keys if k not in configs.columns]
        if unknown:
            raise ValueError(f"by={unknown} is not a config key of the runs; keys: "
                             f"{', '.join(c for c in configs.columns if '.' in c or c == 'seed')}")
    else:
        varied = [k for k in sweep_keys(runs) if k != "seed"]
        keys = [k for k in prefer if k in varied] + [k for k in varied if k not in prefer]
    if require is not None and require not in keys:
        raise MissingData(f"{figure_name} compares runs over {require}; these runs do not vary it: "
                          f"give it a sweep over {require} (sgdscope sweep)")
    if not keys:
        return [Group(run, {}, (run,)) for run in runs.names]
    grouped: dict[tuple, list[str]] = {}
    for run in runs.names:
        grouped.setdefault(tuple(configs.loc[run, k] for k in keys), []).append(run)
    if "seed" in configs.columns:
        grouped = {key: sorted(names, key=lambda r: order(configs.loc[r, "seed"])) for key, names in grouped.items()}
    ordered = sorted(grouped.items(), key=lambda item: tuple(order(v) for v in item[0]))
    return [Group(", ".join(fmt(k, v) for k, v in zip(keys, key)), dict(zip(keys, key)), tuple(names))
            for key, names in ordered]


def run_series(runs: Runs, metric: str, run: str):
    """``step, epoch, value`` of one run without NaN values; None where the run lacks the metric."""
    try:
        return series(runs.frame, metric, run=run).dropna(subset=["value"])
    except MissingMetric:
        return None


def group_curve(runs: Runs, metric: str, names: Sequence[str], x: str, smooth: int):
    """(x, mean, lowest, highest, n) over the runs ``names`` aligned on the step; None if no run has it."""
    import pandas as pd

    parts = []
    for name in names:
        s = run_series(runs, metric, name)
        if s is None or not len(s):
            continue
        if smooth > 1:
            s = s.assign(value=moving_average(s["value"].to_numpy(), smooth))
        parts.append(s.assign(run=name))
    if not parts:
        return None
    rows = pd.concat(parts, ignore_index=True)
    wide = rows.pivot_table(index="step", columns="run", values="value", aggfunc="mean", dropna=False)
    xs = rows.groupby("step")[x].mean().reindex(wide.index).to_numpy() if x == "epoch" else wide.index.to_numpy()
    values = wide.to_numpy(dtype=float)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # a step only some seeds recorded
        return xs, np.nanmean(values, 1), np.nanmin(values, 1), np.nanmax(values, 1), len(parts)


def check_x(x: str) -> None:
    if x not in ("step", "epoch"):
        raise ValueError(f"x must be 'step' or 'epoch', got {x!r}")


def outside_legend(fig, axes, extra=(), title: str | None = None) -> None:
    """One legend for all panels, outside on the right (the first panel's entries)."""
    handles, labels = axes[0].get_legend_handles_labels()
    extra = [e for e in extra if e is not None]
    handles, labels = handles + extra, labels + [e.get_label() for e in extra]
    if handles:
        fig.legend(handles, labels, loc="outside right upper", fontsize=7, title=title, title_fontsize=7)


def legend_title(groups: list[Group]) -> str | None:
    keys = list(groups[0].values) if groups and groups[0].values else []
    return ", ".join(keys) if keys else None




def xlabel(x: str) -> str:
    """The paper's name of the x axis: iterations for steps."""
    return "iteration" if x == "step" else "epoch"


def one_run(runs: Runs, run: str | None) -> str:
    """``run`` if it is one of the runs (the first run when None); ValueError lists them."""
    if run is None:
        return runs.names[0]
    if run not in runs.names:
        raise ValueError(f"run={run!r} is not among the runs: {', '.join(runs.names)}")
    return run


def mean_label(label: str, n: int) -> str:
    """``label``, or ``"label (mean of n)"`` for a seed mean."""
    return label if n == 1 else f"{label} (mean of {n})"


def plot_curve(ax, curve, color, label: str | None, *, lw: float = 1.2, ls: str = "-", band: float = 0.2) -> None:
    """One :func:`group_curve` on ``ax``: the seed mean, and the band from the lowest to the
    highest seed where there are several (``label`` None: no legend entry)."""
    xs, mean, lo, hi, n = curve
    ax.plot(xs, mean, color=color, ls=ls, lw=lw, label=None if label is None else mean_label(label, n))
    if n > 1:
        ax.fill_between(xs, lo, hi, color=color, alpha=band, lw=0)
