"""Benchmark of ``sgdscope.noise`` on the SimpleCNN of Break-Even (App. D) with real CIFAR-10 images.

Measures, on the CPU in float32:

1. per-example gradients of 128 images: ``per_example_gradients`` (vmap, several chunk sizes)
   against a Python loop of autograd gradients and BackPACK's ``BatchGrad`` (when installed);
2. the full K measurement of Break-Even App. C (L = 25 mini-batch gradients of M = 128, then the
   Gram spectrum) against 25 plain ``loss.backward()`` gradients of the same mini-batches;
3. peak memory of each, in a fresh subprocess (peak RSS reset after setup through
   ``/proc/self/clear_refs``), next to the L x D storage of the gradient rows.

Targets: per-example gradients no slower than the loop or BackPACK; K measurement <= 1.3x the
25 gradients; memory O(L D).

    python benchmarks/noise.py [--quick] [--threads 2 | 1,2] [--out benchmarks/results/noise.json]

Data: ``sgdscope.zoo.load_dataset("cifar10")`` and ``build_model("simplecnn")`` when the zoo is
importable, else 128+ images read with Pillow from ``../shared/data/cifar10-jpg/cifar10-jpg.tar.gz``
and the SimpleCNN defined here. Skips with a message when the data are absent.
"""
from __future__ import annotations

import argparse
import copy
import io
import json
import os
import platform
import re
import subprocess
import sys
import tarfile
import time
import warnings
from pathlib import Path

import torch
from torch import nn

from sgdscope import Problem
from sgdscope.noise import covariance_spectrum, minibatch_gradients, minibatch_indices, per_example_gradients

ROOT = Path(__file__).resolve().parents[1]
TARBALL = ROOT.parent / "shared" / "data" / "cifar10-jpg" / "cifar10-jpg.tar.gz"
L, M, B = 25, 128, 128  # Break-Even App. C: L = 25 mini-batch gradients of M = 128


# ----------------------------------------------------------------------------- data and model
def simplecnn() -> nn.Sequential:
    """Break-Even App. D: conv32-conv32-maxpool-conv64-conv64-maxpool-dense128-linear10, ReLU."""
    return nn.Sequential(
        nn.Conv2d(3, 32, 3, padding=1), nn.ReLU(), nn.Conv2d(32, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.Conv2d(64, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(64 * 8 * 8, 128), nn.ReLU(), nn.Linear(128, 10),
    )


def _read_tarball(n: int) -> tuple[torch.Tensor, torch.Tensor]:
    import numpy as np
    from PIL import Image

    per_class, xs, ys, names = -(-n // 10), [], [], {}
    with tarfile.open(TARBALL) as tar:
        for member in tar:
            m = re.search(r"train/([^/]+)/[^/]+\.jpg$", member.name)
            if not m:
                continue
            label = names.setdefault(m.group(1), len(names))
            if sum(y == label for y in ys) >= per_class:
                continue
            img = Image.open(io.BytesIO(tar.extractfile(member).read())).convert("RGB")
            xs.append(torch.from_numpy(np.asarray(img).copy()).permute(2, 0, 1))
            ys.append(label)
            if len(ys) >= n:
                break
    return torch.stack(xs).float() / 255, torch.tensor(ys)


def load(n: int) -> tuple[nn.Module, torch.Tensor, torch.Tensor, str]:
    """The SimpleCNN (seed 0) and n CIFAR-10 training images (float32 in [0, 1]) with labels."""
    try:
        from sgdscope.zoo import build_model, load_dataset

        ds = load_dataset("cifar10", subset=n)
        return build_model("simplecnn", seed=0), ds.train.x.float(), ds.train.y, "sgdscope.zoo"
    except ImportError:
        pass
    if not TARBALL.is_file():
        print(f"skip: CIFAR-10 tarball {TARBALL} is absent", file=sys.stderr)
        sys.exit(0)
    torch.manual_seed(0)
    x, y = _read_tarball(n)
    return simplecnn(), x, y, "tarball"


# ----------------------------------------------------------------------------- the contenders
def loop_gradients(model, loss_fn, x, y) -> torch.Tensor:
    params = [p for p in model.parameters() if p.requires_grad]
    rows = []
    for i in range(len(y)):
        grads = torch.autograd.grad(loss_fn(model(x[i : i + 1]), y[i : i + 1]), params)
        rows.append(torch.cat([g.reshape(-1) for g in grads]))
    return torch.stack(rows)


def backpack_setup(model, loss_fn):
    """(extended copy of the model, extended loss) or None when BackPACK is missing."""
    try:
        from backpack import extend
    except ImportError:
        return None
    return extend(copy.deepcopy(model)), extend(copy.deepcopy(loss_fn))


def backpack_gradients(bp, x, y) -> torch.Tensor:
    from backpack import backpack
    from backpack.extensions import BatchGrad

    model, loss_fn = bp
    model.zero_grad(set_to_none=True)
    with backpack(BatchGrad()), warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Full backward hook")  # inputs need no grad: expected
        loss_fn(model(x), y).backward()
    # BatchGrad returns the rows of the mean loss, i.e. g_i / B
    return torch.cat([p.grad_batch.reshape(len(y), -1) for p in model.parameters()], dim=1) * len(y)


def plain_gradients(model, loss_fn, x, y, idx) -> torch.Tensor:
    """25 ordinary training-step gradients (loss.backward()), each copied into an L x D buffer."""
    params = list(model.parameters())
    out = torch.empty(len(idx), sum(p.numel() for p in params))
    for l, rows in enumerate(idx):
        model.zero_grad(set_to_none=True)
        loss_fn(model(x[rows]), y[rows]).backward()
        out[l] = torch.cat([p.grad.reshape(-1) for p in params])
    model.zero_grad(set_to_none=True)
    return out


def k_measurement(problem, x, y, idx):
    G = minibatch_gradients(problem, (x, y), indices=idx)
    return covariance_spectrum(G, k=5, batch_size=M, population=len(y)), G


# ----------------------------------------------------------------------------- helpers
def race(contenders: dict, reps: int) -> dict[str, tuple[float, float]]:
    """Best (wall, cpu) seconds of each contender over ``reps`` rounds, run in turn within each
    round so that a shared, busy machine disturbs them alike. cpu is the process CPU time of the
    fastest run (all threads; OpenMP spin-waits inflate it on a contended machine)."""
    best = {name: (float("inf"), float("inf")) for name in contenders}
    for _ in range(reps):
        for name, fn in contenders.items():
            t, c = time.perf_counter(), time.process_time()
            fn()
            best[name] = min(best[name], (time.perf_counter() - t, time.process_time() - c))
    return best


def _rss_kib() -> tuple[int, int]:
    status = Path("/proc/self/status").read_text()
    return tuple(int(re.search(rf"{k}:\s+(\d+)", status).group(1)) for k in ("VmRSS", "VmHWM"))


def memory_phase(name: str, threads: int) -> dict:
    """Run one phase after setup and return its peak RSS above the post-setup RSS (MiB)."""
    torch.set_num_threads(threads)
    model, x, y, _ = load(L * M)
    loss_fn = nn.CrossEntropyLoss()
    problem = Problem(model, loss_fn, [(x[:B], y[:B])])
    idx = minibatch_indices(len(y), batch_size=M, num_batches=L, generator=torch.Generator().manual_seed(0))
    bp = backpack_setup(model, loss_fn) if name == "backpack" else None
    if name == "backpack" and bp is None:
        return {"phase": name, "skipped": "backpack-for-pytorch not installed"}
    phases = {
        "vmap": lambda: per_example_gradients(problem, (x[:B], y[:B]), chunk_size=8),
        "loop": lambda: loop_gradients(model, loss_fn, x[:B], y[:B]),
        "backpack": lambda: backpack_gradients(bp, x[:B], y[:B]),
        "k_measure": lambda: k_measurement(problem, x, y, idx),
        "plain_25": lambda: plain_gradients(model, loss_fn, x, y, idx),
    }
    try:
        Path("/proc/self/clear_refs").write_text("5")  # reset the peak RSS to the current RSS
    except OSError as err:
        return {"phase": name, "skipped": f"cannot reset the peak RSS ({err})"}
    base, _ = _rss_kib()
    result = phases[name]()
    _, peak = _rss_kib()
    del result
    return {"phase": name, "peak_above_setup_mib": (peak - base) / 1024}


def run_memory(name: str, threads: int) -> dict:
    out = subprocess.run(
        [sys.executable, __file__, "--memory-phase", name, "--threads", str(threads)],
        capture_output=True, text=True, cwd=ROOT, timeout=600,
    )
    if out.returncode != 0:
        return {"phase": name, "skipped": f"subprocess failed: {out.stderr.strip().splitlines()[-1:]}"}
    return json.loads(out.stdout.strip().splitlines()[-1])


# ----------------------------------------------------------------------------- sections
def time_per_example(model, loss_fn, problem, xb, yb, chunks, reps) -> dict:
    ref = loop_gradients(model, loss_fn, xb, yb)
    contenders, errors = {}, {}
    for c in chunks:
        contenders[f"vmap (chunk {c})"] = lambda c=c: per_example_gradients(problem, (xb, yb), chunk_size=c)
    contenders["autograd loop"] = lambda: loop_gradients(model, loss_fn, xb, yb)
    bp = backpack_setup(model, loss_fn)
    if bp is not None:
        contenders["backpack BatchGrad"] = lambda: backpack_gradients(bp, xb, yb)
    for name, fn in contenders.items():  # warm-up, and the check against the loop
        errors[name] = float((fn() - ref).norm() / ref.norm())
    out = {name: {"seconds": t, "cpu_seconds": c, "rel_err_vs_loop": errors[name]} for name, (t, c) in race(contenders, reps).items()}
    if bp is None:
        out["backpack BatchGrad"] = {"skipped": "backpack-for-pytorch not installed (pip install --no-deps backpack-for-pytorch einops unfoldNd)"}
    return out


def time_k(model, loss_fn, problem, x, y, reps) -> dict:
    idx = minibatch_indices(len(y), batch_size=M, num_batches=L, generator=torch.Generator().manual_seed(0))
    spec, G = k_measurement(problem, x, y, idx)
    rows_err = float((G - plain_gradients(model, loss_fn, x, y, idx)).norm() / G.norm())
    best = race(
        {
            "k_measure": lambda: k_measurement(problem, x, y, idx),
            "plain_25": lambda: plain_gradients(model, loss_fn, x, y, idx),
            "gram_spectrum": lambda: covariance_spectrum(G, k=5, batch_size=M, population=len(y)),
        },
        reps,
    )
    (t_k, c_k), (t_p, c_p) = best["k_measure"], best["plain_25"]
    return {
        "k_measure_seconds": t_k, "plain_25_seconds": t_p, "ratio": t_k / t_p,
        "k_measure_cpu_seconds": c_k, "plain_25_cpu_seconds": c_p, "cpu_ratio": c_k / c_p,
        "gram_spectrum_seconds": best["gram_spectrum"][0], "rows_rel_err_vs_plain": rows_err,
        "lambda_1": spec.lambda_1, "lambda_star": spec.lambda_star, "trace": spec.trace, "L": L, "M": M, "N": len(y),
    }


def print_tables(threads, per_example, kmeas, memory) -> None:
    best_vmap = min(v["seconds"] for k, v in per_example.items() if k.startswith("vmap"))
    print(f"\n[{threads} thread(s)] per-example gradients of B={B} images")
    print(f"  {'method':<22}{'wall s':>8}{'cpu s':>8}{'x vmap':>8}{'rel err':>10}{'peak MiB':>10}")
    mem_of = {"vmap (chunk 8)": "vmap", "autograd loop": "loop", "backpack BatchGrad": "backpack"}
    for name, r in per_example.items():
        if "skipped" in r:
            print(f"  {name:<22}  skipped: {r['skipped']}")
            continue
        mem = memory.get(mem_of.get(name, ""), {}).get("peak_above_setup_mib")
        mem_s = f"{mem:10.0f}" if mem is not None else f"{'-':>10}"
        print(f"  {name:<22}{r['seconds']:8.2f}{r['cpu_seconds']:8.2f}{r['seconds'] / best_vmap:8.2f}{r['rel_err_vs_loop']:10.1e}{mem_s}")
    print(f"[{threads} thread(s)] K measurement, L={L} mini-batches of M={M} from N={kmeas['N']}")
    for name, phase in (("minibatch_gradients + spectrum", "k_measure"), ("25 x loss.backward()", "plain_25")):
        mem = memory.get(phase, {}).get("peak_above_setup_mib")
        mem_s = f"   peak {mem:6.0f} MiB" if mem is not None else ""
        print(f"  {name:<32}{kmeas[phase + '_seconds']:8.2f} s wall {kmeas[phase + '_cpu_seconds']:8.2f} s cpu{mem_s}")
    print(
        f"  ratio {kmeas['ratio']:.3f} wall, {kmeas['cpu_ratio']:.3f} cpu;  Gram + eigh {kmeas['gram_spectrum_seconds'] * 1e3:.0f} ms;"
        f"  rows vs loss.backward() rel err {kmeas['rows_rel_err_vs_plain']:.1e}"
    )
    print(f"  K^M (paper's scale): lambda_1 {kmeas['lambda_1']:.4g}  lambda_* {kmeas['lambda_star']:.4g}  Tr K^M {kmeas['trace']:.4g}")


# ----------------------------------------------------------------------------- main
def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="one round, one chunk size, no memory subprocesses")
    ap.add_argument("--threads", default="2", help="torch threads, or a comma list to time each (e.g. 1,2)")
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "noise.json"))
    ap.add_argument("--memory-phase", help=argparse.SUPPRESS)
    args = ap.parse_args()
    threads = [int(t) for t in str(args.threads).split(",")]
    if args.memory_phase:
        print(json.dumps(memory_phase(args.memory_phase, threads[0])))
        return

    reps = 1 if args.quick else 3
    chunks = [8] if args.quick else [8, 32, 128]
    model, x, y, source = load(L * M)
    loss_fn = nn.CrossEntropyLoss()
    xb, yb = x[:B], y[:B]
    problem = Problem(model, loss_fn, [(xb, yb)])
    D = problem.dim
    load_start = os.getloadavg()
    print(f"SimpleCNN D={D:,} (data: {source}), {len(y)} images, float32 CPU, load average {load_start[0]:.1f} on {os.cpu_count()} CPUs")

    memory = {"rows_L_x_D_mib": L * D * 4 / 2**20, "per_example_B_x_D_mib": B * D * 4 / 2**20}
    if not args.quick:
        for phase in ("vmap", "loop", "backpack", "k_measure", "plain_25"):
            memory[phase] = run_memory(phase, threads[-1])
    runs, targets = {}, {}
    for t in threads:
        torch.set_num_threads(t)
        per_example = time_per_example(model, loss_fn, problem, xb, yb, chunks, reps)
        kmeas = time_k(model, loss_fn, problem, x, y, reps)
        runs[f"threads_{t}"] = {"per_example": per_example, "k_measure": kmeas}
        print_tables(t, per_example, kmeas, memory)
        vmap = [v for k, v in per_example.items() if k.startswith("vmap")]
        others = [v for k, v in per_example.items() if not k.startswith("vmap") and "seconds" in v]
        targets[f"threads_{t}"] = {
            "per_example_no_slower_than_loop_and_backpack_wall": min(v["seconds"] for v in vmap) <= min(v["seconds"] for v in others),
            "per_example_no_slower_than_loop_and_backpack_cpu": min(v["cpu_seconds"] for v in vmap) <= min(v["cpu_seconds"] for v in others),
            "k_measure_at_most_1.3x_plain": kmeas["ratio"] <= 1.3,
        }
    k_mem = memory.get("k_measure", {}).get("peak_above_setup_mib")
    targets["k_measure_peak_over_L_x_D"] = None if k_mem is None else k_mem / memory["rows_L_x_D_mib"]
    print(f"\nmemory: L x D rows {memory['rows_L_x_D_mib']:.0f} MiB, B x D per-example rows {memory['per_example_B_x_D_mib']:.0f} MiB")
    print(f"targets: {json.dumps(targets)}")

    result = {
        "env": {
            "torch": torch.__version__, "python": platform.python_version(), "threads": threads,
            "cpus": os.cpu_count(), "loadavg_start": load_start, "loadavg_end": os.getloadavg(),
            "data": source, "D": D, "quick": args.quick, "rounds": reps, "B": B, "L": L, "M": M,
        },
        "runs": runs, "memory": memory, "targets": targets,
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
