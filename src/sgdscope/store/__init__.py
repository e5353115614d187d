"""The run store: the on-disk format of one run, its writer and its readers.

The ground floor of sgdscope: it imports nothing from the rest of the package, and pandas,
pyarrow and safetensors only when a run is read or written. ``Scope``, the trainer, sweeps,
figures and the report all read or write runs through it.
"""
from .checkpoint import UnsafeCheckpointError, load_checkpoint
from .layout import STATES, checkpoint_steps, find_runs, is_run_dir
from ._lock import FolderLocked
from .reader import (
    CorruptFile, list_arrays, list_runs, load_arrays, load_run, load_sweep, read_config, read_probes, read_status,
)
from .sink import DiscardSink, MemorySink, Sink
from .sweeps import is_sweep_dir, load_sweep_folder, read_points, sweep_table
from .tensorboard import export_tensorboard
from .writer import RunWriter, mark_status

__all__ = [
    "RunWriter", "mark_status", "Sink", "MemorySink", "DiscardSink", "STATES",
    "load_run", "load_arrays", "list_arrays", "read_config", "read_status", "read_probes",
    "list_runs", "load_sweep", "find_runs", "is_run_dir",
    "load_checkpoint", "checkpoint_steps", "UnsafeCheckpointError", "export_tensorboard",
    "is_sweep_dir", "read_points", "sweep_table", "load_sweep_folder", "CorruptFile", "FolderLocked",
]
