"""``sgdscope reproduce``: run the studies the chosen claims need, judge each claim, write it all down.

For each study: its sweep at the chosen scale (resumed when it was started before) or its
recorder, in ``OUT/SCALE/STUDY/``; then each claim judged on the study's runs (its preconditions,
then its rule: :func:`.regime.judge`); then ``verdicts.json`` and the HTML report (figures, our
numbers beside the paper's, the regime) in the study's folder, and every verdict in
``OUT/SCALE/verdicts.json`` with the settings, seeds and code version.

``verdicts.json`` holds ``{"summary": {verdict: count, ...}, "claims": [row, ...]}``; each row has the
claim, its verdict, rule, our numbers, the paper's, the reason and ``regime`` (each precondition, and
per run whether it is inside with the measurement that shows it).
"""
from __future__ import annotations

import json
import subprocess
from datetime import datetime, timezone
from pathlib import Path

from ..store import load_sweep_folder
from ..store._atomic import atomic_write_json
from ..sweep import run_sweep
from ..viz import build_report
from ..viz.report import VERDICTS
from .claim import CLAIMS, SCALES, STUDIES, VERDICTS as KINDS, Claim, Verdict
from .regime import judge

__all__ = ["reproduce", "select", "code_version", "load_verdicts", "summary"]


def select(what: str | list[str] = "all") -> list[Claim]:
    """``all``, a paper (``break_even``, ``walk``, ``sharpest``, ``noise``), one claim key, or a list of these."""
    if not isinstance(what, str):
        return list({c.key: c for item in what for c in select(item)}.values())
    if what == "all":
        return list(CLAIMS.values())
    if what in CLAIMS:
        return [CLAIMS[what]]
    chosen = [c for c in CLAIMS.values() if c.key.split(".")[0] == what]
    if not chosen:
        papers = sorted({c.key.split(".")[0] for c in CLAIMS.values()})
        raise KeyError(f"no paper or claim {what!r}; papers: {', '.join(papers)}; claims: see `sgdscope reproduce --list`")
    return chosen


def code_version() -> str:
    """``sgdscope VERSION (git COMMIT[, modified])`` where the package lives in a git checkout."""
    from .. import __version__

    here = Path(__file__).resolve().parent
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=here, capture_output=True, text=True,
                                timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=here, capture_output=True,
                               text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        commit, dirty = "", ""
    return f"sgdscope {__version__}" + (f" (git {commit}{', modified' if dirty else ''})" if commit else "")


def _produce(study, scale: str, folder: Path, executor: str, workers: int, quiet: bool) -> None:
    if study.record is not None:
        folder.mkdir(parents=True, exist_ok=True)
        study.record(folder, scale)
        return
    plan = study.settings(scale)
    run_sweep(plan["config"], grid=plan.get("grid", {}), seeds=plan.get("seeds", []), out=folder, executor=executor,
              workers=workers, quiet=quiet)


def _judge(claim: Claim, frame, scale: str) -> tuple[Verdict, list[dict]]:
    try:
        return judge(claim, frame, scale)
    except (KeyError, ValueError, LookupError) as err:  # a metric missing, a run without data: say so
        return Verdict("inconclusive", "", f"could not be evaluated: {type(err).__name__}: {err}"), []


def summary(rows: list[dict]) -> dict:
    """``{verdict: count}`` over every verdict (zeros included) and ``claims``, the total."""
    counts = {kind: sum(r["verdict"] == kind for r in rows) for kind in KINDS}
    return {**counts, "claims": len(rows)}


def _write(path: Path, rows: list[dict]) -> None:
    atomic_write_json(path, {"summary": summary(rows), "claims": rows})


def reproduce(what: str | list[str] = "all", *, scale: str = "tiny", out="runs/reproduce", executor: str = "local", workers: int = 1,
              quiet: bool = False) -> list[dict]:
    """Judge the claims ``what`` at ``scale``; returns one row per claim (see the module docstring)."""
    if scale not in SCALES:
        raise ValueError(f"scale must be one of {SCALES}, got {scale!r}")
    claims = select(what)
    root = Path(out) / scale
    version = code_version()
    rows: list[dict] = []
    by_study: dict[str, list[Claim]] = {}
    for c in claims:
        by_study.setdefault(c.study, []).append(c)
    for name, group in by_study.items():
        study = STUDIES[name]
        folder = root / name
        _produce(study, scale, folder, executor, workers, quiet)
        frame = load_sweep_folder(folder)
        settings = study.settings(scale)
        study_rows = []
        for c in group:
            v, regime = _judge(c, frame, scale)
            study_rows.append({
                "claim": c.key, "paper_name": c.paper, "where": c.where, "statement": c.statement, "verdict": v.verdict,
                "rule": c.rule, "ours": v.ours, "paper": c.paper_numbers, "reason": v.reason, "numbers": v.numbers,
                "regime": regime,
                "scale": scale, "study": name, "settings": settings, "seeds": settings.get("seeds", []),
                "code": version, "judged": datetime.now(timezone.utc).isoformat(timespec="seconds"), "figure": c.figure,
            })
        _write(folder / VERDICTS, study_rows)
        build_report(folder)
        rows += study_rows
    root.mkdir(parents=True, exist_ok=True)
    _write(root / VERDICTS, rows)
    return rows


def load_verdicts(path) -> list[dict]:
    """The rows a reproduction wrote (``verdicts.json``; a plain list of rows, as sgdscope 0.1.0 wrote it, is read too)."""
    data = json.loads(Path(path).read_text(encoding="utf-8"))
    return data if isinstance(data, list) else data["claims"]
