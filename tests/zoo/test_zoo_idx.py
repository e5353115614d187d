"""IDX reader (MNIST, Fashion-MNIST): files written here in the exact format, raw and gzipped."""

from __future__ import annotations

import gzip

import numpy as np
import pytest
import torch

from sgdscope.zoo import DataFormatError, channel_stats, load_dataset
from sgdscope.zoo.idx import read_idx


@pytest.mark.parametrize("dtype", ["u1", "i1", ">i2", ">i4", ">f4", ">f8"])
@pytest.mark.parametrize("gz", [False, True])
def test_read_idx_roundtrip(tmp_path, idx, dtype, gz):
    a = (np.arange(24).reshape(2, 3, 4) - 5).astype(dtype)
    if dtype == "u1":
        a = np.arange(24, dtype=np.uint8).reshape(2, 3, 4)
    path = idx.write(tmp_path / ("x.idx" + (".gz" if gz else "")), idx.bytes(a))
    out = read_idx(path, ndim=3)
    assert out.dtype.isnative and np.array_equal(out, a.astype(out.dtype))


@pytest.mark.parametrize("gz", [False, True])
def test_load_mnist_from_written_files(tmp_path, write_mnist, gz):
    arrays = write_mnist(tmp_path / "MNIST" / "raw", gz=gz)
    ds = load_dataset("mnist", root=tmp_path)  # finds torchvision's MNIST/raw/
    assert ds.train.x.shape == (12, 1, 28, 28) and ds.test.x.shape == (5, 1, 28, 28)
    assert torch.equal(ds.train.x[:, 0], torch.from_numpy(arrays["train-images-idx3-ubyte"]).float() / 255)
    assert torch.equal(ds.test.y, torch.from_numpy(arrays["t10k-labels-idx1-ubyte"]).long())
    assert ds.num_classes == 10 and ds.input_shape == (1, 28, 28)


def test_truncated_files_are_detected(tmp_path, idx):
    full = idx.bytes(np.zeros((3, 28, 28), dtype=np.uint8))
    with pytest.raises(DataFormatError, match=r"cut\.idx.*truncated.*2356 bytes.*needs exactly 2368"):
        read_idx(idx.write(tmp_path / "cut.idx", full[:-12]))
    with pytest.raises(DataFormatError, match=r"header"):
        read_idx(idx.write(tmp_path / "head.idx", full[:9]))
    with pytest.raises(DataFormatError, match=r"trailing bytes"):
        read_idx(idx.write(tmp_path / "long.idx", full + b"\0"))
    # a gzip stream cut short, and a whole gzip of a cut file
    (tmp_path / "cut.gz").write_bytes(gzip.compress(full)[:-20])
    with pytest.raises(DataFormatError, match=r"cut\.gz.*truncated or corrupt gzip"):
        read_idx(tmp_path / "cut.gz")
    with pytest.raises(DataFormatError, match=r"truncated"):
        read_idx(idx.write(tmp_path / "cutdata.gz", full[:-1]))


def test_malformed_and_missing_files(tmp_path, idx, write_mnist):
    with pytest.raises(DataFormatError, match=r"bad\.idx.*magic bytes 08030000"):
        read_idx(idx.write(tmp_path / "bad.idx", b"\x08\x03\x00\x00" + b"\0" * 40))
    with pytest.raises(DataFormatError, match=r"has 1 dimensions.*3 dimension"):
        read_idx(idx.write(tmp_path / "labels.idx", idx.bytes(np.zeros(4, dtype=np.uint8))), ndim=3)
    with pytest.raises(DataFormatError, match=r"nope\.idx.*does not exist"):
        read_idx(tmp_path / "nope.idx")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataFormatError, match=r"holds no IDX files.*train-images-idx3-ubyte.*Supported formats"):
        load_dataset("mnist", root=tmp_path / "empty")
    folder = tmp_path / "partial"
    write_mnist(folder)
    (folder / "t10k-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(DataFormatError, match=r"t10k-labels-idx1-ubyte.*missing"):
        load_dataset("mnist", root=folder)


def test_inconsistent_counts_and_labels(tmp_path, idx, write_mnist):
    arrays = write_mnist(tmp_path, gz=False)
    idx.write(tmp_path / "train-labels-idx1-ubyte", idx.bytes(arrays["train-labels-idx1-ubyte"][:-1]))
    with pytest.raises(DataFormatError, match=r"12 images but .* 11 labels"):
        load_dataset("mnist", root=tmp_path)
    idx.write(tmp_path / "train-labels-idx1-ubyte", idx.bytes(np.full(12, 10, dtype=np.uint8)))
    with pytest.raises(DataFormatError, match=r"label 10 outside \[0, 10\)"):
        load_dataset("mnist", root=tmp_path)


@pytest.mark.parametrize(
    "name, folder, mean, std",
    [("mnist", "mnist", 0.1307, 0.3081), ("fashion_mnist", "fashion-mnist", 0.2860, 0.3530)],
)
def test_real_mnist_and_fashion(shared_data, name, folder, mean, std):
    root = shared_data(folder)
    ds = load_dataset(name, root=root)
    assert (len(ds.train), len(ds.test)) == (60_000, 10_000)
    assert ds.train.x.shape[1:] == (1, 28, 28) and ds.train.x.dtype == torch.float32
    assert ds.train.y.min() == 0 and ds.train.y.max() == 9
    assert torch.equal(torch.bincount(ds.test.y), torch.bincount(ds.test.y, minlength=10))
    m, s = channel_stats(ds.train.x)
    assert abs(m.item() - mean) < 1e-3 and abs(s.item() - std) < 1e-3
    if name == "fashion_mnist":
        assert torch.equal(torch.bincount(ds.train.y), torch.full((10,), 6000))
        assert ds.classes[0] == "T-shirt/top"
