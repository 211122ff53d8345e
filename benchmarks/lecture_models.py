"""The lecture's two models, written once against the Keras API and built with whichever
framework module is passed in (``pycnn`` or ``keras``): the same code serves both, which is the
point of pycnn. Used by benchmarks/run.py and benchmarks/keras_models.py."""


def build(keras, name):
    """``keras``: the framework module (``import pycnn`` or ``import keras``); ``name``:
    ``"dense"`` or ``"convnet"``. Returns the compiled model."""
    layers = keras.layers
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
        raise ValueError(f"unknown lecture model {name!r}; expected 'dense' or 'convnet'")
    model.compile(optimizer="rmsprop", loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    return model
