"""Regularizers (penalty and gradient), constraints and initializers against Keras 3's
formulas and numbers (tests/keras_refs/norm_activations_keras3.json), with their names,
configs and argument errors."""
import json
import math
import os

import numpy as np
import pytest

import pycnn
from pycnn import constraints, initializers, layers, regularizers

from reference import numerical_grad

HERE = os.path.dirname(os.path.abspath(__file__))
KERAS = json.load(open(os.path.join(HERE, "keras_refs", "norm_activations_keras3.json")))


def ramp(shape, k=1.0, off=0.0):
    n = int(np.prod(shape))
    return (np.sin(np.arange(n, dtype=np.float64) * 0.7 + 0.3) * 2.0 * k + off).reshape(
        shape).astype(np.float32)


fd_gradient = numerical_grad   # central differences of f at a float64 copy of x


# ---------------------------------------------------------------------------------------------
# Regularizers
# ---------------------------------------------------------------------------------------------

def test_penalties_match_keras():
    w = ramp((3, 4), k=0.5)
    assert regularizers.L1(0.02)(w) == pytest.approx(KERAS["reg_l1"], rel=1e-6)
    assert regularizers.L2(0.03)(w) == pytest.approx(KERAS["reg_l2"], rel=1e-6)
    assert regularizers.L1L2(0.01, 0.02)(w) == pytest.approx(KERAS["reg_l1l2"], rel=1e-6)
    assert regularizers.OrthogonalRegularizer(0.1)(w) == pytest.approx(KERAS["reg_orth_rows"],
                                                                       rel=1e-6)
    assert regularizers.OrthogonalRegularizer(0.1, mode="columns")(w) == pytest.approx(
        KERAS["reg_orth_cols"], rel=1e-6)


def test_penalties_are_keras_formulas():
    w = np.random.default_rng(0).standard_normal((5, 3))
    assert regularizers.L1()(w) == pytest.approx(0.01 * np.abs(w).sum())
    assert regularizers.L2()(w) == pytest.approx(0.01 * (w ** 2).sum())
    assert regularizers.L1L2()(w) == 0.0
    assert regularizers.L1L2(l1=0.5, l2=0.25)(w) == pytest.approx(
        0.5 * np.abs(w).sum() + 0.25 * (w ** 2).sum())
    u = w / np.linalg.norm(w, axis=0, keepdims=True)
    p = np.abs(u.T @ u)
    np.fill_diagonal(p, 0)
    assert regularizers.OrthogonalRegularizer(0.2, "columns")(w) == pytest.approx(
        0.2 * 0.5 * p.sum() / 3.0)
    assert regularizers.Regularizer()(w) == 0.0


@pytest.mark.parametrize("reg", [regularizers.L1(0.03), regularizers.L2(0.07),
                                 regularizers.L1L2(0.02, 0.05),
                                 regularizers.OrthogonalRegularizer(0.3),
                                 regularizers.OrthogonalRegularizer(0.3, mode="columns")],
                         ids=repr)
def test_gradients_match_finite_differences(reg):
    w = np.random.default_rng(1).standard_normal((4, 3)).astype(np.float32)
    g = reg.gradient(w)
    assert g.dtype == np.float32 and g.shape == w.shape
    np.testing.assert_allclose(g, fd_gradient(reg, w), rtol=1e-4, atol=1e-6)


def test_orthogonal_regularizer_with_a_zero_row_and_rank_check():
    w = np.random.default_rng(2).standard_normal((3, 4))
    w[1] = 0
    reg = regularizers.OrthogonalRegularizer(0.5)
    assert math.isfinite(reg(w)) and np.all(np.isfinite(reg.gradient(w)))
    with pytest.raises(ValueError, match="must have rank 2"):
        reg(np.ones((2, 2, 2)))


def test_get_serialize_deserialize():
    assert isinstance(regularizers.get("l2"), regularizers.L2)
    assert regularizers.get("l1").l1 == 0.01
    assert regularizers.get("l1l2").get_config() == {"l1": 0.0, "l2": 0.0}      # Keras 3
    assert regularizers.get("l1_l2").get_config() == {"l1": 0.01, "l2": 0.01}   # tf.keras 2
    assert isinstance(regularizers.get("orthogonal_regularizer"),
                      regularizers.OrthogonalRegularizer)
    assert regularizers.get(None) is None
    r = regularizers.L2(0.1)
    assert regularizers.get(r) is r
    cfg = regularizers.serialize(r)
    assert cfg == {"module": "keras.regularizers", "class_name": "L2", "config": {"l2": 0.1},
                   "registered_name": None}
    back = regularizers.deserialize(cfg)
    assert isinstance(back, regularizers.L2) and back.l2 == 0.1
    assert regularizers.get(cfg).l2 == 0.1
    o = regularizers.deserialize(regularizers.serialize(
        regularizers.OrthogonalRegularizer(0.2, "columns")))
    assert o.get_config() == {"factor": 0.2, "mode": "columns"}
    assert regularizers.l1 is regularizers.L1 and regularizers.l1_l2 is regularizers.L1L2
    assert regularizers.orthogonal_regularizer is regularizers.OrthogonalRegularizer
    with pytest.raises(ValueError, match="Could not interpret regularizer identifier"):
        regularizers.get("l3")


def test_argument_errors_use_keras_phrasing():
    with pytest.raises(ValueError, match="Invalid value for argument l1: expected a "
                                         "non-negative float"):
        regularizers.L1(-1)
    with pytest.raises(ValueError, match="l2"):
        regularizers.L2(float("nan"))
    with pytest.raises(ValueError, match="mode"):
        regularizers.OrthogonalRegularizer(mode="diagonal")
    assert regularizers.L2(np.float32(0.5)).l2 == 0.5


def test_add_weight_stores_regularizer_and_constraint():
    dense = layers.Dense(3, kernel_regularizer="l2", bias_regularizer=regularizers.L1(0.2),
                         kernel_constraint="max_norm", bias_constraint=constraints.NonNeg())
    dense(np.zeros((2, 4), np.float32))
    assert isinstance(dense.kernel.regularizer, regularizers.L2)
    assert dense.bias.regularizer.l1 == 0.2
    assert isinstance(dense.kernel.constraint, constraints.MaxNorm)
    assert isinstance(dense.bias.constraint, constraints.NonNeg)
    k = dense.kernel.numpy()
    assert dense.kernel.regularizer(k) == pytest.approx(0.01 * (k.astype(np.float64) ** 2).sum())


# ---------------------------------------------------------------------------------------------
# Constraints
# ---------------------------------------------------------------------------------------------

def test_constraints_match_keras():
    w, wk = ramp((3, 4), k=0.5), ramp((3, 3, 2, 4), k=0.5)
    np.testing.assert_allclose(constraints.MaxNorm(0.8, axis=[0, 1, 2])(wk), KERAS["c_maxnorm"],
                               rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(constraints.MinMaxNorm(0.9, 1.2, rate=0.5, axis=0)(w),
                               KERAS["c_minmax"], rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(constraints.UnitNorm(axis=1)(w), KERAS["c_unit"], rtol=1e-6,
                               atol=1e-7)
    np.testing.assert_array_equal(constraints.NonNeg()(w), KERAS["c_nonneg"])


def test_constraint_formulas_and_axes():
    w = np.random.default_rng(3).standard_normal((6, 4)) * 3
    out = constraints.MaxNorm(2.0)(w)
    norms = np.linalg.norm(out, axis=0)
    assert np.all(norms <= 2.0 + 1e-5)
    big = np.linalg.norm(w, axis=0) > 2
    np.testing.assert_allclose(norms[big], 2.0, rtol=1e-5)
    np.testing.assert_allclose(out[:, ~big], w[:, ~big], rtol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(constraints.UnitNorm()(w), axis=0), 1, rtol=1e-5)
    n = np.linalg.norm(w, axis=0)
    mm = constraints.MinMaxNorm(1.0, 2.0, rate=1.0)(w)
    np.testing.assert_allclose(np.linalg.norm(mm, axis=0), np.clip(n, 1, 2), rtol=1e-5)
    assert constraints.NonNeg()(np.array([-1.0, 0.5])).tolist() == [0.0, 0.5]
    assert constraints.MaxNorm(1.0)(w).dtype == np.float32
    with pytest.raises(ValueError, match="out of bounds"):
        constraints.UnitNorm(axis=3)(w)


def test_constraints_get_serialize_deserialize_and_errors():
    assert isinstance(constraints.get("non_neg"), constraints.NonNeg)
    assert isinstance(constraints.get("MaxNorm"), constraints.MaxNorm)
    assert isinstance(constraints.get("unit_norm"), constraints.UnitNorm)
    assert constraints.get(None) is None
    cfg = constraints.serialize(constraints.MaxNorm(3, axis=[0, 1, 2]))
    assert cfg == {"module": "keras.constraints", "class_name": "MaxNorm",
                   "config": {"max_value": 3, "axis": [0, 1, 2]}, "registered_name": None}
    assert constraints.deserialize(cfg).get_config() == cfg["config"]
    assert constraints.get(cfg).max_value == 3
    assert constraints.max_norm is constraints.MaxNorm
    with pytest.raises(ValueError, match="max_value"):
        constraints.MaxNorm(-1)
    with pytest.raises(ValueError, match="axis"):
        constraints.UnitNorm(axis="rows")
    with pytest.raises(ValueError, match="Could not interpret constraint identifier"):
        constraints.get("positive")


# ---------------------------------------------------------------------------------------------
# Initializers
# ---------------------------------------------------------------------------------------------

KERAS_NAMES = ["Constant", "GlorotNormal", "GlorotUniform", "HeNormal", "HeUniform", "Identity",
               "IdentityInitializer", "LecunNormal", "LecunUniform", "Ones", "Orthogonal",
               "OrthogonalInitializer", "RandomNormal", "RandomUniform", "TruncatedNormal",
               "VarianceScaling", "Zeros", "constant", "glorot_normal", "glorot_uniform",
               "he_normal", "he_uniform", "identity", "lecun_normal", "lecun_uniform",
               "normal", "one", "ones", "orthogonal", "random_normal", "random_uniform",
               "truncated_normal", "uniform", "variance_scaling", "zero", "zeros"]


@pytest.mark.parametrize("name", KERAS_NAMES)
def test_every_keras_initializer_name_resolves_and_round_trips(name):
    init = initializers.get(name)
    assert isinstance(init, initializers.Initializer)
    v = init((4, 4))
    assert v.shape == (4, 4) and v.dtype == np.float32
    cfg = initializers.serialize(init)
    assert cfg["module"] == "keras.initializers"
    json.dumps(cfg)
    back = initializers.deserialize(cfg)
    assert type(back) is type(init) and back.get_config() == init.get_config()


@pytest.mark.parametrize("cls,scale,mode,uniform", [
    (initializers.GlorotUniform, 1.0, "fan_avg", True),
    (initializers.GlorotNormal, 1.0, "fan_avg", False),
    (initializers.HeUniform, 2.0, "fan_in", True),
    (initializers.HeNormal, 2.0, "fan_in", False),
    (initializers.LecunUniform, 1.0, "fan_in", True),
    (initializers.LecunNormal, 1.0, "fan_in", False)])
def test_variance_scaling_presets_have_keras_variances(cls, scale, mode, uniform):
    shape = (3, 3, 40, 60)
    fan_in, fan_out = 9 * 40, 9 * 60
    fan = {"fan_in": fan_in, "fan_avg": (fan_in + fan_out) / 2}[mode]
    v = cls(seed=1)(shape).astype(np.float64)
    assert abs(v.var() / (scale / fan) - 1) < 0.03
    assert abs(v.mean()) < 0.01 * math.sqrt(scale / fan) * 10
    if uniform:
        assert np.abs(v).max() <= math.sqrt(3 * scale / fan)
    else:       # truncated at two (pre-truncation) standard deviations
        assert np.abs(v).max() <= 2 * math.sqrt(scale / fan) / 0.87962566103423978 + 1e-6
    assert cls(seed=1).get_config() == {"seed": 1}


def test_random_initializers_distributions_and_seeds():
    n = initializers.RandomNormal(mean=1.0, stddev=0.5, seed=3)((200, 200))
    assert abs(n.mean() - 1) < 0.01 and abs(n.std() - 0.5) < 0.01
    u = initializers.RandomUniform(-2, 3, seed=3)((200, 200))
    assert u.min() >= -2 and u.max() < 3 and abs(u.mean() - 0.5) < 0.03
    t = initializers.TruncatedNormal(mean=0.5, stddev=0.1, seed=3)((200, 200))
    assert t.min() >= 0.3 - 1e-6 and t.max() <= 0.7 + 1e-6
    seeded = initializers.GlorotUniform(seed=7)
    np.testing.assert_array_equal(seeded((5, 5)), seeded((5, 5)))      # Keras 3: repeats
    pycnn.utils.set_random_seed(11)
    a = initializers.HeNormal()((5, 5))
    pycnn.utils.set_random_seed(11)
    np.testing.assert_array_equal(a, initializers.HeNormal()((5, 5)))
    vs = initializers.VarianceScaling(scale=2.0, mode="fan_out", distribution="untruncated_normal",
                                      seed=0)((100, 400))
    assert abs(vs.var() / (2.0 / 400) - 1) < 0.03
    assert initializers.VarianceScaling(distribution="normal").distribution == "truncated_normal"


def test_orthogonal_identity_constant():
    q = initializers.Orthogonal(gain=2.0, seed=0)((6, 4)).astype(np.float64)
    np.testing.assert_allclose(q.T @ q, 4 * np.eye(4), atol=1e-5)
    q = initializers.Orthogonal(seed=0)((4, 6)).astype(np.float64)
    np.testing.assert_allclose(q @ q.T, np.eye(4), atol=1e-5)
    k = initializers.Orthogonal(seed=0)((3, 3, 2, 4)).reshape(18, 4).astype(np.float64)
    np.testing.assert_allclose(k.T @ k, np.eye(4), atol=1e-5)
    np.testing.assert_array_equal(initializers.Identity(gain=3)((2, 3)), 3 * np.eye(2, 3))
    np.testing.assert_array_equal(initializers.Constant(np.float32(0.5))((2,)), [0.5, 0.5])
    assert initializers.Constant(2).get_config() == {"value": 2.0}
    with pytest.raises(ValueError, match="two-dimensional"):
        initializers.Orthogonal()((3,))
    with pytest.raises(ValueError, match="2D"):
        initializers.Identity()((2, 2, 2))


def test_initializer_argument_errors():
    with pytest.raises(ValueError, match="scale"):
        initializers.VarianceScaling(scale=0)
    with pytest.raises(ValueError, match="mode"):
        initializers.VarianceScaling(mode="fan")
    with pytest.raises(ValueError, match="distribution"):
        initializers.VarianceScaling(distribution="cauchy")
    with pytest.raises(ValueError, match="seed"):
        initializers.GlorotUniform(seed=-1)
    with pytest.raises(ValueError, match="Could not interpret initializer identifier"):
        initializers.get("glorot")
    assert initializers.get(initializers.HeNormal).get_config() == {"seed": None}
    f = lambda shape, dtype=None: np.ones(shape, np.float32)   # noqa: E731
    assert initializers.get(f) is f


def test_layers_use_initializers_by_name_and_object():
    d = layers.Dense(3, kernel_initializer="orthogonal", bias_initializer=initializers.Constant(2))
    d(np.zeros((1, 3), np.float32))
    k = d.kernel.numpy().astype(np.float64)
    np.testing.assert_allclose(k.T @ k, np.eye(3), atol=1e-5)
    np.testing.assert_array_equal(d.bias.numpy(), [2, 2, 2])
    assert d.get_config()["bias_initializer"]["config"] == {"value": 2.0}
