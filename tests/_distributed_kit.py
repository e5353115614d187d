"""Two-process workers for ``tests/test_distributed.py`` (gloo, float64), and their single-process twins.

Each worker joins a gloo group through a rendezvous file, builds the same tiny seeded case, takes
its rank's shard (unequal shards, several batches each), measures, and saves what it measured
to ``{out}/rank{r}.pt``. The test compares the two ranks (bitwise) and one process on the union of
the shards (the same functions, called here without a process group).

Shards (union = the data in order, rank 0's part first):
  curvature (20 examples): rank 0 batches [0, 3), [3, 7); rank 1 batches [7, 12), [12, 20)
  noise pool (30 examples): rank 0 [0, 11); rank 1 [11, 30)
  training: 32 examples, 6 steps of a global batch of 8, each rank taking its half (DDP)
"""
from __future__ import annotations

import copy
import gc
import datetime
import traceback
from pathlib import Path

import torch
import torch.distributed as dist
from torch import nn

import sgdscope
from sgdscope import probes as P
from sgdscope.noise import minibatch_gradients, projection_ratio_from_rows, sharded_covariance_spectrum, sharded_minibatch_gradients

WORLD = 2
CURV = [[(0, 3), (3, 7)], [(7, 12), (12, 20)]]
POOL = [(0, 11), (11, 30)]
STEPS, GLOBAL_BATCH = 6, 8


# ----------------------------------------------------------------------------- the case
def case(bn: bool = False):
    """(model, X, Y, P, PY): a tiny float64 MLP (with batch norm if ``bn``), 20 curvature and 30 pool examples."""
    g = torch.Generator().manual_seed(0)
    X, Y = torch.randn(20, 4, generator=g, dtype=torch.float64), torch.randint(0, 3, (20,), generator=g)
    Pool, PY = torch.randn(30, 4, generator=g, dtype=torch.float64), torch.randint(0, 3, (30,), generator=g)
    torch.manual_seed(0)
    layers = [nn.Linear(4, 6)] + ([nn.BatchNorm1d(6)] if bn else []) + [nn.Tanh(), nn.Linear(6, 3)]
    return nn.Sequential(*layers).double(), X, Y, Pool, PY


def curvature_shard(X, Y, rank: int | None):
    """Rank ``rank``'s curvature batches; None: the union, as one process sees it."""
    spans = [s for r in range(WORLD) for s in CURV[r]] if rank is None else CURV[rank]
    return [(X[a:b], Y[a:b]) for a, b in spans]


def pool_shard(P, PY, rank: int | None):
    a, b = (0, POOL[-1][1]) if rank is None else POOL[rank]
    return P[a:b], PY[a:b]


def head(pool, rank: int | None, n: int):
    """This rank's part of the union's first n pool examples (all n in one process)."""
    x, y = pool
    start = 0 if rank is None else POOL[rank][0]
    lo, hi = min(start, n), min(start + len(y), n)
    return x[lo - start : max(hi - start, 0)], y[lo - start : max(hi - start, 0)]


def gen(seed):
    return torch.Generator().manual_seed(seed)


# ----------------------------------------------------------------------------- measurements
def measure(rank: int | None, device: str = "cpu") -> dict:
    """Every measurement of a Problem, on rank ``rank``'s shard over the group, or (None) on the union;
    the model and data on ``device`` (the generators stay on the CPU)."""
    model, X, Y, Pdata, PY = (t.to(device) for t in case())
    loss_fn = nn.CrossEntropyLoss()
    problem = sgdscope.Problem(model, loss_fn, curvature_shard(X, Y, rank), distributed=rank is not None)
    pool = pool_shard(Pdata, PY, rank)
    out = {}
    op = sgdscope.hessian_op(problem)
    V = torch.randn(problem.dim, 3, generator=gen(1), dtype=torch.float64).to(device)
    out["hv"] = op @ V
    out["hv1"] = op @ V[:, 0]
    out["op_loss"] = op.loss
    out["loss"], out["grad"] = problem.loss_and_grad()
    out["loss_only"] = problem.loss()
    out["N"] = torch.tensor(float(problem.num_examples))
    top = sgdscope.lanczos(op, 3, tol=1e-10, generator=gen(2))
    out["top_values"], out["top_vectors"] = top.values, top.vectors
    out["top_matvecs"] = torch.tensor(float(top.matvecs))
    out["warm_values"] = sgdscope.lanczos(op, 3, tol=1e-10, v0=top.vectors, generator=gen(2)).values
    out["bottom_values"] = sgdscope.lanczos(op, 2, which="SA", tol=1e-10, generator=gen(3)).values
    out["streamed_top"] = sgdscope.lanczos(sgdscope.hessian_op(problem, backend="func"), 2, tol=1e-10, generator=gen(2)).values
    out["hutchinson"] = torch.tensor(sgdscope.hutchinson_trace(op, 8, generator=gen(4)).estimate)
    out["hutchpp"] = torch.tensor(sgdscope.hutchpp_trace(op, 9, generator=gen(5)).estimate)
    out["frobenius"] = torch.tensor(sgdscope.frobenius_sq(op, 8, generator=gen(6)).estimate)
    out["slq"] = sgdscope.spectral_density(op, num_runs=2, lanczos_steps=8, grid=40, generator=gen(7)).estimate
    out["dense"] = sgdscope.dense_hessian(problem).matrix
    # K: 7 mini-batches of 4 from the 30 pool examples (rank 0 owns rows 0-2, rank 1 rows 3-6)
    if rank is None:
        G = rows = minibatch_gradients(problem, pool, batch_size=4, num_batches=7, generator=gen(8))
        spectrum = sgdscope.covariance_spectrum
    else:
        rows = sharded_minibatch_gradients(problem, pool, batch_size=4, num_batches=7, generator=gen(8))
        out["rows_held"] = torch.tensor(float(len(rows.rows)))
        G = rows.gather()
        spectrum = sharded_covariance_spectrum
    spec = spectrum(rows, k=3, batch_size=4, population=30)
    out["K_rows"], out["K_spectrum"], out["K_vectors"] = G, spec.spectrum, spec.vectors
    out["K_trace"] = torch.tensor(spec.trace)
    out["K_lambda_star"] = torch.tensor(spec.lambda_star)
    out["g_ratio"] = sgdscope.projection_ratio(out["grad"], spec.vectors)
    # without the eigenvectors (as the gradient_noise probe measures): the same ratio from the rows
    out["g_ratio_from_rows"] = projection_ratio_from_rows(out["grad"], rows, spectrum(rows, k=3, vectors=False))
    al = sgdscope.gradient_hessian_alignment(problem, pool, batch_sizes=[2, 5, 30], num_batches=6, generator=gen(9),
                                             hessian_vectors=top.vectors)
    out["align_mean"], out["align_std"], out["overlap_mean"] = al.mean, al.std, al.overlap_mean
    out["align_samples"] = torch.cat(al.samples)
    hc = sgdscope.hessian_noise_cosine(problem, head(pool, rank, 15), num_matvecs=8, hc_samples=6, generator=gen(10))
    out["hc"] = torch.tensor([hc.estimate, hc.stderr, hc.tr_hc.estimate, hc.tr_c2.estimate, hc.tr_h2.estimate])
    hc = sgdscope.hessian_noise_cosine(problem, head(pool, rank, 5), method="exact")  # rank 1 holds none of them
    out["hc_exact"] = torch.tensor([hc.estimate, hc.tr_hc.estimate, hc.tr_c2.estimate, hc.tr_h2.estimate])
    sp = sgdscope.curvature_spread(problem, top.vectors[:, 0], head(pool, rank, 15))
    out["spread"] = torch.tensor([sp.mean, sp.var, float(sp.n)])
    out["spread_samples"] = sp.samples
    theta = problem.theta()
    out["interpolation"] = sgdscope.interpolate_loss(problem, theta, theta + 0.3 * top.vectors[:, 0], num_points=5).losses
    # batch norm in train mode: each mini-batch is whole on its owner, so its statistics are the single-process ones
    bn_model = case(bn=True)[0].to(device)
    bn = sgdscope.Problem(bn_model, loss_fn, curvature_shard(X, Y, rank), bn_mode="train", distributed=rank is not None)
    if rank is None:
        out["bn_rows"] = minibatch_gradients(bn, pool, batch_size=5, num_batches=3, generator=gen(11))
    else:
        out["bn_rows"] = sharded_minibatch_gradients(bn, pool, batch_size=5, num_batches=3, generator=gen(11)).gather()
    out["bn_hv"] = sgdscope.hessian_op(bn) @ torch.randn(bn.dim, 2, generator=gen(12), dtype=torch.float64).to(device)
    return {k: torch.as_tensor(v).cpu() for k, v in out.items()}


# ----------------------------------------------------------------------------- Scope in a DDP loop
def scope_probes():
    return [
        P.top_eigenvalues(3, every=2),
        P.gradient_noise(6, batch_size=4, k=3, every=2),
        P.loss_change(every=2),
        P.stability(num_examples=15, every=2),
        P.interpolation(5, every=2),
        P.distance_from_init(every=2),
        P.gradient_cosine(every=1),
        P.alignment(batch_sizes=(2, 5), num_batches=4, every=3),
        P.hessian_noise(num_matvecs=6, num_examples=9, every=3),
        P.hessian_trace(num_matvecs=6, every=3),
        P.hessian_norms(num_matvecs=4, every=3),
        P.spectral_density(num_runs=1, lanczos_steps=6, grid=20, every=3),
        P.sharpest_directions(k=2, num_batches=3, batch_size=4, every=3),
    ]


def training_data():
    g = torch.Generator().manual_seed(1)
    return torch.randn(32, 4, generator=g, dtype=torch.float64), torch.randint(0, 3, (32,), generator=g)


def local_batch(step: int, rank: int | None):
    """This rank's half of step ``step``'s global batch of 8 (the whole batch in one process)."""
    X, Y = training_data()
    lo = (step * GLOBAL_BATCH) % len(Y)
    if rank is not None:
        lo, hi = lo + rank * GLOBAL_BATCH // WORLD, lo + (rank + 1) * GLOBAL_BATCH // WORLD
    else:
        hi = lo + GLOBAL_BATCH
    return X[lo:hi], Y[lo:hi]


def train(rank: int | None, sink, steps, *, model=None, optimizer=None, state=None, save_at=None):
    """Train the case's model with plain SGD (under DDP when ``rank`` is given) and a Scope writing to ``sink``.

    ``steps``: the step numbers to run; ``state``: a checkpoint's state to resume from; ``save_at``:
    the step after which rank 0 (or the one process) saves a checkpoint through ``sink``."""
    _, X, Y, Pdata, PY = case()
    if model is None:
        model = case()[0]
    optimizer = optimizer or torch.optim.SGD(model.parameters(), lr=0.1)
    forward = nn.parallel.DistributedDataParallel(model) if rank is not None else model
    loss_fn = nn.CrossEntropyLoss()
    scope = sgdscope.Scope(model, loss_fn, curvature_shard(X, Y, rank), scope_probes(), sink=sink,
                           noise_data=pool_shard(Pdata, PY, rank), train_size=32, seed=0, distributed=rank is not None)
    if state is not None:
        scope.load_state_dict(state)
    for step in steps:
        xb, yb = local_batch(step, rank)
        optimizer.zero_grad()
        loss = loss_fn(forward(xb), yb)
        loss.backward()
        optimizer.step()
        scope.after_step(step, optimizer=optimizer, batch=(xb, yb), loss=loss.detach(), epoch=step // 4, epoch_end=step % 4 == 3)
        if step == save_at and scope.writes:
            scope.sink.save_checkpoint(step, model_state=model.state_dict(),
                                       state={"optimizer": optimizer.state_dict(), "scope": scope.state_dict()})
    return scope


def _probe_failures(rank: int) -> dict:
    """A probe failing on every rank, one failing on rank 1 only, then a collective probe: recorded, no hang."""
    model, X, Y, Pdata, PY = case()

    def everywhere(ctx):
        raise ValueError("bad on every rank")

    def on_rank_1(ctx):
        if ctx.problem.comm.rank == 1:
            raise RuntimeError("bad on rank 1 only")
        return {"x": 1.0}

    result = {}
    sink = sgdscope.MemorySink()
    probes = [P.probe("everywhere", everywhere, every=1, before=False), P.probe("on_rank_1", on_rank_1, every=1, before=False),
              P.top_eigenvalues(1, every=1)]
    scope = sgdscope.Scope(model, nn.CrossEntropyLoss(), curvature_shard(X, Y, rank), probes, sink=sink,
                           noise_data=pool_shard(Pdata, PY, rank), distributed=True)
    got = scope.after_step(0)
    result["values"] = got
    result["failures"] = dict(scope.failures)
    result["sink_rows"] = len(sink.rows)
    strict = sgdscope.Scope(model, nn.CrossEntropyLoss(), curvature_shard(X, Y, rank), probes[1:], sink=sgdscope.MemorySink(),
                            noise_data=pool_shard(Pdata, PY, rank), distributed=True, strict=True)
    try:
        strict.after_step(0)
        result["strict"] = None
    except Exception as err:  # noqa: BLE001 - the test reads what was raised
        result["strict"] = f"{type(err).__name__}: {err}"
    # the wrapper, and parameters that differ across ranks: errors on every rank, no hang
    try:
        sgdscope.Problem(nn.parallel.DistributedDataParallel(model), nn.CrossEntropyLoss(), (X, Y), distributed=True)
    except TypeError as err:
        result["ddp_error"] = str(err)
    other = copy.deepcopy(model)
    if rank == 1:
        with torch.no_grad():
            other[0].bias[0] += 1
    try:
        sgdscope.Scope(other, nn.CrossEntropyLoss(), curvature_shard(X, Y, rank), [], sink=sgdscope.MemorySink(), distributed=True)
    except ValueError as err:
        result["mismatch_error"] = str(err)
    return result


def scope_runs(rank: int, out: Path) -> dict:
    """Run A: uninterrupted, to a path; run B: checkpoint at step 2, run on to step 4, 'killed', resumed."""
    result = {}
    a = train(rank, out / ("run-a" if rank == 0 else "run-a-rank1-must-not-exist"), range(STEPS))
    a.close()
    result["run_dir"] = None if a.run_dir is None else str(a.run_dir)
    b_path = out / "run-b"
    writer = sgdscope.RunWriter(b_path, config={"test": "resume"}) if rank == 0 else None
    train(rank, writer, range(5), save_at=2)  # killed after step 4: never closed
    dist.barrier()
    writer = None  # the killed writer is gone, and with it its lock on the folder (the OS frees a dead process's)
    gc.collect()
    writer = sgdscope.RunWriter(b_path, resume=True) if rank == 0 else None
    if writer is not None:
        writer.truncate_after(2)
    from sgdscope.store.checkpoint import load_checkpoint

    model_state, state = load_checkpoint(b_path, 2)  # every rank reads rank 0's checkpoint
    model = case()[0]
    model.load_state_dict(model_state)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    optimizer.load_state_dict(state["optimizer"])
    b = train(rank, writer, range(3, STEPS), model=model, optimizer=optimizer, state=state["scope"])
    b.close()
    if writer is not None:
        writer.set_status("done")
        writer.close()
    result.update(_probe_failures(rank))
    return result


# ----------------------------------------------------------------------------- spawning
def spawn(task: str, out: Path, timeout: float = 900) -> list[dict]:
    """Run :func:`worker` on WORLD spawned processes; their saved results, in rank order.

    Raises AssertionError with the workers' tracebacks if one raised, or when they outlive
    ``timeout`` (a collective left unpaired: they are terminated)."""
    import time

    import torch.multiprocessing as mp

    out.mkdir(parents=True, exist_ok=True)
    ctx = mp.start_processes(worker, args=(task, str(out)), nprocs=WORLD, join=False, start_method="spawn")
    deadline = time.monotonic() + timeout
    try:
        while not ctx.join(timeout=2):
            if time.monotonic() > deadline:
                for p in ctx.processes:
                    p.terminate()
                raise AssertionError(f"the {task} workers did not finish within {timeout} s (a collective left unpaired?)")
    except mp.ProcessRaisedException:
        errors = "\n".join(f.read_text() for f in sorted(out.glob("rank*.error")))
        raise AssertionError(f"a {task} worker raised:\n{errors}") from None
    return [torch.load(out / f"rank{r}.pt", weights_only=False) for r in range(WORLD)]


# ----------------------------------------------------------------------------- the spawned entry point
def worker(rank: int, task: str, out: str) -> None:
    """``task``: "measure" (gloo), "measure_nccl" (nccl, rank r on cuda:r) or "scope" (gloo)."""
    torch.set_num_threads(1)
    out = Path(out)
    nccl = task == "measure_nccl"
    if nccl:
        torch.cuda.set_device(rank)
    dist.init_process_group("nccl" if nccl else "gloo", init_method=f"file://{out / 'rendezvous'}", rank=rank, world_size=WORLD,
                            timeout=datetime.timedelta(seconds=120))
    try:
        if task == "scope":
            result = scope_runs(rank, out)
        else:
            result = measure(rank, f"cuda:{rank}" if nccl else "cpu")
        dist.barrier()  # every collective above paired up: the group is still usable
        torch.save(result, out / f"rank{rank}.pt")
    except Exception:
        (out / f"rank{rank}.error").write_text(traceback.format_exc())
        raise
    finally:
        dist.destroy_process_group()
