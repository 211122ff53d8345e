"""Weight initializers with Keras' names and formulas (``glorot_uniform`` for kernels,
``zeros`` for biases by default). They draw from pycnn's seeded generator."""
from __future__ import annotations

import math
from typing import Callable, Union

import numpy as np

from . import backend


def _fans(shape: tuple[int, ...]) -> tuple[float, float]:
    if len(shape) < 1:
        return 1.0, 1.0
    if len(shape) == 1:
        return float(shape[0]), float(shape[0])
    if len(shape) == 2:
        return float(shape[0]), float(shape[1])
    receptive = math.prod(shape[:-2])          # conv kernels (kh, kw, in, out)
    return float(shape[-2] * receptive), float(shape[-1] * receptive)


class Initializer:
    """Base class: ``initializer(shape) -> float32 array``."""

    def __call__(self, shape, dtype=None) -> np.ndarray:
        raise NotImplementedError

    def get_config(self) -> dict:
        return {}


class Zeros(Initializer):
    def __call__(self, shape, dtype=None):
        return np.zeros(shape, np.float32)


class Ones(Initializer):
    def __call__(self, shape, dtype=None):
        return np.ones(shape, np.float32)


class Constant(Initializer):
    def __init__(self, value: float = 0.0):
        self.value = float(value)

    def __call__(self, shape, dtype=None):
        return np.full(shape, self.value, np.float32)


class VarianceScaling(Initializer):
    """Keras' VarianceScaling: scale / fan, uniform or (truncated) normal."""

    def __init__(self, scale=1.0, mode="fan_in", distribution="truncated_normal", seed=None):
        if scale <= 0:
            raise ValueError(f"expected a positive scale. Received: scale={scale}")
        if mode not in ("fan_in", "fan_out", "fan_avg"):
            raise ValueError(f"Invalid mode: {mode!r}; expected 'fan_in', 'fan_out' or 'fan_avg'")
        if distribution not in ("truncated_normal", "untruncated_normal", "uniform"):
            raise ValueError(f"Invalid distribution: {distribution!r}")
        self.scale, self.mode, self.distribution, self.seed = scale, mode, distribution, seed

    def _rng(self):
        return np.random.default_rng(self.seed) if self.seed is not None else backend.rng()

    def __call__(self, shape, dtype=None):
        fan_in, fan_out = _fans(tuple(shape))
        fan = {"fan_in": fan_in, "fan_out": fan_out, "fan_avg": (fan_in + fan_out) / 2}[self.mode]
        var = self.scale / max(1.0, fan)
        rng = self._rng()
        if self.distribution == "uniform":
            limit = math.sqrt(3.0 * var)
            return rng.uniform(-limit, limit, size=shape).astype(np.float32)
        if self.distribution == "untruncated_normal":
            return (rng.standard_normal(size=shape) * math.sqrt(var)).astype(np.float32)
        std = math.sqrt(var) / 0.87962566103423978
        out = rng.standard_normal(size=shape)
        bad = np.abs(out) > 2
        while bad.any():
            out[bad] = rng.standard_normal(size=int(bad.sum()))
            bad = np.abs(out) > 2
        return (out * std).astype(np.float32)

    def get_config(self):
        return {"scale": self.scale, "mode": self.mode, "distribution": self.distribution,
                "seed": self.seed}


class GlorotUniform(VarianceScaling):
    """U(-L, L) with L = sqrt(6 / (fan_in + fan_out))."""

    def __init__(self, seed=None):
        super().__init__(1.0, "fan_avg", "uniform", seed)


class GlorotNormal(VarianceScaling):
    def __init__(self, seed=None):
        super().__init__(1.0, "fan_avg", "truncated_normal", seed)


class HeNormal(VarianceScaling):
    def __init__(self, seed=None):
        super().__init__(2.0, "fan_in", "truncated_normal", seed)


class HeUniform(VarianceScaling):
    def __init__(self, seed=None):
        super().__init__(2.0, "fan_in", "uniform", seed)


class RandomNormal(Initializer):
    def __init__(self, mean=0.0, stddev=0.05, seed=None):
        self.mean, self.stddev, self.seed = mean, stddev, seed

    def __call__(self, shape, dtype=None):
        rng = np.random.default_rng(self.seed) if self.seed is not None else backend.rng()
        return rng.normal(self.mean, self.stddev, size=shape).astype(np.float32)


class RandomUniform(Initializer):
    def __init__(self, minval=-0.05, maxval=0.05, seed=None):
        self.minval, self.maxval, self.seed = minval, maxval, seed

    def __call__(self, shape, dtype=None):
        rng = np.random.default_rng(self.seed) if self.seed is not None else backend.rng()
        return rng.uniform(self.minval, self.maxval, size=shape).astype(np.float32)


_ALIASES = {
    "zeros": Zeros, "ones": Ones, "constant": Constant,
    "glorot_uniform": GlorotUniform, "glorot_normal": GlorotNormal,
    "he_normal": HeNormal, "he_uniform": HeUniform,
    "random_normal": RandomNormal, "random_uniform": RandomUniform,
    "variance_scaling": VarianceScaling,
}

InitializerLike = Union[str, Initializer, Callable]


def get(identifier: InitializerLike) -> Callable:
    """An initializer from its Keras name (``"glorot_uniform"``), an instance or a callable."""
    if isinstance(identifier, str):
        key = identifier if identifier in _ALIASES else identifier.lower()
        for name, cls in _ALIASES.items():
            if key == name or key == cls.__name__.lower():
                return cls()
        raise ValueError(f"Could not interpret initializer identifier: {identifier!r}; "
                         f"expected one of {sorted(_ALIASES)}")
    if callable(identifier):
        return identifier
    raise TypeError(f"Could not interpret initializer identifier: {identifier!r}")
