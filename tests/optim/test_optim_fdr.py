"""Fluctuation-dissipation check (noise paper A.5, Yaida 2019) on SGD with momentum on a quadratic."""
import pytest
import torch

from sgdscope.optim import FDRMonitor, fdr_observables, fdr_ratio


def noisy_quadratic_run(*, steps, lr, momentum, dampening=0.0, start_scale=0.0, seed=0):
    """SGD with torch's momentum convention on L = 1/2 w^T A w with additive Gaussian gradient noise,
    vectorised over 64 independent chains: returns (thetas, grads, velocities), each (steps, 64, D)."""
    g = torch.Generator().manual_seed(seed)
    lam = torch.tensor([4.0, 1.0, 0.25], dtype=torch.float64)
    Q, _ = torch.linalg.qr(torch.randn(3, 3, generator=g, dtype=torch.float64))
    A = Q @ torch.diag(lam) @ Q.T
    w = start_scale * torch.randn(64, 3, generator=g, dtype=torch.float64)
    v = None
    rec = [], [], []
    for _ in range(steps):
        grad = w @ A + 0.5 * torch.randn(64, 3, generator=g, dtype=torch.float64)
        v = grad.clone() if v is None else momentum * v + (1 - dampening) * grad
        for r, x in zip(rec, (w, grad, v)):
            r.append(x)
        w = w - lr * v
    return [torch.stack(r) for r in rec], Q[:, :1]


@pytest.mark.parametrize("momentum,dampening", [(0.0, 0.0), (0.9, 0.0), (0.5, 0.3)])
def test_ratio_tends_to_zero_at_stationarity(momentum, dampening):
    (th, gr, ve), top = noisy_quadratic_run(steps=3000, lr=0.05, momentum=momentum, dampening=dampening)
    window = slice(1000, None)  # after equilibration
    flat = lambda x: x[window].reshape(-1, 3)  # noqa: E731 - chains and steps pooled
    res = fdr_ratio(flat(th), flat(gr), flat(ve), lr=0.05, momentum=momentum, dampening=dampening, basis=top)
    assert res.ratio < 0.03 and res.ratio_subspace < 0.03, res
    assert res.steps == 2000 * 64


def test_ratio_is_large_far_from_stationarity():
    (th, gr, ve), top = noisy_quadratic_run(steps=40, lr=0.05, momentum=0.0, start_scale=10.0)
    flat = lambda x: x.reshape(-1, 3)  # noqa: E731
    res = fdr_ratio(flat(th), flat(gr), flat(ve), lr=0.05, basis=top)
    assert res.ratio > 1.0


def test_monitor_streams_the_same_numbers_and_tracks_torch_momentum():
    torch.manual_seed(0)
    A = torch.tensor([[3.0, 0.5], [0.5, 1.0]], dtype=torch.float64)
    w = torch.nn.Parameter(torch.tensor([1.0, -2.0], dtype=torch.float64))
    opt = torch.optim.SGD([w], lr=0.1, momentum=0.9, dampening=0.1)
    g = torch.Generator().manual_seed(1)
    e = torch.tensor([1.0, 0.0], dtype=torch.float64)
    mon = FDRMonitor(window=50, basis=e[:, None])
    ths, grs, ves = [], [], []
    for _ in range(80):
        theta = w.detach().clone()
        opt.zero_grad()
        w.grad = A @ w.detach() + torch.randn(2, generator=g, dtype=torch.float64)
        grad = w.grad.clone()
        opt.step()
        velocity = (theta - w.detach()) / 0.1
        mon.update(theta, grad, lr=0.1, momentum=0.9, dampening=0.1)  # velocity tracked inside
        torch.testing.assert_close(mon._velocity, velocity)
        ths.append(theta), grs.append(grad), ves.append(velocity)
    stack = lambda xs: torch.stack(xs[-50:])  # noqa: E731
    ref = fdr_ratio(stack(ths), stack(grs), stack(ves), lr=0.1, momentum=0.9, dampening=0.1, basis=e[:, None])
    got = mon.result()
    assert got.steps == 50
    for name in ("o_left", "o_right", "ratio", "o_left_subspace", "o_right_subspace", "ratio_subspace"):
        assert getattr(got, name) == pytest.approx(getattr(ref, name), rel=1e-10)


def test_observables_and_errors():
    th, gr, ve = torch.tensor([1.0, 2.0]), torch.tensor([3.0, -1.0]), torch.tensor([2.0, 0.0])
    ol, orr = fdr_observables(th, gr, ve, lr=0.5, momentum=0.5)
    assert float(ol) == 1.0 and float(orr) == pytest.approx(0.5 * 1.5 / 2 * 4.0)
    with pytest.raises(ValueError, match="momentum"):
        fdr_observables(th, gr, ve, lr=0.5, momentum=1.0)
    with pytest.raises(RuntimeError, match="no step"):
        FDRMonitor().result()
