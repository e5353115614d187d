"""sgdscope: what SGD sees along its path.

The curvature of the loss (Hessian spectrum), the noise of the gradient (its covariance K) and
the loss landscape between and around iterates, measured on a :class:`Problem`.
"""
from .linalg import (
    Estimate,
    LanczosResult,
    SpectralDensity,
    frobenius_sq,
    hutchinson_trace,
    hutchpp_trace,
    lanczos,
    spectral_density,
)
from .operators import DenseHessian, FunctionOp, LinOp, dense_hessian, dense_op, hessian_op
from .problem import Problem

__version__ = "0.1.0"

__all__ = [
    "Problem",
    "LinOp",
    "FunctionOp",
    "dense_op",
    "hessian_op",
    "dense_hessian",
    "DenseHessian",
    "lanczos",
    "LanczosResult",
    "hutchinson_trace",
    "hutchpp_trace",
    "frobenius_sq",
    "spectral_density",
    "SpectralDensity",
    "Estimate",
]
