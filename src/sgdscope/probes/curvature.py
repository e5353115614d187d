"""Curvature probes on the fixed curvature subset, at the parameters after the step.

* ``top_eigenvalues``: the top-k Hessian eigenvalues (k up to 30 in the poster), Lanczos
  warm-started from the previous measurement's eigenvectors.
* ``hessian_norms``: the spectral norm max(|lambda_max|, |lambda_min|) and the Frobenius norm
  sqrt(Tr H^2) (poster: NSGD figure).
* ``hessian_trace``: Tr(H) by Hutch++ (or Hutchinson), with its standard error.
* ``spectral_density``: an SLQ snapshot of the whole spectrum (Break-Even Fig. 3).
"""
from __future__ import annotations

import math

import torch

from ..linalg import frobenius_sq, hutchinson_trace, hutchpp_trace, lanczos, spectral_density as _slq
from .base import FunctionProbe
from .schedule import as_schedule

__all__ = ["top_eigenvalues", "hessian_norms", "hessian_trace", "spectral_density"]


def top_eigenvalues(k: int = 10, *, every=100, name: str = "top_eigenvalues") -> FunctionProbe:
    """``lambda_1``..``lambda_k`` (descending), ``max_residual``, ``matvecs``; array ``eigenvalues``."""
    if not 1 <= k <= 100:
        raise ValueError(f"top_eigenvalues: k must be in [1, 100], got {k}")

    def fn(ctx):
        res = ctx.top_eigen(k)
        out = {f"lambda_{i + 1}": float(v) for i, v in enumerate(res.values)}
        out.update(max_residual=float(res.residuals.max()), matvecs=float(res.matvecs), eigenvalues=res.values.detach())
        return out

    return FunctionProbe(name, as_schedule(every), fn, before=False, type="top_eigenvalues")


def hessian_norms(num_matvecs: int = 20, *, every=100, name: str = "hessian_norms") -> FunctionProbe:
    """``spectral_norm``, ``lambda_min``, ``frobenius_norm`` (+ ``frobenius_stderr``)."""

    def fn(ctx):
        top = ctx.top_eigen(1).values[0]
        bottom = lanczos(ctx.hessian(), 1, which="SA", tol=ctx.tracker.lanczos_tol, generator=ctx.tracker.generator)
        lam_min = bottom.values[0]
        fro = frobenius_sq(ctx.hessian(), num_matvecs, generator=ctx.tracker.generator)
        norm = math.sqrt(max(fro.estimate, 0.0))
        return {
            "spectral_norm": float(torch.maximum(top.abs(), lam_min.abs())),
            "lambda_min": float(lam_min),
            "frobenius_norm": norm,
            "frobenius_stderr": fro.stderr / (2 * norm) if norm > 0 else float("nan"),
        }

    return FunctionProbe(name, as_schedule(every), fn, before=False, type="hessian_norms")


def hessian_trace(num_matvecs: int = 30, *, method: str = "hutchpp", every=100, name: str = "hessian_trace") -> FunctionProbe:
    """``trace`` and ``trace_stderr`` (noise paper §4.3)."""
    estimators = {"hutchpp": hutchpp_trace, "hutchinson": hutchinson_trace}
    if method not in estimators:
        raise ValueError(f"hessian_trace: method must be one of {sorted(estimators)}, got {method!r}")

    def fn(ctx):
        est = estimators[method](ctx.hessian(), num_matvecs, generator=ctx.tracker.generator)
        return {"trace": est.estimate, "trace_stderr": est.stderr}

    return FunctionProbe(name, as_schedule(every), fn, before=False, type="hessian_trace")


def spectral_density(num_runs: int = 2, lanczos_steps: int = 40, grid: int = 200, *, every="epoch_end", name: str = "spectral_density") -> FunctionProbe:
    """Arrays ``grid`` and ``density`` (SLQ, Gaussian broadening at 1% of the range)."""

    def fn(ctx):
        d = _slq(ctx.hessian(), num_runs=num_runs, lanczos_steps=lanczos_steps, grid=grid, generator=ctx.tracker.generator)
        return {"grid": d.grid, "density": d.estimate, "nodes": d.nodes.flatten(), "weights": d.weights.flatten()}

    return FunctionProbe(name, as_schedule(every), fn, before=False, type="spectral_density")
