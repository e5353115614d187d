"""CIFAR-10/100 python pickles (written here as torchvision's download has them) and real CIFAR-10 JPEGs."""

from __future__ import annotations

import io
import os
import pickle
import struct
import tarfile

import numpy as np
import pytest
import torch

from sgdscope.zoo import DataFormatError, channel_stats, imagefolder, load_dataset
from sgdscope.zoo._cache import lookup


class Py2Pickler(pickle._Pickler):
    """Pickles bytes as Python 2 ``str`` (BINSTRING) and names numpy's ``numpy.core`` module, as
    the CIFAR batches written by Python 2 (the files torchvision downloads) do."""

    dispatch = pickle._Pickler.dispatch.copy()

    def save_py2_str(self, obj):
        n = len(obj)
        self.write((pickle.SHORT_BINSTRING + bytes([n]) if n < 256 else pickle.BINSTRING + struct.pack("<i", n)) + obj)
        self.memoize(obj)

    dispatch[bytes] = save_py2_str

    def save_global(self, obj, name=None):
        module = obj.__module__.replace("numpy._core", "numpy.core")
        self.write(pickle.GLOBAL + f"{module}\n{name or obj.__name__}\n".encode())
        self.memoize(obj)


def py2_dumps(obj) -> bytes:
    buf = io.BytesIO()
    Py2Pickler(buf, protocol=2).dump(obj)
    return buf.getvalue()


def make_cifar_files(kind: str, n_per_batch: int = 6, seed: int = 0, dumps=py2_dumps) -> tuple[dict[str, bytes], dict]:
    """File name -> bytes of a tiny CIFAR-10 or CIFAR-100 pickle set, and the arrays in it."""
    rng = np.random.default_rng(seed)
    files, truth = {}, {"x": [], "y": [], "coarse": []}

    def batch(name, label, n, test):
        x = rng.integers(0, 256, (n, 3072), dtype=np.uint8)
        y = rng.integers(0, 10 if kind == "cifar10" else 100, n).tolist()
        d = {b"batch_label": label, b"data": x, b"filenames": [b"img_%d.png" % i for i in range(n)]}
        if kind == "cifar10":
            d[b"labels"] = y
        else:
            coarse = [v // 5 for v in y]
            d.update({b"fine_labels": y, b"coarse_labels": coarse})
            truth["coarse"].append(("test" if test else "train", coarse))
        files[name] = dumps(d)
        truth["x"].append(("test" if test else "train", x))
        truth["y"].append(("test" if test else "train", y))

    if kind == "cifar10":
        for i in range(1, 6):
            batch(f"data_batch_{i}", b"training batch %d of 5" % i, n_per_batch, False)
        batch("test_batch", b"testing batch 1 of 1", n_per_batch, True)
        names = [b"airplane", b"automobile", b"bird", b"cat", b"deer", b"dog", b"frog", b"horse", b"ship", b"truck"]
        files["batches.meta"] = dumps({b"num_cases_per_batch": n_per_batch, b"label_names": names, b"num_vis": 3072})
    else:
        batch("train", b"training batch 1 of 1", 3 * n_per_batch, False)
        batch("test", b"testing batch 1 of 1", n_per_batch, True)
        fine = [b"class%02d" % i for i in range(100)]
        coarse = [b"super%02d" % i for i in range(20)]
        files["meta"] = dumps({b"fine_label_names": fine, b"coarse_label_names": coarse})
    return files, truth


def write_folder(root, top, files):
    folder = root / top
    folder.mkdir(parents=True)
    for name, data in files.items():
        (folder / name).write_bytes(data)
    return folder


def write_tar(path, top, files):
    with tarfile.open(path, "w:gz") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(f"{top}/{name}")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


def _expected(truth, split, key="y"):
    x = np.concatenate([a for s, a in truth["x"] if s == split]).reshape(-1, 3, 32, 32)
    y = np.concatenate([np.asarray(a) for s, a in truth[key] if s == split])
    return torch.from_numpy(x).float() / 255, torch.from_numpy(y).long()


@pytest.mark.parametrize("dumps", [py2_dumps, lambda o: pickle.dumps(o, protocol=2), pickle.dumps], ids=["py2", "py3-proto2", "py3"])
@pytest.mark.parametrize("layout", ["parent", "folder", "tarball", "tarball-in-folder"])
def test_cifar10_pickles(tmp_path, dumps, layout):
    files, truth = make_cifar_files("cifar10", dumps=dumps)
    if layout in ("parent", "folder"):
        folder = write_folder(tmp_path, "cifar-10-batches-py", files)
        root = tmp_path if layout == "parent" else folder
    else:
        (tmp_path / "d").mkdir()
        tar = write_tar(tmp_path / "d" / "cifar-10-python.tar.gz", "cifar-10-batches-py", files)
        root = tar if layout == "tarball" else tmp_path / "d"
    ds = load_dataset("cifar10", root=root)
    x, y = _expected(truth, "train")
    assert torch.equal(ds.train.x, x) and torch.equal(ds.train.y, y)
    x, y = _expected(truth, "test")
    assert torch.equal(ds.test.x, x) and torch.equal(ds.test.y, y)
    assert ds.classes[0] == "airplane" and ds.num_classes == 10 and ds.input_shape == (3, 32, 32)
    assert ds.meta["format"] == "pickle"


def test_cifar100_fine_and_coarse(tmp_path):
    files, truth = make_cifar_files("cifar100")
    write_folder(tmp_path, "cifar-100-python", files)
    fine = load_dataset("cifar100", root=tmp_path)
    x, y = _expected(truth, "train")
    assert torch.equal(fine.train.x, x) and torch.equal(fine.train.y, y)
    assert fine.num_classes == 100 and len(fine.classes) == 100
    coarse = load_dataset("cifar100", root=tmp_path, coarse=True)
    assert torch.equal(coarse.test.y, _expected(truth, "test", "coarse")[1])
    assert coarse.num_classes == 20 and coarse.classes[0] == "super00"


def test_missing_truncated_and_malformed_pickles(tmp_path):
    files, _ = make_cifar_files("cifar10")
    folder = write_folder(tmp_path, "cifar-10-batches-py", files)
    (folder / "test_batch").unlink()
    with pytest.raises(DataFormatError, match=r"no file 'test_batch'.*data_batch_1.*batches\.meta.*Supported formats"):
        load_dataset("cifar10", root=tmp_path)
    (folder / "test_batch").write_bytes(files["test_batch"][: len(files["test_batch"]) // 2])
    with pytest.raises(DataFormatError, match=r"test_batch: cannot be unpickled"):
        load_dataset("cifar10", root=tmp_path)
    bad = dict(files)
    bad["test_batch"] = py2_dumps({b"data": np.zeros((2, 100), np.uint8), b"labels": [0, 1]})
    folder2 = write_folder(tmp_path / "b", "cifar-10-batches-py", bad)
    with pytest.raises(DataFormatError, match=r"b'data' is uint8 with shape \(2, 100\).*N x 3072"):
        load_dataset("cifar10", root=folder2)
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataFormatError, match=r"neither CIFAR pickles nor an image-folder tree"):
        load_dataset("cifar10", root=tmp_path / "empty")


def test_truncated_cifar_tarball(tmp_path):
    files, _ = make_cifar_files("cifar10")
    tar = write_tar(tmp_path / "cifar-10-python.tar.gz", "cifar-10-batches-py", files)
    tar.write_bytes(tar.read_bytes()[:-5])
    with pytest.raises(DataFormatError, match=r"cifar-10-python\.tar\.gz: is truncated or corrupt"):
        load_dataset("cifar10", root=tar)


class _Evil:
    def __reduce__(self):
        return (os.system, ("echo pwned",))


def test_pickles_cannot_run_code(tmp_path):
    files, _ = make_cifar_files("cifar10")
    files["batches.meta"] = pickle.dumps({b"label_names": _Evil()}, protocol=2)
    write_folder(tmp_path, "cifar-10-batches-py", files)
    with pytest.raises(DataFormatError, match=r"not allowed"):
        load_dataset("cifar10", root=tmp_path)


NAMES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
MEANS = torch.tensor([0.4913, 0.4821, 0.4465])  # ../shared/data/README.md


def test_real_cifar10_jpegs(shared_data, user_cache):
    """All 60,000 images where the user's cache already holds them (``load_dataset("cifar10")``
    run once); otherwise every 10th image of the tarball, decoded here (the full decode takes
    ~10 s on 2 cores, too long for the test suite)."""
    tar = shared_data("cifar10-jpg") / "cifar10-jpg.tar.gz"
    if lookup(imagefolder._VERSION, tar, {"mode": "RGB"}, user_cache) is not None:
        ds = load_dataset("cifar10", root=tar.parent, cache_dir=user_cache)
        assert ds.meta["format"] == "imagefolder" and ds.classes == NAMES and ds.input_shape == (3, 32, 32)
        x, y, x_test, y_test, scale = ds.train.x, ds.train.y, ds.test.x, ds.test.y, 1
    else:
        arrays, meta = imagefolder._decode_tree(tar, "RGB", every=10)
        assert tuple(meta["classes"]) == NAMES
        x, y = torch.from_numpy(arrays["x_train"]).float() / 255, torch.from_numpy(arrays["y_train"])
        x_test, y_test, scale = torch.from_numpy(arrays["x_test"]), torch.from_numpy(arrays["y_test"]), 10
    assert x.shape == (50_000 // scale, 3, 32, 32) and x_test.shape == (10_000 // scale, 3, 32, 32)
    assert torch.equal(torch.bincount(y), torch.full((10,), 5000 // scale))
    assert torch.equal(torch.bincount(y_test), torch.full((10,), 1000 // scale))
    assert 0.0 <= x.min() and x.max() <= 1.0
    mean, std = channel_stats(x)
    assert torch.allclose(mean, MEANS, atol=0.01) and torch.allclose(std, torch.tensor([0.247, 0.243, 0.261]), atol=0.01)
