"""One writer per folder: an exclusive OS file lock on ``FOLDER/.lock``.

The lock is ``flock`` on a file inside the folder, so the OS releases it when the holding process
ends, however it ends (``kill -9`` included): a killed holder never blocks the folder. The holder
writes its host and pid into the file, and a second process that cannot take the lock refuses with
one line naming them (:class:`FolderLocked`). Where ``fcntl`` is missing (Windows), no lock is taken.
"""
from __future__ import annotations

import os
import socket
from pathlib import Path

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None

__all__ = ["LOCK", "FolderLock", "FolderLocked", "holder", "pid_alive"]

LOCK = ".lock"


class FolderLocked(RuntimeError):
    """Another live process holds the folder's lock; the message names its host and pid."""


def holder(folder: str | os.PathLike) -> str:
    """"host vm, pid 1234": who wrote the folder's lock file last ("unknown" if nobody did)."""
    try:
        host, pid = (Path(folder) / LOCK).read_text().split()[:2]
    except (OSError, ValueError):
        return "unknown"
    return f"host {host}, pid {pid}"


def pid_alive(pid: int) -> bool:
    """Whether process ``pid`` exists on this host."""
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError, ValueError):
        return True
    return True


class FolderLock:
    """``FolderLock(folder, what).acquire()`` takes the lock or raises :class:`FolderLocked`
    ("``folder``: another process writes this ``what`` (host vm, pid 1234)"); ``release()`` frees it."""

    def __init__(self, folder: str | os.PathLike, what: str):
        self.folder, self.what = Path(folder), what
        self._fd: int | None = None

    def acquire(self) -> "FolderLock":
        if fcntl is None or self._fd is not None:
            return self
        fd = os.open(self.folder / LOCK, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise FolderLocked(f"{self.folder}: another process writes this {self.what} ({holder(self.folder)}); "
                               f"wait for it to end or stop it") from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{socket.gethostname()} {os.getpid()}\n".encode())
        self._fd = fd
        return self

    def release(self) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def __enter__(self) -> "FolderLock":
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()
