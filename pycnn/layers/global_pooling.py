"""Global pooling: the mean or the maximum of each channel over every spatial position
(``GlobalAveragePooling2D``: (N, H, W, C) -> (N, C)) or time step (``...1D``: (N, T, C) ->
(N, C)); ``keepdims=True`` keeps the pooled axes with size 1. Max pooling's gradient goes to
the first maximum (in row-major order). C kernels of csrc/global_pool.c."""
from __future__ import annotations

import math

import numpy as np

from .. import _C
from .base import InputSpec, Layer


class _GlobalPooling(Layer):
    rank = 2            # spatial axes
    is_max = False

    def __init__(self, data_format=None, keepdims: bool = False, **kwargs):
        super().__init__(**kwargs)
        if data_format not in (None, "channels_last"):
            raise ValueError(f"pycnn supports data_format='channels_last' only. "
                             f"Received: data_format={data_format!r}")
        self.keepdims = bool(keepdims)
        self.input_spec = InputSpec(ndim=self.rank + 2)

    def compute_output_shape(self, input_shape):
        if self.keepdims:
            return (input_shape[0],) + (1,) * self.rank + (input_shape[-1],)
        return (input_shape[0], input_shape[-1])

    def forward(self, ctx, x, training=False):
        x = np.ascontiguousarray(x, dtype=np.float32)
        n, c = x.shape[0], x.shape[-1]
        s = math.prod(x.shape[1:-1])
        ctx.x_shape = x.shape
        y = ctx.buffer("y", (n, c))
        ctx.argmax = ctx.buffer("argmax", (n, c), np.int32) if self.is_max else None
        if x.size:
            _C.global_pool_forward(x.reshape(n, s, c), y, ctx.argmax)
        elif s == 0 and n * c:
            raise ValueError(f'Layer "{self.name}" cannot pool over an empty axis: input shape '
                             f"{x.shape}")
        return y.reshape(self.compute_output_shape(x.shape))

    def backward(self, ctx, dy, need_dx=True):
        if not need_dx:
            return None
        n, c = ctx.x_shape[0], ctx.x_shape[-1]
        s = math.prod(ctx.x_shape[1:-1])
        dx = ctx.buffer("dx", ctx.x_shape)
        if dx.size:
            dy = np.ascontiguousarray(dy, dtype=np.float32).reshape(n, c)
            _C.global_pool_backward(dy, ctx.argmax, dx.reshape(n, s, c))
        return dx

    def get_config(self):
        return {**super().get_config(), "data_format": "channels_last",
                "keepdims": self.keepdims}


class GlobalAveragePooling2D(_GlobalPooling):
    """The mean of each channel over H and W."""


class GlobalMaxPooling2D(_GlobalPooling):
    """The maximum of each channel over H and W."""
    is_max = True


class GlobalAveragePooling1D(_GlobalPooling):
    """The mean of each channel over the steps of a (N, steps, C) input."""
    rank = 1


class GlobalMaxPooling1D(_GlobalPooling):
    """The maximum of each channel over the steps of a (N, steps, C) input."""
    rank = 1
    is_max = True


GlobalAvgPool2D = GlobalAveragePooling2D
GlobalMaxPool2D = GlobalMaxPooling2D
GlobalAvgPool1D = GlobalAveragePooling1D
GlobalMaxPool1D = GlobalMaxPooling1D
