"""Activation functions by Keras name. Each maps a NumPy array through the C kernel; layers
use the names (``Dense(..., activation="relu")``) and fuse them where they can."""
from __future__ import annotations

from typing import Callable, Optional, Union

import numpy as np

from . import _C

#: The activations the C kernels implement, by Keras name.
KERNEL_ACTIVATIONS = ("linear", "relu", "sigmoid", "tanh", "softmax")


def _apply(kind: str, x) -> np.ndarray:
    x = np.ascontiguousarray(x, dtype=np.float32)
    y = np.empty_like(x)
    if x.size:
        _C.activation_forward(kind, x, y)
    return y


def relu(x):
    """max(x, 0)."""
    return _apply("relu", x)


def sigmoid(x):
    """1 / (1 + exp(-x))."""
    return _apply("sigmoid", x)


def tanh(x):
    return _apply("tanh", x)


def softmax(x, axis: int = -1):
    """exp(x) / sum(exp(x)) over the last axis, computed stably."""
    if axis not in (-1, np.ndim(x) - 1):
        raise ValueError(f"softmax is supported over the last axis only. Received: axis={axis}")
    return _apply("softmax", x)


def linear(x):
    return np.asarray(x, dtype=np.float32)


_BY_NAME = {"relu": relu, "sigmoid": sigmoid, "tanh": tanh, "softmax": softmax,
            "linear": linear}


def get(identifier: Optional[Union[str, Callable]]) -> str:
    """The kernel name of an activation given as None, a Keras name or one of this module's
    functions. (Arbitrary Python callables are not differentiable by pycnn, so they are refused.)"""
    if identifier is None:
        return "linear"
    if isinstance(identifier, str):
        if identifier in _BY_NAME:
            return identifier
        raise ValueError(f"Unknown activation: {identifier!r}. Expected one of "
                         f"{sorted(_BY_NAME)} or None")
    for name, fn in _BY_NAME.items():
        if identifier is fn:
            return name
    raise ValueError(f"Could not interpret activation function identifier: {identifier!r}; "
                     f"expected one of {sorted(_BY_NAME)}")


def serialize(name: str) -> str:
    return name
