"""Activation layers with parameters: LeakyReLU, ELU (C kernels of csrc/activations_ext.c) and
PReLU (a learned slope per unit)."""
from __future__ import annotations

import math
import numbers

import numpy as np

from .. import _C, constraints, initializers, regularizers
from .base import InputSpec, Layer


class _ParamActivation(Layer):
    """An elementwise C activation ``kind`` with one parameter ``alpha``, gradient from the
    output (and from the input when the kernel needs it)."""

    kind = ""

    def _alpha(self) -> float:
        raise NotImplementedError

    def forward(self, ctx, x, training=False):
        x = np.ascontiguousarray(x, dtype=np.float32)
        y = ctx.buffer("y", x.shape)
        if x.size:
            _C.activation_forward(self.kind, x, y, alpha=self._alpha())
        ctx.y, ctx.x = y, x
        return y

    def backward(self, ctx, dy, need_dx=True):
        if not need_dx:
            return None
        dy = np.ascontiguousarray(dy, dtype=np.float32).reshape(ctx.y.shape)
        dx = ctx.buffer("dx", dy.shape)
        if dy.size:
            _C.activation_backward(self.kind, ctx.y, dy, dx, x=ctx.x, alpha=self._alpha())
        return dx


class LeakyReLU(_ParamActivation):
    """``x`` for x > 0, ``negative_slope * x`` otherwise (Keras 3's default slope 0.3;
    tf.keras 2's argument name ``alpha`` is accepted too)."""

    kind = "leaky_relu"

    def __init__(self, negative_slope: float = 0.3, **kwargs):
        if "alpha" in kwargs:
            negative_slope = kwargs.pop("alpha")
        super().__init__(**kwargs)
        if negative_slope is None or isinstance(negative_slope, bool) or \
                not isinstance(negative_slope, numbers.Real) or negative_slope < 0 or \
                not math.isfinite(negative_slope):
            raise ValueError("The negative_slope value of a Leaky ReLU layer cannot be None or "
                             "negative value. Expected a float. Received: "
                             f"negative_slope={negative_slope}")
        self.negative_slope = float(negative_slope)

    def _alpha(self):
        return self.negative_slope

    def get_config(self):
        return {**super().get_config(), "negative_slope": self.negative_slope}


class ELU(_ParamActivation):
    """Exponential linear unit: ``x`` for x > 0, ``alpha * (exp(x) - 1)`` otherwise."""

    kind = "elu"

    def __init__(self, alpha: float = 1.0, **kwargs):
        super().__init__(**kwargs)
        if isinstance(alpha, bool) or not isinstance(alpha, numbers.Real) or \
                not math.isfinite(alpha):
            raise ValueError(f"Argument `alpha` of an ELU layer must be a finite float. "
                             f"Received: alpha={alpha!r}")
        self.alpha = float(alpha)

    def _alpha(self):
        return self.alpha

    def get_config(self):
        return {**super().get_config(), "alpha": self.alpha}


class PReLU(Layer):
    """Parametric ReLU: ``x`` for x > 0, ``alpha * x`` otherwise, with a learned ``alpha`` of
    the input's shape (without the batch axis); ``shared_axes`` (1-based, as in Keras) share one
    slope along those axes: ``shared_axes=[1, 2]`` gives one slope per channel of a feature map.
    """

    def __init__(self, alpha_initializer="Zeros", alpha_regularizer=None, alpha_constraint=None,
                 shared_axes=None, **kwargs):
        super().__init__(**kwargs)
        self.alpha_initializer = initializers.get(alpha_initializer)
        self.alpha_regularizer = regularizers.get(alpha_regularizer)
        self.alpha_constraint = constraints.get(alpha_constraint)
        if shared_axes is None:
            self.shared_axes = None
        else:
            axes = [shared_axes] if isinstance(shared_axes, numbers.Integral) else shared_axes
            if isinstance(axes, (list, tuple)) and all(
                    isinstance(a, numbers.Integral) and not isinstance(a, bool) and a >= 1
                    for a in axes):
                self.shared_axes = [int(a) for a in axes]
            else:
                raise ValueError("`shared_axes` must be None, an int or a list of ints >= 1 "
                                 f"(axes after the batch axis). Received: "
                                 f"shared_axes={shared_axes!r}")
        self.alpha = None

    def build(self, input_shape):
        param_shape = list(input_shape[1:])
        for a in self.shared_axes or []:
            if a >= len(input_shape):
                raise ValueError(f"`shared_axes` {self.shared_axes} is out of bounds for input "
                                 f"shape {tuple(input_shape)}")
            param_shape[a - 1] = 1
        if any(d is None for d in param_shape):
            raise ValueError(f'Layer "{self.name}": the non-shared axes of the input must have '
                             f"known sizes. Received input shape {tuple(input_shape)}")
        self.alpha = self.add_weight(shape=param_shape, name="alpha",
                                     initializer=self.alpha_initializer,
                                     regularizer=self.alpha_regularizer,
                                     constraint=self.alpha_constraint)
        axes = {i: input_shape[i] for i in range(1, len(input_shape))
                if i not in (self.shared_axes or [])}
        self.input_spec = InputSpec(ndim=len(input_shape), axes=axes)
        self.built = True

    def forward(self, ctx, x, training=False):
        x = np.asarray(x, dtype=np.float32)
        ctx.x = x
        alpha = self.alpha.value
        return np.where(x > 0, x, alpha * x).astype(np.float32, copy=False)

    def backward(self, ctx, dy, need_dx=True):
        x = ctx.x
        dy = np.asarray(dy, dtype=np.float32).reshape(x.shape)
        neg = x <= 0
        # d alpha: sum of dy * x where x <= 0 over the batch and the shared axes
        contrib = np.where(neg, dy.astype(np.float64) * x, 0.0)
        reduce = (0,) + tuple(self.shared_axes or ())
        self.alpha.grad[...] = contrib.sum(axis=reduce).reshape(self.alpha.shape)
        if not need_dx:
            return None
        return np.where(neg, dy * self.alpha.value, dy).astype(np.float32, copy=False)

    def get_config(self):
        from .. import serialization
        return {**super().get_config(),
                "alpha_initializer": serialization.serialize(self.alpha_initializer),
                "alpha_regularizer": serialization.serialize(self.alpha_regularizer),
                "alpha_constraint": serialization.serialize(self.alpha_constraint),
                "shared_axes": self.shared_axes}
