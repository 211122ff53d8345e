"""Convolution + max pooling in one pass, its use by models, and the GEMM driver's column split.

* ``_C.conv2d_maxpool_forward`` / ``_C.conv2d_maxpool_backward`` (csrc/conv2d.c, pool.c; the
  contract in csrc/pycnn.h, "convolution + max pooling in one pass"): bit-identical to the
  unfused pair (``conv2d_forward`` then ``maxpool2d_forward``; ``maxpool2d_backward`` then
  ``conv2d_backward``) in y, argmax, dx and db, and in dw up to rounding (the fused backward
  sums dw over only the convolution cells some window reads, so its k blocks differ; cells no
  window reads are not computed, and a NaN only they would see stays out of dw), within the
  suite's error bounds of the float64 oracle composed from
  tests/reference.py, consistent with its own forward pass (directional derivative), the same
  for any thread count and on every SIMD path (fixture ``isa``), outputs fully overwritten,
  and safe for any int32 content of ``argmax``.
* Models (the ``conv_maxpool`` rule of pycnn/models/fusion.py, its ``ConvMaxPoolStep``, the
  compiled plan's ``fused_pairs``, ``model.set_fusion``): which (conv, pool) pairs run fused,
  and training with fusion on and off giving bit-identical weights, history and predictions
  (for batches whose dw sums keep their k blocks, as there); a convolution whose output is
  also read by another layer, or is a model output, is not fused.
* The GEMM driver's column split for short A (csrc/gemm.c ``split_by_columns`` /
  ``gemm_by_columns``): shapes with at most mc rows where N splits more evenly than M, through
  ``_C.gemm`` and ``_C.dense_forward`` / ``_C.dense_backward``: correct against float64 and
  bit-identical for 1, 2, 3 and 4 threads.

Bad arguments of the two fused entry points are in test_bad_input.py (worker process) and
they are fuzzed in test_fuzz.py.
"""
from __future__ import annotations

import functools
import os
import sys
import types

import numpy as np
import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import reference as ref  # noqa: E402

import pycnn  # noqa: E402
from pycnn import _C, layers  # noqa: E402
from pycnn.models import fusion  # noqa: E402
from pycnn.models.plan import LayerStep  # noqa: E402

from test_lecture import build_part2_convnet  # noqa: E402
from test_kernels import (_gemm_operands, assert_close, directional_check, f32, nans,  # noqa: E402
                          randn, rng)
from childproc import child_env, run_python


def by_threads(fn, counts=(1, 2, 3)):
    """``fn()`` once per thread count (the caller restores the count: ``keep_num_threads``)."""
    results = []
    for n in counts:
        _C.set_num_threads(n)
        results.append(fn())
    return results


# =============================================================================================
# The fused kernels
# =============================================================================================

FUSED_CASES = {
    # id: (N, H, W, C, O, kernel, conv strides, conv padding, pool, pool strides, pool padding)
    # the lecture's first block: 28x28x1 -> 3x3 conv, 32 filters (26x26) -> 2x2 pool (13x13)
    "lecture_block1": (2, 28, 28, 1, 32, (3, 3), (1, 1), "valid", (2, 2), (2, 2), "valid"),
    # the second block: 13x13x32 -> 3x3 conv, 64 (11x11) -> 2x2 pool (5x5): the conv output's
    # last row and column are in no window
    "lecture_block2": (2, 13, 13, 32, 64, (3, 3), (1, 1), "valid", (2, 2), (2, 2), "valid"),
    # overlapping windows: 3x3 pool, stride 2 (9 -> conv 7 -> pool 3)
    "pool3_s2_overlapping": (2, 9, 9, 3, 8, (3, 3), (1, 1), "valid", (3, 3), (2, 2), "valid"),
    # padded pooling: "same" 3x3 stride 2 on a 7x7 conv output, pads (1, 1)
    "pool3_s2_same_padded": (2, 9, 9, 2, 5, (3, 3), (1, 1), "valid", (3, 3), (2, 2), "same"),
    # "same" 3x3 stride 1 pool (pads (1, 1), every cell in up to 9 windows)
    "pool3_s1_same_padded": (2, 6, 7, 3, 4, (3, 3), (1, 1), "same", (3, 3), (1, 1), "same"),
    # "same" 2x2 pool on an odd conv output: the last window hangs over the bottom/right edge
    "pool2_same_odd": (2, 7, 7, 3, 5, (3, 3), (1, 1), "valid", (2, 2), (2, 2), "same"),
    # strided "same" convolution (9x8 -> 5x4), then 2x2 pool
    "conv_same_strided": (2, 9, 8, 4, 6, (3, 3), (2, 2), "same", (2, 2), (2, 2), "valid"),
    "conv_same_s1": (3, 6, 6, 2, 16, (3, 3), (1, 1), "same", (2, 2), (2, 2), "valid"),
    "pool1x1": (2, 6, 5, 3, 7, (3, 3), (1, 1), "valid", (1, 1), (1, 1), "valid"),
    # 1x1 convolution (the kernel reads x itself as its im2col matrix)
    "pointwise_conv": (2, 6, 6, 5, 8, (1, 1), (1, 1), "valid", (2, 2), (2, 2), "valid"),
    "nonsquare": (2, 10, 9, 3, 5, (2, 3), (1, 2), "valid", (3, 2), (2, 1), "valid"),
    "O33_channels": (2, 8, 8, 3, 33, (3, 3), (1, 1), "same", (2, 2), (2, 2), "valid"),
    "batch1": (1, 12, 12, 3, 8, (3, 3), (1, 1), "valid", (2, 2), (2, 2), "valid"),
    # batches larger than the 8 gradient lanes, one image per chunk (>= 512 conv pixels)
    "lecture_block1_batch9": (9, 28, 28, 1, 32, (3, 3), (1, 1), "valid", (2, 2), (2, 2), "valid"),
    "batch10_odd_pool": (10, 25, 25, 1, 4, (3, 3), (1, 1), "valid", (2, 2), (2, 2), "valid"),
    # one input channel, filters a multiple of 32: the direct kernel (direct_conv_pool.h) on the
    # AVX-512 and AVX2 paths; its tiles pool 3, 2 or 1 cells of a row: 8 pooled columns (3 + 3 + 2),
    # 4 (3 + 1), a 5x5 kernel, 64 filters, cropped odd convolution outputs
    "one_channel_64_filters_5x5": (3, 16, 21, 1, 64, (5, 5), (1, 1), "valid", (2, 2), (2, 2),
                                   "valid"),
    "one_channel_4_pooled_columns": (2, 11, 11, 1, 32, (3, 3), (1, 1), "valid", (2, 2), (2, 2),
                                     "valid"),
    # 10 chunks of 3 images over the 8 gradient lanes; each chunk's 420 pixels summed in two
    # k blocks of 210, the second starting inside an image
    "one_channel_64_filters_batch30": (30, 12, 16, 1, 64, (3, 3), (1, 1), "valid", (2, 2),
                                       (2, 2), "valid"),
    # more than 32 taps and more chunks than lanes (4-5 images a chunk, each chunk's pixels in two
    # k blocks): the AVX-512 path's products from dy's nonzeros (pc_gemm_sparse_a, _tn), whose dw
    # is summed per lane over several chunks; the second with nothing cropped, so bit for bit
    "lecture_block2_batch40": (40, 13, 13, 32, 64, (3, 3), (1, 1), "valid", (2, 2), (2, 2),
                               "valid"),
    "uncropped_36_taps_batch45": (45, 12, 12, 4, 16, (3, 3), (1, 1), "valid", (2, 2), (2, 2),
                                  "valid"),
}
# cases whose pooling reads every convolution cell (nothing cropped): there the fused backward
# sums dw over the same pixels in the same k blocks as the unfused pair, bit for bit
UNCROPPED_CASES = ["lecture_block1", "lecture_block1_batch9", "batch1", "pointwise_conv",
                   "one_channel_64_filters_batch30", "uncropped_36_taps_batch45"]
ACTIVATIONS = ("relu", "linear")


def fused_setup(case_id, seed=0):
    """The arguments of one case: x, w, b, the pooled gradient dy and the geometry."""
    n, h, w, c, o, (kh, kw), (sh, sw), cpad, pool, pstr, ppad = FUSED_CASES[case_id]
    oh, ow, pads = ref.geometry(h, w, kh, kw, sh, sw, cpad)
    poh, pow_, ppads = ref.geometry(oh, ow, pool[0], pool[1], pstr[0], pstr[1], ppad)
    r = rng(seed + sum(map(ord, case_id)))
    return types.SimpleNamespace(
        x=randn(r, (n, h, w, c)), w=randn(r, (kh, kw, c, o)), b=randn(r, o),
        dy=randn(r, (n, poh, pow_, o)), strides=(sh, sw), pads=tuple(pads), conv_hw=(oh, ow),
        pool=tuple(pool), pool_strides=tuple(pstr), pool_pads=tuple(ppads),
        conv_shape=(n, oh, ow, o), pooled_shape=(n, poh, pow_, o))


GEOMETRY_NAMES = ("strides", "pads", "conv_hw", "pool", "pool_strides", "pool_pads")


def geometry_args(g):
    return (g.strides, g.pads, g.conv_hw, g.pool, g.pool_strides, g.pool_pads)


def fused_forward(g, x, w, b, activation):
    y, am = nans(g.pooled_shape), nans(g.pooled_shape, np.int32)
    _C.conv2d_maxpool_forward(x, w, b, y, am, *geometry_args(g), activation=activation)
    return y, am


def unfused_forward(g, x, w, b, activation):
    conv = nans(g.conv_shape)
    _C.conv2d_forward(x, w, b, conv, g.strides, g.pads, activation=activation)
    y, am = nans(g.pooled_shape), nans(g.pooled_shape, np.int32)
    _C.maxpool2d_forward(conv, y, am, g.pool, g.pool_strides, g.pool_pads)
    return conv, y, am


def fused_backward(g, dy, am, relu_y, want_dx=True, want_db=True):
    dx = nans(g.x.shape) if want_dx else None
    dw = nans(g.w.shape)
    db = nans(g.w.shape[3]) if want_db else None
    _C.conv2d_maxpool_backward(g.x, g.w, dy, am, dx, dw, db, *geometry_args(g), y=relu_y)
    return dx, dw, db


def unfused_backward(g, dy, am, relu_conv, want_dx=True, want_db=True):
    dconv = nans(g.conv_shape)
    _C.maxpool2d_backward(dy, am, dconv)
    dx = nans(g.x.shape) if want_dx else None
    dw = nans(g.w.shape)
    db = nans(g.w.shape[3]) if want_db else None
    _C.conv2d_backward(g.x, g.w, dconv, dx, dw, db, g.strides, g.pads, y=relu_conv)
    return dx, dw, db


def assert_finite(a, what):
    assert np.all(np.isfinite(a)), f"{what}: non-finite values (output not fully written?)"


def assert_windows(am, g):
    """Every argmax is a cell of the convolution's output inside its own pooling window."""
    oh, ow = g.conv_hw
    assert am.dtype == np.int32
    assert np.all((am >= 0) & (am < oh * ow)), f"argmax outside [0, {oh * ow}): {am.min()}..{am.max()}"
    rows, cols = am // ow, am % ow
    i = np.arange(am.shape[1])[None, :, None, None]
    j = np.arange(am.shape[2])[None, None, :, None]
    top = i * g.pool_strides[0] - g.pool_pads[0]
    left = j * g.pool_strides[1] - g.pool_pads[1]
    inside = (rows >= top) & (rows < top + g.pool[0]) & (cols >= left) & (cols < left + g.pool[1])
    assert inside.all(), f"{int((~inside).sum())} argmax entries outside their window"


@functools.lru_cache(maxsize=None)
def reference_forward(case_id, activation, with_bias):
    """float64: the convolution (activated), its pooling, and the error bound's magnitudes."""
    g = fused_setup(case_id)
    b = g.b if with_bias else None
    absb = np.abs(g.b) if with_bias else None
    conv = ref.conv2d_forward(g.x, g.w, b, g.strides, g.pads, g.conv_hw)
    if activation == "relu":
        conv = np.maximum(conv, 0.0)
    absconv = ref.conv2d_forward(np.abs(g.x), np.abs(g.w), absb, g.strides, g.pads, g.conv_hw)
    pooled, _ = ref.maxpool2d_forward(conv, g.pool, g.pool_strides, g.pool_pads, g.pooled_shape[1:3])
    # max is 1-Lipschitz: a pooled value's error is at most the largest error in its window
    abspooled, _ = ref.maxpool2d_forward(absconv, g.pool, g.pool_strides, g.pool_pads,
                                         g.pooled_shape[1:3])
    return conv, absconv, pooled, abspooled


def gather(conv, am):
    """conv[n, cell, c] at the argmax cells (the conv output viewed as (N, OH*OW, C))."""
    n, oh, ow, c = conv.shape
    flat = conv.reshape(n, oh * ow, c)
    return np.take_along_axis(flat, am.reshape(n, -1, c).astype(np.int64), axis=1).reshape(am.shape)


@pytest.mark.parametrize("activation", ACTIVATIONS)
@pytest.mark.parametrize("case_id", list(FUSED_CASES))
def test_forward_bit_identical_to_conv_then_maxpool(isa, case_id, activation):
    g = fused_setup(case_id)
    for b in (g.b, None):
        y, am = fused_forward(g, g.x, g.w, b, activation)
        _, ey, eam = unfused_forward(g, g.x, g.w, b, activation)
        what = f"{case_id} {activation} bias={b is not None}"
        assert_finite(y, what + " pooled y")
        assert np.all(am >= 0), f"{what}: argmax not fully written (or a window of padding only)"
        np.testing.assert_array_equal(y, ey, err_msg=f"{what}: fused y != conv2d_forward + "
                                                     "maxpool2d_forward")
        np.testing.assert_array_equal(am, eam, err_msg=f"{what}: fused argmax != "
                                                       "maxpool2d_forward's")


@pytest.mark.parametrize("activation", ACTIVATIONS)
@pytest.mark.parametrize("case_id", list(FUSED_CASES))
def test_forward_matches_float64_reference(isa, case_id, activation):
    g = fused_setup(case_id)
    for with_bias in (True, False):
        y, am = fused_forward(g, g.x, g.w, g.b if with_bias else None, activation)
        conv, absconv, pooled, abspooled = reference_forward(case_id, activation, with_bias)
        what = f"{case_id} {activation} bias={with_bias}"
        assert_close(y, pooled, abspooled, what=what + " pooled y")
        assert_windows(am, g)
        # the argmax cell holds the window's maximum (up to float32 rounding of both values)
        assert_close(gather(conv, am), pooled, 2 * abspooled, what=what + " conv value at argmax")
        if activation == "relu":
            assert np.all(y >= 0)


def test_forward_hand_example(isa):
    """4x4 ramp, 1x1 kernel of 1: the conv output is x; 2x2 pools take 5, 7, 13, 15. With a
    bias of -100 and relu everything is 0 and each window's first cell wins the tie."""
    x = f32(np.arange(16.0).reshape(1, 4, 4, 1))
    w = np.ones((1, 1, 1, 1), np.float32)
    y, am = nans((1, 2, 2, 1)), nans((1, 2, 2, 1), np.int32)
    args = ((1, 1), (0, 0), (4, 4), (2, 2), (2, 2), (0, 0))
    _C.conv2d_maxpool_forward(x, w, None, y, am, *args)
    np.testing.assert_array_equal(y[0, :, :, 0], [[5, 7], [13, 15]])
    np.testing.assert_array_equal(am[0, :, :, 0], [[5, 7], [13, 15]])
    _C.conv2d_maxpool_forward(x, w, f32([-100.0]), y, am, *args, activation="relu")
    np.testing.assert_array_equal(y[0, :, :, 0], [[0, 0], [0, 0]])
    np.testing.assert_array_equal(am[0, :, :, 0], [[0, 2], [8, 10]])
    # the gradient of a relu output of 0 is 0; a linear one routes dy to the argmax cells
    dy = np.ones((1, 2, 2, 1), np.float32)
    dx, dw, db = nans((1, 4, 4, 1)), nans((1, 1, 1, 1)), nans(1)
    _C.conv2d_maxpool_backward(x, w, dy, am, dx, dw, db, *args, y=y)
    assert not dx.any() and not dw.any() and not db.any()
    _C.conv2d_maxpool_backward(x, w, dy, am, dx, dw, db, *args)
    np.testing.assert_array_equal(dx.reshape(4, 4), [[1, 0, 1, 0], [0, 0, 0, 0], [1, 0, 1, 0],
                                                     [0, 0, 0, 0]])
    np.testing.assert_array_equal(dw.ravel(), [0 + 2 + 8 + 10])
    np.testing.assert_array_equal(db, [4])


GRAD_VARIANTS = [(True, True), (False, True), (True, False), (False, False)]


@pytest.mark.parametrize("activation", ACTIVATIONS)
@pytest.mark.parametrize("case_id", list(FUSED_CASES))
def test_backward_matches_maxpool_backward_then_conv_backward(isa, case_id, activation):
    """With all gradients, and with dx and/or db None (not computed): dx and db bit for bit,
    dw up to rounding (assert_same_gradients)."""
    g = fused_setup(case_id)
    conv, y, am = unfused_forward(g, g.x, g.w, g.b, activation)
    relu = activation == "relu"
    for want_dx, want_db in GRAD_VARIANTS:
        got = fused_backward(g, g.dy, am, y if relu else None, want_dx, want_db)
        want = unfused_backward(g, g.dy, am, conv if relu else None, want_dx, want_db)
        for a in got:
            if a is not None:
                assert_finite(a, f"{case_id} {activation} dx={want_dx} db={want_db}")
        assert_same_gradients(got, want, f"{case_id} {activation} dx={want_dx} db={want_db}")


def assert_same_gradients(got, want, what):
    """The fused backward's (dx, dw, db) against the unfused pair's: dx and db bit for bit
    (the cells no window reads add zeros to them), dw within float32 rounding of sums over the
    same terms in other k blocks, NaN in the fused dw only where the unfused has NaN."""
    for name, a, e in zip(("dx", "dw", "db"), got, want):
        if a is None:
            continue
        if name != "dw":
            assert np.array_equal(a, e, equal_nan=True), \
                f"{what}: {name} fused != maxpool2d_backward + conv2d_backward"
            continue
        assert not (np.isnan(a) & ~np.isnan(e)).any(), f"{what}: NaN in the fused dw only"
        ok = np.isfinite(e)
        scale = np.abs(e[ok]).max() if ok.any() else 0.0
        np.testing.assert_allclose(a[ok], e[ok], rtol=1e-5, atol=1e-6 * scale + 1e-30,
                                   err_msg=f"{what}: dw fused vs unfused")


@pytest.mark.parametrize("activation", ACTIVATIONS)
@pytest.mark.parametrize("case_id", UNCROPPED_CASES)
def test_backward_dw_bit_identical_when_every_cell_is_pooled(isa, keep_num_threads, case_id,
                                                             activation):
    """On the AVX-512 and AVX2 paths the one-channel 3x3 cases run the direct kernel (dw, db
    rebuilt in registers), elsewhere the GEMM: either way dw and db equal the unfused pair's bit
    for bit, on 1 and 2 threads."""
    g = fused_setup(case_id)
    assert [2 * p for p in g.pooled_shape[1:3]] == list(g.conv_hw)
    conv, y, am = unfused_forward(g, g.x, g.w, g.b, activation)
    relu = activation == "relu"
    want = unfused_backward(g, g.dy, am, conv if relu else None, False, True)
    for threads in (1, 2):
        _C.set_num_threads(threads)
        got = fused_backward(g, g.dy, am, y if relu else None, False, True)
        np.testing.assert_array_equal(got[1], want[1], err_msg=f"dw, {threads} threads")
        np.testing.assert_array_equal(got[2], want[2], err_msg=f"db, {threads} threads")


def test_backward_ignores_convolution_cells_no_window_reads(isa, keep_num_threads):
    """The lecture's second block pools 11x11 to 5x5, reading 10x10: its last row and column
    are neither computed nor given gradient. A NaN that only they read (x's last row and
    column) changes neither the pooled output nor dx, dw, db, which equal the float64 oracle
    run with zeros there; the unfused pair's dw is NaN (0 * NaN)."""
    g = fused_setup("lecture_block2")
    assert g.conv_hw == (11, 11) and g.pooled_shape[1:3] == (5, 5)
    clean = g.x.copy()
    clean[:, 12, :, :] = 0.0
    clean[:, :, 12, :] = 0.0
    g.x = clean.copy()
    g.x[:, 12, 3, :] = np.nan
    g.x[:, 5, 12, :] = np.inf
    _C.set_num_threads(2)
    for activation in ACTIVATIONS:
        y, am = fused_forward(g, g.x, g.w, g.b, activation)
        assert_finite(y, f"{activation}: pooled y")
        conv, ey, eam = unfused_forward(g, g.x, g.w, g.b, activation)
        np.testing.assert_array_equal(y, ey)
        np.testing.assert_array_equal(am, eam)
        relu = activation == "relu"
        dx, dw, db = fused_backward(g, g.dy, am, y if relu else None)
        for name, a in (("dx", dx), ("dw", dw), ("db", db)):
            assert_finite(a, f"{activation}: {name} (a NaN from a cell no window reads?)")
        assert np.isnan(unfused_backward(g, g.dy, am, conv if relu else None)[1]).any()
        g_clean = types.SimpleNamespace(**{**vars(g), "x": clean})
        want = unfused_backward(g_clean, g.dy, am, conv if relu else None)
        np.testing.assert_array_equal(dx, want[0])
        np.testing.assert_array_equal(db, want[2])
        np.testing.assert_allclose(dw, want[1], rtol=1e-5, atol=1e-6 * np.abs(want[1]).max())


@functools.lru_cache(maxsize=None)
def reference_backward(case_id, activation):
    """float64 gradients (and the magnitudes of their terms), routed through the argmax and
    relu mask of the C forward pass (ties and the relu kink decided as the kernel did)."""
    g = fused_setup(case_id)
    y, am = fused_forward(g, g.x, g.w, g.b, activation)
    mask = (y > 0) if activation == "relu" else np.ones(y.shape, bool)
    dconv = ref.maxpool2d_backward(g.dy * mask, am, g.conv_shape)
    absdconv = ref.maxpool2d_backward(np.abs(g.dy) * mask, am, g.conv_shape)
    return (ref.conv2d_backward(g.x, g.w, dconv, g.strides, g.pads),
            ref.conv2d_backward(np.abs(g.x), np.abs(g.w), absdconv, g.strides, g.pads))


@pytest.mark.parametrize("activation", ACTIVATIONS)
@pytest.mark.parametrize("case_id", list(FUSED_CASES))
def test_backward_matches_float64_reference(isa, case_id, activation):
    g = fused_setup(case_id)
    y, am = fused_forward(g, g.x, g.w, g.b, activation)
    dx, dw, db = fused_backward(g, g.dy, am, y if activation == "relu" else None)
    expected, absref = reference_backward(case_id, activation)
    for name, a, e, s in zip(("dx", "dw", "db"), (dx, dw, db), expected, absref):
        assert_close(a, e, s, what=f"{case_id} {activation} {name}")


@pytest.mark.parametrize("activation", ACTIVATIONS)
@pytest.mark.parametrize("case_id", ["lecture_block1", "pool3_s2_overlapping", "pool3_s2_same_padded",
                                     "conv_same_strided", "nonsquare"])
def test_backward_is_the_directional_derivative_of_the_forward(isa, case_id, activation):
    g = fused_setup(case_id, seed=1)
    dy64 = g.dy.astype(np.float64)

    def loss(x_, w_, b_):
        return float((fused_forward(g, x_, w_, b_, activation)[0].astype(np.float64) * dy64).sum())

    y, am = fused_forward(g, g.x, g.w, g.b, activation)
    dx, dw, db = fused_backward(g, g.dy, am, y if activation == "relu" else None)
    what = f"{case_id} {activation}"
    directional_check(lambda v: loss(v, g.w, g.b), g.x, dx, eps=1e-3, what=what + " dx")
    directional_check(lambda v: loss(g.x, v, g.b), g.w, dw, eps=1e-3, what=what + " dw")
    directional_check(lambda v: loss(g.x, g.w, v), g.b, db, eps=1e-3, what=what + " db")


@pytest.mark.parametrize("activation", ACTIVATIONS)
@pytest.mark.parametrize("case_id", ["lecture_block1_batch9", "lecture_block2", "batch10_odd_pool",
                                     "pool3_s2_same_padded", "conv_same_strided"])
def test_bit_identical_across_thread_counts(isa, keep_num_threads, case_id, activation):
    g = fused_setup(case_id)
    fwd = by_threads(lambda: fused_forward(g, g.x, g.w, g.b, activation))
    y, am = fwd[0]
    relu_y = y if activation == "relu" else None
    bwd = by_threads(lambda: fused_backward(g, g.dy, am, relu_y))
    for nt, (yy, aa), grads in zip((2, 3), fwd[1:], bwd[1:]):
        np.testing.assert_array_equal(yy, y, err_msg=f"{case_id}: y with {nt} threads != 1 thread")
        np.testing.assert_array_equal(aa, am, err_msg=f"{case_id}: argmax with {nt} threads != 1")
        for name, a, e in zip(("dx", "dw", "db"), grads, bwd[0]):
            np.testing.assert_array_equal(a, e, err_msg=f"{case_id}: {name} with {nt} threads != 1")


def test_random_geometries_match_the_unfused_pair(isa):
    """150 seeded random geometries, beyond what a Keras layer produces: any pads, conv_hw up
    to the largest the input allows (cells reading mostly padding), pooled outputs with windows of
    padding only (-inf, argmax -1), NaN/inf in x. Fused and unfused agree bit for bit (NaN where
    NaN) in the forward pass, the backward as assert_same_gradients says."""
    for i in range(150):
        r = rng([7, i])

        def d(lo, hi):
            return int(r.integers(lo, hi + 1))
        n, h, w, c, o = d(1, 4), d(1, 9), d(1, 9), d(1, 5), d(1, 9)
        kh, kw = d(1, 4), d(1, 4)
        strides, pads = (d(1, 3), d(1, 3)), (d(0, 3), d(0, 3))
        # every window must start inside x (the bound the binding enforces, tested below)
        most = [(size - 1 + p) // s + 1 for size, p, s in zip((h, w), pads, strides)]
        g = types.SimpleNamespace(
            strides=strides, pads=pads, conv_hw=(d(1, most[0]), d(1, most[1])),
            pool=(d(1, 4), d(1, 4)), pool_strides=(d(1, 3), d(1, 3)), pool_pads=(d(0, 3), d(0, 3)))
        g.pooled_shape = (n, d(1, 5), d(1, 5), o)
        g.conv_shape = (n,) + g.conv_hw + (o,)
        activation = ACTIVATIONS[d(0, 1)]
        g.x, g.w = randn(r, (n, h, w, c)), randn(r, (kh, kw, c, o))
        b = randn(r, o) if d(0, 1) else None
        dy = randn(r, g.pooled_shape)
        special = d(0, 3) == 0
        if special:
            g.x.reshape(-1)[r.integers(0, g.x.size, 2)] = [np.nan, np.inf][d(0, 1)]
        geometry = dict(zip(GEOMETRY_NAMES, geometry_args(g)))
        what = (f"case {i}: x {g.x.shape} w {g.w.shape} bias={b is not None} {activation} "
                f"{geometry} pooled {g.pooled_shape}")
        y, am = fused_forward(g, g.x, g.w, b, activation)
        conv, ey, eam = unfused_forward(g, g.x, g.w, b, activation)
        assert np.array_equal(y, ey, equal_nan=True), what + ": y"
        np.testing.assert_array_equal(am, eam, err_msg=what + ": argmax")
        assert np.all(am >= -1), what + ": argmax not fully written"
        assert special or not np.isnan(y).any(), what + ": y not fully written"
        relu = activation == "relu"
        got = fused_backward(g, dy, am, y if relu else None)
        want = unfused_backward(g, dy, am, conv if relu else None)
        assert_same_gradients(got, want, what)
        for name, a in zip(("dx", "dw", "db"), got):
            assert special or np.all(np.isfinite(a)), f"{what}: {name} not fully written"


def test_scratch_reuse_between_calls(isa):
    """The fused kernels keep the convolution's output in the threads' scratch, which other
    kernels reuse: alternating cases, fused and unfused calls, must never change a result."""
    ids = ["lecture_block2", "batch1", "lecture_block1_batch9", "pool1x1", "lecture_block2"]
    first = {}
    for _ in range(2):
        for case_id in ids:
            g = fused_setup(case_id)
            y, am = fused_forward(g, g.x, g.w, g.b, "relu")
            res = (y, am) + fused_backward(g, g.dy, am, y)
            unfused_forward(g, g.x, g.w, g.b, "linear")            # other users of the scratch
            if case_id in first:
                for name, a, e in zip(("y", "argmax", "dx", "dw", "db"), res, first[case_id]):
                    np.testing.assert_array_equal(a, e, err_msg=f"{case_id} {name} changed on a repeat")
            else:
                first[case_id] = res


@pytest.mark.parametrize("case_id", ["lecture_block1", "pool3_s2_overlapping", "pool3_s2_same_padded",
                                     "pool1x1"])
@pytest.mark.parametrize("content", ["minus5", "1e9", "int32_limits", "random"])
def test_backward_any_argmax_content_is_safe(case_id, content):
    """argmax is an input of the backward: entries that no forward pass produced (negative,
    beyond the convolution's output, random) must never be written through and never make the
    gradients non-finite; entries all outside the convolution's output carry no gradient."""
    g = fused_setup(case_id)
    r = rng(5)
    shape = g.pooled_shape
    am = {"minus5": np.full(shape, -5, np.int32), "1e9": np.full(shape, 10**9, np.int32),
          "int32_limits": r.choice(np.array([-2**31, -1, 2**31 - 1, g.conv_hw[0] * g.conv_hw[1]],
                                            np.int64), shape).astype(np.int32),
          "random": r.integers(-2**31, 2**31 - 1, shape, dtype=np.int64).astype(np.int32)}[content]
    if content == "random":     # some entries inside the convolution's output too
        am.reshape(-1)[::3] = r.integers(0, g.conv_hw[0] * g.conv_hw[1], am.size)[::3]
    relu_y = np.abs(randn(r, shape))
    for y in (relu_y, None):
        guard = np.full(g.x.size + 128, 7.0, np.float32)
        dx = guard[64:64 + g.x.size].reshape(g.x.shape)
        dw, db = nans(g.w.shape), nans(g.w.shape[3])
        _C.conv2d_maxpool_backward(g.x, g.w, g.dy, am, dx, dw, db, *geometry_args(g), y=y)
        assert np.all(guard[:64] == 7.0) and np.all(guard[64 + g.x.size:] == 7.0), "wrote outside dx"
        for name, a in (("dx", dx), ("dw", dw), ("db", db)):
            assert_finite(a, f"{content} {name}")
            if content != "random":
                assert not a.any(), f"{content}: {name} is not zero though no argmax is a cell"


# ---- huge geometry: refused quickly, in a child process with bounded memory and CPU ----------

HUGE_SNIPPET = """
import os, resource, sys
if not os.environ.get("PYCNN_SANITIZED"):     # ASan reserves terabytes of address space
    resource.setrlimit(resource.RLIMIT_AS, (6 << 30, 6 << 30))
import numpy as np
from pycnn import _C
resource.setrlimit(resource.RLIMIT_CPU, (2, 3))      # CPU seconds, all threads together
kind, cases = sys.argv[1], eval(sys.argv[2])
x = np.ones((1, 5, 5, 1), np.float32)
w = np.ones((1, 1, 1, 1), np.float32)
y = np.ones((1, 1, 1, 1), np.float32)
am = np.zeros((1, 1, 1, 1), np.int32)
for i, (conv_hw, strides, pads) in enumerate(cases):
    print("CASE", i, flush=True)
    geo = (strides, pads, conv_hw, (1, 1), (1, 1), (0, 0))
    try:
        if kind == "forward":
            _C.conv2d_maxpool_forward(x, w, None, y, am, *geo)
        else:
            _C.conv2d_maxpool_backward(x, w, y, am, np.ones_like(x), np.ones_like(w), None, *geo)
        print("RETURNED", flush=True)
    except (TypeError, ValueError, MemoryError) as e:
        print("RAISED", type(e).__name__, e, flush=True)
"""

# (conv_hw, strides, pads) that no 1x5x5x1 input with a 1x1 kernel can need; the ones that fail
# the binding's int-range checks come first, the ones that pass them last
HUGE_CASES = [
    ((2**16, 2**16), (1, 1), (0, 0)),                 # more than INT_MAX cells
    ((2**31 - 1, 2**31 - 1), (1, 1), (0, 0)),
    ((3, 3), (2**31 - 1, 2**31 - 1), (0, 0)),         # the last window beyond int range
    ((3, 3), (1, 1), (2**31 - 2, 2**31 - 2)),
    ((46340, 46340), (1, 1), (0, 0)),                 # just below INT_MAX cells: 8.6 GB of conv
    ((2**30, 1), (1, 1), (0, 0)),                     # 2**30 conv cells: 4 GB, ~20 s of compute
]


@pytest.mark.parametrize("kind", ["forward", "backward"])
def test_huge_conv_geometry_is_refused_quickly(kind):
    """conv_hw, strides and pads that no 5x5 input can need must raise TypeError, ValueError or
    MemoryError naming the function, without crashing and without computing the huge
    convolution output (the child process has 6 GB of address space and 2 s of CPU time; the
    kernel allocates and computes every one of the conv_hw cells it is given)."""
    proc = run_python(HUGE_SNIPPET, kind, repr(HUGE_CASES),
                      env=child_env(PYCNN_NUM_THREADS="2"))
    lines = proc.stdout.splitlines()
    outcomes, case = {}, None
    for line in lines:
        if line.startswith("CASE "):
            case = HUGE_CASES[int(line.split()[1])]
        elif case is not None:
            outcomes[case] = line
    wrong = []
    for c in HUGE_CASES:
        conv_hw, strides, pads = c
        call = f"conv2d_maxpool_{kind}(conv_hw={conv_hw}, strides={strides}, pads={pads})"
        if c not in outcomes:
            if c == case:
                wrong.append(f"{call}: the process ended (exit {proc.returncode}; -24 = SIGXCPU: "
                             f"still computing after 2 s of CPU) {proc.stderr[-500:]}")
            break
        if not outcomes[c].startswith("RAISED") or f"conv2d_maxpool_{kind}" not in outcomes[c]:
            wrong.append(f"{call}: {outcomes[c]}")
    assert not wrong, "\n".join(wrong)
    assert proc.returncode == 0 and len(outcomes) == len(HUGE_CASES), proc.stderr[-2000:]


# =============================================================================================
# Models: which pairs run fused, and fused training == unfused training
# =============================================================================================

@pytest.fixture
def spy(monkeypatch):
    """Counts the calls of the fused step (fusion.ConvMaxPoolStep.forward/backward) and of
    MaxPooling2D.forward (unfused)."""
    calls = {"forward_pooled": 0, "backward_pooled": 0, "pool_forward": 0}

    def wrap(cls, name, key):
        orig = getattr(cls, name)

        def counted(self, *a, **k):
            calls[key] += 1
            return orig(self, *a, **k)
        monkeypatch.setattr(cls, name, counted)
    wrap(fusion.ConvMaxPoolStep, "forward", "forward_pooled")
    wrap(fusion.ConvMaxPoolStep, "backward", "backward_pooled")
    wrap(layers.MaxPooling2D, "forward", "pool_forward")
    return calls


def fused_pairs(model):
    """The (conv, pool) pairs the model's compiled plans run fused: the same in training (as
    fit compiles it, the output at logits) and in inference."""
    train = model.compiled_plan(True, logits=(True,)).fused_pairs
    assert model.compiled_plan(False).fused_pairs == train
    return train


def lecture_convnet():
    """The lecture's Part 2 convnet (test_lecture.py writes it verbatim), compiled as there."""
    model = build_part2_convnet()
    model.compile(optimizer="rmsprop", loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    return model


def random_data(n, shape, classes=10, seed=0):
    r = rng(seed)
    return r.random((n,) + shape, dtype=np.float32), r.integers(0, classes, n)


def train(build, x, y, fusion, epochs=2, batch_size=16, **fit_kw):
    """Build (seeded), build the graph with a predict on 2 samples, set the fusion, fit
    (seeded: fit shuffles with the global generator)."""
    pycnn.utils.set_random_seed(11)
    model = build()
    model.predict(x[:2], verbose=0)
    model.set_fusion("conv_maxpool", fusion)
    pycnn.utils.set_random_seed(23)
    history = model.fit(x, y, epochs=epochs, batch_size=batch_size, verbose=0, **fit_kw)
    return model, history


def assert_same_training(build, x, y, **fit_kw):
    fused, h1 = train(build, x, y, True, **fit_kw)
    plain, h2 = train(build, x, y, False, **fit_kw)
    assert fused_pairs(plain) == []
    for i, (a, b) in enumerate(zip(fused.get_weights(), plain.get_weights())):
        np.testing.assert_array_equal(a, b, err_msg=f"weight {i} differs with fusion on/off")
    assert h1.history == h2.history
    assert len(h1.history["loss"]) == fit_kw.get("epochs", 2)
    p1, p2 = fused.predict(x, verbose=0), plain.predict(x, verbose=0)
    np.testing.assert_array_equal(p1, p2)
    np.testing.assert_array_equal(fused(x[:5]), plain(x[:5]))
    assert fused.evaluate(x, y, verbose=0) == plain.evaluate(x, y, verbose=0)
    return fused, plain


def test_lecture_convnet_fuses_both_conv_pool_pairs():
    model = lecture_convnet()
    conv1, pool1, conv2, pool2, conv3 = [l for l in model.layers
                                        if isinstance(l, (layers.Conv2D, layers.MaxPooling2D))]
    pairs = fused_pairs(model)
    assert len(pairs) == 2, pairs
    assert pairs[0][0] is conv1 and pairs[0][1] is pool1
    assert pairs[1][0] is conv2 and pairs[1][1] is pool2
    assert all(c is not conv3 for c, _ in pairs)
    model.set_fusion("conv_maxpool", False)
    assert fused_pairs(model) == []
    model.set_fusion("conv_maxpool", True)
    assert [(c.name, p.name) for c, p in fused_pairs(model)] == \
        [(conv1.name, pool1.name), (conv2.name, pool2.name)]


def test_lecture_convnet_trains_bit_identically_with_and_without_fusion(spy):
    x, y = random_data(48, (28, 28, 1))
    assert_same_training(lecture_convnet, x, y, validation_split=0.25)
    assert spy["forward_pooled"] > 0 and spy["backward_pooled"] > 0, spy


def test_fusion_off_runs_the_layers_one_by_one(spy):
    x, _ = random_data(4, (28, 28, 1))
    model = lecture_convnet()
    model.set_fusion("conv_maxpool", False)
    model.predict(x, verbose=0)
    assert spy["forward_pooled"] == 0 and spy["pool_forward"] == 2
    model.set_fusion("conv_maxpool", True)
    model.predict(x, verbose=0)
    assert spy["forward_pooled"] == 2 and spy["pool_forward"] == 2


def _sequential_convnet(with_input=True):
    stack = [layers.Conv2D(6, 3, activation="relu"),
             layers.MaxPooling2D(3, strides=2, padding="same"),          # overlapping, padded
             layers.Conv2D(5, 3, strides=2, padding="same", use_bias=False),  # linear
             layers.MaxPooling2D(2, padding="same"),
             layers.Flatten(), layers.Dense(4, activation="softmax")]
    model = pycnn.Sequential(([pycnn.Input(shape=(13, 12, 2))] if with_input else []) + stack)
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


@pytest.mark.parametrize("with_input", [True, False], ids=["Input", "built_from_data"])
def test_sequential_convnet_fuses_and_trains_bit_identically(spy, with_input):
    x, y = random_data(40, (13, 12, 2), classes=4)
    model = _sequential_convnet(with_input)
    if not with_input:
        assert model._graph is None               # built by the first data
        model.predict(x[:2], verbose=0)
    convs = [l for l in model.layers if isinstance(l, (layers.Conv2D, layers.MaxPooling2D))]
    assert [(c.name, p.name) for c, p in fused_pairs(model)] == \
        [(convs[0].name, convs[1].name), (convs[2].name, convs[3].name)]
    assert_same_training(lambda: _sequential_convnet(with_input), x, y, batch_size=8)
    assert spy["forward_pooled"] > 0


def _gradients(model, x, y):
    """One training step's weight gradients as fit computes them (no update), and the plan
    that ran it (its steps keep the per-call contexts)."""
    plan = model.compiled_plan(True, logits=(True,))
    fused = plan.logits_outputs[0]
    (out,) = plan.forward([f32(x)])         # the logits when the softmax is fused
    loss, grad = model.loss.compute(out, y, fused or model.loss.from_logits)
    for v in model.trainable_weights:
        v.grad[...] = np.nan
    plan.backward([grad])
    return loss, [v.grad.copy() for v in model.trainable_weights], plan


@pytest.mark.parametrize("activation", ["sigmoid", "tanh"])
def test_sigmoid_or_tanh_conv_before_max_pooling_is_not_fused_and_trains_correctly(spy, activation):
    inp = pycnn.Input(shape=(7, 7, 2))
    conv = layers.Conv2D(3, 3, activation=activation)
    pool = layers.MaxPooling2D(2)
    out = layers.Dense(4, activation="softmax")(layers.Flatten()(pool(conv(inp))))
    model = pycnn.Model(inp, out)
    model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
    assert fused_pairs(model) == []
    x, y = random_data(6, (7, 7, 2), classes=4, seed=3)
    x = f32(x * 2 - 1)
    loss, grads, plan = _gradients(model, x, y)
    steps = [s for s in plan.steps if isinstance(s, LayerStep) and s.layer in (conv, pool)]
    assert [s.layer for s in steps] == [conv, pool]         # each runs as its own step
    assert spy["forward_pooled"] == 0 and spy["pool_forward"] == 1
    # float64 reference of the same step, routed through the C pooling's argmax
    w, b, w2, b2 = [v.astype(np.float64) for v in model.get_weights()]
    z = ref.conv2d_forward(x, w, b, (1, 1), (0, 0), (5, 5))
    a = ref.activation_forward(activation, z)
    p, _ = ref.maxpool2d_forward(a, (2, 2), (2, 2), (0, 0), (2, 2))
    am = steps[1].ctx.buffers()["argmax"]
    np.testing.assert_array_equal(gather(a, am), p)        # C argmax: a maximum in float64 too
    logits = p.reshape(6, -1) @ w2 + b2
    eloss, _, dlogits = ref.softmax_xent_sparse(logits, y)
    assert loss == pytest.approx(eloss, rel=1e-5)
    dp = (dlogits @ w2.T).reshape(p.shape)
    dz = ref.activation_backward(activation, a, ref.maxpool2d_backward(dp, am, a.shape))
    _, dw, db = ref.conv2d_backward(x, w, dz, (1, 1), (0, 0))
    expected = [dw, db, p.reshape(6, -1).T @ dlogits, dlogits.sum(0)]
    for name, g, e in zip(("conv kernel", "conv bias", "dense kernel", "dense bias"), grads, expected):
        np.testing.assert_allclose(g, e, rtol=2e-4, atol=2e-5 * np.abs(e).max(), err_msg=name)
    # and it trains: a few epochs lower the loss
    pycnn.utils.set_random_seed(1)
    h = model.fit(x, y, epochs=30, batch_size=6, verbose=0)
    assert h.history["loss"][-1] < h.history["loss"][0]


class _MyConv2D(layers.Conv2D):
    pass


class _MyMaxPooling2D(layers.MaxPooling2D):
    pass


NOT_FUSED = {
    # id: the layers after Input(shape=(8, 8, 2)) (the last one is the model's output)
    "conv_is_the_output": lambda: [layers.Conv2D(3, 3, activation="relu")],
    "average_pooling": lambda: [layers.Conv2D(3, 3, activation="relu"), layers.AveragePooling2D(2),
                                layers.Flatten(), layers.Dense(3, activation="softmax")],
    "conv_subclass": lambda: [_MyConv2D(3, 3, activation="relu"), layers.MaxPooling2D(2),
                              layers.Flatten(), layers.Dense(3, activation="softmax")],
    "pool_subclass": lambda: [layers.Conv2D(3, 3), _MyMaxPooling2D(2),
                              layers.Flatten(), layers.Dense(3, activation="softmax")],
    "activation_layer_between": lambda: [layers.Conv2D(3, 3), layers.Activation("relu"),
                                         layers.MaxPooling2D(2), layers.Flatten(),
                                         layers.Dense(3, activation="softmax")],
    "tanh_conv": lambda: [layers.Conv2D(3, 3, activation="tanh"), layers.MaxPooling2D(2),
                          layers.Flatten(), layers.Dense(3, activation="softmax")],
}


@pytest.mark.parametrize("functional", [True, False], ids=["Model", "Sequential"])
@pytest.mark.parametrize("case", list(NOT_FUSED))
def test_pairs_that_must_not_be_fused(spy, case, functional):
    def build():
        stack = NOT_FUSED[case]()
        if functional:
            inp = t = pycnn.Input(shape=(8, 8, 2))
            for layer in stack:
                t = layer(t)
            model = pycnn.Model(inp, t)
        else:
            model = pycnn.Sequential([pycnn.Input(shape=(8, 8, 2))] + stack)
        model.compile(optimizer="rmsprop", loss="mse" if case == "conv_is_the_output"
                      else "sparse_categorical_crossentropy")
        return model

    assert fused_pairs(build()) == []
    x, y = random_data(12, (8, 8, 2), classes=3, seed=4)
    if case == "conv_is_the_output":
        y = rng(5).random((12, 6, 6, 3), dtype=np.float32)
    fused, plain = assert_same_training(build, x, y, batch_size=4)
    assert spy["forward_pooled"] == 0 and spy["backward_pooled"] == 0
    assert all(np.all(np.isfinite(w)) for w in fused.get_weights())


def test_fused_pool_as_the_last_pooling_before_a_linear_output(spy):
    """A linear convolution + max pooling fused in a model trained with mse on its flattened
    output (the fused pair's gradient comes straight from the loss)."""
    def build():
        model = pycnn.Sequential([pycnn.Input(shape=(9, 9, 3)), layers.Conv2D(4, 2),
                                  layers.MaxPooling2D(2), layers.Flatten()])
        model.compile(optimizer="sgd", loss="mse")
        return model
    assert len(fused_pairs(build())) == 1
    x, _ = random_data(10, (9, 9, 3))
    y = rng(6).random((10, 64), dtype=np.float32)
    assert_same_training(build, x, y, batch_size=5)
    assert spy["backward_pooled"] > 0


def test_a_convolution_read_by_two_layers_or_also_an_output_is_not_fused(spy):
    """The rule fuses a convolution into its max pooling only when the pooling is the only
    reader of its output: a second reader, or the output being a model output, needs the
    convolution's values, which the fused step never stores. Another pair of the same model
    is still fused, and training is bit-identical with the rule on and off."""
    def build():
        pycnn.utils.set_random_seed(3)
        inp = pycnn.Input(shape=(8, 8, 2))
        two_readers = layers.Conv2D(3, 3, activation="relu", name="two_readers")
        a = two_readers(inp)
        o1 = layers.Dense(3, activation="softmax")(layers.Flatten()(layers.MaxPooling2D(2)(a)))
        o2 = layers.Flatten()(layers.MaxPooling2D(3)(a))
        also_output = layers.Conv2D(2, 3, name="also_output")
        h = also_output(inp)
        o4 = layers.Flatten()(layers.MaxPooling2D(2)(h))
        g = layers.Conv2D(2, 3, activation="relu", name="fused_conv")(inp)
        o5 = layers.Flatten()(layers.MaxPooling2D(2, name="fused_pool")(g))
        model = pycnn.Model(inp, [o1, o2, h, o4, o5])
        model.compile(optimizer="sgd", loss=["sparse_categorical_crossentropy", "mse", "mse",
                                             "mse", "mse"])
        return model

    model = build()
    assert [(c.name, p.name) for c, p in fused_pairs(model)] == [("fused_conv", "fused_pool")]
    x, y = random_data(8, (8, 8, 2), classes=3, seed=7)
    r = rng(8)
    ys = [y, r.random((8, 12), dtype=np.float32), r.random((8, 6, 6, 2), dtype=np.float32),
          r.random((8, 18), dtype=np.float32), r.random((8, 18), dtype=np.float32)]
    results = []
    for on in (True, False):
        model = build()
        model.set_fusion("conv_maxpool", on)
        before = dict(spy)
        history = model.fit(x, ys, batch_size=4, epochs=2, shuffle=False, verbose=0)
        fused_calls = spy["forward_pooled"] - before["forward_pooled"]
        assert fused_calls == (4 if on else 0)          # 2 epochs x 2 batches, one pair
        results.append((model.get_weights(), history.history, model.predict(x, verbose=0)))
    (w1, h1, p1), (w2, h2, p2) = results
    for a, b in zip(w1, w2):
        np.testing.assert_array_equal(a, b)
    assert list(h1.values()) == list(h2.values())       # (auto names differ per build)
    for a, b in zip(p1, p2):
        np.testing.assert_array_equal(a, b)


# =============================================================================================
# The GEMM driver's column split (M <= mc rows, N split more evenly than M)
# =============================================================================================

# (m, k, n) as in a dense layer: m rows (batch), k inner (inputs), n columns (outputs)
COLUMN_SPLIT_SHAPES = [(128, 784, 512), (32, 784, 512), (1, 300, 70), (13, 5, 1000),
                       (144, 64, 96), (40, 300, 32), (40, 300, 16), (128, 1152, 10)]
THREADS = (1, 2, 3, 4)

# micro-kernel blocking per SIMD path (mr, nr, mc), from csrc/gemm_kernel_*.c
_BLOCKING = {"generic": (4, 16, 128), "avx2": (6, 16, 144), "avx512": (12, 32, 144)}


def takes_column_split(isa, m, n, nthreads):
    """csrc/gemm.c pc_gemm's choice of split_by_columns (after narrow_c, which computes a
    product of fewer than nr columns transposed), to document which shapes use the split."""
    mr, nr, mc = _BLOCKING[isa]

    def tile_use(rows, cols):
        return rows / (-(-rows // mr) * mr) * cols / (-(-cols // nr) * nr)
    if n < nr and tile_use(n, m) > 1.5 * tile_use(m, n):
        return False
    if nthreads == 1 or m > mc:
        return False
    panels, slivers = -(-m // mr), -(-n // nr)

    def balance(units):
        return units / (-(-units // nthreads) * nthreads)
    return slivers >= nthreads and balance(slivers) > balance(panels)


def test_shapes_exercise_the_column_split(isa):
    """At least one shape and thread count of each test below takes the column split on this
    SIMD path (for gemm and dense_forward M = m, N = n; dense_backward's dw has M = k, N = n and
    its dx M = m, N = k)."""
    def covered(dims):
        return any(takes_column_split(isa, mm, nn, t) for t in THREADS[1:]
                   for mm, nn in map(dims, COLUMN_SPLIT_SHAPES))
    assert covered(lambda s: (s[0], s[2]))
    assert covered(lambda s: (s[1], s[2])) and covered(lambda s: (s[0], s[1]))


SHAPE_IDS = ["x".join(map(str, s)) for s in COLUMN_SPLIT_SHAPES]


FLAGS = [(False, False), (True, False), (False, True), (True, True)]
FLAG_IDS = ["NN", "TN", "NT", "TT"]


@functools.lru_cache(maxsize=None)
def _gemm_problem(m, k, n, trans_a, trans_b, accumulate):
    r = rng(m * 7919 + k * 31 + n + 2 * trans_a + trans_b)
    a, b, opa, opb = _gemm_operands(r, m, n, k, trans_a, trans_b)
    c0 = randn(r, (m, n))
    expect, absref = opa @ opb, np.abs(opa) @ np.abs(opb)
    if accumulate:
        expect, absref = expect + c0, absref + np.abs(c0)
    return a, b, c0, expect, absref


def _gemm_run(a, b, c0, trans_a, trans_b, accumulate):
    c = c0.copy() if accumulate else nans(c0.shape)
    _C.gemm(a, b, c, trans_a=trans_a, trans_b=trans_b, accumulate=accumulate)
    return c


@pytest.mark.parametrize("accumulate", [False, True], ids=["overwrite", "accumulate"])
@pytest.mark.parametrize("trans_a,trans_b", FLAGS, ids=FLAG_IDS)
@pytest.mark.parametrize("m,k,n", COLUMN_SPLIT_SHAPES, ids=SHAPE_IDS)
def test_gemm_short_a_correct_and_bit_identical_across_thread_counts(
        isa, keep_num_threads, m, k, n, trans_a, trans_b, accumulate):
    a, b, c0, expect, absref = _gemm_problem(m, k, n, trans_a, trans_b, accumulate)
    res = by_threads(lambda: _gemm_run(a, b, c0, trans_a, trans_b, accumulate), THREADS)
    for nt, c in zip(THREADS[1:], res[1:]):
        np.testing.assert_array_equal(c, res[0], err_msg=f"gemm {m}x{k}x{n}: {nt} threads != 1")
    assert_close(res[0], expect, absref,
                 what=f"gemm {m}x{k}x{n} ta={trans_a} tb={trans_b} acc={accumulate}")


DENSE_VARIANTS = [(True, "relu"), (True, "linear"), (False, "linear"), (False, "relu")]


def _dense_problem(m, k, n):
    r = rng(m + 3 * k + 7 * n)
    return randn(r, (m, k)), randn(r, (k, n)), randn(r, n), randn(r, (m, n))


def _dense_forward(x, w, b, activation):
    y = nans((x.shape[0], w.shape[1]))
    _C.dense_forward(x, w, b, y, activation=activation)
    return y


def _dense_backward(x, w, dy, want_dx, want_db):
    dx = nans(x.shape) if want_dx else None
    dw, db = nans(w.shape), (nans(w.shape[1]) if want_db else None)
    _C.dense_backward(x, w, dy, dx, dw, db)
    return dx, dw, db


@pytest.mark.parametrize("with_bias,activation", DENSE_VARIANTS,
                         ids=["bias_relu", "bias_linear", "nobias_linear", "nobias_relu"])
@pytest.mark.parametrize("m,k,n", COLUMN_SPLIT_SHAPES, ids=SHAPE_IDS)
def test_dense_forward_short_batch_correct_and_bit_identical_across_threads(
        isa, keep_num_threads, m, k, n, with_bias, activation):
    x, w, b, _ = _dense_problem(m, k, n)
    b = b if with_bias else None
    res = by_threads(lambda: _dense_forward(x, w, b, activation), THREADS)
    for nt, y in zip(THREADS[1:], res[1:]):
        np.testing.assert_array_equal(y, res[0], err_msg=f"dense_forward {m}x{k}x{n}: {nt} threads != 1")
    expect = ref.dense_forward(x, w, b)
    if activation == "relu":
        expect = np.maximum(expect, 0.0)
    absref = ref.dense_forward(np.abs(x), np.abs(w), None if b is None else np.abs(b))
    assert_close(res[-1], expect, absref, what=f"dense_forward {m}x{k}x{n} {activation}")


@pytest.mark.parametrize("want_dx,want_db", [(True, True), (False, True), (True, False)],
                         ids=["dx_db", "no_dx", "no_db"])
@pytest.mark.parametrize("m,k,n", COLUMN_SPLIT_SHAPES, ids=SHAPE_IDS)
def test_dense_backward_short_batch_correct_and_bit_identical_across_threads(
        isa, keep_num_threads, m, k, n, want_dx, want_db):
    x, w, _, dy = _dense_problem(m, k, n)
    res = by_threads(lambda: _dense_backward(x, w, dy, want_dx, want_db), THREADS)
    for nt, got in zip(THREADS[1:], res[1:]):
        for name, a, e in zip(("dx", "dw", "db"), got, res[0]):
            if a is not None:
                np.testing.assert_array_equal(a, e, err_msg=f"dense_backward {m}x{k}x{n} {name}: "
                                                            f"{nt} threads != 1")
    expected = ref.dense_backward(x, w, dy)
    absref = ref.dense_backward(np.abs(x), np.abs(w), np.abs(dy))
    for name, a, e, s in zip(("dx", "dw", "db"), res[-1], expected, absref):
        if a is not None:
            assert_close(a, e, s, what=f"dense_backward {m}x{k}x{n} {name}")


@pytest.mark.parametrize("direction", ["forward", "backward"])
def test_conv_hw_beyond_the_input_is_refused(direction):
    """conv_hw sizes scratch, not a caller's array: a window starting outside x is refused."""
    x, w = np.ones((1, 6, 7, 2), np.float32), np.ones((3, 3, 2, 4), np.float32)
    y, am = np.zeros((1, 2, 2, 4), np.float32), np.zeros((1, 2, 2, 4), np.int32)
    geo = ((1, 1), (1, 1), (7, 8), (2, 2), (2, 2), (0, 0))     # the most: (6-1+1)+1, (7-1+1)+1
    if direction == "forward":
        _C.conv2d_maxpool_forward(x, w, None, y, am, *geo)
        bad = ((1, 1), (1, 1), (8, 8), (2, 2), (2, 2), (0, 0))
        with pytest.raises(ValueError, match="conv_hw"):
            _C.conv2d_maxpool_forward(x, w, None, y, am, *bad)
    else:
        dx, dw = np.zeros_like(x), np.zeros_like(w)
        _C.conv2d_maxpool_backward(x, w, y, am, dx, dw, None, *geo)
        bad = ((1, 1), (1, 1), (7, 9), (2, 2), (2, 2), (0, 0))
        with pytest.raises(ValueError, match="conv_hw"):
            _C.conv2d_maxpool_backward(x, w, y, am, dx, dw, None, *bad)


@pytest.mark.parametrize("where", ["x_inf", "x_nan", "w_inf"])
def test_backward_keeps_the_gemms_nan_where_it_skips_zero_gradients(isa, where):
    """On AVX-512 the fused backward leaves out the products whose pooled gradient is 0; where
    the factor they multiply is inf or NaN, the GEMM makes NaN of them (0 x inf). The fused dx
    and dw have NaN exactly where the portable path's GEMM leaves them, and match elsewhere."""
    g = fused_setup("lecture_block2_batch40")
    r = rng(5)
    if where == "w_inf":
        g.w.reshape(-1)[r.integers(0, g.w.size, 3)] = np.inf
    else:
        g.x.reshape(-1)[r.integers(0, g.x.size, 3)] = np.inf if where == "x_inf" else np.nan
    y, am = fused_forward(g, g.x, g.w, g.b, "linear")
    got = fused_backward(g, g.dy, am, None)
    _C.set_isa("generic")
    try:
        want = fused_backward(g, g.dy, am, None)
    finally:
        _C.set_isa(isa)
    for name, a, e in zip(("dx", "dw", "db"), got, want):
        np.testing.assert_array_equal(np.isnan(a), np.isnan(e), err_msg=f"{where}: NaN in {name}")
        if name == ("dx" if where == "w_inf" else "dw"):
            assert np.isnan(e).any(), f"{where}: the case should make NaN in {name}"
        ok = np.isfinite(e)
        np.testing.assert_allclose(a[ok], e[ok], rtol=1e-4, atol=1e-5 * np.abs(e[ok]).max(),
                                   err_msg=f"{where}: {name}")
