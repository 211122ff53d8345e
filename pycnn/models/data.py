"""Checks and conversions of what users pass to layers and models: every array is checked once,
at the entry point, with a message that names the layer or argument and what was expected."""
from __future__ import annotations

from typing import Any

import numpy as np

_F32_MAX = float(np.finfo(np.float32).max)


def _position(index: tuple) -> str:
    return "[" + ", ".join(str(int(i)) for i in index) + "]"


def as_array(data: Any, where: str) -> np.ndarray:
    if isinstance(data, np.ndarray):
        return data
    if hasattr(data, "__array__") or isinstance(data, (list, tuple)):
        try:
            return np.asarray(data)
        except (ValueError, TypeError) as err:
            raise TypeError(f"{where}: could not convert the input to an array ({err})") from None
    raise TypeError(f"{where}: expected a NumPy array, got {type(data).__name__}")


def as_float_input(data: Any, where: str) -> np.ndarray:
    """A C-contiguous float32 copy (or view) of numeric input data, checked: numeric dtype,
    rank >= 1, not empty, every value finite and representable in float32."""
    x = as_array(data, where)
    if x.dtype.kind not in "biuf":
        raise TypeError(f"{where}: expected numeric input data (float32, float64 or integers), "
                        f"got an array of dtype {x.dtype}")
    if x.ndim == 0:
        raise ValueError(f"{where}: expected an array with a batch axis, got a scalar")
    if x.size == 0:
        raise ValueError(f"{where}: received an empty array of shape {x.shape}")
    if x.dtype.kind == "f":
        finite = np.isfinite(x)
        if not finite.all():
            pos = tuple(np.argwhere(~finite)[0])
            raise ValueError(f"{where}: input contains {x[pos]} at position {_position(pos)}; "
                             "every value must be finite (no NaN or inf)")
        if x.dtype.itemsize > 4 and np.abs(x).max() > _F32_MAX:
            pos = tuple(np.argwhere(np.abs(x) > _F32_MAX)[0])
            raise ValueError(f"{where}: the value {x[pos]} at position {_position(pos)} "
                             "overflows float32 (max 3.4e38)")
    # aligned too: a view into a byte buffer at an odd offset is copied
    return np.require(x, dtype=np.float32, requirements=["C", "A"])


def sparse_labels(data: Any, n_classes: int, where: str) -> np.ndarray:
    """Class indices (N,) or (N, 1) of any integer dtype (or integral floats) -> int64 (N,)."""
    y = as_array(data, where)
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if y.ndim == 2 and n_classes > 1 and y.shape[1] == n_classes:
        raise ValueError(f"{where}: labels of shape {y.shape} look one-hot encoded, but the loss "
                         "'sparse_categorical_crossentropy' expects class indices of shape (N,). "
                         "Use loss='categorical_crossentropy' for one-hot labels, or pass "
                         "labels.argmax(axis=1)")
    if y.ndim != 1:
        raise ValueError(f"{where}: expected class indices of shape (N,) or (N, 1), got shape "
                         f"{y.shape}")
    if y.dtype.kind == "f":
        if not np.isfinite(y).all():
            pos = int(np.argwhere(~np.isfinite(y))[0][0])
            raise ValueError(f"{where}: label at position [{pos}] is {y[pos]}; labels must be "
                             "integer class indices")
        frac = np.mod(y, 1) != 0
        if frac.any():
            pos = int(np.argwhere(frac)[0][0])
            raise ValueError(f"{where}: label at position [{pos}] is {y[pos]}, not an integer; "
                             "labels must be integer class indices")
    elif y.dtype.kind not in "iub":
        raise TypeError(f"{where}: labels must be integers, got an array of dtype {y.dtype}")
    if y.size == 0:
        raise ValueError(f"{where}: received no labels")
    bad = (y < 0) | (y >= n_classes)
    if bad.any():
        pos = int(np.argwhere(bad)[0][0])
        raise ValueError(f"{where}: label {y[pos]} at position [{pos}] is out of range: the "
                         f"model has {n_classes} output classes, so labels must be in "
                         f"[0, {n_classes - 1}]")
    return np.require(y, dtype=np.int64, requirements=["C", "A"])


def dense_targets(data: Any, out_shape: tuple, where: str) -> np.ndarray:
    """Targets with the model output's shape (one-hot rows, regression values) as float32."""
    y = as_float_input(data, where)
    if y.ndim == 1 and len(out_shape) == 2 and out_shape[1] == 1:
        y = y.reshape(-1, 1)
    if tuple(y.shape[1:]) != tuple(out_shape[1:]):
        hint = ""
        if y.ndim == 1 and len(out_shape) == 2:
            hint = (" These look like class indices: use loss='sparse_categorical_crossentropy' "
                    "or one-hot encode them with pycnn.utils.to_categorical")
        raise ValueError(f"{where}: targets of shape {y.shape} do not match the model output "
                         f"shape (None, {', '.join(str(d) for d in out_shape[1:])}).{hint}")
    return y
