"""The papers' claims re-derived from our own runs: ``sgdscope reproduce``.

Each claim (:mod:`.claim`) names the study it reads (a sweep at ``tiny`` / ``cpu`` / ``paper``
scale), its preconditions (:mod:`.regime`), its rule, and the paper's numbers; :func:`reproduce`
runs the studies, judges the claims (``out of regime`` when a run is outside the paper's regime,
otherwise ``holds``, ``does not hold`` or ``inconclusive``, with the reason) and writes the verdicts
and the report. The claims of each paper live in one module; the noise paper's studies, whose recorders
train networks themselves, in ``noise_studies``.
"""
from . import break_even
from . import sharpest, walk
from . import noise
from .claim import CLAIMS, SCALES, STUDIES, VERDICTS, Claim, Study, Verdict
from .demo import run_demo
from .runner import code_version, load_verdicts, reproduce, select, summary

__all__ = ["reproduce", "run_demo", "select", "load_verdicts", "summary", "code_version", "CLAIMS", "STUDIES", "SCALES", "VERDICTS", "Claim",
           "Study", "Verdict"]
