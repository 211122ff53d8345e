"""BatchNormalization and LayerNormalization (Keras 3 semantics), computed by the C kernels of
csrc/normalization.c."""
from __future__ import annotations

import math
import numbers
from typing import Optional

import numpy as np

from .. import _C
from .. import constraints, initializers, regularizers
from .base import InputSpec, Layer


def _float_arg(value, arg: str, minimum: Optional[float] = None) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) \
            or not math.isfinite(float(value)) or (minimum is not None and value < minimum):
        more = "" if minimum is None else f" >= {minimum}"
        raise ValueError(f"Invalid value for argument `{arg}`: expected a finite float{more}. "
                         f"Received: {arg}={value!r}")
    return float(value)


def _serialize(obj):
    from .. import serialization
    return serialization.serialize(obj)


def _norm_axis(axis, ndim: int, input_shape) -> int:
    if not -ndim <= axis < ndim:
        raise ValueError(f"Axis {axis} is out of bounds for input shape {tuple(input_shape)}. "
                         f"Received: axis={axis}")
    return axis % ndim


class BatchNormalization(Layer):
    """Normalizes each channel of the ``axis`` (default: the last, the channels of a Conv2D or
    the units of a Dense layer):

    * training (``fit``, or ``training=True``): with the batch's mean and biased variance
      over every other axis, ``gamma * (x - mean) / sqrt(var + epsilon) + beta``; then
      ``moving = moving * momentum + batch * (1 - momentum)`` for the mean and the variance;
    * inference (``evaluate``/``predict``, ``training=False``), and always when the layer is
      frozen (``layer.trainable = False``, as in Keras 3): with ``moving_mean`` and
      ``moving_variance``.

    Weights, in Keras' order: ``gamma`` (if ``scale``), ``beta`` (if ``center``),
    ``moving_mean``, ``moving_variance`` (the last two non-trainable).
    """

    def __init__(self, axis: int = -1, momentum: float = 0.99, epsilon: float = 1e-3,
                 center: bool = True, scale: bool = True, beta_initializer="zeros",
                 gamma_initializer="ones", moving_mean_initializer="zeros",
                 moving_variance_initializer="ones", beta_regularizer=None,
                 gamma_regularizer=None, beta_constraint=None, gamma_constraint=None,
                 renorm: bool = False, renorm_clipping=None, renorm_momentum: float = 0.99,
                 synchronized: bool = False, fused=None, **kwargs):
        super().__init__(**kwargs)
        if isinstance(axis, (list, tuple)) and len(axis) == 1:    # tf.keras 2 accepted [axis]
            axis = axis[0]
        if isinstance(axis, bool) or not isinstance(axis, numbers.Integral):
            raise TypeError(f"Expected an int for the argument 'axis'. Received: axis={axis!r}")
        self.axis = int(axis)
        self.momentum = _float_arg(momentum, "momentum")
        self.epsilon = _float_arg(epsilon, "epsilon", 0.0)
        if renorm:
            raise ValueError("pycnn's BatchNormalization does not support `renorm=True`")
        if synchronized:
            raise ValueError("Argument synchronized=True is only supported with the "
                             "TensorFlow backend.")
        self.center, self.scale = bool(center), bool(scale)
        self.beta_initializer = initializers.get(beta_initializer)
        self.gamma_initializer = initializers.get(gamma_initializer)
        self.moving_mean_initializer = initializers.get(moving_mean_initializer)
        self.moving_variance_initializer = initializers.get(moving_variance_initializer)
        self.beta_regularizer = regularizers.get(beta_regularizer)
        self.gamma_regularizer = regularizers.get(gamma_regularizer)
        self.beta_constraint = constraints.get(beta_constraint)
        self.gamma_constraint = constraints.get(gamma_constraint)
        self.renorm_clipping, self.renorm_momentum = renorm_clipping, renorm_momentum
        self.gamma = self.beta = self.moving_mean = self.moving_variance = None

    def build(self, input_shape):
        ndim = len(input_shape)
        ax = _norm_axis(self.axis, ndim, input_shape)
        c = input_shape[ax]
        if c is None:
            raise ValueError(f'Layer "{self.name}": axis {self.axis} of the input must have a '
                             f"known size. Received input shape {tuple(input_shape)}")
        shape = (c,)
        if self.scale:
            self.gamma = self.add_weight(shape=shape, name="gamma",
                                         initializer=self.gamma_initializer,
                                         regularizer=self.gamma_regularizer,
                                         constraint=self.gamma_constraint)
        if self.center:
            self.beta = self.add_weight(shape=shape, name="beta",
                                        initializer=self.beta_initializer,
                                        regularizer=self.beta_regularizer,
                                        constraint=self.beta_constraint)
        self.moving_mean = self.add_weight(shape=shape, name="moving_mean",
                                           initializer=self.moving_mean_initializer,
                                           trainable=False)
        self.moving_variance = self.add_weight(shape=shape, name="moving_variance",
                                               initializer=self.moving_variance_initializer,
                                               trainable=False)
        self.input_spec = InputSpec(ndim=ndim, axes={self.axis: c})
        self.built = True

    def compute_output_shape(self, input_shape):
        _norm_axis(self.axis, len(input_shape), input_shape)
        return tuple(input_shape)

    def _view(self, shape):
        ax = self.axis % len(shape)
        return (math.prod(shape[:ax]), shape[ax], math.prod(shape[ax + 1:]))

    def forward(self, ctx, x, training=False):
        x = np.ascontiguousarray(x, dtype=np.float32)
        view = self._view(x.shape)
        y = ctx.buffer("y", x.shape)
        c = view[1]
        ctx.mean, ctx.var = ctx.buffer("mean", (c,)), ctx.buffer("var", (c,))
        ctx.batch_stats = bool(training) and self.trainable
        ctx.x3 = x.reshape(view)
        if x.size == 0:
            return y
        gamma = self.gamma.value if self.scale else None
        beta = self.beta.value if self.center else None
        if not ctx.batch_stats:
            ctx.mean[...] = self.moving_mean.value     # copies: a later update cannot change
            ctx.var[...] = self.moving_variance.value  # what the backward pass uses
        _C.batchnorm_forward(ctx.x3, ctx.mean, ctx.var, gamma, beta, y.reshape(view),
                             self.epsilon, ctx.batch_stats)
        self._update_moving(ctx)
        return y

    def _update_moving(self, ctx) -> None:
        """moving = moving * momentum + batch * (1 - momentum), after a batch-stats pass."""
        if ctx.batch_stats:
            m = np.float32(self.momentum)
            rest = np.float32(1.0 - self.momentum)
            mm, mv = self.moving_mean.value, self.moving_variance.value
            mm[...] = mm * m + ctx.mean * rest
            mv[...] = mv * m + ctx.var * rest

    def forward_maxpool(self, ctx, x, pool, training=False):
        """``pool(self(x))`` for a 4-D ``x`` normalized over its last axis and a
        ``MaxPooling2D`` whose strides equal its pool size, as one call that never stores the
        normalized map (models/fusion_bn.py): the same numbers, moving statistics and argmax
        as the two layers apart."""
        x = np.ascontiguousarray(x, dtype=np.float32)
        out_shape, pads = pool._geometry(x.shape)
        c = x.shape[3]
        y = ctx.buffer("y", out_shape)
        ctx.argmax = ctx.buffer("argmax", out_shape, np.int32)
        ctx.mean, ctx.var = ctx.buffer("mean", (c,)), ctx.buffer("var", (c,))
        ctx.batch_stats = bool(training) and self.trainable
        ctx.x, ctx.pool_args = x, (pool.pool_size, pool.strides, pads)
        if x.size == 0 or y.size == 0:
            ctx.argmax[...] = -1
            y[...] = -np.inf
            return y
        if not ctx.batch_stats:
            ctx.mean[...] = self.moving_mean.value
            ctx.var[...] = self.moving_variance.value
        _C.batchnorm_maxpool_forward(x, ctx.mean, ctx.var,
                                     self.gamma.value if self.scale else None,
                                     self.beta.value if self.center else None, y, ctx.argmax,
                                     *ctx.pool_args, self.epsilon, ctx.batch_stats)
        self._update_moving(ctx)
        return y

    def backward_maxpool(self, ctx, dy, need_dx=True, relu=False):
        """The gradient of ``forward_maxpool`` from the pooled gradient ``dy``; with ``relu``
        (``x`` the output of a relu) the returned gradient is the relu's input gradient."""
        x = ctx.x
        dy = np.ascontiguousarray(dy, dtype=np.float32).reshape(ctx.argmax.shape)
        dx = ctx.buffer("dx", x.shape) if need_dx else None
        if x.size == 0 or dy.size == 0:
            for v in (self.gamma, self.beta):
                if v is not None:
                    v.grad[...] = 0
            if dx is not None:
                dx[...] = 0
            return dx
        _C.batchnorm_maxpool_backward(x, ctx.mean, ctx.var,
                                      self.gamma.value if self.scale else None, dy, ctx.argmax,
                                      dx, self.gamma.grad if self.scale else None,
                                      self.beta.grad if self.center else None, *ctx.pool_args,
                                      self.epsilon, ctx.batch_stats, relu=relu)
        return dx

    def backward(self, ctx, dy, need_dx=True):
        x3 = ctx.x3
        dy3 = np.ascontiguousarray(dy, dtype=np.float32).reshape(x3.shape)
        dx = ctx.buffer("dx", x3.shape) if need_dx else None
        if x3.size == 0:
            for v in (self.gamma, self.beta):
                if v is not None:
                    v.grad[...] = 0
            return dx
        _C.batchnorm_backward(x3, ctx.mean, ctx.var,
                              self.gamma.value if self.scale else None, dy3, dx,
                              self.gamma.grad if self.scale else None,
                              self.beta.grad if self.center else None, self.epsilon,
                              ctx.batch_stats)
        return dx.reshape(np.shape(dy)) if need_dx else None

    def fold_into(self, kernel, bias=None):
        """The kernel and bias of a Dense or Conv2D layer followed by this layer, with this
        layer's inference transform folded in: for ``y = x (*) kernel + bias`` whose last axis
        this layer normalizes,

            scale = gamma / sqrt(moving_variance + epsilon)
            new_kernel = kernel * scale          (over the kernel's last, output axis)
            new_bias = (bias - moving_mean) * scale + beta     (bias None: zeros)

        so that ``x (*) new_kernel + new_bias == bn(x (*) kernel + bias, training=False)``.
        A pure function of the current moving statistics (nothing is changed); computed in
        float64, returned as float32 arrays."""
        if not self.built:
            raise ValueError(f'Layer "{self.name}" is not built: it has no statistics to fold')
        kernel = np.asarray(kernel, dtype=np.float64)
        c = self.moving_mean.shape[0]
        if kernel.ndim < 1 or kernel.shape[-1] != c:
            raise ValueError(f"fold_into(): the kernel's last axis must have {c} outputs (the "
                             f"channels of {self.name}). Received: kernel.shape={kernel.shape}")
        bias = np.zeros(c) if bias is None else np.asarray(bias, dtype=np.float64)
        if bias.shape != (c,):
            raise ValueError(f"fold_into(): expected a bias of shape ({c},). Received: "
                             f"bias.shape={bias.shape}")
        gamma = self.gamma.value.astype(np.float64) if self.scale else np.ones(c)
        beta = self.beta.value.astype(np.float64) if self.center else np.zeros(c)
        scale = gamma / np.sqrt(self.moving_variance.value.astype(np.float64) + self.epsilon)
        new_kernel = kernel * scale
        new_bias = (bias - self.moving_mean.value.astype(np.float64)) * scale + beta
        return new_kernel.astype(np.float32), new_bias.astype(np.float32)

    def get_config(self):
        return {**super().get_config(), "axis": self.axis, "momentum": self.momentum,
                "epsilon": self.epsilon, "center": self.center, "scale": self.scale,
                "beta_initializer": _serialize(self.beta_initializer),
                "gamma_initializer": _serialize(self.gamma_initializer),
                "moving_mean_initializer": _serialize(self.moving_mean_initializer),
                "moving_variance_initializer": _serialize(self.moving_variance_initializer),
                "beta_regularizer": _serialize(self.beta_regularizer),
                "gamma_regularizer": _serialize(self.gamma_regularizer),
                "beta_constraint": _serialize(self.beta_constraint),
                "gamma_constraint": _serialize(self.gamma_constraint),
                "synchronized": False, "renorm": False,
                "renorm_clipping": self.renorm_clipping,
                "renorm_momentum": self.renorm_momentum}


class LayerNormalization(Layer):
    """Normalizes each sample over ``axis`` (an int or a list; default the last):
    ``gamma * (x - mean) / sqrt(var + epsilon) + beta`` with the sample's mean and biased
    variance over those axes; ``gamma`` and ``beta`` have the shape of those axes. The same in
    training and inference. ``rms_scaling=True`` (deprecated in Keras 3, kept for its
    numbers): ``gamma * x / sqrt(var + epsilon)``, no beta."""

    def __init__(self, axis=-1, epsilon: float = 1e-3, center: bool = True, scale: bool = True,
                 rms_scaling: bool = False, beta_initializer="zeros", gamma_initializer="ones",
                 beta_regularizer=None, gamma_regularizer=None, beta_constraint=None,
                 gamma_constraint=None, **kwargs):
        super().__init__(**kwargs)
        if isinstance(axis, (list, tuple)):
            if not all(isinstance(a, numbers.Integral) and not isinstance(a, bool) for a in axis) \
                    or not axis:
                raise TypeError("Expected an int or a list/tuple of ints for the argument "
                                f"'axis', but received: {axis!r}")
            self.axis = [int(a) for a in axis]
        elif isinstance(axis, numbers.Integral) and not isinstance(axis, bool):
            self.axis = int(axis)
        else:
            raise TypeError("Expected an int or a list/tuple of ints for the argument 'axis', "
                            f"but received: {axis!r}")
        self.epsilon = _float_arg(epsilon, "epsilon", 0.0)
        self.center, self.scale, self.rms_scaling = bool(center), bool(scale), bool(rms_scaling)
        self.beta_initializer = initializers.get(beta_initializer)
        self.gamma_initializer = initializers.get(gamma_initializer)
        self.beta_regularizer = regularizers.get(beta_regularizer)
        self.gamma_regularizer = regularizers.get(gamma_regularizer)
        self.beta_constraint = constraints.get(beta_constraint)
        self.gamma_constraint = constraints.get(gamma_constraint)
        self.gamma = self.beta = None

    def _axes(self, ndim: int, input_shape) -> list[int]:
        axes = self.axis if isinstance(self.axis, list) else [self.axis]
        out = sorted({_norm_axis(a, ndim, input_shape) for a in axes})
        if 0 in out:
            raise ValueError(f'Layer "{self.name}" cannot normalize over the batch axis 0. '
                             f"Received: axis={self.axis}")
        return out

    def build(self, input_shape):
        axes = self._axes(len(input_shape), input_shape)
        shape = tuple(input_shape[a] for a in axes)
        if any(d is None for d in shape):
            raise ValueError(f'Layer "{self.name}": the normalized axes {axes} must have known '
                             f"sizes. Received input shape {tuple(input_shape)}")
        if self.scale or self.rms_scaling:
            self.gamma = self.add_weight(shape=shape, name="gamma",
                                         initializer=self.gamma_initializer,
                                         regularizer=self.gamma_regularizer,
                                         constraint=self.gamma_constraint)
        if self.center and not self.rms_scaling:
            self.beta = self.add_weight(shape=shape, name="beta",
                                        initializer=self.beta_initializer,
                                        regularizer=self.beta_regularizer,
                                        constraint=self.beta_constraint)
        self.input_spec = InputSpec(ndim=len(input_shape),
                                    axes={a: input_shape[a] for a in axes})
        self.built = True

    def compute_output_shape(self, input_shape):
        self._axes(len(input_shape), input_shape)
        return tuple(input_shape)

    def forward(self, ctx, x, training=False):
        x = np.asarray(x, dtype=np.float32)
        axes = self._axes(x.ndim, x.shape)
        rest = [a for a in range(x.ndim) if a not in axes]
        ctx.perm = None if rest + axes == list(range(x.ndim)) else rest + axes
        xt = np.ascontiguousarray(x if ctx.perm is None else x.transpose(ctx.perm))
        d = math.prod(xt.shape[len(rest):])
        x2 = xt.reshape(-1, d)
        ctx.x2, ctx.xt_shape, ctx.x_shape = x2, xt.shape, x.shape
        y2 = ctx.buffer("y", x2.shape)
        if x2.size == 0:
            return y2.reshape(xt.shape) if ctx.perm is None else \
                np.empty(x.shape, np.float32)
        ctx.mean = ctx.buffer("mean", (x2.shape[0],))
        ctx.inv = ctx.buffer("inv", (x2.shape[0],))
        _C.layernorm_forward(x2, None if self.gamma is None else self.gamma.value.reshape(-1),
                             None if self.beta is None else self.beta.value.reshape(-1), y2,
                             ctx.mean, ctx.inv, self.epsilon, rms=self.rms_scaling)
        if ctx.perm is None:
            return y2.reshape(x.shape)
        return np.ascontiguousarray(y2.reshape(xt.shape).transpose(np.argsort(ctx.perm)))

    def backward(self, ctx, dy, need_dx=True):
        dy = np.asarray(dy, dtype=np.float32)
        dyt = dy if ctx.perm is None else dy.transpose(ctx.perm)
        dy2 = np.ascontiguousarray(dyt).reshape(ctx.x2.shape)
        dx2 = ctx.buffer("dx", ctx.x2.shape) if need_dx else None
        if ctx.x2.size == 0:
            for v in (self.gamma, self.beta):
                if v is not None:
                    v.grad[...] = 0
            return np.zeros(ctx.x_shape, np.float32) if need_dx else None
        _C.layernorm_backward(ctx.x2,
                              None if self.gamma is None else self.gamma.value.reshape(-1),
                              ctx.mean, ctx.inv, dy2, dx2,
                              None if self.gamma is None else self.gamma.grad.reshape(-1),
                              None if self.beta is None else self.beta.grad.reshape(-1),
                              rms=self.rms_scaling)
        if not need_dx:
            return None
        if ctx.perm is None:
            return dx2.reshape(ctx.x_shape)
        return np.ascontiguousarray(dx2.reshape(ctx.xt_shape).transpose(np.argsort(ctx.perm)))

    def get_config(self):
        return {**super().get_config(), "axis": self.axis, "epsilon": self.epsilon,
                "center": self.center, "scale": self.scale, "rms_scaling": self.rms_scaling,
                "beta_initializer": _serialize(self.beta_initializer),
                "gamma_initializer": _serialize(self.gamma_initializer),
                "beta_regularizer": _serialize(self.beta_regularizer),
                "gamma_regularizer": _serialize(self.gamma_regularizer),
                "beta_constraint": _serialize(self.beta_constraint),
                "gamma_constraint": _serialize(self.gamma_constraint)}
