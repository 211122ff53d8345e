"""BatchNormalization, LayerNormalization, global pooling and the noise layers.

* the C kernels (``_C.batchnorm_*``, ``_C.layernorm_*``, ``_C.global_pool_*``) against float64
  NumPy references, and their gradients against the references' analytic gradients and
  central finite differences;
* the layers: Keras 3's numbers (tests/keras_refs/norm_activations_keras3.json, written by
  make_norm_activations.py with Keras 3.15.1), training vs inference vs frozen, moving
  statistics over several batches, weights in Keras' order, ``fold_into`` exactness,
  config round trips and argument errors;
* results that do not depend on the thread count.
"""
import json
import math
import os

import numpy as np
import pytest

import pycnn
from pycnn import _C, layers
from pycnn.layers.context import Context

from reference import central_difference

HERE = os.path.dirname(os.path.abspath(__file__))
KERAS = json.load(open(os.path.join(HERE, "keras_refs", "norm_activations_keras3.json")))


def f32(a):
    return np.ascontiguousarray(a, dtype=np.float32)


def ramp(shape, k=1.0, off=0.0):
    """The deterministic input the Keras reference script uses."""
    n = int(np.prod(shape))
    return f32((np.sin(np.arange(n, dtype=np.float64) * 0.7 + 0.3) * 2.0 * k + off)
               .reshape(shape))


def close(actual, expected, tol=1e-5, what=""):
    actual, expected = np.asarray(actual, np.float64), np.asarray(expected, np.float64)
    assert actual.shape == expected.shape, f"{what}: shape {actual.shape} != {expected.shape}"
    scale = max(1.0, float(np.abs(expected).max()) if expected.size else 1.0)
    err = float(np.abs(actual - expected).max()) if expected.size else 0.0
    assert err <= tol * scale, f"{what}: max abs error {err:.3g} > {tol * scale:.3g}"


def fd_check(loss, arrays, grads, names, n_coords=6, h=1e-6, rtol=2e-3, atol=2e-4, seed=0):
    """Central differences of the float64 scalar ``loss(*arrays)`` at a few coordinates of
    each array against pycnn's gradients."""
    r = np.random.default_rng(seed)
    arrays = [np.array(a, dtype=np.float64) for a in arrays]
    for a, g, name in zip(arrays, grads, names):
        if g is None:
            continue
        g = np.asarray(g, np.float64)
        assert g.shape == a.shape, f"{name}: gradient shape {g.shape} != {a.shape}"
        scale = max(1.0, float(np.abs(g).max()))
        flat = a.reshape(-1)
        for k in r.choice(flat.size, size=min(n_coords, flat.size), replace=False):
            fd = central_difference(lambda: loss(*arrays), flat, k, h)
            got = g.reshape(-1)[k]
            assert abs(got - fd) <= rtol * abs(fd) + atol * scale, \
                f"d loss / d {name}[{k}]: backward {got!r}, finite difference {fd!r}"


# ---------------------------------------------------------------------------------------------
# float64 references
# ---------------------------------------------------------------------------------------------

def ref_bn(x, axis, gamma, beta, eps, mean=None, var=None):
    """Batch normalization in float64; batch statistics when mean/var are None."""
    x = np.asarray(x, np.float64)
    ax = axis % x.ndim
    red = tuple(a for a in range(x.ndim) if a != ax)
    shape = [1] * x.ndim
    shape[ax] = x.shape[ax]
    if mean is None:
        mean, var = x.mean(axis=red), x.var(axis=red)
    m, v = np.reshape(mean, shape), np.reshape(var, shape)
    g = np.ones(shape) if gamma is None else np.reshape(gamma, shape)
    b = np.zeros(shape) if beta is None else np.reshape(beta, shape)
    return (x - m) / np.sqrt(v + eps) * g + b, mean, var


def ref_ln(x, axes, gamma, beta, eps, rms=False):
    x = np.asarray(x, np.float64)
    axes = tuple(sorted(a % x.ndim for a in axes))
    mean = x.mean(axis=axes, keepdims=True)
    var = x.var(axis=axes, keepdims=True)
    shape = [x.shape[a] if a in axes else 1 for a in range(x.ndim)]
    g = 1.0 if gamma is None else np.reshape(gamma, shape)
    if rms:
        return x / np.sqrt(var + eps) * g
    b = 0.0 if beta is None else np.reshape(beta, shape)
    return (x - mean) / np.sqrt(var + eps) * g + b


# ---------------------------------------------------------------------------------------------
# Batch normalization: kernels
# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("view", [(64, 5, 1), (3, 4, 7), (1, 6, 40), (2000, 3, 1),
                                  (5, 1, 1)])
def test_batchnorm_kernel_statistics_and_output_match_float64(view):
    r = np.random.default_rng(1)
    x = f32(r.standard_normal(view) * 2 + 3)
    c = view[1]
    gamma, beta = f32(r.random(c) + 0.5), f32(r.standard_normal(c))
    mean, var, y = np.empty(c, np.float32), np.empty(c, np.float32), np.empty_like(x)
    _C.batchnorm_forward(x, mean, var, gamma, beta, y, 1e-3, True)
    want, m, v = ref_bn(x, 1, gamma, beta, 1e-3)
    close(mean, m, 1e-6, "mean")
    close(var, v, 1e-6, "var")
    close(y, want, 1e-5, "y")


def test_batchnorm_kernel_inference_uses_the_given_statistics():
    r = np.random.default_rng(2)
    x = f32(r.standard_normal((10, 4, 3)))
    mean, var = f32(r.standard_normal(4)), f32(r.random(4) + 0.2)
    before = (mean.copy(), var.copy())
    y = np.empty_like(x)
    _C.batchnorm_forward(x, mean, var, None, None, y, 0.01, False)
    close(y, ref_bn(x, 1, None, None, 0.01, mean, var)[0], 1e-5)
    assert np.array_equal(mean, before[0]) and np.array_equal(var, before[1])


def test_batchnorm_kernel_variance_survives_a_large_mean():
    """Sums are shifted by a sample of each channel: no cancellation for mean >> std."""
    r = np.random.default_rng(3)
    x = f32(1000.0 + r.standard_normal((4096, 2, 1)) * 0.01)
    mean, var, y = np.empty(2, np.float32), np.empty(2, np.float32), np.empty_like(x)
    _C.batchnorm_forward(x, mean, var, None, None, y, 0.0, True)
    v = np.asarray(x, np.float64).var(axis=(0, 2))
    np.testing.assert_allclose(var, v, rtol=1e-4)


@pytest.mark.parametrize("training", [True, False])
@pytest.mark.parametrize("view", [(6, 3, 1), (3, 2, 5)])
def test_batchnorm_kernel_gradients_match_finite_differences(training, view):
    r = np.random.default_rng(4)
    x = f32(r.standard_normal(view) * 1.5 + 0.5)
    c = view[1]
    gamma, beta = f32(r.random(c) + 0.5), f32(r.standard_normal(c))
    R = r.standard_normal(view)
    mm, mv = f32(r.standard_normal(c) * 0.1), f32(r.random(c) + 0.5)
    mean, var, y = np.empty(c, np.float32), np.empty(c, np.float32), np.empty_like(x)
    if training:
        _C.batchnorm_forward(x, mean, var, gamma, beta, y, 1e-3, True)
    else:
        mean[...], var[...] = mm, mv
    dx, dg, db = np.empty_like(x), np.empty(c, np.float32), np.empty(c, np.float32)
    _C.batchnorm_backward(x, mean, var, gamma, f32(R), dx, dg, db, 1e-3, training)

    def loss(x_, g_, b_):
        if training:
            return float((ref_bn(x_, 1, g_, b_, 1e-3)[0] * R).sum())
        return float((ref_bn(x_, 1, g_, b_, 1e-3, mm, mv)[0] * R).sum())
    fd_check(loss, [x, gamma, beta], [dx, dg, db], ["x", "gamma", "beta"])


def test_batchnorm_kernel_optional_outputs_and_argument_checks():
    x = f32(np.ones((2, 3, 1)))
    mean, var = np.zeros(3, np.float32), np.ones(3, np.float32)
    dy = f32(np.ones((2, 3, 1)))
    dg = np.empty(3, np.float32)
    _C.batchnorm_backward(x, mean, var, None, dy, None, dg, None, 1e-3, True)
    close(dg, np.full(3, 2 / math.sqrt(1.001)))       # sum dy (x - mean) / sqrt(var + eps)
    with pytest.raises(ValueError, match="'gamma'"):
        _C.batchnorm_forward(x, mean, var, np.ones(4, np.float32), None, np.empty_like(x),
                             1e-3, True)
    with pytest.raises(ValueError, match="epsilon"):
        _C.batchnorm_forward(x, mean, var, None, None, np.empty_like(x), -1.0, True)
    with pytest.raises(ValueError, match="share memory"):
        _C.batchnorm_forward(x, mean, var, None, None, x, 1e-3, True)
    with pytest.raises(TypeError, match="float32"):
        _C.batchnorm_forward(x.astype(np.float64), mean, var, None, None,
                             np.empty_like(x), 1e-3, True)


def test_batchnorm_results_do_not_depend_on_the_thread_count(keep_num_threads):
    r = np.random.default_rng(5)
    x = f32(r.standard_normal((300, 7, 7, 16)))
    dy = f32(r.standard_normal(x.shape))
    outs = []
    for n in (1, 3):
        pycnn.set_num_threads(n)
        layer = layers.BatchNormalization()
        layer.build((None,) + x.shape[1:])
        ctx = Context()
        y = np.array(layer.forward(ctx, x, training=True))
        dx = np.array(layer.backward(ctx, dy))
        outs.append((y, dx, layer.gamma.grad.copy(), layer.moving_variance.numpy()))
    for a, b in zip(*outs):
        assert np.array_equal(a, b)


# ---------------------------------------------------------------------------------------------
# Batch normalization: the layer
# ---------------------------------------------------------------------------------------------

def keras_bn():
    bn = layers.BatchNormalization(momentum=0.9)
    bn.build((None, 3, 3, 2))
    bn.set_weights([np.array([1.5, 0.5]), np.array([0.1, -0.2]), np.zeros(2), np.ones(2)])
    return bn


def test_batchnorm_training_and_moving_statistics_match_keras_over_three_batches():
    bn, x = keras_bn(), ramp((4, 3, 3, 2), off=0.5)
    for i in range(3):
        close(bn(x * (1 + i) + i, training=True), KERAS["bn_train_y"][i], 1e-5, f"batch {i}")
    for got, want, name in zip(bn.get_weights(), KERAS["bn_moving"],
                               ["gamma", "beta", "moving_mean", "moving_variance"]):
        close(got, want, 1e-6, name)
    close(bn(x), KERAS["bn_infer_y"], 1e-5, "inference")
    close(bn(x, training=False), KERAS["bn_infer_y"], 1e-5, "inference")


def test_batchnorm_moving_update_is_keras_formula():
    bn = layers.BatchNormalization(momentum=0.8)
    x = ramp((8, 3), off=2.0)
    bn(x, training=True)
    x64 = np.asarray(x, np.float64)
    close(bn.moving_mean.numpy(), 0.2 * x64.mean(0), 1e-6)
    close(bn.moving_variance.numpy(), 0.8 + 0.2 * x64.var(0), 1e-6)   # biased variance


def test_frozen_batchnorm_runs_in_inference_mode_and_keeps_its_statistics():
    bn, x = keras_bn(), ramp((4, 3, 3, 2), off=0.5)
    for i in range(3):
        bn(x * (1 + i) + i, training=True)
    bn.trainable = False
    before = [w.copy() for w in bn.get_weights()]
    close(bn(x, training=True), KERAS["bn_frozen_y"], 1e-5)
    for a, b in zip(before, bn.get_weights()):
        assert np.array_equal(a, b)
    assert bn.trainable_weights == [] and len(bn.non_trainable_weights) == 4
    # its gradient treats the moving statistics as constants
    ctx = Context()
    bn.forward(ctx, x, training=True)
    R = np.random.default_rng(0).standard_normal(x.shape)
    dx = bn.backward(ctx, f32(R))
    g, b, mm, mv = [w.astype(np.float64) for w in bn.get_weights()]
    fd_check(lambda x_: float((ref_bn(x_, -1, g, b, 1e-3, mm, mv)[0] * R).sum()), [x], [dx],
             ["x"])


def test_batchnorm_on_axis_1_matches_keras():
    bn = layers.BatchNormalization(axis=1, epsilon=0.01)
    close(bn(ramp((4, 3, 5)), training=True), KERAS["bn_axis1_y"], 1e-5)
    for got, want in zip(bn.get_weights(), KERAS["bn_axis1_moving"]):
        close(got, want, 1e-6)


@pytest.mark.parametrize("shape,axis", [((5, 4, 4, 3), -1), ((6, 4), -1), ((3, 4, 5), 1),
                                        ((2, 3, 4, 5), 2)])
@pytest.mark.parametrize("training", [True, False])
def test_batchnorm_layer_gradients_match_finite_differences(shape, axis, training):
    r = np.random.default_rng(6)
    x = f32(r.standard_normal(shape) + 0.3)
    bn = layers.BatchNormalization(axis=axis, gamma_initializer="random_normal",
                                   moving_variance_initializer=pycnn.initializers.Constant(2.0))
    bn.build((None,) + shape[1:])
    bn.beta.assign(r.standard_normal(bn.beta.shape))
    mm, mv = bn.moving_mean.numpy().astype(np.float64), bn.moving_variance.numpy().astype(
        np.float64)
    ctx = Context()
    y = bn.forward(ctx, x, training=training)
    R = r.standard_normal(shape)
    for v in bn.weights:
        v.grad[...] = np.nan
    dx = bn.backward(ctx, f32(R))
    g, b = bn.gamma.numpy(), bn.beta.numpy()

    def out(x_, g_, b_):
        if training:
            return ref_bn(x_, axis, g_, b_, 1e-3)[0]
        return ref_bn(x_, axis, g_, b_, 1e-3, mm, mv)[0]
    close(y, out(x, g, b), 1e-5, "forward")
    fd_check(lambda *a: float((out(*a) * R).sum()), [x, g, b],
             [dx, bn.gamma.grad, bn.beta.grad], ["x", "gamma", "beta"])


def test_batchnorm_backward_without_dx_still_gives_weight_gradients():
    x = ramp((6, 4))
    bn = layers.BatchNormalization()
    bn.build((None, 4))
    ctx = Context()
    bn.forward(ctx, x, training=True)
    assert bn.backward(ctx, f32(np.ones_like(x)), need_dx=False) is None
    close(bn.beta.grad, np.full(4, 6.0))
    close(bn.gamma.grad, np.zeros(4), 1e-5)


def test_batchnorm_weights_in_keras_order_with_trainability():
    bn = layers.BatchNormalization()
    bn(np.zeros((2, 5), np.float32))
    assert [v.name for v in bn.weights] == [f"{bn.name}/{n}" for n in
                                            ("gamma", "beta", "moving_mean", "moving_variance")]
    assert [v.trainable for v in bn.weights] == [True, True, False, False]
    assert bn.count_params() == 20
    np.testing.assert_array_equal(bn.get_weights()[0], np.ones(5))
    np.testing.assert_array_equal(bn.get_weights()[3], np.ones(5))
    only = layers.BatchNormalization(center=False, scale=False)
    only(np.zeros((2, 5), np.float32))
    assert [v.name.split("/")[-1] for v in only.weights] == ["moving_mean", "moving_variance"]
    y = only(ramp((7, 5)), training=True)
    close(y, ref_bn(ramp((7, 5)), -1, None, None, 1e-3)[0], 1e-5)


def test_batchnorm_regularizers_and_constraints_reach_the_variables():
    bn = layers.BatchNormalization(gamma_regularizer="l2", beta_constraint="non_neg")
    bn.build((None, 3))
    assert isinstance(bn.gamma.regularizer, pycnn.regularizers.L2)
    assert isinstance(bn.beta.constraint, pycnn.constraints.NonNeg)
    assert bn.moving_mean.regularizer is None


def test_batchnorm_config_round_trip_in_keras_form():
    bn = layers.BatchNormalization(axis=1, momentum=0.9, epsilon=1e-2, center=False,
                                   gamma_regularizer=pycnn.regularizers.L2(0.1),
                                   name="bn")
    cfg = bn.get_config()
    assert cfg["axis"] == 1 and cfg["momentum"] == 0.9 and cfg["epsilon"] == 0.01
    assert cfg["gamma_initializer"]["class_name"] == "Ones"
    assert cfg["gamma_regularizer"] == {"module": "keras.regularizers", "class_name": "L2",
                                        "config": {"l2": 0.1}, "registered_name": None}
    assert set(KERAS_BN_KEYS) <= set(cfg)
    json.dumps(cfg)
    clone = layers.BatchNormalization.from_config(cfg)
    assert clone.get_config() == cfg


KERAS_BN_KEYS = ["axis", "momentum", "epsilon", "center", "scale", "beta_initializer",
                 "gamma_initializer", "moving_mean_initializer", "moving_variance_initializer",
                 "beta_regularizer", "gamma_regularizer", "beta_constraint",
                 "gamma_constraint", "synchronized", "renorm", "renorm_clipping",
                 "renorm_momentum"]


def test_batchnorm_argument_errors_name_the_argument():
    with pytest.raises(ValueError, match="out of bounds"):
        layers.BatchNormalization(axis=3)(np.zeros((2, 3), np.float32))
    with pytest.raises(ValueError, match="renorm"):
        layers.BatchNormalization(renorm=True)
    with pytest.raises(ValueError, match="epsilon"):
        layers.BatchNormalization(epsilon=-1)
    with pytest.raises(TypeError, match="axis"):
        layers.BatchNormalization(axis="last")
    bn = layers.BatchNormalization()
    bn(np.zeros((2, 3), np.float32))
    with pytest.raises(ValueError, match="expected axis -1 of input shape to have value 3"):
        bn(np.zeros((2, 4), np.float32))
    assert layers.BatchNormalization(momentum=np.float32(0.5)).momentum == 0.5


@pytest.mark.parametrize("kind", ["dense", "conv"])
def test_fold_into_reproduces_conv_or_dense_followed_by_inference_batchnorm(kind):
    r = np.random.default_rng(7)
    if kind == "dense":
        prev, x = layers.Dense(6), f32(r.standard_normal((5, 4)))
    else:
        prev, x = layers.Conv2D(6, 3, padding="same"), f32(r.standard_normal((2, 5, 5, 3)))
    z = prev(x)
    prev.bias.assign(r.standard_normal(6))
    z = prev(x)
    bn = layers.BatchNormalization(epsilon=1e-3)
    bn.build((None,) + z.shape[1:])
    bn.set_weights([r.random(6) + 0.5, r.standard_normal(6), r.standard_normal(6),
                    r.random(6) + 0.1])
    want = bn(z)
    before = [w.copy() for w in bn.get_weights()]
    k, b = bn.fold_into(prev.kernel.numpy(), prev.bias.numpy())
    assert k.dtype == np.float32 and k.shape == prev.kernel.shape and b.shape == (6,)
    prev.set_weights([k, b])
    close(prev(x), want, 1e-5, "folded")
    for a, c in zip(before, bn.get_weights()):
        assert np.array_equal(a, c)
    # without a bias: as if it were zeros
    k0, b0 = bn.fold_into(np.ones((2, 6)))
    g, beta, mm, mv = [w.astype(np.float64) for w in bn.get_weights()]
    close(b0, beta - mm * g / np.sqrt(mv + 1e-3), 1e-6)
    with pytest.raises(ValueError, match="last axis"):
        bn.fold_into(np.ones((6, 2)))


# ---------------------------------------------------------------------------------------------
# Layer normalization
# ---------------------------------------------------------------------------------------------

def test_layernorm_matches_keras():
    close(layers.LayerNormalization()(ramp((4, 3, 5))), KERAS["ln_y"], 1e-5)
    close(layers.LayerNormalization(axis=[1, 2], epsilon=0.1)(ramp((4, 3, 3, 2), off=0.5)),
          KERAS["ln_axes_y"], 1e-5)
    close(layers.LayerNormalization(rms_scaling=True)(ramp((4, 3, 5))), KERAS["ln_rms_y"],
          1e-5)


@pytest.mark.parametrize("shape,axis,rms", [((6, 7), -1, False), ((3, 4, 5), [1, 2], False),
                                            ((3, 4, 5), 1, False), ((2, 3, 4, 5), [1, 3], False),
                                            ((4, 6), -1, True), ((2, 3, 4), [2, 1], True)])
def test_layernorm_forward_and_gradients(shape, axis, rms):
    r = np.random.default_rng(8)
    x = f32(r.standard_normal(shape) * 2 + 1)
    ln = layers.LayerNormalization(axis=axis, rms_scaling=rms)
    ln.build((None,) + shape[1:])
    ln.gamma.assign(r.random(ln.gamma.shape) + 0.5)
    if ln.beta is not None:
        ln.beta.assign(r.standard_normal(ln.beta.shape))
    axes = axis if isinstance(axis, list) else [axis]
    g = ln.gamma.numpy()
    b = None if ln.beta is None else ln.beta.numpy()
    ctx = Context()
    y = ln.forward(ctx, x)
    close(y, ref_ln(x, axes, g, b, 1e-3, rms), 1e-5)
    R = r.standard_normal(shape)
    dx = ln.backward(ctx, f32(R))
    if rms:
        fd_check(lambda x_, g_: float((ref_ln(x_, axes, g_, None, 1e-3, True) * R).sum()),
                 [x, g], [dx, ln.gamma.grad], ["x", "gamma"])
    else:
        fd_check(lambda x_, g_, b_: float((ref_ln(x_, axes, g_, b_, 1e-3) * R).sum()),
                 [x, g, b], [dx, ln.gamma.grad, ln.beta.grad], ["x", "gamma", "beta"])


def test_layernorm_weights_config_and_errors():
    ln = layers.LayerNormalization(axis=[-1, -2], center=False)
    ln(np.zeros((2, 3, 4), np.float32))
    assert [v.name.split("/")[-1] for v in ln.weights] == ["gamma"]
    assert ln.gamma.shape == (3, 4)
    rms = layers.LayerNormalization(rms_scaling=True)
    rms(np.zeros((2, 3), np.float32))
    assert [v.name.split("/")[-1] for v in rms.weights] == ["gamma"]
    cfg = layers.LayerNormalization(epsilon=0.01).get_config()
    assert {"axis", "epsilon", "center", "scale", "rms_scaling", "beta_initializer",
            "gamma_initializer"} <= set(cfg)
    assert layers.LayerNormalization.from_config(cfg).get_config() == cfg
    with pytest.raises(TypeError, match="axis"):
        layers.LayerNormalization(axis="x")
    with pytest.raises(ValueError, match="out of bounds"):
        layers.LayerNormalization(axis=4)(np.zeros((2, 3), np.float32))
    with pytest.raises(ValueError, match="batch axis"):
        layers.LayerNormalization(axis=0)(np.zeros((2, 3), np.float32))


# ---------------------------------------------------------------------------------------------
# Global pooling
# ---------------------------------------------------------------------------------------------

def test_global_pooling_matches_keras_and_numpy():
    x = ramp((4, 3, 3, 2), off=0.5)
    close(layers.GlobalAveragePooling2D()(x), KERAS["gap"], 1e-6)
    close(layers.GlobalMaxPooling1D(keepdims=True)(ramp((4, 3, 5))), KERAS["gmp1"], 0)
    r = np.random.default_rng(9)
    x = f32(r.standard_normal((3, 5, 4, 7)))
    close(layers.GlobalAvgPool2D()(x), np.asarray(x, np.float64).mean((1, 2)), 1e-6)
    close(layers.GlobalMaxPool2D(keepdims=True)(x), x.max((1, 2), keepdims=True), 0)
    close(layers.GlobalAvgPool1D(keepdims=True)(x[:, 0]), np.asarray(x[:, 0], np.float64)
          .mean(1, keepdims=True), 1e-6)
    assert layers.GlobalMaxPool1D()(x[:, 0]).shape == (3, 7)


def test_global_average_pooling_gradient():
    r = np.random.default_rng(10)
    x = f32(r.standard_normal((2, 3, 4, 5)))
    layer = layers.GlobalAveragePooling2D()
    ctx = Context()
    layer.forward(ctx, x)
    R = r.standard_normal((2, 5))
    dx = layer.backward(ctx, f32(R))
    fd_check(lambda x_: float((x_.mean((1, 2)) * R).sum()), [x], [dx], ["x"])


def test_global_max_pooling_gradient_goes_to_the_first_maximum():
    x = np.zeros((1, 2, 2, 2), np.float32)
    x[0, :, :, 0] = [[1, 3], [3, 2]]         # tie: (0, 1) comes first in row-major order
    x[0, :, :, 1] = [[5, 5], [5, 5]]
    layer = layers.GlobalMaxPooling2D()
    ctx = Context()
    np.testing.assert_array_equal(layer.forward(ctx, x), [[3, 5]])
    dx = layer.backward(ctx, f32([[10, 20]]))
    want = np.zeros_like(x)
    want[0, 0, 1, 0] = 10
    want[0, 0, 0, 1] = 20
    np.testing.assert_array_equal(dx, want)


def test_global_max_pooling_propagates_nan():
    x = np.ones((1, 3, 2), np.float32)
    x[0, 1, 0] = np.nan
    y = layers.GlobalMaxPooling1D().forward(Context(), x)    # (eager calls refuse NaN)
    assert np.isnan(y[0, 0]) and y[0, 1] == 1


def test_global_pooling_config_and_errors():
    cfg = layers.GlobalAveragePooling2D(keepdims=True).get_config()
    assert cfg["keepdims"] is True and cfg["data_format"] == "channels_last"
    assert layers.GlobalAveragePooling2D.from_config(cfg).keepdims
    with pytest.raises(ValueError, match="channels_last"):
        layers.GlobalMaxPooling2D(data_format="channels_first")
    with pytest.raises(ValueError, match="expected ndim=4"):
        layers.GlobalAveragePooling2D()(np.zeros((2, 3), np.float32))
    assert layers.GlobalAvgPool2D is layers.GlobalAveragePooling2D
    assert layers.GlobalMaxPool1D is layers.GlobalMaxPooling1D
    with pytest.raises(ValueError, match="argmax"):
        _C.global_pool_backward(np.ones((1, 2), np.float32), np.full((1, 2), 5, np.int32),
                                np.empty((1, 3, 2), np.float32))


# ---------------------------------------------------------------------------------------------
# Noise layers
# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("layer", [lambda: layers.SpatialDropout2D(0.5),
                                   lambda: layers.GaussianNoise(0.5),
                                   lambda: layers.GaussianDropout(0.5)])
def test_noise_layers_are_the_identity_at_inference(layer):
    x = ramp((2, 3, 3, 4))
    layer = layer()
    np.testing.assert_array_equal(layer(x), x)
    ctx = Context()
    layer.forward(ctx, x, training=False)
    np.testing.assert_array_equal(layer.backward(ctx, x), x)


def test_spatial_dropout_drops_whole_channels_and_scales_the_rest():
    x = f32(np.ones((64, 3, 3, 8)))
    layer = layers.SpatialDropout2D(0.25, seed=3)
    ctx = Context()
    y = layer.forward(ctx, x, training=True)
    per_channel = y.reshape(64, 9, 8)
    assert np.all(per_channel.min(1) == per_channel.max(1))       # constant per map
    assert set(np.unique(y)) == {0.0, np.float32(1 / 0.75)}
    assert 0.15 < float((per_channel[:, 0] == 0).mean()) < 0.35
    dy = f32(np.full(x.shape, 2.0))
    np.testing.assert_array_equal(layer.backward(ctx, dy), 2 * y)


def test_gaussian_noise_and_dropout_statistics_and_gradients():
    x = f32(np.full((200, 50), 2.0))
    noise = layers.GaussianNoise(0.5, seed=1)
    ctx = Context()
    y = noise.forward(ctx, x, training=True)
    assert abs(float((y - 2).mean())) < 0.02 and abs(float((y - 2).std()) - 0.5) < 0.02
    np.testing.assert_array_equal(noise.backward(ctx, x), x)
    drop = layers.GaussianDropout(0.2, seed=1)
    ctx = Context()
    y = drop.forward(ctx, x, training=True)
    m = y / 2
    assert abs(float(m.mean()) - 1) < 0.02 and abs(float(m.std()) - math.sqrt(0.25)) < 0.02
    dy = f32(np.ones_like(x))
    np.testing.assert_allclose(drop.backward(ctx, dy), m, rtol=1e-6)


def test_noise_layers_repeat_with_a_seed_and_check_arguments():
    x = ramp((2, 3, 3, 4))
    a = layers.GaussianNoise(0.3, seed=5)(x, training=True)
    b = layers.GaussianNoise(0.3, seed=5)(x, training=True)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, x)
    for make, msg in [(lambda: layers.SpatialDropout2D(1.5), "rate"),
                      (lambda: layers.GaussianDropout(-0.1), "rate"),
                      (lambda: layers.GaussianNoise(-1), "stddev"),
                      (lambda: layers.GaussianNoise(0.1, seed=-2), "seed")]:
        with pytest.raises(ValueError, match=msg):
            make()
    cfg = layers.SpatialDropout2D(0.2, seed=4).get_config()
    assert cfg["rate"] == 0.2 and cfg["seed"] == 4
    assert layers.GaussianNoise.from_config(layers.GaussianNoise(0.1).get_config()).stddev == 0.1
    with pytest.raises(ValueError, match="expected ndim=4"):
        layers.SpatialDropout2D(0.1)(np.zeros((2, 3), np.float32))


# ---------------------------------------------------------------------------------------------
# End to end: models that train with fit
# ---------------------------------------------------------------------------------------------

def test_a_convnet_with_the_new_layers_trains_and_its_loss_goes_down(seed):
    r = np.random.default_rng(0)
    x = f32(r.standard_normal((256, 8, 8, 2)))
    y = (x[..., 0].mean((1, 2)) > 0).astype(np.int64)
    model = pycnn.Sequential([
        pycnn.Input((8, 8, 2)),
        layers.Conv2D(8, 3, padding="same", kernel_regularizer="l2"),
        layers.BatchNormalization(), layers.Activation("gelu"),
        layers.SpatialDropout2D(0.1, seed=1), layers.GlobalAveragePooling2D(),
        layers.LayerNormalization(),
        layers.Dense(8, activation="swish", kernel_constraint="max_norm"),
        layers.LeakyReLU(), layers.GaussianNoise(0.05, seed=2), layers.PReLU(),
        layers.Dense(2, activation="softmax")])
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    hist = model.fit(x, y, epochs=4, batch_size=32, verbose=0).history["loss"]
    assert hist[-1] < hist[0] - 0.05, hist
    bn = model.layers[1]
    assert not np.array_equal(bn.moving_variance.numpy(), np.ones(8))
    kernel = model.layers[6].kernel.numpy()
    assert np.all(np.linalg.norm(kernel, axis=0) <= 2.0 + 1e-5)       # max_norm(2)


def test_fit_updates_moving_statistics_with_the_batch_statistics():
    r = np.random.default_rng(1)
    x = f32(r.standard_normal((64, 5)) * 2 + 1)
    dense = layers.Dense(3, kernel_initializer="ones", bias_initializer="zeros")
    bn = layers.BatchNormalization(momentum=0.0)
    model = pycnn.Sequential([pycnn.Input((5,)), dense, bn])
    model.compile("sgd", "mse")
    z = np.asarray(x, np.float64) @ np.ones((5, 3))          # the output before the update
    model.fit(x, f32(np.zeros((64, 3))), epochs=1, batch_size=64, shuffle=False, verbose=0)
    close(bn.moving_mean.numpy(), z.mean(0), 1e-5)
    close(bn.moving_variance.numpy(), z.var(0), 1e-5)


def test_a_frozen_batchnorm_keeps_its_weights_and_statistics_during_fit():
    r = np.random.default_rng(2)
    x = f32(r.standard_normal((64, 5)))
    bn = layers.BatchNormalization()
    model = pycnn.Sequential([pycnn.Input((5,)), layers.Dense(3), bn, layers.Dense(1)])
    model.compile("adam", "mse")
    bn.trainable = False
    model.compile("adam", "mse")
    before = [w.copy() for w in bn.get_weights()]
    model.fit(x, f32(r.standard_normal((64, 1))), epochs=2, batch_size=16, verbose=0)
    for a, b in zip(before, bn.get_weights()):
        assert np.array_equal(a, b)
