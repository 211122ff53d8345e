"""The model API's semantics, checked against Keras' (../shared/guides/keras-semantics.md):
fit / evaluate / predict, History, weights in and out, Sequential, seeding and threads,
optimizers, losses and metrics by name and object, callbacks and automatic names.

Most tests use small synthetic data; a learning rate of 0 (``RMSprop(learning_rate=0.0)``)
keeps the weights fixed during ``fit`` so that what fit records can be compared with
``evaluate`` on the same data."""
from __future__ import annotations

import math
import os
import signal

import numpy as np
import pytest

import pycnn
import pycnn as keras
from pycnn import layers
from pycnn.callbacks import Callback
from pycnn.layers.context import Context
from pycnn.models.trainer import _Step


def _fit_takes_logits(model) -> bool:
    """Whether fit's compiled plan stops the (single) output at its logits, the softmax
    computed inside the crossentropy."""
    return bool(_Step(model, True).logits[0])

RTOL = 2e-5     # fit computes the loss from logits, evaluate from probabilities


def make_data(n=300, features=12, classes=4, seed=0):
    """Learnable data: the class is the argmax of a fixed linear map of x."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, features)).astype(np.float32)
    w = np.random.default_rng(99).normal(size=(features, classes))
    y = (x @ w).argmax(axis=1).astype(np.int64)
    return x, y


def dense_model(features=12, classes=4, hidden=16, activation="softmax", optimizer="rmsprop",
                loss="sparse_categorical_crossentropy", metrics=("accuracy",)):
    inp = keras.Input(shape=(features,))
    h = layers.Dense(hidden, activation="relu")(inp)
    out = layers.Dense(classes, activation=activation)(h)
    model = keras.Model(inputs=inp, outputs=out)
    model.compile(optimizer=optimizer, loss=loss, metrics=list(metrics))
    return model


def small_convnet():
    inp = keras.Input(shape=(28, 28, 1))
    x = layers.Conv2D(8, 3, activation="relu")(inp)
    x = layers.MaxPooling2D(2)(x)
    x = layers.Conv2D(16, 3, activation="relu", padding="same")(x)
    x = layers.AveragePooling2D(2)(x)
    x = layers.Flatten()(x)
    out = layers.Dense(10, activation="softmax")(x)
    return keras.Model(inp, out)


class Recorder(Callback):
    """Records every hook call with its arguments (logs copied)."""

    def __init__(self):
        super().__init__()
        self.calls = []

    def _rec(self, name, *args):
        self.calls.append((name,) + tuple(dict(a) if isinstance(a, dict) else a for a in args))

    def on_train_begin(self, logs=None): self._rec("train_begin")
    def on_train_end(self, logs=None): self._rec("train_end")
    def on_epoch_begin(self, epoch, logs=None): self._rec("epoch_begin", epoch)
    def on_epoch_end(self, epoch, logs=None): self._rec("epoch_end", epoch, logs)
    def on_train_batch_end(self, batch, logs=None): self._rec("train_batch_end", batch, logs)
    def on_test_batch_end(self, batch, logs=None): self._rec("test_batch_end", batch, logs)
    def on_predict_batch_end(self, batch, logs=None): self._rec("predict_batch_end", batch)

    def of(self, name):
        return [c[1:] for c in self.calls if c[0] == name]


# ---- fit: batches, steps, History ----------------------------------------------------------------

def test_fit_default_batch_size_32_and_ceil_steps(seed):
    x, y = make_data(100)
    model = dense_model()
    rec = Recorder()
    history = model.fit(x, y, epochs=2, verbose=0, callbacks=[rec])
    assert history.params["steps"] == 4 == math.ceil(100 / 32)
    assert [b for b, _ in rec.of("train_batch_end")] == [0, 1, 2, 3] * 2
    rec = Recorder()
    history = model.fit(x, y, batch_size=64, epochs=1, verbose=0, callbacks=[rec])
    assert history.params["steps"] == 2 and len(rec.of("train_batch_end")) == 2
    rec = Recorder()
    model.fit(x, y, batch_size=100, verbose=0, callbacks=[rec])
    assert len(rec.of("train_batch_end")) == 1
    rec = Recorder()
    model.fit(x, y, batch_size=1000, verbose=0, callbacks=[rec])   # larger than the data
    assert len(rec.of("train_batch_end")) == 1
    rec = Recorder()
    model.evaluate(x, y, verbose=0, callbacks=[rec])
    assert len(rec.of("test_batch_end")) == 4
    rec = Recorder()
    model.predict(x, verbose=0, callbacks=[rec])
    assert len(rec.of("predict_batch_end")) == 4


def test_history_object(seed):
    x, y = make_data(200)
    xv, yv = make_data(50, seed=1)
    model = dense_model()
    history = model.fit(x, y, epochs=3, batch_size=50, validation_data=(xv, yv), verbose=0)
    assert isinstance(history, keras.callbacks.History)
    assert model.history is history
    assert list(history.history) == ["loss", "accuracy", "val_loss", "val_accuracy"]
    assert all(len(v) == 3 for v in history.history.values())
    assert all(type(v) is float for vs in history.history.values() for v in vs)
    assert history.epoch == [0, 1, 2]
    assert history.params["epochs"] == 3 and history.params["steps"] == 4
    assert history.params["verbose"] == 0
    assert history.model is model
    # a second fit makes a new History
    again = model.fit(x, y, epochs=1, batch_size=50, verbose=0)
    assert again is not history and model.history is again and again.epoch == [0]
    assert list(again.history) == ["loss", "accuracy"]


def test_recorded_loss_is_running_mean_weighted_by_batch_size(seed):
    x, y = make_data(1000)
    y[900:] = 0                     # the last (short) batch differs from the others
    model = dense_model(optimizer=keras.optimizers.RMSprop(learning_rate=0.0))
    before = model.get_weights()
    rec = Recorder()
    history = model.fit(x, y, batch_size=300, epochs=2, shuffle=False, verbose=0,
                        callbacks=[rec])
    for a, b in zip(before, model.get_weights()):
        np.testing.assert_array_equal(a, b)                     # lr = 0: weights fixed
    loss, acc = model.evaluate(x, y, verbose=0)
    assert history.history["loss"] == pytest.approx([loss, loss], rel=RTOL)
    assert history.history["accuracy"] == pytest.approx([acc, acc], abs=1e-7)

    # the logs after each batch: running means over the samples seen so far in the epoch
    sizes = [300, 300, 300, 100]
    per_batch = [model.evaluate(x[i * 300:i * 300 + n], y[i * 300:i * 300 + n], verbose=0,
                                batch_size=n)[0] for i, n in enumerate(sizes)]
    seen = np.cumsum(sizes)
    running = np.cumsum(np.multiply(per_batch, sizes)) / seen
    logged = [logs["loss"] for _, logs in rec.of("train_batch_end")]
    assert logged == pytest.approx(list(running) * 2, rel=RTOL)    # reset every epoch
    unweighted = np.mean(per_batch)
    assert abs(unweighted - loss) > 1e-3       # the check can tell the two means apart


def test_validation_split_takes_the_last_fraction_before_shuffling(seed):
    x, y = make_data(1000)
    y[800:] = 3                                  # the last 20 % look different
    model = dense_model(optimizer=keras.optimizers.RMSprop(learning_rate=0.0))
    rec = Recorder()
    history = model.fit(x, y, validation_split=0.2, epochs=2, batch_size=64, verbose=0,
                        callbacks=[rec])
    assert history.params["steps"] == math.ceil(800 / 64)
    train = model.evaluate(x[:800], y[:800], verbose=0, return_dict=True)
    val = model.evaluate(x[800:], y[800:], verbose=0, return_dict=True)
    first = model.evaluate(x[:200], y[:200], verbose=0, return_dict=True)
    assert abs(val["loss"] - first["loss"]) > 1e-2
    assert history.history["val_loss"] == pytest.approx([val["loss"]] * 2, rel=RTOL)
    assert history.history["val_accuracy"] == pytest.approx([val["accuracy"]] * 2, abs=1e-7)
    # shuffling reorders the training part only: the epoch's mean is over x[:800]
    assert history.history["loss"] == pytest.approx([train["loss"]] * 2, rel=RTOL)
    # validation metrics come with the epoch's logs, not with the batches'
    assert all("val_loss" not in logs for _, logs in rec.of("train_batch_end"))
    assert all("val_loss" in logs for _, logs in rec.of("epoch_end"))


def test_validation_data(seed):
    x, y = make_data(300)
    xv, yv = make_data(70, seed=5)
    model = dense_model(optimizer=keras.optimizers.RMSprop(learning_rate=0.0))
    history = model.fit(x, y, validation_data=(xv, yv), epochs=1, verbose=0)
    val_loss, val_acc = model.evaluate(xv, yv, verbose=0)
    assert history.history["val_loss"] == pytest.approx([val_loss], rel=RTOL)
    assert history.history["val_accuracy"] == pytest.approx([val_acc], abs=1e-7)
    # a list works as well as a tuple
    history = model.fit(x, y, validation_data=[xv, yv], epochs=1, verbose=0)
    assert "val_loss" in history.history


def test_shuffle_changes_the_batches_but_not_the_epoch_mean(seed):
    x, y = make_data(640)
    model = dense_model(optimizer=keras.optimizers.RMSprop(learning_rate=0.0))
    a, b = Recorder(), Recorder()
    h1 = model.fit(x, y, batch_size=64, shuffle=False, verbose=0, callbacks=[a])
    h2 = model.fit(x, y, batch_size=64, shuffle=True, verbose=0, callbacks=[b])
    first_a = a.of("train_batch_end")[0][1]["loss"]
    first_b = b.of("train_batch_end")[0][1]["loss"]
    assert first_a != first_b
    assert h1.history["loss"] == pytest.approx(h2.history["loss"], rel=RTOL)


# ---- evaluate and predict ------------------------------------------------------------------------

def test_evaluate_return_forms(seed):
    x, y = make_data(100)
    model = dense_model()
    result = model.evaluate(x, y, verbose=0)
    assert isinstance(result, list) and len(result) == 2
    loss, acc = result
    assert type(loss) is float and type(acc) is float
    p = model.predict(x, verbose=0)
    assert acc == pytest.approx(np.mean(p.argmax(axis=1) == y), abs=1e-7)
    expected_loss = -np.mean(np.log(np.clip(p[np.arange(100), y].astype(np.float64), 1e-7, 1)))
    assert loss == pytest.approx(expected_loss, rel=1e-5)
    d = model.evaluate(x, y, verbose=0, return_dict=True)
    assert d == {"loss": pytest.approx(loss), "accuracy": pytest.approx(acc)}
    assert list(d) == ["loss", "accuracy"]

    only_loss = dense_model(metrics=())
    value = only_loss.evaluate(x, y, verbose=0)
    assert type(value) is float
    assert only_loss.evaluate(x, y, verbose=0, return_dict=True).keys() == {"loss"}

    two = dense_model(metrics=("sparse_categorical_accuracy", "accuracy"))
    values = two.evaluate(x, y, verbose=0)
    assert len(values) == 3 and values[1] == values[2]
    assert list(two.evaluate(x, y, verbose=0, return_dict=True)) == [
        "loss", "sparse_categorical_accuracy", "accuracy"]


def test_evaluate_is_independent_of_batch_size(seed):
    x, y = make_data(101)
    model = dense_model()
    a = model.evaluate(x, y, verbose=0, batch_size=7)
    b = model.evaluate(x, y, verbose=0, batch_size=101)
    assert a[0] == pytest.approx(b[0], rel=1e-6) and a[1] == b[1]


def test_predict_float32_concatenated_over_batches_same_as_call(seed):
    x, _ = make_data(50)
    model = dense_model()
    p7 = model.predict(x, batch_size=7, verbose=0)
    p50 = model.predict(x, batch_size=50, verbose=0)
    p_default = model.predict(x, verbose=0)
    called = model(x)
    assert p7.dtype == np.float32 and p7.shape == (50, 4)
    assert isinstance(called, np.ndarray) and called.dtype == np.float32
    np.testing.assert_allclose(p7, p50, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(p_default, p50, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(called, p50, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(model.predict(x.astype(np.float64), verbose=0), p50, rtol=1e-6)


def test_outputs_are_not_overwritten_by_later_calls(seed):
    """pycnn reuses its buffers between batches; what a user got must stay as it was."""
    model = small_convnet()
    xi = np.random.default_rng(0).random((40, 28, 28, 1), dtype=np.float32)
    first = model.predict(xi[:20], verbose=0)
    kept = first.copy()
    called = model(xi[:20])
    kept_called = called.copy()
    model.predict(xi[20:], verbose=0)
    model(xi[20:])
    layer_out = model.get_layer(index=1)(xi[:3])
    kept_layer = layer_out.copy()
    model.get_layer(index=1)(xi[3:6])
    np.testing.assert_array_equal(first, kept)
    np.testing.assert_array_equal(called, kept_called)
    np.testing.assert_array_equal(layer_out, kept_layer)


# ---- weights -------------------------------------------------------------------------------------

def test_get_weights_order_kernel_then_bias_per_layer():
    model = keras.Sequential([keras.Input(shape=(5,)), layers.Dense(4, activation="relu"),
                              layers.Dense(3, activation="softmax")])
    shapes = [w.shape for w in model.get_weights()]
    assert shapes == [(5, 4), (4,), (4, 3), (3,)]
    assert all(w.dtype == np.float32 for w in model.get_weights())
    assert not model.get_weights()[1].any() and not model.get_weights()[3].any()  # zero biases
    conv = small_convnet()
    assert [w.shape for w in conv.get_weights()] == [
        (3, 3, 1, 8), (8,), (3, 3, 8, 16), (16,), (6 * 6 * 16, 10), (10,)]
    # get_weights returns copies
    w = model.get_weights()
    w[0][...] = 7
    assert not np.any(model.get_weights()[0] == 7)


def test_set_weights_defines_the_computation():
    model = keras.Sequential([keras.Input(shape=(5,)), layers.Dense(4, activation="relu"),
                              layers.Dense(3, activation="softmax")])
    rng = np.random.default_rng(1)
    w1, b1 = rng.normal(size=(5, 4)), rng.normal(size=4)
    w2, b2 = rng.normal(size=(4, 3)), rng.normal(size=3)
    model.set_weights([w1, b1, w2, b2])            # float64 is cast, as in Keras
    x = rng.normal(size=(6, 5)).astype(np.float32)
    h = np.maximum(x @ w1 + b1, 0)
    z = h @ w2 + b2
    expected = np.exp(z - z.max(axis=1, keepdims=True))
    expected /= expected.sum(axis=1, keepdims=True)
    np.testing.assert_allclose(model.predict(x, verbose=0), expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(model.get_weights()[2], w2.astype(np.float32))


def test_set_weights_checks_count_and_shapes_naming_the_layer():
    model = keras.Sequential([keras.Input(shape=(5,)), layers.Dense(4), layers.Dense(3)])
    good = model.get_weights()
    with pytest.raises(ValueError, match=r"4.*3|3.*4"):
        model.set_weights(good[:3])
    bad = [good[0], good[1], np.zeros((4, 2), np.float32), good[3]]
    with pytest.raises(ValueError) as err:
        model.set_weights(bad)
    assert "dense_1" in str(err.value) and "(4, 3)" in str(err.value) and "(4, 2)" in str(err.value)
    for a, b in zip(model.get_weights(), good):        # nothing was changed
        np.testing.assert_array_equal(a, b)


def test_save_and_load_weights_round_trip(tmp_path, seed):
    x, y = make_data(200)
    model = dense_model()
    model.fit(x, y, epochs=2, verbose=0)
    path = tmp_path / "weights.npz"
    model.save_weights(str(path))
    assert path.exists()
    other = dense_model()
    assert not np.allclose(other.predict(x, verbose=0), model.predict(x, verbose=0))
    other.load_weights(str(path))
    np.testing.assert_array_equal(other.predict(x, verbose=0), model.predict(x, verbose=0))
    for a, b in zip(other.get_weights(), model.get_weights()):
        np.testing.assert_array_equal(a, b)
    # pathlib paths work too, and a conv model round-trips
    conv = small_convnet()
    conv.save_weights(tmp_path / "conv.npz")
    conv2 = small_convnet()
    conv2.load_weights(tmp_path / "conv.npz")
    xi = np.random.default_rng(0).random((4, 28, 28, 1), dtype=np.float32)
    np.testing.assert_array_equal(conv.predict(xi, verbose=0), conv2.predict(xi, verbose=0))


def test_load_weights_from_another_architecture_names_the_first_mismatch(tmp_path):
    source = keras.Sequential([keras.Input(shape=(12,)), layers.Dense(16), layers.Dense(4)])
    source.save_weights(tmp_path / "w.npz")
    target = keras.Sequential([keras.Input(shape=(12,)), layers.Dense(16), layers.Dense(5)])
    before = target.get_weights()
    with pytest.raises(ValueError) as err:
        target.load_weights(tmp_path / "w.npz")
    msg = str(err.value)
    assert target.layers[1].name in msg and target.layers[0].name + '"' not in msg
    assert "(16, 5)" in msg and "(16, 4)" in msg
    for a, b in zip(target.get_weights(), before):       # nothing half-loaded
        np.testing.assert_array_equal(a, b)
    deeper = keras.Sequential([keras.Input(shape=(12,)), layers.Dense(16), layers.Dense(16),
                               layers.Dense(4)])
    with pytest.raises(ValueError, match="2.*3|3.*2"):
        deeper.load_weights(tmp_path / "w.npz")


def test_count_params_and_get_layer():
    model = small_convnet()
    assert model.count_params() == (9 * 8 + 8) + (9 * 8 * 16 + 16) + (576 * 10 + 10)
    assert model.get_layer("conv2d_1") is model.layers[3]
    assert model.get_layer(index=0).name == "input_1"
    assert model.get_layer(index=-1).name == "dense"
    with pytest.raises(ValueError, match="nope"):
        model.get_layer("nope")
    with pytest.raises(ValueError):
        model.get_layer(index=99)


# ---- Sequential ----------------------------------------------------------------------------------

def test_sequential_builds_lazily_from_the_data(capsys):
    model = keras.Sequential([layers.Dense(8, activation="relu")])
    model.add(layers.Dense(3, activation="softmax"))
    assert not model.built and model.name == "sequential"
    with pytest.raises(ValueError, match="not.*built|built"):
        model.summary()
    with pytest.raises(ValueError, match="built"):
        model.count_params()
    assert capsys.readouterr().out == ""
    x = np.random.default_rng(0).random((10, 6), dtype=np.float32)
    p = model.predict(x, verbose=0)
    assert p.shape == (10, 3) and model.built
    assert [w.shape for w in model.get_weights()] == [(6, 8), (8,), (8, 3), (3,)]
    assert model.count_params() == 6 * 8 + 8 + 8 * 3 + 3
    with pytest.raises(ValueError, match=r"\(None, 6\)"):    # the input size is fixed now
        model.predict(np.zeros((2, 7), np.float32), verbose=0)


def test_sequential_summary_of_the_lectures_dense_model(capsys):
    model = keras.Sequential([layers.Dense(512, activation="relu"),
                              layers.Dense(10, activation="softmax")])
    model.build((None, 784))
    model.summary()
    expected = (
        'Model: "sequential"\n'
        "_________________________________________________________________\n"
        " Layer (type)                Output Shape              Param #   \n"
        "=================================================================\n"
        " dense (Dense)               (None, 512)               401920    \n"
        "                                                                 \n"
        " dense_1 (Dense)             (None, 10)                5130      \n"
        "                                                                 \n"
        "=================================================================\n"
        "Total params: 407050 (1.55 MB)\n"
        "Trainable params: 407050 (1.55 MB)\n"
        "Non-trainable params: 0 (0.00 Byte)\n"
        "_________________________________________________________________\n")
    assert capsys.readouterr().out == expected


def test_sequential_add_input_and_pop():
    model = keras.Sequential()
    model.add(keras.Input(shape=(4,)))
    model.add(layers.Dense(3))
    assert model.built and model.output_shape == (None, 3)
    model.add(layers.Dense(2))
    assert model.output_shape == (None, 2) and len(model.layers) == 2
    popped = model.pop()
    assert popped.name == "dense_1" and model.output_shape == (None, 3)
    with pytest.raises(TypeError):
        model.add("dense")
    with_shape = keras.Sequential([layers.Dense(3, input_shape=(4,))])
    assert with_shape.built and with_shape.input_shape == (None, 4)


# ---- seeding and threads -------------------------------------------------------------------------

def _train_convnet(x, y, seed_value):
    pycnn.utils.set_random_seed(seed_value)
    model = small_convnet()
    model.compile(optimizer="rmsprop", loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    history = model.fit(x, y, epochs=2, batch_size=64, verbose=0)
    return model.get_weights(), history.history


def test_set_random_seed_gives_bit_identical_training(small_mnist):
    x, y = small_mnist.x_train[:512], small_mnist.y_train[:512]
    w1, h1 = _train_convnet(x, y, 7)
    w2, h2 = _train_convnet(x, y, 7)
    for a, b in zip(w1, w2):
        np.testing.assert_array_equal(a, b)
    assert h1 == h2
    w3, _ = _train_convnet(x, y, 8)
    assert not np.array_equal(w1[0], w3[0])


def test_results_are_bit_identical_for_any_thread_count(small_mnist, keep_num_threads):
    x, y = small_mnist.x_train[:512], small_mnist.y_train[:512]
    results = []
    for n in (1, 2, 3):
        pycnn.set_num_threads(n)
        assert pycnn.get_num_threads() == n
        results.append(_train_convnet(x, y, 11))
    for w, h in results[1:]:
        for a, b in zip(results[0][0], w):
            np.testing.assert_array_equal(a, b)
        assert h == results[0][1]


# ---- optimizers ----------------------------------------------------------------------------------

def _linear_problem():
    rng = np.random.default_rng(2)
    x = rng.normal(size=(16, 3)).astype(np.float32)
    y = (x @ np.array([[1.0], [-2.0], [0.5]]) + 0.3).astype(np.float32)
    return x, y


def _mse_grads(w, b, x, y):
    """float64 gradients of mean((x @ w + b - y)^2)."""
    d = 2.0 * (x.astype(np.float64) @ w + b - y) / y.size
    return x.T.astype(np.float64) @ d, d.sum(axis=0)


def _one_linear_model(optimizer):
    model = keras.Sequential([keras.Input(shape=(3,)), layers.Dense(1)])
    model.compile(optimizer=optimizer, loss="mse")
    rng = np.random.default_rng(3)
    model.set_weights([rng.normal(size=(3, 1)), rng.normal(size=(1,))])
    return model


@pytest.mark.parametrize("name, cls", [("rmsprop", "RMSprop"), ("adam", "Adam"), ("sgd", "SGD"),
                                       ("Adam", "Adam"), ("RMSprop", "RMSprop")])
def test_optimizer_by_name(name, cls, seed):
    x, y = make_data(300)
    model = dense_model(optimizer=name)
    assert type(model.optimizer).__name__ == cls
    h = model.fit(x, y, epochs=5, batch_size=32, verbose=0)
    assert h.history["loss"][-1] < h.history["loss"][0]


def test_optimizer_first_steps_follow_keras_update_rules():
    x, y = _linear_problem()
    lr = 0.01
    cases = {
        "sgd": keras.optimizers.SGD(learning_rate=lr),
        "momentum": keras.optimizers.SGD(learning_rate=lr, momentum=0.9),
        "nesterov": keras.optimizers.SGD(learning_rate=lr, momentum=0.9, nesterov=True),
        "rmsprop": keras.optimizers.RMSprop(learning_rate=lr),
        "adam": keras.optimizers.Adam(learning_rate=lr),
    }
    for kind, opt in cases.items():
        model = _one_linear_model(opt)
        w, b = (a.astype(np.float64) for a in model.get_weights())
        state = {"m": [0.0, 0.0], "v": [0.0, 0.0]}
        for t in (1, 2):
            gw, gb = _mse_grads(w, b, x, y)
            new = []
            for i, (p, g) in enumerate(((w, gw), (b, gb))):
                m, v = state["m"][i], state["v"][i]
                if kind == "sgd":
                    p = p - lr * g
                elif kind in ("momentum", "nesterov"):
                    m = 0.9 * m - lr * g
                    p = p + (0.9 * m - lr * g if kind == "nesterov" else m)
                elif kind == "rmsprop":
                    v = 0.9 * v + 0.1 * g * g
                    p = p - lr * g / np.sqrt(v + 1e-7)
                else:
                    alpha = lr * math.sqrt(1 - 0.999 ** t) / (1 - 0.9 ** t)
                    m = m + (g - m) * 0.1
                    v = v + (g * g - v) * 0.001
                    p = p - alpha * m / (np.sqrt(v) + 1e-7)
                state["m"][i], state["v"][i] = m, v
                new.append(p)
            w, b = new
            model.fit(x, y, batch_size=16, epochs=1, shuffle=False, verbose=0)
            got_w, got_b = model.get_weights()
            np.testing.assert_allclose(got_w, w, rtol=1e-4, atol=1e-6, err_msg=f"{kind} t={t}")
            np.testing.assert_allclose(got_b, b, rtol=1e-4, atol=1e-6, err_msg=f"{kind} t={t}")


def test_optimizer_objects_train(seed):
    x, y = make_data(300)
    for opt in (keras.optimizers.SGD(learning_rate=0.1, momentum=0.9, nesterov=True),
                keras.optimizers.RMSprop(learning_rate=0.01),
                keras.optimizers.Adam(learning_rate=0.01)):
        model = dense_model(optimizer=opt)
        assert model.optimizer is opt
        h = model.fit(x, y, epochs=8, verbose=0)
        assert h.history["loss"][-1] < 0.5 * h.history["loss"][0], type(opt).__name__
        assert h.history["accuracy"][-1] > 0.85, type(opt).__name__


# ---- losses and metrics --------------------------------------------------------------------------

def test_categorical_crossentropy_with_one_hot_labels(seed):
    x, y = make_data(300)
    onehot = keras.utils.to_categorical(y)
    assert onehot.shape == (300, 4) and onehot.dtype == np.float32
    np.testing.assert_array_equal(onehot.argmax(axis=1), y)
    model = dense_model(loss="categorical_crossentropy")
    sparse = dense_model(loss="sparse_categorical_crossentropy")
    sparse.set_weights(model.get_weights())
    a = model.evaluate(x, onehot, verbose=0)
    b = sparse.evaluate(x, y, verbose=0)
    assert a[0] == pytest.approx(b[0], rel=1e-6) and a[1] == b[1]
    h = model.fit(x, onehot, epochs=5, verbose=0)
    assert h.history["loss"][-1] < h.history["loss"][0]
    obj = dense_model(loss=keras.losses.CategoricalCrossentropy())
    obj.set_weights(sparse.get_weights())
    assert obj.evaluate(x, onehot, verbose=0)[0] == pytest.approx(b[0], rel=1e-6)


def test_sparse_crossentropy_from_logits_matches_softmax_output(seed):
    x, y = make_data(300)
    logits = dense_model(activation=None,
                         loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    probs = dense_model(loss="sparse_categorical_crossentropy")
    probs.set_weights(logits.get_weights())
    a = logits.evaluate(x, y, verbose=0)
    b = probs.evaluate(x, y, verbose=0)
    assert a[0] == pytest.approx(b[0], rel=1e-5) and a[1] == b[1]
    # the same training: both compute the loss and its gradient from the logits
    pycnn.utils.set_random_seed(3)
    ha = logits.fit(x, y, epochs=2, verbose=0)
    pycnn.utils.set_random_seed(3)
    hb = probs.fit(x, y, epochs=2, verbose=0)
    assert ha.history["loss"] == pytest.approx(hb.history["loss"], rel=1e-5)
    for wa, wb in zip(logits.get_weights(), probs.get_weights()):
        np.testing.assert_allclose(wa, wb, rtol=1e-4, atol=1e-6)


class _RecordingMetric(keras.metrics.Metric):
    """Keeps every y_pred that fit hands to the metrics."""

    default_name = "recorded"

    def reset_state(self):
        super().reset_state()
        self.seen = getattr(self, "seen", [])

    def batch_values(self, y_true, y_pred):
        self.seen.append(np.array(y_pred))
        return np.zeros(len(y_true), np.float32)


@pytest.mark.parametrize("output", ["dense_softmax", "softmax_layer"])
def test_fit_metrics_see_the_softmax_output_when_the_loss_fuses_it(output):
    """With the softmax fused into the crossentropy, fit's forward pass stops at the logits;
    the metrics must still get the model's output, the probabilities (as predict gives)."""
    x, y = make_data(64)
    inp = keras.Input(shape=(12,))
    h = layers.Dense(16, activation="relu")(inp)
    if output == "dense_softmax":
        out = layers.Dense(4, activation="softmax")(h)
    else:
        out = layers.Softmax()(layers.Dense(4)(h))
    model = keras.Model(inputs=inp, outputs=out)
    metric = _RecordingMetric()
    model.compile(optimizer=keras.optimizers.RMSprop(learning_rate=0.0),
                  loss="sparse_categorical_crossentropy", metrics=[metric])
    assert _fit_takes_logits(model)
    expect = model.predict(x, batch_size=64, verbose=0)
    model.fit(x, y, batch_size=64, epochs=1, shuffle=False, verbose=0)
    assert len(metric.seen) == 1
    np.testing.assert_allclose(metric.seen[0], expect, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(metric.seen[0].sum(axis=1), 1.0, rtol=1e-5)


def test_to_categorical_keeps_the_shape_of_its_input_as_keras():
    to_cat = keras.utils.to_categorical
    assert to_cat([1, 0, 2]).shape == (3, 3)
    assert to_cat(np.array([[1], [0]]), 4).shape == (2, 4)
    grid = np.array([[0, 2, 1], [1, 1, 0]])
    onehot = to_cat(grid, 3)
    assert onehot.shape == (2, 3, 3) and onehot.dtype == np.float32
    np.testing.assert_array_equal(onehot.argmax(axis=-1), grid)
    np.testing.assert_array_equal(onehot.sum(axis=-1), 1)


def test_softmax_over_the_last_axis_of_a_3d_output_is_not_fused_into_the_loss():
    """A Dense(softmax) on sequences outputs (batch, steps, classes): the loss's rows are whole
    samples, not one step's classes, so fit must not take the softmax into the crossentropy;
    then what fit reports (learning rate 0) equals evaluate on the same data."""
    r = np.random.default_rng(4)
    x = r.normal(size=(32, 3, 4)).astype(np.float32)
    y = keras.utils.to_categorical(r.integers(0, 5, size=(32, 3)), 5)
    inp = keras.Input(shape=(3, 4))
    model = keras.Model(inputs=inp, outputs=layers.Dense(5, activation="softmax")(inp))
    model.compile(optimizer=keras.optimizers.RMSprop(learning_rate=0.0),
                  loss="categorical_crossentropy")
    assert not _fit_takes_logits(model)
    history = model.fit(x, y, batch_size=32, epochs=1, shuffle=False, verbose=0)
    assert history.history["loss"][0] == pytest.approx(model.evaluate(x, y, verbose=0), rel=1e-5)


def test_from_logits_loss_on_a_softmax_output_warns_and_takes_the_logits():
    """tf.keras (TensorFlow backend) takes a softmax output's logits into a from_logits=True
    crossentropy, with a warning, rather than applying the softmax twice: fit and evaluate
    report the crossentropy of the pre-softmax values."""
    r = np.random.default_rng(5)
    x = r.normal(size=(32, 5)).astype(np.float32)
    y = r.integers(0, 3, 32)
    inp = keras.Input(shape=(5,))
    model = keras.Model(inp, layers.Dense(3, activation="softmax")(inp))
    model.compile(optimizer=keras.optimizers.SGD(learning_rate=0.0),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    w, b = (v.astype(np.float64) for v in model.get_weights())
    z = x.astype(np.float64) @ w + b
    z -= z.max(axis=1, keepdims=True)
    expect = -np.mean((z - np.log(np.exp(z).sum(axis=1, keepdims=True)))[np.arange(32), y])
    with pytest.warns(UserWarning, match="from_logits=True"):
        history = model.fit(x, y, batch_size=32, epochs=1, shuffle=False, verbose=0)
    assert _fit_takes_logits(model)
    assert history.history["loss"][0] == pytest.approx(expect, rel=1e-5)
    assert model.evaluate(x, y, verbose=0) == pytest.approx(expect, rel=1e-5)


def test_logits_only_context_gives_the_output_before_the_final_softmax():
    """A call whose context has ``logits_only`` returns the pre-activation values (the same
    numbers as the layer without its activation), a plain call their softmax; a layer without
    a final activation is never asked for logits by the plan."""
    x, _ = make_data(20)
    model = dense_model()
    layer = model.layers[-1]
    h = model.layers[-2].forward(Context(), x, training=True)
    z = layer.forward(Context(logits_only=True), h, training=True).copy()
    probs = layer.forward(Context(), h, training=True)
    linear = layers.Dense(layer.units)
    linear.build(h.shape)
    linear.set_weights(layer.get_weights())
    np.testing.assert_allclose(z, linear.forward(Context(), h), rtol=0, atol=0)
    e = np.exp(z.astype(np.float64) - z.max(axis=1, keepdims=True))
    np.testing.assert_allclose(probs, e / e.sum(axis=1, keepdims=True), rtol=1e-5, atol=1e-7)
    assert not layers.Flatten.supports_logits
    inp = keras.Input(shape=(3, 4))
    flat = keras.Model(inp, layers.Flatten()(inp))
    assert flat.compiled_plan(True, logits=(True,)).logits_outputs == [False]


def test_loss_objects_callable_like_keras():
    y_true = np.array([1, 2])
    y_pred = np.array([[0.05, 0.95, 0.0], [0.1, 0.8, 0.1]], np.float32)
    scce = keras.losses.SparseCategoricalCrossentropy()
    assert scce(y_true, y_pred) == pytest.approx((-math.log(0.95) - math.log(0.1)) / 2, rel=1e-5)
    cce = keras.losses.CategoricalCrossentropy()
    assert cce(keras.utils.to_categorical(y_true, 3), y_pred) == pytest.approx(
        scce(y_true, y_pred), rel=1e-6)


def test_mse_by_name(seed):
    x, y = _linear_problem()
    model = keras.Sequential([layers.Dense(1)])
    model.compile(optimizer=keras.optimizers.SGD(learning_rate=0.05), loss="mse")
    h = model.fit(x, y, epochs=20, batch_size=4, verbose=0)
    assert h.history["loss"][-1] < 0.05 * h.history["loss"][0]
    assert model.evaluate(x, y, verbose=0) == pytest.approx(
        float(np.mean((model.predict(x, verbose=0) - y) ** 2)), rel=1e-4)


def test_accuracy_resolves_to_sparse_categorical_or_binary(seed):
    x, y = make_data(200)
    # sparse labels
    model = dense_model()
    p = model.predict(x, verbose=0)
    assert model.evaluate(x, y, verbose=0)[1] == pytest.approx(np.mean(p.argmax(1) == y))
    # one-hot labels
    cat = dense_model(loss="categorical_crossentropy")
    cat.set_weights(model.get_weights())
    assert cat.evaluate(x, keras.utils.to_categorical(y, 4), verbose=0)[1] == pytest.approx(
        np.mean(p.argmax(1) == y))
    # one output unit: binary accuracy (threshold 0.5)
    yb = (y % 2).astype(np.float32)
    binary = dense_model(classes=1, activation="sigmoid", loss="mse")
    pb = binary.predict(x, verbose=0)[:, 0]
    acc = binary.evaluate(x, yb, verbose=0)[1]
    assert acc == pytest.approx(np.mean((pb > 0.5) == (yb > 0.5)))
    h = binary.fit(x, yb, epochs=1, verbose=0)
    assert list(h.history) == ["loss", "accuracy"]


# ---- callbacks -----------------------------------------------------------------------------------

def test_custom_callback_sees_the_hooks_and_logs(seed):
    x, y = make_data(100)
    xv, yv = make_data(40, seed=3)
    model = dense_model()
    rec = Recorder()
    history = model.fit(x, y, epochs=2, batch_size=50, validation_data=(xv, yv), verbose=0,
                        callbacks=[rec])
    names = [c[0] for c in rec.calls if c[0] != "test_batch_end"]
    assert names == ["train_begin", "epoch_begin", "train_batch_end", "train_batch_end",
                     "epoch_end", "epoch_begin", "train_batch_end", "train_batch_end",
                     "epoch_end", "train_end"]
    assert rec.model is model and rec.params["epochs"] == 2
    ends = rec.of("epoch_end")
    assert [e for e, _ in ends] == [0, 1]
    for epoch, logs in ends:
        assert set(logs) == {"loss", "accuracy", "val_loss", "val_accuracy"}
        assert logs["loss"] == history.history["loss"][epoch]
        assert logs["val_accuracy"] == history.history["val_accuracy"][epoch]


def test_lambda_callback(seed):
    x, y = make_data(100)
    seen = []
    cb = keras.callbacks.LambdaCallback(on_epoch_end=lambda epoch, logs: seen.append(epoch))
    dense_model().fit(x, y, epochs=3, verbose=0, callbacks=[cb])
    assert seen == [0, 1, 2]


def test_early_stopping_stops_when_the_loss_stops_improving(seed, capsys):
    x, y = make_data(100)
    model = dense_model(optimizer=keras.optimizers.RMSprop(learning_rate=0.0))
    stop = keras.callbacks.EarlyStopping(monitor="loss", patience=1, verbose=1)
    history = model.fit(x, y, epochs=10, verbose=0, callbacks=[stop])
    assert history.epoch == [0, 1]
    assert model.stop_training
    assert "Epoch 2: early stopping" in capsys.readouterr().out


def test_early_stopping_restores_the_best_weights(seed):
    x, y = make_data(100)
    y[:] = 0
    model = dense_model(optimizer=keras.optimizers.RMSprop(learning_rate=0.0))
    best = []

    class Worsen(Callback):
        """Makes every epoch after the first worse: the output bias favours class 1 more."""

        def on_epoch_begin(self, epoch, logs=None):
            w = self.model.get_weights()
            w[-1] = np.array([0, 2.0 * epoch, 0, 0], np.float32)
            self.model.set_weights(w)

        def on_epoch_end(self, epoch, logs=None):
            if epoch == 0:
                best.append(self.model.get_weights())

    stop = keras.callbacks.EarlyStopping(monitor="loss", patience=2, restore_best_weights=True)
    history = model.fit(x, y, epochs=10, verbose=0, callbacks=[Worsen(), stop])
    assert history.epoch == [0, 1, 2]
    assert history.history["loss"][0] < history.history["loss"][1] < history.history["loss"][2]
    for a, b in zip(model.get_weights(), best[0]):
        np.testing.assert_array_equal(a, b)


def _exploding_fit(callbacks, snapshots):
    """SGD with a huge learning rate on a softmax classifier: the first update leaves finite
    but enormous weights, the second batch's logits overflow and its loss is NaN. The model is
    ``snapshots[0]``, followed by the weights after every finished batch."""
    x, y = make_data(256)
    pycnn.utils.set_random_seed(0)
    model = dense_model(optimizer=keras.optimizers.SGD(learning_rate=1e30), metrics=())
    snapshots.append(model)
    cb = keras.callbacks.LambdaCallback(
        on_train_batch_end=lambda batch, logs: snapshots.append(model.get_weights()))
    return model.fit(x, y, epochs=3, batch_size=32, shuffle=False, verbose=0,
                     callbacks=[cb] + callbacks)


def test_terminate_on_nan_stops_training(capsys):
    snapshots = []
    history = _exploding_fit([keras.callbacks.TerminateOnNaN()], snapshots)
    assert history.epoch == [0]
    assert len(snapshots) == 1 + 2                      # stopped after the second batch
    assert math.isnan(history.history["loss"][0])
    assert "Batch 1: Invalid loss, terminating training" in capsys.readouterr().out


def test_nan_loss_without_terminate_on_nan_raises_and_keeps_the_previous_weights():
    snapshots = []
    with pytest.raises(FloatingPointError) as err:
        _exploding_fit([], snapshots)
    msg = str(err.value)
    assert "epoch 1" in msg and "batch 2" in msg and "nan" in msg.lower()
    model, weights_after_batch_1 = snapshots[0], snapshots[1]
    assert len(snapshots) == 2
    for a, b in zip(model.get_weights(), weights_after_batch_1):
        np.testing.assert_array_equal(a, b)
    assert all(np.isfinite(w).all() for w in model.get_weights())
    assert model.predict(make_data(5)[0], verbose=0).shape == (5, 4)


def test_overflowing_update_does_not_leave_infinite_weights():
    """With MSE the loss is finite in float64 long after float32 weights overflow: the update
    that makes them infinite must not be kept (the error comes with finite weights)."""
    x, y = _linear_problem()
    y = y * 1000
    model = keras.Sequential([keras.Input(shape=(3,)), layers.Dense(1)])
    model.compile(optimizer=keras.optimizers.SGD(learning_rate=1e30), loss="mse")
    with pytest.raises(FloatingPointError):
        model.fit(x, y, epochs=3, batch_size=4, shuffle=False, verbose=0)
    assert all(np.isfinite(w).all() for w in model.get_weights()), model.get_weights()


def test_exception_in_a_callback_propagates_and_the_model_still_works(seed):
    x, y = make_data(100)
    model = dense_model()

    class Boom(Callback):
        def on_train_batch_end(self, batch, logs=None):
            if batch == 1:
                raise RuntimeError("boom from a user callback")

    with pytest.raises(RuntimeError, match="boom from a user callback"):
        model.fit(x, y, epochs=2, verbose=0, callbacks=[Boom()])
    p = model.predict(x, verbose=0)
    assert p.shape == (100, 4) and np.isfinite(p).all()
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    history = model.fit(x, y, epochs=1, verbose=0)           # and trains again
    assert len(history.epoch) == 1


def test_callbacks_must_be_callback_instances(seed):
    x, y = make_data(50)
    with pytest.raises(TypeError, match="Callback"):
        dense_model().fit(x, y, verbose=0, callbacks=[lambda *a: None])


def test_ctrl_c_stops_at_a_batch_boundary_and_keeps_finished_epochs(seed, capsys):
    if signal.getsignal(signal.SIGINT) is not signal.default_int_handler:
        pytest.skip("SIGINT is handled by someone else in this process")
    x, y = make_data(256)
    model = dense_model()

    class CtrlC(Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self.epoch = epoch

        def on_train_batch_end(self, batch, logs=None):
            if self.epoch == 1 and batch == 2:
                os.kill(os.getpid(), signal.SIGINT)

    history = model.fit(x, y, epochs=3, verbose=0, callbacks=[CtrlC()])
    assert history.epoch == [0]
    assert "interrupted" in capsys.readouterr().err
    assert all(np.isfinite(w).all() for w in model.get_weights())
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


# ---- names ---------------------------------------------------------------------------------------

def test_automatic_names_and_clear_session():
    assert layers.Dense(2).name == "dense"
    assert layers.Dense(2).name == "dense_1"
    assert layers.Conv2D(2, 3).name == "conv2d"
    assert layers.MaxPooling2D().name == "max_pooling2d"
    assert layers.MaxPool2D().name == "max_pooling2d_1"
    assert keras.Input(shape=(3,)).node.layer.name == "input_1"
    assert keras.Sequential().name == "sequential"
    inp = keras.Input(shape=(3,))
    assert keras.Model(inp, layers.Dense(1)(inp)).name == "model"
    keras.backend.clear_session()
    assert layers.Dense(2).name == "dense"
    assert keras.Input(shape=(3,)).node.layer.name == "input_1"
    assert keras.Sequential().name == "sequential"
    assert layers.Dense(2, name="my_dense").name == "my_dense"


def _line_aligned(a: np.ndarray) -> bool:
    return a.ctypes.data % pycnn.backend.ALIGNMENT == 0


@pytest.mark.parametrize("shape, dtype", [((784, 512), np.float32), ((3,), np.float32),
                                          ((), np.float32), ((0, 4), np.float32),
                                          ((5, 7), np.int64)])
def test_backend_empty_is_contiguous_and_starts_on_a_cache_line(shape, dtype):
    for _ in range(4):                    # NumPy's own arrays start 16-byte aligned at random
        a = pycnn.backend.empty(shape, dtype)
        assert a.shape == shape and a.dtype == dtype and a.flags.c_contiguous
        assert a.flags.writeable and (a.size == 0 or _line_aligned(a))   # empty: no data
    z = pycnn.backend.zeros(shape, dtype)
    assert (z.size == 0 or _line_aligned(z)) and not np.any(z)


def test_backend_empty_refuses_what_numpy_refuses():
    with pytest.raises(TypeError):
        pycnn.backend.empty((2.5, 3))
    with pytest.raises(ValueError, match="negative"):
        pycnn.backend.empty((-1, 3))


def test_weights_gradients_slots_and_buffers_start_on_a_cache_line(seed):
    """The kernels read weight and gradient rows in place, a whole line per vector."""
    model = keras.Sequential([layers.Dense(33, activation="relu"), layers.Dense(10)])
    model.compile(optimizer="rmsprop", loss="sparse_categorical_crossentropy")
    rng = np.random.default_rng(0)
    x = rng.random((40, 17), dtype=np.float32)
    y = rng.integers(0, 10, 40)
    model.fit(x, y, batch_size=16, epochs=1, verbose=0)
    for w in model.weights:
        assert _line_aligned(w.value) and _line_aligned(w.grad), w.name
        for slot in model.optimizer.get_slots(w).values():
            assert _line_aligned(slot), w.name
    for step in model._train.plan.steps:           # the plan fit ran: every step wrote
        assert step.ctx.buffers(), step.name
        for key, buf in step.ctx.buffers().items():
            assert _line_aligned(buf), (step.name, key)
    model.set_weights([np.ones(w.shape, np.float32) for w in model.weights])
    assert all(_line_aligned(w.value) for w in model.weights)
