"""The points of a reproduce study at every scale, resolved (every config checked by `resolve`)."""
from sgdscope.reproduce import STUDIES
from sgdscope.sweep import SweepSpec


def study_points(name: str) -> dict:
    """``{scale: (plan, points)}`` for the study ``name``."""
    return {scale: (plan, SweepSpec(plan["config"], grid=plan["grid"], seeds=plan["seeds"]).points())
            for scale, plan in STUDIES[name].sweeps.items()}
