"""Shared plumbing for the benchmark scripts: real data, timing, tables, JSON."""
from __future__ import annotations

import json
import os
import platform
import statistics
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("SGDSCOPE_DATA") or ROOT.parent / "shared" / "data")
RESULTS = ROOT / "benchmarks" / "results"


def require_data(folder: str) -> Path:
    path = SHARED_DATA / folder
    if not path.exists():
        raise SystemExit(f"benchmark needs the real data at {path} (../shared/data beside the repository, or $SGDSCOPE_DATA)")
    return path


def sync(device) -> None:
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize()


def median_time(fn, repeats: int = 5, warmup: int = 1, device="cpu") -> float:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        sync(device)
        t0 = time.perf_counter()
        fn()
        sync(device)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def paired_times(f, g, repeats: int = 7, device="cpu") -> tuple[float, float, float]:
    """Median times of ``f`` and ``g`` timed alternately (so both see the same machine load) and
    the median of the per-pair ratios g/f, which is steadier than a ratio of medians."""
    f(), g()
    tf, tg = [], []
    for _ in range(repeats):
        for fn, out in ((f, tf), (g, tg)):
            sync(device)
            t0 = time.perf_counter()
            fn()
            sync(device)
            out.append(time.perf_counter() - t0)
    return statistics.median(tf), statistics.median(tg), statistics.median(b / a for a, b in zip(tf, tg))


def table(rows: list[dict], columns: list[str]) -> str:
    cells = [[str(c) for c in columns]] + [[_fmt(r.get(c, "")) for c in columns] for r in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(columns))]
    lines = ["  ".join(v.ljust(w) for v, w in zip(row, widths)) for row in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def _fmt(v) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)


def target(name: str, value, threshold, met: bool | None, text: str) -> dict:
    """One target judged from the numbers of this run: ``met`` True / False, or None where the run
    did not measure it; ``verdict`` is the word printed ("met", "not met", "not measured")."""
    verdict = "not measured" if met is None else ("met" if met else "not met")
    return {"name": name, "value": value, "threshold": threshold, "met": met, "verdict": verdict, "text": text}


def print_targets(targets: list[dict]) -> None:
    print("\ntargets (judged from this run's numbers):")
    for t in targets:
        print(f"  {t['verdict']:>12}: {t['text']}")


def write_json(name: str, payload: dict) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    payload = {"machine": {"python": platform.python_version(), "torch": torch.__version__, "threads": torch.get_num_threads(),
                           "processor": platform.processor() or platform.machine()}, **payload}
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps(payload, indent=2, default=float))
    return path
