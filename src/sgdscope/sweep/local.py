"""The ``local`` executor: N worker processes on this machine, the cores shared out.

Each point runs in a fresh Python process (``python -m sgdscope.sweep.worker``: no state shared
with the driver or the other points, and no re-import of the caller's script) with ``threads``
torch threads. A worker that dies (killed, out of memory) marks its run
``interrupted``; the other workers go on, and running the sweep again resumes it.
"""
from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable, Sequence

from ..store import is_run_dir, mark_status, read_status
from .worker import LOG_FILE, settle

__all__ = ["run_local"]


def run_local(tasks: Sequence, *, workers: int, threads: int | None, on_change: Callable[[dict], None] | None = None,
              poll_s: float = 0.2) -> dict[str, str]:
    """Run ``tasks`` (objects with ``name``, ``config``, ``run_dir``) on ``workers`` processes;
    returns ``{name: final state}``. ``on_change(states)`` is called whenever a run starts or ends."""
    pending = list(tasks)
    running: dict[str, tuple] = {}
    states: dict[str, str] = {t.name: "pending" for t in tasks}
    try:
        while pending or running:
            while pending and len(running) < workers:
                task = pending.pop(0)
                running[task.name] = (_start(task, threads), task)
                states[task.name] = "running"
                if on_change:
                    on_change(states)
            time.sleep(poll_s)
            for name, (proc, task) in list(running.items()):
                if proc.poll() is None:
                    continue
                del running[name]
                states[name] = settle(task.run_dir, proc.returncode)
                if on_change:
                    on_change(states)
    finally:
        for proc, task in running.values():  # the driver is interrupted: stop the workers, keep their runs resumable
            proc.terminate()
            proc.wait()
            if is_run_dir(task.run_dir) and read_status(task.run_dir).get("state") == "running":
                mark_status(task.run_dir, "interrupted", "the sweep was interrupted")
    return states


def _start(task, threads: int | None) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "sgdscope.sweep.worker", str(task.run_dir)]
    if threads:
        cmd += ["--threads", str(threads)]
    Path(task.run_dir).mkdir(parents=True, exist_ok=True)
    with open(Path(task.run_dir) / LOG_FILE, "a", encoding="utf-8") as log:  # anything the process prints outside train
        proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=log, stderr=subprocess.STDOUT, text=True)
    proc.stdin.write(json.dumps(task.config))
    proc.stdin.close()
    return proc
