"""The Metric base class with Keras' state variables (``add_weight``), and the reducing metrics
(Mean, Sum, MeanMetricWrapper) that the accuracy and error metrics build on. State is float32 as
in Keras, so running means round as Keras' do."""
from __future__ import annotations

from typing import Any, Callable, Optional

import numpy as np

from ..models import data as data_mod


_F32 = np.dtype(np.float32)


def _f32(value) -> np.ndarray:
    return np.asarray(value, dtype=np.float32)


def to_result(value) -> Any:
    """A scalar as a float32-rounded Python float, anything larger as a float32 array."""
    a = _f32(value)
    return float(a) if a.ndim == 0 else a.copy()


class Variable:
    """A metric's state: a small float32 NumPy array with Keras' ``assign``, ``assign_add``,
    ``assign_sub`` and ``numpy()``."""

    def __init__(self, name: str, shape=(), initializer="zeros", dtype="float32"):
        self.name = name
        shape = tuple(int(d) for d in (shape if isinstance(shape, (tuple, list)) else (shape,)))
        self.dtype = np.dtype(dtype or "float32")
        if callable(initializer):
            init = np.asarray(initializer(shape, self.dtype), dtype=self.dtype)
        elif initializer in ("zeros", "Zeros", None):
            init = np.zeros(shape, self.dtype)
        elif initializer in ("ones", "Ones"):
            init = np.ones(shape, self.dtype)
        elif isinstance(initializer, (int, float, np.integer, np.floating)):
            init = np.full(shape, initializer, self.dtype)
        else:
            raise ValueError(f"add_weight: unknown initializer {initializer!r}; expected "
                             "'zeros', 'ones', a number or a callable(shape, dtype)")
        self._initial = np.broadcast_to(init, shape).astype(self.dtype)
        self._value = self._initial.copy()

    @property
    def shape(self) -> tuple:
        return self._value.shape

    @property
    def value(self) -> np.ndarray:
        return self._value

    def numpy(self) -> np.ndarray:
        return self._value.copy()

    def assign(self, value) -> "Variable":
        value = np.asarray(value, dtype=self.dtype)
        if value.shape == self._value.shape:
            self._value = value.copy()
        else:
            self._value = np.broadcast_to(value, self.shape).copy()
        return self

    def assign_add(self, value) -> "Variable":
        value = np.asarray(value, dtype=self.dtype)
        if value.shape == self._value.shape:        # the common case: no broadcast
            self._value = np.asarray(self._value + value, dtype=self.dtype)
            return self
        return self.assign(self._value + value)

    def assign_sub(self, value) -> "Variable":
        return self.assign(self._value - np.asarray(value, dtype=self.dtype))

    def reset(self) -> None:
        self._value = self._initial.copy()

    def __array__(self, dtype=None, copy=None):
        return self._value.astype(dtype) if dtype is not None else self._value.copy()

    def __float__(self) -> float:
        return float(self._value)

    def __repr__(self) -> str:
        return f"<Variable {self.name!r} shape={self.shape} value={self._value!r}>"


def _binary(op):
    def method(self, other):
        return op(self._value, np.asarray(other))
    return method


def _rbinary(op):
    def method(self, other):
        return op(np.asarray(other), self._value)
    return method


for _name, _op in [("add", np.add), ("sub", np.subtract), ("mul", np.multiply),
                   ("truediv", np.divide), ("pow", np.power)]:
    setattr(Variable, f"__{_name}__", _binary(_op))
    setattr(Variable, f"__r{_name}__", _rbinary(_op))
Variable.__neg__ = lambda self: -self._value


class Metric:
    """Base class, as ``keras.metrics.Metric``: ``update_state(y_true, y_pred,
    sample_weight=None)``, ``result()``, ``reset_state()``; state created with ``add_weight``."""

    default_name = "metric"

    def __init__(self, name: Optional[str] = None, dtype=None):
        self.name = name or self.default_name
        self.dtype = dtype or "float32"
        self._variables: list[Variable] = []
        if self._legacy():
            self._legacy_total = self.add_weight("total")
            self._legacy_count = self.add_weight("count")
            self.reset_state()

    def add_weight(self, name: Optional[str] = None, shape=(), initializer="zeros", dtype=None,
                   aggregation: str = "sum", **kwargs) -> Variable:
        """A state variable, reset to its initial value by ``reset_state``."""
        v = Variable(name or f"variable_{len(self._variables)}", shape, initializer,
                     dtype or "float32")
        self._variables.append(v)
        return v

    @property
    def variables(self) -> list:
        return list(getattr(self, "_variables", []))

    def reset_state(self) -> None:
        for v in self.variables:
            v.reset()

    # Older pycnn metrics defined batch_values(y_true, y_pred) -> per-sample values and got
    # their mean; kept for them (new code overrides update_state and result, as in Keras).
    def batch_values(self, y_true: np.ndarray, y_pred: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def _legacy(self) -> bool:
        return type(self).batch_values is not Metric.batch_values

    def update_state(self, y_true, y_pred, sample_weight=None) -> None:
        if not self._legacy():
            raise NotImplementedError(f"{type(self).__name__} must define update_state")
        values = _f32(self.batch_values(np.asarray(y_true), np.asarray(y_pred)))
        if sample_weight is not None:
            sw = broadcast_weights(sample_weight, values.shape, self.name)
            values, n = values * sw, np.sum(sw, dtype=np.float64)
        else:
            n = values.size
        self._legacy_total.assign_add(np.float32(np.sum(values, dtype=np.float64)))
        self._legacy_count.assign_add(np.float32(n))

    def result(self):
        if not self._legacy():
            raise NotImplementedError(f"{type(self).__name__} must define result")
        count = self._legacy_count.value
        return to_result(self._legacy_total.value / count if count else np.float32(0.0))

    def __call__(self, y_true, y_pred, sample_weight=None):
        self.update_state(y_true, y_pred, sample_weight=sample_weight)
        return self.result()

    def get_config(self) -> dict:
        return {"name": self.name, "dtype": self.dtype}

    @classmethod
    def from_config(cls, config: dict) -> "Metric":
        return cls(**config)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} name={self.name!r}>"


def broadcast_weights(sample_weight, shape: tuple, where: str) -> np.ndarray:
    """sample_weight (a scalar, (N,), (N, 1) or values' own shape) broadcast to ``shape``."""
    sw = _f32((np.asarray(sample_weight) if isinstance(sample_weight, (int, float, np.number)) else
           data_mod.as_array(sample_weight, f"{where}: sample_weight")))
    if sw.ndim > len(shape) and sw.shape[-1] == 1:
        sw = sw.reshape(sw.shape[:-1])
    if 0 < sw.ndim < len(shape):
        sw = sw.reshape(sw.shape + (1,) * (len(shape) - sw.ndim))
    try:
        return np.broadcast_to(sw, shape)
    except ValueError:
        raise ValueError(f"{where}: sample_weight of shape {sw.shape} cannot be broadcast to "
                         f"shape {shape}") from None


class Reduce(Metric):
    def __init__(self, name=None, dtype=None):
        super().__init__(name=name, dtype=dtype)
        self.total = self.add_weight("total")

    def _weighted(self, values, sample_weight):
        values = _f32(values)
        if sample_weight is None:
            return values, None
        sw = broadcast_weights(sample_weight, values.shape, self.name)
        return values * sw, sw


class Sum(Reduce):
    """The weighted sum of the values seen."""

    default_name = "sum"

    def update_state(self, values, sample_weight=None) -> None:
        v, _ = self._weighted(values, sample_weight)
        self.total.assign_add(np.float32(np.sum(v, dtype=np.float64)))

    def result(self):
        return to_result(self.total.value)


class Mean(Reduce):
    """The weighted mean of the values seen: Keras' loss tracker is
    ``Mean().update_state(batch_loss, sample_weight=batch_size)``."""

    default_name = "mean"

    def __init__(self, name=None, dtype=None):
        super().__init__(name=name, dtype=dtype)
        self.count = self.add_weight("count")

    def update_state(self, values, sample_weight=None) -> None:
        if isinstance(values, float) and isinstance(sample_weight, int):
            # the loss tracker's case (a Python float per batch, weighted by the batch size),
            # in float32 scalars as Keras accumulates it; once per training step, so kept lean
            total, count = self.total, self.count
            w = np.float32(sample_weight)
            total._value = np.asarray(total._value + np.float32(values) * w, np.float32)
            count._value = np.asarray(count._value + w, np.float32)
            return
        if sample_weight is None and type(values) is np.ndarray and values.ndim and \
                values.dtype is _F32:
            # a batch of float32 values (the accuracies'): as the general case below, leaner
            self._add(np.sum(values, dtype=np.float64), values.size)
            return
        if np.ndim(values) == 0 and np.ndim(sample_weight) == 0:
            # a scalar with a scalar weight: float32 scalars as Keras (no reduction needed)
            v = np.float32(values)
            w = np.float32(1.0 if sample_weight is None else sample_weight)
            self.total.assign_add(v * w)
            self.count.assign_add(w)
            return
        v, sw = self._weighted(values, sample_weight)
        self.total.assign_add(np.float32(np.sum(v, dtype=np.float64)))
        n = v.size if sw is None else np.sum(sw, dtype=np.float64)
        self.count.assign_add(np.float32(n))

    def _add(self, total, count) -> None:
        """total += float32(total); count += float32(count), in float32 as assign_add."""
        t, c = self.total, self.count
        t._value = np.asarray(t._value + np.float32(total), np.float32)
        c._value = np.asarray(c._value + np.float32(count), np.float32)

    def update(self, value: float, weight) -> None:
        """Alias of ``update_state(value, sample_weight=weight)`` (older pycnn code)."""
        self.update_state(value, sample_weight=weight)

    def result(self):
        count = self.count._value
        if count.ndim == 0 and count.dtype is _F32 and self.total._value.dtype is _F32:
            # to_result of a float32 scalar, without the conversions
            return float(self.total._value / count) if count else 0.0
        return to_result(self.total.value / count if count else np.float32(0.0))


class MeanMetricWrapper(Mean):
    """The mean of ``fn(y_true, y_pred, **kwargs)`` (one value per sample) over the samples
    seen, weighted by sample_weight."""

    def __init__(self, fn: Callable, name: Optional[str] = None, dtype=None, **kwargs):
        super().__init__(name=name or getattr(fn, "__name__", "mean_metric_wrapper"),
                         dtype=dtype)
        self._fn = fn
        self._fn_kwargs = kwargs

    def update_state(self, y_true, y_pred, sample_weight=None) -> None:
        super().update_state(self._fn(y_true, y_pred, **self._fn_kwargs),
                             sample_weight=sample_weight)

    def get_config(self) -> dict:
        return {**super().get_config(), **self._fn_kwargs}
