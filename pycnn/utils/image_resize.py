"""Image resizing with the arithmetic of `tf.image.resize` (TensorFlow 2, no antialiasing).

`image_dataset_from_directory` resizes with `tf.image.resize(img, size,
method=interpolation)` in Keras; `resize` here reproduces those numbers in
NumPy (float32, half-pixel centres):

* `"nearest"`: source pixel `min(floor((i + 0.5) * in / out), in - 1)`.
* `"bilinear"`: linear interpolation between the two source pixels around
  `(i + 0.5) * in / out - 0.5`, clamped at the borders; first along the
  width, then along the height, as TensorFlow's kernel.
* `"bicubic"`: Keys' cubic convolution (a = -0.5) over four source pixels,
  the fractional offset rounded to 1/1024 (TensorFlow's weight table),
  with the weights of pixels outside the image set to zero and the rest
  renormalised.
* `"area"`: the average of the source area each output pixel covers
  (fractional overlaps at the edges).
* `"lanczos3"`, `"lanczos5"`, `"gaussian"`, `"mitchellcubic"`: TensorFlow's
  `scale_and_translate` with those kernels, unscaled (no antialiasing).

Results are float32 and not clipped (bicubic and Lanczos can overshoot
0..255, as in TensorFlow). Agreement with TensorFlow is to float32
rounding (about 1e-4 on a 0..255 scale), not bit for bit.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

INTERPOLATIONS = (
    "bilinear",
    "nearest",
    "bicubic",
    "area",
    "lanczos3",
    "lanczos5",
    "gaussian",
    "mitchellcubic",
)

_F = np.float32


def _scale(in_size: int, out_size: int) -> np.float32:
    return _F(in_size) / _F(out_size)


def _nearest(in_size: int, out_size: int) -> tuple[np.ndarray, np.ndarray]:
    scale = _scale(in_size, out_size)
    pos = (np.arange(out_size, dtype=_F) + _F(0.5)) * scale
    idx = np.minimum(np.floor(pos).astype(np.int64), in_size - 1)
    idx = np.maximum(idx, 0)
    return idx[:, None], np.ones((out_size, 1), _F)


def _bilinear(in_size: int, out_size: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    scale = _scale(in_size, out_size)
    pos = (np.arange(out_size, dtype=_F) + _F(0.5)) * scale - _F(0.5)
    low_f = np.floor(pos)
    lower = np.maximum(low_f, 0).astype(np.int64)
    upper = np.minimum(np.ceil(pos), in_size - 1).astype(np.int64)
    lerp = (pos - low_f).astype(_F)
    return lower, upper, lerp


def _keys(x: np.ndarray, a: float = -0.5) -> np.ndarray:
    x = np.abs(x)
    near = ((a + 2) * x - (a + 3)) * x * x + 1
    far = ((a * x - 5 * a) * x + 8 * a) * x - 4 * a
    return np.where(x <= 1, near, np.where(x < 2, far, 0.0))


def _bicubic(in_size: int, out_size: int) -> tuple[np.ndarray, np.ndarray]:
    scale = _scale(in_size, out_size)
    pos = (np.arange(out_size, dtype=_F) + _F(0.5)) * scale - _F(0.5)
    loc = np.floor(pos)
    # TensorFlow reads the weights from a table over 1024 steps of the offset.
    delta = np.rint((pos - loc).astype(np.float64) * 1024.0) / 1024.0
    loc = loc.astype(np.int64)
    offsets = np.arange(-1, 3)
    raw = loc[:, None] + offsets[None, :]
    weights = _keys(delta[:, None] - offsets[None, :])
    inside = (raw >= 0) & (raw < in_size)
    weights = np.where(inside, weights, 0.0)
    total = weights.sum(axis=1, keepdims=True)
    weights = np.where(np.abs(total) > 0, weights / np.where(total == 0, 1, total), 0.0)
    return np.clip(raw, 0, in_size - 1), weights.astype(_F)


def _area(in_size: int, out_size: int) -> tuple[np.ndarray, np.ndarray]:
    scale = float(_scale(in_size, out_size))
    starts = [math.floor(i * scale) for i in range(out_size)]
    ends = [math.ceil((i + 1) * scale) for i in range(out_size)]
    taps = max(e - s for s, e in zip(starts, ends))
    idx = np.zeros((out_size, taps), np.int64)
    w = np.zeros((out_size, taps), np.float64)
    for i, (s, e) in enumerate(zip(starts, ends)):
        lo, hi = i * scale, (i + 1) * scale
        for k, j in enumerate(range(s, e)):
            idx[i, k] = min(j, in_size - 1)
            w[i, k] = (min(j + 1, hi) - max(j, lo)) / scale
    return idx, w.astype(_F)


def _lanczos(radius: float) -> Callable[[np.ndarray], np.ndarray]:
    def kernel(x: np.ndarray) -> np.ndarray:
        x = np.abs(x)
        safe = np.where(x <= 1e-3, 1.0, x)
        val = radius * np.sin(np.pi * safe) * np.sin(np.pi * safe / radius) / (
            np.pi**2 * safe * safe)
        return np.where(x > radius, 0.0, np.where(x <= 1e-3, 1.0, val))

    return kernel


def _gaussian(x: np.ndarray) -> np.ndarray:
    radius, sigma = 1.5, 1.5 / 3.0
    x = np.abs(x)
    return np.where(x >= radius, 0.0, np.exp(-x * x / (2.0 * sigma * sigma)))


def _mitchell(x: np.ndarray) -> np.ndarray:
    x = np.abs(x)
    far = (((-7.0 / 18.0) * x + 2.0) * x - 10.0 / 3.0) * x + 16.0 / 9.0
    near = ((7.0 / 6.0) * x - 2.0) * x * x + 8.0 / 9.0
    return np.where(x >= 2.0, 0.0, np.where(x >= 1.0, far, near))


_KERNELS: dict[str, tuple[Callable[[np.ndarray], np.ndarray], float]] = {
    "lanczos3": (_lanczos(3.0), 3.0),
    "lanczos5": (_lanczos(5.0), 5.0),
    "gaussian": (_gaussian, 1.5),
    "mitchellcubic": (_mitchell, 2.0),
}


def _scale_and_translate(
    in_size: int, out_size: int, kernel: Callable[[np.ndarray], np.ndarray], radius: float
) -> tuple[np.ndarray, np.ndarray]:
    inv_scale = _F(1.0) / (_F(out_size) / _F(in_size))
    sample = (np.arange(out_size, dtype=_F) + _F(0.5)) * inv_scale
    taps = min(2 * math.ceil(radius) + 1, in_size)
    idx = np.zeros((out_size, taps), np.int64)
    w = np.zeros((out_size, taps), np.float64)
    for i, s in enumerate(sample.astype(np.float64)):
        if s < 0 or s > in_size:
            continue
        start = min(max(math.ceil(s - radius - 0.5), 0), in_size - 1)
        end = min(max(math.floor(s + radius - 0.5), 0), in_size - 1) + 1
        src = np.arange(start, end)
        weights = kernel(src + 0.5 - s)
        total = weights.sum()
        if abs(total) >= 1000 * np.finfo(np.float32).tiny:
            weights = weights / total
        else:
            weights = np.zeros_like(weights)
        idx[i, : end - start] = src
        w[i, : end - start] = weights
    return idx, w.astype(_F)


def _taps(method: str, in_size: int, out_size: int) -> tuple[np.ndarray, np.ndarray]:
    if method == "nearest":
        return _nearest(in_size, out_size)
    if method == "bicubic":
        return _bicubic(in_size, out_size)
    if method == "area":
        return _area(in_size, out_size)
    kernel, radius = _KERNELS[method]
    return _scale_and_translate(in_size, out_size, kernel, radius)


def _apply(img: np.ndarray, idx: np.ndarray, w: np.ndarray, axis: int) -> np.ndarray:
    out = None
    for k in range(idx.shape[1]):
        part = np.take(img, idx[:, k], axis=axis)
        shape = [1] * img.ndim
        shape[axis] = -1
        term = part * w[:, k].reshape(shape)
        out = term if out is None else out + term
    return out


def resize(image: np.ndarray, size: tuple[int, int], interpolation: str = "bilinear") -> np.ndarray:
    """Resizes an image `(height, width, channels)` to `size = (height, width)`, as TensorFlow.

    Returns a float32 array `(size[0], size[1], channels)`.
    """
    if interpolation not in INTERPOLATIONS:
        raise ValueError(
            f"Argument `interpolation` should be one of {INTERPOLATIONS}. "
            f"Received: interpolation={interpolation}"
        )
    img = np.asarray(image, dtype=_F)
    if img.ndim != 3:
        raise ValueError(f"Expected an image (height, width, channels). Received shape {img.shape}")
    out_h, out_w = int(size[0]), int(size[1])
    in_h, in_w = img.shape[:2]
    if interpolation == "bilinear":
        x0, x1, xl = _bilinear(in_w, out_w)
        y0, y1, yl = _bilinear(in_h, out_h)
        rows0, rows1 = img[y0], img[y1]
        xl = xl[None, :, None]
        top = rows0[:, x0] + (rows0[:, x1] - rows0[:, x0]) * xl
        bottom = rows1[:, x0] + (rows1[:, x1] - rows1[:, x0]) * xl
        return np.ascontiguousarray(top + (bottom - top) * yl[:, None, None], dtype=_F)
    if interpolation == "nearest":
        return np.ascontiguousarray(img[_nearest(in_h, out_h)[0][:, 0]][:, _nearest(in_w, out_w)[0][:, 0]])
    idx_y, w_y = _taps(interpolation, in_h, out_h)
    idx_x, w_x = _taps(interpolation, in_w, out_w)
    if interpolation == "area":  # TensorFlow averages the rows of each column sum
        out = _apply(_apply(img, idx_x, w_x, axis=1), idx_y, w_y, axis=0)
    else:
        out = _apply(_apply(img, idx_y, w_y, axis=0), idx_x, w_x, axis=1)
    return np.ascontiguousarray(out, dtype=_F)


def crop_to_aspect_ratio(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """The largest centred crop of `image` with the aspect ratio of `size`, as Keras' `smart_resize`."""
    height, width = image.shape[:2]
    target_height, target_width = int(size[0]), int(size[1])
    crop_height = max(min(height, int(float(width * target_height) / target_width)), 1)
    crop_width = max(min(width, int(float(height * target_width) / target_height)), 1)
    top = int(float(height - crop_height) / 2)
    left = int(float(width - crop_width) / 2)
    return image[top : top + crop_height, left : left + crop_width]
