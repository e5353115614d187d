"""The correlation of two metrics up to the peak of one, on the steps both have."""
import math

import numpy as np
import pytest

from sgdscope import load_run
from sgdscope.analysis import Correlation, correlation_before_peak

_ = None
X = [1, 2, 4, 3, 6, 7, 2, 1]        # "noise/lambda_1", steps 0..7: peak 7 at step 5
Y = [1, 3, 2, 5, 9, 8, 4, _]        # "hessian/lambda_1", steps 0..6: peak 9 at step 4


@pytest.fixture
def run(tmp_path, write_run):
    return load_run(write_run(tmp_path / "r", {}, {"noise/lambda_1": X, "hessian/lambda_1": Y}))


def test_pearson_and_spearman_before_the_peak_of_y(run):
    # steps 0..4: x = 1 2 4 3 6 (mean 3.2), y = 1 3 2 5 9 (mean 4)
    # sum dx dy = 20, sum dx^2 = 14.8, sum dy^2 = 40  ->  r = 20 / sqrt(592)
    r = correlation_before_peak(run, "gradient_noise/lambda_1", "top_eigenvalues/lambda_1")
    assert r == Correlation(pytest.approx(20 / math.sqrt(592)), 5, 4)
    # ranks x = 1 2 4 3 5, y = 1 3 2 4 5: sum d^2 = 6  ->  rho = 1 - 6 * 6 / (5 * 24) = 0.7
    rho = correlation_before_peak(run, "noise/lambda_1", "hessian/lambda_1", method="spearman")
    assert rho == Correlation(pytest.approx(0.7), 5, 4)


def test_peak_of_another_metric_and_common_steps_only(run):
    # x peaks at step 5, where y = 8: steps 0..5, six pairs
    r = correlation_before_peak(run, "noise/lambda_1", "hessian/lambda_1", peak_of="noise/lambda_1")
    want = np.corrcoef([1, 2, 4, 3, 6, 7], [1, 3, 2, 5, 9, 8])[0, 1]
    assert r.n == 6 and r.peak_step == 5 and r.r == pytest.approx(want)


def test_degenerate_cases(tmp_path, write_run):
    df = load_run(write_run(tmp_path / "a", {}, {"noise/lambda_1": [5, 1, 2],
                                                  "hessian/lambda_1": [9, 1, 2]}))
    first = correlation_before_peak(df, "noise/lambda_1", "hessian/lambda_1")
    assert first.n == 1 and first.peak_step == 0 and math.isnan(first.r)
    with pytest.raises(ValueError, match="method must be one of \\('pearson', 'spearman'\\)"):
        correlation_before_peak(df, "noise/lambda_1", "hessian/lambda_1", method="kendall")
    with pytest.raises(KeyError, match="add the hessian_norms probe"):
        correlation_before_peak(df, "noise/lambda_1", "hessian_norms/spectral_norm")


def test_sweep_needs_a_run(sweep):
    with pytest.raises(ValueError, match="pass run="):
        correlation_before_peak(sweep, "noise/lambda_1", "evaluation/train_accuracy")
    r = correlation_before_peak(sweep, "noise/lambda_1", "hessian/lambda_1", run="lr0.1_s0")
    # steps 0, 2 (peak of lambda_H^1 = 5): x = 1 6, y = 2 5: two points, r = 1
    assert r == Correlation(pytest.approx(1.0), 2, 2)
