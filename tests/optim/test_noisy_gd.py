"""NoisyGD: plain GD without noise, the designed covariance under a fixed seed, Lanczos basis, resume."""
import copy
import math

import pytest
import torch
from torch import nn

from sgdscope import Problem
from sgdscope.optim import (
    NoisyGD,
    noise_covariance,
    noise_variances,
    sample_subspace_noise,
    sgd_noise_scale,
)
from _oracles import MeanOut, Quadratic


def basis(D=5, n=2, seed=0):
    g = torch.Generator().manual_seed(seed)
    Q, _ = torch.linalg.qr(torch.randn(D, D, generator=g, dtype=torch.float64))
    return Q[:, :n]


def mlp(seed=0):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(4, 6), nn.Tanh(), nn.Linear(6, 3))


@pytest.mark.parametrize("noise,scale", [(None, 1.0), ("sgd", 0.0), ("isotropic", 0.0), ("designed", 0.0)])
def test_without_noise_it_is_plain_gd_bit_for_bit(noise, scale):
    g = torch.Generator().manual_seed(1)
    X, y = torch.randn(16, 4, generator=g), torch.randint(0, 3, (16,), generator=g)
    a, b = mlp(), mlp()
    opt = NoisyGD(a.parameters(), lr=0.1, noise=noise, top_n=2, scale=scale, f=lambda lam: lam.sum(),
                  problem=Problem(a, nn.CrossEntropyLoss(), [(X, y)]))
    gd = torch.optim.SGD(b.parameters(), lr=0.1)
    for _ in range(4):
        for model, o in ((a, opt), (b, gd)):
            o.zero_grad()
            nn.functional.cross_entropy(model(X), y).backward()
            o.step()
    for pa, pb in zip(a.parameters(), b.parameters()):
        assert torch.equal(pa, pb)
    assert opt.eigenvectors is None  # no Lanczos without noise


def _empirical_noise(noise, *, n_samples, lam, V, f=None, scale=0.7, lr=0.5):
    D = V.shape[0]
    w = nn.Parameter(torch.zeros(D, dtype=torch.float64))
    opt = NoisyGD([w], lr=lr, noise=noise, top_n=V.shape[1], scale=scale, f=f,
                  generator=torch.Generator().manual_seed(11))
    opt.set_directions(V, lam)
    w.grad = torch.zeros_like(w)
    xs = torch.empty(n_samples, D, dtype=torch.float64)
    for i in range(n_samples):
        before = w.detach().clone()
        opt.step()
        xs[i] = (before - w.detach()) / lr  # = xi, the gradient noise
    return xs


def _assert_cov_close(xs, C):
    N = xs.shape[0]
    emp = xs.T @ xs / N  # zero mean by design
    d = torch.diagonal(C)
    se = torch.sqrt((d[:, None] * d[None, :] + C**2) / N)
    assert ((emp - C).abs() <= 5 * se + 1e-12).all(), (emp, C)


@pytest.mark.parametrize(
    "noise,f,expected",
    [
        ("sgd", None, lambda lam: lam),
        ("isotropic_subspace", None, lambda lam: torch.ones_like(lam)),
        ("designed", lambda lam: (lam**2).sum(), lambda lam: 2 * lam**2),
    ],
)
def test_subspace_noise_has_the_designed_covariance(noise, f, expected):
    V = basis()
    lam = torch.tensor([3.0, 0.5], dtype=torch.float64)
    scale = 0.7
    xs = _empirical_noise(noise, n_samples=2500, lam=lam, V=V, f=f, scale=scale)
    C = noise_covariance(V, scale * expected(lam))
    _assert_cov_close(xs, C)
    torch.testing.assert_close(xs - xs @ V @ V.T, torch.zeros_like(xs), atol=1e-12, rtol=0)  # in span(V)


def test_isotropic_noise_covariance():
    V = basis()
    xs = _empirical_noise("isotropic", n_samples=2500, lam=None, V=V, scale=0.7)
    _assert_cov_close(xs, 0.7 * torch.eye(5, dtype=torch.float64))


def test_theorem_2_special_cases_reduce_to_sgd_and_isotropic_noise():
    lam = torch.tensor([[4.0, 1.0, 0.25], [2.0, 0.5, 0.1]], dtype=torch.float64)
    torch.testing.assert_close(noise_variances("designed", lam, scale=0.3, f=lambda l: l.sum()),
                               noise_variances("sgd", lam, scale=0.3))  # Theorem 1: f = trace
    torch.testing.assert_close(noise_variances("designed", lam, scale=0.3, f=lambda l: torch.log(l).sum()),
                               noise_variances("isotropic_subspace", lam, scale=0.3))  # Corollary 2.1
    with pytest.raises(ValueError, match="must be finite and >= 0"):
        noise_variances("designed", lam, f=lambda l: -l.sum())
    with pytest.raises(ValueError, match="one of"):
        noise_variances("bogus", lam)


def test_batched_sampling_matches_covariance():
    V = basis(D=4, n=2, seed=3).expand(20000, -1, -1)
    c = torch.tensor([2.0, 0.3], dtype=torch.float64).expand(20000, -1)
    xs = sample_subspace_noise(V, c, generator=torch.Generator().manual_seed(0))
    _assert_cov_close(xs, noise_covariance(V[0], c[0]))


def test_sgd_noise_scale():
    assert math.isclose(sgd_noise_scale(10, 100), 0.1 * 0.9)
    assert sgd_noise_scale(100, 100) == 0.0
    with pytest.raises(ValueError, match="batch_size"):
        sgd_noise_scale(0, 100)


def test_lanczos_basis_and_resume():
    g = torch.Generator().manual_seed(4)
    Q, _ = torch.linalg.qr(torch.randn(6, 6, generator=g, dtype=torch.float64))
    lam = torch.tensor([4.0, 2.0, 1.0, 0.5, 0.2, 0.1], dtype=torch.float64)
    A = Q @ torch.diag(lam) @ Q.T
    w0 = torch.randn(6, generator=g, dtype=torch.float64)

    def make(seed):
        model = Quadratic(A, w0)
        problem = Problem(model, MeanOut(), [(torch.zeros(1, 1), torch.zeros(1))])
        opt = NoisyGD(model.parameters(), lr=0.05, noise="sgd", top_n=2, scale=0.1, problem=problem,
                      recompute_every=2, lanczos_tol=1e-8, generator=torch.Generator().manual_seed(seed))
        return model, opt

    def run(model, opt, n):
        for _ in range(n):
            model.zero_grad()
            model(torch.zeros(1, 1)).mean().backward()
            opt.step()

    model, opt = make(0)
    run(model, opt, 3)
    torch.testing.assert_close(opt.eigenvalues, lam[:2], atol=1e-6, rtol=0)
    saved_m, saved_o = copy.deepcopy(model.state_dict()), copy.deepcopy(opt.state_dict())
    run(model, opt, 4)
    model2, opt2 = make(123)
    model2.load_state_dict(saved_m)
    opt2.load_state_dict(saved_o)
    run(model2, opt2, 4)
    assert torch.equal(model.w, model2.w)  # same noise after resume: the generator state was restored


def test_constructor_errors():
    w = nn.Parameter(torch.zeros(3))
    with pytest.raises(ValueError, match="top_n"):
        NoisyGD([w], lr=0.1, noise="sgd")
    with pytest.raises(ValueError, match="needs f"):
        NoisyGD([w], lr=0.1, noise="designed", top_n=1)
    with pytest.raises(ValueError, match="noise must be one of"):
        NoisyGD([w], lr=0.1, noise="pink")
    opt = NoisyGD([w], lr=0.1, noise="sgd", top_n=1)
    opt.set_directions(torch.ones(3))
    w.grad = torch.zeros(3)
    with pytest.raises(RuntimeError, match="eigenvalues"):
        opt.step()
