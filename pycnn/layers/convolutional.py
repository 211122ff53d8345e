"""Conv2D: 2-D convolution (a cross-correlation, as in every deep-learning library) over NHWC
inputs with a kernel of shape (kernel_h, kernel_w, in_channels, filters), as Keras stores it."""
from __future__ import annotations

import numpy as np

from .. import _C
from . import conv_utils
from .base import InputSpec, int_pair, padding_arg, positive_int
from .core import _Activated


class Conv2D(_Activated):
    """``Conv2D(filters, kernel_size, strides=(1, 1), padding="valid", activation=None)``.

    ``padding="valid"``: no padding, a 5x5 input and a 3x3 window give 3x3.
    ``padding="same"``: zero padding so that the output is ``ceil(input / strides)``.
    """

    _input_refs = ("_x",)

    def __init__(self, filters: int, kernel_size, strides=(1, 1), padding: str = "valid",
                 data_format=None, dilation_rate=(1, 1), groups: int = 1, activation=None,
                 use_bias: bool = True, kernel_initializer="glorot_uniform",
                 bias_initializer="zeros", **kwargs):
        super().__init__(**kwargs)
        self.filters = positive_int(filters, "filters")
        self.kernel_size = int_pair(kernel_size, "kernel_size")
        self.strides = int_pair(strides, "strides")
        self.padding = padding_arg(padding)
        if data_format not in (None, "channels_last"):
            raise ValueError(f"pycnn supports data_format='channels_last' (NHWC) only. "
                             f"Received: data_format={data_format!r}")
        if int_pair(dilation_rate, "dilation_rate") != (1, 1):
            raise ValueError(f"pycnn does not support dilated convolutions yet. Received: "
                             f"dilation_rate={dilation_rate!r}")
        if groups != 1:
            raise ValueError(f"pycnn does not support grouped convolutions yet. Received: "
                             f"groups={groups!r}")
        self._init_activation(activation)
        self.use_bias = bool(use_bias)
        self.kernel_initializer, self.bias_initializer = kernel_initializer, bias_initializer
        self.input_spec = InputSpec(min_ndim=4)

    def build(self, input_shape):
        self.input_spec = InputSpec(ndim=4)
        self._check_input(input_shape)
        self.compute_output_shape(input_shape)      # the kernel fits, before any allocation
        channels = input_shape[-1]
        self.kernel = self.add_weight("kernel", self.kernel_size + (channels, self.filters),
                                      self.kernel_initializer)
        self.bias = self.add_weight("bias", (self.filters,), self.bias_initializer) \
            if self.use_bias else None
        self.input_spec = InputSpec(ndim=4, axes={-1: channels})
        self.built = True

    def compute_output_shape(self, input_shape):
        oh, ow = conv_utils.spatial_output(self.name, input_shape, self.kernel_size,
                                           self.strides, self.padding, "kernel")
        return (input_shape[0], oh, ow, self.filters)

    def _geometry(self, x_shape):
        n, h, w, _ = x_shape
        oh, ow = conv_utils.spatial_output(self.name, x_shape, self.kernel_size, self.strides,
                                           self.padding, "kernel")
        pt = conv_utils.pads(h, self.kernel_size[0], self.strides[0], self.padding)[0]
        pl = conv_utils.pads(w, self.kernel_size[1], self.strides[1], self.padding)[0]
        return (n, oh, ow, self.filters), (pt, pl)

    def forward(self, x, training=False):
        out_shape, self._pads = self._geometry(x.shape)
        z = self._buffer("z", out_shape)
        _C.conv2d_forward(x, self.kernel.value, self.bias.value if self.bias else None, z,
                          self.strides, self._pads, activation=self._fused)
        self._x = x
        return self._activate(z)

    def backward(self, dy, need_dx=True):
        dy = np.ascontiguousarray(dy, dtype=np.float32).reshape(self._z.shape)
        if self.activation == "relu":      # the kernel masks dy by y > 0 as it goes
            return self._backward(dy, need_dx, relu_output=self._y)
        return self._backward(self._activation_grad(dy), need_dx)

    def backward_from_logits(self, dz, need_dx=True):
        return self._backward(np.ascontiguousarray(dz, dtype=np.float32), need_dx)

    def _backward(self, dz, need_dx, relu_output=None):
        dx = self._buffer("dx", self._x.shape) if need_dx else None
        _C.conv2d_backward(self._x, self.kernel.value, dz, dx, self.kernel.grad,
                           self.bias.grad if self.bias else None, self.strides, self._pads,
                           y=relu_output)
        return dx

    # ---- fused with the max pooling that follows (used by models, see models/graph.py) -------
    def can_fuse_pool(self, pool) -> bool:
        """Whether this layer and ``pool`` can run as one C call: a relu or linear
        convolution followed by max pooling."""
        from .pooling import MaxPooling2D
        return type(self) is Conv2D and type(pool) is MaxPooling2D and \
            self.activation in ("linear", "relu")

    def forward_pooled(self, x, pool, training=False):
        """``pool.forward(self.forward(x))`` without storing this layer's output: the C kernel
        pools each chunk of the convolution's output while it is in cache. Same numbers."""
        conv_shape, self._pads = self._geometry(x.shape)
        pooled_shape, pool_pads = pool._geometry(conv_shape)
        y = pool._buffer("y", pooled_shape)
        argmax = pool._buffer("argmax", pooled_shape, np.int32)
        self._pool_args = (conv_shape[1:3], pool.pool_size, pool.strides, pool_pads)
        _C.conv2d_maxpool_forward(x, self.kernel.value, self.bias.value if self.bias else None,
                                  y, argmax, self.strides, self._pads, *self._pool_args,
                                  activation=self._fused)
        self._x, self._pooled, self._argmax = x, y, argmax
        return y

    def backward_pooled(self, dy, need_dx=True):
        """The gradient through :meth:`forward_pooled`: ``dy`` is d loss / d pooled output."""
        dy = np.ascontiguousarray(dy, dtype=np.float32).reshape(self._pooled.shape)
        dx = self._buffer("dx", self._x.shape) if need_dx else None
        _C.conv2d_maxpool_backward(
            self._x, self.kernel.value, dy, self._argmax, dx, self.kernel.grad,
            self.bias.grad if self.bias else None, self.strides, self._pads, *self._pool_args,
            y=self._pooled if self.activation == "relu" else None)
        return dx

    def get_config(self):
        return {**super().get_config(), "filters": self.filters,
                "kernel_size": self.kernel_size, "strides": self.strides,
                "padding": self.padding, "activation": self.activation,
                "use_bias": self.use_bias}


Convolution2D = Conv2D
