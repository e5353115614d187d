import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

import sgdscope
from sgdscope.cli import main
from sgdscope.store import _toml, read_status
from _tiny_run import tiny_config


def _write(tmp_path, **sections):
    cfg = tiny_config(tmp_path / "runs", **sections)
    path = tmp_path / "tiny.toml"
    _toml.write_toml(path, cfg)
    return path


def _entry_point() -> str:
    """The installed ``sgdscope`` command: beside this interpreter (a venv's bin/, which need not be on
    PATH), in the scripts folder of its install scheme, or on PATH."""
    for folder in (Path(sys.executable).parent, Path(sysconfig.get_path("scripts"))):
        exe = folder / ("sgdscope.exe" if sys.platform == "win32" else "sgdscope")
        if exe.is_file():
            return str(exe)
    found = shutil.which("sgdscope")
    assert found, f"the sgdscope entry point is not installed (looked beside {sys.executable} and on PATH): pip install -e ."
    return found


def test_run_and_ls_end_to_end_through_the_installed_command(tmp_path):
    exe = _entry_point()
    cfg = _write(tmp_path, train={"epochs": 1, "batch_size": 16})
    proc = subprocess.run([exe, "run", str(cfg), "--set", "optimizer.lr=0.05", "--set", "name=cli", "--quiet"],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    run = tmp_path / "runs" / "cli"
    assert f"{run}: done" in proc.stdout
    assert sgdscope.read_config(run)["optimizer"]["lr"] == 0.05
    ls = subprocess.run([exe, "ls", str(tmp_path / "runs")], capture_output=True, text=True, timeout=120)
    assert ls.returncode == 0 and "cli" in ls.stdout and "done" in ls.stdout


def test_resume_flag_and_existing_run(tmp_path, capsys):
    cfg = _write(tmp_path, train={"epochs": 1, "batch_size": 48}, probes={})
    assert main(["run", str(cfg), "--quiet"]) == 0
    assert main(["run", str(cfg), "--quiet"]) == 2
    assert "already holds a run" in capsys.readouterr().err
    assert main(["run", str(cfg), "--quiet", "--resume"]) == 0  # nothing left to do: still done


def test_config_errors_exit_2_with_the_key_named(tmp_path, capsys):
    cfg = _write(tmp_path)
    assert main(["run", str(cfg), "--set", "train.epoch=3"]) == 2
    assert "unknown config key 'train.epoch'" in capsys.readouterr().err
    assert main(["run", str(cfg), "--set", "probes.top_eigenvalues.k=0"]) == 2
    assert "probes.top_eigenvalues: top_eigenvalues: k must be in [1, 100], got 0" in capsys.readouterr().err
    assert main(["run", str(tmp_path / "nope.toml")]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_ls_on_an_empty_folder(tmp_path, capsys):
    assert main(["ls", str(tmp_path)]) == 0
    assert "no runs" in capsys.readouterr().out


def test_demo_prints_where_the_runs_are_and_the_table(tmp_path, capsys):
    assert main(["demo", "--out", str(tmp_path), "--epochs", "1", "--quiet"]) == 0
    out = capsys.readouterr().out
    for text in ("max lambda_H^1", "max lambda_K^1", "max lambda_K*/lambda_K^1", "barriers crossed", "final test acc", str(tmp_path)):
        assert text in out
    assert read_status(tmp_path / "digits-mlp-lr0.5")["state"] == "done"
