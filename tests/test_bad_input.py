"""Bad input through the command line: each a one-line error naming the value and what is allowed,
exit code 2, and nothing written or changed (issue 25's trial, item by item)."""
import numpy as np
import pytest

from sgdscope.cli import main
from sgdscope.store import RunWriter, _toml
from _tiny_run import tiny_config


def _one_line(capsys):
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("sgdscope: error: "), err
    return err[0]


def _config(tmp_path, **changes):
    path = tmp_path / "tiny.toml"
    _toml.write_toml(path, tiny_config(tmp_path / "out", **{"train": {"epochs": 1, "batch_size": 16}, **changes}))
    return path


def test_a_batch_larger_than_the_training_set_is_refused_naming_both(tmp_path, capsys):
    assert main(["run", str(_config(tmp_path, train={"epochs": 1, "batch_size": 500})), "--quiet"]) == 2
    line = _one_line(capsys)
    assert "'train.batch_size' (500) is larger than the training set (96 examples): use at most 96" in line
    assert not (tmp_path / "out" / "tiny").exists()


def test_builder_keywords_of_every_sweep_point_are_checked_before_it_starts(tmp_path, capsys):
    cfg = _config(tmp_path)
    assert main(["sweep", str(cfg), "--grid", "model.activation=tanh,<bad>", "--out", str(tmp_path / "sw"), "--quiet"]) == 2
    line = _one_line(capsys)
    assert "unknown activation '<bad>'; expected one of:" in line and "relu" in line
    assert not (tmp_path / "sw").exists()  # nothing ran, nothing was written
    assert main(["sweep", str(cfg), "--grid", "model.depth=2,3", "--out", str(tmp_path / "sw"), "--quiet"]) == 2
    assert "depth" in _one_line(capsys)


@pytest.fixture
def sweep(tmp_path):
    out = tmp_path / "sw"
    assert main(["sweep", str(_config(tmp_path)), "--grid", "optimizer.lr=0.1,0.05", "--out", str(out), "--quiet"]) == 0
    return out


def test_compare_with_an_unknown_statistic(sweep, capsys):
    capsys.readouterr()
    assert main(["compare", str(sweep), "--metric", "top_eigenvalues/lambda_1", "--stat", "median"]) == 2
    line = _one_line(capsys)
    assert "unknown statistic 'median'" in line and "allowed: max, min, mean, last, argmax" in line


def test_ls_of_a_metric_no_run_records(sweep, capsys):
    capsys.readouterr()
    assert main(["ls", str(sweep), "--metrics", "foo/bar"]) == 2
    line = _one_line(capsys)
    assert "records 'foo/bar'; recorded (probe/name): " in line and "top_eigenvalues/lambda_1" in line
    assert main(["ls", str(sweep), "--metrics", "top_eigenvalues/lambda_1"]) == 0


def test_damaged_sweep_files_are_named_in_one_line(sweep, capsys):
    capsys.readouterr()
    (sweep / "points.json").write_text("{not json")
    assert main(["ls", str(sweep)]) == 2
    assert f"{sweep / 'points.json'}: the sweep's list of points is damaged (not valid JSON" in _one_line(capsys)
    (sweep / "sweep.toml").write_text("[base\nx = ")
    assert main(["sweep", str(sweep.parent / "tiny.toml"), "--grid", "optimizer.lr=0.1,0.05", "--out", str(sweep),
                 "--quiet"]) == 2
    assert f"{sweep / 'sweep.toml'}: not valid TOML" in _one_line(capsys)


def test_plot_of_a_run_whose_arrays_need_pickle(tmp_path, capsys):
    run = tmp_path / "r"
    with RunWriter(run, config={"optimizer": {"lr": 0.1}}) as w:
        w.declare({"top_eigenvalues": "top_eigenvalues", "gradient_noise": "gradient_noise"})
        for step in range(3):
            w.log(step, step / 3, "top_eigenvalues", {"lambda_1": 1.0 + step, "eigenvalues": np.ones(3)})
            w.log(step, step / 3, "gradient_noise", {"lambda_1": 1.0, "spectrum": np.ones(4)})
        w.set_status("done")
    bad = run / "arrays" / "gradient_noise" / "spectrum" / "step_00000001.npy"
    np.save(bad, np.array([{"a": 1}], dtype=object), allow_pickle=True)  # an object array: loading it runs code
    assert main(["plot", str(run), "break_even.fig3", "-o", str(tmp_path / "f.png")]) == 2
    line = _one_line(capsys)
    assert f"{bad}: the array cannot be read without running code or is damaged" in line
