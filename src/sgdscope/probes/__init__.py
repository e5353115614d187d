"""Probes: one small measurement each, fired on a schedule, fed a :class:`StepContext`.

Presets bundle the papers' instrument sets: :func:`break_even` (Break-Even Point: lambda_H^1,
lambda_K^1, lambda_K^*/lambda_K^1, Tr K, ||g||/||g_5||, Delta L, ||gamma||, stability).
"""
from .base import FunctionProbe, Probe, probe
from .context import StepContext, Tracker
from .curvature import hessian_norms, hessian_trace, spectral_density, top_eigenvalues
from .dynamics import bn_scale_norm, distance_from_init, evaluation, gradient_cosine, loss_change
from .landscape import interpolation, sharpest_directions
from .noise import alignment, gradient_noise, hessian_noise, stability
from .predictions import predictions
from .schedule import Schedule, as_schedule, at, epoch_end, every, log_spaced, never

__all__ = [
    "Probe", "FunctionProbe", "probe", "StepContext", "Tracker",
    "Schedule", "as_schedule", "every", "epoch_end", "log_spaced", "at", "never",
    "top_eigenvalues", "hessian_norms", "hessian_trace", "spectral_density",
    "gradient_noise", "hessian_noise", "alignment", "stability",
    "loss_change", "distance_from_init", "gradient_cosine", "bn_scale_norm", "evaluation",
    "interpolation", "sharpest_directions", "predictions",
    "break_even", "BY_TYPE",
]

BY_TYPE = {  # probe type (sgdscope.quantities) -> factory
    "top_eigenvalues": top_eigenvalues,
    "hessian_norms": hessian_norms,
    "hessian_trace": hessian_trace,
    "spectral_density": spectral_density,
    "gradient_noise": gradient_noise,
    "hessian_noise": hessian_noise,
    "alignment": alignment,
    "stability": stability,
    "loss_change": loss_change,
    "distance_from_init": distance_from_init,
    "gradient_cosine": gradient_cosine,
    "bn_scale_norm": bn_scale_norm,
    "evaluation": evaluation,
    "interpolation": interpolation,
    "sharpest_directions": sharpest_directions,
    "predictions": predictions,
}


def break_even(every=100, *, k: int = 1, num_batches: int = 25, batch_size: int | None = None) -> list:
    """The Break-Even instrument set on one schedule: lambda_H^1 (``k`` > 1 for more of the top), the K spectrum
    (lambda_K^1, lambda_K^*/lambda_K^1, Tr K, ||g||/||g_5||), Delta L, ||gamma|| and the
    stability quantity of eq. 1."""
    return [
        top_eigenvalues(k, every=every),
        gradient_noise(num_batches, batch_size, k=min(5, num_batches - 1), every=every),
        loss_change(every=every),
        bn_scale_norm(every=every),
        stability(every=every),
    ]
