"""Weight constraints with Keras 3's names and formulas: ``constraint(w) -> projected w``,
applied by the optimizer after each update of a weight created with ``constraint=...``.

Norms are taken over ``axis`` (an int or a list of ints) with the other axes kept: a Dense
kernel (input_dim, units) with ``axis=0`` constrains each unit's incoming weight vector; a
Conv2D kernel (rows, cols, in, out) needs ``axis=[0, 1, 2]`` for each filter. ``epsilon`` is
Keras' backend epsilon, 1e-7.

    MaxNorm(max_value=2, axis=0):   w * clip(n, 0, max_value) / (epsilon + n)
    MinMaxNorm(min_value=0.0, max_value=1.0, rate=1.0, axis=0):
                                    w * (rate clip(n, min, max) + (1 - rate) n) / (epsilon + n)
    NonNeg():                       max(w, 0)
    UnitNorm(axis=0):               w / (epsilon + n)
with n = sqrt(sum(w^2, axis, keepdims=True)).
"""
from __future__ import annotations

import math
from typing import Any, Callable, Optional

import numpy as np

EPSILON = 1e-7


def _number(value: Any, name: str, minimum: Optional[float] = None) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)) \
            or not math.isfinite(float(value)) or (minimum is not None and value < minimum):
        expected = "a finite float" + ("" if minimum is None else f" >= {minimum}")
        raise ValueError(f"Invalid value for argument {name}: expected {expected}. "
                         f"Received: {name}={value!r}")
    return value.item() if isinstance(value, np.generic) else value


def _axis(axis: Any):
    if isinstance(axis, (list, tuple)):
        if not axis or not all(isinstance(a, (int, np.integer)) and not isinstance(a, bool)
                               for a in axis):
            raise ValueError(f"`axis` must be an int or a non-empty list of ints. "
                             f"Received: axis={axis!r}")
        return [int(a) for a in axis]
    if isinstance(axis, bool) or not isinstance(axis, (int, np.integer)):
        raise ValueError(f"`axis` must be an int or a list of ints. Received: axis={axis!r}")
    return int(axis)


def _norms(w: np.ndarray, axis) -> np.ndarray:
    ax = tuple(axis) if isinstance(axis, list) else axis
    if any(not -w.ndim <= a < w.ndim for a in (ax if isinstance(ax, tuple) else (ax,))):
        raise ValueError(f"`axis`={axis} is out of bounds for a weight of shape {w.shape}")
    return np.sqrt(np.square(w).sum(axis=ax, keepdims=True))


class Constraint:
    """Base class: ``constraint(w) -> array`` (float32, w's shape); the identity here."""

    def __call__(self, w) -> np.ndarray:
        return np.asarray(w, dtype=np.float32)

    def get_config(self) -> dict:
        return {}

    @classmethod
    def from_config(cls, config: dict):
        return cls(**config)

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"{type(self).__name__}({args})"


class MaxNorm(Constraint):
    """Caps the L2 norm of each weight vector along ``axis`` at ``max_value``."""

    def __init__(self, max_value=2, axis=0):
        self.max_value = _number(max_value, "max_value", 0)
        self.axis = _axis(axis)

    def __call__(self, w):
        w = np.asarray(w, dtype=np.float64)
        n = _norms(w, self.axis)
        desired = np.clip(n, 0, self.max_value)
        return (w * (desired / (EPSILON + n))).astype(np.float32)

    def get_config(self):
        return {"max_value": self.max_value, "axis": self.axis}


class MinMaxNorm(Constraint):
    """Keeps each norm along ``axis`` within [min_value, max_value], moving it a fraction
    ``rate`` of the way there per call (``rate=1.0``: strictly)."""

    def __init__(self, min_value=0.0, max_value=1.0, rate=1.0, axis=0):
        self.min_value = _number(min_value, "min_value", 0)
        self.max_value = _number(max_value, "max_value", 0)
        self.rate = _number(rate, "rate", 0)
        self.axis = _axis(axis)

    def __call__(self, w):
        w = np.asarray(w, dtype=np.float64)
        n = _norms(w, self.axis)
        desired = self.rate * np.clip(n, self.min_value, self.max_value) + (1 - self.rate) * n
        return (w * (desired / (EPSILON + n))).astype(np.float32)

    def get_config(self):
        return {"min_value": self.min_value, "max_value": self.max_value, "rate": self.rate,
                "axis": self.axis}


class NonNeg(Constraint):
    """Sets negative weights to 0."""

    def __call__(self, w):
        return np.maximum(np.asarray(w, dtype=np.float32), np.float32(0))


class UnitNorm(Constraint):
    """Scales each weight vector along ``axis`` to unit L2 norm."""

    def __init__(self, axis=0):
        self.axis = _axis(axis)

    def __call__(self, w):
        w = np.asarray(w, dtype=np.float64)
        return (w / (EPSILON + _norms(w, self.axis))).astype(np.float32)

    def get_config(self):
        return {"axis": self.axis}


# Keras' lower-case aliases
max_norm, min_max_norm, non_neg, unit_norm = MaxNorm, MinMaxNorm, NonNeg, UnitNorm

ALL_OBJECTS_DICT: dict[str, type] = {
    "Constraint": Constraint, "MaxNorm": MaxNorm, "MinMaxNorm": MinMaxNorm, "NonNeg": NonNeg,
    "UnitNorm": UnitNorm, "constraint": Constraint, "max_norm": MaxNorm,
    "min_max_norm": MinMaxNorm, "non_neg": NonNeg, "unit_norm": UnitNorm}


def serialize(constraint) -> Any:
    """Keras 3's form: ``{"module": "keras.constraints", "class_name": "MaxNorm", "config":
    {"max_value": 2, "axis": 0}, "registered_name": None}`` (None stays None)."""
    from . import serialization
    return serialization.serialize(constraint)


def deserialize(config, custom_objects: Optional[dict] = None):
    from . import serialization
    obj = serialization.deserialize(config, module_objects=ALL_OBJECTS_DICT,
                                    custom_objects=custom_objects,
                                    printable_module_name="constraint")
    return obj() if isinstance(obj, type) else obj


def get(identifier) -> Optional[Callable]:
    """A constraint from None, a name (``"max_norm"``, ``"NonNeg"``), a serialized dictionary,
    a class or a callable (kept as is)."""
    if identifier is None:
        return None
    if isinstance(identifier, dict):
        return deserialize(identifier)
    if isinstance(identifier, str):
        cls = ALL_OBJECTS_DICT.get(identifier)
        if cls is None:
            raise ValueError(f"Could not interpret constraint identifier: {identifier}")
        return cls()
    if isinstance(identifier, type):
        return identifier()
    if callable(identifier):
        return identifier
    raise ValueError(f"Could not interpret constraint identifier: {identifier}")
