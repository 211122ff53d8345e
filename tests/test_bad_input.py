"""Bad input never crashes pycnn: every public entry point (and every C entry point in
``pycnn._C``) rejects it with a TypeError or ValueError whose message says what was wrong,
where, and what was expected, or, where Keras accepts it (uint8 / float64 data, any integer
label dtype, non-contiguous arrays, (N, 1) labels), works.

The C entry points are called in a separate worker process, so that a crash (a segfault) fails
one test and is reported as such instead of killing the test run."""
from __future__ import annotations

import json
import pathlib
import pickle
import subprocess
import tempfile
import threading

import numpy as np
import pytest

import pycnn
import pycnn as keras
from pycnn import layers
from childproc import child_env, popen_python


# ---- models used below ---------------------------------------------------------------------------

def dense_model(features=784, classes=10):
    model = keras.Sequential([keras.Input(shape=(features,)), layers.Dense(8, activation="relu"),
                              layers.Dense(classes, activation="softmax")])
    model.compile(optimizer="rmsprop", loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    return model


def conv_model():
    inp = keras.Input(shape=(28, 28, 1))
    x = layers.Conv2D(4, 3, activation="relu")(inp)
    x = layers.MaxPooling2D(2)(x)
    x = layers.Flatten()(x)
    out = layers.Dense(10, activation="softmax")(x)
    model = keras.Model(inp, out)
    model.compile(optimizer="rmsprop", loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    return model


def data(n=8, features=784, seed=0):
    rng = np.random.default_rng(seed)
    return rng.random((n, features), dtype=np.float32), rng.integers(0, 10, n)


def raises(exc, fn, *words):
    """``fn()`` raises ``exc`` and its message contains every one of ``words``."""
    with pytest.raises(exc) as err:
        fn()
    msg = str(err.value)
    for w in words:
        assert w in msg, f"{w!r} not in message: {msg}"
    return msg


ENTRY_POINTS = {
    "fit": lambda m, x, y: m.fit(x, y, verbose=0),
    "evaluate": lambda m, x, y: m.evaluate(x, y, verbose=0),
    "predict": lambda m, x, y: m.predict(x, verbose=0),
}
ALL = pytest.mark.parametrize("entry", sorted(ENTRY_POINTS))
WITH_Y = pytest.mark.parametrize("entry", ["evaluate", "fit"])


# ---- dtypes ---------------------------------------------------------------------------------------

@ALL
@pytest.mark.parametrize("bad", [
    np.array([["a"] * 784] * 2),
    np.zeros((2, 784), dtype=object),
    np.zeros((2, 784), dtype=np.complex64),
    "not an array",
    None,
])
def test_non_numeric_x_is_a_type_error(entry, bad):
    model = dense_model()
    _, y = data(2)
    raises(TypeError, lambda: ENTRY_POINTS[entry](model, bad, y), f"{entry}(x)")


@ALL
def test_x_as_a_dict_is_keyed_by_input_name(entry):
    """Inputs may be given as a dict by input name: unknown keys are a ValueError naming the
    missing input and the keys received; a non-numeric array under the right name is a
    TypeError as any non-numeric x; the right name and data work."""
    model = dense_model()
    x, y = data(2)
    (name,) = model.input_names
    raises(ValueError, lambda: ENTRY_POINTS[entry](model, {"x": 1}, y), f"{entry}(x)", name,
           "'x'")
    raises(TypeError, lambda: ENTRY_POINTS[entry](
        model, {name: np.zeros((2, 784), dtype=object)}, y), f"{entry}(x)")
    ENTRY_POINTS[entry](model, {name: x}, y)


@pytest.mark.parametrize("dtype", [np.uint8, np.float64, np.float16, np.int32, np.int64, bool])
def test_numeric_x_of_any_dtype_is_cast_as_keras_does(dtype):
    model = dense_model()
    x, y = data()
    xd = (x * 255).astype(dtype) if dtype not in (bool,) else x > 0.5
    expected = model.predict(xd.astype(np.float32), verbose=0)
    got = model.predict(xd, verbose=0)
    assert got.dtype == np.float32
    np.testing.assert_array_equal(got, expected)
    assert np.isfinite(model.evaluate(xd, y, verbose=0)[0])
    model.fit(xd, y, verbose=0)


def test_python_lists_work_like_arrays():
    model = dense_model(features=3)
    x = [[0.0, 1.0, 2.0], [3.0, 4.0, 5.0]]
    np.testing.assert_array_equal(model.predict(x, verbose=0),
                                  model.predict(np.array(x, np.float32), verbose=0))
    model.fit(x, [1, 2], verbose=0)


# ---- shapes and ranks ---------------------------------------------------------------------------

@ALL
@pytest.mark.parametrize("shape", [(8, 28, 28), (8, 783), (8, 784, 1), (784,)])
def test_wrong_input_shape_names_the_model_and_the_expected_shape(entry, shape):
    model = dense_model()
    _, y = data()
    x = np.zeros(shape, np.float32)
    raises(ValueError, lambda: ENTRY_POINTS[entry](model, x, y),
           '"sequential"', "(None, 784)", "expected")


@ALL
@pytest.mark.parametrize("shape", [(2, 28, 28), (2, 28, 28, 3), (2, 784), (2, 1, 28, 28)])
def test_wrong_input_shape_of_a_functional_convnet(entry, shape):
    model = conv_model()
    raises(ValueError, lambda: ENTRY_POINTS[entry](model, np.zeros(shape, np.float32),
                                                   np.zeros(2, int)),
           '"model"', "(None, 28, 28, 1)", f"(None, {', '.join(map(str, shape[1:]))})")


def test_scalar_x_is_rejected():
    raises(ValueError, lambda: dense_model().predict(np.float32(1), verbose=0), "scalar")


def test_keras_input_spec_messages_name_the_layer():
    dense = layers.Dense(3)
    dense(np.zeros((2, 4), np.float32))
    raises(ValueError, lambda: dense(np.zeros((2, 5), np.float32)),
           f'Input 0 of layer "{dense.name}" is incompatible with the layer: expected axis -1 '
           "of input shape to have value 4, but received input with shape (None, 5)")
    raises(ValueError, lambda: layers.Conv2D(4, 3)(keras.Input(shape=(784,))),
           'Input 0 of layer "conv2d" is incompatible with the layer: expected min_ndim=4, '
           "found ndim=2. Full shape received: (None, 784)")
    raises(ValueError, lambda: layers.MaxPooling2D()(keras.Input(shape=(28, 28))),
           '"max_pooling2d"', "ndim=4", "ndim=3")


def test_lazily_built_sequential_then_other_shape():
    model = keras.Sequential([layers.Dense(4), layers.Dense(10, activation="softmax")])
    model.compile(loss="sparse_categorical_crossentropy")
    model.predict(np.zeros((2, 6), np.float32), verbose=0)
    raises(ValueError, lambda: model.predict(np.zeros((2, 7), np.float32), verbose=0),
           "(None, 6)", "(None, 7)")


@WITH_Y
def test_unflattened_images_with_sparse_labels_are_rejected_clearly(entry):
    """The classic mistake: the lecture's dense model fed (N, 28, 28) images (reshape
    forgotten). Dense acts on the last axis, so the output is (None, 28, 10); labels (N,) do not
    fit that output, and Keras raises. pycnn must say so at the entry point, naming the output
    shape, instead of training on a softmax over 280 values or failing inside a C kernel."""
    model = keras.Sequential([layers.Dense(16, activation="relu"),
                              layers.Dense(10, activation="softmax")])
    model.compile(optimizer="rmsprop", loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    x = np.random.default_rng(0).random((64, 28, 28), dtype=np.float32)
    y = np.random.default_rng(1).integers(0, 10, 64)
    msg = raises(ValueError, lambda: ENTRY_POINTS[entry](model, x, y), "(None, 28, 10)")
    assert "_C" not in msg and "softmax_xent" not in msg


def test_unflattened_images_with_from_logits_loss_are_rejected_clearly():
    model = keras.Sequential([layers.Dense(16, activation="relu"), layers.Dense(10)])
    model.compile(optimizer="rmsprop",
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    x = np.random.default_rng(0).random((64, 28, 28), dtype=np.float32)
    y = np.random.default_rng(1).integers(0, 10, 64)
    raises(ValueError, lambda: model.fit(x, y, verbose=0), "(None, 28, 10)")


# ---- memory layout -------------------------------------------------------------------------------

@pytest.mark.parametrize("layout", ["strided", "fortran", "big-endian", "read-only", "transposed"])
def test_any_memory_layout_works(layout):
    model = dense_model(features=6)
    base = np.random.default_rng(0).random((10, 6), dtype=np.float32)
    y = np.arange(10) % 10
    if layout == "strided":
        x = np.repeat(base, 2, axis=1)[:, ::2]
    elif layout == "fortran":
        x = np.asfortranarray(base)
    elif layout == "big-endian":
        x = base.astype(">f4")
    elif layout == "read-only":
        x = base.copy()
        x.setflags(write=False)
    else:
        x = np.ascontiguousarray(base.T).T
    assert np.array_equal(x, base)
    expected = model.predict(base, verbose=0)
    np.testing.assert_array_equal(model.predict(x, verbose=0), expected)
    np.testing.assert_array_equal(model(x), expected)
    assert model.evaluate(x, y, verbose=0) == model.evaluate(base, y, verbose=0)
    ys = np.repeat(y, 2)[::2]                       # strided labels too
    model.fit(x, ys, verbose=0, batch_size=4)
    assert np.array_equal(x, base)                  # the input was not modified


def test_non_contiguous_images_for_a_convnet():
    model = conv_model()
    base = np.random.default_rng(0).random((4, 28, 28, 1), dtype=np.float32)
    x = np.repeat(base, 2, axis=2)[:, :, ::2, :]
    np.testing.assert_array_equal(model.predict(x, verbose=0), model.predict(base, verbose=0))
    model.fit(x, np.arange(4), verbose=0)


# ---- empty, NaN, inf, overflow -------------------------------------------------------------------

@ALL
@pytest.mark.parametrize("shape", [(0, 784), (0,)])
def test_empty_x(entry, shape):
    raises(ValueError, lambda: ENTRY_POINTS[entry](dense_model(), np.zeros(shape, np.float32),
                                                   np.zeros(0, int)),
           "empty")


@ALL
@pytest.mark.parametrize("value, pos", [(np.nan, (3, 17)), (np.inf, (0, 0)), (-np.inf, (7, 783))])
def test_non_finite_x_gives_the_position(entry, value, pos):
    x, y = data()
    x[pos] = value
    msg = raises(ValueError, lambda: ENTRY_POINTS[entry](dense_model(), x, y),
                 f"{entry}(x)", f"[{pos[0]}, {pos[1]}]")
    assert str(value) in msg


def test_non_finite_validation_data_gives_the_position():
    x, y = data()
    xv = x.copy()
    xv[2, 5] = np.nan
    raises(ValueError, lambda: dense_model().fit(x, y, validation_data=(xv, y), verbose=0),
           "validation", "[2, 5]", "nan")


@ALL
def test_float64_overflowing_float32(entry):
    x, y = data()
    x = x.astype(np.float64)
    x[1, 2] = 1e39
    raises(ValueError, lambda: ENTRY_POINTS[entry](dense_model(), x, y),
           "[1, 2]", "float32")


# ---- labels ---------------------------------------------------------------------------------------

@WITH_Y
@pytest.mark.parametrize("label, words", [
    (10, ["10", "out of range", "[0, 9]", "position [3]"]),
    (-1, ["-1", "out of range", "position [3]"]),
    (1.5, ["1.5", "not an integer", "position [3]"]),
    (np.nan, ["nan", "position [3]"]),
])
def test_bad_labels_give_the_value_and_position(entry, label, words):
    x, _ = data()
    y = np.zeros(8, np.float64 if isinstance(label, float) else np.int64)
    y[3] = label
    raises(ValueError, lambda: ENTRY_POINTS[entry](dense_model(), x, y), f"{entry}(y)", *words)


@WITH_Y
def test_one_hot_labels_with_the_sparse_loss_suggest_categorical_crossentropy(entry):
    x, y = data()
    raises(ValueError, lambda: ENTRY_POINTS[entry](dense_model(), x, np.eye(10)[y]),
           "one-hot", "categorical_crossentropy")


@WITH_Y
@pytest.mark.parametrize("shape", [(8, 2), (8, 1, 1), (2, 4)])
def test_labels_of_a_wrong_shape(entry, shape):
    x, _ = data()
    raises(ValueError, lambda: ENTRY_POINTS[entry](dense_model(), x, np.zeros(shape, int)))


@WITH_Y
def test_string_labels_are_a_type_error(entry):
    x, _ = data()
    raises(TypeError, lambda: ENTRY_POINTS[entry](dense_model(), x, np.array(list("abcdefgh"))),
           "labels")


@pytest.mark.parametrize("dtype", [np.int8, np.int16, np.int32, np.int64, np.uint8, np.uint16,
                                   np.uint32, np.uint64, np.float32, np.float64])
def test_labels_of_any_integer_dtype_and_n_by_1(dtype):
    model = dense_model()
    x, y = data()
    ref = model.evaluate(x, y, verbose=0)
    assert model.evaluate(x, y.astype(dtype), verbose=0) == ref
    assert model.evaluate(x, y.astype(dtype).reshape(-1, 1), verbose=0) == ref
    assert model.evaluate(x, list(y), verbose=0) == ref
    model.fit(x, y.astype(dtype).reshape(-1, 1), verbose=0)


def test_categorical_targets_of_a_wrong_shape_hint_at_the_sparse_loss():
    model = dense_model()
    model.compile(loss="categorical_crossentropy", metrics=["accuracy"])
    x, y = data()
    raises(ValueError, lambda: model.fit(x, y, verbose=0),
           "(None, 10)", "sparse_categorical_crossentropy", "to_categorical")
    raises(ValueError, lambda: model.fit(x, np.eye(9)[y % 9], verbose=0), "(None, 10)")


@WITH_Y
def test_x_and_y_lengths_must_match(entry):
    x, _ = data()
    raises(ValueError, lambda: ENTRY_POINTS[entry](dense_model(), x, np.zeros(5, int)), "8", "5")


@WITH_Y
def test_missing_y(entry):
    x, _ = data()
    raises(ValueError, lambda: ENTRY_POINTS[entry](dense_model(), x, None), "y")


# ---- compile and fit arguments -------------------------------------------------------------------

@WITH_Y
def test_fit_and_evaluate_before_compile(entry):
    model = keras.Sequential([keras.Input(shape=(784,)), layers.Dense(10)])
    x, y = data()
    with pytest.raises((RuntimeError, ValueError), match="compile"):
        ENTRY_POINTS[entry](model, x, y)
    assert model.predict(x, verbose=0).shape == (8, 10)     # predict needs no compile


@pytest.mark.parametrize("kwargs, word", [
    ({"optimizer": "adamx", "loss": "sparse_categorical_crossentropy"}, "adamx"),
    ({"optimizer": 3, "loss": "sparse_categorical_crossentropy"}, "optimizer"),
    ({"loss": "sparse_categorical_crossentropyy"}, "sparse_categorical_crossentropyy"),
    ({"loss": 42}, "loss"),
    ({"loss": "sparse_categorical_crossentropy", "metrics": ["acuracy"]}, "acuracy"),
    ({"loss": "sparse_categorical_crossentropy", "metrics": [3.5]}, "metric"),
])
def test_unknown_names_at_compile(kwargs, word):
    raises(ValueError, lambda: keras.Sequential([layers.Dense(2)]).compile(**kwargs), word)


def test_compile_rejects_unknown_keywords():
    with pytest.raises(TypeError, match="optimiser"):
        keras.Sequential([layers.Dense(2)]).compile(optimiser="adam", loss="mse")


@pytest.mark.parametrize("entry", ["fit", "evaluate", "predict"])
@pytest.mark.parametrize("bad", [0, -1, "a", 1.5, True])
def test_bad_batch_size(entry, bad):
    model = dense_model()
    x, y = data()
    call = {"fit": lambda: model.fit(x, y, batch_size=bad, verbose=0),
            "evaluate": lambda: model.evaluate(x, y, batch_size=bad, verbose=0),
            "predict": lambda: model.predict(x, batch_size=bad, verbose=0)}[entry]
    raises((ValueError, TypeError), call, "batch_size")


def test_batch_size_none_means_32():
    history = dense_model().fit(*data(100), batch_size=None, verbose=0)
    assert history.params["steps"] == 4


@pytest.mark.parametrize("bad", [-1, "2", 1.5, None])
def test_bad_epochs(bad):
    raises((ValueError, TypeError), lambda: dense_model().fit(*data(), epochs=bad, verbose=0),
           "epochs")


@pytest.mark.parametrize("bad", [1.5, -0.1, 1.0, "a", 0.95])
def test_bad_validation_split(bad):
    raises((ValueError, TypeError),
           lambda: dense_model().fit(*data(), validation_split=bad, verbose=0),
           "validation_split")


@pytest.mark.parametrize("bad", [(np.zeros((2, 784)),), "data", 3])
def test_bad_validation_data(bad):
    raises((ValueError, TypeError),
           lambda: dense_model().fit(*data(), validation_data=bad, verbose=0),
           "validation_data")


@pytest.mark.parametrize("bad", [3, -1, "yes"])
def test_bad_verbose(bad):
    raises((ValueError, TypeError), lambda: dense_model().fit(*data(), verbose=bad), "verbose")


# ---- layers and models ----------------------------------------------------------------------------

def test_conv_kernel_larger_than_the_input_shows_the_arithmetic():
    inp = keras.Input(shape=(2, 2, 1))
    raises(ValueError, lambda: layers.Conv2D(4, 3)(inp),
           '"conv2d"', "3x3", "(None, 2, 2, 1)", "floor((2 - 3) / 1) + 1 = 0")
    raises(ValueError, lambda: layers.MaxPooling2D(3)(inp),
           '"max_pooling2d"', "floor((2 - 3) / 3) + 1 = 0")
    # a deeper case: the lecture's convnet on 8x8 images runs out of pixels at the third conv
    inp = keras.Input(shape=(8, 8, 1))
    x = layers.Conv2D(32, 3)(inp)
    x = layers.MaxPool2D(2)(x)
    raises(ValueError, lambda: layers.Conv2D(64, 3, strides=2)(layers.Conv2D(64, 3)(x)),
           "floor((1 - 3) / 2) + 1 = 0")


@pytest.mark.parametrize("make, word", [
    (lambda: layers.Dense(0), "units"),
    (lambda: layers.Dense(-3), "units"),
    (lambda: layers.Dense("10"), "units"),
    (lambda: layers.Dense(3, activation="relux"), "relux"),
    (lambda: layers.Conv2D(0, 3), "filters"),
    (lambda: layers.Conv2D(4, 0), "kernel_size"),
    (lambda: layers.Conv2D(4, (3, 3, 3)), "kernel_size"),
    (lambda: layers.Conv2D(4, 3, strides=0), "strides"),
    (lambda: layers.Conv2D(4, 3, strides=-1), "strides"),
    (lambda: layers.Conv2D(4, 3, padding="full"), "padding"),
    (lambda: layers.MaxPooling2D(0), "pool_size"),
    (lambda: layers.MaxPooling2D(-2), "pool_size"),
    (lambda: layers.MaxPooling2D(2, strides=0), "strides"),
    (lambda: layers.AveragePooling2D(2, padding="causal"), "padding"),
    (lambda: layers.Dropout(1.5), "rate"),
    (lambda: keras.Input(shape=(0, 3)), "shape"),
    (lambda: keras.Input(shape=(-1,)), "shape"),
    (lambda: keras.Input(), "shape"),
    (lambda: layers.Dense(3, kernel_initializer="nope")(keras.Input(shape=(4,))), "nope"),
    (lambda: layers.Dense(3, unknown_arg=1), "unknown_arg"),
])
def test_layer_constructor_errors_name_the_argument(make, word):
    raises((ValueError, TypeError), make, word)


def test_model_construction_errors():
    inp = keras.Input(shape=(3,))
    raises((ValueError, TypeError), lambda: keras.Model(inputs=inp))
    raises((ValueError, TypeError), lambda: keras.Model(inputs=inp, outputs="dense"))
    other = keras.Input(shape=(3,))
    raises(ValueError, lambda: keras.Model(inputs=inp, outputs=layers.Dense(2)(other)))


# ---- weights in and out ---------------------------------------------------------------------------

def test_set_weights_wrong_count_and_shapes():
    model = dense_model()
    good = model.get_weights()
    raises(ValueError, lambda: model.set_weights(good[:3]), "4", "3")
    raises(ValueError, lambda: model.set_weights(good + [good[-1]]), "4", "5")
    bad = [good[0], good[1], np.zeros((8, 9), np.float32), good[3]]
    raises(ValueError, lambda: model.set_weights(bad), '"dense_1"', "(8, 10)", "(8, 9)")
    bad = [good[0].T, good[1], good[2], good[3]]
    raises(ValueError, lambda: model.set_weights(bad), '"dense"', "(784, 8)", "(8, 784)")
    raises(TypeError, lambda: model.set_weights(good[:3] + [np.array(["a"] * 10)]), "dense_1")
    raises(TypeError, lambda: model.set_weights(None))
    raises(ValueError, lambda: model.layers[0].set_weights([good[0]]), '"dense"', "2", "1")
    for a, b in zip(model.get_weights(), good):
        np.testing.assert_array_equal(a, b)


class _Touch:
    """Unpickling this object creates a file: proof that a loader ran pickle."""

    def __init__(self, path):
        self.path = pathlib.Path(path)

    def __reduce__(self):
        return (pathlib.Path.touch, (self.path,))


def test_load_weights_refuses_pickles_without_unpickling(tmp_path):
    model = dense_model()
    before = model.get_weights()
    marker = tmp_path / "unpickled"
    obj = np.empty(1, dtype=object)
    obj[0] = _Touch(marker)
    # an npz holding an object array (its .npy member is a pickle)
    np.savez(tmp_path / "evil.npz", __format__=np.array("pycnn-weights-1"),
             **{"000/dense/kernel": obj, "000/dense/bias": obj})
    # a bare pickle file named like a weights file
    (tmp_path / "evil2.npz").write_bytes(pickle.dumps(_Touch(marker)))
    # sanity: unpickling really would create the marker
    pickle.loads(pickle.dumps(_Touch(tmp_path / "probe")))
    assert (tmp_path / "probe").exists()
    for name in ("evil.npz", "evil2.npz"):
        raises(ValueError, lambda: model.load_weights(tmp_path / name), name)
        assert not marker.exists(), f"{name} was unpickled"
    for a, b in zip(model.get_weights(), before):
        np.testing.assert_array_equal(a, b)


def test_load_weights_corrupt_truncated_foreign_and_missing_files(tmp_path):
    model = dense_model()
    model.save_weights(tmp_path / "ok.npz")
    good = (tmp_path / "ok.npz").read_bytes()
    (tmp_path / "truncated.npz").write_bytes(good[: len(good) // 2])
    (tmp_path / "garbage.npz").write_bytes(b"\x00garbage" * 100)
    (tmp_path / "empty.npz").write_bytes(b"")
    np.savez(tmp_path / "foreign.npz", a=np.zeros(3))
    np.savez(tmp_path / "strings.npz", __format__=np.array("pycnn-weights-1"),
             **{"000/dense/kernel": np.array(["x"] * 6272).reshape(784, 8),
                "000/dense/bias": np.array(["x"] * 8)})
    before = model.get_weights()
    for name in ("truncated.npz", "garbage.npz", "empty.npz", "foreign.npz", "strings.npz"):
        raises(ValueError, lambda: model.load_weights(tmp_path / name), name)
    with pytest.raises(FileNotFoundError, match="missing.npz"):
        model.load_weights(tmp_path / "missing.npz")
    raises((ValueError, OSError), lambda: model.load_weights(tmp_path))      # a directory
    for a, b in zip(model.get_weights(), before):
        np.testing.assert_array_equal(a, b)


def test_weights_api_before_build(tmp_path):
    model = keras.Sequential([layers.Dense(3)])
    raises(ValueError, lambda: model.summary(), "built")
    raises(ValueError, lambda: model.save_weights(tmp_path / "never.npz"), "built")
    raises(ValueError, lambda: model.load_weights(tmp_path / "never.npz"), "built")
    raises(ValueError, lambda: model.set_weights([]), "built")
    assert not (tmp_path / "never.npz").exists()


# ---- process-wide settings ------------------------------------------------------------------------

@pytest.mark.parametrize("bad", [0, -1, "a", 2.5, None, True])
def test_bad_thread_count(bad, keep_num_threads):
    raises((ValueError, TypeError), lambda: pycnn.set_num_threads(bad))
    assert pycnn.get_num_threads() == keep_num_threads


@pytest.mark.parametrize("bad", [-1, "a", 1.5, None])
def test_bad_seed(bad):
    raises((ValueError, TypeError), lambda: pycnn.utils.set_random_seed(bad), "seed")


@pytest.mark.parametrize("bad, kwargs", [([0, 1, -1], {}), ([0, 1, 5], {"num_classes": 3}),
                                         ([0.5, 1], {}), (["a"], {})])
def test_bad_to_categorical(bad, kwargs):
    raises((ValueError, TypeError), lambda: pycnn.utils.to_categorical(bad, **kwargs))


@pytest.mark.parametrize("make, word", [
    (lambda: keras.optimizers.SGD(learning_rate=-1), "learning_rate"),
    (lambda: keras.optimizers.SGD(learning_rate=float("nan")), "learning_rate"),
    (lambda: keras.optimizers.SGD(momentum=1.5), "momentum"),
    (lambda: keras.optimizers.RMSprop(rho=1.0), "rho"),
    (lambda: keras.optimizers.Adam(beta_1=1.0), "beta_1"),
    (lambda: keras.optimizers.Adam(learning_rate="fast"), "learning_rate"),
])
def test_bad_optimizer_arguments(make, word):
    raises((ValueError, TypeError), make, word)


# ---- the C entry points, in a worker process ------------------------------------------------------

WORKER = r"""
import json, sys
import numpy as np
from pycnn import _C as C
def ro(a):
    a.setflags(write=False)
    return a
for line in sys.stdin:
    code = json.loads(line)
    try:
        exec(code, {"np": np, "C": C, "ro": ro})
        out = {"status": "ok"}
    except BaseException as e:
        out = {"status": "raised", "type": type(e).__name__, "msg": str(e)}
    sys.stdout.write(json.dumps(out) + "\n")
    sys.stdout.flush()
"""


class CWorker:
    """Runs snippets of code against ``pycnn._C`` in a child process; a crash is reported as
    ``{"status": "crash", ...}`` and the child restarted."""

    def __init__(self):
        self.proc = None
        self.stderr = None

    def _start(self):
        self.stderr = tempfile.TemporaryFile()
        env = child_env(PYCNN_NUM_THREADS="2", PYTHONFAULTHANDLER="1")
        self.proc = popen_python(WORKER, env=env, stdin=subprocess.PIPE,
                                 stdout=subprocess.PIPE, stderr=self.stderr, text=True)

    def run(self, code: str, timeout: float = 60) -> dict:
        if self.proc is None or self.proc.poll() is not None:
            self._start()
        self.proc.stdin.write(json.dumps(code) + "\n")
        self.proc.stdin.flush()
        line = []
        reader = threading.Thread(target=lambda: line.append(self.proc.stdout.readline()))
        reader.start()
        reader.join(timeout)
        if reader.is_alive():
            self.proc.kill()
            reader.join()
            self.proc.wait()
            self.proc = None
            return {"status": "hang"}
        if not line[0]:
            rc = self.proc.wait()
            self.stderr.seek(0)
            err = self.stderr.read().decode(errors="replace")[-2000:]
            self.proc = None
            return {"status": "crash", "returncode": rc, "stderr": err}
        return json.loads(line[0])

    def close(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.stdin.close()
            self.proc.wait(timeout=30)


@pytest.fixture(scope="module")
def c_worker():
    worker = CWorker()
    yield worker
    worker.close()


ANY_OUTCOME = ()      # a case that may succeed or raise, as long as it does not crash


def arr(shape, dtype="float32"):
    return ("arr", tuple(shape), dtype)


def lit(expr):
    return ("lit", expr)


# Each C function with valid arguments: (name, value, role) with role "in", "out" (written,
# must be writeable), "opt-out"/"opt-in" (may be None), "any-rank" variants, or a literal.
F4 = "float32"
SIGNATURES = {
    "gemm": [("a", arr((2, 3)), "in"), ("b", arr((3, 4)), "in"), ("c", arr((2, 4)), "out")],
    "dense_forward": [("x", arr((2, 3)), "in"), ("w", arr((3, 4)), "in"),
                      ("b", arr((4,)), "opt-in"), ("y", arr((2, 4)), "out")],
    "dense_backward": [("x", arr((2, 3)), "in"), ("w", arr((3, 4)), "in"),
                       ("dy", arr((2, 4)), "in"), ("dx", arr((2, 3)), "opt-out"),
                       ("dw", arr((3, 4)), "out"), ("db", arr((4,)), "opt-out")],
    "conv2d_forward": [("x", arr((1, 5, 5, 2)), "in"), ("w", arr((3, 3, 2, 4)), "in"),
                       ("b", arr((4,)), "opt-in"), ("y", arr((1, 3, 3, 4)), "out"),
                       ("strides", lit("(1, 1)"), "strides"), ("pads", lit("(0, 0)"), "pads")],
    "conv2d_backward": [("x", arr((1, 5, 5, 2)), "in"), ("w", arr((3, 3, 2, 4)), "in"),
                        ("dy", arr((1, 3, 3, 4)), "in"), ("dx", arr((1, 5, 5, 2)), "opt-out"),
                        ("dw", arr((3, 3, 2, 4)), "out"), ("db", arr((4,)), "opt-out"),
                        ("strides", lit("(1, 1)"), "strides"), ("pads", lit("(0, 0)"), "pads")],
    # x (1, 6, 6, 2) * w (3, 3, 2, 4) -> conv_hw (4, 4), never stored -> 2x2 max pool (1, 2, 2, 4)
    "conv2d_maxpool_forward": [("x", arr((1, 6, 6, 2)), "in"), ("w", arr((3, 3, 2, 4)), "in"),
                               ("b", arr((4,)), "opt-in"), ("y", arr((1, 2, 2, 4)), "out"),
                               ("argmax", arr((1, 2, 2, 4), "int32"), "out"),
                               ("strides", lit("(1, 1)"), "strides"), ("pads", lit("(0, 0)"), "pads"),
                               ("conv_hw", lit("(4, 4)"), "pool"), ("pool", lit("(2, 2)"), "pool"),
                               ("pool_strides", lit("(2, 2)"), "strides"),
                               ("pool_pads", lit("(0, 0)"), "pads")],
    "conv2d_maxpool_backward": [("x", arr((1, 6, 6, 2)), "in"), ("w", arr((3, 3, 2, 4)), "in"),
                                ("dy", arr((1, 2, 2, 4)), "in"),
                                ("argmax", arr((1, 2, 2, 4), "int32"), "in"),
                                ("dx", arr((1, 6, 6, 2)), "opt-out"),
                                ("dw", arr((3, 3, 2, 4)), "out"), ("db", arr((4,)), "opt-out"),
                                ("strides", lit("(1, 1)"), "strides"),
                                ("pads", lit("(0, 0)"), "pads"), ("conv_hw", lit("(4, 4)"), "pool"),
                                ("pool", lit("(2, 2)"), "pool"),
                                ("pool_strides", lit("(2, 2)"), "strides"),
                                ("pool_pads", lit("(0, 0)"), "pads"),
                                ("y", arr((1, 2, 2, 4)), "opt-in")],
    "maxpool2d_forward": [("x", arr((1, 4, 4, 2)), "in"), ("y", arr((1, 2, 2, 2)), "out"),
                          ("argmax", arr((1, 2, 2, 2), "int32"), "out"),
                          ("pool", lit("(2, 2)"), "pool"), ("strides", lit("(2, 2)"), "strides"),
                          ("pads", lit("(0, 0)"), "pads")],
    "maxpool2d_backward": [("dy", arr((1, 2, 2, 2)), "in"),
                           ("argmax", arr((1, 2, 2, 2), "int32"), "in"),
                           ("dx", arr((1, 4, 4, 2)), "out")],
    "avgpool2d_forward": [("x", arr((1, 4, 4, 2)), "in"), ("y", arr((1, 2, 2, 2)), "out"),
                          ("pool", lit("(2, 2)"), "pool"), ("strides", lit("(2, 2)"), "strides"),
                          ("pads", lit("(0, 0)"), "pads")],
    "avgpool2d_backward": [("dy", arr((1, 2, 2, 2)), "in"), ("dx", arr((1, 4, 4, 2)), "out"),
                           ("pool", lit("(2, 2)"), "pool"), ("strides", lit("(2, 2)"), "strides"),
                           ("pads", lit("(0, 0)"), "pads")],
    "activation_forward": [("kind", lit("'softmax'"), "kind"), ("x", arr((2, 3)), "in-any"),
                           ("y", arr((2, 3)), "out-any")],
    "activation_backward": [("kind", lit("'softmax'"), "kind"), ("y", arr((2, 3)), "in-any"),
                            ("dy", arr((2, 3)), "in-any"), ("dx", arr((2, 3)), "out-any")],
    "softmax_xent_sparse": [("logits", arr((2, 3)), "in"), ("labels", arr((2,), "int64"), "in"),
                            ("probs", arr((2, 3)), "out"), ("dlogits", arr((2, 3)), "opt-out")],
    "xent_sparse": [("probs", arr((2, 3)), "in"), ("labels", arr((2,), "int64"), "in"),
                    ("dprobs", arr((2, 3)), "opt-out")],
    "softmax_xent": [("logits", arr((2, 3)), "in"), ("targets", arr((2, 3)), "in"),
                     ("probs", arr((2, 3)), "out"), ("dlogits", arr((2, 3)), "opt-out")],
    "xent": [("probs", arr((2, 3)), "in"), ("targets", arr((2, 3)), "in"),
             ("dprobs", arr((2, 3)), "opt-out")],
    "take_rows": [("x", arr((4, 3)), "in"), ("indices", arr((2,), "int64"), "in"),
                  ("out", arr((2, 3)), "out")],
    "sgd_update": [("w", arr((2, 3)), "out-any"), ("g", arr((2, 3)), "in-any"),
                   ("velocity", arr((2, 3)), "opt-out-any"), ("lr", lit("0.1"), "num"),
                   ("momentum", lit("0.9"), "num")],
    "rmsprop_update": [("w", arr((2, 3)), "out-any"), ("g", arr((2, 3)), "in-any"),
                       ("v", arr((2, 3)), "out-any"), ("lr", lit("0.1"), "num"),
                       ("rho", lit("0.9"), "num"), ("epsilon", lit("1e-7"), "num")],
    "adam_update": [("w", arr((2, 3)), "out-any"), ("g", arr((2, 3)), "in-any"),
                    ("m", arr((2, 3)), "out-any"), ("v", arr((2, 3)), "out-any"),
                    ("lr", lit("0.1"), "num"), ("beta_1", lit("0.9"), "num"),
                    ("beta_2", lit("0.999"), "num"), ("epsilon", lit("1e-7"), "num"),
                    ("step", lit("1"), "num")],
}


def render(value) -> str:
    if value[0] == "lit":
        return value[1]
    _, shape, dtype = value
    fill = "np.ones" if dtype == F4 else "np.zeros"   # ones: valid probabilities and weights
    return f"{fill}({shape!r}, np.{dtype})"


def call(func: str, replace: dict | None = None) -> str:
    args = []
    for name, value, _ in SIGNATURES[func]:
        expr = (replace or {}).get(name, render(value))
        args.append(expr)
    return f"C.{func}({', '.join(args)})"


def one(shape):
    return f"np.ones({shape!r}, np.float32)"


def i32(shape):
    return f"np.zeros({shape!r}, np.int32)"


def _call_template(func, defaults):
    """A call of ``func`` whose arguments can be replaced by name: ``.format(x=...)``."""
    class T(str):
        def format(self, **kw):
            unknown = set(kw) - set(defaults)
            assert not unknown, unknown
            return str.format(self, **{**defaults, **kw})
    return T(func + "(" + ", ".join("{" + k + "}" for k in defaults) + ")")


# the valid calls of the fused entry points, any argument replaceable by name
FUSED_F = _call_template("C.conv2d_maxpool_forward", dict(
    x=one((1, 6, 6, 2)), w=one((3, 3, 2, 4)), b=one((4,)), y=one((1, 2, 2, 4)),
    am=i32((1, 2, 2, 4)), st="(1, 1)", pd="(0, 0)", hw="(4, 4)", pl="(2, 2)", pst="(2, 2)",
    ppd="(0, 0)"))
FUSED_B = _call_template("C.conv2d_maxpool_backward", dict(
    x=one((1, 6, 6, 2)), w=one((3, 3, 2, 4)), dy=one((1, 2, 2, 4)), am=i32((1, 2, 2, 4)),
    dx=one((1, 6, 6, 2)), dw=one((3, 3, 2, 4)), db=one((4,)), st="(1, 1)", pd="(0, 0)",
    hw="(4, 4)", pl="(2, 2)", pst="(2, 2)", ppd="(0, 0)", y=one((1, 2, 2, 4))))


def c_cases():
    """(id, code, exception types, words the message must contain)."""
    cases = []
    for func, sig in SIGNATURES.items():
        cases.append((f"{func}-valid", call(func), None, []))
        for name, value, role in sig:
            if value[0] != "arr":
                continue
            _, shape, dtype = value
            other = {"float32": "float64", "int64": "int32", "int32": "int64"}[dtype]
            cases.append((f"{func}-{name}-dtype", call(func, {name: f"np.zeros({shape!r}, np.{other})"}),
                          (TypeError,), [func, f"'{name}'", "dtype"]))
            cases.append((f"{func}-{name}-byteswapped",
                          call(func, {name: f"np.zeros({shape!r}, np.dtype(np.{dtype}).newbyteorder())"}),
                          (TypeError,), [func, f"'{name}'"]))
            cases.append((f"{func}-{name}-list", call(func, {name: f"np.zeros({shape!r}).tolist()"}),
                          (TypeError,), [func, f"'{name}'"]))
            cases.append((f"{func}-{name}-int", call(func, {name: "7"}),
                          (TypeError,), [func, f"'{name}'"]))
            if not role.startswith("opt"):
                cases.append((f"{func}-{name}-none", call(func, {name: "None"}),
                              (TypeError,), [func, f"'{name}'"]))
            if not role.endswith("any"):
                cases.append((f"{func}-{name}-rank+1",
                               call(func, {name: f"np.zeros((1,) + {shape!r}, np.{dtype})"}),
                               (ValueError,), [func, f"'{name}'", "rank"]))
                if len(shape) > 1:
                    cases.append((f"{func}-{name}-rank-1",
                                   call(func, {name: f"np.zeros({shape[1:]!r}, np.{dtype})"}),
                                   (ValueError,), [func, f"'{name}'", "rank"]))
            strided = f"np.zeros({shape[:-1] + (shape[-1] * 2,)!r}, np.{dtype})[..., ::2]"
            cases.append((f"{func}-{name}-strided", call(func, {name: strided}),
                          (ValueError,), [func, f"'{name}'", "contiguous"]))
            empty = f"np.zeros({(0,) + shape[1:]!r}, np.{dtype})"
            cases.append((f"{func}-{name}-empty", call(func, {name: empty}), (ValueError,), [func]))
            if role.startswith("out") or role.startswith("opt-out"):
                cases.append((f"{func}-{name}-readonly", call(func, {name: f"ro({render(value)})"}),
                               (ValueError,), [func, f"'{name}'", "read-only"]))
            # one dimension off (not for any-rank arguments of the same size rule)
            if len(shape) >= 1 and not (role.endswith("any") and func.endswith("update")):
                off = shape[:-1] + (shape[-1] + 1,)
                cases.append((f"{func}-{name}-shape", call(func, {name: render(arr(off, dtype))}),
                              (ValueError,), [func]))
        for name, value, role in sig:
            if role in ("strides", "pool", "pads"):
                for bad in ("(0, 1)", "(1, -1)", "(-2, -2)") if role != "pads" else ("(-1, 0)",
                                                                                   "(0, -3)"):
                    cases.append((f"{func}-{name}-{bad}", call(func, {name: bad}),
                                  (ValueError,), [func, name]))
                for bad, exc in (("None", TypeError), ("(1,)", TypeError), ("'a'", TypeError),
                                 ("(1.5, 1)", TypeError), ("(2**40, 1)", (OverflowError,))):
                    cases.append((f"{func}-{name}-{bad}", call(func, {name: bad}),
                                  (TypeError, ValueError) + tuple(exc if isinstance(exc, tuple)
                                                                  else (exc,)), [])
                                 )
            if role == "kind":
                cases.append((f"{func}-kind-unknown", call(func, {name: "'no_such_kind'"}),
                              (ValueError,), [func, "no_such_kind"]))
                cases.append((f"{func}-kind-none", call(func, {name: "None"}), (TypeError,), []))
                for kind in ("'relu'", "'softmax'", "'sigmoid'", "'tanh'", "'linear'"):
                    scalars = {n: "np.array(1.0, np.float32)" for n, v, _ in sig if v[0] == "arr"}
                    scalars[name] = kind
                    # 0-d arrays: computing them or refusing them are both fine; crashing is not
                    cases.append((f"{func}-{kind.strip(chr(39))}-0d", call(func, scalars),
                                  ANY_OUTCOME, []))
            if role == "num":
                cases.append((f"{func}-{name}-str", call(func, {name: "'a'"}), (TypeError,), []))
                cases.append((f"{func}-{name}-none", call(func, {name: "None"}), (TypeError,), []))
        cases.append((f"{func}-no-args", f"C.{func}()", (TypeError,), []))
    shared = "a = np.ones((2, 3), np.float32)\n"
    cases += [
        ("gemm-inner-dims", "C.gemm(np.ones((2, 3), np.float32), np.ones((4, 5), np.float32), "
         "np.ones((2, 5), np.float32))", (ValueError,), ["gemm", "inner"]),
        ("gemm-c-aliases-a", shared + "C.gemm(a, np.ones((3, 3), np.float32), a)",
         (ValueError,), ["share memory"]),
        ("dense-y-aliases-x", "x = np.ones((2, 2), np.float32)\n"
         "C.dense_forward(x, np.ones((2, 2), np.float32), None, x)", (ValueError,), ["memory"]),
        ("dense-fused-softmax", "C.dense_forward(np.ones((2, 3), np.float32), "
         "np.ones((3, 4), np.float32), None, np.ones((2, 4), np.float32), activation='softmax')",
         (ValueError,), ["activation"]),
        ("conv-channels", "C.conv2d_forward(np.ones((1, 5, 5, 2), np.float32), "
         "np.ones((3, 3, 3, 4), np.float32), None, np.ones((1, 3, 3, 4), np.float32), (1, 1), "
         "(0, 0))", (ValueError,), ["channels"]),
        ("conv-batch", "C.conv2d_forward(np.ones((2, 5, 5, 2), np.float32), "
         "np.ones((3, 3, 2, 4), np.float32), None, np.ones((1, 3, 3, 4), np.float32), (1, 1), "
         "(0, 0))", (ValueError,), ["'y'"]),
        ("labels-out-of-range", "C.softmax_xent_sparse(np.ones((2, 3), np.float32), "
         "np.array([0, 3]), np.ones((2, 3), np.float32), None)", (ValueError,),
         ["labels[1]", "3", "range"]),
        ("labels-negative", "C.xent_sparse(np.ones((2, 3), np.float32), np.array([-1, 0]), "
         "None)", (ValueError,), ["labels[0]", "-1"]),
        ("labels-huge", "C.xent_sparse(np.ones((2, 3), np.float32), np.array([2**62, 0]), "
         "None)", (ValueError,), ["labels[0]"]),
        ("labels-length", "C.xent_sparse(np.ones((2, 3), np.float32), np.array([0, 0, 0]), "
         "None)", (ValueError,), ["labels"]),
        ("take-rows-index-out-of-range", "C.take_rows(np.ones((4, 3), np.float32), "
         "np.array([0, 4]), np.ones((2, 3), np.float32))", (ValueError,),
         ["take_rows", "indices[1]", "4", "range"]),
        ("take-rows-index-negative", "C.take_rows(np.ones((4, 3), np.float32), "
         "np.array([-1, 0]), np.ones((2, 3), np.float32))", (ValueError,), ["indices[0]", "-1"]),
        ("take-rows-out-is-x", "a = np.ones((2, 3), np.float32)\n"
         "C.take_rows(a, np.array([0, 1]), a)", (ValueError,), ["'out'", "memory"]),
        ("sgd-momentum-without-velocity", "C.sgd_update(np.ones(3, np.float32), "
         "np.ones(3, np.float32), None, 0.1, 0.9)", (ValueError,), ["velocity"]),
        ("sgd-size-mismatch", "C.sgd_update(np.ones(3, np.float32), np.ones(4, np.float32), "
         "None, 0.1, 0.0)", (ValueError,), ["'g'"]),
        ("sgd-g-is-w", shared + "C.sgd_update(a, a, None, 0.1, 0.0)", (ValueError,), ["memory"]),
        ("adam-step-0", "C.adam_update(*[np.ones(3, np.float32) for _ in range(4)], 0.1, 0.9, "
         "0.999, 1e-7, 0)", (ValueError,), ["step"]),
        ("rmsprop-centered-without-mg", "C.rmsprop_update(*[np.ones(3, np.float32) for _ in "
         "range(3)], 0.1, 0.9, 1e-7, centered=True)", (ValueError,), ["mg"]),
        ("activation-shape-mismatch", "C.activation_forward('relu', np.ones((2, 3), np.float32),"
         " np.ones((3, 2), np.float32))", (ValueError,), ["shape"]),
        # legal by the contract (docs/kernels.md: the output size is y's, cells outside the
        # input read as 0 / -inf, out-of-image argmax entries are ignored) but extreme:
        # computing or refusing are both fine, crashing is not
        ("conv-huge-strides", "C.conv2d_forward(np.ones((1, 5, 5, 1), np.float32), "
         "np.ones((1, 1, 1, 1), np.float32), None, np.ones((1, 3, 3, 1), np.float32), "
         "(2**30, 2**30), (0, 0))", ANY_OUTCOME, []),
        ("conv-huge-pads", "C.conv2d_backward(np.ones((1, 5, 5, 1), np.float32), "
         "np.ones((3, 3, 1, 1), np.float32), np.ones((1, 3, 3, 1), np.float32), "
         "np.ones((1, 5, 5, 1), np.float32), np.ones((3, 3, 1, 1), np.float32), None, (1, 1), "
         "(2**30, 2**30))", ANY_OUTCOME, []),
        ("conv-output-larger-than-input", "C.conv2d_forward(np.ones((1, 2, 2, 1), np.float32), "
         "np.ones((3, 3, 1, 1), np.float32), None, np.ones((1, 9, 9, 1), np.float32), (1, 1), "
         "(0, 0))", ANY_OUTCOME, []),
        ("maxpool-windows-outside-the-image", "C.maxpool2d_forward(np.ones((1, 4, 4, 2), "
         "np.float32), np.ones((1, 9, 9, 2), np.float32), np.ones((1, 9, 9, 2), np.int32), "
         "(2, 2), (2, 2), (0, 0))", ANY_OUTCOME, []),
        ("maxpool-huge-pool", "C.maxpool2d_forward(np.ones((1, 4, 4, 2), np.float32), "
         "np.ones((1, 1, 1, 2), np.float32), np.ones((1, 1, 1, 2), np.int32), (2**30, 2**30), "
         "(1, 1), (0, 0))", ANY_OUTCOME, []),
        ("maxpool-backward-argmax-out-of-range", "C.maxpool2d_backward(np.ones((1, 2, 2, 2), "
         "np.float32), np.array([10**6, -5, 2**31 - 1, -2**31] * 2, np.int32).reshape(1, 2, 2, 2),"
         " np.ones((1, 4, 4, 2), np.float32))", ANY_OUTCOME, []),
        ("avgpool-windows-outside-the-image", "C.avgpool2d_forward(np.ones((1, 4, 4, 2), "
         "np.float32), np.ones((1, 9, 9, 2), np.float32), (2, 2), (2, 2), (0, 0))",
         ANY_OUTCOME, []),
        ("avgpool-backward-huge-pads", "C.avgpool2d_backward(np.ones((1, 2, 2, 2), np.float32), "
         "np.ones((1, 4, 4, 2), np.float32), (2, 2), (2, 2), (2**30, 2**30))", ANY_OUTCOME, []),
        # ---- conv2d_maxpool_forward / _backward (F, B: their valid arguments, see below)
        ("fused-w-channels", FUSED_F.format(x=one((1, 6, 6, 3))), (ValueError,),
         ["conv2d_maxpool_forward", "channels"]),
        ("fused-b-length", FUSED_F.format(b=one((5,))), (ValueError,), ["'b'"]),
        ("fused-y-channels", FUSED_F.format(y=one((1, 2, 2, 5)), am=i32((1, 2, 2, 5))),
         (ValueError,), ["'y'"]),
        ("fused-y-not-the-pooled-size", FUSED_F.format(y=one((2, 2, 2, 4)), am=i32((2, 2, 2, 4))),
         (ValueError,), ["'y'"]),
        ("fused-argmax-vs-y", FUSED_F.format(am=i32((1, 2, 3, 4))), (ValueError,), ["'argmax'"]),
        ("fused-argmax-batch", FUSED_F.format(am=i32((2, 2, 2, 4))), (ValueError,), ["'argmax'"]),
        ("fused-argmax-float32", FUSED_F.format(am=one((1, 2, 2, 4))), (TypeError,), ["'argmax'"]),
        ("fused-argmax-int64", FUSED_F.format(am="np.zeros((1, 2, 2, 4), np.int64)"), (TypeError,),
         ["'argmax'"]),
        ("fused-x-float64", FUSED_F.format(x="np.ones((1, 6, 6, 2))"), (TypeError,), ["'x'"]),
        ("fused-x-rank3", FUSED_F.format(x=one((6, 6, 2))), (ValueError,), ["'x'", "rank"]),
        ("fused-w-noncontiguous", FUSED_F.format(w="np.ones((3, 3, 2, 8), np.float32)[..., ::2]"),
         (ValueError,), ["'w'", "contiguous"]),
        ("fused-conv_hw-scalar", FUSED_F.format(hw="4"), (TypeError,), ["conv_hw"]),
        ("fused-conv_hw-triple", FUSED_F.format(hw="(4, 4, 4)"), (TypeError,), ["conv_hw"]),
        ("fused-conv_hw-float", FUSED_F.format(hw="(4.0, 4)"), (TypeError,), ["conv_hw"]),
        ("fused-conv_hw-zero", FUSED_F.format(hw="(0, 4)"), (ValueError,), ["conv_hw"]),
        ("fused-conv_hw-negative", FUSED_F.format(hw="(4, -4)"), (ValueError,), ["conv_hw"]),
        ("fused-activation-sigmoid", FUSED_F.format()[:-1] + ", activation='sigmoid')",
         (ValueError,), ["activation"]),
        ("fused-y-is-x", "x = np.ones((1, 2, 2, 4), np.float32)\n"
         "C.conv2d_maxpool_forward(x, np.ones((1, 1, 4, 4), np.float32), None, x, "
         "np.zeros((1, 2, 2, 4), np.int32), (1, 1), (0, 0), (2, 2), (1, 1), (1, 1), (0, 0))",
         (ValueError,), ["'y'", "'x'", "share memory"]),
        ("fused-argmax-overlaps-y", "y = np.ones((1, 2, 2, 4), np.float32)\n"
         + FUSED_F.format(y="y", am="y.view(np.int32)"), (ValueError,), ["'argmax'", "share memory"]),
        ("fused-argmax-overlaps-w", "w = np.ones((3, 3, 2, 4), np.float32)\n"
         + FUSED_F.format(w="w", am="w.reshape(-1)[:16].view(np.int32).reshape(1, 2, 2, 4)"),
         (ValueError,), ["'argmax'", "'w'", "share memory"]),
        ("fused-bwd-dy-channels", FUSED_B.format(dy=one((1, 2, 2, 5))), (ValueError,), ["'dy'"]),
        ("fused-bwd-argmax-vs-dy", FUSED_B.format(am=i32((1, 3, 2, 4))), (ValueError,),
         ["'argmax'"]),
        ("fused-bwd-relu-y-vs-dy", FUSED_B.format(y=one((1, 2, 1, 4))), (ValueError,), ["'y'"]),
        ("fused-bwd-relu-y-int32", FUSED_B.format(y=i32((1, 2, 2, 4))), (TypeError,), ["'y'"]),
        ("fused-bwd-w-channels", FUSED_B.format(w=one((3, 3, 1, 4)), dw=one((3, 3, 1, 4))),
         (ValueError,), ["channels"]),
        ("fused-bwd-dx-shape", FUSED_B.format(dx=one((1, 6, 5, 2))), (ValueError,), ["'dx'"]),
        ("fused-bwd-dw-shape", FUSED_B.format(dw=one((3, 3, 2, 5))), (ValueError,), ["'dw'"]),
        ("fused-bwd-db-length", FUSED_B.format(db=one((3,))), (ValueError,), ["'db'"]),
        ("fused-bwd-dw-none", FUSED_B.format(dw="None"), (TypeError,), ["'dw'"]),
        ("fused-bwd-conv_hw-zero", FUSED_B.format(hw="(4, 0)"), (ValueError,), ["conv_hw"]),
        ("fused-bwd-conv_hw-list-of-3", FUSED_B.format(hw="[4, 4, 1]"), (TypeError,), ["conv_hw"]),
        ("fused-bwd-dw-is-w", "w = np.ones((3, 3, 2, 4), np.float32)\n"
         + FUSED_B.format(w="w", dw="w"), (ValueError,), ["'dw'", "'w'", "share memory"]),
        ("fused-bwd-dx-is-x", "x = np.ones((1, 6, 6, 2), np.float32)\n"
         + FUSED_B.format(x="x", dx="x"), (ValueError,), ["'dx'", "'x'", "share memory"]),
        ("fused-bwd-db-overlaps-dy", "dy = np.ones((1, 2, 2, 4), np.float32)\n"
         + FUSED_B.format(dy="dy", db="dy.reshape(-1)[4:8]"), (ValueError,),
         ["'db'", "'dy'", "share memory"]),
        ("fused-bwd-dx-overlaps-argmax", "buf = np.zeros(96, np.int32)\n"
         + FUSED_B.format(am="buf[:16].reshape(1, 2, 2, 4)",
                          dx="buf[8:80].view(np.float32).reshape(1, 6, 6, 2)"),
         (ValueError,), ["'dx'", "'argmax'", "share memory"]),
        ("fused-bwd-dw-overlaps-relu-y", "y = np.ones(100, np.float32)\n"
         + FUSED_B.format(y="y[:16].reshape(1, 2, 2, 4)", dw="y[10:82].reshape(3, 3, 2, 4)"),
         (ValueError,), ["'dw'", "'y'", "share memory"]),
        # beyond int range: refused by the binding before any kernel runs
        ("fused-conv_hw-over-int-cells", FUSED_F.format(hw="(2**16, 2**16)"), (ValueError,),
         ["conv2d_maxpool_forward"]),
        ("fused-bwd-conv_hw-over-int-cells", FUSED_B.format(hw="(2**31 - 1, 2**31 - 1)"),
         (ValueError,), ["conv2d_maxpool_backward"]),
        ("fused-huge-strides", FUSED_F.format(st="(2**31 - 1, 2**31 - 1)"), (ValueError,),
         ["conv2d_maxpool_forward"]),
        ("fused-bwd-huge-strides", FUSED_B.format(st="(1, 2**30 + 1)"), (ValueError,),
         ["conv2d_maxpool_backward"]),
        ("fused-huge-pads", FUSED_F.format(pd="(2**31 - 2, 0)"), (ValueError,),
         ["conv2d_maxpool_forward"]),
        ("fused-huge-pool-strides", FUSED_F.format(pst="(2**31 - 1, 1)"), (ValueError,),
         ["conv2d_maxpool_forward"]),
        ("fused-bwd-huge-pool-pads", FUSED_B.format(ppd="(0, 2**31 - 1)"), (ValueError,),
         ["conv2d_maxpool_backward"]),
        ("fused-pool-strides-beyond-int", FUSED_F.format(pst="(2**31, 1)"), (TypeError,),
         ["pool_strides"]),
        # legal by the contract (cells outside the input read as 0, a window clipped to the
        # convolution's output) but extreme: computing or refusing are both fine, crashing is not
        ("fused-huge-pads-in-range", FUSED_F.format(pd="(2**30, 2**30)"), ANY_OUTCOME, []),
        ("fused-bwd-huge-pads-in-range", FUSED_B.format(pd="(2**30, 2**30)"), ANY_OUTCOME, []),
        ("fused-huge-pool", FUSED_F.format(pl="(2**30, 2**30)"), ANY_OUTCOME, []),
        ("fused-bwd-huge-pool", FUSED_B.format(pl="(2**30, 2**30)"), ANY_OUTCOME, []),
        ("fused-bwd-argmax-out-of-range", FUSED_B.format(
            am="np.array([10**6, -5, 2**31 - 1, -2**31] * 4, np.int32).reshape(1, 2, 2, 4)"),
         ANY_OUTCOME, []),
        ("set_num_threads-0", "C.set_num_threads(0)", (ValueError,), ["set_num_threads"]),
        ("set_num_threads-negative", "C.set_num_threads(-5)", (ValueError,), []),
        ("set_num_threads-huge", "C.set_num_threads(2**70)", (ValueError, OverflowError), []),
        ("set_num_threads-str", "C.set_num_threads('2')", (TypeError,), []),
        ("set_num_threads-none", "C.set_num_threads(None)", (TypeError,), []),
        ("set_isa-unknown", "C.set_isa('sse9')", (ValueError,), ["sse9"]),
        ("set_isa-int", "C.set_isa(3)", (TypeError,), []),
        ("set_isa-none", "C.set_isa(None)", (TypeError,), []),
    ]
    return cases


C_CASES = c_cases()


@pytest.mark.parametrize("case", C_CASES, ids=[c[0] for c in C_CASES])
def test_c_entry_points_never_crash(c_worker, case):
    case_id, code, exc, words = case
    result = c_worker.run(code)
    assert result["status"] not in ("crash", "hang"), (
        f"{case_id}: `{code}` {result['status']}ed the interpreter: {result}")
    if exc is None:
        assert result["status"] == "ok", f"{case_id}: valid call failed: {result}"
        return
    if exc == ANY_OUTCOME:
        assert result["status"] == "ok" or result["type"] in ("ValueError", "TypeError"), result
        return
    names = {e.__name__ for e in exc}
    assert result["status"] == "raised", f"{case_id}: `{code}` was accepted"
    assert result["type"] in names, f"{case_id}: {result}"
    for w in words:
        assert w in result["msg"], f"{case_id}: {w!r} not in {result['msg']!r}"
