"""Merge layers (Add, Subtract, Multiply, Average, Maximum, Minimum, Concatenate): values and
gradients of the C kernels against float64 NumPy references and finite differences, Keras 3's
shape rules and error messages, TensorFlow's gradient rule for tied maxima, configs, and
functional models that merge (a residual block trained with fit, two inputs, a tensor used
twice).

Keras numbers quoted here were computed with Keras 3.15 (JAX backend) and TensorFlow 2.21 in
the reference venvs; the tests do not need them."""
from __future__ import annotations

import json

import numpy as np
import pytest

import pycnn
from pycnn import _C, layers
from pycnn.layers.context import Context

OPS = ["add", "subtract", "multiply", "average", "maximum", "minimum"]
CLASSES = {"add": layers.Add, "subtract": layers.Subtract, "multiply": layers.Multiply,
           "average": layers.Average, "maximum": layers.Maximum, "minimum": layers.Minimum}
FUNCTIONS = {"add": layers.add, "subtract": layers.subtract, "multiply": layers.multiply,
             "average": layers.average, "maximum": layers.maximum, "minimum": layers.minimum}


def _rank_align(xs):
    rank = max(x.ndim for x in xs)
    return [x.reshape(x.shape[:1] + (1,) * (rank - x.ndim) + x.shape[1:]) for x in xs]


def ref_merge(op, xs):
    """float64 reference: Keras' pairwise reduction from the left over rank-aligned inputs."""
    xs = [np.asarray(x, np.float64) for x in _rank_align(xs)]
    out = xs[0]
    for x in xs[1:]:
        if op in ("add", "average"):
            out = out + x
        elif op == "subtract":
            out = out - x
        elif op == "multiply":
            out = out * x
        elif op == "maximum":
            out = np.maximum(out, x)
        else:
            out = np.minimum(out, x)
    return out / len(xs) if op == "average" else out


def ref_merge_grads(op, xs, dy):
    """float64 reference gradients: elementwise derivative, then summed over broadcast axes;
    max/min: to the first input holding the extreme (TensorFlow's pairwise rule)."""
    shapes = [x.shape for x in xs]
    al = [np.broadcast_to(np.asarray(x, np.float64), dy.shape) for x in _rank_align(xs)]
    k = len(xs)
    dy = np.asarray(dy, np.float64)
    if op in ("maximum", "minimum"):
        stack = np.stack(al)
        ext = stack.max(0) if op == "maximum" else stack.min(0)
        first = np.argmax(stack == ext, axis=0)
    grads = []
    for i in range(k):
        if op == "add":
            g = dy
        elif op == "subtract":
            g = dy if i == 0 else -dy
        elif op == "average":
            g = dy / k
        elif op == "multiply":
            g = dy * np.prod([al[m] for m in range(k) if m != i], axis=0) if k > 1 else dy
        else:
            g = np.where(first == i, dy, 0.0)
        aligned = _rank_align(xs)[i].shape
        axes = tuple(a for a in range(g.ndim) if aligned[a] == 1 and g.shape[a] != 1)
        grads.append(g.sum(axis=axes, keepdims=True).reshape(shapes[i]))
    return grads


def _inputs(r, shapes, distinct=True):
    xs = [r.standard_normal(s).astype(np.float32) for s in shapes]
    return xs


CASES = [
    ("same", [(4, 5), (4, 5), (4, 5)]),
    ("rank4", [(3, 4, 5, 6), (3, 4, 5, 6)]),
    ("broadcast_last", [(3, 4, 5), (3, 4, 1)]),
    ("broadcast_middle", [(3, 1, 5), (3, 4, 5), (3, 4, 1)]),
    ("lower_rank", [(3, 4, 5), (3, 5)]),
    ("large", [(64, 40, 33), (64, 40, 33)]),            # several tasks of the fast path
    ("large_broadcast", [(700, 30, 1), (700, 30, 7)]),  # several tasks of the general path
]


def _op_cases():
    for op in OPS:
        for name, shapes in CASES:
            if op == "subtract" and len(shapes) != 2:
                shapes = shapes[:2]
            yield pytest.param(op, shapes, id=f"{op}-{name}")


def _layer_call(op, xs, dy):
    layer = CLASSES[op]()
    layer._maybe_build([(None,) + x.shape[1:] for x in xs])
    ctx = Context()
    y = np.array(layer.forward(ctx, xs))
    dxs = layer.backward(ctx, dy, [True] * len(xs))
    return y, [np.array(d) for d in dxs]


@pytest.mark.parametrize("op,shapes", list(_op_cases()))
def test_merge_forward_and_backward_match_float64_reference(op, shapes):
    r = np.random.default_rng(len(shapes) * 7 + OPS.index(op))
    xs = _inputs(r, shapes)
    out_shape = ref_merge(op, xs).shape
    dy = r.standard_normal(out_shape).astype(np.float32)
    y, dxs = _layer_call(op, xs, dy)
    np.testing.assert_allclose(y, ref_merge(op, xs), rtol=1e-5, atol=1e-6)
    for got, want, x in zip(dxs, ref_merge_grads(op, xs, dy), xs):
        assert got.shape == x.shape
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("op", OPS)
def test_merge_gradients_match_finite_differences(op):
    r = np.random.default_rng(3)
    shapes = [(2, 3, 4), (2, 1, 4)] if op == "subtract" else [(2, 3, 4), (2, 1, 4), (2, 3, 1)]
    xs = [r.standard_normal(s) for s in shapes]
    w = r.standard_normal(ref_merge(op, xs).shape)
    _, dxs = _layer_call(op, [x.astype(np.float32) for x in xs], w.astype(np.float32))
    h = 1e-6
    for i, x in enumerate(xs):
        for idx in [(0, 0, 0), tuple(s - 1 for s in x.shape), (1, 0, x.shape[2] - 1)]:
            plus = [v.copy() for v in xs]
            minus = [v.copy() for v in xs]
            plus[i][idx] += h
            minus[i][idx] -= h
            fd = (np.sum(ref_merge(op, plus) * w) - np.sum(ref_merge(op, minus) * w)) / (2 * h)
            assert dxs[i][idx] == pytest.approx(fd, rel=1e-4, abs=1e-5), (i, idx)


def test_maximum_and_minimum_ties_and_nan_follow_tensorflow():
    # TF 2.21: tf.keras.layers.Maximum/Minimum on these rows, gradient of sum(y)
    nan = np.nan
    xs = [np.array([[1., 2., 3., 2., nan, 1.]], np.float32),
          np.array([[1., 3., 3., 1., 1., nan]], np.float32),
          np.array([[1., 3., 2., 2., 5., 0.]], np.float32)]
    tf = {"maximum": ([1., 3., 3., 2., nan, nan],
                      [[1., 0., 1., 1., 0., 0.], [0., 1., 0., 0., 0., 0.],
                       [0., 0., 0., 0., 1., 1.]]),
          "minimum": ([1., 2., 2., 1., nan, nan],
                      [[1., 1., 0., 0., 0., 0.], [0., 0., 0., 1., 0., 0.],
                       [0., 0., 1., 0., 1., 1.]])}
    for op, (y_tf, g_tf) in tf.items():
        y = np.empty((1, 6), np.float32)
        _C.merge_forward(op, xs, y)
        np.testing.assert_array_equal(y[0], np.array(y_tf, np.float32))
        dxs = [np.empty((1, 6), np.float32) for _ in xs]
        _C.merge_backward(op, xs, np.ones((1, 6), np.float32), dxs)
        for got, want in zip(dxs, g_tf):
            np.testing.assert_array_equal(got[0], want)


def test_multiply_gradient_with_a_zero_input_is_the_product_of_the_others():
    a = np.array([[0.0, 2.0]], np.float32)
    b = np.array([[3.0, 0.0]], np.float32)
    c = np.array([[5.0, 7.0]], np.float32)
    _, (da, db, dc) = _layer_call("multiply", [a, b, c], np.ones((1, 2), np.float32))
    np.testing.assert_array_equal(da, [[15.0, 0.0]])
    np.testing.assert_array_equal(db, [[0.0, 14.0]])
    np.testing.assert_array_equal(dc, [[0.0, 0.0]])


def test_average_divides_the_sum_as_keras():
    xs = [np.full((1, 3), v, np.float32) for v in (0.1, 0.2, 0.4)]
    want = ((np.float32(0.1) + np.float32(0.2)) + np.float32(0.4)) / np.float32(3)
    np.testing.assert_array_equal(layers.Average()(xs)[0], np.full(3, want, np.float32))


@pytest.mark.parametrize("op", ["add", "maximum", "multiply"])
def test_merge_is_bit_identical_for_any_thread_count(op, keep_num_threads):
    r = np.random.default_rng(5)
    cases = [[(128, 300), (128, 300), (128, 300)], [(600, 40, 1), (600, 40, 9)]]
    for shapes in cases:
        xs = _inputs(r, shapes)
        dy = r.standard_normal(ref_merge(op, xs).shape).astype(np.float32)
        results = []
        for n in (1, 2, 3):
            pycnn.set_num_threads(n)
            y, dxs = _layer_call(op, xs, dy)
            results.append([y] + dxs)
        for other in results[1:]:
            for a, b in zip(results[0], other):
                np.testing.assert_array_equal(a, b)


def test_backward_skips_inputs_whose_gradient_is_not_needed():
    r = np.random.default_rng(0)
    xs = _inputs(r, [(2, 3), (2, 3)])
    layer = layers.Multiply()
    ctx = Context()
    layer.forward(ctx, xs)
    da, db = layer.backward(ctx, np.ones((2, 3), np.float32), [False, True])
    assert da is None
    np.testing.assert_allclose(db, xs[0])
    assert layer.backward(ctx, np.ones((2, 3), np.float32), [False, False]) == [None, None]


# ---- shapes and errors --------------------------------------------------------------------

def test_output_shapes_follow_keras_broadcasting():
    assert layers.Add().compute_output_shape([(None, 4, 5), (None, 4, 5)]) == (None, 4, 5)
    assert layers.Add().compute_output_shape([(None, 4, 1), (None, 1, 5)]) == (None, 4, 5)
    assert layers.Add().compute_output_shape([(None, 3, 5), (None, 5)]) == (None, 3, 5)
    assert layers.Add().compute_output_shape([(None, None, 5), (None, 4, 5)]) == (None, None, 5)
    assert layers.Add().compute_output_shape([(8, 3), (None, 3)]) == (8, 3)


def test_incompatible_shapes_raise_keras_message():
    a, b = pycnn.Input((4, 5)), pycnn.Input((4, 6))
    with pytest.raises(ValueError, match=r"Inputs have incompatible shapes\. Received shapes "
                                         r"\(4, 5\) and \(4, 6\)"):
        layers.add([a, b])
    with pytest.raises(ValueError, match=r"incompatible shapes\. Received shapes \(4, 5\) and "
                                         r"\(4, 6\)"):
        layers.Maximum()([np.ones((2, 4, 5)), np.ones((2, 4, 6))])


def test_subtract_needs_exactly_two_inputs():
    a = pycnn.Input((4, 5))
    with pytest.raises(ValueError, match=r"A `Subtract` layer should be called on exactly 2 "
                                         r"inputs\. Received: input_shape=\[\(None, 4, 5\), "
                                         r"\(None, 4, 5\), \(None, 4, 5\)\]"):
        layers.subtract([a, a, a])


def test_different_batch_sizes_do_not_merge():
    with pytest.raises(ValueError, match="Cannot merge tensors with different batch sizes"):
        layers.Add()([np.ones((2, 3)), np.ones((3, 3))])


def test_merge_layer_needs_a_list():
    with pytest.raises(ValueError, match="should be called on a list of inputs"):
        layers.Add()(pycnn.Input((3,)))


# ---- Concatenate ---------------------------------------------------------------------------

@pytest.mark.parametrize("axis,shapes", [
    (-1, [(3, 4, 2), (3, 4, 5), (3, 4, 1)]),
    (1, [(3, 2, 5), (3, 4, 5)]),
    (2, [(2, 3, 4, 5), (2, 3, 1, 5)]),
    (-1, [(300, 70), (300, 60)]),      # several tasks
])
def test_concatenate_forward_backward_match_numpy(axis, shapes):
    r = np.random.default_rng(1)
    xs = _inputs(r, shapes)
    layer = layers.Concatenate(axis=axis)
    layer._maybe_build([(None,) + x.shape[1:] for x in xs])
    ctx = Context()
    y = layer.forward(ctx, xs)
    np.testing.assert_array_equal(y, np.concatenate(xs, axis=axis))
    dy = r.standard_normal(y.shape).astype(np.float32)
    dxs = layer.backward(ctx, dy, [True] * len(xs))
    splits = np.cumsum([x.shape[axis] for x in xs])[:-1]
    for got, want in zip(dxs, np.split(dy, splits, axis=axis)):
        np.testing.assert_array_equal(got, want)
    dxs = layer.backward(ctx, dy, [False] + [True] * (len(xs) - 1))
    assert dxs[0] is None
    np.testing.assert_array_equal(dxs[-1], np.split(dy, splits, axis=axis)[-1])


def test_concatenate_shape_and_keras_error():
    a, b = pycnn.Input((4, 5)), pycnn.Input((4, 6))
    assert layers.concatenate([a, b]).shape == (None, 4, 11)
    assert layers.concatenate([a, pycnn.Input((2, 5))], axis=1).shape == (None, 6, 5)
    with pytest.raises(ValueError, match=r"A `Concatenate` layer requires inputs with matching "
                                         r"shapes except for the concatenation axis\. Received: "
                                         r"input_shape=\[\(None, 4, 5\), \(None, 3, 6\)\]"):
        layers.concatenate([a, pycnn.Input((3, 6))])


def test_concatenate_refuses_the_batch_axis():
    with pytest.raises(ValueError, match="batch axis"):
        layers.Concatenate(axis=0)([np.ones((2, 3)), np.ones((2, 3))])
    with pytest.raises(ValueError, match="axis"):
        layers.Concatenate(axis="1")


def test_concatenate_accepts_numpy_integer_axis():
    layer = layers.Concatenate(axis=np.int64(1))
    y = layer([np.ones((2, 3), np.float32), np.zeros((2, 1), np.float32)])
    assert y.shape == (2, 4)
    assert json.loads(json.dumps(layer.get_config()))["axis"] == 1


# ---- configs and the functional forms --------------------------------------------------------

@pytest.mark.parametrize("cls", list(CLASSES.values()) + [layers.Concatenate])
def test_config_round_trip(cls):
    layer = cls(name="m") if cls is not layers.Concatenate else cls(axis=1, name="m")
    config = json.loads(json.dumps(layer.get_config()))
    assert config["name"] == "m"
    assert set(config) == {"name", "trainable", "dtype"} | ({"axis"} if cls is
                                                             layers.Concatenate else set())
    clone = cls.from_config(config)
    assert clone.get_config() == layer.get_config()


@pytest.mark.parametrize("op", OPS)
def test_functional_forms_create_the_layer_and_call_it(op):
    a, b = pycnn.Input((3,)), pycnn.Input((3,))
    out = FUNCTIONS[op]([a, b], name=f"my_{op}")
    assert out.shape == (None, 3)
    assert isinstance(out.node.layer, CLASSES[op])
    assert out.node.layer.name == f"my_{op}"
    xs = [np.arange(6, dtype=np.float32).reshape(2, 3), np.ones((2, 3), np.float32)]
    np.testing.assert_allclose(FUNCTIONS[op](xs), ref_merge(op, xs), rtol=1e-6)


def test_auto_names_are_keras_snake_case():
    assert layers.Add().name == "add"
    assert layers.Concatenate().name == "concatenate"
    assert layers.Add().name == "add_1"


def test_binding_validates_arrays():
    a = np.ones((2, 3), np.float32)
    with pytest.raises(TypeError, match="xs"):
        _C.merge_forward("add", a, np.empty((2, 3), np.float32))
    with pytest.raises(ValueError, match="unknown merge"):
        _C.merge_forward("pow", [a, a], np.empty((2, 3), np.float32))
    with pytest.raises(ValueError, match="does not broadcast"):
        _C.merge_forward("add", [a, np.ones((2, 4), np.float32)], np.empty((2, 3), np.float32))
    with pytest.raises(ValueError, match="exactly 2"):
        _C.merge_forward("subtract", [a, a, a], np.empty((2, 3), np.float32))
    with pytest.raises(TypeError, match="dtype"):
        _C.merge_forward("add", [a, a.astype(np.float64)], np.empty((2, 3), np.float32))
    with pytest.raises(ValueError, match="share memory"):
        _C.merge_forward("add", [a, a], a)
    with pytest.raises(ValueError, match="share memory"):
        d = np.empty((2, 3), np.float32)
        _C.merge_backward("add", [a, a], a.copy(), [d, d])
    with pytest.raises(ValueError, match="axis"):
        _C.concat_forward([a, a], np.empty((2, 6), np.float32), 0)
    with pytest.raises(ValueError, match="sum to"):
        _C.concat_forward([a, a], np.empty((2, 7), np.float32), 1)


# ---- functional models ------------------------------------------------------------------------

def test_residual_block_trains_with_fit(seed):
    r = np.random.default_rng(0)
    x = r.standard_normal((256, 8)).astype(np.float32)
    y = (x @ r.standard_normal((8, 1)) + np.sin(x[:, :1])).astype(np.float32)
    inp = pycnn.Input((8,))
    h = layers.Dense(8, activation="relu")(inp)
    h = layers.Dense(8)(h)
    res = layers.add([inp, h])                    # x + f(x)
    out = layers.Dense(1)(res)
    model = pycnn.Model(inp, out)
    model.compile(optimizer=pycnn.optimizers.Adam(learning_rate=0.02), loss="mse")
    before = model.evaluate(x, y, verbose=0)
    history = model.fit(x, y, epochs=10, batch_size=32, verbose=0)
    assert history.history["loss"][-1] < 0.5 * before
    # the model's gradient through the skip connection: compare with the layers by hand
    pred = model.predict(x[:4], verbose=0)
    d1, d2, d3 = (l for l in model.layers if isinstance(l, layers.Dense))
    hh = np.maximum(x[:4] @ d1.kernel.value + d1.bias.value, 0) @ d2.kernel.value + \
        d2.bias.value
    np.testing.assert_allclose(pred, (x[:4] + hh) @ d3.kernel.value + d3.bias.value,
                               rtol=1e-4, atol=1e-5)


def test_two_input_model_with_concatenate_trains(seed):
    r = np.random.default_rng(1)
    a = r.standard_normal((200, 3)).astype(np.float32)
    b = r.standard_normal((200, 5)).astype(np.float32)
    labels = (a[:, 0] + b[:, 1] > 0).astype(np.int64)
    ia, ib = pycnn.Input((3,)), pycnn.Input((5,))
    merged = layers.concatenate([ia, layers.Dense(4, activation="relu")(ib)])
    assert merged.shape == (None, 7)
    out = layers.Dense(2, activation="softmax")(merged)
    model = pycnn.Model([ia, ib], out)
    model.compile(optimizer=pycnn.optimizers.Adam(learning_rate=0.02),
                  loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    first = model.evaluate([a, b], labels, verbose=0)[0]
    model.fit([a, b], labels, epochs=15, batch_size=20, verbose=0)
    loss, acc = model.evaluate([a, b], labels, verbose=0)
    assert loss < 0.5 * first and acc > 0.9
    # the merged features: a's columns first, then the Dense branch of b
    d1 = next(l for l in model.layers if isinstance(l, layers.Dense) and l.units == 4)
    d2 = next(l for l in model.layers if isinstance(l, layers.Dense) and l.units == 2)
    feats = np.concatenate([a[:5], np.maximum(b[:5] @ d1.kernel.value + d1.bias.value, 0)], 1)
    z = feats @ d2.kernel.value + d2.bias.value
    p = np.exp(z - z.max(1, keepdims=True))
    np.testing.assert_allclose(model.predict([a[:5], b[:5]], verbose=0),
                               p / p.sum(1, keepdims=True), rtol=1e-4, atol=1e-6)


def test_a_tensor_used_twice_gets_both_gradients(seed):
    # y = Dense(x) + Dense(x) through add([h, h]): the gradient w.r.t. the Dense kernel is
    # twice that of h alone; compare one SGD step with the analytic update.
    x = np.array([[1.0, 2.0], [3.0, -1.0]], np.float32)
    t = np.array([[0.5], [1.0]], np.float32)
    inp = pycnn.Input((2,))
    dense = layers.Dense(1, use_bias=False, kernel_initializer="ones")
    h = dense(inp)
    model = pycnn.Model(inp, layers.add([h, h]))
    model.compile(optimizer=pycnn.optimizers.SGD(learning_rate=0.1), loss="mse")
    np.testing.assert_allclose(model.predict(x, verbose=0), 2 * x.sum(1, keepdims=True))
    model.fit(x, t, epochs=1, batch_size=2, shuffle=False, verbose=0)
    w = np.ones((2, 1))
    grad = x.T.astype(np.float64) @ (2 * (2 * x @ w - t) / 2) * 2
    np.testing.assert_allclose(dense.kernel.value, w - 0.1 * grad, rtol=1e-5)
