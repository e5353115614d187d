"""Analytic toy losses of the noise paper and the experiments run on them (§4.1-4.2, App. A.6)."""
from ._fit import LineFit, fit_line
from .experiments import (
    NoiseStructureResult,
    SlopeValleyResult,
    TraceRateResult,
    Trajectory,
    noise_structure_experiment,
    simulate,
    trace_rate_experiment,
    valley_slope_experiment,
)
from .models import ToyLoss, four_d, trace_vs_det, valley_with_slope
from .negative import NegativeEigenResult, negative_eigenvalue_experiment

__all__ = [
    "ToyLoss", "four_d", "trace_vs_det", "valley_with_slope",
    "Trajectory", "simulate",
    "TraceRateResult", "trace_rate_experiment",
    "NoiseStructureResult", "noise_structure_experiment",
    "SlopeValleyResult", "valley_slope_experiment",
    "NegativeEigenResult", "negative_eigenvalue_experiment",
    "LineFit", "fit_line",
]  # fmt: skip
