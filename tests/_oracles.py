"""The one kit of test oracles: tiny seeded float64 cases and references built without sgdscope.

Cases
  * ``make_case(kind, bn=, dropout=, n=, seed=) -> (model, x, y)``: an MLP or CNN in train mode
    with warm running statistics. It seeds torch's global RNG (tests that replay dropout rely on it).
  * ``build_case(name) -> Case`` for ``"mlp"``, ``"cnn"``, ``"bn"``: a model, its loss and one
    ``(X, Y)`` batch, built under a forked global RNG (``tests/noise/conftest.py`` makes them fixtures).
  * ``Quadratic``, ``FnModel``, ``MeanOut``: models whose loss is a known function of the parameters.

References (never through sgdscope)
  * ``reference_hessian``: the dense Hessian by double backprop
    (``torch.autograd.functional.hessian``) of ``torch.func.functional_call`` on a deep copy of the
    model. Not ``torch.func.hessian``: in torch 2.13 its jacfwd(jacrev) gives wrong
    batch-norm-in-train-mode Hessians (checked against finite differences).
  * ``reference_gradient`` (one batch) and ``reference_example_gradients`` (a Python loop, one
    example at a time): plain autograd on a deep copy of the model.
  * ``model_state`` / ``assert_same_state``: everything a measurement must leave alone.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn
from torch.autograd.functional import hessian
from torch.func import functional_call

torch.set_num_threads(2)

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


# ----------------------------------------------------------------------------- models
def _mlp(*, hidden=6, bn=False, dropout=False):
    layers = [nn.Linear(4, hidden)]
    if bn:
        layers.append(nn.BatchNorm1d(hidden))
    layers.append(nn.Tanh())
    if dropout:
        layers.append(nn.Dropout(0.5))
    layers.append(nn.Linear(hidden, 3))
    return nn.Sequential(*layers)


def _cnn(*, channels=(2, 3), pool=False, bn=False, dropout=False):
    """On (n, channels[0], 4, 4) images."""
    c_in, c_out = channels
    layers = [nn.Conv2d(c_in, c_out, 3, padding=1)]
    if bn:
        layers.append(nn.BatchNorm2d(c_out))
    layers.append(nn.Tanh())
    if pool:
        layers.append(nn.AvgPool2d(2))
    layers.append(nn.Flatten())
    if dropout:
        layers.append(nn.Dropout(0.3))
    layers.append(nn.Linear(c_out * (2 if pool else 4) ** 2, 3))
    return nn.Sequential(*layers)


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


# ----------------------------------------------------------------------------- cases
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


@dataclass
class Case:
    """A model, its loss and one ``(X, Y)`` batch, with the references of this kit at hand."""

    model: nn.Module
    loss_fn: nn.Module
    X: torch.Tensor
    Y: torch.Tensor

    def problem(self, **kw):
        from sgdscope import Problem

        return Problem(self.model, self.loss_fn, [(self.X, self.Y)], **kw)

    def theta(self) -> torch.Tensor:
        return torch.cat([p.detach().reshape(-1) for p in self.model.parameters()])

    def loss_at(self, theta, x, y):
        """The loss as a function of the flat parameters (the model's own mode and buffers)."""
        return self.loss_fn(_at(self.model, theta)(x), y)

    def hessian(self, X=None, Y=None) -> torch.Tensor:
        """(D, D) :func:`reference_hessian` of the loss of ``(X, Y)`` (default: the case's), eval mode."""
        return reference_hessian(self.model, [(_or(X, self.X), _or(Y, self.Y))], loss_fn=self.loss_fn)

    def gradient(self, X, Y, *, train=False) -> torch.Tensor:
        """(D,) :func:`reference_gradient` of the loss of the batch ``(X, Y)``."""
        return reference_gradient(self.model, self.loss_fn, X, Y, train=train)

    def example_gradients(self, X=None, Y=None, *, train=False) -> torch.Tensor:
        """(B, D) :func:`reference_example_gradients` of ``(X, Y)`` (default: the case's)."""
        return reference_example_gradients(self.model, self.loss_fn, _or(X, self.X), _or(Y, self.Y), train=train)


def _or(value, default):
    return default if value is None else value


def _seeded(seed, build):
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return build()


def _data(shape, n):
    return torch.randn(n, *shape, dtype=torch.float64), torch.randint(0, 3, (n,))


def _mlp_case():
    return Case(_mlp().double(), nn.CrossEntropyLoss(), *_data((4,), 12))


def _cnn_case():
    return Case(_cnn(channels=(1, 2), pool=True).double(), nn.CrossEntropyLoss(), *_data((1, 4, 4), 10))


def _bn_case():
    model = _mlp(hidden=5, bn=True).double()
    case = Case(model, nn.CrossEntropyLoss(), *_data((4,), 12))
    with torch.no_grad():  # move the running statistics away from their defaults
        model.train()
        for _ in range(3):
            model(torch.randn(16, 4, dtype=torch.float64) * 2 + 1)
    model.eval()
    return case


_CASES = {"mlp": (0, _mlp_case), "cnn": (1, _cnn_case), "bn": (2, _bn_case)}


def build_case(name: str) -> Case:
    """``"mlp"`` (12 examples, D = 51), ``"cnn"`` (10 examples of 1x4x4, D = 47, average pooling) or
    ``"bn"`` (an MLP with batch norm, in eval mode, warm running statistics; 12 examples), each from
    its own seed, leaving torch's global RNG as it was."""
    seed, build = _CASES[name]
    return _seeded(seed, build)


# ----------------------------------------------------------------------------- references
def _at(model, theta, names=None):
    """``model`` as a function of flat parameters ``theta`` (the ``names`` selected, in model order;
    the other parameters and the buffers as they are)."""
    named = {k: v.detach() for k, v in model.named_parameters()}
    names = [k for k in named if names is None or k in names]
    params = dict(named)
    for k, t in zip(names, torch.split(theta, [named[k].numel() for k in names])):
        params[k] = t.view(named[k].shape)
    return lambda *x: functional_call(model, params, x)


def reference_hessian(model, batches, *, params=None, bn_mode="eval", loss_fn=None, vectorize=False):
    """Dense Hessian of the loss over ``batches`` combined with ``loss_fn``'s reduction (default
    ``nn.CrossEntropyLoss()``; a mean weighs batch b by n_b / N), built without sgdscope.
    ``vectorize=True`` batches the second backward passes with vmap (faster for D in the thousands)."""
    loss_fn = nn.CrossEntropyLoss() if loss_fn is None else loss_fn
    reduction = getattr(loss_fn, "reduction", "mean")
    ref = copy.deepcopy(model)
    for m in ref.modules():
        is_bn = isinstance(m, nn.modules.batchnorm._BatchNorm)
        m.training = bool(is_bn and bn_mode == "train")
        if is_bn and bn_mode == "train":
            m.track_running_stats = False  # batch statistics, no running-stat update
    names = [k for k, _ in ref.named_parameters() if params is None or k in params]
    N = sum(len(y) for _, y in batches)

    def f(theta):
        forward = _at(ref, theta, names)
        total = 0.0
        for x, y in batches:
            loss = loss_fn(forward(x), y)
            total = total + (loss * len(y) / N if reduction == "mean" else loss)
        return total

    named = dict(ref.named_parameters())
    return hessian(f, torch.cat([named[k].detach().reshape(-1) for k in names]), vectorize=vectorize)


def reference_gradient(model, loss_fn, X, Y, *, train=False) -> torch.Tensor:
    """(D,) gradient of ``loss_fn(model(X), Y)`` by autograd on a copy of the model in train mode
    (``train=True``: batch statistics) or eval mode."""
    ref = copy.deepcopy(model).train(train)
    loss = loss_fn(ref(X), Y)
    return torch.cat([g.reshape(-1) for g in torch.autograd.grad(loss, list(ref.parameters()))])


def reference_example_gradients(model, loss_fn, X, Y, *, train=False) -> torch.Tensor:
    """(B, D) per-example gradients: :func:`reference_gradient` of each example alone, in a loop."""
    return torch.stack([reference_gradient(model, loss_fn, X[i : i + 1], Y[i : i + 1], train=train) for i in range(len(Y))])


# ----------------------------------------------------------------------------- state
def model_state(model):
    """Everything a measurement must leave alone."""
    return {
        "modes": [m.training for m in model.modules()],
        "track_running_stats": [getattr(m, "track_running_stats", None) for m in model.modules()],
        "params": {k: v.detach().clone() for k, v in model.named_parameters()},
        "buffers": {k: v.detach().clone() for k, v in model.named_buffers()},
        "grads": {k: None if v.grad is None else v.grad.clone() for k, v in model.named_parameters()},
        "rng": torch.get_rng_state(),
    }


def assert_same_state(before, after):
    assert before["modes"] == after["modes"], "module modes changed"
    assert before["track_running_stats"] == after["track_running_stats"], "track_running_stats changed"
    for key in ("params", "buffers", "grads"):
        assert before[key].keys() == after[key].keys(), f"{key} added or removed"
    for key in ("params", "buffers"):
        for k in before[key]:
            assert torch.equal(before[key][k], after[key][k]), f"{key} {k} changed"
    for k, g in before["grads"].items():
        h = after["grads"][k]
        assert (g is None and h is None) or (g is not None and h is not None and torch.equal(g, h)), f"grad {k} changed"
    assert torch.equal(before["rng"], after["rng"]), "global RNG state changed"
