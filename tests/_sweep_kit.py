"""Shared pieces of the sweep tests: a tiny base config, metrics to compare, a worker killer."""
import json
import os
import signal
import threading
import time
from pathlib import Path

import sgdscope
from _tiny_run import tiny_config


def base_config(out):
    """Tiny runs long enough to be killed in the middle (48 steps, a checkpoint every 5)."""
    return tiny_config(out, train={"epochs": 8, "batch_size": 16, "checkpoint_every": 5},
                       probes={"top_eigenvalues": {"every": 4, "k": 2}, "loss_change": {"every": 2},
                               "gradient_noise": {"every": 6, "num_batches": 4, "batch_size": 8, "k": 2}})


GRID = {"optimizer.lr": [0.1, 0.05]}
SEEDS = [0, 1]


def metrics(run_dir):
    df = sgdscope.load_run(run_dir)
    return df[df.name != "seconds"].sort_values(["step", "probe", "name"], kind="stable").reset_index(drop=True)


def kill_a_worker_when(run_dir: Path, step: int, timeout: float = 120.0):
    """In a thread: SIGKILL the process writing ``run_dir`` once its status reaches ``step``.
    Returns the thread and a dict that gets the killed pid."""
    killed = {}

    def watch():
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                status = json.loads((run_dir / "status.json").read_text())
            except (OSError, ValueError):
                status = {}
            if status.get("state") == "running" and (status.get("step") or 0) >= step:
                os.kill(status["pid"], signal.SIGKILL)
                killed["pid"] = status["pid"]
                return
            time.sleep(0.02)

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    return thread, killed


