"""Statistics over stored runs and sweeps: pure pandas / numpy, no model.

Every function takes the tidy frame of :func:`sgdscope.load_run` or :func:`sgdscope.load_sweep`
and addresses a quantity as ``"TYPE/NAME"`` (a probe type of :mod:`sgdscope.quantities`, or an
instance label, then a value name). ``sgdscope compare``, the figures and the papers' claim
checks build on these, so each is small and tested against hand computations.

* :mod:`.metrics`: ``series`` (the rows of one metric), ``resolve_metric``, ``one_run``
* :mod:`.trajectory`: ``peak``, ``parse_stat`` / ``apply_stat`` (max, min, mean, last, argmax,
  first_below:X)
* :mod:`.windows`: ``window`` (after a step, after an epoch, until an accuracy)
* :mod:`.accuracy`: ``accuracy_crossing``, ``value_at_accuracy``
* :mod:`.correlation`: ``correlation_before_peak``
* :mod:`.stability`: ``negative_fraction`` (Delta L < 0 before / after the break-even point)
* :mod:`.barriers`: ``barriers_per_epoch``
* :mod:`.smoothing`: ``moving_average``
* :mod:`.sweep`: ``varied_keys``, ``per_run``, ``compare``, ``seed_columns``
"""
from .accuracy import TRAIN_ACCURACY, accuracy_crossing, value_at_accuracy
from .barriers import barriers_per_epoch, epoch_number
from .correlation import Correlation, correlation_before_peak
from .metrics import Metric, MissingMetric, is_sweep, one_run, resolve_metric, series
from .smoothing import moving_average
from .stability import NegativeFraction, negative_fraction
from .sweep import LABEL_KEYS, compare, config_columns, per_run, seed_columns, varied_keys
from .trajectory import STATS, Point, Stat, apply_stat, parse_stat, peak
from .windows import crossing_steps, window

__all__ = [
    "series", "resolve_metric", "one_run", "is_sweep", "Metric", "MissingMetric",
    "peak", "Point", "Stat", "STATS", "parse_stat", "apply_stat",
    "window", "crossing_steps",
    "TRAIN_ACCURACY", "accuracy_crossing", "value_at_accuracy",
    "correlation_before_peak", "Correlation",
    "negative_fraction", "NegativeFraction",
    "barriers_per_epoch", "epoch_number",
    "moving_average",
    "varied_keys", "config_columns", "per_run", "compare", "seed_columns", "LABEL_KEYS",
]
