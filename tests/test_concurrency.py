"""Threads: layers shared between models, the weights API beside a running fit or predict.

Each model's compiled plan owns the per-call state of its layers (their saved inputs and
output buffers), so two models sharing layers run in two threads without mixing rows; every
batch holds the weights locks of the layers it runs, so get_weights/set_weights/save_weights
from another thread see whole weight sets, never half an update.
"""
from __future__ import annotations

import threading

import numpy as np
import pytest

import pycnn
from pycnn import layers

from threads import run_threads


def _shared_models():
    inp = pycnn.Input(shape=(16,))
    trunk = layers.Dense(32, activation="relu", name="trunk")
    head_a = layers.Dense(4, name="head_a")
    head_b = layers.Dense(3, name="head_b")
    a = pycnn.Model(inp, head_a(trunk(inp)))
    inp2 = pycnn.Input(shape=(16,))
    b = pycnn.Model(inp2, head_b(trunk(inp2)))
    return a, b


def test_models_sharing_layers_predict_in_two_threads_without_mixing_rows():
    a, b = _shared_models()
    r = np.random.default_rng(0)
    xa = r.standard_normal((300, 16)).astype(np.float32)
    xb = r.standard_normal((257, 16)).astype(np.float32)
    want_a, want_b = a.predict(xa, verbose=0), b.predict(xb, verbose=0)
    got = {}

    def run(model, x, key):
        outs = [model.predict(x, batch_size=7, verbose=0) for _ in range(20)]
        got[key] = outs

    run_threads([lambda: run(a, xa, "a"), lambda: run(b, xb, "b")])
    for out in got["a"]:
        np.testing.assert_array_equal(out, want_a)
    for out in got["b"]:
        np.testing.assert_array_equal(out, want_b)


def test_weights_read_during_fit_are_always_a_whole_step():
    """get_weights from another thread during fit sees the weights after some batch, never a
    mix of two: with SGD(lr=1) on a loss whose gradient is the same every step, every snapshot
    equals the initial weights minus k times the gradient for one integer k."""
    model = pycnn.Sequential([pycnn.Input(shape=(1,)),
                              layers.Dense(64, use_bias=False, kernel_initializer="zeros"),
                              layers.Dense(1, use_bias=False, kernel_initializer="ones")])
    model.layers[1].trainable = False
    model.compile(optimizer=pycnn.optimizers.SGD(learning_rate=1e-3), loss="mae")
    x = np.ones((4000, 1), np.float32)
    y = np.full((4000, 1), 1e6, np.float32)     # far away: the gradient's sign never changes
    snapshots = []
    stop = threading.Event()

    def watch():
        while not stop.is_set():
            snapshots.append(model.layers[0].get_weights()[0].copy())

    def train():
        try:
            model.fit(x, y, batch_size=4, epochs=1, verbose=0, shuffle=False)
        finally:
            stop.set()

    run_threads([train, watch])
    assert len(snapshots) > 5
    for w in snapshots:
        steps = w / -1e-3                # each step adds lr * 1 to every weight (mae of ones)
        k = np.round(steps)
        assert np.all(k == k.flat[0]), "a snapshot mixes two steps"


def test_predictions_during_set_weights_match_one_of_the_two_weight_sets():
    r = np.random.default_rng(1)
    model = pycnn.Sequential([pycnn.Input(shape=(32,)), layers.Dense(64, activation="relu"),
                              layers.Dense(8)])
    w1 = model.get_weights()
    w2 = [r.standard_normal(w.shape).astype(np.float32) for w in w1]
    x = r.standard_normal((64, 32)).astype(np.float32)
    model.set_weights(w1)
    p1 = model.predict(x, batch_size=64, verbose=0)
    model.set_weights(w2)
    p2 = model.predict(x, batch_size=64, verbose=0)
    outs = []
    stop = threading.Event()
    flips = [0]

    def flip():
        while not stop.is_set():
            model.set_weights(w1 if flips[0] % 2 else w2)
            flips[0] += 1

    def predict():
        try:
            for _ in range(40):
                outs.append(model.predict(x, batch_size=64, verbose=0))
        finally:
            stop.set()

    run_threads([flip, predict])
    assert len(outs) == 40 and flips[0] > 0
    for out in outs:
        assert np.array_equal(out, p1) or np.array_equal(out, p2), \
            "a prediction used weights from two different sets"


def test_set_weights_with_a_wrong_last_shape_changes_nothing():
    model = pycnn.Sequential([pycnn.Input(shape=(3,)), layers.Dense(4), layers.Dense(2)])
    before = model.get_weights()
    bad = [np.ones_like(w) for w in before]
    bad[-1] = np.ones(5, np.float32)
    with pytest.raises(ValueError, match="shape"):
        model.set_weights(bad)
    for a, b in zip(before, model.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_checkpoints_saved_from_another_thread_during_fit_load_back(tmp_path):
    r = np.random.default_rng(2)
    model = pycnn.Sequential([pycnn.Input(shape=(8,)), layers.Dense(16, activation="relu"),
                              layers.Dense(3, activation="softmax")])
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    x = r.standard_normal((2000, 8)).astype(np.float32)
    y = r.integers(0, 3, 2000)
    stop = threading.Event()
    saved = []

    def checkpoint():
        i = 0
        while not stop.is_set():
            path = tmp_path / f"c{i % 3}.weights.h5"
            model.save_weights(path)
            saved.append(path)
            i += 1

    def train():
        try:
            model.fit(x, y, batch_size=8, epochs=2, verbose=0)
        finally:
            stop.set()

    run_threads([train, checkpoint])
    assert saved
    other = pycnn.models.clone_model(model)
    for path in set(saved):
        other.load_weights(path)        # every file whole and readable
    assert not list(tmp_path.glob("*.tmp")) and not list(tmp_path.glob(".*"))
