"""Addressing one stored quantity in a tidy frame: ``"TYPE/NAME"`` -> its rows, its series.

A metric is written ``"TYPE/NAME"``: the probe type of :mod:`sgdscope.quantities` and the value
name, e.g. ``"gradient_noise/lambda_1"`` or ``"evaluation/train_accuracy"``. A probe instance
label may stand in place of the type (``"hessian_top30/lambda_1"``): the ``type`` column is
matched first, then ``probe``. Every function here takes the frame of
:func:`sgdscope.load_run` (one run) or of :func:`sgdscope.load_sweep` (a ``run`` column first).
"""
from __future__ import annotations

from typing import NamedTuple

from .. import quantities

__all__ = ["MissingMetric", "Metric", "resolve_metric", "series", "one_run", "is_sweep"]


class MissingMetric(KeyError):
    """A metric the frame does not hold; the message names what it holds and the probe to add.
    (A ``KeyError`` whose ``str`` is the plain message.)"""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


class Metric(NamedTuple):
    """A resolved metric: ``column`` ("type" or "probe") equal to ``label``, and value ``name``."""

    column: str
    label: str
    name: str

    def mask(self, df):
        """Boolean row mask of ``df`` selecting this metric."""
        return (df[self.column] == self.label) & (df["name"] == self.name)

    def __str__(self) -> str:
        return f"{self.label}/{self.name}"


def is_sweep(df) -> bool:
    """Whether ``df`` is a sweep frame (has a ``run`` column) rather than one run's frame."""
    return "run" in df.columns


def _listing(values) -> str:
    values = sorted({str(v) for v in values})
    return ", ".join(values) if values else "(none)"


def _split(metric: str, df) -> list[tuple[str, str]]:
    if not isinstance(metric, str) or "/" not in metric:
        hint = ""
        if isinstance(metric, str) and "name" in df.columns:
            rows = df[df["name"] == metric]
            found = sorted(set(rows["type"] + "/" + metric)) if len(rows) else []
            hint = f"; the frame has {', '.join(found)}" if found else ""
        raise ValueError(f"metric must be 'TYPE/NAME' (a probe type or label, then a value "
                         f"name, e.g. 'gradient_noise/lambda_1'), got {metric!r}{hint}")
    # labels may hold '/', types never do: try every split, leftmost first
    return [(metric[:i], metric[i + 1:]) for i, c in enumerate(metric) if c == "/"]


def _missing(df, metric: str, label: str, name: str) -> MissingMetric:
    types, probes = set(df["type"]), set(df["probe"])
    recorded = label in quantities.RECORD_TYPES
    known_type = label in quantities.PROBE_TYPES or label == "train" or recorded
    if known_type:
        try:
            q = quantities.quantity(label, name)
        except KeyError as e:
            return MissingMetric(f"{metric!r}: {e.args[0]}")
        if q.array:
            return MissingMetric(f"{metric!r} is an array quantity, stored under arrays/ (read "
                                 "it with sgdscope.load_arrays), not as metric rows")
    stored = df.loc[(df["type"] == label) | (df["probe"] == label), "name"]
    if len(stored):
        what = (f"{name!r} is a value of probe type {label!r} that the frame does not hold "
                "(configure the probe to record it)" if known_type else f"no value {name!r}")
        return MissingMetric(f"{metric!r}: {what}; the frame's {label!r} rows have names: "
                             f"{_listing(stored)}")
    if recorded:
        return MissingMetric(f"{metric!r}: the frame has no {label!r} rows (types present: {_listing(types)}); "
                             f"they are written by {quantities.RECORDERS[label]}")
    if known_type:
        return MissingMetric(
            f"{metric!r}: the frame has no probe of type {label!r} (types present: "
            f"{_listing(types)}); add the {label} probe to record it (config table "
            f"[probes.{label}], or the {label} probe in a Scope)")
    return MissingMetric(
        f"{metric!r}: {label!r} is neither a probe type of sgdscope.quantities nor a probe label "
        f"in the frame (types present: {_listing(types)}; labels: {_listing(probes)})")


def resolve_metric(df, metric: str | Metric) -> Metric:
    """Which rows ``metric`` ("TYPE/NAME" or "LABEL/NAME") means in ``df``: the ``type`` column
    is matched first, then ``probe``. Raises :class:`MissingMetric` (a KeyError) naming what the
    frame holds and which probe would record the metric, ``ValueError`` for a string that is not
    "TYPE/NAME" or for a type that several probe instances share (address one by its label)."""
    if isinstance(metric, Metric):
        return metric
    splits = _split(metric, df)
    for column in ("type", "probe"):
        for label, name in splits:
            rows = df[(df[column] == label) & (df["name"] == name)]
            if not len(rows):
                continue
            labels = set(rows["probe"])
            if column == "type" and len(labels) > 1:
                raise ValueError(f"{metric!r}: several probes of type {label!r} record {name!r} "
                                 f"({_listing(labels)}); address one by its label, e.g. "
                                 f"'{sorted(labels)[0]}/{name}'")
            return Metric(column, label, name)
    raise _missing(df, metric, *splits[0])


def one_run(df, run: str | None = None):
    """The rows of one run: ``df`` itself for a single-run frame; for a sweep frame the rows of
    ``run`` (required when the frame holds several runs). Errors name the runs held."""
    if not is_sweep(df):
        if run is not None:
            raise ValueError(f"run={run!r} given, but the frame is one run's (no 'run' column)")
        return df
    runs = list(dict.fromkeys(df["run"]))
    if run is None:
        if len(runs) != 1:
            raise ValueError(f"the frame holds {len(runs)} runs; pass run= one of: "
                             f"{', '.join(runs)}")
        return df
    if run not in runs:
        raise KeyError(f"run {run!r} is not in the frame; runs: {', '.join(runs) or '(none)'}")
    return df[df["run"] == run]


def series(df, metric: str | Metric, *, run: str | None = None):
    """The rows of one metric: columns ``step, epoch, value`` sorted by step (stable), values as
    stored (NaN where a probe failed). For a sweep frame, columns ``run, step, epoch, value``
    (sorted by run, then step) unless ``run`` picks one run. Used by every statistic below."""
    if run is not None:
        df = one_run(df, run)
    m = resolve_metric(df, metric)
    cols = ["step", "epoch", "value"]
    if is_sweep(df) and run is None:
        cols.insert(0, "run")
    out = df.loc[m.mask(df), cols]
    return out.sort_values(cols[:-2], kind="stable", ignore_index=True)
