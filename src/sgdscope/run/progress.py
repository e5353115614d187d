"""Training progress that reads well in a terminal and in a log file.

On a terminal: a tqdm bar (step, loss, epoch). Anywhere else (output piped to a file, a cluster
log): plain lines, one every ``every_s`` seconds and one at a step where probes ran (at most one
a ``min_gap_s``, for probes that fire at every step), with the step, epoch, loss, ETA and the
last headline measurements, and a final line with the run's state. ``mode="off"`` prints nothing.

    [simplecnn] step 120/600 (20%)  epoch 2.00  loss 0.4312  4.1 step/s  ETA 1m57s  lambda_H^1 12.3  lambda_K^1 0.0421
"""
from __future__ import annotations

import math
import sys
import time
from typing import TextIO

__all__ = ["Progress", "HEADLINE", "resolve_mode"]

MODES = ("auto", "bar", "lines", "off")
HEADLINE = {  # (probe type, value name) -> short label, in the order printed
    ("top_eigenvalues", "lambda_1"): "lambda_H^1",
    ("gradient_noise", "lambda_1"): "lambda_K^1",
    ("gradient_noise", "ratio"): "lambda_K*/lambda_K^1",
    ("loss_change", "delta_loss"): "dL",
    ("stability", "value"): "stability",
    ("interpolation", "crossed"): "crossed",
    ("evaluation", "train_accuracy"): "train acc",
    ("evaluation", "test_accuracy"): "test acc",
}


def _duration(seconds: float) -> str:
    if not math.isfinite(seconds):
        return "?"
    seconds = int(round(seconds))
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return f"{h}h{m:02d}m" if h else (f"{m}m{s:02d}s" if m else f"{s}s")


def resolve_mode(mode: str | bool, stream: TextIO | None = None) -> str:
    """``True``/``"auto"``: a bar on a terminal, lines elsewhere; ``False``: ``"off"``."""
    mode = {True: "auto", False: "off"}.get(mode, mode) if isinstance(mode, bool) else mode
    if mode not in MODES:
        raise ValueError(f"progress mode must be one of {MODES} (or a bool), got {mode!r}")
    if mode == "auto":
        stream = sys.stderr if stream is None else stream
        mode = "bar" if getattr(stream, "isatty", lambda: False)() else "lines"
    return mode


class Progress:
    """Progress of one run from ``initial`` to ``total`` steps (see the module docstring)."""

    def __init__(self, total: int, *, initial: int = 0, name: str = "run", mode: str = "auto", every_s: float = 10.0,
                 min_gap_s: float = 2.0, stream: TextIO | None = None):
        self.stream = sys.stderr if stream is None else stream
        mode = resolve_mode(mode, self.stream)
        self.mode, self.total, self.name, self.every_s, self.min_gap_s = mode, total, name, every_s, min_gap_s
        self.step = self.initial = initial
        self.start = self.last_line = time.monotonic()
        self.headline: dict[str, float] = {}
        self.bar = None
        if mode == "bar":
            from tqdm.auto import tqdm

            self.bar = tqdm(total=total, initial=initial, desc=name, unit="step", dynamic_ncols=True, file=self.stream)

    @property
    def terminal(self) -> bool:
        """Whether nested bars (probes, Lanczos) may draw: only beside a bar on a terminal."""
        return self.mode == "bar"

    def update(self, step: int, epoch: float, loss: float, measured: dict | None = None, types: dict | None = None) -> None:
        """Step ``step`` (0-based) is done with mini-batch ``loss``; ``measured`` the probes' values
        of this step (``{instance: values}``), ``types`` their probe types."""
        self.step = step + 1
        for probe, values in (measured or {}).items():
            kind = (types or {}).get(probe, probe)
            for name, value in values.items():
                label = HEADLINE.get((kind, name))
                if label is not None and isinstance(value, (int, float)):
                    self.headline[label] = float(value)
        if self.bar is not None:
            self.bar.update(1)
            self.bar.set_postfix(loss=f"{loss:.4f}", epoch=f"{epoch:.2f}")
        elif self.mode == "lines":
            now = time.monotonic()
            due = now - self.last_line >= (self.min_gap_s if measured else self.every_s)
            if due or self.step == self.total:
                self.last_line = now
                self._line(epoch, loss, now)

    def _line(self, epoch: float, loss: float, now: float) -> None:
        done = self.step - self.initial
        rate = done / max(now - self.start, 1e-9)
        eta = (self.total - self.step) / rate if rate > 0 else math.inf
        pct = 100 * self.step / max(self.total, 1)
        parts = [f"[{self.name}] step {self.step}/{self.total} ({pct:.0f}%)", f"epoch {epoch:.2f}", f"loss {loss:.4g}",
                 f"{rate:.3g} step/s", f"ETA {_duration(eta)}"]
        order = {label: i for i, label in enumerate(HEADLINE.values())}
        parts += [f"{label} {value:.4g}" for label, value in sorted(self.headline.items(), key=lambda kv: order[kv[0]])]
        print("  ".join(parts), file=self.stream, flush=True)

    def close(self, state: str, message: str) -> None:
        """The run's end: closes the bar; prints one final line except in ``off`` mode."""
        if self.bar is not None:
            self.bar.close()
        if self.mode != "off":
            elapsed = _duration(time.monotonic() - self.start)
            print(f"[{self.name}] {state} after {elapsed}: {message}", file=self.stream, flush=True)
