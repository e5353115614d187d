"""Running a sweep: its folder, what to run again, the executor, and one line of progress.

The sweep folder's layout is in :mod:`.folder`. Running the same sweep again resumes it: finished runs are skipped, interrupted ones continue
from their checkpoints, failed and diverged ones are listed and run again only with
``retry_failed`` (from scratch). A changed base config or grid is an error naming what changed,
unless ``extend`` (which may only add grid values or seeds).
"""
from __future__ import annotations

import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from ..run.config import ConfigError, check_run_name, read_config_file
from ..store._lock import FolderLock
from ..store import _toml, is_run_dir, read_status
from ..store.writer import clear_run
from ..store.sweeps import MARKER, RUNS, write_points
from .local import run_local
from .ray_executor import run_ray
from .spec import SweepSpec, spec_from_table

__all__ = ["run_sweep", "Task", "EXECUTORS", "default_out"]

EXECUTORS = ("local", "ray")


@dataclass(frozen=True)
class Task:
    name: str
    config: dict
    run_dir: Path


def default_out(base: dict) -> Path:
    """``OUT/NAME-sweep`` from the base config's ``out`` and ``name`` (one folder name, as a run's)."""
    return Path(base.get("out", "runs")) / f"{check_run_name(base.get('name', 'run'))}-sweep"


def _prepare(out: Path, spec: SweepSpec, extend: bool) -> None:
    out.mkdir(parents=True, exist_ok=True)
    if (out / MARKER).exists():
        stored = _toml.read_toml(out / MARKER)
        changed = spec.diff(stored)
        if changed and not (extend and spec.extends(stored)):
            hint = ("--extend may only add grid values or seeds (the base config and the existing points stay)" if extend
                    else "pass --extend to add points, or choose another --out")
            raise ConfigError(f"{out}: this sweep differs from the one stored in {MARKER}: {'; '.join(changed)}; {hint}")
    _toml.write_toml(out / MARKER, spec.as_table())


class _Line:
    """One plain line of sweep progress on each change (at most one every ``gap_s``) and at the end."""

    def __init__(self, name: str, total: int, skipped: dict, *, quiet: bool, gap_s: float = 2.0, stream=None):
        self.name, self.total, self.skipped, self.quiet, self.gap_s = name, total, skipped, quiet, gap_s
        self.stream = sys.stderr if stream is None else stream
        self.start = time.monotonic()
        self.last = -float("inf")
        self.printed = ""
        self.finished: list[float] = []

    def __call__(self, states: dict, final: bool = False) -> None:
        now = time.monotonic()
        counts = {s: sum(v == s for v in states.values()) for s in ("done", "running", "failed", "diverged", "interrupted")}
        ended = sum(counts[s] for s in ("done", "failed", "diverged", "interrupted"))
        while len(self.finished) < ended:
            self.finished.append(now - self.start)
        if self.quiet or (not final and now - self.last < self.gap_s):
            return
        left = len(states) - ended
        eta = "?" if not ended else f"{(now - self.start) / ended * left:.0f}s"
        skipped = f", {len(self.skipped)} failed before (not rerun: --retry-failed)" if self.skipped else ""
        text = (f"[sweep {self.name}] {counts['done']}/{self.total} done, {counts['running']} running, {counts['failed']} "
                f"failed, {counts['diverged']} diverged, {counts['interrupted']} interrupted{skipped}; ETA "
                f"{eta if not final else '0s'}")
        if final and text == self.printed:  # the last change already said it
            return
        self.last, self.printed = now, text
        print(text, file=self.stream, flush=True)


def run_sweep(config, *, grid: dict | None = None, seeds: list[int] | None = None, out=None, executor: str = "local",
              workers: int = 1, threads: int | None = None, address: str | None = None, retry_failed: bool = False,
              extend: bool = False, num_cpus: float = 1, num_gpus: float = 0, quiet: bool = False) -> list[dict]:
    """Run (or resume) the sweep of ``config`` (a TOML path or a raw config dict, with an optional
    ``[sweep]`` table) over ``grid`` (dotted key -> values) and ``seeds``; returns one row per
    point: name, the varied values, state, folder.

    ``executor``: ``"local"`` (``workers`` processes here, ``threads`` torch threads each, default
    the cores shared out) or ``"ray"`` (each point a Ray task with ``num_cpus`` / ``num_gpus``;
    ``address="auto"`` joins a running cluster; the folder must be on storage every node sees)."""
    if executor not in EXECUTORS:
        raise ConfigError(f"executor must be one of {EXECUTORS}, got {executor!r}")
    if workers < 1:
        raise ConfigError(f"workers must be >= 1, got {workers}")
    raw = read_config_file(config) if isinstance(config, (str, os.PathLike)) else dict(config)
    spec = spec_from_table(raw, grid, seeds)
    out = Path(out) if out is not None else default_out(spec.base)
    points = spec.points(out / RUNS)  # every point resolves before anything is written
    if out.is_symlink():
        raise ConfigError(f"{out} is a symbolic link (to {os.readlink(out)}); a sweep is written only to a real folder")
    out.mkdir(parents=True, exist_ok=True)
    with FolderLock(out, "sweep"):  # one driver per sweep folder; the OS frees it when the driver dies
        _prepare(out, spec, extend)
        return _run(out, points, executor=executor, workers=workers, threads=threads, address=address,
                    retry_failed=retry_failed, num_cpus=num_cpus, num_gpus=num_gpus, quiet=quiet)


def _run(out: Path, points, *, executor, workers, threads, address, retry_failed, num_cpus, num_gpus,
         quiet) -> list[dict]:
    threads = threads or max(1, (os.cpu_count() or 1) // workers)
    todo, skipped, states = [], {}, {}
    for p in points:
        run_dir = out / RUNS / p.name
        state = read_status(run_dir).get("state", "running") if is_run_dir(run_dir) else "new"
        if state in ("failed", "diverged") and retry_failed:
            clear_run(run_dir)
            state = "new"
        states[p.name] = state
        if state in ("failed", "diverged"):
            skipped[p.name] = state
        elif state != "done":
            todo.append(Task(p.name, p.config, run_dir))
    line = _Line(out.name, len(points), skipped, quiet=quiet)
    live = {t.name: "pending" for t in todo}

    def changed(now: dict) -> None:
        live.update(now)
        line({**{n: s for n, s in states.items() if n not in live}, **live})
        write_points(out, points, {**states, **live})

    if todo:
        if executor == "local":
            run_local(todo, workers=workers, threads=threads, on_change=changed)
        else:
            run_ray(todo, sweep_dir=out, workers=workers, threads=threads, address=address, num_cpus=num_cpus,
                    num_gpus=num_gpus, on_change=changed)
    final = {p.name: (read_status(out / RUNS / p.name).get("state") if is_run_dir(out / RUNS / p.name) else "failed")
             for p in points}
    write_points(out, points, final)
    line(final, final=True)
    return [{"name": p.name, **p.values, "state": final[p.name], "path": str(out / RUNS / p.name)} for p in points]


