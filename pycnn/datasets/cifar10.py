"""CIFAR10 small images classification dataset.

Same arrays as `keras.datasets.cifar10.load_data()`, read from Keras'
archive without unpickling (see `_cifar`).
"""

from __future__ import annotations

import os

import numpy as np

from . import _cifar, _files

_FOLDER = "cifar-10-batches-py"

_SPEC = _cifar.spec(
    "cifar10", "CIFAR-10", "cifar-10-python.tar.gz", _FOLDER,
    "6d958be074577803d12ecdefd02955f39262c83c16fe9348329d7fe0b5c001ce")


def load_data(path: str | os.PathLike[str] | None = None):
    """Loads the CIFAR10 dataset.

    This is a dataset of 50,000 32x32 color training images and 10,000 test
    images, labeled over 10 categories. See more info at the
    [CIFAR homepage](https://www.cs.toronto.edu/~kriz/cifar.html).

    The classes are:

    | Label | Description |
    |:-----:|-------------|
    |   0   | airplane    |
    |   1   | automobile  |
    |   2   | bird        |
    |   3   | cat         |
    |   4   | deer        |
    |   5   | dog         |
    |   6   | frog        |
    |   7   | horse       |
    |   8   | ship        |
    |   9   | truck       |

    Args:
        path: (pycnn only; Keras' `load_data()` takes no argument) the
            archive `cifar-10-python.tar.gz` or the folder
            `cifar-10-batches-py` it extracts to. When `None`, the data is
            looked up in `$PYCNN_DATA_DIR/cifar10/`, the pycnn cache
            (`~/.cache/pycnn/datasets/cifar10/`), Keras' cache
            (`~/.keras/datasets/`), and is otherwise downloaded from the URL
            Keras uses and verified with Keras' SHA-256.

    Returns:
        Tuple of NumPy arrays: `(x_train, y_train), (x_test, y_test)`.

    **`x_train`**: `uint8` NumPy array of RGB image data with shape
      `(50000, 32, 32, 3)`. Pixel values range from 0 to 255.

    **`y_train`**: `uint8` NumPy array of labels (integers in range 0-9)
      with shape `(50000, 1)`.

    **`x_test`**: `uint8` NumPy array `(10000, 32, 32, 3)`.

    **`y_test`**: `uint8` NumPy array `(10000, 1)`.
    """
    where = _files.locate(_SPEC, path)
    names = tuple(f"data_batch_{i}" for i in range(1, 6)) + ("test_batch",)
    raw = _cifar.read_members(where, _FOLDER, names)
    parts = [_cifar.load_batch(raw[n], f"{where}[{_FOLDER}/{n}]", "labels", 10) for n in names]
    x_train = np.concatenate([p[0] for p in parts[:5]])
    y_train = np.concatenate([np.asarray(p[1], np.uint8) for p in parts[:5]]).reshape(-1, 1)
    x_test, labels_test = parts[5]
    y_test = np.reshape(labels_test, (len(labels_test), 1)).astype(np.uint8)
    return (_cifar.channels_last(x_train), y_train), (_cifar.channels_last(x_test), y_test)
