"""Tiny seeded float64 models and brute-force references for the noise tests."""
from __future__ import annotations

import copy
from dataclasses import dataclass

import pytest
import torch
from torch import nn
from torch.func import functional_call

from sgdscope import Problem


@dataclass
class Case:
    model: nn.Module
    loss_fn: nn.Module
    X: torch.Tensor
    Y: torch.Tensor

    def problem(self, **kw) -> Problem:
        return Problem(self.model, self.loss_fn, [(self.X, self.Y)], **kw)

    def theta(self) -> torch.Tensor:
        return torch.cat([p.detach().reshape(-1) for p in self.model.parameters()])

    def unflatten(self, theta: torch.Tensor) -> dict[str, torch.Tensor]:
        out, i = {}, 0
        for n, p in self.model.named_parameters():
            out[n] = theta[i : i + p.numel()].view(p.shape)
            i += p.numel()
        return out

    def loss_at(self, theta, x, y):
        """Loss as a function of the flat parameters (eval mode): the independent oracle."""
        buffers = dict(self.model.named_buffers())
        return self.loss_fn(functional_call(self.model, {**self.unflatten(theta), **buffers}, (x,)), y)


def _seeded(seed: int, build):
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return build()


def _mlp():
    model = nn.Sequential(nn.Linear(4, 6), nn.Tanh(), nn.Linear(6, 3)).double()
    X = torch.randn(12, 4, dtype=torch.float64)
    Y = torch.randint(0, 3, (12,))
    return Case(model, nn.CrossEntropyLoss(), X, Y)


def _cnn():
    model = nn.Sequential(
        nn.Conv2d(1, 2, 3, padding=1), nn.Tanh(), nn.AvgPool2d(2), nn.Flatten(), nn.Linear(8, 3)
    ).double()
    X = torch.randn(10, 1, 4, 4, dtype=torch.float64)
    Y = torch.randint(0, 3, (10,))
    return Case(model, nn.CrossEntropyLoss(), X, Y)


def _bn():
    model = nn.Sequential(nn.Linear(4, 5), nn.BatchNorm1d(5), nn.Tanh(), nn.Linear(5, 3)).double()
    X = torch.randn(12, 4, dtype=torch.float64)
    Y = torch.randint(0, 3, (12,))
    with torch.no_grad():  # move the running statistics away from their defaults
        model.train()
        for _ in range(3):
            model(torch.randn(16, 4, dtype=torch.float64) * 2 + 1)
    model.eval()
    return Case(model, nn.CrossEntropyLoss(), X, Y)


@pytest.fixture
def mlp() -> Case:
    return _seeded(0, _mlp)


@pytest.fixture
def cnn() -> Case:
    return _seeded(1, _cnn)


@pytest.fixture
def bn() -> Case:
    return _seeded(2, _bn)


@pytest.fixture(params=["mlp", "cnn", "bn"])
def case(request) -> Case:
    return request.getfixturevalue(request.param)


def loop_gradients(case: Case, X=None, Y=None, *, train: bool = False) -> torch.Tensor:
    """(B, D) per-example gradients by a Python loop of autograd on a copy of the model."""
    X = case.X if X is None else X
    Y = case.Y if Y is None else Y
    model = copy.deepcopy(case.model).train(train)
    rows = []
    for i in range(len(Y)):
        loss = case.loss_fn(model(X[i : i + 1]), Y[i : i + 1])
        rows.append(torch.cat([g.reshape(-1) for g in torch.autograd.grad(loss, list(model.parameters()))]))
    return torch.stack(rows)


def batch_gradient(case: Case, X, Y, *, train: bool = False) -> torch.Tensor:
    """(D,) gradient of the mean loss of one batch by autograd on a copy of the model."""
    model = copy.deepcopy(case.model).train(train)
    loss = case.loss_fn(model(X), Y)
    return torch.cat([g.reshape(-1) for g in torch.autograd.grad(loss, list(model.parameters()))])


def dense_hessian_oracle(case: Case, X=None, Y=None) -> torch.Tensor:
    """(D, D) Hessian of the batch loss by torch.func.hessian (eval mode)."""
    X = case.X if X is None else X
    Y = case.Y if Y is None else Y
    was = case.model.training
    case.model.eval()
    try:
        return torch.func.hessian(lambda t: case.loss_at(t, X, Y))(case.theta())
    finally:
        case.model.train(was)


def snapshot(model: nn.Module):
    """Everything a measurement must leave alone."""
    return (
        [m.training for m in model.modules()],
        {n: b.clone() for n, b in model.named_buffers()},
        [None if p.grad is None else p.grad.clone() for p in model.parameters()],
        [getattr(m, "track_running_stats", None) for m in model.modules()],
        torch.get_rng_state(),
    )


def assert_same_state(before, after):
    assert before[0] == after[0], "module modes changed"
    assert before[1].keys() == after[1].keys()
    for n in before[1]:
        assert torch.equal(before[1][n], after[1][n]), f"buffer {n} changed"
    assert all((a is None) == (b is None) for a, b in zip(before[2], after[2])), ".grad changed"
    assert before[3] == after[3], "track_running_stats changed"
    assert torch.equal(before[4], after[4]), "global RNG state changed"


@pytest.fixture
def ref():
    """The brute-force references, as one namespace (tests import nothing from conftest)."""
    from types import SimpleNamespace

    return SimpleNamespace(
        loop_gradients=loop_gradients,
        batch_gradient=batch_gradient,
        dense_hessian=dense_hessian_oracle,
        snapshot=snapshot,
        assert_same_state=assert_same_state,
    )
