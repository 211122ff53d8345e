"""The regression datasets (Boston, California housing): reading and Keras' split."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from . import _pickle


def read_xy(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Reads `x` (N, features) and `y` (N,) numeric arrays from an `.npz` (no pickles)."""
    arrays = _pickle.read_npz(path, ("x", "y"))
    x, y = arrays["x"], arrays["y"]
    for key, arr, ndim in (("x", x, 2), ("y", y, 1)):
        if arr.dtype.kind not in "fiu" or arr.ndim != ndim:
            raise ValueError(
                f"{path}[{key!r}]: dtype {arr.dtype}, shape {arr.shape}; expected a "
                f"numeric array of rank {ndim}"
            )
    if len(x) != len(y):
        raise ValueError(f"{path}: {len(x)} rows in 'x' but {len(y)} in 'y'")
    return x, y


def check_test_split(test_split: float) -> None:
    if not (0 <= test_split < 1):
        raise ValueError(
            f"Invalid `test_split` argument: {test_split}. "
            "It must be between 0 and 1 (exclusive of 1)."
        )


def shuffle_and_split(x: np.ndarray, y: np.ndarray, test_split: float, seed: int):
    """Keras' split: permute with `RandomState(seed)`, the first `int(n * (1 - test_split))` train."""
    rng = np.random.RandomState(seed)
    indices = np.arange(len(x))
    rng.shuffle(indices)
    x = x[indices]
    y = y[indices]
    cut = int(len(x) * (1 - test_split))
    return (np.array(x[:cut]), np.array(y[:cut])), (np.array(x[cut:]), np.array(y[cut:]))
