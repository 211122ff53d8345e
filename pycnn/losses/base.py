"""The Loss base class: Keras' reductions and sample weights around a C kernel that gives each
row's loss (a row: one vector of the last axis) and the gradient of their weighted sum."""
from __future__ import annotations

import math
import warnings
from typing import Callable, Optional, Tuple

import numpy as np

from ..models import data as data_mod

REDUCTIONS = ("sum_over_batch_size", "auto", "sum", "none", "mean", "mean_with_sample_weight")


def check_reduction(reduction) -> str:
    if reduction is None:
        return "none"
    if not isinstance(reduction, str) or reduction not in REDUCTIONS:
        raise ValueError(f"Invalid value for argument `reduction`. Expected one of "
                         f"{REDUCTIONS}. Received: reduction={reduction!r}")
    return reduction


_F32 = np.dtype(np.float32)


def as_f32(a: np.ndarray) -> np.ndarray:
    if type(a) is np.ndarray and a.dtype is _F32 and a.flags.c_contiguous and a.flags.aligned:
        return a                        # the training step's case, without np.require's cost
    return np.require(a, dtype=np.float32, requirements=["C", "A"])


def row_shape(y_pred: np.ndarray) -> tuple:
    """The shape of the per-sample loss: y_pred's without the last axis."""
    return y_pred.shape[:-1]


def broadcast_sample_weight(sample_weight, shape: tuple, where: str) -> np.ndarray:
    """Keras' sample_weight broadcast to the per-sample loss shape ``shape`` (N, ...): a scalar,
    (N,), (N, 1) or the loss's own shape."""
    sw = (np.asarray(sample_weight) if isinstance(sample_weight, (int, float, np.number)) else
           data_mod.as_array(sample_weight, f"{where}: sample_weight"))
    if sw.dtype.kind not in "biuf":
        raise TypeError(f"{where}: sample_weight must be numeric, got dtype {sw.dtype}")
    sw = sw.astype(np.float32)
    if sw.ndim == len(shape) + 1 and sw.shape[-1] == 1:
        sw = sw[..., 0]
    if sw.ndim < len(shape) and sw.shape == shape[:sw.ndim]:
        sw = sw.reshape(sw.shape + (1,) * (len(shape) - sw.ndim))
    try:
        return np.ascontiguousarray(np.broadcast_to(sw, shape), dtype=np.float32)
    except ValueError:
        raise ValueError(f"{where}: sample_weight of shape {sw.shape} cannot be broadcast to "
                         f"the loss of shape {shape}; expected a scalar, (N,) or "
                         f"{shape}") from None


class Loss:
    """Base class of pycnn's losses, as ``keras.losses.Loss``.

    ``loss(y_true, y_pred, sample_weight=None)`` returns the reduced loss; the model's training
    step calls ``compute(y_pred, y_true, from_logits)`` for the reduced loss and its gradient.
    Subclasses implement ``_rows(pred, true, from_logits, row_w, row_losses, grad, probs)``:
    the C kernel over 2-D rows.
    """

    #: Keras' default name (History keys, get_config)
    default_name = "loss"
    #: the activation whose pre-activation values this loss can take as logits, or None
    logit_activation: Optional[str] = None
    #: the op type tf.keras names in its from_logits warning
    _op_type = "Softmax"

    def __init__(self, name: Optional[str] = None, reduction: str = "sum_over_batch_size",
                 dtype=None):
        self.name = name or self.default_name
        self.reduction = check_reduction(reduction)
        self.from_logits = False
        self.dtype = dtype

    # ---- the model's interface -------------------------------------------------------------
    @property
    def fuses_softmax(self) -> bool:
        """True when a preceding softmax can run inside this loss (compute with logits)."""
        return self.logit_activation == "softmax"

    def output_logits(self, activation: str) -> bool:
        """Whether, for a model output whose last activation is ``activation``, this loss
        computes from the pre-activation values, as tf.keras' TensorFlow backend does: softmax
        and sigmoid cache their input (``_keras_logits``) and the crossentropies use it, with a
        warning when ``from_logits=True`` (the output is then not logits)."""
        if self.logit_activation is None or activation not in self._logits_from:
            return False
        if self.from_logits:
            warnings.warn(f'"`{self.default_name}` received `from_logits=True`, but the '
                          f"`output` argument was produced by a {self._op_type} activation and "
                          "thus does not represent logits. Was this intended?", stacklevel=2)
        return True

    #: the output activations whose inputs this loss takes as logits (see output_logits)
    _logits_from: tuple = ()

    def prepare_targets(self, y, out_shape: tuple, where: str) -> np.ndarray:
        """Targets checked and converted once per fit/evaluate against the output shape."""
        if self._has_call():
            return data_mod.as_float_input(y, where)
        return data_mod.dense_targets(y, out_shape, where)

    def _has_call(self) -> bool:
        """A subclass written as in Keras 3: ``call(y_true, y_pred)`` with ops."""
        return callable(getattr(type(self), "call", None))

    def compute(self, y_pred: np.ndarray, y_true: np.ndarray, from_logits: bool,
                grad: bool = True, probs_out: Optional[np.ndarray] = None,
                sample_weight=None) -> Tuple[float, Optional[np.ndarray]]:
        """(reduced loss, d loss / d y_pred) for a batch. With ``from_logits``, y_pred are
        logits for ``logit_activation``, whose output lands in ``probs_out`` when given.
        With reduction "none" the value and gradient are those of the sum."""
        if self._has_call():
            traced = self.__dict__.get("_traced")
            if traced is None:
                from ..ops.loss_trace import TracedLossFunction
                traced = self._traced = TracedLossFunction(self.call, self.name)
            return traced.compute(y_true, y_pred, self.reduction, sample_weight, grad)
        y_pred = np.asarray(y_pred)
        shape = row_shape(y_pred)
        rows = math.prod(shape) if shape else 1
        cols = y_pred.shape[-1] if y_pred.ndim else 1
        row_w = self._row_weights(sample_weight, shape, rows, y_true)
        pred = as_f32(y_pred).reshape(rows, cols)
        g = np.empty((rows, cols), np.float32) if grad else None
        probs = None
        if probs_out is not None and from_logits and self.logit_activation is not None:
            probs = np.asarray(probs_out).reshape(rows, cols)
        loss = self._rows(pred, self._targets_2d(y_true, rows, cols), from_logits, row_w, None,
                          g, probs)
        return float(loss), (g.reshape(y_pred.shape) if grad else None)

    # ---- helpers for subclasses -------------------------------------------------------------
    def _targets_2d(self, y_true, rows: int, cols: int) -> np.ndarray:
        return as_f32(np.asarray(y_true)).reshape(rows, cols)

    def _valid_rows(self, y_true, rows: int) -> Optional[np.ndarray]:
        """Rows that count (SparseCategoricalCrossentropy's ignore_class), or None: all."""
        return None

    def _row_weights(self, sample_weight, shape: tuple, rows: int, y_true) -> Optional[np.ndarray]:
        """Keras' reduction and sample weights folded into one weight per row, or None for the
        plain mean."""
        valid = self._valid_rows(y_true, rows)
        red = self.reduction
        if sample_weight is None and valid is None and red in ("sum_over_batch_size", "auto",
                                                               "mean"):
            return None
        w = (np.ones(rows, np.float32) if sample_weight is None else
             broadcast_sample_weight(sample_weight, shape, self.name).reshape(rows))
        if valid is not None:
            w = w * valid
        if red in ("sum_over_batch_size", "auto", "mean"):
            n = rows if valid is None else int(valid.sum())
            w = w / np.float32(max(n, 1)) if n else np.zeros_like(w)
        elif red == "mean_with_sample_weight":
            total = float(w.sum(dtype=np.float64))
            w = w / np.float32(total) if total else np.zeros_like(w)
        return np.ascontiguousarray(w, dtype=np.float32)

    def _rows(self, pred, true, from_logits, row_w, row_losses, grad, probs) -> float:
        raise NotImplementedError

    # ---- standalone use ----------------------------------------------------------------------
    def _standalone(self, y_true, y_pred, where: str):
        y_pred = data_mod.as_float_input(y_pred, f"{where}: y_pred")
        if y_pred.ndim == 1:
            # Keras reduces the last axis: a vector is one row, its loss a scalar
            y_pred = y_pred.reshape(1, -1)
            t = data_mod.as_array(y_true, f"{where}: y_true")
            y_true = t.reshape(1, -1) if t.size == y_pred.size else t.reshape(1)
        y = self.prepare_targets(y_true, (None,) + y_pred.shape[1:], f"{where}: y_true")
        if len(y) != len(y_pred):
            raise ValueError(f"{where}: y_true has {len(y)} samples, y_pred {len(y_pred)}")
        return y, y_pred

    def per_sample(self, y_true, y_pred) -> np.ndarray:
        """Each sample's (each row's) loss, unweighted, shape y_pred.shape[:-1], float32."""
        y_pred_in = y_pred
        y, y_pred = self._standalone(y_true, y_pred, self.name)
        shape = row_shape(y_pred)
        rows = int(np.prod(shape))
        cols = y_pred.shape[-1]
        out = np.empty(rows, np.float64)
        self._rows(y_pred.reshape(rows, cols), self._targets_2d(y, rows, cols), self.from_logits,
                   None, out, None, None)
        return out.astype(np.float32).reshape(shape if np.ndim(y_pred_in) > 1 else ())

    def __call__(self, y_true, y_pred, sample_weight=None):
        """The loss reduced as Keras' ``Loss.__call__``: a float, or with reduction="none" an
        array of the per-sample losses times the sample weights."""
        if self._has_call():
            from ..ops.loss_trace import reduce_values
            values = np.asarray(self.call(y_true, y_pred), dtype=np.float32)
            if self.reduction == "none":
                return values if sample_weight is None else \
                    values * broadcast_sample_weight(sample_weight, values.shape, self.name)
            return float(np.float32(reduce_values(values, sample_weight, self.reduction,
                                                  self.name)[0]))
        y_pred_in = y_pred
        y, y_pred = self._standalone(y_true, y_pred, self.name)
        shape = row_shape(y_pred)
        rows = int(np.prod(shape))
        cols = y_pred.shape[-1]
        if self.reduction == "none":
            out = np.empty(rows, np.float64)
            self._rows(y_pred.reshape(rows, cols), self._targets_2d(y, rows, cols),
                       self.from_logits, None, out, None, None)
            values = out.astype(np.float32).reshape(shape)
            if np.ndim(y_pred_in) == 1:
                return values.reshape(())
            if sample_weight is not None:
                values = values * broadcast_sample_weight(sample_weight, shape, self.name)
            valid = self._valid_rows(y, rows)
            if valid is not None:
                values = values * valid.reshape(shape)
            return values
        loss, _ = self.compute(y_pred, y, self.from_logits, grad=False,
                               sample_weight=sample_weight)
        return float(np.float32(loss))

    # ---- configuration ---------------------------------------------------------------------------
    def get_config(self) -> dict:
        return {"name": self.name, "reduction": self.reduction}

    @classmethod
    def from_config(cls, config: dict) -> "Loss":
        return cls(**config)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} name={self.name!r}>"


class LossFunctionWrapper(Loss):
    """A loss from a plain function ``fn(y_true, y_pred) -> per-sample values`` (NumPy), with
    Keras' reductions and sample weights. Its gradient is the training plan's business:
    ``compute`` raises NotImplementedError."""

    def __init__(self, fn: Callable, name: Optional[str] = None,
                 reduction: str = "sum_over_batch_size", **kwargs):
        if not callable(fn):
            raise TypeError(f"LossFunctionWrapper: expected a callable fn(y_true, y_pred), got "
                            f"{type(fn).__name__}")
        super().__init__(name=name or getattr(fn, "__name__", "loss"), reduction=reduction)
        self.fn = fn
        self.fn_kwargs = kwargs

    def compute(self, y_pred, y_true, from_logits, grad=True, probs_out=None,
                sample_weight=None):
        """The reduced loss and its gradient: ``fn`` (written with ``pycnn.ops``) is traced
        once per shape into a plan that differentiates it (ops/loss_trace.py)."""
        traced = self.__dict__.get("_traced")
        if traced is None:
            from ..ops.loss_trace import TracedLossFunction
            fn, kwargs = self.fn, self.fn_kwargs
            traced = self._traced = TracedLossFunction(
                (lambda yt, yp: fn(yt, yp, **kwargs)) if kwargs else fn, self.name)
        return traced.compute(y_true, y_pred, self.reduction, sample_weight, grad)

    def _values(self, y_true, y_pred) -> np.ndarray:
        y_pred = np.asarray(y_pred, dtype=np.float64)
        values = np.asarray(self.fn(np.asarray(y_true), y_pred, **self.fn_kwargs),
                            dtype=np.float64)
        if values.ndim == 0:
            values = values.reshape(1)
        return values

    def _reduce(self, y_true, y_pred, sample_weight) -> float:
        values = self._values(y_true, y_pred)
        if sample_weight is not None:
            values = values * broadcast_sample_weight(sample_weight, values.shape, self.name)
        total = float(values.sum())
        if self.reduction in ("sum_over_batch_size", "auto", "mean"):
            return total / values.size
        if self.reduction == "mean_with_sample_weight" and sample_weight is not None:
            sw = broadcast_sample_weight(sample_weight, values.shape, self.name)
            return total / float(sw.sum()) if sw.sum() else 0.0
        return total

    def __call__(self, y_true, y_pred, sample_weight=None):
        if self.reduction == "none":
            values = self._values(y_true, y_pred)
            if sample_weight is not None:
                values = values * broadcast_sample_weight(sample_weight, values.shape, self.name)
            return values.astype(np.float32)
        return float(np.float32(self._reduce(y_true, y_pred, sample_weight)))

    def prepare_targets(self, y, out_shape, where):
        return data_mod.as_float_input(y, where)

    def get_config(self) -> dict:
        return {"name": self.name, "reduction": self.reduction, "fn": self.fn,
                **self.fn_kwargs}
