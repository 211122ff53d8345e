"""``Model``: the functional API (``Model(inputs=..., outputs=...)``) and everything a model
does: ``compile``, ``fit``, ``evaluate``, ``predict``, ``summary``, weights in and out.
``Sequential`` (sequential.py) is a Model whose graph is a stack of layers."""
from __future__ import annotations

import contextlib
import functools
import math
import signal
import sys
import threading
import time
from typing import Any, Optional, Sequence

import numpy as np

from .. import _C, backend
from .. import callbacks as callbacks_mod
from .. import losses as losses_mod
from .. import metrics as metrics_mod
from .. import optimizers as optimizers_mod
from ..layers.base import Layer, Variable, format_shape
from ..layers.symbolic import InputLayer, KerasTensor
from ..utils import summary_table
from . import data as data_mod
from . import saving
from .graph import Graph


def _positive(value, arg: str, default: int) -> int:
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value <= 0:
        raise ValueError(f"expected a positive integer. Received: {arg}={value!r}")
    return int(value)


def _verbosity(verbose) -> int:
    if verbose == "auto":
        return 1
    if verbose not in (0, 1, 2) or isinstance(verbose, bool):
        raise ValueError(f"verbose must be 0, 1, 2 or 'auto'. Received: verbose={verbose!r}")
    return int(verbose)


class _Interrupt:
    """Defers Ctrl-C during fit to the next batch boundary (a second Ctrl-C interrupts at once),
    so an interrupted fit leaves consistent weights and the history of finished epochs."""

    def __init__(self):
        self.requested = False
        self._previous = None

    def _handler(self, signum, frame):
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True

    @contextlib.contextmanager
    def armed(self):
        usable = threading.current_thread() is threading.main_thread() and \
            signal.getsignal(signal.SIGINT) is signal.default_int_handler
        if usable:
            self._previous = signal.signal(signal.SIGINT, self._handler)
        try:
            yield self
        finally:
            if usable:
                signal.signal(signal.SIGINT, self._previous)


def _exclusive(method):
    """Run a public model operation under the model's lock (its layers reuse buffers between
    batches, so two threads must not run one model at once; different models run in parallel),
    and drop the layers' references to the caller's arrays when it returns."""
    @functools.wraps(method)
    def wrapper(self, *args, **kwargs):
        with self._lock:
            try:
                return method(self, *args, **kwargs)
            finally:
                if self._graph is not None:
                    self._graph.release_inputs()
    return wrapper


class Model:
    """A model of layers. Functional API::

        inputs = pycnn.Input(shape=(28, 28, 1))
        x = layers.Conv2D(32, 3, activation="relu")(inputs)
        ...
        model = pycnn.Model(inputs=inputs, outputs=outputs)
    """

    _default_name = "model"

    def __init__(self, inputs=None, outputs=None, name: Optional[str] = None,
                 trainable: bool = True, **kwargs):
        if kwargs:
            raise TypeError(f"Unrecognized keyword arguments passed to Model: {kwargs}")
        self.name = name or backend.unique_name(self._default_name)
        self.trainable = trainable
        self._lock = threading.RLock()
        self._graph: Optional[Graph] = None
        self.optimizer: Optional[optimizers_mod.Optimizer] = None
        self.loss: Optional[losses_mod.Loss] = None
        self._metric_ids: list = []
        self._compiled = False
        self.stop_training = False
        self.history: Optional[callbacks_mod.History] = None
        if inputs is None and outputs is None:
            if type(self) is Model:
                raise ValueError("Model(inputs=..., outputs=...) needs both; subclassed "
                                 "models are not supported by pycnn yet")
            return
        if inputs is None or outputs is None:
            raise ValueError("Model() needs both `inputs` and `outputs`")
        as_list = lambda t: list(t) if isinstance(t, (list, tuple)) else [t]  # noqa: E731
        self._graph = Graph(as_list(inputs), as_list(outputs))

    # ---- structure ------------------------------------------------------------------------------
    @property
    def built(self) -> bool:
        return self._graph is not None

    @property
    def layers(self) -> list[Layer]:
        return list(self._graph.layers) if self._graph else []

    @property
    def inputs(self) -> list[KerasTensor]:
        return list(self._graph.inputs) if self._graph else []

    @property
    def outputs(self) -> list[KerasTensor]:
        return list(self._graph.outputs) if self._graph else []

    @property
    def input_shape(self) -> tuple:
        self._require_built("input_shape")
        return self._graph.input_shape

    @property
    def output_shape(self) -> tuple:
        self._require_built("output_shape")
        return self._graph.output_shape

    def get_layer(self, name: Optional[str] = None, index: Optional[int] = None) -> Layer:
        """The layer called ``name`` (or at position ``index`` of ``model.layers``)."""
        if index is not None:
            if name is not None:
                raise ValueError("Provide only a layer name or a layer index, not both")
            if not -len(self.layers) <= index < len(self.layers):
                raise ValueError(f"Was asked to retrieve layer at index {index} but model only "
                                 f"has {len(self.layers)} layers.")
            return self.layers[index]
        for layer in self.layers:
            if layer.name == name:
                return layer
        raise ValueError(f"No such layer: {name}. Existing layers are: "
                         f"{[l.name for l in self.layers]}.")

    def _require_built(self, what: str) -> None:
        if not self.built:
            raise ValueError(f"This model has not yet been built. Build the model first by "
                             f"calling `build()` or by calling the model on a batch of data "
                             f"(needed for `{what}`).")

    def _ensure_built(self, x_shape: tuple) -> None:
        """Sequential builds itself from the first data; a functional model is always built."""

    # ---- weights -----------------------------------------------------------------------------------
    @property
    def weights(self) -> list[Variable]:
        return [v for layer in self.layers for v in layer.weights]

    @property
    def trainable_weights(self) -> list[Variable]:
        if not self.trainable:
            return []
        return [v for layer in self.layers for v in layer.trainable_weights]

    @property
    def non_trainable_weights(self) -> list[Variable]:
        trainable = {id(v) for v in self.trainable_weights}
        return [v for v in self.weights if id(v) not in trainable]

    def get_weights(self) -> list[np.ndarray]:
        """All weights as arrays: layer by layer, kernel then bias (Keras' order and shapes)."""
        return [v.numpy() for v in self.weights]

    def set_weights(self, weights: Sequence) -> None:
        """Set all weights from arrays in ``get_weights()``'s order; every shape is checked and
        the first layer that does not match is named."""
        weights = list(weights)
        self._require_built("set_weights")
        expected = sum(len(l.weights) for l in self.layers)
        if len(weights) != expected:
            raise ValueError(f'Model "{self.name}" expects {expected} weight arrays, but the '
                             f"list provided has {len(weights)}")
        pos = 0
        for layer in self.layers:
            k = len(layer.weights)
            if k:
                layer.set_weights(weights[pos:pos + k])
            pos += k

    def count_params(self) -> int:
        self._require_built("count_params")
        return int(sum(l.count_params() for l in self.layers))

    def save_weights(self, filepath: str, overwrite: bool = True) -> None:
        """Save all weights to an ``.npz`` file (layout: docs/weights-format.md)."""
        self._require_built("save_weights")
        saving.save_weights(self, filepath, overwrite)

    def load_weights(self, filepath: str) -> None:
        """Load weights saved by ``save_weights`` into a model of the same architecture."""
        self._require_built("load_weights")
        saving.load_weights(self, filepath)

    # ---- summary ------------------------------------------------------------------------------------
    def _summary_rows(self) -> list[tuple[str, str, str, int]]:
        rows = []
        for node in self._graph.nodes:
            layer = node.layer
            shape = format_shape(node.outputs[0].shape)
            if isinstance(layer, InputLayer):
                if not self._show_input_layer():
                    continue
                shape = f"[{shape}]"
            rows.append((layer.name, type(layer).__name__, shape, layer.count_params()))
        return rows

    def _show_input_layer(self) -> bool:
        return True

    def summary(self, line_length: Optional[int] = None, positions=None, print_fn=None) -> None:
        """Print the layer table, as tf.keras 2.15 prints it."""
        self._require_built("summary")
        trainable = int(sum(math.prod(v.shape) for v in self.trainable_weights))
        total = int(sum(math.prod(v.shape) for v in self.weights))
        kwargs = {}
        if line_length is not None:
            kwargs["line_length"] = line_length
        if positions is not None:
            kwargs["positions"] = positions
        summary_table.print_summary(self.name, self._summary_rows(), trainable,
                                    total - trainable, print_fn=print_fn, **kwargs)

    # ---- compile -------------------------------------------------------------------------------------
    def compile(self, optimizer="rmsprop", loss=None, metrics=None, loss_weights=None,
                weighted_metrics=None, run_eagerly=None, steps_per_execution=None,
                jit_compile=None, **kwargs) -> None:
        """Configure training: ``optimizer`` (name or object), ``loss`` (name or object),
        ``metrics`` (e.g. ``["accuracy"]``). Names are checked here."""
        if kwargs:
            raise TypeError(f"Unrecognized keyword arguments passed to compile: {kwargs}")
        if loss_weights is not None or weighted_metrics is not None:
            raise ValueError("loss_weights and weighted_metrics are not supported by pycnn yet")
        if loss is None:
            raise ValueError("compile() needs a loss, e.g. "
                             "loss='sparse_categorical_crossentropy'")
        self.optimizer = optimizers_mod.get(optimizer)
        self.loss = losses_mod.get(loss)
        if metrics is None:
            metrics = []
        if isinstance(metrics, (str, metrics_mod.Metric)):
            metrics = [metrics]
        for m in metrics:
            if not isinstance(m, metrics_mod.Metric) and m not in ("accuracy", "acc") and \
                    m not in metrics_mod._BY_NAME:
                metrics_mod.get(m, self.loss.name, 0)   # raises with the list of names
        self._metric_ids = list(metrics)
        self._compiled = True

    def _require_compiled(self, what: str) -> None:
        if not self._compiled:
            raise RuntimeError(f"You must call `compile()` before `{what}()`: the model has no "
                               "loss or optimizer yet")

    def _make_metrics(self) -> list[metrics_mod.Metric]:
        units = int(self._graph.output_shape[-1] or 0)
        return [metrics_mod.get(m, self.loss.name, units) for m in self._metric_ids]

    @property
    def metrics_names(self) -> list[str]:
        if not self._compiled:
            return []
        return ["loss"] + [m.name if isinstance(m, metrics_mod.Metric) else m
                           for m in self._metric_ids]

    def _fused_softmax(self) -> bool:
        """Whether fit computes the output layer's softmax in the crossentropy: a softmax over
        the classes of a (batch, classes) output (over the last axis of a larger output it would
        not be the one the loss's rows take)."""
        layer = self._graph.output_node.layer
        return self.loss.fuses_softmax and not self.loss.from_logits and \
            layer.output_activation == "softmax" and len(self._graph.output_shape) == 2

    # ---- data ----------------------------------------------------------------------------------------
    def _prepare_x(self, x, where: str) -> np.ndarray:
        x = data_mod.as_float_input(x, where)
        self._ensure_built(x.shape)
        want = self._graph.input_shape
        if x.ndim != len(want) or any(w is not None and w != d for w, d in
                                      zip(want[1:], x.shape[1:])):
            raise ValueError(f'Input 0 of layer "{self.name}" is incompatible with the layer: '
                             f"expected shape={format_shape(want)}, found shape="
                             f"{format_shape((None,) + x.shape[1:])} (in {where})")
        return x

    def _prepare_xy(self, x, y, where: str):
        x = self._prepare_x(x, f"{where}(x)")
        if y is None:
            raise ValueError(f"{where}() needs targets `y` for the loss")
        y = self.loss.prepare_targets(y, self._graph.output_shape, f"{where}(y)")
        if len(x) != len(y):
            raise ValueError(f"{where}(): x and y must have the same number of samples; got "
                             f"x with {len(x)} and y with {len(y)}")
        return x, y

    # ---- training ------------------------------------------------------------------------------------
    @_exclusive
    def fit(self, x=None, y=None, batch_size: Optional[int] = None, epochs: int = 1,
            verbose="auto", callbacks=None, validation_split: float = 0.0,
            validation_data=None, shuffle: bool = True, initial_epoch: int = 0,
            validation_batch_size: Optional[int] = None) -> callbacks_mod.History:
        """Train for ``epochs`` passes over ``x`` in batches of ``batch_size`` (default 32);
        print the progress as Keras does and return a ``History``."""
        self._require_compiled("fit")
        batch_size = _positive(batch_size, "batch_size", 32)
        if isinstance(epochs, bool) or not isinstance(epochs, (int, np.integer)) or epochs < 0:
            raise ValueError(f"expected a non-negative integer. Received: epochs={epochs!r}")
        verbose = _verbosity(verbose)
        x, y = self._prepare_xy(x, y, "fit")
        if not isinstance(validation_split, (int, float)) or not 0 <= validation_split < 1:
            raise ValueError(f"validation_split must be a float in [0, 1). Received: "
                             f"validation_split={validation_split!r}")
        val = None
        if validation_data is not None:
            if not isinstance(validation_data, (tuple, list)) or len(validation_data) != 2:
                raise ValueError("validation_data must be a tuple (x_val, y_val)")
            val = self._prepare_xy(validation_data[0], validation_data[1], "fit(validation_data)")
        elif validation_split:
            split = int(len(x) * (1.0 - validation_split))
            if split == 0 or split == len(x):
                raise ValueError(f"validation_split={validation_split} leaves no training or no "
                                 f"validation samples out of {len(x)}")
            x, y, val = x[:split], y[:split], (x[split:], y[split:])
        steps = -(-len(x) // batch_size)
        metrics = self._make_metrics()
        names = ["loss"] + [m.name for m in metrics]
        history = callbacks_mod.History()
        cbs = [history] + list(callbacks or [])
        if verbose:
            cbs.append(callbacks_mod.ProgbarLogger(verbose))
        params = {"verbose": verbose, "epochs": epochs, "steps": steps, "metric_names": names}
        cb = callbacks_mod.CallbackList(cbs, self, params)
        fused = self._fused_softmax()
        variables = self.trainable_weights
        out_layer = self._graph.output_node.layer
        xbuf = np.empty((min(batch_size, len(x)),) + x.shape[1:], np.float32)
        tracker = metrics_mod.Mean("loss")
        interrupt = _Interrupt()
        terminate_on_nan = any(isinstance(c, callbacks_mod.TerminateOnNaN) for c in cbs)
        self.stop_training = False
        logs: dict[str, float] = {}
        cb.call("on_train_begin", None)
        with interrupt.armed():
            for epoch in range(initial_epoch, epochs):
                tracker.reset_state()
                for m in metrics:
                    m.reset_state()
                cb.call("on_epoch_begin", epoch, None)
                order = backend.rng().permutation(len(x)) if shuffle else None
                for step in range(steps):
                    if interrupt.requested:
                        break
                    lo, hi = step * batch_size, min((step + 1) * batch_size, len(x))
                    cb.call("on_train_batch_begin", step, None)
                    if order is None:
                        xb, yb = x[lo:hi], y[lo:hi]
                    else:
                        idx = order[lo:hi]
                        xb = xbuf[:hi - lo]
                        _C.take_rows(x, idx, xb)
                        yb = y[idx]
                    out = self._graph.forward(xb, training=True, logits=fused)
                    if fused:       # the softmax runs in the loss, and its output is the model's
                        probs = out_layer._buffer("probs", out.shape)
                        loss, grad = self.loss.compute(out, yb, True, probs_out=probs)
                        out = probs
                    else:
                        loss, grad = self.loss.compute(out, yb, self.loss.from_logits)
                    if math.isfinite(loss):
                        self._graph.backward(grad, from_logits=fused)
                        bad = self.optimizer.apply(variables)
                        if bad:
                            raise FloatingPointError(
                                f"The weight update at epoch {epoch + 1}, batch {step + 1} would "
                                f"have made {bad} weights infinite or NaN: the learning rate is "
                                "far too high for this data. Those weights kept their previous "
                                "values (all weights are finite); lower the learning rate.")
                    elif not terminate_on_nan:
                        raise FloatingPointError(
                            f"The loss became {loss} at epoch {epoch + 1}, batch {step + 1}; "
                            "training stopped before that batch's update, so the weights are "
                            "those after the previous batch. Try a lower learning rate, or "
                            "check the data and labels.")
                    tracker.update(loss, hi - lo)
                    for m in metrics:
                        m.update_state(yb, out)
                    logs = {"loss": tracker.result(), **{m.name: m.result() for m in metrics}}
                    cb.call("on_train_batch_end", step, logs)
                    if self.stop_training:
                        break
                if interrupt.requested:
                    print(f"\nTraining interrupted at epoch {epoch + 1}: the model keeps the "
                          "weights of the last finished batch; the history holds the finished "
                          "epochs.", file=sys.stderr)
                    break
                epoch_logs = dict(logs)
                if val is not None:
                    val_logs = self._evaluate_arrays(val[0], val[1],
                                                     validation_batch_size or batch_size)
                    epoch_logs.update({f"val_{k}": v for k, v in val_logs.items()})
                cb.call("on_epoch_end", epoch, epoch_logs)
                if self.stop_training:
                    break
        cb.call("on_train_end", logs)
        self.history = history
        history.params = params
        history.model = self
        return history

    def _evaluate_arrays(self, x, y, batch_size, cb=None) -> dict[str, float]:
        metrics = self._make_metrics()
        tracker = metrics_mod.Mean("loss")
        steps = -(-len(x) // batch_size)
        for step in range(steps):
            lo, hi = step * batch_size, min((step + 1) * batch_size, len(x))
            if cb:
                cb.call("on_test_batch_begin", step, None)
            out = self._graph.forward(x[lo:hi], training=False)
            loss, _ = self.loss.compute(out, y[lo:hi], self.loss.from_logits, grad=False)
            tracker.update(loss, hi - lo)
            for m in metrics:
                m.update_state(y[lo:hi], out)
            if cb:
                cb.call("on_test_batch_end", step,
                        {"loss": tracker.result(), **{m.name: m.result() for m in metrics}})
        return {"loss": tracker.result(), **{m.name: m.result() for m in metrics}}

    @_exclusive
    def evaluate(self, x=None, y=None, batch_size: Optional[int] = None, verbose="auto",
                 callbacks=None, return_dict: bool = False):
        """Loss and metrics on ``x``/``y``: a float when there is only the loss, else
        ``[loss, metric, ...]`` in compile order (a dict with ``return_dict=True``)."""
        self._require_compiled("evaluate")
        batch_size = _positive(batch_size, "batch_size", 32)
        verbose = _verbosity(verbose)
        x, y = self._prepare_xy(x, y, "evaluate")
        steps = -(-len(x) // batch_size)
        cbs = list(callbacks or [])
        if verbose:
            cbs.append(callbacks_mod.ProgbarLogger(verbose, mode="test"))
        names = self.metrics_names
        cb = callbacks_mod.CallbackList(cbs, self, {"verbose": verbose, "epochs": 1,
                                                    "steps": steps, "metric_names": names})
        cb.call("on_test_begin", None)
        logs = self._evaluate_arrays(x, y, batch_size, cb)
        cb.call("on_test_end", logs)
        if return_dict:
            return logs
        values = list(logs.values())
        return values[0] if len(values) == 1 else values

    @_exclusive
    def predict(self, x, batch_size: Optional[int] = None, verbose="auto",
                callbacks=None) -> np.ndarray:
        """The model's outputs for ``x``, computed in batches (default 32), as float32."""
        batch_size = _positive(batch_size, "batch_size", 32)
        verbose = _verbosity(verbose)
        x = self._prepare_x(x, "predict(x)")
        steps = -(-len(x) // batch_size)
        cbs = list(callbacks or [])
        if verbose:
            cbs.append(callbacks_mod.ProgbarLogger(verbose, mode="predict"))
        cb = callbacks_mod.CallbackList(cbs, self, {"verbose": verbose, "epochs": 1,
                                                    "steps": steps, "metric_names": []})
        cb.call("on_predict_begin", None)
        result = None
        for step in range(steps):
            lo, hi = step * batch_size, min((step + 1) * batch_size, len(x))
            cb.call("on_predict_batch_begin", step, None)
            out = self._graph.forward(x[lo:hi], training=False)
            if result is None:
                result = np.empty((len(x),) + out.shape[1:], np.float32)
            result[lo:hi] = out
            cb.call("on_predict_batch_end", step, None)
        cb.call("on_predict_end", None)
        return result

    @_exclusive
    def __call__(self, inputs, training: bool = False) -> np.ndarray:
        """The outputs for a batch of data (as ``predict`` without batching or progress bar)."""
        if isinstance(inputs, KerasTensor):
            raise ValueError("Calling a pycnn model on a symbolic tensor (nesting models) is "
                             "not supported yet; call its layers instead")
        x = self._prepare_x(inputs, f'model "{self.name}"')
        return self._graph.forward(x, training=bool(training)).copy()

    def build(self, input_shape: Sequence) -> None:
        """Build the model for inputs of ``input_shape`` (batch axis first, may be None)."""
        self._ensure_built(tuple(input_shape))
        self._require_built("build")

    def __repr__(self) -> str:
        return f"<{type(self).__name__} name={self.name}, built={self.built}>"
