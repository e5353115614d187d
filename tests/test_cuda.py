"""The CUDA path: the same measurements on a GPU agree with the CPU float64 references.

Skipped without a CUDA device (CI has none). On a GPU machine: ``pytest tests/test_cuda.py``.
Everything runs in float64 on the GPU, so agreement with the CPU references is to rounding.
``SGDSCOPE_TEST_DEVICE`` names another device to run them on (``cpu`` checks the tests themselves).
"""
import copy
import functools
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
from torch import nn

import sgdscope
from _oracles import make_case, reference_hessian
from _tiny_run import tiny_config

CUDA = torch.device(os.environ.get("SGDSCOPE_TEST_DEVICE", "cuda"))
pytestmark = pytest.mark.skipif(CUDA.type == "cuda" and not torch.cuda.is_available(), reason="needs a CUDA device (none here)")


def _on_cuda(kind="cnn", bn=False, n=24):
    model, x, y = make_case(kind, bn=bn, n=n)
    return model, copy.deepcopy(model).to(CUDA), x, y


def _cuda_gen(seed):
    return torch.Generator(device=CUDA).manual_seed(seed)


@functools.lru_cache(maxsize=None)
def _reference(bn_mode):
    cpu, _, x, y = _on_cuda("cnn", bn=True)
    return reference_hessian(cpu, [(x[:10], y[:10]), (x[10:], y[10:])], bn_mode=bn_mode)


@pytest.mark.parametrize("backend", ["graph", "func", "autograd"])
@pytest.mark.parametrize("bn_mode", ["eval", "train"])
def test_hessian_products_match_the_dense_reference(backend, bn_mode):
    cpu, gpu, x, y = _on_cuda("cnn", bn=True)
    batches = [(x[:10], y[:10]), (x[10:], y[10:])]
    H = _reference(bn_mode)
    problem = sgdscope.Problem(gpu, nn.CrossEntropyLoss(), [(a.to(CUDA), b.to(CUDA)) for a, b in batches], bn_mode=bn_mode)
    op = sgdscope.hessian_op(problem, backend=backend)
    assert op.device.type == CUDA.type and op.dtype == torch.float64
    V = torch.randn(op.shape[0], 3, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close((op @ V.to(CUDA)).cpu(), H @ V, rtol=1e-9, atol=1e-11)
    torch.testing.assert_close((op @ V[:, 0].to(CUDA)).cpu(), H @ V[:, 0], rtol=1e-9, atol=1e-11)


def test_lanczos_and_estimators_with_a_cuda_generator():
    cpu, gpu, x, y = _on_cuda("mlp")
    H = reference_hessian(cpu, [(x, y)])
    evals = torch.linalg.eigvalsh(H)
    op = sgdscope.hessian_op(sgdscope.Problem(gpu, nn.CrossEntropyLoss(), [(x.to(CUDA), y.to(CUDA))]))
    top = sgdscope.lanczos(op, 3, tol=1e-8, generator=_cuda_gen(0))
    assert top.converged and top.vectors.device.type == CUDA.type
    torch.testing.assert_close(top.values.cpu(), evals.flip(0)[:3], rtol=1e-7, atol=1e-9)
    again = sgdscope.lanczos(op, 3, tol=1e-8, generator=_cuda_gen(0))
    assert torch.equal(top.values, again.values)  # deterministic under the generator
    warm = sgdscope.lanczos(op, 3, tol=1e-8, v0=top.vectors)
    torch.testing.assert_close(warm.values, top.values, rtol=1e-7, atol=1e-9)
    bottom = sgdscope.lanczos(op, 2, which="SA", tol=1e-8, generator=_cuda_gen(1))
    torch.testing.assert_close(bottom.values.cpu(), evals[:2], rtol=1e-6, atol=1e-9)
    for estimator, exact in ((sgdscope.hutchinson_trace, evals.sum()), (sgdscope.hutchpp_trace, evals.sum()),
                             (sgdscope.frobenius_sq, (evals**2).sum())):
        est = estimator(op, 60, generator=_cuda_gen(2))
        assert abs(est.estimate - float(exact)) <= 5 * est.stderr + 1e-8 * abs(float(exact))
    density = sgdscope.spectral_density(op, num_runs=3, lanczos_steps=20, grid=200, generator=_cuda_gen(3))
    dx = float(density.grid[1] - density.grid[0])
    assert abs(float(density.estimate.sum()) * dx - 1) < 0.05  # a density: integrates to one


def test_gradient_noise_matches_the_cpu():
    cpu, gpu, x, y = _on_cuda("cnn")
    p_cpu = sgdscope.Problem(cpu, nn.CrossEntropyLoss(), [(x, y)])
    p_gpu = sgdscope.Problem(gpu, nn.CrossEntropyLoss(), [(x.to(CUDA), y.to(CUDA))])
    G = sgdscope.per_example_gradients(p_gpu, (x.to(CUDA), y.to(CUDA)))
    torch.testing.assert_close(G.cpu(), sgdscope.per_example_gradients(p_cpu, (x, y)), rtol=1e-9, atol=1e-12)
    idx = sgdscope.noise.minibatch_indices(len(y), batch_size=6, num_batches=5, generator=_cuda_gen(0))
    rows = sgdscope.minibatch_gradients(p_gpu, (x.to(CUDA), y.to(CUDA)), indices=idx)
    torch.testing.assert_close(rows.cpu(), sgdscope.minibatch_gradients(p_cpu, (x, y), indices=idx.cpu()), rtol=1e-9, atol=1e-12)
    spec_gpu = sgdscope.covariance_spectrum(rows, k=2, batch_size=6, population=len(y))
    spec_cpu = sgdscope.covariance_spectrum(rows.cpu(), k=2, batch_size=6, population=len(y))
    torch.testing.assert_close(spec_gpu.spectrum.cpu(), spec_cpu.spectrum.cpu(), rtol=1e-9, atol=1e-14)
    e = torch.randn(p_cpu.dim, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    s_gpu = sgdscope.curvature_spread(p_gpu, e.to(CUDA), (x.to(CUDA), y.to(CUDA)))
    s_cpu = sgdscope.curvature_spread(p_cpu, e, (x, y))
    torch.testing.assert_close(s_gpu.samples, s_cpu.samples, rtol=1e-9, atol=1e-12)


def test_gradient_noise_probe_path_matches_the_cpu():
    """The gradient_noise probe's path on an MLP: rows by vmap as column blocks, the spectrum without
    eigenvectors, ||g|| / ||g_2|| from the rows; the same as on the CPU with the eigenvectors."""
    cpu, gpu, x, y = _on_cuda("mlp")
    p_cpu = sgdscope.Problem(cpu, nn.CrossEntropyLoss(), [(x, y)])
    p_gpu = sgdscope.Problem(gpu, nn.CrossEntropyLoss(), [(x.to(CUDA), y.to(CUDA))])
    idx = sgdscope.noise.minibatch_indices(len(y), batch_size=6, num_batches=5, generator=_cuda_gen(0))
    blocks = sgdscope.minibatch_gradients(p_gpu, (x.to(CUDA), y.to(CUDA)), indices=idx, blocks=True)
    assert len(blocks) == len(list(gpu.parameters())) and all(b.device.type == "cuda" for b in blocks)
    rows = sgdscope.minibatch_gradients(p_cpu, (x, y), indices=idx.cpu())
    torch.testing.assert_close(torch.cat(blocks, dim=1).cpu(), rows, rtol=1e-9, atol=1e-12)
    spec_gpu = sgdscope.covariance_spectrum(blocks, k=2, batch_size=6, population=len(y), vectors=False)
    spec_cpu = sgdscope.covariance_spectrum(rows, k=2, batch_size=6, population=len(y))
    torch.testing.assert_close(spec_gpu.spectrum.cpu(), spec_cpu.spectrum, rtol=1e-9, atol=1e-14)
    g = rows[0] + rows[1]
    ratio = sgdscope.noise.projection_ratio_from_rows(g.to(CUDA), blocks, spec_gpu)
    assert ratio.device.type == "cuda"
    assert float(ratio) == pytest.approx(float(sgdscope.projection_ratio(g, spec_cpu.vectors)), rel=1e-9)


def test_interpolation_and_optimizers_stay_on_the_device():
    cpu, gpu, x, y = _on_cuda("mlp")
    p_cpu = sgdscope.Problem(cpu, nn.CrossEntropyLoss(), [(x, y)])
    p_gpu = sgdscope.Problem(gpu, nn.CrossEntropyLoss(), [(x.to(CUDA), y.to(CUDA))])
    a, b = p_cpu.theta(), p_cpu.theta() + 0.1
    curve = sgdscope.interpolate_loss(p_gpu, a.to(CUDA), b.to(CUDA), num_points=5)
    torch.testing.assert_close(torch.as_tensor(curve.losses).cpu(), torch.as_tensor(sgdscope.interpolate_loss(p_cpu, a, b, num_points=5).losses).cpu())
    for opt in (sgdscope.optim.NudgedSGD(gpu.parameters(), lr=0.1, gamma=0.5, top_k=2, problem=p_gpu, generator=_cuda_gen(0)),
                sgdscope.optim.NoisyGD(gpu.parameters(), lr=0.1, noise="sgd", top_n=2, scale=0.1, problem=p_gpu, generator=_cuda_gen(1))):
        for _ in range(3):
            opt.zero_grad()
            nn.functional.cross_entropy(gpu(x.to(CUDA)), y.to(CUDA)).backward()
            opt.step()
        assert all(p.device.type == CUDA.type and torch.isfinite(p).all() for p in gpu.parameters())


def test_training_run_with_probes_and_resume_on_cuda(tmp_path):
    from sgdscope.run.config import resolve
    from sgdscope.run.trainer import train

    probes = {**tiny_config(tmp_path)["probes"], "stability": {"every": 4}, "sharpest_directions": {"every": 6, "k": 2}}
    cfg = resolve(tiny_config(tmp_path / "a", device=CUDA.type, probes=probes))
    run = train(cfg, progress=False)
    df = sgdscope.load_run(run)
    assert sgdscope.read_status(run)["state"] == "done"
    assert set(df.probe) >= {"top_eigenvalues", "gradient_noise", "interpolation", "loss_change", "stability", "sharpest_directions"}
    assert df.value.notna().all() and not (df.name == "failed").any()
    # the same run killed (SIGKILL) inside step 11, after the checkpoint of step 10, then resumed
    script = textwrap.dedent(f"""
        import os, signal, sys
        sys.path.insert(0, {str(Path(__file__).parent)!r})
        import sgdscope.run.build as B
        import sgdscope.run.trainer as T
        from sgdscope.probes import probe
        from sgdscope.run.config import resolve
        from _tiny_run import tiny_config
        original = B.build_probes
        B.build_probes = lambda *a, **k: original(*a, **k) + [probe("killer", lambda ctx: os.kill(os.getpid(), signal.SIGKILL), every=[11])]
        T.train(resolve(tiny_config({str(tmp_path / 'b')!r}, device={CUDA.type!r}, probes={probes!r})), progress=False)
    """)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert proc.returncode == -9, proc.stderr[-2000:]
    resumed = train(resolve(tiny_config(tmp_path / "b", device=CUDA.type, probes=probes)), resume=True, progress=False)
    cols = ["step", "probe", "name", "value"]

    def numbers(frame):
        return frame[~frame.name.str.endswith("seconds")][cols].sort_values(cols[:3]).reset_index(drop=True)

    a, b = numbers(df), numbers(sgdscope.load_run(resumed))
    assert a.equals(b), (a.compare(b) if a.shape == b.shape else (a.shape, b.shape))


def test_scope_in_a_cuda_loop():
    model = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 3)).to(CUDA)
    g = torch.Generator().manual_seed(0)
    X, Y = torch.randn(256, 8, generator=g).to(CUDA), torch.randint(0, 3, (256,), generator=g).to(CUDA)
    scope = sgdscope.Scope(model, nn.CrossEntropyLoss(), [(X[:64], Y[:64])], sgdscope.probes.break_even(every=5, num_batches=6),
                           sink=sgdscope.MemorySink(), noise_data=(X, Y), batch_size=16, seed=0)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    for step in range(11):
        idx = torch.randint(0, 256, (16,), generator=g).to(CUDA)
        opt.zero_grad()
        loss = nn.functional.cross_entropy(model(X[idx]), Y[idx])
        loss.backward()
        opt.step()
        scope.after_step(step, optimizer=opt, batch=(X[idx], Y[idx]), loss=loss.detach())
    rows = scope.sink.rows
    fired = {(s, probe) for s, _, probe, _, _ in rows}
    assert {(0, "top_eigenvalues"), (5, "gradient_noise"), (10, "stability")} <= fired
    assert all(v == v for _, _, probe, name, v in rows if probe != "bn_scale_norm"), rows
    assert not any(name == "failed" for _, _, _, name, _ in rows)


@pytest.mark.skipif(CUDA.type != "cuda" or torch.cuda.device_count() < 2, reason="nccl needs 2 CUDA devices (one per process)")
def test_nccl_two_processes_equal_one_process_on_the_union(tmp_path):
    """tests/test_distributed.py's measurements on nccl, rank r on cuda:r, against one CPU process on the union."""
    import _distributed_kit as kit

    ranks = kit.spawn("measure_nccl", tmp_path)
    one = kit.measure(None)
    for key in ("hv", "loss", "grad", "top_values", "hutchpp", "K_rows", "K_spectrum", "g_ratio", "g_ratio_from_rows", "align_mean", "hc", "spread", "bn_rows"):
        torch.testing.assert_close(ranks[0][key], ranks[1][key], rtol=0, atol=0, msg=f"ranks disagree on {key}")
        torch.testing.assert_close(ranks[0][key].double(), one[key].double(), rtol=1e-9, atol=1e-12, msg=key)
