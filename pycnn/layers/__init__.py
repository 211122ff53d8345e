"""Keras' layers, computed by pycnn's C kernels (``from pycnn import layers``)."""
from .base import InputSpec, Layer, Variable
from .conv_variants import (Conv1D, Conv2DTranspose, Convolution1D, Convolution2DTranspose,
                            DepthwiseConv2D, SeparableConv2D, SeparableConvolution2D)
from .convolutional import Conv2D, Convolution2D
from .core import Activation, Dense, Dropout, Flatten, ReLU, Reshape, Softmax
from .pooling import AveragePooling2D, AvgPool2D, MaxPool2D, MaxPooling2D
from .symbolic import Input, InputLayer, KerasTensor

__all__ = ["Activation", "AveragePooling2D", "AvgPool2D", "Conv1D", "Conv2D", "Conv2DTranspose",
           "Convolution1D", "Convolution2D", "Convolution2DTranspose", "Dense",
           "DepthwiseConv2D", "SeparableConv2D", "SeparableConvolution2D",
           "Dropout", "Flatten", "Input", "InputLayer", "InputSpec", "KerasTensor", "Layer",
           "MaxPool2D", "MaxPooling2D", "ReLU", "Reshape", "Softmax", "Variable"]
