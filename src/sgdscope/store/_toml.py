"""TOML for resolved configs: ``tomllib`` (or ``tomli`` on Python 3.10) to read, a small own
writer for nested dicts of str / int / float / bool / lists.

Writer rules: a dict nested in a dict becomes a ``[table]``; a dict inside a list becomes an
inline table; tuples are written as lists, numpy scalars and ``os.PathLike`` as their Python
value; a ``None`` value in a dict is omitted (TOML has no null; the reader sees the key as
missing), anywhere else it is an error. Floats are written with ``repr`` (shortest exact
round trip) and ``nan`` / ``inf`` / ``-inf`` as TOML's special floats.
"""
from __future__ import annotations

import math
import numbers
import os
import re
import sys
from pathlib import Path
from typing import Any, Mapping

from ._atomic import atomic_write_text

if sys.version_info >= (3, 11):
    import tomllib as _tomllib
else:  # pragma: no cover - Python 3.10
    try:
        import tomli as _tomllib
    except ImportError:
        _tomllib = None

__all__ = [
    "dumps", "loads", "read_toml", "write_toml", "normalize", "flatten_config", "config_diff",
]

_BARE_KEY = re.compile(r"^[A-Za-z0-9_-]+$")
_ESCAPES = {'"': '\\"', "\\": "\\\\", "\b": "\\b", "\t": "\\t", "\n": "\\n", "\f": "\\f",
            "\r": "\\r"}
_INT64 = (-(2**63), 2**63 - 1)


def loads(text: str) -> dict:
    """Parse TOML ``text`` into a dict (``tomllib``; ``tomli`` on Python 3.10)."""
    if _tomllib is None:  # pragma: no cover - Python 3.10 without tomli
        raise ImportError("reading TOML on Python 3.10 needs tomli: pip install tomli")
    return _tomllib.loads(text)


def read_toml(path: str | os.PathLike) -> dict:
    """Read the TOML file ``path``; a parse error names the file."""
    path = Path(path)
    try:
        return loads(path.read_text(encoding="utf-8"))
    except ValueError as e:  # tomllib.TOMLDecodeError is a ValueError
        raise ValueError(f"{path}: not valid TOML: {e}") from e


def write_toml(path: str | os.PathLike, data: Mapping[str, Any]) -> Path:
    """Atomically write the nested dict ``data`` to ``path`` as TOML."""
    return atomic_write_text(path, dumps(data))


def normalize(config: Mapping[str, Any]) -> dict:
    """``config`` as it reads back from TOML (tuples -> lists, None-valued keys dropped)."""
    return loads(dumps(config))


def flatten_config(config: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"optimizer": {"lr": 0.1}}`` -> ``{"optimizer.lr": 0.1}``; lists become tuples."""
    flat: dict[str, Any] = {}
    for key, value in config.items():
        full = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat.update(flatten_config(value, full + "."))
        else:
            flat[full] = _hashable(value)
    return flat


def _hashable(value: Any) -> Any:
    if isinstance(value, list):
        return tuple(_hashable(v) for v in value)
    if isinstance(value, dict):
        return tuple((k, _hashable(v)) for k, v in value.items())
    return value


def config_diff(a: Mapping[str, Any], b: Mapping[str, Any]) -> list[str]:
    """The flattened keys where configs ``a`` and ``b`` differ, each as
    "key (a VALUE, b VALUE)"; values compare by ``repr``, so NaN equals NaN."""
    fa, fb = ({k: repr(v) for k, v in flatten_config(c).items()} for c in (a, b))
    return [f"{k} ({fa.get(k, '<missing>')} vs {fb.get(k, '<missing>')})"
            for k in sorted(fa.keys() | fb.keys()) if fa.get(k) != fb.get(k)]


def dumps(data: Mapping[str, Any]) -> str:
    """Serialize a nested dict of str / int / float / bool / lists / dicts to TOML text."""
    if not isinstance(data, Mapping):
        raise TypeError(f"TOML document must be a mapping, got {type(data).__name__}")
    lines: list[str] = []
    _table(data, (), lines)
    return "\n".join(lines).lstrip("\n") + ("\n" if lines else "")


def _table(table: Mapping[str, Any], path: tuple[str, ...], lines: list[str]) -> None:
    """Emit ``table``'s plain keys, then each sub-table under its ``[dotted.header]``."""
    subtables = []
    for key, value in table.items():
        _check_key(key, path)
        if value is None:
            continue
        if isinstance(value, Mapping):
            subtables.append((key, value))
        else:
            lines.append(f"{_key(key)} = {_value(value, path + (key,))}")
    for key, value in subtables:
        sub = path + (key,)
        lines.append("")
        lines.append("[" + ".".join(_key(k) for k in sub) + "]")
        _table(value, sub, lines)


def _value(value: Any, where: tuple[str, ...]) -> str:
    """One TOML value (inline form); ``where`` is the key path, for errors."""
    if isinstance(value, (bool, _np_bool())):
        return "true" if value else "false"
    if isinstance(value, numbers.Integral):
        value = int(value)
        if not _INT64[0] <= value <= _INT64[1]:
            raise ValueError(f"{_where(where)}: integer {value} does not fit TOML's 64 bits")
        return str(value)
    if isinstance(value, numbers.Real):
        value = float(value)
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return repr(value)
    if isinstance(value, str):
        return _string(value)
    if isinstance(value, os.PathLike):
        return _string(os.fspath(value))
    if isinstance(value, Mapping):
        items = []
        for k, v in value.items():
            _check_key(k, where)
            if v is not None:
                items.append(f"{_key(k)} = {_value(v, where + (k,))}")
        return "{" + ", ".join(items) + "}"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_value(v, where + (f"[{i}]",)) for i, v in enumerate(value)) + "]"
    raise TypeError(
        f"{_where(where)}: cannot write {type(value).__name__} {value!r} to TOML; "
        "expected str, int, float, bool, list or dict"
    )


def _string(s: str) -> str:
    """A TOML basic string, escaping quotes, backslashes and control characters."""
    out = []
    for ch in s:
        if ch in _ESCAPES:
            out.append(_ESCAPES[ch])
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append(f"\\u{ord(ch):04X}")
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


def _key(key: str) -> str:
    return key if _BARE_KEY.match(key) else _string(key)


def _check_key(key: Any, path: tuple[str, ...]) -> None:
    if not isinstance(key, str):
        raise TypeError(f"{_where(path)}: TOML keys must be str, got {type(key).__name__} {key!r}")


def _where(path: tuple[str, ...]) -> str:
    return "config key " + (".".join(path) if path else "<root>")


def _np_bool() -> type:
    """numpy's bool scalar type (a bool that is not a Python ``bool``), or ``bool``."""
    np = sys.modules.get("numpy")
    return np.bool_ if np is not None else bool
