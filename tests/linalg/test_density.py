import math

import pytest
import torch

import sgdscope


def _matrix(ev, seed=0):
    D = len(ev)
    Q, _ = torch.linalg.qr(torch.randn(D, D, generator=torch.Generator().manual_seed(seed), dtype=torch.float64))
    return Q @ torch.diag(ev) @ Q.T


def test_density_integrates_to_one_and_its_trace_is_right():
    ev = torch.cat([torch.linspace(-1, 1, 47), torch.tensor([5.0, 7.0, 12.0])]).double()
    op = sgdscope.dense_op(_matrix(ev))
    d = sgdscope.spectral_density(op, num_runs=30, lanczos_steps=20, grid=4000, generator=torch.Generator().manual_seed(0))
    dx = float(d.grid[1] - d.grid[0])
    assert float(d.estimate.sum()) * dx == pytest.approx(1.0, abs=1e-3)
    tr = d.expectation(lambda t: t)
    assert abs(tr.estimate - float(ev.sum())) < 4 * tr.stderr
    assert d.matvecs == 30 * 20
    # Gauss quadrature with m nodes is exact for polynomials of degree < 2m, per start vector:
    # so Tr(H^2) from SLQ equals the mean of D * v^T H^2 v / |v|^2 over the same vectors.
    assert d.expectation(lambda t: t**2).estimate > 0


def test_full_length_runs_converge_to_the_exact_broadened_density():
    ev = torch.tensor([-2.0, -0.5, 0.0, 0.1, 0.3, 1.0, 1.5, 4.0, 4.2, 9.0], dtype=torch.float64)
    op = sgdscope.dense_op(_matrix(ev))
    sigma = 0.3
    grid = torch.linspace(-4, 11, 300, dtype=torch.float64)
    d = sgdscope.spectral_density(op, num_runs=400, lanczos_steps=10, grid=grid, sigma=sigma, generator=torch.Generator().manual_seed(1))
    exact = torch.exp(-0.5 * ((grid[:, None] - ev[None]) / sigma) ** 2).sum(1) / (len(ev) * sigma * math.sqrt(2 * math.pi))
    # nodes are the exact eigenvalues once the Krylov space is the whole space
    torch.testing.assert_close(d.nodes[0].sort().values, ev, atol=1e-9, rtol=0)
    z = (d.estimate - exact) / d.stderr.clamp_min(1e-12)
    assert float(z.abs().max()) < 5
    assert float((d.estimate - exact).abs().max()) < 0.2 * float(exact.max())


def test_bad_arguments():
    op = sgdscope.dense_op(torch.eye(4, dtype=torch.float64))
    with pytest.raises(ValueError, match="num_runs"):
        sgdscope.spectral_density(op, num_runs=0)
    with pytest.raises(ValueError, match="sigma must be positive"):
        sgdscope.spectral_density(op, num_runs=1, lanczos_steps=2, sigma=-1.0)
