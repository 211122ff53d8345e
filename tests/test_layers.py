"""Layer-level behaviour of pycnn against Keras' semantics and the float64 oracle in
tests/reference.py.

* shapes, parameter counts, automatic names, weight shapes and initialisation (the lecture's
  models and concepts: 5x5 input, 3x3 window, strides, "same"/"valid", 2x2 pooling, 104,202
  and 712,202 parameters);
* forward values of every layer type against the float64 reference;
* gradients: ``layer.backward(ctx, dy)`` (dL/dx and each ``Variable.grad``) for the scalar loss
  ``L = sum(forward(x) * R)``, against the reference backward and against central finite
  differences (float64, a few random coordinates) of the reference forward;
* a whole functional convnet: one training step's gradients against float64 finite
  differences of a pure-NumPy forward pass, and the fused softmax + crossentropy path against
  the unfused ones;
* constructor and input-check error messages.

Every numeric test runs once per SIMD path the CPU supports (fixture ``isa``).
"""

import math
import os
import re
import sys

import numpy as np
import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import reference as ref  # noqa: E402

import pycnn  # noqa: E402
from pycnn import _C, backend, layers  # noqa: E402

from pycnn.layers.context import Context  # noqa: E402

from conftest import ISAS  # noqa: E402
ACTIVATIONS = ("linear", "relu", "sigmoid", "tanh", "softmax")


# ---------------------------------------------------------------------------------------------
# Fixtures and helpers
# ---------------------------------------------------------------------------------------------

# ``isa``: the per-SIMD-path fixture lives in conftest.py

def f32(a):
    return np.ascontiguousarray(a, dtype=np.float32)


def f64(a):
    return np.asarray(a, dtype=np.float64)


def randn(r, shape, scale=1.0):
    return f32(r.standard_normal(shape) * scale)


def assert_close(actual, expected, what="", rtol=1e-4, atol_frac=2e-5):
    """``|a - e| <= rtol*|e| + atol_frac * max|e|`` elementwise (float32 vs float64)."""
    actual = np.asarray(actual)
    expected = f64(expected)
    assert actual.shape == expected.shape, f"{what}: shape {actual.shape} != {expected.shape}"
    assert np.all(np.isfinite(actual)), f"{what}: non-finite values {actual}"
    scale = max(float(np.abs(expected).max()) if expected.size else 0.0, 1e-6)
    err = np.abs(f64(actual) - expected)
    bound = rtol * np.abs(expected) + atol_frac * scale
    if (err > bound).any():
        pytest.fail(ref.out_of_tolerance(what, actual, expected, err, bound))


def finite_difference_check(loss, args, grads, names, seed=0, n_coords=4, h=1e-6,
                            rtol=1e-3, atol_frac=2e-4):
    """Central differences of the float64 scalar ``loss(*args)`` at ``n_coords`` random
    coordinates of each argument, compared with ``grads`` (pycnn's float32 gradients)."""
    r = np.random.default_rng(seed)
    args = [f64(a).copy() for a in args]
    for i, (a, g, name) in enumerate(zip(args, grads, names)):
        if g is None:
            continue
        g = f64(g)
        assert g.shape == a.shape, f"{name}: gradient shape {g.shape} != {a.shape}"
        scale = max(float(np.abs(g).max()), 1e-6)
        flat = a.reshape(-1)
        picks = r.choice(flat.size, size=min(n_coords, flat.size), replace=False)
        for k in picks:
            fd = ref.central_difference(lambda: loss(*args), flat, k, h)
            got = g.reshape(-1)[k]
            assert abs(got - fd) <= rtol * abs(fd) + atol_frac * scale, (
                f"d loss / d {name}[{np.unravel_index(k, a.shape)}]: backward gives {got!r}, "
                f"finite difference {fd!r}")


def spec_output_length(n, k, s, padding):
    """The lecture's O = (I - F + 2P) / S + 1 as Keras computes it (independent of pycnn)."""
    if padding == "same":
        return math.ceil(n / s)
    return math.floor((n - k) / s) + 1


def run_backward(layer, x, r, training=False):
    """Forward ``x`` through ``layer``, then backward a random ``R``; the weight gradients
    start as NaN so a kernel that does not write all of them is caught.
    Returns (y, R, dx, [grad of each weight])."""
    y = layer(x, training=training) if training else layer(x)
    # layer(x) used its own context; run forward again in one we keep for the backward pass
    ctx = Context()
    y = np.array(layer.forward(ctx, f32(x), training=training))
    R = r.standard_normal(y.shape)
    for v in layer.weights:
        v.grad[...] = np.nan
    dx = layer.backward(ctx, f32(R))
    dx = None if dx is None else np.array(dx)
    return y, R, dx, [v.grad.copy() for v in layer.weights]


def ref_conv(x, w, b, strides, padding, act="linear"):
    n, h, wd, _ = x.shape
    kh, kw = w.shape[:2]
    oh, ow, pads = ref.geometry(h, wd, kh, kw, strides[0], strides[1], padding)
    z = ref.conv2d_forward(x, w, b, strides, pads, (oh, ow))
    return ref.activation_forward(act, z)


def ref_conv_grads(x, w, b, R, strides, padding, act="linear"):
    n, h, wd, _ = x.shape
    kh, kw = w.shape[:2]
    oh, ow, pads = ref.geometry(h, wd, kh, kw, strides[0], strides[1], padding)
    y = ref.activation_forward(act, ref.conv2d_forward(x, w, b, strides, pads, (oh, ow)))
    dz = ref.activation_backward(act, y, R)
    return ref.conv2d_backward(x, w, dz, strides, pads)


def ref_pool(kind, x, pool, strides, padding):
    n, h, wd, _ = x.shape
    oh, ow, pads = ref.geometry(h, wd, pool[0], pool[1], strides[0], strides[1], padding)
    if kind == "max":
        return ref.maxpool2d_forward(x, pool, strides, pads, (oh, ow))[0]
    return ref.avgpool2d_forward(x, pool, strides, pads, (oh, ow))


def ref_pool_grad(kind, x, R, pool, strides, padding):
    n, h, wd, _ = x.shape
    oh, ow, pads = ref.geometry(h, wd, pool[0], pool[1], strides[0], strides[1], padding)
    if kind == "max":
        _, argmax = ref.maxpool2d_forward(x, pool, strides, pads, (oh, ow))
        return ref.maxpool2d_backward(R, argmax, x.shape)
    return ref.avgpool2d_backward(R, x.shape, pool, strides, pads)


def keras_relu(x, max_value=None, negative_slope=0.0, threshold=0.0):
    """keras.activations.relu (keras/src/activations/activations.py), in float64."""
    x = f64(x)
    if negative_slope != 0.0:
        if max_value is None and threshold == 0:
            return np.where(x >= 0, x, negative_slope * x)
        negative_part = np.maximum(-x + threshold, 0.0)
    else:
        negative_part = 1.0
    clip_max = max_value is not None
    if threshold != 0:
        y = x * (x > threshold)
    else:
        y = np.maximum(x, 0.0)
    if clip_max:
        y = np.clip(y, 0.0, max_value)
    if negative_slope != 0.0:
        y = y - negative_slope * negative_part
    return y


# ---------------------------------------------------------------------------------------------
# Output shapes: compute_output_shape, a real forward pass and the lecture's formula
# ---------------------------------------------------------------------------------------------

# (h, w, kernel, strides, padding)
CONV_GEOMETRIES = [
    (5, 5, 3, 1, "valid"), (5, 5, 3, 2, "valid"), (5, 5, 3, 1, "same"), (5, 5, 3, 2, "same"),
    (28, 28, 3, 1, "valid"), (7, 6, (2, 3), (1, 2), "valid"), (7, 6, (2, 3), (1, 2), "same"),
    (8, 7, 2, 3, "valid"), (8, 7, 2, 3, "same"), (6, 6, 1, 1, "valid"), (6, 5, 1, 2, "same"),
    (6, 6, 4, 2, "same"), (5, 5, 5, 1, "valid"), (3, 3, 5, 1, "same"), (9, 4, (4, 1), (3, 1),
                                                                           "valid"),
]


def _pair(v):
    return (v, v) if isinstance(v, int) else tuple(v)


@pytest.mark.parametrize("h,w,k,s,padding", CONV_GEOMETRIES)
def test_conv2d_output_shape_follows_lecture_formula(h, w, k, s, padding):
    (kh, kw), (sh, sw) = _pair(k), _pair(s)
    want = (spec_output_length(h, kh, sh, padding), spec_output_length(w, kw, sw, padding))
    layer = layers.Conv2D(4, k, strides=s, padding=padding)
    assert layer.compute_output_shape((None, h, w, 2)) == (None,) + want + (4,)
    y = layer(np.zeros((2, h, w, 2), np.float32))
    assert y.shape == (2,) + want + (4,)
    assert y.dtype == np.float32


@pytest.mark.parametrize("h,w,k,s,padding", CONV_GEOMETRIES)
@pytest.mark.parametrize("cls", [layers.MaxPooling2D, layers.AveragePooling2D])
def test_pooling_output_shape_follows_lecture_formula(cls, h, w, k, s, padding):
    (kh, kw), (sh, sw) = _pair(k), _pair(s)
    want = (spec_output_length(h, kh, sh, padding), spec_output_length(w, kw, sw, padding))
    layer = cls(pool_size=k, strides=s, padding=padding)
    assert layer.compute_output_shape((None, h, w, 3)) == (None,) + want + (3,)
    assert layer(np.zeros((2, h, w, 3), np.float32)).shape == (2,) + want + (3,)


def test_lecture_concepts_5x5_input_with_3x3_window():
    x = np.zeros((1, 5, 5, 1), np.float32)
    assert layers.Conv2D(1, 3)(x).shape == (1, 3, 3, 1)                      # valid (default)
    assert layers.Conv2D(1, 3, strides=2)(x).shape == (1, 2, 2, 1)           # stride 2
    assert layers.Conv2D(1, 3, padding="same")(x).shape == (1, 5, 5, 1)      # same
    assert layers.Conv2D(1, (3, 3), padding="valid").padding == "valid"
    assert layers.Conv2D(1, 3).strides == (1, 1)


@pytest.mark.parametrize("n", [28, 26, 13, 11, 5, 4])
def test_max_pooling_2x2_halves_each_spatial_size(n):
    for cls in (layers.MaxPooling2D, layers.MaxPool2D, layers.AveragePooling2D, layers.AvgPool2D):
        layer = cls(pool_size=2)
        assert layer.strides == (2, 2)
        assert layer.compute_output_shape((None, n, n + 2, 8)) == (None, n // 2, (n + 2) // 2, 8)
    assert layers.MaxPooling2D()(np.zeros((1, n, n, 1))).shape == (1, n // 2, n // 2, 1)


def test_pooling_aliases_are_the_keras_classes():
    assert layers.MaxPool2D is layers.MaxPooling2D
    assert layers.AvgPool2D is layers.AveragePooling2D


def test_compute_output_shape_with_unknown_spatial_sizes():
    assert layers.Conv2D(7, 3).compute_output_shape((None, None, None, 3)) == \
        (None, None, None, 7)
    assert layers.MaxPooling2D().compute_output_shape((None, None, 10, 3)) == (None, None, 5, 3)


def test_dense_flatten_reshape_output_shapes():
    assert layers.Dense(10).compute_output_shape((None, 784)) == (None, 10)
    assert layers.Dense(4).compute_output_shape((None, 3, 5)) == (None, 3, 4)
    assert layers.Dense(4)(np.zeros((2, 3, 5))).shape == (2, 3, 4)
    assert layers.Flatten().compute_output_shape((None, 3, 3, 128)) == (None, 1152)
    assert layers.Flatten()(np.zeros((2, 3, 3, 128))).shape == (2, 1152)
    assert layers.Reshape((3, 4)).compute_output_shape((None, 12)) == (None, 3, 4)
    assert layers.Reshape((-1, 2)).compute_output_shape((None, 3, 4)) == (None, 6, 2)
    assert layers.Reshape((-1, 2))(np.zeros((5, 3, 4))).shape == (5, 6, 2)


# ---------------------------------------------------------------------------------------------
# Parameter counts, weight shapes, initialisation
# ---------------------------------------------------------------------------------------------

def _lecture_convnet(pooling=True):
    inputs = pycnn.Input(shape=(28, 28, 1))
    x = layers.Conv2D(filters=32, kernel_size=3, activation="relu")(inputs)
    if pooling:
        x = layers.MaxPool2D(pool_size=2)(x)
    x = layers.Conv2D(filters=64, kernel_size=3, activation="relu")(x)
    if pooling:
        x = layers.MaxPool2D(pool_size=2)(x)
    x = layers.Conv2D(filters=128, kernel_size=3, activation="relu")(x)
    x = layers.Flatten()(x)
    outputs = layers.Dense(10, activation="softmax")(x)
    return pycnn.Model(inputs=inputs, outputs=outputs)


def _layer_table(model):
    """(name, class, output shape, params) per layer, shapes via compute_output_shape."""
    rows, shape = [], None
    for layer in model.layers:
        if isinstance(layer, layers.InputLayer):
            shape = layer.batch_shape
        else:
            shape = layer.compute_output_shape(shape)
        rows.append((layer.name, type(layer).__name__, shape, layer.count_params()))
    return rows


def test_lecture_convnet_has_104202_parameters_and_keras_layer_table():
    backend.clear_session()
    model = _lecture_convnet(pooling=True)
    assert model.name == "model"
    assert model.count_params() == 104202
    assert _layer_table(model) == [
        ("input_1", "InputLayer", (None, 28, 28, 1), 0),
        ("conv2d", "Conv2D", (None, 26, 26, 32), 320),
        ("max_pooling2d", "MaxPooling2D", (None, 13, 13, 32), 0),
        ("conv2d_1", "Conv2D", (None, 11, 11, 64), 18496),
        ("max_pooling2d_1", "MaxPooling2D", (None, 5, 5, 64), 0),
        ("conv2d_2", "Conv2D", (None, 3, 3, 128), 73856),
        ("flatten", "Flatten", (None, 1152), 0),
        ("dense", "Dense", (None, 10), 11530),
    ]
    assert model.output_shape == (None, 10)
    assert sum(w.size for w in model.get_weights()) == 104202
    y = model(np.random.default_rng(0).random((2, 28, 28, 1), dtype=np.float32))
    assert y.shape == (2, 10)
    np.testing.assert_allclose(y.sum(axis=1), 1.0, rtol=1e-5)


def test_lecture_convnet_without_pooling_has_712202_parameters():
    backend.clear_session()
    _lecture_convnet(pooling=True)
    model = _lecture_convnet(pooling=False)
    assert model.name == "model_1"
    assert model.count_params() == 712202
    assert _layer_table(model) == [
        ("input_2", "InputLayer", (None, 28, 28, 1), 0),
        ("conv2d_3", "Conv2D", (None, 26, 26, 32), 320),
        ("conv2d_4", "Conv2D", (None, 24, 24, 64), 18496),
        ("conv2d_5", "Conv2D", (None, 22, 22, 128), 73856),
        ("flatten_1", "Flatten", (None, 61952), 0),
        ("dense_1", "Dense", (None, 10), 619530),
    ]
    # "most of them in the last Dense layer"
    assert model.layers[-1].count_params() / model.count_params() > 0.85
    assert model(np.zeros((1, 28, 28, 1), np.float32)).shape == (1, 10)


def test_lecture_dense_network_parameter_counts():
    backend.clear_session()
    model = pycnn.Sequential([layers.Dense(512, activation="relu"),
                              layers.Dense(10, activation="softmax")])
    model.build((None, 784))
    assert [l.count_params() for l in model.layers] == [784 * 512 + 512, 512 * 10 + 10]
    assert model.count_params() == 407050
    assert model.name == "sequential"
    assert [l.name for l in model.layers] == ["dense", "dense_1"]


def test_weight_shapes_and_order_follow_keras():
    d = layers.Dense(3)
    d.build((None, 5))
    assert [v.shape for v in d.weights] == [(5, 3), (3,)]
    assert d.kernel.shape == (5, 3) and d.bias.shape == (3,)
    c = layers.Conv2D(6, (2, 3))
    c.build((None, 8, 8, 4))
    assert [w.shape for w in c.get_weights()] == [(2, 3, 4, 6), (6,)]
    assert c.count_params() == 2 * 3 * 4 * 6 + 6
    nb = layers.Conv2D(6, 3, use_bias=False)
    nb.build((None, 8, 8, 4))
    assert [w.shape for w in nb.get_weights()] == [(3, 3, 4, 6)]
    assert nb.count_params() == 3 * 3 * 4 * 6
    for layer in (layers.MaxPooling2D(), layers.Flatten(), layers.Dropout(0.5),
                  layers.Activation("relu"), layers.ReLU(), layers.Softmax()):
        layer(np.zeros((1, 4, 4, 2)))
        assert layer.weights == [] and layer.count_params() == 0
    assert all(v.value.dtype == np.float32 for v in d.weights + c.weights)


def test_count_params_before_build_raises():
    with pytest.raises(ValueError, match="isn't built"):
        layers.Dense(3).count_params()


@pytest.mark.parametrize("make,input_shape,fans", [
    (lambda: layers.Dense(200), (None, 300), (300, 200)),
    (lambda: layers.Conv2D(64, 3), (None, 11, 11, 32), (3 * 3 * 32, 3 * 3 * 64)),
    (lambda: layers.Conv2D(48, (2, 5)), (None, 9, 9, 20), (2 * 5 * 20, 2 * 5 * 48)),
])
def test_glorot_uniform_kernel_and_zero_bias(make, input_shape, fans):
    pycnn.utils.set_random_seed(123)
    layer = make()
    layer.build(input_shape)
    w = layer.kernel.numpy().astype(np.float64)
    limit = math.sqrt(6.0 / (fans[0] + fans[1]))
    assert np.abs(w).max() <= limit * (1 + 1e-6)
    assert np.abs(w).max() >= 0.98 * limit              # the limit is not too small either
    std = limit / math.sqrt(3.0)
    assert abs(w.std() - std) <= 0.03 * std, (w.std(), std)
    assert abs(w.mean()) <= 5 * std / math.sqrt(w.size)
    assert len(np.unique(w)) > 0.99 * w.size              # really random, not constant
    np.testing.assert_array_equal(layer.bias.numpy(), 0.0)


def test_seeded_initialisation_repeats():
    pycnn.utils.set_random_seed(7)
    a = layers.Conv2D(4, 3)
    a.build((None, 5, 5, 2))
    pycnn.utils.set_random_seed(7)
    b = layers.Conv2D(4, 3)
    b.build((None, 5, 5, 2))
    np.testing.assert_array_equal(a.kernel.numpy(), b.kernel.numpy())
    c = layers.Conv2D(4, 3)
    c.build((None, 5, 5, 2))
    assert not np.array_equal(a.kernel.numpy(), c.kernel.numpy())


# ---------------------------------------------------------------------------------------------
# Automatic names
# ---------------------------------------------------------------------------------------------

def test_layer_names_are_numbered_the_keras_way():
    backend.clear_session()
    assert [layers.Conv2D(1, 1).name for _ in range(3)] == ["conv2d", "conv2d_1", "conv2d_2"]
    assert layers.MaxPooling2D().name == "max_pooling2d"
    assert layers.MaxPool2D().name == "max_pooling2d_1"          # alias: same class, same counter
    assert layers.AveragePooling2D().name == "average_pooling2d"
    assert layers.AvgPool2D().name == "average_pooling2d_1"
    assert layers.Dense(2).name == "dense"
    assert layers.Dense(2, name="head").name == "head"           # an explicit name ...
    assert layers.Dense(2).name == "dense_1"                     # ... takes no number
    assert layers.Flatten().name == "flatten"
    assert layers.Dropout(0.5).name == "dropout"
    assert layers.Activation("relu").name == "activation"
    assert layers.ReLU().name == "re_lu"
    assert layers.Softmax().name == "softmax"
    assert layers.Reshape((2,)).name == "reshape"


def test_input_and_model_names_are_numbered_the_keras_way():
    backend.clear_session()
    a = pycnn.Input(shape=(4,))
    b = pycnn.Input(shape=(4,))
    assert (a.node.layer.name, b.node.layer.name) == ("input_1", "input_2")
    m0 = pycnn.Model(a, layers.Dense(2)(a))
    m1 = pycnn.Model(b, layers.Dense(2)(b))
    assert (m0.name, m1.name) == ("model", "model_1")
    assert pycnn.Sequential([layers.Dense(2)]).name == "sequential"
    assert pycnn.Sequential([layers.Dense(2)]).name == "sequential_1"


def test_clear_session_resets_the_counters():
    backend.clear_session()
    layers.Conv2D(1, 1)
    assert layers.Conv2D(1, 1).name == "conv2d_1"
    backend.clear_session()
    assert layers.Conv2D(1, 1).name == "conv2d"
    assert pycnn.Input(shape=(2,)).node.layer.name == "input_1"


# ---------------------------------------------------------------------------------------------
# Forward values
# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("activation", ACTIVATIONS)
@pytest.mark.parametrize("batch", [1, 4])
def test_dense_forward_matches_reference(isa, activation, batch):
    r = np.random.default_rng(1)
    layer = layers.Dense(6, activation=activation)
    x = randn(r, (batch, 7))
    layer.build((None, 7))
    layer.bias.assign(r.standard_normal(6))
    y = layer(x)
    expected = ref.activation_forward(activation, ref.dense_forward(x, layer.kernel.numpy(),
                                                                      layer.bias.numpy()))
    assert_close(y, expected, f"Dense({activation})")


def test_wide_dense_forward_and_gradients(isa):
    """Sizes that fill whole SIMD registers and leave tails (37 -> 70, batch 19)."""
    r = np.random.default_rng(26)
    layer = layers.Dense(70, activation="relu")
    layer.build((None, 37))
    layer.bias.assign(r.standard_normal(70) * 0.3)
    x = randn(r, (19, 37))
    y, R, dx, (dw, db) = run_backward(layer, x, r)
    w, b = layer.kernel.numpy(), layer.bias.numpy()
    y64 = ref.activation_forward("relu", ref.dense_forward(x, w, b))
    assert_close(y, y64, "forward")
    edx, edw, edb = ref.dense_backward(x, w, ref.activation_backward("relu", y64, R))
    assert_close(dx, edx, "dx")
    assert_close(dw, edw, "d kernel")
    assert_close(db, edb, "d bias")


def test_dense_acts_on_the_last_axis_of_rank3_input(isa):
    r = np.random.default_rng(2)
    layer = layers.Dense(4, activation="tanh")
    x = randn(r, (2, 3, 5))
    y = layer(x)
    expected = ref.activation_forward(
        "tanh", ref.dense_forward(x.reshape(6, 5), layer.kernel.numpy(), None)).reshape(2, 3, 4)
    assert_close(y, expected, "Dense on rank 3")


def test_dense_without_bias(isa):
    r = np.random.default_rng(3)
    layer = layers.Dense(3, use_bias=False)
    x = randn(r, (2, 4))
    y = layer(x)
    assert len(layer.weights) == 1
    assert_close(y, x.astype(np.float64) @ layer.kernel.numpy(), "Dense(use_bias=False)")


# (h, w, c, filters, kernel, strides, padding, activation, batch)
CONV_CASES = [
    (5, 5, 2, 3, 3, 1, "valid", "relu", 2),
    (6, 6, 3, 2, 3, 1, "same", "linear", 1),
    (7, 6, 2, 3, (2, 3), (1, 2), "same", "linear", 2),
    (8, 7, 1, 2, 2, 3, "valid", "relu", 2),           # stride > kernel
    (6, 6, 3, 4, 1, 1, "valid", "linear", 1),         # 1x1 kernel
    (5, 4, 2, 3, 1, 2, "same", "tanh", 2),            # 1x1 kernel, stride 2
    (6, 6, 2, 3, 4, 2, "same", "linear", 2),          # even kernel, asymmetric padding
    (7, 7, 2, 2, (3, 2), (2, 1), "valid", "sigmoid", 1),
    (4, 5, 2, 3, 3, 2, "same", "relu", 2),
    (5, 5, 1, 2, 5, 1, "valid", "linear", 3),         # kernel = input: a 1x1 output
    (3, 3, 2, 2, 5, 1, "same", "linear", 1),          # kernel larger than input, same
    (6, 5, 19, 33, 3, 1, "same", "relu", 2),          # full SIMD tiles plus tails
    (9, 9, 8, 16, 3, 2, "valid", "linear", 3),
]


def _conv_id(case):
    h, w, c, f, k, s, p, a, n = case
    return f"{n}x{h}x{w}x{c}-k{k}-s{s}-{p}-{a}".replace(" ", "")


def _make_conv(case, seed):
    h, w, c, f, k, s, p, a, n = case
    r = np.random.default_rng(seed)
    layer = layers.Conv2D(f, k, strides=s, padding=p, activation=a)
    layer.build((None, h, w, c))
    layer.kernel.assign(r.standard_normal(layer.kernel.shape) * 0.5)
    layer.bias.assign(r.standard_normal(f) * 0.5)
    return layer, randn(r, (n, h, w, c)), _pair(s), p, a


@pytest.mark.parametrize("case", CONV_CASES, ids=_conv_id)
def test_conv2d_forward_matches_reference(isa, case):
    layer, x, s, p, a = _make_conv(case, 10)
    y = layer(x)
    assert_close(y, ref_conv(x, layer.kernel.numpy(), layer.bias.numpy(), s, p, a),
                 f"Conv2D {_conv_id(case)}")


def test_conv2d_is_a_cross_correlation_without_kernel_flip(isa):
    x = np.arange(9, dtype=np.float32).reshape(1, 3, 3, 1)
    w = np.array([[1, 2, 0], [0, 0, 0], [0, 0, -1]], np.float32).reshape(3, 3, 1, 1)
    layer = layers.Conv2D(1, 3)
    layer.build((None, 3, 3, 1))
    layer.set_weights([w, np.zeros(1)])
    # sum(x * w): x[0,0]*1 + x[0,1]*2 - x[2,2] = 0 + 2 - 8 (a flipped kernel would give 22)
    assert layer(x).reshape(()) == pytest.approx(-6.0)


def test_conv2d_same_padding_puts_the_odd_pixel_bottom_right(isa):
    x = np.arange(1, 10, dtype=np.float32).reshape(1, 3, 3, 1)
    layer = layers.Conv2D(1, 2, padding="same")
    layer.build((None, 3, 3, 1))
    layer.set_weights([np.ones((2, 2, 1, 1)), np.zeros(1)])
    # 2x2 window of ones, one zero row/column after the image: window (i, j) = x[i:i+2, j:j+2]
    expected = np.array([[12, 16, 9], [24, 28, 15], [15, 17, 9]], np.float32)
    np.testing.assert_allclose(layer(x)[0, :, :, 0], expected, rtol=1e-6)


def test_conv2d_feature_maps_one_channel_per_filter(isa):
    x = np.random.default_rng(4).random((1, 6, 6, 1), dtype=np.float32)
    layer = layers.Conv2D(2, 3)
    layer.build((None, 6, 6, 1))
    k = np.zeros((3, 3, 1, 2), np.float32)
    k[1, 1, 0, 0] = 1.0            # filter 0: the identity (centre tap)
    k[:, :, 0, 1] = 1.0 / 9        # filter 1: a 3x3 box blur
    layer.set_weights([k, np.zeros(2)])
    y = layer(x)
    np.testing.assert_allclose(y[0, :, :, 0], x[0, 1:5, 1:5, 0], rtol=1e-6)
    blur = np.array([[x[0, i:i + 3, j:j + 3, 0].mean() for j in range(4)] for i in range(4)])
    np.testing.assert_allclose(y[0, :, :, 1], blur, rtol=1e-5)


# (pool, strides, padding, h, w, batch)
POOL_CASES = [
    (2, None, "valid", 4, 4, 2),
    (2, None, "valid", 5, 7, 1),          # odd sizes: floor
    (3, 2, "same", 5, 5, 2),
    (3, 2, "same", 6, 6, 1),
    (2, None, "same", 5, 3, 2),           # same with a partial last window
    ((2, 3), (1, 2), "valid", 5, 7, 1),
    (1, 2, "valid", 5, 5, 2),             # stride > pool
    (2, 3, "same", 7, 8, 1),
    (3, 1, "same", 4, 4, 1),
]


def _pool_id(case):
    return "-".join(str(v) for v in case).replace(" ", "")


@pytest.mark.parametrize("kind", ["max", "avg"])
@pytest.mark.parametrize("case", POOL_CASES, ids=_pool_id)
def test_pooling_forward_matches_reference(isa, kind, case):
    pool, strides, padding, h, w, n = case
    cls = layers.MaxPooling2D if kind == "max" else layers.AveragePooling2D
    layer = cls(pool_size=pool, strides=strides, padding=padding)
    x = randn(np.random.default_rng(5), (n, h, w, 3))
    y = layer(x)
    pool2 = _pair(pool)
    assert_close(y, ref_pool(kind, x, pool2, _pair(strides) if strides else pool2, padding),
                 f"{kind} pool {_pool_id(case)}")


def test_max_pooling_pads_with_minus_infinity(isa):
    x = -np.arange(1, 10, dtype=np.float32).reshape(1, 3, 3, 1)       # all negative
    y = layers.MaxPooling2D(2, padding="same")(x)
    np.testing.assert_array_equal(y[0, :, :, 0], [[-1, -3], [-7, -9]])


def test_average_pooling_same_divides_by_real_cells(isa):
    x = np.ones((1, 3, 3, 2), np.float32)
    y = layers.AveragePooling2D(2, padding="same")(x)
    np.testing.assert_allclose(y, 1.0, rtol=1e-6)          # not 0.5 / 0.25 at the edges
    x = np.arange(1, 10, dtype=np.float32).reshape(1, 3, 3, 1)
    y = layers.AveragePooling2D(2, padding="same")(x)
    np.testing.assert_allclose(y[0, :, :, 0], [[3.0, 4.5], [7.5, 9.0]], rtol=1e-6)


def test_flatten_order_is_row_major_hwc(isa):
    x = randn(np.random.default_rng(6), (2, 3, 4, 5))
    y = layers.Flatten()(x)
    n_, h_, w_, c_ = x.shape
    assert y.shape == (2, 60)
    for n in range(n_):
        for h in range(h_):
            for w in range(w_):
                for c in range(c_):
                    assert y[n, (h * w_ + w) * c_ + c] == x[n, h, w, c]


def test_reshape_forward_values():
    x = randn(np.random.default_rng(7), (3, 12))
    np.testing.assert_array_equal(layers.Reshape((3, 4))(x), x.reshape(3, 3, 4))
    np.testing.assert_array_equal(layers.Reshape((2, -1))(x), x.reshape(3, 2, 6))
    x4 = randn(np.random.default_rng(8), (2, 2, 3, 4))
    np.testing.assert_array_equal(layers.Reshape((-1,))(x4), x4.reshape(2, 24))


@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_activation_layer_forward_matches_reference(isa, activation):
    x = randn(np.random.default_rng(9), (3, 4, 5), scale=3.0)
    y = layers.Activation(activation)(x)
    assert_close(y, ref.activation_forward(activation, x), f"Activation({activation})")


def test_activation_layer_accepts_pycnn_functions(isa):
    x = randn(np.random.default_rng(9), (3, 5))
    np.testing.assert_array_equal(layers.Activation(pycnn.activations.relu)(x),
                                  np.maximum(x, 0))


def test_softmax_layer_forward_is_stable_and_sums_to_one(isa):
    x = randn(np.random.default_rng(10), (2, 3, 6), scale=4.0)
    y = layers.Softmax()(x)
    assert_close(y, ref.activation_forward("softmax", x), "Softmax")
    np.testing.assert_allclose(y.sum(-1), 1.0, rtol=1e-5)
    big = np.array([[1000.0, 0.0, -1000.0], [88.0, 89.0, 90.0]], np.float32)
    yb = layers.Softmax()(big)
    assert np.all(np.isfinite(yb))
    assert_close(yb, ref.activation_forward("softmax", big), "Softmax of large logits")


RELU_VARIANTS = [
    {}, {"max_value": 1.5}, {"negative_slope": 0.2}, {"threshold": 0.5},
    {"max_value": 2.0, "negative_slope": 0.1}, {"max_value": 2.0, "threshold": 0.5},
    {"max_value": 6.0}, {"negative_slope": 0.3, "threshold": 0.4, "max_value": 1.0},
]


@pytest.mark.parametrize("kwargs", RELU_VARIANTS, ids=lambda k: ",".join(
    f"{a}={b}" for a, b in k.items()) or "plain")
def test_relu_layer_forward_matches_keras_formula(isa, kwargs):
    x = randn(np.random.default_rng(11), (4, 25), scale=2.0)
    y = layers.ReLU(**kwargs)(x)
    assert y.dtype == np.float32
    assert_close(y, keras_relu(x, **kwargs), f"ReLU({kwargs})")


def test_relu_layer_keras_docstring_examples():
    """The examples in keras.layers.ReLU's / keras.activations.relu's docstrings."""
    x = np.array([[-10.0, -5.0, 0.0, 5.0, 10.0]], np.float32)
    np.testing.assert_array_equal(layers.ReLU()(x), [[0, 0, 0, 5, 10]])
    np.testing.assert_array_equal(layers.ReLU(negative_slope=0.5)(x), [[-5, -2.5, 0, 5, 10]])
    np.testing.assert_array_equal(layers.ReLU(max_value=5.0)(x), [[0, 0, 0, 5, 5]])
    np.testing.assert_array_equal(layers.ReLU(max_value=10, negative_slope=0.5)(x),
                                  [[-5, -2.5, 0, 5, 10]])
    # Keras: x * (x > threshold), so x == threshold gives 0
    np.testing.assert_array_equal(layers.ReLU(threshold=5.0)(x), [[0, 0, 0, 0, 10]])
    np.testing.assert_array_equal(layers.ReLU(threshold=1.5)(
        np.array([[-3.0, -1.0, 1.0, 2.0]])), [[0, 0, 0, 2]])


def test_dropout_is_the_identity_at_inference(isa):
    x = randn(np.random.default_rng(12), (4, 5, 5, 3))
    layer = layers.Dropout(0.5)
    np.testing.assert_array_equal(layer(x), x)
    np.testing.assert_array_equal(layer(x, training=False), x)
    np.testing.assert_array_equal(layers.Dropout(0.0)(x, training=True), x)


@pytest.mark.parametrize("rate", [0.1, 0.5, 0.8])
def test_dropout_in_training_zeroes_rate_and_scales_the_rest(rate):
    x = f32(np.random.default_rng(13).uniform(0.5, 1.5, (40, 50, 50)))
    y = layers.Dropout(rate)(x, training=True)
    dropped = y == 0
    assert abs(dropped.mean() - rate) < 0.01, dropped.mean()
    np.testing.assert_allclose(y[~dropped], x[~dropped] / (1 - rate), rtol=1e-6)
    assert abs(y.mean() / x.mean() - 1) < 0.02            # expectation preserved


def test_dropout_with_a_seed_repeats():
    x = np.ones((8, 100), np.float32)
    a = layers.Dropout(0.5, seed=42)(x, training=True)
    b = layers.Dropout(0.5, seed=42)(x, training=True)
    c = layers.Dropout(0.5, seed=43)(x, training=True)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    layer = layers.Dropout(0.5, seed=42)
    first, second = layer(x, training=True), layer(x, training=True)
    assert not np.array_equal(first, second)                # a new mask every call


def test_dropout_without_seed_follows_set_random_seed():
    x = np.ones((8, 100), np.float32)
    pycnn.utils.set_random_seed(5)
    a = layers.Dropout(0.3)(x, training=True)
    pycnn.utils.set_random_seed(5)
    b = layers.Dropout(0.3)(x, training=True)
    np.testing.assert_array_equal(a, b)


def test_layer_call_returns_a_fresh_array(isa):
    """Layers reuse their output buffers between batches; ``layer(x)`` must not expose that."""
    r = np.random.default_rng(14)
    for layer, shape in ((layers.Dense(3, activation="relu"), (2, 4)),
                         (layers.Conv2D(2, 3, activation="sigmoid"), (1, 5, 5, 2)),
                         (layers.MaxPooling2D(), (1, 4, 4, 2)),
                         (layers.AveragePooling2D(), (1, 4, 4, 2)),
                         (layers.Activation("tanh"), (2, 4)), (layers.ReLU(), (2, 4))):
        x1, x2 = randn(r, shape), randn(r, shape)
        y1 = layer(x1)
        keep = y1.copy()
        layer(x2)
        np.testing.assert_array_equal(y1, keep, err_msg=layer.name)


def test_layers_accept_float64_and_integer_input(isa):
    r = np.random.default_rng(15)
    layer = layers.Conv2D(2, 3)
    x64 = r.standard_normal((1, 5, 5, 1))
    y = layer(x64)
    assert y.dtype == np.float32
    assert_close(y, ref_conv(f32(x64), layer.kernel.numpy(), layer.bias.numpy(), (1, 1),
                             "valid"), "Conv2D on float64 input")
    xi = np.arange(20).reshape(2, 10)
    d = layers.Dense(3)
    assert_close(d(xi), ref.dense_forward(xi, d.kernel.numpy(), d.bias.numpy()), "Dense on int")


# ---------------------------------------------------------------------------------------------
# Gradients through single layers: backward vs reference backward vs finite differences
# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("activation", ACTIVATIONS)
@pytest.mark.parametrize("batch", [1, 3])
def test_dense_gradients(isa, activation, batch):
    r = np.random.default_rng(20 + batch)
    layer = layers.Dense(4, activation=activation)
    layer.build((None, 5))
    layer.bias.assign(r.standard_normal(4) * 0.5)
    x = randn(r, (batch, 5))
    y, R, dx, (dw, db) = run_backward(layer, x, r)
    w, b = layer.kernel.numpy(), layer.bias.numpy()
    y64 = ref.activation_forward(activation, ref.dense_forward(x, w, b))
    assert_close(y, y64, "forward")
    dz = ref.activation_backward(activation, y64, R)
    edx, edw, edb = ref.dense_backward(x, w, dz)
    assert_close(dx, edx, "dx")
    assert_close(dw, edw, "d kernel")
    assert_close(db, edb, "d bias")

    def loss(x_, w_, b_):
        return float((ref.activation_forward(activation, ref.dense_forward(x_, w_, b_)) * R).sum())

    finite_difference_check(loss, [x, w, b], [dx, dw, db], ["x", "kernel", "bias"])


def test_dense_gradients_on_rank3_input(isa):
    r = np.random.default_rng(25)
    layer = layers.Dense(3, activation="relu")
    layer.build((None, 2, 4))
    layer.bias.assign(r.standard_normal(3) * 0.3)
    x = randn(r, (2, 2, 4))
    y, R, dx, (dw, db) = run_backward(layer, x, r)
    w, b = layer.kernel.numpy(), layer.bias.numpy()

    def fwd(x_, w_, b_):
        return ref.activation_forward("relu", ref.dense_forward(
            f64(x_).reshape(-1, 4), w_, b_)).reshape(2, 2, 3)

    assert dx.shape == x.shape
    finite_difference_check(lambda *a: float((fwd(*a) * R).sum()), [x, w, b], [dx, dw, db],
                            ["x", "kernel", "bias"], n_coords=6)


@pytest.mark.parametrize("case", CONV_CASES, ids=_conv_id)
def test_conv2d_gradients(isa, case):
    layer, x, s, p, a = _make_conv(case, 30)
    r = np.random.default_rng(31)
    y, R, dx, (dw, db) = run_backward(layer, x, r)
    w, b = layer.kernel.numpy(), layer.bias.numpy()
    assert_close(y, ref_conv(x, w, b, s, p, a), "forward")
    edx, edw, edb = ref_conv_grads(x, w, b, R, s, p, a)
    assert_close(dx, edx, "dx")
    assert_close(dw, edw, "d kernel")
    assert_close(db, edb, "d bias")
    finite_difference_check(lambda x_, w_, b_: float((ref_conv(x_, w_, b_, s, p, a) * R).sum()),
                            [x, w, b], [dx, dw, db], ["x", "kernel", "bias"])


def test_conv2d_backward_without_input_gradient(isa):
    """need_dx=False (the first layer of a model) returns None and still fills the weights'
    gradients."""
    layer, x, s, p, a = _make_conv(CONV_CASES[2], 32)
    ctx = Context()
    layer(x)
    layer.forward(ctx, x)
    R = f32(np.random.default_rng(33).standard_normal(layer.compute_output_shape(x.shape)))
    layer.kernel.grad[...] = np.nan
    layer.bias.grad[...] = np.nan
    assert layer.backward(ctx, R, need_dx=False) is None
    _, edw, edb = ref_conv_grads(x, layer.kernel.numpy(), layer.bias.numpy(), R, s, p, a)
    assert_close(layer.kernel.grad, edw, "d kernel")
    assert_close(layer.bias.grad, edb, "d bias")


def test_conv2d_without_bias_gradients(isa):
    r = np.random.default_rng(34)
    layer = layers.Conv2D(3, 2, strides=2, padding="same", use_bias=False, activation="relu")
    x = randn(r, (2, 5, 5, 2))
    y, R, dx, (dw,) = run_backward(layer, x, r)
    w = layer.kernel.numpy()
    edx, edw, _ = ref_conv_grads(x, w, None, R, (2, 2), "same", "relu")
    assert_close(dx, edx, "dx")
    assert_close(dw, edw, "d kernel")


@pytest.mark.parametrize("kind", ["max", "avg"])
@pytest.mark.parametrize("case", POOL_CASES, ids=_pool_id)
def test_pooling_gradients(isa, kind, case):
    pool, strides, padding, h, w, n = case
    cls = layers.MaxPooling2D if kind == "max" else layers.AveragePooling2D
    layer = cls(pool_size=pool, strides=strides, padding=padding)
    r = np.random.default_rng(40)
    x = randn(r, (n, h, w, 2))
    pool2 = _pair(pool)
    s2 = _pair(strides) if strides else pool2
    y, R, dx, _ = run_backward(layer, x, r)
    assert_close(dx, ref_pool_grad(kind, x, R, pool2, s2, padding), "dx")
    finite_difference_check(lambda x_: float((ref_pool(kind, x_, pool2, s2, padding) * R).sum()),
                            [x], [dx], ["x"], n_coords=8)


def test_max_pooling_gradient_goes_to_the_first_maximum_of_a_tie(isa):
    x = np.zeros((1, 4, 4, 2), np.float32)
    x[0, 2:, 2:, 1] = 3.0                          # a tie of four in one window
    x[0, 0, 1, 0] = x[0, 1, 0, 0] = 5.0            # a tie of two: first in row order is (0, 1)
    layer = layers.MaxPooling2D()
    ctx = Context()
    layer.forward(ctx, x)
    dx = layer.backward(ctx, np.ones((1, 2, 2, 2), np.float32))
    expected = np.zeros_like(x)
    expected[0, 0, 0, 1] = expected[0, 0, 2, 1] = expected[0, 2, 0, 1] = 1  # all-zero windows
    expected[0, 2, 2, 1] = 1
    expected[0, 0, 1, 0] = 1
    expected[0, 0, 2, 0] = expected[0, 2, 0, 0] = expected[0, 2, 2, 0] = 1
    np.testing.assert_array_equal(dx, expected)


@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_activation_layer_gradients(isa, activation):
    r = np.random.default_rng(50)
    layer = layers.Activation(activation)
    x = randn(r, (2, 3, 4), scale=2.0)
    y, R, dx, _ = run_backward(layer, x, r)
    assert_close(dx, ref.activation_backward(activation, ref.activation_forward(activation, x),
                                             R), "dx")
    finite_difference_check(
        lambda x_: float((ref.activation_forward(activation, x_) * R).sum()), [x], [dx], ["x"],
        n_coords=8)


def test_softmax_layer_gradients(isa):
    r = np.random.default_rng(51)
    layer = layers.Softmax()
    x = randn(r, (3, 7), scale=2.0)
    y, R, dx, _ = run_backward(layer, x, r)
    assert_close(dx, ref.activation_backward("softmax", ref.activation_forward("softmax", x), R),
                 "dx")
    finite_difference_check(lambda x_: float((ref.activation_forward("softmax", x_) * R).sum()),
                            [x], [dx], ["x"], n_coords=8)


@pytest.mark.parametrize("kwargs", RELU_VARIANTS, ids=lambda k: ",".join(
    f"{a}={b}" for a, b in k.items()) or "plain")
def test_relu_layer_gradients(isa, kwargs):
    r = np.random.default_rng(52)
    layer = layers.ReLU(**kwargs)
    x = randn(r, (3, 40), scale=2.0)
    y, R, dx, _ = run_backward(layer, x, r)
    # away from the kinks the derivative of Keras' formula is piecewise constant
    finite_difference_check(lambda x_: float((keras_relu(x_, **kwargs) * R).sum()), [x], [dx],
                            ["x"], n_coords=40)


def test_dropout_gradient_uses_the_same_mask(isa):
    r = np.random.default_rng(53)
    layer = layers.Dropout(0.4, seed=1)
    x = f32(r.uniform(0.5, 1.5, (4, 30)))
    ctx = Context()
    y = np.array(layer.forward(ctx, x, training=True))
    R = f32(r.standard_normal(y.shape))
    dx = layer.backward(ctx, R)
    mask = y / x                       # 0 or 1/(1-rate)
    np.testing.assert_allclose(dx, R * mask, rtol=1e-6)
    assert (dx == 0).sum() == (y == 0).sum()
    layer.forward(ctx, x, training=False)
    np.testing.assert_array_equal(layer.backward(ctx, R), R)


def test_flatten_and_reshape_gradients_are_reshapes():
    r = np.random.default_rng(54)
    x = randn(r, (2, 3, 4, 5))
    flat = layers.Flatten()
    y, R, dx, _ = run_backward(flat, x, r)
    assert dx.shape == x.shape
    np.testing.assert_array_equal(dx, f32(R).reshape(x.shape))
    assert dx[1, 2, 3, 4] == f32(R)[1, (2 * 4 + 3) * 5 + 4]
    resh = layers.Reshape((4, -1))
    y, R, dx, _ = run_backward(resh, x, r)
    assert y.shape == (2, 4, 15)
    np.testing.assert_array_equal(dx, f32(R).reshape(x.shape))


# ---------------------------------------------------------------------------------------------
# A whole model: gradients of one training step
# ---------------------------------------------------------------------------------------------

N_CLASSES = 5
MODEL_N, MODEL_H, MODEL_W, MODEL_C = 4, 7, 7, 2


def _small_convnet(output="softmax"):
    """Conv2D same + relu, MaxPool, Conv2D (tanh), AvgPool same, Flatten, Dense.

    output: "softmax" (Dense softmax), "linear" (logits), "activation" (Dense + Activation
    softmax), "softmax_layer" (Dense + Softmax())."""
    inputs = pycnn.Input(shape=(MODEL_H, MODEL_W, MODEL_C))
    x = layers.Conv2D(3, 3, padding="same", activation="relu")(inputs)      # 7x7x3
    x = layers.MaxPooling2D(2)(x)                                           # 3x3x3
    x = layers.Conv2D(4, 2, activation="tanh")(x)                           # 2x2x4
    x = layers.AveragePooling2D(2, strides=1, padding="same")(x)            # 2x2x4
    x = layers.Flatten()(x)                                                 # 16
    if output == "softmax":
        out = layers.Dense(N_CLASSES, activation="softmax")(x)
    else:
        out = layers.Dense(N_CLASSES)(x)
        if output == "activation":
            out = layers.Activation("softmax")(out)
        elif output == "softmax_layer":
            out = layers.Softmax()(out)
    return pycnn.Model(inputs, out)


def _model_data(seed=60):
    r = np.random.default_rng(seed)
    x = randn(r, (MODEL_N, MODEL_H, MODEL_W, MODEL_C))
    y = np.array([0, 3, 1, 4])
    weights = [r.standard_normal((3, 3, MODEL_C, 3)) * 0.5, r.standard_normal(3) * 0.2,
               r.standard_normal((2, 2, 3, 4)) * 0.5, r.standard_normal(4) * 0.2,
               r.standard_normal((16, N_CLASSES)) * 0.5, r.standard_normal(N_CLASSES) * 0.2]
    return x, y, [f32(w) for w in weights]


def _ref_model(x, params):
    """Pure-NumPy float64 forward pass of _small_convnet; returns the logits and the
    intermediate values."""
    w1, b1, w2, b2, w3, b3 = (f64(p) for p in params)
    x = f64(x)
    a1 = ref_conv(x, w1, b1, (1, 1), "same", "relu")
    oh, ow, pads1 = ref.geometry(7, 7, 2, 2, 2, 2, "valid")
    p1, argmax = ref.maxpool2d_forward(a1, (2, 2), (2, 2), pads1, (oh, ow))
    a2 = ref_conv(p1, w2, b2, (1, 1), "valid", "tanh")
    oh2, ow2, pads2 = ref.geometry(2, 2, 2, 2, 1, 1, "same")
    p2 = ref.avgpool2d_forward(a2, (2, 2), (1, 1), pads2, (oh2, ow2))
    flat = p2.reshape(len(x), -1)
    logits = ref.dense_forward(flat, w3, b3)
    return logits, dict(a1=a1, p1=p1, argmax=argmax, a2=a2, pads2=pads2, p2=p2, flat=flat)


def _ref_model_loss(x, y, params):
    return ref.softmax_xent_sparse(_ref_model(x, params)[0], y)[0]


def _ref_model_grads(x, y, params):
    """Analytic float64 backward pass of _ref_model + sparse crossentropy (reference kernels)."""
    w1, b1, w2, b2, w3, b3 = (f64(p) for p in params)
    logits, v = _ref_model(x, params)
    loss, _, dlogits = ref.softmax_xent_sparse(logits, y)
    dflat, dw3, db3 = ref.dense_backward(v["flat"], w3, dlogits)
    dp2 = dflat.reshape(v["p2"].shape)
    da2 = ref.avgpool2d_backward(dp2, v["a2"].shape, (2, 2), (1, 1), v["pads2"])
    dz2 = ref.activation_backward("tanh", v["a2"], da2)
    dp1, dw2, db2 = ref.conv2d_backward(v["p1"], w2, dz2, (1, 1), (0, 0))
    da1 = ref.maxpool2d_backward(dp1, v["argmax"], v["a1"].shape)
    dz1 = ref.activation_backward("relu", v["a1"], da1)
    pads = ref.geometry(7, 7, 3, 3, 1, 1, "same")[2]
    _, dw1, db1 = ref.conv2d_backward(x, w1, dz1, (1, 1), pads)
    return loss, [dw1, db1, dw2, db2, dw3, db3]


def test_reference_model_backward_matches_its_finite_differences():
    """Sanity of the oracle the model tests use (its own backward vs its own forward)."""
    x, y, params = _model_data()
    _, grads = _ref_model_grads(x, y, params)
    finite_difference_check(lambda *p: _ref_model_loss(x, y, p), params, grads,
                            ["w1", "b1", "w2", "b2", "w3", "b3"], n_coords=3,
                            rtol=1e-6, atol_frac=1e-6)


def _graph_gradients(model, x, y):
    """One training step's gradients, as Model.fit computes them (no optimizer update): the
    training plan with the output at logits when the loss can take them."""
    plan = model.compiled_plan(True, logits=(True,))
    fused = plan.logits_outputs[0]
    (out,) = plan.forward([f32(x)])     # the logits when fused, else the probabilities
    loss, grad = model.loss.compute(out, y, True if fused else model.loss.from_logits)
    for v in model.trainable_weights:
        v.grad[...] = np.nan
    plan.backward([grad])
    return loss, fused, [v.grad.copy() for v in model.trainable_weights]


NAMES = ["conv2d/kernel", "conv2d/bias", "conv2d_1/kernel", "conv2d_1/bias", "dense/kernel",
         "dense/bias"]


def test_model_gradients_match_float64_finite_differences(isa):
    x, y, params = _model_data()
    model = _small_convnet("softmax")
    model.set_weights(params)
    model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
    loss, fused, grads = _graph_gradients(model, x, y)
    assert fused, "Dense(softmax) + sparse_categorical_crossentropy should use the fused path"
    ref_loss, ref_grads = _ref_model_grads(x, y, params)
    assert loss == pytest.approx(ref_loss, rel=1e-5)
    for g, e, name in zip(grads, ref_grads, NAMES):
        assert_close(g, e, name, rtol=2e-4, atol_frac=5e-5)
    finite_difference_check(lambda *p: _ref_model_loss(x, y, p), params, grads, NAMES,
                            n_coords=4, seed=61)


def _fit_one_step(model, x, y, loss):
    """Weight change of one SGD(learning_rate=1) step over the whole batch = -gradient."""
    model.compile(optimizer=pycnn.optimizers.SGD(learning_rate=1.0), loss=loss)
    before = model.get_weights()
    history = model.fit(x, y, batch_size=len(x), epochs=1, shuffle=False, verbose=0)
    after = model.get_weights()
    return history.history["loss"][0], [f64(b) - f64(a) for b, a in zip(before, after)]


@pytest.mark.parametrize("variant", ["fused_softmax", "logits", "activation_softmax",
                                     "softmax_layer"])
def test_training_step_gradients_fused_and_unfused_agree(isa, variant):
    """Dense(softmax) + "sparse_categorical_crossentropy" (fused), Dense linear +
    SparseCategoricalCrossentropy(from_logits=True), and a separate Activation("softmax") /
    Softmax() output layer all give the reference gradient (p - onehot) / N."""
    x, y, params = _model_data()
    output, loss = {
        "fused_softmax": ("softmax", "sparse_categorical_crossentropy"),
        "logits": ("linear", pycnn.losses.SparseCategoricalCrossentropy(from_logits=True)),
        "activation_softmax": ("activation", "sparse_categorical_crossentropy"),
        "softmax_layer": ("softmax_layer", "sparse_categorical_crossentropy"),
    }[variant]
    model = _small_convnet(output)
    model.set_weights(params)
    ref_loss, ref_grads = _ref_model_grads(x, y, params)
    fit_loss, deltas = _fit_one_step(model, x, y, loss)
    assert fit_loss == pytest.approx(ref_loss, rel=1e-5)
    for d, e, name in zip(deltas, ref_grads, NAMES):
        # w - (w - g) in float32: exact up to one rounding of w (|w| < 2)
        assert_close(d, e, f"{variant}: {name}", rtol=2e-4, atol_frac=5e-5)


def test_unfused_softmax_probabilities_path_gives_the_same_gradients(isa):
    """The loss on probabilities (no fusion) backpropagated through Dense's softmax must agree
    with the fused gradient."""
    x, y, params = _model_data()
    model = _small_convnet("softmax")
    model.set_weights(params)
    model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
    plan = model.compiled_plan(True, logits=(False,))
    assert not plan.logits_outputs[0]
    (out,) = plan.forward([f32(x)])
    loss, grad = model.loss.compute(out, y, False)
    plan.backward([grad])
    grads = [v.grad.copy() for v in model.trainable_weights]
    ref_loss, ref_grads = _ref_model_grads(x, y, params)
    assert loss == pytest.approx(ref_loss, rel=1e-4)
    for g, e, name in zip(grads, ref_grads, NAMES):
        assert_close(g, e, name, rtol=1e-3, atol_frac=2e-4)


def test_model_gradients_with_dropout_in_the_graph(isa):
    """Dropout between Flatten and Dense: the gradient is that of the masked network."""
    r = np.random.default_rng(70)
    inputs = pycnn.Input(shape=(4, 4, 2))
    h = layers.Flatten()(inputs)
    d = layers.Dropout(0.5, seed=3)
    h = d(h)
    out = layers.Dense(3, activation="softmax")(h)
    model = pycnn.Model(inputs, out)
    model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
    x = randn(r, (3, 4, 4, 2))
    y = np.array([0, 2, 1])
    loss, fused, (dw, db) = _graph_gradients(model, x, y)
    (step,) = [s for s in model.compiled_plan(True, logits=(True,)).steps
               if getattr(s, "layer", None) is d]
    mask = f64(step.ctx.mask)
    assert set(np.unique(mask)) <= {0.0, 2.0}
    w, b = (f64(v) for v in model.get_weights())
    flat = f64(x).reshape(3, -1) * mask
    ref_loss, _, dlogits = ref.softmax_xent_sparse(ref.dense_forward(flat, w, b), y)
    _, edw, edb = ref.dense_backward(flat, w, dlogits)
    assert loss == pytest.approx(ref_loss, rel=1e-5)
    assert_close(dw, edw, "dense/kernel")
    assert_close(db, edb, "dense/bias")


# ---------------------------------------------------------------------------------------------
# Errors
# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("make,needle", [
    (lambda: layers.Dense(0), "units=0"),
    (lambda: layers.Dense(-3), "units=-3"),
    (lambda: layers.Dense(2.5), "units=2.5"),
    (lambda: layers.Conv2D(filters=-1, kernel_size=3), "filters=-1"),
    (lambda: layers.Conv2D(filters=0, kernel_size=3), "filters=0"),
    (lambda: layers.Conv2D(filters=8, kernel_size=0), "kernel_size=0"),
    (lambda: layers.Conv2D(filters=8, kernel_size=(3, 0)), "kernel_size=(3, 0)"),
    (lambda: layers.Conv2D(filters=8, kernel_size=(3, 3, 3)), "kernel_size"),
    (lambda: layers.Conv2D(filters=8, kernel_size=3, strides=0), "strides=0"),
    (lambda: layers.MaxPooling2D(pool_size=0), "pool_size=0"),
    (lambda: layers.AveragePooling2D(pool_size=(2, -1)), "pool_size=(2, -1)"),
    (lambda: layers.MaxPooling2D(pool_size=2, strides=0), "strides=0"),
    (lambda: layers.Dropout(1.5), "rate=1.5"),
    (lambda: layers.Dropout(-0.1), "rate=-0.1"),
    (lambda: layers.ReLU(max_value=-1.0), "max_value=-1.0"),
    (lambda: layers.ReLU(negative_slope=-0.5), "negative_slope=-0.5"),
    (lambda: layers.Reshape((2, -1, -1)), "target_shape"),
])
def test_constructor_errors_name_the_argument(make, needle):
    with pytest.raises(ValueError) as info:
        make()
    assert needle in str(info.value), str(info.value)


@pytest.mark.parametrize("cls,kwargs", [
    (layers.Conv2D, {"filters": 4, "kernel_size": 3}),
    (layers.MaxPooling2D, {}),
    (layers.AveragePooling2D, {}),
])
def test_padding_error_lists_the_valid_choices(cls, kwargs):
    with pytest.raises(ValueError) as info:
        cls(padding="full", **kwargs)
    msg = str(info.value)
    assert "'valid', 'same'" in msg and "full" in msg, msg


def test_padding_is_case_insensitive_like_keras():
    assert layers.Conv2D(1, 3, padding="SAME").padding == "same"


def test_unknown_activation_names_the_value():
    with pytest.raises(ValueError, match="'relux'"):
        layers.Dense(3, activation="relux")


def test_dense_on_wrong_feature_count_gives_keras_message():
    backend.clear_session()
    inputs = pycnn.Input(shape=(784,))
    dense = layers.Dense(10)
    dense(inputs)
    expected = ('Input 0 of layer "dense" is incompatible with the layer: expected axis -1 of '
                'input shape to have value 784, but received input with shape (None, 28, 28)')
    with pytest.raises(ValueError) as info:
        dense(np.zeros((2, 28, 28), np.float32))
    assert str(info.value) == expected
    with pytest.raises(ValueError) as info:
        dense(pycnn.Input(shape=(28, 28)))
    assert str(info.value) == expected


def test_conv2d_on_rank2_input_gives_keras_message():
    backend.clear_session()
    with pytest.raises(ValueError) as info:
        layers.Conv2D(32, 3)(pycnn.Input(shape=(784,)))
    msg = str(info.value)
    assert "conv2d" in msg
    assert "expected ndim=4" in msg or "expected min_ndim=4" in msg, msg
    assert "found ndim=2" in msg and "Full shape received: (None, 784)" in msg, msg
    with pytest.raises(ValueError) as info:
        layers.Conv2D(32, 3)(np.zeros((5, 784), np.float32))
    assert "Full shape received: (None, 784)" in str(info.value)


def test_built_conv2d_checks_rank_and_channels():
    conv = layers.Conv2D(4, 3)
    conv(np.zeros((1, 5, 5, 3), np.float32))
    with pytest.raises(ValueError, match=r"expected ndim=4, found ndim=3"):
        conv(np.zeros((5, 5, 3), np.float32))
    with pytest.raises(ValueError, match=r"expected axis -1 of input shape to have value 3"):
        conv(np.zeros((1, 5, 5, 4), np.float32))


def test_pooling_on_rank3_input_gives_keras_message():
    with pytest.raises(ValueError, match=r"expected ndim=4, found ndim=3\. Full shape "
                                         r"received: \(None, 28, 28\)"):
        layers.MaxPooling2D()(pycnn.Input(shape=(28, 28)))


def test_kernel_larger_than_input_shows_the_output_size_arithmetic():
    with pytest.raises(ValueError) as info:
        layers.Conv2D(3, 5)(pycnn.Input(shape=(3, 3, 1)))
    msg = str(info.value)
    assert "floor((3 - 5) / 1) + 1 = -1" in msg, msg
    assert "5x5" in msg and "(None, 3, 3, 1)" in msg, msg
    with pytest.raises(ValueError, match=re.escape("floor((3 - 5) / 1) + 1 = -1")):
        layers.Conv2D(3, 5)(np.zeros((1, 3, 3, 1), np.float32))
    with pytest.raises(ValueError, match=re.escape("floor((3 - 4) / 4) + 1 = 0")):
        layers.MaxPooling2D(4)(np.zeros((1, 3, 3, 1), np.float32))
    # with "same" padding any window fits
    assert layers.MaxPooling2D(4, padding="same")(np.zeros((1, 3, 3, 1))).shape == (1, 1, 1, 1)


def test_reshape_to_incompatible_size_raises():
    with pytest.raises(ValueError, match="total size of new array must be unchanged"):
        layers.Reshape((5, 5))(np.zeros((2, 12), np.float32))
    with pytest.raises(ValueError):
        layers.Reshape((5, -1))(np.zeros((2, 12), np.float32))


def test_training_with_a_partial_last_batch_uses_fresh_buffers(isa):
    """Layers reuse buffers between batches; a last batch of another size (4 samples, batch 3)
    must still give the reference gradients: two SGD(learning_rate=1) steps."""
    x, y, params = _model_data()
    model = _small_convnet("softmax")
    model.set_weights(params)
    model.compile(optimizer=pycnn.optimizers.SGD(learning_rate=1.0),
                  loss="sparse_categorical_crossentropy")
    model.fit(x, y, batch_size=3, epochs=1, shuffle=False, verbose=0)
    _, g1 = _ref_model_grads(x[:3], y[:3], params)
    p1 = [f64(p) - g for p, g in zip(params, g1)]
    _, g2 = _ref_model_grads(x[3:], y[3:], p1)
    p2 = [p - g for p, g in zip(p1, g2)]
    for got, want, name in zip(model.get_weights(), p2, NAMES):
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=2e-5, err_msg=name)
