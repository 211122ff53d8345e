"""MobileNetV2 (Sandler et al., CVPR 2018) as ``keras.applications.mobilenet_v2``: inverted
residual blocks (1x1 expansion, 3x3 depthwise convolution, 1x1 linear projection, each
batch-normalized, ReLU6 between) with Keras' layer names, shapes and weight order, so that
Keras' published ImageNet weight files load into it. ``alpha`` scales every layer's width.
"""
from __future__ import annotations

import numbers
import warnings
from typing import Any, Optional

from .. import layers
from ..models.model import Model
from . import imagenet_utils

BASE_WEIGHT_PATH = ("https://storage.googleapis.com/tensorflow/keras-applications/"
                    "mobilenet_v2/")
#: The widths and square sizes Keras publishes ImageNet weights for.
IMAGENET_ALPHAS = (0.35, 0.50, 0.75, 1.0, 1.3, 1.4)
IMAGENET_SIZES = (96, 128, 160, 192, 224)

_BN = {"axis": -1, "epsilon": 1e-3, "momentum": 0.999}
#: (filters, stride, expansion) of the 17 inverted residual blocks.
_BLOCKS = ((16, 1, 1), (24, 2, 6), (24, 1, 6), (32, 2, 6), (32, 1, 6), (32, 1, 6),
           (64, 2, 6), (64, 1, 6), (64, 1, 6), (64, 1, 6), (96, 1, 6), (96, 1, 6),
           (96, 1, 6), (160, 2, 6), (160, 1, 6), (160, 1, 6), (320, 1, 6))


def weights_file_name(alpha: float, rows: int, include_top: bool) -> str:
    """The name Keras gives the ImageNet weights of MobileNetV2(alpha) at ``rows`` x
    ``rows`` (they are published without a hash: Keras checks none)."""
    if include_top:
        return f"mobilenet_v2_weights_tf_dim_ordering_tf_kernels_{float(alpha)}_{rows}.h5"
    return f"mobilenet_v2_weights_tf_dim_ordering_tf_kernels_{float(alpha)}_{rows}_no_top.h5"


def MobileNetV2(input_shape: Optional[tuple] = None, alpha: float = 1.0,
                include_top: bool = True, weights: Any = "imagenet", input_tensor=None,
                pooling: Optional[str] = None, classes: int = 1000,
                classifier_activation="softmax", name: Optional[str] = None) -> Model:
    """Instantiates the MobileNetV2 architecture.

    Note: MobileNetV2 expects its inputs preprocessed by ``pycnn.applications.mobilenet_v2.
    preprocess_input`` (pixels scaled to [-1, 1]).

    Args:
        input_shape: optional shape tuple, only to be specified if ``include_top`` is False
            (otherwise the input shape has to be ``(224, 224, 3)``), with exactly 3 input
            channels and width and height of at least 32. pycnn builds a model for one
            input size, so ``include_top=False`` needs it (or ``input_tensor``).
        alpha: the width multiplier: ``< 1`` proportionally fewer filters in each layer,
            ``> 1`` more. ImageNet weights exist for 0.35, 0.5, 0.75, 1.0, 1.3 and 1.4.
        include_top: whether to include the fully-connected layer at the top.
        weights: ``None`` (random initialization), ``"imagenet"`` (pre-training on
            ImageNet, downloaded once into Keras' cache ``~/.keras/models/``), or the path
            to a weights file.
        input_tensor: optional symbolic tensor (the output of ``pycnn.Input()``) to use as
            the model's image input.
        pooling: with ``include_top=False``: ``None`` (the 4D output of the last
            convolutional block), ``"avg"`` or ``"max"`` (global pooling to a 2D output).
        classes: number of classes, only with ``include_top=True`` and no ``weights``.
        classifier_activation: the activation of the ``predictions`` layer (``None`` for
            logits); with pretrained weights only ``None`` or ``"softmax"``.
        name: the model's name (default ``mobilenetv2_<alpha>_<rows>``).

    Returns:
        A ``Model``.
    """
    if not (weights is None or (isinstance(weights, str) and weights == "imagenet")):
        try:
            imagenet_utils.check_weights(weights)
        except ValueError:
            raise ValueError("The `weights` argument should be either `None` (random "
                             "initialization), `imagenet` (pre-training on ImageNet), or the "
                             "path to the weights file to be loaded.  Received "
                             f"`weights={weights}`") from None
    if weights == "imagenet" and include_top and classes != 1000:
        raise ValueError('If using `weights="imagenet"` with `include_top` as true, '
                         f"`classes` should be 1000. Received `classes={classes}`")
    if not isinstance(alpha, numbers.Real) or isinstance(alpha, bool) or not alpha > 0:
        raise ValueError(f"`alpha` must be a positive number. Received `alpha={alpha}`")
    alpha = float(alpha)

    if input_tensor is not None:
        if not isinstance(input_tensor, imagenet_utils.KerasTensor):
            raise ValueError("input_tensor is not a Keras tensor; Received "
                             f"`input_tensor={input_tensor}`")
        if input_shape is not None and input_tensor.shape[2] != input_shape[1]:
            raise ValueError("input_tensor.shape[2] must equal input_shape[1]; Received "
                             f"`input_tensor.shape={input_tensor.shape}`, "
                             f"`input_shape={input_shape}`")
        if input_shape is None:
            input_shape = input_tensor.shape[1:]
    if input_shape is None:
        default_size = 224
    else:
        rows, cols = input_shape[0], input_shape[1]
        default_size = rows if rows == cols and rows in IMAGENET_SIZES else 224
    input_shape = imagenet_utils.obtain_input_shape(
        input_shape, default_size=default_size, min_size=32, data_format="channels_last",
        require_flatten=include_top, weights=weights)
    rows, cols = input_shape[0], input_shape[1]

    if weights == "imagenet":
        if alpha not in IMAGENET_ALPHAS:
            raise ValueError("If imagenet weights are being loaded, alpha must be one of "
                             "`0.35`, `0.50`, `0.75`, `1.0`, `1.3` or `1.4` only; Received "
                             f"`alpha={alpha}`")
        if rows != cols or rows not in IMAGENET_SIZES:
            rows = 224
            warnings.warn("`input_shape` is undefined or non-square, or `rows` is not in "
                          "[96, 128, 160, 192, 224]. Weights for input shape (224, 224) will "
                          "be loaded as the default.", stacklevel=2)

    img_input = imagenet_utils.image_input(input_tensor, input_shape)
    x = layers.Conv2D(_make_divisible(32 * alpha, 8), kernel_size=3, strides=(2, 2),
                      padding="same", use_bias=False, name="Conv1")(img_input)
    x = layers.BatchNormalization(name="bn_Conv1", **_BN)(x)
    x = layers.ReLU(6.0, name="Conv1_relu")(x)
    for block_id, (filters, stride, expansion) in enumerate(_BLOCKS):
        x = _inverted_res_block(x, filters=filters, alpha=alpha, stride=stride,
                                expansion=expansion, block_id=block_id)
    # no alpha on the last convolution below 1 (the paper): only wider networks widen it
    last_block_filters = _make_divisible(1280 * alpha, 8) if alpha > 1.0 else 1280
    x = layers.Conv2D(last_block_filters, kernel_size=1, use_bias=False, name="Conv_1")(x)
    x = layers.BatchNormalization(name="Conv_1_bn", **_BN)(x)
    x = layers.ReLU(6.0, name="out_relu")(x)

    x = imagenet_utils.classifier_or_pooling(x, include_top, pooling, classes,
                                             classifier_activation, weights)
    model = imagenet_utils.application_model(
        input_tensor, img_input, x,
        name if name is not None else f"mobilenetv2_{alpha:0.2f}_{rows}")
    if weights == "imagenet":
        file_name = weights_file_name(alpha, rows, include_top)
        imagenet_utils.load_weights(model, weights, file_name, BASE_WEIGHT_PATH + file_name,
                                    None)
    elif weights is not None:
        model.load_weights(weights)
    return model


def _inverted_res_block(inputs, expansion: int, stride: int, alpha: float, filters: int,
                        block_id: int):
    """Expand (1x1, except block 0), depthwise 3x3 (strided blocks padded as TensorFlow's
    "same"), project (1x1, linear); added to the input when the shapes allow."""
    in_channels = inputs.shape[-1]
    pointwise_filters = _make_divisible(int(filters * alpha), 8)
    x = inputs
    prefix = f"block_{block_id}_"
    if block_id:
        x = layers.Conv2D(expansion * in_channels, kernel_size=1, padding="same",
                          use_bias=False, activation=None, name=f"{prefix}expand")(x)
        x = layers.BatchNormalization(name=f"{prefix}expand_BN", **_BN)(x)
        x = layers.ReLU(6.0, name=f"{prefix}expand_relu")(x)
    else:
        prefix = "expanded_conv_"
    if stride == 2:
        x = layers.ZeroPadding2D(padding=imagenet_utils.correct_pad(x, 3),
                                 name=f"{prefix}pad")(x)
    x = layers.DepthwiseConv2D(kernel_size=3, strides=stride, activation=None,
                               use_bias=False, padding="same" if stride == 1 else "valid",
                               name=f"{prefix}depthwise")(x)
    x = layers.BatchNormalization(name=f"{prefix}depthwise_BN", **_BN)(x)
    x = layers.ReLU(6.0, name=f"{prefix}depthwise_relu")(x)
    x = layers.Conv2D(pointwise_filters, kernel_size=1, padding="same", use_bias=False,
                      activation=None, name=f"{prefix}project")(x)
    x = layers.BatchNormalization(name=f"{prefix}project_BN", **_BN)(x)
    if in_channels == pointwise_filters and stride == 1:
        return layers.Add(name=f"{prefix}add")([inputs, x])
    return x


def _make_divisible(v: float, divisor: int, min_value: Optional[int] = None) -> int:
    """``v`` rounded to the nearest multiple of ``divisor`` (at least ``min_value``), never
    more than 10% below ``v``."""
    if min_value is None:
        min_value = divisor
    new_v = max(min_value, int(v + divisor / 2) // divisor * divisor)
    if new_v < 0.9 * v:
        new_v += divisor
    return new_v


def preprocess_input(x, data_format: Optional[str] = None):
    """Preprocesses a NumPy batch of images (values in [0, 255]) for MobileNetV2: pixels
    scaled to [-1, 1]. A float array is changed in place (as in Keras)."""
    return imagenet_utils.preprocess_input(x, data_format=data_format, mode="tf")


def decode_predictions(preds, top: int = 5) -> list:
    """The ``top`` ImageNet classes of each prediction: ``(class_name, description,
    score)`` tuples, best first."""
    return imagenet_utils.decode_predictions(preds, top=top)
