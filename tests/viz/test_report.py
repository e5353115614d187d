"""The HTML report: self-contained, and checked in a real headless Chromium (Playwright)."""
import re
import shutil
from pathlib import Path

import numpy as np
import pytest

from sgdscope.store import RunWriter
from sgdscope.store._toml import write_toml
from sgdscope.store.sweeps import MARKER
from sgdscope.viz import FIGURES, build_report

CHROMIUM = Path("/usr/bin/chromium")
FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
         "--disable-sync", "--no-first-run"]


def _sweep(root):
    """A sweep folder: 2 learning rates x 2 seeds of a few steps, metrics and arrays."""
    root.mkdir(parents=True)
    write_toml(root / MARKER, {"base": {"name": "tiny"}, "grid": {"optimizer.lr": [0.1, 0.5]}, "seeds": [0, 1]})
    points = {}
    for lr in (0.1, 0.5):
        for seed in (0, 1):
            name = f"lr={lr},seed={seed}"
            with RunWriter(root / "runs" / name, config={"optimizer": {"lr": lr}, "seed": seed, "name": name}) as w:
                w.declare({"train": "train", "top_eigenvalues": "top_eigenvalues", "gradient_noise": "gradient_noise",
                           "evaluation": "evaluation"})
                for step in range(8):
                    ep = (step + 1) / 4
                    w.log(step, ep, "train", {"loss": 2.0 / (1 + lr * step) + 0.01 * seed, "lr": lr})
                    w.log(step, ep, "top_eigenvalues", {"lambda_1": 5 + step * lr, "eigenvalues": np.array([5 + step * lr, 2.0])})
                    w.log(step, ep, "gradient_noise", {"lambda_1": 0.3 - 0.01 * step, "ratio": 0.1, "trace": 1.0,
                                                       "spectrum": np.linspace(0.3, 0.0, 5)})
                    if step % 4 == 3:
                        w.log(step, ep, "evaluation", {"train_accuracy": 0.5 + 0.05 * step, "test_accuracy": 0.4 + 0.05 * step})
                w.set_status("done", message="8 steps")
            points[name] = {"values": {"optimizer.lr": lr, "seed": seed}, "state": "done"}
    import json
    (root / "points.json").write_text(json.dumps(points))
    (root / "verdicts.json").write_text(json.dumps([{"claim": "BE Conjecture 1", "verdict": "does not hold",
                                                     "rule": "max lambda_K^1 falls with lr", "ours": "0.30 vs 0.30",
                                                     "paper": "0.68 vs 3.30", "figure": "generic.spectral_density"}]))
    return root


def test_the_report_is_one_self_contained_file(tmp_path):
    out = build_report(_sweep(tmp_path / "sweep"))
    page = out.read_text()
    assert out == tmp_path / "sweep" / "report.html"
    assert not re.search(r"""(src|href)=["'](https?:)?//""", page) and "<script" not in page and "@import" not in page
    assert page.count('src="data:image/png;base64,') >= 1
    for text in ("Sweep", "Comparisons over seeds", "max of gradient_noise/lambda_1", "Figures not drawn",
                 "does not hold", "lr=0.5,seed=1", "[optimizer]"):
        assert text in page, text
    not_drawn = page.split("Figures not drawn")[1]
    assert "generic.spectral_density" in not_drawn  # the claim's figure, with the probe it needs
    # a reproduction's report lists only its claims' figures; the rest of the catalogue is counted
    assert "break_even.fig1" not in not_drawn and re.search(r"\d+ other figure\(s\) of the catalogue", not_drawn)
    (tmp_path / "sweep" / "verdicts.json").unlink()  # a plain sweep's report lists every figure it cannot draw
    assert "break_even.fig1" in build_report(tmp_path / "sweep").read_text().split("Figures not drawn")[1]


@pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's chromium at /usr/bin/chromium (.ci/run installs it)")
def test_the_report_in_a_real_browser(tmp_path):
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is in the test extra")
    out = build_report(_sweep(tmp_path / "sweep"))
    errors, requests = [], []
    with sync_api.sync_playwright() as pw:
        context = pw.chromium.launch_persistent_context(str(tmp_path / "profile"), executable_path=str(CHROMIUM),
                                                        headless=True, args=FLAGS)
        try:
            page = context.new_page()
            page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
            page.on("pageerror", lambda err: errors.append(str(err)))
            page.on("request", lambda req: requests.append(req.url))
            page.goto(out.as_uri())
            page.wait_for_load_state("load")
            widths = page.eval_on_selector_all("img", "imgs => imgs.map(i => i.complete ? i.naturalWidth : 0)")
            title = page.title()
            page.screenshot(path=str(tmp_path / "report.png"), full_page=True)
        finally:
            context.close()
    assert errors == []
    assert widths and all(w > 0 for w in widths), widths
    assert [u for u in requests if not (u.startswith("file://") or u.startswith("data:"))] == []
    assert title == "sgdscope report: sweep"
    assert (tmp_path / "report.png").stat().st_size > 10_000
    shutil.copy(tmp_path / "report.png", Path("/tmp") / "sgdscope-report-screenshot.png")
