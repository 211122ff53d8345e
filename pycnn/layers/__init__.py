"""Keras' layers, computed by pycnn's C kernels (``from pycnn import layers``)."""
from .base import InputSpec, Layer, Variable
from .convolutional import Conv2D, Convolution2D
from .core import Activation, Dense, Dropout, Flatten, ReLU, Reshape, Softmax
from .pooling import AveragePooling2D, AvgPool2D, MaxPool2D, MaxPooling2D
from .symbolic import Input, InputLayer, KerasTensor
from .preprocessing import (CenterCrop, Normalization, RandomBrightness, RandomContrast,
                            RandomCrop, RandomFlip, RandomRotation, RandomTranslation,
                            RandomZoom, Rescaling, Resizing)

__all__ = ["Activation", "AveragePooling2D", "AvgPool2D", "Conv2D", "Convolution2D", "Dense",
           "Dropout", "Flatten", "Input", "InputLayer", "InputSpec", "KerasTensor", "Layer",
           "MaxPool2D", "MaxPooling2D", "ReLU", "Reshape", "Softmax", "Variable"]
__all__ += ["CenterCrop", "Normalization", "RandomBrightness", "RandomContrast", "RandomCrop",
            "RandomFlip", "RandomRotation", "RandomTranslation", "RandomZoom", "Rescaling",
            "Resizing"]
