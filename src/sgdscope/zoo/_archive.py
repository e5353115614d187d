"""Read the files of a tar archive (``.tar``, ``.tar.gz``, ``.tgz``, ``.tar.bz2``, ``.tar.xz``) in one pass.

A truncated archive must never read as a shorter, valid one. tarfile alone stops quietly
when the cut falls between members or in the end padding, so after the last member the
compressed stream is read to its end (which checks the gzip / bz2 / xz trailer), and a plain
``.tar`` must end with its zero end-of-archive blocks. Errors surface as ``EOFError`` or
``tarfile.ReadError``; readers wrap them with ``_errors._reading``.
"""

from __future__ import annotations

import tarfile
from collections.abc import Callable, Iterator
from pathlib import Path


def iter_tar_files(path: Path, want: Callable[[str], bool] = lambda name: True) -> Iterator[tuple[str, bytes]]:
    """Yield ``(member name, contents)`` for the regular files of ``path`` whose name ``want`` accepts."""
    with tarfile.open(path, "r:*") as tar:
        for member in tar:
            if member.isfile() and want(member.name):
                f = tar.extractfile(member)
                data = f.read()
                if len(data) != member.size:
                    raise tarfile.ReadError(f"unexpected end of data in {member.name}")
                yield member.name, data
        stream = tar.fileobj
        if stream.__class__.__module__ in ("gzip", "bz2", "lzma"):
            while stream.read(1 << 20):  # to the end: the decompressor checks the trailer
                pass
        else:
            with open(path, "rb") as raw:
                raw.seek(0, 2)
                size = raw.tell()
                raw.seek(max(0, size - 1024))
                if size < 1024 or size % 512 or raw.read(1024).strip(b"\0"):
                    raise tarfile.ReadError("no end-of-archive marker (the file was cut short)")
