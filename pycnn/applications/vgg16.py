"""VGG16 (Simonyan & Zisserman, ICLR 2015) as ``keras.applications.vgg16``: the same layer
names, shapes and weight order as Keras, so that Keras' published ImageNet weight files load
into it. The default input size is 224x224; ``include_top=False`` accepts any size of at least
32x32.
"""
from __future__ import annotations

from typing import Any, Optional

from .. import layers
from ..models.model import Model
from . import imagenet_utils

WEIGHTS_PATH = ("https://storage.googleapis.com/tensorflow/keras-applications/"
                "vgg16/vgg16_weights_tf_dim_ordering_tf_kernels.h5")
WEIGHTS_PATH_NO_TOP = ("https://storage.googleapis.com/tensorflow/keras-applications/"
                       "vgg16/vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5")
#: (file name, MD5) of the files with and without the classifier, as Keras checks them.
WEIGHTS_FILES = {True: ("vgg16_weights_tf_dim_ordering_tf_kernels.h5",
                        "64373286793e3c8b2b4e3219cbf3544b"),
                 False: ("vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5",
                         "6d6bbae143d832006294945121d1f1fc")}

#: (filters, convolutions) of the five blocks.
_BLOCKS = ((64, 2), (128, 2), (256, 3), (512, 3), (512, 3))


def VGG16(include_top: bool = True, weights: Any = "imagenet", input_tensor=None,
          input_shape: Optional[tuple] = None, pooling: Optional[str] = None,
          classes: int = 1000, classifier_activation="softmax",
          name: str = "vgg16") -> Model:
    """Instantiates the VGG16 model.

    Note: VGG16 expects its inputs preprocessed by ``pycnn.applications.vgg16.
    preprocess_input`` (RGB to BGR, each channel zero-centered with ImageNet's mean).

    Args:
        include_top: whether to include the 3 fully-connected layers at the top.
        weights: ``None`` (random initialization), ``"imagenet"`` (pre-training on
            ImageNet, downloaded once into Keras' cache ``~/.keras/models/``), or the path
            to a weights file.
        input_tensor: optional symbolic tensor (the output of ``pycnn.Input()``) to use as
            the model's image input.
        input_shape: optional shape tuple, only to be specified if ``include_top`` is
            False (otherwise the input shape has to be ``(224, 224, 3)``). It should have
            exactly 3 input channels, and width and height of at least 32. pycnn builds a
            model for one input size, so ``include_top=False`` needs it (or ``input_tensor``).
        pooling: with ``include_top=False``: ``None`` (the 4D output of the last
            convolutional block), ``"avg"`` (global average pooling) or ``"max"``.
        classes: number of classes, only with ``include_top=True`` and no ``weights``.
        classifier_activation: the activation of the ``predictions`` layer (``None`` for
            logits); with pretrained weights only ``None`` or ``"softmax"``.
        name: the model's name.

    Returns:
        A ``Model``.
    """
    img_input = imagenet_utils.checked_image_input(weights, include_top, classes, input_tensor,
                                                   input_shape)

    x = img_input
    for b, (filters, convs) in enumerate(_BLOCKS, start=1):
        for c in range(1, convs + 1):
            x = layers.Conv2D(filters, (3, 3), activation="relu", padding="same",
                              name=f"block{b}_conv{c}")(x)
        x = layers.MaxPooling2D((2, 2), strides=(2, 2), name=f"block{b}_pool")(x)

    x = imagenet_utils.classifier_or_pooling(x, include_top, pooling, classes,
                                             classifier_activation, weights, features=_fc_layers)
    model = imagenet_utils.application_model(input_tensor, img_input, x, name)
    file_name, file_hash = WEIGHTS_FILES[bool(include_top)]
    origin = WEIGHTS_PATH if include_top else WEIGHTS_PATH_NO_TOP
    imagenet_utils.load_weights(model, weights, file_name, origin, file_hash)
    return model


def _fc_layers(x):
    """VGG16's top before the predictions: flattened, two fully-connected ReLU layers."""
    x = layers.Flatten(name="flatten")(x)
    x = layers.Dense(4096, activation="relu", name="fc1")(x)
    return layers.Dense(4096, activation="relu", name="fc2")(x)


def preprocess_input(x, data_format: Optional[str] = None):
    """Preprocesses a NumPy batch of images (values in [0, 255]) for VGG16: RGB to BGR, then
    each color channel zero-centered with respect to ImageNet, without scaling. A float array
    is changed in place (as in Keras)."""
    return imagenet_utils.preprocess_input(x, data_format=data_format, mode="caffe")


def decode_predictions(preds, top: int = 5) -> list:
    """The ``top`` ImageNet classes of each prediction: ``(class_name, description,
    score)`` tuples, best first."""
    return imagenet_utils.decode_predictions(preds, top=top)
