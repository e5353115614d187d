"""Gradient rows shared out over the ranks of a distributed Problem, and K's spectrum from them.

The noise pool is sharded: each rank holds its own examples (its ``source``), and the pool of the
single-process equivalent is their union in rank order (rank 0's examples first), of
``N = sum_r N_r`` examples. Mini-batches are drawn over the union exactly as
:func:`~sgdscope.noise.minibatch_gradients` draws them in one process (every rank draws all L
with its generator, identically seeded, so the (L, M) indices are the single-process ones and
every generator advances alike), and each row is computed whole by one rank, its owner: rank r
owns rows ``[L r / R, L (r+1) / R)``. The owner fetches the examples of its mini-batches from
the ranks that hold them (point-to-point, only those examples) and computes each row as one
process would (same examples, same order; batch norm in train mode included).

K^M's L x L Gram matrix is formed without gathering the L x D rows anywhere: column block by
column block, each owner broadcasts its rows' block and every rank multiplies it with its own
rows (its rows of the Gram matrix); one all-reduce of the L x L matrix completes it. The top-k
eigenvectors ``G^T (P u)`` are each rank's ``G_r^T (P u)_r``, all-reduced (k x D).

Memory per rank (R ranks, L rows of D parameters, k eigenvectors): its rows, ``ceil(L/R) D``;
while the Gram matrix is formed, a few column blocks of ``ceil(L/R) x B`` (another owner's block,
its own shifted), ``B = 65536`` columns, and row 0's block; the eigenvectors, ``k D``; the Gram
matrix, ``L^2``; and the examples of its own mini-batches, ``ceil(L/R) M``. One process holds
``L D``. Communication per rank: about ``(R-1)/R L D`` numbers received (each owner's rows
broadcast once), ``k D + L^2`` in all-reduces, and the examples of its mini-batches.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from .._batches import Pool
from .._dist import Comm, exchange_examples, starts
from ..problem import Problem
from ._data import draw_indices
from ._gram import centre, check_rows, rows_times
from .covariance import CovarianceSpectrum, spectrum_from_gram
from .gradients import minibatch_gradients

__all__ = ["ShardedRows", "sharded_minibatch_gradients", "sharded_covariance_spectrum"]

_COLUMNS = 1 << 16  # columns of another owner's rows received at once while the Gram matrix is formed


def _row_counts(L: int, size: int) -> list[int]:
    """Rows per rank: rank r owns ``[L r // R, L (r+1) // R)`` (contiguous, balanced, in order)."""
    return [L * (r + 1) // size - L * r // size for r in range(size)]


@dataclass(frozen=True)
class ShardedRows:
    """L gradient rows shared out over the ranks: this rank holds ``rows``, the global rows
    ``[start, start + len(rows))``; ``counts`` gives every rank's number of rows (in rank order).

    Attributes:
        rows: (L_r, D) this rank's rows (maybe none).
        start: the global index of ``rows[0]``.
        counts: rows per rank; ``L = sum(counts)``.
        comm: the process group.
    """

    rows: torch.Tensor
    start: int
    counts: tuple[int, ...]
    comm: Comm

    @property
    def L(self) -> int:
        return sum(self.counts)

    @property
    def dim(self) -> int:
        return self.rows.shape[1]

    def gather(self) -> torch.Tensor:
        """All L rows, (L, D), on every rank (L D numbers per rank: for small L only)."""
        return self.comm.gather_rows(self.rows, list(self.counts))

    def block(self, ids: torch.Tensor) -> torch.Tensor:
        """The rows with global indices ``ids`` (1-d), (len(ids), D) in that order, on every rank
        (call it on every rank with the same ``ids``): one all-reduce of a zero-padded block."""
        ids = torch.as_tensor(ids, dtype=torch.long).cpu()
        out = torch.zeros(len(ids), self.dim, dtype=self.rows.dtype, device=self.rows.device)
        mine = ((ids >= self.start) & (ids < self.start + len(self.rows))).nonzero().flatten()
        if len(mine):
            out[mine.to(out.device)] = self.rows[(ids[mine] - self.start).to(out.device)]
        return self.comm.sum(out)

    def times(self, g: torch.Tensor) -> torch.Tensor:
        """``G g`` over all L rows, float64 (L,) (or (L, n) for g (n, D)), on every rank: each rank its
        rows' entries, one all-reduce of L numbers (call it on every rank with the same g)."""
        out = torch.zeros(self.L, *g.shape[:-1], dtype=torch.float64, device=self.rows.device)
        out[self.start : self.start + len(self.rows)] = rows_times(self.rows, g)
        return self.comm.sum(out)

    def blocks(self, size: int, ids: torch.Tensor | None = None):
        """The rows ``ids`` (default: all L in order), ``size`` at a time, as (b, D) blocks on every rank."""
        ids = torch.arange(self.L) if ids is None else torch.as_tensor(ids, dtype=torch.long).cpu()
        for lo in range(0, len(ids), size):
            yield self.block(ids[lo : lo + size])


def _shard(rows: torch.Tensor, comm: Comm) -> ShardedRows:
    """This rank's ``rows`` as its share of the rows of all ranks (in rank order)."""
    counts = comm.sizes(len(rows))
    return ShardedRows(rows, starts(counts)[comm.rank], tuple(counts), comm)


def _comm(problem: Problem, what: str) -> Comm:
    if problem.comm is None:
        raise ValueError(f"{what}: the problem has no process group; build it with Problem(..., distributed=True) "
                         "(or use the single-process function)")
    return problem.comm


def sharded_minibatch_gradients(
    problem: Problem,
    source=None,
    *,
    batch_size: int | None = None,
    num_batches: int = 1,
    generator: torch.Generator | None = None,
    indices: torch.Tensor | None = None,
    chunk_size: int | None = None,
    theta: torch.Tensor | None = None,
    method: str = "auto",
) -> ShardedRows:
    """L mini-batch gradients over the union of every rank's ``source``, this rank's share of them.

    The data-parallel :func:`~sgdscope.noise.minibatch_gradients`: the same draw (from
    ``generator``, which must be in the same state on every rank, as the identically seeded
    measurement generator of a Scope is) over the ``N = sum_r N_r`` examples of the ranks' pools in
    rank order, so row l is the single-process row l on the union. This rank computes its rows
    ``[L r / R, L (r+1) / R)`` after fetching their examples from the ranks that hold them
    (module docstring: memory per rank and communication). Every rank calls it alike.

    Args:
        problem: a distributed Problem (its process group is used).
        source: this rank's shard of the pool, anything ``minibatch_gradients`` takes
            (default: the problem's own batches).
        batch_size, num_batches, generator, indices: the draw, as for ``minibatch_gradients``
            (``indices``: (L, M) positions in the union, the same on every rank).
        chunk_size, theta, method: as for ``minibatch_gradients``.

    Returns:
        :class:`ShardedRows`; ``.gather()`` gives all (L, D) rows on every rank.
    """
    comm = _comm(problem, "sharded_minibatch_gradients")
    pool = Pool(problem.batches if source is None else source)
    sizes = comm.sizes(len(pool))
    N = sum(sizes)
    indices = draw_indices(N, indices, batch_size=batch_size, num_batches=num_batches, generator=generator,
                           what="sharded_minibatch_gradients", pool=" (the union of the ranks' pools)").cpu().long()
    counts = _row_counts(len(indices), comm.size)
    first = starts(counts)
    wanted = [torch.unique(indices[s : s + c]) for s, c in zip(first, counts)]
    examples = exchange_examples(comm, pool, sizes, wanted)
    lo, mine = first[comm.rank], counts[comm.rank]
    if mine == 0:
        rows = torch.empty(0, problem.dim, dtype=problem.dtype, device=problem.device)
    else:
        local = torch.searchsorted(wanted[comm.rank], indices[lo : lo + mine])
        rows = minibatch_gradients(problem, examples, indices=local, chunk_size=chunk_size, theta=theta, method=method)
    return ShardedRows(rows, lo, tuple(counts), comm)


def _gram_rows(rows: ShardedRows, *, shift_first: bool = False) -> torch.Tensor:
    """(L_r, L) float64: this rank's rows of the Gram matrix ``A A^T`` of all L rows, with
    ``A = G`` or, with ``shift_first``, the rows shifted by row 0 (``g_l - g_1``, as
    :func:`~sgdscope.noise._gram.centred_gram`). Column block by column block, each owner
    broadcasts its block of rows; products in the rows' dtype, accumulated in float64."""
    comm, counts, G = rows.comm, rows.counts, rows.rows
    first = starts(counts)
    out = torch.zeros(len(G), rows.L, dtype=torch.float64, device=G.device)
    for lo in range(0, rows.dim, _COLUMNS):
        hi = min(rows.dim, lo + _COLUMNS)
        shift = mine = None
        for s in range(comm.size):
            if counts[s] == 0:
                continue
            block = G[:, lo:hi].contiguous() if s == comm.rank else torch.empty(counts[s], hi - lo, dtype=G.dtype, device=G.device)
            comm.broadcast(block, s)
            if shift_first and shift is None:  # the first owner holds row 0
                shift = block[0].clone()
            if len(G) == 0:
                continue
            if mine is None:
                mine = G[:, lo:hi] - shift if shift_first else G[:, lo:hi]
            other = block - shift if shift_first else block
            out[:, first[s] : first[s] + counts[s]] += (mine @ other.T).to(torch.float64)
    return out


def sharded_covariance_spectrum(
    rows: ShardedRows,
    *,
    k: int = 5,
    batch_size: int = 1,
    population: int | None = None,
    vectors: bool = True,
) -> CovarianceSpectrum:
    """:func:`~sgdscope.noise.covariance_spectrum` of L rows shared out over the ranks.

    The same K^M (Break-Even App. C; normalisation in :mod:`sgdscope.noise.covariance`) as one
    process gets from all L rows, the same result on every rank (``vectors`` (D, k) included),
    without gathering the rows: the Gram matrix of the rows shifted by row 0, this rank's rows of
    it by :func:`_gram_rows`, one all-reduce (L x L), centred in the L x L space; the eigenvectors
    ``G^T (P U)`` as each rank's ``G_r^T (P U)_r``, one all-reduce (k x D; none with
    ``vectors=False``, where :func:`~sgdscope.noise.projection_ratio_from_rows` takes the rows).
    Memory per rank: the module docstring. Every rank calls it alike.
    """
    check_rows(rows.rows, "sharded_covariance_spectrum", least=0)
    L, comm = rows.L, rows.comm
    if L < 2:
        raise ValueError(f"sharded_covariance_spectrum: needs at least L=2 gradient rows, got L={L}")
    if not 1 <= k <= L - 1:
        raise ValueError(f"k must be in [1, L-1={L - 1}] (centring leaves L-1 nonzero eigenvalues), got {k}")
    G, lo = rows.rows, rows.start
    S = torch.zeros(L, L, dtype=torch.float64, device=G.device)
    S[lo : lo + len(G)] = _gram_rows(rows, shift_first=True)
    comm.sum(S)
    KM = centre(S) / L  # P S P, as centred_gram

    def back(PU):  # G^T (P U) = sum_r G_r^T (P U)_r: one all-reduce of k x D
        return comm.sum(PU[lo : lo + len(G)].to(device=G.device, dtype=G.dtype).T @ G)

    return spectrum_from_gram(KM, back if vectors else None, k=k, batch_size=batch_size, population=population, like=G)
