"""Regularization layers active in training only: SpatialDropout2D (drops whole channels),
GaussianNoise (additive) and GaussianDropout (multiplicative). At inference each is the
identity. Random draws come from the layer's generator (``seed=``) or pycnn's."""
from __future__ import annotations

import math
import numbers
from typing import Optional

import numpy as np

from .. import backend
from .base import InputSpec, Layer


def _rate(value, arg: str, upper_inclusive: bool = False) -> float:
    ok = isinstance(value, numbers.Real) and not isinstance(value, bool) and \
        math.isfinite(value) and 0 <= value and (value <= 1 if upper_inclusive else value < 1)
    if not ok:
        raise ValueError(f"Invalid value received for argument `{arg}`. Expected a float "
                         f"value between 0 and 1. Received: {arg}={value!r}")
    return float(value)


def _seed(seed) -> Optional[int]:
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, numbers.Integral)
                             or seed < 0):
        raise ValueError(f"Invalid value received for argument `seed`: expected None or a "
                         f"non-negative integer. Received: seed={seed!r}")
    return None if seed is None else int(seed)


class _Noise(Layer):
    def __init__(self, seed=None, **kwargs):
        super().__init__(**kwargs)
        self.seed = _seed(seed)
        self._rng = np.random.default_rng(self.seed) if self.seed is not None else None

    def _generator(self) -> np.random.Generator:
        return self._rng or backend.rng()

    def backward(self, ctx, dy, need_dx=True):
        if not need_dx:
            return None
        return dy if ctx.mask is None else np.asarray(dy, dtype=np.float32) * ctx.mask


class SpatialDropout2D(_Noise):
    """Dropout of whole feature maps: in training each channel of each sample is zeroed with
    probability ``rate`` (the same for every position) and the others are scaled by
    ``1 / (1 - rate)``."""

    def __init__(self, rate: float, data_format=None, seed=None, **kwargs):
        super().__init__(seed=seed, **kwargs)
        self.rate = _rate(rate, "rate")
        if data_format not in (None, "channels_last"):
            raise ValueError(f"pycnn supports data_format='channels_last' only. "
                             f"Received: data_format={data_format!r}")
        self.input_spec = InputSpec(ndim=4)

    def forward(self, ctx, x, training=False):
        ctx.mask = None
        if not training or self.rate == 0:
            return x
        n, c = x.shape[0], x.shape[-1]
        keep = self._generator().random((n, 1, 1, c), dtype=np.float32) >= self.rate
        ctx.mask = keep.astype(np.float32) * np.float32(1.0 / (1.0 - self.rate))
        return x * ctx.mask

    def get_config(self):
        return {**super().get_config(), "rate": self.rate, "seed": self.seed,
                "data_format": "channels_last"}


class GaussianNoise(_Noise):
    """Adds zero-mean Gaussian noise of standard deviation ``stddev`` in training."""

    def __init__(self, stddev: float, seed=None, **kwargs):
        super().__init__(seed=seed, **kwargs)
        self.stddev = _rate(stddev, "stddev", upper_inclusive=True)

    def forward(self, ctx, x, training=False):
        ctx.mask = None
        if not training or self.stddev == 0:
            return x
        noise = self._generator().standard_normal(x.shape, dtype=np.float32)
        return (x + noise * np.float32(self.stddev)).astype(np.float32, copy=False)

    def get_config(self):
        return {**super().get_config(), "stddev": self.stddev, "seed": self.seed}


class GaussianDropout(_Noise):
    """Multiplies the inputs by Gaussian noise of mean 1 and standard deviation
    ``sqrt(rate / (1 - rate))`` in training."""

    def __init__(self, rate: float, seed=None, **kwargs):
        super().__init__(seed=seed, **kwargs)
        self.rate = _rate(rate, "rate")

    def forward(self, ctx, x, training=False):
        ctx.mask = None
        if not training or self.rate == 0:
            return x
        std = math.sqrt(self.rate / (1.0 - self.rate))
        noise = self._generator().standard_normal(x.shape, dtype=np.float32)
        ctx.mask = (np.float32(1.0) + noise * np.float32(std)).astype(np.float32, copy=False)
        return x * ctx.mask

    def get_config(self):
        return {**super().get_config(), "rate": self.rate, "seed": self.seed}
