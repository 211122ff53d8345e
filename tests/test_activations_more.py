"""Every activation by Keras name: the C kernels (forward, and backward from the output or the
input) against float64 formulas and finite differences, Keras 3's numbers
(tests/keras_refs/norm_activations_keras3.json: values and jax.grad derivatives), the
``Activation`` layer and ``Dense(activation=...)`` end to end through backward, the activation
layers LeakyReLU, ELU and PReLU, and ``activations.get/serialize/deserialize``."""
import json
import math
import os

import numpy as np
import pytest

import pycnn
from pycnn import _C, activations, layers
from pycnn.layers.context import Context

from reference import central_difference

HERE = os.path.dirname(os.path.abspath(__file__))
KERAS = json.load(open(os.path.join(HERE, "keras_refs", "norm_activations_keras3.json")))

SELU_A, SELU_S = 1.6732632423543772, 1.0507009873554805


def f32(a):
    return np.ascontiguousarray(a, dtype=np.float32)


def _erf(x):
    return np.vectorize(math.erf)(x)


def _softplus(x):
    return np.maximum(x, 0) + np.log1p(np.exp(-np.abs(x)))


def _sigmoid(x):
    return 1 / (1 + np.exp(-x))


#: float64 formulas, from Keras 3's definitions
REF = {
    "linear": lambda x: x,
    "relu": lambda x: np.maximum(x, 0),
    "sigmoid": _sigmoid,
    "tanh": np.tanh,
    "elu": lambda x: np.where(x > 0, x, np.expm1(np.minimum(x, 0))),
    "selu": lambda x: SELU_S * np.where(x > 0, x, SELU_A * np.expm1(np.minimum(x, 0))),
    "softplus": _softplus,
    "softsign": lambda x: x / (1 + np.abs(x)),
    "silu": lambda x: x * _sigmoid(x),
    "hard_sigmoid": lambda x: np.clip(x + 3, 0, 6) / 6,
    "hard_silu": lambda x: x * np.clip(x + 3, 0, 6) / 6,
    "relu6": lambda x: np.clip(x, 0, 6),
    "leaky_relu": lambda x: np.where(x > 0, x, 0.2 * x),
    "exponential": np.exp,
    "gelu": lambda x: 0.5 * x * (1 + _erf(x / math.sqrt(2))),
    "mish": lambda x: x * np.tanh(_softplus(x)),
    "log_sigmoid": lambda x: -_softplus(-x),
    "hard_tanh": lambda x: np.clip(x, -1, 1),
}
ELEMENTWISE = [k for k in REF if k != "linear"]
NEEDS_X = {"silu", "hard_silu", "gelu", "mish"}


def fd_check(loss, arrays, grads, n_coords=8, h=1e-6, rtol=2e-3, atol=2e-4):
    """Central differences of the float64 ``loss(*arrays)`` at a few coordinates of each
    array against pycnn's float32 gradients."""
    arrays = [np.array(a, dtype=np.float64) for a in arrays]
    for i, (a, g) in enumerate(zip(arrays, grads)):
        g = np.asarray(g, np.float64)
        assert g.shape == a.shape
        flat = a.reshape(-1)
        for k in np.linspace(0, flat.size - 1, min(n_coords, flat.size)).astype(int):
            fd = central_difference(lambda: loss(*arrays), flat, k, h)
            assert abs(g.reshape(-1)[k] - fd) <= rtol * abs(fd) + atol, \
                f"argument {i}[{k}]: backward {g.reshape(-1)[k]!r}, finite difference {fd!r}"


def sample(r, n=4000, scale=4.0):
    """Values across the interesting range, away from the kinks (0, +-1, +-3, 6)."""
    x = r.uniform(-scale * 2, scale * 2, n)
    kinks = np.array([0.0, 1.0, -1.0, 3.0, -3.0, 6.0])
    near = np.abs(x[:, None] - kinks[None, :]).min(1) < 1e-3
    x[near] += 0.01
    return x


def rel_close(actual, expected, rtol, atol, what):
    actual, expected = np.asarray(actual, np.float64), np.asarray(expected, np.float64)
    err = np.abs(actual - expected)
    bad = err > rtol * np.abs(expected) + atol
    assert not bad.any(), (f"{what}: {int(bad.sum())} values out of tolerance, worst at "
                           f"x index {int(np.argmax(err))}: {actual.reshape(-1)[np.argmax(err)]} "
                           f"vs {expected.reshape(-1)[np.argmax(err)]}")


@pytest.mark.parametrize("name", ELEMENTWISE)
def test_activation_kernel_forward_matches_float64(name):
    r = np.random.default_rng(0)
    x = f32(sample(r))
    y = np.empty_like(x)
    _C.activation_forward(name, x, y)
    rel_close(y, REF[name](x.astype(np.float64)), 2e-6, 1e-6, name)
    # in place gives the same
    z = x.copy()
    _C.activation_forward(name, z, z)
    np.testing.assert_array_equal(z, y)


@pytest.mark.parametrize("name", ELEMENTWISE)
def test_activation_kernel_backward_matches_finite_differences_of_float64(name):
    r = np.random.default_rng(1)
    x = f32(sample(r, n=2000, scale=3.0))
    x64 = x.astype(np.float64)
    y = np.empty_like(x)
    _C.activation_forward(name, x, y)
    dy = f32(r.standard_normal(x.shape))
    dx = np.empty_like(x)
    _C.activation_backward(name, y, dy, dx, x=x if name in NEEDS_X else None)
    h = 1e-6
    deriv = (REF[name](x64 + h) - REF[name](x64 - h)) / (2 * h)
    rel_close(dx, dy * deriv, 1e-4, 1e-5, name)
    # dx may be dy itself (the in-place loops may round differently: sigmoid, tanh)
    g = dy.copy()
    _C.activation_backward(name, y, g, g, x=x if name in NEEDS_X else None)
    np.testing.assert_allclose(g, dx, rtol=1e-6, atol=1e-12)


@pytest.mark.parametrize("name", sorted(KERAS["acts"]))
def test_activation_values_match_keras(name):
    z = f32(np.linspace(-5, 5, 41))
    if name == "gelu_approx":
        y = activations.gelu(z, approximate=True)
    elif name == "elu_0.5":
        y = activations.elu(z, alpha=0.5)
    else:
        y = activations.get(name)(z)
    rel_close(y, KERAS["acts"][name], 2e-6, 1e-6, name)


@pytest.mark.parametrize("name", sorted(KERAS["act_grads"]))
def test_activation_gradients_match_keras_autodiff(name):
    z = f32(np.linspace(-5, 5, 41) + 0.0625)
    y = activations.get(name)(z)
    dx = np.empty_like(z)
    _C.activation_backward(name, y, f32(np.ones_like(z)), dx,
                           x=z if activations.needs_input(name) else None)
    rel_close(dx, KERAS["act_grads"][name], 1e-5, 1e-6, name)


def test_gelu_tanh_gradient_and_elu_alpha_gradient():
    r = np.random.default_rng(2)
    x = f32(sample(r, 500, 3.0))
    x64 = x.astype(np.float64)
    h = 1e-6

    def gelu_tanh(v):
        return 0.5 * v * (1 + np.tanh(math.sqrt(2 / math.pi) * (v + 0.044715 * v ** 3)))
    y = activations.gelu(x, approximate=True)
    dx = np.empty_like(x)
    _C.activation_backward("gelu_tanh", y, f32(np.ones_like(x)), dx, x=x)
    rel_close(dx, (gelu_tanh(x64 + h) - gelu_tanh(x64 - h)) / (2 * h), 1e-4, 1e-5, "gelu_tanh")
    for alpha in (0.5, -0.5):
        y = activations.elu(x, alpha=alpha)
        ref = np.where(x64 > 0, 1.0, alpha * np.exp(x64))
        for xin in ((x, None) if alpha > 0 else (x,)):
            dx = np.empty_like(x)
            _C.activation_backward("elu", y, f32(np.ones_like(x)), dx, x=xin, alpha=alpha)
            rel_close(dx, ref, 1e-5, 1e-6, f"elu alpha={alpha}")


def test_kernels_refuse_a_missing_input_and_a_misplaced_alpha():
    x = f32(np.ones(4))
    y, dx = np.empty_like(x), np.empty_like(x)
    for name in ("gelu", "silu", "swish", "mish", "hard_silu"):
        with pytest.raises(ValueError, match="'x' is required"):
            _C.activation_backward(name, y, x, dx)
    with pytest.raises(ValueError, match="'x' is required"):
        _C.activation_backward("elu", y, x, dx, alpha=-1.0)
    with pytest.raises(ValueError, match="alpha"):
        _C.activation_forward("tanh", x, y, alpha=0.3)
    with pytest.raises(ValueError, match="alpha"):
        _C.activation_forward("elu", x, y, alpha=float("nan"))
    with pytest.raises(ValueError, match="unknown activation 'gelu2'"):
        _C.activation_forward("gelu2", x, y)
    with pytest.raises(ValueError, match="share memory"):
        _C.activation_backward("gelu", y, x, dx, x=dx)


def test_results_do_not_depend_on_the_thread_count(keep_num_threads):
    r = np.random.default_rng(3)
    x = f32(r.standard_normal(100_000))
    outs = []
    for n in (1, 3):
        pycnn.set_num_threads(n)
        outs.append([activations.get(k)(x) for k in ("gelu", "mish", "selu")])
    for a, b in zip(*outs):
        np.testing.assert_array_equal(a, b)


# ---------------------------------------------------------------------------------------------
# Layers using the activations
# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ELEMENTWISE + ["swish", "hard_swish"])
def test_activation_layer_forward_and_backward(name):
    r = np.random.default_rng(4)
    x = f32(sample(r, 60, 2.0).reshape(3, 4, 5))
    layer = layers.Activation(name)
    canon = activations.get(name)
    ctx = Context()
    y = layer.forward(ctx, x)
    rel_close(y, REF[canon](x.astype(np.float64)), 2e-6, 1e-6, name)
    dy = f32(r.standard_normal(x.shape))
    dx = layer.backward(ctx, dy)
    h = 1e-6
    x64 = x.astype(np.float64)
    deriv = (REF[canon](x64 + h) - REF[canon](x64 - h)) / (2 * h)
    rel_close(dx, dy * deriv, 1e-4, 1e-5, name)
    assert layer.get_config()["activation"] == canon


@pytest.mark.parametrize("name", ["gelu", "elu", "mish", "softplus", "hard_sigmoid"])
def test_dense_with_activation_gradients_match_finite_differences(name):
    r = np.random.default_rng(5)
    x = f32(r.standard_normal((4, 6)))
    dense = layers.Dense(5, activation=name)
    dense(x)
    w, b = dense.kernel.numpy().astype(np.float64), r.standard_normal(5)
    dense.bias.assign(b)
    ctx = Context()
    y = dense.forward(ctx, x)
    R = r.standard_normal(y.shape)
    dx = dense.backward(ctx, f32(R))

    def loss(x_, w_, b_):
        return float((REF[name](x_ @ w_ + b_) * R).sum())
    fd_check(loss, [x, w, b], [dx, dense.kernel.grad, dense.bias.grad])


def test_conv2d_with_silu_backward_reads_the_pre_activation():
    r = np.random.default_rng(6)
    x = f32(r.standard_normal((2, 5, 5, 2)))
    conv = layers.Conv2D(3, 3, activation="swish")
    conv(x)
    lin = layers.Conv2D(3, 3)
    lin(x)
    lin.set_weights(conv.get_weights())
    ctx, ctx_lin = Context(), Context()
    y = conv.forward(ctx, x)
    z = lin.forward(ctx_lin, x)
    z64 = np.asarray(z, np.float64)
    rel_close(y, REF["silu"](z64), 2e-6, 1e-6, "forward")
    dy = f32(r.standard_normal(y.shape))
    dx = conv.backward(ctx, dy)
    s = _sigmoid(z64)
    dz = f32(dy * s * (1 + z64 * (1 - s)))
    dx_lin = lin.backward(ctx_lin, dz)
    rel_close(dx, dx_lin, 1e-4, 1e-5, "dx")
    rel_close(conv.kernel.grad, lin.kernel.grad, 1e-4, 1e-5, "dw")


def test_leaky_relu_and_elu_layers_match_keras():
    z = f32(np.linspace(-5, 5, 41))
    np.testing.assert_allclose(layers.LeakyReLU()(z), KERAS["leaky_layer"], rtol=1e-6)
    np.testing.assert_allclose(layers.ELU(alpha=0.7)(z), KERAS["elu_layer"], rtol=1e-6,
                               atol=1e-7)
    assert layers.LeakyReLU().negative_slope == 0.3
    assert layers.LeakyReLU(alpha=0.1).negative_slope == 0.1          # tf.keras 2's name
    assert layers.LeakyReLU(negative_slope=np.float32(0.5)).get_config()["negative_slope"] == 0.5
    assert layers.ELU(alpha=0.2).get_config()["alpha"] == pytest.approx(0.2)
    with pytest.raises(ValueError, match="negative_slope"):
        layers.LeakyReLU(-1)
    with pytest.raises(ValueError, match="alpha"):
        layers.ELU(alpha="x")


@pytest.mark.parametrize("make,ref", [
    (lambda: layers.LeakyReLU(0.25), lambda x: np.where(x > 0, 1.0, 0.25)),
    (lambda: layers.ELU(0.7), lambda x: np.where(x > 0, 1.0, 0.7 * np.exp(x))),
    (lambda: layers.ELU(-0.5), lambda x: np.where(x > 0, 1.0, -0.5 * np.exp(x)))])
def test_leaky_relu_and_elu_layer_gradients(make, ref):
    r = np.random.default_rng(7)
    x = f32(sample(r, 40, 2.0).reshape(8, 5))
    layer = make()
    ctx = Context()
    layer.forward(ctx, x)
    dy = f32(r.standard_normal(x.shape))
    rel_close(layer.backward(ctx, dy), dy * ref(x.astype(np.float64)), 1e-5, 1e-6, "dx")


def test_prelu_matches_keras_and_its_gradients_match_finite_differences():
    x = np.sin(np.arange(72) * 0.7 + 0.3).reshape(4, 3, 3, 2) * 2 + 0.5
    x = f32(x)
    p = layers.PReLU(alpha_initializer=pycnn.initializers.Constant(0.25), shared_axes=[1, 2])
    np.testing.assert_allclose(p(x), KERAS["prelu"], rtol=1e-6)
    assert list(p.alpha.shape) == KERAS["prelu_alpha_shape"]
    r = np.random.default_rng(8)
    p.alpha.assign(r.standard_normal(p.alpha.shape))
    ctx = Context()
    p.forward(ctx, x)
    R = r.standard_normal(x.shape)
    dx = p.backward(ctx, f32(R))
    a = p.alpha.numpy().astype(np.float64)

    def loss(x_, a_):
        return float((np.where(x_ > 0, x_, a_ * x_) * R).sum())
    fd_check(loss, [x, a], [dx, p.alpha.grad])


def test_prelu_weights_config_and_errors():
    p = layers.PReLU()
    p(np.zeros((2, 3, 4), np.float32))
    assert p.alpha.shape == (3, 4) and np.all(p.alpha.numpy() == 0)
    cfg = p.get_config()
    assert cfg["alpha_initializer"]["class_name"] == "Zeros" and cfg["shared_axes"] is None
    assert layers.PReLU.from_config(cfg).get_config()["alpha_initializer"] == \
        cfg["alpha_initializer"]
    assert layers.PReLU(shared_axes=1).shared_axes == [1]
    with pytest.raises(ValueError, match="shared_axes"):
        layers.PReLU(shared_axes=[0])
    q = layers.PReLU(alpha_regularizer="l2", alpha_constraint="non_neg")
    q(np.zeros((2, 3), np.float32))
    assert isinstance(q.alpha.regularizer, pycnn.regularizers.L2)
    assert isinstance(q.alpha.constraint, pycnn.constraints.NonNeg)


# ---------------------------------------------------------------------------------------------
# get / serialize / deserialize
# ---------------------------------------------------------------------------------------------

#: The activations the C kernels implement, by Keras name (aliases: swish, hard_swish).
KERNEL_ACTIVATIONS = ("linear", "relu", "sigmoid", "tanh", "softmax", "elu", "selu",
                      "softplus", "softsign", "silu", "hard_sigmoid", "hard_silu", "relu6",
                      "leaky_relu", "exponential", "gelu", "mish", "log_sigmoid", "hard_tanh")


def test_get_gives_canonical_callable_names():
    assert activations.get(None) == "linear"
    assert activations.get("swish") == "silu" and activations.get("hard_swish") == "hard_silu"
    assert activations.get(activations.gelu) == "gelu"
    assert activations.get(activations.swish) == "silu"
    assert activations.get({"class_name": "function", "config": "relu6"}) == "relu6"
    np.testing.assert_array_equal(activations.get("relu6")(np.array([-1.0, 3.0, 9.0])),
                                  [0, 3, 6])
    assert json.dumps({"a": activations.get("elu")}) == '{"a": "elu"}'
    for name in KERNEL_ACTIVATIONS:
        assert activations.get(name) == name
    with pytest.raises(ValueError, match="Unknown activation"):
        activations.get("gelu_tanh")
    with pytest.raises(ValueError, match="Could not interpret"):
        activations.get(lambda x: x)


def test_serialize_and_deserialize_round_trip():
    assert activations.serialize(activations.swish) == "silu"
    assert activations.serialize("hard_swish") == "hard_silu"
    assert activations.deserialize("mish") is activations.mish
    assert activations.deserialize("swish") is activations.silu
    assert layers.Dense(2, activation="swish").get_config()["activation"] == "silu"


def test_activation_functions_with_keras_parameters():
    x = np.array([-2.0, -0.5, 0.5, 2.0, 8.0])
    np.testing.assert_allclose(activations.leaky_relu(x), np.where(x > 0, x, 0.2 * x),
                               rtol=1e-6)
    np.testing.assert_allclose(activations.leaky_relu(x, negative_slope=0.5),
                               np.where(x > 0, x, 0.5 * x), rtol=1e-6)
    np.testing.assert_allclose(activations.relu(x, max_value=6.0), np.clip(x, 0, 6))
    np.testing.assert_allclose(activations.relu(x, negative_slope=0.1, threshold=1.0),
                               np.where(x > 1, x, 0.1 * (x - 1)), rtol=1e-6)
    assert activations.gelu(np.float64(1.0)).dtype == np.float32
