"""Layers that change the shape of their input without weights: ``UpSampling1D/2D``,
``ZeroPadding1D/2D``, ``Cropping1D/2D``, ``Permute``, ``RepeatVector`` and ``Identity``
(channels-last, Keras 3's arguments and configs).

The C kernels (``_C.upsample2d_*``, ``_C.shift2d``, ``_C.permute``) work on NHWC arrays; the
1-D layers and ``RepeatVector`` view their ``(batch, steps, channels)`` input as an image one
pixel wide (or one pixel square), so each layer is one kernel call forward and one backward.
Bilinear upsampling follows ``keras.ops.image.resize`` (half-pixel centres, as TensorFlow's and
JAX's ``resize`` compute it).
"""
from __future__ import annotations

from typing import Any

import numpy as np

from .. import _C
from .base import MAX_SIZE, InputSpec, Layer


def _is_int(v: Any) -> bool:
    return isinstance(v, (int, np.integer)) and not isinstance(v, bool)


def standardize_tuple(value: Any, n: int, name: str, allow_zero: bool = False) -> tuple:
    """Keras' ``argument_validation.standardize_tuple``: an int or ``n`` ints, each positive
    (``>= 0`` with ``allow_zero``); NumPy integers accepted."""
    message = f"The `{name}` argument must be a tuple of {n} integers. Received {name}={value!r}"
    if _is_int(value):
        values = (int(value),) * n
    else:
        try:
            values = tuple(value)
        except TypeError:
            raise ValueError(message) from None
        if len(values) != n or not all(_is_int(v) for v in values):
            raise ValueError(message)
        values = tuple(int(v) for v in values)
    bad = {v for v in values if (v < 0 if allow_zero else v <= 0) or v > MAX_SIZE}
    if bad:
        req = ">= 0" if allow_zero else "> 0"
        raise ValueError(f"{message}, including values {bad} that do not satisfy "
                         f"`value {req}`")
    return values


def _positive_int(value: Any, name: str) -> int:
    if not _is_int(value):
        raise TypeError(f"Expected an integer value for `{name}`, got {type(value)}.")
    if value <= 0 or value > MAX_SIZE:
        raise ValueError(f"Argument `{name}` should be a positive integer. "
                         f"Received: {name}={value}")
    return int(value)


def _channels_last(data_format) -> str:
    if data_format not in (None, "channels_last"):
        raise ValueError(f"pycnn supports data_format='channels_last' only. "
                         f"Received: data_format={data_format!r}")
    return "channels_last"


def _pairs_2d(value: Any, name: str) -> tuple:
    """An int, a pair of ints (symmetric) or a pair of pairs: ((top, bottom), (left, right))."""
    if _is_int(value):
        if value < 0:
            raise ValueError(f"`{name}` cannot be negative. Received: {name}={value}.")
        v = int(value)
        return ((v, v), (v, v))
    if hasattr(value, "__len__") and not isinstance(value, str):
        if len(value) != 2:
            raise ValueError(f"`{name}` should have two elements. Received: {name}={value}.")
        return (standardize_tuple(value[0], 2, f"1st entry of {name}", allow_zero=True),
                standardize_tuple(value[1], 2, f"2nd entry of {name}", allow_zero=True))
    raise ValueError(f"`{name}` should be either an int, a tuple of 2 ints "
                     f"(symmetric_height_{name}, symmetric_width_{name}), or a tuple of 2 "
                     f"tuples of 2 ints ((top_{name}, bottom_{name}), (left_{name}, "
                     f"right_{name})). Received: {name}={value}.")


def _as_list(value):
    return [_as_list(v) for v in value] if isinstance(value, (tuple, list)) else value


def _grad(dy) -> np.ndarray:
    return np.ascontiguousarray(dy, dtype=np.float32)


def _image(x: np.ndarray) -> np.ndarray:
    """A (batch, steps, channels) array as an image one pixel high: (batch, 1, steps, ch)."""
    return x.reshape(x.shape[0], 1, x.shape[1], x.shape[2])


# ---- upsampling -----------------------------------------------------------------------------

class UpSampling2D(Layer):
    """Repeats rows and columns ``size`` times (``interpolation="nearest"``) or interpolates
    between them (``"bilinear"``, as ``keras.ops.image.resize``)."""

    def __init__(self, size=(2, 2), data_format=None, interpolation: str = "nearest",
                 **kwargs):
        super().__init__(**kwargs)
        self.data_format = _channels_last(data_format)
        self.size = standardize_tuple(size, 2, "size")
        if not isinstance(interpolation, str) or \
                interpolation.lower() not in ("nearest", "bilinear"):
            raise ValueError(f"pycnn's UpSampling2D supports interpolation 'nearest' and "
                             f"'bilinear'. Received: interpolation={interpolation!r}")
        self.interpolation = interpolation.lower()
        self.input_spec = InputSpec(ndim=4)

    def compute_output_shape(self, input_shape):
        n, h, w, c = input_shape
        return (n, None if h is None else h * self.size[0],
                None if w is None else w * self.size[1], c)

    def forward(self, ctx, x, training=False):
        x = np.ascontiguousarray(x, dtype=np.float32)
        y = ctx.buffer("y", self.compute_output_shape(x.shape))
        _C.upsample2d_forward(x, y, self.size, self.interpolation)
        ctx.x_shape = x.shape
        return y

    def backward(self, ctx, dy, need_dx=True):
        if not need_dx:
            return None
        dx = ctx.buffer("dx", ctx.x_shape)
        _C.upsample2d_backward(_grad(dy), dx, self.size, self.interpolation)
        return dx

    def get_config(self):
        return {**super().get_config(), "size": list(self.size),
                "data_format": self.data_format, "interpolation": self.interpolation}


class _Repeat(Layer):
    """Nearest upsampling of an NHWC view of the input: ``_view`` gives the view and the
    repeat factors, ``compute_output_shape`` the output."""

    def _view(self, x: np.ndarray):
        raise NotImplementedError

    def forward(self, ctx, x, training=False):
        x = np.ascontiguousarray(x, dtype=np.float32)
        xv, size = self._view(x)
        out = (x.shape[0],) + tuple(self.compute_output_shape((None,) + x.shape[1:])[1:])
        y = ctx.buffer("y", out)
        yv = y.reshape(xv.shape[0], xv.shape[1] * size[0], xv.shape[2] * size[1], xv.shape[3])
        _C.upsample2d_forward(xv, yv, size, "nearest")
        ctx.x_shape, ctx.view, ctx.size = x.shape, xv.shape, size
        return y

    def backward(self, ctx, dy, need_dx=True):
        if not need_dx:
            return None
        n, h, w, c = ctx.view
        dyv = _grad(dy).reshape(n, h * ctx.size[0], w * ctx.size[1], c)
        dx = ctx.buffer("dx", ctx.x_shape)
        _C.upsample2d_backward(dyv, dx.reshape(ctx.view), ctx.size, "nearest")
        return dx


class UpSampling1D(_Repeat):
    """Repeats each step along the time axis ``size`` times: (batch, steps, features) ->
    (batch, steps * size, features)."""

    def __init__(self, size: int = 2, **kwargs):
        super().__init__(**kwargs)
        self.size = _positive_int(size, "size")
        self.input_spec = InputSpec(ndim=3)

    def compute_output_shape(self, input_shape):
        n, steps, c = input_shape
        return (n, None if steps is None else steps * self.size, c)

    def _view(self, x):
        return x.reshape(x.shape[0], x.shape[1], 1, x.shape[2]), (self.size, 1)

    def get_config(self):
        return {**super().get_config(), "size": self.size}


class RepeatVector(_Repeat):
    """Repeats a (batch, features) input ``n`` times: (batch, n, features)."""

    def __init__(self, n: int, **kwargs):
        super().__init__(**kwargs)
        if not _is_int(n):
            raise TypeError(f"Expected an integer value for `n`, got {type(n)}.")
        if n <= 0 or n > MAX_SIZE:
            raise ValueError(f"Argument `n` should be a positive integer. Received: n={n}")
        self.n = int(n)
        self.input_spec = InputSpec(ndim=2)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.n, input_shape[1])

    def _view(self, x):
        return x.reshape(x.shape[0], 1, 1, x.shape[1]), (self.n, 1)

    def get_config(self):
        return {**super().get_config(), "n": self.n}


# ---- padding and cropping -------------------------------------------------------------------

class _Shift2D(Layer):
    """Zero padding (positive offsets) or cropping (negative offsets) of the spatial axes of an
    NHWC view: the forward pass is one ``_C.shift2d``, the backward pass the opposite one."""

    #: ((top, bottom), (left, right)) cells added (padding) or removed (cropping)
    _amounts: tuple = ((0, 0), (0, 0))
    _sign = 1

    def _image_shape(self, x_shape) -> tuple:
        return tuple(x_shape)

    def forward(self, ctx, x, training=False):
        x = np.ascontiguousarray(x, dtype=np.float32)
        out = (x.shape[0],) + tuple(self.compute_output_shape((None,) + x.shape[1:])[1:])
        xv = x.reshape(self._image_shape(x.shape))
        y = ctx.buffer("y", out)
        yv = y.reshape(self._image_shape(out))
        (t, _), (l, _) = self._amounts
        _C.shift2d(xv, yv, (self._sign * t, self._sign * l))
        ctx.x_shape, ctx.y_view, ctx.x_view = x.shape, yv.shape, xv.shape
        return y

    def backward(self, ctx, dy, need_dx=True):
        if not need_dx:
            return None
        (t, _), (l, _) = self._amounts
        dx = ctx.buffer("dx", ctx.x_shape)
        _C.shift2d(_grad(dy).reshape(ctx.y_view), dx.reshape(ctx.x_view),
                   (-self._sign * t, -self._sign * l))
        return dx


def _resize(n, before, after, sign):
    return None if n is None else n + sign * (before + after)


class ZeroPadding2D(_Shift2D):
    """Adds rows and columns of zeros: ``padding`` an int, a pair (symmetric height, width) or
    ``((top, bottom), (left, right))``."""

    def __init__(self, padding=(1, 1), data_format=None, **kwargs):
        super().__init__(**kwargs)
        self.data_format = _channels_last(data_format)
        self.padding = _pairs_2d(padding, "padding")
        self._amounts = self.padding
        self.input_spec = InputSpec(ndim=4)

    def compute_output_shape(self, input_shape):
        (t, b), (l, r) = self.padding
        return (input_shape[0], _resize(input_shape[1], t, b, 1),
                _resize(input_shape[2], l, r, 1), input_shape[3])

    def get_config(self):
        return {**super().get_config(), "padding": _as_list(self.padding),
                "data_format": self.data_format}


class ZeroPadding1D(_Shift2D):
    """Adds zeros at the start and end of the time axis: ``padding`` an int or
    ``(left, right)``."""

    def __init__(self, padding=1, data_format=None, **kwargs):
        super().__init__(**kwargs)
        self.data_format = _channels_last(data_format)
        self.padding = standardize_tuple(padding, 2, "padding", allow_zero=True)
        self._amounts = ((0, 0), self.padding)
        self.input_spec = InputSpec(ndim=3)

    def _image_shape(self, x_shape):
        return (x_shape[0], 1, x_shape[1], x_shape[2])

    def compute_output_shape(self, input_shape):
        return (input_shape[0], _resize(input_shape[1], *self.padding, 1), input_shape[2])

    def get_config(self):
        return {**super().get_config(), "padding": list(self.padding),
                "data_format": self.data_format}


class Cropping2D(_Shift2D):
    """Removes rows and columns at the borders: ``cropping`` an int, a pair or
    ``((top, bottom), (left, right))``."""

    _sign = -1

    def __init__(self, cropping=((0, 0), (0, 0)), data_format=None, **kwargs):
        super().__init__(**kwargs)
        self.data_format = _channels_last(data_format)
        self.cropping = _pairs_2d(cropping, "cropping")
        self._amounts = self.cropping
        self.input_spec = InputSpec(ndim=4)

    def compute_output_shape(self, input_shape):
        (t, b), (l, r) = self.cropping
        if (input_shape[1] is not None and t + b >= input_shape[1]) or \
                (input_shape[2] is not None and l + r >= input_shape[2]):
            raise ValueError("Values in `cropping` argument should be smaller than the "
                             "corresponding spatial dimension of the input. Received: "
                             f"input_shape={tuple(input_shape)}, cropping={self.cropping}")
        return (input_shape[0], _resize(input_shape[1], t, b, -1),
                _resize(input_shape[2], l, r, -1), input_shape[3])

    def get_config(self):
        return {**super().get_config(), "cropping": _as_list(self.cropping),
                "data_format": self.data_format}


class Cropping1D(_Shift2D):
    """Removes steps at the start and end of the time axis: ``cropping`` an int or
    ``(start, end)``."""

    _sign = -1

    def __init__(self, cropping=(1, 1), **kwargs):
        super().__init__(**kwargs)
        self.cropping = standardize_tuple(cropping, 2, "cropping", allow_zero=True)
        self._amounts = ((0, 0), self.cropping)
        self.input_spec = InputSpec(ndim=3)

    def _image_shape(self, x_shape):
        return (x_shape[0], 1, x_shape[1], x_shape[2])

    def compute_output_shape(self, input_shape):
        steps = input_shape[1]
        if steps is not None and steps - sum(self.cropping) <= 0:
            raise ValueError("`cropping` parameter of `Cropping1D` layer must be smaller than "
                             f"the input length. Received: input_shape={tuple(input_shape)}, "
                             f"cropping={self.cropping}")
        return (input_shape[0], _resize(steps, *self.cropping, -1), input_shape[2])

    def get_config(self):
        return {**super().get_config(), "cropping": list(self.cropping)}


# ---- permutation and identity ---------------------------------------------------------------

class Permute(Layer):
    """Permutes the non-batch axes: ``Permute((2, 1))`` swaps the two axes of a
    (batch, a, b) input. ``dims`` numbers the axes from 1."""

    def __init__(self, dims, **kwargs):
        super().__init__(**kwargs)
        try:
            dims = tuple(dims)
        except TypeError:
            raise ValueError(f"Invalid permutation argument `dims` for Permute Layer: expected "
                             f"a tuple of integers. Received dims={dims!r}") from None
        if not all(_is_int(d) for d in dims) or \
                sorted(int(d) for d in dims) != list(range(1, len(dims) + 1)):
            raise ValueError("Invalid permutation argument `dims` for Permute Layer. The set "
                             "of indices in `dims` must be consecutive and start from 1. "
                             f"Received dims={dims}")
        if len(dims) + 1 > 8:
            raise ValueError(f"pycnn's Permute handles inputs of rank up to 8. "
                             f"Received dims={dims}")
        self.dims = tuple(int(d) for d in dims)
        self.input_spec = InputSpec(ndim=len(self.dims) + 1)

    def compute_output_shape(self, input_shape):
        return (input_shape[0],) + tuple(input_shape[d] for d in self.dims)

    def forward(self, ctx, x, training=False):
        x = np.ascontiguousarray(x, dtype=np.float32)
        perm = (0,) + self.dims
        y = ctx.buffer("y", tuple(x.shape[a] for a in perm))
        _C.permute(x, y, perm)
        ctx.x_shape = x.shape
        return y

    def backward(self, ctx, dy, need_dx=True):
        if not need_dx:
            return None
        perm = (0,) + self.dims
        inverse = tuple(int(a) for a in np.argsort(perm))
        dx = ctx.buffer("dx", ctx.x_shape)
        _C.permute(_grad(dy), dx, inverse)
        return dx

    def get_config(self):
        return {**super().get_config(), "dims": list(self.dims)}


class Identity(Layer):
    """Returns its input unchanged (a placeholder in a graph)."""

    def forward(self, ctx, x, training=False):
        return x

    def backward(self, ctx, dy, need_dx=True):
        return dy if need_dx else None
