"""IMDB movie reviews (Maas et al. 2011) from the ``aclImdb/`` tree, tokenised to fixed length.

Layout: ``aclImdb/{train,test}/{pos,neg}/<id>_<rating>.txt`` (``unsup/`` and other files
ignored), as a folder or the original ``aclImdb_v1.tar.gz`` read member by member.

Tokenisation (Break-Even App. D: vocabulary 20,000, length 80): lowercase, ``<br />`` replaced
by a space, tokens are the regex ``\\w+(?:'\\w+)*`` (words with inner apostrophes). The
``num_words`` most frequent training tokens get ids ``2 .. num_words + 1`` (ties broken
alphabetically); 0 is padding, 1 out-of-vocabulary. Sequences are padded and truncated on the
left (Keras' ``pad_sequences`` default ``"pre"``: the last ``maxlen`` tokens are kept, so an
LSTM's final state sees the end of the review); ``side="post"`` keeps the first ones and pads
on the right. Reviews are ordered neg then pos, by numeric id; labels pos = 1, neg = 0.
Tokenised arrays and the vocabulary are cached.
"""

from __future__ import annotations

import os
import re
from collections import Counter
from collections.abc import Iterator
from pathlib import Path, PurePosixPath

import numpy as np
from tqdm import tqdm

from ._archive import iter_tar_files
from ._cache import cached
from ._errors import _choice, _format_error, _reading

PAD_ID, OOV_ID = 0, 1
LABELS = ("neg", "pos")
LAYOUT = "the aclImdb/ tree: aclImdb/{train,test}/{pos,neg}/<id>_<rating>.txt"
FORMATS = "the aclImdb folder or its .tar.gz archive (aclImdb_v1.tar.gz)"
_TOKEN = re.compile(r"\w+(?:'\w+)*")
_FILE = re.compile(r"^(\d+)_(\d+)\.txt$")
_VERSION = "imdb-v1"


def tokenize(text: str) -> list[str]:
    """Lowercased word tokens of a review, ``<br />`` tags removed."""
    return _TOKEN.findall(text.lower().replace("<br />", " "))


def _parse(relpath: str) -> tuple[str, int, int] | None:
    parts = PurePosixPath(relpath).parts
    if len(parts) < 3 or parts[-3] not in ("train", "test") or parts[-2] not in LABELS:
        return None
    m = _FILE.match(parts[-1])
    return (parts[-3], LABELS.index(parts[-2]), int(m.group(1))) if m else None


def _iter_reviews(path: Path) -> Iterator[tuple[tuple[str, int, int], str]]:
    if path.is_file():
        for name, data in iter_tar_files(path, lambda name: _parse(name) is not None):
            yield _parse(name), data.decode("utf-8")
        return
    for split in ("train", "test"):
        for label in LABELS:
            folder = path / split / label
            if folder.is_dir():
                for f in folder.iterdir():
                    key = _parse(f"{split}/{label}/{f.name}")
                    if key is not None:
                        yield key, f.read_text(encoding="utf-8")


def encode(tokens: list[str], vocab: dict[str, int], maxlen: int, side: str = "pre") -> np.ndarray:
    """Token ids (int32, length ``maxlen``), padded with 0 and truncated on ``side``."""
    ids = [vocab.get(t, OOV_ID) for t in tokens]
    ids = ids[-maxlen:] if side == "pre" else ids[:maxlen]
    out = np.full(maxlen, PAD_ID, dtype=np.int32)
    if ids:
        if side == "pre":
            out[maxlen - len(ids) :] = ids
        else:
            out[: len(ids)] = ids
    return out


def _tokenise_tree(path: Path, num_words: int, maxlen: int, side: str, every: int = 1) -> tuple[dict[str, np.ndarray], dict]:
    """Tokenise the tree; ``every > 1`` keeps only every ``every``-th review of the stream (tests)."""
    docs: list[tuple[tuple[str, int, int], list[str]]] = []
    with _reading(path, LAYOUT, FORMATS):
        for i, (key, text) in enumerate(tqdm(_iter_reviews(path), desc=f"tokenising {path.name}", unit="review", disable=None)):
            if i % every == 0:
                docs.append((key, tokenize(text)))
    docs.sort(key=lambda d: d[0])
    counts: dict[str, int] = {s: sum(1 for k, _ in docs if k[0] == s) for s in ("train", "test")}
    if not counts["train"] or not counts["test"]:
        raise _format_error(path, f"has {counts['train']} train and {counts['test']} test reviews", LAYOUT, FORMATS)
    freq = Counter(t for k, toks in docs if k[0] == "train" for t in toks)
    words = sorted(freq, key=lambda w: (-freq[w], w))[:num_words]
    vocab = {w: i + 2 for i, w in enumerate(words)}
    arrays = {}
    for split in ("train", "test"):
        sel = [(k, toks) for k, toks in docs if k[0] == split]
        arrays[f"x_{split}"] = np.stack([encode(toks, vocab, maxlen, side) for _, toks in sel])
        arrays[f"y_{split}"] = np.array([k[1] for k, _ in sel], dtype=np.int64)
    arrays["vocab"] = np.array(words)
    return arrays, {"counts": counts}


def read_imdb(
    path: str | os.PathLike, *, num_words: int = 20_000, maxlen: int = 80, side: str = "pre", cache_dir: str | os.PathLike | None = None
) -> tuple[tuple, tuple, list[str]]:
    """``((x_train, y_train), (x_test, y_test), vocab)``: x int32 ``N x maxlen`` token ids, y int64.

    ``path``: the ``aclImdb`` folder, a folder containing it, or the ``.tar.gz``. ``vocab[i]``
    is the word with id ``i + 2``.
    """
    _choice("padding side", side, ("pre", "post"))
    for what, v in (("num_words", num_words), ("maxlen", maxlen)):
        if int(v) != v or v < 1:
            raise ValueError(f"imdb: {what} must be a positive integer, got {v!r}")
    path = Path(path)
    if path.is_dir() and (path / "aclImdb").is_dir():
        path = path / "aclImdb"
    if not path.exists():
        raise _format_error(path, "does not exist", LAYOUT, FORMATS)
    params = {"num_words": int(num_words), "maxlen": int(maxlen), "side": side}
    arrays, _ = cached(_VERSION, path, params, lambda: _tokenise_tree(path, int(num_words), int(maxlen), side), cache_dir)
    return (arrays["x_train"], arrays["y_train"]), (arrays["x_test"], arrays["y_test"]), [str(w) for w in arrays["vocab"]]
