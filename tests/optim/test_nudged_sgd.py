"""NudgedSGD: plain SGD at gamma = 1, the closed-form step on a quadratic, Lanczos directions, resume."""
import copy

import pytest
import torch
from torch import nn

from sgdscope import Problem
from sgdscope.optim import NudgedSGD
from _oracles import MeanOut, Quadratic


def quadratic(D=6, seed=0):
    g = torch.Generator().manual_seed(seed)
    Q, _ = torch.linalg.qr(torch.randn(D, D, generator=g, dtype=torch.float64))
    lam = torch.tensor([5.0, 3.0, 1.0, 0.5, 0.2, 0.1], dtype=torch.float64)[:D]
    A = Q @ torch.diag(lam) @ Q.T
    model = Quadratic(A, torch.randn(D, generator=g, dtype=torch.float64))
    problem = Problem(model, MeanOut(), [(torch.zeros(1, 1), torch.zeros(1))])
    return model, problem, A, Q, lam


def backward(model):
    model.zero_grad()
    model(torch.zeros(1, 1)).mean().backward()


def mlp(seed=0):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(4, 6), nn.Tanh(), nn.Linear(6, 3))


def test_gamma_one_is_plain_sgd_bit_for_bit():
    g = torch.Generator().manual_seed(1)
    X, y = torch.randn(16, 4, generator=g), torch.randint(0, 3, (16,), generator=g)
    a, b = mlp(), mlp()
    problem = Problem(a, nn.CrossEntropyLoss(), [(X, y)])
    groups_a = [{"params": a[0].parameters(), "lr": 0.1}, {"params": a[2].parameters(), "lr": 0.05}]
    groups_b = [{"params": b[0].parameters(), "lr": 0.1}, {"params": b[2].parameters(), "lr": 0.05}]
    nudged = NudgedSGD(groups_a, lr=0.1, gamma=1.0, top_k=2, problem=problem, recompute_every=1)
    sgd = torch.optim.SGD(groups_b, lr=0.1)
    for _ in range(5):
        for model, opt in ((a, nudged), (b, sgd)):
            opt.zero_grad()
            nn.functional.cross_entropy(model(X), y).backward()
            opt.step()
    for pa, pb in zip(a.parameters(), b.parameters()):
        assert torch.equal(pa, pb)
    assert nudged.eigenvectors is None and nudged.steps == 5  # no eigenvectors needed at gamma = 1


@pytest.mark.parametrize("gamma", [0.0, 0.1, 3.0])
def test_step_on_quadratic_matches_closed_form(gamma):
    model, _, A, Q, _ = quadratic()
    V = Q[:, :2]
    eta = 0.1
    opt = NudgedSGD(model.parameters(), lr=eta, gamma=gamma, top_k=2)
    opt.set_directions(V)
    w = model.w.detach().clone()
    P = V @ V.T
    for _ in range(4):
        backward(model)
        opt.step()
        w = w - eta * (torch.eye(6, dtype=torch.float64) + (gamma - 1) * P) @ (A @ w)
        torch.testing.assert_close(model.w.detach(), w, rtol=1e-12, atol=1e-12)


def test_lanczos_recompute_finds_the_top_eigenvectors():
    model, problem, A, Q, lam = quadratic()
    opt = NudgedSGD(model.parameters(), lr=0.05, gamma=0.2, top_k=2, problem=problem, recompute_every=3,
                    lanczos_tol=1e-8, generator=torch.Generator().manual_seed(0))
    w = model.w.detach().clone()
    P_true = Q[:, :2] @ Q[:, :2].T
    for _ in range(7):
        backward(model)
        opt.step()
        V = opt.eigenvectors
        torch.testing.assert_close(V @ V.T, P_true, atol=1e-6, rtol=0)
        torch.testing.assert_close(opt.eigenvalues, lam[:2], atol=1e-6, rtol=0)
        w = w - 0.05 * (torch.eye(6, dtype=torch.float64) - 0.8 * P_true) @ (A @ w)
    torch.testing.assert_close(model.w.detach(), w, atol=1e-8, rtol=0)
    assert opt.steps == 7 and opt.lanczos_matvecs > 0


def test_only_problem_parameters_are_nudged():
    g = torch.Generator().manual_seed(2)
    X, y = torch.randn(16, 4, generator=g), torch.randint(0, 3, (16,), generator=g)
    a, b = mlp(), mlp()
    problem = Problem(a, nn.CrossEntropyLoss(), [(X, y)], params="2.*")  # the last layer only
    opt = NudgedSGD(a.parameters(), lr=0.1, gamma=0.5, top_k=2, problem=problem)
    sgd = torch.optim.SGD(b.parameters(), lr=0.1)
    for model, o in ((a, opt), (b, sgd)):
        o.zero_grad()
        nn.functional.cross_entropy(model(X), y).backward()
        o.step()
    assert opt.eigenvectors.shape == (problem.dim, 2)
    for pa, pb in zip(a[0].parameters(), b[0].parameters()):
        assert torch.equal(pa, pb)  # outside the curvature subset: plain SGD
    assert not torch.equal(a[2].weight, b[2].weight)


def test_errors_name_the_problem():
    model, problem, *_ = quadratic()
    other = mlp()
    with pytest.raises(ValueError, match="not among the optimizer's parameters"):
        NudgedSGD(other.parameters(), lr=0.1, gamma=0.5, top_k=1, problem=problem)
    with pytest.raises(ValueError, match=r"\[1, D=6\]"):
        NudgedSGD(model.parameters(), lr=0.1, gamma=0.5, top_k=7)
    opt = NudgedSGD(model.parameters(), lr=0.1, gamma=0.5, top_k=1)
    backward(model)
    with pytest.raises(RuntimeError, match="set_directions"):
        opt.step()
    with pytest.raises(ValueError, match=r"\(6, k\)"):
        opt.set_directions(torch.zeros(5, 1))


def test_state_dict_round_trip_resumes_exactly():
    def run(model, opt, n):
        for _ in range(n):
            backward(model)
            opt.step()

    model, problem, *_ = quadratic(seed=3)
    opt = NudgedSGD(model.parameters(), lr=0.05, gamma=0.3, top_k=2, problem=problem, recompute_every=3,
                    generator=torch.Generator().manual_seed(5))
    run(model, opt, 4)
    saved_model, saved_opt = copy.deepcopy(model.state_dict()), copy.deepcopy(opt.state_dict())
    run(model, opt, 5)

    model2, problem2, *_ = quadratic(seed=3)
    model2.load_state_dict(saved_model)
    opt2 = NudgedSGD(model2.parameters(), lr=0.05, gamma=0.3, top_k=2, problem=problem2, recompute_every=3,
                     generator=torch.Generator().manual_seed(99))
    opt2.load_state_dict(saved_opt)
    assert opt2.steps == 4 and torch.equal(opt2.eigenvectors, saved_opt["sgdscope"]["eigenvectors"])
    run(model2, opt2, 5)
    assert torch.equal(model.w, model2.w)
    assert torch.equal(opt.eigenvectors, opt2.eigenvectors)
