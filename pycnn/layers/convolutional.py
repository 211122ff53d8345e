"""Conv2D: 2-D convolution (a cross-correlation, as in every deep-learning library) over NHWC
inputs with a kernel of shape (kernel_h, kernel_w, in_channels / groups, filters), as Keras
stores it. Plain convolutions (dilation 1, one group) run on the implicit-im2col kernel with its
Winograd and fused paths; dilated or grouped ones on the general kernel (conv_general.c)."""
from __future__ import annotations

import numpy as np

from .. import _C
from . import conv_utils
from .base import InputSpec, int_pair, padding_arg, positive_int
from .core import _Activated, init_kernel_options


class Conv2D(_Activated):
    """``Conv2D(filters, kernel_size, strides=(1, 1), padding="valid", activation=None)``.

    ``padding="valid"``: no padding, a 5x5 input and a 3x3 window give 3x3.
    ``padding="same"``: zero padding so that the output is ``ceil(input / strides)``.
    ``dilation_rate``: taps ``dilation_rate`` cells apart (not with ``strides > 1``);
    ``groups``: input channels and filters split into ``groups`` independent convolutions.
    """

    def __init__(self, filters: int, kernel_size, strides=(1, 1), padding: str = "valid",
                 data_format=None, dilation_rate=(1, 1), groups: int = 1, activation=None,
                 use_bias: bool = True, kernel_initializer="glorot_uniform",
                 bias_initializer="zeros", kernel_regularizer=None, bias_regularizer=None,
                 activity_regularizer=None, kernel_constraint=None, bias_constraint=None,
                 **kwargs):
        super().__init__(**kwargs)
        self.filters = positive_int(filters, "filters")
        self.kernel_size = int_pair(kernel_size, "kernel_size")
        self.strides = int_pair(strides, "strides")
        self.padding = padding_arg(padding)
        if data_format not in (None, "channels_last"):
            raise ValueError(f"pycnn supports data_format='channels_last' (NHWC) only. "
                             f"Received: data_format={data_format!r}")
        self.dilation_rate = int_pair(dilation_rate, "dilation_rate")
        self.groups = conv_utils.groups_arg(groups, self.filters)
        conv_utils.check_strides_dilation(self.strides, self.dilation_rate)
        init_kernel_options(self, activation, use_bias, kernel_initializer, bias_initializer,
                            kernel_regularizer, bias_regularizer, activity_regularizer,
                            kernel_constraint, bias_constraint)
        self.input_spec = InputSpec(min_ndim=4)

    def build(self, input_shape):
        self.input_spec = InputSpec(ndim=4)
        self._check_input(input_shape)
        self.compute_output_shape(input_shape)      # the kernel fits, before any allocation
        channels = input_shape[-1]
        conv_utils.check_groups_divide(self.groups, channels, input_shape)
        self.kernel = self.add_weight("kernel", self.kernel_size + (channels // self.groups,
                                                                    self.filters),
                                      self.kernel_initializer,
                                      regularizer=self.kernel_regularizer,
                                      constraint=self.kernel_constraint)
        self.bias = self.add_weight("bias", (self.filters,), self.bias_initializer,
                                    regularizer=self.bias_regularizer,
                                    constraint=self.bias_constraint) if self.use_bias else None
        self.input_spec = InputSpec(ndim=4, axes={-1: channels})
        self.built = True

    @property
    def _general(self) -> bool:
        """Whether the layer runs on the general kernel (dilated or grouped)."""
        return self.dilation_rate != (1, 1) or self.groups != 1

    def compute_output_shape(self, input_shape):
        oh, ow = conv_utils.spatial_output(self.name, input_shape, self.kernel_size,
                                           self.strides, self.padding, "kernel",
                                           self.dilation_rate)
        return (input_shape[0], oh, ow, self.filters)

    def _geometry(self, x_shape):
        n, h, w, _ = x_shape
        if self._general:
            oh, ow = conv_utils.spatial_output(self.name, x_shape, self.kernel_size,
                                               self.strides, self.padding, "kernel",
                                               self.dilation_rate)
            return (n, oh, ow, self.filters), conv_utils.conv_pads(
                (h, w), self.kernel_size, self.strides, self.padding, self.dilation_rate)
        oh, ow = conv_utils.spatial_output(self.name, x_shape, self.kernel_size, self.strides,
                                           self.padding, "kernel")
        pt = conv_utils.pads(h, self.kernel_size[0], self.strides[0], self.padding)[0]
        pl = conv_utils.pads(w, self.kernel_size[1], self.strides[1], self.padding)[0]
        return (n, oh, ow, self.filters), (pt, pl)

    def forward(self, ctx, x, training=False):
        out_shape, pads = self._geometry(x.shape)
        z = ctx.buffer("z", out_shape)
        if self._general:
            _C.convg_forward(x, self.kernel.value, self.bias.value if self.bias else None, z,
                             self.strides, pads, self.dilation_rate, self.groups,
                             activation="linear" if ctx.logits_only else self._fused)
        else:
            _C.conv2d_forward(x, self.kernel.value, self.bias.value if self.bias else None, z,
                              self.strides, pads, activation="linear" if ctx.logits_only else self._fused)
        ctx.x, ctx.pads = x, pads
        return self._activate(ctx, z)

    def backward(self, ctx, dy, need_dx=True):
        dy = np.ascontiguousarray(dy, dtype=np.float32).reshape(ctx.y.shape)
        relu_output = None
        if self.activation == "relu" and not ctx.logits_only:
            relu_output = ctx.y             # the kernel masks dy by y > 0 as it goes
        else:
            dy = self._activation_grad(ctx, dy)
        dx = ctx.buffer("dx", ctx.x.shape) if need_dx else None
        if self._general:
            _C.convg_backward(ctx.x, self.kernel.value, dy, dx, self.kernel.grad,
                              self.bias.grad if self.bias else None, self.strides, ctx.pads,
                              self.dilation_rate, self.groups, y=relu_output)
            return dx
        _C.conv2d_backward(ctx.x, self.kernel.value, dy, dx, self.kernel.grad,
                           self.bias.grad if self.bias else None, self.strides, ctx.pads,
                           y=relu_output)
        return dx

    def get_config(self):
        from .. import serialization
        return {**super().get_config(), "filters": self.filters,
                "kernel_size": list(self.kernel_size), "strides": list(self.strides),
                "padding": self.padding, "data_format": "channels_last",
                "dilation_rate": list(self.dilation_rate), "groups": self.groups,
                "activation": self.activation,
                "use_bias": self.use_bias,
                "kernel_initializer": serialization.serialize(self.kernel_initializer),
                "bias_initializer": serialization.serialize(self.bias_initializer),
                "kernel_regularizer": serialization.serialize(self.kernel_regularizer),
                "bias_regularizer": serialization.serialize(self.bias_regularizer),
                "activity_regularizer": serialization.serialize(self.activity_regularizer),
                "kernel_constraint": serialization.serialize(self.kernel_constraint),
                "bias_constraint": serialization.serialize(self.bias_constraint)}


Convolution2D = Conv2D
