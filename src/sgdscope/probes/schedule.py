"""When a probe fires: small composable schedules (after Cockpit's ``step -> bool`` closures).

A schedule is called as ``schedule(step, epoch_end=False) -> bool``; ``a | b`` fires when
either does. The papers' effects happen early in training, so ``log_spaced`` is dense at the
start and sparse later.
"""
from __future__ import annotations

import math
from typing import Callable, Iterable

__all__ = ["Schedule", "every", "epoch_end", "log_spaced", "at", "never", "as_schedule"]


class Schedule:
    def __init__(self, fires: Callable[[int, bool], bool], description: str):
        self._fires = fires
        self.description = description

    def __call__(self, step: int, epoch_end: bool = False) -> bool:
        return bool(self._fires(int(step), bool(epoch_end)))

    def __or__(self, other: "Schedule") -> "Schedule":
        other = as_schedule(other)
        return Schedule(lambda s, e: self(s, e) or other(s, e), f"{self.description} | {other.description}")

    def __repr__(self) -> str:
        return f"Schedule({self.description})"


def every(n: int, offset: int = 0) -> Schedule:
    """Steps offset, offset + n, offset + 2n, ..."""
    if n < 1 or offset < 0:
        raise ValueError(f"every(n, offset): n must be >= 1 and offset >= 0, got n={n}, offset={offset}")
    return Schedule(lambda s, e: s >= offset and (s - offset) % n == 0, f"every({n}, offset={offset})")


def epoch_end() -> Schedule:
    """The last step of every epoch."""
    return Schedule(lambda s, e: e, "epoch_end()")


def at(steps: Iterable[int]) -> Schedule:
    """An explicit list of steps."""
    wanted = frozenset(int(s) for s in steps)
    if any(s < 0 for s in wanted):
        raise ValueError(f"at(steps): steps must be >= 0, got {sorted(wanted)}")
    return Schedule(lambda s, e: s in wanted, f"at({sorted(wanted)[:5]}{'...' if len(wanted) > 5 else ''})")


def log_spaced(num: int, last_step: int, first_step: int = 0) -> Schedule:
    """About ``num`` steps between ``first_step`` and ``last_step``, evenly spaced in log(1 + step)."""
    if num < 1 or last_step < first_step:
        raise ValueError(f"log_spaced: need num >= 1 and last_step >= first_step, got {num}, {first_step}..{last_step}")
    lo, hi = math.log1p(first_step), math.log1p(last_step)
    steps = {round(math.expm1(lo + (hi - lo) * i / max(num - 1, 1))) for i in range(num)}
    return Schedule(lambda s, e: s in steps, f"log_spaced({num}, {last_step}, first_step={first_step})")


def never() -> Schedule:
    return Schedule(lambda s, e: False, "never()")


def as_schedule(spec) -> Schedule:
    """A Schedule from a Schedule, an int (every n), a list of steps, or the string "epoch_end"."""
    if isinstance(spec, Schedule):
        return spec
    if isinstance(spec, bool):
        raise TypeError(f"schedule: expected int, list of steps, 'epoch_end' or Schedule, got {spec!r}")
    if isinstance(spec, int):
        return every(spec)
    if isinstance(spec, str):
        if spec == "epoch_end":
            return epoch_end()
        raise ValueError(f"schedule: unknown string {spec!r}; allowed: 'epoch_end'")
    if isinstance(spec, (list, tuple, set, frozenset)):
        return at(spec)
    raise TypeError(f"schedule: expected int, list of steps, 'epoch_end' or Schedule, got {type(spec).__name__}")
