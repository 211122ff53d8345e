"""Tests of the float64 oracle in tests/reference.py itself.

Hand-computed tiny examples pin the semantics (padding rule, cross-correlation orientation,
pooling ties and padding, Keras' optimizer and crossentropy formulas); central finite
differences on the reference forward functions check the reference backward functions.
These need no compiled extension.
"""

import math
import os
import sys

import numpy as np
import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import reference as ref  # noqa: E402


def rng(seed=0):
    return np.random.default_rng(seed)


def assert_grad(analytic, numeric, rtol=1e-6, atol=1e-7):
    np.testing.assert_allclose(analytic, numeric, rtol=rtol, atol=atol)


# ---------------------------------------------------------------------------------------------
# Output size and padding
# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("n,k,s,padding,out", [
    (5, 3, 1, "valid", 3),
    (5, 3, 2, "valid", 2),
    (6, 3, 2, "valid", 2),
    (28, 3, 1, "valid", 26),
    (26, 2, 2, "valid", 13),
    (5, 2, 2, "valid", 2),
    (5, 5, 1, "valid", 1),
    (9, 2, 3, "valid", 3),
    (5, 3, 1, "same", 5),
    (5, 3, 2, "same", 3),
    (6, 3, 2, "same", 3),
    (7, 1, 2, "same", 4),
    (1, 5, 1, "same", 1),
    (13, 2, 2, "same", 7),
])
def test_conv_output_size(n, k, s, padding, out):
    assert ref.conv_output_size(n, k, s, padding) == out


@pytest.mark.parametrize("n,k,s,pads", [
    (5, 3, 2, (1, 1)),
    (6, 3, 2, (0, 1)),
    (5, 3, 1, (1, 1)),
    (4, 2, 1, (0, 1)),   # even kernel: the odd cell goes after
    (5, 2, 2, (0, 1)),
    (6, 2, 2, (0, 0)),
    (7, 1, 2, (0, 0)),   # stride > kernel: no padding needed
    (1, 5, 1, (2, 2)),   # kernel larger than the input
    (4, 5, 1, (2, 2)),
    (6, 4, 1, (1, 2)),
    (28, 3, 1, (1, 1)),
])
def test_same_pads(n, k, s, pads):
    assert ref.same_pads(n, k, s) == pads
    assert ref.pads_for(n, k, s, "same") == pads


def test_valid_pads_and_errors():
    assert ref.pads_for(5, 3, 2, "valid") == (0, 0)
    with pytest.raises(ValueError):
        ref.conv_output_size(2, 3, 1, "valid")
    with pytest.raises(ValueError):
        ref.conv_output_size(5, 3, 1, "full")
    with pytest.raises(ValueError):
        ref.conv_output_size(5, 3, 0, "same")


def test_geometry():
    assert ref.geometry(6, 5, 3, 3, 2, 2, "same") == (3, 3, (0, 1))
    assert ref.geometry(28, 28, 3, 3, 1, 1, "valid") == (26, 26, (0, 0))


# ---------------------------------------------------------------------------------------------
# Dense
# ---------------------------------------------------------------------------------------------

def test_dense_hand():
    x = np.array([[1.0, 2.0], [3.0, 4.0]])
    w = np.array([[1.0, 0.0, -1.0], [2.0, 1.0, 0.5]])
    b = np.array([0.5, -1.0, 0.0])
    np.testing.assert_array_equal(ref.dense_forward(x, w, b),
                                  [[5.5, 1.0, 0.0], [11.5, 3.0, -1.0]])
    np.testing.assert_array_equal(ref.dense_forward(x, w), [[5.0, 2.0, 0.0], [11.0, 4.0, -1.0]])


def test_dense_backward_fd():
    r = rng(1)
    x, w, b = r.normal(size=(3, 4)), r.normal(size=(4, 5)), r.normal(size=5)
    dy = r.normal(size=(3, 5))
    dx, dw, db = ref.dense_backward(x, w, dy)
    assert_grad(dx, ref.numerical_grad(lambda x_: (ref.dense_forward(x_, w, b) * dy).sum(), x))
    assert_grad(dw, ref.numerical_grad(lambda w_: (ref.dense_forward(x, w_, b) * dy).sum(), w))
    assert_grad(db, ref.numerical_grad(lambda b_: (ref.dense_forward(x, w, b_) * dy).sum(), b))


# ---------------------------------------------------------------------------------------------
# Conv2D
# ---------------------------------------------------------------------------------------------

def _img(a):
    """2-D array -> NHWC (1, H, W, 1)."""
    return np.asarray(a, dtype=np.float64)[None, :, :, None]


def _ker(a):
    """2-D array -> (KH, KW, 1, 1)."""
    return np.asarray(a, dtype=np.float64)[:, :, None, None]


X55 = np.arange(25.0).reshape(5, 5)     # x[r, c] = 5 r + c


def test_conv_hand_valid():
    y = ref.conv2d_forward(_img(X55), _ker(np.ones((3, 3))), None, (1, 1), (0, 0), (3, 3))
    # the sum of a 3x3 neighbourhood of a linear ramp is 9 times its centre
    np.testing.assert_array_equal(y[0, :, :, 0], [[54, 63, 72], [99, 108, 117], [144, 153, 162]])


def test_conv_hand_valid_stride2():
    y = ref.conv2d_forward(_img(X55), _ker(np.ones((3, 3))), None, (2, 2), (0, 0), (2, 2))
    np.testing.assert_array_equal(y[0, :, :, 0], [[54, 72], [144, 162]])


def test_conv_hand_same_stride2_5():
    oh, ow, pads = ref.geometry(5, 5, 3, 3, 2, 2, "same")
    assert (oh, ow, pads) == (3, 3, (1, 1))
    y = ref.conv2d_forward(_img(X55), _ker(np.ones((3, 3))), None, (2, 2), pads, (oh, ow))
    # windows centred on rows/cols 0, 2, 4; cells outside read as 0
    np.testing.assert_array_equal(y[0, :, :, 0], [[12, 27, 24], [63, 108, 81], [72, 117, 84]])


def test_conv_hand_same_stride2_6():
    x = np.arange(36.0).reshape(6, 6)
    assert ref.same_pads(6, 3, 2) == (0, 1)
    oh, ow, pads = ref.geometry(6, 6, 3, 3, 2, 2, "same")
    assert (oh, ow, pads) == (3, 3, (0, 0))     # (top, left); the extra cell is bottom/right
    y = ref.conv2d_forward(_img(x), _ker(np.ones((3, 3))), None, (2, 2), pads, (oh, ow))
    # window rows 0-2, 2-4, 4-5 (+ one padding row): centred on rows 1, 3, 5
    expect = np.zeros((3, 3))
    for i, r0 in enumerate((0, 2, 4)):
        for j, c0 in enumerate((0, 2, 4)):
            expect[i, j] = x[r0:r0 + 3, c0:c0 + 3].sum()
    np.testing.assert_array_equal(y[0, :, :, 0], expect)
    assert expect[2, 2] == x[4:6, 4:6].sum() == 28 + 29 + 34 + 35


def test_conv_is_cross_correlation():
    x = np.arange(9.0).reshape(3, 3)
    y = ref.conv2d_forward(_img(x), _ker([[1, 0], [0, 0]]), None, (1, 1), (0, 0), (2, 2))
    np.testing.assert_array_equal(y[0, :, :, 0], x[:2, :2])
    y = ref.conv2d_forward(_img(x), _ker([[0, 0], [0, 1]]), None, (1, 1), (0, 0), (2, 2))
    np.testing.assert_array_equal(y[0, :, :, 0], x[1:, 1:])
    # non-square kernel (1, 2) picks the right neighbour with weight 10
    y = ref.conv2d_forward(_img(x), _ker([[1, 10]]), None, (1, 1), (0, 0), (3, 2))
    np.testing.assert_array_equal(y[0, :, :, 0], x[:, :2] + 10 * x[:, 1:])


def test_conv_channels_and_bias():
    # 1x1 conv = per-pixel matmul over channels, plus bias
    x = np.arange(2 * 2 * 2 * 3, dtype=float).reshape(2, 2, 2, 3)
    w = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, -1.0]])       # (C=3, O=2)
    b = np.array([0.5, -0.5])
    y = ref.conv2d_forward(x, w[None, None], b, (1, 1), (0, 0), (2, 2))
    np.testing.assert_array_equal(y, x @ w + b)
    y = ref.conv2d_forward(x, w[None, None], b, (2, 2), (0, 0), (1, 1))
    np.testing.assert_array_equal(y, (x @ w + b)[:, :1, :1])


CONV_CASES = [
    # (N, H, W, C, O, KH, KW, sh, sw, padding or explicit (top, left, OH, OW))
    (2, 5, 5, 2, 3, 3, 3, 1, 1, "valid"),
    (1, 5, 5, 1, 2, 3, 3, 2, 2, "same"),
    (1, 6, 6, 2, 1, 3, 3, 2, 2, "same"),
    (2, 4, 5, 2, 2, 2, 2, 1, 1, "same"),
    (1, 7, 5, 2, 2, 3, 2, 2, 3, "same"),
    (2, 7, 7, 1, 2, 2, 2, 3, 3, "valid"),
    (1, 4, 4, 3, 2, 1, 1, 2, 1, "same"),
    (1, 3, 4, 2, 2, 5, 5, 1, 1, "same"),
    (1, 5, 4, 2, 2, 3, 2, 1, 1, (2, 0, 4, 3)),   # asymmetric explicit pads
    (1, 4, 4, 1, 1, 2, 3, 2, 1, (1, 2, 3, 4)),
]


def _case_geometry(case):
    n, h, w, c, o, kh, kw, sh, sw, pad = case
    if isinstance(pad, str):
        oh, ow, pads = ref.geometry(h, w, kh, kw, sh, sw, pad)
    else:
        pads, (oh, ow) = pad[:2], pad[2:]
    return (n, h, w, c, o, kh, kw), (sh, sw), pads, (oh, ow)


@pytest.mark.parametrize("case", CONV_CASES)
def test_conv_einsum_matches_naive(case):
    (n, h, w, c, o, kh, kw), strides, pads, out = _case_geometry(case)
    r = rng(2)
    x, k, b = r.normal(size=(n, h, w, c)), r.normal(size=(kh, kw, c, o)), r.normal(size=o)
    np.testing.assert_allclose(ref.conv2d_forward(x, k, b, strides, pads, out),
                               ref.conv2d_forward_naive(x, k, b, strides, pads, out),
                               rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("case", CONV_CASES)
def test_conv_backward_fd(case):
    (n, h, w, c, o, kh, kw), strides, pads, out = _case_geometry(case)
    r = rng(3)
    x, k, b = r.normal(size=(n, h, w, c)), r.normal(size=(kh, kw, c, o)), r.normal(size=o)
    dy = r.normal(size=(n,) + out + (o,))
    dx, dw, db = ref.conv2d_backward(x, k, dy, strides, pads)
    f = lambda x_, k_, b_: (ref.conv2d_forward(x_, k_, b_, strides, pads, out) * dy).sum()  # noqa: E731
    assert_grad(dx, ref.numerical_grad(lambda v: f(v, k, b), x))
    assert_grad(dw, ref.numerical_grad(lambda v: f(x, v, b), k))
    assert_grad(db, ref.numerical_grad(lambda v: f(x, k, v), b))


# ---------------------------------------------------------------------------------------------
# Pooling
# ---------------------------------------------------------------------------------------------

def test_maxpool_hand_ties_first_max():
    x = np.array([[1, 1, 2, 2],
                  [1, 1, 2, 2],
                  [0, 3, 3, 0],
                  [3, 0, 0, 3]], dtype=float)
    y, am = ref.maxpool2d_forward(_img(x), (2, 2), (2, 2), (0, 0), (2, 2))
    np.testing.assert_array_equal(y[0, :, :, 0], [[1, 2], [3, 3]])
    # first maximum scanning each window row by row: (0,0), (0,2), (2,1), (2,2)
    np.testing.assert_array_equal(am[0, :, :, 0], [[0, 2], [9, 10]])
    dx = ref.maxpool2d_backward(np.array([[1.0, 2.0], [3.0, 4.0]])[None, :, :, None], am, (1, 4, 4, 1))
    expect = np.zeros((4, 4))
    expect[0, 0], expect[0, 2], expect[2, 1], expect[2, 2] = 1, 2, 3, 4
    np.testing.assert_array_equal(dx[0, :, :, 0], expect)


def test_maxpool_padding_is_minus_inf():
    x = np.full((3, 3), -5.0)
    assert ref.same_pads(3, 2, 2) == (0, 1)
    oh, ow, pads = ref.geometry(3, 3, 2, 2, 2, 2, "same")
    assert (oh, ow, pads) == (2, 2, (0, 0))
    y, am = ref.maxpool2d_forward(_img(x), (2, 2), (2, 2), pads, (oh, ow))
    np.testing.assert_array_equal(y[0, :, :, 0], np.full((2, 2), -5.0))   # not 0
    np.testing.assert_array_equal(am[0, :, :, 0], [[0, 2], [6, 8]])


def test_maxpool_overlapping_backward_accumulates():
    x = np.array([[0, 0, 0], [0, 9, 0], [0, 0, 0]], dtype=float)
    y, am = ref.maxpool2d_forward(_img(x), (2, 2), (1, 1), (0, 0), (2, 2))
    np.testing.assert_array_equal(am[0, :, :, 0], np.full((2, 2), 4))
    dx = ref.maxpool2d_backward(np.ones((1, 2, 2, 1)), am, (1, 3, 3, 1))
    assert dx[0, 1, 1, 0] == 4 and dx.sum() == 4


def test_avgpool_hand_same_counts_real_cells():
    x = np.arange(9.0).reshape(3, 3)
    # "same": pads (0, 1) on both axes, i.e. (top, left) = (0, 0) and the window grid runs off
    # the bottom/right edge
    y = ref.avgpool2d_forward(_img(x), (2, 2), (2, 2), (0, 0), (2, 2))
    np.testing.assert_array_equal(y[0, :, :, 0], [[2.0, 3.5], [6.5, 8.0]])
    dx = ref.avgpool2d_backward(np.ones((1, 2, 2, 1)), (1, 3, 3, 1), (2, 2), (2, 2), (0, 0))
    np.testing.assert_array_equal(dx[0, :, :, 0], [[.25, .25, .5], [.25, .25, .5], [.5, .5, 1]])


def test_avgpool_valid_drops_remainder():
    x = np.arange(25.0).reshape(5, 5)
    y = ref.avgpool2d_forward(_img(x), (2, 2), (2, 2), (0, 0), (2, 2))
    np.testing.assert_array_equal(y[0, :, :, 0], [[3, 5], [13, 15]])


POOL_CASES = [
    # (N, H, W, C, ph, pw, sh, sw, padding)
    (2, 4, 4, 2, 2, 2, 2, 2, "valid"),
    (1, 5, 5, 2, 2, 2, 2, 2, "same"),
    (1, 7, 6, 1, 3, 3, 2, 2, "same"),
    (2, 5, 5, 1, 3, 3, 1, 1, "same"),
    (1, 7, 6, 2, 3, 2, 3, 2, "valid"),
    (1, 8, 8, 1, 2, 2, 3, 3, "valid"),
    (1, 5, 5, 2, 4, 4, 1, 1, "same"),
]


def _distinct_input(r, shape, gap=0.05):
    """Values spaced ``gap`` apart in random order (no ties, max pooling differentiable)."""
    return (r.permutation(int(np.prod(shape))) * gap - 1.0).reshape(shape)


@pytest.mark.parametrize("case", POOL_CASES)
def test_maxpool_fd(case):
    n, h, w, c, ph, pw, sh, sw, padding = case
    oh, ow, pads = ref.geometry(h, w, ph, pw, sh, sw, padding)
    r = rng(4)
    x = _distinct_input(r, (n, h, w, c))
    dy = r.normal(size=(n, oh, ow, c))
    y, am = ref.maxpool2d_forward(x, (ph, pw), (sh, sw), pads, (oh, ow))
    # the argmax points at the maximum
    flat = x.reshape(n, h * w, c)
    np.testing.assert_array_equal(np.take_along_axis(flat, am.reshape(n, -1, c), axis=1), y.reshape(n, -1, c))
    dx = ref.maxpool2d_backward(dy, am, x.shape)
    num = ref.numerical_grad(
        lambda v: (ref.maxpool2d_forward(v, (ph, pw), (sh, sw), pads, (oh, ow))[0] * dy).sum(), x, h=1e-4)
    assert_grad(dx, num, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("case", POOL_CASES)
def test_avgpool_fd(case):
    n, h, w, c, ph, pw, sh, sw, padding = case
    oh, ow, pads = ref.geometry(h, w, ph, pw, sh, sw, padding)
    r = rng(5)
    x = r.normal(size=(n, h, w, c))
    dy = r.normal(size=(n, oh, ow, c))
    dx = ref.avgpool2d_backward(dy, x.shape, (ph, pw), (sh, sw), pads)
    num = ref.numerical_grad(
        lambda v: (ref.avgpool2d_forward(v, (ph, pw), (sh, sw), pads, (oh, ow)) * dy).sum(), x)
    assert_grad(dx, num)


# ---------------------------------------------------------------------------------------------
# Activations
# ---------------------------------------------------------------------------------------------

def test_activation_hand():
    x = np.array([[-2.0, 0.0, 3.0]])
    np.testing.assert_array_equal(ref.activation_forward("relu", x), [[0, 0, 3]])
    np.testing.assert_array_equal(ref.activation_forward("linear", x), x)
    np.testing.assert_allclose(ref.activation_forward("sigmoid", x), 1 / (1 + np.exp(-x)), rtol=1e-15)
    np.testing.assert_allclose(ref.activation_forward("tanh", x), np.tanh(x))
    s = ref.activation_forward("softmax", np.log([[1.0, 2.0, 5.0]]))
    np.testing.assert_allclose(s, [[0.125, 0.25, 0.625]], rtol=1e-15)
    # stable at extreme inputs
    big = np.array([[1000.0, 0.0, -1000.0]])
    np.testing.assert_allclose(ref.activation_forward("softmax", big), [[1, 0, 0]])
    np.testing.assert_allclose(ref.activation_forward("sigmoid", big), [[1, 0.5, 0]])
    assert np.all(np.isfinite(ref.activation_forward("sigmoid", big)))


@pytest.mark.parametrize("kind", ref.ACTIVATIONS)
@pytest.mark.parametrize("shape", [(7,), (3, 4), (2, 2, 3)])
def test_activation_backward_fd(kind, shape):
    r = rng(6)
    x = r.normal(size=shape)
    x = np.where(np.abs(x) < 0.05, 0.5, x)          # keep away from relu's kink
    dy = r.normal(size=shape)
    y = ref.activation_forward(kind, x)
    dx = ref.activation_backward(kind, y, dy)
    assert_grad(dx, ref.numerical_grad(lambda v: (ref.activation_forward(kind, v) * dy).sum(), x))


def test_unknown_activation():
    with pytest.raises(ValueError):
        ref.activation_forward("gelu", np.zeros(3))


# ---------------------------------------------------------------------------------------------
# Losses
# ---------------------------------------------------------------------------------------------

def test_losses_hand():
    loss, probs, d = ref.softmax_xent_sparse(np.zeros((2, 4)), np.array([1, 3]))
    assert loss == pytest.approx(math.log(4))
    np.testing.assert_allclose(probs, 0.25)
    np.testing.assert_allclose(d, [[0.125, -0.375, 0.125, 0.125], [0.125, 0.125, 0.125, -0.375]])
    loss, _, _ = ref.softmax_xent(np.zeros((2, 4)), np.eye(4)[[1, 3]])
    assert loss == pytest.approx(math.log(4))
    # clipping of probabilities
    loss, d = ref.xent_sparse(np.array([[0.0, 1.0], [0.5, 0.5]]), np.array([0, 1]))
    assert loss == pytest.approx((-math.log(1e-7) - math.log(0.5)) / 2)
    # clipped entry: no gradient; Keras renormalises the row first (q = p / sum p), so the
    # gradient of -log(q_1) / 2 at [0.5, 0.5] is [1/S - 0, 1/S - 1/p_1] / 2 = [0.5, -0.5]
    np.testing.assert_allclose(d, [[0, 0], [0.5, -0.5]])
    loss, _ = ref.xent_sparse(np.array([[0.0, 1.0]]), np.array([1]))
    assert loss == pytest.approx(-math.log(1 - 1e-7))
    # Keras' docstring example for categorical_crossentropy
    t = np.eye(3)
    p = np.array([[.9, .05, .05], [.05, .89, .06], [.05, .01, .94]])
    loss, _ = ref.xent(p, t)
    assert loss == pytest.approx(np.mean([0.10536, 0.11653, 0.06188]), abs=1e-5)
    # renormalisation: [2, 2] -> [0.5, 0.5]
    loss, _ = ref.xent(np.array([[2.0, 2.0]]), np.array([[1.0, 0.0]]))
    assert loss == pytest.approx(math.log(2))


def test_softmax_xent_sparse_fd():
    r = rng(7)
    logits = r.normal(size=(4, 5)) * 2
    labels = np.array([0, 4, 2, 2])
    _, probs, d = ref.softmax_xent_sparse(logits, labels)
    np.testing.assert_allclose(probs.sum(-1), 1)
    assert_grad(d, ref.numerical_grad(lambda v: ref.softmax_xent_sparse(v, labels)[0], logits))


def test_softmax_xent_fd():
    r = rng(8)
    logits = r.normal(size=(3, 4))
    t = r.random((3, 4))
    t /= t.sum(-1, keepdims=True)           # rows sum to 1: (p - t)/N is the exact gradient
    _, _, d = ref.softmax_xent(logits, t)
    assert_grad(d, ref.numerical_grad(lambda v: ref.softmax_xent(v, t)[0], logits))
    # one-hot targets agree with the sparse version
    labels = np.array([3, 0, 1])
    a, b = ref.softmax_xent(logits, np.eye(4)[labels]), ref.softmax_xent_sparse(logits, labels)
    assert a[0] == pytest.approx(b[0])
    np.testing.assert_allclose(a[2], b[2])


def test_xent_sparse_fd():
    r = rng(9)
    p = r.uniform(0.05, 0.95, size=(4, 3))
    labels = np.array([2, 0, 1, 1])
    _, d = ref.xent_sparse(p, labels)
    assert_grad(d, ref.numerical_grad(lambda v: ref.xent_sparse(v, labels)[0], p), rtol=1e-5)


def test_xent_fd_unnormalised():
    r = rng(10)
    p = r.uniform(0.1, 2.0, size=(3, 4))     # rows do not sum to 1
    t = r.random((3, 4))
    _, d = ref.xent(p, t)
    assert_grad(d, ref.numerical_grad(lambda v: ref.xent(v, t)[0], p), rtol=1e-5)
    # with a clipped entry (p = 0): that entry has no direct gradient, the others still do
    p[0, 1] = 0.0
    _, d = ref.xent(p, t)
    num = ref.numerical_grad(lambda v: ref.xent(v, t)[0], p, h=1e-9)
    mask = np.ones_like(p, dtype=bool)
    mask[0, 1] = False
    assert_grad(d[mask], num[mask], rtol=1e-4, atol=1e-5)


# ---------------------------------------------------------------------------------------------
# Optimizers
# ---------------------------------------------------------------------------------------------

def test_sgd_hand():
    w, v = ref.sgd_step(np.array([1.0]), np.array([0.5]), None, 0.1)
    assert w[0] == pytest.approx(0.95) and v is None
    w, v = np.array([1.0]), np.zeros(1)
    w, v = ref.sgd_step(w, np.array([0.5]), v, 0.1, momentum=0.9)
    assert (w[0], v[0]) == pytest.approx((0.95, -0.05))
    w, v = ref.sgd_step(w, np.array([0.5]), v, 0.1, momentum=0.9)
    assert (w[0], v[0]) == pytest.approx((0.855, -0.095))
    w, v = ref.sgd_step(np.array([1.0]), np.array([0.5]), np.zeros(1), 0.1, momentum=0.9, nesterov=True)
    assert (w[0], v[0]) == pytest.approx((1 - 0.045 - 0.05, -0.05))


def test_rmsprop_keras_docstring():
    # keras.optimizers.RMSprop(learning_rate=0.1) on loss var**2/2 from var = 10 -> 9.683772
    w, v, mom, mg = ref.rmsprop_step(np.array([10.0]), np.array([10.0]), np.zeros(1), 0.1)
    assert w[0] == pytest.approx(9.683772, abs=1e-6)
    assert mom is None and mg is None


def test_rmsprop_scalar_loop():
    """All four variants against a plain scalar transcription, several steps."""
    r = rng(11)
    gs = r.normal(size=5)
    for momentum in (0.0, 0.5):
        for centered in (False, True):
            lr, rho, eps = 0.01, 0.8, 1e-7
            w, v, mom, mg = 1.0, 0.0, 0.0, 0.0
            W, V = np.array([1.0]), np.zeros(1)
            MOM = np.zeros(1) if momentum else None
            MG = np.zeros(1) if centered else None
            for g in gs:
                v = rho * v + (1 - rho) * g * g
                if centered:
                    mg = rho * mg + (1 - rho) * g
                    inc = lr * g / math.sqrt(v - mg * mg + eps)
                else:
                    inc = lr * g / math.sqrt(v + eps)
                if momentum:
                    mom = momentum * mom + inc
                    w -= mom
                else:
                    w -= inc
                W, V, MOM, MG = ref.rmsprop_step(W, np.array([g]), V, lr, rho, eps, momentum, MOM, centered, MG)
                assert W[0] == pytest.approx(w, rel=1e-14)


def test_adam_first_step_is_lr_sign():
    g = np.array([3.0, -0.2, 0.05])
    w, m, v = ref.adam_step(np.zeros(3), g, np.zeros(3), np.zeros(3), 0.01, step=1)
    np.testing.assert_allclose(w, -0.01 * np.sign(g), rtol=1e-3)
    np.testing.assert_allclose(m, 0.1 * g)
    np.testing.assert_allclose(v, 0.001 * g * g)


def test_adam_matches_bias_corrected_textbook_form():
    """Keras' form equals Kingma & Ba with epsilon-hat = eps * sqrt(1 - beta_2^t)."""
    r = rng(12)
    lr, b1, b2, eps = 0.003, 0.8, 0.95, 1e-7
    w = W = r.normal(size=4)
    m = v = M = V = np.zeros(4)
    for t in range(1, 7):
        g = r.normal(size=4)
        W, M, V = ref.adam_step(W, g, M, V, lr, b1, b2, eps, step=t)
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        mhat, vhat = m / (1 - b1 ** t), v / (1 - b2 ** t)
        w = w - lr * mhat / (np.sqrt(vhat) + eps / math.sqrt(1 - b2 ** t))
        np.testing.assert_allclose(W, w, rtol=1e-12)
    with pytest.raises(ValueError):
        ref.adam_step(W, g, M, V, lr, step=0)
