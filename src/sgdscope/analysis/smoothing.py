"""Trailing moving average, for noisy per-step curves (loss change, gradient cosines, barriers)."""
from __future__ import annotations

import numpy as np

__all__ = ["moving_average"]


def moving_average(values, window: int) -> np.ndarray:
    """Trailing mean over ``window`` values, out[i] = mean(values[max(0, i - window + 1):i + 1]):
    shorter windows at the start, so the output has the input's shape (n,). NaN values are
    skipped (NaN only where a window holds no value); an inf in a window gives inf. ``values``:
    a 1-D array, list or Series. Smooths per-step curves such as Delta L (Break-Even Fig. 2)
    or barriers per epoch (Walk Fig. 4)."""
    v = np.asarray(values, dtype=float)
    if v.ndim != 1:
        raise ValueError(f"values must be 1-D, got shape {v.shape}")
    if isinstance(window, bool) or not isinstance(window, (int, np.integer)) or window < 1:
        raise ValueError(f"window must be an int >= 1, got {window!r}")
    hi = np.arange(1, len(v) + 1)
    lo = np.maximum(hi - window, 0)

    def in_window(x):  # windowed sums of x, by cumulative sums
        c = np.concatenate([[0], np.cumsum(x)])
        return c[hi] - c[lo]

    finite = np.isfinite(v)
    n = in_window(~np.isnan(v))
    total = in_window(np.where(finite, v, 0.0))
    up, down = in_window(v == np.inf), in_window(v == -np.inf)
    out = np.where(n > 0, total / np.maximum(n, 1), np.nan)
    out[(up > 0) & (down == 0)] = np.inf
    out[(down > 0) & (up == 0)] = -np.inf
    out[(up > 0) & (down > 0)] = np.nan
    return out
