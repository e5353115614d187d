"""Data parallel on torch.distributed: two gloo processes (spawned), float64, against one process on the union.

Two spawns serve every test (``tests/_distributed_kit.py``): one measures a Problem on unequal
shards (products, eigenpairs, traces, SLQ, the dense Hessian, K, alignment, the H-C cosine, the
curvature spread, interpolation); one trains under DDP with a Scope (an uninterrupted run, a run
resumed from a checkpoint, probe failures). Every value is compared with the same function run in
this process on the union of the shards, to 1e-10 relative, and the two ranks with each other, bit
for bit. The example is run under ``torchrun``.
"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

import sgdscope
import _distributed_kit as kit

REL = 1e-10
ROOT = Path(__file__).resolve().parents[1]


def close(got, want, what: str, rel: float = REL) -> None:
    """max |got - want| <= rel * max |want|."""
    got, want = torch.as_tensor(got, dtype=torch.float64), torch.as_tensor(want, dtype=torch.float64)
    assert got.shape == want.shape, f"{what}: shape {tuple(got.shape)} != {tuple(want.shape)}"
    scale = float(want.abs().max()) if want.numel() else 0.0
    err = float((got - want).abs().max()) if want.numel() else 0.0
    assert err <= rel * max(scale, 1e-300), f"{what}: max |difference| {err:.3g} > {rel:g} x {scale:.3g}"


def signed(V, ref):
    """The columns of V with the signs of ref's (eigenvectors are defined up to sign)."""
    return V * torch.sign((V * ref).sum(0, keepdim=True))


# ----------------------------------------------------------------------------- measurements
@pytest.fixture(scope="module")
def measured(tmp_path_factory):
    ranks = kit.spawn("measure", tmp_path_factory.mktemp("measure"))
    return ranks, kit.measure(None)


def test_every_rank_gets_identical_bits(measured):
    (r0, r1), _ = measured
    assert set(r0) == set(r1)
    differ = [k for k in r0 if k != "rows_held" and not torch.equal(torch.as_tensor(r0[k]), torch.as_tensor(r1[k]))]
    assert not differ, f"ranks disagree on {differ}"
    assert (float(r0["rows_held"]), float(r1["rows_held"])) == (3.0, 4.0)  # K's 7 rows, shared out, not gathered


def test_hessian_product_and_loss_are_of_the_union(measured):
    (r0, _), one = measured
    for key in ("hv", "hv1", "op_loss", "loss", "loss_only", "grad", "dense", "bn_hv", "N"):
        close(r0[key], one[key], key)
    # the union matters: rank 0's shard alone has another Hessian (so the comparison above can fail)
    model, X, Y, *_ = kit.case()
    alone = sgdscope.hessian_op(sgdscope.Problem(model, nn.CrossEntropyLoss(), kit.curvature_shard(X, Y, 0)))
    V = torch.randn(alone.shape[0], 3, generator=kit.gen(1), dtype=torch.float64)
    assert float((alone @ V - one["hv"]).abs().max()) > 1e-3 * float(one["hv"].abs().max())
    assert float(one["N"]) == 20


def test_eigenpairs_traces_and_density(measured):
    (r0, _), one = measured
    for key in ("top_values", "warm_values", "bottom_values", "streamed_top", "hutchinson", "hutchpp", "frobenius", "slq",
                "interpolation"):
        close(r0[key], one[key], key)
    close(signed(r0["top_vectors"], one["top_vectors"]), one["top_vectors"], "top_vectors")
    assert float(r0["top_matvecs"]) == float(one["top_matvecs"])
    dense = torch.linalg.eigvalsh(one["dense"]).flip(0)[:3]  # and they are the Hessian's
    close(r0["top_values"], dense, "top_values against the dense Hessian", rel=1e-8)


def test_K_spectrum_vectors_and_projection_ratio(measured):
    (r0, _), one = measured
    close(r0["K_rows"], one["K_rows"], "the L mini-batch gradients (the single-process draws)")
    for key in ("K_spectrum", "K_trace", "K_lambda_star", "g_ratio", "g_ratio_from_rows", "bn_rows"):
        close(r0[key], one[key], key)
    close(signed(r0["K_vectors"], one["K_vectors"]), one["K_vectors"], "K_vectors")
    close(one["g_ratio_from_rows"], one["g_ratio"], "the ratio from the rows against the one from the eigenvectors")


def test_alignment_hc_cosine_and_curvature_spread(measured):
    (r0, _), one = measured
    for key in ("align_mean", "align_std", "overlap_mean", "align_samples", "hc", "hc_exact", "spread", "spread_samples"):
        close(r0[key], one[key], key)
    assert float(r0["spread"][2]) == 15  # the first 15 pool examples: 11 on rank 0, 4 on rank 1


# ----------------------------------------------------------------------------- Scope in a DDP loop
@pytest.fixture(scope="module")
def scoped(tmp_path_factory):
    out = tmp_path_factory.mktemp("scope")
    ranks = kit.spawn("scope", out)
    one = tmp_path_factory.mktemp("one") / "run"
    kit.train(None, one, range(kit.STEPS)).close()
    return ranks, out, one


def _metrics(run):
    df = sgdscope.load_run(run)
    df = df[df.name != "seconds"]
    return df.sort_values(["step", "probe", "name"], kind="stable").reset_index(drop=True)


def _same_runs(got, want, rel=REL, nan_rows=((0, "cosine"),)):
    """The two runs hold the same rows and arrays, equal to ``rel``; NaN exactly at ``nan_rows`` (step, name)."""
    a, b = _metrics(got), _metrics(want)
    assert list(zip(a.step, a.probe, a.name)) == list(zip(b.step, b.probe, b.name))
    nan = a.value.isna()
    assert (nan == b.value.isna()).all()
    assert nan_rows is None or list(zip(a.step[nan], a.name[nan])) == list(nan_rows)  # e.g. no previous gradient at step 0
    for (step, probe, name), x, y in zip(zip(a.step[~nan], a.probe[~nan], a.name[~nan]), a.value[~nan], b.value[~nan]):
        close(x, y, f"step {step} {probe}/{name}", rel=rel)
    for probe, name in sgdscope.store.reader.list_arrays(want):
        mine, ref = sgdscope.load_arrays(got, probe, name), sgdscope.load_arrays(want, probe, name)
        assert sorted(mine) == sorted(ref)
        for step in ref:
            close(torch.from_numpy(np.asarray(mine[step], dtype=np.float64)), torch.from_numpy(np.asarray(ref[step], dtype=np.float64)),
                  f"array {probe}/{name} at step {step}", rel=rel)
    return a


def test_two_process_scope_equals_one_process_on_the_concatenated_batches(scoped):
    _, out, one = scoped
    df = _same_runs(out / "run-a", one)
    assert {"gradient_noise", "stability", "alignment", "hessian_noise", "sharpest_directions"} <= set(df.type)
    assert sgdscope.read_status(out / "run-a")["state"] == "done"


def test_only_rank_0_writes(scoped):
    (r0, r1), out, _ = scoped
    assert r0["run_dir"] == str(out / "run-a") and r1["run_dir"] is None
    assert not (out / "run-a-rank1-must-not-exist").exists()
    assert sorted(p.name for p in out.iterdir() if p.is_dir()) == ["run-a", "run-b"]


def test_a_resumed_run_gives_the_same_metrics(scoped):
    _, out, _ = scoped
    _same_runs(out / "run-b", out / "run-a", rel=1e-12)


def test_probe_failures_on_one_or_every_rank_are_recorded_alike(scoped):
    (r0, r1), _, _ = scoped
    for r in (r0, r1):
        assert r["values"]["everywhere"] == {"failed": 1.0}
        assert r["values"]["on_rank_1"] == {"failed": 1.0}  # rank 0 records rank 1's failure too
        assert r["values"]["top_eigenvalues"]["lambda_1"] > 0  # and the collectives after it still pair up
        assert "bad on rank 1 only" in r["failures"]["on_rank_1"]
        assert "bad on rank 1 only" in r["strict"]  # strict: raised on every rank
        assert "model.module" in r["ddp_error"]
        assert "differ across ranks" in r["mismatch_error"]
    assert r0["sink_rows"] > 0 and r1["sink_rows"] == 0  # rank 1's sink is never written to


# ----------------------------------------------------------------------------- errors without a group
def test_distributed_without_a_process_group_is_an_error():
    model, X, Y, *_ = kit.case()
    with pytest.raises(ValueError, match="distributed=True needs an initialised torch.distributed process group"):
        sgdscope.Problem(model, nn.CrossEntropyLoss(), (X, Y), distributed=True)
    with pytest.raises(TypeError, match="distributed must be True or False"):
        sgdscope.Problem(model, nn.CrossEntropyLoss(), (X, Y), distributed="yes")
    with pytest.raises(ValueError, match="no process group"):
        sgdscope.noise.sharded_minibatch_gradients(sgdscope.Problem(model, nn.CrossEntropyLoss(), (X, Y)), batch_size=2,
                                                  generator=kit.gen(0))


def test_nccl_with_parameters_off_the_gpu_is_an_error(monkeypatch):
    import torch.distributed as dist

    from sgdscope._dist import resolve_comm

    monkeypatch.setattr(dist, "is_initialized", lambda: True)
    monkeypatch.setattr(dist, "get_rank", lambda group=None: 0)
    monkeypatch.setattr(dist, "get_world_size", lambda group=None: 2)
    monkeypatch.setattr(dist, "get_backend", lambda group=None: "nccl")
    with pytest.raises(ValueError, match="backend is 'nccl', which moves CUDA tensors only, but the parameters are on cpu"):
        resolve_comm(True, None, torch.device("cpu"))
    monkeypatch.setattr(dist, "get_backend", lambda group=None: "gloo")
    assert resolve_comm(True, None, torch.device("cpu")).size == 2


# ----------------------------------------------------------------------------- the example, under torchrun
def test_ddp_example_runs_and_resumes_under_torchrun(tmp_path):
    torchrun = Path(sys.executable).with_name("torchrun")
    command = [str(torchrun)] if torchrun.exists() else [sys.executable, "-m", "torch.distributed.run"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}

    def run(*extra):
        args = ["--standalone", "--nproc_per_node", "2", str(ROOT / "examples" / "ddp_scope.py"), "--steps", "6", "--every", "3"]
        proc = subprocess.run(command + args + list(extra), cwd=tmp_path, capture_output=True, text=True, timeout=600, env=env)
        assert proc.returncode == 0, proc.stderr[-4000:]
        return proc.stdout

    assert "lambda_H^1 along training" in run("--out", "runs/whole")
    df = sgdscope.load_run(tmp_path / "runs" / "whole")
    assert {"top_eigenvalues", "gradient_noise", "stability", "interpolation"} <= set(df.type)
    assert sorted(p.name for p in (tmp_path / "runs").iterdir()) == ["whole"]  # one run, written by rank 0
    run("--out", "runs/resumed", "--stop-after", "4")  # killed after step 4; the last checkpoint is step 2's
    assert sgdscope.read_status(tmp_path / "runs" / "resumed")["state"] == "running"
    run("--out", "runs/resumed", "--resume")
    _same_runs(tmp_path / "runs" / "resumed", tmp_path / "runs" / "whole", rel=1e-12, nan_rows=None)  # (no batch norm: NaN norms)
