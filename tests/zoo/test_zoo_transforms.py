"""Transforms: normalisation statistics, grey 7x7, CIFAR augmentation under a generator, shuffled labels."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from sgdscope.zoo import (
    channel_stats,
    grey_resize,
    load_dataset,
    normalize,
    random_crop_flip,
    resize,
    shuffle_labels,
    shuffle_train_labels,
    standardize,
    to_grayscale,
)
from sgdscope.zoo.splits import Dataset, Split


def image_dataset(n=40, seed=0):
    g = torch.Generator().manual_seed(seed)
    split = lambda k: Split(torch.rand(k, 3, 14, 14, generator=g) * torch.tensor([1.0, 0.5, 2.0]).view(1, 3, 1, 1) + 3.0, torch.randint(10, (k,), generator=g))
    return Dataset("toy", split(n), split(0), split(10), 10, (3, 14, 14))


def test_channel_stats_match_numpy():
    x = torch.rand(50, 3, 4, 5) * 10 + 1000  # a large mean must not cancel
    mean, std = channel_stats(x, chunk=7)
    ref = x.double().numpy().transpose(1, 0, 2, 3).reshape(3, -1)
    assert np.allclose(mean.numpy(), ref.mean(1), rtol=1e-6) and np.allclose(std.numpy(), ref.std(1), rtol=1e-4)


def test_standardize_uses_training_statistics():
    ds = standardize(image_dataset())
    mean, std = channel_stats(ds.train.x)
    assert torch.allclose(mean, torch.zeros(3), atol=1e-5) and torch.allclose(std, torch.ones(3), atol=1e-5)
    assert len(ds.meta["normalization"]["mean"]) == 3
    raw = image_dataset()
    m, s = channel_stats(raw.train.x)
    assert torch.allclose(ds.test.x, (raw.test.x - m.view(1, 3, 1, 1)) / s.view(1, 3, 1, 1), atol=1e-5)
    given = standardize(raw, mean=[0.5, 0.5, 0.5], std=[2.0, 2.0, 2.0])
    assert torch.allclose(given.train.x, (raw.train.x - 0.5) / 2)
    with pytest.raises(ValueError, match=r"std has 2 values, expected 1 or 3"):
        normalize(raw.train.x, [0.0, 0.0, 0.0], [1.0, 1.0])
    with pytest.raises(ValueError, match=r"std must be positive"):
        normalize(raw.train.x, 0.0, 0.0)


def test_grayscale_matches_pillow_and_area_resize_is_block_mean():
    img = np.random.default_rng(0).integers(0, 256, (8, 8, 3), dtype=np.uint8)
    x = torch.from_numpy(img).permute(2, 0, 1)[None].double()
    grey = to_grayscale(x)[0, 0].numpy()
    pil = np.asarray(Image.fromarray(img).convert("L"), dtype=np.float64)
    assert np.abs(grey - pil).max() <= 1.0  # PIL rounds to integers
    small = resize(x, 2)
    assert small.shape == (1, 3, 2, 2)
    assert torch.allclose(small[0, :, 0, 1], x[0, :, :4, 4:].mean(dim=(1, 2)))


def test_grey_resize_dataset_for_the_70_unit_mlp():
    ds = standardize(grey_resize(image_dataset(), 7))
    assert ds.input_shape == (1, 7, 7) and ds.test.x.shape == (10, 1, 7, 7)
    assert torch.allclose(channel_stats(ds.train.x)[0], torch.zeros(1), atol=1e-5)


def test_random_crop_flip_is_deterministic_and_correct():
    x = torch.arange(2 * 3 * 6 * 6, dtype=torch.float32).reshape(2, 3, 6, 6)
    a = random_crop_flip(x, torch.Generator().manual_seed(0))
    b = random_crop_flip(x, torch.Generator().manual_seed(0))
    c = random_crop_flip(x, torch.Generator().manual_seed(1))
    assert a.shape == x.shape and torch.equal(a, b) and not torch.equal(a, c)
    # reproduce the draws: each output is a window of the zero-padded image, maybe mirrored
    g = torch.Generator().manual_seed(0)
    oy, ox = torch.randint(0, 9, (2,), generator=g), torch.randint(0, 9, (2,), generator=g)
    flip = torch.rand(2, generator=g) < 0.5
    padded = torch.nn.functional.pad(x, (4, 4, 4, 4))
    for i in range(2):
        window = padded[i, :, oy[i] : oy[i] + 6, ox[i] : ox[i] + 6]
        assert torch.equal(a[i], window.flip(-1) if flip[i] else window)
    no_pad = random_crop_flip(x, torch.Generator().manual_seed(3), padding=0, flip=False)
    assert torch.equal(no_pad, x)


def test_random_crop_flip_flips_about_half():
    x = torch.arange(4.0).reshape(1, 1, 1, 4).expand(2000, 1, 1, 4)
    out = random_crop_flip(x, torch.Generator().manual_seed(0), padding=0)
    flipped = (out[:, 0, 0, 0] == 3).float().mean()
    assert 0.45 < flipped < 0.55


@pytest.mark.parametrize("mode", ["permute", "random"])
def test_shuffle_labels(mode):
    y = torch.arange(1000) % 10
    new, mask = shuffle_labels(y, 0.3, seed=0, num_classes=10, mode=mode)
    again, mask2 = shuffle_labels(y, 0.3, seed=0, num_classes=10, mode=mode)
    assert torch.equal(new, again) and torch.equal(mask, mask2)
    assert mask.sum() == 300 and torch.equal(new[~mask], y[~mask])
    assert torch.equal(y, torch.arange(1000) % 10)  # input untouched
    changed = (new[mask] != y[mask]).float().mean()
    assert 0.8 < changed < 0.97  # ~9/10 of the chosen labels move (some land where they were)
    if mode == "permute":
        assert torch.equal(torch.bincount(new), torch.bincount(y))
    assert not torch.equal(shuffle_labels(y, 0.3, seed=1, mode=mode)[1], mask)
    with pytest.raises(ValueError, match=r"fraction must be in \[0, 1\]"):
        shuffle_labels(y, 1.5)
    with pytest.raises(ValueError, match=r"unknown shuffle mode 'swap'"):
        shuffle_labels(y, 0.5, mode="swap")


def test_shuffle_train_labels_on_a_dataset():
    ds = load_dataset("synthetic", num_train=300, val_size=30)
    noisy = shuffle_train_labels(ds, 0.2, seed=4)
    assert noisy.meta["shuffled_mask"].sum() == 54
    assert torch.equal(noisy.val.y, ds.val.y) and torch.equal(noisy.test.y, ds.test.y)
    assert torch.equal(noisy.train.x, ds.train.x)
