"""Confusion-count metrics as Keras computes them: TruePositives ... FalseNegatives,
Precision, Recall, AUC (ROC and PR) over thresholds (the counting in C, ``_C.confusion_thresholds``),
F1Score/FBetaScore, and the IoU family over a confusion matrix (``_C.confusion_matrix``)."""
from __future__ import annotations

from typing import Optional, Sequence

import numpy as np

from .. import _C
from .base import Metric, _f32, broadcast_weights, to_result

EPSILON = 1e-7
NEG_INF = -1e10


def _evenly(thresholds: np.ndarray) -> bool:
    """Keras' is_evenly_distributed_thresholds."""
    n = len(thresholds)
    if n < 3:
        return False
    even = np.arange(n, dtype=np.float32) / (n - 1)
    return bool(np.allclose(thresholds, even, atol=EPSILON))


def _thresholds_arg(thresholds, default: float) -> list:
    if thresholds is None:
        return [default]
    values = list(thresholds) if isinstance(thresholds, (list, tuple, np.ndarray)) else [thresholds]
    for t in values:
        if isinstance(t, bool) or not isinstance(t, (int, float, np.integer, np.floating)) or \
                not (0 <= float(t) <= 1) and float(t) != NEG_INF:
            raise ValueError(f"Threshold values must be in [0, 1]. Received: {thresholds!r}")
    return [float(t) for t in values]


def _filter_top_k(pred: np.ndarray, k: int) -> np.ndarray:
    """Keras' _filter_top_k: values outside the k largest of the last axis become -1e10 (ties
    broken by position, as tf.math.top_k)."""
    order = np.argsort(-pred, axis=-1, kind="stable")[..., :k]
    keep = np.zeros(pred.shape, bool)
    np.put_along_axis(keep, order, True, axis=-1)
    return np.where(keep, pred, np.float32(NEG_INF)).astype(np.float32)


def confusion_counts(y_true, y_pred, sample_weight, thresholds: np.ndarray, *, evenly: bool,
                     with_epsilon: bool, multi_label: bool = False, top_k=None, class_id=None,
                     label_weights=None, where: str = "metric") -> np.ndarray:
    """(4, L, T) float64: tp, fp, tn, fn of one batch (L = 1 unless multi_label)."""
    pred = _f32(y_pred)
    if pred.ndim == 0:
        pred = pred.reshape(1)
    t = _f32(y_true)
    if t.shape != pred.shape:
        if t.size != pred.size:
            raise ValueError(f"{where}: y_true of shape {t.shape} does not match y_pred of "
                             f"shape {pred.shape}")
        t = t.reshape(pred.shape)
    w = None if sample_weight is None else _f32(broadcast_weights(sample_weight, pred.shape,
                                                                  where))
    if top_k is not None:
        pred = _filter_top_k(pred, top_k)
    if class_id is not None:
        pred, t = pred[..., class_id:class_id + 1], t[..., class_id:class_id + 1]
        w = None if w is None else w[..., class_id:class_id + 1]
    if label_weights is not None and not multi_label:
        lw = np.broadcast_to(_f32(label_weights), pred.shape)
        w = lw if w is None else w * lw
    if multi_label:
        labels = pred.shape[-1] if pred.ndim > 1 else 1
        shape = (-1, labels)
    else:
        shape = (-1, 1)
    pred = np.ascontiguousarray(pred.reshape(shape))
    t = np.ascontiguousarray(t.reshape(shape))
    w = None if w is None else np.ascontiguousarray(w.reshape(shape), dtype=np.float32)
    counts = np.empty((4, pred.shape[1], len(thresholds)), np.float64)
    _C.confusion_thresholds(pred, t, w, np.ascontiguousarray(thresholds, np.float32), counts,
                            evenly=evenly, with_epsilon=with_epsilon)
    return counts


class _ThresholdMetric(Metric):
    """Counts over ``thresholds`` (a float or a list; default 0.5)."""

    _counts = ("tp", "fp", "tn", "fn")

    def __init__(self, thresholds=None, top_k: Optional[int] = None,
                 class_id: Optional[int] = None, name=None, dtype=None):
        super().__init__(name=name, dtype=dtype)
        self.init_thresholds = thresholds
        self.top_k = None if top_k is None else int(top_k)
        self.class_id = None if class_id is None else int(class_id)
        default = 0.5 if top_k is None else NEG_INF
        self.thresholds = _thresholds_arg(thresholds, default)
        self._thr = np.array(self.thresholds, np.float32)
        self._evenly = _evenly(self._thr)
        n = len(self.thresholds)
        names = {"tp": "true_positives", "fp": "false_positives", "tn": "true_negatives",
                 "fn": "false_negatives"}
        self._vars = {k: self.add_weight(names[k], shape=(n,)) for k in self._counts}

    def update_state(self, y_true, y_pred, sample_weight=None) -> None:
        c = confusion_counts(y_true, y_pred, sample_weight, self._thr, evenly=self._evenly,
                             with_epsilon=False, top_k=self.top_k, class_id=self.class_id,
                             where=self.name)
        for i, key in enumerate(("tp", "fp", "tn", "fn")):
            if key in self._vars:
                self._vars[key].assign_add(np.float32(c[i, 0]))

    def _single(self, value):
        """One threshold gives a float (tf.keras: also for thresholds=[t]), more an array."""
        value = _f32(value)
        return to_result(value[0] if len(self.thresholds) == 1 else value)

    def get_config(self):
        return {**super().get_config(), "thresholds": self.init_thresholds}


def _counter(cls_name: str, key: str, default: str):
    class _Count(_ThresholdMetric):
        _counts = (key,)
        default_name = default

        def __init__(self, thresholds=None, name=None, dtype=None):
            super().__init__(thresholds=thresholds, name=name, dtype=dtype)

        def result(self):
            return self._single(self._vars[key].value)

    _Count.__name__ = _Count.__qualname__ = cls_name
    _Count.__doc__ = f"The weighted count of {default.replace('_', ' ')} at each threshold."
    return _Count


TruePositives = _counter("TruePositives", "tp", "true_positives")
FalsePositives = _counter("FalsePositives", "fp", "false_positives")
TrueNegatives = _counter("TrueNegatives", "tn", "true_negatives")
FalseNegatives = _counter("FalseNegatives", "fn", "false_negatives")


def _div(a, b):
    """tf.math.divide_no_nan in float32."""
    a, b = _f32(a), _f32(b)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(b == 0, np.float32(0), a / np.where(b == 0, np.float32(1), b))


class Precision(_ThresholdMetric):
    """tp / (tp + fp) at each threshold (``top_k``: only the k highest scores of a row count as
    predicted; ``class_id``: one column)."""
    default_name = "precision"
    _counts = ("tp", "fp")

    def __init__(self, thresholds=None, top_k=None, class_id=None, name=None, dtype=None):
        super().__init__(thresholds, top_k, class_id, name, dtype)

    def result(self):
        return self._single(_div(self._vars["tp"].value,
                                 self._vars["tp"].value + self._vars["fp"].value))

    def get_config(self):
        return {**super().get_config(), "top_k": self.top_k, "class_id": self.class_id}


class Recall(Precision):
    """tp / (tp + fn) at each threshold."""
    default_name = "recall"
    _counts = ("tp", "fn")

    def result(self):
        return self._single(_div(self._vars["tp"].value,
                                 self._vars["tp"].value + self._vars["fn"].value))


class AUC(Metric):
    """Area under the ROC or PR curve from confusion counts at ``num_thresholds`` thresholds
    (0 - 1e-7, i/(n-1)..., 1 + 1e-7) or the given ``thresholds``; Riemann sums by
    ``summation_method`` ("interpolation": trapezoids for ROC, Davis & Goadrich's interpolation
    for PR; "minoring"; "majoring"). ``multi_label`` gives one curve per column, averaged (or
    weighted by ``label_weights``)."""

    default_name = "auc"

    def __init__(self, num_thresholds: int = 200, curve: str = "ROC",
                 summation_method: str = "interpolation", name=None, dtype=None,
                 thresholds: Optional[Sequence[float]] = None, multi_label: bool = False,
                 num_labels: Optional[int] = None, label_weights=None,
                 from_logits: bool = False):
        super().__init__(name=name, dtype=dtype)
        curve = curve.upper() if isinstance(curve, str) else curve
        if curve not in ("ROC", "PR"):
            raise ValueError(f'Invalid AUC curve value: "{curve}". Expected values are '
                             "['ROC', 'PR']")
        summation_method = summation_method.lower() if isinstance(summation_method, str) else \
            summation_method
        if summation_method not in ("interpolation", "minoring", "majoring"):
            raise ValueError(f'Invalid AUC summation method value: "{summation_method}". '
                             "Expected values are ['interpolation', 'majoring', 'minoring']")
        self.curve, self.summation_method = curve, summation_method
        if thresholds is not None:
            thr = sorted(float(t) for t in _thresholds_arg(list(thresholds), 0.5))
            self.num_thresholds = len(thr) + 2
            self._evenly = _evenly(np.array([0.0] + thr + [1.0], np.float32))
        else:
            if isinstance(num_thresholds, bool) or not isinstance(num_thresholds, (int, np.integer)) \
                    or num_thresholds <= 1:
                raise ValueError("Argument `num_thresholds` must be an integer > 1. Received: "
                                 f"num_thresholds={num_thresholds!r}")
            self.num_thresholds = int(num_thresholds)
            thr = [(i + 1) / (self.num_thresholds - 1) for i in range(self.num_thresholds - 2)]
            self._evenly = True
        self._thr = np.array([0.0 - EPSILON] + thr + [1.0 + EPSILON], np.float32)
        self._init_from_thresholds = thresholds is not None
        self.multi_label = bool(multi_label)
        self.num_labels = num_labels
        self.label_weights = None if label_weights is None else _f32(label_weights)
        if self.label_weights is not None and np.any(self.label_weights < 0):
            raise ValueError("All values of `label_weights` must be non-negative.")
        self.from_logits = bool(from_logits)
        self._built = False
        if not self.multi_label or num_labels:
            self._build(num_labels if self.multi_label else None)

    @property
    def thresholds(self) -> list:
        return [float(t) for t in self._thr]

    def _build(self, labels: Optional[int]) -> None:
        shape = (self.num_thresholds,) if labels is None else (self.num_thresholds, labels)
        self.true_positives = self.add_weight("true_positives", shape=shape)
        self.false_positives = self.add_weight("false_positives", shape=shape)
        self.true_negatives = self.add_weight("true_negatives", shape=shape)
        self.false_negatives = self.add_weight("false_negatives", shape=shape)
        self._built = True

    def update_state(self, y_true, y_pred, sample_weight=None) -> None:
        pred = _f32(y_pred)
        if self.from_logits:
            pred = _f32(1.0 / (1.0 + np.exp(-pred.astype(np.float64))))
        if self.multi_label and not self._built:
            if pred.ndim != 2:
                raise ValueError(f"{self.name}: multi_label AUC expects y_pred of shape "
                                 f"(N, labels), got {pred.shape}")
            self._build(pred.shape[-1])
        c = confusion_counts(y_true, pred, sample_weight, self._thr, evenly=self._evenly,
                             with_epsilon=True, multi_label=self.multi_label,
                             label_weights=None if self.multi_label else self.label_weights,
                             where=self.name)
        vars_ = (self.true_positives, self.false_positives, self.true_negatives,
                 self.false_negatives)
        for i, v in enumerate(vars_):
            v.assign_add(np.float32(c[i].T if self.multi_label else c[i, 0]))

    def _by_label(self, per_threshold: np.ndarray):
        if not self.multi_label:
            return to_result(np.sum(per_threshold, dtype=np.float32))
        by_label = np.sum(per_threshold, axis=0, dtype=np.float32)
        if self.label_weights is None:
            return to_result(np.mean(by_label, dtype=np.float32))
        return to_result(_div(np.sum(by_label * self.label_weights, dtype=np.float32),
                              np.sum(self.label_weights, dtype=np.float32)))

    def _interpolate_pr_auc(self):
        tp, fp, fn = (self.true_positives.value, self.false_positives.value,
                      self.false_negatives.value)
        n = self.num_thresholds
        dtp = tp[:n - 1] - tp[1:]
        p = tp + fp
        dp = p[:n - 1] - p[1:]
        slope = _div(dtp, np.maximum(dp, 0))
        intercept = tp[1:] - slope * p[1:]
        ratio = np.where((p[:n - 1] > 0) & (p[1:] > 0), _div(p[:n - 1], np.maximum(p[1:], 0)),
                         np.float32(1))
        with np.errstate(divide="ignore", invalid="ignore"):
            inc = _div(slope * (dtp + intercept * np.log(ratio)), np.maximum(tp[1:] + fn[1:], 0))
        return self._by_label(inc)

    def result(self):
        if not self._built:
            return 0.0
        if self.curve == "PR" and self.summation_method == "interpolation":
            return self._interpolate_pr_auc()
        tp, fp, tn, fn = (self.true_positives.value, self.false_positives.value,
                          self.true_negatives.value, self.false_negatives.value)
        recall = _div(tp, tp + fn)
        if self.curve == "ROC":
            x, y = _div(fp, fp + tn), recall
        else:
            x, y = recall, _div(tp, tp + fp)
        n = self.num_thresholds
        if self.summation_method == "interpolation":
            heights = (y[:n - 1] + y[1:]) / np.float32(2)
        elif self.summation_method == "minoring":
            heights = np.minimum(y[:n - 1], y[1:])
        else:
            heights = np.maximum(y[:n - 1], y[1:])
        return self._by_label((x[:n - 1] - x[1:]) * heights)

    def get_config(self):
        config = {**super().get_config(), "num_thresholds": self.num_thresholds,
                  "curve": self.curve, "summation_method": self.summation_method,
                  "multi_label": self.multi_label, "num_labels": self.num_labels,
                  "label_weights": None if self.label_weights is None
                  else self.label_weights.tolist(), "from_logits": self.from_logits}
        if self._init_from_thresholds:
            config["thresholds"] = self.thresholds[1:-1]
        return config


class FBetaScore(Metric):
    """F-beta per class from thresholded predictions (``threshold=None``: each row's highest
    score is the prediction); ``average`` None (one value per class), "micro", "macro" or
    "weighted" (by each class's weighted label count)."""

    default_name = "fbeta_score"

    def __init__(self, average: Optional[str] = None, beta: float = 1.0,
                 threshold: Optional[float] = None, name=None, dtype=None):
        super().__init__(name=name, dtype=dtype)
        if average not in (None, "micro", "macro", "weighted"):
            raise ValueError("Invalid `average` argument value. Expected one of: "
                             "{None, 'micro', 'macro', 'weighted'}. "
                             f"Received: average={average}")
        if isinstance(beta, bool) or not isinstance(beta, (int, float, np.integer, np.floating)):
            raise ValueError("Invalid `beta` argument value. It should be a Python float. "
                             f"Received: beta={beta} of type '{type(beta)}'")
        if beta <= 0.0:
            raise ValueError("Invalid `beta` argument value. It should be > 0. "
                             f"Received: beta={beta}")
        if threshold is not None:
            if isinstance(threshold, bool) or not isinstance(threshold, (float, np.floating)):
                raise ValueError("Invalid `threshold` argument value. It should be a Python "
                                 f"float. Received: threshold={threshold} of type "
                                 f"'{type(threshold)}'")
            if threshold > 1.0 or threshold <= 0.0:
                raise ValueError("Invalid `threshold` argument value. It should verify "
                                 f"0 < threshold <= 1. Received: threshold={threshold}")
        self.average, self.beta, self.threshold = average, float(beta), threshold
        self._built = False

    def _build(self, classes: int) -> None:
        shape = () if self.average == "micro" else (classes,)
        self.true_positives = self.add_weight("true_positives", shape=shape)
        self.false_positives = self.add_weight("false_positives", shape=shape)
        self.false_negatives = self.add_weight("false_negatives", shape=shape)
        self.intermediate_weights = self.add_weight("intermediate_weights", shape=shape)
        self._built = True

    def update_state(self, y_true, y_pred, sample_weight=None) -> None:
        pred, t = _f32(y_pred), _f32(y_true)
        if pred.ndim != 2 or t.ndim != 2:
            raise ValueError("FBetaScore expects 2D inputs with shape (batch_size, output_dim). "
                             f"Received input shapes: y_pred.shape={pred.shape} and "
                             f"y_true.shape={t.shape}.")
        if not self._built:
            self._build(pred.shape[-1])
        if self.threshold is None:
            top = pred.max(axis=-1, keepdims=True)
            hit = (pred >= top) & (np.abs(pred) > 1e-9)
        else:
            hit = pred > self.threshold
        yp = hit.astype(np.float32)
        axis = None if self.average == "micro" else 0

        def wsum(v):
            if sample_weight is not None:
                v = v * _f32(sample_weight).reshape(-1, 1)
            return np.sum(v, axis=axis, dtype=np.float32)

        self.true_positives.assign_add(wsum(yp * t))
        self.false_positives.assign_add(wsum(yp * (1 - t)))
        self.false_negatives.assign_add(wsum((1 - yp) * t))
        self.intermediate_weights.assign_add(wsum(t))

    def result(self):
        if not self._built:
            return 0.0
        tp, fp, fn = (self.true_positives.value, self.false_positives.value,
                      self.false_negatives.value)
        precision = _div(tp, tp + fp)
        recall = _div(tp, tp + fn)
        b2 = np.float32(self.beta) ** 2
        f = _div(precision * recall, b2 * precision + recall) * (np.float32(1) + b2)
        if self.average == "weighted":
            iw = self.intermediate_weights.value
            f = np.sum(f * _div(iw, np.sum(iw, dtype=np.float32)), dtype=np.float32)
        elif self.average is not None:
            f = np.mean(f, dtype=np.float32)
        return to_result(f)

    def get_config(self):
        return {**super().get_config(), "average": self.average, "beta": self.beta,
                "threshold": self.threshold}


class F1Score(FBetaScore):
    """F-beta with beta = 1: the harmonic mean of precision and recall."""

    default_name = "f1_score"

    def __init__(self, average: Optional[str] = None, threshold: Optional[float] = None,
                 name=None, dtype=None):
        super().__init__(average=average, beta=1.0, threshold=threshold, name=name, dtype=dtype)

    def get_config(self):
        config = super().get_config()
        del config["beta"]
        return config


class IoU(Metric):
    """Intersection over union for the ``target_class_ids`` from a running confusion matrix:
    per class tp / (tp + fp + fn), averaged over the target classes present."""

    default_name = "io_u"

    def __init__(self, num_classes: int, target_class_ids: Sequence[int], name=None, dtype=None,
                 ignore_class: Optional[int] = None, sparse_y_true: bool = True,
                 sparse_y_pred: bool = True, axis: int = -1):
        super().__init__(name=name, dtype=dtype)
        if isinstance(num_classes, bool) or not isinstance(num_classes, (int, np.integer)) or \
                num_classes < 1:
            raise ValueError(f"expected a positive integer. Received: num_classes={num_classes!r}")
        self.num_classes = int(num_classes)
        ids = list(target_class_ids)
        if max(ids, default=0) >= num_classes or min(ids, default=0) < 0:
            raise ValueError(f"Target class id {max(ids)} is out of range, which is "
                             f"[0, {num_classes}).")
        self.target_class_ids = ids
        self.ignore_class = ignore_class
        self.sparse_y_true, self.sparse_y_pred, self.axis = sparse_y_true, sparse_y_pred, axis
        self.total_cm = self.add_weight("total_confusion_matrix",
                                        shape=(self.num_classes, self.num_classes))

    def _classes(self, y_true, y_pred):
        t = np.asarray(y_true)
        p = np.asarray(y_pred)
        if not self.sparse_y_true:
            t = np.argmax(t, axis=self.axis)
        if not self.sparse_y_pred:
            p = np.argmax(p, axis=self.axis)
        return t, p

    def update_state(self, y_true, y_pred, sample_weight=None) -> None:
        t, p = self._classes(y_true, y_pred)
        t = _f32(t).reshape(-1).astype(np.int64)   # tf.cast to float, then to int (truncates)
        p = _f32(p).reshape(-1).astype(np.int64)
        if t.size != p.size:
            raise ValueError(f"{self.name}: y_true has {t.size} values, y_pred {p.size}")
        w = None
        if sample_weight is not None:
            w = _f32(sample_weight)
            w = np.broadcast_to(w.reshape(w.shape + (1,) * (np.ndim(y_true) - w.ndim))
                                if w.ndim < np.ndim(y_true) else w, np.shape(y_true))
            w = np.ascontiguousarray(w, np.float32).reshape(-1)
        if self.ignore_class is not None:
            keep = t != self.ignore_class
            t, p = t[keep], p[keep]
            w = None if w is None else w[keep]
        if t.size == 0:
            return
        cm = np.zeros((self.num_classes, self.num_classes), np.float64)
        _C.confusion_matrix(np.ascontiguousarray(t), np.ascontiguousarray(p),
                            None if w is None else np.ascontiguousarray(w), cm)
        self.total_cm.assign_add(np.float32(cm))

    def result(self):
        cm = self.total_cm.value
        rows, cols = cm.sum(axis=0, dtype=np.float32), cm.sum(axis=1, dtype=np.float32)
        tp = np.diag(cm).astype(np.float32)
        denom = (rows + cols - tp)[self.target_class_ids]
        tp = tp[self.target_class_ids]
        valid = np.sum(denom != 0, dtype=np.float32)
        iou = _div(tp, denom)
        return to_result(_div(np.sum(iou, dtype=np.float32), valid))

    def get_config(self):
        return {**super().get_config(), "num_classes": self.num_classes,
                "target_class_ids": self.target_class_ids, "ignore_class": self.ignore_class,
                "sparse_y_true": self.sparse_y_true, "sparse_y_pred": self.sparse_y_pred,
                "axis": self.axis}


class MeanIoU(IoU):
    """IoU averaged over all ``num_classes`` classes."""

    default_name = "mean_io_u"

    def __init__(self, num_classes: int, name=None, dtype=None, ignore_class=None,
                 sparse_y_true: bool = True, sparse_y_pred: bool = True, axis: int = -1):
        super().__init__(num_classes, list(range(num_classes)), name=name, dtype=dtype,
                         ignore_class=ignore_class, sparse_y_true=sparse_y_true,
                         sparse_y_pred=sparse_y_pred, axis=axis)

    def get_config(self):
        config = super().get_config()
        del config["target_class_ids"]
        return config


class BinaryIoU(IoU):
    """IoU of a binary segmentation: predictions >= ``threshold`` are class 1."""

    default_name = "binary_io_u"

    def __init__(self, target_class_ids: Sequence[int] = (0, 1), threshold: float = 0.5,
                 name=None, dtype=None):
        super().__init__(2, list(target_class_ids), name=name, dtype=dtype)
        self.threshold = float(threshold)

    def update_state(self, y_true, y_pred, sample_weight=None) -> None:
        pred = (_f32(y_pred) >= np.float32(self.threshold)).astype(np.float32)
        super().update_state(y_true, pred, sample_weight)

    def get_config(self):
        return {"name": self.name, "dtype": self.dtype,
                "target_class_ids": self.target_class_ids, "threshold": self.threshold}
