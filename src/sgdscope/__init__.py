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
from .noise import (
    CovarianceSpectrum,
    covariance_spectrum,
    curvature_spread,
    gradient_hessian_alignment,
    hessian_noise_cosine,
    minibatch_gradients,
    per_example_gradients,
    projection_ratio,
    sharded_covariance_spectrum,
    sharded_minibatch_gradients,
    stability,
    uncentred_moment_top,
)
from .landscape import interpolate_loss, loss_along
from . import analysis, landscape, noise, optim, probes, quantities, store, sweep, toys, zoo
from .scope import Scope
from .store import MemorySink, RunWriter, load_arrays, load_run, load_sweep, read_config, read_status

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
    "per_example_gradients",
    "minibatch_gradients",
    "covariance_spectrum",
    "CovarianceSpectrum",
    "projection_ratio",
    "sharded_minibatch_gradients",
    "sharded_covariance_spectrum",
    "gradient_hessian_alignment",
    "hessian_noise_cosine",
    "curvature_spread",
    "stability",
    "uncentred_moment_top",
    "interpolate_loss",
    "loss_along",
    "Scope",
    "RunWriter",
    "MemorySink",
    "load_run",
    "load_sweep",
    "load_arrays",
    "read_config",
    "read_status",
    "quantities",
    "store",
    "analysis",
    "sweep",
    "landscape",
    "noise",
    "optim",
    "probes",
    "toys",
    "zoo",
]
