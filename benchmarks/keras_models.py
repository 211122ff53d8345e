"""The two lecture models in Keras 3, exactly as the lecture writes them.  Used only by
benchmarks/run.py (in a child process with KERAS_BACKEND=torch set before keras is
imported); importing this module requires keras."""
import keras

import lecture_models


def build(name):
    return lecture_models.build(keras, name)


class EpochTimer(keras.callbacks.Callback):
    def __init__(self, clock):
        super().__init__()
        self.clock = clock
        self.epochs = []

    def on_epoch_begin(self, epoch, logs=None):
        self._t0 = self.clock()

    def on_epoch_end(self, epoch, logs=None):
        dt = self.clock() - self._t0
        logs = logs or {}
        self.epochs.append({"seconds": dt, "loss": float(logs.get("loss", float("nan"))),
                            "accuracy": float(logs.get("accuracy", float("nan")))})
