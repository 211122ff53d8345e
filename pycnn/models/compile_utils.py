"""What ``compile`` records, per model output: the loss and its weight, and the metrics, with
the names tf.keras 2 gives their values (``loss``; with several outputs also
``<output>_loss`` and ``<output>_<metric>``)."""
from __future__ import annotations

from typing import Any, Optional, Sequence

import numpy as np

from .. import _C
from .. import losses as losses_mod
from .. import metrics as metrics_mod


def _per_output(value: Any, names: list[str], what: str, default=None) -> list:
    """A compile argument spread over the outputs: one value for all, a list in output order
    or a dict by output name."""
    n = len(names)
    if isinstance(value, dict):
        unknown = [k for k in value if k not in names]
        if unknown:
            raise ValueError(f"compile(): `{what}` names unknown output(s) {unknown}; the "
                             f"model's outputs are {names}")
        return [value.get(name, default) for name in names]
    if isinstance(value, (list, tuple)) and what != "metrics":
        if len(value) != n:
            raise ValueError(f"compile(): `{what}` has {len(value)} entries but the model has "
                             f"{n} outputs {names}")
        return list(value)
    return [value] * n


class CompiledLoss:
    """The losses of the outputs (None for outputs without one) and their weights."""

    def __init__(self, loss: Any, loss_weights: Any, output_names: list[str]):
        self.output_names = output_names
        raw = _per_output(loss, output_names, "loss")
        self.losses: list[Optional[losses_mod.Loss]] = [
            None if l is None else losses_mod.get(l) for l in raw]
        if all(l is None for l in self.losses):
            raise ValueError("compile() needs a loss, e.g. "
                             "loss='sparse_categorical_crossentropy'")
        weights = _per_output(1.0 if loss_weights is None else loss_weights, output_names,
                              "loss_weights", 1.0)
        self.weights = []
        for w in weights:
            if isinstance(w, bool) or not isinstance(w, (int, float, np.integer, np.floating)) \
                    or not np.isfinite(w):
                raise ValueError(f"compile(): loss weights must be finite numbers. Received: "
                                 f"loss_weights={loss_weights!r}")
            self.weights.append(float(w))

    def logits_for(self, i: int, activation: str, rank: int = 2) -> bool:
        """Whether output i's loss takes the logits of an output whose last activation is
        ``activation`` (Keras' TensorFlow backend does so for the crossentropies). A softmax is
        taken into the loss only on a (batch, classes) output of rank ``rank`` 2: over the last
        axis of a larger output it is not the one the loss's rows take. A loss with
        ``from_logits=True`` on a softmax output warns and takes the logits too, as Keras'
        TensorFlow backend does (no softmax applied twice)."""
        loss = self.losses[i]
        if loss is None:
            return False
        if activation == "softmax" and rank != 2:
            return False
        decide = getattr(loss, "output_logits", None)
        if decide is not None:
            return bool(decide(activation))
        return activation == "softmax" and getattr(loss, "fuses_softmax", False)

    def names(self) -> list[str]:
        if len(self.output_names) == 1:
            return ["loss"]
        return ["loss"] + [f"{n}_loss" for n, l in zip(self.output_names, self.losses)
                           if l is not None]


class CompiledMetrics:
    """Metrics per output, resolved ("accuracy" -> the right kind) when first built."""

    def __init__(self, metrics: Any, output_names: list[str],
                 weighted_metrics: Any = None):
        self.output_names = output_names
        self.spec = self._spread(metrics)
        self.weighted_spec = self._spread(weighted_metrics)
        self.metrics: Optional[list[list[metrics_mod.Metric]]] = None
        for specs in self.spec + self.weighted_spec:
            for m in specs:
                self._check(m)

    def _spread(self, metrics) -> list[list]:
        names = self.output_names
        if metrics is None:
            return [[] for _ in names]
        if isinstance(metrics, dict):
            unknown = [k for k in metrics if k not in names]
            if unknown:
                raise ValueError(f"compile(): `metrics` names unknown output(s) {unknown}; "
                                 f"the model's outputs are {names}")
            return [_as_list(metrics.get(n)) for n in names]
        metrics = _as_list(metrics)
        if len(names) > 1 and metrics and all(isinstance(m, (list, tuple)) or m is None
                                              for m in metrics):
            if len(metrics) != len(names):
                raise ValueError(f"compile(): `metrics` has {len(metrics)} lists but the model "
                                 f"has {len(names)} outputs")
            return [_as_list(m) for m in metrics]
        return [list(metrics) for _ in names]

    @staticmethod
    def _check(m) -> None:
        """Unknown metric identifiers (names, or anything that is not a metric) are refused at
        compile, as Keras does."""
        if isinstance(m, metrics_mod.Metric) or (isinstance(m, str) and
                                                 m in ("accuracy", "acc")):
            return
        _resolve(m, None, (None, 2))

    def build(self, losses: Sequence, output_shapes: Sequence[tuple]) -> None:
        self.metrics = []
        for i, specs in enumerate(self.spec):
            loss = losses[i]
            built = []
            for m in specs + self.weighted_spec[i]:
                built.append(_resolve(m, loss, output_shapes[i]))
            if len(self.output_names) > 1:
                for m in built:
                    if not getattr(m, "_pycnn_prefixed", False):
                        m.name = f"{self.output_names[i]}_{m.name}"
                        m._pycnn_prefixed = True
            self.metrics.append(built)

    def flat(self) -> list:
        return [m for ms in (self.metrics or []) for m in ms]

    def reset(self) -> None:
        for m in self.flat():
            m.reset_state()


def _as_list(v) -> list:
    if v is None:
        return []
    return list(v) if isinstance(v, (list, tuple)) else [v]


def _resolve(m, loss, out_shape):
    """A fresh Metric for identifier ``m`` (an instance is used as is)."""
    if isinstance(m, metrics_mod.Metric):
        return m
    return metrics_mod.get(m, loss, out_shape)


def activation_of(kind: str, z: np.ndarray) -> np.ndarray:
    """``kind`` applied to the logits ``z`` (what the model outputs when it did not stop at
    logits), for the metrics."""
    y = np.empty_like(z)
    _C.activation_forward(kind, np.ascontiguousarray(z, dtype=np.float32), y)
    return y
