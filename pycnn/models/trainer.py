"""Training, evaluation and prediction, as Keras 3 structures them: ``compile`` records,
``fit`` is an epoch loop over batches that calls ``train_step(data)``, ``evaluate`` calls
``test_step``, ``predict`` calls ``predict_step``; each step runs the model's compiled plan
(plan.py). Subclasses may override the three step methods."""
from __future__ import annotations

import contextlib
import math
import signal
import sys
import threading
from typing import Any, Optional

import numpy as np

from .. import callbacks as callbacks_mod
from .. import metrics as metrics_mod
from .. import optimizers as optimizers_mod
from . import data as data_mod
from . import data_adapter
from .compile_utils import CompiledLoss, CompiledMetrics, activation_of


def _positive(value, arg: str, default: Optional[int]) -> Optional[int]:
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value <= 0:
        raise ValueError(f"expected a positive integer. Received: {arg}={value!r}")
    return int(value)


def _verbosity(verbose) -> int:
    if isinstance(verbose, str) and verbose == "auto":
        return 1
    if isinstance(verbose, bool) or not isinstance(verbose, (int, np.integer)) or \
            verbose not in (0, 1, 2):
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


def _layer_locks(model) -> list:
    """The weights locks of every layer of the model, in one global order (by id), so that
    two models sharing layers never wait for each other in opposite orders."""
    from .model import _all_layers
    return [lock for _, lock in sorted({id(l): l._lock for l in _all_layers(model)}.items())]


class _Step:
    """What a training or test step needs, looked up once per fit/evaluate: the plan, the
    locks to hold per batch, the per-output losses and metrics."""

    def __init__(self, model, training: bool):
        closs = model._compiled_loss
        probe = model.compiled_plan(training)
        logits = tuple(closs.logits_for(i, probe.output_activation(i),
                                        len(probe.graph.outputs[i].shape))
                       for i in range(len(closs.losses)))
        self.plan = model.compiled_plan(training, logits)
        self.locks = _layer_locks(model)
        self.losses = closs.losses
        self.weights = closs.weights
        self.activations = [self.plan.output_activation(i) for i in range(len(self.losses))]
        self.logits = self.plan.logits_outputs
        self.probs: list[Optional[np.ndarray]] = [None] * len(self.losses)
        # the metrics the logs read, listed once (unless a subclass redefines `metrics`)
        self.logged = model.metrics if type(model).metrics is Trainer.metrics and \
            model._compiled and model._metrics_built else None


class Trainer:
    """compile / fit / evaluate / predict for ``Model``."""

    def __init__(self):
        self.optimizer = None
        self.loss = None
        self._compiled_loss: Optional[CompiledLoss] = None
        self._compiled_metrics: Optional[CompiledMetrics] = None
        self._compiled = False
        self.stop_training = False
        self.history: Optional[callbacks_mod.History] = None
        self._terminate_on_nan = False
        self._loss_trackers: list = []

    # ---- compile -------------------------------------------------------------------------------
    def compile(self, optimizer="rmsprop", loss=None, loss_weights=None, metrics=None,
                weighted_metrics=None, run_eagerly=None, steps_per_execution=None,
                jit_compile=None, auto_scale_loss=None, **kwargs) -> None:
        """Configure training: ``optimizer`` (name or object), ``loss`` (one for all outputs,
        a list or a dict by output name), ``loss_weights``, ``metrics`` (e.g.
        ``["accuracy"]``, or per output). Names are checked here."""
        kwargs.pop("sample_weight_mode", None)
        if kwargs:
            raise TypeError(f"Unrecognized keyword arguments passed to compile: {kwargs}")
        if loss is None:
            raise ValueError("compile() needs a loss, e.g. "
                             "loss='sparse_categorical_crossentropy'")
        names = self._output_names_for_compile()
        self.optimizer = optimizers_mod.get(optimizer)
        self._compiled_loss = CompiledLoss(loss, loss_weights, names)
        self.loss = loss if not isinstance(loss, str) else self._compiled_loss.losses[0]
        self._compiled_metrics = CompiledMetrics(metrics, names, weighted_metrics)
        self._compile_config = {"optimizer": optimizer, "loss": loss,
                                "loss_weights": loss_weights, "metrics": metrics,
                                "weighted_metrics": weighted_metrics}
        self._compiled = True
        self._metrics_built = False

    def _output_names_for_compile(self) -> list[str]:
        if self.built:
            return self.output_names
        return ["output"]       # a Sequential or subclassed model built by the first data

    def _require_compiled(self, what: str) -> None:
        if not self._compiled:
            raise RuntimeError(f"You must call `compile()` before `{what}()`: the model has no "
                               "loss or optimizer yet")

    def _build_metrics(self) -> None:
        """Resolve the metrics for the outputs (once the model's output shapes are known)."""
        if self._metrics_built:
            return
        if len(self._compiled_loss.output_names) != len(self.outputs) or \
                self._compiled_loss.output_names != self.output_names:
            cfg = self._compile_config
            self._compiled_loss = CompiledLoss(cfg["loss"], cfg["loss_weights"],
                                               self.output_names)
            self._compiled_metrics = CompiledMetrics(cfg["metrics"], self.output_names,
                                                     cfg["weighted_metrics"])
        self._compiled_metrics.build(self._compiled_loss.losses,
                                     [t.shape for t in self.outputs])
        names = self._compiled_loss.names()
        self._loss_trackers = [metrics_mod.Mean(name=n) for n in names]
        self._metrics_built = True

    @property
    def metrics(self) -> list:
        """The loss trackers and compiled metrics (Keras 3's ``model.metrics``)."""
        if not self._compiled or not self._metrics_built:
            return []
        return list(self._loss_trackers) + self._compiled_metrics.flat()

    @property
    def metrics_names(self) -> list[str]:
        if not self._compiled:
            return []
        if not self._metrics_built:
            return ["loss"] + [m if isinstance(m, str) else m.name
                               for m in (self._compiled_metrics.spec[0] if
                                         self._compiled_metrics.spec else [])]
        return [m.name for m in self.metrics]

    def reset_metrics(self) -> None:
        for m in self.metrics:
            m.reset_state()

    def _logs(self) -> dict[str, float]:
        return {m.name: m.result() for m in self.metrics}

    # ---- data ----------------------------------------------------------------------------------
    def _prepare_targets(self, y, n: int, where: str) -> list:
        """Targets per output, checked against each output's loss and shape."""
        outs = self.outputs
        closs = self._compiled_loss
        if isinstance(y, dict):
            missing = [name for name, l in zip(self.output_names, closs.losses)
                       if l is not None and name not in y]
            if missing:
                raise ValueError(f"{where}: missing targets for output(s) {missing}; got keys "
                                 f"{sorted(y)}")
            ys = [y.get(name) for name in self.output_names]
        elif len(outs) > 1:
            if not isinstance(y, (list, tuple)) or len(y) != len(outs):
                raise ValueError(f"{where}: the model has {len(outs)} outputs "
                                 f"{self.output_names}; pass targets as a list of "
                                 f"{len(outs)} arrays or a dict by output name")
            ys = list(y)
        else:
            if isinstance(y, (list, tuple)) and len(y) == 1 and not np.isscalar(y[0]):
                y = y[0]
            ys = [y]
        prepared = []
        for i, (t, loss, out) in enumerate(zip(ys, closs.losses, outs)):
            if loss is None:
                prepared.append(None)
                continue
            if t is None:
                raise ValueError(f"{where} needs targets `y` for the loss")
            label = where if len(outs) == 1 else f"{where}[{self.output_names[i]}]"
            t = loss.prepare_targets(t, out.shape, label)
            if len(t) != n:
                raise ValueError(f"{where}: x and y must have the same number of samples; got "
                                 f"x with {n} and y with {len(t)}")
            prepared.append(t)
        return prepared

    def _prepare_data(self, x, y, sample_weight, where: str, need_y: bool = True):
        xs = self._prepare_inputs(x, f"{where}(x)")
        self._build_metrics()
        if y is None:
            if need_y:
                raise ValueError(f"{where}() needs targets `y` for the loss")
            ys = None
        else:
            ys = self._prepare_targets(y, len(xs[0]), f"{where}(y)")
        sw = data_adapter.check_sample_weight(sample_weight, len(xs[0]), f"{where}()")
        return xs, ys, sw

    def _prepare_batch(self, batch, where: str, need_y: bool = True):
        x, y, sw = data_adapter.unpack(batch)
        return self._prepare_data(x, y, sw, where, need_y)

    # ---- the steps -------------------------------------------------------------------------------
    def _forward_loss(self, step: _Step, xs: list, ys: list, sw):
        """The outputs, the total loss, d loss / d output per output, and what the metrics
        see for each output."""
        plan = step.plan
        outs = plan.forward(xs)
        if len(outs) == 1 and sw is None and step.logits[0] and step.weights[0] == 1.0 and \
                step.losses[0] is not None and step.activations[0] == getattr(
                    step.losses[0], "logit_activation", "softmax"):
            # the common case (one output, its softmax in the loss, no sample weights): what
            # the loop below does for it
            out = outs[0]
            probs = step.probs[0]
            if probs is None or probs.shape != out.shape:
                probs = step.probs[0] = np.empty(out.shape, np.float32)
            value, grad = step.losses[0].compute(out, ys[0], True, probs_out=probs)
            return outs, 0.0 + value, [grad], [probs], [value]   # as total below
        total = 0.0
        douts: list = []
        shown: list = []
        out_losses: list = []
        for i, (out, y, loss) in enumerate(zip(outs, ys, step.losses)):
            if loss is None:
                douts.append(None)
                shown.append(out)
                continue
            weight = step.weights[i]
            kwargs = {} if sw is None else {"sample_weight": sw}
            if step.logits[i]:
                act = step.activations[i]
                if act == getattr(loss, "logit_activation", "softmax"):
                    probs = step.probs[i]
                    if probs is None or probs.shape != out.shape:
                        probs = step.probs[i] = np.empty(out.shape, np.float32)
                    value, grad = loss.compute(out, y, True, probs_out=probs, **kwargs)
                    shown.append(probs)
                else:
                    value, grad = loss.compute(out, y, True, **kwargs)
                    shown.append(activation_of(act, out))
            else:
                value, grad = loss.compute(out, y, loss.from_logits, **kwargs)
                shown.append(out)
            if weight != 1.0:
                grad = grad * np.float32(weight)
            douts.append(grad)
            out_losses.append(value)
            total += weight * value
        return outs, total, douts, shown, out_losses

    def _regularization(self) -> float:
        """The weights' regularization penalties (added to the reported loss, as Keras)."""
        total = 0.0
        for v in self.trainable_weights:
            if v.regularizer is not None:
                total += float(v.regularizer(v.value))
        return total

    def train_step(self, data) -> dict[str, float]:
        """One batch of training: forward pass, loss, backward pass, optimizer update,
        metrics. ``data`` is ``(x, y, sample_weight)`` (x and y as the model takes them)."""
        x, y, sw = data_adapter.unpack(data)
        step = self._train
        xs = x if isinstance(x, list) else [x]
        ys = y if isinstance(y, list) else [y]
        locks = step.locks
        for lock in locks:
            lock.acquire()
        try:
            outs, loss, douts, shown, out_losses = self._forward_loss(step, xs, ys, sw)
            if self._has_regularizers:
                loss += self._regularization()
            if step.plan._activity:
                loss += step.plan.activity_penalty
            if math.isfinite(loss):
                reached = step.plan.backward(douts)
                variables = [v for v in reached if v.trainable]
                if self._has_regularizers:
                    for v in variables:
                        if v.regularizer is not None:
                            v.grad += v.regularizer.gradient(v.value).astype(np.float32)
                bad = self.optimizer.apply(variables)
                if bad:
                    raise FloatingPointError(
                        f"The weight update at {self._where} would have made {bad} weights "
                        "infinite or NaN: the learning rate is far too high for this data. "
                        "Those weights kept their previous values; lower the learning rate.")
                for v in variables:
                    if v.constraint is not None:
                        v.value[...] = v.constraint(v.value)
            elif not self._terminate_on_nan:
                raise FloatingPointError(
                    f"The loss became {loss} at {self._where}; training stopped before that "
                    "batch's update, so the weights are those after the previous batch. Try a "
                    "lower learning rate, or check the data and labels.")
        finally:
            for lock in reversed(locks):
                lock.release()
        self._update_metrics(len(xs[0]), loss, out_losses, ys, shown, sw)
        logged = step.logged
        if logged is None:
            return self._logs()
        return {m.name: m.result() for m in logged}

    def _update_metrics(self, n, loss, out_losses, ys, shown, sw) -> None:
        trackers = self._loss_trackers
        trackers[0].update_state(loss, sample_weight=n)
        if len(trackers) > 1:
            for t, v in zip(trackers[1:], out_losses):
                t.update_state(v, sample_weight=n)
        for ms, y, out in zip(self._compiled_metrics.metrics, ys, shown):
            for m in ms:
                if sw is None:
                    m.update_state(y, out)
                else:
                    m.update_state(y, out, sample_weight=sw)

    def test_step(self, data) -> dict[str, float]:
        """One batch of evaluation: forward pass in inference mode, loss and metrics."""
        x, y, sw = data_adapter.unpack(data)
        step = self._test
        xs = x if isinstance(x, list) else [x]
        ys = y if isinstance(y, list) else [y]
        for lock in step.locks:
            lock.acquire()
        try:
            outs, loss, _, shown, out_losses = self._forward_loss_no_grad(step, xs, ys, sw)
            if self._has_regularizers:
                loss += self._regularization()
            if step.plan._activity:
                loss += step.plan.activity_penalty
        finally:
            for lock in reversed(step.locks):
                lock.release()
        self._update_metrics(len(xs[0]), loss, out_losses, ys, shown, sw)
        return self._logs()

    def _forward_loss_no_grad(self, step: _Step, xs, ys, sw):
        plan = step.plan
        outs = plan.forward(xs)
        total, shown, out_losses = 0.0, [], []
        for i, (out, y, loss) in enumerate(zip(outs, ys, step.losses)):
            if loss is None:
                shown.append(out)
                continue
            kwargs = {} if sw is None else {"sample_weight": sw}
            if step.logits[i]:
                act = step.activations[i]
                if act == getattr(loss, "logit_activation", "softmax"):
                    probs = step.probs[i]
                    if probs is None or probs.shape != out.shape:
                        probs = step.probs[i] = np.empty(out.shape, np.float32)
                    value, _ = loss.compute(out, y, True, grad=False, probs_out=probs,
                                            **kwargs)
                    shown.append(probs)
                else:
                    value, _ = loss.compute(out, y, True, grad=False, **kwargs)
                    shown.append(activation_of(act, out))
            else:
                value, _ = loss.compute(out, y, loss.from_logits, grad=False, **kwargs)
                shown.append(out)
            out_losses.append(value)
            total += step.weights[i] * value
        return outs, total, None, shown, out_losses

    def predict_step(self, data):
        """The outputs for one batch (inference mode), as a list of arrays the plan owns."""
        x, _, _ = data_adapter.unpack(data)
        xs = x if isinstance(x, list) else [x]
        plan = self._predict
        return plan.forward(xs)

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None,
                     training: bool = True) -> float:
        """The compiled loss of predictions ``y_pred`` against ``y`` (Keras 3)."""
        self._require_compiled("compute_loss")
        preds = y_pred if isinstance(y_pred, (list, tuple)) else [y_pred]
        ys = y if isinstance(y, (list, tuple)) and len(preds) > 1 else [y]
        total = 0.0
        for p, t, loss, w in zip(preds, ys, self._compiled_loss.losses,
                                 self._compiled_loss.weights):
            if loss is not None:
                total += w * float(loss(t, p, sample_weight=sample_weight)
                                   if sample_weight is not None else loss(t, p))
        return total + self._regularization()

    # ---- fit -----------------------------------------------------------------------------------
    def fit(self, x=None, y=None, batch_size: Optional[int] = None, epochs: int = 1,
            verbose="auto", callbacks=None, validation_split: float = 0.0,
            validation_data=None, shuffle: bool = True, class_weight=None,
            sample_weight=None, initial_epoch: int = 0, steps_per_epoch=None,
            validation_steps=None, validation_batch_size=None, validation_freq=1,
            max_queue_size=10, workers=1, use_multiprocessing=False):
        """Train for ``epochs`` passes over the data in batches of ``batch_size`` (default 32);
        print the progress as Keras does and return a ``History``."""
        self._require_compiled("fit")
        batch_size = _positive(batch_size, "batch_size", 32)
        if isinstance(epochs, bool) or not isinstance(epochs, (int, np.integer)) or epochs < 0:
            raise ValueError(f"expected a non-negative integer. Received: epochs={epochs!r}")
        if isinstance(initial_epoch, bool) or not isinstance(initial_epoch, (int, np.integer)) \
                or initial_epoch < 0:
            raise ValueError(f"expected a non-negative integer. Received: "
                             f"initial_epoch={initial_epoch!r}")
        verbose = _verbosity(verbose)
        if isinstance(steps_per_epoch, (float, np.floating)) and math.isfinite(steps_per_epoch) \
                and steps_per_epoch > 0:
            # tf.keras 2 runs ceil(steps) batches (the practical's len(x_train) / batch_size)
            steps_per_epoch = math.ceil(steps_per_epoch)
        steps_per_epoch = _positive(steps_per_epoch, "steps_per_epoch", None)
        validation_steps = _positive(validation_steps, "validation_steps", None)
        validation_batch_size = _positive(validation_batch_size, "validation_batch_size",
                                          batch_size)
        if isinstance(validation_freq, bool) or not (
                isinstance(validation_freq, (int, np.integer)) and validation_freq > 0 or
                isinstance(validation_freq, (list, tuple))):
            raise ValueError(f"validation_freq must be a positive integer or a list of epochs. "
                             f"Received: validation_freq={validation_freq!r}")
        if isinstance(validation_split, bool) or not isinstance(
                validation_split, (int, float, np.integer, np.floating)) or \
                not 0 <= validation_split < 1:
            raise ValueError(f"validation_split must be a float in [0, 1). Received: "
                             f"validation_split={validation_split!r}")
        if not isinstance(shuffle, (bool, np.bool_)) and shuffle != "batch":
            raise ValueError(f"shuffle must be True or False. Received: shuffle={shuffle!r}")
        if data_adapter.is_batch_source(x):
            if validation_split:
                raise ValueError("validation_split is only supported for NumPy arrays; pass "
                                 "validation_data for generators and datasets")
            batches = data_adapter.make_batches(x, y, sample_weight, batch_size,
                                                steps_per_epoch, None, "fit")
        else:
            xs, ys, sw = self._prepare_data(x, y, sample_weight, "fit")
            if class_weight is not None:
                if len(ys) != 1:
                    raise ValueError("class_weight is supported for single-output models")
                cw = data_adapter.class_weights_to_sample(class_weight, ys[0], "fit()")
                sw = cw if sw is None else sw * cw
            val_arrays = None
            if validation_data is None and validation_split:
                (xs, ys, sw), val_arrays = data_adapter.split_validation(
                    xs, ys, sw, float(validation_split))
            batches = data_adapter.ArrayBatches(xs, ys, sw, batch_size, steps_per_epoch)
            if val_arrays is not None:
                validation_data = val_arrays
                val_prepared = True
        val = None
        if validation_data is not None:
            if locals().get("val_prepared"):
                vx, vy, vsw = validation_data
                val = data_adapter.ArrayBatches(vx, vy, vsw, validation_batch_size,
                                                validation_steps)
            elif data_adapter.is_batch_source(validation_data):
                val = data_adapter.IterableBatches(validation_data, validation_steps)
            else:
                if not isinstance(validation_data, (tuple, list)) or \
                        len(validation_data) not in (2, 3):
                    raise ValueError("validation_data must be a tuple (x_val, y_val) or "
                                     "(x_val, y_val, val_sample_weight), or a dataset")
                vx, vy, vsw = self._prepare_data(*validation_data[:2],
                                                 validation_data[2] if len(validation_data)
                                                 == 3 else None, "fit(validation_data)")
                val = data_adapter.ArrayBatches(vx, vy, vsw, validation_batch_size,
                                                validation_steps)
        return self._fit_loop(batches, val, epochs, initial_epoch, verbose, callbacks,
                              bool(shuffle), validation_freq)

    def _fit_loop(self, batches, val, epochs, initial_epoch, verbose, callbacks, shuffle,
                  validation_freq):
        if isinstance(batches, data_adapter.IterableBatches) and not (
                self.built and self._metrics_built):
            first = batches.peek()          # a Sequential or subclassed model is built by it
            if first is not None:
                self._prepare_batch(first, "fit")
        self._require_built("fit")
        self._build_metrics()
        # the user's callbacks, then History and the progress bar (Keras' order: History
        # records what the callbacks add to the logs, e.g. ReduceLROnPlateau's learning_rate)
        cb = callbacks_mod.CallbackList(callbacks, add_history=True, add_progbar=verbose != 0)
        history = cb._history
        self._terminate_on_nan = any(isinstance(c, callbacks_mod.TerminateOnNaN)
                                     for c in cb.callbacks)
        self.stop_training = False
        self._train = _Step(self, True)
        self._test = _Step(self, False)
        build = getattr(self.optimizer, "build", None)
        if build is not None:                # slots in the model's weight order (Keras')
            build(self.trainable_weights)
        self._has_regularizers = any(v.regularizer is not None for v in self.trainable_weights)
        params = {"verbose": verbose, "epochs": epochs, "steps": batches.steps,
                  "metric_names": self.metrics_names}
        cb.set_model(self)
        cb.set_params(params)
        interrupt = _Interrupt()
        logs: dict[str, float] = {}
        epoch = initial_epoch
        with interrupt.armed():
            cb.call("on_train_begin", None)
            resumed = self.__dict__.pop("_initial_epoch", None)     # set by BackupAndRestore
            initial_epoch = epoch = resumed or initial_epoch
            for epoch in range(initial_epoch, epochs):
                self.reset_metrics()
                cb.call("on_epoch_begin", epoch, None)
                for step, batch in self._batches(batches, shuffle, "fit"):
                    if interrupt.requested:
                        break
                    self._where = f"epoch {epoch + 1}, batch {step + 1}"
                    cb.call("on_train_batch_begin", step, None)
                    logs = self.train_step(batch)
                    cb.call("on_train_batch_end", step, logs)
                    if self.stop_training:
                        break
                if interrupt.requested:
                    break
                epoch_logs = dict(logs)
                if val is not None and self._validate_now(epoch, validation_freq):
                    cb.call("on_test_begin", None)
                    val_logs = self._evaluate_batches(val, cb)
                    cb.call("on_test_end", val_logs)
                    epoch_logs.update({f"val_{k}": v for k, v in val_logs.items()})
                if interrupt.requested:
                    break
                cb.call("on_epoch_end", epoch, epoch_logs)
                if self.stop_training or interrupt.requested:
                    break
            if interrupt.requested:     # wherever it arrived: batches, validation, callbacks
                print(f"\nTraining interrupted (Ctrl-C) at epoch {epoch + 1}: the model keeps "
                      "the weights of the last finished batch; the history holds the finished "
                      "epochs.", file=sys.stderr)
                history.interrupted = True
            finalize = getattr(self.optimizer, "finalize_variable_values", None)
            if finalize is not None and getattr(self.optimizer, "use_ema", False):
                finalize(self.trainable_weights)
            cb.call("on_train_end", logs)
        self.history = history
        history.params = params
        history.model = self
        return history

    def _batches(self, batches, shuffle: bool, where: str):
        """(step, prepared batch) for one epoch; the plan's references to the batch are
        dropped when the epoch ends."""
        try:
            if isinstance(batches, data_adapter.ArrayBatches):
                for step, xb, yb, swb in batches.epoch_iterator(shuffle):
                    x = xb if len(xb) > 1 else xb[0]
                    y = None if yb is None else (yb if len(yb) > 1 else yb[0])
                    yield step, (x, y, swb)
            else:
                for step, raw in batches.epoch_iterator(shuffle):
                    xs, ys, sw = self._prepare_batch(raw, where, need_y=where != "predict")
                    x = xs if len(xs) > 1 else xs[0]
                    y = None if ys is None else (ys if len(ys) > 1 else ys[0])
                    yield step, (x, y, sw)
        finally:
            for name in ("_train", "_test"):
                step = self.__dict__.get(name)
                if step is not None:
                    step.plan.release()

    @staticmethod
    def _validate_now(epoch: int, freq) -> bool:
        if isinstance(freq, (list, tuple)):
            return (epoch + 1) in freq
        return (epoch + 1) % int(freq) == 0

    # ---- evaluate --------------------------------------------------------------------------------
    def _evaluate_batches(self, batches, cb) -> dict[str, float]:
        if self.__dict__.get("_test") is None:
            self._test = _Step(self, False)
            self._has_regularizers = any(v.regularizer is not None
                                         for v in self.trainable_weights)
        self.reset_metrics()
        logs: dict[str, float] = {}
        for step, batch in self._batches(batches, False, "evaluate"):
            if cb:
                cb.call("on_test_batch_begin", step, None)
            logs = self.test_step(batch)
            if cb:
                cb.call("on_test_batch_end", step, logs)
        if not logs:
            logs = self._logs()
        return logs

    def evaluate(self, x=None, y=None, batch_size: Optional[int] = None, verbose="auto",
                 sample_weight=None, steps=None, callbacks=None, return_dict: bool = False,
                 max_queue_size=10, workers=1, use_multiprocessing=False):
        """Loss and metrics on the data: a float when there is only the loss, else
        ``[loss, ..., metric, ...]`` in Keras' order (a dict with ``return_dict=True``)."""
        self._require_compiled("evaluate")
        batch_size = _positive(batch_size, "batch_size", 32)
        steps = _positive(steps, "steps", None)
        verbose = _verbosity(verbose)
        with self._lock:
            batches = data_adapter.make_batches(
                x, y, sample_weight, batch_size, steps,
                lambda a, b, c: self._prepare_data(a, b, c, "evaluate"), "evaluate")
            self._build_metrics_from(batches)
            self._test = _Step(self, False)
            self._has_regularizers = any(v.regularizer is not None
                                         for v in self.trainable_weights)
            cb = callbacks_mod.CallbackList(
                callbacks, add_progbar=verbose != 0, model=self, verbose=verbose, epochs=1,
                steps=batches.steps, metric_names=self.metrics_names)
            cb.call("on_test_begin", None)
            logs = self._evaluate_batches(batches, cb)
            cb.call("on_test_end", logs)
        if return_dict:
            return logs
        values = list(logs.values())
        return values[0] if len(values) == 1 else values

    def _build_metrics_from(self, batches) -> None:
        if not self._metrics_built and self.built:
            self._build_metrics()

    # ---- predict ---------------------------------------------------------------------------------
    def predict(self, x, batch_size: Optional[int] = None, verbose="auto", steps=None,
                callbacks=None, max_queue_size=10, workers=1, use_multiprocessing=False):
        """The model's outputs for ``x``, computed in batches (default 32), as float32 (a list
        or dict of arrays for several outputs)."""
        batch_size = _positive(batch_size, "batch_size", 32)
        steps = _positive(steps, "steps", None)
        verbose = _verbosity(verbose)
        with self._lock:
            if data_adapter.is_batch_source(x):
                batches = data_adapter.IterableBatches(x, steps)
            else:
                xs = self._prepare_inputs(x, "predict(x)")
                batches = data_adapter.ArrayBatches(xs, None, None, batch_size, steps)
            cb = callbacks_mod.CallbackList(callbacks, add_progbar=verbose != 0, model=self,
                                            verbose=verbose, epochs=1, steps=batches.steps,
                                            metric_names=[])
            cb.call("on_predict_begin", None)
            chunks: list[list[np.ndarray]] = []
            if isinstance(batches, data_adapter.IterableBatches) and not self.built:
                first = batches.peek()
                if first is not None:
                    self._prepare_inputs(data_adapter.unpack(first)[0], "predict(x)")
            self._require_built("predict")
            self._predict = self.compiled_plan(False)
            locks = _layer_locks(self)
            try:
                for step, batch in self._predict_batches(batches):
                    cb.call("on_predict_batch_begin", step, None)
                    for lock in locks:
                        lock.acquire()
                    try:
                        outs = self.predict_step(batch)
                        chunks.append([np.array(o, dtype=np.float32, copy=True)
                                       for o in outs])
                    finally:
                        for lock in reversed(locks):
                            lock.release()
                    cb.call("on_predict_batch_end", step, {"outputs": chunks[-1]})
            finally:
                self._predict.release()
            cb.call("on_predict_end", None)
        if not chunks:
            raise ValueError("predict(): the data yielded no batches")
        result = [np.concatenate([c[i] for c in chunks]) if len(chunks) > 1 else chunks[0][i]
                  for i in range(len(chunks[0]))]
        return self._pack_outputs(result)

    def _predict_batches(self, batches):
        if isinstance(batches, data_adapter.ArrayBatches):
            for step, xb, _, _ in batches.epoch_iterator(False):
                yield step, (xb if len(xb) > 1 else xb[0],)
        else:
            for step, raw in batches.epoch_iterator(False):
                x, _, _ = data_adapter.unpack(raw)
                xs = self._prepare_inputs(x, "predict(x)")
                yield step, (xs if len(xs) > 1 else xs[0],)

    # ---- tf.keras 2's generator aliases ----------------------------------------------------------
    def fit_generator(self, generator, *args, **kwargs):
        """Deprecated alias of ``fit`` (tf.keras 2)."""
        import warnings
        warnings.warn("`Model.fit_generator` is deprecated and will be removed in a future "
                      "version. Please use `Model.fit`, which supports generators.",
                      DeprecationWarning, stacklevel=2)
        return self.fit(generator, *args, **kwargs)

    def evaluate_generator(self, generator, *args, **kwargs):
        """Deprecated alias of ``evaluate`` (tf.keras 2)."""
        import warnings
        warnings.warn("`Model.evaluate_generator` is deprecated and will be removed in a "
                      "future version. Please use `Model.evaluate`, which supports "
                      "generators.", DeprecationWarning, stacklevel=2)
        return self.evaluate(generator, *args, **kwargs)

    def predict_generator(self, generator, *args, **kwargs):
        """Deprecated alias of ``predict`` (tf.keras 2)."""
        import warnings
        warnings.warn("`Model.predict_generator` is deprecated and will be removed in a "
                      "future version. Please use `Model.predict`, which supports "
                      "generators.", DeprecationWarning, stacklevel=2)
        return self.predict(generator, *args, **kwargs)
