"""California housing price regression dataset.

Same arrays as `keras.datasets.california_housing.load_data()`.
"""

from __future__ import annotations

import os

from . import _files, _tabular

_SPEC = _files.on_keras_mirror(
    "california_housing", "California housing", "california_housing.npz",
    "1a2e3a52e0398de6463aebe6f4a8da34fb21fbb6b934cf88c3425e766f2a1a6f")


def load_data(
    version: str = "large",
    path: str | os.PathLike[str] | None = "california_housing.npz",
    test_split: float = 0.2,
    seed: int = 113,
):
    """Loads the California Housing dataset.

    This dataset was obtained from the [StatLib repository](
    https://www.dcc.fc.up.pt/~ltorgo/Regression/cal_housing.html). It's a
    continuous regression dataset with 20,640 samples with 8 features each.
    The target variable is a scalar: the median house value for California
    districts, in dollars.

    Args:
        version: `"small"` or `"large"`. The small version contains 600
            samples, the large version contains 20,640 samples. The purpose
            of the small version is to serve as an approximate replacement
            for the deprecated `boston_housing` dataset.
        path: `"california_housing.npz"` (the default) names the file in the
            caches (`~/.cache/pycnn/datasets/california_housing/`, then
            `~/.keras/datasets/`), downloaded from Keras' mirror when
            missing; a path to an existing file is read directly.
        test_split: fraction of the data to reserve as test set.
        seed: Random seed for shuffling the data before computing the test
            split.

    Returns:
        Tuple of NumPy arrays: `(x_train, y_train), (x_test, y_test)`.

    **`x_train`, `x_test`**: numpy arrays of shape `(num_samples, 8)`
        containing either the training samples (for `x_train`), or test
        samples (for `y_train`).

    **`y_train`, `y_test`**: numpy arrays of shape `(num_samples,)`
        containing the target scalars, typically between 25,000 and 500,000
        (home prices in dollars).
    """
    _tabular.check_test_split(test_split)
    if version not in ("small", "large"):
        raise ValueError(
            "Argument `version` must be one of 'small', 'large'. "
            f"Received: version={version}"
        )
    x, y = _tabular.read_xy(_files.locate(_SPEC, path))
    if version == "small":
        x = x[:600]
        y = y[:600]
    return _tabular.shuffle_and_split(x, y, test_split, seed)
