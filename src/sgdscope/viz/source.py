"""What a figure reads: stored runs, as one tidy frame plus their arrays.

``Runs.open(path)`` takes a run folder, a sweep folder or a folder of runs; ``Runs.of(frame)`` a
tidy DataFrame already loaded (``load_run`` / ``load_sweep``), which has no arrays. Figures ask
for metrics by ``"TYPE/NAME"`` (:mod:`sgdscope.quantities`) and say which probe to add when one is
missing (:class:`MissingData`). Nothing here imports torch or a model.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from ..analysis import MissingMetric, resolve_metric
from ..quantities import RECORDERS, quantity
from ..store import find_runs, is_run_dir, is_sweep_dir, list_arrays, load_arrays, load_run, load_sweep, read_probes
from ..store.sweeps import RUNS

__all__ = ["Runs", "MissingData", "probe_hint"]


def _known(kind: str, name: str) -> bool:
    try:
        quantity(kind, name)
        return True
    except KeyError:
        return False


class MissingData(LookupError):
    """A figure needs a metric or an array the runs do not hold; the message names the probe to add."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


def probe_hint(metric: str) -> str:
    """"add the gradient_noise probe ([probes.gradient_noise] in a config)" for "gradient_noise/lambda_1"."""
    kind = metric.split("/", 1)[0]
    if kind in RECORDERS:
        return f"it is written by {RECORDERS[kind]}"
    if kind == "train":
        return "it is recorded by `sgdscope run` (the trainer's train/loss and train/lr rows)"
    return f"add the {kind} probe ([probes.{kind}] in a config, or sgdscope.probes.{kind}(...) in a Scope)"


@dataclass
class Runs:
    """Stored runs for a figure: ``frame`` (tidy, with a ``run`` column: one value per run) and,
    when opened from disk, the run folders (``folders``: run label -> path) for their arrays."""

    frame: object
    folders: dict[str, Path] = field(default_factory=dict)
    sweep: Path | None = None

    @classmethod
    def open(cls, path: str | os.PathLike) -> "Runs":
        path = Path(path)
        if not path.exists():
            raise FileNotFoundError(f"{path}: no such run or sweep folder")
        if is_run_dir(path):
            df = load_run(path)
            df.insert(0, "run", path.name)
            return cls(df, {path.name: path})
        root = path / RUNS if is_sweep_dir(path) else path
        folders = {run.relative_to(root).as_posix(): run for run in find_runs(root)}
        return cls(load_sweep(root), folders, path if is_sweep_dir(path) else None)

    @classmethod
    def of(cls, frame) -> "Runs":
        """Runs from an already loaded tidy frame (no arrays)."""
        frame = frame.copy()
        if "run" not in frame.columns:
            frame.insert(0, "run", "run")
        return cls(frame)

    @property
    def names(self) -> list[str]:
        return list(dict.fromkeys(self.frame["run"]))

    def has(self, metric: str) -> bool:
        """Whether the runs hold ``metric``: metric rows, or for an array quantity
        (:mod:`sgdscope.quantities`) arrays in at least one run folder."""
        kind, _, name = metric.partition("/")
        try:
            if quantity(kind, name).array:
                return any(self._has_arrays(run, kind, name) for run in self.folders)
        except KeyError:
            pass
        if "{" in name:  # a family such as alignment/mean_M{m}: any member will do
            frame = self.frame
            rows = frame[(frame["type"] == kind) | (frame["probe"] == kind)]
            return any(quantity(kind, n).name == name for n in set(rows["name"]) if _known(kind, n))
        try:
            resolve_metric(self.frame, metric)
            return True
        except (MissingMetric, KeyError, ValueError):
            return False

    def _has_arrays(self, run: str, kind: str, name: str) -> bool:
        folder = self.folders[run]
        labels = [p for p, t in read_probes(folder).items() if t == kind] or [kind]
        return any((label, name) in set(list_arrays(folder)) for label in labels)

    def require(self, *metrics: str, figure: str = "this figure") -> None:
        """Raise :class:`MissingData` naming every absent metric and the probe that records it."""
        missing = [m for m in metrics if not self.has(m)]
        by_type: dict[str, list[str]] = {}
        for m in missing:
            by_type.setdefault(m.split("/", 1)[0], []).append(m)
        present = set(self.frame["type"]) if "type" in self.frame.columns else set()
        if missing:
            raise MissingData(f"{figure} needs " + "; ".join(
                f"{', '.join(ms)}: " + (f"the {kind} probe ran but did not record it" if kind in present else probe_hint(ms[0]))
                for kind, ms in by_type.items()))

    def arrays(self, metric: str, run: str) -> dict[int, object]:
        """step -> array of ``"TYPE/NAME"`` in one run (the probe instance found by its type)."""
        kind, name = metric.split("/", 1)
        folder = self.folders.get(run)
        if folder is None:
            raise MissingData(f"{metric}: arrays are read from run folders; open the runs with Runs.open(PATH), "
                              "not from a DataFrame")
        types = read_probes(folder)
        labels = [p for p, t in types.items() if t == kind] or [kind]
        stored = set(list_arrays(folder))
        for label in labels:
            if (label, name) in stored:
                return load_arrays(folder, label, name)
        raise MissingData(f"run {run} has no {metric} arrays; {probe_hint(metric)}")
