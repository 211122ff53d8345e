"""Max and average pooling over NHWC inputs. ``strides=None`` means strides = pool_size, so a
2x2 window halves each spatial size. Max pooling pads with -inf; average pooling with
``padding="same"`` divides by the number of real cells in each window."""
from __future__ import annotations

import numpy as np

from .. import _C
from . import conv_utils
from .base import InputSpec, Layer, int_pair, padding_arg


class _Pooling2D(Layer):
    def __init__(self, pool_size=(2, 2), strides=None, padding: str = "valid",
                 data_format=None, **kwargs):
        super().__init__(**kwargs)
        self.pool_size = int_pair(pool_size, "pool_size")
        self.strides = int_pair(strides, "strides", allow_none=True) or self.pool_size
        self.padding = padding_arg(padding)
        if data_format not in (None, "channels_last"):
            raise ValueError(f"pycnn supports data_format='channels_last' (NHWC) only. "
                             f"Received: data_format={data_format!r}")
        self.input_spec = InputSpec(ndim=4)

    def compute_output_shape(self, input_shape):
        oh, ow = conv_utils.spatial_output(self.name, input_shape, self.pool_size, self.strides,
                                           self.padding, "pool")
        return (input_shape[0], oh, ow, input_shape[3])

    def _geometry(self, x_shape):
        n, h, w, c = x_shape
        oh, ow = conv_utils.spatial_output(self.name, x_shape, self.pool_size, self.strides,
                                           self.padding, "pool")
        pt = conv_utils.pads(h, self.pool_size[0], self.strides[0], self.padding)[0]
        pl = conv_utils.pads(w, self.pool_size[1], self.strides[1], self.padding)[0]
        return (n, oh, ow, c), (pt, pl)

    def get_config(self):
        return {**super().get_config(), "pool_size": list(self.pool_size),
                "strides": list(self.strides), "padding": self.padding,
                "data_format": "channels_last"}


class MaxPooling2D(_Pooling2D):
    """Max pooling: the maximum of each ``pool_size`` window. Its gradient goes to the window's
    first maximum (row-by-row scan), as in TensorFlow's and PyTorch's CPU kernels."""

    def forward(self, ctx, x, training=False):
        out_shape, pads = self._geometry(x.shape)
        y = ctx.buffer("y", out_shape)
        ctx.argmax = ctx.buffer("argmax", out_shape, np.int32)
        _C.maxpool2d_forward(x, y, ctx.argmax, self.pool_size, self.strides, pads)
        ctx.x_shape = x.shape
        return y

    def backward(self, ctx, dy, need_dx=True):
        if not need_dx:
            return None
        dx = ctx.buffer("dx", ctx.x_shape)
        _C.maxpool2d_backward(np.ascontiguousarray(dy, dtype=np.float32), ctx.argmax, dx)
        return dx


class AveragePooling2D(_Pooling2D):
    """Average pooling: the mean of each ``pool_size`` window."""

    def forward(self, ctx, x, training=False):
        out_shape, ctx.pads = self._geometry(x.shape)
        y = ctx.buffer("y", out_shape)
        _C.avgpool2d_forward(x, y, self.pool_size, self.strides, ctx.pads)
        ctx.x_shape = x.shape
        return y

    def backward(self, ctx, dy, need_dx=True):
        if not need_dx:
            return None
        dx = ctx.buffer("dx", ctx.x_shape)
        _C.avgpool2d_backward(np.ascontiguousarray(dy, dtype=np.float32), dx, self.pool_size,
                              self.strides, ctx.pads)
        return dx


MaxPool2D = MaxPooling2D
AvgPool2D = AveragePooling2D
