"""``activity_regularizer``: the penalty of a layer's output joins the training loss (divided
by the batch size, as tf.keras 2 does) and its gradient flows back through the layer."""
import numpy as np

import pycnn
from pycnn import layers


def test_activity_penalty_joins_the_loss_and_its_gradient_the_update():
    r = np.random.default_rng(0)
    x = r.standard_normal((8, 3)).astype(np.float32)
    y = np.zeros((8, 2), np.float32)
    dense = layers.Dense(2, activity_regularizer=pycnn.regularizers.L2(0.5))
    model = pycnn.Sequential([pycnn.Input(shape=(3,)), dense])
    model.compile(optimizer=pycnn.optimizers.SGD(learning_rate=0.1), loss="mse")
    w, b = (v.astype(np.float64) for v in model.get_weights())
    out = x @ w + b
    mse = np.mean(out ** 2)
    penalty = 0.5 * np.sum(out ** 2) / len(x)
    history = model.fit(x, y, batch_size=8, epochs=1, shuffle=False, verbose=0)
    assert history.history["loss"][0] == np.float32(mse + penalty) or \
        abs(history.history["loss"][0] - (mse + penalty)) < 1e-5
    dout = 2 * out / out.size + 2 * 0.5 * out / len(x)
    new_w = w - 0.1 * x.T.astype(np.float64) @ dout
    np.testing.assert_allclose(model.get_weights()[0], new_w, rtol=1e-5, atol=1e-6)


def test_evaluate_reports_the_penalty_too_and_predict_is_unchanged():
    dense = layers.Dense(2, activity_regularizer="l2")          # l2 = 0.01 as Keras' default
    model = pycnn.Sequential([pycnn.Input(shape=(3,)), dense])
    model.compile(optimizer="sgd", loss="mse")
    x = np.ones((4, 3), np.float32)
    out = model.predict(x, verbose=0).astype(np.float64)
    np.testing.assert_allclose(out, x @ model.get_weights()[0] + model.get_weights()[1],
                               rtol=1e-6)
    expect = np.mean(out ** 2) + 0.01 * np.sum(out ** 2) / len(x)
    assert abs(model.evaluate(x, np.zeros((4, 2)), verbose=0) - expect) < 1e-5
