"""Utilities: seeding, one-hot labels, the progress bar and the summary table, images on disk,
the `Dataset` pipeline and `image_dataset_from_directory`."""
from __future__ import annotations

import random

import numpy as np

from .. import backend
from .progbar import Progbar
from .sequence import PyDataset, Sequence
from .summary_table import print_summary
from .dataset import Dataset
from .image_dataset import image_dataset_from_directory
from .image_utils import array_to_img, img_to_array, load_img, save_img
from .model_plot import plot_model

__all__ = ["PyDataset", "Sequence", "set_random_seed", "to_categorical", "Progbar", "print_summary", "Dataset",
           "image_dataset_from_directory", "array_to_img", "img_to_array", "load_img", "save_img",
           "plot_model"]


def set_random_seed(seed: int) -> None:
    """Seed Python's ``random``, NumPy's global generator and pycnn's own generator, so that
    weight initialisation, shuffling and dropout repeat exactly (for any thread count)."""
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"expected a non-negative integer. Received: seed={seed!r}")
    random.seed(int(seed))
    np.random.seed(int(seed) % (2**32))
    backend.seed(int(seed))


def to_categorical(y, num_classes: int | None = None, dtype: str = "float32") -> np.ndarray:
    """Class indices to one-hot vectors, as Keras: shape ``y.shape + (num_classes,)``, a last
    axis of size 1 dropped first (``(N,)`` or ``(N, 1)`` -> ``(N, num_classes)``)."""
    y = np.asarray(y)
    shape = y.shape[:-1] if y.ndim > 1 and y.shape[-1] == 1 else y.shape
    if y.dtype.kind not in "iub" and not (y.dtype.kind == "f" and np.all(np.mod(y, 1) == 0)):
        raise ValueError(f"to_categorical expects integer class indices, got dtype {y.dtype}")
    y = y.astype(np.int64).ravel()
    if y.size and y.min() < 0:
        raise ValueError(f"to_categorical: negative class index {y.min()}")
    n = int(y.max()) + 1 if num_classes is None else int(num_classes)
    if y.size and y.max() >= n:
        raise ValueError(f"to_categorical: class index {y.max()} >= num_classes={n}")
    out = np.zeros((y.shape[0], n), dtype=dtype)
    out[np.arange(y.shape[0]), y] = 1
    return out.reshape(tuple(shape) + (n,))
