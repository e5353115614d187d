"""The ``ray`` executor: each point a Ray task, on a local Ray or a cluster (``address="auto"``).

Why tasks, not Ray Tune trials: a point is an ordinary run folder that resumes itself from its
own checkpoints, and the sweep folder already holds the grid, the status of every point and
their results; Tune would add a second experiment folder, its own trial checkpoints and syncing
for what a task with ``max_retries`` gives directly: a task whose worker dies is run again, and
the new attempt resumes the run from its last checkpoint, so nothing recorded is lost.

On a cluster the sweep folder must be on storage every node sees (a shared filesystem): a task
that cannot see it fails at once with a message saying so, instead of writing runs nobody reads.
"""
from __future__ import annotations

import os
import socket
from pathlib import Path
from typing import Callable, Sequence

from ..store.sweeps import MARKER
from .worker import run_point, settle

__all__ = ["run_ray", "SweepStorageError"]


class SweepStorageError(RuntimeError):
    """A Ray worker cannot see the sweep folder."""


def _ray_point(config: dict, run_dir: str, sweep_dir: str, threads: int | None) -> str:
    if not (Path(sweep_dir) / MARKER).is_file():
        raise SweepStorageError(
            f"the Ray worker on {socket.gethostname()} (pid {os.getpid()}) cannot see the sweep folder {sweep_dir}: "
            "put it on storage every node sees (a shared filesystem mounted at the same path), or run the sweep "
            "with --executor local"
        )
    return run_point(config, run_dir, threads=threads)


def run_ray(tasks: Sequence, *, sweep_dir: str | os.PathLike, workers: int, threads: int | None, address: str | None = None,
            num_cpus: float = 1, num_gpus: float = 0, max_retries: int = 3,
            on_change: Callable[[dict], None] | None = None) -> dict[str, str]:
    """Run ``tasks`` as Ray tasks, at most ``workers`` at a time, each with ``num_cpus`` /
    ``num_gpus``; a task whose worker dies is retried up to ``max_retries`` times and resumes.
    Starts a local Ray (``num_cpus`` = this machine's cores) unless one is running or ``address``
    names a cluster (``"auto"``: the one this machine belongs to)."""
    import ray

    if not ray.is_initialized():
        if address:
            ray.init(address=address, log_to_driver=False)
        else:
            ray.init(num_cpus=os.cpu_count(), include_dashboard=False, log_to_driver=False)
    remote = ray.remote(num_cpus=num_cpus, num_gpus=num_gpus, max_retries=max_retries)(_ray_point)
    states = {t.name: "pending" for t in tasks}
    pending, running = list(tasks), {}
    done = []
    while pending or running:
        started = bool(pending) and len(running) < workers
        while pending and len(running) < workers:
            task = pending.pop(0)
            ref = remote.remote(task.config, str(task.run_dir), str(sweep_dir), threads)
            running[ref] = task
            states[task.name] = "running"
        if (started or done) and on_change:  # one notice per round: the runs that ended and those started
            on_change(states)
        done, _ = ray.wait(list(running), num_returns=1, timeout=1.0)
        for ref in done:
            task = running.pop(ref)
            try:
                states[task.name] = ray.get(ref)
            except ray.exceptions.RayTaskError as err:
                if isinstance(err.cause, SweepStorageError):
                    raise err.cause from None
                states[task.name] = "failed"
            except ray.exceptions.RayError:  # its worker died more often than max_retries
                states[task.name] = settle(task.run_dir)
    if done and on_change:
        on_change(states)
    return states
