"""``keras.ops`` for pycnn: write your own layers, losses and metrics.

Every op works on NumPy values (computed at once, float32 out; integer results for
``argmax``) and on symbolic tensors (inside a layer's ``call``, a ``Lambda``, a subclassed
model's ``call``, a functional model, or a loss function being traced), where it records a
node that the compiled plan runs and differentiates like a built-in layer. Weights
(``self.kernel`` from ``add_weight``) may be used directly: their gradient lands in
``Variable.grad``. Broadcasting is NumPy's.

    class SimpleDense(keras.layers.Layer):
        def build(self, input_shape):
            self.w = self.add_weight(shape=(input_shape[-1], 64), initializer="glorot_uniform")
        def call(self, inputs):
            return ops.relu(ops.matmul(inputs, self.w))

Importing this package also gives symbolic tensors and weights Python's operators
(``+ - * / ** @``, unary minus, comparisons for ``where``, slicing): see ``operators.py``.
"""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from . import math as _m
from . import nn as _nn
from . import shape as _s
from .core import Op, apply, is_symbolic, to_array

__all__ = ["abs", "absolute", "add", "argmax", "argmin", "average_pool", "binary_crossentropy",
           "cast", "categorical_crossentropy", "clip", "concatenate", "conv",
           "convert_to_numpy", "convert_to_tensor", "divide", "dot", "exp", "expand_dims",
           "log", "log_softmax", "matmul", "max", "max_pool", "maximum", "mean", "min",
           "minimum", "multiply", "negative", "one_hot", "power", "relu", "reshape", "shape",
           "sigmoid", "softmax", "sqrt", "square", "squeeze", "stack", "subtract", "sum",
           "tanh", "transpose", "true_divide", "where"]

def _int(value, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"`{name}` must be an integer. Received: {name}={value!r}")
    return int(value)


# ---- arithmetic --------------------------------------------------------------------------------
def add(x1, x2):
    """``x1 + x2`` with broadcasting."""
    return apply(_m.Add(), x1, x2, names=("x1", "x2"))


def subtract(x1, x2):
    """``x1 - x2`` with broadcasting."""
    return apply(_m.Subtract(), x1, x2, names=("x1", "x2"))


def multiply(x1, x2):
    """``x1 * x2`` with broadcasting."""
    return apply(_m.Multiply(), x1, x2, names=("x1", "x2"))


def divide(x1, x2):
    """``x1 / x2`` with broadcasting."""
    return apply(_m.Divide(), x1, x2, names=("x1", "x2"))


true_divide = divide


def power(x1, x2):
    """``x1 ** x2`` with broadcasting."""
    return apply(_m.Power(), x1, x2, names=("x1", "x2"))


def maximum(x1, x2):
    """Elementwise maximum (the gradient goes to ``x1`` on ties)."""
    return apply(_m.Maximum(), x1, x2, names=("x1", "x2"))


def minimum(x1, x2):
    """Elementwise minimum (the gradient goes to ``x1`` on ties)."""
    return apply(_m.Minimum(), x1, x2, names=("x1", "x2"))


def where(condition, x1=None, x2=None):
    """``x1`` where ``condition`` is true, else ``x2`` (no gradient for ``condition``)."""
    if x1 is None or x2 is None:
        raise ValueError("pycnn's ops.where needs `x1` and `x2` (the one-argument form, "
                         "indices of true values, has no fixed shape)")
    return apply(_m.Where(), condition, x1, x2, names=("condition", "x1", "x2"))


def negative(x):
    return apply(_m.Negative(), x)


def exp(x):
    return apply(_m.Exp(), x)


def log(x):
    return apply(_m.Log(), x)


def sqrt(x):
    return apply(_m.Sqrt(), x)


def square(x):
    return apply(_m.Square(), x)


def abs(x):     # noqa: A001 - Keras' name
    return apply(_m.Abs(), x)


absolute = abs


def clip(x, x_min, x_max):
    """``x`` limited to ``[x_min, x_max]``; the gradient passes inside the interval."""
    lo, hi = _m.scalar_attr(x_min, "x_min"), _m.scalar_attr(x_max, "x_max")
    if lo is None or hi is None:
        raise ValueError("ops.clip needs numbers `x_min` and `x_max`")
    return apply(_m.Clip(x_min=lo, x_max=hi), x)


def relu(x):
    return apply(_m.Relu(), x)


def sigmoid(x):
    return apply(_m.Sigmoid(), x)


def tanh(x):
    return apply(_m.Tanh(), x)


def softmax(x, axis=-1):
    return apply(_m.Softmax(axis=_int(axis, "axis")), x)


def log_softmax(x, axis=-1):
    return apply(_m.LogSoftmax(axis=_int(axis, "axis")), x)


# ---- reductions ----------------------------------------------------------------------------
def sum(x, axis=None, keepdims=False):     # noqa: A001
    return apply(_m.Sum(**_m.reduction_attrs(axis, keepdims)), x)


def mean(x, axis=None, keepdims=False):
    return apply(_m.Mean(**_m.reduction_attrs(axis, keepdims)), x)


def max(x, axis=None, keepdims=False, initial=None):     # noqa: A001
    if initial is not None:
        return maximum(max(x, axis, keepdims), initial)
    return apply(_m.Max(**_m.reduction_attrs(axis, keepdims)), x)


def min(x, axis=None, keepdims=False, initial=None):     # noqa: A001
    if initial is not None:
        return minimum(min(x, axis, keepdims), initial)
    return apply(_m.Min(**_m.reduction_attrs(axis, keepdims)), x)


def argmax(x, axis=None, keepdims=False):
    """Indices of the maxima (int32, no gradient)."""
    axis = None if axis is None else _int(axis, "axis")
    return apply(_m.ArgMax(axis=axis, keepdims=bool(keepdims)), x)


def argmin(x, axis=None, keepdims=False):
    axis = None if axis is None else _int(axis, "axis")
    return apply(_m.ArgMin(axis=axis, keepdims=bool(keepdims)), x)


def matmul(x1, x2):
    """The matrix product as ``np.matmul`` (batched over leading axes)."""
    return apply(_m.MatMul(), x1, x2, names=("x1", "x2"))


def dot(x1, x2):
    """``np.dot`` for a second argument of rank <= 2."""
    return apply(_m.Dot(), x1, x2, names=("x1", "x2"))


# ---- shapes ----------------------------------------------------------------------------------
def _shape_arg(newshape) -> tuple:
    if isinstance(newshape, (int, np.integer)) and not isinstance(newshape, bool):
        return (int(newshape),)
    if not isinstance(newshape, (tuple, list)):
        raise TypeError(f"`newshape` must be a tuple of integers. Received: "
                        f"newshape={newshape!r}")
    out = []
    for d in newshape:
        if d is None:
            d = -1
        out.append(_int(d, "newshape"))
    if out.count(-1) > 1:
        raise ValueError(f"`newshape` can have at most one -1 (or None). Received: "
                         f"newshape={newshape!r}")
    return tuple(out)


def reshape(x, newshape):
    """``x`` with ``newshape`` (one size may be -1; None is the batch size, as -1)."""
    return apply(_s.Reshape(newshape=_shape_arg(newshape)), x)


def transpose(x, axes=None):
    if axes is not None:
        axes = tuple(_int(a, "axes") for a in axes)
    return apply(_s.Transpose(axes=axes), x)


def expand_dims(x, axis):
    return apply(_s.ExpandDims(axis=_int(axis, "axis")), x)


def squeeze(x, axis=None):
    if axis is not None:
        axis = tuple(_int(a, "axis") for a in axis) if isinstance(axis, (tuple, list)) else \
            _int(axis, "axis")
    return apply(_s.Squeeze(axis=axis), x)


def concatenate(xs, axis=0):
    """Join a list of tensors along ``axis``."""
    if not isinstance(xs, (list, tuple)) or not xs:
        raise ValueError(f"`xs` must be a non-empty list of tensors. Received: xs={xs!r}")
    return apply(_s.Concatenate(axis=_int(axis, "axis")), *xs)


def stack(x, axis=0):
    """Stack a list of tensors of one shape along a new ``axis``."""
    if not isinstance(x, (list, tuple)) or not x:
        raise ValueError(f"`x` must be a non-empty list of tensors. Received: x={x!r}")
    return apply(_s.Stack(axis=_int(axis, "axis")), *x)


def _check_key(key):
    parts = key if isinstance(key, tuple) else (key,)
    for k in parts:
        if is_symbolic(k):
            raise TypeError("Slicing a tensor with a symbolic tensor is not supported; use "
                            "ops.where or a one-hot mask")
    return key


def getitem(x, key):
    """``x[key]`` for a static key (ints, slices, None, Ellipsis, integer arrays)."""
    return apply(_s.GetItem(key=_check_key(key)), x)


def cast(x, dtype):
    """``x`` as ``dtype`` (float types compute as float32)."""
    return apply(_s.Cast(_s.dtype_of(dtype)), x)


def convert_to_tensor(x, dtype=None, sparse=None):
    """A NumPy array (float32 for floats) of ``x``; a symbolic tensor is returned as is."""
    if is_symbolic(x):
        return x if dtype is None else cast(x, dtype)
    a = np.array(to_array(x), copy=True)
    return a if dtype is None else a.astype(_s.dtype_of(dtype))


def convert_to_numpy(x):
    if is_symbolic(x):
        raise TypeError("A symbolic tensor has no values; ops.convert_to_numpy works on "
                        "arrays")
    return np.array(to_array(x), copy=True)


def shape(x) -> tuple:
    """The shape (None for unknown sizes of a symbolic tensor)."""
    return tuple(x.shape) if hasattr(x, "shape") else np.shape(x)


def one_hot(x, num_classes, axis=-1, dtype=None, sparse=False):
    """Integer labels as one-hot float32 vectors (no gradient)."""
    n = _int(num_classes, "num_classes")
    if n <= 0:
        raise ValueError(f"`num_classes` must be positive. Received: num_classes={n}")
    if sparse:
        raise ValueError("pycnn has no sparse tensors (sparse=True)")
    return apply(_s.OneHot(num_classes=n, axis=_int(axis, "axis")), x)


# ---- neural-network ops ------------------------------------------------------------------------
def _pair(v, name: str) -> tuple:
    from ..layers.base import int_pair
    return int_pair(v, name)


def _padding(padding) -> str:
    from ..layers.base import padding_arg
    return padding_arg(padding)


def _channels_last(data_format) -> None:
    if data_format not in (None, "channels_last"):
        raise ValueError(f"pycnn supports data_format='channels_last' only. Received: "
                         f"data_format={data_format!r}")


def conv(inputs, kernel, strides=1, padding="valid", data_format=None, dilation_rate=1):
    """2-D convolution of NHWC ``inputs`` with a kernel (kh, kw, in_channels, filters)."""
    _channels_last(data_format)
    if _pair(dilation_rate, "dilation_rate") != (1, 1):
        raise ValueError(f"pycnn's ops.conv does not support dilation. Received: "
                         f"dilation_rate={dilation_rate!r}")
    return apply(_nn.Conv(strides=_pair(strides, "strides"), padding=_padding(padding)),
                 inputs, kernel, names=("inputs", "kernel"))


def max_pool(inputs, pool_size, strides=None, padding="valid", data_format=None):
    _channels_last(data_format)
    size = _pair(pool_size, "pool_size")
    return apply(_nn.MaxPool(pool_size=size, strides=size if strides is None else
                             _pair(strides, "strides"), padding=_padding(padding)), inputs,
                 names=("inputs",))


def average_pool(inputs, pool_size, strides=None, padding="valid", data_format=None):
    _channels_last(data_format)
    size = _pair(pool_size, "pool_size")
    return apply(_nn.AveragePool(pool_size=size, strides=size if strides is None else
                                 _pair(strides, "strides"), padding=_padding(padding)),
                 inputs, names=("inputs",))


def binary_crossentropy(target, output, from_logits=False):
    """Elementwise binary crossentropy (Keras 3's ``ops.binary_crossentropy``)."""
    return apply(_nn.BinaryCrossentropy(from_logits=bool(from_logits)), target, output,
                 names=("target", "output"))


def categorical_crossentropy(target, output, from_logits=False, axis=-1):
    """Crossentropy over ``axis`` (Keras 3's ``ops.categorical_crossentropy``)."""
    return apply(_nn.CategoricalCrossentropy(from_logits=bool(from_logits),
                                             axis=_int(axis, "axis")), target, output,
                 names=("target", "output"))


from . import operators as _operators  # noqa: E402  (the operators use the functions above)

_operators.install()
