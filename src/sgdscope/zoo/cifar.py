"""CIFAR-10 / CIFAR-100 from the python pickle batches, as torchvision's download has them.

Layouts read (a folder, or the original ``.tar.gz`` read member by member):

- ``cifar-10-batches-py/``: ``data_batch_1`` ... ``data_batch_5``, ``test_batch``,
  ``batches.meta``; each batch a pickled dict with ``b'data'`` (uint8, N x 3072, channel-major
  32 x 32 planes R, G, B) and ``b'labels'`` (N ints); the meta dict has ``b'label_names'``.
- ``cifar-100-python/``: ``train``, ``test``, ``meta``; ``b'fine_labels'`` /
  ``b'coarse_labels'``, meta ``b'fine_label_names'`` / ``b'coarse_label_names'``.

The pickles are read with a restricted unpickler that admits only what these files contain
(dicts, lists, strings, numpy arrays), never arbitrary code.
"""

from __future__ import annotations

import io
import pickle
import tarfile
from pathlib import Path, PurePosixPath

import numpy as np

from ._archive import iter_tar_files
from ._errors import DataFormatError, _format_error, _reading

FORMATS = "the CIFAR python pickle batches (folder or .tar.gz), or an image-folder tree (train/<class>/*.png|jpg)"

_LAYOUT = {
    "cifar10": ("cifar-10-batches-py", [f"data_batch_{i}" for i in range(1, 6)], ["test_batch"], "batches.meta"),
    "cifar100": ("cifar-100-python", ["train"], ["test"], "meta"),
}

_ALLOWED_GLOBALS = {
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"),
    ("numpy._core.multiarray", "scalar"),
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    ("_codecs", "encode"),  # bytes as pickled by Python 3 with protocol < 3
    ("copy_reg", "_reconstructor"),
    ("copyreg", "_reconstructor"),
    ("__builtin__", "object"),
    ("builtins", "object"),
}


class _RestrictedUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str):
        if (module, name) not in _ALLOWED_GLOBALS:
            raise pickle.UnpicklingError(f"global {module}.{name} is not allowed in a CIFAR batch")
        if module.startswith("numpy.core.") and hasattr(np, "_core"):
            module = "numpy._core." + module[len("numpy.core.") :]  # numpy >= 2 moved it
        return super().find_class(module, name)


def _str(v: object) -> str:
    return v.decode("utf-8") if isinstance(v, bytes) else str(v)


def _unpickle(data: bytes, where: str) -> dict:
    try:
        obj = _RestrictedUnpickler(io.BytesIO(data), encoding="bytes").load()
    except Exception as err:  # truncated, not a pickle, or a forbidden global
        raise _format_error(where, f"cannot be unpickled ({type(err).__name__}: {err})", "a pickled dict (a CIFAR python batch)", FORMATS) from err
    if not isinstance(obj, dict):
        raise _format_error(where, f"holds a {type(obj).__name__}, not a dict", "a pickled dict (a CIFAR python batch)", FORMATS)
    return {_str(k): v for k, v in obj.items()}


def _batch(d: dict, label_key: str, where: str) -> tuple[np.ndarray, np.ndarray]:
    expected = f"a dict with b'data' (uint8, N x 3072) and b'{label_key}' (N ints in the class range)"
    if "data" not in d or label_key not in d:
        raise _format_error(where, f"has keys {sorted(d)}", expected, FORMATS)
    x = np.asarray(d["data"])
    y = np.asarray(d[label_key])
    if x.dtype != np.uint8 or x.ndim != 2 or x.shape[1] != 3072:
        raise _format_error(where, f"b'data' is {x.dtype} with shape {x.shape}", expected, FORMATS)
    if y.ndim != 1 or len(y) != len(x) or not np.issubdtype(y.dtype, np.integer):
        raise _format_error(where, f"b'{label_key}' has shape {y.shape} and dtype {y.dtype} for {len(x)} images", expected, FORMATS)
    return x.reshape(-1, 3, 32, 32), y.astype(np.int64)


class _Source:
    """Named files of the batch folder ``folder``, from a folder or (read in one pass) a tarball."""

    def __init__(self, path: Path, folder: str, names: list[str]):
        self.path, self.folder = path, folder
        if path.is_file():
            with _reading(path, f"the folder {folder}/ inside the archive", FORMATS):
                inside = lambda n: PurePosixPath(n).parent.name == folder and PurePosixPath(n).name in names
                self.files = {PurePosixPath(n).name: (data, f"{path}:{n}") for n, data in iter_tar_files(path, inside)}
        else:
            base = path / folder if (path / folder).is_dir() else path
            self.files = {n: base / n for n in names if (base / n).is_file()}

    def read(self, name: str) -> tuple[bytes, str]:
        if name not in self.files:
            raise _format_error(
                self.path, f"has no file {name!r}",
                f"the folder {self.folder}/ with {', '.join(_expected(self.folder))}", FORMATS,
            )
        f = self.files[name]
        return f if isinstance(f, tuple) else (f.read_bytes(), str(f))


def _expected(folder: str) -> list[str]:
    for top, train, test, meta in _LAYOUT.values():
        if top == folder:
            return [*train, *test, meta]
    return []


def is_cifar_pickle_source(path: Path, name: str) -> bool:
    """Whether ``path`` holds the pickle layout of ``name``: the batch folder itself, a folder
    containing it, or a tarball whose first member lies under it."""
    top, train, _, _ = _LAYOUT[name]
    if path.is_dir():
        return (path / top / train[0]).is_file() or (path / train[0]).is_file()
    try:
        if not (path.is_file() and tarfile.is_tarfile(path)):
            return False
        with tarfile.open(path, "r:*") as tar:
            first = tar.next()
            return first is not None and first.name.lstrip("./").split("/")[0] == top
    except (tarfile.TarError, EOFError, OSError):
        return False  # not a readable archive: the image-folder reader reports it


def read_cifar_pickles(path: Path, name: str, *, coarse: bool = False) -> tuple[tuple, tuple, tuple[str, ...]]:
    """``((x_train, y_train), (x_test, y_test), class_names)``; x uint8 ``N x 3 x 32 x 32``.

    ``name`` is ``"cifar10"`` or ``"cifar100"``; ``coarse=True`` takes CIFAR-100's 20
    superclass labels instead of the 100 fine ones.
    """
    top, train_files, test_files, meta_file = _LAYOUT[name]
    src = _Source(path, top, [*train_files, *test_files, meta_file])
    label_key = "labels" if name == "cifar10" else ("coarse_labels" if coarse else "fine_labels")
    names_key = "label_names" if name == "cifar10" else ("coarse_label_names" if coarse else "fine_label_names")
    meta_bytes, meta_where = src.read(meta_file)
    meta = _unpickle(meta_bytes, meta_where)
    if names_key not in meta:
        raise _format_error(meta_where, f"has keys {sorted(meta)}", f"a dict with b'{names_key}'", FORMATS)
    classes = tuple(_str(c) for c in meta[names_key])

    def read(files: list[str]) -> tuple[np.ndarray, np.ndarray]:
        parts = []
        for f in files:
            data, where = src.read(f)
            parts.append(_batch(_unpickle(data, where), label_key, where))
        x, y = np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])
        if y.min() < 0 or y.max() >= len(classes):
            raise DataFormatError(f"{path}: labels in [{y.min()}, {y.max()}] outside the {len(classes)} classes of {meta_where}")
        return x, y

    return read(train_files), read(test_files), classes
