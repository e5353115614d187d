"""The run writer: one directory per run, written atomically (layout in :mod:`.layout`).

Metric rows are buffered; :meth:`RunWriter.flush` appends them to the last part of the
``metrics.parquet/`` dataset by rewriting that part atomically (temp file, fsync,
``os.replace``) and starts a new part after ``PART_ROWS`` rows, so a flush costs O(one part)
and the folder always holds the complete table of some flush. Arrays are written at once.
A checkpoint appears in one rename, after a flush; a killed run resumes from the latest one
and :meth:`RunWriter.truncate_after` drops what came later, so it ends with the same metrics.
``status.json`` follows the last logged step at every flush.

A :class:`RunWriter` is a :class:`~sgdscope.store.sink.Sink`: ``Scope`` writes to it.
"""
from __future__ import annotations

import errno
import numbers
import os
import socket
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import torch

from . import _toml
from ._lock import LOCK, FolderLock
from ._atomic import atomic_replace_dir, atomic_write, atomic_write_json, remove_dir, remove_stale_temps
from .checkpoint import UnsafeCheckpointError, load_checkpoint, write_checkpoint
from .layout import (
    ARRAYS, COLUMNS, CHECKPOINTS, CONFIG, METRICS, PROBES, STATES, STATUS, array_dir, array_files,
    checkpoint_dir, checkpoint_steps, is_run_dir, metric_parts, metrics_schema,
)
from .reader import CorruptFile, list_arrays, read_part, read_probes, read_status

__all__ = ["RunWriter", "mark_status", "NoSpaceLeft"]

PART_ROWS = 16384  # rows per part of metrics.parquet/ before a new part is started
_FULL = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)


class NoSpaceLeft(OSError):
    """A write of the run store failed for lack of space (disk full, quota, file size limit). What
    was written before is intact (every write is atomic); free space and resume."""

    def __str__(self) -> str:
        return (f"no space left on device writing {self.filename} ({self.strerror}); everything written before is "
                f"kept: free space, then resume the run")


def _space_checked(method):
    """Turn a failed write for lack of space into :class:`NoSpaceLeft` naming the run folder."""
    import functools

    @functools.wraps(method)
    def wrapper(self, *args, **kwargs):
        try:
            return method(self, *args, **kwargs)
        except NoSpaceLeft:
            raise
        except OSError as err:
            if err.errno in _FULL:
                raise NoSpaceLeft(errno.ENOSPC, os.strerror(err.errno), str(err.filename or self.path)) from err
            raise
        except Exception as err:  # pyarrow reports a short write as "unexpected pos ..."
            if "unexpected pos" in str(err) or "No space left" in str(err):
                raise NoSpaceLeft(errno.ENOSPC, os.strerror(errno.ENOSPC), str(self.path)) from err
            raise

    return wrapper


class RunWriter:
    """Writes one run: config, metrics, arrays, checkpoints and status below ``run_dir``.

    New run (default): creates the layout and writes ``config``; a directory that already
    holds a run is an error unless ``overwrite`` (which deletes the old run's files) or
    ``resume`` (which reopens it, keeping its config and metrics; a ``config`` passed on
    resume must equal the stored one). Rows are flushed on :meth:`flush`, :meth:`close`,
    :meth:`save_checkpoint`, leaving a ``with`` block, and by :meth:`log` once
    ``flush_every_s`` seconds have passed since the last flush (``None``: never by itself).
    """

    def __init__(self, run_dir: str | os.PathLike, *, config: Mapping[str, Any] | None = None,
                 resume: bool = False, overwrite: bool = False,
                 flush_every_s: float | None = 30.0):
        self.path = path = Path(run_dir)
        if resume and overwrite:
            raise ValueError(f"{path}: pass resume=True or overwrite=True, not both")
        if path.is_symlink():
            raise ValueError(f"{path} is a symbolic link (to {os.readlink(path)}); a run is written only to a real folder")
        self.flush_every_s = flush_every_s
        self._lock = FolderLock(path, "run")
        try:
            self._open(path, config, resume, overwrite)
        except BaseException:
            self._lock.release()
            raise
        self._pending: dict[str, list] = {c: [] for c in COLUMNS}
        self._last_flush = time.monotonic()
        self._closed = False
        self.set_status("running", message="resumed" if resume else "started")

    def _open(self, path: Path, config, resume: bool, overwrite: bool) -> None:
        """Take the folder's lock (one writer at a time), then reopen the run (``resume``) or start it."""
        self._before = {}
        if resume:
            if not is_run_dir(path):
                raise FileNotFoundError(f"{path}: no run to resume (expected {STATUS} or {CONFIG})")
            self._lock.acquire()
            self._before = read_status(path) if (path / STATUS).exists() else {}
            remove_stale_temps(path)
            self._set_aside_damaged_parts()
            self.config = _toml.read_toml(path / CONFIG) if (path / CONFIG).exists() else {}
            given = None if config is None else _toml.normalize(config)
            # "out" says where the run is, not what it is: a copied or moved run (or sweep) resumes in its new place
            diff = [] if given is None else [d for d in _toml.config_diff(self.config, given) if not d.startswith("out (")]
            if diff:
                raise ValueError(f"{path}: resuming with a config that differs from the "
                                 f"stored {CONFIG} (stored vs given): " + ", ".join(diff))
            if given is not None and "out" in given and given["out"] != self.config.get("out"):
                self.config = {**self.config, "out": given["out"]}
                _toml.write_toml(path / CONFIG, self.config)
            self._open_tail()
            self._step, self._epoch = self._before.get("step"), self._before.get("epoch")
            if self._step is None and len(self._tail):
                self._step = self._tail["step"][-1].as_py()
        else:
            self.config = _toml.normalize(config or {})  # a bad config fails before any change
            if is_run_dir(path) and not overwrite:
                raise FileExistsError(f"{path}: already holds a run; pass resume=True "
                                      "to continue it or overwrite=True to replace it")
            path.mkdir(parents=True, exist_ok=True)
            self._lock.acquire()
            if is_run_dir(path):
                if not overwrite:  # another process started a run here meanwhile
                    raise FileExistsError(f"{path}: already holds a run; pass resume=True "
                                          "to continue it or overwrite=True to replace it")
                clear_run(path)
            for folder in (path, path / METRICS, path / ARRAYS, path / CHECKPOINTS):
                folder.mkdir(parents=True, exist_ok=True)
            _toml.write_toml(path / CONFIG, config or {})
            self._open_tail()
            self._step = self._epoch = None

    def __repr__(self) -> str:
        return f"RunWriter({str(self.path)!r}, state={self.state!r}, step={self._step})"

    @_space_checked
    def log(self, step: int, epoch: float, probe: str, values: Mapping[str, Any], *,
            seconds: float | None = None) -> None:
        """Record one probe's results at ``step``: 0-d values (float, int, bool, 0-d tensor /
        array) become metric rows, values with ndim >= 1 are saved to ``arrays/`` at once.
        ``seconds`` (the probe's wall time) becomes a row named "seconds". NaN / inf are kept."""
        self._check_open()
        step, epoch = _check_step(step), float(epoch)
        _check_name(probe, "probe")
        if seconds is not None and "seconds" in values:
            raise ValueError(f"probe {probe!r}: 'seconds' is both a value and seconds=")
        arrays = {name: _as_array(value, probe, _check_name(name, "name"))
                  for name, value in values.items()}
        if seconds is not None:
            arrays["seconds"] = np.float64(seconds)
        for name, arr in arrays.items():
            if arr.ndim == 0:
                for column, v in zip(COLUMNS, (step, epoch, probe, name, float(arr))):
                    self._pending[column].append(v)
            else:
                folder = array_dir(self.path, probe, name)
                folder.mkdir(parents=True, exist_ok=True)
                atomic_write(folder / f"step_{step:08d}.npy",
                             lambda f, a=arr: np.save(f, a, allow_pickle=False))
        self._step, self._epoch = step, epoch
        every = self.flush_every_s
        if every is not None and time.monotonic() - self._last_flush >= every:
            self.flush()

    @_space_checked
    def flush(self) -> None:
        """Atomically persist the rows logged since the last flush. If the write fails, the
        files on disk stay as they were and the rows stay buffered for the next flush."""
        import pyarrow as pa

        self._last_flush = time.monotonic()
        if not self._pending["step"]:
            return
        schema = metrics_schema()
        new = pa.table(self._pending, schema=schema)
        index, tail = self._tail_index, self._tail
        if len(tail) >= PART_ROWS:
            index, tail = index + 1, schema.empty_table()
        tail = pa.concat_tables([tail, new]).combine_chunks()
        self._write_part(index, tail)
        self._tail_index, self._tail = index, tail
        for rows in self._pending.values():
            rows.clear()
        if self.state == "running":  # keep the status's step current while the run goes on
            self.set_status("running", message=self._message)

    def truncate_after(self, step: int) -> None:
        """Drop metric rows, arrays and checkpoints with a step > ``step`` (for a resume from
        the checkpoint at ``step``: what came later is recomputed; -1 drops everything)."""
        import pyarrow.compute as pc

        self._check_open()
        step = _check_step(step, lowest=-1)
        self.flush()
        for index, file in reversed(metric_parts(self.path)):  # from the end: always a prefix
            table = read_part(file)
            kept = table.filter(pc.less_equal(table["step"], step))
            if len(kept) == 0 and index > 0:
                file.unlink()
            elif len(kept) < len(table):
                self._write_part(index, kept)
        self._open_tail()
        for probe, name in list_arrays(self.path):
            for s, file in array_files(self.path, probe, name):
                if s > step:
                    file.unlink()
        for s in checkpoint_steps(self.path):
            if s > step:
                remove_dir(self.path / CHECKPOINTS / f"step_{s:08d}")
        self._step = step if step >= 0 else None

    def _write_part(self, index: int, table) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        sink = pa.BufferOutputStream()  # in memory, then one write: faster than a Python file
        pq.write_table(table, sink)
        data = sink.getvalue()
        atomic_write(self.path / METRICS / f"part-{index:08d}.parquet", lambda f: f.write(data))

    def _set_aside_damaged_parts(self) -> None:
        """On resume: a metrics part that cannot be read (and every later one) is renamed
        ``.damaged-part-*`` (kept, not deleted; the readers skip it), and the resume falls back to a
        checkpoint no later than the last intact row (:meth:`latest_checkpoint`)."""
        self.damaged: list[str] = []
        self._intact_step: int | None = None
        parts, last = metric_parts(self.path), -1
        for i, (_, file) in enumerate(parts):
            try:
                steps = read_part(file)["step"].to_pylist()
            except CorruptFile as err:
                for _, bad in parts[i:]:
                    bad.rename(bad.with_name(f".damaged-{bad.name}"))
                    self.damaged.append(f"{bad.name} ({err})" if bad == file else bad.name)
                self._intact_step = last
                return
            last = max(last, max(steps, default=-1))

    def _open_tail(self) -> None:
        """Load the last part of ``metrics.parquet/`` (creating an empty part 0 if none)."""
        parts = metric_parts(self.path)
        if not parts:
            (self.path / METRICS).mkdir(exist_ok=True)
            self._write_part(0, metrics_schema().empty_table())
            parts = metric_parts(self.path)
        self._tail_index, self._tail = parts[-1][0], read_part(parts[-1][1])

    @_space_checked
    def save_checkpoint(self, step: int, *, model_state: Mapping[str, torch.Tensor],
                        state: Mapping[str, Any], keep: int | None = 2) -> Path:
        """Flush the metrics, then write ``checkpoints/step_XXXXXXXX/`` atomically:
        ``model_state`` tensors to ``model.safetensors`` (contiguous CPU copies; tensors
        sharing storage, e.g. tied weights, are cloned) and ``state`` (optimizer state_dict,
        RNG states, counters: plain containers, numbers, strings and tensors only, so that it
        loads without running code) to ``state.pt``. Call it after everything of ``step`` is
        logged. Keeps the last ``keep`` checkpoints (``None``: every one)."""
        self._check_open()
        step = _check_step(step)
        if keep is not None and (not isinstance(keep, int) or keep < 1):
            raise ValueError(f"keep must be an int >= 1 or None (every checkpoint), got {keep!r}")
        self.flush()
        path = atomic_replace_dir(checkpoint_dir(self.path, step),
                                  lambda tmp: write_checkpoint(tmp, model_state, state, step))
        for old in checkpoint_steps(self.path)[:-keep] if keep is not None else []:
            remove_dir(checkpoint_dir(self.path, old))
        return path

    def latest_checkpoint(self, *, trust: bool = False) -> tuple[int, dict[str, torch.Tensor], Any] | None:
        """``(step, model_state, state)`` of the newest checkpoint that loads, or None (``trust``: see
        :func:`~sgdscope.store.checkpoint.load_checkpoint`). A damaged checkpoint (a file that does
        not load), or one later than the last intact metrics row after a damaged part, is skipped,
        and said in :attr:`skipped` ("step_00000040: why"); a refused (unsafe) one still raises."""
        self.skipped: list[str] = []
        limit = getattr(self, "_intact_step", None)
        for step in reversed(checkpoint_steps(self.path)):
            name = checkpoint_dir(self.path, step).name
            if limit is not None and step > limit:
                self.skipped.append(f"{name}: later than the last intact metrics row (step {limit})")
                continue
            try:
                return (step, *load_checkpoint(self.path, step, trust=trust))
            except UnsafeCheckpointError:
                raise
            except Exception as err:  # a truncated or overwritten file: try the one before
                self.skipped.append(f"{name}: damaged ({type(err).__name__}: {' '.join(str(err).split())[:200]})")
        return None

    @_space_checked
    def set_status(self, state: str, **info: Any) -> None:
        """Atomically write ``status.json``: state (one of :data:`STATES`), step and epoch
        (the last logged unless given), updated (ISO-8601 UTC), message, the writing process's
        host and pid, and ``info``."""
        if state not in STATES:
            raise ValueError(f"status state must be one of {STATES}, got {state!r}")
        message = str(info.get("message", ""))
        atomic_write_json(self.path / STATUS, {
            "state": state, "step": info.pop("step", self._step),
            "epoch": info.pop("epoch", self._epoch),
            "updated": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "message": str(info.pop("message", "")), "host": socket.gethostname(), "pid": os.getpid(), **info,
        })
        self.state = state
        self._message = message

    @_space_checked
    def declare(self, probes: Mapping[str, str]) -> None:
        """Record the type of each probe instance (``{instance name: probe type}``) in
        ``probes.json``, merged with what the run declared before; a name may not change type."""
        known = read_probes(self.path)
        for name, kind in probes.items():
            _check_name(name, "probe")
            if known.get(name, kind) != kind:
                raise ValueError(f"{self.path}: probe {name!r} was recorded as type {known[name]!r}, "
                                 f"now declared as {kind!r}; give the new probe another name")
        merged = {**known, **probes}
        if merged != known or not (self.path / PROBES).exists():
            atomic_write_json(self.path / PROBES, {n: {"type": t} for n, t in merged.items()})

    def discard(self) -> None:
        """Delete this run's files (for a run whose set-up failed before it trained)."""
        self._closed = True
        clear_run(self.path)
        (self.path / LOCK).unlink(missing_ok=True)
        self._lock.release()
        if self.path.is_dir() and not any(self.path.iterdir()):
            self.path.rmdir()

    def abandon(self) -> None:
        """Close a resumed run that could not go on (its restore failed) with its ``status.json`` as it
        was before this writer opened it: a failed resume changes nothing."""
        self._closed = True
        if self._before:
            atomic_write_json(self.path / STATUS, self._before)
            self.state = self._before.get("state", self.state)
        self._lock.release()

    def close(self) -> None:
        """Flush the metrics and release the folder; later calls to :meth:`log` raise. Closing twice is fine."""
        if not self._closed:
            try:
                self.flush()
            finally:
                self._closed = True
                self._lock.release()

    def __del__(self) -> None:  # a writer dropped without close (a crash simulated in-process) frees its folder
        lock = getattr(self, "_lock", None)
        if lock is not None:
            lock.release()

    def __enter__(self) -> "RunWriter":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        """Flush; an exception leaving the block while the status is "running" marks the
        run "interrupted" (KeyboardInterrupt) or "failed" (with the error as message)."""
        try:
            self.close()
        finally:
            if exc_type is not None and self.state == "running":
                failed = "interrupted" if issubclass(exc_type, KeyboardInterrupt) else "failed"
                message = f"{exc_type.__name__}: {exc}" if str(exc) else exc_type.__name__
                self.set_status(failed, message=message)

    def _check_open(self) -> None:
        if self._closed:
            raise RuntimeError(f"{self.path}: the run writer is closed")


def _as_array(value: Any, probe: str, name: str) -> np.ndarray:
    """A numeric numpy array (0-d for scalars) from a float / int / bool / tensor / array."""
    if isinstance(value, torch.Tensor):
        t = value.detach().cpu()
        try:
            arr = t.numpy()
        except TypeError:  # bfloat16 and friends: exact in float32 / complex64
            arr = t.to(torch.complex64 if t.is_complex() else torch.float32).numpy()
    elif isinstance(value, (np.ndarray, np.generic, list, tuple, numbers.Number)):
        arr = np.asarray(value)
    elif hasattr(value, "__float__"):
        arr = np.asarray(float(value))
    else:
        arr = np.asarray(None, dtype=object)
    if arr.dtype.kind not in "biufc" or (arr.ndim == 0 and arr.dtype.kind == "c"):
        raise TypeError(f"probe {probe!r}, value {name!r}: expected a real number, tensor or "
                        f"numeric array, got {type(value).__name__} {value!r:.80}")
    return arr


def _check_step(step: Any, lowest: int = 0) -> int:
    if not isinstance(step, numbers.Integral) or isinstance(step, bool) or step < lowest:
        raise ValueError(f"step must be an int >= {lowest}, got {step!r}")
    return int(step)


def _check_name(name: Any, what: str) -> str:
    if not isinstance(name, str) or name in ("", ".", ".."):
        raise ValueError(f"{what} must be a non-empty str other than '.' and '..', got {name!r}")
    return name


def clear_run(path: str | os.PathLike) -> None:
    """Delete the run store's own files in ``path`` (other files, such as a log, are left alone)."""
    path = Path(path)
    remove_stale_temps(path)
    for folder in (ARRAYS, CHECKPOINTS, METRICS, "tensorboard"):
        if (path / folder).is_dir():
            remove_dir(path / folder)
    for file in (METRICS, CONFIG, STATUS, PROBES):
        if (path / file).is_file():
            (path / file).unlink()


def mark_status(run_dir: str | os.PathLike, state: str, message: str) -> None:
    """Set the state and message of a run that no process writes any more (e.g. one whose worker
    was killed: "running" -> "interrupted"), keeping the rest of its ``status.json``."""
    if state not in STATES:
        raise ValueError(f"status state must be one of {STATES}, got {state!r}")
    path = Path(run_dir)
    old = read_status(path) if (path / STATUS).exists() else {}
    atomic_write_json(path / STATUS, {**old, "state": state, "message": message,
                                      "updated": datetime.now(timezone.utc).isoformat(timespec="seconds")})
