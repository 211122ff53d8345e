"""Losses, by Keras name or as objects: sparse categorical crossentropy (the lecture's),
categorical crossentropy and mean squared error. Each computes the batch mean and its gradient;
the crossentropies run in C and, after a softmax, are fused with it (gradient (p - y) / N)."""
from __future__ import annotations

from typing import Optional, Tuple

import numpy as np

from . import _C
from .models import data as data_mod


class Loss:
    """Base class. ``loss(y_true, y_pred)`` returns the mean loss over the batch."""

    name = "loss"
    #: True when a preceding softmax can be fused into this loss.
    fuses_softmax = False

    def __init__(self, from_logits: bool = False, name: Optional[str] = None,
                 reduction: str = "sum_over_batch_size"):
        if reduction not in ("sum_over_batch_size", "auto"):
            raise ValueError(f"pycnn supports reduction='sum_over_batch_size' only. "
                             f"Received: reduction={reduction!r}")
        self.from_logits = bool(from_logits)
        if name:
            self.name = name

    # targets checked once per fit/evaluate, against the model's output shape
    def prepare_targets(self, y, out_shape: tuple, where: str) -> np.ndarray:
        raise NotImplementedError

    def compute(self, y_pred: np.ndarray, y_true: np.ndarray, logits: bool,
                grad: bool = True, probs_out: Optional[np.ndarray] = None
                ) -> Tuple[float, Optional[np.ndarray]]:
        """(mean loss, d loss / d y_pred) where y_pred are logits when ``logits``; then the
        softmax of the logits lands in ``probs_out`` when given (a float32 array of y_pred's
        size), as the output the model's metrics see."""
        raise NotImplementedError

    def __call__(self, y_true, y_pred) -> float:
        y_pred = data_mod.as_float_input(y_pred, f"{self.name}: y_pred")
        y_pred = y_pred.reshape(y_pred.shape[0], -1) if y_pred.ndim > 2 else y_pred
        y_true = self.prepare_targets(y_true, (None,) + y_pred.shape[1:], f"{self.name}: y_true")
        if len(y_true) != len(y_pred):
            raise ValueError(f"{self.name}: y_true has {len(y_true)} samples, y_pred "
                             f"{len(y_pred)}")
        return float(np.float32(self.compute(y_pred, y_true, self.from_logits, grad=False)[0]))

    def get_config(self) -> dict:
        return {"name": self.name, "from_logits": self.from_logits}


def _rows(a: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(a.reshape(a.shape[0], -1), dtype=np.float32)


def _probs_buffer(rows: np.ndarray, probs_out: Optional[np.ndarray]) -> np.ndarray:
    return np.empty_like(rows) if probs_out is None else probs_out.reshape(rows.shape)


class SparseCategoricalCrossentropy(Loss):
    """Crossentropy between integer labels ``(N,)`` and predicted class probabilities (or logits
    with ``from_logits=True``)."""

    name = "sparse_categorical_crossentropy"
    fuses_softmax = True

    def prepare_targets(self, y, out_shape, where):
        if len(out_shape) != 2:
            shape = "(" + ", ".join("None" if d is None else str(d) for d in out_shape) + ")"
            raise ValueError(
                f"{where}: the loss '{self.name}' expects the model to output one row of class "
                f"scores per sample, shape (None, classes), but the output has shape {shape}. "
                "Flatten the input first (e.g. reshape images to (N, 784) or add a Flatten "
                "layer before the last Dense).")
        return data_mod.sparse_labels(y, int(out_shape[-1]), where)

    def compute(self, y_pred, y_true, logits, grad=True, probs_out=None):
        p = _rows(y_pred)
        g = np.empty_like(p) if grad else None
        if logits:
            loss = _C.softmax_xent_sparse(p, y_true, _probs_buffer(p, probs_out), g)
        else:
            loss = _C.xent_sparse(p, y_true, g)
        return loss, (g.reshape(y_pred.shape) if grad else None)


class CategoricalCrossentropy(Loss):
    """Crossentropy between one-hot (or soft) targets ``(N, C)`` and predictions."""

    name = "categorical_crossentropy"
    fuses_softmax = True

    def prepare_targets(self, y, out_shape, where):
        return data_mod.dense_targets(y, out_shape, where)

    def compute(self, y_pred, y_true, logits, grad=True, probs_out=None):
        p, t = _rows(y_pred), _rows(y_true)
        g = np.empty_like(p) if grad else None
        if logits:
            loss = _C.softmax_xent(p, t, _probs_buffer(p, probs_out), g)
        else:
            loss = _C.xent(p, t, g)
        return loss, (g.reshape(y_pred.shape) if grad else None)


class MeanSquaredError(Loss):
    """mean((y_true - y_pred) ** 2) over the last axis, then over the batch."""

    name = "mean_squared_error"

    def prepare_targets(self, y, out_shape, where):
        return data_mod.dense_targets(y, out_shape, where)

    def compute(self, y_pred, y_true, logits, grad=True, probs_out=None):
        diff = y_pred.astype(np.float64) - y_true
        loss = float(np.mean(diff ** 2))
        g = (2.0 * diff / diff.size).astype(np.float32) if grad else None
        return loss, g


_BY_NAME = {
    "sparse_categorical_crossentropy": SparseCategoricalCrossentropy,
    "categorical_crossentropy": CategoricalCrossentropy,
    "mean_squared_error": MeanSquaredError, "mse": MeanSquaredError,
}


def get(identifier) -> Loss:
    """A loss from its Keras name or an instance."""
    if isinstance(identifier, Loss):
        return identifier
    if isinstance(identifier, str) and identifier in _BY_NAME:
        return _BY_NAME[identifier]()
    if isinstance(identifier, type) and issubclass(identifier, Loss):
        return identifier()
    raise ValueError(f"Could not interpret loss identifier: {identifier!r}. Expected one of "
                     f"{sorted(_BY_NAME)} or a pycnn.losses.Loss instance")


def sparse_categorical_crossentropy(y_true, y_pred, from_logits: bool = False) -> np.ndarray:
    """Per-sample losses, as ``keras.losses.sparse_categorical_crossentropy``."""
    loss = SparseCategoricalCrossentropy(from_logits=from_logits)
    y_pred = data_mod.as_float_input(y_pred, "sparse_categorical_crossentropy: y_pred")
    y = loss.prepare_targets(y_true, (None,) + y_pred.shape[1:],
                             "sparse_categorical_crossentropy: y_true")
    return np.array([loss.compute(y_pred[i:i + 1], y[i:i + 1], from_logits, False)[0]
                     for i in range(len(y))], dtype=np.float32)


def categorical_crossentropy(y_true, y_pred, from_logits: bool = False) -> np.ndarray:
    """Per-sample losses, as ``keras.losses.categorical_crossentropy``."""
    loss = CategoricalCrossentropy(from_logits=from_logits)
    y_pred = data_mod.as_float_input(y_pred, "categorical_crossentropy: y_pred")
    t = loss.prepare_targets(y_true, (None,) + y_pred.shape[1:], "categorical_crossentropy: y_true")
    return np.array([loss.compute(y_pred[i:i + 1], t[i:i + 1], from_logits, False)[0]
                     for i in range(len(t))], dtype=np.float32)
