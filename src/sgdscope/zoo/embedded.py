"""Data sets that need no files: scikit-learn's digits, MNIST-1D (generated offline), synthetic clusters."""

from __future__ import annotations

import functools
import random

import numpy as np
import torch


def read_digits(test_size: int = 297) -> tuple[tuple, tuple]:
    """scikit-learn's 1,797 8x8 digits (``load_digits``), pixels 0..16 scaled to [0, 1].

    x float32 ``N x 1 x 8 x 8``, y int64 in 0..9. The data set has no official split: the
    first ``1797 - test_size`` images (1,500 by default) are the training split, the rest test.
    """
    from sklearn.datasets import load_digits

    d = load_digits()
    if int(test_size) != test_size or not 0 < test_size < len(d.target):
        raise ValueError(f"digits: test_size must be an integer in [1, {len(d.target) - 1}], got {test_size!r}")
    x = (d.images / 16.0).astype(np.float32)[:, None]
    y = d.target.astype(np.int64)
    cut = len(y) - int(test_size)
    return (x[:cut], y[:cut]), (x[cut:], y[cut:])


@functools.lru_cache(maxsize=4)
def _mnist1d_arrays(num_samples: int, seed: int) -> tuple[np.ndarray, ...]:
    from mnist1d.data import get_dataset_args, make_dataset

    args = get_dataset_args()
    args.num_samples, args.seed = int(num_samples), int(seed)
    py_state, np_state = random.getstate(), np.random.get_state()
    try:  # make_dataset seeds the global `random` and `np.random`; give them back untouched
        d = make_dataset(args)
    finally:
        random.setstate(py_state)
        np.random.set_state(np_state)
    return (d["x"].astype(np.float32), d["y"].astype(np.int64), d["x_test"].astype(np.float32), d["y_test"].astype(np.int64))


def read_mnist1d(num_samples: int = 5000, data_seed: int = 42) -> tuple[tuple, tuple]:
    """MNIST-1D (Greydanus 2020), generated offline with ``mnist1d.data.make_dataset`` and its
    default arguments (5,000 samples, 80 % train, length-40 signals, seed 42); never downloaded.

    x float32 ``N x 40`` (standardised by the generator), y int64 in 0..9: 4,000 train, 1,000 test.
    ``data_seed`` / ``num_samples`` change the generator's own arguments.
    """
    xtr, ytr, xte, yte = _mnist1d_arrays(int(num_samples), int(data_seed))
    return (xtr.copy(), ytr.copy()), (xte.copy(), yte.copy())


def make_synthetic(
    num_train: int = 512, num_test: int = 256, dim: int = 10, num_classes: int = 3, spread: float = 1.0, data_seed: int = 0
) -> tuple[tuple, tuple]:
    """Gaussian clusters, for tests and demos.

    Each class ``c`` has a mean ``mu_c`` drawn once (``N(0, I)`` rescaled to norm 3); an example
    is ``mu_y + spread * N(0, I)``, labels uniform. x float32 ``N x dim``, y int64. Everything
    comes from ``torch.Generator().manual_seed(data_seed)``.
    """
    for what, v in (("num_train", num_train), ("num_test", num_test), ("dim", dim), ("num_classes", num_classes)):
        if int(v) != v or v < 1:
            raise ValueError(f"synthetic: {what} must be a positive integer, got {v!r}")
    g = torch.Generator().manual_seed(int(data_seed))
    means = torch.randn(int(num_classes), int(dim), generator=g)
    means = 3.0 * means / means.norm(dim=1, keepdim=True).clamp_min(1e-12)

    def draw(n: int) -> tuple[np.ndarray, np.ndarray]:
        y = torch.randint(int(num_classes), (int(n),), generator=g)
        x = means[y] + float(spread) * torch.randn(int(n), int(dim), generator=g)
        return x.numpy().astype(np.float32), y.numpy().astype(np.int64)

    return draw(num_train), draw(num_test)
