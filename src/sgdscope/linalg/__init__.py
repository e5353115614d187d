"""Estimators of a symmetric LinOp: eigenpairs, trace, Frobenius norm, spectral density."""
from .density import SpectralDensity, spectral_density
from .estimate import Estimate
from .lanczos import LanczosResult, lanczos
from .trace import frobenius_sq, hutchinson_trace, hutchpp_trace

__all__ = [
    "lanczos", "LanczosResult", "hutchinson_trace", "hutchpp_trace", "frobenius_sq",
    "spectral_density", "SpectralDensity", "Estimate",
]
