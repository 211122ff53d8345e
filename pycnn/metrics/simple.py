"""Mean-of-per-sample-values metrics: every accuracy, the regression errors and the loss-named
metrics (Keras' MeanMetricWrapper subclasses)."""
from __future__ import annotations

import numpy as np

from .. import losses as losses_mod
from .base import MeanMetricWrapper, Mean, _f32, to_result


def _pred(y_pred) -> np.ndarray:
    y = np.asarray(y_pred)
    if y.dtype.kind not in "biuf":
        raise TypeError(f"y_pred must be numeric, got dtype {y.dtype}")
    return y


def _match(y_true, y_pred: np.ndarray) -> np.ndarray:
    """y_true reshaped to y_pred's shape when only a trailing axis of 1 differs."""
    t = np.asarray(y_true)
    if t.shape != y_pred.shape and t.size == y_pred.size:
        t = t.reshape(y_pred.shape)
    return t


# ---- accuracies (per-sample values) ------------------------------------------------------------

def accuracy(y_true, y_pred) -> np.ndarray:
    y_pred = _pred(y_pred)
    return (_match(y_true, y_pred) == y_pred).astype(np.float32)


def binary_accuracy(y_true, y_pred, threshold: float = 0.5) -> np.ndarray:
    y_pred = _pred(y_pred)
    if y_pred.ndim == 1:
        y_pred = y_pred.reshape(-1, 1)
    t = _f32(_match(y_true, y_pred))
    hit = t == (y_pred > threshold).astype(np.float32)
    return hit.mean(axis=-1, dtype=np.float32)


def categorical_accuracy(y_true, y_pred) -> np.ndarray:
    y_pred = _pred(y_pred)
    t = np.asarray(y_true)
    return (np.argmax(t, axis=-1) == np.argmax(y_pred, axis=-1)).astype(np.float32)


def _sparse_true(y_true, y_pred: np.ndarray) -> np.ndarray:
    t = np.asarray(y_true)
    if t.ndim == y_pred.ndim and t.shape[-1] == 1:
        t = t[..., 0]
    return t


def sparse_categorical_accuracy(y_true, y_pred) -> np.ndarray:
    y_pred = _pred(y_pred)
    t = _sparse_true(y_true, y_pred)
    return (np.argmax(y_pred, axis=-1).reshape(t.shape) == t).astype(np.float32)


def _in_top_k(pred: np.ndarray, target: np.ndarray, k: int) -> np.ndarray:
    """TensorFlow's in_top_k: the target is in the top k unless k classes score higher (ties at
    the boundary count as in)."""
    pred = pred.reshape(-1, pred.shape[-1])
    target = target.reshape(-1).astype(np.int64)
    t_val = pred[np.arange(len(pred)), target]
    higher = (pred > t_val[:, None]).sum(axis=-1)
    return ((higher < k) & np.isfinite(t_val)).astype(np.float32)


def top_k_categorical_accuracy(y_true, y_pred, k: int = 5) -> np.ndarray:
    y_pred = _pred(y_pred)
    t = np.argmax(np.asarray(y_true), axis=-1)
    return _in_top_k(y_pred, t, k).reshape(t.shape)


def sparse_top_k_categorical_accuracy(y_true, y_pred, k: int = 5) -> np.ndarray:
    y_pred = _pred(y_pred)
    t = _sparse_true(y_true, y_pred)
    return _in_top_k(y_pred, t, k).reshape(t.shape)


class Accuracy(MeanMetricWrapper):
    """How often predictions equal labels exactly."""
    default_name = "accuracy"

    def __init__(self, name="accuracy", dtype=None):
        super().__init__(accuracy, name=name, dtype=dtype)


class BinaryAccuracy(MeanMetricWrapper):
    """How often ``y_pred > threshold`` equals the 0/1 label."""
    default_name = "binary_accuracy"

    def __init__(self, name="binary_accuracy", dtype=None, threshold: float = 0.5):
        super().__init__(binary_accuracy, name=name, dtype=dtype, threshold=float(threshold))
        self.threshold = float(threshold)


class CategoricalAccuracy(MeanMetricWrapper):
    """How often the arg max of the prediction is the arg max of the one-hot label."""
    default_name = "categorical_accuracy"

    def __init__(self, name="categorical_accuracy", dtype=None):
        super().__init__(categorical_accuracy, name=name, dtype=dtype)


class SparseCategoricalAccuracy(MeanMetricWrapper):
    """How often the arg max of the prediction is the integer label."""
    default_name = "sparse_categorical_accuracy"

    def __init__(self, name="sparse_categorical_accuracy", dtype=None):
        super().__init__(sparse_categorical_accuracy, name=name, dtype=dtype)

    def update_state(self, y_true, y_pred, sample_weight=None) -> None:
        if sample_weight is None and type(y_pred) is np.ndarray and \
                type(y_true) is np.ndarray and y_pred.ndim == 2 and y_true.ndim == 1 and \
                y_pred.dtype.kind == "f" and y_true.dtype.kind in "iuf" and \
                len(y_true) == len(y_pred) and self._fn is sparse_categorical_accuracy:
            # fit's case, (batch, classes) against (batch,) labels: the hits counted (the sum
            # of the 0/1 values the general case adds up, exactly)
            hits = np.count_nonzero(y_pred.argmax(axis=-1) == y_true)
            self._add(hits, len(y_true))
            return
        super().update_state(y_true, y_pred, sample_weight=sample_weight)


class TopKCategoricalAccuracy(MeanMetricWrapper):
    """How often the one-hot label's class is among the k highest predictions."""
    default_name = "top_k_categorical_accuracy"

    def __init__(self, k: int = 5, name="top_k_categorical_accuracy", dtype=None):
        super().__init__(top_k_categorical_accuracy, name=name, dtype=dtype, k=int(k))
        self.k = int(k)


class SparseTopKCategoricalAccuracy(MeanMetricWrapper):
    """How often the integer label is among the k highest predictions."""
    default_name = "sparse_top_k_categorical_accuracy"

    def __init__(self, k: int = 5, name="sparse_top_k_categorical_accuracy", dtype=None):
        super().__init__(sparse_top_k_categorical_accuracy, name=name, dtype=dtype, k=int(k))
        self.k = int(k)


# ---- regression errors and loss-named metrics ---------------------------------------------------

def _loss_fn(name: str):
    """The pycnn.losses function ``name`` taking any y_true/y_pred (1-D as one column); looked
    up at call time (pycnn.losses imports the models package, which imports this module)."""
    def per_sample(y_true, y_pred, **kwargs):
        y_pred = np.asarray(y_pred)
        if y_pred.ndim == 1:
            y_pred = y_pred.reshape(-1, 1)
        return getattr(losses_mod, name)(y_true, y_pred, **kwargs)
    per_sample.__name__ = name
    return per_sample


def _wrapper(cls_name: str, fn, default: str, doc: str, kwargs=()):
    """A MeanMetricWrapper subclass for ``fn`` named ``default`` with keyword options."""
    kwargs = dict(kwargs)

    def __init__(self, name=default, dtype=None, **kw):
        unknown = set(kw) - set(kwargs)
        if unknown:
            raise TypeError(f"{cls_name}() got unexpected keyword arguments {sorted(unknown)}")
        opts = {**kwargs, **kw}
        MeanMetricWrapper.__init__(self, fn, name=name, dtype=dtype, **opts)
        for key, value in opts.items():
            setattr(self, key, value)

    return type(cls_name, (MeanMetricWrapper,), {"__init__": __init__, "__doc__": doc,
                                                 "default_name": default})


mean_squared_error = _loss_fn("mean_squared_error")
mean_absolute_error = _loss_fn("mean_absolute_error")
mean_absolute_percentage_error = _loss_fn("mean_absolute_percentage_error")
mean_squared_logarithmic_error = _loss_fn("mean_squared_logarithmic_error")
binary_crossentropy = _loss_fn("binary_crossentropy")
categorical_crossentropy = _loss_fn("categorical_crossentropy")
sparse_categorical_crossentropy = _loss_fn("sparse_categorical_crossentropy")
kl_divergence = _loss_fn("kl_divergence")
poisson = _loss_fn("poisson")
hinge = _loss_fn("hinge")
squared_hinge = _loss_fn("squared_hinge")
categorical_hinge = _loss_fn("categorical_hinge")
log_cosh = _loss_fn("log_cosh")
binary_focal_crossentropy = _loss_fn("binary_focal_crossentropy")
huber = _loss_fn("huber")


def cosine_similarity(y_true, y_pred, axis: int = -1) -> np.ndarray:
    """The cosine of the angle between each pair of rows (the loss's negative)."""
    return -_loss_fn("cosine_similarity")(y_true, y_pred, axis=axis)


MeanSquaredError = _wrapper("MeanSquaredError", mean_squared_error, "mean_squared_error",
                            "Mean of the squared errors.")
MeanAbsoluteError = _wrapper("MeanAbsoluteError", mean_absolute_error, "mean_absolute_error",
                             "Mean of the absolute errors.")
MeanAbsolutePercentageError = _wrapper(
    "MeanAbsolutePercentageError", mean_absolute_percentage_error,
    "mean_absolute_percentage_error", "Mean absolute percentage error.")
MeanSquaredLogarithmicError = _wrapper(
    "MeanSquaredLogarithmicError", mean_squared_logarithmic_error,
    "mean_squared_logarithmic_error", "Mean squared logarithmic error.")
BinaryCrossentropy = _wrapper("BinaryCrossentropy", binary_crossentropy, "binary_crossentropy",
                              "Mean binary crossentropy.",
                              {"from_logits": False, "label_smoothing": 0.0})
CategoricalCrossentropy = _wrapper("CategoricalCrossentropy", categorical_crossentropy,
                                   "categorical_crossentropy", "Mean categorical crossentropy.",
                                   {"from_logits": False, "label_smoothing": 0.0, "axis": -1})
SparseCategoricalCrossentropy = _wrapper(
    "SparseCategoricalCrossentropy", sparse_categorical_crossentropy,
    "sparse_categorical_crossentropy", "Mean sparse categorical crossentropy.",
    {"from_logits": False, "ignore_class": None})
KLDivergence = _wrapper("KLDivergence", kl_divergence, "kullback_leibler_divergence",
                        "Mean Kullback-Leibler divergence.")
Poisson = _wrapper("Poisson", poisson, "poisson", "Mean Poisson loss.")
Hinge = _wrapper("Hinge", hinge, "hinge", "Mean hinge loss.")
SquaredHinge = _wrapper("SquaredHinge", squared_hinge, "squared_hinge", "Mean squared hinge.")
CategoricalHinge = _wrapper("CategoricalHinge", categorical_hinge, "categorical_hinge",
                            "Mean categorical hinge.")
LogCoshError = _wrapper("LogCoshError", log_cosh, "logcosh", "Mean log-cosh error.")
CosineSimilarity = _wrapper("CosineSimilarity", cosine_similarity, "cosine_similarity",
                            "Mean cosine similarity of rows.", {"axis": -1})


class RootMeanSquaredError(Mean):
    """``sqrt(mean((y_pred - y_true) ** 2))`` over every value seen."""
    default_name = "root_mean_squared_error"

    def __init__(self, name="root_mean_squared_error", dtype=None):
        super().__init__(name=name, dtype=dtype)

    def update_state(self, y_true, y_pred, sample_weight=None) -> None:
        y_pred = _f32(_pred(y_pred))
        t = _f32(_match(y_true, y_pred))
        super().update_state((y_pred - t) ** 2, sample_weight=sample_weight)

    def result(self):
        count = self.count.value
        return to_result(np.sqrt(self.total.value / count) if count else np.float32(0.0))
