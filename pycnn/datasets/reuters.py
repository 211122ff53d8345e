"""Reuters newswire topic classification dataset.

Same arrays as `keras.datasets.reuters.load_data()`. Keras' `reuters.npz`
stores the newswires as NumPy object arrays (pickled lists of ints); pycnn
reads them with a strict parser that accepts only lists of ints, never
unpickling.
"""

from __future__ import annotations

import os

import numpy as np

from . import _files, _sequences

_SPEC, _WORD_INDEX = _sequences.keras_files(
    "reuters", "Reuters", "d6586e694ee56d7a4e65172e12b3e987c03096cb01eab99753921ef915959916",
    "4d44cc38712099c9e383dc6e5f11a921")

_LABEL_NAMES = (
    "cocoa", "grain", "veg-oil", "earn", "acq", "wheat", "copper", "housing", "money-supply",
    "coffee", "sugar", "trade", "reserves", "ship", "cotton", "carcass", "crude", "nat-gas",
    "cpi", "money-fx", "interest", "gnp", "meal-feed", "alum", "oilseed", "gold", "tin",
    "strategic-metal", "livestock", "retail", "ipi", "iron-steel", "rubber", "heat", "jobs",
    "lei", "bop", "zinc", "orange", "pet-chem", "dlr", "gas", "silver", "wpi", "hog", "lead",
)


def load_data(
    path: str | os.PathLike[str] | None = "reuters.npz",
    num_words: int | None = None,
    skip_top: int = 0,
    maxlen: int | None = None,
    test_split: float = 0.2,
    seed: int = 113,
    start_char: int | None = 1,
    oov_char: int | None = 2,
    index_from: int = 3,
):
    """Loads the Reuters newswire classification dataset.

    This is a dataset of 11,228 newswires from Reuters, labeled over 46
    topics. Each newswire is encoded as a list of word indexes (integers),
    words indexed by overall frequency in the dataset. "0" does not stand
    for a specific word, but instead is used to encode any unknown word.

    Args:
        path: where the data is: `"reuters.npz"` (the default) names the file
            in the caches (`~/.cache/pycnn/datasets/reuters/`, then
            `~/.keras/datasets/`), downloaded there from Keras' mirror when
            missing; a path to an existing file (or its directory) is read
            directly. `$PYCNN_DATA_DIR/reuters/reuters.npz` is also searched.
        num_words: integer or None. Only the `num_words` most frequent words
            are kept; any less frequent word appears as `oov_char`.
        skip_top: skip the top N most frequently occurring words; they appear
            as `oov_char`. Defaults to `0`.
        maxlen: int or None. Sequences of `maxlen` words or more are dropped.
        test_split: Float between `0.` and `1.`. Fraction of the dataset to be
            used as test data. Defaults to `0.2`.
        seed: int. Seed for reproducible data shuffling.
        start_char: int. The start of a sequence is marked with this
            character. Defaults to `1`.
        oov_char: int. The out-of-vocabulary character. Defaults to `2`.
        index_from: int. Index actual words with this index and higher.

    Returns:
        Tuple of NumPy arrays: `(x_train, y_train), (x_test, y_test)`.

    **`x_train`, `x_test`**: object arrays of sequences (lists of ints).

    **`y_train`, `y_test`**: integer topic labels (0 to 45).
    """
    [(xs, labels)] = _sequences.read_pairs(_files.locate(_SPEC, path), (("x", "y"),))
    xs, labels = _sequences.shuffled(np.random.RandomState(seed), xs, labels)
    xs, labels = _sequences.prepare(xs, labels, start_char, index_from, maxlen)
    xs = _sequences.limit_vocabulary(xs, num_words, skip_top, oov_char)
    return _sequences.split(xs, labels, int(len(xs) * (1 - test_split)))


def get_word_index(
    path: str | os.PathLike[str] | None = "reuters_word_index.json",
) -> dict[str, int]:
    """Retrieves a dict mapping words to their index in the Reuters dataset.

    Actual word indices start from 3, with 3 indices reserved for: 0
    (padding), 1 (start), 2 (oov): the word index of "the" is 1, but in the
    training data it is 1 + 3 = 4.

    Args:
        path: the JSON file, or its name in the caches (as `load_data`).

    Returns:
        The word index dictionary. Keys are word strings, values are their
        index.
    """
    return _sequences.load_word_index(_WORD_INDEX, path)


def get_label_names() -> tuple[str, ...]:
    """Returns labels as a tuple of strings with indices matching training data."""
    return _LABEL_NAMES
