"""Fashion-MNIST dataset.

Same arrays as `keras.datasets.fashion_mnist.load_data()`, found without a
network when the files are available locally (see `load_data`).
"""

from __future__ import annotations

import os

from . import _fetch
from ._idx import Arrays

# SHA-256 of Zalando's original gzip files, which Keras' mirror serves
# (Zalando publishes their MD5 sums; Keras pins these SHA-256 values).
_SHA256 = {
    "train-images-idx3-ubyte.gz": (
        "3aede38d61863908ad78613f6a32ed271626dd12800ba2636569512369268a84"
    ),
    "train-labels-idx1-ubyte.gz": (
        "a04f17134ac03560a47e3764e11b92fc97de4d1bfaf8ba1a3aa29af54cc90845"
    ),
    "t10k-images-idx3-ubyte.gz": (
        "346e55b948d973a97e58d2351dde16a484bd415d4595297633bb08f03db6a073"
    ),
    "t10k-labels-idx1-ubyte.gz": (
        "67da17c76eaffca5446c3361aaab5c3cd6d1c2608764d35dfb1850b086bf8dd5"
    ),
}

_SPEC = _fetch.DatasetSpec(
    name="fashion_mnist",
    title="Fashion-MNIST",
    data_dir_names=("fashion_mnist", "fashion-mnist"),
    npz_names=("fashion_mnist.npz", "fashion-mnist.npz"),
    remote=tuple(
        _fetch.RemoteFile(name, _fetch.ORIGIN + name, sha)
        for name, sha in _SHA256.items()
    ),
    sha256=_SHA256,
    keras_cache="fashion-mnist",
    # Debian's package dataset-fashion-mnist (re-compressed, same content).
    system_dirs=("/usr/share/datasets/fashion-mnist",),
)


def load_data(path: str | os.PathLike[str] | None = None) -> Arrays:
    """Loads the Fashion-MNIST dataset.

    This is a dataset of 60,000 28x28 grayscale images of 10 fashion
    categories, along with a test set of 10,000 images. This dataset can be
    used as a drop-in replacement for MNIST.

    The classes are:

    | Label | Description |
    |:-----:|-------------|
    |   0   | T-shirt/top |
    |   1   | Trouser     |
    |   2   | Pullover    |
    |   3   | Dress       |
    |   4   | Coat        |
    |   5   | Sandal      |
    |   6   | Shirt       |
    |   7   | Sneaker     |
    |   8   | Bag         |
    |   9   | Ankle boot  |

    Args:
        path: where the data is. A directory holding the four IDX files
            (`train-images-idx3-ubyte`, `train-labels-idx1-ubyte`,
            `t10k-images-idx3-ubyte`, `t10k-labels-idx1-ubyte`, each
            gzip-compressed with `.gz` or raw), or an `.npz` file with the
            arrays `x_train`, `y_train`, `x_test`, `y_test`. When `None` (the
            default), the data is looked up in `$PYCNN_DATA_DIR/fashion_mnist/`
            (or `fashion-mnist/`), in the pycnn cache
            (`$PYCNN_CACHE_DIR/fashion_mnist/`,
            `$XDG_CACHE_HOME/pycnn/datasets/fashion_mnist/` or
            `~/.cache/pycnn/datasets/fashion_mnist/`), in Keras' cache
            (`~/.keras/datasets/fashion-mnist/`), in
            `/usr/share/datasets/fashion-mnist/` (Debian's package
            `dataset-fashion-mnist`), and is otherwise downloaded from the
            mirror Keras uses into the pycnn cache.

    Returns:
        Tuple of NumPy arrays: `(x_train, y_train), (x_test, y_test)`.

    **`x_train`**: `uint8` NumPy array of grayscale image data with shape
      `(60000, 28, 28)`, containing the training data.

    **`y_train`**: `uint8` NumPy array of labels (integers in range 0-9)
      with shape `(60000,)` for the training data.

    **`x_test`**: `uint8` NumPy array of grayscale image data with shape
      `(10000, 28, 28)`, containing the test data.

    **`y_test`**: `uint8` NumPy array of labels (integers in range 0-9)
      with shape `(10000,)` for the test data.

    Raises:
        DatasetNotFoundError: (a `FileNotFoundError`) the data is nowhere
            and the download failed; the message lists every place searched.
        ChecksumError: (a `ValueError`) a cached or downloaded file has the
            wrong SHA-256.
        ValueError: a file found is not a valid Fashion-MNIST file.

    License:

    The copyright for Fashion-MNIST is held by Zalando SE. Fashion-MNIST is
    licensed under the MIT license.
    """
    return _fetch.load(_SPEC, path)
