"""Each kernel family's paths on every SIMD path, beyond the one case per family of
``test_simd_paths.py``: ``_C.set_isa`` (so ``PYCNN_ISA``, ``pycnn.backend.set_simd_path`` and the
suite's ``isa`` fixture) chooses the variant of the loops, and each family's portable (generic)
path must give the bits of the AVX2 and AVX-512 ones. A path the CPU lacks is skipped.

* The elementwise families (``PC_SIMD_VARIANTS``) in the cases their one test leaves out: Keras'
  default optimizer loops (no clipping, no weight decay, no momentum, no amsgrad), activation
  gradients in place and from the output alone, merges of two inputs and broadcast merges,
  inference batch normalization and RMS layer normalization.
* The convolutions, whose GEMMs run on each path's micro-kernel (its FMAs round differently from
  the portable kernel's), on data whose every sum is exact (small integers, halves): there every
  path must give the float64 reference's value exactly, so the same bits. This covers the
  Winograd F(2x2, 3x3) transforms (``csrc/winograd.c``: its kernel transform halves, its tiles
  cut at the borders, channel and filter counts off the vector width), the GEMM convolution,
  grouped, transposed and depthwise convolutions and the dense layer.
* Augmentation (warp, flip, crop, contrast, brightness), elementwise in the channels.
"""
from __future__ import annotations

import numpy as np
import pytest

from pycnn import _C
from pycnn.layers.preprocessing import affine_matrix

from test_simd_paths import assert_paths_agree, on_every_path


def _f32(rng, *shape):
    return rng.standard_normal(shape).astype(np.float32)


def _ints(rng, lo, hi, *shape):
    """Small integers as float32: every product and sum of the tests' sizes is exact."""
    return rng.integers(lo, hi + 1, shape).astype(np.float32)


# ---- elementwise families: the cases test_simd_paths.py leaves out --------------------------------

def _specials(w, g):
    """Weights and gradients with the values the rules must refuse or keep: -0, inf, NaN."""
    w[:6] = [0.0, -0.0, np.inf, 1.0, 2.0, -0.0]
    g[:6] = [0.0, 0.0, 1.0, np.nan, np.inf, -0.0]
    return w, g


def test_default_optimizer_loops_agree_on_every_path():
    n = 70001 + 5                         # several ranges, and a tail
    rng = np.random.default_rng(1)
    w0, g = _specials(_f32(rng, n), _f32(rng, n))
    pos = np.abs(_f32(rng, n))

    def run():
        out = []
        for momentum, nesterov in ((0.0, False), (0.9, False)):
            w, v = w0.copy(), pos.copy()
            out += [_C.sgd_update(w, g, v if momentum else None, 0.1, momentum, nesterov), w, v]
        for momentum, centered, pre in ((0.0, False, {}), (0.0, False, {"clip": 0.5}),
                                        (0.5, False, {}), (0.0, True, {})):
            w, v, mom, mg = w0.copy(), pos.copy(), pos * 0.1, pos * 0.2
            out += [_C.rmsprop_update(w, g, v, 0.01, 0.9, 1e-7, momentum=momentum, mom=mom,
                                      centered=centered, mg=mg, **pre), w, v, mom, mg]
        for amsgrad, pre in ((False, {}), (False, {"gscale": 0.5, "decay": 0.01}), (True, {})):
            w, m, v, vhat = w0.copy(), pos * 0.1, pos.copy(), pos * 2
            out += [_C.adam_update(w, g, m, v, 0.01, 0.9, 0.999, 1e-7, 2,
                                   vhat=vhat if amsgrad else None, **pre), w, m, v, vhat]
        w, m, u = w0.copy(), pos * 0.1, pos.copy()
        out += [_C.adamax_update(w, g, m, u, 0.01, 0.9, 0.999, 1e-7, 2), w, m, u]
        w, m, v = w0.copy(), pos * 0.1, pos.copy()
        out += [_C.nadam_update(w, g, m, v, 0.01, 0.9, 0.999, 1e-7, 2, 0.7), w, m, v]
        w, acc = w0.copy(), pos.copy()
        out += [_C.adagrad_update(w, g, acc, 0.01, 1e-7), w, acc]
        w, ag, ad = w0.copy(), pos.copy(), pos * 0.5
        out += [_C.adadelta_update(w, g, ag, ad, 1.0, 0.95, 1e-7), w, ag, ad]
        w, m = w0.copy(), pos * 0.1
        out += [_C.lion_update(w, g, m, 0.001, 0.9, 0.99), w, m]
        return out

    results = on_every_path(run)
    assert results["generic"][0] == 3     # plain SGD refused the inf weight, NaN and inf grads
    assert_paths_agree(results)


ACTIVATIONS = ("linear", "relu", "sigmoid", "tanh", "softmax", "elu", "selu", "softplus",
               "softsign", "silu", "hard_sigmoid", "hard_silu", "relu6", "leaky_relu",
               "exponential", "gelu", "gelu_tanh", "mish", "log_sigmoid", "hard_tanh")
NEEDS_X = ("silu", "hard_silu", "gelu", "gelu_tanh", "mish")


@pytest.mark.parametrize("kind", ACTIVATIONS)
def test_activation_gradients_in_place_and_from_the_output_agree_on_every_path(kind):
    rng = np.random.default_rng(2)
    x, dy = _f32(rng, 13, 1031) * 3, _f32(rng, 13, 1031)
    x[0, :4] = [np.nan, np.inf, -np.inf, -0.0]
    x_arg = {"x": x} if kind in NEEDS_X else {}

    def run():
        y = np.empty_like(x)
        _C.activation_forward(kind, x, y)
        dx = np.empty_like(x)
        _C.activation_backward(kind, y, dy, dx, **x_arg)       # from y alone where it can
        inplace = dy.copy()
        _C.activation_backward(kind, y, inplace, inplace, **x_arg)
        return [y, dx, inplace]

    assert_paths_agree(on_every_path(run))


@pytest.mark.parametrize("kind", ACTIVATIONS)
def test_activation_gradient_in_place_has_the_bits_of_the_gradient_out_of_place(kind):
    rng = np.random.default_rng(2)
    x, dy = _f32(rng, 13, 1031) * 3, _f32(rng, 13, 1031)
    x_arg = {"x": x} if kind in NEEDS_X else {}
    y, dx = np.empty_like(x), np.empty_like(x)
    _C.activation_forward(kind, x, y)
    _C.activation_backward(kind, y, dy, dx, **x_arg)
    inplace = dy.copy()
    _C.activation_backward(kind, y, inplace, inplace, **x_arg)
    np.testing.assert_array_equal(inplace, dx)


@pytest.mark.parametrize("kind", ["elu", "leaky_relu"])
def test_activation_parameters_agree_on_every_path(kind):
    rng = np.random.default_rng(3)
    x, dy = _f32(rng, 7, 999), _f32(rng, 7, 999)

    def run():
        y, dx = np.empty_like(x), np.empty_like(x)
        _C.activation_forward(kind, x, y, alpha=0.37)
        _C.activation_backward(kind, y, dy, dx, x=x, alpha=0.37)
        return [y, dx]

    assert_paths_agree(on_every_path(run))


@pytest.mark.parametrize("kind", ["add", "subtract", "multiply", "average", "maximum",
                                  "minimum"])
@pytest.mark.parametrize("shapes", [[(5, 1001), (5, 1001)],             # the two-input loops
                                    [(3, 4, 37), (3, 1, 37), (3, 4, 1)]],  # broadcast: general
                         ids=["two", "broadcast"])
def test_merges_of_two_and_broadcast_inputs_agree_on_every_path(kind, shapes):
    rng = np.random.default_rng(4)
    shapes = shapes[:2] if kind == "subtract" else shapes
    xs = [_f32(rng, *s) for s in shapes]
    xs[0].flat[:2] = [np.nan, -0.0]
    out_shape = np.broadcast_shapes(*shapes)
    dy = _f32(rng, *out_shape)

    def run():
        y = np.empty(out_shape, np.float32)
        _C.merge_forward(kind, xs, y)
        dxs = [np.empty_like(x) for x in xs]
        _C.merge_backward(kind, xs, dy, dxs)
        return [y] + dxs

    assert_paths_agree(on_every_path(run))


def test_inference_batchnorm_and_rms_layernorm_agree_on_every_path():
    rng = np.random.default_rng(5)
    x, dy = _f32(rng, 6, 9, 7, 37), _f32(rng, 6, 9, 7, 37)

    def run():
        out = []
        for shape in ((6 * 9 * 7, 37, 1), (6, 9, 259)):
            xs, dys = x.reshape(shape), dy.reshape(shape)
            c = shape[1]
            mean, var = _f32(np.random.default_rng(6), c), np.abs(_f32(np.random.default_rng(7), c))
            gamma, beta = _f32(np.random.default_rng(8), c), _f32(np.random.default_rng(9), c)
            y = np.empty_like(xs)
            _C.batchnorm_forward(xs, mean, var, gamma, beta, y, 1e-3, False)
            dx, dg, db = np.empty_like(xs), np.empty(c, np.float32), np.empty(c, np.float32)
            _C.batchnorm_backward(xs, mean, var, gamma, dys, dx, dg, db, 1e-3, False)
            out += [y, dx, dg, db]
        x2, dy2 = x.reshape(54, 259), dy.reshape(54, 259)
        gamma, beta = _f32(np.random.default_rng(10), 259), _f32(np.random.default_rng(11), 259)
        y, mean, inv = np.empty_like(x2), np.empty(54, np.float32), np.empty(54, np.float32)
        _C.layernorm_forward(x2, gamma, None, y, mean, inv, 1e-3, rms=True)
        dx, dg, db = np.empty_like(x2), np.empty(259, np.float32), np.empty(259, np.float32)
        _C.layernorm_backward(x2, gamma, mean, inv, dy2, dx, dg, db, rms=True)
        return out + [y, mean, inv, dx, dg, db]

    assert_paths_agree(on_every_path(run))


# ---- convolutions on exact data ------------------------------------------------------------------

def _conv_ref(x, k, b, pads, out_hw):
    """float64 stride-1 convolution (Keras' cross-correlation), x NHWC, k HWIO."""
    x = np.pad(np.asarray(x, np.float64), ((0, 0), pads[0], pads[1], (0, 0)))
    kh, kw = k.shape[:2]
    oh, ow = out_hw
    y = np.zeros((x.shape[0], oh, ow, k.shape[3]))
    for i in range(kh):
        for j in range(kw):
            y += np.tensordot(x[:, i:i + oh, j:j + ow], k[i, j], axes=([3], [0]))
    return y + b


# (n, h, w, c, o, pads): 3x3 stride-1 layers with c >= 8 and o >= 16 take the Winograd forward
WINOGRAD = {
    "lecture_conv2": (3, 13, 13, 32, 64, ((0, 0), (0, 0))),
    "odd_same": (2, 9, 7, 19, 33, ((1, 1), (1, 1))),          # border tiles, c and o tails
    "pads_past_edge": (2, 8, 7, 9, 17, ((2, 1), (3, 2))),
}


@pytest.mark.parametrize("activation", ["linear", "relu"])
@pytest.mark.parametrize("case", list(WINOGRAD))
def test_winograd_forward_is_exact_and_the_same_on_every_path(case, activation):
    n, h, w, c, o, pads = WINOGRAD[case]
    rng = np.random.default_rng(12)
    x, k, b = _ints(rng, -3, 3, n, h, w, c), _ints(rng, -2, 2, 3, 3, c, o), _ints(rng, -4, 4, o)
    out_hw = (h + sum(pads[0]) - 2, w + sum(pads[1]) - 2)
    want = _conv_ref(x, k, b, pads, out_hw)
    if activation == "relu":
        want = np.maximum(want, 0.0)

    def run():
        y = np.full((n,) + out_hw + (o,), np.nan, np.float32)
        _C.conv2d_forward(x, k, b, y, (1, 1), (pads[0][0], pads[1][0]), activation=activation)
        return [y]

    results = on_every_path(run)
    for path, (y,) in results.items():
        np.testing.assert_array_equal(y, want.astype(np.float32), err_msg=path)
    assert_paths_agree(results)
    if activation == "relu":                   # relu(0) is +0 on every path, never -0
        assert not np.signbit(results["generic"][0][results["generic"][0] == 0]).any()


def test_winograd_forward_agrees_with_the_gemm_forward_on_exact_data():
    """The same layer through Winograd (3x3) and through the GEMM path (the kernel padded to
    3x4 with zeros, which Winograd does not take): equal, on every path."""
    rng = np.random.default_rng(13)
    x, k, b = _ints(rng, -3, 3, 2, 10, 11, 16), _ints(rng, -2, 2, 3, 3, 16, 24), _ints(rng, -4, 4, 24)
    k4 = np.concatenate([k, np.zeros((3, 1, 16, 24), np.float32)], axis=1)

    def run():
        y3 = np.empty((2, 8, 9, 24), np.float32)
        _C.conv2d_forward(x, k, b, y3, (1, 1), (0, 0))
        y4 = np.empty((2, 8, 8, 24), np.float32)
        _C.conv2d_forward(x, k4, b, y4, (1, 1), (0, 0))
        return [y3[:, :, :8], y4]

    results = on_every_path(run)
    for path, (y3, y4) in results.items():
        np.testing.assert_array_equal(y3, y4, err_msg=path)
    assert_paths_agree(results)


def test_gemm_conv_and_dense_are_exact_and_the_same_on_every_path():
    rng = np.random.default_rng(14)
    x, k, b = _ints(rng, -3, 3, 3, 9, 8, 5), _ints(rng, -2, 2, 2, 3, 5, 7), _ints(rng, -4, 4, 7)
    dy = _ints(rng, -2, 2, 3, 8, 6, 7)
    xd, wd, bd = _ints(rng, -3, 3, 11, 37), _ints(rng, -2, 2, 37, 29), _ints(rng, -4, 4, 29)
    dyd = _ints(rng, -2, 2, 11, 29)

    def run():
        y = np.empty((3, 8, 6, 7), np.float32)
        _C.conv2d_forward(x, k, b, y, (1, 1), (0, 0))
        dx, dk, db = np.empty_like(x), np.empty_like(k), np.empty_like(b)
        _C.conv2d_backward(x, k, dy, dx, dk, db, (1, 1), (0, 0))
        yd = np.empty((11, 29), np.float32)
        _C.dense_forward(xd, wd, bd, yd, activation="relu")
        dxd, dwd, dbd = np.empty_like(xd), np.empty_like(wd), np.empty_like(bd)
        _C.dense_backward(xd, wd, dyd, dxd, dwd, dbd)
        return [y, dx, dk, db, yd, dxd, dwd, dbd]

    results = on_every_path(run)
    y, _, dk, db, yd, dxd, dwd, dbd = results["generic"]
    np.testing.assert_array_equal(y, _conv_ref(x, k, b, ((0, 0), (0, 0)), (8, 6)))
    np.testing.assert_array_equal(dk[0, 0], np.tensordot(x[:, :8, :6], dy, axes=([0, 1, 2],
                                                                                 [0, 1, 2])))
    np.testing.assert_array_equal(db, dy.sum((0, 1, 2)))
    np.testing.assert_array_equal(yd, np.maximum(xd.astype(np.float64) @ wd + bd, 0))
    np.testing.assert_array_equal(dxd, dyd.astype(np.float64) @ wd.T)
    np.testing.assert_array_equal(dwd, xd.T.astype(np.float64) @ dyd)
    np.testing.assert_array_equal(dbd, dyd.sum(0))
    assert_paths_agree(results)


def test_grouped_transposed_and_depthwise_convs_are_the_same_on_every_path():
    rng = np.random.default_rng(15)
    x, k, b = _ints(rng, -3, 3, 2, 9, 8, 6), _ints(rng, -2, 2, 3, 2, 3, 4), _ints(rng, -4, 4, 4)
    kd, bd = _ints(rng, -2, 2, 3, 3, 6, 2), _ints(rng, -4, 4, 12)
    st, pd, dl = (2, 1), (1, 1), (1, 2)
    oh, ow = (9 + 2 - 2 - 1) // 2 + 1, (8 + 2 - 2 - 1) // 1 + 1
    ohd, owd = (9 + 2 - 4 - 1) // 2 + 1, (8 + 2 - 4 - 1) // 1 + 1

    def run():
        y = np.empty((2, oh, ow, 4), np.float32)
        _C.convg_forward(x, k, b, y, st, pd, dl, 2, activation="relu")
        dy = y - 1.0
        dx, dk, db = np.empty_like(x), np.empty_like(k), np.empty_like(b)
        _C.convg_backward(x, k, dy, dx, dk, db, st, pd, dl, 2, y=y)
        xt = np.empty((2, 9, 8, 6), np.float32)
        _C.conv_transpose_forward(y, k, np.zeros(6, np.float32), xt, st, pd, dl, 2)
        dyt, dkt, dbt = np.empty_like(y), np.empty_like(k), np.empty(6, np.float32)
        _C.conv_transpose_backward(y, k, x, dyt, dkt, dbt, st, pd, dl, 2)
        yd = np.empty((2, ohd, owd, 12), np.float32)
        _C.depthwise_forward(x, kd, bd, yd, (2, 1), (1, 1), (2, 2), activation="relu")
        dxd, dkd, dbd = np.empty_like(x), np.empty_like(kd), np.empty_like(bd)
        _C.depthwise_backward(x, kd, yd - 2.0, dxd, dkd, dbd, (2, 1), (1, 1), (2, 2), y=yd)
        return [y, dx, dk, db, xt, dyt, dkt, dbt, yd, dxd, dkd, dbd]

    results = on_every_path(run)
    for path, got in results.items():
        for i, a in enumerate(got):          # exact data: integers everywhere
            assert np.array_equal(a, np.round(a)), (path, i)
    assert_paths_agree(results)


# ---- augmentation --------------------------------------------------------------------------------

@pytest.mark.parametrize("interpolation", ["bilinear", "nearest"])
def test_augmentation_agrees_on_every_path(interpolation):
    rng = np.random.default_rng(16)
    n, h, w, c = 6, 13, 11, 19
    x = rng.random((n, h, w, c)).astype(np.float32)
    t = affine_matrix(rng.uniform(-40, 40, n), rng.uniform(-2, 2, n), rng.uniform(-2, 2, n),
                      rng.uniform(0.8, 1.3, n), rng.uniform(-10, 10, n), np.zeros(n), h, w)
    flags = rng.integers(0, 4, n).astype(np.uint8)
    off = np.stack([rng.integers(0, 5, n), rng.integers(0, 4, n)], 1).astype(np.int32)
    f = rng.uniform(0.5, 1.5, n).astype(np.float32)

    def run():
        out = []
        for fill in ("reflect", "constant"):
            y = np.empty_like(x)
            _C.affine_warp(x, t, y, interpolation=interpolation, fill_mode=fill,
                           fill_value=0.25)
            d = np.empty_like(x)
            _C.affine_warp_backward(y, t, d, interpolation=interpolation, fill_mode=fill)
            out += [y, d]
        y = np.empty_like(x)
        _C.flip(x, flags, y)
        cr = np.empty((n, 9, 8, c), np.float32)
        _C.crop(x, off, cr)
        cb = np.empty_like(x)
        _C.crop_backward(cr, off, cb)
        ct, br = np.empty_like(x), np.empty_like(x)
        _C.adjust_contrast(x, f, ct, 0.0, 1.0)
        _C.adjust_brightness(x, f - 1, br, 0.0, 1.0)
        return out + [y, cr, cb, ct, br]

    assert_paths_agree(on_every_path(run))
