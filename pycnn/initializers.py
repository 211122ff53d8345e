"""Weight initializers with Keras' names, arguments and formulas (``glorot_uniform`` for kernels,
``zeros`` for biases by default).

An initializer is called with a shape and returns a float32 array. With ``seed=`` an instance
gives the same values on every call (as Keras 3's seeded initializers do); without, it draws
from pycnn's generator (``pycnn.utils.set_random_seed``). The numbers follow Keras'
distributions, not its random streams: the same seed does not give Keras' exact values.
"""
from __future__ import annotations

import math
from typing import Any, Callable, Optional, Union

import numpy as np

from . import backend


def _fans(shape: tuple[int, ...]) -> tuple[float, float]:
    """Keras' compute_fans: (fan_in, fan_out); conv kernels (kh, kw, in, out) count the
    receptive field."""
    if len(shape) < 1:
        return 1.0, 1.0
    if len(shape) == 1:
        return float(shape[0]), float(shape[0])
    if len(shape) == 2:
        return float(shape[0]), float(shape[1])
    receptive = math.prod(shape[:-2])
    return float(shape[-2] * receptive), float(shape[-1] * receptive)


def _check_seed(seed: Any) -> Optional[int]:
    if seed is None:
        return None
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"`seed` must be None or a non-negative integer. Received: seed={seed!r}")
    return int(seed)


def _float(value: Any, arg: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)) \
            or not math.isfinite(float(value)):
        raise ValueError(f"Expected a finite float for `{arg}`. Received: {arg}={value!r}")
    return float(value)


def _shape(shape) -> tuple[int, ...]:
    if isinstance(shape, (int, np.integer)):
        return (int(shape),)
    return tuple(int(d) for d in shape)


def _check_dtype(dtype) -> None:
    if dtype not in (None, "float32", np.float32):
        raise ValueError(f"pycnn initializes float32 weights only. Received: dtype={dtype!r}")


class Initializer:
    """Base class: ``initializer(shape, dtype=None) -> float32 array``; ``get_config()`` and
    ``from_config`` round-trip the arguments."""

    def __call__(self, shape, dtype=None) -> np.ndarray:
        raise NotImplementedError

    def get_config(self) -> dict:
        return {}

    @classmethod
    def from_config(cls, config: dict):
        return cls(**config)

    def clone(self):
        return type(self).from_config(self.get_config())

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"{type(self).__name__}({args})"


class _Random(Initializer):
    def __init__(self, seed=None):
        self.seed = _check_seed(seed)

    def _rng(self) -> np.random.Generator:
        return np.random.default_rng(self.seed) if self.seed is not None else backend.rng()


class Zeros(Initializer):
    """All zeros."""

    def __call__(self, shape, dtype=None):
        _check_dtype(dtype)
        return np.zeros(_shape(shape), np.float32)


class Ones(Initializer):
    """All ones."""

    def __call__(self, shape, dtype=None):
        _check_dtype(dtype)
        return np.ones(_shape(shape), np.float32)


class Constant(Initializer):
    """Every value ``value`` (a scalar)."""

    def __init__(self, value: float = 0.0):
        self.value = _float(value, "value")

    def __call__(self, shape, dtype=None):
        _check_dtype(dtype)
        return np.full(_shape(shape), self.value, np.float32)

    def get_config(self):
        return {"value": self.value}


class RandomNormal(_Random):
    """Normal with ``mean`` and ``stddev``."""

    def __init__(self, mean=0.0, stddev=0.05, seed=None):
        super().__init__(seed)
        self.mean, self.stddev = _float(mean, "mean"), _float(stddev, "stddev")

    def __call__(self, shape, dtype=None):
        _check_dtype(dtype)
        return self._rng().normal(self.mean, self.stddev, size=_shape(shape)).astype(np.float32)

    def get_config(self):
        return {"seed": self.seed, "mean": self.mean, "stddev": self.stddev}


class RandomUniform(_Random):
    """Uniform on [minval, maxval)."""

    def __init__(self, minval=-0.05, maxval=0.05, seed=None):
        super().__init__(seed)
        self.minval, self.maxval = _float(minval, "minval"), _float(maxval, "maxval")

    def __call__(self, shape, dtype=None):
        _check_dtype(dtype)
        return self._rng().uniform(self.minval, self.maxval,
                                   size=_shape(shape)).astype(np.float32)

    def get_config(self):
        return {"seed": self.seed, "minval": self.minval, "maxval": self.maxval}


def _truncated_standard(rng: np.random.Generator, shape) -> np.ndarray:
    """Standard normal values redrawn until within two standard deviations (Keras')."""
    out = rng.standard_normal(size=shape)
    bad = np.abs(out) > 2
    while bad.any():
        out[bad] = rng.standard_normal(size=int(bad.sum()))
        bad = np.abs(out) > 2
    return out


class TruncatedNormal(_Random):
    """Normal with ``mean`` and ``stddev``, values beyond two standard deviations redrawn."""

    def __init__(self, mean=0.0, stddev=0.05, seed=None):
        super().__init__(seed)
        self.mean, self.stddev = _float(mean, "mean"), _float(stddev, "stddev")

    def __call__(self, shape, dtype=None):
        _check_dtype(dtype)
        out = _truncated_standard(self._rng(), _shape(shape))
        return (self.mean + self.stddev * out).astype(np.float32)

    def get_config(self):
        return {"seed": self.seed, "mean": self.mean, "stddev": self.stddev}


class VarianceScaling(_Random):
    """Variance ``scale / n`` with n the fan in, out or their mean (``mode``): ``uniform`` on
    [-sqrt(3 scale / n), +sqrt(3 scale / n)], ``truncated_normal`` (``"normal"``) with stddev
    sqrt(scale / n) / 0.8796..., or ``untruncated_normal``."""

    def __init__(self, scale=1.0, mode="fan_in", distribution="truncated_normal", seed=None):
        super().__init__(seed)
        scale = _float(scale, "scale")
        if scale <= 0.0:
            raise ValueError("Argument `scale` must be positive float. "
                             f"Received: scale={scale}")
        allowed_modes = {"fan_in", "fan_out", "fan_avg"}
        if mode not in allowed_modes:
            raise ValueError(f"Invalid `mode` argument: {mode}. Please use one of "
                             f"{allowed_modes}")
        distribution = str(distribution).lower()
        if distribution == "normal":
            distribution = "truncated_normal"
        allowed = {"uniform", "truncated_normal", "untruncated_normal"}
        if distribution not in allowed:
            raise ValueError(f"Invalid `distribution` argument: {distribution}. Please use one "
                             f"of {allowed}")
        self.scale, self.mode, self.distribution = scale, mode, distribution

    def __call__(self, shape, dtype=None):
        _check_dtype(dtype)
        shape = _shape(shape)
        fan_in, fan_out = _fans(shape)
        fan = {"fan_in": fan_in, "fan_out": fan_out, "fan_avg": (fan_in + fan_out) / 2}[self.mode]
        var = self.scale / max(1.0, fan)
        rng = self._rng()
        if self.distribution == "uniform":
            limit = math.sqrt(3.0 * var)
            return rng.uniform(-limit, limit, size=shape).astype(np.float32)
        if self.distribution == "untruncated_normal":
            return (rng.standard_normal(size=shape) * math.sqrt(var)).astype(np.float32)
        std = math.sqrt(var) / 0.87962566103423978
        return (_truncated_standard(rng, shape) * std).astype(np.float32)

    def get_config(self):
        return {"seed": self.seed, "scale": self.scale, "mode": self.mode,
                "distribution": self.distribution}


class _FixedVarianceScaling(VarianceScaling):
    """A VarianceScaling preset (Glorot, He, LeCun): only ``seed`` is an argument."""

    _preset: tuple = ()

    def __init__(self, seed=None):
        super().__init__(*self._preset, seed=seed)

    def get_config(self):
        return {"seed": self.seed}


class GlorotUniform(_FixedVarianceScaling):
    """U(-L, L) with L = sqrt(6 / (fan_in + fan_out))."""
    _preset = (1.0, "fan_avg", "uniform")


class GlorotNormal(_FixedVarianceScaling):
    """Truncated normal, stddev sqrt(2 / (fan_in + fan_out)) (before truncation)."""
    _preset = (1.0, "fan_avg", "truncated_normal")


class HeNormal(_FixedVarianceScaling):
    """Truncated normal, stddev sqrt(2 / fan_in)."""
    _preset = (2.0, "fan_in", "truncated_normal")


class HeUniform(_FixedVarianceScaling):
    """U(-L, L) with L = sqrt(6 / fan_in)."""
    _preset = (2.0, "fan_in", "uniform")


class LecunNormal(_FixedVarianceScaling):
    """Truncated normal, stddev sqrt(1 / fan_in)."""
    _preset = (1.0, "fan_in", "truncated_normal")


class LecunUniform(_FixedVarianceScaling):
    """U(-L, L) with L = sqrt(3 / fan_in)."""
    _preset = (1.0, "fan_in", "uniform")


class Orthogonal(_Random):
    """A (semi-)orthogonal matrix times ``gain``: the Q of the QR decomposition of a normal
    matrix (signs fixed by R's diagonal), shape (prod(shape[:-1]), shape[-1]) reshaped."""

    def __init__(self, gain=1.0, seed=None):
        super().__init__(seed)
        self.gain = _float(gain, "gain")

    def __call__(self, shape, dtype=None):
        _check_dtype(dtype)
        shape = _shape(shape)
        if len(shape) < 2:
            raise ValueError("The tensor to initialize must be at least two-dimensional. "
                             f"Received: shape={shape} of rank {len(shape)}.")
        rows, cols = math.prod(shape[:-1]), shape[-1]
        a = self._rng().standard_normal(size=(max(rows, cols), min(rows, cols)))
        q, r = np.linalg.qr(a)
        q = q * np.sign(np.diag(r))
        if rows < cols:
            q = q.T
        return (self.gain * q).reshape(shape).astype(np.float32)

    def get_config(self):
        return {"seed": self.seed, "gain": self.gain}


class Identity(Initializer):
    """``gain`` times the identity matrix (2-D shapes only; rectangular: ones on the
    diagonal)."""

    def __init__(self, gain=1.0):
        self.gain = _float(gain, "gain")

    def __call__(self, shape, dtype=None):
        _check_dtype(dtype)
        shape = _shape(shape)
        if len(shape) != 2:
            raise ValueError("Identity matrix initializer can only be used for 2D matrices. "
                             f"Received: shape={shape} of rank {len(shape)}.")
        return (self.gain * np.eye(*shape)).astype(np.float32)

    def get_config(self):
        return {"gain": self.gain}


OrthogonalInitializer = Orthogonal
IdentityInitializer = Identity

#: Keras 3's names: class names, their snake_case forms and the short aliases.
ALL_OBJECTS_DICT: dict[str, type] = {}
for _cls in (Initializer, Zeros, Ones, Constant, RandomNormal, RandomUniform, TruncatedNormal,
             VarianceScaling, GlorotUniform, GlorotNormal, HeNormal, HeUniform, LecunNormal,
             LecunUniform, Orthogonal, Identity):
    ALL_OBJECTS_DICT[_cls.__name__] = _cls
ALL_OBJECTS_DICT.update({
    "OrthogonalInitializer": Orthogonal, "IdentityInitializer": Identity,
    "initializer": Initializer, "zeros": Zeros, "zero": Zeros, "ones": Ones, "one": Ones,
    "constant": Constant, "random_normal": RandomNormal, "normal": RandomNormal,
    "random_uniform": RandomUniform, "uniform": RandomUniform,
    "truncated_normal": TruncatedNormal, "variance_scaling": VarianceScaling,
    "glorot_uniform": GlorotUniform, "glorot_normal": GlorotNormal, "he_normal": HeNormal,
    "he_uniform": HeUniform, "lecun_normal": LecunNormal, "lecun_uniform": LecunUniform,
    "orthogonal": Orthogonal, "identity": Identity})

# tf.keras 2's function-style aliases
zeros, ones, constant = Zeros, Ones, Constant
random_normal, random_uniform, truncated_normal = RandomNormal, RandomUniform, TruncatedNormal
variance_scaling, orthogonal, identity = VarianceScaling, Orthogonal, Identity
glorot_uniform, glorot_normal, he_normal, he_uniform = GlorotUniform, GlorotNormal, HeNormal, \
    HeUniform
lecun_normal, lecun_uniform = LecunNormal, LecunUniform

InitializerLike = Union[str, dict, Initializer, Callable]


def serialize(initializer) -> Any:
    """Keras 3's form: ``{"module": "keras.initializers", "class_name": "GlorotUniform",
    "config": {"seed": None}, "registered_name": None}``."""
    from . import serialization
    return serialization.serialize(initializer)


def deserialize(config, custom_objects: Optional[dict] = None):
    """The initializer a ``serialize`` dictionary or a name describes (an instance)."""
    from . import serialization
    obj = serialization.deserialize(config, module_objects=ALL_OBJECTS_DICT,
                                    custom_objects=custom_objects,
                                    printable_module_name="initializer")
    return obj() if isinstance(obj, type) else obj


def get(identifier: InitializerLike) -> Callable:
    """An initializer from its Keras name (``"glorot_uniform"``, ``"GlorotUniform"``), a
    serialized dictionary, an instance or any callable ``f(shape, dtype=None)``."""
    if identifier is None:
        return None
    if isinstance(identifier, dict):
        return deserialize(identifier)
    if isinstance(identifier, str):
        cls = ALL_OBJECTS_DICT.get(identifier) or ALL_OBJECTS_DICT.get(identifier.lower())
        if cls is None or cls is Initializer:
            raise ValueError(f"Could not interpret initializer identifier: {identifier!r}; "
                             "expected one of "
                             f"{sorted(k for k in ALL_OBJECTS_DICT if k.islower())}")
        return cls()
    if isinstance(identifier, type) and issubclass(identifier, Initializer):
        return identifier()
    if callable(identifier):
        return identifier
    raise ValueError(f"Could not interpret initializer identifier: {identifier!r}")
