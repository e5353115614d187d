"""One point of a sweep, run in the process that calls :func:`run_point` (a local worker or a Ray task).

The point's progress lines, warnings and any traceback go to ``RUN_DIR/log.txt`` (appended, one
header line per attempt), not to the sweep's terminal. A point whose folder already holds a run
is resumed from its last checkpoint, so a retried task (a worker that died) loses nothing that
was checkpointed; the driver clears a failed run before it retries it.
"""
from __future__ import annotations

import contextlib
import os
import socket
import traceback
from datetime import datetime, timezone
from pathlib import Path

import torch

from ..run.trainer import train
from ..store import is_run_dir, mark_status, read_status

__all__ = ["run_point", "settle", "LOG_FILE"]

LOG_FILE = "log.txt"


def run_point(config: dict, run_dir: str | os.PathLike, *, threads: int | None = None) -> str:
    """Train (or resume) the run of ``config`` in ``run_dir`` with ``threads`` torch threads;
    returns its final state (``done``, ``diverged``, ``failed``, ``interrupted``)."""
    if threads:
        torch.set_num_threads(int(threads))
    run_dir = Path(run_dir)
    resume = is_run_dir(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    with open(run_dir / LOG_FILE, "a", encoding="utf-8", buffering=1) as log, \
            contextlib.redirect_stdout(log), contextlib.redirect_stderr(log):
        now = datetime.now(timezone.utc).isoformat(timespec="seconds")
        print(f"--- {now} {socket.gethostname()} pid {os.getpid()}: {'resuming' if resume else 'starting'} "
              f"{run_dir.name} ({torch.get_num_threads()} threads)")
        try:
            train(config, run_dir=run_dir, resume=resume, progress="lines")
        except Exception:  # recorded in the run's status by train; the traceback goes to the log
            traceback.print_exc()
    return read_status(run_dir)["state"] if is_run_dir(run_dir) else "failed"


def settle(run_dir: str | os.PathLike, exitcode: int | None = None) -> str:
    """The state of a point whose worker has ended: a run still "running" had its process die
    without a word (SIGKILL, out of memory) and is marked "interrupted" (resumable)."""
    if not is_run_dir(run_dir):
        return "failed"
    state = read_status(run_dir).get("state", "failed")
    if state == "running":
        how = "died" if exitcode is None else f"died (exit code {exitcode})"
        mark_status(run_dir, "interrupted", f"its worker process {how}; run the sweep again to resume it")
        return "interrupted"
    return state


def main(argv: list[str] | None = None) -> int:
    """``python -m sgdscope.sweep.worker RUN_DIR [--threads N]`` with the point's config as JSON on
    standard input: how the local executor starts a point in its own process."""
    import argparse
    import json
    import sys

    parser = argparse.ArgumentParser(prog="python -m sgdscope.sweep.worker")
    parser.add_argument("run_dir")
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args(argv)
    state = run_point(json.load(sys.stdin), args.run_dir, threads=args.threads)
    return 0 if state in ("done", "diverged") else 1


if __name__ == "__main__":
    raise SystemExit(main())
