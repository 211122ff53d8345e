"""The convolutions of modern convnets beyond Conv2D: Conv1D, Conv2DTranspose (U-Net's
up-sampling), DepthwiseConv2D and SeparableConv2D (MobileNet's blocks), NHWC with Keras' weight
layouts, names and order.

- ``Conv1D`` is Conv2D on a one-row image (``padding="causal"`` pads only the left).
- ``Conv2DTranspose`` is the transpose (the input gradient) of the convolution that maps its
  output back to its input, with Keras' kernel ``(kh, kw, filters, in_channels)`` and output size
  (``deconv_output_length``).
- ``DepthwiseConv2D`` runs a direct kernel vectorised along the channels (no GEMM).
- ``SeparableConv2D`` is the depthwise convolution followed by a 1x1 convolution (a GEMM).
Each fuses ``relu`` (and ``linear``) into its C kernels; other activations run as a second kernel.
"""
from __future__ import annotations

from typing import Any, Optional

import numpy as np

from .. import _C
from . import conv_utils
from .base import InputSpec, int_pair, padding_arg, positive_int
from .core import _Activated, init_kernel_options


def _int_tuple1(value: Any, arg: str) -> int:
    """Keras' standardize_tuple(value, 1, arg): an int or a 1-tuple of a positive int."""
    if isinstance(value, (tuple, list)) and len(value) == 1:
        value = value[0]
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value <= 0:
        raise ValueError(f"The `{arg}` argument must be a tuple of 1 integers. "
                         f"Received {arg}={value!r}")
    return int(value)


def _channels_last(data_format) -> None:
    if data_format not in (None, "channels_last"):
        raise ValueError(f"pycnn supports data_format='channels_last' (NHWC) only. "
                         f"Received: data_format={data_format!r}")


def _channels(layer, input_shape) -> int:
    channels = input_shape[-1]
    if channels is None:
        raise ValueError(f'Layer "{layer.name}": the channel dimension of the inputs should be '
                         f"defined. Found `None`. Full input shape received: {input_shape}")
    return channels


def _ser(obj):
    from .. import serialization
    return serialization.serialize(obj)


class _Conv(_Activated):
    """What the convolutions share: the bias weight, and the output gradient as the kernels
    take it (a fused relu masks it in C from the layer's output)."""

    def _add_bias(self, size: int):
        return self.add_weight("bias", (size,), self.bias_initializer,
                               regularizer=self.bias_regularizer,
                               constraint=self.bias_constraint) if self.use_bias else None

    def _grad(self, ctx, dy):
        """(dL/dz, relu output or None): with a fused relu the kernel masks dL/dy itself."""
        dy = np.ascontiguousarray(dy, dtype=np.float32).reshape(ctx.y.shape)
        if self.activation == "relu" and not ctx.logits_only:
            return dy, ctx.y
        return self._activation_grad(ctx, dy), None

    def _bias_value(self):
        return self.bias.value if self.bias is not None else None

    def _bias_grad(self):
        return self.bias.grad if self.bias is not None else None

    def _common_config(self) -> dict:
        return {"activation": self.activation, "use_bias": self.use_bias,
                "bias_initializer": _ser(self.bias_initializer),
                "bias_regularizer": _ser(self.bias_regularizer),
                "activity_regularizer": _ser(self.activity_regularizer),
                "bias_constraint": _ser(self.bias_constraint)}


class Conv1D(_Conv):
    """``Conv1D(filters, kernel_size, strides=1, padding="valid", dilation_rate=1, groups=1,
    activation=None)`` over inputs ``(batch, steps, channels)``; kernel
    ``(kernel_size, channels / groups, filters)``. ``padding="causal"``: ``output[t]`` depends
    only on ``input[:t + 1]`` (left padding ``dilation_rate * (kernel_size - 1)``)."""

    def __init__(self, filters: int, kernel_size, strides=1, padding: str = "valid",
                 data_format=None, dilation_rate=1, groups: int = 1, activation=None,
                 use_bias: bool = True, kernel_initializer="glorot_uniform",
                 bias_initializer="zeros", kernel_regularizer=None, bias_regularizer=None,
                 activity_regularizer=None, kernel_constraint=None, bias_constraint=None,
                 **kwargs):
        super().__init__(**kwargs)
        self.filters = positive_int(filters, "filters")
        self.kernel_size = (_int_tuple1(kernel_size, "kernel_size"),)
        self.strides = (_int_tuple1(strides, "strides"),)
        if not isinstance(padding, str) or padding.lower() not in ("valid", "same", "causal"):
            raise ValueError(f"The `padding` argument must be a list/tuple or one of "
                             f"{{'valid', 'same', 'causal'}}. Received: {padding}")
        self.padding = padding.lower()
        _channels_last(data_format)
        self.dilation_rate = (_int_tuple1(dilation_rate, "dilation_rate"),)
        self.groups = conv_utils.groups_arg(groups, self.filters)
        conv_utils.check_strides_dilation(self.strides, self.dilation_rate)
        init_kernel_options(self, activation, use_bias, kernel_initializer, bias_initializer,
                            kernel_regularizer, bias_regularizer, activity_regularizer,
                            kernel_constraint, bias_constraint)
        self.input_spec = InputSpec(min_ndim=3)

    # the 2-D view: a one-row image, a (1, k) kernel
    @property
    def _k2(self):
        return (1, self.kernel_size[0])

    @property
    def _s2(self):
        return (1, self.strides[0])

    @property
    def _d2(self):
        return (1, self.dilation_rate[0])

    def _plain(self) -> bool:
        return self.dilation_rate == (1,) and self.groups == 1

    def build(self, input_shape):
        self.input_spec = InputSpec(ndim=3)
        self._check_input(input_shape)
        self.compute_output_shape(input_shape)
        channels = _channels(self, input_shape)
        conv_utils.check_groups_divide(self.groups, channels, input_shape)
        self.kernel = self.add_weight("kernel", self.kernel_size + (channels // self.groups,
                                                                    self.filters),
                                      self.kernel_initializer,
                                      regularizer=self.kernel_regularizer,
                                      constraint=self.kernel_constraint)
        self.bias = self._add_bias(self.filters)
        self.input_spec = InputSpec(ndim=3, axes={-1: channels})
        self.built = True

    def compute_output_shape(self, input_shape):
        shape4 = (input_shape[0], 1, input_shape[1], input_shape[2])
        _, ow = conv_utils.spatial_output(self.name, shape4, self._k2, self._s2, self.padding,
                                          "kernel", self._d2)
        return (input_shape[0], ow, self.filters)

    def forward(self, ctx, x, training=False):
        n, steps, c = x.shape
        ow = self.compute_output_shape(x.shape)[1]
        pads = conv_utils.conv_pads((1, steps), self._k2, self._s2, self.padding, self._d2)
        x4 = x.reshape(n, 1, steps, c)
        k4 = self.kernel.value.reshape((1,) + self.kernel.shape)
        z = ctx.buffer("z", (n, 1, ow, self.filters))
        if self._plain():
            _C.conv2d_forward(x4, k4, self._bias_value(), z, self._s2, pads,
                              activation=self._fused)
        else:
            _C.convg_forward(x4, k4, self._bias_value(), z, self._s2, pads, self._d2,
                             self.groups, activation=self._fused)
        ctx.x4, ctx.pads = x4, pads
        return self._activate(ctx, z).reshape(n, ow, self.filters)

    def backward(self, ctx, dy, need_dx=True):
        dz, relu_y = self._grad(ctx, dy)
        x4 = ctx.x4
        k4 = self.kernel.value.reshape((1,) + self.kernel.shape)
        dk4 = self.kernel.grad.reshape(k4.shape)
        dx = ctx.buffer("dx", x4.shape) if need_dx else None
        if self._plain():
            _C.conv2d_backward(x4, k4, dz, dx, dk4, self._bias_grad(), self._s2, ctx.pads,
                               y=relu_y)
        else:
            _C.convg_backward(x4, k4, dz, dx, dk4, self._bias_grad(), self._s2, ctx.pads,
                              self._d2, self.groups, y=relu_y)
        return dx.reshape(x4.shape[0], x4.shape[2], x4.shape[3]) if need_dx else None

    def get_config(self):
        return {**super().get_config(), "filters": self.filters,
                "kernel_size": list(self.kernel_size), "strides": list(self.strides),
                "padding": self.padding, "data_format": "channels_last",
                "dilation_rate": list(self.dilation_rate), "groups": self.groups,
                **self._common_config(),
                "kernel_initializer": _ser(self.kernel_initializer),
                "kernel_regularizer": _ser(self.kernel_regularizer),
                "kernel_constraint": _ser(self.kernel_constraint)}


class Conv2DTranspose(_Conv):
    """``Conv2DTranspose(filters, kernel_size, strides=(1, 1), padding="valid",
    output_padding=None, dilation_rate=(1, 1), activation=None)``: the transposed convolution
    ("deconvolution"), kernel ``(kh, kw, filters, in_channels)``. Output size per axis (Keras'
    ``deconv_output_length``): ``same``: ``input * strides``; ``valid``:
    ``(input - 1) * strides + max(kernel, strides)``; with ``output_padding``,
    ``(input - 1) * strides + kernel - 2 * pad + output_padding`` (pad: ``kernel // 2`` for
    ``same``, 0 for ``valid``)."""

    def __init__(self, filters: int, kernel_size, strides=(1, 1), padding: str = "valid",
                 output_padding=None, data_format=None, dilation_rate=(1, 1), activation=None,
                 use_bias: bool = True, kernel_initializer="glorot_uniform",
                 bias_initializer="zeros", kernel_regularizer=None, bias_regularizer=None,
                 activity_regularizer=None, kernel_constraint=None, bias_constraint=None,
                 **kwargs):
        super().__init__(**kwargs)
        self.filters = positive_int(filters, "filters")
        self.kernel_size = int_pair(kernel_size, "kernel_size")
        self.strides = int_pair(strides, "strides")
        self.padding = padding_arg(padding)
        self.output_padding = self._output_padding_arg(output_padding)
        _channels_last(data_format)
        self.dilation_rate = int_pair(dilation_rate, "dilation_rate")
        if self.output_padding is not None:
            for i, (op, s) in enumerate(zip(self.output_padding, self.strides)):
                if op >= s:
                    raise ValueError(
                        f"`output_padding` must be strictly less than `strides` for all "
                        f"dimensions. At dimension {i}, `output_padding` is {op} but `strides` "
                        f"is {s}. Received: output_padding={self.output_padding}, "
                        f"strides={self.strides}")
        conv_utils.check_strides_dilation(self.strides, self.dilation_rate)
        init_kernel_options(self, activation, use_bias, kernel_initializer, bias_initializer,
                            kernel_regularizer, bias_regularizer, activity_regularizer,
                            kernel_constraint, bias_constraint)
        self.input_spec = InputSpec(min_ndim=4)

    @staticmethod
    def _output_padding_arg(value) -> Optional[tuple[int, int]]:
        if value is None:
            return None
        pair = (value, value) if isinstance(value, (int, np.integer)) else value
        if isinstance(value, bool) or not isinstance(pair, (tuple, list)) or len(pair) != 2 or \
                any(isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 0
                    for v in pair):
            raise ValueError(f"The `output_padding` argument must be a tuple of 2 integers "
                             f">= 0. Received output_padding={value!r}")
        return int(pair[0]), int(pair[1])

    def build(self, input_shape):
        self.input_spec = InputSpec(ndim=4)
        self._check_input(input_shape)
        channels = _channels(self, input_shape)
        self.kernel = self.add_weight("kernel", self.kernel_size + (self.filters, channels),
                                      self.kernel_initializer,
                                      regularizer=self.kernel_regularizer,
                                      constraint=self.kernel_constraint)
        self.bias = self._add_bias(self.filters)
        self.input_spec = InputSpec(ndim=4, axes={-1: channels})
        self.built = True

    def _axis(self, i: int):
        op = None if self.output_padding is None else self.output_padding[i]
        return self.kernel_size[i], self.padding, op, self.strides[i], self.dilation_rate[i]

    def compute_output_shape(self, input_shape):
        return (input_shape[0],
                conv_utils.deconv_output_length(input_shape[1], *self._axis(0)),
                conv_utils.deconv_output_length(input_shape[2], *self._axis(1)),
                self.filters)

    def forward(self, ctx, x, training=False):
        out_shape = self.compute_output_shape(x.shape)
        pads = (conv_utils.deconv_pad(*self._axis(0)), conv_utils.deconv_pad(*self._axis(1)))
        z = ctx.buffer("z", out_shape)
        _C.conv_transpose_forward(x, self.kernel.value, self._bias_value(), z, self.strides,
                                  pads, self.dilation_rate, activation=self._fused)
        ctx.x, ctx.pads = x, pads
        return self._activate(ctx, z)

    def backward(self, ctx, dy, need_dx=True):
        dz, relu_y = self._grad(ctx, dy)
        dx = ctx.buffer("dx", ctx.x.shape) if need_dx else None
        _C.conv_transpose_backward(ctx.x, self.kernel.value, dz, dx, self.kernel.grad,
                                   self._bias_grad(), self.strides, ctx.pads,
                                   self.dilation_rate, y=relu_y)
        return dx

    def get_config(self):
        return {**super().get_config(), "filters": self.filters,
                "kernel_size": list(self.kernel_size), "strides": list(self.strides),
                "padding": self.padding,
                "output_padding": None if self.output_padding is None
                else list(self.output_padding),
                "data_format": "channels_last", "dilation_rate": list(self.dilation_rate),
                **self._common_config(),
                "kernel_initializer": _ser(self.kernel_initializer),
                "kernel_regularizer": _ser(self.kernel_regularizer),
                "kernel_constraint": _ser(self.kernel_constraint)}


def _depth_multiplier_arg(value) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value <= 0:
        raise ValueError(f"Invalid value for argument `depth_multiplier`. Expected a strictly "
                         f"positive value. Received depth_multiplier={value}.")
    return int(value)


#: The depthwise kernels keep one window's row pointers on the stack (csrc/depthwise.c KMAX).
DEPTHWISE_KERNEL_MAX = 256


class _Depthwise(_Conv):
    """The depthwise part shared by DepthwiseConv2D and SeparableConv2D."""

    def _init_depthwise(self, kernel_size, strides, padding, depth_multiplier, data_format,
                        dilation_rate) -> None:
        self.depth_multiplier = _depth_multiplier_arg(depth_multiplier)
        self.kernel_size = int_pair(kernel_size, "kernel_size")
        if max(self.kernel_size) > DEPTHWISE_KERNEL_MAX:
            raise ValueError(f"kernel_size must be at most {DEPTHWISE_KERNEL_MAX} in each "
                             f"dimension for a depthwise convolution, got {self.kernel_size}")
        self.strides = int_pair(strides, "strides")
        self.padding = padding_arg(padding)
        _channels_last(data_format)
        self.dilation_rate = int_pair(dilation_rate, "dilation_rate")

    def _dw_geometry(self, x_shape):
        n, h, w, c = x_shape
        oh, ow = conv_utils.spatial_output(self.name, x_shape, self.kernel_size, self.strides,
                                           self.padding, "kernel", self.dilation_rate)
        pads = conv_utils.conv_pads((h, w), self.kernel_size, self.strides, self.padding,
                                    self.dilation_rate)
        return (n, oh, ow, c * self.depth_multiplier), pads


class DepthwiseConv2D(_Depthwise):
    """``DepthwiseConv2D(kernel_size, strides=(1, 1), padding="valid", depth_multiplier=1,
    dilation_rate=(1, 1), activation=None)``: each input channel convolved with its own
    ``depth_multiplier`` filters, kernel ``(kh, kw, in_channels, depth_multiplier)``; output
    channel ``c * depth_multiplier + m``."""

    def __init__(self, kernel_size, strides=(1, 1), padding: str = "valid",
                 depth_multiplier: int = 1, data_format=None, dilation_rate=(1, 1),
                 activation=None, use_bias: bool = True, depthwise_initializer="glorot_uniform",
                 bias_initializer="zeros", depthwise_regularizer=None, bias_regularizer=None,
                 activity_regularizer=None, depthwise_constraint=None, bias_constraint=None,
                 **kwargs):
        super().__init__(**kwargs)
        self._init_depthwise(kernel_size, strides, padding, depth_multiplier, data_format,
                             dilation_rate)
        self._init_activation(activation)
        self.use_bias = bool(use_bias)
        self.depthwise_initializer, self.bias_initializer = depthwise_initializer, \
            bias_initializer
        self.depthwise_regularizer, self.bias_regularizer = depthwise_regularizer, \
            bias_regularizer
        self.depthwise_constraint, self.bias_constraint = depthwise_constraint, bias_constraint
        self.activity_regularizer = activity_regularizer
        self.input_spec = InputSpec(min_ndim=4)

    def build(self, input_shape):
        self.input_spec = InputSpec(ndim=4)
        self._check_input(input_shape)
        self.compute_output_shape(input_shape)
        channels = _channels(self, input_shape)
        self.kernel = self.add_weight("kernel", self.kernel_size + (channels,
                                                                    self.depth_multiplier),
                                      self.depthwise_initializer,
                                      regularizer=self.depthwise_regularizer,
                                      constraint=self.depthwise_constraint)
        self.bias = self._add_bias(channels * self.depth_multiplier)
        self.input_spec = InputSpec(ndim=4, axes={-1: channels})
        self.built = True

    def compute_output_shape(self, input_shape):
        oh, ow = conv_utils.spatial_output(self.name, input_shape, self.kernel_size,
                                           self.strides, self.padding, "kernel",
                                           self.dilation_rate)
        c = input_shape[-1]
        return (input_shape[0], oh, ow, None if c is None else c * self.depth_multiplier)

    def forward(self, ctx, x, training=False):
        out_shape, pads = self._dw_geometry(x.shape)
        z = ctx.buffer("z", out_shape)
        _C.depthwise_forward(x, self.kernel.value, self._bias_value(), z, self.strides, pads,
                             self.dilation_rate, activation=self._fused)
        ctx.x, ctx.pads = x, pads
        return self._activate(ctx, z)

    def backward(self, ctx, dy, need_dx=True):
        dz, relu_y = self._grad(ctx, dy)
        dx = ctx.buffer("dx", ctx.x.shape) if need_dx else None
        _C.depthwise_backward(ctx.x, self.kernel.value, dz, dx, self.kernel.grad,
                              self._bias_grad(), self.strides, ctx.pads, self.dilation_rate,
                              y=relu_y)
        return dx

    def get_config(self):
        return {**super().get_config(), "depth_multiplier": self.depth_multiplier,
                "kernel_size": list(self.kernel_size), "strides": list(self.strides),
                "padding": self.padding, "data_format": "channels_last",
                "dilation_rate": list(self.dilation_rate), **self._common_config(),
                "depthwise_initializer": _ser(self.depthwise_initializer),
                "depthwise_regularizer": _ser(self.depthwise_regularizer),
                "depthwise_constraint": _ser(self.depthwise_constraint)}


class SeparableConv2D(_Depthwise):
    """``SeparableConv2D(filters, kernel_size, strides=(1, 1), padding="valid",
    depth_multiplier=1, dilation_rate=(1, 1), activation=None)``: a depthwise convolution
    (``depthwise_kernel`` ``(kh, kw, in_channels, depth_multiplier)``, no bias) followed by a
    1x1 convolution (``pointwise_kernel`` ``(1, 1, in_channels * depth_multiplier, filters)``)
    with the bias and the activation."""

    def __init__(self, filters: int, kernel_size, strides=(1, 1), padding: str = "valid",
                 data_format=None, dilation_rate=(1, 1), depth_multiplier: int = 1,
                 activation=None, use_bias: bool = True, depthwise_initializer="glorot_uniform",
                 pointwise_initializer="glorot_uniform", bias_initializer="zeros",
                 depthwise_regularizer=None, pointwise_regularizer=None, bias_regularizer=None,
                 activity_regularizer=None, depthwise_constraint=None, pointwise_constraint=None,
                 bias_constraint=None, **kwargs):
        super().__init__(**kwargs)
        self._init_depthwise(kernel_size, strides, padding, depth_multiplier, data_format,
                             dilation_rate)
        self.filters = positive_int(filters, "filters")
        self._init_activation(activation)
        self.use_bias = bool(use_bias)
        self.depthwise_initializer = depthwise_initializer
        self.pointwise_initializer = pointwise_initializer
        self.bias_initializer = bias_initializer
        self.depthwise_regularizer = depthwise_regularizer
        self.pointwise_regularizer = pointwise_regularizer
        self.bias_regularizer = bias_regularizer
        self.depthwise_constraint = depthwise_constraint
        self.pointwise_constraint = pointwise_constraint
        self.bias_constraint = bias_constraint
        self.activity_regularizer = activity_regularizer
        self.input_spec = InputSpec(min_ndim=4)

    def build(self, input_shape):
        self.input_spec = InputSpec(ndim=4)
        self._check_input(input_shape)
        self.compute_output_shape(input_shape)
        channels = _channels(self, input_shape)
        self.depthwise_kernel = self.add_weight(
            "depthwise_kernel", self.kernel_size + (channels, self.depth_multiplier),
            self.depthwise_initializer, regularizer=self.depthwise_regularizer,
            constraint=self.depthwise_constraint)
        self.pointwise_kernel = self.add_weight(
            "pointwise_kernel", (1, 1, channels * self.depth_multiplier, self.filters),
            self.pointwise_initializer, regularizer=self.pointwise_regularizer,
            constraint=self.pointwise_constraint)
        self.bias = self._add_bias(self.filters)
        self.input_spec = InputSpec(ndim=4, axes={-1: channels})
        self.built = True

    def compute_output_shape(self, input_shape):
        oh, ow = conv_utils.spatial_output(self.name, input_shape, self.kernel_size,
                                           self.strides, self.padding, "kernel",
                                           self.dilation_rate)
        return (input_shape[0], oh, ow, self.filters)

    def forward(self, ctx, x, training=False):
        mid_shape, pads = self._dw_geometry(x.shape)
        mid = ctx.buffer("mid", mid_shape)
        _C.depthwise_forward(x, self.depthwise_kernel.value, None, mid, self.strides, pads,
                             self.dilation_rate)
        z = ctx.buffer("z", mid_shape[:3] + (self.filters,))
        _C.conv2d_forward(mid, self.pointwise_kernel.value, self._bias_value(), z, (1, 1),
                          (0, 0), activation=self._fused)
        ctx.x, ctx.mid, ctx.pads = x, mid, pads
        return self._activate(ctx, z)

    def backward(self, ctx, dy, need_dx=True):
        dz, relu_y = self._grad(ctx, dy)
        dmid = ctx.buffer("dmid", ctx.mid.shape)
        _C.conv2d_backward(ctx.mid, self.pointwise_kernel.value, dz, dmid,
                           self.pointwise_kernel.grad, self._bias_grad(), (1, 1), (0, 0),
                           y=relu_y)
        dx = ctx.buffer("dx", ctx.x.shape) if need_dx else None
        _C.depthwise_backward(ctx.x, self.depthwise_kernel.value, dmid, dx,
                              self.depthwise_kernel.grad, None, self.strides, ctx.pads,
                              self.dilation_rate)
        return dx

    def get_config(self):
        return {**super().get_config(), "depth_multiplier": self.depth_multiplier,
                "filters": self.filters, "kernel_size": list(self.kernel_size),
                "strides": list(self.strides), "padding": self.padding,
                "data_format": "channels_last", "dilation_rate": list(self.dilation_rate),
                **self._common_config(),
                "depthwise_initializer": _ser(self.depthwise_initializer),
                "pointwise_initializer": _ser(self.pointwise_initializer),
                "depthwise_regularizer": _ser(self.depthwise_regularizer),
                "pointwise_regularizer": _ser(self.pointwise_regularizer),
                "depthwise_constraint": _ser(self.depthwise_constraint),
                "pointwise_constraint": _ser(self.pointwise_constraint)}


Convolution1D = Conv1D
Convolution2DTranspose = Conv2DTranspose
SeparableConvolution2D = SeparableConv2D
