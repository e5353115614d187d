"""Where training accuracy first reaches a threshold, and a metric's value there."""
import math

import pytest

from sgdscope.analysis import Point, accuracy_crossing, value_at_accuracy


def test_accuracy_crossing_is_the_first_step_at_or_above(run_a, sweep):
    # run a's accuracy: 0.1 0.2 0.3 0.45 0.55 0.6 0.7 0.75 0.8 0.85 at steps 0..9
    assert accuracy_crossing(run_a, 0.5) == Point(0.55, 4, 1.0)
    assert accuracy_crossing(run_a, 0.6) == Point(0.6, 5, 1.2)         # reaching counts
    assert accuracy_crossing(run_a, 0.6001) == Point(0.7, 6, 1.4)
    never = accuracy_crossing(sweep, 0.6, run="lr0.01_s1")              # 0.59 at most
    assert never.step is None and math.isnan(never.value)


def test_value_at_accuracy_reads_the_metric_at_or_after_the_crossing(run_a, sweep):
    # lambda_K^1 is recorded every step: its value at the crossing step 5 is 4
    assert value_at_accuracy(run_a, "gradient_noise/lambda_1", 0.6) == Point(4.0, 5, 1.2)
    # lambda_H^1 is recorded at even steps only (2, 5, 4, 3, 3): read at step 6, after 5
    assert value_at_accuracy(run_a, "hessian/lambda_1", 0.6) == Point(3.0, 6, 1.4)
    assert value_at_accuracy(run_a, "top_eigenvalues/lambda_1", 0.5) == Point(4.0, 4, 1.0)
    # per run of a sweep: lr0.01_s0 crosses 0.6 at step 8, where lambda_K^1 = 7
    assert value_at_accuracy(sweep, "noise/lambda_1", 0.6, run="lr0.01_s0") == Point(7.0, 8, 1.8)


def test_value_at_accuracy_nowhere(run_a, sweep):
    # crossing at step 9 (0.85): lambda_H^1 has no record at or after it
    late = value_at_accuracy(run_a, "hessian/lambda_1", 0.85)
    assert late.step is None and math.isnan(late.value)
    assert value_at_accuracy(run_a, "noise/lambda_1", 0.99).step is None
    with pytest.raises(ValueError, match="holds 4 runs"):
        value_at_accuracy(sweep, "noise/lambda_1", 0.6)
    with pytest.raises(KeyError, match="no probe of type 'hessian_trace'"):
        value_at_accuracy(run_a, "hessian_trace/trace", 0.6)
    with pytest.raises(KeyError, match="'val_accuracy' is a value of probe type 'evaluation'"):
        value_at_accuracy(run_a, "noise/lambda_1", 0.6, accuracy="evaluation/val_accuracy")
