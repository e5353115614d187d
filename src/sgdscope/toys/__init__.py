"""Analytic toy losses of the noise paper, the experiments run on them (§4.1-4.2, App. A.6), and the
recorders that store their results (and the FDR check and projected valley path) as run folders."""
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
from .record import (
    log_fdr,
    record_negative_sum,
    record_noise_structure,
    record_trace_rate,
    record_valley_path,
    record_valley_slope,
)

__all__ = [
    "ToyLoss", "four_d", "trace_vs_det", "valley_with_slope",
    "Trajectory", "simulate",
    "TraceRateResult", "trace_rate_experiment",
    "NoiseStructureResult", "noise_structure_experiment",
    "SlopeValleyResult", "valley_slope_experiment",
    "NegativeEigenResult", "negative_eigenvalue_experiment",
    "LineFit", "fit_line",
    "record_trace_rate", "record_noise_structure", "record_valley_slope", "record_negative_sum",
    "record_valley_path", "log_fdr",
]  # fmt: skip
