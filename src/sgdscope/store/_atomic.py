"""Atomic file and directory writes: temp name in the same directory, fsync, ``os.replace``.

A reader (or a process restarted after ``SIGKILL``) sees either the previous version of a
file or the new one, never a torn write. Temp names start with ``.`` and contain
:data:`TMP_MARK`, so pyarrow's dataset discovery and the run-store readers ignore them and
:func:`remove_stale_temps` can clean up after a killed writer.
"""
from __future__ import annotations

import json
import os
import secrets
import shutil
from pathlib import Path
from typing import Any, BinaryIO, Callable

__all__ = [
    "TMP_MARK", "atomic_write", "atomic_write_bytes", "atomic_write_text", "atomic_write_json",
    "atomic_replace_dir",
    "temp_path", "fsync_dir", "fsync_file", "remove_dir", "remove_stale_temps",
]

TMP_MARK = ".tmp-"


def temp_path(path: Path) -> Path:
    """A fresh hidden sibling of ``path`` (same directory, so ``os.replace`` is atomic)."""
    return path.parent / f".{path.name}{TMP_MARK}{os.getpid()}-{secrets.token_hex(4)}"


def fsync_dir(path: Path) -> None:
    """Make a rename inside directory ``path`` durable (no-op where directories can't be opened)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:  # e.g. Windows
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def fsync_file(path: Path) -> None:
    """Flush an already written file's data to disk."""
    with open(path, "rb+") as f:
        os.fsync(f.fileno())


def atomic_write(path: str | os.PathLike, write: Callable[[BinaryIO], None]) -> Path:
    """Write ``path`` atomically: ``write(f)`` fills a temp file that replaces ``path``.

    If ``write`` or the replace fails, the temp file is removed, the previous ``path`` is
    left untouched and the error propagates.
    """
    path = Path(path)
    tmp = temp_path(path)
    try:
        with open(tmp, "xb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)
    return path


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Atomically replace ``path`` with ``data``."""
    return atomic_write(path, lambda f: f.write(data))


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    """Atomically replace ``path`` with UTF-8 ``text``."""
    return atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: str | os.PathLike, obj: Any) -> Path:
    """Atomically write ``obj`` as indented JSON (NaN kept as ``NaN``); tensors and arrays
    become lists, paths strings, anything else unknown its ``repr``."""
    return atomic_write_text(path, json.dumps(obj, indent=1, default=_jsonable) + "\n")


def _jsonable(x: Any) -> Any:
    if hasattr(x, "tolist"):  # torch tensors, numpy arrays and scalars
        return x.tolist()
    if isinstance(x, os.PathLike):
        return os.fspath(x)
    return repr(x)


def remove_dir(path: Path) -> None:
    """Delete directory ``path``: first renamed to a hidden temp name (one atomic step, so a
    half-deleted directory never keeps its name), then removed recursively."""
    trash = temp_path(path)
    os.rename(path, trash)
    shutil.rmtree(trash, ignore_errors=True)


def atomic_replace_dir(path: Path, fill: Callable[[Path], None]) -> Path:
    """Create directory ``path`` atomically: ``fill(tmp_dir)`` writes the files (each is
    fsynced here), then the temp directory is renamed to ``path``, replacing an old one."""
    tmp = temp_path(path)
    tmp.mkdir()
    try:
        fill(tmp)
        for file in tmp.rglob("*"):
            if file.is_file():
                fsync_file(file)
        fsync_dir(tmp)
        if path.exists():
            remove_dir(path)
        os.rename(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    fsync_dir(path.parent)
    return path


def remove_stale_temps(root: Path) -> list[Path]:
    """Remove the temp files and directories that killed writers left below ``root``."""
    stale = sorted(p for p in Path(root).rglob(f".*{TMP_MARK}*"))
    removed = []
    for p in stale:
        if not p.exists():  # inside an already removed temp directory
            continue
        if p.is_dir():
            shutil.rmtree(p, ignore_errors=True)
        else:
            p.unlink(missing_ok=True)
        removed.append(p)
    return removed
