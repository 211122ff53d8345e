"""The two lecture models in Keras 3, exactly as the lecture writes them.  Used only by
benchmarks/run.py (in a child process with KERAS_BACKEND=torch set before keras is
imported); importing this module requires keras."""
import keras
from keras import layers


def build(name):
    if name == "dense":
        model = keras.Sequential([
            layers.Dense(512, activation="relu"),
            layers.Dense(10, activation="softmax"),
        ])
    elif name == "convnet":
        inp = keras.Input(shape=(28, 28, 1))
        x = layers.Conv2D(filters=32, kernel_size=3, activation="relu")(inp)
        x = layers.MaxPool2D(pool_size=2)(x)
        x = layers.Conv2D(filters=64, kernel_size=3, activation="relu")(x)
        x = layers.MaxPool2D(pool_size=2)(x)
        x = layers.Conv2D(filters=128, kernel_size=3, activation="relu")(x)
        x = layers.Flatten()(x)
        out = layers.Dense(10, activation="softmax")(x)
        model = keras.Model(inputs=inp, outputs=out)
    else:
        raise ValueError(name)
    model.compile(optimizer="rmsprop", loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    return model


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
