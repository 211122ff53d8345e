"""Core layers: Dense, Activation, ReLU, Softmax, Dropout, Flatten, Reshape."""
from __future__ import annotations

import math
from typing import Optional

import numpy as np

from .. import _C, backend
from .. import activations as activations_mod
from .base import InputSpec, Layer, positive_int


class _Activated(Layer):
    """A layer whose output passes through an activation. ``linear`` and ``relu`` are fused
    into the C kernel; the others run as a second kernel over the pre-activation ``z``. With
    ``ctx.logits_only`` (set by the plan when the loss takes the logits) ``forward`` stops at
    ``z`` and ``backward`` receives dL/dz."""

    supports_logits = True

    def _init_activation(self, activation) -> None:
        self.activation = activations_mod.get(activation)

    @property
    def _fused(self) -> str:
        return self.activation if self.activation in ("linear", "relu") else "linear"

    def _activate(self, ctx, z: np.ndarray) -> np.ndarray:
        """z is the kernel's output (activation already applied if fused)."""
        if self.activation in ("linear", "relu") or ctx.logits_only:
            ctx.y = z
            return z
        y = ctx.buffer("y", z.shape)
        _C.activation_forward(self.activation, z, y)
        ctx.y = y
        ctx.z = z       # silu, gelu, mish, ...: their gradient reads the pre-activation
        return y

    def _activation_grad(self, ctx, dy: np.ndarray) -> np.ndarray:
        """dL/dz from dL/dy (identity for linear, and for logits)."""
        if self.activation == "linear" or ctx.logits_only:
            return dy
        dz = ctx.buffer("dz", dy.shape)
        _C.activation_backward(self.activation, ctx.y,
                               np.ascontiguousarray(dy, dtype=np.float32), dz,
                               x=ctx.z if activations_mod.needs_input(self.activation) else None)
        return dz


def init_kernel_options(layer, activation, use_bias: bool, kernel_initializer,
                        bias_initializer, kernel_regularizer, bias_regularizer,
                        activity_regularizer, kernel_constraint, bias_constraint) -> None:
    """Stores what Dense, Conv1D, Conv2D and Conv2DTranspose take alike besides their shapes:
    the activation, ``use_bias``, and the kernel's and bias' initializers, regularizers and
    constraints (``activity_regularizer`` too)."""
    layer._init_activation(activation)
    layer.use_bias = bool(use_bias)
    layer.kernel_initializer, layer.bias_initializer = kernel_initializer, bias_initializer
    layer.kernel_regularizer, layer.bias_regularizer = kernel_regularizer, bias_regularizer
    layer.kernel_constraint, layer.bias_constraint = kernel_constraint, bias_constraint
    layer.activity_regularizer = activity_regularizer


class Dense(_Activated):
    """Densely connected layer: ``output = activation(dot(input, kernel) + bias)``, kernel of
    shape ``(input_dim, units)``. On inputs of rank > 2 it acts on the last axis."""

    def __init__(self, units: int, activation=None, use_bias: bool = True,
                 kernel_initializer="glorot_uniform", bias_initializer="zeros",
                 kernel_regularizer=None, bias_regularizer=None, activity_regularizer=None,
                 kernel_constraint=None, bias_constraint=None, lora_rank=None, **kwargs):
        super().__init__(**kwargs)
        self.units = positive_int(units, "units")
        init_kernel_options(self, activation, use_bias, kernel_initializer, bias_initializer,
                            kernel_regularizer, bias_regularizer, activity_regularizer,
                            kernel_constraint, bias_constraint)
        if lora_rank:
            raise ValueError("pycnn's Dense does not support LoRA (lora_rank)")
        self.input_spec = InputSpec(min_ndim=2)

    def build(self, input_shape):
        in_dim = input_shape[-1]
        if in_dim is None:
            raise ValueError(f'Layer "{self.name}": the last axis of the input must be known. '
                             f"Received input shape {input_shape}")
        self.kernel = self.add_weight("kernel", (in_dim, self.units), self.kernel_initializer,
                                      regularizer=self.kernel_regularizer,
                                      constraint=self.kernel_constraint)
        self.bias = self.add_weight("bias", (self.units,), self.bias_initializer,
                                    regularizer=self.bias_regularizer,
                                    constraint=self.bias_constraint) if self.use_bias else None
        self.input_spec = InputSpec(min_ndim=2, axes={-1: in_dim})
        self.built = True

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[:-1]) + (self.units,)

    def forward(self, ctx, x, training=False):
        in_dim = self.kernel.shape[0]
        x2 = x.reshape(-1, in_dim)
        z = ctx.buffer("z", (x2.shape[0], self.units))
        _C.dense_forward(x2, self.kernel.value, self.bias.value if self.bias else None, z,
                         activation="linear" if ctx.logits_only else self._fused)
        ctx.x2, ctx.in_shape = x2, x.shape
        return self._activate(ctx, z).reshape(x.shape[:-1] + (self.units,))

    def backward(self, ctx, dy, need_dx=True):
        dz = np.ascontiguousarray(dy, dtype=np.float32).reshape(ctx.x2.shape[0], self.units)
        dz = self._activation_grad(ctx, dz)
        dx = ctx.buffer("dx", ctx.x2.shape) if need_dx else None
        _C.dense_backward(ctx.x2, self.kernel.value, dz, dx, self.kernel.grad,
                          self.bias.grad if self.bias else None)
        return dx.reshape(ctx.in_shape) if need_dx else None

    def get_config(self):
        from .. import serialization
        return {**super().get_config(), "units": self.units, "activation": self.activation,
                "use_bias": self.use_bias,
                "kernel_initializer": serialization.serialize(self.kernel_initializer),
                "bias_initializer": serialization.serialize(self.bias_initializer),
                "kernel_regularizer": serialization.serialize(self.kernel_regularizer),
                "bias_regularizer": serialization.serialize(self.bias_regularizer),
                "activity_regularizer": serialization.serialize(self.activity_regularizer),
                "kernel_constraint": serialization.serialize(self.kernel_constraint),
                "bias_constraint": serialization.serialize(self.bias_constraint)}


class Activation(_Activated):
    """Applies an activation function: ``Activation("relu")``."""

    def __init__(self, activation, **kwargs):
        super().__init__(**kwargs)
        self._init_activation(activation)

    def forward(self, ctx, x, training=False):
        if self.activation == "linear" or ctx.logits_only:
            return x
        y = ctx.buffer("y", x.shape)
        x = np.ascontiguousarray(x)
        _C.activation_forward(self.activation, x, y)
        ctx.y = y
        ctx.x = x if activations_mod.needs_input(self.activation) else None
        return y

    def backward(self, ctx, dy, need_dx=True):
        if not need_dx:
            return None
        if self.activation == "linear" or ctx.logits_only:
            return dy
        dy = np.ascontiguousarray(dy, dtype=np.float32).reshape(ctx.y.shape)
        dx = ctx.buffer("dx", dy.shape)
        _C.activation_backward(self.activation, ctx.y, dy, dx, x=ctx.x)
        return dx

    def get_config(self):
        return {**super().get_config(), "activation": self.activation}


class ReLU(Layer):
    """Rectified linear unit: ``max(x, 0)``; with Keras' options ``max_value`` (cap),
    ``negative_slope`` (leaky) and ``threshold``. The default form runs in C; the variants are
    NumPy expressions."""

    def __init__(self, max_value: Optional[float] = None, negative_slope: float = 0.0,
                 threshold: float = 0.0, **kwargs):
        super().__init__(**kwargs)
        if max_value is not None and max_value < 0:
            raise ValueError(f"max_value of a ReLU layer cannot be a negative value. "
                             f"Received: max_value={max_value}")
        if negative_slope is None or negative_slope < 0:
            raise ValueError(f"negative_slope of a ReLU layer cannot be a negative value. "
                             f"Received: negative_slope={negative_slope}")
        if threshold is None or threshold < 0:
            raise ValueError(f"threshold of a ReLU layer cannot be a negative value. "
                             f"Received: threshold={threshold}")
        self.max_value = None if max_value is None else float(max_value)
        self.negative_slope, self.threshold = float(negative_slope), float(threshold)
        self._plain = max_value is None and negative_slope == 0 and threshold == 0

    def forward(self, ctx, x, training=False):
        ctx.x = x
        if self._plain:
            y = ctx.buffer("y", x.shape)
            _C.activation_forward("relu", np.ascontiguousarray(x), y)
        else:
            # Keras: x where x > threshold (strictly), negative_slope * (x - threshold) below
            y = np.where(x > self.threshold, x,
                         self.negative_slope * (x - self.threshold)).astype(np.float32)
            if self.max_value is not None:
                y = np.minimum(y, np.float32(self.max_value))
        ctx.y = y
        return y

    def backward(self, ctx, dy, need_dx=True):
        if not need_dx:
            return None
        dy = np.ascontiguousarray(dy, dtype=np.float32).reshape(ctx.y.shape)
        if self._plain:
            dx = ctx.buffer("dx", dy.shape)
            _C.activation_backward("relu", ctx.y, dy, dx)
            return dx
        x = ctx.x
        slope = np.where(x > self.threshold, 1.0, self.negative_slope).astype(np.float32)
        if self.max_value is not None:
            slope[x >= self.max_value] = 0.0
        return dy * slope

    def get_config(self):
        return {**super().get_config(), "max_value": self.max_value,
                "negative_slope": self.negative_slope, "threshold": self.threshold}


class Softmax(Activation):
    """Softmax over the last axis."""

    def __init__(self, axis: int = -1, **kwargs):
        if axis != -1:
            raise ValueError(f"pycnn's Softmax works over the last axis only. Received: axis={axis}")
        super().__init__("softmax", **kwargs)
        self.axis = axis

    def get_config(self):
        cfg = super().get_config()
        cfg.pop("activation", None)
        return {**cfg, "axis": self.axis}


class Dropout(Layer):
    """Sets a fraction ``rate`` of the inputs to 0 during training and scales the rest by
    ``1 / (1 - rate)``; the identity at inference."""

    def __init__(self, rate: float, noise_shape=None, seed: Optional[int] = None, **kwargs):
        super().__init__(**kwargs)
        if isinstance(rate, bool) or not isinstance(rate, (int, float, np.integer, np.floating)) \
                or not 0 <= rate < 1:
            raise ValueError(f"Invalid value received for argument `rate`. Expected a float "
                             f"value between 0 and 1. Received: rate={rate!r}")
        if noise_shape is not None:
            raise ValueError("pycnn's Dropout does not support `noise_shape` yet")
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, (int, np.integer))
                                 or seed < 0):
            raise ValueError(f"Invalid value received for argument `seed`: expected None or a "
                             f"non-negative integer. Received: seed={seed!r}")
        self.rate, self.seed = float(rate), seed
        self._rng = np.random.default_rng(seed) if seed is not None else None

    def forward(self, ctx, x, training=False):
        if not training or self.rate == 0:
            ctx.mask = None
            return x
        rng = self._rng or backend.rng()
        # one 64-bit key per call from the generator; the C kernel draws the mask from
        # (key, element index) with a counter-based hash (csrc/dropout.c)
        key = int(rng.integers(0, 1 << 64, dtype=np.uint64))
        x = np.ascontiguousarray(x, dtype=np.float32)
        if x.size == 0:
            ctx.mask = None
            return x
        y = ctx.buffer("y", x.shape)
        ctx.mask = ctx.buffer("mask", x.shape)
        _C.dropout_forward(x, y, ctx.mask, self.rate, key)
        return y

    def backward(self, ctx, dy, need_dx=True):
        if not need_dx:
            return None
        if ctx.mask is None:
            return dy
        dx = ctx.buffer("dx", ctx.mask.shape)
        _C.dropout_backward(np.ascontiguousarray(dy, dtype=np.float32).reshape(dx.shape),
                            ctx.mask, dx)
        return dx

    def get_config(self):
        return {**super().get_config(), "rate": self.rate, "seed": self.seed}


class Flatten(Layer):
    """Flattens every axis but the batch axis, row-major: (H, W, C) -> H*W*C."""

    def __init__(self, data_format=None, **kwargs):
        super().__init__(**kwargs)
        if data_format not in (None, "channels_last"):
            raise ValueError(f"pycnn supports data_format='channels_last' only. "
                             f"Received: data_format={data_format!r}")

    def compute_output_shape(self, input_shape):
        rest = input_shape[1:]
        size = None if any(d is None for d in rest) else math.prod(rest)
        return (input_shape[0], size)

    def build(self, input_shape):
        self.input_spec = InputSpec(min_ndim=1)
        self.built = True

    def forward(self, ctx, x, training=False):
        ctx.in_shape = x.shape
        return x.reshape(x.shape[0], -1)

    def backward(self, ctx, dy, need_dx=True):
        return dy.reshape(ctx.in_shape) if need_dx else None


class Reshape(Layer):
    """Reshapes the non-batch axes to ``target_shape`` (one entry may be -1)."""

    def __init__(self, target_shape, **kwargs):
        super().__init__(**kwargs)
        target_shape = tuple(target_shape)
        if sum(1 for d in target_shape if d == -1) > 1 or any(
                (not isinstance(d, (int, np.integer))) or (d <= 0 and d != -1)
                for d in target_shape):
            raise ValueError(f"Invalid `target_shape`: expected positive integers and at most "
                             f"one -1. Received: target_shape={target_shape}")
        self.target_shape = tuple(int(d) for d in target_shape)

    def compute_output_shape(self, input_shape):
        size = None if any(d is None for d in input_shape[1:]) else math.prod(input_shape[1:])
        known = math.prod(d for d in self.target_shape if d != -1)
        if -1 in self.target_shape:
            if size is None:
                return (input_shape[0],) + tuple(None if d == -1 else d for d in self.target_shape)
            if size % known:
                raise ValueError(f'Layer "{self.name}": cannot reshape input of shape '
                                 f"{input_shape} into {self.target_shape}")
            return (input_shape[0],) + tuple(size // known if d == -1 else d
                                             for d in self.target_shape)
        if size is not None and size != known:
            raise ValueError(f'Layer "{self.name}": total size of new array must be unchanged, '
                             f"input_shape = {list(input_shape[1:])}, "
                             f"output_shape = {list(self.target_shape)}")
        return (input_shape[0],) + self.target_shape

    def build(self, input_shape):
        self.compute_output_shape(input_shape)
        self.built = True

    def forward(self, ctx, x, training=False):
        ctx.in_shape = x.shape
        out = self.compute_output_shape((None,) + x.shape[1:])
        return x.reshape((x.shape[0],) + out[1:])

    def backward(self, ctx, dy, need_dx=True):
        return dy.reshape(ctx.in_shape) if need_dx else None

    def get_config(self):
        return {**super().get_config(), "target_shape": list(self.target_shape)}
