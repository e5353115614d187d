"""Trailing moving average, by hand."""
import math

import numpy as np
import pandas as pd
import pytest

from sgdscope.analysis import moving_average


def test_trailing_mean_with_short_windows_at_the_start():
    assert moving_average([1, 2, 3, 4, 5], 2).tolist() == [1, 1.5, 2.5, 3.5, 4.5]
    assert moving_average([1, 2, 3, 4, 5], 3).tolist() == [1, 1.5, 2, 3, 4]
    assert moving_average(pd.Series([4.0, 2.0]), 1).tolist() == [4, 2]
    assert moving_average([3.0, 1.0], 10).tolist() == [3, 2]
    assert moving_average([], 3).shape == (0,)


def test_nan_skipped_and_inf_kept():
    got = moving_average([1, math.nan, 3, 5], 2)
    assert got.tolist() == [1, 1, 3, 4]
    lone = moving_average([math.nan, math.nan, 2], 2)
    assert math.isnan(lone[0]) and math.isnan(lone[1]) and lone[2] == 2
    assert moving_average([1, math.inf, 1, 1], 2).tolist() == [1, math.inf, math.inf, 1]
    assert moving_average([1, -math.inf, 3], 2).tolist() == [1, -math.inf, -math.inf]
    both = moving_average([math.inf, -math.inf, 1], 2)
    assert math.isnan(both[1]) and both[2] == -math.inf


@pytest.mark.parametrize("window", [0, -1, 2.5, True, "3"])
def test_bad_window(window):
    with pytest.raises(ValueError, match="window must be an int >= 1"):
        moving_average([1.0, 2.0], window)


def test_bad_shape():
    with pytest.raises(ValueError, match="values must be 1-D, got shape \\(2, 2\\)"):
        moving_average(np.ones((2, 2)), 2)
