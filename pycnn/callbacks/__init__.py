"""Callbacks, as in Keras (``keras.callbacks``): hooks called by ``fit``/``evaluate``/
``predict``. ``History`` and the progress bar (``ProgbarLogger``) are added by ``fit`` itself.

- ``EarlyStopping``, ``ModelCheckpoint``, ``ReduceLROnPlateau``, ``LearningRateScheduler``,
  ``CSVLogger``, ``BackupAndRestore``, ``TensorBoard`` (needs the ``tensorboard`` package),
  ``TerminateOnNaN``, ``LambdaCallback``;
- ``Callback`` (subclass it for your own), ``CallbackList``, ``History``, ``ProgbarLogger``.
"""
from __future__ import annotations

from .backup_and_restore import BackupAndRestore
from .callback import Callback, CallbackList
from .csv_logger import CSVLogger
from .early_stopping import EarlyStopping
from .history import History
from .lambda_callback import LambdaCallback, TerminateOnNaN
from .learning_rate import LearningRateScheduler, ReduceLROnPlateau
from .model_checkpoint import ModelCheckpoint
from .monitor import MonitorCallback
from .progbar_logger import ProgbarLogger
from .tensorboard import TensorBoard

__all__ = ["BackupAndRestore", "CSVLogger", "Callback", "CallbackList", "EarlyStopping",
           "History", "LambdaCallback", "LearningRateScheduler", "ModelCheckpoint",
           "MonitorCallback", "ProgbarLogger", "ReduceLROnPlateau", "TensorBoard",
           "TerminateOnNaN"]
