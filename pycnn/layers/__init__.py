"""Keras' layers, computed by pycnn's C kernels (``from pycnn import layers``)."""
from .base import InputSpec, Layer, Variable
from .convolutional import Conv2D, Convolution2D
from .core import Activation, Dense, Dropout, Flatten, ReLU, Reshape, Softmax
from .pooling import AveragePooling2D, AvgPool2D, MaxPool2D, MaxPooling2D
from .symbolic import Input, InputLayer, KerasTensor
# -- normalization, activation, global pooling and noise layers (layers-norm) --
from .activation_layers import ELU, LeakyReLU, PReLU
from .global_pooling import (GlobalAveragePooling1D, GlobalAveragePooling2D, GlobalAvgPool1D,
                             GlobalAvgPool2D, GlobalMaxPool1D, GlobalMaxPool2D,
                             GlobalMaxPooling1D, GlobalMaxPooling2D)
from .noise import GaussianDropout, GaussianNoise, SpatialDropout2D
from .normalization import BatchNormalization, LayerNormalization
__all_norm__ = ["BatchNormalization", "ELU", "GaussianDropout", "GaussianNoise",
                "GlobalAveragePooling1D", "GlobalAveragePooling2D", "GlobalAvgPool1D",
                "GlobalAvgPool2D", "GlobalMaxPool1D", "GlobalMaxPool2D", "GlobalMaxPooling1D",
                "GlobalMaxPooling2D", "LayerNormalization", "LeakyReLU", "PReLU",
                "SpatialDropout2D"]
# -- end layers-norm --

__all__ = ["Activation", "AveragePooling2D", "AvgPool2D", "Conv2D", "Convolution2D", "Dense",
           "Dropout", "Flatten", "Input", "InputLayer", "InputSpec", "KerasTensor", "Layer",
           "MaxPool2D", "MaxPooling2D", "ReLU", "Reshape", "Softmax", "Variable"]
__all__ += __all_norm__
