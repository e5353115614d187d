"""``load_dataset`` / ``list_datasets``: the papers' data sets as tensors, split deterministically.

Where the files are (``root=None``): for each of the data set's folder names (e.g. ``mnist``,
``cifar10-jpg``), first ``$SGDSCOPE_DATA/<folder>``, then ``../shared/data/<folder>`` relative
to the current working directory. ``root`` may also name the data directly: the folder holding
the files, a parent of it (torchvision's ``MNIST/raw``, ``cifar-10-batches-py``, ``aclImdb``
are found inside), or an archive.
"""

from __future__ import annotations

import inspect
import os
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

import torch

from . import cifar, embedded, idx, imagefolder, imdb
from ._errors import DataFormatError, _format_error, _lookup
from .splits import Dataset, _make_dataset

__all__ = ["load_dataset", "list_datasets", "default_roots"]

_FASHION = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot")
_ARCHIVES = (".tar.gz", ".tgz", ".tar")


class _Reader(NamedTuple):
    read: Callable[..., tuple]  # (root | None, cache_dir, **options) -> (train, test, num_classes, classes, meta)
    folders: tuple[str, ...]  # folder names searched under the default roots; () = needs no files
    formats: str


def default_roots(folders: tuple[str, ...]) -> list[Path]:
    """Candidate locations for a data set's folders, in lookup order (see the module docstring)."""
    bases = ([Path(os.environ["SGDSCOPE_DATA"]).expanduser()] if os.environ.get("SGDSCOPE_DATA") else []) + [Path.cwd() / ".." / "shared" / "data"]
    return [b / f for b in bases for f in folders]


def _archives(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_file() and p.name.endswith(_ARCHIVES)) if folder.is_dir() else []


def _read_idx(root: Path, cache_dir, *, classes: tuple[str, ...], torchvision_dir: str) -> tuple:
    for sub in ("", "raw", f"{torchvision_dir}/raw", torchvision_dir):
        folder = root / sub
        if any((folder / (idx.FILES["train_images"] + ext)).is_file() for ext in ("", ".gz")):
            train, test = idx.read_mnist_folder(folder, num_classes=len(classes))
            return train, test, len(classes), classes, {"source": str(folder)}
    raise _format_error(root, "holds no IDX files", f"{', '.join(idx.FILES.values())} (each optionally .gz) in it, in raw/ or in {torchvision_dir}/raw/", idx.FORMATS)


def _read_cifar(root: Path, cache_dir, *, which: str, coarse: bool = False) -> tuple:
    if coarse and which != "cifar100":
        raise ValueError(f"coarse=True is a CIFAR-100 option (20 superclasses); {which} has no coarse labels")
    candidates = [root] + _archives(root)
    for src in candidates:
        if cifar.is_cifar_pickle_source(src, which):
            train, test, classes = cifar.read_cifar_pickles(src, which, coarse=coarse)
            return train, test, len(classes), classes, {"source": str(src), "format": "pickle"}
    for src in candidates:
        if src.is_file() or (src / "train").is_dir():
            if coarse:
                raise ValueError(f"{src}: coarse=True needs the CIFAR-100 pickles (an image-folder tree has one label per image)")
            train, test, classes = imagefolder.read_image_folder(src, cache_dir=cache_dir)
            k = 10 if which == "cifar10" else 100
            if len(classes) != k or train[0].shape[1:] != (3, 32, 32):
                raise _format_error(
                    src, f"is an image-folder tree of {len(classes)} classes of {train[0].shape[1:]} images",
                    f"{k} classes of 3 x 32 x 32 images for {which} (use load_dataset('imagefolder') for other trees)", cifar.FORMATS,
                )
            return train, test, k, classes, {"source": str(src), "format": "imagefolder"}
    top = cifar._LAYOUT[which][0]
    raise _format_error(
        root, "holds neither CIFAR pickles nor an image-folder tree",
        f"{top}/ (or its .tar.gz), or train/<class>/ and test/<class>/ (or a .tar.gz of them)", cifar.FORMATS,
    )


def _read_imagefolder(root: Path, cache_dir, *, mode: str = "RGB") -> tuple:
    src = root if root.is_file() or (root / "train").is_dir() else next(iter(_archives(root)), root)
    train, test, classes = imagefolder.read_image_folder(src, mode=mode, cache_dir=cache_dir)
    return train, test, len(classes), classes, {"source": str(src)}


def _read_imdb(root: Path, cache_dir, *, num_words: int = 20_000, maxlen: int = 80, side: str = "pre") -> tuple:
    src = root
    if root.is_dir() and not (root / "aclImdb").is_dir() and not (root / "train").is_dir():
        src = next(iter(_archives(root)), root)
    train, test, vocab = imdb.read_imdb(src, num_words=num_words, maxlen=maxlen, side=side, cache_dir=cache_dir)
    meta = {"source": str(src), "vocab": vocab, "pad_id": imdb.PAD_ID, "oov_id": imdb.OOV_ID, "num_words": num_words, "side": side}
    return train, test, 2, imdb.LABELS, meta


def _embedded(fn: Callable[..., tuple], classes: tuple[str, ...]) -> Callable[..., tuple]:
    sig = inspect.signature(fn)

    def read(root, cache_dir, **options):
        train, test = fn(**options)
        k = int(options.get("num_classes", sig.parameters["num_classes"].default if "num_classes" in sig.parameters else len(classes)))
        return train, test, k, classes or tuple(str(i) for i in range(k)), {}

    read.__signature__ = inspect.Signature(
        [inspect.Parameter("root", inspect.Parameter.POSITIONAL_ONLY), inspect.Parameter("cache_dir", inspect.Parameter.POSITIONAL_ONLY)]
        + [p.replace(kind=inspect.Parameter.KEYWORD_ONLY) for p in sig.parameters.values()]
    )
    return read


def _partial(fn: Callable[..., tuple], **fixed) -> Callable[..., tuple]:
    def read(root, cache_dir, **options):
        return fn(root, cache_dir, **fixed, **options)

    params = [p for n, p in inspect.signature(fn).parameters.items() if n not in fixed]
    read.__signature__ = inspect.Signature(params)
    return read


_DIGITS = tuple(str(i) for i in range(10))
_DATASETS: dict[str, _Reader] = {
    "mnist": _Reader(_partial(_read_idx, classes=_DIGITS, torchvision_dir="MNIST"), ("mnist", "MNIST"), idx.FORMATS),
    "fashion_mnist": _Reader(_partial(_read_idx, classes=_FASHION, torchvision_dir="FashionMNIST"), ("fashion-mnist", "fashion_mnist", "FashionMNIST"), idx.FORMATS),
    "cifar10": _Reader(_partial(_read_cifar, which="cifar10"), ("cifar10-jpg", "cifar10", "cifar-10-batches-py", "CIFAR10"), cifar.FORMATS),
    "cifar100": _Reader(_partial(_read_cifar, which="cifar100"), ("cifar100", "cifar-100-python", "CIFAR100"), cifar.FORMATS),
    "imagefolder": _Reader(_read_imagefolder, (), imagefolder.FORMATS),
    "imdb": _Reader(_read_imdb, ("imdb", "aclImdb"), imdb.FORMATS),
    "digits": _Reader(_embedded(embedded.read_digits, _DIGITS), (), "built into scikit-learn"),
    "mnist1d": _Reader(_embedded(embedded.read_mnist1d, _DIGITS), (), "generated by the mnist1d package"),
    "synthetic": _Reader(_embedded(embedded.make_synthetic, ()), (), "generated"),
}
_NEEDS_ROOT = ("imagefolder",)


def list_datasets() -> list[str]:
    """Names accepted by ``load_dataset``, sorted."""
    return sorted(_DATASETS)


def _find_root(name: str, root, reader: _Reader) -> Path | None:
    if root is not None:
        path = Path(root).expanduser()
        if not path.exists():
            raise _format_error(path, "does not exist", f"the {name} data at root", reader.formats)
        return path
    if not reader.folders:
        if name in _NEEDS_ROOT:
            raise ValueError(f"load_dataset({name!r}) needs root= (a folder or archive with train/<class>/ and test/<class>/)")
        return None
    tried = default_roots(reader.folders)
    for path in tried:
        if path.exists():
            return path
    raise DataFormatError(
        f"{name} not found; looked in {', '.join(str(p) for p in tried)}. Pass root= (the data's folder or "
        f"archive) or set SGDSCOPE_DATA to a folder containing one of {', '.join(reader.folders)}. "
        f"Supported formats: {reader.formats}."
    )


def load_dataset(
    name: str,
    root: str | os.PathLike | None = None,
    *,
    val_size: int = 0,
    subset: int | None = None,
    seed: int = 0,
    device: torch.device | str | None = None,
    dtype: torch.dtype = torch.float32,
    cache_dir: str | os.PathLike | None = None,
    **options,
) -> Dataset:
    """Load a data set of the papers as a ``Dataset`` of tensors.

    Images come as ``dtype`` tensors ``N x C x H x W`` in [0, 1] (not normalised; see
    ``standardize``), IMDB as int64 token ids ``N x maxlen``, labels as int64 ``N``.
    ``val_size`` examples of the training split become the validation split and ``subset``
    (if given) keeps that many of the remaining training examples; both come from one
    permutation seeded by ``seed`` (``val`` does not depend on ``subset``; subsets are nested).
    The test split is never touched. ``cache_dir`` overrides where decoded images / tokens
    are cached. ``options`` go to the reader (listed in ``docs/zoo.md``; an unknown one raises
    ``TypeError`` listing the allowed ones).

    Missing, truncated or malformed files raise ``DataFormatError`` naming the path, the
    expected layout and the formats supported.
    """
    key = name.replace("-", "_") if isinstance(name, str) else name
    reader = _lookup("dataset", key, _DATASETS)
    allowed = [p.name for p in inspect.signature(reader.read).parameters.values() if p.kind == inspect.Parameter.KEYWORD_ONLY]
    bad = [k for k in options if k not in allowed]
    if bad:
        raise TypeError(
            f"load_dataset({name!r}): unexpected keyword argument(s) {', '.join(map(repr, bad))}; allowed: "
            + ", ".join(["root", "val_size", "subset", "seed", "device", "dtype", "cache_dir", *allowed])
        )
    path = _find_root(key, root, reader)
    train, test, num_classes, classes, meta = reader.read(path, cache_dir, **options)
    return _make_dataset(
        key, train, test, num_classes=num_classes, classes=tuple(classes), meta=meta,
        val_size=val_size, subset=subset, seed=seed, device=device, dtype=dtype,
    )
