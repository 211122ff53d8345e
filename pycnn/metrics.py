"""Metrics as Keras computes them during fit/evaluate: running means over the samples seen so
far (each batch weighted by its size). ``"accuracy"`` resolves to the right accuracy for the
labels and the loss, and keeps the name "accuracy"."""
from __future__ import annotations

from typing import Optional

import numpy as np


class Metric:
    """Base class: ``update_state(y_true, y_pred)``, ``result()``, ``reset_state()``."""

    def __init__(self, name: Optional[str] = None):
        self.name = name or self.default_name
        self.reset_state()

    default_name = "metric"

    def reset_state(self) -> None:
        self.total = 0.0
        self.count = 0

    def batch_values(self, y_true: np.ndarray, y_pred: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def update_state(self, y_true, y_pred, sample_weight=None) -> None:
        values = self.batch_values(np.asarray(y_true), np.asarray(y_pred))
        self.total += float(np.sum(values, dtype=np.float64))
        self.count += int(values.size)

    def result(self) -> float:
        """The running mean as float32, as Keras reports it."""
        return float(np.float32(self.total / self.count)) if self.count else 0.0


class Mean(Metric):
    """Weighted running mean of values (the loss tracker)."""

    default_name = "mean"

    def update_state(self, value, sample_weight=1) -> None:
        self.total += float(value) * float(sample_weight)
        self.count += float(sample_weight)

    update = update_state


class SparseCategoricalAccuracy(Metric):
    default_name = "sparse_categorical_accuracy"

    def batch_values(self, y_true, y_pred):
        y_pred = y_pred.reshape(y_pred.shape[0], -1)
        return (np.argmax(y_pred, axis=1) == y_true.reshape(-1)).astype(np.float32)


class CategoricalAccuracy(Metric):
    default_name = "categorical_accuracy"

    def batch_values(self, y_true, y_pred):
        y_pred = y_pred.reshape(y_pred.shape[0], -1)
        return (np.argmax(y_pred, axis=1) ==
                np.argmax(y_true.reshape(y_true.shape[0], -1), axis=1)).astype(np.float32)


class BinaryAccuracy(Metric):
    default_name = "binary_accuracy"

    def __init__(self, name=None, threshold: float = 0.5):
        self.threshold = threshold
        super().__init__(name)

    def batch_values(self, y_true, y_pred):
        return ((y_pred > self.threshold) == (y_true.reshape(y_pred.shape) > 0.5)).astype(np.float32)


class Accuracy(Metric):
    """Exact equality of predictions and targets."""

    default_name = "accuracy"

    def batch_values(self, y_true, y_pred):
        return (y_true.reshape(y_pred.shape) == y_pred).astype(np.float32)


_BY_NAME = {
    "sparse_categorical_accuracy": SparseCategoricalAccuracy,
    "categorical_accuracy": CategoricalAccuracy,
    "binary_accuracy": BinaryAccuracy,
}


def get(identifier, loss, output_shape) -> Metric:
    """A metric from its Keras name or instance. ``"accuracy"``/``"acc"`` resolves as Keras does:
    sparse categorical accuracy for a sparse loss, binary for one output unit, else categorical."""
    if isinstance(identifier, Metric):
        return identifier
    loss_name = getattr(loss, "name", loss)
    output_units = int(output_shape[-1] or 0)
    if identifier in ("accuracy", "acc"):
        if loss_name == "sparse_categorical_crossentropy":
            cls = SparseCategoricalAccuracy
        elif output_units == 1:
            cls = BinaryAccuracy
        else:
            cls = CategoricalAccuracy
        return cls(name=identifier)
    if isinstance(identifier, str) and identifier in _BY_NAME:
        return _BY_NAME[identifier]()
    raise ValueError(f"Could not interpret metric identifier: {identifier!r}. Expected "
                     f"'accuracy' or one of {sorted(_BY_NAME)}")
