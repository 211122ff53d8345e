"""The word-index sequence datasets (IMDB, Reuters): reading and Keras' processing."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from . import _files, _pickle


def keras_files(name: str, title: str, data_hash: str,
                index_hash: str) -> tuple[_files.FileSpec, _files.FileSpec]:
    """The two files of a word-index dataset on Keras' mirror: `<name>.npz` (SHA-256
    `data_hash`) and `<name>_word_index.json` (MD5 `index_hash`, as Keras pins it)."""
    return (_files.on_keras_mirror(name, title, f"{name}.npz", data_hash),
            _files.on_keras_mirror(name, f"{title} word index", f"{name}_word_index.json",
                                   index_hash))


def read_sequences(path: Path, x_keys: tuple[str, ...], y_keys: tuple[str, ...]) -> dict[str, Any]:
    """Reads an `.npz` of object arrays of int lists (`x_keys`) and integer labels (`y_keys`).

    Every sequence must be a list of non-negative ints and every label array
    an integer array with one label per sequence; anything else raises
    `ValueError` naming the file.
    """
    arrays = _pickle.read_npz(path, x_keys + y_keys)
    for key in x_keys:
        x = arrays[key]
        if x.ndim != 1 or x.dtype != object:
            raise ValueError(f"{path}[{key!r}]: expected a 1-D object array of sequences")
        for i, seq in enumerate(x):
            if not isinstance(seq, list) or not all(
                type(w) is int and w >= 0 for w in seq
            ):
                raise ValueError(
                    f"{path}[{key!r}]: item {i} is not a list of non-negative ints"
                )
    for key in y_keys:
        y = arrays[key]
        if y.ndim != 1 or y.dtype.kind not in "iu":
            raise ValueError(f"{path}[{key!r}]: expected a 1-D integer array of labels")
    return arrays


def read_pairs(path: Path, pairs: tuple[tuple[str, str], ...]) -> list[tuple[Any, Any]]:
    """The `(sequences, labels)` arrays under each `(x key, y key)` (see `read_sequences`).

    A pair of different lengths raises `ValueError` naming the file.
    """
    arrays = read_sequences(path, tuple(x for x, _ in pairs), tuple(y for _, y in pairs))
    out = []
    for x_key, y_key in pairs:
        x, y = arrays[x_key], arrays[y_key]
        if len(x) != len(y):
            raise ValueError(f"{path}: {len(x)} {x_key} sequences but {len(y)} {y_key} labels")
        out.append((x, y))
    return out


def shuffled(rng: np.random.RandomState, x: Any, labels: Any) -> tuple[Any, Any]:
    """`x` and `labels` in the order of one `rng.shuffle` of their indices, as Keras."""
    indices = np.arange(len(x))
    rng.shuffle(indices)
    return x[indices], labels[indices]


def prepare(xs: Any, labels: Any, start_char: int | None, index_from: int,
            maxlen: int | None) -> tuple[list, Any]:
    """Keras' first steps: `shift` every sequence, then, with `maxlen`, `remove_long_seq`."""
    xs = shift(xs, start_char, index_from)
    if maxlen:
        xs, labels = remove_long_seq(maxlen, xs, labels)
    return xs, labels


def split(xs: list, labels: Any, idx: int):
    """`(x_train, y_train), (x_test, y_test)`: object arrays of the sequences before `idx` and
    from `idx` on, and arrays of their labels."""
    return ((np.array(xs[:idx], dtype="object"), np.array(labels[:idx])),
            (np.array(xs[idx:], dtype="object"), np.array(labels[idx:])))


def remove_long_seq(maxlen: int, seq: list, label: Any) -> tuple[list, list]:
    """Keeps the sequences shorter than `maxlen` (and their labels), as Keras."""
    new_seq, new_label = [], []
    for x, y in zip(seq, label):
        if len(x) < maxlen:
            new_seq.append(x)
            new_label.append(y)
    return new_seq, new_label


def shift(xs: Any, start_char: int | None, index_from: int) -> list[list[int]]:
    """Adds `index_from` to every word and puts `start_char` first, as Keras."""
    if start_char is not None:
        return [[start_char] + [w + index_from for w in x] for x in xs]
    if index_from:
        return [[w + index_from for w in x] for x in xs]
    return [[w for w in x] for x in xs]


def limit_vocabulary(
    xs: list[list[int]], num_words: int | None, skip_top: int, oov_char: int | None
) -> list[list[int]]:
    """Words outside `skip_top <= w < num_words` become `oov_char` (or are dropped), as Keras.

    Without `num_words`, Keras' bound is the largest index present, which
    itself is then out of range (Keras' behaviour, kept).
    """
    if not num_words:
        num_words = max(max(x) for x in xs)
    if oov_char is not None:
        return [[w if skip_top <= w < num_words else oov_char for w in x] for x in xs]
    return [[w for w in x if skip_top <= w < num_words] for x in xs]


def load_word_index(spec: _files.FileSpec, path: str | os.PathLike[str] | None) -> dict[str, int]:
    """Reads a word index JSON file: a dict of word -> positive int."""
    where = _files.locate(spec, path)
    try:
        with open(where, encoding="utf-8") as f:
            index = json.load(f)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ValueError(f"{where}: not a JSON word index ({exc})") from None
    if not isinstance(index, dict) or not all(
        isinstance(k, str) and type(v) is int for k, v in index.items()
    ):
        raise ValueError(f"{where}: expected a JSON object mapping words to integers")
    return index
