"""Preconditions (the regime a claim is about) on runs the test writes: the shared constructors pass,
fail and sit on their boundaries; ``judge`` says ``out of regime`` when a run is outside, and the
fourth verdict travels through the CLI, ``verdicts.json`` and the report."""
import json

import pytest

import sgdscope
from sgdscope.cli import main
from sgdscope.quantities import LAMBDA_K, LR, TRAIN_ACCURACY
from sgdscope.reproduce import CLAIMS, STUDIES, Study, Verdict, load_verdicts, summary
from sgdscope.reproduce.claim import Claim
from sgdscope.reproduce.regime import judge, outside, peak_inside, probed_at_least, reaches
from sgdscope.store import RunWriter


def _write(root, runs, *, steps_per_epoch=10):
    """``runs``: {name: {"lr": value, "metrics": {"type/name": [values at steps 0, 1, ...]}}}."""
    for name, spec in runs.items():
        with RunWriter(root / name, config={"seed": 0, "name": name, "optimizer": {"lr": spec["lr"]}}) as w:
            metrics = spec["metrics"]
            types = sorted({m.split("/")[0] for m in metrics})
            w.declare({t: t for t in types})
            for i in range(max(len(v) for v in metrics.values())):
                for t in types:
                    values = {m.split("/")[1]: v[i] for m, v in metrics.items() if m.startswith(t + "/") and i < len(v)}
                    if values:
                        w.log(i, (i + 1) / steps_per_epoch, t, values)
            w.set_status("done")


def _frame(root, curves, metric=LAMBDA_K):
    _write(root, {f"lr={i}": {"lr": 0.1 * (i + 1), "metrics": {metric: c}} for i, c in enumerate(curves)})
    return sgdscope.load_sweep(root)


def _inside(p, frame):
    return {run: r.inside for run, r in p.check(frame, "tiny").items()}


def test_reaches_passes_fails_and_counts_its_boundary_as_reached(tmp_path):
    p = reaches(TRAIN_ACCURACY, 0.6, key="acc", paper="§4.1", remedy="train longer", what="training accuracy")
    frame = _frame(tmp_path, [[0.1, 0.4, 0.7], [0.1, 0.6, 0.5], [0.1, 0.3, 0.59]], TRAIN_ACCURACY)
    assert _inside(p, frame) == {"lr=0": True, "lr=1": True, "lr=2": False}  # 0.6 itself is reached
    r = p.check(frame, "tiny")["lr=0"]
    assert r.measured == "max training accuracy = 0.7 at step 2, first at step 2" and r.numbers["first_step"] == 2
    assert p.test == "training accuracy >= 0.6 at some probed step"


def test_a_missing_measurement_is_outside(tmp_path):
    p = reaches(TRAIN_ACCURACY, 0.6, key="acc", paper="§4.1", remedy="train longer")
    frame = _frame(tmp_path, [[1.0, 2.0]])  # lambda_K^1 only: no accuracy recorded
    r = p.check(frame, "tiny")["lr=0"]
    assert not r.inside and r.measured == f"{TRAIN_ACCURACY} not recorded"


def test_peak_inside_needs_a_lower_value_after_the_maximum(tmp_path):
    p = peak_inside(LAMBDA_K, what="lambda_K^1", paper="§3", after_step={"tiny": 1})
    frame = _frame(tmp_path, [[9.0, 1.0, 3.0, 2.0], [9.0, 1.0, 2.0, 3.0], [9.0, 1.0, 3.0, 3.0], [9.0, 1.0]])
    # the first step (9.0) is left out; a tie at the end keeps the first maximum, inside; one probed step: cannot see
    assert _inside(p, frame) == {"lr=0": True, "lr=1": False, "lr=2": True, "lr=3": False}
    assert p.check(frame, "tiny")["lr=1"].measured == "max lambda_K^1 at step 3 of 3"
    assert p.check(frame, "tiny")["lr=3"].measured == f"1 probed steps of {LAMBDA_K}"


def test_probed_at_least_counts_up_to_a_step(tmp_path):
    p = probed_at_least(LAMBDA_K, 3, key="early", paper="x", remedy="probe more often", before=lambda traj: 2)
    frame = _frame(tmp_path, [[1.0, 2.0, 3.0, 4.0], [1.0, 2.0]])
    assert _inside(p, frame) == {"lr=0": True, "lr=1": False}  # steps 0, 1, 2 are three (the boundary); two are not
    assert p.check(frame, "tiny")["lr=1"].measured == "2 probed steps up to step 2"


def _claim(preconditions, verdict="holds"):
    return Claim("t.c", "T", "s", "w", "st", "rule", "none", lambda frame, scale: Verdict(verdict, "ours", "why", {"n": 1}),
                 None, tuple(preconditions))


def test_judge_says_out_of_regime_only_when_a_run_is_outside(tmp_path):
    frame = _frame(tmp_path, [[0.1, 0.7], [0.1, 0.5]], TRAIN_ACCURACY)
    ok = reaches(TRAIN_ACCURACY, 0.5, key="half", paper="p", remedy="train longer")
    strict = reaches(TRAIN_ACCURACY, 0.6, key="sixty", paper="§4.1", remedy="train longer")
    v, regime = judge(_claim([ok]), frame, "tiny")
    assert v.verdict == "holds" and regime[0]["inside"] and set(regime[0]["runs"]) == {"lr=0", "lr=1"}
    v, regime = judge(_claim([ok, strict]), frame, "tiny")
    assert v.verdict == "out of regime" and v.ours == "ours" and v.numbers == {"n": 1}  # our numbers kept
    assert v.reason == ("sixty not met (evaluation/train_accuracy >= 0.6 at some probed step): lr=1: max "
                        "evaluation/train_accuracy = 0.5 at step 1; to reach it: train longer")
    assert [r["inside"] for r in regime] == [True, False] and regime[1]["runs"]["lr=0"]["inside"]
    for rule_verdict in ("does not hold", "inconclusive"):  # neither is said of a run outside the regime
        assert judge(_claim([strict], rule_verdict), frame, "tiny")[0].verdict == "out of regime"
    assert judge(_claim([]), frame, "tiny")[0].verdict == "holds" and outside([]) == ""


def test_summary_counts_every_verdict():
    rows = [{"verdict": v} for v in ("holds", "holds", "out of regime", "inconclusive")]
    assert summary(rows) == {"holds": 2, "does not hold": 0, "out of regime": 1, "inconclusive": 1, "claims": 4}


@pytest.fixture
def regime_claims():
    """A recorded study of two runs, one short of 60% training accuracy, and two claims on it: one whose
    precondition every run meets, one whose precondition the short run fails."""

    def record(out, scale):
        runs = out / "runs"
        runs.mkdir(exist_ok=True)
        _write(runs, {"lr=0.1": {"lr": 0.1, "metrics": {TRAIN_ACCURACY: [0.2, 0.7], LAMBDA_K: [1.0, 3.0, 2.0]}},
                      "lr=0.2": {"lr": 0.2, "metrics": {TRAIN_ACCURACY: [0.2, 0.5], LAMBDA_K: [1.0, 2.0, 1.5]}}})

    from sgdscope.reproduce import rules

    STUDIES["t_regime"] = Study("t_regime", "Test", record=record)
    rule = rules.ordering(LAMBDA_K, LR, falls=True, what="max lambda_K^1")
    common = dict(paper="Test", statement="s", where="§0", study="t_regime", rule=rule, paper_numbers="none")
    CLAIMS["t.inside"] = Claim("t.inside", check=rule.check, preconditions=(
        peak_inside(LAMBDA_K, what="lambda_K^1", paper="§3"),), **{**common, "rule": rule.text})
    CLAIMS["t.outside"] = Claim("t.outside", check=rule.check, preconditions=(
        reaches(TRAIN_ACCURACY, 0.6, key="accuracy_reached", paper="§4.1", remedy="train longer"),),
        **{**common, "rule": rule.text})
    yield
    del STUDIES["t_regime"], CLAIMS["t.inside"], CLAIMS["t.outside"]


def test_out_of_regime_through_the_cli_the_verdicts_and_the_report(tmp_path, capsys, regime_claims):
    assert main(["reproduce", "t", "--scale", "tiny", "--out", str(tmp_path), "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "t.outside: OUT OF REGIME" in out and "t.inside: HOLDS" in out
    assert "regime: OUTSIDE: accuracy_reached (1 of 2 runs)" in out
    assert "NOT runs/lr=0.2: max evaluation/train_accuracy = 0.5 at step 1" in out
    assert "2 claims: 1 hold, 0 do not hold, 1 out of regime, 0 inconclusive" in out
    data = json.loads((tmp_path / "tiny" / "verdicts.json").read_text())
    assert data["summary"] == {"holds": 1, "does not hold": 0, "out of regime": 1, "inconclusive": 0, "claims": 2}
    rows = {r["claim"]: r for r in load_verdicts(tmp_path / "tiny" / "verdicts.json")}
    assert rows["t.outside"]["regime"][0]["runs"]["runs/lr=0.2"]["inside"] is False
    assert "to reach it: train longer" in rows["t.outside"]["reason"]
    report = (tmp_path / "tiny" / "t_regime" / "report.html").read_text()
    assert "2 claims: 1 holds, 0 does not hold, 1 out of regime, 0 inconclusive" in report
    assert 'class="l verdict-regime">out of regime' in report and "accuracy_reached: <b>not met</b>" in report
    assert main(["reproduce", "t.outside", "--list"]) == 0
    assert "regime: accuracy_reached: evaluation/train_accuracy >= 0.6 at some probed step (§4.1)" in capsys.readouterr().out


def test_verdicts_written_as_a_plain_list_still_load(tmp_path):
    (tmp_path / "verdicts.json").write_text(json.dumps([{"claim": "a", "verdict": "holds"}]))
    assert load_verdicts(tmp_path / "verdicts.json") == [{"claim": "a", "verdict": "holds"}]


def test_every_claim_states_its_regime():
    """Every claim of the four papers declares its preconditions, each with the paper's words (its section or
    figure), the test in words and a remedy; the regime's keys are unique within a claim."""
    for c in CLAIMS.values():
        assert c.preconditions, c.key
        assert len({p.key for p in c.preconditions}) == len(c.preconditions), c.key
        for p in c.preconditions:
            assert p.paper and p.test and p.remedy and callable(p.check), (c.key, p.key)
            assert any(mark in p.paper for mark in ("§", "Fig.", "App.", "Table", "poster")), (c.key, p.paper)
