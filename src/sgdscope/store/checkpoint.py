"""Checkpoints: model tensors as safetensors, the rest as a ``torch.save`` that never runs code.

``state.pt`` holds the optimizer and scheduler state, RNG states and counters. It is written
only from plain data (dicts, lists, tuples, str, numbers, bool, None, tensors, torch dtypes and
sizes, numeric numpy arrays) and read with ``torch.load(weights_only=True)``, so a crafted
``state.pt`` in a run folder someone sent you cannot execute anything on ``--resume``. A file that
needs more than that is refused with an error naming it; ``trust=True`` (``--trust-checkpoint``)
is the explicit opt-in to the unsafe loader, for checkpoints of your own.
"""
from __future__ import annotations

import collections
import json
import os
import pickle
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import torch

from .layout import MODEL_FILE, STATE_FILE, checkpoint_dir, checkpoint_steps

__all__ = ["UnsafeCheckpointError", "write_checkpoint", "load_checkpoint", "check_plain"]

_LEAVES = (str, int, float, bool, type(None), torch.Tensor, torch.dtype, torch.Size, torch.device)


class UnsafeCheckpointError(pickle.UnpicklingError):
    """``state.pt`` needs code to load: refused unless the caller trusts it."""


def check_plain(obj: Any, where: str = "state") -> None:
    """Raise TypeError naming the first entry of ``obj`` that ``weights_only`` loading would refuse."""
    if isinstance(obj, _LEAVES):
        return
    if isinstance(obj, np.ndarray) and obj.dtype.kind in "biufc":
        return
    if isinstance(obj, (np.integer, np.floating, np.bool_)):
        return
    if isinstance(obj, (dict, collections.OrderedDict, collections.Counter)):
        for key, value in obj.items():
            check_plain(key, f"{where} key")
            check_plain(value, f"{where}[{key!r}]")
        return
    if isinstance(obj, (list, tuple, set)):
        for i, value in enumerate(obj):
            check_plain(value, f"{where}[{i}]")
        return
    raise TypeError(f"{where}: a {type(obj).__name__} cannot be stored in a checkpoint that loads without "
                    "running code; store plain containers, numbers, strings and tensors")


def write_checkpoint(folder: Path, model_state: Mapping[str, torch.Tensor], state: Mapping[str, Any], step: int) -> None:
    """Fill ``folder`` with ``model.safetensors`` and ``state.pt`` (see the module docstring)."""
    from safetensors.torch import save_file

    check_plain(state)
    tensors = _plain_tensors(model_state)
    save_file(tensors, Path(folder) / MODEL_FILE, metadata={"step": str(step), "keys": json.dumps(list(tensors))})
    torch.save(state, Path(folder) / STATE_FILE)


def load_checkpoint(run_dir: str | os.PathLike, step: int, *, trust: bool = False) -> tuple[dict[str, torch.Tensor], Any]:
    """``(model_state, state)`` of the checkpoint at ``step`` (CPU tensors, saved key order).

    ``state.pt`` is read with ``weights_only=True`` (plain data, numeric numpy arrays); a file that
    needs anything else raises :class:`UnsafeCheckpointError` unless ``trust=True``."""
    from safetensors import safe_open
    from safetensors.torch import load_file

    folder = checkpoint_dir(run_dir, step)
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder}: no checkpoint at step {step}; stored steps: {checkpoint_steps(run_dir)}")
    tensors = load_file(folder / MODEL_FILE)
    with safe_open(folder / MODEL_FILE, framework="pt") as f:
        keys = json.loads((f.metadata() or {}).get("keys", "[]"))
    if sorted(keys) == sorted(tensors):
        tensors = {k: tensors[k] for k in keys}
    return tensors, _load_state(folder / STATE_FILE, trust)


def _load_state(path: Path, trust: bool) -> Any:
    if trust:
        return torch.load(path, map_location="cpu", weights_only=False)
    try:
        if hasattr(torch.serialization, "safe_globals"):
            with torch.serialization.safe_globals(_numpy_globals()):
                return torch.load(path, map_location="cpu", weights_only=True)
        torch.serialization.add_safe_globals(_numpy_globals())  # torch 2.4: no context manager yet
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        try:
            needs = ", ".join(torch.serialization.get_unsafe_globals_in_checkpoint(path)) or str(err).splitlines()[0]
        except Exception:  # not even a zip archive: name the first line of torch's error
            needs = str(err).splitlines()[0]
        raise UnsafeCheckpointError(
            f"{path}: refused: loading it would run code it carries ({needs}). sgdscope writes checkpoints that "
            "load without code; if you made this file yourself and trust it, pass --trust-checkpoint "
            "(Python: trust=True)"
        ) from None


def _numpy_globals() -> list:
    """The numpy objects needed to unpickle plain numeric arrays and scalars (no object dtype)."""
    multiarray = getattr(np, "_core", None) or np.core
    dtypes = {type(np.dtype(c)) for c in np.typecodes["All"] if c != "O"}
    core = multiarray.multiarray
    return [np.ndarray, np.dtype, core._reconstruct, core.scalar, *dtypes]


def _plain_tensors(model_state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Detached contiguous CPU tensors, each with its own storage (safetensors refuses shared)."""
    out, seen = {}, set()
    for key, t in model_state.items():
        if not isinstance(key, str) or not isinstance(t, torch.Tensor):
            raise TypeError(f"model_state must map str to Tensor, got {key!r}: {type(t).__name__}")
        t = t.detach().cpu().contiguous()
        ptr = t.untyped_storage().data_ptr()
        if ptr in seen and t.numel():
            t = t.clone()
        seen.add(t.untyped_storage().data_ptr())
        out[key] = t
    return out
