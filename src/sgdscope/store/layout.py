"""The run directory format: file names, and finding the parts of a run on disk.

One run is one directory::

    RUN_DIR/
      config.toml                  resolved config
      probes.json                  {instance name: {"type": probe type}} of the probes that write
      metrics.parquet/             a parquet dataset: part-00000000.parquet, part-00000001...
                                   (step int64, epoch float64, probe str, name str, value float64)
                                   pd.read_parquet / pq.read_table of the folder: the full table
      arrays/PROBE/NAME/step_00000123.npy   one array per (probe, name, step)
      checkpoints/step_00000123/   model.safetensors (model tensors; metadata: step, key order)
                                   + state.pt (torch.save of plain containers, tensors and numbers:
                                   optimizer, RNG, counters; loads with weights_only=True)
      status.json                  {"state", "step", "epoch", "updated", "message", "host", "pid", ...}
      .lock                        the writer's OS file lock (flock; "host pid" inside): one writer at a time
      metrics.parquet/.damaged-part-*   a part a resume found unreadable, set aside (kept, never read)

PROBE is the probe's instance name (its label); ``probes.json`` maps it to the probe type of
:mod:`sgdscope.quantities`. PROBE and NAME are percent-encoded in paths
(``urllib.parse.quote``), so any string is safe. This module imports no third-party package
but the standard library: the pyarrow schema is built on first use.
"""
from __future__ import annotations

import os
import re
from functools import lru_cache
from pathlib import Path
from typing import Iterator
from urllib.parse import quote

__all__ = [
    "CONFIG", "PROBES", "METRICS", "ARRAYS", "CHECKPOINTS", "STATUS", "MODEL_FILE", "STATE_FILE",
    "STATES", "COLUMNS", "metrics_schema", "is_run_dir", "find_runs", "metric_parts", "array_dir",
    "array_files", "checkpoint_dir", "checkpoint_steps",
]

CONFIG, PROBES, METRICS, ARRAYS, CHECKPOINTS, STATUS = (
    "config.toml", "probes.json", "metrics.parquet", "arrays", "checkpoints", "status.json",
)
MODEL_FILE, STATE_FILE = "model.safetensors", "state.pt"
STATES = ("running", "done", "diverged", "failed", "interrupted")
COLUMNS = ("step", "epoch", "probe", "name", "value")
STEP_DIR = re.compile(r"^step_(\d+)$")
PART_FILE = re.compile(r"^part-(\d+)\.parquet$")
ARRAY_FILE = re.compile(r"^step_(\d+)\.npy$")


@lru_cache(maxsize=1)
def metrics_schema():
    """The pyarrow schema of the metric rows (imports pyarrow on first use)."""
    import pyarrow as pa

    return pa.schema([
        ("step", pa.int64()), ("epoch", pa.float64()), ("probe", pa.string()),
        ("name", pa.string()), ("value", pa.float64()),
    ])


def is_run_dir(path: str | os.PathLike) -> bool:
    """Whether ``path`` holds a run (``status.json``, ``config.toml`` or ``metrics.parquet``)."""
    path = Path(path)
    return path.is_dir() and any((path / f).exists() for f in (STATUS, CONFIG, METRICS))


def find_runs(root: str | os.PathLike) -> list[Path]:
    """The run directories at or below ``root``, sorted (not looking into runs or hidden dirs)."""
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: no such directory (expected a run or a folder of runs)")
    found = []
    for dirpath, dirnames, _ in os.walk(root):
        if is_run_dir(dirpath):
            found.append(Path(dirpath))
            dirnames[:] = []
        else:
            dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
    return sorted(found)


def metric_parts(run_dir: str | os.PathLike) -> list[tuple[int, Path]]:
    """(index, file) of the parts of ``metrics.parquet/``, in logging order."""
    folder = Path(run_dir) / METRICS
    if not folder.is_dir():
        return []
    return sorted((int(m.group(1)), p) for p in folder.iterdir() if (m := PART_FILE.match(p.name)))


def array_dir(run_dir: str | os.PathLike, probe: str, name: str) -> Path:
    """Where the arrays of (probe, name) live."""
    return Path(run_dir) / ARRAYS / quote(probe, safe="") / quote(name, safe="")


def array_files(run_dir: str | os.PathLike, probe: str, name: str) -> Iterator[tuple[int, Path]]:
    """(step, file) for every stored array of (probe, name), in no particular order."""
    folder = array_dir(run_dir, probe, name)
    if folder.is_dir():
        for file in folder.iterdir():
            m = ARRAY_FILE.match(file.name)
            if m:
                yield int(m.group(1)), file


def checkpoint_dir(run_dir: str | os.PathLike, step: int) -> Path:
    return Path(run_dir) / CHECKPOINTS / f"step_{step:08d}"


def checkpoint_steps(run_dir: str | os.PathLike) -> list[int]:
    """Sorted steps of the complete checkpoints of a run."""
    folder = Path(run_dir) / CHECKPOINTS
    if not folder.is_dir():
        return []
    return sorted(int(m.group(1)) for p in folder.iterdir() if (m := STEP_DIR.match(p.name)))
