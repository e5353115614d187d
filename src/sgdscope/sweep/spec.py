"""A sweep: a base config, a grid of dotted keys with values, and seeds; expanded into named points.

    spec = SweepSpec(base, grid={"optimizer.lr": [0.1, 0.01], "train.batch_size": [32, 128]}, seeds=[0, 1])
    points = spec.points()        # 8 points, each a resolved run config and a folder name
    points[0].name                # 'lr=0.1,batch_size=32,seed=0'

The same grid can stand in the config file as a ``[sweep]`` table::

    [sweep]
    seeds = [0, 1, 2]
    [sweep.grid]
    "optimizer.lr" = [0.1, 0.01, 0.001]
    "train.batch_size" = [32, 128]

Folder names use the last part of each key (``lr``), or the whole dotted key where two keys share
it; values are written as TOML would (``0.001``, ``"sgd"`` without quotes). Points are ordered
grid first (in the order of the keys), seeds last.
"""
from __future__ import annotations

import copy
import itertools
import math
import re
from dataclasses import dataclass, field

from ..run.config import ConfigError, parse_value, resolve
from ..store import _toml

__all__ = ["SweepSpec", "Point", "parse_grid", "parse_seeds", "spec_from_table"]

_SAFE = re.compile(r"[^A-Za-z0-9._+-]")


@dataclass(frozen=True)
class Point:
    """One run of a sweep: its folder ``name``, the ``values`` of the varied keys (seed included)
    and its resolved ``config``."""

    name: str
    values: dict
    config: dict = field(repr=False)


def _value_text(value) -> str:
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e16:
        text = repr(value)
    elif isinstance(value, str):
        text = value
    else:
        text = _toml.dumps({"v": value})[4:].strip()
    return _SAFE.sub("_", text)


def _short_names(keys: list[str]) -> dict[str, str]:
    last = [k.split(".")[-1] for k in keys]
    return {k: (s if last.count(s) == 1 else k) for k, s in zip(keys, last)}


def parse_grid(items) -> dict[str, list]:
    """``["optimizer.lr=0.1,0.01", "train.batch_size=32,128"]`` (the CLI's ``--grid``) -> a grid."""
    grid: dict[str, list] = {}
    for item in items:
        if "=" not in item:
            raise ConfigError(f"--grid expects KEY=V1,V2,..., got {item!r}")
        key, text = item.split("=", 1)
        key = key.strip()
        values = [parse_value(v.strip()) for v in text.split(",") if v.strip()]
        if not key or not values:
            raise ConfigError(f"--grid {item!r}: give a key and at least one value (KEY=V1,V2,...)")
        if key in grid:
            raise ConfigError(f"--grid names {key!r} twice")
        grid[key] = values
    return grid


def parse_seeds(text: str | None) -> list[int]:
    """``"0,1,2"`` -> [0, 1, 2]."""
    if text is None or text == "":
        return []
    try:
        return [int(v) for v in str(text).split(",") if v.strip()]
    except ValueError:
        raise ConfigError(f"--seeds expects integers separated by commas, got {text!r}") from None


@dataclass
class SweepSpec:
    """``base``: a raw run config (dict, not yet resolved); ``grid``: dotted key -> values;
    ``seeds``: values of the top-level ``seed`` (empty: the base config's seed only)."""

    base: dict
    grid: dict[str, list] = field(default_factory=dict)
    seeds: list[int] = field(default_factory=list)

    def __post_init__(self):
        self.base = {k: v for k, v in copy.deepcopy(self.base).items() if k != "sweep"}
        for key, values in self.grid.items():
            if not isinstance(values, list) or not values:
                raise ConfigError(f"sweep grid {key!r}: expected a non-empty list of values, got {values!r}")
            if len(set(map(repr, values))) != len(values):
                raise ConfigError(f"sweep grid {key!r}: repeated values in {values!r}")
            if key in ("seed", "name", "out"):
                raise ConfigError(f"sweep grid: {key!r} cannot be varied as a grid key" + (" (use seeds)" if key == "seed" else ""))
        if len(set(self.seeds)) != len(self.seeds):
            raise ConfigError(f"sweep seeds: repeated values in {self.seeds}")

    def as_table(self) -> dict:
        """What ``sweep.toml`` stores: the base config, the grid and the seeds."""
        return _toml.normalize({"base": self.base, "grid": self.grid, "seeds": list(self.seeds)})

    def points(self, out=None) -> list[Point]:
        """Every point, resolved (a bad key or value is an error naming the point); ``out``: the
        folder the points' run folders go in (their config's ``out``)."""
        keys = list(self.grid)
        short = _short_names(keys + ["seed"])  # "seed" always means the top-level seed
        seeds = self.seeds or [None]
        points = []
        for combo in itertools.product(*(self.grid[k] for k in keys)):
            for seed in seeds:
                values = dict(zip(keys, combo))
                if seed is not None:
                    values["seed"] = seed
                name = ",".join(f"{short[k]}={_value_text(v)}" for k, v in values.items()) or "base"
                raw = copy.deepcopy(self.base)
                for key, value in values.items():
                    _set(raw, key, value)
                raw["name"] = name
                if out is not None:
                    raw["out"] = str(out)
                try:
                    config = resolve(raw)
                except ConfigError as err:
                    raise ConfigError(f"sweep point {name}: {err}") from None
                points.append(Point(name, values, config))
        return points

    def diff(self, stored: dict) -> list[str]:
        """What changed against a stored :meth:`as_table` ("grid.optimizer.lr ([0.1] vs [0.1, 0.01])", ...)."""
        return _toml.config_diff(stored, self.as_table())

    def extends(self, stored: dict) -> bool:
        """Whether this spec keeps the stored base config and every stored point (adds only)."""
        if _toml.config_diff(stored.get("base", {}), self.as_table()["base"]):
            return False
        old, new = stored.get("grid", {}), self.as_table()["grid"]
        if list(old) != list(new)[: len(old)] or len(old) != len(new):
            return False
        same = all(all(_contains(new[k], v) for v in old[k]) for k in old)
        return same and all(s in self.seeds for s in stored.get("seeds", []))


def _set(config: dict, key: str, value) -> None:
    node, parts = config, key.split(".")
    for part in parts[:-1]:
        node = node.setdefault(part, {})
        if not isinstance(node, dict):
            raise ConfigError(f"sweep grid {key!r}: {part!r} is a value, not a table")
    node[parts[-1]] = value


def _contains(values: list, value) -> bool:
    return any(repr(v) == repr(value) or (isinstance(v, float) and isinstance(value, float) and math.isclose(v, value)) for v in values)


def spec_from_table(raw: dict, grid: dict | None = None, seeds: list[int] | None = None) -> SweepSpec:
    """The spec of a raw config file: its ``[sweep]`` table (``grid``, ``seeds``), with the CLI's
    ``--grid`` keys replacing the table's keys of the same name and ``--seeds`` its seeds."""
    table = raw.get("sweep", {})
    unknown = set(table) - {"grid", "seeds"}
    if unknown:
        raise ConfigError(f"unknown key(s) in [sweep]: {', '.join(sorted(unknown))}; allowed: grid, seeds")
    merged = {k: list(v) if isinstance(v, list) else [v] for k, v in table.get("grid", {}).items()}
    merged.update(grid or {})
    return SweepSpec(raw, merged, list(seeds) if seeds else list(table.get("seeds", [])))
