"""One self-contained HTML report of a run or a sweep: status, config, grid, comparisons, figures.

Everything is inside the file (figures as PNG data URIs, inline CSS, no script, no font or CDN
request), so it opens offline and can be mailed. For a sweep: the grid, every point's state and
last metrics, and the seed-averaged comparison of the headline quantities; for every run its
status and config; every figure the stored metrics allow; for the others, which probes would give
them; and the verdicts a reproduction wrote (``verdicts.json`` beside the runs), when there are any.
"""
from __future__ import annotations

import base64
import html
import io
import json
import math
from datetime import datetime, timezone
from pathlib import Path

from ..analysis import compare, seed_columns
from ..store import is_run_dir, is_sweep_dir, read_config, read_status, sweep_table
from ..store import _toml
from ..store._atomic import atomic_write_text
from ..store.sweeps import MARKER
from .registry import FIGURES, as_runs, available
from .source import MissingData

__all__ = ["build_report", "VERDICTS", "HEADLINE"]

VERDICTS = "verdicts.json"
HEADLINE = (  # (metric, statistic) compared across a sweep's grid points, when recorded
    ("top_eigenvalues/lambda_1", "max"),
    ("gradient_noise/lambda_1", "max"),
    ("gradient_noise/ratio", "max"),
    ("gradient_noise/trace", "max"),
    ("interpolation/crossed", "mean"),
    ("evaluation/train_accuracy", "last"),
    ("evaluation/test_accuracy", "last"),
    ("train/loss", "last"),
)

_CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:2em auto;max-width:1100px;color:#222;padding:0 1em}
h1{font-size:1.5em}h2{font-size:1.2em;border-bottom:1px solid #ddd;padding-bottom:.2em;margin-top:2em}
table{border-collapse:collapse;font-size:.85em;margin:.5em 0}td,th{border:1px solid #ddd;padding:.25em .5em;text-align:right}
th{background:#f4f4f4}td.l,th.l{text-align:left}.state-done{color:#176317}.state-failed,.state-diverged{color:#a31515}
.state-running,.state-interrupted{color:#8a6d00}figure{display:inline-block;margin:.5em;vertical-align:top;max-width:100%}
figure img{max-width:100%;height:auto;border:1px solid #eee}figcaption{font-size:.8em;color:#555;max-width:640px}
.wide{overflow-x:auto}pre{background:#f7f7f7;padding:.5em;font-size:.8em;overflow:auto}.muted{color:#777;font-size:.85em}
.verdict-holds{color:#176317;font-weight:600}.verdict-fails{color:#a31515;font-weight:600}.verdict-other{color:#8a6d00;font-weight:600}.verdict-regime{color:#555;font-weight:600;font-style:italic}
"""


def _esc(x) -> str:
    return html.escape(str(x), quote=True)


def _cell(v) -> str:
    if isinstance(v, float):
        return "" if math.isnan(v) else f"{v:.4g}"
    return _esc(v)


def _table(df, left: tuple[str, ...] = ()) -> str:
    head = "".join(f'<th class="{"l" if c in left else ""}">{_esc(c)}</th>' for c in df.columns)
    rows = []
    for record in df.to_dict("records"):
        cells = []
        for c, v in record.items():
            cls = ["l"] if c in left else []
            if c == "state":
                cls.append(f"state-{v}")
            cells.append(f'<td class="{" ".join(cls)}">{_cell(v)}</td>')
        rows.append("<tr>" + "".join(cells) + "</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"


def _png(fig) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    return base64.b64encode(buf.getvalue()).decode("ascii")


def _figures(runs) -> tuple[list[str], dict[str, str]]:
    ok, missing = available(runs)
    blocks = []
    for name in ok:
        spec = FIGURES[name]
        try:
            data = _png(spec.fn(runs))
        except MissingData as err:
            missing[name] = str(err)
            continue
        except Exception as err:  # a figure that breaks must not take the report with it
            missing[name] = f"could not be drawn: {type(err).__name__}: {err}"
            continue
        blocks.append(f'<figure id="fig-{_esc(name)}"><img alt="{_esc(spec.paper)}: {_esc(spec.title)}" '
                      f'src="data:image/png;base64,{data}"><figcaption><b>{_esc(spec.paper)}</b> '
                      f'({_esc(name)}): {_esc(spec.title)}</figcaption></figure>')
    return blocks, missing


def _comparisons(frame) -> list[str]:
    out = []
    for metric, stat in HEADLINE:
        try:
            table = seed_columns(compare(frame, metric, stat=stat))
        except (KeyError, ValueError):
            continue
        out.append(f"<h3>{_esc(stat)} of {_esc(metric)}</h3>" + _table(table))
    return out


def _verdict_rows(root: Path) -> list[dict]:
    path = root / VERDICTS
    if not path.is_file():
        return []
    rows = json.loads(path.read_text(encoding="utf-8"))
    return rows if isinstance(rows, list) else rows.get("claims", [])


def _regime(row: dict) -> str:
    """Each precondition of a verdict row, with every run's measurement (those outside marked)."""
    items = []
    for p in row.get("regime") or []:
        runs = "".join(f'<li>{"" if v.get("inside") else "<b>outside</b> "}{_esc(run)}: {_esc(v.get("measured", ""))}</li>'
                       for run, v in p.get("runs", {}).items())
        state = "met" if p.get("inside") else "<b>not met</b>"
        items.append(f'<details><summary>{_esc(p.get("key", ""))}: {state}</summary><p>{_esc(p.get("test", ""))} '
                     f'<span class="muted">({_esc(p.get("paper", ""))})</span></p><ul>{runs}</ul></details>')
    return "".join(items) or '<span class="muted">no precondition stated</span>'


def _verdicts(rows: list[dict]) -> str:
    if not rows:
        return ""
    items = []
    kinds = ("holds", "does not hold", "out of regime", "inconclusive")
    for r in rows:
        verdict = str(r.get("verdict", ""))
        cls = {"holds": "verdict-holds", "does not hold": "verdict-fails", "out of regime": "verdict-regime"}.get(
            verdict, "verdict-other")
        why = f'<br><span class="muted">{_esc(r.get("reason", ""))}</span>' if r.get("reason") else ""
        items.append(f'<tr><td class="l">{_esc(r.get("claim", ""))}</td><td class="l {cls}">{_esc(verdict)}{why}</td>'
                     f'<td class="l">{_regime(r)}</td><td class="l">{_esc(r.get("rule", ""))}</td>'
                     f'<td class="l">{_esc(r.get("ours", ""))}</td><td class="l">{_esc(r.get("paper", ""))}</td></tr>')
    counts = ", ".join(f"{sum(str(r.get('verdict')) == k for r in rows)} {k}" for k in kinds)
    return (f"<h2>Verdicts</h2><p>{len(rows)} claims: {_esc(counts)}. A claim is judged only on runs inside the regime "
            "its paper states; otherwise it is <i>out of regime</i>.</p><table><thead><tr><th class=l>claim</th>"
            "<th class=l>verdict</th><th class=l>regime</th><th class=l>rule</th><th class=l>ours</th><th class=l>paper</th>"
            "</tr></thead><tbody>" + "".join(items) + "</tbody></table>")


def _run_sections(runs) -> list[str]:
    out = []
    for name, folder in runs.folders.items():
        status = read_status(folder) if (folder / "status.json").exists() else {}
        config = _toml.dumps(read_config(folder)) if (folder / "config.toml").exists() else ""
        out.append(f'<details><summary><b>{_esc(name)}</b>: <span class="state-{_esc(status.get("state", "unknown"))}">'
                   f'{_esc(status.get("state", "unknown"))}</span> at step {_esc(status.get("step"))} '
                   f'<span class="muted">{_esc(status.get("message", ""))}</span></summary>'
                   f"<pre>{_esc(config)}</pre></details>")
    return out


def build_report(source, out: str | Path | None = None) -> Path:
    """Write the report of ``source`` (a run folder, a sweep folder or a folder of runs) to ``out``
    (default ``SOURCE/report.html``); returns its path."""
    source = Path(source)
    if not (is_run_dir(source) or is_sweep_dir(source) or source.is_dir()):
        raise FileNotFoundError(f"{source}: not a run or sweep folder")
    runs = as_runs(source)
    out = Path(out) if out is not None else source / "report.html"
    sweep = is_sweep_dir(source)
    parts = [f"<h1>sgdscope report: {_esc(source.name)}</h1>",
             f'<p class="muted">{_esc(source.resolve())}; {len(runs.names)} run(s); written '
             f'{datetime.now(timezone.utc).isoformat(timespec="seconds")}</p>']
    claims = _verdict_rows(source)
    if claims:
        parts.append(_verdicts(claims))
    if sweep:
        grid = _toml.read_toml(source / MARKER)
        parts.append("<h2>Sweep</h2><p>grid: " + _esc(json.dumps(grid.get("grid", {}))) + "; seeds: "
                     + _esc(grid.get("seeds", [])) + '</p><div class="wide">' + _table(sweep_table(source), left=("run", "message")) + "</div>")
    if len(runs.names) > 1 and "state" in runs.frame.columns:
        comparisons = _comparisons(runs.frame)
        if comparisons:
            parts.append("<h2>Comparisons over seeds</h2>" + "".join(comparisons))
    blocks, missing = _figures(runs)
    parts.append("<h2>Figures</h2>" + ("".join(blocks) or "<p>No figure can be drawn from the stored metrics.</p>"))
    if claims:  # a reproduction: only its claims' figures matter here; the rest are counted
        named = {r.get("figure") for r in claims}
        others = len(set(missing) - named)
        missing = {n: why for n, why in missing.items() if n in named}
    if missing or (claims and others):
        items = "".join(f"<li><b>{_esc(n)}</b> ({_esc(FIGURES[n].paper)}): {_esc(why)}</li>" for n, why in sorted(missing.items()))
        rest = (f"<p class=\"muted\">{others} other figure(s) of the catalogue need metrics these runs do not hold "
                f"(<code>sgdscope plot {_esc(source)} --list</code> names them and the probes they need).</p>"
                if claims and others else "")
        parts.append(f"<h2>Figures not drawn</h2>{'<ul>' + items + '</ul>' if items else ''}{rest}")
    parts.append("<h2>Runs</h2>" + "".join(_run_sections(runs)))
    page = (f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>sgdscope report: {_esc(source.name)}</title>'
            f'<meta name="viewport" content="width=device-width, initial-scale=1"><style>{_CSS}</style></head>'
            f"<body>{''.join(parts)}</body></html>")
    out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out, page)  # replaces a link at ``out`` rather than writing through it
    return out
