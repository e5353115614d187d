"""Nothing is written outside the chosen ``out``: a run name is one folder name, a symbolic link in
the way is refused, and every writer (run, sweep, reproduce, report) keeps to its folder. Each
attack is tried through the command line, and the folder outside is checked to be untouched."""
import os
from pathlib import Path

import pytest

from sgdscope.cli import main
from sgdscope.run import ConfigError, resolve, run_dir_for
from sgdscope.store import _toml
from sgdscope.sweep.spec import spec_from_table
from _tiny_run import tiny_config

BAD_NAMES = ["../escaped", "../../../escaped", "a/b", "/tmp/escaped-abs", "..", ".", "", "a\\b", "a\0b"]


@pytest.mark.parametrize("name", BAD_NAMES)
def test_a_run_name_is_one_folder_name(tmp_path, name):
    with pytest.raises(ConfigError, match="config key 'name' must be one folder name inside 'out'") as err:
        resolve(tiny_config(tmp_path / "out", name=name))
    assert repr(name) in str(err.value)


def test_names_a_sweep_point_writes_are_accepted():
    for name in ("lr=0.1,batch_size=32,seed=0", "tiny", "run.v2", "a b", "~user"):
        assert resolve({"name": name})["name"] == name


def _config(tmp_path, **changes):
    path = tmp_path / "tiny.toml"
    _toml.write_toml(path, tiny_config(tmp_path / "out", train={"epochs": 1, "batch_size": 32}, probes={}, **changes))
    return path


@pytest.mark.parametrize("name", ["../outside", "../../outside", "x/../../outside", str("/tmp/sgdscope-abs-outside")])
def test_run_refuses_a_name_that_leaves_out_with_one_line(tmp_path, capsys, name):
    cfg = _config(tmp_path)
    (tmp_path / "outside").mkdir()
    _toml.write_toml(tmp_path / "outside" / "config.toml", {"mine": 1})  # a foreign folder --overwrite must not touch
    before = sorted(p.name for p in tmp_path.iterdir())
    assert main(["run", str(cfg), "--set", f"name={name}", "--overwrite", "--quiet"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "config key 'name' must be one folder name inside 'out'" in err[0] and repr(name) in err[0]
    assert sorted(p.name for p in tmp_path.iterdir()) == before
    assert _toml.read_toml(tmp_path / "outside" / "config.toml") == {"mine": 1}
    assert not os.path.exists("/tmp/sgdscope-abs-outside")


def test_run_refuses_a_run_folder_that_is_a_symbolic_link_out(tmp_path, capsys):
    cfg = _config(tmp_path)
    (tmp_path / "out").mkdir()
    (tmp_path / "elsewhere").mkdir()
    _toml.write_toml(tmp_path / "elsewhere" / "config.toml", {"mine": 1})
    (tmp_path / "out" / "tiny").symlink_to(tmp_path / "elsewhere")
    assert main(["run", str(cfg), "--overwrite", "--quiet"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "is a symbolic link" in err[0] and "a run is written only to a real folder" in err[0]
    assert sorted(p.name for p in (tmp_path / "elsewhere").iterdir()) == ["config.toml"]
    assert _toml.read_toml(tmp_path / "elsewhere" / "config.toml") == {"mine": 1}
    with pytest.raises(ConfigError):
        run_dir_for(resolve(tiny_config(tmp_path / "out")))


def test_a_sweep_folder_named_after_a_bad_run_name_is_refused(tmp_path, capsys):
    cfg = _config(tmp_path, name="../../escaped")
    before = sorted(p.name for p in tmp_path.iterdir())
    assert main(["sweep", str(cfg), "--grid", "optimizer.lr=0.05,0.1", "--quiet"]) == 2  # default --out: OUT/NAME-sweep
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "config key 'name' must be one folder name inside 'out'" in err[0]
    assert sorted(p.name for p in tmp_path.iterdir()) == before


@pytest.mark.parametrize("value", ["../../x", "/abs", "a/b", ".."])
def test_sweep_point_names_are_one_folder_inside_the_sweep(tmp_path, value):
    spec = spec_from_table(tiny_config(tmp_path / "out"), {"data.root": [value]}, [0])
    (point,) = spec.points(tmp_path / "sweep" / "runs")
    assert "/" not in point.name and Path(point.name).name == point.name and point.name not in (".", "..")
    assert (tmp_path / "sweep" / "runs" / point.name).resolve().parent == (tmp_path / "sweep" / "runs").resolve()


def test_a_sweep_folder_that_is_a_symbolic_link_is_refused(tmp_path, capsys):
    cfg = _config(tmp_path)
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "sweep").symlink_to(tmp_path / "elsewhere")
    assert main(["sweep", str(cfg), "--grid", "optimizer.lr=0.05", "--out", str(tmp_path / "sweep"), "--quiet"]) == 2
    assert "is a symbolic link" in capsys.readouterr().err
    assert not any((tmp_path / "elsewhere").iterdir())


def test_reproduce_refuses_a_scale_that_is_not_one_of_its_scales(tmp_path, capsys):
    with pytest.raises(SystemExit):
        main(["reproduce", "walk", "--scale", "../../x", "--out", str(tmp_path / "r")])
    assert "invalid choice" in capsys.readouterr().err and not (tmp_path / "r").exists()


def test_the_report_replaces_a_link_at_its_path_instead_of_writing_through_it(tmp_path, capsys):
    cfg = _config(tmp_path)
    assert main(["run", str(cfg), "--quiet"]) == 0
    run = tmp_path / "out" / "tiny"
    target = tmp_path / "precious.txt"
    target.write_text("keep me")
    (run / "report.html").symlink_to(target)
    assert main(["report", str(run)]) == 0
    assert target.read_text() == "keep me"
    assert not (run / "report.html").is_symlink() and "<html" in (run / "report.html").read_text().lower()
