"""Reliability of pycnn beyond single calls: memory, threads, faults during training,
numerical extremes and hostile weight files.

* leaks: fit, predict, evaluate, model construction, the ``_C`` kernels (success and error
  paths) and the dataset loaders, called many times: after a warm-up, tracemalloc's traced
  memory and the process RSS (``/proc/self/statm``) stay flat, and reference counts of the
  arrays passed in and returned do not change;
* threads: two models trained at the same time in two Python threads end bit-identical to the
  same models trained one after the other; concurrent ``predict`` calls give the serial results;
* training faults: a NaN loss raises FloatingPointError naming the epoch and batch and leaves
  finite weights; ``TerminateOnNaN`` stops quietly; an exception in a callback propagates and
  leaves a usable model; Ctrl-C (SIGINT) during fit returns the finished epochs and restores
  the SIGINT handler;
* numerics: softmax and the crossentropies at logits of +-1e4; float64 data beyond float32;
* files: weights of another architecture name the first mismatching layer; an npz holding
  pickled objects is refused without unpickling.
"""
from __future__ import annotations

import gc
import os
import signal
import sys
import threading
import tracemalloc
from pathlib import Path

import numpy as np
import pytest

import pycnn
from pycnn import _C, callbacks, layers, optimizers

SANITIZED = bool(os.environ.get("PYCNN_SANITIZED"))
PAGE = os.sysconf("SC_PAGE_SIZE")
MB = 1 << 20


# ---------------------------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------------------------

def rss() -> int:
    """Resident set size of this process in bytes."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * PAGE


def dense_model(n_in=8, units=3, activation="softmax", optimizer="adam",
                loss="sparse_categorical_crossentropy"):
    model = pycnn.Sequential([pycnn.Input(shape=(n_in,)), layers.Dense(6, activation="relu"),
                              layers.Dense(units, activation=activation)])
    model.compile(optimizer=optimizer, loss=loss, metrics=["accuracy"])
    return model


def conv_model(optimizer="adam"):
    model = pycnn.Sequential([pycnn.Input(shape=(8, 8, 1)),
                              layers.Conv2D(4, 3, activation="relu", padding="same"),
                              layers.MaxPooling2D(2), layers.Conv2D(4, 3, activation="relu"),
                              layers.AveragePooling2D(1), layers.Flatten(),
                              layers.Dense(3, activation="softmax")])
    model.compile(optimizer=optimizer, loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    return model


def data(n=16, n_in=8, classes=3, seed=0):
    rng = np.random.default_rng(seed)
    return rng.random((n, n_in), dtype=np.float32), rng.integers(0, classes, n).astype(np.int64)


def image_data(n=32, seed=0):
    rng = np.random.default_rng(seed)
    return rng.random((n, 8, 8, 1), dtype=np.float32), rng.integers(0, 3, n).astype(np.int64)


def all_finite(model) -> bool:
    return all(np.all(np.isfinite(w)) for w in model.get_weights())


def assert_no_leak(fn, name, warmup=15, traced_iters=100, rss_iters=200,
                   traced_bytes_per_iter=64, rss_bound=20 * MB):
    """After ``warmup`` calls, ``traced_iters`` more calls must not grow tracemalloc's traced
    memory by more than ``traced_bytes_per_iter`` per call on average (measured twice; a leak
    grows both times), and ``rss_iters`` calls must not grow the RSS by more than ``rss_bound``
    (skipped under AddressSanitizer, whose quarantine holds freed memory on purpose)."""
    for _ in range(warmup):
        fn()
    gc.collect()
    tracemalloc.start()
    try:
        growth = []
        for _ in range(2):
            gc.collect()
            base = tracemalloc.get_traced_memory()[0]
            for _ in range(traced_iters):
                fn()
            gc.collect()
            growth.append(tracemalloc.get_traced_memory()[0] - base)
    finally:
        tracemalloc.stop()
    bound = traced_bytes_per_iter * traced_iters
    assert min(growth) <= bound, (
        f"{name}: traced Python/NumPy memory grew by {growth} bytes over two runs of "
        f"{traced_iters} calls (bound {bound} bytes per run): a leak of about "
        f"{min(growth) / traced_iters:.0f} bytes per call")
    if SANITIZED:
        return
    gc.collect()
    before = rss()
    for _ in range(rss_iters):
        fn()
    gc.collect()
    grown = rss() - before
    assert grown < rss_bound, (f"{name}: RSS grew by {grown / MB:.1f} MB over {rss_iters} calls "
                               f"(bound {rss_bound / MB:.0f} MB)")


# ---------------------------------------------------------------------------------------------
# leaks
# ---------------------------------------------------------------------------------------------

def test_fit_does_not_leak():
    pycnn.utils.set_random_seed(1)
    model = dense_model()
    x, y = data()
    assert_no_leak(lambda: model.fit(x, y, batch_size=4, epochs=1, verbose=0), "fit",
                   traced_iters=60, rss_iters=150)


def test_fit_with_validation_and_callbacks_does_not_leak():
    pycnn.utils.set_random_seed(2)
    model = conv_model(optimizers.RMSprop(momentum=0.5, centered=True))
    x, y = image_data(16)
    cbs = [callbacks.EarlyStopping(monitor="val_loss", patience=5), callbacks.TerminateOnNaN()]
    assert_no_leak(lambda: model.fit(x, y, batch_size=8, epochs=1, verbose=0,
                                     validation_split=0.25, callbacks=cbs),
                   "fit(conv, validation_split, callbacks)", traced_iters=40, rss_iters=100)


def test_predict_and_evaluate_do_not_leak():
    pycnn.utils.set_random_seed(3)
    model = conv_model()
    x, y = image_data(20)
    assert_no_leak(lambda: model.predict(x, batch_size=8, verbose=0), "predict")
    assert_no_leak(lambda: model.evaluate(x, y, batch_size=8, verbose=0), "evaluate")
    assert_no_leak(lambda: model(x), "model(x)")


def test_model_construction_does_not_leak():
    def build():
        m = conv_model()
        m.predict(np.zeros((1, 8, 8, 1), np.float32), verbose=0)
        i = pycnn.Input(shape=(5,))
        t = layers.Dense(4, activation="tanh")(i)
        pycnn.Model(i, layers.Softmax()(t)).compile(loss="categorical_crossentropy")
    # a long warm-up and a loose bound: strings made inside re.sub (the automatic layer names)
    # keep accumulating for a while, more and more slowly, in CPython itself (a bare loop of
    # re.sub calls shows the same); a leaked layer or weight array would be far larger
    assert_no_leak(build, "model construction", warmup=400, traced_iters=50, rss_iters=150,
                   traced_bytes_per_iter=400)


def test_failed_calls_do_not_leak():
    """The error paths of fit/predict (bad data, bad labels, bad arguments)."""
    model = dense_model()
    x, y = data()
    bad_labels = y.copy()
    bad_labels[3] = 7
    nan_x = x.copy()
    nan_x[2, 1] = np.nan

    def fail():
        for call in (lambda: model.fit(x, bad_labels, verbose=0),
                     lambda: model.predict(nan_x, verbose=0),
                     lambda: model.fit(x[:, :5], y, verbose=0),
                     lambda: model.evaluate(x, y, batch_size=0, verbose=0)):
            with pytest.raises(ValueError):
                call()
    assert_no_leak(fail, "failing fit/predict/evaluate", traced_iters=100)


def _kernel_calls():
    """Calls of every _C function, successful and failing in each way the binding checks."""
    rng = np.random.default_rng(0)
    f = lambda *s: rng.standard_normal(s).astype(np.float32)  # noqa: E731
    x, w, b, y = f(4, 6), f(6, 5), f(5), f(4, 5)
    xc, wc, yc = f(2, 6, 6, 3), f(3, 3, 3, 4), f(2, 4, 4, 4)
    yp, am = f(2, 3, 3, 3), np.zeros((2, 3, 3, 3), np.int32)
    logits, labels = f(4, 5), np.array([0, 1, 4, 2], np.int64)
    probs = np.full((4, 5), 0.2, np.float32)
    v = np.abs(f(6, 5))
    ok = [
        lambda: _C.gemm(x, w, y[:, :5].copy()),
        lambda: _C.dense_forward(x, w, b, y, activation="relu"),
        lambda: _C.dense_backward(x, w, y, f(4, 6), f(6, 5), f(5)),
        lambda: _C.conv2d_forward(xc, wc, f(4), yc, (1, 1), (0, 0)),
        lambda: _C.conv2d_backward(xc, wc, yc, f(2, 6, 6, 3), f(3, 3, 3, 4), f(4), (1, 1), (0, 0)),
        lambda: _C.maxpool2d_forward(xc, yp, am, (2, 2), (2, 2), (0, 0)),
        lambda: _C.maxpool2d_backward(yp, am, f(2, 6, 6, 3)),
        lambda: _C.avgpool2d_forward(xc, yp, (2, 2), (2, 2), (0, 0)),
        lambda: _C.avgpool2d_backward(yp, f(2, 6, 6, 3), (2, 2), (2, 2), (0, 0)),
        lambda: _C.activation_forward("softmax", logits, f(4, 5)),
        lambda: _C.activation_backward("tanh", logits, f(4, 5), f(4, 5)),
        lambda: _C.softmax_xent_sparse(logits, labels, f(4, 5), f(4, 5)),
        lambda: _C.xent_sparse(probs, labels, f(4, 5)),
        lambda: _C.softmax_xent(logits, probs, f(4, 5), None),
        lambda: _C.xent(probs, probs, f(4, 5)),
        lambda: _C.sgd_update(f(6, 5), w, f(6, 5), 0.1, 0.9, True),
        lambda: _C.rmsprop_update(f(6, 5), w, v.copy(), 0.1, 0.9, 1e-7, 0.5, f(6, 5), True,
                                  f(6, 5)),
        lambda: _C.adam_update(f(6, 5), w, f(6, 5), v.copy(), 0.1, 0.9, 0.999, 1e-7, 3),
    ]
    fail = [
        lambda: _C.gemm(x.astype(np.float64), w, y),                    # dtype
        lambda: _C.gemm(x.byteswap().view(">f4"), w, y),                # byte order
        lambda: _C.dense_forward(x, w, b, f(3, 5)),                     # shape (expect_shape)
        lambda: _C.dense_forward(x, w, f(4), y),                        # bias shape
        lambda: _C.dense_backward(x, w, y, None, f(6, 4), None),        # dw shape
        lambda: _C.conv2d_forward(xc, wc, None, f(3, 4, 4, 4), (1, 1), (0, 0)),   # y shape
        lambda: _C.conv2d_forward(xc, wc, None, yc, (1, 2, 3), (0, 0)),  # strides length
        lambda: _C.conv2d_forward(xc, wc, None, yc, [1, "a"], (0, 0)),   # strides item
        lambda: _C.conv2d_forward(xc, wc, None, yc, (0, 1), (0, 0)),    # strides value
        lambda: _C.maxpool2d_forward(xc, yp, np.zeros((2, 3, 3, 2), np.int32), (2, 2), (2, 2),
                                     (0, 0)),                           # argmax shape
        lambda: _C.activation_forward("no_such_kind", logits, f(4, 5)),         # kind
        lambda: _C.activation_forward("relu", logits, logits[:, :4]),   # shapes
        lambda: _C.softmax_xent_sparse(logits, labels + 5, f(4, 5), None),   # labels range
        lambda: _C.softmax_xent_sparse(logits, labels[:3], f(4, 5), None),   # labels shape
        lambda: _C.sgd_update(w, w, None, 0.1, 0.0),                    # aliasing
        lambda: _C.adam_update(w, w.copy(), f(6, 4), v, 0.1, 0.9, 0.999, 1e-7, 1),  # sizes
        lambda: _C.gemm(x, w, np.asfortranarray(f(4, 5))),              # layout
    ]
    return ok, fail


def test_kernel_calls_do_not_leak():
    ok, fail = _kernel_calls()

    def run_ok():
        for call in ok:
            call()

    def run_fail():
        for call in fail:
            try:
                call()
            except (TypeError, ValueError):
                continue
            raise AssertionError(f"{call} did not raise")
    assert_no_leak(run_ok, "_C kernels (successful calls)", traced_iters=100)
    # under the sanitizer build (PYTHONMALLOC=malloc) CPython's own caches drift a little more;
    # LeakSanitizer checks the C side there
    assert_no_leak(run_fail, "_C kernels (calls that raise)", traced_iters=200,
                   traced_bytes_per_iter=512 if SANITIZED else 32)


def test_kernel_error_path_shape_message_does_not_leak():
    """One failing shape check, many times: expect_shape() builds the message from
    PyObject_GetAttrString(a, "shape") and never releases that tuple."""
    x, w, y = np.ones((4, 6), np.float32), np.ones((6, 5), np.float32), np.ones((3, 5), np.float32)

    def call():
        try:
            _C.dense_forward(x, w, None, y)
        except ValueError:
            pass
    assert_no_leak(call, "dense_forward() shape error", traced_iters=2000,
                   traced_bytes_per_iter=8)


def _write_idx_dir(directory: Path, gz: bool, seed=0):
    import gzip
    import struct
    rng = np.random.default_rng(seed)
    arrays = {"train-images-idx3-ubyte": rng.integers(0, 256, (6, 28, 28), dtype=np.uint8),
              "train-labels-idx1-ubyte": rng.integers(0, 10, 6, dtype=np.uint8),
              "t10k-images-idx3-ubyte": rng.integers(0, 256, (3, 28, 28), dtype=np.uint8),
              "t10k-labels-idx1-ubyte": rng.integers(0, 10, 3, dtype=np.uint8)}
    directory.mkdir(parents=True, exist_ok=True)
    for stem, a in arrays.items():
        raw = struct.pack(">I", 0x0800 | a.ndim) + struct.pack(f">{a.ndim}I", *a.shape) + \
            a.tobytes()
        (directory / (stem + (".gz" if gz else ""))).write_bytes(
            gzip.compress(raw, mtime=0) if gz else raw)
    return arrays


def test_dataset_loaders_do_not_leak(tmp_path):
    from pycnn.datasets import _idx, fashion_mnist, mnist
    _write_idx_dir(tmp_path / "gz", gz=True)
    raw = _write_idx_dir(tmp_path / "raw", gz=False)
    np.savez_compressed(tmp_path / "mnist.npz", x_train=raw["train-images-idx3-ubyte"],
                        y_train=raw["train-labels-idx1-ubyte"],
                        x_test=raw["t10k-images-idx3-ubyte"],
                        y_test=raw["t10k-labels-idx1-ubyte"])
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "t.gz").write_bytes(b"\x1f\x8b" + b"junk" * 10)

    def load():
        mnist.load_data(path=tmp_path / "gz")
        fashion_mnist.load_data(path=tmp_path / "raw")
        mnist.load_data(path=tmp_path / "mnist.npz")
        with pytest.raises(ValueError):
            _idx.read_idx(tmp_path / "bad" / "t.gz", _idx.IMAGES_MAGIC)
    assert_no_leak(load, "dataset loaders", traced_iters=60, rss_iters=150,
                   traced_bytes_per_iter=128)


def _conv_calls(x, w, b, y, strides, pads):
    _C.conv2d_forward(x, w, b, y, strides, pads)
    for bad in ((x, w, b, y[:1], strides, pads), (x, w, b, y, (1,), pads),
                (x, w.astype(np.float64), b, y, strides, pads), (x, w, b, x, strides, pads),
                (x, w, b[:2], y, strides, pads), (x, w, b, y, strides, [0, None])):
        try:
            _C.conv2d_forward(*bad)
        except (TypeError, ValueError):
            pass
        else:
            raise AssertionError(f"no error for {bad}")


def test_reference_counts_unchanged_by_kernel_calls():
    """Arguments of _C calls keep their reference count, on success and on every error."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 6, 6, 3)).astype(np.float32)
    w = rng.standard_normal((3, 3, 3, 4)).astype(np.float32)
    b = np.zeros(4, np.float32)
    y = np.empty((2, 4, 4, 4), np.float32)
    strides, pads = (1, 1), (0, 0)
    logits = np.ones((12, 4), np.float32)
    labels = np.zeros(12, np.int64)
    probs = np.empty((12, 4), np.float32)
    arrays = [x, w, b, y, strides, pads, logits, labels, probs]
    before = [sys.getrefcount(a) for a in arrays]
    for _ in range(50):
        _conv_calls(x, w, b, y, strides, pads)
        loss = _C.softmax_xent_sparse(logits, labels, probs, None)
        assert sys.getrefcount(loss) == 2
        try:
            _C.softmax_xent_sparse(logits, labels[:3], probs, None)
        except ValueError:
            pass
    assert [sys.getrefcount(a) for a in arrays] == before


def test_reference_counts_stable_across_repeated_model_calls():
    """Repeated fit/predict/evaluate do not accumulate references to the caller's arrays, and
    the arrays they return are referenced only by the caller."""
    model = dense_model()
    x, y = data()
    model.fit(x, y, epochs=1, verbose=0)
    model.predict(x, verbose=0)
    model.evaluate(x, y, verbose=0)
    counts = (sys.getrefcount(x), sys.getrefcount(y))
    for _ in range(20):
        model.fit(x, y, epochs=1, batch_size=5, verbose=0, shuffle=False)
        p = model.predict(x, batch_size=5, verbose=0)
        assert sys.getrefcount(p) == 2
        q = model(x)
        assert sys.getrefcount(q) == 2
        model.evaluate(x, y, batch_size=5, verbose=0)
        weights = model.get_weights()
        assert all(sys.getrefcount(weights[i]) == 2 for i in range(len(weights)))
        del weights
    assert (sys.getrefcount(x), sys.getrefcount(y)) == counts


@pytest.mark.parametrize("call", ["predict", "evaluate", "fit(shuffle=False)", "model(x)"])
def test_model_does_not_keep_the_callers_arrays(call):
    """After predict/evaluate/fit return, the model must not hold a reference to the caller's
    input array (its layers keep the last batch - a view of x - for backward, which pins the
    whole array, e.g. the full training set, until the next call)."""
    model = dense_model()
    x, y = data(64)
    run = {"predict": lambda: model.predict(x, verbose=0),
           "evaluate": lambda: model.evaluate(x, y, verbose=0),
           "fit(shuffle=False)": lambda: model.fit(x, y, epochs=1, verbose=0, shuffle=False),
           "model(x)": lambda: model(x)}[call]
    before = sys.getrefcount(x)
    run()
    gc.collect()
    after = sys.getrefcount(x)
    holders = [f"{layer.name}.{attr}" for layer in model.layers
               for attr, v in vars(layer).items()
               if isinstance(v, np.ndarray) and (v is x or v.base is x)]
    assert after == before, (f"{call}: {after - before} more reference(s) to the caller's x "
                             f"after the call; views of x kept in: {holders}")


# ---------------------------------------------------------------------------------------------
# threads
# ---------------------------------------------------------------------------------------------

def _train(model, x, y, out, key):
    model.fit(x, y, batch_size=8, epochs=2, verbose=0, shuffle=False)
    out[key] = model.get_weights()


def test_two_models_trained_in_two_threads_match_serial_training():
    pycnn.utils.set_random_seed(11)
    reference = conv_model().get_weights()
    x, y = image_data(48, seed=1)

    def fresh():
        m = conv_model()
        m.set_weights(reference)
        return m
    serial = {}
    _train(fresh(), x, y, serial, "a")
    _train(fresh(), x, y, serial, "b")
    threaded = {}
    models = [fresh(), fresh()]
    threads = [threading.Thread(target=_train, args=(m, x, y, threaded, k))
               for m, k in zip(models, "ab")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert set(threaded) == {"a", "b"}, "a training thread failed"
    for key in "ab":
        for i, (s, t) in enumerate(zip(serial[key], threaded[key])):
            assert np.array_equal(s, t), f"model {key}, weight {i}: threaded != serial"
    for s, t in zip(serial["a"], serial["b"]):
        assert np.array_equal(s, t)


def _concurrent(fn, n_threads=4, reps=10):
    results, errors = {}, []

    def work(i):
        try:
            results[i] = [fn(i) for _ in range(reps)]
        except Exception as e:  # noqa: BLE001
            errors.append(e)
    threads = [threading.Thread(target=work, args=(i,)) for i in range(n_threads)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors, errors
    return results


def test_concurrent_predict_on_separate_models_matches_serial():
    pycnn.utils.set_random_seed(12)
    weights = conv_model().get_weights()
    models = []
    for _ in range(4):
        m = conv_model()
        m.set_weights(weights)
        models.append(m)
    xs = [image_data(40, seed=s)[0] for s in range(4)]
    expected = [models[0].predict(x, batch_size=8, verbose=0) for x in xs]
    results = _concurrent(lambda i: models[i].predict(xs[i], batch_size=8, verbose=0))
    for i, outs in results.items():
        for out in outs:
            assert np.array_equal(out, expected[i]), f"thread {i}: result differs from serial"


def test_concurrent_predict_on_one_model_matches_serial():
    """Four threads calling predict on the same model (e.g. a web server): every result must be
    the serial one. Layers write their outputs into buffers they own and reuse, so two predicts
    running at once (the GIL is released inside the kernels) overwrite each other's batches."""
    pycnn.utils.set_random_seed(13)
    model = conv_model()
    xs = [image_data(40, seed=s)[0] for s in range(4)]
    expected = [model.predict(x, batch_size=8, verbose=0) for x in xs]
    results = _concurrent(lambda i: model.predict(xs[i], batch_size=8, verbose=0))
    wrong = sum(not np.array_equal(out, expected[i]) for i, outs in results.items()
                for out in outs)
    assert wrong == 0, f"{wrong} of {4 * 10} concurrent predict results differ from serial ones"


# ---------------------------------------------------------------------------------------------
# training faults
# ---------------------------------------------------------------------------------------------

def overflow_data():
    """16 samples in batches of 4; batch 3 (samples 8..11) overflows float32 in the first
    Dense layer, so its loss is NaN."""
    x, y = data(16)
    x[8:12] = 3e38
    return x, y


class BatchCounter(callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.seen = []
        self.epoch = None

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        self.seen.append((self.epoch, batch))


def test_nan_loss_from_overflowing_data_raises_naming_epoch_and_batch():
    pycnn.utils.set_random_seed(20)
    model = dense_model(optimizer="sgd")
    x, y = overflow_data()
    with pytest.raises(FloatingPointError, match=r"epoch 1, batch 3") as err:
        model.fit(x, y, batch_size=4, epochs=3, verbose=0, shuffle=False)
    assert "nan" in str(err.value).lower() or "inf" in str(err.value).lower()
    assert all_finite(model)
    assert np.all(np.isfinite(model.predict(x[:8], verbose=0)))
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


@pytest.mark.parametrize("opt", [
    pytest.param(lambda: optimizers.SGD(learning_rate=1e30), id="sgd-1e30"),
    pytest.param(lambda: optimizers.Adam(learning_rate=1e30), id="adam-1e30"),
    pytest.param(lambda: optimizers.SGD(learning_rate=1e38, momentum=0.9), id="sgd-momentum-1e38"),
    pytest.param(lambda: optimizers.RMSprop(learning_rate=3e38), id="rmsprop-3e38"),
])
def test_nan_loss_from_a_huge_learning_rate(opt):
    """A learning rate so large that training diverges: FloatingPointError naming the epoch and
    batch, and all weights still finite (the update that overflowed must not be kept)."""
    pycnn.utils.set_random_seed(21)
    model = dense_model(optimizer=opt())
    x, y = data(32)
    with pytest.raises(FloatingPointError, match=r"epoch \d+, batch \d+"):
        model.fit(x, y, batch_size=4, epochs=20, verbose=0, shuffle=False)
    bad = [i for i, w in enumerate(model.get_weights()) if not np.all(np.isfinite(w))]
    assert not bad, f"weights {bad} are not finite after the FloatingPointError"


def test_terminate_on_nan_stops_without_raising():
    pycnn.utils.set_random_seed(22)
    model = dense_model(optimizer="sgd")
    x, y = overflow_data()
    counter = BatchCounter()
    history = model.fit(x, y, batch_size=4, epochs=5, verbose=0, shuffle=False,
                        callbacks=[callbacks.TerminateOnNaN(), counter])
    assert counter.seen == [(0, 0), (0, 1), (0, 2)]
    assert len(history.epoch) <= 1
    assert all_finite(model)
    assert np.all(np.isfinite(model.predict(x[:8], verbose=0)))


class Boom(Exception):
    pass


def test_exception_in_a_callback_propagates_and_the_model_stays_usable():
    pycnn.utils.set_random_seed(23)
    model = dense_model()
    x, y = data(40)

    class Raiser(callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            if batch == 3:
                raise Boom("from the user's callback")
    with pytest.raises(Boom):
        model.fit(x, y, batch_size=4, epochs=3, verbose=0, callbacks=[Raiser()])
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    assert all_finite(model)
    p = model.predict(x, verbose=0)
    assert p.shape == (40, 3) and np.all(np.isfinite(p))
    history = model.fit(x, y, batch_size=4, epochs=1, verbose=0)
    assert len(history.history["loss"]) == 1


class CtrlC(callbacks.Callback):
    """Sends SIGINT to this process at ``batch`` of ``epoch`` (``times`` signals)."""

    def __init__(self, epoch, batch, times=1):
        super().__init__()
        self.at, self.times, self.epoch = (epoch, batch), times, None

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        if (self.epoch, batch) == self.at:
            for _ in range(self.times):
                signal.raise_signal(signal.SIGINT)


@pytest.fixture
def main_thread_sigint(main_thread_sigint):
    """conftest's, checking too that the test left the default SIGINT handler in place."""
    yield
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_ctrl_c_during_fit_keeps_the_finished_epochs(main_thread_sigint, capsys):
    pycnn.utils.set_random_seed(24)
    model = conv_model()
    x, y = image_data(32)
    counter = BatchCounter()
    try:
        history = model.fit(x, y, batch_size=4, epochs=4, verbose=0,
                            callbacks=[CtrlC(epoch=1, batch=2), counter])
    except KeyboardInterrupt:
        pytest.fail("Ctrl-C during fit escaped as KeyboardInterrupt")
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    assert history.epoch == [0]
    assert all(len(v) == 1 for v in history.history.values()), history.history
    assert counter.seen[-1] == (1, 2), "training went on after the interrupted batch"
    assert all_finite(model)
    assert np.all(np.isfinite(model.predict(x, verbose=0)))
    assert len(model.fit(x, y, batch_size=8, epochs=1, verbose=0).history["loss"]) == 1
    assert "interrupted" in capsys.readouterr().err.lower()


def test_second_ctrl_c_interrupts_at_once(main_thread_sigint):
    pycnn.utils.set_random_seed(25)
    model = dense_model()
    x, y = data(40)
    with pytest.raises(KeyboardInterrupt):
        model.fit(x, y, batch_size=4, epochs=3, verbose=0,
                  callbacks=[CtrlC(epoch=0, batch=1, times=2)])
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    assert all_finite(model)
    assert np.all(np.isfinite(model.predict(x, verbose=0)))


def test_unscorable_probabilities_are_a_training_fault_not_a_kernel_error():
    """categorical_crossentropy on a relu output that is all zero for a sample (Keras
    renormalises p / sum(p): 0/0 = NaN): the loss cannot be computed, which fit must treat as a
    non-finite loss (FloatingPointError naming epoch and batch; TerminateOnNaN stops quietly),
    not as ValueError("xent(): non-finite or non-positive values") from inside the kernel."""
    def model():
        m = pycnn.Sequential([pycnn.Input(shape=(4,)), layers.Dense(3, activation="relu")])
        m.compile(optimizer="sgd", loss="categorical_crossentropy")
        m.set_weights([np.zeros((4, 3), np.float32), np.zeros(3, np.float32)])
        return m
    x = np.ones((8, 4), np.float32)
    y = np.eye(3, dtype=np.float32)[np.arange(8) % 3]
    with pytest.raises(FloatingPointError, match=r"epoch 1, batch 1"):
        model().fit(x, y, batch_size=4, epochs=2, verbose=0)
    model().fit(x, y, batch_size=4, epochs=2, verbose=0, callbacks=[callbacks.TerminateOnNaN()])


# ---------------------------------------------------------------------------------------------
# numerics
# ---------------------------------------------------------------------------------------------

BIG = np.array([[1e4, -1e4, 0.0], [-1e4, 1e4, -1e4], [0.0, 0.0, 1e4], [-1e4, -1e4, 1e4]],
               np.float32)
ONE_HOT = np.eye(3, dtype=np.float32)[[0, 1, 2, 2]]


def test_softmax_kernel_of_huge_logits_is_exactly_one_hot():
    y = np.empty_like(BIG)
    _C.activation_forward("softmax", BIG, y)
    assert np.array_equal(y, ONE_HOT)
    z = BIG.copy()
    _C.activation_forward("softmax", z, z)          # in place
    assert np.array_equal(z, ONE_HOT)
    dx = np.empty_like(y)
    _C.activation_backward("softmax", y, np.ones_like(y), dx)
    assert np.all(np.isfinite(dx))
    assert np.array_equal(pycnn.activations.softmax(BIG), ONE_HOT)
    halves = np.array([[0, 1, 0], [0.5, 0, 0.5], [0.5, 0.5, 0], [0.5, 0.5, 0]], np.float32)
    assert np.array_equal(pycnn.activations.softmax(-BIG), halves)


def test_softmax_layer_of_huge_logits_is_exactly_one_hot():
    out = layers.Softmax()(BIG)
    assert np.array_equal(out, ONE_HOT)
    dense = layers.Dense(3, activation="softmax", use_bias=False)
    dense(np.zeros((1, 3), np.float32))
    dense.set_weights([np.eye(3, dtype=np.float32)])
    assert np.array_equal(dense(BIG), ONE_HOT)


def test_fused_and_unfused_crossentropies_stay_finite_for_huge_logits():
    labels = np.array([0, 1, 2, 2], np.int64)
    probs, grad = np.empty_like(BIG), np.empty_like(BIG)
    loss = _C.softmax_xent_sparse(BIG, labels, probs, grad)
    assert loss == 0.0 and np.array_equal(probs, ONE_HOT) and np.all(np.isfinite(grad))
    wrong = np.array([1, 0, 0, 0], np.int64)
    loss = _C.softmax_xent_sparse(BIG, wrong, probs, grad)
    assert np.isfinite(loss) and loss > 1e3 and np.all(np.isfinite(grad))
    loss = _C.softmax_xent(BIG, ONE_HOT, probs, grad)
    assert loss == 0.0 and np.all(np.isfinite(grad))
    assert np.isfinite(_C.xent_sparse(ONE_HOT, wrong, grad)) and np.all(np.isfinite(grad))
    assert np.isfinite(_C.xent(ONE_HOT, ONE_HOT[[1, 0, 0, 0]], grad))
    assert np.all(np.isfinite(grad))
    losses = pycnn.losses
    for fn in (lambda: losses.SparseCategoricalCrossentropy(from_logits=True)(wrong, BIG),
               lambda: losses.CategoricalCrossentropy(from_logits=True)(ONE_HOT[[1, 0, 0, 0]], BIG),
               lambda: losses.SparseCategoricalCrossentropy()(wrong, ONE_HOT),
               lambda: losses.CategoricalCrossentropy()(ONE_HOT[[1, 0, 0, 0]], ONE_HOT)):
        assert np.isfinite(fn())


def test_training_through_huge_logits_stays_finite():
    """A softmax output layer whose logits are +-1e4 (fused softmax + crossentropy path): the
    loss and the update stay finite, the wrong labels give a large but finite loss."""
    model = pycnn.Sequential([pycnn.Input(shape=(3,)), layers.Dense(3, activation="softmax")])
    model.compile(optimizer=optimizers.SGD(1e-6), loss="sparse_categorical_crossentropy")
    model.set_weights([np.eye(3, dtype=np.float32), np.zeros(3, np.float32)])
    wrong = np.array([1, 0, 0, 0], np.int64)
    history = model.fit(BIG, wrong, batch_size=4, epochs=2, verbose=0, shuffle=False)
    assert all(np.isfinite(v) and v > 1e3 for v in history.history["loss"])
    assert all_finite(model)
    assert np.isfinite(model.evaluate(BIG, wrong, verbose=0))
    p = model.predict(BIG, verbose=0)
    assert np.all(np.isfinite(p)) and np.all((p == 0) | (p == 1))


def test_float64_beyond_float32_is_a_value_error():
    model = dense_model(loss="mse")
    x, _ = data(6)
    big = x.astype(np.float64)
    big[4, 2] = 1e39
    targets = np.zeros((6, 3))
    huge_targets = targets.copy()
    huge_targets[1, 1] = -1e39
    for call in (lambda: model.predict(big, verbose=0), lambda: model(big),
                 lambda: model.fit(big, targets, verbose=0),
                 lambda: model.evaluate(big, targets, verbose=0),
                 lambda: model.fit(x, huge_targets, verbose=0),
                 lambda: model.fit(x, targets, validation_data=(big, targets), verbose=0),
                 lambda: layers.Dense(2)(big),
                 lambda: pycnn.losses.MeanSquaredError()(huge_targets, targets)):
        with pytest.raises(ValueError, match="1e\\+39|overflows float32"):
            call()
    weights = model.get_weights()
    assert all(np.all(np.isfinite(w)) for w in weights)


# ---------------------------------------------------------------------------------------------
# weight files
# ---------------------------------------------------------------------------------------------

def test_load_weights_of_another_architecture_names_the_first_mismatching_layer(tmp_path):
    """Two convnets that agree in their first Conv2D and differ in the second: the error names
    the second Conv2D (not the first, whose weights match)."""
    def net(filters):
        m = pycnn.Sequential([pycnn.Input(shape=(8, 8, 1)), layers.Conv2D(4, 3, name="c1"),
                              layers.Conv2D(filters, 3, name="c2"), layers.Flatten(),
                              layers.Dense(2, name="out")])
        return m
    path = tmp_path / "w.npz"
    net(4).save_weights(str(path))
    target = net(6)
    before = target.get_weights()
    with pytest.raises(ValueError) as err:
        target.load_weights(str(path))
    msg = str(err.value)
    assert '"c2"' in msg and '"c1"' not in msg, msg
    for a, b in zip(before, target.get_weights()):
        np.testing.assert_array_equal(a, b)


class _MarkerPayload:
    """Unpickling this object creates a file: proof that a loader unpickled."""

    def __init__(self, path):
        self.path = str(path)

    def __reduce__(self):
        return (open, (self.path, "w"))


def test_npz_with_an_object_array_is_refused_without_unpickling(tmp_path):
    from pycnn.datasets import _idx
    marker = tmp_path / "was-unpickled"
    payload = np.empty(2, dtype=object)
    payload[0] = payload[1] = _MarkerPayload(marker)
    model = pycnn.Sequential([pycnn.Input(shape=(3,)), layers.Dense(2)])
    np.savez(tmp_path / "evil.npz", __format__=np.array("pycnn-weights-1"),
             **{"000/dense/kernel": np.zeros((3, 2), np.float32), "000/dense/bias": payload})
    with pytest.raises(ValueError):
        model.load_weights(str(tmp_path / "evil.npz"))
    assert not marker.exists(), "load_weights unpickled an object array"
    rng = np.random.default_rng(0)
    np.savez(tmp_path / "evil-mnist.npz", x_train=rng.integers(0, 255, (2, 28, 28), np.uint8),
             y_train=payload, x_test=rng.integers(0, 255, (2, 28, 28), np.uint8),
             y_test=np.zeros(2, np.uint8))
    with pytest.raises(ValueError, match="never loaded"):
        _idx.load_npz(tmp_path / "evil-mnist.npz")
    assert not marker.exists(), "load_npz unpickled an object array"
