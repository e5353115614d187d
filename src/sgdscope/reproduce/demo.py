"""``sgdscope demo``: a one-minute taste of ``sgdscope reproduce``.

A few of the papers' claims at the ``tiny`` scale (an MLP on scikit-learn's real digits, two
learning rates, two seeds: no files needed), judged by the same rules as the full catalogue and
printed as they came out, with the paper's numbers beside ours and the report's path. At this
scale a claim may well not hold or be inconclusive: the papers' regime needs the ``cpu`` scale
(``sgdscope reproduce --scale cpu``) or their own settings.
"""
from __future__ import annotations

from .claim import CLAIMS
from .runner import reproduce

__all__ = ["DEMO_CLAIMS", "run_demo"]

DEMO_CLAIMS = ("break_even.conjecture1_lambda_k", "break_even.conjecture1_lambda_h", "break_even.conjecture2_ratio",
               "walk.barriers_per_epoch")


def run_demo(out: str = "runs/demo", *, workers: int = 2, quiet: bool = False) -> list[dict]:
    """Judge :data:`DEMO_CLAIMS` (those registered) at the tiny scale below ``out``; returns the rows."""
    return reproduce([c for c in DEMO_CLAIMS if c in CLAIMS], scale="tiny", out=out, workers=workers, quiet=quiet)
