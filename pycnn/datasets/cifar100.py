"""CIFAR100 small images classification dataset.

Same arrays as `keras.datasets.cifar100.load_data()`, read from Keras'
archive without unpickling (see `_cifar`).
"""

from __future__ import annotations

import os

import numpy as np

from . import _cifar, _files

_FOLDER = "cifar-100-python"

_SPEC = _cifar.spec(
    "cifar100", "CIFAR-100", "cifar-100-python.tar.gz", _FOLDER,
    "85cd44d02ba6437773c5bbd22e183051d648de2e7d6b014e1ef29b855ba677a7")


def load_data(label_mode: str = "fine", path: str | os.PathLike[str] | None = None):
    """Loads the CIFAR100 dataset.

    This is a dataset of 50,000 32x32 color training images and 10,000 test
    images, labeled over 100 fine-grained classes that are grouped into 20
    coarse-grained classes. See more info at the
    [CIFAR homepage](https://www.cs.toronto.edu/~kriz/cifar.html).

    Args:
        label_mode: one of `"fine"`, `"coarse"`. If it is `"fine"`, the
            category labels are the fine-grained labels, and if it is
            `"coarse"`, the output labels are the coarse-grained superclasses.
        path: (pycnn only) the archive `cifar-100-python.tar.gz` or the folder
            `cifar-100-python` it extracts to; when `None`, searched as
            `cifar10.load_data` does (sub-directory `cifar100/`).

    Returns:
        Tuple of NumPy arrays: `(x_train, y_train), (x_test, y_test)`.

    **`x_train`**: `uint8` NumPy array of RGB image data with shape
      `(50000, 32, 32, 3)`. Pixel values range from 0 to 255.

    **`y_train`**: `int64` NumPy array of labels (integers in range 0-99, or
      0-19 for `"coarse"`) with shape `(50000, 1)`.

    **`x_test`**: `uint8` NumPy array `(10000, 32, 32, 3)`.

    **`y_test`**: `int64` NumPy array `(10000, 1)`.
    """
    if label_mode not in ["fine", "coarse"]:
        raise ValueError(
            '`label_mode` must be one of `"fine"`, `"coarse"`. '
            f"Received: label_mode={label_mode}."
        )
    where = _files.locate(_SPEC, path)
    raw = _cifar.read_members(where, _FOLDER, ("train", "test"))
    classes = 100 if label_mode == "fine" else 20
    out = []
    for name in ("train", "test"):
        x, labels = _cifar.load_batch(
            raw[name], f"{where}[{_FOLDER}/{name}]", f"{label_mode}_labels", classes
        )
        y = np.reshape(np.asarray(labels, np.int64), (len(labels), 1))
        out.append((_cifar.channels_last(x), y))
    return out[0], out[1]
