"""What the ImageNet models share, as ``keras.applications.imagenet_utils``: input
preprocessing (``preprocess_input``), reading predictions as class names
(``decode_predictions``), the input-shape checks of every application
(``obtain_input_shape``), and the Keras cache of downloaded weight files (``get_file``).

Files are downloaded once into Keras' cache, ``$KERAS_HOME/models/`` (``~/.keras/models/``
when ``KERAS_HOME`` is not set), with the hash Keras publishes for them (MD5 for the weight
files), through ``pycnn.datasets._fetch`` (download, checksum, atomic rename). A cached file
whose hash is wrong is downloaded again, as Keras' ``get_file`` does.
"""
from __future__ import annotations

import json
import os
import warnings
from pathlib import Path
from typing import Any, Optional, Sequence

import numpy as np

from .. import activations
from ..datasets import _fetch
from ..layers.symbolic import InputLayer, KerasTensor

#: The JSON file mapping the 1000 ImageNet class indices to ``[wordnet_id, name]``.
CLASS_INDEX_PATH = ("https://storage.googleapis.com/download.tensorflow.org/"
                    "data/imagenet_class_index.json")
CLASS_INDEX_HASH = "c2c37ea517e94d9795004a39431a14cb"
#: The class index once read (``decode_predictions`` reads the file once per session).
CLASS_INDEX: Optional[dict] = None

_CAFFE_MEAN = (103.939, 116.779, 123.68)        # B, G, R
_TORCH_MEAN = (0.485, 0.456, 0.406)
_TORCH_STD = (0.229, 0.224, 0.225)


# ---- the Keras cache --------------------------------------------------------------------------
def keras_cache_dir(cache_subdir: str = "models") -> Path:
    """Keras' cache directory for ``cache_subdir``: ``$KERAS_HOME/<cache_subdir>`` or
    ``~/.keras/<cache_subdir>``."""
    return _fetch.keras_datasets_dir().parent / cache_subdir


def get_file(fname: str, origin: str, file_hash: Optional[str] = None,
             cache_subdir: str = "models") -> str:
    """The path of ``fname`` in Keras' cache, downloaded from ``origin`` first when it is not
    there (or when its hash is not ``file_hash``: MD5 for 32 hex digits, else SHA-256;
    ``None`` checks nothing, as Keras does for the files it publishes no hash for).

    Raises:
        FileNotFoundError: the file is not cached and could not be downloaded.
        pycnn.datasets._fetch.ChecksumError: the downloaded bytes have the wrong hash.
    """
    dest = keras_cache_dir(cache_subdir) / fname
    if dest.is_file():
        if file_hash is None or _fetch.sha256_of(dest, file_hash) == file_hash:
            return str(dest)
        warnings.warn(f"A local file was found at {dest}, but it has an invalid hash (it "
                      f"is incomplete or outdated); it is downloaded again from {origin}.",
                      stacklevel=2)
    try:
        _fetch.download_file(_fetch.RemoteFile(fname, origin, file_hash), dest)
    except _fetch._DownloadFailed as exc:
        raise FileNotFoundError(
            f"{fname} is not in Keras' cache ({dest}) and downloading it from {origin} "
            f"failed ({exc}). Without a network, copy the file to {dest}, or pass "
            f"weights='/path/to/{fname}'.") from exc.__cause__
    return str(dest)


# ---- preprocessing ----------------------------------------------------------------------------
def _check_data_format(data_format: Optional[str]) -> str:
    if data_format is None:
        return "channels_last"
    if data_format not in ("channels_first", "channels_last"):
        raise ValueError("Expected data_format to be one of `channels_first` or "
                         f"`channels_last`. Received: data_format={data_format}")
    return data_format


def preprocess_input(x, data_format: Optional[str] = None, mode: str = "caffe"):
    """Preprocesses a NumPy array encoding a batch of images (3D or 4D, 3 color channels,
    values in [0, 255]).

    Args:
        x: the images. A floating-point array is preprocessed in place (as Keras does: pass
            ``np.copy(x)`` to keep the original); other dtypes are converted to float32.
        data_format: ``"channels_last"`` (the default) or ``"channels_first"``.
        mode: ``"caffe"`` (RGB to BGR, then each channel zero-centered with ImageNet's mean,
            without scaling), ``"tf"`` (scaled to [-1, 1]) or ``"torch"`` (scaled to [0, 1],
            then each channel normalized with ImageNet's mean and standard deviation).

    Returns:
        The preprocessed array.

    Raises:
        ValueError: an unknown ``mode`` or ``data_format``.
    """
    if mode not in ("caffe", "tf", "torch"):
        raise ValueError("Expected mode to be one of `caffe`, `tf` or `torch`. "
                         f"Received: mode={mode}")
    data_format = _check_data_format(data_format)
    if isinstance(x, KerasTensor):
        raise TypeError("pycnn's preprocess_input works on NumPy arrays of images, not on "
                        "symbolic tensors: preprocess the arrays before fit/predict")
    if not isinstance(x, np.ndarray):
        x = np.asarray(x)
    if not issubclass(x.dtype.type, np.floating):
        x = x.astype(np.float32, copy=False)
    if mode == "tf":
        x /= 127.5
        x -= 1.0
        return x
    if data_format == "channels_first":
        if x.ndim not in (3, 4):
            raise ValueError("preprocess_input with data_format='channels_first' expects a "
                             f"3D image or a 4D batch. Received an array of shape {x.shape}")
        channel_axis = 0 if x.ndim == 3 else 1
    else:
        channel_axis = x.ndim - 1
    if x.ndim == 0 or x.shape[channel_axis] != 3:
        raise ValueError(f"preprocess_input(mode={mode!r}) expects 3 color channels "
                         f"({data_format}). Received an array of shape {x.shape}")
    if mode == "torch":
        x /= 255.0
        mean, std = _TORCH_MEAN, _TORCH_STD
    else:
        x = np.flip(x, axis=channel_axis)      # RGB -> BGR (a view: the input is written)
        mean, std = _CAFFE_MEAN, None
    shape = [1] * x.ndim
    shape[channel_axis] = 3
    x -= np.asarray(mean, x.dtype).reshape(shape)
    if std is not None:
        x /= np.asarray(std, x.dtype).reshape(shape)
    return x


# ---- predictions ------------------------------------------------------------------------------
def decode_predictions(preds, top: int = 5) -> list:
    """Decodes the predictions of an ImageNet model.

    Args:
        preds: NumPy array of predictions, shape ``(samples, 1000)``.
        top: how many top guesses to return for each sample.

    Returns:
        One list per sample of ``(class_name, class_description, score)`` tuples, best first.

    Raises:
        ValueError: ``preds`` is not 2D with 1000 columns.
    """
    global CLASS_INDEX
    preds = np.asarray(preds)
    if len(preds.shape) != 2 or preds.shape[1] != 1000:
        raise ValueError("`decode_predictions` expects a batch of predictions (i.e. a 2D "
                         "array of shape (samples, 1000)). Received array with shape: "
                         f"{preds.shape}")
    if CLASS_INDEX is None:
        fpath = get_file("imagenet_class_index.json", CLASS_INDEX_PATH,
                         file_hash=CLASS_INDEX_HASH, cache_subdir="models")
        with open(fpath, encoding="utf8") as f:
            CLASS_INDEX = json.load(f)
    results = []
    for pred in preds:
        top_indices = pred.argsort()[-top:][::-1] if top > 0 else []
        result = [tuple(CLASS_INDEX[str(i)]) + (pred[i],) for i in top_indices]
        result.sort(key=lambda r: r[2], reverse=True)
        results.append(result)
    return results


# ---- model construction -----------------------------------------------------------------------
def obtain_input_shape(input_shape: Optional[Sequence], default_size: int, min_size: int,
                       data_format: str, require_flatten: bool,
                       weights: Any = None) -> tuple:
    """The input shape of an application (Keras' checks and messages). pycnn's models have
    static shapes, so a shape with ``None`` in it (Keras' default for ``include_top=False``)
    is refused with a message asking for ``input_shape``."""
    if data_format != "channels_last":
        raise ValueError("pycnn supports data_format='channels_last' (NHWC) only. "
                         f"Received: data_format={data_format!r}")
    if input_shape is not None:
        input_shape = tuple(input_shape)
    if weights != "imagenet" and input_shape and len(input_shape) == 3:
        if input_shape[-1] not in {1, 3}:
            warnings.warn("This model usually expects 1 or 3 input channels. However, it was "
                          f"passed an input_shape with {input_shape[-1]} input channels.",
                          stacklevel=3)
        default_shape = (default_size, default_size, input_shape[-1])
    else:
        default_shape = (default_size, default_size, 3)
    if weights == "imagenet" and require_flatten:
        if input_shape is not None and input_shape != default_shape:
            raise ValueError("When setting `include_top=True` and loading `imagenet` "
                             f"weights, `input_shape` should be {default_shape}.  "
                             f"Received: input_shape={input_shape}")
        return default_shape
    if input_shape:
        if len(input_shape) != 3:
            raise ValueError("`input_shape` must be a tuple of three integers.")
        if input_shape[-1] != 3 and weights == "imagenet":
            raise ValueError("The input must have 3 channels; Received "
                             f"`input_shape={input_shape}`")
        if (input_shape[0] is not None and input_shape[0] < min_size) or \
                (input_shape[1] is not None and input_shape[1] < min_size):
            raise ValueError(f"Input size must be at least {min_size}x{min_size}; "
                             f"Received: input_shape={input_shape}")
    elif require_flatten:
        input_shape = default_shape
    else:
        input_shape = (None, None, 3)
    if None in input_shape:
        if require_flatten:
            raise ValueError("If `include_top` is True, you should specify a static "
                             f"`input_shape`. Received: input_shape={input_shape}")
        raise ValueError("pycnn builds models for one input size: pass `input_shape` (for "
                         f"instance input_shape=({default_size}, {default_size}, 3)) or "
                         f"`input_tensor`. Received: input_shape={input_shape}")
    return input_shape


def correct_pad(inputs: KerasTensor, kernel_size) -> tuple:
    """The ``ZeroPadding2D`` padding ``((top, bottom), (left, right))`` before a strided
    ``"valid"`` convolution that makes it match TensorFlow's ``"same"`` for even sizes."""
    input_size = inputs.shape[1:3]
    if isinstance(kernel_size, int):
        kernel_size = (kernel_size, kernel_size)
    if input_size[0] is None:
        adjust = (1, 1)
    else:
        adjust = (1 - input_size[0] % 2, 1 - input_size[1] % 2)
    correct = (kernel_size[0] // 2, kernel_size[1] // 2)
    return ((correct[0] - adjust[0], correct[0]), (correct[1] - adjust[1], correct[1]))


def validate_activation(classifier_activation, weights) -> None:
    """Pretrained weights allow only ``None`` and ``"softmax"`` as the classifier's
    activation."""
    if weights is None:
        return
    if activations.get(classifier_activation) not in ("softmax", "linear"):
        raise ValueError("Only `None` and `softmax` activations are allowed for the "
                         "`classifier_activation` argument when using pretrained weights, "
                         "with `include_top=True`; Received: "
                         f"classifier_activation={classifier_activation}")


def check_weights(weights) -> None:
    """``weights`` must be ``None``, ``"imagenet"`` or the path of an existing file."""
    ok = weights is None or (isinstance(weights, str) and weights == "imagenet")
    if not ok and isinstance(weights, (str, os.PathLike)):
        ok = os.path.exists(weights)
    if not ok:
        raise ValueError("The `weights` argument should be either `None` (random "
                         "initialization), 'imagenet' (pre-training on ImageNet), or the path "
                         f"to the weights file to be loaded.  Received: weights={weights}")


def image_input(input_tensor, input_shape: tuple):
    """The model's image input: ``input_tensor`` when given (a pycnn symbolic tensor), else a
    new ``Input(shape=input_shape)``."""
    from ..layers.symbolic import Input
    if input_tensor is None:
        return Input(shape=input_shape)
    if not isinstance(input_tensor, KerasTensor):
        raise ValueError("`input_tensor` must be a pycnn symbolic tensor (the output of "
                         f"pycnn.Input() or of a layer). Received: input_tensor={input_tensor!r}")
    return input_tensor


def checked_image_input(weights, include_top: bool, classes: int, input_tensor,
                        input_shape: Optional[tuple]):
    """VGG16's and ResNet's checks of ``weights`` and ``classes``, then their image input
    (``image_input``) of ``input_shape`` (224x224 by default, at least 32x32) or
    ``input_tensor``'s shape."""
    check_weights(weights)
    if weights == "imagenet" and include_top and classes != 1000:
        raise ValueError("If using `weights='imagenet'` with `include_top=True`, `classes` "
                         f"should be 1000.  Received classes={classes}")
    if input_tensor is not None and input_shape is None:
        input_shape = input_tensor.shape[1:]
    input_shape = obtain_input_shape(
        input_shape, default_size=224, min_size=32, data_format="channels_last",
        require_flatten=include_top, weights=weights)
    return image_input(input_tensor, input_shape)


def classifier_or_pooling(x: KerasTensor, include_top: bool, pooling: Optional[str],
                          classes: int, classifier_activation, weights, features=None,
                          avg_name: Optional[str] = None, max_name: Optional[str] = None):
    """An application's top: with ``include_top``, ``features(x)`` (by default a global
    average pooling named ``avg_name``) and the ``predictions`` layer; without it, the global
    pooling ``pooling`` asks for (``"avg"``, ``"max"`` or ``None``)."""
    from .. import layers
    if include_top:
        x = features(x) if features is not None else \
            layers.GlobalAveragePooling2D(name=avg_name)(x)
        validate_activation(classifier_activation, weights)
        return layers.Dense(classes, activation=classifier_activation, name="predictions")(x)
    if pooling == "avg":
        return layers.GlobalAveragePooling2D(name=avg_name)(x)
    if pooling == "max":
        return layers.GlobalMaxPooling2D(name=max_name)(x)
    return x


def application_model(input_tensor, img_input: KerasTensor, outputs: KerasTensor, name: str):
    """The application's ``Model``: from the inputs ``input_tensor`` is computed from when it
    was given, else from ``img_input``."""
    from ..models.model import Model
    inputs = source_inputs(input_tensor) if input_tensor is not None else img_input
    return Model(inputs, outputs, name=name)


def source_inputs(tensor: KerasTensor) -> list:
    """The ``Input`` tensors ``tensor`` is computed from (Keras' ``get_source_inputs``)."""
    out: list = []
    seen: set = set()
    stack = [tensor]
    while stack:
        t = stack.pop()
        if t.id in seen:
            continue
        seen.add(t.id)
        node = t.node
        if node is None or isinstance(node.layer, InputLayer) or not node.inputs:
            out.append(t)
        else:
            stack.extend(reversed(node.inputs))
    return out


def load_weights(model, weights, file_name: str, origin: str,
                 file_hash: Optional[str]) -> None:
    """Loads ``"imagenet"`` weights (from Keras' cache, downloaded once) or a weights file."""
    if weights == "imagenet":
        weights = get_file(file_name, origin, file_hash=file_hash, cache_subdir="models")
    if weights is not None:
        model.load_weights(weights)
