"""Graphs of any shape in the compiled step plan (pycnn/models/graph.py, plan.py, trainer.py),
checked against Keras' semantics and float64 NumPy references:

* functional models with several inputs and outputs, as lists and as dicts: fit / evaluate /
  predict, the History keys tf.keras 2 gives (``loss``, ``<output>_loss``,
  ``<output>_accuracy``), ``loss_weights`` in the total and in the gradients;
* a layer called twice (shared weights) and a tensor read by two layers: the gradients are
  the sums of every use, against central finite differences of a float64 forward pass;
* models inside models (a Sequential in a functional model, a functional model in a
  Sequential): run as part of the outer model, trained with it, frozen by
  ``inner.trainable = False``;
* a subclassed model (layers in ``__init__``, ``call``);
* ``layer.output`` / ``model.input``: a feature-map model sharing the weights;
* clear errors for a disconnected graph and for missing inputs;
* training results bit-identical for 1 and 2 threads;
* load_weights matching layers by name.
"""
from __future__ import annotations

import numpy as np
import pytest

import pycnn
from pycnn import layers

from reference import central_difference


# ---------------------------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------------------------

def f32(a):
    return np.ascontiguousarray(a, dtype=np.float32)


def f64(a):
    return np.asarray(a, dtype=np.float64)


def act64(kind, z):
    return {"linear": lambda v: v, "tanh": np.tanh, "relu": lambda v: np.maximum(v, 0),
            "sigmoid": lambda v: 1 / (1 + np.exp(-v))}[kind](z)


def dense64(x, w, b, kind="linear"):
    return act64(kind, f64(x) @ f64(w) + f64(b))


def plan_gradients(model, xs, rs):
    """The weight gradients of ``L = sum_i sum(output_i * rs[i])`` as the training plan
    computes them (every gradient starts as NaN, so one that is not written shows), and the
    outputs."""
    plan = model.compiled_plan(True)
    outs = [np.array(o) for o in plan.forward([f32(x) for x in xs])]
    for v in model.weights:
        v.grad[...] = np.nan
    reached = plan.backward([f32(r) for r in rs])
    assert {id(v) for v in reached} == {id(v) for v in model.trainable_weights}
    return outs, [v.grad.copy() for v in model.weights]


def finite_difference_check(loss, params, grads, h=1e-6, rtol=1e-3, atol=1e-5):
    """Central differences of the float64 scalar ``loss(params)`` at every coordinate of every
    parameter (the models here are tiny) against ``grads``."""
    params = [f64(p).copy() for p in params]
    for i, (p, g) in enumerate(zip(params, grads)):
        assert g.shape == p.shape
        flat = p.reshape(-1)
        for k in range(flat.size):
            fd = central_difference(lambda: loss(params), flat, k, h)
            got = float(g.reshape(-1)[k])
            assert abs(got - fd) <= rtol * abs(fd) + atol, (
                f"parameter {i} coordinate {np.unravel_index(k, p.shape)}: backward gives "
                f"{got!r}, finite difference {fd!r}")


def check_against_forward(model, x, rr, forward):
    """The planned output for ``x`` equals the float64 ``forward(weights)``, and the weight
    gradients for the output cotangent ``rr`` equal the finite differences of
    ``sum(forward(weights) * rr)``."""
    outs, grads = plan_gradients(model, [x], [rr])
    params = model.get_weights()
    np.testing.assert_allclose(outs[0], forward(params), rtol=1e-5, atol=1e-6)
    finite_difference_check(lambda p: float((forward(p) * rr).sum()), params, grads)


def changed(before, after) -> bool:
    return any(not np.array_equal(a, b) for a, b in zip(before, after))


class Sum(layers.Layer):
    """A merge layer written to the layer contract: the sum of its inputs."""

    multi_input = True

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[0])

    def forward(self, ctx, x, training=False):
        out = ctx.buffer("y", x[0].shape)
        np.add(x[0], x[1], out=out)
        return out

    def backward(self, ctx, dy, need_dx=True):
        return [np.array(dy, np.float32) if n else None for n in need_dx]


def two_head_model(as_dict=False):
    """Inputs ``a`` (4,) and ``b`` (3,); outputs ``cls`` (3-class softmax, reads both) and
    ``reg`` (one linear unit, reads b)."""
    a = pycnn.Input(shape=(4,), name="a")
    b = pycnn.Input(shape=(3,), name="b")
    h = layers.Dense(5, activation="tanh", name="ha")(a)
    g = layers.Dense(5, activation="tanh", name="hb")(b)
    cls = layers.Dense(3, activation="softmax", name="cls")(Sum(name="merge")([h, g]))
    reg = layers.Dense(1, name="reg")(g)
    if as_dict:
        return pycnn.Model({"a": a, "b": b}, {"cls": cls, "reg": reg})
    return pycnn.Model([a, b], [cls, reg])


def two_head_data(n=24, seed=0):
    r = np.random.default_rng(seed)
    xa = f32(r.normal(size=(n, 4)))
    xb = f32(r.normal(size=(n, 3)))
    y_cls = (xa[:, :3] + xb).argmax(axis=1)
    y_reg = f32(xb.sum(axis=1, keepdims=True) * 0.5)
    return xa, xb, y_cls, y_reg


def two_head_reference(model, xa, xb):
    """The model's outputs in float64 from its weights (kernel, bias of ha, hb, cls, reg)."""
    w = {layer.name: layer.get_weights() for layer in model.layers if layer.weights}
    h = dense64(xa, *w["ha"], "tanh")
    g = dense64(xb, *w["hb"], "tanh")
    z = dense64(h + g, *w["cls"])
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True), dense64(g, *w["reg"])


def expected_metrics(model, xa, xb, y_cls, y_reg, weights=(1.0, 1.0)):
    p, v = two_head_reference(model, xa, xb)
    cls_loss = float(-np.mean(np.log(p[np.arange(len(y_cls)), y_cls])))
    reg_loss = float(np.mean((v - y_reg) ** 2))
    return {"loss": weights[0] * cls_loss + weights[1] * reg_loss, "cls_loss": cls_loss,
            "reg_loss": reg_loss, "cls_accuracy": float(np.mean(p.argmax(axis=1) == y_cls))}


# ---------------------------------------------------------------------------------------------
# Several inputs and outputs
# ---------------------------------------------------------------------------------------------

def test_two_inputs_two_outputs_as_lists_fit_evaluate_predict(seed):
    model = two_head_model()
    assert model.input_names == ["a", "b"] and model.output_names == ["cls", "reg"]
    xa, xb, y_cls, y_reg = two_head_data()
    model.compile(optimizer=pycnn.optimizers.Adam(0.01),
                  loss=["sparse_categorical_crossentropy", "mse"], metrics=["accuracy"])
    history = model.fit([xa, xb], [y_cls, y_reg], batch_size=8, epochs=5, verbose=0)
    # tf.keras 2's names and order: the total, each output's loss, each output's metrics
    keys = ["loss", "cls_loss", "reg_loss", "cls_accuracy", "reg_accuracy"]
    assert list(history.history) == keys
    assert model.metrics_names == keys
    assert all(len(v) == 5 for v in history.history.values())
    for ep in range(5):
        assert history.history["loss"][ep] == pytest.approx(
            history.history["cls_loss"][ep] + history.history["reg_loss"][ep], rel=1e-5)
    assert history.history["loss"][-1] < history.history["loss"][0]

    p_cls, p_reg = model.predict([xa, xb], batch_size=5, verbose=0)
    ref_cls, ref_reg = two_head_reference(model, xa, xb)
    np.testing.assert_allclose(p_cls, ref_cls, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(p_reg, ref_reg, rtol=1e-5, atol=1e-6)
    direct = model([xa, xb])
    assert isinstance(direct, list) and len(direct) == 2
    np.testing.assert_array_equal(direct[0], p_cls)

    logs = model.evaluate([xa, xb], [y_cls, y_reg], batch_size=24, verbose=0, return_dict=True)
    expect = expected_metrics(model, xa, xb, y_cls, y_reg)
    for key in ("loss", "cls_loss", "reg_loss", "cls_accuracy"):
        assert logs[key] == pytest.approx(expect[key], rel=1e-5), key
    values = model.evaluate([xa, xb], [y_cls, y_reg], batch_size=24, verbose=0)
    assert values == [logs[k] for k in keys]


def test_inputs_and_outputs_as_dicts(seed):
    model = two_head_model(as_dict=True)
    xa, xb, y_cls, y_reg = two_head_data()
    model.compile(optimizer="sgd",
                  loss={"cls": "sparse_categorical_crossentropy", "reg": "mse"},
                  metrics={"cls": "accuracy"})
    x = {"b": xb, "a": xa}                  # keys in any order
    y = {"reg": y_reg, "cls": y_cls}
    history = model.fit(x, y, batch_size=8, epochs=2, verbose=0)
    assert list(history.history) == ["loss", "cls_loss", "reg_loss", "cls_accuracy"]
    out = model.predict(x, verbose=0)
    assert isinstance(out, dict) and list(out) == ["cls", "reg"]
    assert out["cls"].shape == (24, 3) and out["reg"].shape == (24, 1)
    ref_cls, ref_reg = two_head_reference(model, xa, xb)
    np.testing.assert_allclose(out["cls"], ref_cls, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(out["reg"], ref_reg, rtol=1e-5, atol=1e-6)
    logs = model.evaluate(x, y, verbose=0, return_dict=True)
    expect = expected_metrics(model, xa, xb, y_cls, y_reg)
    for key, value in expect.items():
        assert logs[key] == pytest.approx(value, rel=1e-5), key
    # the same model fed lists in the order of its inputs and outputs gives the same numbers
    assert model.evaluate([xa, xb], [y_cls, y_reg], verbose=0, return_dict=True) == logs


@pytest.mark.parametrize("form", ["list", "dict"])
def test_loss_weights_weigh_the_total_and_the_gradients(seed, form):
    xa, xb, y_cls, y_reg = two_head_data()
    model = two_head_model()
    weights = [0.5, 2.0]
    model.compile(optimizer=pycnn.optimizers.SGD(learning_rate=0.0),
                  loss=["sparse_categorical_crossentropy", "mse"],
                  loss_weights=weights if form == "list" else {"cls": 0.5, "reg": 2.0})
    history = model.fit([xa, xb], [y_cls, y_reg], batch_size=24, epochs=1, shuffle=False,
                        verbose=0)
    expect = expected_metrics(model, xa, xb, y_cls, y_reg, weights)
    for key in ("loss", "cls_loss", "reg_loss"):
        assert history.history[key][0] == pytest.approx(expect[key], rel=1e-5), key
    assert model.evaluate([xa, xb], [y_cls, y_reg], verbose=0)[0] == \
        pytest.approx(expect["loss"], rel=1e-5)

    # a weight of 0 takes that output out of the gradient: its head does not move
    model = two_head_model()
    model.compile(optimizer=pycnn.optimizers.SGD(learning_rate=0.1),
                  loss=["sparse_categorical_crossentropy", "mse"],
                  loss_weights=[0.0, 1.0] if form == "list" else {"cls": 0.0})
    before = {l.name: l.get_weights() for l in model.layers}
    model.fit([xa, xb], [y_cls, y_reg], batch_size=8, epochs=1, verbose=0)
    after = {l.name: l.get_weights() for l in model.layers}
    assert not changed(before["cls"], after["cls"]) and not changed(before["ha"], after["ha"])
    assert changed(before["reg"], after["reg"]) and changed(before["hb"], after["hb"])


def test_an_output_without_a_loss_needs_no_targets(seed):
    model = two_head_model(as_dict=True)
    xa, xb, y_cls, y_reg = two_head_data()
    model.compile(optimizer="sgd", loss={"reg": "mse"})
    reg_before = model.get_layer("reg").get_weights()
    cls_before = model.get_layer("cls").get_weights()
    history = model.fit({"a": xa, "b": xb}, {"reg": y_reg}, epochs=1, verbose=0)
    assert list(history.history) == ["loss", "reg_loss"]
    assert changed(reg_before, model.get_layer("reg").get_weights())
    assert not changed(cls_before, model.get_layer("cls").get_weights())


# ---------------------------------------------------------------------------------------------
# Shared layers and shared tensors: gradients are sums
# ---------------------------------------------------------------------------------------------

def test_shared_layer_on_two_inputs_sums_its_gradients():
    a = pycnn.Input(shape=(4,))
    b = pycnn.Input(shape=(4,))
    shared = layers.Dense(3, activation="tanh")
    model = pycnn.Model([a, b], [shared(a), shared(b)])
    assert model.layers.count(shared) == 1 and len(model.weights) == 2
    r = np.random.default_rng(1)
    xa, xb = f32(r.normal(size=(5, 4))), f32(r.normal(size=(5, 4)))
    ra, rb = r.normal(size=(5, 3)), r.normal(size=(5, 3))
    outs, grads = plan_gradients(model, [xa, xb], [ra, rb])
    w, bias = model.get_weights()
    np.testing.assert_allclose(outs[0], dense64(xa, w, bias, "tanh"), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(outs[1], dense64(xb, w, bias, "tanh"), rtol=1e-5, atol=1e-6)

    def loss(p):
        return float((dense64(xa, *p, "tanh") * ra).sum() + (dense64(xb, *p, "tanh") * rb).sum())
    finite_difference_check(loss, [w, bias], grads)
    # and the sum is really of both calls: one call alone gives a different gradient
    alone = pycnn.Model(a, shared(a))
    _, (gw_a, _) = plan_gradients(alone, [xa], [ra])
    assert not np.allclose(gw_a, grads[0], rtol=1e-3)


def test_shared_layer_called_twice_in_a_chain():
    """``d(d(x))``: each call keeps its own context; the kernel's gradient has a term from each
    call (the chain rule through the first)."""
    inp = pycnn.Input(shape=(4,))
    d = layers.Dense(4, activation="tanh")
    out = layers.Dense(2)(d(d(inp)))
    model = pycnn.Model(inp, out)
    r = np.random.default_rng(2)
    x = f32(r.normal(size=(6, 4)))
    rr = r.normal(size=(6, 2))

    def forward(p):
        w, b, w2, b2 = p
        return dense64(dense64(dense64(x, w, b, "tanh"), w, b, "tanh"), w2, b2)
    check_against_forward(model, x, rr, forward)


def test_tensor_read_by_two_layers_sums_the_gradients():
    """``h`` feeds two Dense layers (two outputs): the gradient reaching h, and so h's
    layer's weight gradients, is the sum over both readers."""
    inp = pycnn.Input(shape=(3,))
    h = layers.Dense(4, activation="tanh")(inp)
    o1 = layers.Dense(2)(h)
    o2 = layers.Dense(3, activation="sigmoid")(h)
    model = pycnn.Model(inp, [o1, o2])
    r = np.random.default_rng(3)
    x = f32(r.normal(size=(5, 3)))
    r1, r2 = r.normal(size=(5, 2)), r.normal(size=(5, 3))
    _, grads = plan_gradients(model, [x], [r1, r2])

    def loss(p):
        w, b, w1, b1, w2, b2 = p
        hh = dense64(x, w, b, "tanh")
        return float((dense64(hh, w1, b1) * r1).sum() +
                     (dense64(hh, w2, b2, "sigmoid") * r2).sum())
    finite_difference_check(loss, model.get_weights(), grads)


def test_skip_connection_with_a_merge_layer_sums_both_paths(seed):
    """``y = h + Dense(h)``: h is read by the Dense and by the merge layer; the same Dense
    layer ``d`` is also applied to the input (a second use of its weights)."""
    inp = pycnn.Input(shape=(4,))
    d = layers.Dense(4, activation="tanh")
    h = d(inp)
    y = Sum()([h, d(h)])
    out = layers.Dense(2)(y)
    model = pycnn.Model(inp, out)
    r = np.random.default_rng(4)
    x = f32(r.normal(size=(6, 4)))
    rr = r.normal(size=(6, 2))

    def forward(p):
        w, b, w2, b2 = p
        hh = dense64(x, w, b, "tanh")
        return dense64(hh + dense64(hh, w, b, "tanh"), w2, b2)
    check_against_forward(model, x, rr, forward)
    # it trains
    target = f32(r.normal(size=(6, 2)))
    model.compile(optimizer=pycnn.optimizers.SGD(0.05), loss="mse")
    history = model.fit(x, target, batch_size=6, epochs=20, verbose=0)
    assert history.history["loss"][-1] < 0.9 * history.history["loss"][0]


# ---------------------------------------------------------------------------------------------
# Models inside models
# ---------------------------------------------------------------------------------------------

def _classification_data(n=40, features=5, classes=3, seed=5):
    r = np.random.default_rng(seed)
    x = f32(r.normal(size=(n, features)))
    y = (x[:, :classes] * np.arange(1, classes + 1)).argmax(axis=1)
    return x, y


def test_sequential_nested_in_a_functional_model(seed):
    inner = pycnn.Sequential([layers.Dense(6, activation="relu"), layers.Dense(4)],
                             name="inner")
    inp = pycnn.Input(shape=(5,))
    head = layers.Dense(3, activation="softmax")
    model = pycnn.Model(inp, head(inner(inp)))
    assert [l.name for l in model.layers][1:] == ["inner", head.name]
    assert len(model.weights) == 6 and model.count_params() == 6 * 5 + 6 + 6 * 4 + 4 + 15
    x, y = _classification_data()
    np.testing.assert_allclose(model.predict(x, verbose=0), head(inner(x)), rtol=1e-6,
                               atol=1e-7)
    # the plan expands the inner model in place: its layers are the plan's steps
    steps = [s.layer for s in model.compiled_plan(False).steps]
    assert steps == inner.layers + [head]

    model.compile(optimizer=pycnn.optimizers.SGD(0.1), loss="sparse_categorical_crossentropy")
    before = inner.get_weights()
    history = model.fit(x, y, epochs=5, verbose=0)
    assert changed(before, inner.get_weights())
    assert history.history["loss"][-1] < history.history["loss"][0]

    inner.trainable = False
    assert all(not l.trainable for l in inner.layers)
    assert [v.name for v in model.trainable_weights] == [v.name for v in head.weights]
    frozen, head_before = inner.get_weights(), head.get_weights()
    model.fit(x, y, epochs=2, verbose=0)
    assert not changed(frozen, inner.get_weights())
    assert changed(head_before, head.get_weights())
    inner.trainable = True
    model.fit(x, y, epochs=1, verbose=0)
    assert changed(frozen, inner.get_weights())


def test_functional_model_nested_in_a_sequential(seed):
    fi = pycnn.Input(shape=(5,))
    func = pycnn.Model(fi, layers.Dense(4, activation="tanh")(fi), name="func")
    head = layers.Dense(3, activation="softmax")
    model = pycnn.Sequential([func, head])
    x, y = _classification_data()
    np.testing.assert_allclose(model.predict(x, verbose=0), head(func(x)), rtol=1e-6,
                               atol=1e-7)
    assert model.layers == [func, head] and len(model.weights) == 4
    model.compile(optimizer=pycnn.optimizers.SGD(0.1), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    before = func.get_weights()
    model.fit(x, y, epochs=3, verbose=0)
    assert changed(before, func.get_weights())
    func.trainable = False
    assert len(model.trainable_weights) == 2
    frozen, head_before = func.get_weights(), head.get_weights()
    model.fit(x, y, epochs=2, verbose=0)
    assert not changed(frozen, func.get_weights())
    assert changed(head_before, head.get_weights())
    # the nested model still works on its own, with the trained weights
    w, b = func.get_weights()
    np.testing.assert_allclose(func.predict(x, verbose=0), dense64(x, w, b, "tanh"),
                               rtol=1e-5, atol=1e-6)


def test_nested_model_gradients_match_finite_differences():
    fi = pycnn.Input(shape=(3,))
    func = pycnn.Model(fi, layers.Dense(4, activation="tanh")(fi))
    inp = pycnn.Input(shape=(3,))
    out = layers.Dense(2)(func(inp))
    model = pycnn.Model(inp, out)
    r = np.random.default_rng(6)
    x = f32(r.normal(size=(5, 3)))
    rr = r.normal(size=(5, 2))
    _, grads = plan_gradients(model, [x], [rr])

    def loss(p):
        w, b, w2, b2 = p
        return float((dense64(dense64(x, w, b, "tanh"), w2, b2) * rr).sum())
    finite_difference_check(loss, model.get_weights(), grads)


# ---------------------------------------------------------------------------------------------
# Subclassed models
# ---------------------------------------------------------------------------------------------

class TwoLayers(pycnn.Model):
    def __init__(self, hidden=8, classes=3, **kwargs):
        super().__init__(**kwargs)
        self.hidden = layers.Dense(hidden, activation="relu")
        self.dropout = layers.Dropout(0.5, seed=1)
        self.out = layers.Dense(classes, activation="softmax")

    def call(self, inputs, training=None):
        return self.out(self.dropout(self.hidden(inputs), training=training))


def test_subclassed_model_fits_evaluates_and_predicts(seed):
    model = TwoLayers()
    assert not model.built
    x, y = _classification_data(n=60)
    model.compile(optimizer=pycnn.optimizers.Adam(0.02), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    history = model.fit(x, y, batch_size=20, epochs=15, verbose=0)
    assert model.built and list(history.history) == ["loss", "accuracy"]
    assert history.history["loss"][-1] < history.history["loss"][0]
    assert model.layers == [model.hidden, model.dropout, model.out]
    assert [v.shape for v in model.weights] == [(5, 8), (8,), (8, 3), (3,)]
    # inference: dropout is the identity, the outputs are the two Dense layers'
    w1, b1, w2, b2 = model.get_weights()
    z = dense64(dense64(x, w1, b1, "relu"), w2, b2)
    p = np.exp(z - z.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    np.testing.assert_allclose(model.predict(x, verbose=0), p, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(model(x), model.predict(x, verbose=0, batch_size=60))
    loss, acc = model.evaluate(x, y, verbose=0)
    assert loss == pytest.approx(-np.mean(np.log(p[np.arange(60), y])), rel=1e-5)
    assert acc == pytest.approx(np.mean(p.argmax(axis=1) == y))


# ---------------------------------------------------------------------------------------------
# layer.output / model.input: a feature-map model
# ---------------------------------------------------------------------------------------------

def test_feature_map_model_from_layer_outputs_shares_the_weights(seed):
    inp = pycnn.Input(shape=(9, 9, 1))
    t = layers.Conv2D(3, 3, activation="relu")(inp)
    t = layers.MaxPooling2D(2)(t)
    t = layers.Conv2D(4, 2, activation="relu")(t)
    model = pycnn.Model(inp, layers.Dense(2, activation="softmax")(layers.Flatten()(t)))
    maps = pycnn.Model(model.input, [l.output for l in model.layers[1:4]])
    assert [t.shape for t in maps.outputs] == [(None, 7, 7, 3), (None, 3, 3, 3),
                                               (None, 2, 2, 4)]
    assert all(a is b for a, b in zip(maps.weights, model.weights[:4]))
    x = f32(np.random.default_rng(7).random((4, 9, 9, 1)))

    def by_hand():
        a = model.layers[1](x)
        b = model.layers[2](a)
        return [a, b, model.layers[3](b)]
    for got, want in zip(maps.predict(x, verbose=0), by_hand()):
        np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-7)
    # training the full model moves the feature maps too (same weights)
    before = maps.predict(x, verbose=0)
    model.compile(optimizer=pycnn.optimizers.SGD(0.5), loss="sparse_categorical_crossentropy")
    model.fit(x, np.array([0, 1, 0, 1]), epochs=2, verbose=0)
    after = maps.predict(x, verbose=0)
    assert not np.array_equal(before[0], after[0])
    for got, want in zip(after, by_hand()):
        np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-7)


# ---------------------------------------------------------------------------------------------
# Errors
# ---------------------------------------------------------------------------------------------

def test_disconnected_graph_is_a_clear_error():
    a = pycnn.Input(shape=(3,), name="a")
    b = pycnn.Input(shape=(3,), name="b")
    out = layers.Dense(2, name="head")(b)
    with pytest.raises(ValueError, match="Graph disconnected") as err:
        pycnn.Model(a, out)
    assert '"b"' in str(err.value) and "head" in str(err.value)


def test_missing_inputs_are_clear_errors():
    a = pycnn.Input(shape=(3,), name="a")
    b = pycnn.Input(shape=(2,), name="b")
    out = layers.Dense(2)(Sum()([layers.Dense(2)(a), b]))
    model = pycnn.Model([a, b], out)
    model.compile(optimizer="sgd", loss="mse")
    xa, xb = np.zeros((4, 3), np.float32), np.zeros((4, 2), np.float32)
    y = np.zeros((4, 2), np.float32)
    with pytest.raises(ValueError, match=r"expects 2 input\(s\) \['a', 'b'\].*received 1"):
        model.predict(xa, verbose=0)
    with pytest.raises(ValueError, match=r"fit\(x\).*expects 2 input"):
        model.fit([xa], y, verbose=0)
    dmodel = pycnn.Model({"a": a, "b": b}, out)
    with pytest.raises(ValueError, match=r"missing data for input\(s\) \['b'\]"):
        dmodel.predict({"a": xa}, verbose=0)
    with pytest.raises(ValueError, match="Input 1"):
        model.predict([xa, np.zeros((4, 5), np.float32)], verbose=0)
    assert model.predict([xa, xb], verbose=0).shape == (4, 2)


# ---------------------------------------------------------------------------------------------
# Threads
# ---------------------------------------------------------------------------------------------

def _threaded_run(threads):
    pycnn.set_num_threads(threads)
    pycnn.utils.set_random_seed(8)
    img = pycnn.Input(shape=(12, 12, 2), name="img")
    aux = pycnn.Input(shape=(6,), name="aux")
    t = layers.Conv2D(16, 3, activation="relu")(img)
    t = layers.MaxPooling2D(2)(t)
    t = layers.Conv2D(16, 3, padding="same", activation="relu")(t)
    t = layers.Flatten()(t)
    shared = layers.Dense(6, activation="relu")
    t = Sum()([layers.Dense(6)(t), shared(shared(aux))])
    cls = layers.Dense(4, activation="softmax", name="cls")(t)
    reg = layers.Dense(2, name="reg")(t)
    model = pycnn.Model([img, aux], [cls, reg])
    model.compile(optimizer="adam", loss=["sparse_categorical_crossentropy", "mse"],
                  metrics=["accuracy"])
    r = np.random.default_rng(9)
    x_img, x_aux = f32(r.random((48, 12, 12, 2))), f32(r.normal(size=(48, 6)))
    y_cls, y_reg = r.integers(0, 4, 48), f32(r.normal(size=(48, 2)))
    history = model.fit([x_img, x_aux], [y_cls, y_reg], batch_size=16, epochs=2, verbose=0,
                        validation_split=0.25)
    return (model.get_weights(), history.history,
            model.predict([x_img, x_aux], verbose=0))


def test_training_is_bit_identical_for_1_and_2_threads(keep_num_threads):
    (w1, h1, p1), (w2, h2, p2) = _threaded_run(1), _threaded_run(2)
    for a, b in zip(w1, w2):
        np.testing.assert_array_equal(a, b)
    assert h1 == h2
    for a, b in zip(p1, p2):
        np.testing.assert_array_equal(a, b)


# ---------------------------------------------------------------------------------------------
# Weights by name
# ---------------------------------------------------------------------------------------------

def test_load_weights_matches_layers_by_name(tmp_path):
    """The same named layers, listed in another order by another graph (the branches built
    the other way round), get their own weights back."""
    def build(swap):
        a = pycnn.Input(shape=(3,), name="a")
        b = pycnn.Input(shape=(3,), name="b")
        branches = [("left", a, 4), ("right", b, 4)]    # same shapes: order would load
        outs = {}
        for name, t, units in (reversed(branches) if swap else branches):
            outs[name] = layers.Dense(units, name=name)(t)
        return pycnn.Model([a, b], [outs["left"], outs["right"]] if not swap else
                           [outs["right"], outs["left"]])
    source, target = build(False), build(True)
    assert [l.name for l in source.layers if l.weights] == ["left", "right"]
    assert [l.name for l in target.layers if l.weights] == ["right", "left"]
    source.save_weights(tmp_path / "w.npz")
    target.load_weights(tmp_path / "w.npz")
    for name in ("left", "right"):
        for got, want in zip(target.get_layer(name).get_weights(),
                             source.get_layer(name).get_weights()):
            np.testing.assert_array_equal(got, want)
