"""Small datasets with Keras' `load_data()`: `mnist`, `fashion_mnist`, `cifar10`, `cifar100`,
`imdb`, `reuters`, `boston_housing`, `california_housing`.

`pycnn.datasets.mnist.load_data()` returns the same arrays as
`keras.datasets.mnist.load_data()`. The data is read from local files when
they can be found (`path=`, `$PYCNN_DATA_DIR`, the pycnn and Keras caches)
and downloaded otherwise; see each module's `load_data`.

This package uses only the standard library and NumPy.
"""

from . import (
    boston_housing,
    california_housing,
    cifar10,
    cifar100,
    fashion_mnist,
    imdb,
    mnist,
    reuters,
)
from ._fetch import ChecksumError, DatasetNotFoundError

__all__ = ["ChecksumError", "DatasetNotFoundError", "boston_housing", "california_housing",
           "cifar10", "cifar100", "fashion_mnist", "imdb", "mnist", "reuters"]
