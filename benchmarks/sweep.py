"""Sweep executors side by side: four small runs sequentially, on 2 local workers and on 2 Ray workers.

Each run: an MLP 64-64-10 on scikit-learn's real digits with the Break-Even probes, one torch
thread. "Sequential" is the local executor with one worker, so every column pays the same
per-run process start. Targets (issue: sweeps): 2 local workers at least 1.7x faster than
sequential; Ray within 10% of local. Prints the table and the targets met or not from this run's
own numbers, and writes JSON.

    python benchmarks/sweep.py [--epochs 40] [--repeats 1]
"""
from __future__ import annotations

import argparse
import shutil
import statistics
import tempfile
import time
from pathlib import Path

from _common import table, write_json

from sgdscope.sweep import run_sweep


def base_config(epochs: int) -> dict:
    return {
        "name": "bench", "seed": 0,
        "data": {"name": "digits", "val_size": 200},
        "model": {"name": "mlp", "widths": [64, 64]},
        "optimizer": {"name": "sgd", "lr": 0.05},
        "train": {"epochs": epochs, "batch_size": 32, "checkpoint_every": 50},
        "measure": {"curvature_examples": 256},
        "probes": {"top_eigenvalues": {"every": 10, "k": 2}, "loss_change": {"every": 5},
                   "gradient_noise": {"every": 10, "num_batches": 10, "batch_size": 32}},
    }


def timed(executor: str, workers: int, epochs: int, root: Path) -> float:
    out = root / f"{executor}-{workers}"
    shutil.rmtree(out, ignore_errors=True)
    t0 = time.perf_counter()
    rows = run_sweep(base_config(epochs), grid={"optimizer.lr": [0.05, 0.02]}, seeds=[0, 1], out=out, executor=executor,
                     workers=workers, threads=1, quiet=True)
    seconds = time.perf_counter() - t0
    bad = [r for r in rows if r["state"] != "done"]
    if bad:
        raise SystemExit(f"{executor} x{workers}: runs did not finish: {bad}")
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=40, help="epochs per run (40: about 7 s of training each)")
    parser.add_argument("--repeats", type=int, default=1, help="rounds of the three executors, interleaved")
    args = parser.parse_args()
    import ray

    times = {"sequential": [], "local x2": [], "ray x2": []}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        for _ in range(args.repeats):
            # the local executor is timed with no Ray instance alive (its daemons would share the 2 cores);
            # Ray is started before its clock, as a cluster would be, and stopped after it
            times["sequential"].append(timed("local", 1, args.epochs, root))
            times["local x2"].append(timed("local", 2, args.epochs, root))
            ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
            try:
                times["ray x2"].append(timed("ray", 2, args.epochs, root))
            finally:
                ray.shutdown()
    best = {k: statistics.median(v) for k, v in times.items()}
    speedup = best["sequential"] / best["local x2"]
    ray_vs_local = best["ray x2"] / best["local x2"]
    rows = [{"executor": k, "seconds": v, "speed-up vs sequential": best["sequential"] / v} for k, v in best.items()]
    print(f"four runs (MLP on digits, {args.epochs} epochs, Break-Even probes), one thread each")
    print(table(rows, ["executor", "seconds", "speed-up vs sequential"]))
    targets = {
        "local x2 >= 1.7x faster than sequential": (speedup, speedup >= 1.7),
        "ray x2 within 10% of local x2": (ray_vs_local, ray_vs_local <= 1.10),
    }
    print()
    for name, (value, met) in targets.items():
        print(f"target {name}: {value:.3g} -> {'met' if met else 'NOT met'}")
    path = write_json("sweep", {"epochs": args.epochs, "seconds": times, "median": best,
                                "targets": {k: {"value": v, "met": m} for k, (v, m) in targets.items()}})
    print(f"\nwrote {path}")


if __name__ == "__main__":
    main()
