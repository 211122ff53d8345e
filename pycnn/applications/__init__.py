"""Keras Applications built from pycnn's layers, loading the weight files Keras publishes
(``from pycnn.applications import VGG16``; as ``keras.applications``):

* ``VGG16`` (module ``vgg16``), ``ResNet50`` (modules ``resnet`` and ``resnet50``),
  ``MobileNetV2`` (module ``mobilenet_v2``);
* each module's ``preprocess_input(x)`` and ``decode_predictions(preds, top=5)``;
* ``imagenet_utils``: the shared preprocessing, decoding and download helpers.

``weights="imagenet"`` downloads Keras' file once into ``$KERAS_HOME/models/``
(``~/.keras/models/``), checked against Keras' hash; ``weights="path.h5"`` loads a file.
"""
import sys as _sys

from . import imagenet_utils, mobilenet_v2, resnet, vgg16
from .mobilenet_v2 import MobileNetV2
from .resnet import ResNet50
from .vgg16 import VGG16

resnet50 = resnet    # keras.applications.resnet50 is keras.applications.resnet's ResNet50
_sys.modules[__name__ + ".resnet50"] = resnet

__all__ = ["MobileNetV2", "ResNet50", "VGG16", "imagenet_utils", "mobilenet_v2", "resnet",
           "resnet50", "vgg16"]
