"""Image-folder trees (folder and tarball) written here with Pillow; the decode cache and its stamp."""

from __future__ import annotations

import os
import tarfile

import numpy as np
import pytest
import torch
from PIL import Image

from sgdscope.zoo import DataFormatError, imagefolder, load_dataset

CLASSES = ("cat", "dog", "zebra")


def write_tree(root, n_train=3, n_test=2, size=(5, 4), seed=0, ext="png"):
    """train/<class>/NNNN.png and test/<class>/NNNN.png; returns the expected arrays in reader order."""
    rng = np.random.default_rng(seed)
    expected = {"train": ([], []), "test": ([], [])}
    for split, n in (("train", n_train), ("test", n_test)):
        for label, cls in enumerate(CLASSES):
            (root / split / cls).mkdir(parents=True, exist_ok=True)
            for i in range(n):
                img = rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
                Image.fromarray(img).save(root / split / cls / f"{i:04d}.{ext}")
                expected[split][0].append(img.transpose(2, 0, 1))
                expected[split][1].append(label)
    return {s: (torch.from_numpy(np.stack(x)).float() / 255, torch.tensor(y)) for s, (x, y) in expected.items()}


def tar_tree(src, path):
    with tarfile.open(path, "w:gz") as tar:
        for split in ("train", "test"):
            tar.add(src / split, arcname=split)
    return path


def test_folder_tree_exact_pixels(tmp_path):
    expected = write_tree(tmp_path / "tree")
    ds = load_dataset("imagefolder", root=tmp_path / "tree", cache_dir=tmp_path / "cache")
    assert ds.classes == CLASSES and ds.num_classes == 3 and ds.input_shape == (3, 4, 5)
    assert torch.equal(ds.train.x, expected["train"][0]) and torch.equal(ds.train.y, expected["train"][1])
    assert torch.equal(ds.test.x, expected["test"][0]) and torch.equal(ds.test.y, expected["test"][1])


def test_tarball_equals_folder(tmp_path):
    expected = write_tree(tmp_path / "tree")
    tar = tar_tree(tmp_path / "tree", tmp_path / "imgs.tar.gz")
    ds = load_dataset("imagefolder", root=tar, cache_dir=tmp_path / "cache")
    assert torch.equal(ds.train.x, expected["train"][0]) and torch.equal(ds.test.y, expected["test"][1])
    with pytest.raises(DataFormatError, match=r"3 classes of \(3, 4, 5\) images.*10 classes of 3 x 32 x 32"):
        load_dataset("cifar10", root=tar, cache_dir=tmp_path / "cache")


def test_cifar10_as_a_tarball_of_jpegs(tmp_path):
    """The layout of ../shared/data/cifar10-jpg: a folder holding a tarball of train/<class>/NNNN.jpg."""
    names = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
    rng = np.random.default_rng(0)
    for split in ("train", "test"):
        for cls in names:
            (tmp_path / "tree" / split / cls).mkdir(parents=True)
            Image.fromarray(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)).save(tmp_path / "tree" / split / cls / "0000.jpg")
    (tmp_path / "cifar10-jpg").mkdir()
    tar_tree(tmp_path / "tree", tmp_path / "cifar10-jpg" / "cifar10-jpg.tar.gz")
    ds = load_dataset("cifar10", root=tmp_path / "cifar10-jpg", cache_dir=tmp_path / "cache")
    assert ds.meta["format"] == "imagefolder" and ds.classes == tuple(names) and ds.num_classes == 10
    assert ds.train.x.shape == (10, 3, 32, 32) and ds.train.y.tolist() == list(range(10))


def test_grey_mode_and_jpeg(tmp_path):
    write_tree(tmp_path / "tree", ext="jpg")
    ds = load_dataset("imagefolder", root=tmp_path / "tree", mode="L", cache_dir=tmp_path / "cache")
    assert ds.input_shape == (1, 4, 5) and len(ds.train) == 9


def test_cache_is_used_and_refreshed_when_the_source_changes(tmp_path, monkeypatch):
    write_tree(tmp_path / "tree")
    cache = tmp_path / "cache"
    first = load_dataset("imagefolder", root=tmp_path / "tree", cache_dir=cache)
    stamps = list(cache.rglob("stamp.json"))
    assert len(stamps) == 1 and str((tmp_path / "tree").resolve()) in stamps[0].read_text()
    calls = []
    real = imagefolder._decode_tree
    monkeypatch.setattr(imagefolder, "_decode_tree", lambda *a, **k: calls.append(1) or real(*a, **k))
    again = load_dataset("imagefolder", root=tmp_path / "tree", cache_dir=cache)
    assert calls == [] and torch.equal(again.train.x, first.train.x)
    # change one image (new size in bytes and mtime): decoded again, new pixels seen
    target = tmp_path / "tree" / "train" / "cat" / "0000.png"
    Image.fromarray(np.zeros((4, 5, 3), dtype=np.uint8)).save(target)
    os.utime(target, ns=(1, 1))
    changed = load_dataset("imagefolder", root=tmp_path / "tree", cache_dir=cache)
    assert calls == [1] and torch.count_nonzero(changed.train.x[0]) == 0


def test_env_var_sets_the_cache_location(tmp_path, monkeypatch):
    write_tree(tmp_path / "tree")
    monkeypatch.setenv("SGDSCOPE_CACHE", str(tmp_path / "envcache"))
    load_dataset("imagefolder", root=tmp_path / "tree")
    assert len(list((tmp_path / "envcache").rglob("stamp.json"))) == 1


def test_bad_trees(tmp_path):
    write_tree(tmp_path / "mixed")
    Image.fromarray(np.zeros((9, 9, 3), dtype=np.uint8)).save(tmp_path / "mixed" / "test" / "dog" / "9999.png")
    with pytest.raises(DataFormatError, match=r"9999\.png: has shape \(9, 9, 3\) but the first image had \(4, 5, 3\)"):
        load_dataset("imagefolder", root=tmp_path / "mixed", cache_dir=tmp_path / "c")
    write_tree(tmp_path / "corrupt")
    (tmp_path / "corrupt" / "train" / "dog" / "0001.png").write_bytes(b"not a png")
    with pytest.raises(DataFormatError, match=r"0001\.png: is not a readable image.*train/<class>/<image>"):
        load_dataset("imagefolder", root=tmp_path / "corrupt", cache_dir=tmp_path / "c")
    (tmp_path / "noclass" / "test" / "cat").mkdir(parents=True)
    with pytest.raises(DataFormatError, match=r"no images under train/<class>/"):
        load_dataset("imagefolder", root=tmp_path / "noclass", cache_dir=tmp_path / "c")
    with pytest.raises(DataFormatError, match=r"does not exist"):
        load_dataset("imagefolder", root=tmp_path / "missing")
    with pytest.raises(ValueError, match=r"needs root="):
        load_dataset("imagefolder")


@pytest.mark.parametrize("cut", ["half", "end-30", "end-2"])
@pytest.mark.parametrize("compression", ["gz", "none"])
def test_truncated_tarball_is_never_read_short(tmp_path, cut, compression):
    write_tree(tmp_path / "tree", n_train=20)
    tar = tmp_path / ("t.tar.gz" if compression == "gz" else "t.tar")
    with tarfile.open(tar, "w:gz" if compression == "gz" else "w") as t:
        for split in ("train", "test"):
            t.add(tmp_path / "tree" / split, arcname=split)
    data = tar.read_bytes()
    n = {"half": len(data) // 2, "end-30": len(data) - 30, "end-2": len(data) - 2}[cut]
    tar.write_bytes(data[:n])
    with pytest.raises(DataFormatError, match=r"t\.tar(\.gz)?: is truncated or corrupt"):
        load_dataset("imagefolder", root=tar, cache_dir=tmp_path / "c")


def test_unwritable_cache_warns_and_still_loads(tmp_path):
    expected = write_tree(tmp_path / "tree")
    blocker = tmp_path / "cache-is-a-file"
    blocker.write_text("")
    with pytest.warns(UserWarning, match=r"could not write the data cache.*SGDSCOPE_CACHE"):
        ds = load_dataset("imagefolder", root=tmp_path / "tree", cache_dir=blocker)
    assert torch.equal(ds.train.x, expected["train"][0])
