"""The depthwise and general convolution kernels on their vector paths: channel counts that
fill 8-float vectors (the 3x3 interior's two-vector sums, one vector, the scalar tail),
depth multipliers, large kernels and strides, checked against the float64 reference of
test_conv_variants on every SIMD path, against finite differences through a layer, and bit for
bit across SIMD paths and thread counts."""
from __future__ import annotations

import numpy as np
import pytest

import pycnn
from pycnn import _C, layers
from pycnn.layers.context import Context

from test_conv_variants import (ACTS, _close, _out, ref_conv, ref_conv_grads,
                                ref_conv_transpose, ref_depthwise)
from test_simd_paths import assert_paths_agree, on_every_path

RNG = np.random.default_rng(7)


def _f32(*shape):
    return RNG.standard_normal(shape).astype(np.float32)


# (n, h, w, c, kh, kw, dm, strides, pads, dilation)
VECTOR_CASES = [
    (2, 6, 7, 48, 3, 3, 1, (1, 1), (1, 1), (1, 1)),      # 3x3 interior: pairs of vectors
    (2, 5, 6, 29, 3, 3, 1, (1, 1), (1, 1), (1, 1)),      # a pair, one vector, a 5-float tail
    (3, 7, 5, 10, 3, 3, 2, (1, 1), (1, 1), (1, 1)),      # dm 2: 20 outputs, x gathered
    (2, 9, 9, 17, 7, 7, 1, (1, 1), (3, 3), (1, 1)),      # 7x7
    (2, 9, 8, 32, 3, 3, 1, (2, 2), (1, 1), (1, 1)),      # stride 2: dx skips cells
    (1, 5, 14, 16, 3, 3, 1, (2, 2), (1, 1), (1, 1)),     # stride 2, four interior pixels
    (2, 8, 9, 16, 3, 2, 1, (1, 2), (2, 0), (2, 1)),      # dilation, asymmetric stride
    (9, 4, 4, 16, 1, 1, 3, (1, 1), (0, 0), (1, 1)),      # 1x1, more images than lanes
    (1, 2, 70, 3, 1, 65, 1, (1, 1), (0, 0), (1, 1)),     # a kernel 65 wide (up to 256)
]


def _depthwise_run(cfg, act):
    n, h, w, c, kh, kw, dm, st, pd, dl = cfg
    oh, ow = _out(h, kh, st[0], pd[0], dl[0]), _out(w, kw, st[1], pd[1], dl[1])
    rng = np.random.default_rng(sum(cfg[:7]))
    x = rng.standard_normal((n, h, w, c)).astype(np.float32)
    k = rng.standard_normal((kh, kw, c, dm)).astype(np.float32)
    b = rng.standard_normal(c * dm).astype(np.float32)
    dy = rng.standard_normal((n, oh, ow, c * dm)).astype(np.float32)
    y = np.empty((n, oh, ow, c * dm), np.float32)
    _C.depthwise_forward(x, k, b, y, st, pd, dl, activation=act)
    dx, dk, db = np.empty_like(x), np.empty_like(k), np.empty_like(b)
    _C.depthwise_backward(x, k, dy, dx, dk, db, st, pd, dl, y=y if act == "relu" else None)
    return x, k, b, dy, y, dx, dk, db


@pytest.mark.parametrize("cfg", VECTOR_CASES)
@pytest.mark.parametrize("act", ["linear", "relu"])
def test_depthwise_vector_paths_match_reference(cfg, act, isa):
    n, h, w, c, kh, kw, dm, st, pd, dl = cfg
    x, k, b, dy, y, dx, dk, db = _depthwise_run(cfg, act)
    z = ref_depthwise(x, k, st, pd, dl, y.shape[1:3]) + b
    _close(y, ACTS[act](z))
    g = dy * (z > 0) if act == "relu" else dy
    rdx, rdk = ref_conv_grads(x, k.reshape(kh, kw, 1, c * dm), g, st, pd, dl, c)
    _close(dx, rdx)
    _close(dk, rdk.reshape(k.shape), 5e-5)
    _close(db, g.sum((0, 1, 2)))


@pytest.mark.parametrize("cfg", VECTOR_CASES[:3] + VECTOR_CASES[4:5])
def test_depthwise_is_bit_identical_on_every_path_and_thread_count(cfg, keep_num_threads):
    def run():
        out = []
        for threads in (1, 2, 3):
            pycnn.set_num_threads(threads)
            out += list(_depthwise_run(cfg, "relu")[4:])
        for a, b in zip(out[:4], out[4:8]):
            np.testing.assert_array_equal(a, b)
        for a, b in zip(out[:4], out[8:]):
            np.testing.assert_array_equal(a, b)
        return out[:4]
    assert_paths_agree(on_every_path(run))


def test_depthwise_relu_ignores_dy_where_the_output_is_zero():
    cfg = VECTOR_CASES[0]
    x, k, b, dy, y, dx, dk, db = _depthwise_run(cfg, "relu")
    dy2 = np.where(y > 0, dy, np.float32(1e30))       # huge values only where relu cut
    dx2, dk2, db2 = np.empty_like(dx), np.empty_like(dk), np.empty_like(db)
    n, h, w, c, kh, kw, dm, st, pd, dl = cfg
    _C.depthwise_backward(x, k, dy2, dx2, dk2, db2, st, pd, dl, y=y)
    for a, b_ in ((dx, dx2), (dk, dk2), (db, db2)):
        np.testing.assert_array_equal(a, b_)


# (n, h, w, c, kh, kw, o, strides, pads, dilation, groups)
GENERAL = [
    (3, 6, 7, 32, 3, 3, 16, (1, 1), (1, 1), (2, 2), 2),
    (2, 5, 5, 20, 2, 2, 12, (2, 2), (0, 0), (1, 1), 4),
]


@pytest.mark.parametrize("cfg", GENERAL)
def test_general_and_transposed_on_every_path_match_reference_for_any_thread_count(
        cfg, keep_num_threads):
    """Their loops run on each SIMD path; the GEMM micro-kernels differ between paths (FMA or
    not), so the paths agree to rounding, each bit-identical for any thread count."""
    n, h, w, c, kh, kw, o, st, pd, dl, g = cfg
    oh, ow = _out(h, kh, st[0], pd[0], dl[0]), _out(w, kw, st[1], pd[1], dl[1])
    rng = np.random.default_rng(3)
    x = rng.standard_normal((n, h, w, c)).astype(np.float32)
    k = rng.standard_normal((kh, kw, c // g, o)).astype(np.float32)
    b = rng.standard_normal(o).astype(np.float32)
    dy = rng.standard_normal((n, oh, ow, o)).astype(np.float32)
    xt = rng.standard_normal((n, oh, ow, o)).astype(np.float32)
    bt = rng.standard_normal(c).astype(np.float32)
    dyt = rng.standard_normal((n, h, w, c)).astype(np.float32)

    def run():
        out = []
        for threads in (1, 2):
            pycnn.set_num_threads(threads)
            y = np.empty((n, oh, ow, o), np.float32)
            _C.convg_forward(x, k, b, y, st, pd, dl, g, activation="relu")
            dx, dk, db = np.empty_like(x), np.empty_like(k), np.empty_like(b)
            _C.convg_backward(x, k, dy, dx, dk, db, st, pd, dl, g, y=y)
            yt = np.empty((n, h, w, c), np.float32)
            _C.conv_transpose_forward(xt, k, bt, yt, st, pd, dl, g, activation="relu")
            dxt, dkt, dbt = np.empty_like(xt), np.empty_like(k), np.empty_like(bt)
            _C.conv_transpose_backward(xt, k, dyt, dxt, dkt, dbt, st, pd, dl, g, y=yt)
            out.append([y, dx, dk, db, yt, dxt, dkt, dbt])
        for a, b_ in zip(*out):
            np.testing.assert_array_equal(a, b_)
        z = ref_conv(x, k, st, pd, dl, g, (oh, ow)) + b
        _close(out[0][0], np.maximum(z, 0))
        zt = ref_conv_transpose(xt, k, st, pd, dl, g, (h, w)) + bt
        _close(out[0][4], np.maximum(zt, 0))
        return out[0]
    results = on_every_path(run)
    for got in results.values():
        for a, b_ in zip(results["generic"], got):
            _close(a, b_, 1e-5)


@pytest.mark.parametrize("cls, kwargs", [
    (layers.DepthwiseConv2D, dict(kernel_size=3, padding="same")),
    (layers.SeparableConv2D, dict(filters=8, kernel_size=3, padding="same")),
])
def test_wide_depthwise_layers_match_finite_differences(cls, kwargs, isa):
    """40 channels (the vector paths), no activation (no relu kink inside a step); central
    differences of the loss sum(y * r) in float64
    through the layer's own float32 forward, at sampled coordinates."""
    shape = (2, 5, 6, 40)
    layer = cls(**kwargs)
    layer.build((None,) + shape[1:])
    rng = np.random.default_rng(5)
    layer.set_weights([rng.standard_normal(v.shape).astype(np.float32) * 0.5
                       for v in layer.weights])
    x = rng.standard_normal(shape).astype(np.float32)
    ctx = Context()
    y = layer.forward(ctx, x).copy()
    r = rng.standard_normal(y.shape).astype(np.float32)
    dx = layer.backward(ctx, r).copy()
    grads = [v.grad.copy() for v in layer.weights]

    def loss(xv):
        return float((layer.forward(Context(), xv).astype(np.float64) * r).sum())

    eps = 1e-2
    for target, got in [(None, dx)] + list(enumerate(grads)):
        for _ in range(6):
            if target is None:
                base = x
            else:
                base = layer.weights[target].numpy()
            idx = tuple(int(rng.integers(d)) for d in base.shape)
            plus, minus = base.copy(), base.copy()
            plus[idx] += eps
            minus[idx] -= eps
            if target is None:
                fd = (loss(plus) - loss(minus)) / (2 * eps)
            else:
                values = [v.numpy() for v in layer.weights]
                values[target] = plus
                layer.set_weights(values)
                lp = loss(x)
                values[target] = minus
                layer.set_weights(values)
                lm = loss(x)
                values[target] = base
                layer.set_weights(values)
                fd = (lp - lm) / (2 * eps)
            assert got[idx] == pytest.approx(fd, rel=5e-3, abs=5e-3), (target, idx)
