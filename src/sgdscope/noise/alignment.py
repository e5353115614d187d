"""How mini-batch gradients line up with the curvature (Walk with SGD §4, eqs. 4-5).

* alignment ``a(g) = g^T H g / ||g||^2`` (Walk eq. 4): the curvature along the gradient, a
  Rayleigh quotient of H, so ``lambda_min(H) <= a <= lambda_max(H)``; larger for larger M
  (Walk Fig. 5) because large mini-batches follow the mean gradient, which leans on the sharp
  directions.
* overlap ``||V^T g||^2 / ||g||^2`` with the top-k Hessian eigenvectors V (orthonormal
  columns): the share of the gradient's squared norm in the top-k subspace, in [0, 1].
* ``cos(g_{t-1}, g_t)`` of consecutive gradients (Walk eq. 5).

With a distributed Problem the mini-batches are drawn over the union of the ranks' pools and
their rows shared out (:mod:`.sharded`); they go through H (a collective) in blocks of 8 rows
assembled on every rank, so every rank gets every alignment.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from .._batches import Pool
from .._dist import total
from ..operators.hessian import hessian_op
from ..problem import Problem
from ._data import minibatch_indices
from .gradients import minibatch_gradients
from .sharded import sharded_minibatch_gradients

__all__ = ["gradient_hessian_alignment", "Alignment", "cosine"]

_HVP_BLOCK = 8  # gradients pushed through H at once (vmapped tangents): bounds memory


@dataclass(frozen=True)
class Alignment:
    """Alignment of mini-batch gradients with H, one entry per batch size.

    Attributes:
        batch_sizes: (S,) the mini-batch sizes M, as asked.
        mean, std: (S,) mean and standard deviation (unbiased; 0 for a single sample) of
            ``g^T H g / ||g||^2`` over the mini-batches of each size (units of H).
        samples: S tensors of per-mini-batch alignments (length ``num_batches``, 1 for M = N).
        overlap_mean, overlap_std, overlap_samples: the same for ``||V^T g||^2 / ||g||^2`` with
            the given Hessian eigenvectors V (None if none were given).
        matvecs: Hessian-vector products spent.
    """

    batch_sizes: tuple[int, ...]
    mean: torch.Tensor
    std: torch.Tensor
    samples: tuple[torch.Tensor, ...]
    overlap_mean: torch.Tensor | None
    overlap_std: torch.Tensor | None
    overlap_samples: tuple[torch.Tensor, ...] | None
    matvecs: int


def quadratic_forms(op, G: torch.Tensor, block_size: int = _HVP_BLOCK) -> torch.Tensor:
    """(L,) ``g_l^T H g_l`` for the rows of G (L, D), ``block_size`` Hessian-vector products at a time."""
    return torch.cat([((op @ block.T).T * block).sum(1) for block in G.split(block_size)])


def _mean_std(samples: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    mean = torch.stack([s.mean() for s in samples])
    std = torch.stack([s.std() if len(s) > 1 else torch.zeros((), dtype=s.dtype, device=s.device) for s in samples])
    return mean, std


def gradient_hessian_alignment(
    problem: Problem,
    source=None,
    *,
    batch_sizes,
    num_batches: int,
    generator: torch.Generator | None = None,
    hessian_vectors: torch.Tensor | None = None,
    theta: torch.Tensor | None = None,
    chunk_size: int | None = None,
) -> Alignment:
    """``g^T H g / ||g||^2`` of mini-batch gradients for several batch sizes (Walk eq. 4, Fig. 5).

    H is the Hessian of ``problem`` (its own curvature batches) at ``theta``, applied by
    :func:`~sgdscope.hessian_op` to the gradients in (D, 8) blocks (one HVP per gradient). The
    gradients are :func:`minibatch_gradients` of ``source`` (default: the problem's batches),
    drawn in order of ``batch_sizes`` from ``generator``; a batch size equal to the number of
    examples N is the full gradient (one sample, std 0).

    Args:
        batch_sizes: mini-batch sizes M, each in [1, N].
        num_batches: mini-batches per size (Walk uses 50).
        generator: draws the mini-batches (needed unless every M = N).
        hessian_vectors: optional (D, k) top Hessian eigenvectors (e.g. ``lanczos(...).vectors``);
            orthonormalised by QR before the overlap is taken.
        chunk_size: passed to :func:`minibatch_gradients` (bounds memory for large M).
    """
    sizes = tuple(int(m) for m in (batch_sizes if hasattr(batch_sizes, "__iter__") else [batch_sizes]))
    if not sizes:
        raise ValueError("batch_sizes: expected at least one mini-batch size, got none")
    theta = problem.check_theta(theta)
    pool = Pool(problem.batches if source is None else source)
    comm = problem.comm
    N = total(comm, len(pool))  # with a process group: the union of the ranks' pools
    Q = None
    if hessian_vectors is not None:
        V = hessian_vectors if hessian_vectors.ndim == 2 else hessian_vectors[:, None]
        if V.shape[0] != problem.dim:
            raise ValueError(f"hessian_vectors must be ({problem.dim}, k), got {tuple(hessian_vectors.shape)}")
        Q, _ = torch.linalg.qr(V.to(device=problem.device, dtype=problem.dtype))
    op = hessian_op(problem, theta)
    align, overlap = [], []
    for M in sizes:
        idx = minibatch_indices(N, batch_size=M, num_batches=1 if M == N else num_batches, generator=generator)
        if comm is None:
            blocks = minibatch_gradients(problem, pool.blocks, indices=idx, theta=theta, chunk_size=chunk_size).split(_HVP_BLOCK)
        else:  # each rank computes its share of the rows; blocks of them are assembled on every rank
            rows = sharded_minibatch_gradients(problem, pool.blocks, indices=idx, theta=theta, chunk_size=chunk_size)
            blocks = rows.blocks(_HVP_BLOCK)
        a, o = [], []
        for G in blocks:
            sq = (G * G).sum(1)
            a.append(quadratic_forms(op, G) / sq)
            if Q is not None:
                o.append(((G @ Q) ** 2).sum(1) / sq)
        align.append(torch.cat(a))
        if Q is not None:
            overlap.append(torch.cat(o))
    mean, std = _mean_std(align)
    o_mean, o_std = _mean_std(overlap) if overlap else (None, None)
    return Alignment(
        batch_sizes=sizes,
        mean=mean,
        std=std,
        samples=tuple(align),
        overlap_mean=o_mean,
        overlap_std=o_std,
        overlap_samples=tuple(overlap) if overlap else None,
        matvecs=op.matvecs,
    )


def cosine(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """``a^T b / (||a|| ||b||)`` over the last dimension (Walk eq. 5), broadcasting leading ones.

    For a sequence of gradients ``Gs`` (T, D), ``cosine(Gs[:-1], Gs[1:])`` gives the (T-1,)
    cosines of consecutive steps. A zero vector gives NaN (the angle is undefined).
    """
    if a.shape[-1] != b.shape[-1]:
        raise ValueError(f"cosine: vectors of different lengths, {tuple(a.shape)} and {tuple(b.shape)}")
    return (a * b).sum(-1) / (torch.linalg.vector_norm(a, dim=-1) * torch.linalg.vector_norm(b, dim=-1))
