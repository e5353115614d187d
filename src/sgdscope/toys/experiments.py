"""The noise paper's toy experiments (§4.2 Fig. 2b-d, App. A.6 Fig. 7), many chains at once.

Dynamics: noisy gradient descent ``theta <- theta - eta (grad L + xi)``, xi ~ N(0, C) with C from
:mod:`sgdscope.optim.noise_design`. ``basis="valley"`` draws the noise in the coordinates of
eq. 1 (the first n axes, variances from the closed-form lambda_i: the paper's setting);
``basis="hessian"`` uses the top-n eigenvectors of the full closed-form Hessian (what
:class:`~sgdscope.optim.NoisyGD` does on a network). Results are tensors, never plots.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

import torch

from ..optim.noise_design import noise_variances, sample_isotropic_noise, sample_subspace_noise
from ._fit import LineFit, fit_line
from .models import ToyLoss, four_d, trace_vs_det, valley_with_slope

__all__ = [
    "Trajectory", "simulate",
    "TraceRateResult", "trace_rate_experiment",
    "NoiseStructureResult", "noise_structure_experiment",
    "SlopeValleyResult", "valley_slope_experiment",
]  # fmt: skip

_BASES = ("valley", "hessian")


@dataclass(frozen=True)
class Trajectory:
    """``steps`` (R,) recorded step indices (0 = start, the last one = ``steps``);
    ``theta`` (R, C, D) the C chains at those steps."""

    steps: torch.Tensor
    theta: torch.Tensor


def _noise(toy: ToyLoss, theta, kind, scale, f, basis, generator):
    if kind == "isotropic":
        return sample_isotropic_noise(
            theta.shape, scale=scale, generator=generator, dtype=theta.dtype, device=theta.device
        )
    if basis == "valley":
        lam = toy.curvatures(theta)
        V = torch.eye(toy.dim, toy.n, dtype=theta.dtype, device=theta.device)
    else:
        evals, evecs = torch.linalg.eigh(toy.hessian(theta))
        lam, V = evals[..., -toy.n :], evecs[..., -toy.n :]
    return sample_subspace_noise(V, noise_variances(kind, lam, scale=scale, f=f), generator=generator)


def simulate(
    toy: ToyLoss,
    theta0: torch.Tensor,
    *,
    lr: float,
    steps: int,
    noise: str | None = "sgd",
    scale: float = 1.0,
    f: Callable | None = None,
    basis: str = "valley",
    record_every: int = 1,
    generator: torch.Generator | None = None,
) -> Trajectory:
    """Run C chains of (noisy) gradient descent on ``toy`` from ``theta0`` (D,) or (C, D).

    ``noise``: a kind of :data:`~sgdscope.optim.NOISE_KINDS` or ``None`` (plain GD).
    """
    if basis not in _BASES:
        raise ValueError(f"basis must be one of {_BASES}, got {basis!r}")
    if steps < 0 or record_every < 1:
        raise ValueError(f"need steps >= 0 and record_every >= 1, got {steps}, {record_every}")
    theta = torch.as_tensor(theta0).clone()
    theta = theta[None] if theta.ndim == 1 else theta
    if theta.ndim != 2 or theta.shape[1] != toy.dim:
        raise ValueError(f"theta0 must have shape ({toy.dim},) or (C, {toy.dim}), got {tuple(theta0.shape)}")
    noisy = noise is not None and scale > 0
    rec_steps, rec = [], []
    for t in range(steps + 1):
        if t % record_every == 0 or t == steps:
            rec_steps.append(t)
            rec.append(theta.clone())
        if t == steps:
            break
        g = toy.grad(theta)
        if noisy:
            g = g + _noise(toy, theta, noise, scale, f, basis, generator)
        theta = theta - lr * g
    return Trajectory(torch.tensor(rec_steps), torch.stack(rec))


def _mean_stderr(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean and standard error over the chain dimension (last)."""
    n = x.shape[-1]
    return x.mean(-1), (x.std(-1) / n**0.5 if n > 1 else torch.full_like(x.mean(-1), float("inf")))


# --------------------------------------------------------------------------- Fig. 2b
@dataclass(frozen=True)
class TraceRateResult:
    """``etas`` (E,); ``trace_change`` (E,) mean over chains of T(after measure steps) - T(after
    equilibration), ``stderr`` (E,); ``fit`` of trace_change against eta^2; ``predicted_slope``
    = -(measure / 4) s |grad T|^2 at the start (eq. 15 with f = T, constant for ``four_d``)."""

    etas: torch.Tensor
    trace_change: torch.Tensor
    stderr: torch.Tensor
    fit: LineFit
    predicted_slope: float


def trace_rate_experiment(
    *,
    etas: Sequence[float] = (0.002, 0.004, 0.006, 0.008, 0.010, 0.012),
    theta0: Sequence[float] = (0.0, 0.0, 1.0, 1.0),
    equilibrate: int = 1000,
    measure: int = 1000,
    chains: int = 64,
    scale: float = 1.0,
    toy: ToyLoss = four_d,
    basis: str = "valley",
    generator: torch.Generator | None = None,
) -> TraceRateResult:
    """Noise paper Fig. 2b: under SGD noise the trace changes by ~ -eta^2 (eq. 15), linearly in eta^2.

    For each eta: ``equilibrate`` steps from ``theta0`` (non-degenerate directions reach their
    stationary state), then ``measure`` steps over which the trace change is recorded.
    """
    start = torch.tensor(theta0, dtype=torch.float64).expand(chains, -1)
    means, errs = [], []
    for eta in etas:
        traj = simulate(toy, start, lr=eta, steps=equilibrate + measure, noise="sgd", scale=scale,
                        basis=basis, record_every=max(1, equilibrate), generator=generator)  # fmt: skip
        T = toy.trace(traj.theta)  # (R, C)
        i0 = int((traj.steps == equilibrate).nonzero()[0])
        m, e = _mean_stderr(T[-1] - T[i0])
        means.append(m)
        errs.append(e)
    etas_t = torch.tensor(etas, dtype=torch.float64)
    change = torch.stack(means)
    grad_T = toy.trace_grad(start[0])
    predicted = -(measure / 4) * scale * float((grad_T**2).sum())
    return TraceRateResult(etas_t, change, torch.stack(errs), fit_line(etas_t**2, change), predicted)


# --------------------------------------------------------------------------- Fig. 2c-d
@dataclass(frozen=True)
class NoiseStructureResult:
    """``steps`` (R,); per noise kind, the chain means of the trace and determinant (R,) and their
    standard errors: ``trace[kind]``, ``trace_stderr[kind]``, ``det[kind]``, ``det_stderr[kind]``."""

    steps: torch.Tensor
    trace: dict
    trace_stderr: dict
    det: dict
    det_stderr: dict


def noise_structure_experiment(
    *,
    kinds: Sequence[str] = ("sgd", "isotropic_subspace"),
    theta0: Sequence[float] = (0.0, 0.0, 1.0, 0.0),
    lr: float = 0.05,
    steps: int = 2000,
    scale: float = 1.0,
    chains: int = 32,
    record_every: int = 50,
    toy: ToyLoss = trace_vs_det,
    basis: str = "valley",
    generator: torch.Generator | None = None,
) -> NoiseStructureResult:
    """Noise paper Fig. 2c-d: SGD noise lowers the trace (Theorem 1), isotropic noise in the
    non-degenerate subspace lowers the determinant (Corollary 2.1); on ``trace_vs_det`` started
    at (0, 0, 1, 0) the two are anti-correlated (each raises what the other lowers)."""
    start = torch.tensor(theta0, dtype=torch.float64).expand(chains, -1)
    out = {name: {} for name in ("trace", "trace_stderr", "det", "det_stderr")}
    steps_t = None
    for kind in kinds:
        traj = simulate(toy, start, lr=lr, steps=steps, noise=kind, scale=scale, basis=basis,
                        record_every=record_every, generator=generator)  # fmt: skip
        steps_t = traj.steps
        out["trace"][kind], out["trace_stderr"][kind] = _mean_stderr(toy.trace(traj.theta))
        out["det"][kind], out["det_stderr"][kind] = _mean_stderr(toy.det(traj.theta))
    return NoiseStructureResult(steps_t, out["trace"], out["trace_stderr"], out["det"], out["det_stderr"])


# --------------------------------------------------------------------------- App. A.6, Fig. 7
@dataclass(frozen=True)
class SlopeValleyResult:
    """``steps`` (R,); ``theta_gd`` (R, 2) plain GD; ``theta_noisy`` (R, C, 2) noisy GD chains;
    ``stationary`` the mean theta_2 of the noisy chains over the last ``tail`` of the run, with its
    ``stationary_stderr`` (over chains); ``predicted`` = -2 alpha / (eta s) (eq. 38)."""

    steps: torch.Tensor
    theta_gd: torch.Tensor
    theta_noisy: torch.Tensor
    stationary: float
    stationary_stderr: float
    predicted: float


def valley_slope_experiment(
    *,
    alpha: float = 1e-4,
    lr: float = 0.01,
    scale: float = 1.0,
    start: Sequence[float] = (0.1, 0.1),
    steps: int = 150_000,
    chains: int = 8,
    record_every: int = 100,
    tail: float = 1 / 3,
    basis: str = "valley",
    generator: torch.Generator | None = None,
) -> SlopeValleyResult:
    """Noise paper Fig. 7: on L = 1/2 (theta_2^2 + 1) theta_1^2 + alpha theta_2, GD slides down the
    slope (theta_2 -> -inf) while SGD-like noise stops theta_2 where the entropic force balances
    the slope, <theta_2> = -2 alpha / (eta s) (= -0.02 for the paper's alpha = 1e-4, eta = 0.01, s = 1).

    The approach to that value takes ~ 2 / (eta^2 s) steps per e-fold (20 000 at the paper's values).
    """
    if not 0 < tail <= 1:
        raise ValueError(f"tail must be a fraction in (0, 1], got {tail}")
    toy = valley_with_slope(alpha)
    x0 = torch.tensor(start, dtype=torch.float64)
    gd = simulate(toy, x0, lr=lr, steps=steps, noise=None, record_every=record_every)
    noisy = simulate(toy, x0.expand(chains, -1), lr=lr, steps=steps, noise="sgd", scale=scale, basis=basis,
                     record_every=record_every, generator=generator)  # fmt: skip
    last = noisy.steps >= (1 - tail) * steps
    per_chain = noisy.theta[last, :, 1].mean(0)  # (C,)
    m, e = _mean_stderr(per_chain)
    return SlopeValleyResult(noisy.steps, gd.theta[:, 0], noisy.theta, float(m), float(e), -2 * alpha / (lr * scale))
