import warnings

import numpy as np
import pytest
import torch
from scipy.sparse.linalg import eigsh
from torch import nn

import sgdscope
from _oracles import make_case, reference_hessian

CASES = [
    ("mlp", False, "eval"),
    ("cnn", False, "eval"),
    ("mlp", True, "eval"),
    ("mlp", True, "train"),
    ("cnn", True, "eval"),
    ("cnn", True, "train"),
]


def _batches(x, y, cuts=(7, 15)):
    edges = [0, *cuts, len(y)]
    return [(x[a:b], y[a:b]) for a, b in zip(edges[:-1], edges[1:])]


BACKENDS = [("auto", {}), ("graph", {}), ("func", {}), ("autograd", {}), ("auto", {"cache_bytes": 0})]


@pytest.mark.parametrize("backend,kw", BACKENDS, ids=["auto", "graph", "func", "autograd", "auto-streaming"])
@pytest.mark.parametrize("kind,bn,bn_mode", CASES)
def test_hvp_and_block_products_equal_the_dense_hessian(kind, bn, bn_mode, backend, kw):
    model, x, y = make_case(kind, bn=bn, dropout=True)
    batches = _batches(x, y)
    H = reference_hessian(model, batches, bn_mode=bn_mode)
    problem = sgdscope.Problem(model, nn.CrossEntropyLoss(), batches, bn_mode=bn_mode)
    op = sgdscope.hessian_op(problem, backend=backend, **kw)
    g = torch.Generator().manual_seed(1)
    v = torch.randn(op.shape[0], generator=g, dtype=torch.float64)
    V = torch.randn(op.shape[0], 5, generator=g, dtype=torch.float64)
    torch.testing.assert_close(op @ v, H @ v, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(op @ V, H @ V, rtol=1e-10, atol=1e-12)
    assert op.matvecs == 6
    assert op.shape == (H.shape[0], H.shape[0]) and op.dtype == torch.float64
    assert op.device == torch.device("cpu")
    expected = {"auto": "func" if kw else "auto"}.get(backend, backend)
    assert op.backend == expected  # auto with a zero budget streamed instead of retaining the graph


def test_retained_graph_is_counted():
    model, x, y = make_case("cnn")
    op = sgdscope.hessian_op(sgdscope.Problem(model, nn.CrossEntropyLoss(), (x, y)))
    op @ torch.ones(op.shape[0], dtype=torch.float64)
    assert op.backend == "auto" and op.retained_bytes > x.numel() * 8
    problem = sgdscope.Problem(model, nn.CrossEntropyLoss(), [(x[:10], y[:10]), (x[10:], y[10:])])
    op = sgdscope.hessian_op(problem)
    assert op.loss is None
    op @ torch.ones(op.shape[0], dtype=torch.float64)
    torch.testing.assert_close(op.loss, problem.loss(), rtol=1e-14, atol=0)  # the graph's by-product


@pytest.mark.parametrize("kind", ["mlp", "cnn"])
def test_the_split_into_batches_does_not_change_the_hessian(kind):
    model, x, y = make_case(kind, bn=True)
    v = torch.randn(sum(p.numel() for p in model.parameters()), dtype=torch.float64)
    whole = sgdscope.hessian_op(sgdscope.Problem(model, nn.CrossEntropyLoss(), (x, y))) @ v
    split = sgdscope.hessian_op(sgdscope.Problem(model, nn.CrossEntropyLoss(), _batches(x, y, (1, 10, 11)))) @ v
    torch.testing.assert_close(whole, split, rtol=1e-10, atol=1e-12)


def test_sum_reduction_is_measured_on_the_mean_loss():
    model, x, y = make_case("mlp")
    batches = _batches(x, y)
    H = reference_hessian(model, batches, loss_fn=nn.CrossEntropyLoss(reduction="sum")) / len(y)  # the summed loss's / N
    torch.testing.assert_close(H, reference_hessian(model, batches), rtol=1e-10, atol=1e-12)
    p = sgdscope.Problem(model, nn.CrossEntropyLoss(reduction="sum"), batches)
    torch.testing.assert_close(sgdscope.dense_hessian(p).matrix, H, rtol=1e-10, atol=1e-12)


def test_per_layer_selection_is_the_dense_sub_block():
    model, x, y = make_case("cnn")
    H = reference_hessian(model, [(x, y)])
    p = sgdscope.Problem(model, nn.CrossEntropyLoss(), (x, y), params=["3.*"])
    full = sgdscope.Problem(model, nn.CrossEntropyLoss(), (x, y))
    block = full.spec.slices()["3.weight"].start
    sub = H[block:, block:]
    torch.testing.assert_close(sgdscope.dense_hessian(p).matrix, sub, rtol=1e-10, atol=1e-12)
    assert p.dim == sub.shape[0]


class _CubeFn(torch.autograd.Function):
    """x**3 as an old-style autograd Function: torch.func cannot transform it."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x**3

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return grad * 3 * x**2


class _Cube(nn.Module):
    def forward(self, x):
        return _CubeFn.apply(x)


def test_retained_graph_serves_modules_torch_func_cannot():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 4), _Cube(), nn.Linear(4, 2)).double()
    x, y = torch.randn(10, 3, dtype=torch.float64), torch.randint(0, 2, (10,))
    op = sgdscope.hessian_op(sgdscope.Problem(model, nn.CrossEntropyLoss(), (x, y)))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        H = op @ torch.eye(op.shape[0], dtype=torch.float64)
    ref = sgdscope.hessian_op(sgdscope.Problem(model, nn.CrossEntropyLoss(), (x, y)), backend="autograd")
    torch.testing.assert_close(H, ref @ torch.eye(op.shape[0], dtype=torch.float64), rtol=1e-12, atol=1e-14)


def test_double_backprop_fallback_is_automatic_and_exact():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 4), _Cube(), nn.Linear(4, 2)).double()
    ref_model = nn.Sequential(model[0], nn.Identity(), model[2])
    x, y = torch.randn(10, 3, dtype=torch.float64), torch.randint(0, 2, (10,))
    op = sgdscope.hessian_op(sgdscope.Problem(model, nn.CrossEntropyLoss(), (x, y)), cache_bytes=0)  # stream
    with pytest.warns(RuntimeWarning, match="falling back to double backprop"):
        V = torch.eye(op.shape[0], dtype=torch.float64)
        H = op @ V
    assert op.backend == "autograd"

    # reference: the same function written with differentiable ops
    class Pow(nn.Module):
        def forward(self, x):
            return x**3

    ref_model[1] = Pow()
    ref = reference_hessian(ref_model, [(x, y)])
    torch.testing.assert_close(H, ref, rtol=1e-10, atol=1e-12)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        op @ V[:, 0]  # no second warning
    with pytest.raises((RuntimeError, NotImplementedError)):
        sgdscope.hessian_op(sgdscope.Problem(model, nn.CrossEntropyLoss(), (x, y)), backend="func") @ V[:, 0]


def test_to_scipy_feeds_eigsh():
    model, x, y = make_case("mlp")
    op = sgdscope.hessian_op(sgdscope.Problem(model, nn.CrossEntropyLoss(), (x, y)))
    vals = eigsh(op.to_scipy(), k=3, which="LA", return_eigenvectors=False, tol=1e-12)
    ref = torch.linalg.eigvalsh(reference_hessian(model, [(x, y)]))[-3:]
    np.testing.assert_allclose(np.sort(vals), ref.numpy(), rtol=1e-8)


def test_operator_is_frozen_at_its_parameters_and_at_moves_it():
    model, x, y = make_case("mlp")
    p = sgdscope.Problem(model, nn.CrossEntropyLoss(), (x, y))
    op = sgdscope.hessian_op(p)
    v = torch.ones(p.dim, dtype=torch.float64)
    before = op @ v
    with torch.no_grad():
        for q in model.parameters():
            q.add_(0.3)
    torch.testing.assert_close(op @ v, before)
    moved = op.at(p.theta()) @ v
    torch.testing.assert_close(moved, reference_hessian(model, [(x, y)]) @ v)
    with pytest.raises(ValueError, match=r"\(51,\)"):
        op @ torch.ones(3, dtype=torch.float64)
