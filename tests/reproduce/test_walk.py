"""A Walk with SGD's claims: each rule on small sweeps the test writes (holds, does not hold,
inconclusive), every study's configs at every scale, and the tiny scale end to end."""
import json
import math

import pytest

from sgdscope.reproduce import load_verdicts

import sgdscope
from sgdscope.reproduce.regime import judge
from sgdscope.reproduce import CLAIMS, STUDIES, VERDICTS, reproduce
from sgdscope.store import RunWriter
from _study_points import study_points

WALK_STUDIES = sorted({c.study for c in CLAIMS.values() if c.key.startswith("walk.")})


def _sweep(root, runs, *, key=None, steps_per_epoch=20, states=None):
    """A sweep: ``runs`` maps (value, seed) (or a seed alone when ``key`` is None) to {"type/name": [values at
    steps 0, 1, 2, ...]} (None: not probed at that step); the epoch recorded after step i is
    (i + 1) / steps_per_epoch, as the trainer's."""
    for point, metrics in runs.items():
        value, seed = point if key else (None, point)
        run = f"{key.split('.')[1]}={value},seed={seed}" if key else f"seed={seed}"
        config = {"seed": seed, "name": run}
        if key:
            section, name = key.split(".")
            config.setdefault(section, {})[name] = value
        with RunWriter(root / run, config=config) as w:
            types = sorted({m.split("/")[0] for m in metrics})
            w.declare({t: t for t in types})
            for i in range(max(len(v) for v in metrics.values())):
                for t in types:
                    values = {m.split("/")[1]: v[i] for m, v in metrics.items()
                              if m.split("/")[0] == t and i < len(v) and v[i] is not None}
                    if values:
                        w.log(i, (i + 1) / steps_per_epoch, t, values)
            w.set_status((states or {}).get(point, "done"))
    return sgdscope.load_sweep(root)


def _check(key, frame, scale="tiny"):
    """The claim's verdict as ``reproduce`` says it: its preconditions first (regime.judge), then its rule."""
    return judge(CLAIMS[key], frame, scale)[0]


# --- barriers per epoch ----------------------------------------------------------------------------------------------

def _crossed(per_epoch, steps=20):
    """0/1 per step: ``per_epoch[e]`` barriers at the first steps of epoch e."""
    return [float(i < n) for n in per_epoch for i in range(steps)]


def test_barriers_hold_when_most_epochs_cross_at_most_five_percent(tmp_path):
    key = "walk.barriers_per_epoch"
    # 1 of 20 = 5% is allowed; one epoch of three above it still leaves "most parts of training"
    frame = _sweep(tmp_path / "a", {0: {"interpolation/crossed": _crossed([0, 1, 0])},
                                    1: {"interpolation/crossed": _crossed([5, 0, 1])}})
    v = _check(key, frame)
    assert v.verdict == "holds", v
    assert "seed=1: epoch 1: 5/20, epoch 2: 0/20, epoch 3: 1/20" in v.ours
    assert v.numbers["runs"]["seed=1"] == {"epochs": [1, 2, 3], "crossed": [5, 0, 1], "probed": [20, 20, 20]}
    frame = _sweep(tmp_path / "b", {0: {"interpolation/crossed": _crossed([5, 2, 0])},
                                    1: {"interpolation/crossed": _crossed([3, 3, 3])}})
    assert _check(key, frame).verdict == "does not hold"
    frame = _sweep(tmp_path / "c", {0: {"interpolation/crossed": _crossed([0, 0, 0])},
                                    1: {"interpolation/crossed": _crossed([3, 3, 3])}})
    v = _check(key, frame)
    assert v.verdict == "inconclusive" and v.reason.startswith("runs disagree: 1 of 2 runs")


def test_barriers_need_probed_epochs_and_finished_runs(tmp_path):
    key = "walk.barriers_per_epoch"
    sparse = [0.0 if i % 5 == 0 else None for i in range(60)]  # 4 probed steps an epoch
    frame = _sweep(tmp_path / "a", {0: {"interpolation/crossed": _crossed([0, 0, 0])}, 1: {"interpolation/crossed": sparse}})
    v = _check(key, frame)
    assert v.verdict == "out of regime" and "seed=1: probed steps per epoch: epoch 1: 4, epoch 2: 4, epoch 3: 4" in v.reason
    frame = _sweep(tmp_path / "b", {0: {"interpolation/crossed": _crossed([0, 0, 0])},
                                    1: {"interpolation/crossed": _crossed([0, 0, 0])}}, states={1: "diverged"})
    v = _check(key, frame)
    assert v.verdict == "inconclusive" and v.reason == "runs diverged: seed=1 (diverged)"


def test_barriers_are_judged_only_on_runs_probed_in_every_epoch(tmp_path):
    from sgdscope.reproduce.regime import judge

    key = "walk.barriers_per_epoch"
    # 10 probed steps (the boundary) in every epoch: inside; 9 in one epoch: outside, whatever the rule says
    ten = [0.0 if i % 2 == 0 else None for i in range(60)]
    nine = [None if (i % 2 or i == 58) else 0.0 for i in range(60)]
    v, regime = judge(CLAIMS[key], _sweep(tmp_path / "a", {0: {"interpolation/crossed": ten},
                                                             1: {"interpolation/crossed": ten}}), "tiny")
    assert v.verdict == "holds" and regime[0]["inside"]
    assert regime[0]["runs"]["seed=0"]["measured"] == "probed steps per epoch: epoch 1: 10, epoch 2: 10, epoch 3: 10"
    v, regime = judge(CLAIMS[key], _sweep(tmp_path / "b", {0: {"interpolation/crossed": ten},
                                                             1: {"interpolation/crossed": nine}}), "tiny")
    assert v.verdict == "out of regime" and "seed=1: probed steps per epoch: epoch 1: 10, epoch 2: 10, epoch 3: 9" in v.reason
    assert regime[0]["runs"]["seed=1"]["short_epochs"] == [3]


# --- the valley floor ----------------------------------------------------------------------------------------------

def _zigzag(n=60, every=1, start=2.0):
    """A falling floor that turns every ``every`` steps: down, up, down, ... (``every`` = 1: every step turns)."""
    out, value = [], start
    for i in range(n):
        out.append(value)
        value += -0.02 if (i // every) % 2 == 0 else 0.01
    return out


def test_valley_floor_holds_with_ups_and_downs_in_every_epoch(tmp_path):
    key = "walk.valley_floor"
    falling = [2.0 - 0.01 * i for i in range(60)]
    frame = _sweep(tmp_path / "a", {0: {"interpolation/valley_floor": _zigzag()},
                                    1: {"interpolation/valley_floor": _zigzag(every=4)}})
    v = _check(key, frame)
    assert v.verdict == "holds", v
    # turning every step: every pair of changes differs in sign; every 4 steps: a quarter of them
    assert v.numbers["runs"]["seed=0"]["turns"] == {"1": 1.0, "2": 1.0, "3": 1.0}
    assert all(0.2 <= t <= 0.3 for t in v.numbers["runs"]["seed=1"]["turns"].values())
    v = _check(key, _sweep(tmp_path / "b", {0: {"interpolation/valley_floor": falling},
                                            1: {"interpolation/valley_floor": _zigzag(every=10)}}))
    assert v.verdict == "does not hold" and "epoch 1: 0.00 of 19" in v.ours  # a monotone floor never turns
    # ups and downs in two epochs but a monotone third epoch: the run does not show it in every epoch
    mixed = _zigzag(40) + [falling[-1] - 0.01 * i for i in range(20)]
    v = _check(key, _sweep(tmp_path / "c", {0: {"interpolation/valley_floor": _zigzag()},
                                            1: {"interpolation/valley_floor": mixed}}))
    assert v.verdict == "inconclusive" and v.reason.startswith("runs disagree: 1 of 2 runs")


def test_valley_floor_needs_consecutive_probed_steps_in_every_epoch(tmp_path):
    every_other = [v if i % 2 == 0 else None for i, v in enumerate(_zigzag())]
    v = _check("walk.valley_floor", _sweep(tmp_path / "a", {0: {"interpolation/valley_floor": _zigzag()},
                                                             1: {"interpolation/valley_floor": every_other}}))
    assert v.verdict == "out of regime" and "floor_probed not met" in v.reason
    assert "seed=1: pairs of consecutive changes per epoch: epoch 1: 0, epoch 2: 0, epoch 3: 0" in v.reason
    # ten pairs in the last epoch is the boundary (inside), nine is not
    for name, kept, want in (("b", 11, "holds"), ("c", 10, "out of regime")):
        floor = _zigzag()[:40 + kept] + [None] * (20 - kept)
        v = _check("walk.valley_floor", _sweep(tmp_path / name, {0: {"interpolation/valley_floor": floor}}))
        assert v.verdict == want, (kept, v)


# --- alignment against the batch size --------------------------------------------------------------------------------

def _alignment(means_per_step, sizes=(10, 100, 1300)):
    """Alignment probed at the epoch ends (steps 19, 39, ...): ``means_per_step`` one tuple of means per size."""
    metrics = {f"alignment/mean_M{m}": [None] * (20 * len(means_per_step)) for m in sizes}
    for j, means in enumerate(means_per_step):
        for m, value in zip(sizes, means):
            metrics[f"alignment/mean_M{m}"][20 * j + 19] = value
    return metrics


def test_alignment_rises_with_the_batch_size_at_every_probed_step(tmp_path):
    key = "walk.alignment_batch_size"
    up = _alignment([(1.0, 2.0, 3.0), (4.0, 5.0, 9.0)])
    down = _alignment([(3.0, 2.0, 1.0), (4.0, 4.0, 4.0)])  # equal means do not rise strictly
    v = _check(key, _sweep(tmp_path / "a", {0: up, 1: up}))
    assert v.verdict == "holds", v
    assert v.numbers["runs"]["seed=0"]["batch_sizes"] == [10, 100, 1300]  # sorted by size, not by name
    assert "step 19: B=10: 1, B=100: 2, B=1300: 3" in v.ours
    assert _check(key, _sweep(tmp_path / "b", {0: down, 1: down})).verdict == "does not hold"
    v = _check(key, _sweep(tmp_path / "c", {0: up, 1: _alignment([(1.0, 2.0, 3.0), (3.0, 2.0, 1.0)])}))
    assert v.verdict == "inconclusive"
    assert "seed=1: steps disagree: the alignment rises with B at 1 of 2 probed steps" in v.reason
    v = _check(key, _sweep(tmp_path / "d", {0: up, 1: _alignment([(1.0,), (2.0,)], sizes=(10,))}))
    assert v.verdict == "out of regime" and "seed=1: 2 probed steps with every batch size (epochs 1, 2); batch sizes 10" in v.reason
    # one epoch end is too few; sizes 10 and 100 span the factor 10 (the boundary), 10 and 99 do not
    assert _check(key, _sweep(tmp_path / "e", {0: _alignment([(1.0, 2.0, 3.0)])})).verdict == "out of regime"
    assert _check(key, _sweep(tmp_path / "f", {0: _alignment([(1.0, 2.0)] * 2, sizes=(10, 100))})).verdict == "holds"
    assert _check(key, _sweep(tmp_path / "g", {0: _alignment([(1.0, 2.0)] * 2, sizes=(10, 99))})).verdict == "out of regime"


# --- cosine of consecutive gradients against the batch size -------------------------------------------------------------

def _cosines(root, means, *, states=None, pairs=25):
    """Batch sizes 10 / 100 / 1300, seeds 0 and 1: cosines around the given mean (NaN at the first step)."""
    runs = {}
    for (S, seed), mean in means.items():
        n = pairs(S) if callable(pairs) else pairs
        runs[(S, seed)] = {"gradient_cosine/cosine": [math.nan] + [mean - 0.1, mean + 0.1] * n}
    return _sweep(root, runs, key="train.batch_size", states=states)


def test_cosine_falls_with_the_batch_size(tmp_path):
    key = "walk.cosine_batch_size"
    falls = {(10, 0): 0.2, (10, 1): 0.3, (100, 0): 0.0, (100, 1): 0.1, (1300, 0): -0.4, (1300, 1): -0.3}
    v = _check(key, _cosines(tmp_path / "a", falls))
    assert v.verdict == "holds" and "train.batch_size for every seed" in v.reason
    assert v.ours.startswith("batch_size=10: 0.25 +- 0.0707 (n=2)")  # the first step's NaN skipped
    rises = {point: -mean for point, mean in falls.items()}
    assert _check(key, _cosines(tmp_path / "b", rises)).verdict == "does not hold"
    v = _check(key, _cosines(tmp_path / "c", {**falls, (1300, 1): 0.9}))
    assert v.verdict == "inconclusive" and v.reason.startswith("seeds disagree: 1 of 2 seeds")
    v = _check(key, _cosines(tmp_path / "d", falls, states={(1300, 0): "diverged"}))
    assert v.verdict == "inconclusive" and v.reason == "runs diverged: batch_size=1300,seed=0 (diverged)"


def test_cosine_needs_the_same_iterations_at_every_batch_size(tmp_path):
    key = "walk.cosine_batch_size"
    falls = {(10, 0): 0.2, (100, 0): 0.0, (1300, 0): -0.4}
    v = _check(key, _cosines(tmp_path / "a", falls, pairs=lambda S: 30 if S == 1300 else 25))
    assert v.verdict == "out of regime" and "(the runs end at steps [50, 60])" in v.reason
    v = _check(key, _cosines(tmp_path / "b", falls, pairs=24))  # 48 probed cosines a run: too few
    assert v.verdict == "out of regime" and "batch_size=10,seed=0: 48 probed cosines to step 48" in v.reason


# --- the studies -----------------------------------------------------------------------------------------------------

def test_the_walk_claims_and_studies():
    assert {c.key for c in CLAIMS.values() if c.key.startswith("walk.")} == {
        "walk.barriers_per_epoch", "walk.valley_floor", "walk.alignment_batch_size", "walk.cosine_batch_size"}
    assert WALK_STUDIES == ["walk_bs", "walk_sgd"]
    from sgdscope.viz import FIGURES

    assert all(CLAIMS[k].figure in FIGURES for k in CLAIMS if k.startswith("walk."))


@pytest.mark.parametrize("name", WALK_STUDIES)
def test_every_walk_study_resolves_at_every_scale(name):
    study = STUDIES[name]
    for scale, (plan, points) in study_points(name).items():
        assert len(plan["seeds"]) >= 2
        data = points[0].config["data"]["name"]
        assert data == {"tiny": "digits", "cpu": "mnist", "paper": "cifar10"}[scale]
        probes = points[0].config["probes"]
        if name == "walk_sgd":
            assert probes["interpolation"]["num_points"] == 10  # §2: 10 points between consecutive iterates
            assert "alignment" in probes
        else:  # the same number of iterations at every batch size; the largest is the whole training set
            assert probes["gradient_cosine"]["every"] == 1
            assert len({p.config["train"]["max_steps"] for p in points}) == 1
    tiny_sizes = study.sweeps["tiny"]["grid"].get("train.batch_size", [])
    assert not tiny_sizes or max(tiny_sizes) == 1300  # digits: 1,300 training images with val_size 200


def test_the_paper_scale_follows_the_paper():
    sgd = STUDIES["walk_sgd"].sweeps["paper"]["config"]
    assert sgd["model"]["name"] == "vgg11" and sgd["optimizer"]["lr"] == 0.1 and sgd["train"]["batch_size"] == 100
    assert sgd["measure"]["eval_examples"] == 0  # the interpolation on the whole training set (§2)
    assert sgd["probes"]["alignment"]["batch_sizes"] == [100, 1000, 10000, 45000]
    assert sgd["probes"]["alignment"]["at"] == [2249, 4499]  # the end of epochs 5 and 10 (Fig. 5)
    at = sgd["probes"]["interpolation"]["at"]
    assert len(at) == 5 * 450 and at[:2] == [0, 1] and 10800 in at and at[-1] == 44999  # epochs 1, 2, 10, 25, 100
    bs = STUDIES["walk_bs"].sweeps["paper"]
    assert bs["config"]["model"]["name"] == "resnet56" and bs["grid"] == {"train.batch_size": [500, 5000]}


# --- end to end ------------------------------------------------------------------------------------------------------

def test_walk_at_tiny_scale_end_to_end(tmp_path):
    rows = reproduce("walk", scale="tiny", out=tmp_path, workers=2, quiet=True)
    assert {r["claim"] for r in rows} == {k for k in CLAIMS if k.startswith("walk.")}
    for r in rows:
        assert r["verdict"] in VERDICTS and (r["ours"] or r["reason"]), r
        assert r["seeds"] == [0, 1] and r["scale"] == "tiny"
        assert "could not be evaluated" not in r["reason"], r  # every metric the rules read was recorded
    assert load_verdicts(tmp_path / "tiny" / "verdicts.json") == rows
    for name in WALK_STUDIES:
        report = (tmp_path / "tiny" / name / "report.html").read_text()
        assert "Verdicts" in report
    assert 'id="fig-walk.fig1"' in (tmp_path / "tiny" / "walk_sgd" / "report.html").read_text()
    assert 'id="fig-walk.fig7"' in (tmp_path / "tiny" / "walk_bs" / "report.html").read_text()
