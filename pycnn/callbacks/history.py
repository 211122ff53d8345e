"""``History``: what ``fit`` returns (Keras' ``keras.callbacks.History``)."""
from __future__ import annotations

from .callback import Callback


class History(Callback):
    """Records each epoch's logs: ``history.history["loss"]``, ``history.epoch``,
    ``history.params``. ``fit`` adds one to its callbacks (after the user's, as Keras, so the
    ``learning_rate`` that ``ReduceLROnPlateau`` or ``LearningRateScheduler`` add to the logs
    is recorded) and returns it; it is also ``model.history``."""

    def __init__(self):
        super().__init__()
        self.history: dict[str, list] = {}
        self.epoch: list[int] = []

    def on_train_begin(self, logs=None):
        # as Keras: the epochs restart, the values of an instance passed to several fit()
        # calls accumulate (fit makes a new History for every call otherwise)
        self.epoch = []

    def on_epoch_end(self, epoch, logs=None):
        self.epoch.append(epoch)
        for k, v in (logs or {}).items():
            self.history.setdefault(k, []).append(v)
        if self.model is not None:
            self.model.history = self
