"""Run configuration: TOML files, validated, with ``--set key=value`` overrides.

A config is a nested dict. ``resolve`` fills in the defaults below, checks every key and value
against them, and raises :class:`ConfigError` naming the key and what is allowed. Sections
``model``, ``loss`` and ``optimizer`` take extra keys, passed as keyword arguments to the
builder (which checks them in turn); ``probes`` holds one table per probe::

    [probes.top_eigenvalues]        # the table name is the probe type ...
    every = 50
    k = 10
    [probes.hessian_top30]          # ... unless `type` says otherwise
    type = "top_eigenvalues"
    log_spaced = 30                 # schedules: every, log_spaced, at, epoch_end (combined)
    k = 30
"""
from __future__ import annotations

import copy
import functools
import inspect
from pathlib import Path
from typing import Any

from ..store import _toml

__all__ = ["DEFAULTS", "ConfigError", "resolve", "load_config", "read_config_file", "apply_overrides", "parse_value", "SCHEDULE_KEYS"]

DEFAULTS: dict[str, Any] = {
    "name": "run",
    "seed": 0,
    "device": "cpu",
    "dtype": "float32",
    "out": "runs",
    "data": {
        "name": "digits",
        "root": "",
        "val_size": 0,
        "subset": 0,
        "normalize": True,
        "augment": False,
        "grey_resize": 0,
        "shuffled_labels": 0.0,
        "options": {},
    },
    "model": {"name": "mlp"},
    "loss": {"name": "cross_entropy"},
    "optimizer": {"name": "sgd", "lr": 0.01, "momentum": 0.0, "weight_decay": 0.0},
    "lr_schedule": {"milestones": [], "gamma": 0.1},
    "train": {"epochs": 1, "batch_size": 128, "data_seed": -1, "max_steps": 0, "checkpoint_every": 0, "keep_checkpoints": 2, "log_every": 1, "eval_examples": 2000,
              "divergence_factor": 1e4},
    "measure": {
        "curvature_fraction": 0.05,
        "curvature_examples": 0,
        "curvature_batch": 256,
        "eval_examples": 2000,
        "noise_examples": 0,
        "test_examples": 500,
        "bn_mode": "auto",
        "lanczos_tol": 1e-3,
        "seed": 0,
    },
    "probes": {},
}

OPEN_SECTIONS = ("model", "loss", "optimizer")
CHOICES = {
    "dtype": ("float32", "float64"),
    "measure.bn_mode": ("auto", "eval", "train"),
}
SCHEDULE_KEYS = ("every", "log_spaced", "at", "epoch_end")


class ConfigError(ValueError):
    """A config key or value that is not allowed; the message names both and what is expected."""


def read_config_file(path: str | Path) -> dict:
    """The raw (unresolved) TOML of a config file; errors name the file."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file {path} does not exist")
    try:
        return _toml.read_toml(path)
    except Exception as err:  # tomllib.TOMLDecodeError and friends
        raise ConfigError(f"{path}: not valid TOML ({err})") from err


def load_config(path: str | Path, overrides: list[str] | tuple[str, ...] = ()) -> dict:
    """Read a TOML config, apply ``key=value`` overrides, resolve and validate it. A ``[sweep]``
    table (the grid of ``sgdscope sweep``) is not part of one run's config and is left out."""
    raw = {k: v for k, v in read_config_file(path).items() if k != "sweep"}
    return resolve(apply_overrides(raw, overrides))


def parse_value(text: str) -> Any:
    """A TOML literal (``0.1``, ``"sgd"``, ``[1, 2]``, ``true``), or the text itself as a bare string."""
    try:
        return _toml.loads(f"v = {text}")["v"]
    except Exception:
        return text  # a bare string


def apply_overrides(config: dict, overrides) -> dict:
    """``["optimizer.lr=0.1", "probes.top_eigenvalues.k=20"]`` set into a copy of ``config``."""
    out = copy.deepcopy(config)
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"--set expects key=value, got {item!r}")
        key, text = item.split("=", 1)
        parts = [p for p in key.strip().split(".") if p]
        if not parts:
            raise ConfigError(f"--set: empty key in {item!r}")
        node = out
        for p in parts[:-1]:
            node = node.setdefault(p, {})
            if not isinstance(node, dict):
                raise ConfigError(f"--set {key}: {p!r} is a value, not a table")
        node[parts[-1]] = parse_value(text.strip())
    return out


def _type_ok(default: Any, value: Any) -> bool:
    if isinstance(default, bool):
        return isinstance(value, bool)
    if isinstance(default, float):
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if isinstance(default, int):
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, type(default))


def _merge(defaults: dict, given: dict, where: str, open_table: bool) -> dict:
    out = copy.deepcopy(defaults)
    for key, value in given.items():
        name = f"{where}{key}"
        if key not in defaults:
            if open_table:
                out[key] = value
                continue
            raise ConfigError(f"unknown config key {name!r}; allowed in {where.rstrip('.') or 'the top level'}: {', '.join(defaults)}")
        default = defaults[key]
        if isinstance(default, dict) and key not in ("options",):
            if not isinstance(value, dict):
                raise ConfigError(f"config key {name!r} must be a table, got {value!r}")
            out[key] = value if key == "probes" else _merge(default, value, f"{name}.", key in OPEN_SECTIONS)
        elif not _type_ok(default, value):
            raise ConfigError(f"config key {name!r} must be {type(default).__name__}, got {value!r} ({type(value).__name__})")
        else:
            out[key] = float(value) if isinstance(default, float) else value
        if name in CHOICES and out[key] not in CHOICES[name]:
            raise ConfigError(f"config key {name!r} must be one of {CHOICES[name]}, got {out[key]!r}")
    return out


def _check_probes(probes: dict) -> None:
    from .probe_factory import PROBE_TYPES, build_probes

    for name, table in probes.items():
        if not isinstance(table, dict):
            raise ConfigError(f"config key 'probes.{name}' must be a table, got {table!r}")
        kind = table.get("type", name)
        if kind not in PROBE_TYPES:
            raise ConfigError(f"probes.{name}: unknown probe type {kind!r}; allowed: {', '.join(sorted(PROBE_TYPES))}")
        params = inspect.signature(PROBE_TYPES[kind]).parameters
        allowed = [p for p in params if p not in ("every", "name", "x", "sets")] + ["type", *SCHEDULE_KEYS]
        bad = [k for k in table if k not in allowed]
        if bad:
            raise ConfigError(f"probes.{name}: unknown key(s) {', '.join(map(repr, bad))}; allowed: {', '.join(allowed)}")
        if not any(k in table for k in SCHEDULE_KEYS):
            raise ConfigError(f"probes.{name}: give a schedule, one or more of {', '.join(SCHEDULE_KEYS)}")
        try:  # the probe's own checks of its arguments and schedule
            build_probes({name: table}, total_steps=100, test_x=None, evaluation_sets={"train": None})
        except (ValueError, TypeError) as err:
            raise ConfigError(f"probes.{name}: {err}") from err


def _check_names(cfg: dict) -> None:
    from .. import zoo

    for section, names in (("data", zoo.list_datasets()), ("model", zoo.list_models()), ("loss", zoo.list_losses())):
        name = cfg[section]["name"].replace("-", "_") if section == "data" else cfg[section]["name"]
        if name not in names:
            raise ConfigError(f"config key '{section}.name' must be one of {', '.join(names)}; got {cfg[section]['name']!r}")
    from .optimizers import check_optimizer, optimizer_names

    opt = cfg["optimizer"]["name"]
    if opt.lower() not in optimizer_names():
        raise ConfigError(f"config key 'optimizer.name' must be one of {', '.join(optimizer_names())}; got {opt!r}")
    try:
        check_optimizer(cfg["optimizer"])
    except ValueError as err:
        raise ConfigError(str(err)) from None


def _check_builders(cfg: dict) -> None:
    """The model's and the loss's builder keywords and values, by building them once (the model with
    the builder's default input shape, on the CPU; each distinct section once per process), so that
    a bad keyword in a sweep point is refused before the sweep starts."""
    import json

    for section in ("model", "loss"):
        table = {k: v for k, v in cfg[section].items()}
        _build_once(section, json.dumps(table, sort_keys=True, default=str))


@functools.lru_cache(maxsize=256)
def _build_once(section: str, table_json: str) -> None:
    import json

    from .. import zoo

    table = json.loads(table_json)
    name = table.pop("name")
    try:
        if section == "model":
            zoo.build_model(name, **table)
        else:
            zoo.build_loss(name, **table)
    except (TypeError, ValueError, KeyError) as err:
        raise ConfigError(f"config section '{section}' ({name}): {' '.join(str(err).split())}") from None


def check_run_name(name) -> str:
    """``name`` when it is one folder name (the run's folder inside ``out``); ``ConfigError`` otherwise:
    empty, ``.`` or ``..``, a path separator, an absolute path or a NUL would put the run elsewhere."""
    if not isinstance(name, str) or not name or name in (".", "..") or any(c in name for c in "/\\\0") \
            or Path(name).is_absolute() or Path(name).drive:
        raise ConfigError(f"config key 'name' must be one folder name inside 'out' (no '/', '\\', '..' or absolute "
                          f"path), got {name!r}")
    return name


def resolve(config: dict) -> dict:
    """Defaults filled in, every key and value checked; returns a new dict."""
    cfg = _merge(DEFAULTS, config, "", False)
    check_run_name(cfg["name"])
    for key in ("epochs", "batch_size"):
        if cfg["train"][key] < 1:
            raise ConfigError(f"config key 'train.{key}' must be >= 1, got {cfg['train'][key]}")
    if cfg["train"]["keep_checkpoints"] < 0:
        raise ConfigError(f"config key 'train.keep_checkpoints' must be >= 0 (0: every checkpoint), got {cfg['train']['keep_checkpoints']}")
    if not 0 < cfg["measure"]["curvature_fraction"] <= 1:
        raise ConfigError(f"config key 'measure.curvature_fraction' must be in (0, 1], got {cfg['measure']['curvature_fraction']}")
    if cfg["train"]["divergence_factor"] < 0:
        raise ConfigError(f"config key 'train.divergence_factor' must be >= 0 (0: only NaN / inf diverge), got {cfg['train']['divergence_factor']}")
    if cfg["optimizer"]["lr"] <= 0:
        raise ConfigError(f"config key 'optimizer.lr' must be > 0, got {cfg['optimizer']['lr']}")
    _check_names(cfg)
    _check_builders(cfg)
    _check_probes(cfg["probes"])
    return cfg
