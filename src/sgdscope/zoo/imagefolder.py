"""Image-folder trees: ``train/<class>/*.png|jpg`` and ``test/<class>/...``, in a folder or a tarball.

Images are decoded once with Pillow (converted to RGB or L) and cached as uint8 arrays
(``_cache``); a changed source (path, size or mtime) is decoded again. A tarball is read in
one streaming pass, member by member, without extracting it. Files are ordered by (split,
class, file name); labels are the indices of the sorted class-folder names of ``train/``
(torchvision's ``ImageFolder`` convention, which for CIFAR-10 is also its label order).
"""

from __future__ import annotations

import io
import os
from collections.abc import Iterator
from pathlib import Path, PurePosixPath

import numpy as np
from PIL import Image, UnidentifiedImageError
from tqdm import tqdm

from ._archive import iter_tar_files
from ._cache import cached
from ._errors import _choice, _format_error, _reading

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".ppm", ".gif", ".webp")
SPLITS = ("train", "test")
LAYOUT = "an image-folder tree train/<class>/<image> and test/<class>/<image> (all images the same size)"
FORMATS = f"image files {', '.join(IMAGE_EXTENSIONS)} in a folder or a .tar/.tar.gz archive"
_VERSION = "imagefolder-v1"


def _parse(relpath: str) -> tuple[str, str, str] | None:
    """``(split, class, name)`` of an image path ``[...]/<split>/<class>/<name>``, else None."""
    parts = PurePosixPath(relpath).parts
    if len(parts) < 3 or not parts[-1].lower().endswith(IMAGE_EXTENSIONS) or parts[-3] not in SPLITS:
        return None
    return parts[-3], parts[-2], parts[-1]


def _iter_files(path: Path) -> Iterator[tuple[tuple[str, str, str], bytes, str]]:
    """Yield ``((split, class, name), encoded bytes, where)`` for each image under ``path``."""
    if path.is_file():
        for name, data in iter_tar_files(path, lambda name: _parse(name) is not None):
            yield _parse(name), data, f"{path}:{name}"
        return
    for dirpath, dirnames, names in os.walk(path):
        dirnames.sort()
        for n in sorted(names):
            full = Path(dirpath) / n
            key = _parse(full.relative_to(path).as_posix())
            if key is not None:
                yield key, full.read_bytes(), str(full)


def _decode(data: bytes, where: str, mode: str) -> np.ndarray:
    try:
        with Image.open(io.BytesIO(data)) as im:
            return np.asarray(im.convert(mode), dtype=np.uint8)
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as err:
        raise _format_error(where, f"is not a readable image ({err})", LAYOUT, FORMATS) from err


def _decode_tree(path: Path, mode: str, every: int = 1) -> tuple[dict[str, np.ndarray], dict]:
    """Decode the tree; ``every > 1`` keeps only every ``every``-th image of the stream (tests)."""
    items: list[tuple[tuple[str, str, str], np.ndarray]] = []
    shape = None
    with _reading(path, LAYOUT, FORMATS):
        for i, (key, data, where) in enumerate(tqdm(_iter_files(path), desc=f"decoding {path.name}", unit="img", disable=None)):
            if i % every:
                continue
            img = _decode(data, where, mode)
            if shape is None:
                shape = img.shape
            elif img.shape != shape:
                raise _format_error(where, f"has shape {img.shape} but the first image had {shape}", LAYOUT, FORMATS)
            items.append((key, img))
    classes = sorted({k[1] for k, _ in items if k[0] == "train"})
    if not classes:
        raise _format_error(path, "has no images under train/<class>/", LAYOUT, FORMATS)
    unknown = sorted({k[1] for k, _ in items if k[0] == "test"} - set(classes))
    if unknown:
        raise _format_error(path, f"has test classes {unknown} with no train/ folder", LAYOUT, FORMATS)
    index = {c: i for i, c in enumerate(classes)}
    items.sort(key=lambda kv: kv[0])
    arrays: dict[str, np.ndarray] = {}
    for split in SPLITS:
        imgs = [img for k, img in items if k[0] == split]
        x = np.stack(imgs) if imgs else np.zeros((0, *shape), dtype=np.uint8)
        x = x[..., None] if x.ndim == 3 else x  # L mode: N x H x W -> N x H x W x 1
        arrays[f"x_{split}"] = np.ascontiguousarray(x.transpose(0, 3, 1, 2))
        arrays[f"y_{split}"] = np.array([index[k[1]] for k, _ in items if k[0] == split], dtype=np.int64)
    return arrays, {"classes": classes}


def read_image_folder(path: str | os.PathLike, *, mode: str = "RGB", cache_dir: str | os.PathLike | None = None) -> tuple[tuple, tuple, tuple[str, ...]]:
    """``((x_train, y_train), (x_test, y_test), classes)`` of an image-folder tree.

    ``path`` is the folder holding ``train/`` and ``test/`` (or a tarball of it; the two may
    sit one level deeper inside). x is uint8 ``N x C x H x W`` (C = 3 for ``mode="RGB"``, 1 for
    ``"L"``), y int64. Decoded arrays are cached (see ``sgdscope.zoo._cache``).
    """
    _choice("image mode", mode, ("RGB", "L"))
    path = Path(path)
    if not path.exists():
        raise _format_error(path, "does not exist", LAYOUT, FORMATS)
    arrays, meta = cached(_VERSION, path, {"mode": mode}, lambda: _decode_tree(path, mode), cache_dir)
    return (arrays["x_train"], arrays["y_train"]), (arrays["x_test"], arrays["y_test"]), tuple(meta["classes"])
