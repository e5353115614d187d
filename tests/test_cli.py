import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from sgdscope.reproduce import load_verdicts

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
    err = capsys.readouterr().err
    assert "already holds a run" in err and "--resume" in err and "--overwrite" in err and "resume=True" not in err
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


def test_demo_prints_the_verdicts_as_they_came_out(tmp_path, capsys):
    from sgdscope.reproduce import CLAIMS, VERDICTS
    from sgdscope.reproduce.demo import DEMO_CLAIMS

    assert main(["demo", "--out", str(tmp_path), "--quiet"]) == 0
    out = capsys.readouterr().out
    judged = [c for c in DEMO_CLAIMS if c in CLAIMS]
    assert len(judged) >= 3
    import json

    rows = {r["claim"]: r for r in load_verdicts(tmp_path / "tiny" / "verdicts.json")}
    for key in judged:
        assert rows[key]["verdict"] in VERDICTS and f"{key}: {rows[key]['verdict'].upper()}" in out  # as it came out
    assert str(tmp_path / "tiny" / "be_lr" / "report.html") in out
    # every demo claim's runs are inside its regime, checked on the stored runs themselves (not read from a verdict)
    from sgdscope.reproduce.regime import assess
    from sgdscope.store import load_sweep_folder

    for key in judged:
        claim = CLAIMS[key]
        regime = assess(claim.preconditions, load_sweep_folder(tmp_path / "tiny" / claim.study), "tiny")
        assert regime and all(r["inside"] for r in regime), (key, [r["runs"] for r in regime if not r["inside"]])
        assert f"{key}: {rows[key]['verdict'].upper()}\n    regime: inside (" in out


@pytest.mark.parametrize("override, expected", [
    ("optimizer.learning_rate=0.1", "config key 'optimizer.learning_rate' is not an argument of 'sgd'; allowed: name, lr,"),
    ("optimizer.momentum=-0.5", "Invalid momentum value: -0.5"),
    ("data.name=\"cifar10\"", "nowhere: does not exist. Expected the cifar10 data"),
])
def test_build_stage_errors_are_one_line_and_leave_no_folder(tmp_path, capsys, override, expected):
    cfg = _write(tmp_path)
    extra = ["--set", f"data.root=\"{tmp_path / 'nowhere'}\"", "--set", "data.options={}"] if override.startswith("data") else []
    assert main(["run", str(cfg), "--set", override, *extra, "--quiet"]) == 2
    err = capsys.readouterr().err
    assert expected in err and err.count("\n") == 1 and "Traceback" not in err
    assert not (tmp_path / "runs" / "tiny").exists()
    assert main(["run", str(cfg), "--quiet"]) == 0  # no stale folder stands in the way


def test_output_piped_to_a_file_is_plain_lines_and_quiet_is_silent(tmp_path):
    exe = _entry_point()
    cfg = _write(tmp_path, train={"epochs": 2, "batch_size": 16})
    log = tmp_path / "log.txt"
    with open(log, "w") as f:
        proc = subprocess.run([exe, "run", str(cfg)], stdout=f, stderr=subprocess.STDOUT, timeout=300)
    assert proc.returncode == 0
    text = log.read_text()
    assert "\r" not in text and "\x1b" not in text
    lines = text.splitlines()
    assert any(l.startswith("[tiny] step 12/12 (100%)") and "loss" in l and "ETA" in l for l in lines)
    assert any("[tiny] done after" in l for l in lines) and len(lines) < 20
    quiet = subprocess.run([exe, "run", str(cfg), "--overwrite", "--quiet"], capture_output=True, text=True, timeout=300)
    assert quiet.returncode == 0 and quiet.stderr == "" and quiet.stdout.count("\n") == 1


def test_sweep_ls_and_compare_end_to_end(tmp_path, capsys):
    cfg = _write(tmp_path, train={"epochs": 1, "batch_size": 16},
                 sweep={"grid": {"optimizer.lr": [0.1, 0.2]}})  # the [sweep] table, with the CLI's seeds
    out = tmp_path / "sw"
    args = ["sweep", str(cfg), "--grid", "optimizer.momentum=0.0,0.9", "--seeds", "0,1", "--out", str(out), "--workers", "2", "--quiet"]
    assert main(args) == 0
    printed = capsys.readouterr().out
    assert "lr=0.2,momentum=0.9,seed=1" in printed and printed.count(" done") == 8
    assert main(["ls", str(out), "--metrics", "gradient_noise/lambda_1"]) == 0
    listing = capsys.readouterr().out.splitlines()
    assert listing[0].split()[:6] == ["run", "optimizer.lr", "optimizer.momentum", "seed", "state", "step"]
    assert "gradient_noise/lambda_1" in listing[0] and len(listing) == 9
    assert main(["compare", str(out), "--metric", "gradient_noise/lambda_1", "--stat", "max", "--by", "optimizer.lr"]) == 0
    table = capsys.readouterr().out.splitlines()
    assert table[1].split() == ["optimizer.lr", "mean", "std", "n", "seed=0", "seed=1"] and len(table) == 4
    per_run = sgdscope.load_sweep(out / "runs")
    wanted = per_run[(per_run.type == "gradient_noise") & (per_run.name == "lambda_1") & (per_run["optimizer.lr"] == 0.1)]
    best = wanted.groupby("run").value.max()  # over 2 momenta x 2 seeds
    row = table[2].split()
    assert float(row[0]) == 0.1 and float(row[1]) == pytest.approx(best.mean(), rel=1e-3) and row[3] == "4"
    changed = [a if a != "optimizer.momentum=0.0,0.9" else "optimizer.momentum=0.5" for a in args]
    assert main(changed) == 2  # a changed grid is an error
    assert "differs from the one stored in sweep.toml" in capsys.readouterr().err


def test_plot_and_report_end_to_end(tmp_path, capsys):
    cfg = _write(tmp_path, train={"epochs": 1, "batch_size": 16})
    assert main(["run", str(cfg), "--quiet"]) == 0
    run = tmp_path / "runs" / "tiny"
    capsys.readouterr()
    assert main(["plot", str(run), "--list"]) == 0
    listing = capsys.readouterr().out
    assert "yes  generic.metric" in listing and "no   generic.spectral_density" in listing and "[probes.spectral_density]" in listing
    out = tmp_path / "loss.svg"
    assert main(["plot", str(run), "generic.metric", "--opt", "metric=\"top_eigenvalues/lambda_1\"", "-o", str(out)]) == 0
    assert out.read_text().startswith("<?xml") and "top_eigenvalues/lambda_1" in out.read_text()
    assert main(["plot", str(run), "generic.spectral_density"]) == 2
    assert "add the spectral_density probe" in capsys.readouterr().err
    assert main(["report", str(run), "-o", str(tmp_path / "r.html")]) == 0
    assert "data:image/png;base64," in (tmp_path / "r.html").read_text()
