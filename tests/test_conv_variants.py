"""Dilated and grouped Conv2D, Conv1D, Conv2DTranspose, DepthwiseConv2D and SeparableConv2D:
kernels and layers against a slow float64 NumPy reference written here, gradients against
finite differences, Keras' numbers, shapes, arguments and configs, and determinism across
thread counts and SIMD paths."""
from __future__ import annotations

import numpy as np
import pytest

import pycnn
from pycnn import _C, layers
from pycnn.layers import conv_utils
from pycnn.layers.context import Context


# ---- the reference: a convolution written tap by tap in float64 -----------------------------

def _tap_index(n_out, stride, dilation, pad, n_in, tap):
    """Input cells read by tap `tap` for outputs 0..n_out-1, and which are inside the input."""
    idx = np.arange(n_out) * stride + tap * dilation - pad
    return idx, (idx >= 0) & (idx < n_in)


def ref_conv(x, w, strides=(1, 1), pads=(0, 0), dilation=(1, 1), groups=1, out_hw=None):
    """y[n, p, q, g*Og + o] = sum_{i, j, c} x[n, p*sh + i*dh - pt, q*sw + j*dw - pl, g*Cg + c]
    * w[i, j, c, g*Og + o], cells outside x being 0."""
    x, w = np.asarray(x, np.float64), np.asarray(w, np.float64)
    n, h, wd, _ = x.shape
    kh, kw, cg, o = w.shape
    og = o // groups
    oh, ow = out_hw
    y = np.zeros((n, oh, ow, o))
    for i in range(kh):
        r, rv = _tap_index(oh, strides[0], dilation[0], pads[0], h, i)
        for j in range(kw):
            q, qv = _tap_index(ow, strides[1], dilation[1], pads[1], wd, j)
            xs = x[:, np.clip(r, 0, h - 1)][:, :, np.clip(q, 0, wd - 1)]
            xs = xs * (rv[:, None] & qv[None, :])[None, :, :, None]
            for g in range(groups):
                y[..., g * og:(g + 1) * og] += \
                    xs[..., g * cg:(g + 1) * cg] @ w[i, j, :, g * og:(g + 1) * og]
    return y


def ref_conv_transpose(x, w, strides=(1, 1), pads=(0, 0), dilation=(1, 1), groups=1,
                       out_hw=None):
    """The transpose of ref_conv: each x[n, p, q, o] * w[i, j, c, o] added to output cell
    (p*sh + i*dh - pt, q*sw + j*dw - pl), when that cell is inside the output."""
    x, w = np.asarray(x, np.float64), np.asarray(w, np.float64)
    n, ih, iw, o = x.shape
    kh, kw, cg, _ = w.shape
    og = o // groups
    H, W = out_hw
    y = np.zeros((n, H, W, cg * groups))
    for i in range(kh):
        r, rv = _tap_index(ih, strides[0], dilation[0], pads[0], H, i)
        for j in range(kw):
            q, qv = _tap_index(iw, strides[1], dilation[1], pads[1], W, j)
            for g in range(groups):
                part = x[..., g * og:(g + 1) * og] @ w[i, j, :, g * og:(g + 1) * og].T
                y[:, r[rv][:, None], q[qv][None, :], g * cg:(g + 1) * cg] += \
                    part[:, rv][:, :, qv]
    return y


def ref_depthwise(x, w, strides=(1, 1), pads=(0, 0), dilation=(1, 1), out_hw=None):
    """Depthwise: the grouped convolution with one group per input channel, kernel
    (kh, kw, c, dm) seen as (kh, kw, 1, c*dm)."""
    kh, kw, c, dm = w.shape
    return ref_conv(x, np.asarray(w).reshape(kh, kw, 1, c * dm), strides, pads, dilation, c,
                    out_hw)


ACTS = {"linear": lambda z: z, "relu": lambda z: np.maximum(z, 0),
        "sigmoid": lambda z: 1 / (1 + np.exp(-z)), "tanh": np.tanh}


def ref_layer(layer, x, weights):
    """The layer's output in float64 from the reference convolutions (weights: a list in
    get_weights() order, float64)."""
    act = ACTS[layer.activation]
    if isinstance(layer, layers.Conv1D):
        n, steps, c = x.shape
        out = layer.compute_output_shape(x.shape)
        pads = conv_utils.conv_pads((1, steps), layer._k2, layer._s2, layer.padding, layer._d2)
        z = ref_conv(x.reshape(n, 1, steps, c), weights[0][None], layer._s2, pads, layer._d2,
                     layer.groups, (1, out[1])).reshape(out)
    elif isinstance(layer, layers.Conv2DTranspose):
        out = layer.compute_output_shape(x.shape)
        pads = (conv_utils.deconv_pad(*layer._axis(0)), conv_utils.deconv_pad(*layer._axis(1)))
        z = ref_conv_transpose(x, weights[0], layer.strides, pads, layer.dilation_rate, 1,
                               out[1:3])
    elif isinstance(layer, (layers.DepthwiseConv2D, layers.SeparableConv2D)):
        out, pads = layer._dw_geometry(x.shape)
        z = ref_depthwise(x, weights[0], layer.strides, pads, layer.dilation_rate, out[1:3])
        if isinstance(layer, layers.SeparableConv2D):
            z = z @ weights[1][0, 0]
    else:                                                   # Conv2D
        out = layer.compute_output_shape(x.shape)
        h, w = x.shape[1:3]
        pads = conv_utils.conv_pads((h, w), layer.kernel_size, layer.strides, layer.padding,
                                    layer.dilation_rate)
        z = ref_conv(x, weights[0], layer.strides, pads, layer.dilation_rate, layer.groups,
                     out[1:3])
    if layer.use_bias:
        z = z + weights[-1]
    return act(z)


# ---- kernels -------------------------------------------------------------------------------

RNG = np.random.default_rng(20261204)

# (n, h, w, c, kh, kw, o, strides, pads, dilation, groups), odd sizes, pads beyond the kernel
GENERAL = [
    (2, 7, 6, 4, 3, 3, 6, (1, 1), (1, 1), (2, 2), 2),
    (3, 9, 8, 6, 3, 2, 4, (2, 1), (0, 1), (1, 1), 1),
    (2, 5, 5, 3, 2, 2, 3, (1, 1), (0, 0), (1, 1), 3),
    (1, 6, 7, 4, 3, 3, 8, (1, 1), (3, 2), (3, 2), 4),
    (2, 8, 5, 2, 1, 3, 2, (3, 2), (2, 0), (1, 1), 1),
    (20, 5, 4, 4, 2, 3, 4, (1, 1), (1, 1), (2, 1), 2),   # many chunks: every lane used
    (3, 7, 11, 5, 2, 3, 4, (2, 3), (0, 0), (1, 1), 1),   # windows tile the input (transposed:
    (2, 8, 6, 3, 2, 2, 16, (2, 2), (0, 0), (1, 1), 1),   # its output), rows or columns left over
]


def _out(n_in, k, s, p, d):
    return (n_in + 2 * p - d * (k - 1) - 1) // s + 1


def _f32(*shape):
    return RNG.standard_normal(shape).astype(np.float32)


def ref_conv_grads(x, w, dy, strides, pads, dilation, groups):
    """(dx, dw) of sum(dy * ref_conv(x, w)): dx by the transpose, dw tap by tap."""
    h, wd = x.shape[1:3]
    dx = ref_conv_transpose(dy, w, strides, pads, dilation, groups, (h, wd))
    kh, kw, cg, o = w.shape
    og = o // groups
    dy = np.asarray(dy, np.float64)
    dw = np.zeros(w.shape)
    oh, ow = dy.shape[1:3]
    for i in range(kh):
        r, rv = _tap_index(oh, strides[0], dilation[0], pads[0], h, i)
        for j in range(kw):
            q, qv = _tap_index(ow, strides[1], dilation[1], pads[1], wd, j)
            xs = np.asarray(x, np.float64)[:, np.clip(r, 0, h - 1)][:, :, np.clip(q, 0, wd - 1)]
            xs = xs * (rv[:, None] & qv[None, :])[None, :, :, None]
            for g in range(groups):
                dw[i, j, :, g * og:(g + 1) * og] = np.tensordot(
                    xs[..., g * cg:(g + 1) * cg], dy[..., g * og:(g + 1) * og],
                    axes=([0, 1, 2], [0, 1, 2]))
    return dx, dw


def _close(got, want, tol=2e-5):
    scale = max(1.0, float(np.abs(want).max()))
    np.testing.assert_allclose(got, want, rtol=0, atol=tol * scale)


def _check_conv_kernels(cfg, act, transposed):
    """The general (or, ``transposed``, the transposed) convolution kernels of ``cfg`` against
    NumPy: the forward (bias and activation fused) gives the reference plus the bias,
    activated; the backward of a random ``dy`` gives the reference's input and kernel
    gradients (of ``dy`` through the activation) and the bias gradient."""
    n, h, w, c, kh, kw, o, st, pd, dl, g = cfg
    oh, ow = _out(h, kh, st[0], pd[0], dl[0]), _out(w, kw, st[1], pd[1], dl[1])
    if transposed:   # the transpose of the convolution cfg: x on its output side, y on its input
        forward, backward = _C.conv_transpose_forward, _C.conv_transpose_backward
        x, k, b = _f32(n, oh, ow, o), _f32(kh, kw, c // g, o), _f32(c)
        y = np.empty((n, h, w, c), np.float32)
        z = ref_conv_transpose(x, k, st, pd, dl, g, (h, w)) + b
        grads = lambda g_: (ref_conv(g_, k, st, pd, dl, g, (oh, ow)),  # noqa: E731
                            ref_conv_grads(g_, k, x, st, pd, dl, g)[1])
    else:
        forward, backward = _C.convg_forward, _C.convg_backward
        x, k, b = _f32(n, h, w, c), _f32(kh, kw, c // g, o), _f32(o)
        y = np.empty((n, oh, ow, o), np.float32)
        z = ref_conv(x, k, st, pd, dl, g, (oh, ow)) + b
        grads = lambda g_: ref_conv_grads(x, k, g_, st, pd, dl, g)  # noqa: E731
    forward(x, k, b, y, st, pd, dl, g, activation=act)
    _close(y, ACTS[act](z))
    dy = _f32(*y.shape)
    dx, dk, db = np.empty_like(x), np.empty_like(k), np.empty_like(b)
    backward(x, k, dy, dx, dk, db, st, pd, dl, g, y=y if act == "relu" else None)
    g_ = dy * (z > 0) if act == "relu" else dy
    rdx, rdk = grads(g_)
    _close(dx, rdx)
    _close(dk, rdk)
    _close(db, g_.sum((0, 1, 2)))


@pytest.mark.parametrize("cfg", GENERAL)
@pytest.mark.parametrize("act", ["linear", "relu"])
def test_general_conv_kernels_match_reference(cfg, act, isa):
    _check_conv_kernels(cfg, act, transposed=False)


@pytest.mark.parametrize("cfg", GENERAL)
@pytest.mark.parametrize("act", ["linear", "relu"])
def test_transposed_conv_kernels_match_reference(cfg, act, isa):
    _check_conv_kernels(cfg, act, transposed=True)


# (n, h, w, c, kh, kw, dm, strides, pads, dilation)
DEPTHWISE = [
    (2, 7, 6, 4, 3, 3, 1, (1, 1), (1, 1), (2, 2)),
    (3, 9, 8, 5, 3, 2, 3, (2, 1), (0, 1), (1, 1)),
    (2, 5, 5, 19, 3, 3, 1, (2, 2), (1, 1), (2, 1)),
    (1, 4, 6, 3, 5, 5, 2, (1, 3), (4, 2), (1, 1)),
    (11, 6, 5, 33, 3, 3, 1, (1, 1), (1, 1), (1, 1)),     # more images than lanes
]


@pytest.mark.parametrize("cfg", DEPTHWISE)
@pytest.mark.parametrize("act", ["linear", "relu"])
def test_depthwise_kernels_match_reference(cfg, act, isa):
    n, h, w, c, kh, kw, dm, st, pd, dl = cfg
    oh, ow = _out(h, kh, st[0], pd[0], dl[0]), _out(w, kw, st[1], pd[1], dl[1])
    x, k, b = _f32(n, h, w, c), _f32(kh, kw, c, dm), _f32(c * dm)
    y = np.empty((n, oh, ow, c * dm), np.float32)
    _C.depthwise_forward(x, k, b, y, st, pd, dl, activation=act)
    z = ref_depthwise(x, k, st, pd, dl, (oh, ow)) + b
    _close(y, ACTS[act](z))
    dy = _f32(*y.shape)
    dx, dk, db = np.empty_like(x), np.empty_like(k), np.empty_like(b)
    _C.depthwise_backward(x, k, dy, dx, dk, db, st, pd, dl, y=y if act == "relu" else None)
    g_ = dy * (z > 0) if act == "relu" else dy
    rdx, rdk = ref_conv_grads(x, k.reshape(kh, kw, 1, c * dm), g_, st, pd, dl, c)
    _close(dx, rdx)
    _close(dk, rdk.reshape(k.shape))
    _close(db, g_.sum((0, 1, 2)))


@pytest.mark.parametrize("act", ["linear", "relu"])
def test_transposed_conv_without_bias_leaves_uncovered_cells_zero(act):
    x, k = _f32(2, 3, 3, 4), _f32(2, 3, 5, 4)
    y = np.full((2, 7, 11, 5), np.nan, np.float32)
    _C.conv_transpose_forward(x, k, None, y, (2, 3), (0, 0), (1, 1), activation=act)
    _close(y, ACTS[act](ref_conv_transpose(x, k, (2, 3), (0, 0), (1, 1), 1, (7, 11))))
    assert (y[:, 6:] == 0).all() and (y[:, :, 9:] == 0).all()


def test_backward_outputs_are_optional():
    x, k, dy = _f32(2, 5, 5, 4), _f32(3, 3, 2, 4), _f32(2, 5, 5, 4)
    dk_all, dk = np.empty_like(k), np.empty_like(k)
    dx = np.empty_like(x)
    _C.convg_backward(x, k, dy, dx, dk_all, None, (1, 1), (1, 1), (1, 1), 2)
    _C.convg_backward(x, k, dy, None, dk, None, (1, 1), (1, 1), (1, 1), 2)
    np.testing.assert_array_equal(dk, dk_all)
    kd = _f32(3, 3, 4, 1)
    _C.depthwise_backward(x, kd, dy, None, np.empty_like(kd), None, (1, 1), (1, 1), (1, 1))
    kt = _f32(3, 3, 4, 4)
    _C.conv_transpose_backward(dy, kt, x, None, np.empty_like(kt), None, (1, 1), (1, 1), (1, 1))


@pytest.mark.parametrize("call, message", [
    (lambda: _C.convg_forward(_f32(1, 5, 5, 4), _f32(3, 3, 2, 6), None,
                              np.empty((1, 3, 3, 6), np.float32), (1, 1), (0, 0), (1, 1), 3),
     "groups=3 must divide"),
    (lambda: _C.convg_forward(_f32(1, 5, 5, 4), _f32(3, 3, 4, 6), None,
                              np.empty((1, 3, 3, 6), np.float32), (1, 1), (0, 0), (1, 1), 2),
     "input channels per group"),
    (lambda: _C.convg_forward(_f32(1, 5, 5, 4), _f32(3, 3, 4, 6), None,
                              np.empty((1, 3, 3, 6), np.float32), (1, 1), (0, 0), (0, 1), 1),
     "dilation must be >= 1"),
    (lambda: _C.depthwise_forward(_f32(1, 5, 5, 4), _f32(3, 3, 3, 1), None,
                                  np.empty((1, 3, 3, 4), np.float32), (1, 1), (0, 0), (1, 1)),
     "input channels"),
    (lambda: _C.conv_transpose_forward(_f32(1, 3, 3, 4), _f32(3, 3, 2, 5), None,
                                       np.empty((1, 5, 5, 2), np.float32), (1, 1), (0, 0),
                                       (1, 1)),
     "'x'"),
    (lambda: _C.depthwise_forward(_f32(1, 5, 5, 4), _f32(3, 3, 4, 2), None,
                                  np.empty((1, 3, 3, 4), np.float32), (1, 1), (0, 0), (1, 1)),
     "'y'"),
])
def test_kernel_arguments_are_checked(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_outputs_must_not_alias_inputs():
    x = _f32(1, 5, 5, 4)
    with pytest.raises(ValueError):
        _C.depthwise_forward(x, _f32(1, 1, 4, 1), None, x, (1, 1), (0, 0), (1, 1))


# ---- layers: Keras' numbers, shapes, gradients -------------------------------------------------

def test_keras_numbers_small_integer_cases():
    """Outputs computed by Keras 3 (JAX backend) for integer weights 1, 2, ... and inputs
    1, 2, ...: exact in float32."""
    def run(layer, shape):
        x = np.arange(1, np.prod(shape) + 1, dtype=np.float32).reshape(shape)
        layer.build((None,) + shape[1:])
        layer.set_weights([np.arange(1, np.prod(v.shape) + 1, dtype=np.float32).reshape(v.shape)
                           for v in layer.weights])
        return layer(x)

    y = run(layers.Conv2DTranspose(1, 3, strides=2, padding="same", use_bias=False), (1, 2, 2, 1))
    np.testing.assert_array_equal(y[0, ..., 0], [[1, 2, 5, 4], [4, 5, 14, 10], [10, 14, 36, 24],
                                                 [12, 15, 34, 20]])
    y = run(layers.Conv2DTranspose(1, (2, 3), strides=(3, 2), padding="valid",
                                   output_padding=(1, 1), use_bias=False), (1, 2, 2, 1))
    np.testing.assert_array_equal(y[0, ..., 0], [[1, 2, 5, 4, 6, 0], [4, 5, 14, 10, 12, 0],
                                                 [0] * 6, [3, 6, 13, 8, 12, 0],
                                                 [12, 15, 34, 20, 24, 0], [0] * 6])
    y = run(layers.Conv2DTranspose(1, 4, strides=2, padding="same", output_padding=1,
                                   use_bias=False), (1, 2, 2, 1))
    np.testing.assert_array_equal(y[0, ..., 0], [[6, 17, 20], [16, 42, 52], [32, 82, 92]])
    y = run(layers.DepthwiseConv2D(2, depth_multiplier=2, padding="same", use_bias=False),
            (1, 2, 3, 2))
    np.testing.assert_array_equal(y[0], [[[196, 216, 272, 296], [252, 280, 344, 376],
                                          [104, 120, 150, 168]],
                                         [[52, 68, 94, 112], [64, 84, 114, 136],
                                          [11, 22, 36, 48]]])
    y = run(layers.Conv1D(1, 2, padding="causal", dilation_rate=2, use_bias=False), (1, 5, 1))
    np.testing.assert_array_equal(y[0, :, 0], [2, 4, 7, 10, 13])


# (class, kwargs, input shape, output shape as Keras 3 computes it)
LAYERS = [
    (layers.Conv2DTranspose, dict(filters=3, kernel_size=2, strides=2), (2, 4, 5, 4), (8, 10, 3)),
    (layers.Conv2DTranspose, dict(filters=3, kernel_size=3, strides=2, padding="same"),
     (2, 5, 4, 2), (10, 8, 3)),
    (layers.Conv2DTranspose, dict(filters=2, kernel_size=3, strides=2), (2, 3, 4, 3), (7, 9, 2)),
    (layers.Conv2DTranspose, dict(filters=2, kernel_size=(3, 4), strides=(2, 3), padding="same",
                                  output_padding=(1, 2), activation="relu"), (2, 4, 3, 3),
     (8, 8, 2)),
    (layers.Conv2DTranspose, dict(filters=2, kernel_size=(3, 2), strides=(3, 2),
                                  output_padding=(2, 0), activation="tanh"), (1, 3, 3, 2),
     (11, 6, 2)),
    (layers.Conv2DTranspose, dict(filters=2, kernel_size=4, strides=3, padding="same",
                                  output_padding=0), (1, 4, 3, 2), (9, 6, 2)),
    (layers.Conv2DTranspose, dict(filters=2, kernel_size=3, dilation_rate=2, padding="same"),
     (2, 6, 5, 3), (6, 5, 2)),
    (layers.Conv2DTranspose, dict(filters=2, kernel_size=(2, 3), dilation_rate=(3, 2),
                                  activation="sigmoid"), (1, 4, 5, 2), (7, 9, 2)),
    (layers.DepthwiseConv2D, dict(kernel_size=3), (2, 7, 6, 5), (5, 4, 5)),
    (layers.DepthwiseConv2D, dict(kernel_size=3, strides=2, padding="same", depth_multiplier=2,
                                  activation="relu"), (2, 7, 8, 3), (4, 4, 6)),
    (layers.DepthwiseConv2D, dict(kernel_size=(3, 2), padding="same", dilation_rate=(2, 3),
                                  depth_multiplier=3, use_bias=False), (1, 8, 7, 2), (8, 7, 6)),
    (layers.SeparableConv2D, dict(filters=4, kernel_size=3, padding="same", activation="relu"),
     (2, 6, 7, 3), (6, 7, 4)),
    (layers.SeparableConv2D, dict(filters=5, kernel_size=(3, 2), strides=(2, 1),
                                  depth_multiplier=2), (2, 7, 6, 3), (3, 5, 5)),
    (layers.SeparableConv2D, dict(filters=3, kernel_size=3, dilation_rate=2, padding="same",
                                  activation="sigmoid"), (1, 7, 7, 2), (7, 7, 3)),
    (layers.Conv1D, dict(filters=4, kernel_size=3, padding="causal", dilation_rate=2),
     (2, 11, 3), (11, 4)),
    (layers.Conv1D, dict(filters=4, kernel_size=4, strides=2, padding="same"), (2, 9, 3), (5, 4)),
    (layers.Conv1D, dict(filters=6, kernel_size=3, groups=3, activation="relu"), (2, 8, 6),
     (6, 6)),
    (layers.Conv1D, dict(filters=2, kernel_size=3, strides=2, padding="causal",
                         activation="tanh"), (2, 9, 2), (5, 2)),
    (layers.Conv2D, dict(filters=4, kernel_size=3, dilation_rate=(2, 3), padding="same"),
     (2, 9, 10, 3), (9, 10, 4)),
    (layers.Conv2D, dict(filters=4, kernel_size=(2, 3), dilation_rate=2, activation="relu"),
     (2, 7, 9, 3), (5, 5, 4)),
    (layers.Conv2D, dict(filters=6, kernel_size=3, strides=2, groups=2, padding="same"),
     (2, 7, 8, 4), (4, 4, 6)),
    (layers.Conv2D, dict(filters=4, kernel_size=3, groups=4, dilation_rate=2, padding="same",
                         activation="relu"), (1, 6, 6, 8), (6, 6, 4)),
]
LAYER_IDS = [f"{c.__name__}-{i}" for i, (c, *_rest) in enumerate(LAYERS)]


def _built(cls, kwargs, shape, seed=0):
    layer = cls(**kwargs)
    layer.build((None,) + shape[1:])
    rng = np.random.default_rng(seed)
    layer.set_weights([rng.standard_normal(v.shape).astype(np.float32) * 0.5
                       for v in layer.weights])
    return layer


@pytest.mark.parametrize("cls, kwargs, shape, out", LAYERS, ids=LAYER_IDS)
def test_layer_output_shape_is_keras(cls, kwargs, shape, out):
    layer = cls(**kwargs)
    assert layer.compute_output_shape((None,) + shape[1:]) == (None,) + out
    layer.build((None,) + shape[1:])
    assert layer(_f32(*shape)).shape == (shape[0],) + out


@pytest.mark.parametrize("cls, kwargs, shape, out", LAYERS, ids=LAYER_IDS)
def test_layer_forward_and_backward_match_reference(cls, kwargs, shape, out):
    layer = _built(cls, kwargs, shape)
    x = _f32(*shape)
    weights = [v.numpy().astype(np.float64) for v in layer.weights]
    ctx = Context()
    y = layer.forward(ctx, x)
    _close(y, ref_layer(layer, x, weights), 3e-5)
    r = _f32(*y.shape)
    dx = layer.backward(ctx, r)
    grads = [v.grad.copy() for v in layer.weights]

    def loss(xv, ws):
        return float((ref_layer(layer, xv, ws) * r).sum())

    # central differences of the float64 reference at sampled coordinates of x and each weight
    eps, rng = 1e-6, np.random.default_rng(1)
    for target, got in [(None, dx)] + list(enumerate(grads)):
        base = x.astype(np.float64) if target is None else weights[target]
        for idx in {tuple(int(rng.integers(d)) for d in base.shape) for _ in range(12)}:
            plus, minus = base.copy(), base.copy()
            plus[idx] += eps
            minus[idx] -= eps
            if target is None:
                fd = (loss(plus, weights) - loss(minus, weights)) / (2 * eps)
            else:
                wp, wm = list(weights), list(weights)
                wp[target], wm[target] = plus, minus
                fd = (loss(x, wp) - loss(x, wm)) / (2 * eps)
            assert got[idx] == pytest.approx(fd, rel=2e-3, abs=2e-3), (target, idx)


@pytest.mark.parametrize("cls, kwargs, shape, out", LAYERS, ids=LAYER_IDS)
def test_layer_results_do_not_depend_on_thread_count(cls, kwargs, shape, out,
                                                     keep_num_threads):
    shape = (19,) + shape[1:]                 # more chunks than lanes
    x, results = _f32(*shape), []
    for threads in (1, 2, 3):
        pycnn.set_num_threads(threads)
        layer = _built(cls, kwargs, shape)
        ctx = Context()
        y = layer.forward(ctx, x).copy()
        dx = layer.backward(ctx, np.ones_like(y) * 0.25 + y * 0.5).copy()
        results.append([y, dx] + [v.grad.copy() for v in layer.weights])
    for other in results[1:]:
        for a, b in zip(results[0], other):
            np.testing.assert_array_equal(a, b)


def test_need_dx_false_returns_none_and_still_gives_weight_grads():
    for cls, kwargs, shape, _ in LAYERS[::4]:
        layer = _built(cls, kwargs, shape)
        x = _f32(*shape)
        ctx = Context()
        y = layer.forward(ctx, x)
        layer.backward(ctx, np.ones_like(y), need_dx=True)
        want = [v.grad.copy() for v in layer.weights]
        ctx = Context()
        layer.forward(ctx, x)
        assert layer.backward(ctx, np.ones_like(y), need_dx=False) is None
        for v, w in zip(layer.weights, want):
            np.testing.assert_array_equal(v.grad, w)


def test_noncontiguous_output_gradient_is_accepted():
    layer = _built(layers.Conv2DTranspose, dict(filters=3, kernel_size=2, strides=2), (2, 3, 3, 2))
    x = _f32(2, 3, 3, 2)
    ctx = Context()
    y = layer.forward(ctx, x)
    big = _f32(*(y.shape[:3] + (6,)))
    dx1 = layer.backward(ctx, big[..., ::2]).copy()
    dx2 = layer.backward(ctx, np.ascontiguousarray(big[..., ::2]))
    np.testing.assert_array_equal(dx1, dx2)


def test_logits_only_stops_before_the_activation():
    layer = _built(layers.Conv2DTranspose, dict(filters=3, kernel_size=2, strides=2,
                                                activation="sigmoid"), (2, 3, 3, 2))
    x = _f32(2, 3, 3, 2)
    ctx = Context(logits_only=True)
    z = layer.forward(ctx, x)
    weights = [v.numpy() for v in layer.weights]
    layer.activation = "linear"
    _close(z, ref_layer(layer, x, weights), 3e-5)


def test_weights_in_keras_order_and_shapes():
    sep = layers.SeparableConv2D(8, 3, depth_multiplier=2)
    sep.build((None, 9, 9, 5))
    assert [(v.name.split("/")[1], v.shape) for v in sep.weights] == [
        ("depthwise_kernel", (3, 3, 5, 2)), ("pointwise_kernel", (1, 1, 10, 8)), ("bias", (8,))]
    t = layers.Conv2DTranspose(7, (2, 3))
    t.build((None, 4, 4, 5))
    assert [(v.name.split("/")[1], v.shape) for v in t.weights] == [
        ("kernel", (2, 3, 7, 5)), ("bias", (7,))]
    d = layers.DepthwiseConv2D(3, depth_multiplier=4, use_bias=False)
    d.build((None, 6, 6, 5))
    assert [(v.name.split("/")[1], v.shape) for v in d.weights] == [("kernel", (3, 3, 5, 4))]
    c = layers.Conv1D(6, 5, groups=3)
    c.build((None, 20, 9))
    assert [v.shape for v in c.weights] == [(5, 3, 6), (6,)]
    g = layers.Conv2D(6, 3, groups=2)
    g.build((None, 8, 8, 4))
    assert [v.shape for v in g.weights] == [(3, 3, 2, 6), (6,)]
    assert layers.Convolution2DTranspose is layers.Conv2DTranspose


def test_plain_conv2d_keeps_its_kernel_bit_for_bit():
    layer = _built(layers.Conv2D, dict(filters=8, kernel_size=3, padding="same",
                                       activation="relu"), (4, 9, 9, 16))
    x = _f32(4, 9, 9, 16)
    want = np.empty((4, 9, 9, 8), np.float32)
    _C.conv2d_forward(x, layer.kernel.value, layer.bias.value, want, (1, 1), (1, 1),
                      activation="relu")
    np.testing.assert_array_equal(layer(x), want)


def test_depthwise_with_depth_multiplier_one_equals_grouped_conv2d():
    x = _f32(3, 8, 7, 6)
    d = _built(layers.DepthwiseConv2D, dict(kernel_size=3, padding="same"), x.shape)
    g = layers.Conv2D(6, 3, padding="same", groups=6)
    g.build((None, 8, 7, 6))
    g.set_weights([d.kernel.numpy().reshape(3, 3, 1, 6), d.bias.numpy()])
    _close(d(x), g(x), 1e-6)


# ---- arguments and configs --------------------------------------------------------------------

@pytest.mark.parametrize("make, message", [
    (lambda: layers.Conv2D(4, 3, groups=0),
     "The number of groups must be a positive integer. Received: groups=0."),
    (lambda: layers.Conv2D(5, 3, groups=2),
     "The number of filters must be evenly divisible by the number of groups. "
     "Received: groups=2, filters=5."),
    (lambda: layers.Conv2D(4, 3, strides=2, dilation_rate=2),
     r"`strides > 1` not supported in conjunction with `dilation_rate > 1`. "
     r"Received: strides=\(2, 2\) and dilation_rate=\(2, 2\)"),
    (lambda: layers.Conv1D(4, 3, strides=2, dilation_rate=2), "`strides > 1` not supported"),
    (lambda: layers.Conv2DTranspose(4, 3, strides=2, dilation_rate=2),
     "`strides > 1` not supported"),
    (lambda: layers.Conv2DTranspose(4, 3, strides=2, output_padding=2),
     r"`output_padding` must be strictly less than `strides` for all dimensions. At dimension "
     r"0, `output_padding` is 2 but `strides` is 2. Received: output_padding=\(2, 2\), "
     r"strides=\(2, 2\)"),
    (lambda: layers.Conv2DTranspose(4, 3, output_padding=-1), "output_padding"),
    (lambda: layers.Conv2DTranspose(0, 3), "filters"),
    (lambda: layers.DepthwiseConv2D(3, depth_multiplier=0),
     "Invalid value for argument `depth_multiplier`. Expected a strictly positive value. "
     "Received depth_multiplier=0."),
    (lambda: layers.SeparableConv2D(4, 3, depth_multiplier=-1), "depth_multiplier"),
    (lambda: layers.Conv1D(4, 3, padding="full"), "padding"),
    (lambda: layers.Conv2D(4, 3, padding="causal"), "padding"),
    (lambda: layers.Conv1D(4, (3, 3)), "kernel_size"),
    (lambda: layers.DepthwiseConv2D(3, dilation_rate=0), "dilation_rate"),
    (lambda: layers.SeparableConv2D(4, 3, data_format="channels_first"), "channels_last"),
])
def test_argument_errors_name_the_argument(make, message):
    with pytest.raises(ValueError, match=message):
        make()


def test_groups_must_divide_input_channels_with_keras_message():
    layer = layers.Conv2D(4, 3, groups=2)
    with pytest.raises(ValueError, match="The number of input channels must be evenly divisible "
                                         "by the number of groups. Received groups=2, but the "
                                         "input has 3 channels"):
        layer(_f32(1, 5, 5, 3))


def test_dilated_kernel_larger_than_input_is_an_error():
    with pytest.raises(ValueError, match="does not fit"):
        layers.Conv2D(2, 3, dilation_rate=3)(_f32(1, 6, 6, 1))
    with pytest.raises(ValueError, match="does not fit"):
        layers.DepthwiseConv2D(3, dilation_rate=(1, 4))(_f32(1, 6, 6, 1))


def test_numpy_scalars_are_accepted():
    layer = layers.Conv2DTranspose(np.int64(3), np.int32(2), strides=np.int64(2),
                                   output_padding=np.int64(1))
    assert layer.compute_output_shape((None, 4, 4, 2)) == (None, 9, 9, 3)
    assert layers.Conv2D(np.int64(4), 3, groups=np.int64(2)).groups == 2
    assert layers.DepthwiseConv2D(3, depth_multiplier=np.int64(2)).depth_multiplier == 2


KERAS_KEYS = {
    "Conv1D": ["activation", "activity_regularizer", "bias_constraint", "bias_initializer",
               "bias_regularizer", "data_format", "dilation_rate", "filters", "groups",
               "kernel_constraint", "kernel_initializer", "kernel_regularizer", "kernel_size",
               "padding", "strides", "use_bias"],
    "Conv2DTranspose": ["activation", "activity_regularizer", "bias_constraint",
                        "bias_initializer", "bias_regularizer", "data_format", "dilation_rate",
                        "filters", "kernel_constraint", "kernel_initializer",
                        "kernel_regularizer", "kernel_size", "output_padding", "padding",
                        "strides", "use_bias"],
    "DepthwiseConv2D": ["activation", "activity_regularizer", "bias_constraint",
                        "bias_initializer", "bias_regularizer", "data_format",
                        "depth_multiplier", "depthwise_constraint", "depthwise_initializer",
                        "depthwise_regularizer", "dilation_rate", "kernel_size", "padding",
                        "strides", "use_bias"],
    "SeparableConv2D": ["activation", "activity_regularizer", "bias_constraint",
                        "bias_initializer", "bias_regularizer", "data_format",
                        "depth_multiplier", "depthwise_constraint", "depthwise_initializer",
                        "depthwise_regularizer", "dilation_rate", "filters", "kernel_size",
                        "padding", "pointwise_constraint", "pointwise_initializer",
                        "pointwise_regularizer", "strides", "use_bias"],
}


@pytest.mark.parametrize("cls, kwargs, shape, out", LAYERS, ids=LAYER_IDS)
def test_config_round_trip(cls, kwargs, shape, out):
    import json
    layer = cls(**kwargs)
    config = layer.get_config()
    json.dumps(config)
    clone = cls.from_config(config)
    assert clone.get_config() == config
    if cls.__name__ in KERAS_KEYS:
        assert sorted(k for k in config if k not in ("name", "trainable", "dtype",
                                                     "batch_input_shape")) \
            == KERAS_KEYS[cls.__name__]
    for key, value in kwargs.items():
        want = list(value) if isinstance(value, tuple) else value
        got = config[key]
        assert got == want or got == [want] * len(got if isinstance(got, list) else [got]), key


def test_depthwise_arithmetic_intensity_is_low():
    """Why depthwise is memory-bound (see benchmarks/conv_variants.py): 3x3, 128 channels,
    56x56: 18 FLOPs per output value against 8 bytes of x and y moved, 2.25 FLOP/byte."""
    flops = 2 * 9 * 56 * 56 * 128
    bytes_moved = 4 * (56 * 56 * 128) * 2
    assert flops / bytes_moved == pytest.approx(2.25)


# ---- models -------------------------------------------------------------------------------------

def test_small_unet_trains_with_fit(seed):
    inp = layers.Input((16, 16, 3))
    c1 = layers.Conv2D(8, 3, padding="same", activation="relu")(inp)
    p1 = layers.MaxPooling2D(2)(c1)
    c2 = layers.Conv2D(16, 3, padding="same", activation="relu")(p1)
    u1 = layers.Conv2DTranspose(8, 2, strides=2, padding="same", activation="relu")(c2)
    m1 = layers.concatenate([u1, c1])
    c3 = layers.SeparableConv2D(8, 3, padding="same", activation="relu")(m1)
    c4 = layers.DepthwiseConv2D(3, padding="same", dilation_rate=2)(c3)
    out = layers.Conv2D(1, 1, activation="sigmoid")(c4)
    model = pycnn.Model(inp, out)
    rng = np.random.default_rng(0)
    x = rng.random((64, 16, 16, 3), dtype=np.float32)
    y = (x.mean(-1, keepdims=True) > 0.5).astype(np.float32)     # a per-pixel mask
    model.compile(optimizer=pycnn.optimizers.Adam(0.01), loss="mse")
    hist = model.fit(x, y, batch_size=16, epochs=12, verbose=0)
    losses = hist.history["loss"]
    assert losses[-1] < 0.7 * losses[0], losses
    assert model.predict(x[:4], verbose=0).shape == (4, 16, 16, 1)


def test_sequential_with_conv1d_trains(seed):
    model = pycnn.Sequential([
        layers.Input((20, 2)),
        layers.Conv1D(8, 3, padding="causal", dilation_rate=2, activation="relu"),
        layers.Conv1D(4, 3, groups=2, activation="relu"),
        layers.Flatten(),
        layers.Dense(2, activation="softmax"),
    ])
    rng = np.random.default_rng(1)
    x = rng.standard_normal((64, 20, 2)).astype(np.float32)
    y = (x[:, :, 0].sum(1) > 0).astype(np.int64)
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    hist = model.fit(x, y, batch_size=16, epochs=10, verbose=0)
    assert hist.history["loss"][-1] < hist.history["loss"][0]


def test_dilated_conv2d_before_max_pooling_in_a_model_is_not_fused_wrongly():
    x = _f32(2, 12, 12, 3)
    inp = layers.Input((12, 12, 3))
    conv, pool = layers.Conv2D(4, 3, dilation_rate=2, activation="relu"), layers.MaxPooling2D(2)
    model = pycnn.Model(inp, pool(conv(inp)))
    _close(model.predict(x, verbose=0), pool(conv(x)), 1e-6)


def test_model_with_every_variant_saves_and_loads(tmp_path):
    model = pycnn.Sequential([
        layers.Input((8, 8, 3)),
        layers.DepthwiseConv2D(3, padding="same", depth_multiplier=2),
        layers.SeparableConv2D(4, 3, dilation_rate=2, activation="relu"),
        layers.Conv2DTranspose(2, 2, strides=2, output_padding=1),
        layers.Conv2D(4, 3, dilation_rate=2, groups=2),
    ])
    x = _f32(2, 8, 8, 3)
    path = str(tmp_path / "variants.keras")
    model.save(path)
    loaded = pycnn.models.load_model(path)
    np.testing.assert_array_equal(loaded.predict(x, verbose=0), model.predict(x, verbose=0))
    assert [type(l).__name__ for l in loaded.layers] == [type(l).__name__ for l in model.layers]


def test_depthwise_kernel_larger_than_the_kernels_allow_is_refused_by_name():
    from pycnn import layers as L
    with pytest.raises(ValueError, match="kernel_size must be at most 256"):
        L.DepthwiseConv2D((257, 3))
    with pytest.raises(ValueError, match="kernel_size must be at most 256"):
        L.SeparableConv2D(4, (3, 300))
    assert L.DepthwiseConv2D((256, 1)).kernel_size == (256, 1)
