"""Errors of the zoo and the small checks that raise them.

Every error names the bad value and what was expected, so a typo in a config file is fixed
from the message alone.
"""

from __future__ import annotations

import gzip
import tarfile
import zlib
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

__all__ = ["DataFormatError"]


class DataFormatError(ValueError):
    """A data file or folder is missing, truncated or not in a supported format.

    The message names the path, the layout that was expected and the formats supported.
    """


def _choice(kind: str, value: object, allowed: Iterable[str]) -> None:
    """Raise ``ValueError`` unless ``value`` is one of ``allowed`` (listed in the message)."""
    allowed = list(allowed)
    if value not in allowed:
        raise ValueError(f"unknown {kind} {value!r}; expected one of: {', '.join(map(str, allowed))}")


def _lookup(kind: str, value: str, table: Mapping[str, object]) -> object:
    """``table[value]``, or a ``ValueError`` that lists the known keys."""
    if not isinstance(value, str) or value not in table:
        raise ValueError(f"unknown {kind} {value!r}; expected one of: {', '.join(sorted(table))}")
    return table[value]


def _format_error(path: str | Path, problem: str, expected: str, formats: str) -> DataFormatError:
    """Build a ``DataFormatError`` that names the path, the problem, the layout and formats."""
    return DataFormatError(f"{path}: {problem}. Expected {expected}. Supported formats: {formats}.")


@contextmanager
def _reading(path: str | Path, expected: str, formats: str) -> Iterator[None]:
    """Turn the low-level errors of a cut-short or corrupt archive into a ``DataFormatError``."""
    try:
        yield
    except DataFormatError:
        raise
    except (tarfile.TarError, EOFError, zlib.error, gzip.BadGzipFile, UnicodeDecodeError) as err:
        raise _format_error(path, f"is truncated or corrupt ({type(err).__name__}: {err})", expected, formats) from err
