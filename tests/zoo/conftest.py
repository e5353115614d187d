"""Fixtures of the zoo tests: where the real data and the user's cache lie; writers of IDX files."""

from __future__ import annotations

import gzip
import struct
from pathlib import Path

import numpy as np
import pytest

from sgdscope.zoo import cache_root

USER_CACHE = cache_root()  # the user's cache, read before the tests isolate SGDSCOPE_CACHE
SHARED_DATA = (Path(__file__).resolve().parents[2] / ".." / "shared" / "data").resolve()


@pytest.fixture(scope="session")
def shared_data():
    """``get(folder)``: ``<repo>/../shared/data/<folder>``, or skip where it is absent (a user's machine)."""

    def get(folder: str) -> Path:
        path = SHARED_DATA / folder
        if not path.exists():
            pytest.skip(f"real data not available: {path} is absent (see ../shared/data/README.md)")
        return path

    return get


@pytest.fixture(scope="session")
def user_cache() -> Path:
    """The user's own cache directory (read-only use: tests that need fully decoded data)."""
    return USER_CACHE


@pytest.fixture(autouse=True)
def _isolated_env(monkeypatch, tmp_path):
    """Keep the user's SGDSCOPE_DATA / SGDSCOPE_CACHE out of the tests; never write to ~/.cache."""
    monkeypatch.delenv("SGDSCOPE_DATA", raising=False)
    monkeypatch.setenv("SGDSCOPE_CACHE", str(tmp_path / "default-cache"))


def idx_bytes(array: np.ndarray) -> bytes:
    """An IDX file as LeCun wrote them: 0 0 type ndim, big-endian uint32 dims, big-endian data."""
    code = {np.dtype("u1"): 0x08, np.dtype("i1"): 0x09, np.dtype(">i2"): 0x0B, np.dtype(">i4"): 0x0C, np.dtype(">f4"): 0x0D, np.dtype(">f8"): 0x0E}
    big = array.astype(array.dtype.newbyteorder(">")) if array.dtype.itemsize > 1 else array
    header = bytes([0, 0, code[big.dtype], array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    return header + big.tobytes()


def write_idx(path: Path, data: bytes) -> Path:
    path.write_bytes(gzip.compress(data) if path.name.endswith(".gz") else data)
    return path


def _write_mnist(folder: Path, n_train: int = 12, n_test: int = 5, gz: bool = True, seed: int = 0) -> dict[str, np.ndarray]:
    """The four MNIST IDX files (torchvision's names) with random content; returns the arrays."""
    rng = np.random.default_rng(seed)
    arrays = {
        "train-images-idx3-ubyte": rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8),
        "train-labels-idx1-ubyte": rng.integers(0, 10, n_train, dtype=np.uint8),
        "t10k-images-idx3-ubyte": rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8),
        "t10k-labels-idx1-ubyte": rng.integers(0, 10, n_test, dtype=np.uint8),
    }
    folder.mkdir(parents=True, exist_ok=True)
    for stem, a in arrays.items():
        write_idx(folder / (stem + (".gz" if gz else "")), idx_bytes(a))
    return arrays


@pytest.fixture(scope="session")
def write_mnist():
    """``write_mnist(folder, n_train=12, n_test=5, gz=True)``: MNIST IDX files written in the exact format."""
    return _write_mnist


@pytest.fixture(scope="session")
def idx():
    """``idx.bytes(array)`` -> IDX file contents; ``idx.write(path, data)`` (gzips for ``.gz``)."""
    return type("IdxWriter", (), {"bytes": staticmethod(idx_bytes), "write": staticmethod(write_idx)})
