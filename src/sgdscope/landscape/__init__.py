"""The loss landscape between and around iterates: interpolation and barriers (A Walk with SGD),
the loss along a direction (sharpest-directions poster), and minimal-valley projection with the
projected path (noise paper §2.1.1, §4.3)."""
from .interpolation import Interpolation, interpolate_loss, line_connected, loss_along, losses_at
from .valley import ProjectedPath, Projection, TraceProfile, project_to_valley, projected_path, trace_along

__all__ = [
    "losses_at",
    "Interpolation",
    "interpolate_loss",
    "line_connected",
    "loss_along",
    "Projection",
    "project_to_valley",
    "ProjectedPath",
    "projected_path",
    "TraceProfile",
    "trace_along",
]
