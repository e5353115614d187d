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


def run_point(config: dict, run_dir: str | os.PathLike, *, threads: int | None = None, errors: list | None = None) -> str:
    """Train (or resume) the run of ``config`` in ``run_dir`` with ``threads`` torch threads;
    returns its final state (``done``, ``diverged``, ``failed``, ``interrupted``). The error that
    ended it, if any, in one line, is appended to ``errors``."""
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
        except Exception as err:  # recorded in the run's status by train; the traceback goes to the log
            traceback.print_exc()
            if errors is not None:
                errors.append(" ".join(str(err).split()) or type(err).__name__)
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


def serve(threads: int | None = None) -> int:
    """How the local executor runs points (``sgdscope.sweep.worker.main``, in its own process). Reads
    one JSON task per line on standard input (``{"config": ..., "run_dir": ...}``), runs it, and
    answers one JSON line ``{"run_dir": ..., "state": ...}`` on standard output; ends at the end of
    its input. One process serves many points, so each pays the start of Python and torch once."""
    import json
    import sys
    import warnings

    channel = sys.stdout  # run_point sends everything else to the point's own log
    import signal

    # a driver started in the background (`cmd &`, nohup) hands its workers SIGINT ignored: restore it, so that
    # an interrupt (the driver's Ctrl-C, or watch_parent) ends the run in hand as "interrupted"
    signal.signal(signal.SIGINT, signal.default_int_handler)
    watch_parent()
    for line in sys.stdin:
        if not line.strip():
            continue
        task = json.loads(line)
        errors: list[str] = []
        with warnings.catch_warnings():  # each point's log shows its own warnings, as a fresh process would
            warnings.simplefilter("default")
            state = run_point(task["config"], task["run_dir"], threads=threads, errors=errors)
        answer = {"run_dir": task["run_dir"], "state": state, **({"error": errors[-1]} if errors else {})}
        print(json.dumps(answer), file=channel, flush=True)
    return 0


def watch_parent(poll_s: float = 0.5, grace_s: float = 20.0) -> None:
    """End this worker when its driver dies (``kill -9`` included): a thread notices the parent
    change, interrupts the run (it saves and marks itself ``interrupted``, resumable), and exits the
    process if it has not ended ``grace_s`` later. No worker outlives its sweep, so a rerun never
    has two processes writing one run folder."""
    import _thread
    import threading
    import time

    parent = os.getppid()

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(poll_s)
        _thread.interrupt_main()
        time.sleep(grace_s)
        os._exit(1)

    threading.Thread(target=watch, name="sgdscope-parent-watch", daemon=True).start()


def main(argv: list[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(prog="sgdscope-sweep-worker", description=serve.__doc__)
    parser.add_argument("--threads", type=int, default=None)
    try:
        return serve(parser.parse_args(argv).threads)
    except KeyboardInterrupt:  # the driver died or was interrupted: the run in hand marked itself interrupted
        return 130

