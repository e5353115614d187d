"""``sgdscope demo``: a one-minute taste of ``sgdscope reproduce``.

A few of the papers' claims at the ``tiny`` scale (an MLP on scikit-learn's real digits, two
learning rates, two seeds: no files needed), judged by the same preconditions and rules as the full
catalogue and printed as they came out, each with its regime check (every run's measurement, e.g.
where the LHS of Break-Even Eq. 1 reached 1), the paper's numbers beside ours and the report's path.
The tiny settings were chosen so that their runs reach the regime of these claims (the break-even
point from a stable start at both learning rates, measured); whatever the rules then say is printed.
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
