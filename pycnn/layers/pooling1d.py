"""Max and average pooling over the time axis of (batch, steps, channels) inputs, computed by
the 2-D pooling kernels on a view one pixel high (window ``(1, pool_size)``). ``strides=None``
means strides = pool_size; padding ``"valid"`` or ``"same"`` as in Keras (max pooling pads with
-inf, average pooling divides by the number of real steps in each window)."""
from __future__ import annotations

import numpy as np

from .. import _C
from . import conv_utils
from .base import InputSpec, Layer, padding_arg
from .reshaping import _channels_last, _grad, _image, standardize_tuple


class _Pooling1D(Layer):
    def __init__(self, pool_size=2, strides=None, padding: str = "valid", data_format=None,
                 **kwargs):
        super().__init__(**kwargs)
        self.pool_size = standardize_tuple(pool_size, 1, "pool_size")
        self.strides = standardize_tuple(pool_size if strides is None else strides, 1,
                                         "strides")
        self.padding = padding_arg(padding)
        self.data_format = _channels_last(data_format)
        self.input_spec = InputSpec(ndim=3)

    def _steps(self, input_shape) -> int:
        steps = conv_utils.output_length(input_shape[1], self.pool_size[0], self.strides[0],
                                         self.padding)
        if steps is not None and steps <= 0:
            raise ValueError("Computed output size would be zero or negative. Received: "
                             f"`inputs.shape={tuple(input_shape)}`, "
                             f"`pool_size={list(self.pool_size)}`, "
                             f"`strides={list(self.strides)}`, `padding={self.padding}`.")
        return steps

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self._steps(input_shape), input_shape[2])

    def _geometry(self, x):
        steps = self._steps(x.shape)
        pad = conv_utils.pads(x.shape[1], self.pool_size[0], self.strides[0], self.padding)[0]
        return (x.shape[0], 1, steps, x.shape[2]), (0, pad)

    def get_config(self):
        return {**super().get_config(), "pool_size": list(self.pool_size),
                "padding": self.padding, "strides": list(self.strides),
                "data_format": self.data_format}


class MaxPooling1D(_Pooling1D):
    """Max pooling over steps; the gradient goes to each window's first maximum."""

    def forward(self, ctx, x, training=False):
        x = np.ascontiguousarray(x, dtype=np.float32)
        shape, pads = self._geometry(x)
        y = ctx.buffer("y", shape)
        ctx.argmax = ctx.buffer("argmax", shape, np.int32)
        _C.maxpool2d_forward(_image(x), y, ctx.argmax, (1, self.pool_size[0]),
                             (1, self.strides[0]), pads)
        ctx.x_shape = x.shape
        return y.reshape(shape[0], shape[2], shape[3])

    def backward(self, ctx, dy, need_dx=True):
        if not need_dx:
            return None
        dx = ctx.buffer("dx", ctx.x_shape)
        _C.maxpool2d_backward(_grad(dy).reshape(ctx.argmax.shape), ctx.argmax, _image(dx))
        return dx


class AveragePooling1D(_Pooling1D):
    """Average pooling over steps."""

    def forward(self, ctx, x, training=False):
        x = np.ascontiguousarray(x, dtype=np.float32)
        shape, ctx.pads = self._geometry(x)
        y = ctx.buffer("y", shape)
        _C.avgpool2d_forward(_image(x), y, (1, self.pool_size[0]), (1, self.strides[0]),
                             ctx.pads)
        ctx.x_shape, ctx.y_shape = x.shape, shape
        return y.reshape(shape[0], shape[2], shape[3])

    def backward(self, ctx, dy, need_dx=True):
        if not need_dx:
            return None
        dx = ctx.buffer("dx", ctx.x_shape)
        _C.avgpool2d_backward(_grad(dy).reshape(ctx.y_shape), _image(dx),
                              (1, self.pool_size[0]), (1, self.strides[0]), ctx.pads)
        return dx


MaxPool1D = MaxPooling1D
AvgPool1D = AveragePooling1D
