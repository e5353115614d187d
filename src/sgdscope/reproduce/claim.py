"""Claims as code: what a paper states, the data that tests it at each scale, and the rule.

A :class:`Study` is the data a group of claims reads: a sweep (a base config, a grid and seeds)
at each scale, ``tiny`` (seconds, for CI), ``cpu`` (real data, minutes on a 2-core laptop) and
``paper`` (the paper's own settings, for a GPU); or a ``record`` function that writes run folders
itself (the toy experiments). A :class:`Claim` names its study, the statement, the rule written
out before any result is seen, the paper's own numbers, the figure that shows it, and ``check``,
which reads the study's runs and returns a :class:`Verdict`: ``holds``, ``does not hold`` or
``inconclusive`` with the reason, always with our numbers beside the paper's. A claim also names
its ``preconditions`` (:mod:`.regime`): the regime the paper states it about, checked on the runs'
own measurements before the rule; a claim with a run outside it is ``out of regime``.

``rule`` is either the rule's sentence (with ``check`` the decorated function) or a :class:`Rule`
built by a constructor of :mod:`.rules` from the metric, key, direction and window, which writes
the sentence and the check from the same arguments.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

__all__ = ["SCALES", "VERDICTS", "Study", "Claim", "Verdict", "Rule", "STUDIES", "CLAIMS", "study", "claim"]

SCALES = ("tiny", "cpu", "paper")
VERDICTS = ("holds", "does not hold", "out of regime", "inconclusive")


@dataclass(frozen=True)
class Study:
    """``sweeps``: scale -> ``{"config": raw config dict, "grid": {key: values}, "seeds": [...]}``;
    or ``record(out, scale)``, which writes the study's run folders below ``out`` (resumably)."""

    name: str
    paper: str
    sweeps: dict = field(default_factory=dict)
    record: Callable[[Path, str], None] | None = None

    def settings(self, scale: str) -> dict:
        if self.record is not None:
            return {"record": f"{self.record.__module__}.{self.record.__qualname__}", "scale": scale}
        if scale not in self.sweeps:
            raise KeyError(f"study {self.name!r} has no {scale!r} scale; it has {', '.join(self.sweeps)}")
        return self.sweeps[scale]


@dataclass
class Verdict:
    verdict: str  # one of VERDICTS
    ours: str  # our numbers, per setting (mean and spread over seeds)
    reason: str = ""  # why, above all when inconclusive
    numbers: dict = field(default_factory=dict)  # the same numbers, machine-readable

    def __post_init__(self):
        if self.verdict not in VERDICTS:
            raise ValueError(f"verdict must be one of {VERDICTS}, got {self.verdict!r}")


@dataclass(frozen=True)
class Rule:
    """A verdict rule as data: ``text`` (the sentence shown in ``--list``, the report and the docs)
    and ``check(frame, scale) -> Verdict``, both made by one constructor from the same arguments."""

    text: str
    check: Callable


@dataclass(frozen=True)
class Claim:
    key: str  # "break_even.conjecture1_lr"
    paper: str  # "Break-Even"
    statement: str  # what the paper states, in one sentence
    where: str  # the section, figure or table
    study: str  # the Study it reads
    rule: str  # the verdict rule, written before the result is seen
    paper_numbers: str  # the paper's own numbers
    check: Callable  # (sweep frame, scale) -> Verdict
    figure: str | None = None  # the viz figure that shows it
    preconditions: tuple = ()  # the regime (regime.Precondition), checked before the rule


STUDIES: dict[str, Study] = {}
CLAIMS: dict[str, Claim] = {}


def study(s: Study) -> Study:
    """Register a study (its name is unique)."""
    if s.name in STUDIES:
        raise ValueError(f"study {s.name!r} is registered twice")
    STUDIES[s.name] = s
    return s


def claim(key: str, *, paper: str, statement: str, where: str, study: str, rule: str | Rule, paper_numbers: str,
          figure: str | None = None, preconditions=()):
    """Register the claim ``key``. With ``rule`` a :class:`Rule`, at once (returns the Claim);
    with ``rule`` a sentence, returns a decorator that registers ``check(frame, scale) -> Verdict``."""

    def register(check):
        if key in CLAIMS:
            raise ValueError(f"claim {key!r} is registered twice")
        text = rule.text if isinstance(rule, Rule) else rule
        CLAIMS[key] = Claim(key, paper, statement, where, study, text, paper_numbers, check, figure, tuple(preconditions))
        return check

    if isinstance(rule, Rule):
        register(rule.check)
        return CLAIMS[key]
    return register
