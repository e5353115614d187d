"""Data parallelism on ``torch.distributed``: the process group a distributed Problem measures
over, and the few collectives sgdscope needs.

sgdscope adds no launcher, backend or transport of its own: a Problem (or Scope) built with
``distributed=True`` (the default process group) or ``process_group=...`` runs on the group the
user's training already uses (``torchrun`` + DDP; gloo on the CPU, nccl on GPUs).

Rules every caller keeps:

* every rank calls the same collectives in the same order; control flow between them depends only
  on values that are identical on every rank (all-reduced results, identically seeded
  generators, arguments every rank passes alike);
* a collective's result is identical on every rank (gloo's and nccl's all-reduce and broadcast
  give every rank the same bits), so later computations on it agree bitwise;
* gathers are all-reduces of zero-padded buffers: each entry is nonzero on one rank only, and
  ``x + 0 = x`` exactly, so the gathered rows are the ranks' rows bit for bit.
"""
from __future__ import annotations

import zlib
from dataclasses import dataclass

import torch
import torch.distributed as dist

from ._batches import Batch, Pool

__all__ = ["Comm", "resolve_comm", "exchange_examples", "total", "starts"]


@dataclass(frozen=True)
class Comm:
    """A process group as sgdscope uses it.

    Attributes:
        group: the ``ProcessGroup`` (None: the default group).
        rank, size: this process's rank in the group and the group's size R.
        backend: the group's backend name (``"gloo"``, ``"nccl"``, ``"cpu:gloo,cuda:nccl"``, ...).
        device: where small buffers made here (sizes, flags) are reduced: the current CUDA device
            for a backend that only moves CUDA tensors (nccl), else the CPU.
    """

    group: object
    rank: int
    size: int
    backend: str
    device: torch.device

    # ----------------------------------------------------------------- plumbing
    def global_rank(self, r: int) -> int:
        return r if self.group is None else dist.get_global_rank(self.group, r)

    def _placed(self, t: torch.Tensor) -> torch.Tensor:
        """``t`` (contiguous) on a device the backend moves: CUDA tensors for nccl, CPU ones for gloo."""
        ok = "nccl" in self.backend if t.device.type == "cuda" else ("gloo" in self.backend or "mpi" in self.backend)
        if not ok:
            t = t.to(self.device if t.device.type != "cuda" else "cpu")
        return t.contiguous()

    def _bools(self, t):
        return t.to(torch.uint8) if t.dtype == torch.bool else t

    # ----------------------------------------------------------------- collectives
    def sum(self, t: torch.Tensor) -> torch.Tensor:
        """``t`` summed over the ranks, identical on every rank; written into ``t`` and returned."""
        return self._reduce(t, dist.ReduceOp.SUM)

    def max(self, t: torch.Tensor) -> torch.Tensor:
        """The elementwise maximum over the ranks, written into ``t`` and returned."""
        return self._reduce(t, dist.ReduceOp.MAX)

    def _reduce(self, t, op):
        buf = self._placed(self._bools(t))
        dist.all_reduce(buf, op=op, group=self.group)
        if buf is not t:
            t.copy_(buf.to(t.dtype) if buf.dtype != t.dtype else buf)
        return t

    def broadcast(self, t: torch.Tensor, src: int) -> torch.Tensor:
        """Rank ``src``'s ``t`` on every rank (``t`` is the buffer elsewhere: same shape and dtype)."""
        buf = self._placed(t)
        dist.broadcast(buf, src=self.global_rank(src), group=self.group)
        if buf is not t:
            t.copy_(buf)
        return t

    def sizes(self, n: int) -> list[int]:
        """Every rank's ``n``, in rank order."""
        buf = torch.zeros(self.size, dtype=torch.int64, device=self.device)
        buf[self.rank] = int(n)
        return [int(v) for v in self.sum(buf).tolist()]

    def flag(self, value: bool) -> bool:
        """Whether ``value`` is true on any rank (the same answer on every rank)."""
        return bool(self.max(torch.tensor([int(bool(value))], dtype=torch.int64, device=self.device)).item())

    def check_same(self, value: int, what: str) -> None:
        """Raise on every rank when the integer ``value`` differs between ranks (``what`` names it)."""
        buf = torch.tensor([int(value), -int(value)], dtype=torch.int64, device=self.device)
        hi, neg_lo = self.max(buf).tolist()
        if hi != -neg_lo:
            raise ValueError(f"{what} differs across the ranks of the process group: {-neg_lo} to {hi} (this rank, "
                             f"{self.rank}: {value}); every rank must build the same model, parameter selection and data layout")

    def gather_rows(self, local: torch.Tensor, counts: list[int] | None = None) -> torch.Tensor:
        """Every rank's rows (``local`` (n_r, ...)), concatenated in rank order, on every rank.

        One all-reduce of a zero-padded (sum n_r, ...) buffer: exact (see the module docstring).
        ``counts``: the ranks' n_r when known (saves a collective).
        """
        counts = self.sizes(len(local)) if counts is None else counts
        lo = starts(counts)[self.rank]
        buf = torch.zeros((sum(counts), *local.shape[1:]), dtype=local.dtype, device=local.device)
        buf[lo : lo + len(local)] = local
        return self.sum(buf)


def starts(counts) -> list[int]:
    """Where each rank's part begins when the ranks' ``counts`` are laid end to end in rank order."""
    return [sum(counts[:r]) for r in range(len(counts))]


def total(comm: Comm | None, n: int) -> int:
    """``n`` summed over the ranks (``n`` itself without a group)."""
    return int(n) if comm is None else sum(comm.sizes(n))


def resolve_comm(distributed: bool, process_group, device: torch.device) -> Comm | None:
    """The group a Problem on ``device`` measures over: None (one process), the default group
    (``distributed=True``) or ``process_group``.

    Raises:
        ValueError: no initialised process group; nccl with parameters off the GPU or on a CUDA
        device other than the current one; this process is not in ``process_group``.
    """
    if not isinstance(distributed, bool):
        raise TypeError(f"distributed must be True or False, got {distributed!r}")
    if not distributed and process_group is None:
        return None
    what = "process_group=..." if process_group is not None else "distributed=True"
    if not dist.is_available() or not dist.is_initialized():
        raise ValueError(
            f"{what} needs an initialised torch.distributed process group, and none is initialised "
            "(call torch.distributed.init_process_group first, e.g. under torchrun)"
        )
    rank = dist.get_rank(process_group)
    if rank < 0:
        raise ValueError(f"process_group: this process (global rank {dist.get_rank()}) is not a member of the group")
    backend = str(dist.get_backend(process_group))
    device = torch.device(device)
    cuda_only = "nccl" in backend and "gloo" not in backend
    if cuda_only and device.type != "cuda":
        raise ValueError(
            f"the process group's backend is {backend!r}, which moves CUDA tensors only, but the parameters are on "
            f"{device}: move the model to this rank's GPU (torch.cuda.set_device(local_rank); model.cuda()) or "
            "use the gloo backend"
        )
    if "nccl" in backend and device.type == "cuda":
        current = torch.cuda.current_device()
        if device.index is not None and device.index != current:
            raise ValueError(
                f"nccl: the parameters are on {device} but the current CUDA device is cuda:{current}; call "
                f"torch.cuda.set_device({device.index}) before building the Problem (nccl works on the current device)"
            )
    small = torch.device("cuda", torch.cuda.current_device()) if cuda_only else torch.device("cpu")
    return Comm(process_group, rank, dist.get_world_size(process_group), backend, small)


# ------------------------------------------------------------------ examples across ranks
def _components(batch: Batch) -> list[torch.Tensor]:
    x, y = batch
    return [*(x if isinstance(x, tuple) else (x,)), y]


def _signature(pool: Pool) -> str:
    """Arity, per-example shapes and dtypes of a pool's examples (what a receiver must allocate)."""
    x, y = pool.blocks[0]
    parts = [f"{tuple(t.shape[1:])}:{t.dtype}" for t in _components((x, y))]
    return f"{'tuple' if isinstance(x, tuple) else 'tensor'}|" + "|".join(parts)


def exchange_examples(comm: Comm, pool: Pool, counts: list[int], wanted: list[torch.Tensor]) -> Batch:
    """The examples this rank wants, fetched from the ranks that hold them.

    The examples of all ranks form one pool, the union in rank order (rank r's pool holds
    positions ``[sum(counts[:r]), sum(counts[:r+1]))``). ``wanted[r]`` (known on every rank) is the
    sorted 1-d tensor of union positions rank r needs. Each rank sends every other rank just the
    examples it wants (point-to-point, ``torch.distributed.batch_isend_irecv``) and returns its own
    wanted examples as one ``(inputs, targets)`` pair, in the order of ``wanted[rank]``.

    Raises:
        ValueError: the ranks' examples differ in structure, per-example shape or dtype.
    """
    sig = _signature(pool)
    try:
        comm.check_same(zlib.crc32(sig.encode()), "the examples' structure, shapes or dtypes")
    except ValueError:
        raise ValueError(f"the noise pools' examples differ in structure, per-example shape or dtype across ranks "
                         f"(this rank, {comm.rank}: {sig}); every rank's pool must hold examples of one kind") from None
    offsets = starts(counts) + [sum(counts)]

    def part(r, s):  # pool-local positions of rank s's examples that rank r wants
        need = wanted[r]
        return need[(need >= offsets[s]) & (need < offsets[s + 1])] - offsets[s]

    x0, y0 = pool.blocks[0]
    template = _components((x0, y0))
    ops, pieces = [], {}
    for s in range(comm.size):
        if s == comm.rank:
            pieces[s] = _components(pool.gather(part(comm.rank, s)))
            for r in range(comm.size):
                idx = part(r, s)
                if r != s and len(idx):
                    for t in _components(pool.gather(idx)):
                        ops.append(dist.P2POp(dist.isend, comm._placed(comm._bools(t)), comm.global_rank(r), comm.group))
        else:
            n = len(part(comm.rank, s))
            if n:
                bufs = [comm._placed(torch.empty((n, *t.shape[1:]), dtype=comm._bools(t).dtype, device=t.device)) for t in template]
                ops.extend(dist.P2POp(dist.irecv, b, comm.global_rank(s), comm.group) for b in bufs)
                pieces[s] = bufs
    if ops:
        for work in dist.batch_isend_irecv(ops):
            work.wait()
    joined = []
    for j, t in enumerate(template):
        got = [pieces[s][j].to(t.device).to(t.dtype) for s in range(comm.size) if s in pieces]
        joined.append(torch.cat(got))
    return (tuple(joined[:-1]) if isinstance(x0, tuple) else joined[0]), joined[-1]
