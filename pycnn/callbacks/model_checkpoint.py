"""``ModelCheckpoint`` (Keras 3's ``keras.callbacks.ModelCheckpoint``; file names and printed
messages as tf.keras 2.15 also accepted and printed them)."""
from __future__ import annotations

import os
import warnings

import numpy as np

from .monitor import MonitorCallback

_WEIGHTS_SUFFIXES = (".weights.h5", ".h5", ".hdf5")
_MODEL_SUFFIXES = (".keras", ".h5", ".hdf5")


def _save_freq(value):
    if value == "epoch" and isinstance(value, str):
        return value
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value <= 0:
        raise ValueError(f"Unrecognized save_freq: {value}. Expected save_freq are 'epoch' or "
                         "integer values")
    return int(value)


class ModelCheckpoint(MonitorCallback):
    """Save the model or its weights during training.

    ``filepath`` may contain ``{epoch}`` (counted from 1), ``{batch}`` (with an integer
    ``save_freq``) and any value of the logs, in ``str.format`` style:
    ``"ckpt/model.{epoch:02d}-{val_loss:.2f}.keras"`` saves ``ckpt/model.03-0.41.keras``.
    Missing folders are created; every file is written whole or not at all (through
    ``model.save`` / ``model.save_weights``).

    Args:
        filepath: where to save. The whole model needs a name ending in ``.keras`` (Keras 3's
            format) or ``.h5`` (tf.keras 2's); ``save_weights_only=True`` needs
            ``.weights.h5`` (Keras 3) or ``.h5`` (tf.keras 2's HDF5 weights).
        monitor: the logs value that decides what "best" means. Defaults to ``"val_loss"``.
        verbose: 1 prints a line for every save (or skipped save).
        save_best_only: save only when ``monitor`` improved on the best so far (with a fixed
            ``filepath`` the file always holds the best model).
        save_weights_only: save ``model.save_weights(filepath)`` instead of
            ``model.save(filepath)``.
        mode: ``"auto"``, ``"min"`` or ``"max"`` (see ``MonitorCallback``).
        save_freq: ``"epoch"`` (at the end of every epoch) or an integer: every that many
            batches (the logs are then the running values of the epoch so far).
        initial_value_threshold: the best value to beat at the first save (``save_best_only``).

    Example:
        >>> checkpoint = ModelCheckpoint("best.keras", monitor="val_accuracy",
        ...                              save_best_only=True, verbose=1)    # doctest: +SKIP
        >>> model.fit(x, y, validation_split=0.1, epochs=10,
        ...           callbacks=[checkpoint])                              # doctest: +SKIP
    """

    def __init__(self, filepath, monitor: str = "val_loss", verbose: int = 0,
                 save_best_only: bool = False, save_weights_only: bool = False,
                 mode: str = "auto", save_freq="epoch", initial_value_threshold=None):
        super().__init__(monitor, mode, initial_value_threshold)
        self.verbose = verbose
        self.filepath = os.fspath(filepath)
        self.save_best_only = bool(save_best_only)
        self.save_weights_only = bool(save_weights_only)
        self.save_freq = _save_freq(save_freq)
        self._batches_seen_since_last_saving = 0
        self._last_batch_seen = 0
        self._current_epoch = 0
        if self.save_weights_only:
            if not self.filepath.endswith(_WEIGHTS_SUFFIXES):
                raise ValueError(
                    "When using `save_weights_only=True` in `ModelCheckpoint`, the filepath "
                    "provided must end in `.weights.h5` (Keras weights format) or `.h5` "
                    f"(tf.keras 2's HDF5 weights). Received: filepath={self.filepath}")
        elif not self.filepath.endswith(_MODEL_SUFFIXES):
            raise ValueError("The filepath provided must end in `.keras` (Keras model format) "
                             f"or `.h5` (tf.keras 2's HDF5 format). Received: "
                             f"filepath={self.filepath}")

    def on_epoch_begin(self, epoch, logs=None):
        self._current_epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        if self._should_save_on_batch(batch):
            self._save_model(self._current_epoch, batch, logs)

    def on_epoch_end(self, epoch, logs=None):
        if self.monitor_op is None:
            self._set_monitor_op()
        if self.save_freq == "epoch":
            self._save_model(epoch, None, logs)

    def _should_save_on_batch(self, batch: int) -> bool:
        if self.save_freq == "epoch":
            return False
        if batch <= self._last_batch_seen:      # a new epoch
            added = batch + 1
        else:
            added = batch - self._last_batch_seen
        self._batches_seen_since_last_saving += added
        self._last_batch_seen = batch
        if self._batches_seen_since_last_saving >= self.save_freq:
            self._batches_seen_since_last_saving = 0
            return True
        return False

    def _should_save_model(self, epoch: int, logs: dict, filepath: str) -> bool:
        if not self.save_best_only:
            if self.verbose > 0:
                print(f"\nEpoch {epoch + 1}: saving model to {filepath}")
            return True
        current = logs.get(self.monitor)
        if current is None:
            warnings.warn(f"Can save best model only with {self.monitor} available.",
                          stacklevel=3)
            return True
        if self.monitor_op is None:             # a save by batch before the first epoch end
            self._set_monitor_op()
        best = self._best_str()
        if self._is_improvement(current, self.best):
            if self.verbose > 0:
                print(f"\nEpoch {epoch + 1}: {self.monitor} improved from {best} to "
                      f"{current:.5f}, saving model to {filepath}")
            self.best = current
            return True
        if self.verbose > 0:
            print(f"\nEpoch {epoch + 1}: {self.monitor} did not improve from {best}")
        return False

    def _save_model(self, epoch: int, batch, logs) -> None:
        logs = logs or {}
        filepath = self._get_file_path(epoch, batch, logs)
        if not self._should_save_model(epoch, logs, filepath):
            return
        dirname = os.path.dirname(filepath)
        if dirname:
            os.makedirs(dirname, exist_ok=True)
        try:
            if self.save_weights_only:
                self.model.save_weights(filepath, overwrite=True)
            else:
                self.model.save(filepath, overwrite=True)
        except IsADirectoryError:
            raise IOError("Please specify a non-directory filepath for ModelCheckpoint. "
                          f"Filepath used is an existing directory: {filepath}") from None

    def _get_file_path(self, epoch: int, batch, logs: dict) -> str:
        """``filepath`` formatted with the epoch (from 1), the batch (from 1) and the logs."""
        try:
            if batch is None or "batch" in logs:
                return self.filepath.format(epoch=epoch + 1, **logs)
            return self.filepath.format(epoch=epoch + 1, batch=batch + 1, **logs)
        except KeyError as err:
            raise KeyError(f'Failed to format this callback filepath: "{self.filepath}". '
                           f"Reason: {err}") from None
