"""Gradient noise: per-example and mini-batch gradients, the covariance K and its spectrum,
gradient-Hessian alignment, the H-C cosine similarity and the curvature spread of SGD; with a
distributed Problem, the rows of K shared out over the ranks (:mod:`.sharded`).

Normalisations and paper equations: ``docs/noise.md``.
"""
from ._data import minibatch_indices
from .alignment import Alignment, cosine, gradient_hessian_alignment
from .covariance import CovarianceSpectrum, covariance_spectrum, projection_ratio, projection_ratio_from_rows
from .gradients import minibatch_gradients, per_example_gradients
from .hessian_noise import HessianNoiseCosine, hessian_noise_cosine
from .moment import MomentSpectrum, uncentred_moment_top
from .sharded import ShardedRows, sharded_covariance_spectrum, sharded_minibatch_gradients
from .spread import CurvatureSpread, curvature_spread, stability

__all__ = [
    "per_example_gradients",
    "minibatch_gradients",
    "minibatch_indices",
    "covariance_spectrum",
    "CovarianceSpectrum",
    "projection_ratio",
    "projection_ratio_from_rows",
    "uncentred_moment_top",
    "MomentSpectrum",
    "sharded_minibatch_gradients",
    "sharded_covariance_spectrum",
    "ShardedRows",
    "gradient_hessian_alignment",
    "Alignment",
    "cosine",
    "hessian_noise_cosine",
    "HessianNoiseCosine",
    "curvature_spread",
    "CurvatureSpread",
    "stability",
]
