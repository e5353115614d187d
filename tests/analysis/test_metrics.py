"""Addressing a metric: by type or label, per run, and errors that name what to add."""
import pytest

from sgdscope.analysis import Metric, MissingMetric, one_run, resolve_metric, series
from sgdscope.store import RunWriter, load_run


def test_series_of_one_run_by_type_and_by_label(run_a):
    by_type = series(run_a, "top_eigenvalues/lambda_1")
    by_label = series(run_a, "hessian/lambda_1")
    assert list(by_type.columns) == ["step", "epoch", "value"]
    assert by_type["step"].tolist() == [0, 2, 4, 6, 8]
    assert by_type["epoch"].tolist() == pytest.approx([0.2, 0.6, 1.0, 1.4, 1.8])
    assert by_type["value"].tolist() == [2, 5, 4, 3, 3]
    assert by_label.equals(by_type)
    assert resolve_metric(run_a, "hessian/lambda_1") == Metric("probe", "hessian", "lambda_1")
    assert resolve_metric(run_a, "top_eigenvalues/lambda_1") == Metric("type", "top_eigenvalues",
                                                                      "lambda_1")


def test_series_of_a_sweep_per_run(sweep):
    s = series(sweep, "gradient_noise/lambda_1")
    assert list(s.columns) == ["run", "step", "epoch", "value"]
    assert s["run"].unique().tolist() == ["lr0.01_s0", "lr0.01_s1", "lr0.1_s0", "lr0.1_s1"]
    assert s.groupby("run")["step"].apply(list).map(len).tolist() == [10] * 4
    one = series(sweep, "noise/lambda_1", run="lr0.1_s1")
    assert list(one.columns) == ["step", "epoch", "value"]
    assert one["value"].tolist() == [2, 4, 7, 10, 9, 6, 4, 3, 2, 2]
    # a run without the metric: the rows of the others only
    assert set(series(sweep, "interpolation/crossed")["run"]) == {"lr0.1_s0", "lr0.1_s1"}


def test_one_run(sweep, run_a):
    assert one_run(run_a) is run_a
    assert set(one_run(sweep, "lr0.01_s1")["run"]) == {"lr0.01_s1"}
    with pytest.raises(ValueError, match="holds 4 runs; pass run= one of: lr0.01_s0"):
        one_run(sweep)
    with pytest.raises(KeyError, match="run 'nope' is not in the frame; runs: lr0.01_s0"):
        one_run(sweep, "nope")
    with pytest.raises(ValueError, match="the frame is one run's"):
        one_run(run_a, "lr0.1_s0")


def test_missing_type_names_the_probe_to_add(sweep):
    with pytest.raises(KeyError) as info:
        series(sweep, "hessian_norms/spectral_norm")
    msg = str(info.value)
    assert isinstance(info.value, MissingMetric)
    assert "no probe of type 'hessian_norms'" in msg and "[probes.hessian_norms]" in msg
    assert "types present: evaluation, gradient_noise, interpolation, loss_change, " \
           "top_eigenvalues" in msg


def test_missing_names_explain_themselves(sweep):
    with pytest.raises(KeyError, match="probe type 'gradient_noise' has no value 'lambda1'; "
                                       "its values: lambda_1, lambda_star"):
        series(sweep, "gradient_noise/lambda1")
    with pytest.raises(KeyError, match="'lambda_12' is a value of probe type 'top_eigenvalues' "
                                       "that the frame does not hold.*have names: lambda_1"):
        series(sweep, "top_eigenvalues/lambda_12")
    with pytest.raises(KeyError, match="array quantity.*load_arrays"):
        series(sweep, "gradient_noise/spectrum")
    with pytest.raises(KeyError, match="'noise' rows have names: lambda_1"):
        series(sweep, "noise/lambda_2")
    with pytest.raises(KeyError, match="'foo' is neither a probe type.*labels: evaluation, "
                                       "hessian, interpolation, loss_change, noise"):
        series(sweep, "foo/bar")
    with pytest.raises(ValueError, match="must be 'TYPE/NAME'.*got 'delta_loss'; the frame has "
                                         "loss_change/delta_loss"):
        series(sweep, "delta_loss")


def test_ambiguous_type_asks_for_a_label(tmp_path):
    with RunWriter(tmp_path / "r") as w:
        w.declare({"top10": "top_eigenvalues", "top30": "top_eigenvalues"})
        w.log(0, 1.0, "top10", {"lambda_1": 3.0})
        w.log(0, 1.0, "top30", {"lambda_1": 3.5})
    df = load_run(tmp_path / "r")
    with pytest.raises(ValueError, match="several probes of type 'top_eigenvalues' record "
                                         "'lambda_1' \\(top10, top30\\).*'top10/lambda_1'"):
        series(df, "top_eigenvalues/lambda_1")
    assert series(df, "top30/lambda_1")["value"].tolist() == [3.5]


def test_label_with_a_slash(tmp_path):
    with RunWriter(tmp_path / "r") as w:
        w.log(0, 1.0, "a/b", {"x": 1.0})
    assert series(load_run(tmp_path / "r"), "a/b/x")["value"].tolist() == [1.0]
