"""Callbacks that change the optimizer's learning rate between epochs: ``ReduceLROnPlateau``
and ``LearningRateScheduler`` (Keras 3's). Both add the epoch's ``learning_rate`` to the
epoch logs, so ``history.history["learning_rate"]`` records it."""
from __future__ import annotations

import warnings
from typing import Callable

import numpy as np

from .callback import Callback
from .monitor import MonitorCallback, _number


def _optimizer(model, who: str):
    opt = getattr(model, "optimizer", None)
    if opt is None or not hasattr(opt, "learning_rate"):
        raise ValueError(f'{who}: the optimizer must have a "learning_rate" attribute '
                         "(compile the model first).")
    return opt


def _log_learning_rate(model, logs) -> None:
    if logs is not None:
        logs["learning_rate"] = float(np.asarray(model.optimizer.learning_rate))


class ReduceLROnPlateau(MonitorCallback):
    """Reduce the learning rate when a monitored value has stopped improving.

    When ``monitor`` has not improved by more than ``min_delta`` for ``patience`` epochs, the
    learning rate becomes ``max(learning_rate * factor, min_lr)``; then ``cooldown`` epochs
    pass before counting again. The optimizer needs a float learning rate (not a schedule).

    Args:
        monitor: the value to watch. Defaults to ``"val_loss"``.
        factor: the multiplier of the learning rate, below 1. Defaults to 0.1.
        patience: epochs without improvement before a reduction. Defaults to 10.
        verbose: 1 prints ``Epoch 5: ReduceLROnPlateau reducing learning rate to 0.0001.``
        mode: ``"auto"``, ``"min"`` or ``"max"`` (see ``MonitorCallback``).
        min_delta: the least change that counts as an improvement. Defaults to 1e-4.
        cooldown: epochs to wait after a reduction before counting again.
        min_lr: the learning rate's lower bound.

    Example:
        >>> reduce_lr = ReduceLROnPlateau(monitor="val_loss", factor=0.2, patience=5,
        ...                               min_lr=0.001)                      # doctest: +SKIP
        >>> model.fit(x, y, validation_split=0.2, callbacks=[reduce_lr])     # doctest: +SKIP
    """

    def __init__(self, monitor: str = "val_loss", factor: float = 0.1, patience: int = 10,
                 verbose: int = 0, mode: str = "auto", min_delta: float = 1e-4,
                 cooldown: int = 0, min_lr: float = 0.0, **kwargs):
        if "epsilon" in kwargs:                  # tf.keras 2's old name of min_delta
            min_delta = kwargs.pop("epsilon")
            warnings.warn("`epsilon` argument is deprecated and will be removed, use "
                          "`min_delta` instead.", stacklevel=2)
        if kwargs:
            raise TypeError(f"Unrecognized keyword arguments passed to ReduceLROnPlateau: "
                            f"{kwargs}")
        super().__init__(monitor, mode, min_delta=min_delta)
        factor = _number(factor, "factor")
        if factor >= 1.0:
            raise ValueError(f"ReduceLROnPlateau does not support a factor >= 1.0. Received "
                             f"factor={factor}")
        self.factor = factor
        self.min_lr = _number(min_lr, "min_lr")
        self.patience = patience
        self.verbose = verbose
        self.cooldown = cooldown
        self.cooldown_counter = 0
        self.wait = 0

    def _reset(self) -> None:
        self.best = None
        self.cooldown_counter = 0
        self.wait = 0

    def on_train_begin(self, logs=None):
        self._reset()

    def in_cooldown(self) -> bool:
        return self.cooldown_counter > 0

    def _reduce_lr(self, epoch: int) -> bool:
        opt = _optimizer(self.model, "ReduceLROnPlateau")
        old_lr = float(np.asarray(opt.learning_rate))
        if old_lr > np.float32(self.min_lr):
            new_lr = max(old_lr * self.factor, self.min_lr)
            opt.learning_rate = new_lr
            if self.verbose > 0:
                print(f"\nEpoch {epoch + 1}: ReduceLROnPlateau reducing learning rate to "
                      f"{new_lr}.")
            return True
        return False

    def on_epoch_end(self, epoch, logs=None):
        if self.monitor_op is None:
            self._set_monitor_op()
        logs = logs if logs is not None else {}
        _optimizer(self.model, "ReduceLROnPlateau")
        _log_learning_rate(self.model, logs)
        current = logs.get(self.monitor)
        if current is None:
            warnings.warn(f"Learning rate reduction is conditioned on metric `{self.monitor}` "
                          "which is not available. Available metrics are: "
                          f"{','.join(list(logs.keys()))}.", stacklevel=2)
            return
        if self.in_cooldown():
            self.cooldown_counter -= 1
            self.wait = 0
        if self._is_improvement(current, self.best):
            self.best = current
            self.wait = 0
        elif not self.in_cooldown():
            self.wait += 1
            if self.wait >= self.patience and self._reduce_lr(epoch):
                self.cooldown_counter = self.cooldown
                self.wait = 0


class LearningRateScheduler(Callback):
    """Set the learning rate at the start of every epoch from ``schedule``.

    Args:
        schedule: a function of the epoch index (from 0) and the current learning rate,
            ``schedule(epoch, lr)``, or of the epoch alone, ``schedule(epoch)``; it returns the
            new learning rate as a float.
        verbose: 1 prints ``Epoch 3: LearningRateScheduler setting learning rate to 0.001.``

    Example:
        >>> def scheduler(epoch, lr):
        ...     return lr if epoch < 10 else lr * math.exp(-0.1)
        >>> model.fit(x, y, epochs=15,
        ...           callbacks=[LearningRateScheduler(scheduler)])        # doctest: +SKIP
    """

    def __init__(self, schedule: Callable, verbose: int = 0):
        super().__init__()
        if not callable(schedule):
            raise TypeError(f"schedule must be a function of the epoch (and the learning "
                            f"rate). Received: schedule={schedule!r}")
        self.schedule = schedule
        self.verbose = verbose

    def on_epoch_begin(self, epoch, logs=None):
        opt = _optimizer(self.model, "LearningRateScheduler")
        try:                                    # schedule(epoch, lr), else schedule(epoch)
            lr = self.schedule(epoch, float(np.asarray(opt.learning_rate)))
        except TypeError:
            lr = self.schedule(epoch)
        if isinstance(lr, (bool, np.bool_)) or not isinstance(lr, (float, np.float32,
                                                                   np.float64)):
            raise ValueError(f"The output of the `schedule` function should be a float. "
                             f"Got: {lr}")
        opt.learning_rate = lr
        if self.verbose > 0:
            print(f"\nEpoch {epoch + 1}: LearningRateScheduler setting learning rate to "
                  f"{lr}.")

    def on_epoch_end(self, epoch, logs=None):
        _log_learning_rate(self.model, logs)
