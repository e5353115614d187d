"""Running experiments from configs: config, setup, a run's pieces (build, checkpoint, step) and the loop."""
from .build import Run, build_run
from .checkpointing import restore, save_checkpoint
from .config import ConfigError, load_config, resolve
from .trainer import run_dir_for, train, train_step

__all__ = [
    "Run", "build_run", "restore", "save_checkpoint", "train_step", "train", "run_dir_for",
    "ConfigError", "load_config", "resolve",
]
