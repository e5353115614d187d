"""Cosine similarity of the Hessian H and the gradient-noise covariance C (noise paper eq. 35).

    CS(H, C) = Tr(H C) / sqrt(Tr(H^2) Tr(C^2))            (H, C symmetric, so Tr(A B^T) = Tr(A B))

CS = 1 iff C = k H with k > 0; two random matrices of the networks' size give CS ~ 0 (noise
paper App. A.4, Fig. 5). CS does not depend on the scale of C, so neither on 1/n vs 1/(n-1).

Here ``C = (1/n) sum_i d_i d_i^T`` with ``d_i = g_i - gbar`` the centred per-example gradients
of n examples (the paper's K, Break-Even §3), and H is the Hessian of the problem (its own
curvature batches). With the (n, D) matrix D of rows d_i, every term avoids D x D matrices:

* ``Tr(H C) = (1/n) sum_i d_i^T H d_i``     -- n Hessian-vector products (or a random subset);
* ``Tr(C^2) = ||D^T D||_F^2 / n^2 = ||D D^T||_F^2 / n^2``   -- the (n, n) Gram matrix, exact;
* ``Tr(H^2) = ||H||_F^2 = E_z ||H z||^2``   -- Rademacher probes (:func:`~sgdscope.frobenius_sq`).

Error of the estimate (delta method, the two stochastic terms independent):

    se(CS)^2 = se(Tr HC)^2 / (Tr(H^2) Tr(C^2)) + (CS / 2)^2 (se(Tr H^2) / Tr(H^2))^2,

with se(Tr HC) = 0 when all n rows are used, else ``s / sqrt(m) * sqrt(1 - m/n)`` for a random
subset of m rows (sampling without replacement from the n terms). It is the error of the
estimator for *this* C; the sampling error of C itself (n examples of a larger set) is not included.

With a distributed Problem, ``batch`` is this rank's share of the n examples (maybe none): each
rank computes its rows d_i; the mean, the n x n Gram matrix (:func:`.sharded._gram_rows`, rows
never gathered) and Tr(HC) (rows pushed through H in blocks assembled on every rank) are of all n.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from .._batches import concat_batches
from .._dist import total
from ..linalg.estimate import Estimate
from ..linalg.trace import frobenius_sq
from ..operators.dense import dense_hessian
from ..operators.hessian import hessian_op
from ..problem import Problem
from ._data import _check_generator
from ._gram import gram
from .alignment import quadratic_forms
from .gradients import per_example_gradients
from .sharded import _gram_rows, _shard

__all__ = ["hessian_noise_cosine", "HessianNoiseCosine"]

_METHODS = ("exact", "estimate")


@dataclass(frozen=True)
class HessianNoiseCosine:
    """CS(H, C) ``estimate`` +- ``stderr`` (one standard error; 0 for ``method="exact"``).

    Attributes:
        tr_hc, tr_h2, tr_c2: the three traces as :class:`~sgdscope.Estimate` (Tr(C^2) is always exact).
        n: examples behind C.
        method: ``"exact"`` or ``"estimate"``.
        matvecs: Hessian-vector products spent (D for the dense Hessian).
    """

    estimate: float
    stderr: float
    tr_hc: Estimate
    tr_h2: Estimate
    tr_c2: Estimate
    n: int
    method: str
    matvecs: int

    def __float__(self) -> float:
        return self.estimate

    def __repr__(self) -> str:
        return f"HessianNoiseCosine({self.estimate:.6g} +- {self.stderr:.2g}, n={self.n}, method={self.method!r})"


def _max_norm(rows: torch.Tensor, comm) -> float:
    """The largest row norm (over every rank's rows with a process group; 0 for none)."""
    norms = torch.linalg.vector_norm(rows, dim=1)
    top = norms.max() if len(norms) else norms.new_zeros(())
    return float(top if comm is None else comm.max(top.reshape(1))[0])


def _exact(value, matvecs: int) -> Estimate:
    v = float(value)
    return Estimate(v, 0.0, torch.tensor([v], dtype=torch.float64), matvecs)


def hessian_noise_cosine(
    problem: Problem,
    batch=None,
    *,
    method: str = "estimate",
    num_matvecs: int = 100,
    hc_samples: int | None = None,
    generator: torch.Generator | None = None,
    theta: torch.Tensor | None = None,
    chunk_size: int | None = None,
    block_size: int = 8,
) -> HessianNoiseCosine:
    """CS(H, C) between the Hessian of ``problem`` and the per-example gradient covariance of ``batch``.

    Args:
        problem: defines H (its curvature batches) and the loss; bn_mode must allow per-example
            gradients (not batch norm in ``"train"``).
        batch: ``(inputs, targets)`` or a list of batches whose n >= 2 examples define C
            (default: the problem's own batches, so H and C see the same data).
        method: ``"exact"`` (dense Hessian, D <= 20k; all traces exact) or ``"estimate"``
            (HVPs only; see the module docstring).
        num_matvecs: Rademacher probes for Tr(H^2) (``"estimate"``).
        hc_samples: use a random subset of this many centred rows for Tr(HC) (default: all n).
        generator: the ``torch.Generator`` for the probes and the subset (``"estimate"``).
        theta: (D,) parameters (default: the model's current ones).
        chunk_size: examples per vmapped call in :func:`per_example_gradients`.
        block_size: Hessian-vector products done at once.
    """
    if method not in _METHODS:
        raise ValueError(f"method must be one of {_METHODS}, got {method!r}")
    if block_size < 1:
        raise ValueError(f"block_size must be >= 1, got {block_size}")
    if method == "estimate":
        _check_generator(generator, "hessian_noise_cosine(method='estimate')")
    theta = problem.check_theta(theta)
    examples = concat_batches(problem.batches if batch is None else batch, "batch")
    Dc = per_example_gradients(problem, examples, chunk_size=chunk_size, theta=theta)
    comm = problem.comm  # with a process group: this rank's rows; n, the mean and the traces are of all ranks'
    n = total(comm, Dc.shape[0])
    if n < 2:
        raise ValueError(f"hessian_noise_cosine: C needs at least 2 examples, got n={n}")
    scale = _max_norm(Dc, comm)
    Dc -= Dc.mean(0) if comm is None else comm.sum(Dc.sum(0)) / n
    if _max_norm(Dc, comm) <= 100 * torch.finfo(Dc.dtype).eps * scale:
        raise ValueError(
            f"CS(H, C) is undefined: C = 0, Tr(C^2)=0 (the {n} per-example gradients are identical to "
            "working precision); measure C on examples that differ"
        )
    if comm is None:
        tr_c2 = _exact((gram(Dc) ** 2).sum() / n**2, 0)
    else:
        rows = _shard(Dc, comm)
        tr_c2 = _exact(comm.sum((_gram_rows(rows) ** 2).sum().reshape(1))[0] / n**2, 0)

    if method == "exact":
        H = dense_hessian(problem, theta).matrix
        D = problem.dim
        tr_h2 = _exact((H**2).sum(), D)
        hc = ((Dc @ H) * Dc).sum()
        tr_hc = _exact((hc if comm is None else comm.sum(hc.reshape(1))[0]) / n, D)
        matvecs = D
    else:
        m = n if hc_samples is None else int(hc_samples)
        if not 2 <= m <= n:
            raise ValueError(f"hc_samples must be in [2, n={n}], got {hc_samples}")
        op = hessian_op(problem, theta)
        tr_h2 = frobenius_sq(op, num_matvecs, generator=generator, block_size=block_size)
        subset = torch.randperm(n, generator=generator, device=generator.device)[:m] if m < n else None
        if comm is None:
            q = quadratic_forms(op, Dc if subset is None else Dc[subset.to(Dc.device)], block_size)
        else:  # blocks of the (chosen) rows assembled on every rank, in the single-process order
            q = torch.cat([quadratic_forms(op, B, block_size) for B in rows.blocks(block_size, subset)])
        q = q.to(torch.float64).cpu()
        se = 0.0 if m == n else float(q.std() / m**0.5 * (1 - m / n) ** 0.5)
        tr_hc = Estimate(float(q.mean()), se, q, m)
        matvecs = op.matvecs

    norm = (tr_h2.estimate * tr_c2.estimate) ** 0.5
    if not norm > 0:
        raise ValueError(
            f"CS(H, C) is undefined: Tr(H^2)={tr_h2.estimate:.3g}, Tr(C^2)={tr_c2.estimate:.3g}; "
            "both must be positive"
        )
    cs = tr_hc.estimate / norm
    stderr = ((tr_hc.stderr / norm) ** 2 + (cs / 2 * tr_h2.stderr / tr_h2.estimate) ** 2) ** 0.5
    return HessianNoiseCosine(
        estimate=cs, stderr=stderr, tr_hc=tr_hc, tr_h2=tr_h2, tr_c2=tr_c2, n=n, method=method, matvecs=matvecs
    )
