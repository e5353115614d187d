"""IMDB: an aclImdb tree written here (folder and tar.gz), tokenisation, vocabulary, padding, cache."""

from __future__ import annotations

import tarfile

import numpy as np
import pytest
import torch

from sgdscope.zoo import DataFormatError, imdb, load_dataset
from sgdscope.zoo._cache import lookup

REVIEWS = {
    ("train", "pos", "0_9.txt"): "A great movie.<br /><br />Great acting, GREAT plot!",
    ("train", "pos", "10_8.txt"): "Don't miss it: a great film.",
    ("train", "neg", "2_1.txt"): "Awful. The plot was awful and the acting worse.",
    ("train", "neg", "1_3.txt"): "Not a film to see.",
    ("test", "pos", "0_10.txt"): "Great great great zebra",
    ("test", "neg", "0_2.txt"): "awful",
}


def write_acl(root):
    base = root / "aclImdb"
    for (split, label, name), text in REVIEWS.items():
        (base / split / label).mkdir(parents=True, exist_ok=True)
        (base / split / label / name).write_text(text, encoding="utf-8")
    (base / "train" / "unsup").mkdir()
    (base / "train" / "unsup" / "0_0.txt").write_text("unlabelled words never counted " * 50)
    (base / "imdb.vocab").write_text("the\nand\n")
    (base / "train" / "urls_pos.txt").write_text("http://example.invalid\n")
    return base


def test_tokenize():
    assert imdb.tokenize("This movie<br /><br />was GREAT! Don't miss it.") == ["this", "movie", "was", "great", "don't", "miss", "it"]


def test_vocabulary_ids_order_and_padding(tmp_path):
    write_acl(tmp_path)
    ds = load_dataset("imdb", root=tmp_path, num_words=5, maxlen=6, cache_dir=tmp_path / "c")
    vocab = ds.meta["vocab"]
    # train counts: great 4, a 3, awful 2, film 2, plot 2, the 2, acting 2 ... ties alphabetical
    assert vocab == ["great", "a", "acting", "awful", "film"]
    ids = {w: i + 2 for i, w in enumerate(vocab)}
    assert len(ds.train) == 4 and torch.equal(ds.train.y, torch.tensor([0, 0, 1, 1]))  # neg then pos
    # neg/1_3 before neg/2_1 (numeric id); "not a film to see" -> pad, pad, OOV, a, film, OOV, OOV
    assert ds.train.x[0].tolist() == [0, 1, ids["a"], ids["film"], 1, 1]
    # neg/2_1 has 9 tokens: the last 6 (was awful and the acting worse) are kept ("pre" truncation)
    assert ds.train.x[1].tolist() == [1, ids["awful"], 1, 1, ids["acting"], 1]
    assert ds.test.x[0].tolist() == [0, 0, 0, 0, 0, ids["awful"]] and ds.test.y.tolist() == [0, 1]
    assert ds.test.x[1].tolist() == [0, 0, ids["great"], ids["great"], ids["great"], 1]
    assert ds.input_shape == (6,) and ds.num_classes == 2 and ds.classes == ("neg", "pos")
    assert ds.train.x.dtype == torch.int64


def test_post_padding_and_tarball(tmp_path):
    base = write_acl(tmp_path / "src")
    with tarfile.open(tmp_path / "aclImdb_v1.tar.gz", "w:gz") as tar:
        tar.add(base, arcname="aclImdb")
    from_tar = load_dataset("imdb", root=tmp_path / "aclImdb_v1.tar.gz", num_words=5, maxlen=6, side="post", cache_dir=tmp_path / "c")
    from_dir = load_dataset("imdb", root=base, num_words=5, maxlen=6, side="post", cache_dir=tmp_path / "c")
    assert torch.equal(from_tar.train.x, from_dir.train.x) and torch.equal(from_tar.test.y, from_dir.test.y)
    ids = {w: i + 2 for i, w in enumerate(from_dir.meta["vocab"])}
    # neg/2_1, first 6 tokens kept: awful the plot was awful and
    assert from_dir.train.x[1].tolist() == [ids["awful"], 1, 1, 1, ids["awful"], 1]
    assert from_dir.test.x[0].tolist() == [ids["awful"], 0, 0, 0, 0, 0]


def test_cache_is_used(tmp_path, monkeypatch):
    write_acl(tmp_path)
    load_dataset("imdb", root=tmp_path, maxlen=4, cache_dir=tmp_path / "c")
    monkeypatch.setattr(imdb, "_tokenise_tree", lambda *a, **k: pytest.fail("tokenised again despite a valid cache"))
    again = load_dataset("imdb", root=tmp_path, maxlen=4, cache_dir=tmp_path / "c")
    assert again.train.x.shape == (4, 4)


def test_bad_trees(tmp_path):
    base = write_acl(tmp_path / "a")
    for f in (base / "test" / "pos").iterdir():
        f.unlink()
    for f in (base / "test" / "neg").iterdir():
        f.unlink()
    with pytest.raises(DataFormatError, match=r"has 4 train and 0 test reviews.*aclImdb/\{train,test\}/\{pos,neg\}"):
        load_dataset("imdb", root=tmp_path / "a", cache_dir=tmp_path / "c")
    (base / "train" / "pos" / "5_7.txt").write_bytes(b"\xff\xfe bad utf-8 \xc3")
    (base / "test" / "pos" / "1_7.txt").write_text("fine")
    with pytest.raises(DataFormatError, match=r"truncated or corrupt \(UnicodeDecodeError"):
        load_dataset("imdb", root=base, cache_dir=tmp_path / "c")
    with pytest.raises(ValueError, match=r"unknown padding side 'left'.*pre, post"):
        load_dataset("imdb", root=base, side="left")
    with pytest.raises(TypeError, match=r"'vocab'.*allowed:.*num_words, maxlen, side"):
        load_dataset("imdb", root=base, vocab=10)


def test_real_imdb(shared_data, user_cache):
    """All 50,000 reviews where the user's cache already holds them (``load_dataset("imdb")``
    run once); otherwise every 10th review of the archive, tokenised here."""
    src = shared_data("imdb") / "aclImdb.tar.gz"
    if lookup(imdb._VERSION, src, {"num_words": 20_000, "maxlen": 80, "side": "pre"}, user_cache) is not None:
        ds = load_dataset("imdb", root=src.parent, cache_dir=user_cache)
        x, y, n_test, vocab, scale = ds.train.x.numpy(), ds.train.y.numpy(), len(ds.test), ds.meta["vocab"], 1
    else:
        arrays, meta = imdb._tokenise_tree(src, 20_000, 80, "pre", every=10)
        x, y, n_test, vocab, scale = arrays["x_train"], arrays["y_train"], len(arrays["y_test"]), list(arrays["vocab"]), 10
    assert x.shape == (25_000 // scale, 80) and n_test == 25_000 // scale
    assert x.max() == 20_001 and x.min() == 0
    assert np.array_equal(np.bincount(y), [12_500 // scale] * 2)
    assert len(vocab) == 20_000 and vocab[:4] == ["the", "and", "a", "of"]
