"""Keras' preprocessing and image augmentation layers: Rescaling, Normalization, Resizing,
CenterCrop, RandomCrop, RandomFlip, RandomRotation, RandomTranslation, RandomZoom,
RandomContrast, RandomBrightness.

The random layers change each image of a batch by its own drawn parameters when called with
``training=True`` (during ``fit``, or when called directly on arrays, as Keras does) and are the
identity at inference. The parameters come from a NumPy generator: the layer's own when built
with ``seed=``, else ``pycnn.backend.rng()``. ``transform_images(images, transformation)``
applies given parameters (the dictionary ``get_random_transformation`` draws, with Keras' keys),
which is how the tests compare pixels with Keras'. The geometry follows Keras 3's
``affine_transform`` (``keras/src/ops/image.py``): the C kernel ``_C.affine_warp`` warps the whole
batch, one image per task, bit-identical for any thread count. Every warp is linear in its input,
so these layers also give input gradients (the kernel's adjoint).
"""
from __future__ import annotations

import math
from typing import Any, Optional

import numpy as np

from .. import _C, backend
from .base import InputSpec, Layer

FILL_MODES = ("reflect", "wrap", "constant", "nearest")
INTERPOLATIONS = ("nearest", "bilinear")

_Number = (int, float, np.integer, np.floating)


def _is_number(v: Any) -> bool:
    return isinstance(v, _Number) and not isinstance(v, (bool, np.bool_))


def _check_seed(seed: Any) -> Optional[int]:
    if seed is None:
        return None
    if isinstance(seed, (bool, np.bool_)) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"Invalid value received for argument `seed`: expected None or a "
                         f"non-negative integer. Received: seed={seed!r}")
    return int(seed)


def _check_size(value: Any, arg: str) -> int:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)) \
            or value <= 0:
        raise ValueError(f"`{arg}` must be a positive integer. Received: {arg}={value!r}")
    return int(value)


def _check_fill(fill_mode: Any, interpolation: Any) -> None:
    if fill_mode not in FILL_MODES:
        raise NotImplementedError(f"Unknown `fill_mode` {fill_mode}. Expected of one "
                                  f"{FILL_MODES}.")
    if interpolation not in INTERPOLATIONS:
        raise NotImplementedError(f"Unknown `interpolation` {interpolation}. Expected of one "
                                  f"{INTERPOLATIONS}.")


def _f32(x) -> np.ndarray:
    return np.ascontiguousarray(x, dtype=np.float32)


def warp(x: np.ndarray, transforms: np.ndarray, interpolation: str = "bilinear",
         fill_mode: str = "constant", fill_value: float = 0.0, size=None,
         out: Optional[np.ndarray] = None) -> np.ndarray:
    """Keras' ``affine_transform`` of a batch ``x`` (N, H, W, C) by ``transforms`` (N, 8) or
    (N, 6) = ``[a0, a1, a2, b0, b1, b2(, c0, c1)]``, mapping output pixel (x, y) to input point
    (a0 x + a1 y + a2, b0 x + b1 y + b2); ``c0, c1`` must be 0. ``size=(oh, ow)`` for another
    output size."""
    x = _f32(x)
    t = np.asarray(transforms, dtype=np.float32).reshape(x.shape[0], -1)
    if t.shape[1] == 8:
        if np.any(t[:, 6:]):
            raise ValueError("pycnn's affine warp supports affine transforms only (c0 = c1 = 0)")
        t = t[:, :6]
    t = np.ascontiguousarray(t)
    oh, ow = size if size is not None else x.shape[1:3]
    y = out if out is not None else np.empty((x.shape[0], oh, ow, x.shape[3]), np.float32)
    _C.affine_warp(x, t, y, interpolation=interpolation, fill_mode=fill_mode,
                   fill_value=float(fill_value))
    return y


class _ImageLayer(Layer):
    """Shared parts: NHWC input (a single HWC image also works when called on arrays), and the
    Keras 3 default of ``training=True`` for a direct call on arrays."""

    _random = False

    def __init__(self, data_format=None, **kwargs):
        super().__init__(**kwargs)
        if data_format not in (None, "channels_last"):
            raise ValueError(f"pycnn supports data_format='channels_last' (NHWC) only. "
                             f"Received: data_format={data_format!r}")
        self.data_format = "channels_last"
        self.input_spec = InputSpec(ndim=4)

    def _call_eager(self, inputs, training):
        if training is None:
            training = self._random     # Keras 3: call(data, training=True)
        x = np.asarray(inputs)
        if x.ndim == 3:
            return super()._call_eager(x[None], training)[0]
        return super()._call_eager(inputs, training)

    def get_config(self):
        return {**super().get_config(), "data_format": self.data_format}


class _RandomLayer(_ImageLayer):
    """A layer drawing per-image parameters: ``get_random_transformation(images_shape, rng)``
    draws them, ``_apply(ctx, x, transformation)`` applies them."""

    _random = True

    def __init__(self, seed=None, **kwargs):
        super().__init__(**kwargs)
        self.seed = _check_seed(seed)
        self._rng = np.random.default_rng(self.seed) if self.seed is not None else None

    def _generator(self) -> np.random.Generator:
        return self._rng if self._rng is not None else backend.rng()

    def get_random_transformation(self, images_shape, rng=None) -> dict:
        raise NotImplementedError

    def forward(self, ctx, x, training=False):
        if not training:
            ctx.identity = True
            return x
        ctx.identity = False
        x = _f32(x)
        return self._apply(ctx, x, self.get_random_transformation(x.shape, self._generator()))

    def transform_images(self, images, transformation) -> np.ndarray:
        """``images`` (N, H, W, C) changed by the given parameters (a fresh array)."""
        from ..layers.context import Context
        x = _f32(images)
        single = x.ndim == 3
        if single:
            x = x[None]
        self._maybe_build((None,) + x.shape[1:])
        y = np.array(self._apply(Context(), x, transformation), dtype=np.float32, copy=True)
        return y[0] if single else y

    def backward(self, ctx, dy, need_dx=True):
        if not need_dx:
            return None
        if ctx.identity:
            return dy
        return self._backward(ctx, _f32(dy))

    def _backward(self, ctx, dy):
        raise NotImplementedError(f"{type(self).__name__} has no gradient with respect to its "
                                  "input; place it before trainable layers")

    def get_config(self):
        return {**super().get_config(), "seed": self.seed}


def _factor_pair(factor: Any, bounds=(-1.0, 1.0), arg: str = "factor") -> tuple:
    """Keras' BaseImagePreprocessingLayer._set_factor: a number f gives (max(-f, low), f)."""
    msg = (f"The `{arg}` argument should be a number (or a list of two numbers) in the range "
           f"[{bounds[0]}, {bounds[1]}]. Received: {arg}={factor}")
    if isinstance(factor, (tuple, list)):
        if len(factor) != 2 or not all(_is_number(f) for f in factor):
            raise ValueError(msg)
        if factor[0] > bounds[1] or factor[1] < bounds[0]:
            raise ValueError(msg)
        lower, upper = sorted(float(f) for f in factor)
    elif _is_number(factor):
        if factor < bounds[0] or factor > bounds[1]:
            raise ValueError(msg)
        factor = abs(float(factor))
        lower, upper = max(-factor, bounds[0]), factor
    else:
        raise ValueError(msg)
    return lower, upper


class _WarpLayer(_RandomLayer):
    """A random affine warp (rotation, translation, zoom): ``_matrices(transformation, h, w)``
    gives the (N, 6) float32 transforms the C kernel applies."""

    def __init__(self, fill_mode="reflect", interpolation="bilinear", seed=None,
                 fill_value=0.0, **kwargs):
        super().__init__(seed=seed, **kwargs)
        _check_fill(fill_mode, interpolation)
        if not _is_number(fill_value):
            raise ValueError(f"`fill_value` must be a number. Received: fill_value={fill_value!r}")
        self.fill_mode, self.interpolation = fill_mode, interpolation
        self.fill_value = float(fill_value)

    def _apply(self, ctx, x, transformation):
        n, h, w, c = x.shape
        t = np.ascontiguousarray(self._matrices(transformation, n, h, w), dtype=np.float32)
        y = ctx.buffer("y", x.shape)
        _C.affine_warp(x, t, y, interpolation=self.interpolation, fill_mode=self.fill_mode,
                       fill_value=self.fill_value)
        ctx.transforms, ctx.x_shape = t, x.shape
        return y

    def _backward(self, ctx, dy):
        dx = ctx.buffer("dx", ctx.x_shape)
        _C.affine_warp_backward(dy, ctx.transforms, dx, interpolation=self.interpolation,
                                fill_mode=self.fill_mode)
        return dx

    def get_config(self):
        return {**super().get_config(), "fill_mode": self.fill_mode,
                "fill_value": self.fill_value, "interpolation": self.interpolation}


def affine_matrix(angle, translate_x, translate_y, scale, shear_x, shear_y, height, width,
                  center_x=0.5, center_y=0.5) -> np.ndarray:
    """Keras 3's ``_compute_affine_matrix`` in float32 (angles and shears in degrees): rows of
    ``[a0, a1, a2, b0, b1, b2]``."""
    f = np.float32
    angle = np.asarray(angle, f) * f(math.pi / 180.0)
    shear_x = np.tan(np.asarray(shear_x, f) * f(math.pi / 180.0))
    shear_y = np.tan(np.asarray(shear_y, f) * f(math.pi / 180.0))
    scale = np.asarray(scale, f)
    cx, cy = f(center_x) * (f(width) - f(1)), f(center_y) * (f(height) - f(1))
    cos, sin = np.cos(angle), np.sin(angle)
    a0 = scale * (cos + shear_x * sin)
    a1 = scale * (-sin + shear_x * cos)
    a2 = np.asarray(translate_x, f) + cx - cx * a0 - cy * a1
    b0 = scale * (shear_y * cos + sin)
    b1 = scale * (shear_y * -sin + cos)
    b2 = np.asarray(translate_y, f) + cy - cx * b0 - cy * b1
    return np.stack([a0, a1, a2, b0, b1, b2], axis=-1).astype(f)


def _rotation_matrices(angle: np.ndarray, h: int, w: int) -> np.ndarray:
    """``affine_matrix(angle, 0, 0, 1, 0, 0, h, w)`` for finite angles, bit for bit, in fewer
    NumPy calls: with the shears' tangents exactly 0 and the scale 1, ``cos + 0 * sin`` is
    ``cos`` (a float32 cosine is never 0), ``-sin + 0 * cos`` is ``-sin + 0`` (which turns a
    -0 into +0, as the sum does), ``0 * cos + sin`` is ``sin + 0`` and ``0 * -sin + cos`` is
    ``cos``; the translation 0 added to the centre is the centre."""
    f = np.float32
    rad = angle * f(math.pi / 180.0)
    cx, cy = f(0.5) * (f(w) - f(1)), f(0.5) * (f(h) - f(1))
    t = np.empty((angle.shape[0], 6), f)
    a0, a1, a2, b0, b1, b2 = (t[:, k] for k in range(6))
    np.cos(rad, out=a0)
    np.sin(rad, out=b0)
    np.negative(b0, out=a1)
    a1 += f(0)
    b0 += f(0)
    b1[...] = a0
    np.subtract(cx, cx * a0, out=a2)
    a2 -= cy * a1
    np.subtract(cy, cx * b0, out=b2)
    b2 -= cy * b1
    return t


class RandomRotation(_WarpLayer):
    """Rotates each image by a random angle, ``factor`` a fraction of a full turn (``0.1``:
    within +-36 degrees; positive is counter-clockwise), about the image centre."""

    def __init__(self, factor, fill_mode="reflect", interpolation="bilinear", seed=None,
                 fill_value=0.0, data_format=None, **kwargs):
        super().__init__(fill_mode=fill_mode, interpolation=interpolation, seed=seed,
                         fill_value=fill_value, data_format=data_format, **kwargs)
        self.factor = _factor_pair(factor)

    def get_random_transformation(self, images_shape, rng=None):
        rng = rng or self._generator()
        n = images_shape[0]
        angle = rng.uniform(self.factor[0] * 360.0, self.factor[1] * 360.0, n)
        return {"angle": angle.astype(np.float32)}

    def _matrices(self, transformation, n, h, w):
        angle = np.asarray(transformation["angle"], np.float32).reshape(n)
        if not np.isfinite(angle).all():
            z, o = np.zeros(n, np.float32), np.ones(n, np.float32)
            return affine_matrix(angle, z, z, o, z, z, h, w)
        return _rotation_matrices(angle, h, w)

    def get_config(self):
        return {**super().get_config(), "factor": list(self.factor)}


def _check_range(value: float, error: str, low_open: bool = False) -> None:
    if value > 1.0 or (value <= -1.0 if low_open else value < -1.0):
        raise ValueError(error + f"Received: input_number={value}")


def _factor_range(factor: Any, arg: str, error: str, low_open: bool = False) -> tuple:
    """RandomTranslation's and RandomZoom's _set_factor."""
    if isinstance(factor, (tuple, list)):
        if len(factor) != 2 or not all(_is_number(f) for f in factor):
            raise ValueError(error + f"Received: {arg}={factor}")
        for f in factor:
            _check_range(float(f), error, low_open)
        lower, upper = sorted(float(f) for f in factor)
    elif _is_number(factor):
        _check_range(float(factor), error, low_open)
        lower, upper = -abs(float(factor)), abs(float(factor))
    else:
        raise ValueError(error + f"Received: {arg}={factor}")
    return lower, upper


def _config_factor(factor):
    return list(factor) if isinstance(factor, (tuple, list)) else factor


class RandomTranslation(_WarpLayer):
    """Shifts each image by a random fraction of its height and width (``height_factor=0.1``:
    up to 10 % up or down)."""

    _ERROR = ("The `factor` argument should be a number (or a list of two numbers) in the "
              "range [-1.0, 1.0]. ")

    def __init__(self, height_factor, width_factor, fill_mode="reflect",
                 interpolation="bilinear", seed=None, fill_value=0.0, data_format=None,
                 **kwargs):
        super().__init__(fill_mode=fill_mode, interpolation=interpolation, seed=seed,
                         fill_value=fill_value, data_format=data_format, **kwargs)
        self.height_lower, self.height_upper = _factor_range(height_factor, "height_factor",
                                                             self._ERROR)
        self.width_lower, self.width_upper = _factor_range(width_factor, "width_factor",
                                                           self._ERROR)
        self.height_factor = _config_factor(height_factor)
        self.width_factor = _config_factor(width_factor)

    def get_random_transformation(self, images_shape, rng=None):
        rng = rng or self._generator()
        n, h, w = images_shape[0], images_shape[1], images_shape[2]
        dy = rng.uniform(self.height_lower, self.height_upper, n) * h
        dx = rng.uniform(self.width_lower, self.width_upper, n) * w
        return {"translations": np.stack([dx, dy], axis=1).astype(np.float32)}

    def _matrices(self, transformation, n, h, w):
        tr = np.asarray(transformation["translations"], np.float32).reshape(n, 2)
        t = np.zeros((n, 6), np.float32)
        t[:, 0] = t[:, 4] = 1.0
        t[:, 2], t[:, 5] = -tr[:, 0], -tr[:, 1]
        return t

    def get_config(self):
        return {**super().get_config(), "height_factor": self.height_factor,
                "width_factor": self.width_factor}


class RandomZoom(_WarpLayer):
    """Zooms each image by a random factor about its centre: ``height_factor=0.2`` shows the
    image from 80 % (zoomed in) to 120 % (zoomed out) of its size; ``width_factor=None`` keeps
    the aspect ratio."""

    _ERROR = ("The `height_factor` and `width_factor` arguments should be a number (or a list "
              "of two numbers) in the range (-1.0, 1.0]. ")

    def __init__(self, height_factor, width_factor=None, fill_mode="reflect",
                 interpolation="bilinear", seed=None, fill_value=0.0, data_format=None,
                 **kwargs):
        super().__init__(fill_mode=fill_mode, interpolation=interpolation, seed=seed,
                         fill_value=fill_value, data_format=data_format, **kwargs)
        self.height_lower, self.height_upper = _factor_range(height_factor, "height_factor",
                                                             self._ERROR, low_open=True)
        if width_factor is not None:
            self.width_lower, self.width_upper = _factor_range(width_factor, "width_factor",
                                                               self._ERROR, low_open=True)
        self.height_factor = _config_factor(height_factor)
        self.width_factor = _config_factor(width_factor)

    def get_random_transformation(self, images_shape, rng=None):
        rng = rng or self._generator()
        n = images_shape[0]
        hz = rng.uniform(1.0 + self.height_lower, 1.0 + self.height_upper, n)
        wz = rng.uniform(1.0 + self.width_lower, 1.0 + self.width_upper, n) \
            if self.width_factor is not None else hz
        return {"height_zoom": hz.astype(np.float32), "width_zoom": wz.astype(np.float32)}

    def _matrices(self, transformation, n, h, w):
        f = np.float32
        zx = np.asarray(transformation["width_zoom"], f).reshape(n)
        zy = np.asarray(transformation["height_zoom"], f).reshape(n)
        t = np.zeros((n, 6), f)
        t[:, 0], t[:, 4] = zx, zy
        t[:, 2] = ((f(w) - f(1)) / f(2)) * (f(1) - zx)
        t[:, 5] = ((f(h) - f(1)) / f(2)) * (f(1) - zy)
        return t

    def get_config(self):
        return {**super().get_config(), "height_factor": self.height_factor,
                "width_factor": self.width_factor}


class RandomFlip(_RandomLayer):
    """Flips each image with probability 1/2: ``mode="horizontal"`` left-right,
    ``"vertical"`` upside down, ``"horizontal_and_vertical"`` both at once (one draw per image,
    as Keras 3)."""

    _MODES = ("horizontal", "vertical", "horizontal_and_vertical")

    def __init__(self, mode="horizontal_and_vertical", seed=None, data_format=None, **kwargs):
        super().__init__(seed=seed, data_format=data_format, **kwargs)
        if mode not in self._MODES:
            raise ValueError(f"RandomFlip layer {self.name} received an unknown mode argument "
                             f"{mode}")
        self.mode = mode

    def get_random_transformation(self, images_shape, rng=None):
        rng = rng or self._generator()
        return {"flips": rng.uniform(size=images_shape[0]) <= 0.5}

    def _apply(self, ctx, x, transformation):
        flips = np.asarray(transformation["flips"]).reshape(x.shape[0]).astype(bool)
        bits = {"horizontal": 1, "vertical": 2, "horizontal_and_vertical": 3}[self.mode]
        ctx.flags = np.where(flips, bits, 0).astype(np.uint8)
        y = ctx.buffer("y", x.shape)
        _C.flip(x, ctx.flags, y)
        return y

    def _backward(self, ctx, dy):
        dx = ctx.buffer("dx", dy.shape)
        _C.flip(dy, ctx.flags, dx)
        return dx

    def get_config(self):
        return {**super().get_config(), "mode": self.mode}


def _aspect_crop(h: int, w: int, th: int, tw: int) -> tuple:
    """Keras' crop to the target aspect ratio: (top, left, crop_height, crop_width)."""
    ch = max(min(h, int(float(w * th) / tw)), 1)
    cw = max(min(w, int(float(h * tw) / th)), 1)
    return int(float(h - ch) / 2), int(float(w - cw) / 2), ch, cw


def _resize(ctx, x, height, width, interpolation, key="y"):
    """Resize as Keras (half-pixel centres, edges clamped; no antialiasing): an affine warp."""
    n, h, w, c = x.shape
    sx, sy = np.float32(w / width), np.float32(h / height)
    t = np.zeros((n, 6), np.float32)
    t[:, 0], t[:, 4] = sx, sy
    t[:, 2], t[:, 5] = np.float32(0.5) * sx - np.float32(0.5), np.float32(0.5) * sy - np.float32(0.5)
    y = ctx.buffer(key, (n, height, width, c))
    _C.affine_warp(x, t, y, interpolation=interpolation, fill_mode="nearest")
    return y, t


def _crop(ctx, x, top, left, height, width, key="crop"):
    n = x.shape[0]
    off = np.empty((n, 2), np.int32)
    off[:, 0], off[:, 1] = top, left
    y = ctx.buffer(key, (n, height, width, x.shape[3]))
    _C.crop(x, off, y)
    return y, off


class RandomCrop(_RandomLayer):
    """Crops a random ``height`` x ``width`` window (the same for the whole batch, as Keras) in
    training; at inference the image is cropped to the target aspect ratio about its centre and
    resized (Keras' documented behaviour)."""

    def __init__(self, height, width, seed=None, data_format=None, name=None, **kwargs):
        super().__init__(seed=seed, data_format=data_format, name=name, **kwargs)
        self.height = _check_size(height, "height")
        self.width = _check_size(width, "width")

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.height, self.width, input_shape[3])

    def get_random_transformation(self, images_shape, rng=None):
        rng = rng or self._generator()
        h, w = images_shape[1], images_shape[2]
        if h > self.height and w > self.width:
            top = int(rng.uniform(0, float(h - self.height + 1)))
            left = int(rng.uniform(0, float(w - self.width + 1)))
            return {"h_start": top, "w_start": left}
        top, left, _, _ = _aspect_crop(h, w, self.height, self.width)
        return {"h_start": top, "w_start": left}

    def forward(self, ctx, x, training=False):
        x = _f32(x)
        if training:
            return self._apply(ctx, x, self.get_random_transformation(x.shape,
                                                                      self._generator()))
        return self._center(ctx, x)

    def _center(self, ctx, x):
        n, h, w, c = x.shape
        top, left, ch, cw = _aspect_crop(h, w, self.height, self.width)
        ctx.mode, ctx.x_shape = "center", x.shape
        cropped, ctx.off = _crop(ctx, x, top, left, ch, cw)
        if (ch, cw) == (self.height, self.width):
            ctx.t = None
            return cropped
        y, ctx.t = _resize(ctx, cropped, self.height, self.width, "bilinear")
        return y

    def _apply(self, ctx, x, transformation):
        n, h, w, c = x.shape
        top, left = int(transformation["h_start"]), int(transformation["w_start"])
        ch, cw = min(self.height, h - top), min(self.width, w - left)
        ctx.mode, ctx.x_shape = "crop", x.shape
        cropped, ctx.off = _crop(ctx, x, top, left, ch, cw)
        if (ch, cw) == (self.height, self.width):
            ctx.t = None
            return cropped
        y, ctx.t = _resize(ctx, cropped, self.height, self.width, "bilinear")
        return y

    def backward(self, ctx, dy, need_dx=True):
        if not need_dx:
            return None
        dy = _f32(dy)
        if ctx.t is not None:
            n, _, _, c = ctx.x_shape
            small = ctx.buffer("dcrop", (n, *ctx.buffers()["crop"].shape[1:3], c))
            _C.affine_warp_backward(dy, ctx.t, small, interpolation="bilinear",
                                    fill_mode="nearest")
            dy = small
        dx = ctx.buffer("dx", ctx.x_shape)
        _C.crop_backward(dy, ctx.off, dx)
        return dx

    def get_config(self):
        return {**super().get_config(), "height": self.height, "width": self.width}


class CenterCrop(_ImageLayer):
    """Crops the central ``height`` x ``width`` window (smaller images are cropped to the target
    aspect ratio and resized, as Keras' smart_resize)."""

    def __init__(self, height, width, data_format=None, **kwargs):
        super().__init__(data_format=data_format, **kwargs)
        self.height = _check_size(height, "height")
        self.width = _check_size(width, "width")

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.height, self.width, input_shape[3])

    def forward(self, ctx, x, training=False):
        x = _f32(x)
        n, h, w, c = x.shape
        ctx.x_shape = x.shape
        if h >= self.height and w >= self.width:
            ctx.t = None
            y, ctx.off = _crop(ctx, x, (h - self.height) // 2, (w - self.width) // 2,
                               self.height, self.width)
            return y
        top, left, ch, cw = _aspect_crop(h, w, self.height, self.width)
        cropped, ctx.off = _crop(ctx, x, top, left, ch, cw)
        y, ctx.t = _resize(ctx, cropped, self.height, self.width, "bilinear")
        return y

    backward = RandomCrop.backward

    def get_config(self):
        return {**super().get_config(), "height": self.height, "width": self.width}


class Resizing(_ImageLayer):
    """Resizes images to ``height`` x ``width`` (bilinear or nearest, half-pixel centres, no
    antialiasing); ``crop_to_aspect_ratio=True`` first crops the largest centred window of the
    target aspect ratio."""

    def __init__(self, height, width, interpolation="bilinear", crop_to_aspect_ratio=False,
                 pad_to_aspect_ratio=False, fill_mode="constant", fill_value=0.0,
                 antialias=False, data_format=None, **kwargs):
        super().__init__(data_format=data_format, **kwargs)
        self.height = _check_size(height, "height")
        self.width = _check_size(width, "width")
        if interpolation not in INTERPOLATIONS:
            raise ValueError(f"pycnn's Resizing supports interpolation 'bilinear' and "
                             f"'nearest'. Received: interpolation={interpolation!r}")
        if pad_to_aspect_ratio:
            raise ValueError("pycnn's Resizing does not support `pad_to_aspect_ratio` yet")
        if antialias:
            raise ValueError("pycnn's Resizing does not support `antialias=True` yet")
        self.interpolation = interpolation
        self.crop_to_aspect_ratio = bool(crop_to_aspect_ratio)
        self.fill_mode, self.fill_value = fill_mode, fill_value

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.height, self.width, input_shape[3])

    def forward(self, ctx, x, training=False):
        x = _f32(x)
        n, h, w, c = x.shape
        ctx.x_shape, ctx.off = x.shape, None
        if self.crop_to_aspect_ratio:
            top, left, ch, cw = _aspect_crop(h, w, self.height, self.width)
            if (ch, cw) != (h, w):
                x, ctx.off = _crop(ctx, x, top, left, ch, cw)
        ctx.in_shape = x.shape
        y, ctx.t = _resize(ctx, x, self.height, self.width, self.interpolation)
        return y

    def backward(self, ctx, dy, need_dx=True):
        if not need_dx:
            return None
        dsmall = ctx.buffer("dsmall", ctx.in_shape)
        _C.affine_warp_backward(_f32(dy), ctx.t, dsmall, interpolation=self.interpolation,
                                fill_mode="nearest")
        if ctx.off is None:
            return dsmall
        dx = ctx.buffer("dx", ctx.x_shape)
        _C.crop_backward(dsmall, ctx.off, dx)
        return dx

    def get_config(self):
        return {**super().get_config(), "height": self.height, "width": self.width,
                "interpolation": self.interpolation,
                "crop_to_aspect_ratio": self.crop_to_aspect_ratio,
                "pad_to_aspect_ratio": False, "fill_mode": self.fill_mode,
                "fill_value": self.fill_value, "antialias": False}


def _value_range(value_range: Any) -> list:
    if not isinstance(value_range, (tuple, list)) or len(value_range) != 2 \
            or not all(_is_number(v) for v in value_range):
        raise ValueError("The `value_range` argument should be a list of two numbers. "
                         f"Received: value_range={value_range}")
    return sorted(float(v) for v in value_range)


class RandomContrast(_RandomLayer):
    """Scales each image's deviation from its per-channel mean by a random factor in
    ``[1 - lower, 1 + upper]`` (Keras 3: ``factor=0.2`` gives ``[1, 1.2]``), then clips to
    ``value_range``."""

    def __init__(self, factor, value_range=(0, 255), seed=None, **kwargs):
        super().__init__(seed=seed, **kwargs)
        self.factor = _factor_pair(factor, bounds=(0, 1))
        self.value_range = _value_range(value_range)

    def get_random_transformation(self, images_shape, rng=None):
        rng = rng or self._generator()
        f = rng.uniform(1.0 - self.factor[0], 1.0 + self.factor[1], images_shape[0])
        return {"contrast_factor": f.astype(np.float32)}

    def _apply(self, ctx, x, transformation):
        f = _f32(np.asarray(transformation["contrast_factor"]).reshape(x.shape[0]))
        y = ctx.buffer("y", x.shape)
        lo, hi = self.value_range
        _C.adjust_contrast(x, f, y, lo, hi)
        ctx.factor, ctx.y = f, y
        return y

    def _backward(self, ctx, dy):
        # y = clip(f (x - m) + m): inside the range dy/dx = f, plus (1 - f)/HW through the mean
        lo, hi = self.value_range
        y, f = ctx.y, ctx.factor[:, None, None, None]
        g = np.where((y > lo) & (y < hi), dy, np.float32(0))
        return (f * g + (1 - f) * g.mean(axis=(1, 2), keepdims=True)).astype(np.float32)

    def get_config(self):
        return {**super().get_config(), "factor": list(self.factor),
                "value_range": list(self.value_range)}


class RandomBrightness(_RandomLayer):
    """Adds to each image a random delta of ``factor`` times the width of ``value_range``, then
    clips to ``value_range``."""

    def __init__(self, factor, value_range=(0, 255), seed=None, **kwargs):
        super().__init__(seed=seed, **kwargs)
        self.factor = _factor_pair(factor)
        self.value_range = _value_range(value_range)

    def get_random_transformation(self, images_shape, rng=None):
        rng = rng or self._generator()
        d = rng.uniform(self.factor[0], self.factor[1], images_shape[0])
        d = d * (self.value_range[1] - self.value_range[0])
        return {"rgb_delta": d.astype(np.float32)}

    def _apply(self, ctx, x, transformation):
        d = _f32(np.asarray(transformation["rgb_delta"]).reshape(x.shape[0]))
        y = ctx.buffer("y", x.shape)
        _C.adjust_brightness(x, d, y, *self.value_range)
        ctx.y = y
        return y

    def _backward(self, ctx, dy):
        lo, hi = self.value_range
        return np.where((ctx.y > lo) & (ctx.y < hi), dy, np.float32(0)).astype(np.float32)

    def get_config(self):
        return {**super().get_config(), "factor": list(self.factor),
                "value_range": list(self.value_range)}


class Rescaling(Layer):
    """``inputs * scale + offset`` (``Rescaling(1/255)`` maps bytes to [0, 1]); ``scale`` and
    ``offset`` may be per-channel arrays."""

    def __init__(self, scale, offset=0.0, **kwargs):
        super().__init__(**kwargs)
        for arg, v in (("scale", scale), ("offset", offset)):
            a = np.asarray(v)
            if a.dtype.kind not in "biuf" or a.dtype == bool or not np.all(np.isfinite(a)):
                raise ValueError(f"`{arg}` must be a finite number or array of numbers. "
                                 f"Received: {arg}={v!r}")
        self.scale, self.offset = scale, offset
        self._scale = np.asarray(scale, np.float32)
        self._offset = np.asarray(offset, np.float32)

    def forward(self, ctx, x, training=False):
        return (np.asarray(x, np.float32) * self._scale + self._offset).astype(np.float32,
                                                                              copy=False)

    def backward(self, ctx, dy, need_dx=True):
        if not need_dx:
            return None
        return (np.asarray(dy, np.float32) * self._scale).astype(np.float32, copy=False)

    def get_config(self):
        def plain(v):
            return np.asarray(v).tolist() if isinstance(v, np.ndarray) else (
                float(v) if _is_number(v) else v)
        return {**super().get_config(), "scale": plain(self.scale), "offset": plain(self.offset)}


class Normalization(Layer):
    """``(inputs - mean) / sqrt(variance)`` per feature of ``axis`` (``invert=True``: the
    inverse), with the statistics given or learnt by ``adapt(data)``. The divisor is at least
    1e-7 (Keras' epsilon)."""

    def __init__(self, axis=-1, mean=None, variance=None, invert=False, **kwargs):
        super().__init__(**kwargs)
        if axis is None:
            axis = ()
        elif isinstance(axis, (int, np.integer)):
            axis = (int(axis),)
        else:
            axis = tuple(int(a) for a in axis)
        self.axis = axis
        self.input_mean, self.input_variance = mean, variance
        self.invert = bool(invert)
        self.mean = self.variance = None
        if (mean is not None) != (variance is not None):
            raise ValueError("When setting values directly, both `mean` and `variance` must be "
                             f"set. Received: mean={mean} and variance={variance}")
        if mean is not None:
            if np.shape(mean) != np.shape(variance):
                raise ValueError("When setting values directly, `mean` and `variance` must have "
                                 f"the same shape. Received: mean shape {np.shape(mean)} and "
                                 f"variance shape {np.shape(variance)}")
            if len(np.shape(mean)) > len(self.axis):
                raise ValueError("The rank of `mean` must be less than or equal to the number "
                                 f"of axes ({len(self.axis)}). Received: mean shape "
                                 f"{np.shape(mean)} for axis {self.axis}")

    def build(self, input_shape):
        ndim = len(input_shape)
        self._build_input_shape = tuple(input_shape)
        if any(a < -ndim or a >= ndim for a in self.axis):
            raise ValueError("All `axis` values must be in the range [-ndim, ndim). Received "
                             f"inputs with ndim={ndim}, while axis={self.axis}")
        self._keep_axis = tuple(sorted(d % ndim for d in self.axis))
        for d in self._keep_axis:
            if input_shape[d] is None:
                raise ValueError("All `axis` values to be kept must have a known shape. "
                                 f"Received axis={self.axis}, inputs.shape={input_shape}, "
                                 f"with unknown axis at index {d}")
        self._reduce_axis = tuple(d for d in range(ndim) if d not in self._keep_axis)
        self._broadcast_shape = [input_shape[d] if d in self._keep_axis else 1
                                 for d in range(ndim)]
        self._mean_and_var_shape = tuple(input_shape[d] for d in self._keep_axis)
        if self.input_mean is None:
            self.adapt_mean = self.add_weight(name="mean", shape=self._mean_and_var_shape,
                                              initializer="zeros", trainable=False)
            self.adapt_variance = self.add_weight(name="variance",
                                                  shape=self._mean_and_var_shape,
                                                  initializer="ones", trainable=False)
            self.count = self.add_weight(name="count", shape=(), initializer="zeros",
                                         trainable=False)
        else:
            mean = np.asarray(self.input_mean, np.float32)
            var = np.asarray(self.input_variance, np.float32)
            expanded = [1] * ndim
            for i in range(1, mean.ndim + 1):
                expanded[self._keep_axis[-i]] = mean.shape[-i]
            self._fixed = (np.broadcast_to(mean.reshape(expanded), self._broadcast_shape),
                           np.broadcast_to(var.reshape(expanded), self._broadcast_shape))
        self.built = True

    def _stats(self):
        if self.input_mean is not None:
            mean, var = self._fixed
        else:
            mean = self.adapt_mean.value.reshape(self._broadcast_shape)
            var = self.adapt_variance.value.reshape(self._broadcast_shape)
        return mean, np.maximum(np.sqrt(var), np.float32(1e-7)).astype(np.float32)

    def adapt(self, data) -> None:
        """Learn the mean and variance of ``data``: an array, or an iterable of batches (or of
        ``(x, y)`` tuples), combined as Keras does."""
        if self.input_mean is not None:
            raise ValueError("Normalization was given `mean` and `variance`; adapt() would "
                             "overwrite them")
        if isinstance(data, np.ndarray) or hasattr(data, "__array__") and not hasattr(
                data, "__iter__"):
            batches, first = None, np.asarray(data)
        else:
            if not hasattr(data, "__iter__"):
                raise TypeError(f"Unsupported data type: {type(data)}. `adapt` supports "
                                "`np.ndarray` and iterables of batches (e.g. list, generator).")
            it = iter(data)
            first = next(it, None)
            if first is None:
                raise ValueError("adapt() received an empty iterable (no batches). Expected "
                                 "at least one batch.")
            first = np.asarray(first[0] if isinstance(first, tuple) else first)
            batches = it
        if not self.built:
            self.build(first.shape)
        else:
            for d in self._keep_axis:
                if first.shape[d] != self._build_input_shape[d]:
                    raise ValueError(f"The layer was built with input_shape="
                                     f"{self._build_input_shape}, but adapt() is being called "
                                     f"with data with an incompatible shape, "
                                     f"data.shape={first.shape}")
        if batches is None:
            x = first.astype(np.float64)
            mean, var = x.mean(axis=self._reduce_axis), x.var(axis=self._reduce_axis)
        else:
            mean = np.zeros(self._mean_and_var_shape)
            var = np.zeros(self._mean_and_var_shape)
            count = 0

            def all_batches():
                yield first
                for b in batches:
                    yield np.asarray(b[0] if isinstance(b, tuple) else b)
            for b in all_batches():
                b = b.astype(np.float64)
                for d in self._keep_axis:
                    if b.shape[d] != self._build_input_shape[d]:
                        raise ValueError("adapt() yielded a batch with incompatible shape. "
                                         f"Expected {self._build_input_shape}, got {b.shape}.")
                bm, bv = b.mean(axis=self._reduce_axis), b.var(axis=self._reduce_axis)
                bc = math.prod(b.shape[d] for d in self._reduce_axis) if self._reduce_axis else 1
                count += bc
                bw = bc / count
                ew = 1.0 - bw
                new_mean = mean * ew + bm * bw
                var = (var + (mean - new_mean) ** 2) * ew + (bv + (bm - new_mean) ** 2) * bw
                mean = new_mean
        self.adapt_mean.assign(np.asarray(mean).reshape(self._mean_and_var_shape))
        self.adapt_variance.assign(np.asarray(var).reshape(self._mean_and_var_shape))

    def forward(self, ctx, x, training=False):
        mean, std = self._stats()
        x = np.asarray(x, np.float32)
        ctx.std = std
        if self.invert:
            return (mean + x * std).astype(np.float32, copy=False)
        return ((x - mean) / std).astype(np.float32, copy=False)

    def backward(self, ctx, dy, need_dx=True):
        if not need_dx:
            return None
        dy = np.asarray(dy, np.float32)
        return (dy * ctx.std if self.invert else dy / ctx.std).astype(np.float32, copy=False)

    def get_config(self):
        def plain(v):
            return None if v is None else np.asarray(v).tolist()
        return {**super().get_config(), "axis": list(self.axis), "invert": self.invert,
                "mean": plain(self.input_mean), "variance": plain(self.input_variance)}
