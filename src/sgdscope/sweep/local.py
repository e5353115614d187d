"""The ``local`` executor: N worker processes on this machine, the cores shared out.

Each worker is a long-lived Python process (:func:`sgdscope.sweep.worker.serve`: no state shared
with the driver, and no re-import of the caller's script) that runs one point after another with
``threads`` torch threads, so the start of Python and torch is paid once per worker, not per
point. A worker that dies (killed, out of memory) marks its run ``interrupted`` and is replaced;
the other workers go on, and running the sweep again resumes that run.
"""
from __future__ import annotations

import json
import queue
import subprocess
import sys
import threading
from pathlib import Path
from typing import Callable, Sequence

from ..store import is_run_dir, mark_status, read_status
from .worker import settle

__all__ = ["run_local"]


class _Worker:
    """One worker process, the task it runs (or None) and a thread that forwards its answers."""

    def __init__(self, threads: int | None, answers: queue.Queue, log: Path):
        cmd = [sys.executable, "-c", "from sgdscope.sweep.worker import main; raise SystemExit(main())"]
        cmd += ["--threads", str(threads)] if threads else []
        with open(log, "a", encoding="utf-8") as out:  # anything printed outside a point's own log
            self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=out, text=True,
                                         bufsize=1)
        self.task = None
        threading.Thread(target=self._forward, args=(answers,), daemon=True).start()

    def _forward(self, answers: queue.Queue) -> None:
        for line in self.proc.stdout:
            try:
                answers.put((self, json.loads(line)))
            except ValueError:  # not an answer (something printed below Python): ignore it
                pass

    def give(self, task) -> None:
        self.task = task
        Path(task.run_dir).mkdir(parents=True, exist_ok=True)
        self.proc.stdin.write(json.dumps({"config": task.config, "run_dir": str(task.run_dir)}) + "\n")
        self.proc.stdin.flush()

    def dead(self) -> bool:
        return self.proc.poll() is not None


def run_local(tasks: Sequence, *, workers: int, threads: int | None, on_change: Callable[[dict], None] | None = None,
              poll_s: float = 0.2, log: Path | None = None) -> dict[str, str]:
    """Run ``tasks`` (objects with ``name``, ``config``, ``run_dir``) on ``workers`` processes;
    returns ``{name: final state}``. ``on_change(states)`` is called whenever a run starts or ends.
    ``log``: where the workers' own output goes (default: ``workers.log`` beside the run folders' parent)."""
    pending = list(tasks)
    states: dict[str, str] = {t.name: "pending" for t in tasks}
    if not pending:
        return states
    log = log or Path(pending[0].run_dir).parent.parent / "workers.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    answers: queue.Queue = queue.Queue()
    pool = [_Worker(threads, answers, log) for _ in range(min(workers, len(pending)))]

    try:
        dirty = False  # one notice per round (the runs that ended and those started), not a line per change
        while pending or any(w.task for w in pool):
            for w in pool:
                if w.task is None and pending and not w.dead():
                    w.give(pending.pop(0))
                    states[w.task.name], dirty = "running", True
            if dirty and on_change:
                on_change(states)
            dirty = False
            try:
                worker, answer = answers.get(timeout=poll_s)
                if answer.get("error"):  # e.g. a refused checkpoint: the run's status is left as it was
                    print(f"[sweep] {worker.task.name}: {answer['error']} (log: {Path(worker.task.run_dir) / 'log.txt'})",
                          file=sys.stderr, flush=True)
                states[worker.task.name], dirty = settle(worker.task.run_dir, 0), True
                worker.task = None
            except queue.Empty:
                pass
            for i, w in enumerate(pool):
                if w.dead() and answers.empty():
                    if w.task is not None:  # it died inside a point: the run is interrupted
                        states[w.task.name], dirty = settle(w.task.run_dir, w.proc.returncode), True
                        w.task = None
                    if pending:
                        pool[i] = _Worker(threads, answers, log)
        if dirty and on_change:
            on_change(states)
    finally:
        for w in pool:
            if w.task is not None and not w.dead():  # the driver is interrupted: stop, keep the run resumable
                w.proc.terminate()
                w.proc.wait()
                if is_run_dir(w.task.run_dir) and read_status(w.task.run_dir).get("state") == "running":
                    mark_status(w.task.run_dir, "interrupted", "the sweep was interrupted")
            if not w.dead():
                w.proc.stdin.close()
                w.proc.wait()
    return states
