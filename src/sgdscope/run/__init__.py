"""Running experiments: the run store (one directory per run) and readers of stored runs."""
from .load import (
    checkpoint_steps,
    find_runs,
    is_run_dir,
    list_arrays,
    list_runs,
    load_arrays,
    load_checkpoint,
    load_run,
    load_sweep,
    read_config,
    read_status,
)
from .store import STATES, RunStore
from .tensorboard import export_tensorboard

__all__ = [
    "RunStore",
    "STATES",
    "load_run",
    "load_arrays",
    "list_arrays",
    "read_config",
    "read_status",
    "list_runs",
    "load_sweep",
    "find_runs",
    "is_run_dir",
    "load_checkpoint",
    "checkpoint_steps",
    "export_tensorboard",
]
