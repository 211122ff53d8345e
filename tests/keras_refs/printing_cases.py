"""Models and progress-bar scenarios built the same way with any Keras-like module (tf_keras,
Keras 3 or pycnn): ``make_printing.py`` records what Keras prints for them, the tests check
that pycnn prints the same. Every layer and model is named, so names do not depend on
counters (the one exception, the subclassed model, is named by its class)."""
from __future__ import annotations


def lecture_convnet(keras, layers):
    inp = keras.Input(shape=(28, 28, 1), name="input_layer")
    x = layers.Conv2D(32, 3, activation="relu", name="conv2d")(inp)
    x = layers.MaxPool2D(pool_size=2, name="max_pooling2d")(x)
    x = layers.Conv2D(64, 3, activation="relu", name="conv2d_1")(x)
    x = layers.MaxPool2D(pool_size=2, name="max_pooling2d_1")(x)
    x = layers.Conv2D(128, 3, activation="relu", name="conv2d_2")(x)
    x = layers.Flatten(name="flatten")(x)
    out = layers.Dense(10, activation="softmax", name="dense")(x)
    return keras.Model(inputs=inp, outputs=out, name="functional")


def lecture_dense(keras, layers):
    model = keras.Sequential([layers.Dense(512, activation="relu", name="dense_1"),
                              layers.Dense(10, activation="softmax", name="dense_2")],
                             name="sequential")
    model.build((None, 784))
    return model


def two_inputs(keras, layers):
    a = keras.Input(shape=(8,), name="in_a")
    b = keras.Input(shape=(4,), name="in_b")
    x = layers.Dense(16, activation="relu", name="dense_a")(a)
    y = layers.Dense(16, activation="relu", name="dense_b")(b)
    c = layers.concatenate([x, y], name="concat")
    return keras.Model([a, b], layers.Dense(1, name="out")(c), name="two_inputs")


def residual(keras, layers):
    i = keras.Input(shape=(32, 32, 3), name="img")
    h = layers.Conv2D(16, 3, padding="same", activation="relu", name="conv_a")(i)
    r = layers.Conv2D(16, 3, padding="same", activation="relu", name="conv_b")(h)
    r = layers.Conv2D(16, 3, padding="same", name="conv_c")(r)
    s = layers.add([h, r], name="add")
    g = layers.GlobalAveragePooling2D(name="gap")(s)
    return keras.Model(i, layers.Dense(10, activation="softmax", name="logits")(g),
                       name="residual")


def shared_layer(keras, layers):
    a = keras.Input(shape=(10,), name="left")
    b = keras.Input(shape=(10,), name="right")
    shared = layers.Dense(8, activation="relu", name="shared")
    c = layers.concatenate([shared(a), shared(b)], name="merge")
    return keras.Model([a, b], layers.Dense(1, activation="sigmoid", name="out")(c),
                       name="siamese")


def nested_sequential_chain(keras, layers):
    inner = keras.Sequential([layers.Dense(32, activation="relu", name="d1"),
                              layers.Dense(16, name="d2")], name="block")
    i = keras.Input(shape=(20,), name="features")
    return keras.Model(i, layers.Dense(3, activation="softmax", name="head")(inner(i)),
                       name="outer")


def nested_sequential_residual(keras, layers):
    inner = keras.Sequential([layers.Dense(8, activation="relu", name="s1"),
                              layers.Dense(8, name="s2")], name="block")
    i = keras.Input(shape=(8,), name="x")
    return keras.Model(i, layers.add([i, inner(i)], name="skip"), name="res_seq")


def nested_functional_chain(keras, layers):
    ii = keras.Input(shape=(6,), name="x_in")
    enc = keras.Model(ii, layers.Dense(4, name="fd")(ii), name="encoder")
    j = keras.Input(shape=(6,), name="top_in")
    return keras.Model(j, layers.Dense(2, name="top_out")(enc(j)), name="with_functional")


def nested_functional_residual(keras, layers):
    ii = keras.Input(shape=(6,), name="enc_in")
    enc = keras.Model(ii, layers.Dense(6, name="enc_d")(ii), name="encoder")
    j = keras.Input(shape=(6,), name="top")
    return keras.Model(j, layers.add([j, enc(j)], name="sum"), name="res_func")


def nested_two_outputs(keras, layers):
    ii = keras.Input(shape=(3,), name="gi")
    two = keras.Model(ii, [layers.Dense(1, name="g1")(ii), layers.Dense(2, name="g2")(ii)],
                      name="twoout")
    k = keras.Input(shape=(3,), name="k")
    o1, o2 = two(k)
    return keras.Model(k, layers.concatenate([o1, o2], name="cat2"), name="uses_twoout")


def reused_from_another_model(keras, layers):
    d = layers.Dense(4, name="reused")
    p = keras.Input(shape=(4,), name="p")
    keras.Model(p, d(p), name="first")
    q = keras.Input(shape=(4,), name="q")
    r = keras.Input(shape=(4,), name="r")
    return keras.Model([q, r], layers.add([d(q), r], name="plus"), name="second")


def layer_called_twice(keras, layers):
    d = layers.Dense(4, name="twice")
    t = keras.Input(shape=(4,), name="t")
    return keras.Model(t, d(d(t)), name="chain_twice")


def shared_on_two_shapes(keras, layers):
    sh = layers.Dense(3, name="sh")
    u = keras.Input(shape=(4,), name="u")
    v = keras.Input(shape=(2, 4), name="v")
    b = layers.Flatten(name="fl")(sh(v))
    return keras.Model([u, v], layers.concatenate([sh(u), b], name="cat"), name="multi_shape")


def two_heads(keras, layers):
    i = keras.Input(shape=(5,), name="inp")
    h = layers.Dense(4, name="trunk")(i)
    return keras.Model(i, [layers.Dense(1, name="head_one")(h),
                           layers.Dense(2, name="head_two")(h)], name="two_heads")


def long_names(keras, layers):
    a = keras.Input(shape=(2,), name="a_rather_long_input_name")
    b = keras.Input(shape=(2,), name="b_rather_long_input_name")
    c = keras.Input(shape=(2,), name="c")
    o = layers.concatenate([a, b, c], name="concatenate_everything_together")
    return keras.Model([a, b, c], o, name="longnames")


def big_dense(keras, layers):
    return keras.Sequential([keras.Input(shape=(784,)), layers.Dense(4096, name="big"),
                             layers.Dense(1000, name="big2")], name="bigseq")


def subclassed(keras, layers):
    class MyModel(keras.Model):
        def __init__(self):
            super().__init__()
            self.d = layers.Dense(5, name="inner_dense")

        def call(self, x):
            return self.d(x)

    first = MyModel()
    first.build((None, 3))
    second = MyModel()
    second.build((None, 3))
    return second


def trained(keras, layers):
    import numpy as np

    model = keras.Sequential([keras.Input(shape=(4,)), layers.Dense(3, name="dd")],
                             name="trained")
    model.compile(optimizer="rmsprop", loss="mse")
    model.fit(np.zeros((4, 4), "float32"), np.zeros((4, 3), "float32"), verbose=0)
    return model


#: name -> builder; tf.keras 2 is recorded for all but the Keras 3-only cases
MODELS = {f.__name__: f for f in (
    lecture_convnet, lecture_dense, two_inputs, residual, shared_layer,
    nested_sequential_chain, nested_sequential_residual, nested_functional_chain,
    nested_functional_residual, nested_two_outputs, reused_from_another_model,
    layer_called_twice, shared_on_two_shapes, two_heads, long_names, big_dense, subclassed,
    trained)}
KERAS3_ONLY = ("trained",)
#: Keras 3 quirk not reproduced: a subclassed model built with build(shape) lists its layers
#: as unbuilt ("?", "0 (unbuilt)", no parameters counted).
KERAS3_SKIP = ("subclassed",)


#: Progress-bar scenarios: (constructor kwargs, [(current, values, finalize)], clock step in s)
PROGBARS = {
    "fit_like": (dict(target=10, verbose=1, stateless_metrics=[]),
                 [(i, [("accuracy", 0.1 * i), ("loss", 1.0 / i)], False) for i in range(1, 11)]
                 + [(10, [("accuracy", 0.9), ("loss", 0.1), ("val_accuracy", 0.5),
                          ("val_loss", 0.0004)], True)], 0.0125),
    "averaged": (dict(target=5, verbose=1),
                 [(i, [("loss", 2.0 / i), ("tiny", 1e-5)], None) for i in range(1, 6)], 0.3),
    "verbose2": (dict(target=8, verbose=2, stateless_metrics=[]),
                 [(i, [("accuracy", 0.1 * i), ("loss", 1.0 / i)], False) for i in range(1, 9)]
                 + [(8, [("accuracy", 0.8), ("loss", -0.5)], True)], 0.5),
    "unknown_target": (dict(target=None, verbose=1),
                       [(i, [("loss", 0.5)], None) for i in range(1, 4)]
                       + [(3, [("loss", 0.5)], True)], 0.1),
    "slow_long": (dict(target=1000, verbose=1, stateful_metrics=["acc"]),
                  [(1, [("acc", 0.5)], None), (500, [("acc", 0.6)], None),
                   (999, [("acc", 0.7)], None), (1000, [("acc", 0.75)], None)], 40.0),
    "predict": (dict(target=3, verbose=1, stateless_metrics=[]),
                [(1, None, False), (2, None, False), (3, None, False), (3, None, True)], 0.02),
}


def fit_run(keras, layers, mode):
    """A tiny model trained with fixed weights and unshuffled data (``mode``: ``v1`` three
    epochs at verbose=1, ``v2`` two epochs at verbose=2 with validation, ``ev``: evaluate
    then predict at verbose=1)."""
    import numpy as np

    rng = np.random.default_rng(0)
    x = rng.normal(size=(100, 4)).astype("float32")
    y = rng.integers(0, 3, size=100)
    w = [rng.normal(size=(4, 8)).astype("float32") * 0.5, np.zeros(8, "float32"),
         rng.normal(size=(8, 3)).astype("float32") * 0.5, np.zeros(3, "float32")]
    model = keras.Sequential([keras.Input(shape=(4,)), layers.Dense(8, activation="relu"),
                              layers.Dense(3, activation="softmax")])
    model.set_weights(w)
    model.compile(optimizer="rmsprop", loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])

    class InOrder(keras.callbacks.Callback):
        """Batch hooks of its own keep Keras 3 from calling the callbacks asynchronously
        (which can reorder the progress bar's updates)."""

        def on_train_batch_end(self, batch, logs=None):
            pass

        def on_test_batch_end(self, batch, logs=None):
            pass

        def on_predict_batch_end(self, batch, logs=None):
            pass

    callbacks = [InOrder()]
    if mode == "v1":
        model.fit(x, y, epochs=3, batch_size=10, verbose=1, shuffle=False, callbacks=callbacks)
    elif mode == "v2":
        model.fit(x, y, epochs=2, batch_size=10, verbose=2, validation_split=0.2,
                  shuffle=False, callbacks=callbacks)
    else:
        model.predict(x, batch_size=10, callbacks=callbacks)


class FakeTime:
    """A stand-in for the ``time`` module whose ``time()`` advances ``step`` seconds a call."""

    def __init__(self, step, start=1000.0):
        self.t, self.step = start, step

    def time(self):
        self.t += self.step
        return self.t
