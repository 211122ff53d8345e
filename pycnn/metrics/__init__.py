"""Metrics as ``keras.metrics``: running values over the batches seen, ``update_state(y_true,
y_pred, sample_weight=None)``, ``result()``, ``reset_state()``. ``get(identifier, loss,
output_shape)`` resolves what ``compile(metrics=[...])`` accepts, with Keras' rule for
"accuracy"."""
from __future__ import annotations

from typing import Optional

from .base import Mean, MeanMetricWrapper, Metric, Sum, Variable
from .confusion import (AUC, F1Score, FalseNegatives, FalsePositives, FBetaScore, BinaryIoU,
                        IoU, MeanIoU, Precision, Recall, TrueNegatives, TruePositives)
from .simple import (Accuracy, BinaryAccuracy, BinaryCrossentropy, CategoricalAccuracy,
                     CategoricalCrossentropy, CategoricalHinge, CosineSimilarity, Hinge,
                     KLDivergence, LogCoshError, MeanAbsoluteError, MeanAbsolutePercentageError,
                     MeanSquaredError, MeanSquaredLogarithmicError, Poisson,
                     RootMeanSquaredError, SparseCategoricalAccuracy,
                     SparseCategoricalCrossentropy, SparseTopKCategoricalAccuracy, SquaredHinge,
                     TopKCategoricalAccuracy, accuracy, binary_accuracy, binary_crossentropy,
                     binary_focal_crossentropy, categorical_accuracy, categorical_crossentropy,
                     categorical_hinge, cosine_similarity, hinge, huber, kl_divergence, log_cosh,
                     mean_absolute_error, mean_absolute_percentage_error, mean_squared_error,
                     mean_squared_logarithmic_error, poisson, sparse_categorical_accuracy,
                     sparse_categorical_crossentropy, sparse_top_k_categorical_accuracy,
                     squared_hinge, top_k_categorical_accuracy)

_CLASSES = [Mean, Sum, Accuracy, BinaryAccuracy, CategoricalAccuracy, SparseCategoricalAccuracy,
            TopKCategoricalAccuracy, SparseTopKCategoricalAccuracy, MeanSquaredError,
            MeanAbsoluteError, MeanAbsolutePercentageError, MeanSquaredLogarithmicError,
            RootMeanSquaredError, BinaryCrossentropy, CategoricalCrossentropy,
            SparseCategoricalCrossentropy, KLDivergence, Poisson, Hinge, SquaredHinge,
            CategoricalHinge, LogCoshError, CosineSimilarity, Precision, Recall, AUC,
            F1Score, FBetaScore, TruePositives, TrueNegatives, FalsePositives, FalseNegatives,
            IoU, MeanIoU, BinaryIoU]

#: per-sample functions Keras accepts by name in metrics=[...]; the metric keeps the name given
_FUNCTIONS = {
    "accuracy": accuracy, "binary_accuracy": binary_accuracy,
    "categorical_accuracy": categorical_accuracy,
    "sparse_categorical_accuracy": sparse_categorical_accuracy,
    "top_k_categorical_accuracy": top_k_categorical_accuracy,
    "sparse_top_k_categorical_accuracy": sparse_top_k_categorical_accuracy,
    "mean_squared_error": mean_squared_error, "mse": mean_squared_error,
    "MSE": mean_squared_error, "mean_absolute_error": mean_absolute_error,
    "mae": mean_absolute_error, "MAE": mean_absolute_error,
    "mean_absolute_percentage_error": mean_absolute_percentage_error,
    "mape": mean_absolute_percentage_error, "MAPE": mean_absolute_percentage_error,
    "mean_squared_logarithmic_error": mean_squared_logarithmic_error,
    "msle": mean_squared_logarithmic_error, "MSLE": mean_squared_logarithmic_error,
    "binary_crossentropy": binary_crossentropy,
    "categorical_crossentropy": categorical_crossentropy,
    "sparse_categorical_crossentropy": sparse_categorical_crossentropy,
    "binary_focal_crossentropy": binary_focal_crossentropy,
    "kl_divergence": kl_divergence, "kld": kl_divergence, "KLD": kl_divergence,
    "kullback_leibler_divergence": kl_divergence, "poisson": poisson, "hinge": hinge,
    "squared_hinge": squared_hinge, "categorical_hinge": categorical_hinge,
    "logcosh": log_cosh, "log_cosh": log_cosh, "huber": huber,
    "cosine_similarity": cosine_similarity}

#: every name accepted by get(): the functions' names and the class names
_BY_NAME: dict = {**{c.__name__: c for c in _CLASSES}, **_FUNCTIONS}

_SPARSE_LOSSES = ("sparse_categorical_crossentropy", "SparseCategoricalCrossentropy")


def _loss_name(loss) -> str:
    if loss is None:
        return ""
    return loss if isinstance(loss, str) else getattr(loss, "name", type(loss).__name__)


def _resolve_accuracy(identifier: str, loss, output_shape, y_true_shape) -> Metric:
    """Keras' rule (tf.keras 2 compile_utils, Keras 3 get_metric) for "accuracy"/"acc" (any
    case) and, in tf.keras, "crossentropy"/"ce": binary when the output has one unit, sparse
    categorical when the labels have one axis fewer than the output (or a last axis of 1
    against several units: what a sparse loss's labels are), else categorical. The metric
    keeps the name given. Without ``y_true_shape`` the labels' shape is the one the loss
    prepares: sparse for a sparse categorical loss."""
    if isinstance(output_shape, (int,)) or output_shape is None:
        units = output_shape or 0
        rank = 2
    else:
        units = output_shape[-1] or 0
        rank = len(output_shape)
    if y_true_shape is None:
        sparse = _loss_name(loss) in _SPARSE_LOSSES or \
            type(loss).__name__ == "SparseCategoricalCrossentropy"
    else:
        sparse = len(y_true_shape) < rank or (y_true_shape[-1] == 1 and units != 1)
    if identifier.lower() in ("crossentropy", "ce"):
        fn = binary_crossentropy if units == 1 else (
            sparse_categorical_crossentropy if sparse else categorical_crossentropy)
        return MeanMetricWrapper(fn, name=identifier)
    if units == 1:
        return BinaryAccuracy(name=identifier)
    if sparse:
        return SparseCategoricalAccuracy(name=identifier)
    return CategoricalAccuracy(name=identifier)


def get(identifier, loss=None, output_shape=None, y_true_shape: Optional[tuple] = None) -> Metric:
    """A fresh Metric for ``compile(metrics=[identifier])``: a name ("accuracy"/"acc" resolved
    by ``loss`` and ``output_shape``, a function name such as "mae" which keeps that name, or a
    class name such as "AUC"), a Metric class or instance, or a function ``fn(y_true, y_pred)``
    (wrapped in MeanMetricWrapper). ``loss`` is the compiled Loss (or its name);
    ``output_shape`` the model output's shape (None for the batch) or its last axis as an int."""
    if isinstance(identifier, Metric):
        return identifier
    if isinstance(identifier, str):
        if identifier.lower() in ("accuracy", "acc", "crossentropy", "ce"):
            return _resolve_accuracy(identifier, loss, output_shape, y_true_shape)
        if identifier in _FUNCTIONS:
            return MeanMetricWrapper(_FUNCTIONS[identifier], name=identifier)
        if identifier in _BY_NAME:
            return _BY_NAME[identifier]()
        raise ValueError(f"Could not interpret metric identifier: {identifier!r}. Expected "
                         f"'accuracy' or one of {sorted(_BY_NAME)}")
    if isinstance(identifier, type) and issubclass(identifier, Metric):
        return identifier()
    if callable(identifier):   # a function, or a Loss: the mean of its batch values
        name = getattr(identifier, "__name__", None) or getattr(identifier, "name", None)
        return MeanMetricWrapper(identifier, name=name)
    raise ValueError(f"Could not interpret metric identifier: {identifier!r}. Expected a name, "
                     "a pycnn.metrics.Metric or a function fn(y_true, y_pred)")


def serialize(metric: Metric) -> dict:
    return {"class_name": type(metric).__name__, "config": metric.get_config()}


def deserialize(config: dict) -> Metric:
    cls = _BY_NAME.get(config.get("class_name"))
    if not isinstance(cls, type):
        raise ValueError(f"Unknown metric class_name: {config.get('class_name')!r}")
    return cls.from_config(dict(config.get("config", {})))
