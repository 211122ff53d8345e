"""Custom losses written with ops: ``fn(y_true, y_pred)`` giving each sample's loss is traced
once per (y_true, y_pred) shape into a small graph whose compiled plan gives the values and,
backwards from Keras' reduction, the gradient with respect to ``y_pred``. This is how
``compile(loss=fn)`` and ``keras.losses.Loss`` subclasses with ``call`` train."""
from __future__ import annotations

import threading
from typing import Callable, Optional, Tuple

import numpy as np

from ..layers.symbolic import KerasTensor, flatten
from .core import as_node_input


def _shape(a: np.ndarray) -> tuple:
    return (None,) + tuple(a.shape[1:]) if a.ndim else ()


class TracedLossFunction:
    """``fn(y_true, y_pred)`` compiled per input shapes; thread-safe (one plan runs at a
    time)."""

    def __init__(self, fn: Callable, name: str = "loss"):
        self.fn, self.name = fn, name
        self._plans: dict = {}
        self._lock = threading.Lock()

    def _plan(self, y_true: np.ndarray, y_pred: np.ndarray):
        from ..models.graph import Graph
        from ..models.plan import Plan
        key = (_shape(y_true), str(y_true.dtype), _shape(y_pred))
        plan = self._plans.get(key)
        if plan is None:
            yt = KerasTensor(_shape(y_true), dtype="float32" if y_true.dtype.kind == "f"
                             else str(y_true.dtype), name="y_true")
            yp = KerasTensor(_shape(y_pred), name="y_pred")
            from .core import tracing
            with tracing():
                out = self.fn(yt, yp)
            leaves = flatten(out)
            if len(leaves) != 1:
                raise ValueError(f"The loss function {self.name!r} must return one tensor "
                                 f"(each sample's loss); it returned {len(leaves)}")
            values = as_node_input(leaves[0], "loss")
            plan = Plan(Graph([yt, yp], [values]), False, input_grads=True)
            if len(self._plans) > 8:
                self._plans.clear()
            self._plans[key] = plan
        return plan

    def compute(self, y_true, y_pred, reduction: str, sample_weight=None, grad: bool = True
                ) -> Tuple[float, Optional[np.ndarray]]:
        """(reduced loss, d loss / d y_pred) for a batch."""
        y_pred = np.ascontiguousarray(y_pred, dtype=np.float32)
        y_true = np.asarray(y_true)
        if y_true.dtype.kind == "f" and y_true.dtype != np.float32:
            y_true = y_true.astype(np.float32)
        with self._lock:
            plan = self._plan(y_true, y_pred)
            try:
                values = np.asarray(plan.forward([y_true, y_pred])[0])
                loss, dvalues = reduce_values(values, sample_weight, reduction, self.name)
                g = None
                if grad:
                    _, grads = plan.backward([dvalues], return_input_grads=True)
                    g = grads[1]
                    g = np.zeros_like(y_pred) if g is None else \
                        np.array(np.broadcast_to(g, y_pred.shape), dtype=np.float32)
            finally:
                plan.release()
        return loss, g


def reduce_values(values: np.ndarray, sample_weight, reduction: str, name: str):
    """Keras' reduction of per-sample ``values`` (with sample weights): the loss and its
    gradient with respect to each value."""
    from ..losses.base import broadcast_sample_weight
    v = values.astype(np.float64)
    if sample_weight is not None and v.ndim:
        w = broadcast_sample_weight(sample_weight, v.shape, name).astype(np.float64)
    else:
        w = np.ones(v.shape, np.float64)
    total = float(np.sum(v * w))
    if reduction in ("sum_over_batch_size", "auto", "mean"):
        scale = 1.0 / max(v.size, 1)
    elif reduction == "mean_with_sample_weight" and sample_weight is not None:
        s = float(np.sum(w))
        scale = 1.0 / s if s else 0.0
    else:                                       # "sum", and "none" (its gradient: the sum's)
        scale = 1.0
    return total * scale, (w * scale).astype(np.float32)
