"""Optimizers of the papers: Nudged SGD (sharpest-directions poster) and noisy gradient descent
with noise designed in the Hessian eigenbasis (noise paper §3), plus the fluctuation-dissipation
stationarity check (noise paper App. A.5)."""
from .fdr import FDRMonitor, FDRResult, fdr_observables, fdr_ratio
from .noise_design import (
    NOISE_KINDS,
    noise_covariance,
    noise_variances,
    sample_isotropic_noise,
    sample_subspace_noise,
    sgd_noise_scale,
)
from .noisy import NoisyGD
from .nudged import NudgedSGD

__all__ = [
    "NudgedSGD",
    "NoisyGD",
    "NOISE_KINDS",
    "sgd_noise_scale",
    "noise_variances",
    "noise_covariance",
    "sample_subspace_noise",
    "sample_isotropic_noise",
    "FDRMonitor",
    "FDRResult",
    "fdr_observables",
    "fdr_ratio",
]
