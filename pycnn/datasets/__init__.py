"""Small datasets with Keras' `load_data()`: `mnist` and `fashion_mnist`.

`pycnn.datasets.mnist.load_data()` returns the same arrays as
`keras.datasets.mnist.load_data()`. The data is read from local files when
they can be found (`path=`, `$PYCNN_DATA_DIR`, the pycnn and Keras caches)
and downloaded otherwise; see each module's `load_data`.

This package uses only the standard library and NumPy.
"""

from . import fashion_mnist, mnist
from ._fetch import ChecksumError, DatasetNotFoundError

__all__ = ["ChecksumError", "DatasetNotFoundError", "fashion_mnist", "mnist"]
