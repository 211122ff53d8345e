"""Every kernel family on every SIMD path: ``_C.set_isa`` (and so ``PYCNN_ISA`` and
``pycnn.backend.set_simd_path``) selects the elementwise loops' variant as well as the GEMM
micro-kernel, and each family's portable (generic) path gives the same bits as the SIMD paths.

The loops are plain ISO C (no FMA contraction, no reassociated sums), so the paths must agree
exactly; a path the CPU lacks is skipped.
"""
from __future__ import annotations

import numpy as np
import pytest

from pycnn import _C

PATHS = ("generic", "avx2", "avx512")
ACTIVATIONS = ("relu", "sigmoid", "tanh", "softmax", "elu", "selu", "softplus", "softsign",
               "silu", "hard_sigmoid", "hard_silu", "relu6", "leaky_relu", "exponential",
               "gelu", "gelu_tanh", "mish", "log_sigmoid", "hard_tanh")
LOSSES = ("mse", "mae", "mape", "msle", "huber", "logcosh", "poisson", "hinge", "squared_hinge",
          "bce", "bce_logits", "kld")
MERGES = ("add", "subtract", "multiply", "average", "maximum", "minimum")


def _rng(seed=0):
    return np.random.default_rng(seed)


def _f32(rng, *shape):
    return rng.standard_normal(shape).astype(np.float32)


def on_every_path(run):
    """``run()`` (returning a list of arrays and numbers) on every path the CPU has; asserts the
    loops really switched and returns {path: result}."""
    before = _C.isa()
    results = {}
    try:
        for path in PATHS:
            try:
                _C.set_isa(path)
            except ValueError:
                continue
            assert _C.loop_isa() == path
            results[path] = run()
    finally:
        _C.set_isa(before)
    assert "generic" in results
    return results


def assert_paths_agree(results):
    ref = results["generic"]
    for path, got in results.items():
        for i, (a, b) in enumerate(zip(ref, got)):
            np.testing.assert_array_equal(np.asarray(b), np.asarray(a),
                                          err_msg=f"{path} differs from generic at output {i}")


# ---- the loops follow the runtime's choice -----------------------------------------------------

def test_loop_path_follows_set_isa():
    assert PATHS.index(_C.loop_isa()) <= PATHS.index(_C.isa())
    results = on_every_path(lambda: [_C.loop_isa()])
    assert {p: r[0] for p, r in results.items()} == {p: p for p in results}


def test_isa_fixture_switches_the_loops(isa):
    assert _C.loop_isa() == isa


# ---- one test per family -------------------------------------------------------------------------

@pytest.mark.parametrize("kind", ACTIVATIONS)
def test_activations_agree_on_every_path(kind):
    rng = _rng(1)
    x = _f32(rng, 37, 1031) * 3          # sizes that leave vector tails
    dy = _f32(rng, 37, 1031)

    def run():
        y = np.empty_like(x)
        _C.activation_forward(kind, x, y)
        dx = np.empty_like(x)
        _C.activation_backward(kind, y, dy, dx, x=x)
        inplace = x.copy()
        _C.activation_forward(kind, inplace, inplace)
        return [y, dx, inplace]

    assert_paths_agree(on_every_path(run))


def test_pooling_agrees_on_every_path():
    rng = _rng(2)
    x = _f32(rng, 3, 13, 11, 19)
    x[0, 0, 0, 0] = np.nan

    def run():
        out = []
        # 2x2 tiles (the fast paths), then overlapping windows with padding (the general ones)
        for pool, strides, pads, (oh, ow) in (((2, 2), (2, 2), (0, 0), (6, 5)),
                                              ((3, 2), (1, 2), (1, 0), (13, 5))):
            y = np.empty((3, oh, ow, 19), np.float32)
            am = np.empty((3, oh, ow, 19), np.int32)
            _C.maxpool2d_forward(x, y, am, pool, strides, pads)
            dy = _f32(_rng(3), *y.shape)
            dx = np.empty_like(x)
            _C.maxpool2d_backward(dy, am, dx)
            ya = np.empty_like(y)
            _C.avgpool2d_forward(x, ya, pool, strides, pads)
            dxa = np.empty_like(x)
            _C.avgpool2d_backward(dy, dxa, pool, strides, pads)
            out += [y, am, dx, ya, dxa]
        return out

    assert_paths_agree(on_every_path(run))


def test_global_pooling_agrees_on_every_path():
    rng = _rng(4)
    x = _f32(rng, 5, 49, 67)

    def run():
        y, am = np.empty((5, 67), np.float32), np.empty((5, 67), np.int32)
        _C.global_pool_forward(x, y, am)
        ym = np.empty((5, 67), np.float32)
        _C.global_pool_forward(x, ym, None)
        dx = np.empty_like(x)
        _C.global_pool_backward(_f32(_rng(5), 5, 67), am, dx)
        return [y, am, ym, dx]

    assert_paths_agree(on_every_path(run))


def test_optimizers_agree_on_every_path():
    n = 70001                                   # several ranges, and a tail
    rng = _rng(6)
    w0, g = _f32(rng, n), _f32(rng, n)

    def run():
        out = []
        w, v = w0.copy(), np.zeros(n, np.float32)
        _C.sgd_update(w, g, v, 0.1, 0.9, nesterov=True, clip=1.0, decay=0.01)
        out += [w, v]
        w, v, mom, mg = w0.copy(), np.full(n, 0.5, np.float32), np.zeros(n, np.float32), \
            np.zeros(n, np.float32)
        _C.rmsprop_update(w, g, v, 0.01, 0.9, 1e-7, momentum=0.5, mom=mom, centered=True, mg=mg)
        out += [w, v, mom, mg]
        w, m, v, vhat = (w0.copy(), np.zeros(n, np.float32), np.zeros(n, np.float32),
                         np.zeros(n, np.float32))
        _C.adam_update(w, g, m, v, 0.01, 0.9, 0.999, 1e-7, 3, vhat=vhat)
        out += [w, m, v, vhat]
        w, m, u = w0.copy(), np.zeros(n, np.float32), np.zeros(n, np.float32)
        _C.adamax_update(w, g, m, u, 0.01, 0.9, 0.999, 1e-7, 3)
        out += [w, m, u]
        w, m, v = w0.copy(), np.zeros(n, np.float32), np.zeros(n, np.float32)
        _C.nadam_update(w, g, m, v, 0.01, 0.9, 0.999, 1e-7, 3, 0.8)
        out += [w, m, v]
        w, acc = w0.copy(), np.full(n, 0.1, np.float32)
        _C.adagrad_update(w, g, acc, 0.01, 1e-7)
        out += [w, acc]
        w, ag, ad = w0.copy(), np.zeros(n, np.float32), np.zeros(n, np.float32)
        _C.adadelta_update(w, g, ag, ad, 1.0, 0.95, 1e-7)
        out += [w, ag, ad]
        w, m = w0.copy(), np.zeros(n, np.float32)
        _C.lion_update(w, g, m, 0.001, 0.9, 0.99)
        out += [w, m]
        avg = w0.copy()
        _C.ema_update(avg, g, 0.99)
        acc = w0.copy()
        _C.grad_accumulate(acc, g, 2)
        out += [avg, acc, _C.sum_squares(g)]
        return out

    assert_paths_agree(on_every_path(run))


@pytest.mark.parametrize("kind", LOSSES)
def test_elementwise_losses_agree_on_every_path(kind):
    rng = _rng(7)
    pred = rng.uniform(0.01, 0.99, (23, 131)).astype(np.float32)
    true = rng.uniform(0.0, 1.0, (23, 131)).astype(np.float32)
    if kind in ("hinge", "squared_hinge"):
        true = np.sign(true - 0.5).astype(np.float32)

    def run():
        grad = np.empty_like(pred)
        rows = np.empty(23, np.float64)
        total = _C.loss_rows(kind, pred, true, grad, row_losses=rows)
        return [total, grad, rows]

    assert_paths_agree(on_every_path(run))


def test_normalization_agrees_on_every_path():
    rng = _rng(8)
    x = _f32(rng, 6, 9, 7, 37)
    dy = _f32(rng, *x.shape)
    x2, dy2 = x.reshape(54, 259), dy.reshape(54, 259)

    def run():
        out = []
        for shape in ((6 * 9 * 7, 37, 1), (6, 9, 259)):        # channels last, and inner > 1
            xs, dys = x.reshape(shape), dy.reshape(shape)
            c = shape[1]
            mean, var = np.zeros(c, np.float32), np.ones(c, np.float32)
            gamma, beta = _f32(_rng(9), c), _f32(_rng(10), c)
            y = np.empty_like(xs)
            _C.batchnorm_forward(xs, mean, var, gamma, beta, y, 1e-3, True)
            dx, dg, db = np.empty_like(xs), np.empty(c, np.float32), np.empty(c, np.float32)
            _C.batchnorm_backward(xs, mean, var, gamma, dys, dx, dg, db, 1e-3, True)
            out += [y, mean, var, dx, dg, db]
        gamma, beta = _f32(_rng(11), 259), _f32(_rng(12), 259)
        y, mean, inv = np.empty_like(x2), np.empty(54, np.float32), np.empty(54, np.float32)
        _C.layernorm_forward(x2, gamma, beta, y, mean, inv, 1e-3)
        dx, dg, db = np.empty_like(x2), np.empty(259, np.float32), np.empty(259, np.float32)
        _C.layernorm_backward(x2, gamma, mean, inv, dy2, dx, dg, db)
        return out + [y, mean, inv, dx, dg, db]

    assert_paths_agree(on_every_path(run))


@pytest.mark.parametrize("kind", MERGES)
def test_merge_agrees_on_every_path(kind):
    rng = _rng(13)
    k = 2 if kind == "subtract" else 3
    xs = [_f32(rng, 7, 1001) for _ in range(k)]
    dy = _f32(rng, 7, 1001)

    def run():
        y = np.empty_like(xs[0])
        _C.merge_forward(kind, xs, y)
        dxs = [np.empty_like(x) for x in xs]
        _C.merge_backward(kind, xs, dy, dxs)
        return [y] + dxs

    assert_paths_agree(on_every_path(run))


@pytest.mark.parametrize("interpolation", ["nearest", "bilinear"])
def test_resampling_agrees_on_every_path(interpolation):
    rng = _rng(14)
    x = _f32(rng, 2, 5, 7, 33)

    def run():
        y = np.empty((2, 10, 21, 33), np.float32)
        _C.upsample2d_forward(x, y, (2, 3), interpolation)
        dx = np.empty_like(x)
        _C.upsample2d_backward(_f32(_rng(15), *y.shape), dx, (2, 3), interpolation)
        return [y, dx]

    assert_paths_agree(on_every_path(run))
