"""Sweeps: grids of runs over learning rate, batch size, momentum and seed, on this machine or a Ray cluster.

``run_sweep(config, grid=..., seeds=..., out=..., executor="local"|"ray", workers=N)`` runs (and on
a second call resumes) one folder of ordinary run folders (its format: :mod:`sgdscope.store.sweeps`);
read it with :func:`sgdscope.store.load_sweep_folder` and compare its points with :mod:`sgdscope.analysis`.
"""
from .driver import EXECUTORS, default_out, run_sweep
from .spec import Point, SweepSpec, parse_grid, parse_seeds, spec_from_table

__all__ = ["run_sweep", "default_out", "EXECUTORS", "SweepSpec", "Point", "parse_grid", "parse_seeds",
           "spec_from_table"]
