"""``EarlyStopping`` (Keras 3's ``keras.callbacks.EarlyStopping``)."""
from __future__ import annotations

import warnings
from typing import Optional

from .monitor import MonitorCallback, _number


def _non_negative_int(value, arg: str) -> int:
    if isinstance(value, bool) or not hasattr(value, "__index__") or int(value) < 0:
        raise ValueError(f"{arg} must be a non-negative integer. Received: {arg}={value!r}")
    return int(value)


class EarlyStopping(MonitorCallback):
    """Stop training when a monitored value has stopped improving.

    At the end of every epoch the value ``monitor`` of the logs is compared with the best so
    far: it improves when it is better by more than ``min_delta``. After ``patience`` epochs in
    a row without improvement, ``model.stop_training`` is set and ``fit`` ends.

    Args:
        monitor: the value to watch. Defaults to ``"val_loss"``.
        min_delta: the least change that counts as an improvement. Defaults to 0.
        patience: epochs without improvement before stopping. Defaults to 0.
        verbose: 1 prints ``Epoch 7: early stopping`` and the restoring message.
        mode: ``"auto"``, ``"min"`` or ``"max"`` (see ``MonitorCallback``).
        baseline: training stops if the value does not improve on this within ``patience``
            epochs (the best epoch's weights are still restored).
        restore_best_weights: at the end of training, put back the weights of the best epoch
            (also when training ran to its last epoch without stopping early, as Keras 3 does).
        start_from_epoch: epochs to wait before monitoring (a warm-up).

    Example:
        >>> stop = EarlyStopping(monitor="val_loss", patience=3,
        ...                      restore_best_weights=True)                 # doctest: +SKIP
        >>> model.fit(x, y, validation_split=0.2, epochs=100, callbacks=[stop])  # doctest: +SKIP
    """

    def __init__(self, monitor: str = "val_loss", min_delta=0, patience: int = 0,
                 verbose: int = 0, mode: str = "auto", baseline: Optional[float] = None,
                 restore_best_weights: bool = False, start_from_epoch: int = 0):
        super().__init__(monitor, mode, min_delta=min_delta)
        self.patience = _non_negative_int(patience, "patience")
        self.verbose = verbose
        self.baseline = _number(baseline, "baseline")
        self.restore_best_weights = bool(restore_best_weights)
        self.start_from_epoch = _non_negative_int(start_from_epoch, "start_from_epoch")
        self.wait = 0
        self.stopped_epoch = 0
        self.best_weights = None
        self.best_epoch = 0

    def on_train_begin(self, logs=None):
        # an instance may be reused by several fit() calls
        self.wait = 0
        self.stopped_epoch = 0
        self.best = None
        self.best_weights = None
        self.best_epoch = 0

    def on_epoch_end(self, epoch, logs=None):
        if self.monitor_op is None:
            self._set_monitor_op()
        current = self.get_monitor_value(logs)
        if current is None or epoch < self.start_from_epoch:
            return
        if self.restore_best_weights and self.best_weights is None:
            # the first monitored epoch is the best until another improves on it
            self.best_weights = self.model.get_weights()
            self.best_epoch = epoch
        self.wait += 1
        if self._is_improvement(current, self.best):
            self.best = current
            self.best_epoch = epoch
            if self.restore_best_weights:
                self.best_weights = self.model.get_weights()
            # the wait restarts only when the value beats the baseline too
            if self.baseline is None or self._is_improvement(current, self.baseline):
                self.wait = 0
            return
        if self.wait >= self.patience and epoch > 0:
            self.stopped_epoch = epoch
            self.model.stop_training = True

    def on_train_end(self, logs=None):
        if self.stopped_epoch > 0 and self.verbose > 0:
            print(f"Epoch {self.stopped_epoch + 1}: early stopping")
        if self.restore_best_weights and self.best_weights is not None:
            if self.verbose > 0:
                print("Restoring model weights from the end of the best epoch: "
                      f"{self.best_epoch + 1}.")
            self.model.set_weights(self.best_weights)

    def get_monitor_value(self, logs):
        logs = logs or {}
        value = logs.get(self.monitor)
        if value is None:
            warnings.warn(f"Early stopping conditioned on metric `{self.monitor}` which is not "
                          f"available. Available metrics are: {','.join(list(logs.keys()))}",
                          stacklevel=2)
        return value
