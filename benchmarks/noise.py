"""Benchmark of ``sgdscope.noise``: the SimpleCNN of Break-Even (App. D) on real CIFAR-10 images and
the MLP 300-100 (App. D) on real Fashion-MNIST.

Measures, on the CPU in float32:

1. per-example gradients of 128 CIFAR-10 images: ``per_example_gradients`` (vmap, several chunk
   sizes) against a Python loop of autograd gradients and BackPACK's ``BatchGrad`` (when installed);
2. the full K measurement of Break-Even App. C, as the ``gradient_noise`` probe makes it
   (``minibatch_gradients`` of L = 25 mini-batches of M = 128 as column blocks, then
   ``covariance_spectrum`` of their Gram matrix and ||g|| / ||g_5|| of a gradient from the rows),
   against L plain gradients of the same mini-batches: the model in eval mode (as the measurement
   runs it), each mini-batch gathered, ``loss.backward()``; timed in interleaved pairs, the ratio
   is the median over the pairs; for both models;
3. (full run) the two ways ``minibatch_gradients`` can compute the rows, ``method="loop"``
   and ``method="vmap"``, against the same plain gradients: the evidence for the automatic choice;
4. (full run) peak memory of each, in a fresh subprocess (peak RSS reset after setup through
   ``/proc/self/clear_refs``), next to the L x D storage of the gradient rows.

Targets, judged from the numbers of the run and printed as "met" / "not met" (and written to the
JSON): per-example gradients no slower than the loop or BackPACK; K measurement <= 1.1x the L plain
gradients, on the SimpleCNN and on the MLP; memory O(L D): the K measurement's peak above the
plain gradients' peak (one mini-batch's activations and gradient) at most 1.25x the L x D rows.

    python benchmarks/noise.py [--quick] [--threads 2 | 1,2] [--out benchmarks/results/noise.json]

Data: ``sgdscope.zoo.load_dataset("cifar10")`` / ``("fashion_mnist")`` and ``build_model`` when the
zoo is importable, else 128+ images read with Pillow from
``../shared/data/cifar10-jpg/cifar10-jpg.tar.gz`` and the SimpleCNN defined here (no MLP section
then). Skips with a message when the data are absent.
"""
from __future__ import annotations

import argparse
import copy
import io
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import tarfile
import time
import warnings
from pathlib import Path

import torch
from torch import nn

from sgdscope import Problem
from sgdscope.noise import (
    covariance_spectrum, minibatch_gradients, minibatch_indices, per_example_gradients, projection_ratio, projection_ratio_from_rows,
)
from sgdscope.noise.gradients import _vmap_pays

from _common import print_targets, target

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("SGDSCOPE_DATA") or ROOT.parent / "shared" / "data")
TARBALL = DATA / "cifar10-jpg" / "cifar10-jpg.tar.gz"
L, M, B = 25, 128, 128  # Break-Even App. C: L = 25 mini-batch gradients of M = 128
K_TARGET = 1.1  # K measurement / L plain gradients (issue 12 §7)


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
    if not (DATA / "cifar10-jpg").exists():
        print(f"skip: CIFAR-10 is absent ({DATA / 'cifar10-jpg'})", file=sys.stderr)
        sys.exit(0)
    try:
        from sgdscope.zoo import build_model, load_dataset

        ds = load_dataset("cifar10", DATA / "cifar10-jpg", subset=n)
        return build_model("simplecnn", seed=0), ds.train.x.float(), ds.train.y, "sgdscope.zoo"
    except ImportError:
        pass
    if not TARBALL.is_file():
        print(f"skip: CIFAR-10 tarball {TARBALL} is absent", file=sys.stderr)
        sys.exit(0)
    torch.manual_seed(0)
    x, y = _read_tarball(n)
    return simplecnn(), x, y, "tarball"


def load_mlp() -> tuple[nn.Module, torch.Tensor, torch.Tensor] | None:
    """The MLP 300-100 (seed 0) and the 55,000 Fashion-MNIST training images, or None without the zoo
    or the data."""
    try:
        from sgdscope.zoo import build_model, load_dataset
    except ImportError:
        return None
    root = DATA / "fashion-mnist"
    if not root.exists():
        print(f"skip the MLP: Fashion-MNIST is absent ({root})", file=sys.stderr)
        return None
    ds = load_dataset("fashion_mnist", root, val_size=5000, seed=0)
    model = build_model("mlp", input_shape=(1, 28, 28), num_classes=10, widths=(300, 100), seed=0)
    return model, ds.train.x.float(), ds.train.y


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


def plain_gradients(model, loss_fn, x, y, idx, keep: bool = False) -> torch.Tensor | None:
    """L ordinary gradients of the mini-batches ``idx`` (L, M): the model in eval mode (as the K
    measurement runs it), each mini-batch gathered from (x, y), ``loss.backward()``. The reference
    the K measurement is timed against. ``keep=True`` also copies each into an (L, D) tensor (for
    the check of the rows, not timed)."""
    params = list(model.parameters())
    out = torch.empty(len(idx), sum(p.numel() for p in params)) if keep else None
    training = model.training
    model.eval()
    try:
        for l, rows in enumerate(idx):
            model.zero_grad(set_to_none=True)
            loss_fn(model(x[rows]), y[rows]).backward()
            if keep:
                torch.cat([p.grad.reshape(-1) for p in params], out=out[l])
    finally:
        model.zero_grad(set_to_none=True)
        model.train(training)
    return out


def k_measurement(problem, x, y, idx, g):
    """What the ``gradient_noise`` probe does: the L mini-batch gradients (column blocks), K^M's
    spectrum, and ||g|| / ||g_5|| of the step's gradient ``g`` (known to the probe) against the
    top-5 eigenvectors, from the rows. Returns (spectrum, ratio, rows)."""
    G = minibatch_gradients(problem, (x, y), indices=idx, blocks=True)
    spec = covariance_spectrum(G, k=5, batch_size=M, population=len(y), vectors=False)
    return spec, projection_ratio_from_rows(g, G, spec), G


def step_gradient(problem, x, y) -> torch.Tensor:
    """A training step's gradient (the probe's ``g``): the first M examples' mean-loss gradient."""
    return minibatch_gradients(problem, (x[:M], y[:M]), batch_size=M, num_batches=1)[0]


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


def paired(reference, contenders: dict, pairs: int) -> dict[str, dict]:
    """Each contender timed next to the reference, ``pairs`` times, in turn (the reference first in
    even pairs, second in odd ones), so that a busy machine disturbs both halves of a pair alike; the
    ratio is the median of the per-pair ratios (steadier than a ratio of separate medians on a
    shared machine), with the best-of ratio beside it. One untimed warm-up of everything first."""
    reference()
    for fn in contenders.values():
        fn()
    times = {name: ([], []) for name in contenders}  # (reference, contender) wall times
    cpu = {name: ([], []) for name in contenders}
    for i in range(pairs):
        for name, fn in contenders.items():
            for f, k in ((reference, 0), (fn, 1))[:: 1 if i % 2 == 0 else -1]:
                t, c = time.perf_counter(), time.process_time()
                f()
                times[name][k].append(time.perf_counter() - t)
                cpu[name][k].append(time.process_time() - c)
    out = {}
    for name, (ref, con) in times.items():
        ref_c, con_c = cpu[name]
        out[name] = {
            "seconds": statistics.median(con), "plain_seconds": statistics.median(ref),
            "ratio": statistics.median(b / a for a, b in zip(ref, con)), "ratio_best": min(con) / min(ref),
            "ratio_spread": [min(b / a for a, b in zip(ref, con)), max(b / a for a, b in zip(ref, con))],
            "cpu_ratio": statistics.median(b / a for a, b in zip(ref_c, con_c)), "pairs": pairs,
        }
    return out


def _rss_kib() -> tuple[int, int]:
    status = Path("/proc/self/status").read_text()
    return tuple(int(re.search(rf"{k}:\s+(\d+)", status).group(1)) for k in ("VmRSS", "VmHWM"))


def memory_phase(name: str, threads: int) -> dict:
    """Run one phase after setup and return its peak RSS above the post-setup RSS (MiB)."""
    torch.set_num_threads(threads)
    model, x, y, _ = load(L * M)
    loss_fn = nn.CrossEntropyLoss()
    problem = Problem(model, loss_fn, [(x[:B], y[:B])], bn_mode="eval")
    idx = minibatch_indices(len(y), batch_size=M, num_batches=L, generator=torch.Generator().manual_seed(0))
    bp = backpack_setup(model, loss_fn) if name == "backpack" else None
    if name == "backpack" and bp is None:
        return {"phase": name, "skipped": "backpack-for-pytorch not installed"}
    phases = {
        "vmap": lambda: per_example_gradients(problem, (x[:B], y[:B]), chunk_size=8),
        "loop": lambda: loop_gradients(model, loss_fn, x[:B], y[:B]),
        "backpack": lambda: backpack_gradients(bp, x[:B], y[:B]),
        "k_measure": lambda: k_measurement(problem, x, y, idx, step_gradient(problem, x, y)),
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
    """``memory_phase`` in a fresh process. glibc's malloc serves every allocation above 64 KiB by
    mmap there (``MALLOC_MMAP_THRESHOLD_``) and returns it on free, so the peak RSS follows the peak
    of live memory (with its default, adaptive threshold the peak varied by about 30-100 MiB
    between identical runs)."""
    out = subprocess.run(
        [sys.executable, __file__, "--memory-phase", name, "--threads", str(threads)],
        capture_output=True, text=True, cwd=ROOT, timeout=600, env={**os.environ, "MALLOC_MMAP_THRESHOLD_": "65536"},
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


def time_k(label, model, loss_fn, x, y, pairs, paths_pairs) -> dict:
    """The K measurement against L plain gradients of the same mini-batches (``pairs`` interleaved
    pairs); with ``paths_pairs`` > 0 also the rows alone by each method against the same reference."""
    problem = Problem(model, loss_fn, [(x[:M], y[:M])], bn_mode="eval")
    idx = minibatch_indices(len(y), batch_size=M, num_batches=L, generator=torch.Generator().manual_seed(0))
    g = step_gradient(problem, x, y)
    spec, g_ratio, G = k_measurement(problem, x, y, idx, g)
    G = torch.cat(G, dim=1)
    plain_rows = plain_gradients(model, loss_fn, x, y, idx, keep=True)
    rows_err = float((G - plain_rows).norm() / plain_rows.norm())
    del plain_rows
    full = covariance_spectrum(G, k=5, batch_size=M, population=len(y))  # with the eigenvectors
    ratio_err = abs(float(g_ratio) / float(projection_ratio(g, full.vectors)) - 1)
    auto = "vmap" if _vmap_pays(problem) else "loop"
    plain = lambda: plain_gradients(model, loss_fn, x, y, idx)
    load_before = os.getloadavg()[0]
    res = paired(plain, {"k_measure": lambda: k_measurement(problem, x, y, idx, g)}, pairs)["k_measure"]
    res["loadavg"] = [load_before, os.getloadavg()[0]]  # 1-minute load averages around the timing
    spectrum = {}
    for name, fn in (("gram_spectrum_seconds", lambda: projection_ratio_from_rows(g, G, covariance_spectrum(G, k=5, vectors=False))),
                     ("with_vectors_seconds", lambda: projection_ratio(g, covariance_spectrum(G, k=5).vectors))):
        t0 = time.perf_counter()
        for _ in range(3):
            fn()
        spectrum[name] = (time.perf_counter() - t0) / 3
    out = {
        "model": label, "D": problem.dim, "auto_method": auto, **res, **spectrum,
        "rows_rel_err_vs_plain": rows_err, "g_ratio_rel_diff_vs_vectors": ratio_err,
        "lambda_1": spec.lambda_1, "lambda_star": spec.lambda_star, "trace": spec.trace, "L": L, "M": M, "N": len(y),
    }
    if paths_pairs:
        rows = {m: (lambda m=m: minibatch_gradients(problem, (x, y), indices=idx, method=m, blocks=True)) for m in ("loop", "vmap")}
        out["rows_by_method"] = paired(plain, rows, paths_pairs)
        other = minibatch_gradients(problem, (x, y), indices=idx, method="loop" if auto == "vmap" else "vmap")
        out["methods_rel_diff"] = float((other - G).norm() / G.norm())
    return out


def print_per_example(threads, per_example, memory) -> None:
    best_vmap = min(v["seconds"] for k, v in per_example.items() if k.startswith("vmap"))
    print(f"\n[{threads} thread(s)] per-example gradients of B={B} CIFAR-10 images (SimpleCNN)")
    print(f"  {'method':<22}{'wall s':>8}{'cpu s':>8}{'x vmap':>8}{'rel err':>10}{'peak MiB':>10}")
    mem_of = {"vmap (chunk 8)": "vmap", "autograd loop": "loop", "backpack BatchGrad": "backpack"}
    for name, r in per_example.items():
        if "skipped" in r:
            print(f"  {name:<22}  skipped: {r['skipped']}")
            continue
        mem = memory.get(mem_of.get(name, ""), {}).get("peak_above_setup_mib")
        mem_s = f"{mem:10.0f}" if mem is not None else f"{'-':>10}"
        print(f"  {name:<22}{r['seconds']:8.2f}{r['cpu_seconds']:8.2f}{r['seconds'] / best_vmap:8.2f}{r['rel_err_vs_loop']:10.1e}{mem_s}")


def print_k(threads, k, memory) -> None:
    print(f"[{threads} thread(s)] K measurement, {k['model']} (D={k['D']:,}), L={L} mini-batches of M={M} from N={k['N']:,}; "
          f"rows by {k['auto_method']!r} (auto)")
    mem = memory.get("k_measure", {}) if k["model"] == "SimpleCNN" else {}
    mem_p = memory.get("plain_25", {}) if k["model"] == "SimpleCNN" else {}
    for name, sec, m in (("minibatch_gradients + spectrum", k["seconds"], mem), (f"{L} x loss.backward()", k["plain_seconds"], mem_p)):
        peak = m.get("peak_above_setup_mib")
        print(f"  {name:<32}{sec:8.3f} s wall (median){f'   peak {peak:6.0f} MiB' if peak is not None else ''}")
    lo, hi = k["ratio_spread"]
    print(f"  ratio {k['ratio']:.3f} (median of {k['pairs']} pairs, range {lo:.2f}-{hi:.2f}; best-of {k['ratio_best']:.3f}; cpu {k['cpu_ratio']:.3f});"
          f"  rows vs loss.backward() rel err {k['rows_rel_err_vs_plain']:.1e}")
    print(f"  Gram + eigh + g ratio from the rows {k['gram_spectrum_seconds'] * 1e3:.1f} ms (with the eigenvectors instead: "
          f"{k['with_vectors_seconds'] * 1e3:.1f} ms; the two ratios differ by {k['g_ratio_rel_diff_vs_vectors']:.1e})")
    print(f"  K^M (paper's scale): lambda_1 {k['lambda_1']:.4g}  lambda_* {k['lambda_star']:.4g}  Tr K^M {k['trace']:.4g}")
    for method, r in k.get("rows_by_method", {}).items():
        print(f"  rows alone by method={method!r}: {r['seconds']:.3f} s, {r['ratio']:.2f}x the plain gradients (median of {r['pairs']} pairs)")
    if "methods_rel_diff" in k:
        print(f"  loop vs vmap rows rel diff {k['methods_rel_diff']:.1e}")


# ----------------------------------------------------------------------------- main
def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true",
                    help="per-example: one round, one chunk size; K: 5 pairs (SimpleCNN), 11 (MLP); no method comparison, no memory subprocesses")
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
    cnn_pairs, mlp_pairs = (5, 11) if args.quick else (9, 31)
    paths_pairs = {"SimpleCNN": 0 if args.quick else 3, "MLP": 0 if args.quick else 11}
    model, x, y, source = load(L * M)
    mlp = load_mlp()
    loss_fn = nn.CrossEntropyLoss()
    xb, yb = x[:B], y[:B]
    problem = Problem(model, loss_fn, [(xb, yb)], bn_mode="eval")
    D = problem.dim
    load_start = os.getloadavg()
    print(f"SimpleCNN D={D:,} (data: {source}), {len(y)} images; "
          f"{'MLP 300-100 on Fashion-MNIST' if mlp else 'no MLP'}; float32 CPU, load average {load_start[0]:.1f} on {os.cpu_count()} CPUs", flush=True)

    memory = {"rows_L_x_D_mib": L * D * 4 / 2**20, "per_example_B_x_D_mib": B * D * 4 / 2**20}
    if not args.quick:
        for phase in ("vmap", "loop", "backpack", "k_measure", "plain_25"):
            memory[phase] = run_memory(phase, threads[-1])
    runs, targets = {}, []
    for t in threads:
        torch.set_num_threads(t)
        per_example = time_per_example(model, loss_fn, problem, xb, yb, chunks, reps)
        print_per_example(t, per_example, memory)
        kmeas = {"SimpleCNN": time_k("SimpleCNN", model, loss_fn, x, y, cnn_pairs, paths_pairs["SimpleCNN"])}
        print_k(t, kmeas["SimpleCNN"], memory)
        if mlp is not None:
            kmeas["MLP"] = time_k("MLP", *mlp[:1], loss_fn, *mlp[1:], mlp_pairs, paths_pairs["MLP"])
            print_k(t, kmeas["MLP"], memory)
        runs[f"threads_{t}"] = {"per_example": per_example, "k_measure": kmeas}
        vmap = [v for k, v in per_example.items() if k.startswith("vmap")]
        others = [v for k, v in per_example.items() if not k.startswith("vmap") and "seconds" in v]
        for clock in ("seconds", "cpu_seconds"):
            best, rival = min(v[clock] for v in vmap), min(v[clock] for v in others)
            targets.append(target(
                f"per_example_no_slower_than_loop_and_backpack_{'wall' if clock == 'seconds' else 'cpu'}_t{t}", best / rival, 1.0, best <= rival,
                f"per-example gradients by vmap no slower than the loop and BackPACK ({'wall' if clock == 'seconds' else 'cpu'}, {t} thread(s)): "
                f"{best:.2f} s against {rival:.2f} s"))
        for label, k in kmeas.items():
            busy = max(k["loadavg"]) > t + 1  # other processes competed for the CPUs during the timing
            targets.append(target(
                f"k_measure_at_most_{K_TARGET}x_plain_{label}_t{t}", k["ratio"], K_TARGET, k["ratio"] <= K_TARGET,
                f"K measurement <= {K_TARGET}x {L} plain gradients, {label} ({t} thread(s)): {k['ratio']:.3f}x "
                f"(median of {k['pairs']} pairs, range {k['ratio_spread'][0]:.2f}-{k['ratio_spread'][1]:.2f})"
                + (f"; MACHINE BUSY (load average {max(k['loadavg']):.1f} on {os.cpu_count()} CPUs): unreliable, repeat" if busy else "")))
            targets[-1]["machine_busy"] = busy
    k_mem, p_mem = (memory.get(ph, {}).get("peak_above_setup_mib") for ph in ("k_measure", "plain_25"))
    extra = None if k_mem is None or p_mem is None else (k_mem - p_mem) / memory["rows_L_x_D_mib"]
    targets.append(target(
        "k_measure_memory_O_LD", extra, 1.25, None if extra is None else extra <= 1.25,
        "memory O(L D): the K measurement's peak above the plain gradients' peak <= 1.25x the L x D rows "
        "(the rows and a few D-vectors), SimpleCNN: "
        + ("not measured (--quick)" if extra is None else
           f"{k_mem:.0f} - {p_mem:.0f} MiB = {extra:.2f}x the {memory['rows_L_x_D_mib']:.0f} MiB rows")))
    print(f"\nmemory: L x D rows {memory['rows_L_x_D_mib']:.0f} MiB, B x D per-example rows {memory['per_example_B_x_D_mib']:.0f} MiB")
    print_targets(targets)

    result = {
        "env": {
            "torch": torch.__version__, "python": platform.python_version(), "threads": threads,
            "cpus": os.cpu_count(), "loadavg_start": load_start, "loadavg_end": os.getloadavg(),
            "data": source, "D": D, "quick": args.quick, "rounds": reps, "B": B, "L": L, "M": M,
            "date": time.strftime("%Y-%m-%d %H:%M"),
        },
        "runs": runs, "memory": memory, "targets": {tg["name"]: tg for tg in targets},
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
