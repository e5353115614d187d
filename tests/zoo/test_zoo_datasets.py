"""load_dataset: splits and subsets, default roots, embedded data sets, tensors, errors."""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch

from sgdscope.zoo import Dataset, DataFormatError, list_datasets, load_dataset


def test_list_datasets():
    assert list_datasets() == ["cifar10", "cifar100", "digits", "fashion_mnist", "imagefolder", "imdb", "mnist", "mnist1d", "synthetic"]


def test_synthetic_is_seeded_and_configurable():
    a = load_dataset("synthetic", num_train=100, num_test=40, dim=5, num_classes=4, data_seed=3)
    b = load_dataset("synthetic", num_train=100, num_test=40, dim=5, num_classes=4, data_seed=3)
    c = load_dataset("synthetic", num_train=100, num_test=40, dim=5, num_classes=4, data_seed=4)
    assert isinstance(a, Dataset) and a.input_shape == (5,) and a.num_classes == 4 and len(a.test) == 40
    assert torch.equal(a.train.x, b.train.x) and not torch.equal(a.train.x, c.train.x)
    assert set(a.train.y.tolist()) == {0, 1, 2, 3} and a.classes == ("0", "1", "2", "3")


def test_val_split_and_subset_are_deterministic_disjoint_and_nested():
    full = load_dataset("synthetic", num_train=200)
    ds = load_dataset("synthetic", num_train=200, val_size=50, seed=1)
    again = load_dataset("synthetic", num_train=200, val_size=50, seed=1)
    other = load_dataset("synthetic", num_train=200, val_size=50, seed=2)
    assert (len(ds.train), len(ds.val), len(ds.test)) == (150, 50, 256)
    assert torch.equal(ds.val.x, again.val.x) and not torch.equal(ds.val.x, other.val.x)
    rows = {tuple(r.tolist()) for r in full.train.x}
    train_rows = {tuple(r.tolist()) for r in ds.train.x}
    val_rows = {tuple(r.tolist()) for r in ds.val.x}
    assert train_rows | val_rows == rows and not train_rows & val_rows
    assert torch.equal(ds.test.x, full.test.x)  # the test split is never touched
    small = load_dataset("synthetic", num_train=200, val_size=50, subset=20, seed=1)
    large = load_dataset("synthetic", num_train=200, val_size=50, subset=60, seed=1)
    assert torch.equal(small.val.x, ds.val.x)  # val does not depend on subset
    assert {tuple(r.tolist()) for r in small.train.x} <= {tuple(r.tolist()) for r in large.train.x}
    assert len(small.train) == 20 and small.meta["subset"] == 20


def test_bad_split_arguments():
    with pytest.raises(ValueError, match=r"val_size must be an integer in \[0, 100\).*got 100"):
        load_dataset("synthetic", num_train=100, val_size=100)
    with pytest.raises(ValueError, match=r"subset must be an integer in \[1, 90\].*got 91"):
        load_dataset("synthetic", num_train=100, val_size=10, subset=91)
    with pytest.raises(ValueError, match=r"dtype must be a floating"):
        load_dataset("synthetic", dtype=torch.int32)


def test_unknown_names_and_options():
    with pytest.raises(ValueError, match=r"unknown dataset 'cifar'.*cifar10, cifar100"):
        load_dataset("cifar")
    with pytest.raises(TypeError, match=r"'dims'.*allowed:.*num_train.*dim"):
        load_dataset("synthetic", dims=3)


def test_hyphenated_name(tmp_path, write_mnist):
    write_mnist(tmp_path, n_train=3, n_test=2)
    ds = load_dataset("fashion-mnist", root=tmp_path)
    assert ds.name == "fashion_mnist" and ds.classes[-1] == "Ankle boot"


def test_device_dtype_and_loader():
    ds = load_dataset("synthetic", num_train=64, dtype=torch.float64, device="cpu")
    assert ds.train.x.dtype == torch.float64 and ds.train.y.dtype == torch.int64
    assert ds.to(dtype=torch.float32).train.x.dtype == torch.float32
    batches_a = [y.tolist() for _, y in ds.train.loader(16, shuffle=True, seed=5)]
    batches_b = [y.tolist() for _, y in ds.train.loader(16, shuffle=True, seed=5)]
    assert batches_a == batches_b and len(batches_a) == 4
    assert len(ds.train.tensor_dataset()) == 64


def test_digits():
    ds = load_dataset("digits")
    assert (len(ds.train), len(ds.test)) == (1500, 297) and ds.input_shape == (1, 8, 8)
    assert 0.0 <= ds.train.x.min() and ds.train.x.max() == 1.0 and ds.train.y.max() == 9


def test_mnist1d_generated_offline_and_global_rng_untouched():
    random.seed(1)
    np.random.seed(1)
    torch.manual_seed(1)
    states = (random.getstate(), np.random.get_state()[1].copy(), torch.get_rng_state())
    ds = load_dataset("mnist1d")
    assert (len(ds.train), len(ds.test)) == (4000, 1000) and ds.input_shape == (40,) and ds.num_classes == 10
    assert random.getstate() == states[0] and np.array_equal(np.random.get_state()[1], states[1])
    assert torch.equal(torch.get_rng_state(), states[2])
    assert torch.equal(load_dataset("mnist1d").train.x, ds.train.x)


def test_default_roots_env_var_and_cwd(tmp_path, monkeypatch, write_mnist):
    write_mnist(tmp_path / "data" / "mnist", n_train=4, n_test=2)
    monkeypatch.setenv("SGDSCOPE_DATA", str(tmp_path / "data"))
    monkeypatch.chdir(tmp_path)
    assert len(load_dataset("mnist").train) == 4
    monkeypatch.delenv("SGDSCOPE_DATA")
    with pytest.raises(DataFormatError, match=r"mnist not found; looked in .*shared/data/mnist.*SGDSCOPE_DATA"):
        load_dataset("mnist")
    (tmp_path / "repo").mkdir()
    write_mnist(tmp_path / "shared" / "data" / "mnist", n_train=3, n_test=2)
    monkeypatch.chdir(tmp_path / "repo")  # ../shared/data relative to the working directory
    assert len(load_dataset("mnist").train) == 3
    with pytest.raises(DataFormatError, match=r"nowhere.*does not exist"):
        load_dataset("mnist", root=tmp_path / "nowhere")
