"""Keras' layers, computed by pycnn's C kernels (``from pycnn import layers``)."""
from .base import InputSpec, Layer, Variable
from .conv_variants import (Conv1D, Conv2DTranspose, Convolution1D, Convolution2DTranspose,
                            DepthwiseConv2D, SeparableConv2D, SeparableConvolution2D)
from .convolutional import Conv2D, Convolution2D
from .core import Activation, Dense, Dropout, Flatten, ReLU, Reshape, Softmax
from .lambda_layer import Lambda
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
from .preprocessing import (CenterCrop, Normalization, RandomBrightness, RandomContrast,
                            RandomCrop, RandomFlip, RandomRotation, RandomTranslation,
                            RandomZoom, Rescaling, Resizing)

# merge layers, shape-changing layers, 1-D pooling
from .merging import (Add, Average, Concatenate, Maximum, Merge, Minimum, Multiply, Subtract,
                      add, average, concatenate, maximum, minimum, multiply, subtract)
from .pooling1d import AveragePooling1D, AvgPool1D, MaxPool1D, MaxPooling1D
from .reshaping import (Cropping1D, Cropping2D, Identity, Permute, RepeatVector, UpSampling1D,
                        UpSampling2D, ZeroPadding1D, ZeroPadding2D)

_MERGE_AND_RESHAPE = [
    "Add", "Average", "AveragePooling1D", "AvgPool1D", "Concatenate", "Cropping1D", "Cropping2D",
    "Identity", "MaxPool1D", "MaxPooling1D", "Maximum", "Merge", "Minimum", "Multiply",
    "Permute", "RepeatVector", "Subtract", "UpSampling1D", "UpSampling2D", "ZeroPadding1D",
    "ZeroPadding2D", "add", "average", "concatenate", "maximum", "minimum", "multiply",
    "subtract"]

__all__ = ["Activation", "AveragePooling2D", "AvgPool2D", "Conv1D", "Conv2D", "Conv2DTranspose",
           "Convolution1D", "Convolution2D", "Convolution2DTranspose", "Dense",
           "DepthwiseConv2D", "SeparableConv2D", "SeparableConvolution2D",
           "Dropout", "Flatten", "Input", "InputLayer", "InputSpec", "KerasTensor", "Lambda", "Layer",
           "MaxPool2D", "MaxPooling2D", "ReLU", "Reshape", "Softmax", "Variable"]
__all__ += _MERGE_AND_RESHAPE
__all__ += __all_norm__
__all__ += ["CenterCrop", "Normalization", "RandomBrightness", "RandomContrast", "RandomCrop",
            "RandomFlip", "RandomRotation", "RandomTranslation", "RandomZoom", "Rescaling",
            "Resizing"]
