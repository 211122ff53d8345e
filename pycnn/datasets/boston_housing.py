"""Boston housing price regression dataset.

Same arrays as `keras.datasets.boston_housing.load_data()`.
"""

from __future__ import annotations

import os

from . import _files, _tabular

_SPEC = _files.on_keras_mirror(
    "boston_housing", "Boston housing", "boston_housing.npz",
    "f553886a1f8d56431e820c5b82552d9d95cfcb96d1e678153f8839538947dff5")


def load_data(
    path: str | os.PathLike[str] | None = "boston_housing.npz",
    test_split: float = 0.2,
    seed: int = 113,
):
    """Loads the Boston Housing dataset.

    This is a dataset taken from the StatLib library which is maintained at
    Carnegie Mellon University. Samples contain 13 attributes of houses at
    different locations around the Boston suburbs in the late 1970s. Targets
    are the median values of the houses at a location (in k$).

    **WARNING:** This dataset has an ethical problem: the authors of this
    dataset included a variable, "B", that may appear to assume that racial
    self-segregation influences house prices. As such, we strongly discourage
    the use of this dataset, unless in the context of illustrating ethical
    issues in data science and machine learning.

    Args:
        path: `"boston_housing.npz"` (the default) names the file in the
            caches (`~/.cache/pycnn/datasets/boston_housing/`, then
            `~/.keras/datasets/`), downloaded from Keras' mirror when
            missing; a path to an existing file is read directly.
        test_split: fraction of the data to reserve as test set.
        seed: Random seed for shuffling the data before computing the test
            split.

    Returns:
        Tuple of NumPy arrays: `(x_train, y_train), (x_test, y_test)`.

    **x_train, x_test**: NumPy arrays with shape `(num_samples, 13)`
      containing either the training samples (for x_train), or test samples
      (for y_train).

    **y_train, y_test**: NumPy arrays of shape `(num_samples,)` containing
      the target scalars. The targets are float scalars typically between 10
      and 50 that represent the home prices in k$.
    """
    _tabular.check_test_split(test_split)
    x, y = _tabular.read_xy(_files.locate(_SPEC, path))
    return _tabular.shuffle_and_split(x, y, test_split, seed)
