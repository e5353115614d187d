"""Gradient-noise probes (Break-Even §4, App. C; Walk eq. 4; noise paper eq. 35).

* ``gradient_noise``: from L mini-batch gradients g_l of size M drawn from the N examples of the
  noise source, at the current parameters, the spectrum of App. C's
  ``K^M = (1/L) sum_l (g_l - gbar)(g_l - gbar)^T`` (gbar the mean of the L rows) on the paper's
  scale: lambda_K^1, lambda_K^*, lambda_K^*/lambda_K^1, Tr K^M; the per-example estimate
  ``c K^M``, ``c = M (N-1)/(N-M)``, under explicit ``*_per_example`` names; M, L, N; and
  ||g|| / ||g_5|| of the step's mini-batch gradient against the top-5 eigenvectors (§4.3).
  Normalisation: :mod:`sgdscope.noise.covariance`.
* ``hessian_noise``: the cosine similarity CS(H, C) (noise paper eq. 35), scalable estimate.
* ``alignment``: g^T H g / ||g||^2 for a list of batch sizes (Walk eq. 4, Fig. 5).
* ``stability``: the break-even stability quantity (Break-Even eq. 1) along e_H^1.
"""
from __future__ import annotations

import warnings


from ..noise import covariance_spectrum, curvature_spread, gradient_hessian_alignment, hessian_noise_cosine, projection_ratio_from_rows
from ..noise import sharded_covariance_spectrum
from ..noise import stability as _stability
from .base import FunctionProbe
from .schedule import as_schedule

__all__ = ["gradient_noise", "hessian_noise", "alignment", "stability"]


def gradient_noise(num_batches: int = 25, batch_size: int | None = None, k: int = 5, *, every=100, name: str = "gradient_noise") -> FunctionProbe:
    """The gradient-noise covariance of Break-Even App. C from L = ``num_batches`` mini-batch
    gradients of M = ``batch_size`` examples (default: the training batch size) drawn from the
    N examples of the noise source (``Scope(noise_data=...)``; M < N) with the tracker's generator.

    Values, on the paper's scale ``K^M = (1/L) sum_l (g_l - gbar)(g_l - gbar)^T`` (no factor M):
    ``lambda_1`` (lambda_K^1), ``lambda_star`` (lambda_K^*, the (L-1)-th eigenvalue),
    ``ratio`` = lambda_star / lambda_1, ``trace`` = Tr K^M, and array ``spectrum`` (L,).
    Per-example scale ``K = c K^M``, ``c = M (N-1)/(N-M)``: ``lambda_1_per_example``,
    ``trace_per_example``. ``M``, ``L``, ``N`` as floats, and ``g_ratio`` = ||g|| / ||g_k|| of
    the step's mini-batch gradient against the top-``k`` eigenvectors (when the step's gradient
    or batch is known).
    """
    if num_batches < 2 or not 1 <= k < num_batches:
        raise ValueError(f"gradient_noise: need num_batches >= 2 and 1 <= k < num_batches, got L={num_batches}, k={k}")

    def fn(ctx):
        N = ctx.pool_size
        M = int(batch_size or ctx.batch_size or 128)
        if M >= N:
            raise ValueError(
                f"gradient_noise: K needs mini-batches smaller than the noise pool they are drawn from, got M={M} >= N={N}; "
                "pass a larger pool, Scope(noise_data=(X, Y)) (e.g. the training set), or a smaller M, "
                "gradient_noise(batch_size=...)"
            )
        rows = ctx.noise_rows(num_batches, M)  # with a process group: this rank's share, never gathered
        spectrum = covariance_spectrum if isinstance(rows, tuple) else sharded_covariance_spectrum
        spec = spectrum(rows, k=k, batch_size=M, population=N, vectors=False)  # g_ratio comes from the rows
        out = {
            "lambda_1": spec.lambda_1,
            "lambda_star": spec.lambda_star,
            "ratio": spec.ratio,
            "trace": spec.trace,
            "lambda_1_per_example": spec.lambda_1_per_example,
            "trace_per_example": spec.trace_per_example,
            "M": float(M),
            "L": float(spec.L),
            "N": float(N),
            "spectrum": spec.spectrum,
        }
        if ctx.train_grad is not None or ctx.batch is not None:
            out["g_ratio"] = float(projection_ratio_from_rows(ctx.grad(), rows, spec))
        return out

    return FunctionProbe(name, as_schedule(every), fn, type="gradient_noise")


def hessian_noise(num_matvecs: int = 20, num_examples: int = 64, *, every="epoch_end", name: str = "hessian_noise") -> FunctionProbe:
    """``cosine`` = CS(H, C) with ``stderr`` (estimate from HVPs, C on ``num_examples`` examples)."""

    def fn(ctx):
        res = hessian_noise_cosine(ctx.problem, ctx.pool_head(num_examples), num_matvecs=num_matvecs, generator=ctx.tracker.generator, theta=ctx.theta_after)
        return {"cosine": float(res.estimate), "stderr": float(res.stderr)}

    return FunctionProbe(name, as_schedule(every), fn, before=False, type="hessian_noise")


def alignment(batch_sizes=(8, 32, 128), num_batches: int = 10, *, every=100, name: str = "alignment") -> FunctionProbe:
    """``mean_M{m}`` and ``std_M{m}`` of g^T H g / ||g||^2 for each batch size m (clipped to N)."""

    def fn(ctx):
        N = ctx.pool_size
        sizes = sorted({min(int(m), N) for m in batch_sizes})
        res = gradient_hessian_alignment(
            ctx.problem, ctx.source, batch_sizes=sizes, num_batches=num_batches, generator=ctx.tracker.generator, theta=ctx.theta_after
        )
        out = {}
        for m, mu, sd in zip(res.batch_sizes, res.mean, res.std):
            out[f"mean_M{m}"], out[f"std_M{m}"] = float(mu), float(sd)
        return out

    return FunctionProbe(name, as_schedule(every), fn, before=False, type="alignment")


def stability(num_examples: int = 64, *, every=100, name: str = "stability") -> FunctionProbe:
    """``value`` = (1 - eta lambda)^2 + s^2 eta^2 (N - S) / (S (N - 1)) along e_H^1, with
    ``lambda_1`` (Lanczos) and ``s2`` = Var_i[e^T H_i e] over ``num_examples`` examples."""
    warned = []

    def fn(ctx):
        res = ctx.top_eigen(1)
        lam = float(res.values[0])
        try:
            s2 = curvature_spread(ctx.problem, res.vectors[:, 0], ctx.pool_head(num_examples), theta=ctx.theta_after).var
        except ValueError as err:  # batch norm in train mode: per-example curvature is undefined
            if not warned:
                warnings.warn(f"stability probe: {err}; recording NaN", RuntimeWarning, stacklevel=2)
                warned.append(True)
            s2 = float("nan")
        S, N = max(ctx.batch_size, 1), max(ctx.train_size, 2)
        if S > N:
            raise ValueError(f"stability: the training batch size S={S} exceeds the training-set size N={N}; "
                             "pass Scope(train_size=N), the number of training examples")
        return {"value": float(_stability(ctx.lr, S, N, lam, s2)), "lambda_1": lam, "s2": s2}

    return FunctionProbe(name, as_schedule(every), fn, before=False, type="stability")
