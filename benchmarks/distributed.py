"""Data-parallel curvature benchmark (issue #16): Hessian-vector products per second and a top-5
solve with 1 and 2 processes (one thread each), on the MLP 300-100 (Break-Even App. D) and its 5%
Fashion-MNIST curvature subset (3,000 training images).

Each world size runs in processes of its own (spawned; torch.distributed over a rendezvous file):
1 process is the plain single-process Problem (no process group), R > 1 processes are a
``Problem(..., distributed=True)`` with each rank holding a contiguous shard of the subset (gloo
on the CPU; ``--backend nccl`` puts rank r on cuda:r, so R GPUs are needed). A timed product or
solve starts after a barrier and is rank 0's wall time: the all-reduce of every product waits for
the slowest rank, so that is the time of the whole group.

Scaling efficiency = t(1 process) / (R t(R processes)); 1.0 is perfect. Beside it, the same
ratio for each rank's local product alone (its batches, no all-reduce): on a machine whose cores
do not give R times the throughput (a shared VM) that is the ceiling, whatever the communication
costs. The issue sets no number for the efficiency, so it is printed, not judged; the targets judged are that the R-process top-5 agrees with
the 1-process one and that every rank got the same values.

    python benchmarks/distributed.py [--repeats 7] [--batch 1000] [--worlds 1 2] [--backend gloo|nccl]
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import statistics
import tempfile
import time
from pathlib import Path

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch import nn

import sgdscope
from _common import print_targets, require_data, table, target, write_json

SUBSET = 3000  # 5% of the 60,000 Fashion-MNIST training images


def shard(x, y, rank, world):
    lo, hi = len(y) * rank // world, len(y) * (rank + 1) // world
    return x[lo:hi], y[lo:hi]


def timed(fn, device, group) -> float:
    """Wall time of ``fn`` on this rank, started after a barrier (all ranks enter together)."""
    if group:
        dist.barrier()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    t0 = time.perf_counter()
    fn()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return time.perf_counter() - t0


def worker(rank: int, world: int, args: dict, out: str) -> None:
    torch.set_num_threads(1)
    nccl = args["backend"] == "nccl"
    device = torch.device("cuda", rank) if nccl else torch.device("cpu")
    group = world > 1
    if nccl:
        torch.cuda.set_device(device)
    if group:
        dist.init_process_group(args["backend"], init_method=f"file://{out}/rendezvous-{world}", rank=rank, world_size=world,
                                timeout=datetime.timedelta(minutes=30))
    ds = sgdscope.zoo.load_dataset("fashion_mnist", args["root"], subset=SUBSET, seed=0).to(device)
    x, y = shard(ds.train.x, ds.train.y, rank, world)
    batches = [(x[i : i + args["batch"]], y[i : i + args["batch"]]) for i in range(0, len(y), args["batch"])]
    model = sgdscope.zoo.build_model("mlp", input_shape=(1, 28, 28), num_classes=10, widths=(300, 100), seed=0, device=device)
    problem = sgdscope.Problem(model, nn.CrossEntropyLoss(), batches, distributed=group)
    v = torch.randn(problem.dim, generator=torch.Generator().manual_seed(0)).to(device)
    op = sgdscope.hessian_op(problem)
    setup = timed(lambda: op @ v, device, group)  # builds the retained graph, then one product
    hvp = [timed(lambda: op @ v, device, group) for _ in range(args["repeats"])]
    # the two parts of a product: this rank's batches, and the all-reduce of the (D,) result
    local = [timed(lambda: op._shard_matmat(v[:, None]), device, group) for _ in range(args["repeats"])]
    buf = torch.zeros_like(v)
    reduce = [timed(lambda: problem.comm.sum(buf), device, group) for _ in range(args["repeats"])] if group else [0.0]
    solves, res = [], None
    for _ in range(args["solves"]):
        def solve():
            nonlocal res
            res = sgdscope.lanczos(op, 5, tol=1e-3, generator=torch.Generator().manual_seed(1))

        solves.append(timed(solve, device, group))
    result = {"world": world, "rank": rank, "dim": problem.dim, "N": problem.num_examples, "shard": problem.shard_examples,
              "setup_s": setup, "hvp_s": statistics.median(hvp),
              "local_s": statistics.median(local), "allreduce_s": statistics.median(reduce), "top5_s": statistics.median(solves),
              "top5_matvecs": res.matvecs, "top5": res.values.double().cpu().tolist()}
    Path(out, f"world{world}-rank{rank}.json").write_text(json.dumps(result))
    if group:
        dist.barrier()
        dist.destroy_process_group()


def run_world(world: int, args: dict, out: str) -> list[dict]:
    mp.start_processes(worker, args=(world, args, out), nprocs=world, join=True, start_method="spawn")
    return [json.loads(Path(out, f"world{world}-rank{r}.json").read_text()) for r in range(world)]


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--worlds", type=int, nargs="+", default=[1, 2], help="process counts to run (the first is the baseline)")
    parser.add_argument("--backend", choices=["gloo", "nccl"], default="gloo")
    parser.add_argument("--batch", type=int, default=1000, help="examples per batch of a rank's shard")
    parser.add_argument("--repeats", type=int, default=7, help="timed products (median)")
    parser.add_argument("--solves", type=int, default=3, help="timed top-5 solves (median)")
    args = parser.parse_args()
    if args.backend == "nccl" and torch.cuda.device_count() < max(args.worlds):
        raise SystemExit(f"--backend nccl runs rank r on cuda:r: {max(args.worlds)} processes need as many GPUs, "
                         f"this machine has {torch.cuda.device_count()}")
    settings = {**vars(args), "root": str(require_data("fashion-mnist"))}
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"MLP 300-100 on {SUBSET} Fashion-MNIST images (5%), float32, {args.backend}, one thread per process; "
          f"load average {load:.1f} on {os.cpu_count()} CPUs", flush=True)
    rows, ranks = [], {}
    with tempfile.TemporaryDirectory() as out:
        for world in args.worlds:
            ranks[world] = run_world(world, settings, out)
            r0 = ranks[world][0]
            rows.append({"processes": world, "shard": r0["shard"], "setup_s": r0["setup_s"], "hvp_s": r0["hvp_s"],
                         "local_s": r0["local_s"], "allreduce_s": r0["allreduce_s"],
                         "hvp_per_s": 1 / r0["hvp_s"], "top5_s": r0["top5_s"], "top5_matvecs": r0["top5_matvecs"],
                         "lambda_1": r0["top5"][0]})
            print(f"[{world} process{'es' if world > 1 else ''}] HVP {r0['hvp_s'] * 1e3:.1f} ms, top-5 {r0['top5_s']:.2f} s "
                  f"({r0['top5_matvecs']} products)", flush=True)
    base = rows[0]
    for row in rows:
        R = row["processes"] / base["processes"]
        row["hvp_efficiency"] = base["hvp_s"] / (R * row["hvp_s"])
        row["local_efficiency"] = base["local_s"] / (R * row["local_s"])  # the ranks' own batches only: what the machine allows
        row["top5_efficiency"] = base["top5_s"] / (R * row["top5_s"])
        row["top5_rel_diff"] = max(abs(a - b) / abs(base["lambda_1"]) for a, b in zip(ranks[row["processes"]][0]["top5"], ranks[base["processes"]][0]["top5"]))
    print(f"\nD = {ranks[base['processes']][0]['dim']}, N = {SUBSET}; efficiency = t(1) / (R t(R)), 1.0 is perfect\n")
    print(table(rows, ["processes", "shard", "setup_s", "hvp_s", "local_s", "allreduce_s", "hvp_per_s", "hvp_efficiency", "local_efficiency", "top5_s", "top5_matvecs",
                       "top5_efficiency", "top5_rel_diff"]))
    print("\nscaling efficiency (no target in the issue; printed, not judged): "
          + ", ".join(f"{r['processes']} processes: HVP {r['hvp_efficiency']:.2f}, top-5 {r['top5_efficiency']:.2f}, "
                      f"the ranks' local products alone {r['local_efficiency']:.2f} (no communication: the machine's own ceiling)"
                      for r in rows[1:]))
    multi = rows[1:]
    same = all(ranks[w][0]["top5"] == r["top5"] for w in ranks for r in ranks[w])
    targets = [
        target("top5_agrees_with_one_process", max((r["top5_rel_diff"] for r in multi), default=None), 1e-3,
               all(r["top5_rel_diff"] <= 1e-3 for r in multi) if multi else None,
               "the multi-process top-5 equals the 1-process one to the solve's tolerance (1e-3 |lambda_1|): "
               + ", ".join(f"{r['processes']} processes {r['top5_rel_diff']:.1e}" for r in multi)),
        target("ranks_identical", same, True, same, "every rank got bitwise the same top-5"),
    ]
    print_targets(targets)
    path = write_json("distributed", {"args": vars(args), "load_average": load, "rows": rows, "ranks": ranks,
                                      "targets": {t["name"]: t for t in targets}})
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
