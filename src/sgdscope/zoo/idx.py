"""IDX files (LeCun's MNIST format), gzipped or not: MNIST, Fashion-MNIST.

Header: two zero bytes, a type code (0x08 uint8, 0x09 int8, 0x0B int16, 0x0C int32,
0x0D float32, 0x0E float64), the number of dimensions, then each dimension as a big-endian
uint32; the data follow, big-endian, row-major. The file must be exactly as long as the header
says: a file cut short (or with trailing bytes) is an error, never read short.
"""

from __future__ import annotations

import gzip
import math
import os
import zlib
from pathlib import Path

import numpy as np

from ._errors import DataFormatError, _format_error

_TYPES = {0x08: np.dtype("u1"), 0x09: np.dtype("i1"), 0x0B: np.dtype(">i2"), 0x0C: np.dtype(">i4"), 0x0D: np.dtype(">f4"), 0x0E: np.dtype(">f8")}
FORMATS = "IDX files (train-images-idx3-ubyte, ...), raw or gzipped (.gz), as in torchvision's MNIST/raw/"
FILES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}


def _read_bytes(path: Path) -> bytes:
    if path.name.endswith(".gz"):
        try:
            with gzip.open(path, "rb") as f:
                return f.read()
        except (EOFError, gzip.BadGzipFile, zlib.error) as err:
            raise _format_error(path, f"is a truncated or corrupt gzip file ({err})", "a gzipped IDX file", FORMATS) from err
    return path.read_bytes()


def read_idx(path: str | os.PathLike, *, ndim: int | None = None) -> np.ndarray:
    """The array stored in an IDX file (``.gz`` decompressed), in native byte order.

    Checks the magic number, ``ndim`` (if given) and that the data are exactly
    ``prod(dims) * itemsize`` bytes long; raises ``DataFormatError`` naming the path otherwise.
    """
    path = Path(path)
    if not path.is_file():
        raise _format_error(path, "does not exist", "an IDX file", FORMATS)
    raw = _read_bytes(path)
    expected = f"an IDX file with {ndim} dimension(s)" if ndim else "an IDX file"
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _TYPES:
        raise _format_error(path, f"has magic bytes {raw[:4].hex() or 'none'} (file of {len(raw)} bytes)", f"{expected} (magic 0000 TT NN, TT in {sorted(hex(t) for t in _TYPES)})", FORMATS)
    dtype, nd = _TYPES[raw[2]], raw[3]
    if ndim is not None and nd != ndim:
        raise _format_error(path, f"has {nd} dimensions", expected, FORMATS)
    header = 4 + 4 * nd
    if len(raw) < header:
        raise _format_error(path, f"is cut short inside its header ({len(raw)} of {header} bytes)", expected, FORMATS)
    dims = tuple(int(d) for d in np.frombuffer(raw, dtype=">u4", count=nd, offset=4))
    need = header + math.prod(dims) * dtype.itemsize
    if len(raw) != need:
        what = "is truncated" if len(raw) < need else "has trailing bytes"
        raise _format_error(path, f"{what}: {len(raw)} bytes, but its header {dims} of {dtype} needs exactly {need}", expected, FORMATS)
    return np.frombuffer(raw, dtype=dtype, offset=header).reshape(dims).astype(dtype.newbyteorder("="))


def find_idx_file(folder: Path, stem: str) -> Path:
    """``folder/stem`` or ``folder/stem.gz`` (the uncompressed one first)."""
    for name in (stem, stem + ".gz"):
        if (folder / name).is_file():
            return folder / name
    raise _format_error(folder / stem, "is missing (neither it nor a .gz)", f"the four files {', '.join(FILES.values())} (each optionally .gz)", FORMATS)


def read_mnist_folder(folder: str | os.PathLike, num_classes: int = 10) -> tuple[tuple, tuple]:
    """``((x_train, y_train), (x_test, y_test))`` from the four IDX files in ``folder``.

    x uint8 ``N x 1 x 28 x 28``, y int64. Checks that images and labels agree in number and
    that labels lie in ``[0, num_classes)``.
    """
    folder = Path(folder)
    out = []
    for split in ("train", "test"):
        x_path = find_idx_file(folder, FILES[f"{split}_images"])
        y_path = find_idx_file(folder, FILES[f"{split}_labels"])
        x, y = read_idx(x_path, ndim=3), read_idx(y_path, ndim=1)
        if x.dtype != np.uint8 or y.dtype != np.uint8:
            raise _format_error(x_path, f"images are {x.dtype} and labels {y.dtype}", "uint8 (type code 0x08) images and labels", FORMATS)
        if len(x) != len(y):
            raise DataFormatError(f"{x_path} has {len(x)} images but {y_path} has {len(y)} labels; expected equal counts")
        if len(y) and y.max() >= num_classes:
            raise DataFormatError(f"{y_path}: label {int(y.max())} outside [0, {num_classes})")
        out.append((x[:, None], y.astype(np.int64)))
    return out[0], out[1]
