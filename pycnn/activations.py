"""Activation functions by Keras name. Each maps a NumPy array through a C kernel; layers use
the names (``Dense(..., activation="relu")``), fuse ``relu`` into their kernels and run the
others as a second kernel, forward and backward.

``get("swish")`` gives the canonical name (``"silu"``) as a string that is also callable
(``activations.get("relu")(x)`` works as in Keras); ``deserialize`` gives the function.
"""
from __future__ import annotations

import math
from typing import Callable, Optional, Union

import numpy as np

from . import _C

#: Kinds whose gradient the kernels compute from the forward input (not from the output).
_NEEDS_INPUT = frozenset({"silu", "hard_silu", "gelu", "gelu_tanh", "mish"})

#: Keras 3's aliases, to the canonical name ``serialize`` writes.
_ALIASES = {"swish": "silu", "hard_swish": "hard_silu"}


def needs_input(name: str) -> bool:
    """Whether the gradient of activation ``name`` (with its default parameter) reads the
    forward input: then ``_C.activation_backward(..., x=input)`` must be given it."""
    return name in _NEEDS_INPUT


def _apply(kind: str, x, alpha=None) -> np.ndarray:
    x = np.ascontiguousarray(x, dtype=np.float32)
    y = np.empty_like(x)
    if x.size:
        if alpha is None:
            _C.activation_forward(kind, x, y)
        else:
            _C.activation_forward(kind, x, y, alpha=float(alpha))
    return y


def _number(value, arg: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)) \
            or not math.isfinite(float(value)):
        raise ValueError(f"Expected a finite float for `{arg}`. Received: {arg}={value!r}")
    return float(value)


def relu(x, negative_slope: float = 0.0, max_value: Optional[float] = None,
         threshold: float = 0.0):
    """max(x, 0); Keras' options: ``negative_slope`` below ``threshold``, a cap ``max_value``."""
    if negative_slope == 0 and max_value is None and threshold == 0:
        return _apply("relu", x)
    x = np.asarray(x, dtype=np.float32)
    t, s = np.float32(_number(threshold, "threshold")), _number(negative_slope, "negative_slope")
    y = np.where(x > t, x, np.float32(s) * (x - t) if s else np.float32(0)).astype(np.float32)
    if max_value is not None:
        y = np.minimum(y, np.float32(_number(max_value, "max_value")))
    return y


def sigmoid(x):
    """1 / (1 + exp(-x))."""
    return _apply("sigmoid", x)


def tanh(x):
    """Hyperbolic tangent."""
    return _apply("tanh", x)


def softmax(x, axis: int = -1):
    """exp(x) / sum(exp(x)) over the last axis, computed stably."""
    if axis not in (-1, np.ndim(x) - 1):
        raise ValueError(f"softmax is supported over the last axis only. Received: axis={axis}")
    return _apply("softmax", x)


def linear(x):
    """The identity."""
    return np.asarray(x, dtype=np.float32)


def elu(x, alpha: float = 1.0):
    """x if x > 0 else alpha * (exp(x) - 1)."""
    return _apply("elu", x, _number(alpha, "alpha"))


def selu(x):
    """scale * elu(x, alpha) with Keras' constants alpha = 1.67326324, scale = 1.05070098."""
    return _apply("selu", x)


def softplus(x):
    """log(exp(x) + 1), computed without overflow."""
    return _apply("softplus", x)


def softsign(x):
    """x / (abs(x) + 1)."""
    return _apply("softsign", x)


def silu(x):
    """Swish: x * sigmoid(x)."""
    return _apply("silu", x)


swish = silu


def hard_sigmoid(x):
    """Keras 3's piecewise-linear sigmoid: relu6(x + 3) / 6 (0 below -3, 1 above 3)."""
    return _apply("hard_sigmoid", x)


def hard_silu(x):
    """Hard swish: x * relu6(x + 3) / 6."""
    return _apply("hard_silu", x)


hard_swish = hard_silu


def relu6(x):
    """min(max(x, 0), 6)."""
    return _apply("relu6", x)


def leaky_relu(x, negative_slope: float = 0.2):
    """x if x > 0 else negative_slope * x (Keras 3's default slope for the function: 0.2)."""
    return _apply("leaky_relu", x, _number(negative_slope, "negative_slope"))


def exponential(x):
    """exp(x)."""
    return _apply("exponential", x)


def gelu(x, approximate: bool = False):
    """Gaussian error linear unit: x * Phi(x) = x/2 (1 + erf(x / sqrt(2))); with
    ``approximate=True`` the tanh approximation (Keras 3's default is exact)."""
    return _apply("gelu_tanh" if approximate else "gelu", x)


def mish(x):
    """x * tanh(softplus(x))."""
    return _apply("mish", x)


def log_sigmoid(x):
    """log(sigmoid(x)) = -softplus(-x)."""
    return _apply("log_sigmoid", x)


def hard_tanh(x):
    """clip(x, -1, 1)."""
    return _apply("hard_tanh", x)


_BY_NAME: dict[str, Callable] = {
    "relu": relu, "sigmoid": sigmoid, "tanh": tanh, "softmax": softmax, "linear": linear,
    "elu": elu, "selu": selu, "softplus": softplus, "softsign": softsign, "silu": silu,
    "hard_sigmoid": hard_sigmoid, "hard_silu": hard_silu, "relu6": relu6,
    "leaky_relu": leaky_relu, "exponential": exponential, "gelu": gelu, "mish": mish,
    "log_sigmoid": log_sigmoid, "hard_tanh": hard_tanh}


class ActivationName(str):
    """A canonical activation name that is also the activation: ``get("relu") == "relu"`` and
    ``get("relu")(x)`` applies it."""

    def __call__(self, x, *args, **kwargs):
        return _BY_NAME[str(self)](x, *args, **kwargs)

    def __reduce__(self):
        return (ActivationName, (str(self),))


def _canonical(name: str) -> Optional[str]:
    name = _ALIASES.get(name, name)
    return name if name in _BY_NAME else None


def get(identifier: Union[None, str, dict, Callable]) -> ActivationName:
    """The canonical name of an activation given as None (linear), a Keras name
    (``"swish"`` -> ``"silu"``), a serialized function (``{"class_name": "function",
    "config": "relu"}``) or one of this module's functions. Arbitrary Python callables are
    refused: pycnn could not differentiate them."""
    if identifier is None:
        return ActivationName("linear")
    if isinstance(identifier, dict) and identifier.get("class_name") == "function":
        identifier = identifier.get("config")
    if isinstance(identifier, str):
        name = _canonical(identifier)
        if name is None:
            raise ValueError(f"Unknown activation: {identifier!r}. Expected one of "
                             f"{sorted(set(_BY_NAME) | set(_ALIASES))} or None")
        return ActivationName(name)
    for name, fn in list(_BY_NAME.items()) + [("silu", swish), ("hard_silu", hard_swish)]:
        if identifier is fn:
            return ActivationName(name)
    raise ValueError(f"Could not interpret activation function identifier: {identifier!r}; "
                     f"expected one of {sorted(_BY_NAME)} (pycnn differentiates only its own "
                     "activations)")


def serialize(activation) -> str:
    """The name Keras 3 writes for an activation in a layer's config (``"silu"`` for swish)."""
    return str(get(activation))


def deserialize(config, custom_objects: Optional[dict] = None) -> Callable:
    """The activation function a name (or ``{"class_name": "function", "config": name}``)
    describes."""
    if custom_objects and isinstance(config, str) and config in custom_objects:
        return custom_objects[config]
    return _BY_NAME[str(get(config))]
