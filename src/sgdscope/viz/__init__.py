"""Figures of the four papers drawn from stored runs and sweeps (never from a model), and the report.

``sgdscope.viz.draw(name, source)`` draws one registered figure (``sgdscope plot``);
``available(source)`` says which ones a source allows and, for the others, which probes they need;
``build_report(source)`` writes one self-contained HTML page (``sgdscope report``).
"""
from . import break_even, generic, noise_paper, sharpest, walk
from .registry import FIGURES, FigureSpec, available, draw, figure
from .report import build_report
from .source import MissingData, Runs

__all__ = ["FIGURES", "FigureSpec", "available", "draw", "figure", "Runs", "MissingData", "build_report"]
