"""Losses, by Keras name or as objects, as ``keras.losses``: the crossentropies (binary, binary
focal, categorical, sparse categorical), the regression losses (MSE, MAE, MAPE, MSLE, Huber,
log-cosh), KL divergence, Poisson, the hinges and cosine similarity. Each class computes the
reduced loss and its gradient in C; the functions (``losses.mean_squared_error(y_true, y_pred)``)
return each sample's loss as Keras' do."""
from __future__ import annotations

from typing import Callable

import numpy as np

from .base import REDUCTIONS, Loss, LossFunctionWrapper
from .classes import (BinaryCrossentropy, BinaryFocalCrossentropy, CategoricalCrossentropy,
                      CategoricalHinge, CosineSimilarity, Hinge, Huber, KLDivergence, LogCosh,
                      MeanAbsoluteError, MeanAbsolutePercentageError, MeanSquaredError,
                      MeanSquaredLogarithmicError, Poisson, SparseCategoricalCrossentropy,
                      SquaredHinge)

__all__ = ["Loss", "LossFunctionWrapper", "REDUCTIONS", "get", "serialize", "deserialize",
           "BinaryCrossentropy", "BinaryFocalCrossentropy", "CategoricalCrossentropy",
           "SparseCategoricalCrossentropy", "MeanSquaredError", "MeanAbsoluteError",
           "MeanAbsolutePercentageError", "MeanSquaredLogarithmicError", "Huber", "LogCosh",
           "KLDivergence", "Poisson", "Hinge", "SquaredHinge", "CategoricalHinge",
           "CosineSimilarity"]


# ---- the functions: each sample's loss ----------------------------------------------------------

def _per_sample(cls: type, name: str) -> Callable:
    """Keras' function ``name(y_true, y_pred)``: each sample's loss, as ``cls()`` computes it."""
    def fn(y_true, y_pred):
        return cls().per_sample(y_true, y_pred)

    fn.__name__ = fn.__qualname__ = name
    fn.__doc__ = f"Each sample's loss, as ``{cls.__name__}()`` computes it (Keras' ``{name}``)."
    return fn


def binary_crossentropy(y_true, y_pred, from_logits=False, label_smoothing=0.0, axis=-1):
    return BinaryCrossentropy(from_logits, label_smoothing, axis).per_sample(y_true, y_pred)


def binary_focal_crossentropy(y_true, y_pred, apply_class_balancing=False, alpha=0.25,
                              gamma=2.0, from_logits=False, label_smoothing=0.0, axis=-1):
    return BinaryFocalCrossentropy(apply_class_balancing, alpha, gamma, from_logits,
                                   label_smoothing, axis).per_sample(y_true, y_pred)


def categorical_crossentropy(y_true, y_pred, from_logits=False, label_smoothing=0.0, axis=-1):
    return CategoricalCrossentropy(from_logits, label_smoothing, axis).per_sample(y_true, y_pred)


def sparse_categorical_crossentropy(y_true, y_pred, from_logits=False, ignore_class=None,
                                    axis=-1):
    if axis != -1:
        raise ValueError(f"pycnn supports axis=-1 only for sparse_categorical_crossentropy. "
                         f"Received: axis={axis!r}")
    return SparseCategoricalCrossentropy(from_logits, ignore_class).per_sample(y_true, y_pred)


def huber(y_true, y_pred, delta=1.0):
    return Huber(delta).per_sample(y_true, y_pred)


def cosine_similarity(y_true, y_pred, axis=-1):
    return CosineSimilarity(axis).per_sample(y_true, y_pred)


mean_squared_error = _per_sample(MeanSquaredError, "mean_squared_error")
mean_absolute_error = _per_sample(MeanAbsoluteError, "mean_absolute_error")
mean_absolute_percentage_error = _per_sample(MeanAbsolutePercentageError,
                                             "mean_absolute_percentage_error")
mean_squared_logarithmic_error = _per_sample(MeanSquaredLogarithmicError,
                                             "mean_squared_logarithmic_error")
log_cosh = _per_sample(LogCosh, "log_cosh")
kl_divergence = _per_sample(KLDivergence, "kl_divergence")
poisson = _per_sample(Poisson, "poisson")
hinge = _per_sample(Hinge, "hinge")
squared_hinge = _per_sample(SquaredHinge, "squared_hinge")
categorical_hinge = _per_sample(CategoricalHinge, "categorical_hinge")

# Keras' aliases
mse = MSE = mean_squared_error
mae = MAE = mean_absolute_error
mape = MAPE = mean_absolute_percentage_error
msle = MSLE = mean_squared_logarithmic_error
kld = KLD = kullback_leibler_divergence = kl_divergence
logcosh = log_cosh
huber_loss = huber

_CLASSES = [BinaryCrossentropy, BinaryFocalCrossentropy, CategoricalCrossentropy,
            SparseCategoricalCrossentropy, MeanSquaredError, MeanAbsoluteError,
            MeanAbsolutePercentageError, MeanSquaredLogarithmicError, Huber, LogCosh,
            KLDivergence, Poisson, Hinge, SquaredHinge, CategoricalHinge, CosineSimilarity]

#: function -> the class that computes it (with its gradient)
_FUNCTIONS: dict[Callable, type] = {
    binary_crossentropy: BinaryCrossentropy, binary_focal_crossentropy: BinaryFocalCrossentropy,
    categorical_crossentropy: CategoricalCrossentropy,
    sparse_categorical_crossentropy: SparseCategoricalCrossentropy,
    mean_squared_error: MeanSquaredError, mean_absolute_error: MeanAbsoluteError,
    mean_absolute_percentage_error: MeanAbsolutePercentageError,
    mean_squared_logarithmic_error: MeanSquaredLogarithmicError, huber: Huber,
    log_cosh: LogCosh, kl_divergence: KLDivergence, poisson: Poisson, hinge: Hinge,
    squared_hinge: SquaredHinge, categorical_hinge: CategoricalHinge,
    cosine_similarity: CosineSimilarity}

#: every name Keras' losses.get accepts, -> class
_BY_NAME: dict[str, type] = {cls.__name__: cls for cls in _CLASSES}
_BY_NAME.update({fn.__name__: cls for fn, cls in _FUNCTIONS.items()})
_BY_NAME.update({
    "mse": MeanSquaredError, "MSE": MeanSquaredError, "mae": MeanAbsoluteError,
    "MAE": MeanAbsoluteError, "mape": MeanAbsolutePercentageError,
    "MAPE": MeanAbsolutePercentageError, "msle": MeanSquaredLogarithmicError,
    "MSLE": MeanSquaredLogarithmicError, "kld": KLDivergence, "KLD": KLDivergence,
    "kullback_leibler_divergence": KLDivergence, "logcosh": LogCosh, "huber_loss": Huber,
    "KLDivergence": KLDivergence})


def get(identifier) -> Loss:
    """A loss from its Keras name ("mse", "binary_crossentropy", "BinaryCrossentropy", ...), a
    class, an instance, a config dict, or a function ``fn(y_true, y_pred)`` (pycnn's own
    functions give their class; others are wrapped in ``LossFunctionWrapper``)."""
    if isinstance(identifier, Loss):
        return identifier
    if isinstance(identifier, str):
        if identifier in _BY_NAME:
            return _BY_NAME[identifier]()
        raise ValueError(f"Could not interpret loss identifier: {identifier!r}. Expected one of "
                         f"{sorted(_BY_NAME)} or a pycnn.losses.Loss instance")
    if isinstance(identifier, dict):
        return deserialize(identifier)
    if isinstance(identifier, type) and issubclass(identifier, Loss):
        return identifier()
    if callable(identifier):
        try:
            cls = _FUNCTIONS.get(identifier)
        except TypeError:   # unhashable callables
            cls = None
        return cls() if cls is not None else LossFunctionWrapper(identifier)
    raise ValueError(f"Could not interpret loss identifier: {identifier!r}. Expected a name, "
                     "a pycnn.losses.Loss, or a function fn(y_true, y_pred)")


def serialize(loss: Loss) -> dict:
    """``{"class_name": ..., "config": ...}`` as Keras writes it."""
    return {"class_name": type(loss).__name__, "config": loss.get_config()}


def deserialize(config: dict) -> Loss:
    name = config.get("class_name")
    cls = _BY_NAME.get(name) if isinstance(name, str) else None
    if cls is None or not isinstance(cls, type):
        raise ValueError(f"Unknown loss class_name: {name!r}")
    return cls.from_config(dict(config.get("config", {})))
