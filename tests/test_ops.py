"""pycnn.ops: every op's value against a float64 NumPy reference, on arrays (computed at once)
and through a compiled plan (recorded on symbolic tensors), and every gradient against central
finite differences of the float64 reference; random compositions of ops; argument errors."""
from __future__ import annotations

import numpy as np
import pytest

from pycnn import ops
from pycnn.layers.base import Variable
from pycnn.layers.symbolic import KerasTensor
from pycnn.models.graph import Graph
from pycnn.models.plan import Plan

from reference import numerical_grad

RNG = np.random.default_rng(7)


def plan_of(fn, arrays):
    """fn recorded on symbolic inputs of the arrays' shapes, compiled with input gradients."""
    syms = [KerasTensor(a.shape, dtype="float32" if a.dtype.kind == "f" else str(a.dtype))
            for a in arrays]
    out = fn(*syms)
    assert isinstance(out, KerasTensor)
    return Plan(Graph(syms, [out]), False, input_grads=True), out


def fd_grad(ref, arrays, i, dy, eps=1e-6):
    """d sum(dy * ref(arrays)) / d arrays[i] by central differences in float64."""
    xs = [np.array(a, dtype=np.float64) if a.dtype.kind == "f" else a for a in arrays]
    return numerical_grad(lambda x: np.sum(dy * ref(*xs[:i], x, *xs[i + 1:])), xs[i], eps)


def check(fn, ref, arrays, diff=None, rtol=2e-3, atol=2e-4):
    """Value (eager and planned) against ref in float64, gradients against finite
    differences."""
    arrays = [np.asarray(a) for a in arrays]
    arrays = [a.astype(np.float32) if a.dtype.kind == "f" else a for a in arrays]
    want = ref(*[a.astype(np.float64) if a.dtype.kind == "f" else a for a in arrays])
    eager = fn(*arrays)
    assert isinstance(eager, np.ndarray)
    np.testing.assert_allclose(eager, want, rtol=1e-5, atol=1e-5)
    plan, sym = plan_of(fn, arrays)
    assert sym.shape == tuple(np.shape(want)), (sym.shape, np.shape(want))
    y = plan.forward(arrays)[0]
    np.testing.assert_allclose(y, want, rtol=1e-5, atol=1e-5)
    if diff is None:
        diff = [i for i, a in enumerate(arrays) if a.dtype.kind == "f"]
    dy = RNG.standard_normal(np.shape(want))
    _, grads = plan.backward([dy.astype(np.float32)], return_input_grads=True)
    for i in diff:
        g = fd_grad(ref, arrays, i, dy)
        assert grads[i] is not None, f"no gradient for input {i}"
        np.testing.assert_allclose(np.asarray(grads[i]).reshape(g.shape), g, rtol=rtol,
                                   atol=atol, err_msg=f"gradient of input {i}")


def rand(*shape, low=-1.0, high=1.0):
    return RNG.uniform(low, high, shape)


BROADCAST = [((3, 4), (3, 4)), ((3, 4), (4,)), ((2, 1, 4), (3, 1)), ((5,), ()),
             ((1, 3), (2, 1))]


@pytest.mark.parametrize("shapes", BROADCAST)
@pytest.mark.parametrize("name,ref,domain", [
    ("add", np.add, (-1, 1)), ("subtract", np.subtract, (-1, 1)),
    ("multiply", np.multiply, (-1, 1)), ("divide", np.divide, (0.5, 2)),
    ("power", np.power, (0.5, 2)), ("maximum", np.maximum, (-1, 1)),
    ("minimum", np.minimum, (-1, 1))])
def test_binary_ops_values_and_gradients_with_broadcasting(name, ref, domain, shapes):
    a, b = rand(*shapes[0], low=domain[0], high=domain[1]), \
        rand(*shapes[1], low=domain[0], high=domain[1])
    check(getattr(ops, name), ref, [a, b])


def _softmax(x, axis=-1):
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


@pytest.mark.parametrize("name,ref,domain", [
    ("negative", np.negative, (-1, 1)), ("exp", np.exp, (-1, 1)), ("log", np.log, (0.5, 2)),
    ("sqrt", np.sqrt, (0.5, 2)), ("square", np.square, (-1, 1)), ("abs", np.abs, (0.1, 1)),
    ("relu", lambda x: np.maximum(x, 0), (-1, 1)),
    ("sigmoid", lambda x: 1 / (1 + np.exp(-x)), (-3, 3)), ("tanh", np.tanh, (-2, 2)),
    ("softmax", _softmax, (-2, 2)),
    ("log_softmax", lambda x: np.log(_softmax(x)), (-2, 2))])
def test_unary_ops_values_and_gradients(name, ref, domain):
    x = rand(3, 5, low=domain[0], high=domain[1])
    if name in ("abs", "relu"):
        x = np.where(np.abs(x) < 0.05, 0.3, x)        # away from the kink
    check(getattr(ops, name), ref, [x])


def test_softmax_and_log_softmax_on_another_axis():
    x = rand(3, 4, 2)
    check(lambda t: ops.softmax(t, axis=1), lambda t: _softmax(t, axis=1), [x])
    check(lambda t: ops.log_softmax(t, axis=0), lambda t: np.log(_softmax(t, axis=0)), [x])


def test_clip_passes_the_gradient_inside_only():
    x = np.array([[-2.0, -0.5, 0.2, 0.9, 3.0]])
    check(lambda t: ops.clip(t, -1, 1), lambda t: np.clip(t, -1, 1), [x])


def test_where_takes_no_gradient_for_the_condition():
    c = RNG.random((3, 4)) > 0.5
    check(lambda cc, a, b: ops.where(cc, a, b), np.where, [c, rand(3, 4), rand(4)], diff=[1, 2])


@pytest.mark.parametrize("axis", [None, 0, 1, -1, (0, 2)])
@pytest.mark.parametrize("keepdims", [False, True])
@pytest.mark.parametrize("name", ["sum", "mean", "max", "min"])
def test_reductions(name, axis, keepdims):
    x = rand(3, 4, 2)
    ref = getattr(np, {"sum": "sum", "mean": "mean", "max": "max", "min": "min"}[name])
    check(lambda t: getattr(ops, name)(t, axis=axis, keepdims=keepdims),
          lambda t: ref(t, axis=axis, keepdims=keepdims), [x])


def test_max_shares_the_gradient_between_ties():
    x = np.array([[1.0, 3.0, 3.0]], np.float32)
    plan, _ = plan_of(lambda t: ops.max(t, axis=1), [x])
    plan.forward([x])
    _, (g,) = plan.backward([np.ones(1, np.float32)], return_input_grads=True)
    np.testing.assert_allclose(g, [[0, 0.5, 0.5]])


@pytest.mark.parametrize("sa,sb", [((3, 4), (4, 5)), ((2, 3, 4), (4, 5)), ((4,), (4, 3)),
                                   ((3, 4), (4,)), ((2, 3, 4), (2, 4, 2)),
                                   ((1, 3, 4), (5, 4, 2))])
def test_matmul_batched_and_vectors(sa, sb):
    check(ops.matmul, np.matmul, [rand(*sa), rand(*sb)])


def test_matmul_operator_and_dot():
    a, b = rand(3, 4), rand(4, 2)
    check(lambda x, y: x @ y, np.matmul, [a, b])
    check(ops.dot, np.dot, [a, b])
    check(ops.dot, np.dot, [a, rand(4)])
    check(ops.dot, np.dot, [a, np.asarray(2.0)])


@pytest.mark.parametrize("fn,ref", [
    (lambda t: ops.reshape(t, (-1, 6)), lambda t: t.reshape(-1, 6)),
    (lambda t: ops.reshape(t, (4, 3, 1)), lambda t: t.reshape(4, 3, 1)),
    (lambda t: ops.transpose(t), lambda t: t.T),
    (lambda t: ops.transpose(t, (1, 0, 2)), lambda t: t.transpose(1, 0, 2)),
    (lambda t: ops.expand_dims(t, 1), lambda t: np.expand_dims(t, 1)),
    (lambda t: ops.squeeze(ops.expand_dims(t, -1), -1), lambda t: t),
    (lambda t: t[:, 1:], lambda t: t[:, 1:]),
    (lambda t: t[1], lambda t: t[1]),
    (lambda t: t[..., ::-1], lambda t: t[..., ::-1]),
    (lambda t: t[:, None, 0], lambda t: t[:, None, 0]),
    (lambda t: t[np.array([0, 0, 1])], lambda t: t[np.array([0, 0, 1])]),
    (lambda t: ops.cast(t, "float64"), lambda t: t),
])
def test_shape_ops_and_slicing(fn, ref):
    check(fn, ref, [rand(2, 3, 2)])


def test_concatenate_and_stack():
    a, b = rand(2, 3), rand(2, 1)
    check(lambda x, y: ops.concatenate([x, y], axis=1), lambda x, y: np.concatenate([x, y], 1),
          [a, b])
    check(lambda x, y: ops.stack([x, y], axis=1), lambda x, y: np.stack([x, y], 1),
          [a, rand(2, 3)])


def test_integer_ops_have_no_gradient_and_keep_their_dtype():
    x = rand(4, 5).astype(np.float32)
    am = ops.argmax(x, axis=1)
    assert am.dtype == np.int32 and list(am) == list(np.argmax(x, axis=1))
    oh = ops.one_hot(np.array([0, 2, 1]), 3)
    assert oh.dtype == np.float32
    np.testing.assert_array_equal(oh, np.eye(3)[[0, 2, 1]])
    t = KerasTensor((None, 5))
    assert ops.argmax(t, axis=-1).dtype == "int32"
    assert ops.argmax(t, axis=-1).shape == (None,)
    # a graph through argmax + one_hot gives no gradient to its input
    plan, _ = plan_of(lambda v: ops.one_hot(ops.argmax(v, axis=1), 5) * v, [x])
    plan.forward([x])
    _, (g,) = plan.backward([np.ones((4, 5), np.float32)], return_input_grads=True)
    np.testing.assert_allclose(g, np.eye(5)[np.argmax(x, 1)])


def _conv_ref(x, w, stride, padding):
    n, h, wd, c = x.shape
    kh, kw, _, f = w.shape
    if padding == "same":
        oh, ow = -(-h // stride), -(-wd // stride)
        ph = max((oh - 1) * stride + kh - h, 0)
        pw = max((ow - 1) * stride + kw - wd, 0)
        x = np.pad(x, ((0, 0), (ph // 2, ph - ph // 2), (pw // 2, pw - pw // 2), (0, 0)))
    else:
        oh, ow = (h - kh) // stride + 1, (wd - kw) // stride + 1
    y = np.zeros((n, oh, ow, f))
    for i in range(oh):
        for j in range(ow):
            patch = x[:, i * stride:i * stride + kh, j * stride:j * stride + kw, :]
            y[:, i, j, :] = np.tensordot(patch, w, axes=([1, 2, 3], [0, 1, 2]))
    return y


@pytest.mark.parametrize("stride,padding", [(1, "valid"), (2, "same"), (1, "same")])
def test_conv(stride, padding):
    x, w = rand(2, 5, 5, 2), rand(3, 3, 2, 3)
    check(lambda a, b: ops.conv(a, b, strides=stride, padding=padding),
          lambda a, b: _conv_ref(a, b, stride, padding), [x, w])


def _pool_ref(x, k, kind):
    n, h, w, c = x.shape
    y = x[:, :h // k * k, :w // k * k].reshape(n, h // k, k, w // k, k, c)
    return y.max(axis=(2, 4)) if kind == "max" else y.mean(axis=(2, 4))


def test_max_pool_and_average_pool():
    x = rand(2, 4, 6, 3)
    check(lambda a: ops.max_pool(a, 2), lambda a: _pool_ref(a, 2, "max"), [x])
    check(lambda a: ops.average_pool(a, 2), lambda a: _pool_ref(a, 2, "avg"), [x])


def _bce(t, o, logits):
    if logits:
        return np.maximum(o, 0) - o * t + np.log1p(np.exp(-np.abs(o)))
    p = np.clip(o, 1e-7, 1 - 1e-7)
    return -(t * np.log(p) + (1 - t) * np.log(1 - p))


def _cce(t, o, logits):
    if logits:
        return -np.sum(t * np.log(_softmax(o)), axis=-1)
    p = np.clip(o / o.sum(-1, keepdims=True), 1e-7, 1 - 1e-7)
    return -np.sum(t * np.log(p), axis=-1)


@pytest.mark.parametrize("logits", [False, True])
def test_crossentropies_as_keras_3_defines_them(logits):
    t = RNG.random((4, 3))
    o = rand(4, 3, low=-2, high=2) if logits else RNG.uniform(0.1, 0.9, (4, 3))
    check(lambda a, b: ops.binary_crossentropy(a, b, from_logits=logits),
          lambda a, b: _bce(a, b, logits), [t, o])
    t = np.eye(3)[[0, 2, 1, 1]] * 0.9 + 0.05
    check(lambda a, b: ops.categorical_crossentropy(a, b, from_logits=logits),
          lambda a, b: _cce(a, b, logits), [t, o])


def test_keras_3_crossentropy_numbers():
    # keras.ops.binary_crossentropy / categorical_crossentropy (Keras 3.x, JAX backend)
    t = np.array([[0.0, 1.0], [1.0, 0.0]])
    o = np.array([[0.2, 0.7], [0.6, 0.4]])
    np.testing.assert_allclose(ops.binary_crossentropy(t, o),
                               [[0.22314353, 0.35667497], [0.5108256, 0.5108256]], rtol=1e-5)
    np.testing.assert_allclose(ops.categorical_crossentropy(t, o),
                               [0.2513144, 0.5108256], rtol=1e-5)


# ---- operators, constants, variables -------------------------------------------------------
def test_operators_and_python_constants():
    a, b = rand(3, 4), rand(4)
    check(lambda x, y: (x + 1) * y - x / 2 + (-y) ** 2 + 2.0 ** x, lambda x, y:
          (x + 1) * y - x / 2 + (-y) ** 2 + 2.0 ** x, [a, b])
    c = np.linspace(0.1, 1, 4)
    check(lambda x: c * x + ops.exp(x) - abs(x + 3) + 1 / (x + 2),
          lambda x: c * x + np.exp(x) - abs(x + 3) + 1 / (x + 2), [a])


def test_numpy_ufuncs_on_symbolic_tensors_run_ops():
    a = rand(3, 4)
    check(lambda x: np.exp(x) + np.ones(4) * x, lambda x: np.exp(x) + np.ones(4) * x, [a])


def test_a_variable_read_by_ops_receives_its_gradient():
    w = Variable(rand(4, 2).astype(np.float32), "w")
    x = rand(3, 4).astype(np.float32)
    from pycnn.ops.core import tracing
    with tracing():     # as inside a layer's call: ops on the weight alone record nodes too
        plan, _ = plan_of(lambda t: ops.matmul(t, w) + ops.sum(w * w), [x])
    reads = [v for s in plan.steps for v in s.trainable_variables()]
    assert len(reads) == 3 and all(v is w for v in reads)
    y = plan.forward([x])[0]
    want = x.astype(np.float64) @ w.value + np.sum(w.value.astype(np.float64) ** 2)
    np.testing.assert_allclose(y, want, rtol=1e-5)
    dy = RNG.standard_normal(y.shape).astype(np.float32)
    reached = plan.backward([dy])
    assert reached == [w]
    np.testing.assert_allclose(w.grad, x.T.astype(np.float64) @ dy +
                               2 * w.value * dy.sum(), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(ops.matmul(x, w), x @ w.value, rtol=1e-5, atol=1e-6)
    assert isinstance(w + 1, np.ndarray) and isinstance(w @ np.ones(2), np.ndarray)


def test_eager_results_are_float32_and_never_alias_the_inputs():
    x = np.arange(6, dtype=np.float64).reshape(2, 3)
    for y in (ops.reshape(x, (3, 2)), ops.add(x, 0), ops.transpose(x), ops.squeeze(x[None])):
        assert y.dtype == np.float32
        assert not np.shares_memory(y, x)
    xf = x.astype(np.float32)
    y = ops.reshape(xf, (6,))
    y[0] = 100
    assert xf[0, 0] == 0
    assert ops.convert_to_tensor([1.0, 2.0]).dtype == np.float32
    assert ops.convert_to_tensor([1, 2]).dtype.kind == "i"
    assert ops.cast(x, "int32").dtype == np.int32


def test_symbolic_shapes_keep_the_unknown_batch_size():
    t = KerasTensor((None, 28, 28, 1))
    assert ops.reshape(t, (-1, 784)).shape == (None, 784)
    assert ops.conv(t, np.zeros((3, 3, 1, 4), np.float32), padding="same").shape == \
        (None, 28, 28, 4)
    assert ops.max_pool(t, 2).shape == (None, 14, 14, 1)
    assert ops.mean(t, axis=(1, 2)).shape == (None, 1)
    assert t[:, 3].shape == (None, 28, 1)
    assert ops.matmul(ops.reshape(t, (-1, 784)), np.zeros((784, 10))).shape == (None, 10)


# ---- random compositions -------------------------------------------------------------------
UNARY = [(ops.tanh, np.tanh), (ops.sigmoid, lambda x: 1 / (1 + np.exp(-x))),
         (ops.square, np.square), (lambda x: ops.exp(x * 0.3), lambda x: np.exp(x * 0.3)),
         (lambda x: ops.softmax(x), _softmax), (lambda x: x * 0.5 - 0.1, lambda x: x * 0.5 - 0.1),
         (lambda x: ops.mean(x, axis=-1, keepdims=True) + x,
          lambda x: np.mean(x, axis=-1, keepdims=True) + x),
         (lambda x: ops.transpose(ops.transpose(x)), lambda x: x)]
BINARY = [(ops.add, np.add), (ops.subtract, np.subtract), (ops.multiply, np.multiply),
          (lambda a, b: a / (1.5 + ops.square(b)), lambda a, b: a / (1.5 + np.square(b))),
          (ops.maximum, np.maximum)]


@pytest.mark.parametrize("seed", range(8))
def test_random_compositions_against_finite_differences(seed):
    rng = np.random.default_rng(seed)
    steps = []
    for _ in range(5):
        if rng.random() < 0.5:
            steps.append(("u", int(rng.integers(len(UNARY))), int(rng.integers(2))))
        else:
            steps.append(("b", int(rng.integers(len(BINARY))), int(rng.integers(2))))

    def build(table_index):
        def fn(a, b):
            vals = [a, b]
            for kind, k, which in steps:
                if kind == "u":
                    vals[which] = (UNARY[k][table_index])(vals[which])
                else:
                    vals[which] = (BINARY[k][table_index])(vals[0], vals[1])
            return vals[0] * vals[1] if table_index == 0 else np.multiply(vals[0], vals[1])
        return fn

    a, b = rng.uniform(-1, 1, (3, 4)), rng.uniform(-1, 1, (4,))
    check(build(0), build(1), [a, b], rtol=5e-3, atol=5e-4)


# ---- argument errors -------------------------------------------------------------------------
def test_argument_errors_name_the_argument():
    x = np.ones((2, 3), np.float32)
    with pytest.raises(ValueError, match="matmul"):
        ops.matmul(x, x)
    with pytest.raises(ValueError, match="matmul"):
        ops.matmul(KerasTensor((None, 3)), KerasTensor((4, 2)))
    with pytest.raises(TypeError, match="axis"):
        ops.sum(x, axis="1")
    with pytest.raises(TypeError, match="axis"):
        ops.softmax(x, axis=1.0)
    with pytest.raises(ValueError, match="newshape"):
        ops.reshape(x, (-1, -1))
    with pytest.raises(ValueError, match="num_classes"):
        ops.one_hot(np.array([1]), 0)
    with pytest.raises(ValueError, match="x1"):
        ops.where(x > 0)
    with pytest.raises(TypeError, match="x_min"):
        ops.clip(x, "a", 1)
    with pytest.raises(ValueError, match="Invalid dtype"):
        ops.cast(x, "complex64")
    with pytest.raises(TypeError, match="symbolic"):
        KerasTensor((None, 3))[KerasTensor((None,))]
    with pytest.raises(TypeError, match="x2"):
        ops.add(x, "a")
    with pytest.raises(ValueError, match="same shape"):
        ops.categorical_crossentropy(np.ones((2, 3)), np.ones((2, 4)))
    with pytest.raises(ValueError, match="padding"):
        ops.conv(np.ones((1, 4, 4, 1)), np.ones((2, 2, 1, 1)), padding="full")
