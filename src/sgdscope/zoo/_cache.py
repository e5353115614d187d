"""On-disk cache of decoded data sets: ``.npy`` arrays beside a ``stamp.json``.

The stamp records the source (absolute path, size in bytes, mtime in ns; for a folder: number
of files, total size and newest mtime), the reader's parameters and format version. A cached
entry is used only when all of them match, so a changed source is decoded again. Files are
written to temporary names and renamed into place, the stamp last: a killed writer leaves no
entry that looks valid.

Location: the ``cache_dir`` argument, else ``$SGDSCOPE_CACHE``, else
``$XDG_CACHE_HOME/sgdscope``, else ``~/.cache/sgdscope``.
"""

from __future__ import annotations

import hashlib
import json
import os
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np

Arrays = dict[str, np.ndarray]


def cache_root(cache_dir: str | os.PathLike | None = None) -> Path:
    """The cache directory in use (see the module docstring for the order of lookup)."""
    if cache_dir is not None:
        return Path(cache_dir).expanduser()
    if os.environ.get("SGDSCOPE_CACHE"):
        return Path(os.environ["SGDSCOPE_CACHE"]).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "sgdscope"


def source_stamp(path: str | os.PathLike) -> dict:
    """Identity of a source file or folder: absolute path, size, mtime (and file count)."""
    p = Path(path).resolve()
    if p.is_file():
        st = p.stat()
        return {"path": str(p), "size": st.st_size, "mtime_ns": st.st_mtime_ns}
    files = size = newest = 0
    for dirpath, _, names in os.walk(p):
        for n in names:
            st = os.stat(os.path.join(dirpath, n))
            files, size, newest = files + 1, size + st.st_size, max(newest, st.st_mtime_ns)
    return {"path": str(p), "files": files, "size": size, "mtime_ns": newest}


def _atomic_write(path: Path, write: Callable[[Path], None]) -> None:
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def _save_npy(path: Path, array: np.ndarray) -> None:
    def write(tmp: Path) -> None:
        with open(tmp, "wb") as f:
            np.save(f, array, allow_pickle=False)

    _atomic_write(path, write)


def _entry(kind: str, source: str | os.PathLike, params: dict, cache_dir: str | os.PathLike | None) -> tuple[dict, Path]:
    stamp = {"kind": kind, "source": source_stamp(source), "params": params}
    key = hashlib.sha256(json.dumps([kind, stamp["source"]["path"], params], sort_keys=True).encode()).hexdigest()[:16]
    return stamp, cache_root(cache_dir) / kind / key


def lookup(kind: str, source: str | os.PathLike, params: dict, cache_dir: str | os.PathLike | None = None) -> tuple[Arrays, dict] | None:
    """``(arrays, meta)`` of a valid cache entry for this source and parameters, else ``None``."""
    stamp, entry = _entry(kind, source, params, cache_dir)
    try:
        old = json.loads((entry / "stamp.json").read_text())
        if all(old.get(k) == v for k, v in stamp.items()):
            return {n: np.load(entry / f"{n}.npy", allow_pickle=False) for n in old["arrays"]}, old["meta"]
    except (OSError, ValueError, KeyError, TypeError):
        pass  # no entry, a stale one or a damaged one
    return None


def cached(
    kind: str,
    source: str | os.PathLike,
    params: dict,
    build: Callable[[], tuple[Arrays, dict]],
    cache_dir: str | os.PathLike | None = None,
) -> tuple[Arrays, dict]:
    """Arrays and JSON metadata of ``build()``, from the cache when its stamp matches.

    ``kind`` names the reader (e.g. ``"imagefolder-v1"``: bump the version when the decoded
    format changes), ``params`` the reader's options (JSON-serialisable). Returns
    ``(arrays, meta)``. When the cache directory cannot be written a warning is issued and the
    freshly built arrays are returned.
    """
    hit = lookup(kind, source, params, cache_dir)
    if hit is not None:
        return hit
    stamp, entry = _entry(kind, source, params, cache_dir)
    stamp_path = entry / "stamp.json"
    arrays, meta = build()
    try:
        entry.mkdir(parents=True, exist_ok=True)
        if stamp_path.exists():
            stamp_path.unlink()
        for n, a in arrays.items():
            _save_npy(entry / f"{n}.npy", np.ascontiguousarray(a))
        text = json.dumps({**stamp, "arrays": sorted(arrays), "meta": meta}, indent=1, sort_keys=True)
        _atomic_write(stamp_path, lambda tmp: tmp.write_text(text))
    except OSError as err:
        warnings.warn(f"sgdscope: could not write the data cache at {entry} ({err}); set SGDSCOPE_CACHE to a writable folder", stacklevel=2)
    return arrays, meta
