"""ResNet50 (He et al., CVPR 2016) as ``keras.applications.resnet50``: Keras' layer names
(``conv1_conv``, ``conv2_block1_0_conv``, ..., ``conv5_block3_out``), shapes and weight order,
so that Keras' published ImageNet weight files load into it. The default input size is
224x224; ``include_top=False`` accepts any size of at least 32x32.
"""
from __future__ import annotations

from typing import Any, Callable, Optional

from .. import layers
from ..models.model import Model
from . import imagenet_utils

BASE_WEIGHTS_PATH = "https://storage.googleapis.com/tensorflow/keras-applications/resnet/"
#: MD5 of the files (with the classifier, without), as Keras checks them.
WEIGHTS_HASHES = {"resnet50": ("2cb95161c43110f7111970584f804107",
                               "4d473c1dd8becc155b73f8504c6f6626")}

_BN_EPSILON = 1.001e-5


def ResNet(stack_fn: Callable, model_name: str = "resnet", include_top: bool = True,
           weights: Any = "imagenet", input_tensor=None, input_shape: Optional[tuple] = None,
           pooling: Optional[str] = None, classes: int = 1000,
           classifier_activation="softmax", name: Optional[str] = None) -> Model:
    """A ResNet (version 1: convolutions with biases, batch normalization after each)
    whose residual stages ``stack_fn(x)`` builds."""
    img_input = imagenet_utils.checked_image_input(weights, include_top, classes, input_tensor,
                                                   input_shape)

    x = layers.ZeroPadding2D(padding=((3, 3), (3, 3)), name="conv1_pad")(img_input)
    x = layers.Conv2D(64, 7, strides=2, use_bias=True, name="conv1_conv")(x)
    x = layers.BatchNormalization(axis=3, epsilon=_BN_EPSILON, name="conv1_bn")(x)
    x = layers.Activation("relu", name="conv1_relu")(x)
    x = layers.ZeroPadding2D(padding=((1, 1), (1, 1)), name="pool1_pad")(x)
    x = layers.MaxPooling2D(3, strides=2, name="pool1_pool")(x)

    x = stack_fn(x)

    x = imagenet_utils.classifier_or_pooling(x, include_top, pooling, classes,
                                             classifier_activation, weights,
                                             avg_name="avg_pool", max_name="max_pool")
    model = imagenet_utils.application_model(input_tensor, img_input, x, name or model_name)
    if weights == "imagenet" and model_name in WEIGHTS_HASHES:
        suffix = ".h5" if include_top else "_notop.h5"
        file_name = f"{model_name}_weights_tf_dim_ordering_tf_kernels{suffix}"
        file_hash = WEIGHTS_HASHES[model_name][0 if include_top else 1]
        imagenet_utils.load_weights(model, weights, file_name, BASE_WEIGHTS_PATH + file_name,
                                    file_hash)
    elif weights is not None and weights != "imagenet":
        model.load_weights(weights)
    return model


def residual_block_v1(x, filters: int, kernel_size: int = 3, stride: int = 1,
                      conv_shortcut: bool = True, name: str = ""):
    """A bottleneck block: 1x1 (``filters``), ``kernel_size`` (``filters``), 1x1
    (``4 * filters``) convolutions, each batch-normalized, added to the shortcut (a strided
    1x1 convolution when ``conv_shortcut``, else the input), then a ReLU."""
    if conv_shortcut:
        shortcut = layers.Conv2D(4 * filters, 1, strides=stride, name=name + "_0_conv")(x)
        shortcut = layers.BatchNormalization(axis=3, epsilon=_BN_EPSILON,
                                             name=name + "_0_bn")(shortcut)
    else:
        shortcut = x
    x = layers.Conv2D(filters, 1, strides=stride, name=name + "_1_conv")(x)
    x = layers.BatchNormalization(axis=3, epsilon=_BN_EPSILON, name=name + "_1_bn")(x)
    x = layers.Activation("relu", name=name + "_1_relu")(x)
    x = layers.Conv2D(filters, kernel_size, padding="same", name=name + "_2_conv")(x)
    x = layers.BatchNormalization(axis=3, epsilon=_BN_EPSILON, name=name + "_2_bn")(x)
    x = layers.Activation("relu", name=name + "_2_relu")(x)
    x = layers.Conv2D(4 * filters, 1, name=name + "_3_conv")(x)
    x = layers.BatchNormalization(axis=3, epsilon=_BN_EPSILON, name=name + "_3_bn")(x)
    x = layers.Add(name=name + "_add")([shortcut, x])
    return layers.Activation("relu", name=name + "_out")(x)


def stack_residual_blocks_v1(x, filters: int, blocks: int, stride1: int = 2,
                             name: str = ""):
    """``blocks`` residual blocks, the first with a convolution shortcut of stride
    ``stride1``."""
    x = residual_block_v1(x, filters, stride=stride1, name=name + "_block1")
    for i in range(2, blocks + 1):
        x = residual_block_v1(x, filters, conv_shortcut=False, name=f"{name}_block{i}")
    return x


def ResNet50(include_top: bool = True, weights: Any = "imagenet", input_tensor=None,
             input_shape: Optional[tuple] = None, pooling: Optional[str] = None,
             classes: int = 1000, classifier_activation="softmax",
             name: str = "resnet50") -> Model:
    """Instantiates the ResNet50 architecture.

    Note: ResNet50 expects its inputs preprocessed by ``pycnn.applications.resnet50.
    preprocess_input`` (RGB to BGR, each channel zero-centered with ImageNet's mean).

    Args:
        include_top: whether to include the fully-connected layer at the top.
        weights: ``None`` (random initialization), ``"imagenet"`` (pre-training on
            ImageNet, downloaded once into Keras' cache ``~/.keras/models/``), or the path
            to a weights file.
        input_tensor: optional symbolic tensor (the output of ``pycnn.Input()``) to use as
            the model's image input.
        input_shape: optional shape tuple, only to be specified if ``include_top`` is
            False (otherwise the input shape has to be ``(224, 224, 3)``), with exactly 3
            input channels and width and height of at least 32. pycnn builds a model for
            one input size, so ``include_top=False`` needs it (or ``input_tensor``).
        pooling: with ``include_top=False``: ``None`` (the 4D output of the last
            convolutional block), ``"avg"`` or ``"max"`` (global pooling to a 2D output).
        classes: number of classes, only with ``include_top=True`` and no ``weights``.
        classifier_activation: the activation of the ``predictions`` layer (``None`` for
            logits); with pretrained weights only ``None`` or ``"softmax"``.
        name: the model's name.

    Returns:
        A ``Model``.
    """
    def stack_fn(x):
        x = stack_residual_blocks_v1(x, 64, 3, stride1=1, name="conv2")
        x = stack_residual_blocks_v1(x, 128, 4, name="conv3")
        x = stack_residual_blocks_v1(x, 256, 6, name="conv4")
        return stack_residual_blocks_v1(x, 512, 3, name="conv5")

    return ResNet(stack_fn, "resnet50", include_top, weights, input_tensor, input_shape,
                  pooling, classes, classifier_activation, name=name)


def preprocess_input(x, data_format: Optional[str] = None):
    """Preprocesses a NumPy batch of images (values in [0, 255]) for ResNet50: RGB to BGR,
    then each color channel zero-centered with respect to ImageNet, without scaling. A float
    array is changed in place (as in Keras)."""
    return imagenet_utils.preprocess_input(x, data_format=data_format, mode="caffe")


def decode_predictions(preds, top: int = 5) -> list:
    """The ``top`` ImageNet classes of each prediction: ``(class_name, description,
    score)`` tuples, best first."""
    return imagenet_utils.decode_predictions(preds, top=top)
