"""User data -> checked (inputs, targets) batches, placed, joined and pooled (sgdscope._batches)."""
import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

from sgdscope._batches import Pool, as_batches, check_batch, concat_batches, num_examples, place


def _data(n=10, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, 3, generator=g), torch.randint(0, 4, (n,), generator=g)


def _same(a, b):
    if isinstance(a, tuple):
        return isinstance(b, tuple) and len(a) == len(b) and all(_same(s, t) for s, t in zip(a, b))
    return torch.equal(a, b)


def test_every_form_of_data_gives_the_same_examples():
    X, Y = _data()
    pieces = [(X[:4], Y[:4]), (X[4:], Y[4:])]
    forms = {
        "pair": ((X, Y), [(X, Y)]),
        "list of pairs": (pieces, pieces),
        "tuple of pairs": (tuple(pieces), pieces),
        "dataset": (TensorDataset(X, Y), [(X, Y)]),
        "loader": (DataLoader(TensorDataset(X, Y), batch_size=4), [(X[:4], Y[:4]), (X[4:8], Y[4:8]), (X[8:], Y[8:])]),
    }
    for name, (data, expected) in forms.items():
        got = as_batches(data)
        assert all(isinstance(b, tuple) for b in got), name
        assert len(got) == len(expected) and all(_same(a, b) for a, b in zip(got, expected)), name
        assert _same(concat_batches(data), (X, Y)), name
        assert _same(Pool(data).gather(torch.arange(10)), (X, Y)), name


def test_tuple_inputs():
    X, Y = _data()
    U = X[:, :2].clone()
    got = as_batches([([X, U], Y)])  # list inputs become a tuple
    assert isinstance(got[0][0], tuple) and _same(got[0], ((X, U), Y))
    pieces = [((X[:3], U[:3]), Y[:3]), ((X[3:], U[3:]), Y[3:])]
    assert _same(concat_batches(pieces), ((X, U), Y))
    idx = torch.tensor([9, 0, 4, 2, 2])
    assert _same(Pool(pieces).gather(idx), ((X[idx], U[idx]), Y[idx]))
    with pytest.raises(ValueError, match=r"batch: the input tensors disagree on the number of examples: \[9, 10\]"):
        check_batch(((X, U[:9]), Y))
    with pytest.raises(ValueError, match="differ in structure"):
        concat_batches([((X[:3], U[:3]), Y[:3]), (X[3:], Y[3:])])


def test_one_batch_is_joined_without_a_copy():
    X, Y = _data()
    x, y = concat_batches([(X, Y)])
    assert x is X and y is Y


def test_pool_gathers_across_blocks_in_the_order_asked():
    X, Y = _data(12)
    pool = Pool([(X[:5], Y[:5]), (X[5:7], Y[5:7]), (X[7:], Y[7:])])
    assert len(pool) == 12 and pool.offsets.tolist() == [0, 5, 7, 12]
    idx = torch.tensor([11, 0, 6, 5, 11, 3, 7])
    x, y = pool.gather(idx)
    assert torch.equal(x, X[idx]) and torch.equal(y, Y[idx])


def test_place_casts_floating_inputs_only():
    X, Y = _data()
    tokens = torch.arange(10)
    x, y = place(((X, tokens), Y), device="cpu", dtype=torch.float64)
    assert x[0].dtype == torch.float64 and x[1].dtype == torch.long and y.dtype == Y.dtype
    assert torch.equal(x[0], X.double())


def test_errors_name_what_was_wrong():
    X, Y = _data()
    with pytest.raises(TypeError, match=r"source: batch 1: expected an \(inputs, targets\) pair, got a tensor of shape \(10, 3\)"):
        as_batches([(X, Y), X], "source")
    with pytest.raises(TypeError, match="batches: batch 0: expected an"):  # a list is a list of batches
        as_batches([X, Y])
    with pytest.raises(TypeError, match="batch: targets must be a tensor, got a list of 2"):
        check_batch((X, [1, 2]))
    with pytest.raises(TypeError, match=r"inputs must be a tensor or a tuple of tensors, got a tuple of \(Tensor, str\)"):
        check_batch(((X, "a"), Y))
    with pytest.raises(TypeError, match="inputs must be a tensor or a tuple of tensors, got ndarray"):
        check_batch((X.numpy(), Y))
    with pytest.raises(ValueError, match="batch: 10 inputs but 9 targets"):
        check_batch((X, Y[:9]))
    with pytest.raises(ValueError, match="batch: a 0-d tensor has no examples"):
        check_batch((X, Y[0]))
    with pytest.raises(ValueError, match="batches: expected at least one batch, got none"):
        as_batches([])
    with pytest.raises(ValueError, match="at least one batch, got an empty Dataset"):
        as_batches(TensorDataset(X[:0], Y[:0]))
    assert num_examples((X, X)) == 10
