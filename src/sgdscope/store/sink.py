"""Where measurements go: the :class:`Sink` protocol, and :class:`MemorySink`, which keeps them in memory.

``Scope`` writes to a sink it is given. :class:`~sgdscope.store.writer.RunWriter` (a run folder)
and :class:`MemorySink` (a list of rows and arrays, for notebooks and tests) are the two sinks;
both take the same calls, so a measurement is recorded the same way wherever it goes.
"""
from __future__ import annotations

from typing import Any, Mapping, Protocol, runtime_checkable

from .layout import STATES

__all__ = ["Sink", "MemorySink", "DiscardSink"]


@runtime_checkable
class Sink(Protocol):
    def declare(self, probes: Mapping[str, str]) -> None:
        """``{instance name: probe type}`` of the probes that will log."""

    def log(self, step: int, epoch: float, probe: str, values: Mapping[str, Any], *, seconds: float | None = None) -> None:
        """One probe's values at ``step`` (0-d values are metric rows, others arrays)."""

    def set_status(self, state: str, **info: Any) -> None:
        """The run's state (one of ``STATES``), with ``message`` and other information."""

    def flush(self) -> None: ...

    def close(self) -> None: ...


class MemorySink:
    """Keeps rows ``(step, epoch, probe, name, value)`` and arrays ``{(probe, name): {step: array}}``.

    :meth:`frame` gives the same tidy DataFrame as :func:`~sgdscope.store.reader.load_run`.
    """

    def __init__(self):
        self.rows: list[tuple[int, float, str, str, float]] = []
        self.arrays: dict[tuple[str, str], dict[int, Any]] = {}
        self.probes: dict[str, str] = {}
        self.status: dict[str, Any] = {"state": "running", "message": ""}
        self.path = None

    def declare(self, probes: Mapping[str, str]) -> None:
        for name, kind in probes.items():
            if self.probes.get(name, kind) != kind:
                raise ValueError(f"probe {name!r} was declared as type {self.probes[name]!r}, now as {kind!r}")
        self.probes.update(probes)

    def log(self, step: int, epoch: float, probe: str, values: Mapping[str, Any], *, seconds: float | None = None) -> None:
        items = dict(values)
        if seconds is not None:
            items["seconds"] = seconds
        for name, value in items.items():
            ndim = getattr(value, "ndim", 0)
            if ndim:
                self.arrays.setdefault((probe, name), {})[int(step)] = value.detach().cpu().numpy() if hasattr(value, "detach") else value
            else:
                self.rows.append((int(step), float(epoch), probe, name, float(value)))

    def set_status(self, state: str, **info: Any) -> None:
        if state not in STATES:
            raise ValueError(f"status state must be one of {STATES}, got {state!r}")
        self.status = {"state": state, "message": str(info.pop("message", "")), **info}

    def flush(self) -> None:
        pass

    def close(self) -> None:
        pass

    def frame(self):
        """The rows as a tidy pandas DataFrame: step, epoch, probe, type, name, value."""
        import pandas as pd

        df = pd.DataFrame(self.rows, columns=["step", "epoch", "probe", "name", "value"])
        df = df.sort_values("step", kind="stable", ignore_index=True)
        df.insert(3, "type", df["probe"].map(lambda p: self.probes.get(p, p)).astype(object))
        return df.astype({"step": "int64", "epoch": "float64", "value": "float64"})

    def values(self, probe: str, name: str) -> list[float]:
        """The recorded values of (probe, name) in logging order (NaN where a step failed)."""
        return [v for _, _, p, n, v in self.rows if p == probe and n == name]


class DiscardSink:
    """Takes every call and keeps nothing: the sink of the ranks other than 0 of a distributed
    Scope (rank 0 records the run)."""

    path = None
    state = "running"

    def declare(self, probes) -> None:
        pass

    def log(self, step, epoch, probe, values, *, seconds=None) -> None:
        pass

    def set_status(self, state, **info) -> None:
        self.state = state

    def flush(self) -> None:
        pass

    def close(self) -> None:
        pass
