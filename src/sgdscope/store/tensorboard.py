"""Export a stored run's scalar metrics to TensorBoard (extra: ``sgdscope[tensorboard]``)."""
from __future__ import annotations

import importlib.util
import os
from pathlib import Path

from .reader import load_run

__all__ = ["export_tensorboard"]

_EVENTS = "events.out.tfevents.*"


def export_tensorboard(run_dir: str | os.PathLike, logdir: str | os.PathLike | None = None) -> Path:
    """Write every metric row of ``run_dir`` as a TensorBoard scalar: tag "probe/name", global
    step = ``step``; NaN / inf are written as they are. ``logdir`` defaults to
    ``RUN_DIR/tensorboard``; event files of an earlier export there are replaced.

    Returns the logdir. Raises ImportError if the ``tensorboard`` package is missing.
    """
    if importlib.util.find_spec("tensorboard") is None:
        raise ImportError("export_tensorboard needs the tensorboard package: "
                          "pip install sgdscope[tensorboard]  (or: pip install tensorboard)")
    from torch.utils.tensorboard import SummaryWriter

    df = load_run(run_dir)  # raises with the path if run_dir is not a run
    logdir = Path(run_dir) / "tensorboard" if logdir is None else Path(logdir)
    logdir.mkdir(parents=True, exist_ok=True)
    for old in logdir.glob(_EVENTS):
        old.unlink()
    writer = SummaryWriter(log_dir=str(logdir))
    try:
        for step, probe, name, value in zip(df["step"], df["probe"], df["name"], df["value"]):
            writer.add_scalar(f"{probe}/{name}", float(value), global_step=int(step))
    finally:
        writer.close()
    return logdir
