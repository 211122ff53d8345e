"""IMDB movie review sentiment classification dataset.

Same arrays as `keras.datasets.imdb.load_data()`. Keras' `imdb.npz` stores
the reviews as NumPy object arrays (pickled lists of ints); pycnn reads
them with a strict parser that accepts only lists of ints, never unpickling.
"""

from __future__ import annotations

import os

import numpy as np

from . import _files, _sequences

_SPEC, _WORD_INDEX = _sequences.keras_files(
    "imdb", "IMDB", "69664113be75683a8fe16e3ed0ab59fda8886cb3cd7ada244f7d9544e4676b9f",
    "bfafd718b763782e994055a2d397834f")


def load_data(
    path: str | os.PathLike[str] | None = "imdb.npz",
    num_words: int | None = None,
    skip_top: int = 0,
    maxlen: int | None = None,
    seed: int = 113,
    start_char: int | None = 1,
    oov_char: int | None = 2,
    index_from: int = 3,
    **kwargs,
):
    """Loads the [IMDB dataset](https://ai.stanford.edu/~amaas/data/sentiment/).

    This is a dataset of 25,000 movies reviews from IMDB, labeled by sentiment
    (positive/negative). Reviews have been preprocessed, and each review is
    encoded as a list of word indexes (integers). Words are indexed by
    overall frequency in the dataset, so that for instance the integer "3"
    encodes the 3rd most frequent word in the data. "0" does not stand for a
    specific word, but instead is used to encode the pad token.

    Args:
        path: where the data is: `"imdb.npz"` (the default) names the file
            in the caches (`~/.cache/pycnn/datasets/imdb/`, then
            `~/.keras/datasets/`), downloaded there from Keras' mirror when
            missing; a path to an existing `imdb.npz` (or its directory) is
            read directly. `$PYCNN_DATA_DIR/imdb/imdb.npz` is also searched.
        num_words: integer or None. Only the `num_words` most frequent words
            are kept; any less frequent word appears as `oov_char`.
        skip_top: skip the top N most frequently occurring words; they appear
            as `oov_char`. Defaults to `0`.
        maxlen: int or None. Sequences of `maxlen` words or more are dropped
            (as Keras: the filter keeps `len(x) < maxlen`).
        seed: int. Seed for reproducible data shuffling.
        start_char: int. The start of a sequence is marked with this
            character. Defaults to `1`.
        oov_char: int. The out-of-vocabulary character. Defaults to `2`.
        index_from: int. Index actual words with this index and higher.

    Returns:
        Tuple of NumPy arrays: `(x_train, y_train), (x_test, y_test)`.

    **`x_train`, `x_test`**: object arrays of sequences, which are lists of
      indexes (integers).

    **`y_train`, `y_test`**: integer labels (1 or 0).
    """
    if kwargs:
        raise TypeError(f"Unrecognized keyword arguments: {sorted(kwargs)}")
    where = _files.locate(_SPEC, path)
    rng = np.random.RandomState(seed)
    pairs = _sequences.read_pairs(where, (("x_train", "y_train"), ("x_test", "y_test")))
    (x_train, labels_train), (x_test, labels_test) = [
        _sequences.prepare(*_sequences.shuffled(rng, x, y), start_char, index_from, maxlen)
        for x, y in pairs
    ]
    if maxlen and (not x_train or not x_test):
        raise ValueError(
            "After filtering for sequences shorter than maxlen="
            f"{str(maxlen)}, no sequence was kept. Increase maxlen."
        )
    xs = _sequences.limit_vocabulary(x_train + x_test, num_words, skip_top, oov_char)
    labels = np.concatenate([labels_train, labels_test])
    return _sequences.split(xs, labels, len(x_train))


def get_word_index(path: str | os.PathLike[str] | None = "imdb_word_index.json") -> dict[str, int]:
    """Retrieves a dict mapping words to their index in the IMDB dataset.

    Args:
        path: the JSON file, or its name in the caches (as `load_data`).

    Returns:
        The word index dictionary. Keys are word strings, values are their
        index (add `index_from` to match the sequences of `load_data`).
    """
    return _sequences.load_word_index(_WORD_INDEX, path)
