"""NaN propagates through the kernels as it does in NumPy, TensorFlow and JAX.

* relu(NaN) = NaN (``tf.nn.relu``, ``jax.nn.relu``), also in the epilogue fused into Dense's and
  Conv2D's GEMM, Winograd and direct convolution + pooling kernels; relu(-0) = +0 as before.
* max pooling of a window holding NaN is NaN, as ``np.max`` and Keras 3 / JAX
  (``lax.reduce_window`` max) give; its argmax is the window's first NaN in row-major order.
  (TensorFlow 2's CPU MaxPool skips NaN instead: checked, tf 2 gives max_pool([[1, nan],
  [3, 2]]) = 3; pycnn follows NumPy/JAX, so that a NaN never hides.)

Each case runs on every SIMD path the CPU supports (the ``isa`` fixture). Which output is NaN
is checked against a float64 NumPy reference computed with NaN-propagating operations
(einsum, ``np.maximum``, ``np.max``); every other output against the reference's value."""
from __future__ import annotations

import numpy as np
import pytest

from pycnn import _C, layers

NAN = np.float32(np.nan)


def f32(a):
    return np.ascontiguousarray(a, dtype=np.float32)


def assert_matches(got, ref, rtol=1e-4, atol=1e-4):
    """NaN exactly where the reference is NaN; the finite outputs close to it."""
    got_nan, ref_nan = np.isnan(got), np.isnan(ref)
    assert ref_nan.any(), "the case must put NaN somewhere in the reference output"
    assert (~ref_nan).any(), "the case must leave some outputs finite"
    missing = ref_nan & ~got_nan
    extra = got_nan & ~ref_nan
    assert not missing.any(), f"{missing.sum()} outputs lost their NaN (first at " \
                              f"{np.argwhere(missing)[0].tolist()}: {got[missing][0]!r})"
    assert not extra.any(), f"{extra.sum()} outputs became NaN without a NaN input"
    np.testing.assert_allclose(got[~got_nan], ref[~ref_nan], rtol=rtol, atol=atol)


# ---- references (float64, NaN-propagating) ----------------------------------------------------

def conv_ref(x, w, b, strides=(1, 1), pads=(0, 0), out_hw=None, relu=True):
    x = x.astype(np.float64)
    kh, kw = w.shape[:2]
    sh, sw = strides
    n, h, wd, c = x.shape
    oh = out_hw[0] if out_hw else (h + 2 * pads[0] - kh) // sh + 1
    ow = out_hw[1] if out_hw else (wd + 2 * pads[1] - kw) // sw + 1
    need_h, need_w = (oh - 1) * sh + kh, (ow - 1) * sw + kw
    xp = np.zeros((n, max(need_h, h + pads[0]), max(need_w, wd + pads[1]), c))
    xp[:, pads[0]:pads[0] + h, pads[1]:pads[1] + wd] = x
    win = np.lib.stride_tricks.sliding_window_view(xp, (kh, kw), axis=(1, 2))
    win = win[:, :(oh - 1) * sh + 1:sh, :(ow - 1) * sw + 1:sw]   # n, oh, ow, c, kh, kw
    y = np.einsum("nhwcij,ijco->nhwo", win, w.astype(np.float64))
    if b is not None:
        y = y + b.astype(np.float64)
    return np.maximum(y, 0.0) if relu else y


def maxpool_ref(x, pool=(2, 2), strides=(2, 2), pads=(0, 0), out_hw=None):
    """Max and argmax (cell h * W + w of the window's first NaN, else its first maximum) of
    each window clipped to the image."""
    n, h, w, c = x.shape
    ph, pw = pool
    oh = out_hw[0] if out_hw else (h + pads[0] - ph) // strides[0] + 1
    ow = out_hw[1] if out_hw else (w + pads[1] - pw) // strides[1] + 1
    y = np.empty((n, oh, ow, c))
    am = np.empty((n, oh, ow, c), np.int64)
    for i in range(oh):
        for j in range(ow):
            h0, w0 = i * strides[0] - pads[0], j * strides[1] - pads[1]
            hs = range(max(h0, 0), min(h0 + ph, h))
            ws = range(max(w0, 0), min(w0 + pw, w))
            cells = [(a, bb) for a in hs for bb in ws]
            vals = np.stack([x[:, a, bb, :] for a, bb in cells], axis=0).astype(np.float64)
            y[:, i, j] = vals.max(axis=0)                     # NaN if any NaN
            first_nan = np.argmax(np.isnan(vals), axis=0)
            first_max = np.argmax(np.where(np.isnan(vals), -np.inf, vals), axis=0)
            k = np.where(np.isnan(vals).any(axis=0), first_nan, first_max)
            ids = np.array([a * w + bb for a, bb in cells])
            am[:, i, j] = ids[k]
    return y, am


# ---- activations and max pooling, by the C entry points --------------------------------------

@pytest.mark.parametrize("size", [7, 100, 20000])    # a tail, a vector loop, several blocks
def test_relu_of_nan_is_nan(isa, size):
    rng = np.random.default_rng(size)
    x = f32(rng.standard_normal(size))
    x[::5] = NAN
    x[1] = -0.0
    y = np.empty_like(x)
    _C.activation_forward("relu", x, y)
    assert np.isnan(y[::5]).all()
    ok = ~np.isnan(x)
    np.testing.assert_array_equal(y[ok], np.maximum(x[ok], 0))
    assert np.signbit(y[1]) == False   # noqa: E712 - relu(-0) is +0
    # in place
    z = x.copy()
    _C.activation_forward("relu", z, z)
    np.testing.assert_array_equal(np.isnan(z), np.isnan(x))


def test_relu_backward_masks_nan_outputs_by_y_greater_than_zero(isa):
    y = f32([np.nan, 0.0, 2.0, -0.0])
    dy = f32([1.0, 1.0, 1.0, 1.0])
    dx = np.empty_like(y)
    _C.activation_backward("relu", y, dy, dx)
    np.testing.assert_array_equal(dx, [0.0, 0.0, 1.0, 0.0])


@pytest.mark.parametrize("kind", ["sigmoid", "tanh", "softmax"])
def test_other_activations_propagate_nan(isa, kind):
    x = f32(np.random.default_rng(0).standard_normal((4, 10)))
    x[1, 3] = NAN
    y = np.empty_like(x)
    _C.activation_forward(kind, x, y)
    if kind == "softmax":
        assert np.isnan(y[1]).all() and not np.isnan(np.delete(y, 1, axis=0)).any()
    else:
        np.testing.assert_array_equal(np.isnan(y), np.isnan(x))


MAXPOOL_CASES = {
    # (h, w, c, pool, strides, pads, (oh, ow)): the 2x2 tiled path, a general window, padding
    "2x2": (6, 8, 24, (2, 2), (2, 2), (0, 0), None),
    "3x3_stride1": (7, 6, 20, (3, 3), (1, 1), (0, 0), None),
    "3x3_stride2_same": (7, 7, 17, (3, 3), (2, 2), (1, 1), (4, 4)),
}


@pytest.mark.parametrize("case", sorted(MAXPOOL_CASES))
def test_maxpool_window_with_nan_is_nan_at_the_first_nan(isa, case):
    h, w, c, pool, strides, pads, out_hw = MAXPOOL_CASES[case]
    rng = np.random.default_rng(3)
    x = f32(rng.standard_normal((2, h, w, c)))
    x[0, 1, 1, :] = NAN                    # every channel, top-left region
    x[1, 2, 3, ::3] = NAN                  # some channels
    x[1, 3, 3, ::2] = NAN                  # a second NaN in some windows (the first one wins)
    x[1, 0, 0, 5] = np.inf                 # +inf beside, not NaN
    x[0, 4, 5, 1] = -0.0
    yr, amr = maxpool_ref(x, pool, strides, pads, out_hw)
    y = np.empty(yr.shape, np.float32)
    am = np.empty(yr.shape, np.int32)
    _C.maxpool2d_forward(x, y, am, pool, strides, pads)
    assert_matches(y, yr, rtol=0, atol=0)
    np.testing.assert_array_equal(am, amr)


def test_maxpool_layer_of_nan_free_input_is_unchanged(isa):
    """The NaN rule changes nothing without NaN: the first maximum wins ties as before."""
    x = f32(np.round(np.random.default_rng(0).standard_normal((2, 6, 6, 8))))   # many ties
    y = np.asarray(layers.MaxPooling2D()(x))
    yr, _ = maxpool_ref(x)
    np.testing.assert_array_equal(y, yr)


# ---- Dense ------------------------------------------------------------------------------------

@pytest.mark.parametrize("units", [10, 64, 100])     # narrow (<= 12 columns), tiles, edges
def test_dense_relu_propagates_nan_from_weights_inputs_and_bias(isa, units):
    rng = np.random.default_rng(units)
    x = f32(rng.standard_normal((33, 50)))
    w = f32(rng.standard_normal((50, units)) * 0.2)
    b = f32(rng.standard_normal(units) * 0.1)
    w[7, 3] = NAN                  # column 3 NaN for every row
    x[5, 11] = NAN                 # row 5 NaN for every column
    b[units - 1] = NAN             # the last column
    ref = np.maximum(x.astype(np.float64) @ w.astype(np.float64) + b, 0.0)
    y = np.empty((33, units), np.float32)
    _C.dense_forward(x, w, b, y, activation="relu")
    assert_matches(y, ref)


def test_dense_layer_with_a_nan_weight_outputs_nan(isa):
    dense = layers.Dense(40, activation="relu")
    x = f32(np.random.default_rng(1).standard_normal((16, 30)))
    dense.build((None, 30))
    dense.kernel.value[2, 5] = NAN
    dense.kernel.value[:, 6] = -1.0            # relu would clamp column 6 to 0 ...
    dense.kernel.value[0, 6] = NAN             # ... but NaN survives it
    y = np.asarray(dense(x))
    ref = np.maximum(x.astype(np.float64) @ dense.kernel.value.astype(np.float64)
                     + dense.bias.value, 0.0)
    assert_matches(y, ref)
    assert np.isnan(y[:, 5]).all() and np.isnan(y[:, 6]).all()


def test_gemm_propagates_nan(isa):
    rng = np.random.default_rng(2)
    a = f32(rng.standard_normal((70, 90)))
    b = f32(rng.standard_normal((90, 40)))
    a[3, 4] = NAN
    c = np.empty((70, 40), np.float32)
    _C.gemm(a, b, c)
    ref = a.astype(np.float64) @ b.astype(np.float64)
    assert_matches(c, ref)


# ---- Conv2D: every forward path ---------------------------------------------------------------

CONV_CASES = {
    # name: (x shape, (kh, kw, o), strides, pads, out_hw): which path the kernels take
    "gemm": ((3, 9, 9, 3), (3, 3, 20), (1, 1), (0, 0), None),           # c < 8: no Winograd
    "gemm_strided_same": ((2, 9, 8, 5), (3, 3, 12), (2, 2), (1, 1), (5, 4)),
    "gemm_1x1": ((2, 5, 5, 16), (1, 1, 24), (1, 1), (0, 0), None),
    "winograd": ((2, 10, 10, 8), (3, 3, 16), (1, 1), (0, 0), None),     # 3x3, c >= 8, o >= 16
    "winograd_same_odd": ((2, 9, 7, 12), (3, 3, 20), (1, 1), (1, 1), (9, 7)),
}


def _nan_cases(x, w, b):
    """NaN in an input pixel, in one weight tap, and in one bias."""
    x[0, 2, 3, 0] = NAN
    w[w.shape[0] // 2, w.shape[1] // 2, 0, 2] = NAN
    b[4] = NAN


@pytest.mark.parametrize("case", sorted(CONV_CASES))
def test_conv2d_relu_propagates_nan(isa, case):
    xs, (kh, kw, o), strides, pads, out_hw = CONV_CASES[case]
    rng = np.random.default_rng(len(case))
    x = f32(rng.standard_normal(xs))
    w = f32(rng.standard_normal((kh, kw, xs[3], o)) * 0.3)
    b = f32(rng.standard_normal(o) * 0.1)
    _nan_cases(x, w, b)
    ref = conv_ref(x, w, b, strides, pads, out_hw)
    y = np.empty(ref.shape, np.float32)
    _C.conv2d_forward(x, w, b, y, strides, pads, activation="relu")
    assert_matches(y, ref)


def test_conv2d_layer_with_a_nan_weight_outputs_nan(isa):
    conv = layers.Conv2D(16, 3, activation="relu")
    x = f32(np.random.default_rng(4).random((2, 10, 10, 8)))
    conv.build((None, 10, 10, 8))
    conv.kernel.value[...] = -np.abs(conv.kernel.value)    # relu would clamp everything ...
    conv.kernel.value[0, 2, 1, 7] = NAN                    # ... but filter 7's NaN survives
    y = np.asarray(conv(x))
    assert np.isnan(y[..., 7]).all()
    assert not np.isnan(np.delete(y, 7, axis=-1)).any()


FUSED_CASES = {
    # name: (x shape, o): with a 3x3 valid convolution and 2x2 pooling
    "direct": ((2, 10, 12, 1), 32),      # c == 1, o % 32 == 0: direct kernel on AVX2/AVX-512
    "gemm_pool": ((2, 10, 10, 3), 24),   # GEMM then pooling from scratch
    "winograd_pool": ((2, 10, 10, 8), 16),
    "odd_crop": ((2, 11, 13, 1), 32),    # conv 9x11: the last row and column reach no window
}


def _fused_inputs(case, seed):
    """The input, kernel and bias of a ``FUSED_CASES`` case, with ``_nan_cases``' NaNs."""
    xs, o = FUSED_CASES[case]
    rng = np.random.default_rng(seed)
    x = f32(rng.standard_normal(xs))
    w = f32(rng.standard_normal((3, 3, xs[3], o)) * 0.3)
    b = f32(rng.standard_normal(o) * 0.1)
    _nan_cases(x, w, b)
    return x, w, b


def _fused_forward(x, w, b):
    """``conv2d_maxpool_forward``: 3x3 valid convolution, ReLU, 2x2 pooling; returns the
    pooled output, its argmax and the convolution's output size."""
    n, h, wd, _ = x.shape
    conv_hw = (h - 2, wd - 2)
    y = np.empty((n, conv_hw[0] // 2, conv_hw[1] // 2, w.shape[3]), np.float32)
    am = np.empty(y.shape, np.int32)
    _C.conv2d_maxpool_forward(x, w, b, y, am, (1, 1), (0, 0), conv_hw, (2, 2), (2, 2), (0, 0),
                              activation="relu")
    return y, am, conv_hw


@pytest.mark.parametrize("case", sorted(FUSED_CASES))
def test_fused_conv2d_relu_maxpool_propagates_nan(isa, case):
    x, w, b = _fused_inputs(case, 7)
    x[1, 5, 6, 0] = NAN                    # a second pixel, elsewhere
    y, am, _ = _fused_forward(x, w, b)
    yr, amr = maxpool_ref(conv_ref(x, w, b), out_hw=y.shape[1:3])
    assert_matches(y, yr)
    nan_windows = np.isnan(yr)
    np.testing.assert_array_equal(am[nan_windows], amr[nan_windows])


@pytest.mark.parametrize("case", sorted(FUSED_CASES))
def test_fused_and_unfused_agree_bit_for_bit_with_nan(isa, case):
    """conv2d_maxpool_forward equals conv2d_forward then maxpool2d_forward, NaN included."""
    x, w, b = _fused_inputs(case, 8)
    y, am, conv_hw = _fused_forward(x, w, b)
    c = np.empty((x.shape[0], *conv_hw, w.shape[3]), np.float32)
    _C.conv2d_forward(x, w, b, c, (1, 1), (0, 0), activation="relu")
    y2, am2 = np.empty_like(y), np.empty_like(am)
    _C.maxpool2d_forward(c, y2, am2, (2, 2), (2, 2), (0, 0))
    assert np.isnan(y).any()
    np.testing.assert_array_equal(y.view(np.int32), y2.view(np.int32))
    np.testing.assert_array_equal(am, am2)


@pytest.mark.parametrize("case", sorted(FUSED_CASES))
@pytest.mark.parametrize("activation", ["relu", "linear"])
def test_fused_conv2d_maxpool_signed_zeros_match_the_unfused_layers(isa, case, activation):
    """Sums that are -0 (a product underflowing to -0, plus a bias of -0): relu makes them +0,
    linear keeps -0, in the fused kernels (direct, GEMM, Winograd) as in conv then pool."""
    xs, o = FUSED_CASES[case]
    x = np.full(xs, 1e-30, np.float32)
    x[0, 2:6, 2:6, :] = 1.0                            # some windows with nonzero sums
    w = np.full((3, 3, xs[3], o), -1e-30, np.float32)  # every product underflows to -0
    w[:, :, :, 1::2] = 0.5
    b = np.full(o, -0.0, np.float32)
    conv_hw = (xs[1] - 2, xs[2] - 2)
    pooled_hw = (conv_hw[0] // 2, conv_hw[1] // 2)
    y = np.empty((xs[0], *pooled_hw, o), np.float32)
    am = np.empty(y.shape, np.int32)
    _C.conv2d_maxpool_forward(x, w, b, y, am, (1, 1), (0, 0), conv_hw, (2, 2), (2, 2), (0, 0),
                              activation=activation)
    c = np.empty((xs[0], *conv_hw, o), np.float32)
    _C.conv2d_forward(x, w, b, c, (1, 1), (0, 0), activation=activation)
    y2, am2 = np.empty_like(y), np.empty_like(am)
    _C.maxpool2d_forward(c, y2, am2, (2, 2), (2, 2), (0, 0))
    np.testing.assert_array_equal(y.view(np.int32), y2.view(np.int32))
    zeros = y[1, ..., 0::2]                            # image 1: every product underflows
    assert (zeros == 0).all()
    if activation == "relu":
        assert not np.signbit(zeros).any()             # relu(-0) is +0
        np.testing.assert_array_equal(am, am2)
