"""Writing your own layers, losses and metrics: layers with ``build``/``call`` of ops in
Sequential, functional and subclassed models trained with ``fit``, gradients equal to the
built-in Dense, saving and loading them, ``Lambda``, custom losses and metrics."""
from __future__ import annotations

import numpy as np
import pytest

import pycnn as keras
from pycnn import layers, ops


class SimpleDense(keras.layers.Layer):
    def __init__(self, units=32, activation=None, **kwargs):
        super().__init__(**kwargs)
        self.units = units
        self.activation = activation

    def build(self, input_shape):
        self.kernel = self.add_weight(shape=(input_shape[-1], self.units),
                                      initializer="glorot_uniform", trainable=True,
                                      name="kernel")
        self.bias = self.add_weight(shape=(self.units,), initializer="zeros", name="bias")

    def call(self, inputs, training=None, mask=None):
        y = ops.matmul(inputs, self.kernel) + self.bias
        return ops.relu(y) if self.activation == "relu" else y

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[:-1]) + (self.units,)

    def get_config(self):
        config = super().get_config()
        config.update({"units": self.units, "activation": self.activation})
        return config


def data(n=64, d=6, k=3, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, d)).astype(np.float32)
    y = rng.integers(0, k, n)
    return x, y


def twin_models(activation=None):
    """A model with SimpleDense and one with Dense, with the same weights."""
    a = keras.Sequential([keras.Input((6,)), SimpleDense(5, activation=activation),
                          layers.Dense(3, activation="softmax")])
    b = keras.Sequential([keras.Input((6,)), layers.Dense(5, activation=activation),
                          layers.Dense(3, activation="softmax")])
    b.set_weights(a.get_weights())
    return a, b


def test_eager_call_on_arrays_builds_and_computes():
    layer = SimpleDense(4)
    x = np.ones((2, 3), np.float32)
    y = layer(x)
    assert isinstance(y, np.ndarray) and y.dtype == np.float32 and y.shape == (2, 4)
    np.testing.assert_allclose(y, x @ layer.kernel.numpy() + layer.bias.numpy(), rtol=1e-6)
    assert [w.name for w in layer.weights] == [f"{layer.name}/kernel", f"{layer.name}/bias"]
    assert layer.count_params() == 16


@pytest.mark.parametrize("activation", [None, "relu"])
def test_gradients_and_training_equal_the_builtin_dense(activation):
    a, b = twin_models(activation)
    x, y = data()
    for m in (a, b):
        m.compile(keras.optimizers.SGD(0.1), "sparse_categorical_crossentropy")
    np.testing.assert_allclose(a.predict(x, verbose=0), b.predict(x, verbose=0), rtol=1e-5,
                               atol=1e-6)
    ha = a.fit(x, y, epochs=3, batch_size=16, shuffle=False, verbose=0)
    hb = b.fit(x, y, epochs=3, batch_size=16, shuffle=False, verbose=0)
    np.testing.assert_allclose(ha.history["loss"], hb.history["loss"], rtol=1e-5)
    for wa, wb in zip(a.get_weights(), b.get_weights()):
        np.testing.assert_allclose(wa, wb, rtol=1e-4, atol=1e-6)
    assert ha.history["loss"][-1] < ha.history["loss"][0]


def test_functional_model_with_a_custom_layer_trains():
    x, y = data()
    inp = keras.Input((6,))
    h = SimpleDense(8, activation="relu")(inp)
    out = layers.Dense(3, activation="softmax")(h)
    model = keras.Model(inp, out)
    assert [type(l).__name__ for l in model.layers] == ["InputLayer", "SimpleDense", "Dense"]
    assert h.shape == (None, 8)
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    hist = model.fit(x, y, epochs=8, verbose=0)
    assert hist.history["loss"][-1] < hist.history["loss"][0]


def test_subclassed_model_with_a_custom_layer_and_ops_in_call():
    class Net(keras.Model):
        def __init__(self):
            super().__init__()
            self.hidden = SimpleDense(8, activation="relu")
            self.out = layers.Dense(3)

        def call(self, inputs, training=None):
            h = self.hidden(inputs)
            return ops.softmax(self.out(h * 2.0 - 0.5))

    x, y = data()
    model = Net()
    model.compile("adam", "sparse_categorical_crossentropy")
    hist = model.fit(x, y, epochs=8, verbose=0)
    assert hist.history["loss"][-1] < hist.history["loss"][0]
    np.testing.assert_allclose(model.predict(x, verbose=0).sum(-1), 1, rtol=1e-5)


def test_a_layer_with_sublayers_tracks_their_weights_and_freezes_them():
    class Block(keras.layers.Layer):
        def __init__(self, **kwargs):
            super().__init__(**kwargs)
            self.inner = layers.Dense(4)
            self.scale_init = 2.0

        def build(self, input_shape):
            self.scale = self.add_weight(shape=(), initializer="ones", name="scale")

        def call(self, x):
            return self.inner(x) * self.scale

    block = Block()
    model = keras.Sequential([keras.Input((6,)), block, layers.Dense(3, activation="softmax")])
    assert [w.name.split("/")[-1] for w in block.weights] == ["scale", "kernel", "bias"]
    assert len(model.trainable_weights) == 5
    x, y = data()
    model.compile(keras.optimizers.SGD(0.05), "sparse_categorical_crossentropy")
    before = [w.numpy() for w in block.weights]
    model.fit(x, y, epochs=1, verbose=0)
    assert all(not np.array_equal(b, w.numpy()) for b, w in zip(before, block.weights))
    block.trainable = False
    assert block.inner.trainable is False and len(model.trainable_weights) == 2
    model.compile(keras.optimizers.SGD(0.05), "sparse_categorical_crossentropy")
    frozen = [w.numpy() for w in block.weights]
    model.fit(x, y, epochs=1, verbose=0)
    for f, w in zip(frozen, block.weights):
        np.testing.assert_array_equal(f, w.numpy())


def test_a_weight_used_twice_gets_both_gradients():
    class Twice(keras.layers.Layer):
        def build(self, input_shape):
            self.w = self.add_weight(shape=(input_shape[-1], input_shape[-1]),
                                     initializer="identity", name="w")

        def call(self, x):
            return ops.matmul(ops.matmul(x, self.w), self.w)

    layer = Twice()
    inp = keras.Input((3,))
    model = keras.Model(inp, layer(inp))
    w = np.array([[1.0, 0.5, 0.0], [0.0, 1.0, 0.2], [0.3, 0.0, 1.0]], np.float32)
    layer.set_weights([w])
    x = np.arange(6, dtype=np.float32).reshape(2, 3) / 5
    plan = model.compiled_plan(True)
    plan.forward([x])
    dy = np.ones((2, 3), np.float32)
    plan.backward([dy])
    # d sum(dy * x W W) / dW = (xW)^T dy + x^T (dy W^T)
    want = (x @ w).T @ dy + x.T @ (dy @ w.T)
    np.testing.assert_allclose(layer.w.grad, want, rtol=1e-5)


def test_training_argument_traces_one_graph_per_mode():
    class Noise(keras.layers.Layer):
        def call(self, x, training=None):
            return x * 0.5 if training else x

    model = keras.Sequential([keras.Input((2,)), Noise()])
    x = np.ones((1, 2), np.float32)
    np.testing.assert_array_equal(model.predict(x, verbose=0), x)
    np.testing.assert_array_equal(model(x, training=True), x * 0.5)


def test_a_weight_transformed_alone_in_call_is_read_at_every_run():
    class Normed(keras.layers.Layer):
        def build(self, input_shape):
            self.v = self.add_weight(shape=(input_shape[-1], 2), initializer="ones", name="v")

        def call(self, x):
            w = self.v / ops.sqrt(ops.sum(ops.square(self.v), axis=0, keepdims=True))
            return ops.matmul(x, w)

    layer = Normed()
    model = keras.Sequential([keras.Input((3,)), layer])
    x = np.ones((1, 3), np.float32)
    np.testing.assert_allclose(model.predict(x, verbose=0), np.sqrt(3) * np.ones((1, 2)),
                               rtol=1e-6)
    layer.set_weights([np.array([[1, 0], [0, 0], [0, 0]], np.float32)])
    with np.errstate(invalid="ignore"):         # 0 / 0 in the second column
        np.testing.assert_allclose(model.predict(x, verbose=0), [[1, np.nan]], rtol=1e-6)


def test_a_layer_with_several_inputs_and_outputs():
    class Split(keras.layers.Layer):
        def call(self, inputs):
            a, b = inputs
            return [a + b, ops.concatenate([a, b], axis=-1)]

    a, b = keras.Input((2,)), keras.Input((2,))
    s, c = Split()([a, b])
    assert s.shape == (None, 2) and c.shape == (None, 4)
    model = keras.Model([a, b], [s, c])
    xa, xb = np.ones((3, 2), np.float32), np.full((3, 2), 2, np.float32)
    out = model.predict([xa, xb], verbose=0)
    np.testing.assert_array_equal(out[0], xa + xb)
    np.testing.assert_array_equal(out[1], np.concatenate([xa, xb], -1))
    eager = Split()([xa, xb])
    np.testing.assert_array_equal(eager[1], out[1])


# ---- saving -----------------------------------------------------------------------------------
def _trained_model():
    model = keras.Sequential([keras.Input((6,)), SimpleDense(5, activation="relu"),
                              layers.Dense(3, activation="softmax")])
    model.compile("adam", "sparse_categorical_crossentropy")
    model.fit(*data(), epochs=1, verbose=0)
    return model


def test_save_and_load_with_custom_objects(tmp_path):
    model = _trained_model()
    path = tmp_path / "m.keras"
    model.save(path)
    with pytest.raises(ValueError, match="SimpleDense"):
        keras.saving.load_model(path)
    loaded = keras.saving.load_model(path, custom_objects={"SimpleDense": SimpleDense})
    x = data()[0]
    np.testing.assert_allclose(loaded.predict(x, verbose=0), model.predict(x, verbose=0),
                               rtol=1e-6)
    assert loaded.layers[0].units == 5 and loaded.layers[0].activation == "relu"
    hist = loaded.fit(*data(), epochs=2, verbose=0)
    assert np.isfinite(hist.history["loss"]).all()


def test_save_and_load_a_registered_layer(tmp_path):
    @keras.saving.register_keras_serializable(package="test_custom_layers")
    class Scaled(keras.layers.Layer):
        def __init__(self, factor=2.0, **kwargs):
            super().__init__(**kwargs)
            self.factor = factor

        def build(self, input_shape):
            self.w = self.add_weight(shape=(input_shape[-1],), initializer="ones", name="w")

        def call(self, x):
            return x * self.w * self.factor

        def get_config(self):
            return {**super().get_config(), "factor": self.factor}

    inp = keras.Input((4,))
    model = keras.Model(inp, layers.Dense(2)(Scaled(3.0)(inp)))
    model.layers[1].set_weights([np.arange(4, dtype=np.float32)])
    path = tmp_path / "r.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    assert type(loaded.layers[1]) is Scaled and loaded.layers[1].factor == 3.0
    np.testing.assert_array_equal(loaded.layers[1].get_weights()[0], np.arange(4))
    x = np.ones((2, 4), np.float32)
    np.testing.assert_allclose(loaded.predict(x, verbose=0), model.predict(x, verbose=0))


# ---- Lambda -----------------------------------------------------------------------------------
def double_square(x):
    return ops.square(x) * 2.0


def test_lambda_in_a_model_trains_and_matches_numpy():
    x, y = data()
    model = keras.Sequential([keras.Input((6,)), layers.Dense(4),
                              layers.Lambda(lambda t: ops.tanh(t) + t[:, :1]),
                              layers.Dense(3, activation="softmax")])
    model.compile("adam", "sparse_categorical_crossentropy")
    hist = model.fit(x, y, epochs=6, verbose=0)
    assert hist.history["loss"][-1] < hist.history["loss"][0]
    lam = layers.Lambda(double_square)
    np.testing.assert_allclose(lam(x), 2 * x ** 2, rtol=1e-6)
    args = layers.Lambda(lambda t, k: t * k, arguments={"k": 3.0})
    np.testing.assert_allclose(args(x), 3 * x, rtol=1e-6)


def test_lambda_saving_by_name_and_lambdas_only_with_safe_mode_off(tmp_path):
    model = keras.Sequential([keras.Input((3,)), layers.Lambda(double_square)])
    path = tmp_path / "l.keras"
    model.save(path)
    loaded = keras.saving.load_model(path, custom_objects={"double_square": double_square})
    x = np.arange(6, dtype=np.float32).reshape(2, 3)
    np.testing.assert_allclose(loaded.predict(x, verbose=0), 2 * x ** 2)
    model = keras.Sequential([keras.Input((3,)), layers.Lambda(lambda t: t + 1.0)])
    model.save(path)
    with pytest.raises(ValueError, match="safe_mode=False"):
        keras.saving.load_model(path)
    loaded = keras.saving.load_model(path, safe_mode=False)
    np.testing.assert_allclose(loaded.predict(x, verbose=0), x + 1)


def test_lambda_argument_errors():
    with pytest.raises(TypeError, match="function"):
        layers.Lambda(3)
    with pytest.raises(TypeError, match="arguments"):
        layers.Lambda(double_square, arguments=[1])


# ---- losses and metrics -----------------------------------------------------------------------
def _regression(loss, metrics=None, sample_weight=None):
    keras.backend.clear_session()
    keras.utils.set_random_seed(3)
    rng = np.random.default_rng(1)
    x = rng.standard_normal((48, 4)).astype(np.float32)
    y = rng.standard_normal((48, 2)).astype(np.float32)
    model = keras.Sequential([keras.Input((4,)), layers.Dense(8, activation="relu"),
                              layers.Dense(2)])
    model.compile(keras.optimizers.SGD(0.05), loss, metrics=metrics)
    hist = model.fit(x, y, epochs=3, batch_size=16, shuffle=False, verbose=0,
                     sample_weight=sample_weight)
    return hist.history, model.get_weights()


def test_a_custom_loss_function_trains_as_the_builtin_mse():
    builtin, wb = _regression("mse")
    custom, wc = _regression(lambda yt, yp: ops.mean(ops.square(yt - yp), axis=-1))
    np.testing.assert_allclose(custom["loss"], builtin["loss"], rtol=1e-5)
    for a, b in zip(wc, wb):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)


def test_a_custom_loss_with_sample_weights_matches_the_builtin():
    sw = np.linspace(0.1, 2, 48).astype(np.float32)
    builtin, wb = _regression("mae", sample_weight=sw)
    custom, wc = _regression(lambda yt, yp: ops.mean(ops.abs(yt - yp), axis=-1),
                             sample_weight=sw)
    np.testing.assert_allclose(custom["loss"], builtin["loss"], rtol=1e-5)
    for a, b in zip(wc, wb):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)


def test_a_loss_subclass_with_call():
    class Huberish(keras.losses.Loss):
        def __init__(self, delta=1.0, **kwargs):
            super().__init__(**kwargs)
            self.delta = delta

        def call(self, y_true, y_pred):
            err = ops.abs(y_true - y_pred)
            quad = ops.minimum(err, self.delta)
            return ops.mean(0.5 * ops.square(quad) + self.delta * (err - quad), axis=-1)

    builtin, wb = _regression(keras.losses.Huber(delta=0.5))
    custom, wc = _regression(Huberish(delta=0.5))
    np.testing.assert_allclose(custom["loss"], builtin["loss"], rtol=1e-5)
    yt, yp = np.zeros((3, 2), np.float32), np.array([[0.2, 2], [1, -1], [0, 0.4]], np.float32)
    assert Huberish(0.5)(yt, yp) == pytest.approx(keras.losses.Huber(0.5)(yt, yp), rel=1e-6)


def test_metric_functions_and_a_metric_subclass():
    class MeanAbs(keras.metrics.Metric):
        def __init__(self, name="mean_abs", **kwargs):
            super().__init__(name=name, **kwargs)
            self.total = self.add_weight(name="total", initializer="zeros")
            self.count = self.add_weight(name="count", initializer="zeros")

        def update_state(self, y_true, y_pred, sample_weight=None):
            values = ops.mean(ops.abs(ops.subtract(y_true, y_pred)), axis=-1)
            self.total.assign_add(ops.sum(values))
            self.count.assign_add(ops.cast(ops.shape(values)[0], "float32"))

        def result(self):
            return ops.divide(self.total, self.count)

    def my_mae(y_true, y_pred):
        return ops.mean(ops.abs(y_true - y_pred), axis=-1)

    hist, _ = _regression("mse", metrics=["mae", my_mae, MeanAbs()])
    np.testing.assert_allclose(hist["my_mae"], hist["mae"], rtol=1e-5)
    np.testing.assert_allclose(hist["mean_abs"], hist["mae"], rtol=1e-5)


def test_call_must_return_tensors():
    class Bad(keras.layers.Layer):
        def call(self, x):
            return "nope"

    with pytest.raises(TypeError):
        Bad()(keras.Input((2,)))


def my_loss(y_true, y_pred):
    return ops.mean(ops.square(y_true - y_pred), axis=-1)


def test_a_model_compiled_with_a_custom_loss_loads_with_custom_objects(tmp_path):
    model = keras.Sequential([keras.Input((4,)), layers.Dense(2)])
    model.compile("sgd", my_loss, metrics=[my_loss])
    x, y = np.ones((8, 4), np.float32), np.zeros((8, 2), np.float32)
    model.fit(x, y, verbose=0)
    path = tmp_path / "c.keras"
    model.save(path)
    loaded = keras.saving.load_model(path, custom_objects={"my_loss": my_loss})
    assert loaded.evaluate(x, y, verbose=0)[0] == pytest.approx(
        model.evaluate(x, y, verbose=0)[0], rel=1e-6)
    hist = loaded.fit(x, y, epochs=2, verbose=0)
    assert hist.history["loss"][1] < hist.history["loss"][0]
