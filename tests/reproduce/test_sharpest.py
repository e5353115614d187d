"""The sharpest-directions poster's claims: each rule on small sweeps the test writes (holds, does
not hold, inconclusive), every study's configs at every scale, and the tiny scale end to end."""
import json

import pytest

from sgdscope.reproduce import load_verdicts

import sgdscope
from sgdscope.reproduce import CLAIMS, STUDIES, VERDICTS, reproduce
from sgdscope.reproduce.regime import judge
from sgdscope.store import RunWriter
from _study_points import study_points

SHARPEST_STUDIES = sorted({c.study for c in CLAIMS.values() if c.key.startswith("sharpest.")})
LAMBDA = "top_eigenvalues/lambda_1"


def _sweep(root, key, runs, *, steps_per_epoch=10, states=None, lr=None):
    """A sweep over ``key``: ``runs`` maps (value, seed) to {"type/name": [values at probed steps 0, 1, 2, ...]}
    (None: not probed there); the epoch recorded after step i is (i + 1) / steps_per_epoch."""
    section, name = key.split(".")
    for (value, seed), metrics in runs.items():
        run = f"{name}={value},seed={seed}"
        config = {"seed": seed, "name": run, section: {name: value}}
        if lr is not None:
            config["optimizer"] = {**config.get("optimizer", {}), "lr": lr}
        with RunWriter(root / run, config=config) as w:
            types = sorted({m.split("/")[0] for m in metrics})
            w.declare({t: t for t in types})
            for i in range(max(len(v) for v in metrics.values())):
                for t in types:
                    values = {m.split("/")[1]: v[i] for m, v in metrics.items()
                              if m.split("/")[0] == t and i < len(v) and v[i] is not None}
                    if values:
                        w.log(i, (i + 1) / steps_per_epoch, t, values)
            w.set_status((states or {}).get((value, seed), "done"))
    return sgdscope.load_sweep(root)


def _check(key, frame, scale="tiny"):
    """The claim's verdict as ``reproduce`` says it: its preconditions first (regime.judge), then its rule."""
    return judge(CLAIMS[key], frame, scale)[0]


def _bump(height, at, n=20, first=1.0):
    """lambda_1 over n probed steps: from ``first`` up to ``height`` at step ``at``, then down to half of it."""
    up = [first + (height - first) * i / at for i in range(at + 1)]
    down = [height - 0.5 * height * (i - at) / max(n - 1 - at, 1) for i in range(at + 1, n)]
    return up + down


# --- Fig. 1a ----------------------------------------------------------------------------------------------------------

def test_rise_then_settle(tmp_path):
    key = "sharpest.rise_then_settle"
    lr = "optimizer.lr"
    v = _check(key, _sweep(tmp_path / "a", lr, {(0.01, 0): {LAMBDA: _bump(5.0, 6)}, (0.1, 0): {LAMBDA: _bump(3.0, 4)}}))
    assert v.verdict == "holds", v
    assert "lambda_1 1 at the first probed step, max 5 (x5) at step 6 of 19" in v.ours
    flat = [1.0, 1.2, 1.3, 1.5, 1.6, 1.9, 1.4, 1.3, 1.2, 1.1]  # x1.9: no sharp increase
    v = _check(key, _sweep(tmp_path / "b", lr, {(0.01, 0): {LAMBDA: flat}, (0.1, 0): {LAMBDA: flat}}))
    assert v.verdict == "does not hold"
    # still rising at 3/4 of the run: the peak was not followed by a settled phase, out of regime
    v = _check(key, _sweep(tmp_path / "c", lr, {(0.01, 0): {LAMBDA: _bump(5.0, 15)}, (0.1, 0): {LAMBDA: _bump(3.0, 3)}}))
    assert v.verdict == "out of regime"
    assert v.reason.startswith("peak_settled not met (the maximum of lambda_1 before 75% of the run's last probed step): "
                               "lr=0.01,seed=0: max lambda_1 at step 15 of 19;")
    v = _check(key, _sweep(tmp_path / "c2", lr, {(0.01, 0): {LAMBDA: _bump(5.0, 14)}, (0.1, 0): {LAMBDA: _bump(3.0, 4)}}))
    assert v.verdict == "holds"  # 14 < 0.75 * 19 = 14.25 (the boundary), and steps 0-4 are five up to the peak
    v = _check(key, _sweep(tmp_path / "d", lr, {(0.01, 0): {LAMBDA: flat}, (0.1, 0): {LAMBDA: _bump(3.0, 4)}}))
    assert v.verdict == "inconclusive" and v.reason.startswith("runs disagree: 1 of 2 runs")
    # the peak at the third probed step: the rise was not seen (four steps up to it are too few)
    v = _check(key, _sweep(tmp_path / "e", lr, {(0.01, 0): {LAMBDA: _bump(5.0, 6)}, (0.1, 0): {LAMBDA: _bump(3.0, 3)}}))
    assert v.verdict == "out of regime" and "rise_probed not met" in v.reason
    assert "lr=0.1,seed=0: 4 probed steps up to the peak up to step 3" in v.reason


# --- Fig. 1b ----------------------------------------------------------------------------------------------------------

def _peaks(root, key, peaks, *, states=None):
    """``peaks[(value, seed)] = (height, probed step of the peak)`` over 20 probed steps."""
    return _sweep(root, key, {point: {LAMBDA: _bump(h, at)} for point, (h, at) in peaks.items()}, states=states)


def test_peak_against_the_learning_rate(tmp_path):
    lr = "optimizer.lr"
    smaller_earlier = {(0.01, 0): (8.0, 9), (0.01, 1): (9.0, 10), (0.1, 0): (4.0, 4), (0.1, 1): (5.0, 5)}
    frame = _peaks(tmp_path / "a", lr, smaller_earlier)
    v = _check("sharpest.peak_lr_height", frame)
    assert v.verdict == "holds" and v.ours.startswith("lr=0.01: 8.5 +- 0.707 (n=2); lr=0.1: 4.5 +- 0.707 (n=2); effect: ")
    v = _check("sharpest.peak_lr_time", frame)
    assert v.verdict == "holds", v
    assert [p["mean"] for p in v.numbers["points"]] == pytest.approx([1.05, 0.55])  # epochs: (step + 1) / 10
    larger_later = {(0.01, 0): (4.0, 4), (0.01, 1): (5.0, 5), (0.1, 0): (8.0, 9), (0.1, 1): (9.0, 10)}
    frame = _peaks(tmp_path / "b", lr, larger_later)
    assert _check("sharpest.peak_lr_height", frame).verdict == "does not hold"
    assert _check("sharpest.peak_lr_time", frame).verdict == "does not hold"
    # seed 1 the other way; a tie in the epoch of the peak is no ordering either
    mixed = {**smaller_earlier, (0.1, 1): (10.0, 10)}
    for claim in ("sharpest.peak_lr_height", "sharpest.peak_lr_time"):
        v = _check(claim, _peaks(tmp_path / f"c_{claim}", lr, mixed))
        assert v.verdict == "inconclusive" and v.reason.startswith("seeds disagree: 1 of 2 seeds"), claim


def test_a_peak_not_reached_is_out_of_regime_and_a_diverged_run_inconclusive(tmp_path):
    lr = "optimizer.lr"
    late = {(0.01, 0): (8.0, 18), (0.01, 1): (9.0, 10), (0.1, 0): (4.0, 4), (0.1, 1): (5.0, 5)}
    v = _check("sharpest.peak_lr_height", _peaks(tmp_path / "a", lr, late))
    assert v.verdict == "out of regime"
    assert "lr=0.01,seed=0: max lambda_1 at step 18 of 19; to reach it: train longer" in v.reason
    assert v.ours.startswith("lr=0.01: 8.5 +- 0.707 (n=2)")  # our numbers are kept
    ok = {(0.01, 0): (8.0, 9), (0.01, 1): (9.0, 10), (0.1, 0): (4.0, 4), (0.1, 1): (5.0, 5)}
    v = _check("sharpest.peak_lr_time", _peaks(tmp_path / "b", lr, ok, states={(0.1, 1): "diverged"}))
    assert v.verdict == "inconclusive" and v.reason == "runs diverged: lr=0.1,seed=1 (diverged)"


def test_peak_against_the_batch_size_in_epochs(tmp_path):
    bs = "train.batch_size"
    smaller_earlier = {(16, 0): (4.0, 4), (16, 1): (5.0, 5), (128, 0): (8.0, 9), (128, 1): (9.0, 10)}
    frame = _peaks(tmp_path / "a", bs, smaller_earlier)
    assert _check("sharpest.peak_bs_height", frame).verdict == "holds"
    assert _check("sharpest.peak_bs_time", frame).verdict == "holds"
    reverse = {(16, 0): (8.0, 9), (16, 1): (9.0, 10), (128, 0): (4.0, 4), (128, 1): (5.0, 5)}
    frame = _peaks(tmp_path / "b", bs, reverse)
    assert _check("sharpest.peak_bs_height", frame).verdict == "does not hold"
    assert _check("sharpest.peak_bs_time", frame).verdict == "does not hold"


# --- Fig. 2b ----------------------------------------------------------------------------------------------------------

def _alphas(half, one, n=20, early=(-5.0, 5.0)):
    """dloss for alpha 0.5 and 1 over n probed steps; the first two (the early phase: steps < 10% of 19) differ."""
    return {"sharpest_directions/dloss_alpha_0.5": [early[0]] * 2 + [half] * (n - 2),
            "sharpest_directions/dloss_alpha_1": [early[1]] * 2 + [one] * (n - 2)}


def test_overshoot(tmp_path):
    key = "sharpest.overshoot"
    lr = "optimizer.lr"
    # the early phase (alpha 0.5 far better there) is left out: steps 0 and 1 are before 10% of step 19
    v = _check(key, _sweep(tmp_path / "a", lr, {(0.01, 0): _alphas(-0.03, -0.02), (0.1, 0): _alphas(-0.05, -0.01)}))
    assert v.verdict == "holds", v
    assert v.numbers["runs"]["lr=0.01,seed=0"] == pytest.approx(
        {"n": 18, "from_step": 2, "dloss_alpha_0.5": -0.03, "dloss_alpha_1": -0.02})
    v = _check(key, _sweep(tmp_path / "b", lr, {(0.01, 0): _alphas(-0.01, -0.02), (0.1, 0): _alphas(-0.01, -0.03)}))
    assert v.verdict == "does not hold"
    v = _check(key, _sweep(tmp_path / "c", lr, {(0.01, 0): _alphas(-0.03, -0.02), (0.1, 0): _alphas(-0.01, -0.03)}))
    assert v.verdict == "inconclusive" and v.reason.startswith("runs disagree: 1 of 2 runs")
    # five probed steps from step 1 (10% of 6, rounded up) is the boundary; four are too few
    v = _check(key, _sweep(tmp_path / "d", lr, {(0.01, 0): _alphas(-0.03, -0.02), (0.1, 0): _alphas(-0.03, -0.02, n=6)}))
    assert v.verdict == "holds"
    v = _check(key, _sweep(tmp_path / "e", lr, {(0.01, 0): _alphas(-0.03, -0.02), (0.1, 0): _alphas(-0.03, -0.02, n=5)}))
    assert v.verdict == "out of regime"
    assert "lr=0.1,seed=0: 4 probed steps after the early phase (the first 10% of the run) from step 1" in v.reason


# --- Nudged SGD -------------------------------------------------------------------------------------------------------

def _nsgd(root, acc, norm, *, states=None):
    """gamma 0.1 and 1.0, seeds 0 and 1, 20 probed steps: validation accuracy ``acc[point]`` throughout,
    the norms ``norm[point]`` over the last quarter (steps >= 15) and 1000 before it (outside the window)."""
    runs = {}
    for point in acc:
        late = [1000.0] * 15 + [norm[point] - 1, norm[point] + 1] * 2 + [norm[point]]
        runs[point] = {"evaluation/val_accuracy": [acc[point]] * 20, "hessian_norms/spectral_norm": late,
                       "hessian_norms/frobenius_norm": [2 * x for x in late]}
    return _sweep(root, "optimizer.gamma", runs, states=states, lr=0.1)


NSGD = {"sharpest.nsgd_faster": "acc", "sharpest.nsgd_spectral": "norm", "sharpest.nsgd_frobenius": "norm"}


@pytest.mark.parametrize("key", sorted(NSGD))
def test_nsgd_claims(tmp_path, key):
    same = {(0.1, 0): 0.5, (0.1, 1): 0.5, (1.0, 0): 0.5, (1.0, 1): 0.5}
    nudged_more = {(0.1, 0): 0.9, (0.1, 1): 0.8, (1.0, 0): 0.6, (1.0, 1): 0.5}
    nudged_less = {point: 1.4 - value for point, value in nudged_more.items()}
    mixed = {**nudged_more, (1.0, 1): 0.95}

    def frame(name, values, **kw):
        acc, norm = (values, same) if NSGD[key] == "acc" else (same, {p: 100 * v for p, v in values.items()})
        return _nsgd(tmp_path / name, acc, norm, **kw)

    v = _check(key, frame("a", nudged_more))
    assert v.verdict == "holds" and "optimizer.gamma for every seed" in v.reason, v
    if NSGD[key] == "norm":  # the 1000s before the last quarter are left out
        scale = 2 if key.endswith("frobenius") else 1
        assert [p["mean"] for p in v.numbers["points"]] == pytest.approx([85 * scale, 55 * scale])
        assert v.numbers["after_step"] == 15
    assert _check(key, frame("b", nudged_less)).verdict == "does not hold"
    v = _check(key, frame("c", mixed))
    assert v.verdict == "inconclusive" and v.reason.startswith("seeds disagree: 1 of 2 seeds")
    v = _check(key, frame("d", nudged_more, states={(0.1, 0): "diverged"}))
    assert v.verdict == "inconclusive" and v.reason == "runs diverged: gamma=0.1,seed=0 (diverged)"


def test_nsgd_needs_plain_sgd_near_its_stability_edge(tmp_path):
    key = "sharpest.nsgd_spectral"
    # plain SGD (gamma = 1) at lr 0.1: eta * max lambda_1 = 0.1 * 10 = 1 is the boundary (inside); 0.1 * 9.9 is not
    for name, top, want in (("a", 10.0, "holds"), ("b", 9.9, "out of regime")):
        norms = {(0.1, 0): [20.0] * 8, (1.0, 0): [top] + [5.0] * 7}
        frame = _sweep(tmp_path / name, "optimizer.gamma", {p: {"hessian_norms/spectral_norm": v} for p, v in norms.items()},
                       lr=0.1)
        v = _check(key, frame)
        assert v.verdict == want, v
    assert "gamma=1.0,seed=0: eta * max lambda_1 = 0.1 * 9.9 = 0.99" in v.reason
    assert "gamma=0.1" not in v.reason  # Nudged SGD's own curvature is not the regime


# --- the studies -----------------------------------------------------------------------------------------------------

def test_the_sharpest_claims_and_studies():
    assert {c.key for c in CLAIMS.values() if c.key.startswith("sharpest.")} == {
        "sharpest.rise_then_settle", "sharpest.peak_lr_height", "sharpest.peak_lr_time", "sharpest.peak_bs_height",
        "sharpest.peak_bs_time", "sharpest.overshoot", "sharpest.nsgd_faster", "sharpest.nsgd_spectral",
        "sharpest.nsgd_frobenius"}
    assert SHARPEST_STUDIES == ["sd_bs", "sd_lr", "sd_nsgd"]
    from sgdscope.viz import FIGURES

    assert all(CLAIMS[k].figure in FIGURES for k in CLAIMS if k.startswith("sharpest."))


@pytest.mark.parametrize("name", SHARPEST_STUDIES)
def test_every_sharpest_study_resolves_at_every_scale(name):
    for scale, (plan, points) in study_points(name).items():
        assert len(plan["seeds"]) >= 2
        data = points[0].config["data"]["name"]
        assert data == {"tiny": "digits", "cpu": "fashion_mnist", "paper": "cifar10"}[scale]
        assert all(p.config["optimizer"]["momentum"] == 0.0 for p in points)  # vanilla SGD, no momentum
        if name == "sd_nsgd":
            assert all(p.config["optimizer"]["name"] == "nudged_sgd" for p in points)
            assert plan["grid"] == {"optimizer.gamma": [0.1, 1.0]}  # gamma = 1: plain SGD
        else:
            assert all(p.config["optimizer"]["name"] == "sgd" for p in points)
    assert STUDIES["sd_lr"].sweeps["paper"]["config"]["model"]["name"] == "simplecnn"
    assert 0.005 in STUDIES["sd_lr"].sweeps["paper"]["grid"]["optimizer.lr"]  # the poster's eta


def test_nsgd_cpu_is_the_regime_where_sgd_is_held_near_two_over_eta():
    cpu = STUDIES["sd_nsgd"].sweeps["cpu"]["config"]
    assert cpu["data"]["name"] == "fashion_mnist" and cpu["model"]["name"] == "mlp" and cpu["optimizer"]["lr"] == 0.1


# --- end to end ------------------------------------------------------------------------------------------------------

def test_sharpest_at_tiny_scale_end_to_end(tmp_path):
    rows = reproduce("sharpest", scale="tiny", out=tmp_path, workers=2, quiet=True)
    assert {r["claim"] for r in rows} == {k for k in CLAIMS if k.startswith("sharpest.")}
    for r in rows:
        assert r["verdict"] in VERDICTS and (r["ours"] or r["reason"]), r
        assert r["seeds"] == [0, 1] and r["scale"] == "tiny"
        assert "could not be evaluated" not in r["reason"], r  # every metric the rules read was recorded
    assert load_verdicts(tmp_path / "tiny" / "verdicts.json") == rows
    for name in SHARPEST_STUDIES:
        assert "Verdicts" in (tmp_path / "tiny" / name / "report.html").read_text()
    assert 'id="fig-sharpest.nsgd"' in (tmp_path / "tiny" / "sd_nsgd" / "report.html").read_text()
