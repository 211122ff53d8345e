"""``MonitorCallback``: what ``EarlyStopping``, ``ModelCheckpoint`` and ``ReduceLROnPlateau``
share (Keras 3's ``keras.src.callbacks.monitor_callback``): the monitored value, whether
larger or smaller is better, and what counts as an improvement."""
from __future__ import annotations

import warnings
from typing import Optional

import numpy as np

from .callback import Callback

# Metrics where larger is better (Keras 3 marks them ``_direction = "up"``); every other
# metric Keras 3 ships (errors, crossentropies, hinge losses) is better smaller.
_UP = frozenset({
    "Accuracy", "BinaryAccuracy", "CategoricalAccuracy", "SparseCategoricalAccuracy",
    "TopKCategoricalAccuracy", "SparseTopKCategoricalAccuracy", "Precision", "Recall",
    "SensitivityAtSpecificity", "SpecificityAtSensitivity", "PrecisionAtRecall",
    "RecallAtPrecision", "AUC", "PearsonCorrelation", "ConcordanceCorrelation", "FBetaScore",
    "F1Score", "IoU", "MeanIoU", "BinaryIoU", "OneHotIoU", "OneHotMeanIoU", "CosineSimilarity",
    "R2Score"})


def _metric_direction(metric) -> Optional[str]:
    """``"up"``, ``"down"`` or None (unknown) for one of the model's metric objects."""
    direction = getattr(metric, "_direction", None)
    if direction in ("up", "down"):
        return direction
    names = {cls.__name__ for cls in type(metric).__mro__}
    if names & _UP:
        return "up"
    if "MeanMetricWrapper" in names:      # a loss function as a metric: smaller is better
        return "down"
    return None


def _number(value, arg: str) -> Optional[float]:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise ValueError(f"{arg} must be a number. Received: {arg}={value!r}")
    return float(value)


class MonitorCallback(Callback):
    """Base class of callbacks that watch one value of the epoch logs.

    Args:
        monitor: the logs key to watch, e.g. ``"val_loss"`` or ``"val_accuracy"``.
        mode: ``"min"`` (smaller is better), ``"max"``, or ``"auto"``: inferred as Keras 3
            does, from ``"loss"`` or the direction of the model's metric of that name
            (accuracy, AUC, precision, recall, F-scores, IoU ... are maximised, errors and
            crossentropies minimised); a name that is neither falls back to tf.keras 2's rule
            (maximise names containing ``"acc"`` or ``"auc"``, else minimise). An unknown mode
            warns and means ``"auto"``, as in Keras.
        baseline: the initial best value (None: the first value is an improvement).
        min_delta: the least change that counts as an improvement.
    """

    def __init__(self, monitor: str = "val_loss", mode: str = "auto", baseline=None,
                 min_delta=0):
        super().__init__()
        if not isinstance(monitor, str):
            raise TypeError(f"monitor must be the name of a logged value (a string). "
                            f"Received: monitor={monitor!r}")
        if mode not in ("auto", "min", "max"):
            warnings.warn(f"{type(self).__name__} mode '{mode}' is unknown, fallback to auto "
                          "mode.", stacklevel=3)
            mode = "auto"
        self.monitor = monitor
        self.mode = mode
        self.best = _number(baseline, "baseline")
        self.min_delta = abs(_number(min_delta, "min_delta"))
        self.monitor_op = None

    def _set_monitor_op(self) -> None:
        """Choose ``np.less`` or ``np.greater`` (done at the first epoch end, when the model's
        metrics exist)."""
        if self.mode == "min":
            self.monitor_op = np.less
        elif self.mode == "max":
            self.monitor_op = np.greater
        else:
            name = self.monitor[4:] if self.monitor.startswith("val_") else self.monitor
            direction = "down" if name == "loss" else None
            for m in (getattr(self.model, "metrics", None) or []):
                if getattr(m, "name", None) == name and direction is None:
                    direction = _metric_direction(m)
            if direction is None:                       # tf.keras 2's rule
                direction = "up" if ("acc" in name or "auc" in name or
                                     name.startswith("fmeasure")) else "down"
            self.monitor_op = np.greater if direction == "up" else np.less
        if self.monitor_op is np.less:
            self.min_delta = -abs(self.min_delta)
        else:
            self.min_delta = abs(self.min_delta)

    def _is_improvement(self, value, reference) -> bool:
        if reference is None:
            return True
        return bool(self.monitor_op(value - self.min_delta, reference))

    def _best_str(self) -> str:
        """The best value as Keras' messages show it (``inf`` before the first value)."""
        best = self.best
        if best is None:
            best = np.inf if self.monitor_op is np.less else -np.inf
        return f"{best:.5f}"
