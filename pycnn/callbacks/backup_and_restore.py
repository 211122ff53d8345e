"""``BackupAndRestore`` (Keras 3's ``keras.callbacks.BackupAndRestore``): resume an
interrupted ``fit`` where it stopped."""
from __future__ import annotations

import io
import json
import os
import shutil

import numpy as np

from ..utils.file_io import atomic_write
from .callback import Callback
from .model_checkpoint import ModelCheckpoint, _save_freq

WEIGHTS_FILE = "latest.weights.h5"
METADATA_FILE = "training_metadata.json"


class BackupAndRestore(Callback):
    """Back up the training state so that a ``fit`` interrupted by an error, a crash or Ctrl-C
    resumes from the last backup when ``fit`` is called again with this callback.

    At the end of every epoch (or every ``save_freq`` batches) the model's weights and the
    optimizer's state (iteration count, learning rate, slots) are written to
    ``backup_dir/latest.weights.h5`` (Keras 3's weights layout with an ``optimizer`` group)
    and the epoch to ``backup_dir/training_metadata.json``; each file is written whole or not
    at all. When ``fit`` starts and a backup exists, the weights and optimizer state are
    loaded and training continues at the saved epoch (``initial_epoch`` is replaced), so with
    ``shuffle=False`` the result is the one of an uninterrupted run. When training ends
    normally (all epochs done, or stopped by a callback), the backup is deleted.

    Args:
        backup_dir: the folder of the backup (created when needed). Use one folder per
            training run.
        save_freq: ``"epoch"`` or an integer: back up every that many batches (a resumed run
            then repeats the unfinished epoch from its start, with the mid-epoch weights).
        double_checkpoint: keep the previous backup as ``*.bkp`` beside the latest, used if the
            latest cannot be read.
        delete_checkpoint: delete the backup when training ends normally. pycnn deletes only
            its own two files (and the folder if that leaves it empty), never other files.

    Example:
        >>> backup = BackupAndRestore(backup_dir="/tmp/backup")          # doctest: +SKIP
        >>> model.fit(x, y, epochs=10, callbacks=[backup])               # doctest: +SKIP
        >>> # ...interrupted at epoch 4; the same call again resumes at epoch 4
    """

    def __init__(self, backup_dir, save_freq="epoch", double_checkpoint: bool = False,
                 delete_checkpoint: bool = True):
        super().__init__()
        if not backup_dir:
            raise ValueError("Empty `backup_dir` argument passed")
        try:
            self.save_freq = _save_freq(save_freq)
        except ValueError:
            raise ValueError(f"Invalid value for argument `save_freq`. Received: "
                             f"save_freq={save_freq}. Expected either 'epoch' or an integer "
                             "value.") from None
        self.backup_dir = os.fspath(backup_dir)
        self.double_checkpoint = bool(double_checkpoint)
        self.delete_checkpoint = bool(delete_checkpoint)
        self._weights_path = os.path.join(self.backup_dir, WEIGHTS_FILE)
        self._training_metadata_path = os.path.join(self.backup_dir, METADATA_FILE)
        self._prev_weights_path = self._weights_path + ".bkp"
        self._prev_training_metadata_path = self._training_metadata_path + ".bkp"
        self._batches_seen_since_last_saving = 0
        self._last_batch_seen = 0
        self._current_epoch = 0
        self._finished = False

    # ---- restore -----------------------------------------------------------------------------
    def on_train_begin(self, logs=None):
        self._finished = False
        self._batches_seen_since_last_saving = 0
        self._last_batch_seen = 0
        try:
            self._load_model()
        except (OSError, ValueError, KeyError):
            if not os.path.exists(self._prev_weights_path):
                raise
            shutil.copyfile(self._prev_weights_path, self._weights_path)
            if os.path.exists(self._prev_training_metadata_path):
                shutil.copyfile(self._prev_training_metadata_path,
                                self._training_metadata_path)
            elif os.path.exists(self._training_metadata_path):
                os.remove(self._training_metadata_path)
            self._load_model()

    def _load_model(self) -> None:
        model = self.model
        if not model.built:
            raise ValueError("To use the BackupAndRestore callback, you model must be built "
                             f"before you call `fit()`. Model {model} is unbuilt. You can "
                             "build it beforehand by calling it on a batch of data.")
        epoch = None
        if os.path.exists(self._weights_path):
            from ..saving import keras_h5
            opt = getattr(model, "optimizer", None)
            if opt is not None and hasattr(opt, "build"):
                opt.build(model.trainable_weights)
            with keras_h5.open_weights(self._weights_path, "r") as h5:
                keras_h5.read(model, h5, self._weights_path, load_optimizer=True)
                if "epoch" in h5.attrs:
                    epoch = int(h5.attrs["epoch"])
        if os.path.exists(self._training_metadata_path):
            with open(self._training_metadata_path, encoding="utf-8") as f:
                metadata = json.load(f)
            if epoch is None:           # a backup written by Keras: only the JSON has it
                epoch = int(metadata["epoch"])
        if epoch is not None:
            self._current_epoch = epoch
            model._initial_epoch = epoch    # fit() starts there (Keras 3's mechanism)
            epochs = self.params.get("epochs")
            if epochs is not None and epoch >= epochs:
                self._finished = True

    # ---- back up -----------------------------------------------------------------------------
    def on_epoch_end(self, epoch, logs=None):
        self._current_epoch = epoch + 1
        self._last_batch_seen = 0
        if self.save_freq == "epoch":
            self._save_model()
        epochs = self.params.get("epochs")
        if epochs is not None and epoch + 1 >= epochs:
            self._finished = True

    def on_train_batch_end(self, batch, logs=None):
        if self._should_save_on_batch(batch):
            self._save_model()

    # the same batch count as ModelCheckpoint's (the same attributes)
    _should_save_on_batch = ModelCheckpoint._should_save_on_batch

    def _save_model(self) -> None:
        from ..saving import keras_h5
        os.makedirs(self.backup_dir, exist_ok=True)
        if self.double_checkpoint:
            for path, prev in ((self._weights_path, self._prev_weights_path),
                               (self._training_metadata_path,
                                self._prev_training_metadata_path)):
                if os.path.exists(path):
                    with open(path, "rb") as src, atomic_write(prev) as dst:
                        shutil.copyfileobj(src, dst)
        buf = io.BytesIO()
        locked = getattr(self.model, "_weights_locked", None)
        with keras_h5.open_weights(buf, "w") as h5:
            if locked is not None:
                with locked():
                    keras_h5.write(self.model, h5, include_optimizer=True)
            else:
                keras_h5.write(self.model, h5, include_optimizer=True)
            h5.attrs["epoch"] = np.int64(self._current_epoch)
        with atomic_write(self._weights_path) as f:
            f.write(buf.getvalue())
        with atomic_write(self._training_metadata_path, "w") as f:
            f.write(json.dumps({"epoch": self._current_epoch, "batch": self._last_batch_seen}))

    # ---- clean up ----------------------------------------------------------------------------
    def on_train_end(self, logs=None):
        # Keras never reaches on_train_end when fit is interrupted; pycnn's fit ends normally
        # after a Ctrl-C, so the backup is kept unless the training really finished.
        finished = self._finished or bool(getattr(self.model, "stop_training", False))
        if self.delete_checkpoint and finished:
            for path in (self._weights_path, self._training_metadata_path,
                         self._prev_weights_path, self._prev_training_metadata_path):
                if os.path.exists(path):
                    os.remove(path)
            try:
                os.rmdir(self.backup_dir)
            except OSError:
                pass                    # not empty (other files), or already gone
