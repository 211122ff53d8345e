"""Keras' losses, each over rows of the last axis, the arithmetic in C (``_C.softmax_xent*``,
``_C.xent*``, ``_C.loss_rows``)."""
from __future__ import annotations

import inspect
from typing import Optional

import numpy as np

from .. import _C
from ..models import data as data_mod
from .base import Loss, as_f32


def _number(value, name: str, lo: Optional[float] = None, hi: Optional[float] = None) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(f"Expected a number. Received: {name}={value!r}")
    v = float(value)
    if not np.isfinite(v) or (lo is not None and v < lo) or (hi is not None and v > hi):
        rng = f"in [{lo}, {hi}]" if hi is not None else f">= {lo}"
        raise ValueError(f"Expected a finite number {rng}. Received: {name}={value!r}")
    return v


def _axis(axis) -> int:
    if isinstance(axis, bool) or not isinstance(axis, (int, np.integer)):
        raise ValueError(f"`axis` must be of type `int`. Received: axis={axis!r} of type "
                         f"{type(axis)}")
    return int(axis)


class _AxisLoss(Loss):
    """A loss over an ``axis`` (default -1): other axes are moved last around the kernel."""

    def __init__(self, axis: int = -1, **kwargs):
        super().__init__(**kwargs)
        self.axis = _axis(axis)

    def _moved(self, a: np.ndarray) -> np.ndarray:
        return a if self.axis in (-1, a.ndim - 1) else np.moveaxis(a, self.axis, -1)

    def compute(self, y_pred, y_true, from_logits, grad=True, probs_out=None, sample_weight=None):
        y_pred = np.asarray(y_pred)
        if self.axis in (-1, y_pred.ndim - 1):
            return super().compute(y_pred, y_true, from_logits, grad, probs_out, sample_weight)
        moved = np.ascontiguousarray(self._moved(y_pred))
        probs = None if probs_out is None else np.empty_like(moved)
        loss, g = super().compute(moved, np.ascontiguousarray(self._moved(np.asarray(y_true))),
                                  from_logits, grad, probs, sample_weight)
        if probs is not None:
            np.asarray(probs_out).reshape(y_pred.shape)[...] = np.moveaxis(probs, -1, self.axis)
        return loss, (None if g is None else np.ascontiguousarray(np.moveaxis(g, -1, self.axis)))

    def per_sample(self, y_true, y_pred):
        if self.axis == -1:
            return super().per_sample(y_true, y_pred)
        y_pred = data_mod.as_float_input(y_pred, f"{self.name}: y_pred")
        y_true = data_mod.as_float_input(y_true, f"{self.name}: y_true")
        return super().per_sample(np.ascontiguousarray(self._moved(y_true)),
                                  np.ascontiguousarray(self._moved(y_pred)))

    def get_config(self):
        config = super().get_config()
        if "axis" in inspect.signature(type(self).__init__).parameters:
            config["axis"] = self.axis
        return config


# ---- crossentropies ---------------------------------------------------------------------------

def _xent_rows(softmax_kernel, kernel, pred, true, from_logits, row_w, row_losses, grad, probs):
    """The rows of a categorical crossentropy: from logits ``softmax_kernel`` (which also writes
    the softmax into ``probs``), from probabilities ``kernel``."""
    if from_logits:
        probs = np.empty_like(pred) if probs is None else probs
        return softmax_kernel(pred, true, probs, grad, row_weights=row_w, row_losses=row_losses)
    return kernel(pred, true, grad, row_weights=row_w, row_losses=row_losses)


class CategoricalCrossentropy(_AxisLoss):
    """Crossentropy between one-hot (or soft) targets and predicted class probabilities, or
    logits with ``from_logits=True``. ``label_smoothing`` mixes the targets with the uniform
    distribution: ``y * (1 - ls) + ls / classes``."""

    default_name = "categorical_crossentropy"
    logit_activation = "softmax"
    _logits_from = ("softmax", "sigmoid")

    def __init__(self, from_logits: bool = False, label_smoothing: float = 0.0, axis: int = -1,
                 reduction: str = "sum_over_batch_size", name: Optional[str] = None, dtype=None):
        super().__init__(axis=axis, name=name, reduction=reduction, dtype=dtype)
        self.from_logits = bool(from_logits)
        self.label_smoothing = _number(label_smoothing, "label_smoothing", 0.0, 1.0)

    def _targets_2d(self, y_true, rows, cols):
        t = as_f32(np.asarray(y_true)).reshape(rows, cols)
        if self.label_smoothing:
            t = as_f32(t * np.float32(1.0 - self.label_smoothing) +
                       np.float32(self.label_smoothing / cols))
        return t

    def _rows(self, pred, true, from_logits, row_w, row_losses, grad, probs):
        return _xent_rows(_C.softmax_xent, _C.xent, pred, true, from_logits, row_w, row_losses,
                          grad, probs)

    def get_config(self):
        return {**super().get_config(), "from_logits": self.from_logits,
                "label_smoothing": self.label_smoothing}


class SparseCategoricalCrossentropy(Loss):
    """Crossentropy between integer class labels (shape of y_pred without its last axis, or
    with a last axis of 1) and predicted class probabilities (or logits). Labels equal to
    ``ignore_class`` count for nothing, and the mean is over the others (Keras' mask)."""

    default_name = "sparse_categorical_crossentropy"
    logit_activation = "softmax"
    _logits_from = ("softmax", "sigmoid")

    def __init__(self, from_logits: bool = False, ignore_class: Optional[int] = None,
                 reduction: str = "sum_over_batch_size", name: Optional[str] = None, dtype=None):
        super().__init__(name=name, reduction=reduction, dtype=dtype)
        self.from_logits = bool(from_logits)
        if ignore_class is not None and (isinstance(ignore_class, bool) or
                                         not isinstance(ignore_class, (int, np.integer))):
            raise TypeError(f"Expected an int or None. Received: ignore_class={ignore_class!r}")
        self.ignore_class = None if ignore_class is None else int(ignore_class)

    def prepare_targets(self, y, out_shape, where):
        out_shape = tuple(out_shape)
        if len(out_shape) < 2:
            raise ValueError(f"{where}: the loss '{self.name}' expects the model to output "
                             "class scores along the last axis, shape (None, classes)")
        classes = int(out_shape[-1])
        if len(out_shape) == 2:
            if self.ignore_class is None:
                return data_mod.sparse_labels(y, classes, where)
        y = data_mod.as_array(y, where)
        lead = out_shape[1:-1]
        if y.ndim == len(out_shape) and y.shape[-1] == 1:
            y = y[..., 0]
        if y.ndim != len(out_shape) - 1 or tuple(y.shape[1:]) != tuple(lead):
            want = "(" + ", ".join(["N"] + [str(d) for d in lead]) + ")"
            raise ValueError(f"{where}: expected class indices of shape {want} (or with a last "
                             f"axis of 1) for an output of shape (None, "
                             f"{', '.join(str(d) for d in out_shape[1:])}), got shape {y.shape}")
        flat = y.reshape(-1)
        if self.ignore_class is not None:
            ignored = flat == self.ignore_class
            flat = np.where(ignored, 0, flat)
        labels = data_mod.sparse_labels(flat, classes, where)
        if self.ignore_class is not None:
            labels = np.where(ignored, -1, labels)   # -1 marks an ignored label
        return np.ascontiguousarray(labels.reshape(y.shape), dtype=np.int64)

    def _targets_2d(self, y_true, rows, cols):
        labels = y_true if type(y_true) is np.ndarray and y_true.dtype == np.int64 and \
            y_true.flags.c_contiguous and y_true.flags.aligned else \
            np.require(np.asarray(y_true), dtype=np.int64, requirements=["C", "A"])
        labels = labels.reshape(rows)
        if self.ignore_class is not None:
            labels = np.where(labels < 0, 0, labels)
        return np.ascontiguousarray(labels)

    def _valid_rows(self, y_true, rows):
        if self.ignore_class is None:
            return None
        return (np.asarray(y_true).reshape(rows) >= 0).astype(np.float32)

    def per_sample(self, y_true, y_pred):
        values = super().per_sample(y_true, y_pred)
        if self.ignore_class is not None:
            y = self.prepare_targets(y_true, (None,) + np.shape(y_pred)[1:], self.name)
            values = values * (y >= 0).reshape(values.shape)
        return values

    def _rows(self, pred, true, from_logits, row_w, row_losses, grad, probs):
        return _xent_rows(_C.softmax_xent_sparse, _C.xent_sparse, pred, true, from_logits, row_w,
                          row_losses, grad, probs)

    def get_config(self):
        return {**super().get_config(), "from_logits": self.from_logits,
                "ignore_class": self.ignore_class}


class _ElementwiseLoss(_AxisLoss):
    """A loss whose row value is the mean over the row of an elementwise function (C kind)."""

    kind = ""

    def _kind(self, from_logits: bool) -> str:
        return self.kind

    def _params(self) -> dict:
        return {}

    def _rows(self, pred, true, from_logits, row_w, row_losses, grad, probs):
        kind = self._kind(from_logits)
        if not kind.endswith("_logits"):
            probs = None
        return _C.loss_rows(kind, pred, true, grad, row_weights=row_w, row_losses=row_losses,
                            probs=probs, **self._params())


class BinaryCrossentropy(_ElementwiseLoss):
    """Crossentropy of 0/1 (or soft) targets, mean over the last axis; ``from_logits=True``
    uses the stable ``max(x, 0) - x y + log(1 + exp(-|x|))``. ``label_smoothing`` squeezes the
    targets towards 0.5."""

    default_name = "binary_crossentropy"
    logit_activation = "sigmoid"
    _logits_from = ("softmax", "sigmoid")
    _op_type = "Sigmoid"

    def __init__(self, from_logits: bool = False, label_smoothing: float = 0.0, axis: int = -1,
                 reduction: str = "sum_over_batch_size", name: Optional[str] = None, dtype=None):
        super().__init__(axis=axis, name=name, reduction=reduction, dtype=dtype)
        self.from_logits = bool(from_logits)
        self.label_smoothing = _number(label_smoothing, "label_smoothing", 0.0, 1.0)

    def _kind(self, from_logits):
        return "bce_logits" if from_logits else "bce"

    def _targets_2d(self, y_true, rows, cols):
        t = as_f32(np.asarray(y_true)).reshape(rows, cols)
        if self.label_smoothing:
            ls = self.label_smoothing
            t = as_f32(t * np.float32(1.0 - ls) + np.float32(0.5 * ls))
        return t

    def get_config(self):
        return {**super().get_config(), "from_logits": self.from_logits,
                "label_smoothing": self.label_smoothing}


class BinaryFocalCrossentropy(BinaryCrossentropy):
    """Binary crossentropy times the focal factor ``(1 - p_t) ** gamma`` (Lin et al.), with
    ``alpha`` class balancing when ``apply_class_balancing``."""

    default_name = "binary_focal_crossentropy"
    # tf.keras takes the bce part from the logits but the focal factor from the output itself:
    # only after a sigmoid are the two the same computation
    _logits_from = ("sigmoid",)

    def __init__(self, apply_class_balancing: bool = False, alpha: float = 0.25,
                 gamma: float = 2.0, from_logits: bool = False, label_smoothing: float = 0.0,
                 axis: int = -1, reduction: str = "sum_over_batch_size",
                 name: Optional[str] = None, dtype=None):
        super().__init__(from_logits=from_logits, label_smoothing=label_smoothing, axis=axis,
                         reduction=reduction, name=name, dtype=dtype)
        self.apply_class_balancing = bool(apply_class_balancing)
        self.alpha = _number(alpha, "alpha")
        self.gamma = _number(gamma, "gamma", 0.0)

    def _kind(self, from_logits):
        return "focal_logits" if from_logits else "focal"

    def _params(self):
        return {"alpha": self.alpha, "gamma": self.gamma, "balance": self.apply_class_balancing}

    def get_config(self):
        return {**super().get_config(), "apply_class_balancing": self.apply_class_balancing,
                "alpha": self.alpha, "gamma": self.gamma}


class MeanSquaredError(_ElementwiseLoss):
    """``mean((y_true - y_pred) ** 2)`` over the last axis."""
    default_name = "mean_squared_error"
    kind = "mse"

    def __init__(self, reduction: str = "sum_over_batch_size", name: Optional[str] = None,
                 dtype=None):
        super().__init__(name=name, reduction=reduction, dtype=dtype)


def _kind_loss(name: str, default_name: str, kind: str, doc: str,
               base: Optional[type] = None) -> type:
    """The class ``name``: ``base`` (``MeanSquaredError``: same signature and config) with
    another Keras name and C ``kind`` (the row value ``_C.loss_rows(kind, ...)``)."""
    return type(name, (base or MeanSquaredError,),
                {"__doc__": doc, "__module__": __name__, "__qualname__": name,
                 "default_name": default_name, "kind": kind})


MeanAbsoluteError = _kind_loss("MeanAbsoluteError", "mean_absolute_error", "mae",
                               """``mean(|y_true - y_pred|)`` over the last axis.""")
MeanAbsolutePercentageError = _kind_loss(
    "MeanAbsolutePercentageError", "mean_absolute_percentage_error", "mape",
    """``100 * mean(|y_true - y_pred| / max(|y_true|, 1e-7))`` over the last axis.""")
MeanSquaredLogarithmicError = _kind_loss(
    "MeanSquaredLogarithmicError", "mean_squared_logarithmic_error", "msle",
    """``mean((log(max(y_pred, eps) + 1) - log(max(y_true, eps) + 1)) ** 2)``.""")
LogCosh = _kind_loss(
    "LogCosh", "log_cosh", "logcosh",
    """``mean(log(cosh(y_pred - y_true)))`` over the last axis (computed stably).""")
Poisson = _kind_loss("Poisson", "poisson", "poisson",
                     """``mean(y_pred - y_true * log(y_pred + 1e-7))`` over the last axis.""")
KLDivergence = _kind_loss(
    "KLDivergence", "kl_divergence", "kld",
    """``sum(y_true * log(y_true / y_pred))`` over the last axis, both clipped to [1e-7, 1].""")
CategoricalHinge = _kind_loss(
    "CategoricalHinge", "categorical_hinge", "categorical_hinge",
    """``max(max((1 - y_true) * y_pred) - sum(y_true * y_pred) + 1, 0)`` per row.""")


def _plus_minus_one(t: np.ndarray) -> np.ndarray:
    """Keras' hinge labels: a batch of only 0s and 1s becomes -1/1."""
    if np.all((t == 0) | (t == 1)):
        return as_f32(2.0 * t - 1.0)
    return t


class Hinge(MeanSquaredError):
    """``mean(max(1 - y_true * y_pred, 0))``; labels 0/1 are converted to -1/1."""
    default_name = "hinge"
    kind = "hinge"

    def _targets_2d(self, y_true, rows, cols):
        return _plus_minus_one(super()._targets_2d(y_true, rows, cols))


SquaredHinge = _kind_loss(
    "SquaredHinge", "squared_hinge", "squared_hinge",
    """``mean(max(1 - y_true * y_pred, 0) ** 2)``; labels 0/1 are converted to -1/1.""", Hinge)


class Huber(_ElementwiseLoss):
    """``0.5 e**2`` where ``|e| <= delta``, else ``delta * |e| - 0.5 * delta**2`` (e = y_pred -
    y_true), mean over the last axis."""

    default_name = "huber_loss"
    kind = "huber"

    def __init__(self, delta: float = 1.0, reduction: str = "sum_over_batch_size",
                 name: Optional[str] = None, dtype=None):
        super().__init__(name=name, reduction=reduction, dtype=dtype)
        self.delta = _number(delta, "delta", 0.0)

    def _params(self):
        return {"delta": self.delta}

    def get_config(self):
        return {**super().get_config(), "delta": self.delta}


class CosineSimilarity(_ElementwiseLoss):
    """``-sum(l2_normalize(y_true) * l2_normalize(y_pred))`` along ``axis``: -1 for parallel
    vectors, 0 for orthogonal ones."""

    default_name = "cosine_similarity"
    kind = "cosine"

    def __init__(self, axis: int = -1, reduction: str = "sum_over_batch_size",
                 name: Optional[str] = None, dtype=None):
        super().__init__(axis=axis, name=name, reduction=reduction, dtype=dtype)
