"""Shared tiny seeded float64 models and an independent dense-Hessian reference.

The reference never goes through sgdscope: it builds the loss of a deep copy of the model with
``torch.func.functional_call`` and differentiates it twice with plain autograd
(``torch.autograd.functional.hessian``). Not ``torch.func.hessian``: in torch 2.13 its
jacfwd(jacrev) gives wrong batch-norm-in-train-mode Hessians (checked against finite differences).
"""
import copy
from pathlib import Path

import torch
from torch import nn
from torch.autograd.functional import hessian
from torch.func import functional_call

torch.set_num_threads(2)

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def _mlp(bn=False, dropout=False):
    layers = [nn.Linear(4, 6)]
    if bn:
        layers.append(nn.BatchNorm1d(6))
    layers.append(nn.Tanh())
    if dropout:
        layers.append(nn.Dropout(0.5))
    layers.append(nn.Linear(6, 3))
    return nn.Sequential(*layers)


def _cnn(bn=False, dropout=False):
    layers = [nn.Conv2d(2, 3, 3, padding=1)]
    if bn:
        layers.append(nn.BatchNorm2d(3))
    layers += [nn.Tanh(), nn.Flatten()]
    if dropout:
        layers.append(nn.Dropout(0.3))
    layers.append(nn.Linear(3 * 4 * 4, 3))
    return nn.Sequential(*layers)


def make_case(kind="mlp", *, bn=False, dropout=False, n=24, seed=0):
    """A seeded float64 model (in train mode, with warm running statistics) and (x, y) data."""
    g = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    model = (_mlp if kind == "mlp" else _cnn)(bn=bn, dropout=dropout).double()
    shape = (n, 4) if kind == "mlp" else (n, 2, 4, 4)
    x = torch.randn(shape, generator=g, dtype=torch.float64)
    y = torch.randint(0, 3, (n,), generator=g)
    if bn:  # non-trivial running statistics
        with torch.no_grad():
            model.train()
            for _ in range(3):
                model(x + 0.5)
    model.train()
    return model, x, y


def reference_hessian(model, batches, params=None, bn_mode="eval", reduction="mean"):
    """Dense Hessian of the combined loss, built without sgdscope."""
    ref = copy.deepcopy(model)
    for m in ref.modules():
        is_bn = isinstance(m, nn.modules.batchnorm._BatchNorm)
        m.training = bool(is_bn and bn_mode == "train")
        if is_bn and bn_mode == "train":
            m.track_running_stats = False  # batch statistics, no running-stat update
    named = {k: v.detach() for k, v in ref.named_parameters()}
    names = [k for k in named if params is None or k in params]
    shapes = [named[k].shape for k in names]
    sizes = [named[k].numel() for k in names]
    N = sum(len(y) for _, y in batches)

    def f(theta):
        p = dict(named)
        for k, t, s in zip(names, torch.split(theta, sizes), shapes):
            p[k] = t.view(s)
        total = 0.0
        for x, y in batches:
            loss = nn.functional.cross_entropy(functional_call(ref, p, (x,)), y, reduction=reduction)
            total = total + (loss * len(y) / N if reduction == "mean" else loss)
        return total

    theta = torch.cat([named[k].reshape(-1) for k in names])
    return hessian(f, theta)


def model_state(model):
    """Everything a measurement must leave alone."""
    return {
        "modes": [m.training for m in model.modules()],
        "params": {k: v.detach().clone() for k, v in model.named_parameters()},
        "buffers": {k: v.detach().clone() for k, v in model.named_buffers()},
        "grads": {k: None if v.grad is None else v.grad.clone() for k, v in model.named_parameters()},
        "rng": torch.get_rng_state(),
    }


def assert_same_state(before, after):
    assert before["modes"] == after["modes"]
    for key in ("params", "buffers"):
        for k in before[key]:
            assert torch.equal(before[key][k], after[key][k]), f"{key} {k} changed"
    for k, g in before["grads"].items():
        h = after["grads"][k]
        assert (g is None and h is None) or torch.equal(g, h), f"grad {k} changed"
    assert torch.equal(before["rng"], after["rng"]), "global RNG state changed"


class Quadratic(nn.Module):
    """forward(x) = 1/2 w^T A w for every example: the loss is exactly quadratic in w."""

    def __init__(self, A, w0):
        super().__init__()
        self.register_buffer("A", A)
        self.w = nn.Parameter(w0.clone())

    def forward(self, x):
        return (0.5 * self.w @ self.A @ self.w).expand(x.shape[0])


class FnModel(nn.Module):
    """Every example's output is fn(w): the problem's loss is exactly fn(w)."""

    def __init__(self, fn, w0):
        super().__init__()
        self.fn = fn
        self.w = nn.Parameter(torch.as_tensor(w0, dtype=torch.float64).clone())

    def forward(self, x):
        return self.fn(self.w).expand(x.shape[0])


class MeanOut:
    """A 'loss' that is the mean model output (with FnModel / Quadratic: the loss is fn(w))."""

    reduction = "mean"

    def __call__(self, out, y):
        return out.mean()
