"""MNIST handwritten digits dataset.

Same arrays as `keras.datasets.mnist.load_data()`, found without a network
when the files are available locally (see `load_data`).
"""

from __future__ import annotations

import os

from . import _fetch
from ._idx import Arrays

_SPEC = _fetch.DatasetSpec(
    name="mnist",
    title="MNIST",
    data_dir_names=("mnist",),
    npz_names=("mnist.npz",),
    remote=(
        _fetch.RemoteFile(
            "mnist.npz",
            _fetch.ORIGIN + "mnist.npz",
            "731c5ac602752760c8e48fbffcf8c3b850d9dc2a2aedcf2cc48468fc17b673d1",
        ),
    ),
    sha256={
        "mnist.npz": "731c5ac602752760c8e48fbffcf8c3b850d9dc2a2aedcf2cc48468fc17b673d1",
        # LeCun's original gzip files.
        "train-images-idx3-ubyte.gz": (
            "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609"
        ),
        "train-labels-idx1-ubyte.gz": (
            "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c"
        ),
        "t10k-images-idx3-ubyte.gz": (
            "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6"
        ),
        "t10k-labels-idx1-ubyte.gz": (
            "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6"
        ),
    },
    keras_cache="mnist.npz",
)


def load_data(path: str | os.PathLike[str] | None = None) -> Arrays:
    """Loads the MNIST dataset.

    This is a dataset of 60,000 28x28 grayscale images of the 10 digits,
    along with a test set of 10,000 images.

    Args:
        path: where the data is. A directory holding the four IDX files
            (`train-images-idx3-ubyte`, `train-labels-idx1-ubyte`,
            `t10k-images-idx3-ubyte`, `t10k-labels-idx1-ubyte`, each
            gzip-compressed with `.gz` or raw), or a Keras `.npz` file. As in
            Keras, a bare file name such as `"mnist.npz"` that does not exist
            in the working directory names a file in the cache
            (`~/.cache/pycnn/datasets/mnist/`, then `~/.keras/datasets/`).
            When `None` (the default), the data is looked up in
            `$PYCNN_DATA_DIR/mnist/`, in the pycnn cache
            (`$PYCNN_CACHE_DIR/mnist/`, `$XDG_CACHE_HOME/pycnn/datasets/mnist/`
            or `~/.cache/pycnn/datasets/mnist/`), in Keras' cache
            (`~/.keras/datasets/mnist.npz`), and is otherwise downloaded
            from the mirror Keras uses into the pycnn cache.

    Returns:
        Tuple of NumPy arrays: `(x_train, y_train), (x_test, y_test)`.

    **`x_train`**: `uint8` NumPy array of grayscale image data with shape
      `(60000, 28, 28)`, containing the training data. Pixel values range
      from 0 to 255.

    **`y_train`**: `uint8` NumPy array of digit labels (integers in range
      0-9) with shape `(60000,)` for the training data.

    **`x_test`**: `uint8` NumPy array of grayscale image data with shape
      `(10000, 28, 28)`, containing the test data.

    **`y_test`**: `uint8` NumPy array of digit labels (integers in range
      0-9) with shape `(10000,)` for the test data.

    Raises:
        DatasetNotFoundError: (a `FileNotFoundError`) the data is nowhere
            and the download failed; the message lists every place searched.
        ChecksumError: (a `ValueError`) a cached or downloaded file has the
            wrong SHA-256.
        ValueError: a file found is not a valid MNIST file.

    Example:

    ```python
    (x_train, y_train), (x_test, y_test) = pycnn.datasets.mnist.load_data()
    assert x_train.shape == (60000, 28, 28)
    assert y_test.shape == (10000,)
    ```

    License:

    Yann LeCun and Corinna Cortes hold the copyright of the MNIST dataset,
    a derivative work of the original NIST datasets. It is available under
    the Creative Commons Attribution-Share Alike 3.0 license.
    """
    return _fetch.load(_SPEC, path)
