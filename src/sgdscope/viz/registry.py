"""The figures sgdscope can draw: each a function of :class:`~sgdscope.viz.source.Runs` returning a
matplotlib Figure, registered with what it needs (``TYPE/NAME`` metrics) and the paper figure it is.

    @figure("break_even.fig2", paper="Break-Even Fig. 2", needs=("top_eigenvalues/lambda_1", ...))
    def lambda_h_vs_lambda_k(runs): ...

``draw(name, source)`` opens the source, checks what the figure needs (a missing metric raises
:class:`~sgdscope.viz.source.MissingData` naming the probe to add) and draws it; ``available``
lists what a source allows and, for the rest, why not.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from .source import MissingData, Runs

__all__ = ["FigureSpec", "FIGURES", "figure", "draw", "available", "as_runs"]


@dataclass(frozen=True)
class FigureSpec:
    name: str  # "paper.figure", e.g. "break_even.fig2"
    fn: Callable
    paper: str  # the paper figure or table it reproduces, or "generic"
    title: str  # one line: what it shows
    needs: tuple[str, ...]  # TYPE/NAME metrics it cannot do without
    min_runs: int = 1  # figures comparing runs need several
    varies: str | tuple[str, ...] | None = None  # a config key the runs must vary (or one of several keys)


FIGURES: dict[str, FigureSpec] = {}


def figure(name: str, *, paper: str, title: str, needs: tuple[str, ...] = (), min_runs: int = 1,
           varies: str | tuple[str, ...] | None = None):
    """Register a figure function ``fn(runs, **options) -> matplotlib.figure.Figure``."""

    def register(fn):
        if name in FIGURES:
            raise ValueError(f"figure {name!r} is registered twice")
        FIGURES[name] = FigureSpec(name, fn, paper, title, tuple(needs), min_runs, varies)
        return fn

    return register


def as_runs(source) -> Runs:
    """A :class:`Runs` from a path (run, sweep or folder of runs), a tidy DataFrame, or Runs."""
    if isinstance(source, Runs):
        return source
    if hasattr(source, "columns"):
        return Runs.of(source)
    return Runs.open(source)


def _check(spec: FigureSpec, runs: Runs) -> None:
    runs.require(*spec.needs, figure=f"{spec.name} ({spec.paper})")
    if len(runs.names) < spec.min_runs:
        raise MissingData(f"{spec.name} ({spec.paper}) compares at least {spec.min_runs} runs, got {len(runs.names)}: "
                          "give it a sweep (sgdscope sweep)")
    if spec.varies is not None:
        keys = (spec.varies,) if isinstance(spec.varies, str) else spec.varies
        if not any(k in runs.frame.columns and runs.frame[k].nunique() >= 2 for k in keys):
            wanted = " or ".join(keys)
            raise MissingData(f"{spec.name} ({spec.paper}) compares runs over {wanted}: give it a sweep over "
                              f"{wanted} (sgdscope sweep --grid {keys[0]}=...)")


def draw(name: str, source, **options):
    """The figure ``name`` drawn from ``source``; KeyError lists the figure names."""
    if name not in FIGURES:
        raise KeyError(f"no figure {name!r}; figures: {', '.join(sorted(FIGURES))}")
    spec, runs = FIGURES[name], as_runs(source)
    _check(spec, runs)
    return spec.fn(runs, **options)


def available(source) -> tuple[list[str], dict[str, str]]:
    """The figures ``source`` has what they need for, and for each other one the reason."""
    runs = as_runs(source)
    ok, missing = [], {}
    for name, spec in sorted(FIGURES.items()):
        try:
            _check(spec, runs)
            ok.append(name)
        except MissingData as err:
            missing[name] = str(err)
    return ok, missing
