"""Faults of the run store with real processes and real files: one writer per run folder (an OS lock
a killed holder frees), a dead writer shown as interrupted, damaged files named in one line and set
aside on resume, a failed resume that changes nothing, and a full disk that loses nothing."""
import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time

import pytest
import torch
from pathlib import Path

import sgdscope
from sgdscope.cli import main
from sgdscope.run import resolve, train
from sgdscope.store import CorruptFile, FolderLocked, RunWriter, list_runs, load_run, read_status
from sgdscope.store.layout import metric_parts
from _tiny_run import tiny_config

HOLD = textwrap.dedent("""
    import sys, time
    from sgdscope.store import RunWriter
    w = RunWriter(sys.argv[1], config={"a": 1}, flush_every_s=None)
    w.log(0, 0.1, "train", {"loss": 1.0}); w.flush()
    print("holding", flush=True)
    time.sleep(600)
""")


def _holder(run):
    proc = subprocess.Popen([sys.executable, "-c", HOLD, str(run)], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "holding"
    return proc


def test_a_run_folder_has_one_writer_and_a_killed_holder_frees_it(tmp_path):
    run = tmp_path / "run"
    proc = _holder(run)
    try:
        with pytest.raises(FolderLocked, match=rf"{run}: another process writes this run \(host \S+, pid {proc.pid}\)"):
            RunWriter(run, resume=True)
        with pytest.raises(FolderLocked):
            RunWriter(run, overwrite=True)  # not even --overwrite takes a folder in use
        assert list_runs(tmp_path)["state"].tolist() == ["running"]  # its writer is alive
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    # the OS freed the lock; the pid in the status is dead on this host: ls says interrupted
    row = list_runs(tmp_path).iloc[0]
    assert row["state"] == "interrupted" and f"its writer (pid {proc.pid}) is gone" in row["message"]
    with RunWriter(run, resume=True, flush_every_s=None) as w:
        w.log(1, 0.2, "train", {"loss": 0.5})
    assert load_run(run)["value"].tolist() == [1.0, 0.5]


def test_two_resumes_of_one_run_through_the_command_line(tmp_path, capsys):
    cfg = tiny_config(tmp_path / "out", train={"epochs": 1, "batch_size": 32}, probes={})
    train(resolve(cfg), progress=False)
    run = tmp_path / "out" / "tiny"
    proc = _holder(tmp_path / "other")  # a live holder of another folder does not matter
    proc.kill(), proc.wait()
    mine = subprocess.Popen([sys.executable, "-c", textwrap.dedent(f"""
        import time
        from sgdscope.store._lock import FolderLock
        FolderLock({str(run)!r}, "run").acquire(); print("held", flush=True); time.sleep(600)
    """)], stdout=subprocess.PIPE, text=True)
    try:
        assert mine.stdout.readline().strip() == "held"
        path = tmp_path / "c.toml"
        sgdscope.store._toml.write_toml(path, cfg)
        assert main(["run", str(path), "--resume", "--quiet"]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and f"another process writes this run (host" in err[0] and f"pid {mine.pid}" in err[0]
    finally:
        mine.kill(), mine.wait()
    assert read_status(run)["state"] == "done"


def _run(tmp_path, **train_args):
    cfg = resolve(tiny_config(tmp_path / "out", train={"epochs": 2, "batch_size": 16, "checkpoint_every": 5,
                                                      **train_args}))
    train(cfg, progress=False)
    return cfg, tmp_path / "out" / "tiny"


def test_a_damaged_metrics_part_is_named_in_one_line_and_ls_lists_the_other_runs(tmp_path, capsys):
    cfg, run = _run(tmp_path)
    shutil.copytree(run, tmp_path / "out" / "copy")
    part = metric_parts(run)[-1][1]
    part.write_bytes(part.read_bytes()[: part.stat().st_size // 2])  # truncated
    with pytest.raises(CorruptFile, match=rf"{part}: the metrics part is damaged"):
        load_run(run)
    assert main(["ls", str(tmp_path / "out")]) == 0
    out = capsys.readouterr().out
    assert "unreadable" in out and "done" in out  # the bad run and the good one, side by side
    (run / "status.json").write_text('{"state": "do')
    with pytest.raises(CorruptFile, match=rf"{run / 'status.json'}: the run status is damaged \(not valid JSON"):
        read_status(run)


def _died_at_step_11(run):
    """The run as a kill at the end of its second epoch leaves it (what came later dropped)."""
    RunWriter(run, resume=True).truncate_after(11)
    sgdscope.store.mark_status(run, "interrupted", "killed")


def _same_metrics(a, b):
    cols = ["step", "probe", "name", "value"]
    a, b = (d.loc[d["name"] != "seconds", cols].reset_index(drop=True) for d in (a, b))
    return a.equals(b)


def test_resume_falls_back_past_a_damaged_last_checkpoint(tmp_path):
    cfg, run = _run(tmp_path, epochs=3, keep_checkpoints=0)
    straight = load_run(run)
    _died_at_step_11(run)
    (run / "checkpoints" / "step_00000011" / "model.safetensors").write_bytes(b"not safetensors")
    with pytest.warns(UserWarning, match=r"resumed past damaged files: step_00000011: damaged"):
        train(cfg, resume=True, progress=False)
    assert read_status(run)["state"] == "done" and _same_metrics(load_run(run), straight)


def test_resume_sets_a_damaged_metrics_part_aside_and_recomputes_what_it_held(tmp_path):
    cfg, run = _run(tmp_path, epochs=3, keep_checkpoints=0)
    straight = load_run(run)
    _died_at_step_11(run)
    part = metric_parts(run)[-1][1]
    part.write_bytes(part.read_bytes()[:100])
    with pytest.warns(UserWarning, match=rf"metrics part {part.name} \({part}: the metrics part is damaged"):
        train(cfg, resume=True, progress=False)  # no checkpoint is older than the lost rows: from the start
    assert read_status(run)["state"] == "done" and _same_metrics(load_run(run), straight)
    assert (part.parent / f".damaged-{part.name}").is_file()  # kept, not deleted


def test_a_failed_resume_leaves_the_status_as_it_was(tmp_path, capsys):
    cfg, run = _run(tmp_path)
    before = read_status(run)
    last = sorted((run / "checkpoints").iterdir())[-1]
    torch.save({"obj": Path(".")}, last / "state.pt")  # needs code to load: refused, not skipped
    path = tmp_path / "c.toml"
    sgdscope.store._toml.write_toml(path, cfg)
    assert main(["run", str(path), "--resume", "--quiet"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "resuming the run failed" in err[0]
    assert read_status(run) == before  # a done run stays done, with its message


DISK_FULL = textwrap.dedent("""
    import sys
    from sgdscope.store import RunWriter
    from sgdscope.store.writer import NoSpaceLeft
    w = RunWriter(sys.argv[1], config={"a": 1}, flush_every_s=None)
    try:
        for i in range(200000):
            w.log(i, i / 10, "train", {"loss": float(i), "x": float(i) * 2})
            if i % 500 == 0:
                w.flush()
    except NoSpaceLeft as err:
        print("ERROR", err, flush=True)
        print("STEP", i, flush=True)
""")


def _full_disk_available():
    try:
        return subprocess.run(["unshare", "-rm", "true"], capture_output=True, timeout=20).returncode == 0
    except (OSError, subprocess.SubprocessError):
        return False


def test_a_full_disk_says_so_and_keeps_everything_written_before(tmp_path):
    """A real full file system (a 256 KiB tmpfs in a private mount namespace) where the machine allows one;
    otherwise the process's file size limit (RLIMIT_FSIZE), which fails the same writes the same way."""
    run = tmp_path / "mnt" / "run"
    (tmp_path / "mnt").mkdir()
    if _full_disk_available():
        cmd = ["unshare", "-rm", "sh", "-c", f'mount -t tmpfs -o size=256k tmpfs "{tmp_path / "mnt"}" && '
               f'"{sys.executable}" -c "$0" "{run}" && cp -r "{run}" "{tmp_path / "kept"}"', DISK_FULL]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
        kept = tmp_path / "kept"
    else:
        limit = "import resource, signal; signal.signal(signal.SIGXFSZ, signal.SIG_IGN); " \
                "resource.setrlimit(resource.RLIMIT_FSIZE, (100000, 100000))\n"
        proc = subprocess.run([sys.executable, "-c", limit + DISK_FULL, str(run)], capture_output=True, text=True,
                              timeout=300)
        kept = run
    lines = dict(line.split(" ", 1) for line in proc.stdout.splitlines() if " " in line)
    assert "no space left on device writing" in lines.get("ERROR", ""), proc.stdout + proc.stderr
    assert "everything written before is kept" in lines["ERROR"]
    df = load_run(kept)  # every flush before the failure is intact and readable
    last_flushed = (int(lines["STEP"]) - 1) // 500 * 500
    assert df["step"].max() == last_flushed and df["step"].tolist() == sorted(df["step"].tolist())
    assert len(df) == 2 * (last_flushed + 1)
    with RunWriter(kept, resume=True, flush_every_s=None) as w:  # space free again: it goes on
        w.log(last_flushed + 1, 0.0, "train", {"loss": 1.0})
    assert load_run(kept)["step"].max() == last_flushed + 1
