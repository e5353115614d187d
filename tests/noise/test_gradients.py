import dataclasses

import pytest
import torch
from torch import nn

from sgdscope.noise import minibatch_gradients, minibatch_indices, per_example_gradients

ATOL = 1e-12


def test_per_example_equals_autograd_loop(case):
    G = per_example_gradients(case.problem(), (case.X, case.Y))
    expected = case.example_gradients()
    assert G.shape == (len(case.Y), case.problem().dim)
    assert G.dtype == torch.float64
    torch.testing.assert_close(G, expected, atol=ATOL, rtol=0)


@pytest.mark.parametrize("chunk_size", [1, 5, 100])
def test_chunking_does_not_change_rows(cnn, chunk_size):
    p = cnn.problem()
    torch.testing.assert_close(
        per_example_gradients(p, (cnn.X, cnn.Y), chunk_size=chunk_size),
        per_example_gradients(p, (cnn.X, cnn.Y), chunk_size=3),
        atol=ATOL,
        rtol=0,
    )


def test_per_example_at_other_theta(mlp):
    p = mlp.problem()
    theta = p.theta() + 0.1
    G = per_example_gradients(p, (mlp.X, mlp.Y), theta=theta)
    ref = torch.stack([torch.func.grad(mlp.loss_at)(theta, mlp.X[i : i + 1], mlp.Y[i : i + 1]) for i in range(12)])
    torch.testing.assert_close(G, ref, atol=ATOL, rtol=0)


def test_minibatch_is_mean_of_per_example_rows(case):
    p = case.problem()
    N = len(case.Y)
    P = per_example_gradients(p, (case.X, case.Y))
    gen = torch.Generator().manual_seed(3)
    G = minibatch_gradients(p, (case.X, case.Y), batch_size=4, num_batches=5, generator=gen)
    idx = minibatch_indices(N, batch_size=4, num_batches=5, generator=torch.Generator().manual_seed(3))
    assert G.shape == (5, p.dim)
    torch.testing.assert_close(G, P[idx].mean(1), atol=ATOL, rtol=0)
    for l in range(5):  # and the autograd gradient of the mini-batch loss
        torch.testing.assert_close(G[l], case.gradient(case.X[idx[l]], case.Y[idx[l]]), atol=ATOL, rtol=0)


def test_indices_are_distinct_within_a_batch_and_seeded():
    a = minibatch_indices(20, batch_size=7, num_batches=30, generator=torch.Generator().manual_seed(0))
    b = minibatch_indices(20, batch_size=7, num_batches=30, generator=torch.Generator().manual_seed(0))
    assert torch.equal(a, b)
    assert all(len(set(row.tolist())) == 7 for row in a)
    assert int(a.min()) >= 0 and int(a.max()) < 20
    full = minibatch_indices(20, batch_size=20, num_batches=2, generator=None)
    assert torch.equal(full, torch.arange(20).expand(2, 20))


def test_indices_drawn_with_rejection_are_distinct_and_uniform():
    # M^2 <= N: drawn with replacement, rows with a repeat redrawn (here about 40% of them)
    idx = minibatch_indices(100, batch_size=10, num_batches=4000, generator=torch.Generator().manual_seed(1))
    assert all(len(set(row.tolist())) == 10 for row in idx)
    counts = torch.bincount(idx.flatten(), minlength=100).double()
    chi2 = float(((counts - 400) ** 2 / 400).sum())  # 99 degrees of freedom: mean 99, sd 14
    assert chi2 < 99 + 5 * 14
    first = torch.bincount(idx[:, 0], minlength=100).double()  # each position is uniform too
    assert float(((first - 40) ** 2 / 40).sum()) < 99 + 5 * 14


def test_list_source_and_chunks_and_explicit_indices(mlp):
    p = mlp.problem()
    idx = minibatch_indices(12, batch_size=5, num_batches=4, generator=torch.Generator().manual_seed(1))
    pieces = [(mlp.X[:5], mlp.Y[:5]), (mlp.X[5:7], mlp.Y[5:7]), (mlp.X[7:], mlp.Y[7:])]
    expected = minibatch_gradients(p, (mlp.X, mlp.Y), indices=idx)
    torch.testing.assert_close(minibatch_gradients(p, pieces, indices=idx), expected, atol=ATOL, rtol=0)
    chunked = minibatch_gradients(p, (mlp.X, mlp.Y), indices=idx, chunk_size=2)
    torch.testing.assert_close(chunked, expected, atol=ATOL, rtol=0)
    # default source: the problem's own batches; M = N is the full gradient
    full = minibatch_gradients(p, batch_size=12)
    torch.testing.assert_close(full[0], p.loss_and_grad()[1], atol=ATOL, rtol=0)


def test_sum_reduction_still_gives_mean_rows(mlp):
    case = dataclasses.replace(mlp, loss_fn=nn.CrossEntropyLoss(reduction="sum"))
    p = case.problem()
    idx = minibatch_indices(12, batch_size=3, num_batches=4, generator=torch.Generator().manual_seed(2))
    P = per_example_gradients(p, (case.X, case.Y))
    torch.testing.assert_close(minibatch_gradients(p, (case.X, case.Y), indices=idx), P[idx].mean(1), atol=ATOL, rtol=0)


def test_bn_train_mode(bn):
    p = bn.problem(bn_mode="train")
    with pytest.raises(ValueError, match="bn_mode='eval'.*mini-batch"):
        per_example_gradients(p, (bn.X, bn.Y))
    # mini-batch gradients follow the batch statistics, as a training step does
    idx = minibatch_indices(12, batch_size=6, num_batches=3, generator=torch.Generator().manual_seed(4))
    G = minibatch_gradients(p, (bn.X, bn.Y), indices=idx)
    for l in range(3):
        expected = bn.gradient(bn.X[idx[l]], bn.Y[idx[l]], train=True)
        torch.testing.assert_close(G[l], expected, atol=ATOL, rtol=0)
    with pytest.raises(ValueError, match="chunk_size"):
        minibatch_gradients(p, (bn.X, bn.Y), indices=idx, chunk_size=2)


def test_bad_arguments(mlp):
    p = mlp.problem()
    with pytest.raises(ValueError, match="batch_size must be in"):
        minibatch_gradients(p, (mlp.X, mlp.Y), batch_size=13, num_batches=1, generator=torch.Generator())
    with pytest.raises(TypeError, match="torch.Generator"):
        minibatch_gradients(p, (mlp.X, mlp.Y), batch_size=3, num_batches=1, generator=None)
    with pytest.raises(ValueError, match="chunk_size"):
        per_example_gradients(p, (mlp.X, mlp.Y), chunk_size=0)
    with pytest.raises(ValueError, match="indices must lie"):
        minibatch_gradients(p, (mlp.X, mlp.Y), indices=torch.tensor([[0, 12]]))
    with pytest.raises(ValueError, match="3 inputs but 2 targets"):
        per_example_gradients(p, (mlp.X[:3], mlp.Y[:2]))


class _ItemGate(nn.Module):
    """A forward that torch.func cannot vmap (``.item()``): served by the autograd fallback."""

    def forward(self, x):
        return x * 2.0 if x.abs().sum().item() >= 0 else x


def test_fallback_for_models_vmap_cannot_transform(mlp):
    case = dataclasses.replace(mlp, model=nn.Sequential(_ItemGate(), mlp.model))
    with pytest.warns(RuntimeWarning, match="falling back"):
        G = per_example_gradients(case.problem(), (case.X, case.Y), chunk_size=5)
    torch.testing.assert_close(G, case.example_gradients(), atol=ATOL, rtol=0)


def test_minibatch_rows_in_several_vmapped_calls_and_the_loop_fallback(mlp, monkeypatch):
    import sgdscope.noise.gradients as mod

    p = mlp.problem()
    idx = minibatch_indices(12, batch_size=3, num_batches=7, generator=torch.Generator().manual_seed(6))
    expected = torch.stack([mlp.gradient(mlp.X[i], mlp.Y[i]) for i in idx])
    monkeypatch.setitem(mod._VMAP_EXAMPLES, "cpu", 6)  # two mini-batches per call: 4 calls for 7 rows
    torch.testing.assert_close(minibatch_gradients(p, (mlp.X, mlp.Y), indices=idx), expected, atol=ATOL, rtol=0)
    case = dataclasses.replace(mlp, model=nn.Sequential(_ItemGate(), mlp.model))
    with pytest.warns(RuntimeWarning, match="looping over them"):
        G = minibatch_gradients(case.problem(), (case.X, case.Y), indices=idx)
    torch.testing.assert_close(G, torch.stack([case.gradient(case.X[i], case.Y[i]) for i in idx]), atol=ATOL, rtol=0)


class _TwoInputs(nn.Module):
    def __init__(self):
        super().__init__()
        self.a, self.b = nn.Linear(3, 2), nn.Linear(4, 2)

    def forward(self, u, w):
        return torch.tanh(self.a(u)) * self.b(w)


def test_tuple_inputs_and_vector_targets():
    """model(*inputs) with two input tensors, and an MSE loss on (B, 2) targets."""
    from sgdscope import Problem

    g = torch.Generator().manual_seed(0)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = _TwoInputs().double()
    U, W = torch.randn(9, 3, generator=g, dtype=torch.float64), torch.randn(9, 4, generator=g, dtype=torch.float64)
    Y = torch.randn(9, 2, generator=g, dtype=torch.float64)
    loss_fn = nn.MSELoss()
    p = Problem(model, loss_fn, [((U, W), Y)])
    G = per_example_gradients(p, ((U, W), Y), chunk_size=4)
    params = list(model.parameters())
    for i in range(9):
        grads = torch.autograd.grad(loss_fn(model(U[i : i + 1], W[i : i + 1]), Y[i : i + 1]), params)
        torch.testing.assert_close(G[i], torch.cat([t.reshape(-1) for t in grads]), atol=ATOL, rtol=0)
    idx = minibatch_indices(9, batch_size=4, num_batches=3, generator=g)
    torch.testing.assert_close(minibatch_gradients(p, ((U, W), Y), indices=idx), G[idx].mean(1), atol=ATOL, rtol=0)


@pytest.mark.parametrize("bn_mode", ["eval", "train"])
def test_loop_and_vmap_give_the_same_rows(case, bn_mode):
    """The two ways to mini-batch gradients (a reverse pass per mini-batch, vmap over whole
    mini-batches) give the same rows to float64 precision; "auto" takes vmap for the MLP (only
    nn.Linear parameters) and the loop for the CNN and the batch-norm net."""
    import sgdscope.noise.gradients as mod

    p = case.problem(bn_mode=bn_mode)
    idx = minibatch_indices(len(case.Y), batch_size=4, num_batches=6, generator=torch.Generator().manual_seed(5))
    loop = minibatch_gradients(p, (case.X, case.Y), indices=idx, method="loop")
    vmapped = minibatch_gradients(p, (case.X, case.Y), indices=idx, method="vmap")
    torch.testing.assert_close(vmapped, loop, atol=ATOL, rtol=0)
    train = bn_mode == "train" and p.has_batchnorm
    for l in range(6):  # and the autograd gradient of each mini-batch loss
        torch.testing.assert_close(loop[l], case.gradient(case.X[idx[l]], case.Y[idx[l]], train=train), atol=ATOL, rtol=0)
    assert mod._vmap_pays(p) == (not p.has_batchnorm and not any(isinstance(m, nn.Conv2d) for m in case.model.modules()))
    auto = minibatch_gradients(p, (case.X, case.Y), indices=idx)
    torch.testing.assert_close(auto, loop, atol=ATOL, rtol=0)


def test_method_argument(mlp):
    p = mlp.problem()
    idx = minibatch_indices(12, batch_size=4, num_batches=2, generator=torch.Generator().manual_seed(0))
    with pytest.raises(ValueError, match="method must be"):
        minibatch_gradients(p, (mlp.X, mlp.Y), indices=idx, method="fast")
    with pytest.raises(ValueError, match="whole mini-batches"):
        minibatch_gradients(p, (mlp.X, mlp.Y), indices=idx, method="vmap", chunk_size=2)
    # chunk_size < M under "auto" loops over pieces, with the same rows
    torch.testing.assert_close(
        minibatch_gradients(p, (mlp.X, mlp.Y), indices=idx, chunk_size=3),
        minibatch_gradients(p, (mlp.X, mlp.Y), indices=idx, method="vmap"),
        atol=ATOL,
        rtol=0,
    )


def test_rows_as_column_blocks(mlp, monkeypatch):
    """blocks=True: by vmap one (L, numel) block per parameter tensor, in the order of the flat
    parameters (also when the rows take several vmapped calls); by the loop one block; their
    concatenation is the (L, D) matrix, the autograd gradients of the mini-batches."""
    import sgdscope.noise.gradients as mod

    p = mlp.problem()
    idx = minibatch_indices(12, batch_size=3, num_batches=7, generator=torch.Generator().manual_seed(6))
    expected = torch.stack([mlp.gradient(mlp.X[i], mlp.Y[i]) for i in idx])
    numels = [t.numel() for t in mlp.model.parameters()]
    for calls in (4096, 6):  # one call; two mini-batches per call
        monkeypatch.setitem(mod._VMAP_EXAMPLES, "cpu", calls)
        blocks = minibatch_gradients(p, (mlp.X, mlp.Y), indices=idx, method="vmap", blocks=True)
        assert isinstance(blocks, tuple) and [b.shape for b in blocks] == [(7, n) for n in numels]
        torch.testing.assert_close(torch.cat(blocks, dim=1), expected, atol=ATOL, rtol=0)
    (loop,) = minibatch_gradients(p, (mlp.X, mlp.Y), indices=idx, method="loop", blocks=True)
    torch.testing.assert_close(loop, expected, atol=ATOL, rtol=0)


def test_vmapped_rows_of_a_parameter_selection(mlp):
    """vmap over whole mini-batches differentiates each mini-batch's own view of the selected
    parameters; the unselected ones stay shared and fixed: the rows are the matching columns of the
    full rows (autograd gradients of the mini-batch losses)."""
    p = mlp.problem(params=["0.weight", "2.bias"])
    idx = minibatch_indices(12, batch_size=3, num_batches=5, generator=torch.Generator().manual_seed(2))
    full = torch.stack([mlp.gradient(mlp.X[i], mlp.Y[i]) for i in idx])
    per_tensor = full.split([t.numel() for t in mlp.model.parameters()], dim=1)
    names = [n for n, _ in mlp.model.named_parameters()]
    expected = torch.cat([c for n, c in zip(names, per_tensor) if n in ("0.weight", "2.bias")], dim=1)
    G = minibatch_gradients(p, (mlp.X, mlp.Y), indices=idx, method="vmap")
    assert G.shape == expected.shape
    torch.testing.assert_close(G, expected, atol=ATOL, rtol=0)
    torch.testing.assert_close(minibatch_gradients(p, (mlp.X, mlp.Y), indices=idx, method="loop"), G, atol=ATOL, rtol=0)
