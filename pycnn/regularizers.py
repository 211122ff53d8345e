"""Weight regularizers with Keras 3's names and formulas.

A regularizer is a callable ``reg(value) -> float``: the penalty Keras adds to the training
loss for one weight (``kernel_regularizer=...``) or for a layer's output
(``activity_regularizer=...``). pycnn's training step also needs the penalty's gradient, so
every regularizer here has ``reg.gradient(value) -> array`` (d penalty / d value, the shape
of value). Both are computed in float64 from the float32 value.

    L1(l1=0.01):            l1 * sum(|x|)             gradient l1 * sign(x)
    L2(l2=0.01):            l2 * sum(x^2)             gradient 2 * l2 * x
    L1L2(l1=0.0, l2=0.0):   the sum of both
    OrthogonalRegularizer(factor=0.01, mode="rows"):
        factor / 2 * mean over pairs i < j of |<u_i, u_j>|, u the L2-normalized rows (or
        columns) of a rank-2 value
"""
from __future__ import annotations

import math
from typing import Any, Callable, Optional

import numpy as np

#: Keras' backend.epsilon(), the floor of a norm in ``normalize``.
EPSILON = 1e-7


def validate_float_arg(value: Any, name: str) -> float:
    """A non-negative finite number (NumPy scalars accepted), as Keras checks it."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)) \
            or math.isinf(value) or math.isnan(value) or value < 0:
        raise ValueError(f"Invalid value for argument {name}: expected a non-negative float."
                         f"Received: {name}={value}")
    return float(value)


class Regularizer:
    """Base class: ``__call__(x) -> float`` (the penalty) and ``gradient(x) -> array``. The base
    penalty is 0. Subclasses with arguments implement ``get_config``."""

    def __call__(self, x) -> float:
        return 0.0

    def gradient(self, x) -> np.ndarray:
        """d penalty / d x, float32, shaped like x."""
        return np.zeros(np.shape(x), np.float32)

    def get_config(self) -> dict:
        raise NotImplementedError(f"{type(self).__name__} does not implement get_config()")

    @classmethod
    def from_config(cls, config: dict):
        return cls(**config)

    def __repr__(self) -> str:
        try:
            args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        except NotImplementedError:
            args = ""
        return f"{type(self).__name__}({args})"


def _f64(x) -> np.ndarray:
    return np.asarray(x, dtype=np.float64)


class L1L2(Regularizer):
    """``l1 * sum(|x|) + l2 * sum(x^2)`` (both 0.0 by default, as in Keras 3)."""

    def __init__(self, l1=0.0, l2=0.0):
        self.l1 = validate_float_arg(0.0 if l1 is None else l1, "l1")
        self.l2 = validate_float_arg(0.0 if l2 is None else l2, "l2")

    def __call__(self, x) -> float:
        x = _f64(x)
        penalty = 0.0
        if self.l1:
            penalty += self.l1 * float(np.abs(x).sum())
        if self.l2:
            penalty += self.l2 * float(np.square(x).sum())
        return penalty

    def gradient(self, x) -> np.ndarray:
        x = _f64(x)
        g = np.zeros_like(x)
        if self.l1:
            g += self.l1 * np.sign(x)
        if self.l2:
            g += 2.0 * self.l2 * x
        return g.astype(np.float32)

    def get_config(self):
        return {"l1": self.l1, "l2": self.l2}


class L1(L1L2):
    """``l1 * sum(|x|)``; the gradient at 0 is 0 (sign)."""

    def __init__(self, l1=0.01):
        super().__init__(l1=0.01 if l1 is None else l1, l2=0.0)

    def get_config(self):
        return {"l1": self.l1}


class L2(L1L2):
    """``l2 * sum(x^2)``."""

    def __init__(self, l2=0.01):
        super().__init__(l1=0.0, l2=0.01 if l2 is None else l2)

    def get_config(self):
        return {"l2": self.l2}


class OrthogonalRegularizer(Regularizer):
    """Pushes the rows (``mode="rows"``) or columns of a rank-2 weight towards orthogonality:
    ``factor * 0.5 * sum_{i != j} |<u_i, u_j>| / (n (n - 1) / 2)``, the u's L2-normalized
    (norm floored at 1e-7) and n their number."""

    def __init__(self, factor=0.01, mode="rows"):
        self.factor = validate_float_arg(factor, "factor")
        if mode not in {"rows", "columns"}:
            raise ValueError('Invalid value for argument `mode`. Expected one of '
                             f'{{"rows", "columns"}}. Received: mode={mode}')
        self.mode = mode

    def _vectors(self, x) -> np.ndarray:
        x = _f64(x)
        if x.ndim != 2:
            raise ValueError("Inputs to OrthogonalRegularizer must have rank 2. Received: "
                             f"inputs.shape={x.shape}")
        return x if self.mode == "rows" else x.T

    def __call__(self, x) -> float:
        v = self._vectors(x)
        n = v.shape[0]
        norm = np.sqrt((v * v).sum(axis=1, keepdims=True))
        u = v * np.minimum(_safe_inv(norm), 1.0 / EPSILON)
        p = u @ u.T
        np.fill_diagonal(p, 0.0)
        pairs = n * (n - 1.0) / 2.0
        return float(self.factor * 0.5 * np.abs(p).sum() / pairs)

    def gradient(self, x) -> np.ndarray:
        v = self._vectors(x)
        n = v.shape[0]
        norm = np.sqrt((v * v).sum(axis=1, keepdims=True))
        inv = np.minimum(_safe_inv(norm), 1.0 / EPSILON)
        u = v * inv
        p = u @ u.T
        s = np.sign(p)
        np.fill_diagonal(s, 0.0)
        pairs = n * (n - 1.0) / 2.0
        du = (self.factor * 0.5 / pairs) * 2.0 * (s @ u)      # s is symmetric
        # u = v * inv: where the norm is above the floor, d u / d v = (I - u u^T) * inv
        clipped = (inv >= 1.0 / EPSILON)
        dv = np.where(clipped, du * inv,
                      inv * (du - u * (du * u).sum(axis=1, keepdims=True)))
        g = dv if self.mode == "rows" else dv.T
        return g.astype(np.float32)

    def get_config(self):
        return {"factor": self.factor, "mode": self.mode}


def _safe_inv(norm: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore"):
        return np.where(norm > 0, 1.0 / np.where(norm > 0, norm, 1.0), np.inf)


# Keras' lower-case aliases (classes, as Keras 3 exports them)
l1, l2, l1_l2, orthogonal_regularizer = L1, L2, L1L2, OrthogonalRegularizer

#: The names ``get`` and ``deserialize`` know: Keras 3's classes and snake_case names.
ALL_OBJECTS_DICT: dict[str, type] = {
    "Regularizer": Regularizer, "L1": L1, "L2": L2, "L1L2": L1L2,
    "OrthogonalRegularizer": OrthogonalRegularizer, "regularizer": Regularizer, "l1": L1,
    "l2": L2, "l1l2": L1L2, "orthogonal_regularizer": OrthogonalRegularizer}


def serialize(regularizer) -> Any:
    """Keras 3's form: ``{"module": "keras.regularizers", "class_name": "L2", "config":
    {"l2": 0.01}, "registered_name": None}`` (None stays None)."""
    from . import serialization
    return serialization.serialize(regularizer)


def deserialize(config, custom_objects: Optional[dict] = None):
    from . import serialization
    obj = serialization.deserialize(config, module_objects=ALL_OBJECTS_DICT,
                                    custom_objects=custom_objects,
                                    printable_module_name="regularizer")
    return obj() if isinstance(obj, type) else obj


def get(identifier) -> Optional[Callable]:
    """A regularizer from None, a name (``"l2"`` gives ``L2(0.01)``, ``"l1l2"`` Keras 3's
    ``L1L2(0, 0)``; tf.keras 2's ``"l1_l2"`` gives its ``L1L2(0.01, 0.01)``), a serialized
    dictionary, a class or a callable (kept as is)."""
    if identifier is None:
        return None
    if isinstance(identifier, dict):
        return deserialize(identifier)
    if isinstance(identifier, str):
        if identifier == "l1_l2":
            return L1L2(l1=0.01, l2=0.01)
        cls = ALL_OBJECTS_DICT.get(identifier)
        if cls is None:
            raise ValueError(f"Could not interpret regularizer identifier: {identifier}")
        return cls()
    if isinstance(identifier, type):
        return identifier()
    if callable(identifier):
        return identifier
    raise ValueError(f"Could not interpret regularizer identifier: {identifier}")
