"""The probe protocol: ``name``, ``type``, ``schedule(step, epoch_end) -> bool``, ``probe(ctx) -> dict``.

``type`` is the probe type of :mod:`sgdscope.quantities` (for a user's own probe: its name);
``name`` is the instance's label, by default the type. Values are floats (stored as metric
rows) or tensors with ndim >= 1 (stored as arrays), named as the vocabulary lists them.
Probes that keep state between calls also implement ``state_dict`` / ``load_state_dict`` so a
resumed run is exact.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Protocol, runtime_checkable

from .context import StepContext
from .schedule import Schedule, as_schedule

__all__ = ["Probe", "FunctionProbe", "probe"]


@runtime_checkable
class Probe(Protocol):
    name: str
    type: str
    schedule: Schedule

    def __call__(self, ctx: StepContext) -> dict: ...


@dataclass
class FunctionProbe:
    """A stateless probe: a name, a schedule and a function of the step context.

    ``before``: whether ``fn`` reads the previous step's parameters or gradient
    (``ctx.theta_before``, ``ctx.prev_grad``, ``ctx.grad()`` without a training gradient), which
    the :class:`~sgdscope.Scope` then keeps a copy of before each step this probe fires at.
    ``type``: the probe type its values are recorded under (default: ``name``).
    """

    name: str
    schedule: Schedule
    fn: Callable[[StepContext], dict]
    before: bool = True
    type: str = ""

    def __post_init__(self):
        if not self.type:
            self.type = self.name

    def __call__(self, ctx: StepContext) -> dict:
        return self.fn(ctx)


def probe(name: str, fn: Callable[[StepContext], dict], every=100, *, before: bool = True) -> FunctionProbe:
    """Wrap a function ``ctx -> dict`` as a probe (``every``: int, list of steps, 'epoch_end' or
    Schedule; ``before=False`` if it never reads the previous step's parameters or gradient)."""
    return FunctionProbe(name, as_schedule(every), fn, before)
