"""The convolution kernel's algorithm choices, each against a float64 NumPy reference and
finite differences, under every SIMD path:

- few taps per output (C <= 4, KH*KW*C <= 32: a first layer): the direct forward and weight
  gradient of csrc/conv_small.c, with filter counts that are and are not multiples of 16;
- the input gradient of a stride-1 'same' convolution as the Winograd forward of dy with the
  flipped kernel (C >= 16, O >= 8, dy at least 6x6);
- the weight gradient computed transposed (dy^T col) with 8- and 10-row GEMM tiles (O = 16,
  50) and B's short last sliver packed;
- the relu's output given to the backward (dy masked by y > 0) on each of these paths;
- results identical for 1 and 2 threads.
"""
import os
import sys

import numpy as np
import pytest

sys.path.insert(0, os.path.dirname(__file__))
import reference as ref  # noqa: E402

import pycnn  # noqa: E402
from pycnn import _C  # noqa: E402

# id: (N, H, W, C, O, KH, KW, sh, sw, padding)
CASES = {
    # conv_small.c: one channel, 75 filters (4 whole blocks of 16 and a short one), 'same'
    "small_c1_o75_same": (3, 9, 8, 1, 75, 3, 3, 1, 1, "same"),
    "small_c1_o16_valid": (2, 7, 9, 1, 16, 3, 3, 1, 1, "valid"),
    # fewer filters than a block: whole-vector stores would pass the image's end
    "small_c1_o2_s2": (2, 6, 6, 1, 2, 3, 3, 2, 2, "same"),
    "small_c3_o20_s2": (2, 9, 7, 3, 20, 3, 3, 2, 2, "same"),
    "small_c2_k2_o33": (3, 5, 6, 2, 33, 2, 2, 1, 1, "valid"),
    "small_c4_k1x5_o7": (2, 6, 9, 4, 7, 1, 5, 1, 1, "same"),
    # dx by the dual Winograd convolution; dw transposed with 8-row tiles (O = 16)
    "dual_c16_o16_same": (3, 10, 9, 16, 16, 3, 3, 1, 1, "same"),
    "dual_c32_o16_same": (2, 8, 8, 32, 16, 3, 3, 1, 1, "same"),
    "dual_c16_o8_same": (2, 9, 11, 16, 8, 3, 3, 1, 1, "same"),
    # 'valid' padding: dx by the GEMM and col2im (the dual only for 'same' padding)
    "gemm_c16_o16_valid": (2, 9, 11, 16, 16, 3, 3, 1, 1, "valid"),
    # dw transposed with 10-row tiles (O = 50), kdim = 675 (B's last sliver short)
    "dwt_c75_o50_same": (2, 7, 7, 75, 50, 3, 3, 1, 1, "same"),
    "dwt_c12_o50_valid": (3, 6, 7, 12, 50, 3, 3, 1, 1, "valid"),
    "dwt_c20_o25_same": (2, 7, 6, 20, 25, 3, 3, 1, 1, "same"),
    # stride 2: no dual path, the GEMM and col2im
    "gemm_c16_o16_s2": (2, 9, 9, 16, 16, 3, 3, 2, 2, "same"),
}


def setup(case_id, seed=0):
    n, h, w, c, o, kh, kw, sh, sw, pad = CASES[case_id]
    oh, ow, pads = ref.geometry(h, w, kh, kw, sh, sw, pad)
    r = np.random.default_rng(seed + sum(map(ord, case_id)))
    x = r.standard_normal((n, h, w, c)).astype(np.float32)
    k = (r.standard_normal((kh, kw, c, o)) / np.sqrt(kh * kw * c)).astype(np.float32)
    b = r.standard_normal(o).astype(np.float32)
    dy = r.standard_normal((n, oh, ow, o)).astype(np.float32)
    return x, k, b, dy, (sh, sw), tuple(pads), (oh, ow)


def close(actual, expected, absref, what, rtol=3e-5):
    actual = np.asarray(actual, dtype=np.float64)
    assert np.all(np.isfinite(actual)), f"{what}: non-finite values (output not fully written?)"
    absref = np.abs(absref)
    bound = rtol * (absref + 1e-3 * absref.max()) + 1e-30
    err = np.abs(actual - expected)
    assert (err <= bound).all(), (f"{what}: {(err > bound).sum()} of {err.size} out of tolerance, "
                                  f"worst abs err {err.max():.3g}")


def forward(x, k, b, strides, pads, out_hw, activation="linear"):
    y = np.full((x.shape[0],) + tuple(out_hw) + (k.shape[3],), np.nan, np.float32)
    _C.conv2d_forward(x, k, b, y, strides, pads, activation=activation)
    return y


def backward(x, k, dy, strides, pads, y=None, want_dx=True):
    dx = np.full(x.shape, np.nan, np.float32) if want_dx else None
    dw = np.full(k.shape, np.nan, np.float32)
    db = np.full(k.shape[3], np.nan, np.float32)
    _C.conv2d_backward(x, k, dy, dx, dw, db, strides, pads, y=y)
    return dx, dw, db


@pytest.mark.parametrize("activation", ["linear", "relu"])
@pytest.mark.parametrize("case_id", list(CASES))
def test_forward_matches_float64_reference(isa, case_id, activation):
    x, k, b, _, strides, pads, out = setup(case_id)
    y = forward(x, k, b, strides, pads, out, activation)
    want = ref.conv2d_forward(x, k, b, strides, pads, out)
    if activation == "relu":
        want = np.maximum(want, 0.0)
    absref = ref.conv2d_forward(np.abs(x), np.abs(k), np.abs(b), strides, pads, out)
    close(y, want, absref, f"{case_id} forward {activation}")


@pytest.mark.parametrize("want_dx", [True, False], ids=["dx", "no_dx"])
@pytest.mark.parametrize("case_id", list(CASES))
def test_backward_matches_float64_reference(isa, case_id, want_dx):
    x, k, _, dy, strides, pads, _ = setup(case_id)
    dx, dw, db = backward(x, k, dy, strides, pads, want_dx=want_dx)
    edx, edw, edb = ref.conv2d_backward(x, k, dy, strides, pads)
    adx, adw, adb = ref.conv2d_backward(np.abs(x), np.abs(k), np.abs(dy), strides, pads)
    close(dw, edw, adw, f"{case_id} dw")
    close(db, edb, adb, f"{case_id} db")
    if want_dx:
        close(dx, edx, adx, f"{case_id} dx")


@pytest.mark.parametrize("case_id", list(CASES))
def test_backward_with_relu_output_masks_dy(isa, case_id):
    """With y (the relu's output) given, dy counts only where y > 0."""
    x, k, b, dy, strides, pads, out = setup(case_id, seed=3)
    y = forward(x, k, b, strides, pads, out, "relu")
    assert (y == 0).any() and (y > 0).any()
    dx, dw, db = backward(x, k, dy, strides, pads, y=y)
    masked = np.where(y > 0, dy, 0.0).astype(np.float32)
    edx, edw, edb = ref.conv2d_backward(x, k, masked, strides, pads)
    adx, adw, adb = ref.conv2d_backward(np.abs(x), np.abs(k), np.abs(masked), strides, pads)
    close(dw, edw, adw, f"{case_id} dw (relu)")
    close(db, edb, adb, f"{case_id} db (relu)")
    close(dx, edx, adx, f"{case_id} dx (relu)")


def check_finite_differences(what, case, seed):
    """Directional derivatives of sum(forward * dy) along a random direction, for dx, dw, db
    of a case (x, k, b, dy, strides, pads, out) as setup() gives it."""
    x, k, b, dy, strides, pads, out = case
    dy64 = dy.astype(np.float64)

    def loss(x_, k_, b_):
        return float((forward(x_, k_, b_, strides, pads, out).astype(np.float64) * dy64).sum())

    dx, dw, db = backward(x, k, dy, strides, pads)
    r = np.random.default_rng(seed)
    for name, v, g, f in (("dx", x, dx, lambda t: loss(t, k, b)),
                          ("dw", k, dw, lambda t: loss(x, t, b)),
                          ("db", b, db, lambda t: loss(x, k, t))):
        d = r.uniform(-1.0, 1.0, v.shape)
        eps = 1e-2
        vp, vm = (v + eps * d).astype(np.float32), (v - eps * d).astype(np.float32)
        step = vp.astype(np.float64) - vm.astype(np.float64)
        fd = (f(vp) - f(vm)) / (2 * eps)
        terms = g.astype(np.float64) * step / (2 * eps)
        an = terms.sum()
        tol = 2e-2 * (abs(an) + 0.05 * np.abs(terms).sum()) + 1e-5
        assert abs(fd - an) <= tol, f"{what} {name}: finite difference {fd!r} vs {an!r}"


@pytest.mark.parametrize("case_id", list(CASES))
def test_backward_matches_finite_differences(isa, case_id):
    """Directional derivatives of sum(forward * dy) along a random direction."""
    check_finite_differences(case_id, setup(case_id, seed=1), seed=99)


def test_results_do_not_depend_on_thread_count(isa):
    """Every path's chunks and sums are cut by the shapes only: 1 and 2 threads agree bit for
    bit (a batch of many images: more chunks than lanes)."""
    before = pycnn.get_num_threads() if hasattr(pycnn, "get_num_threads") else None
    try:
        for case_id in ("small_c1_o75_same", "dual_c16_o16_same", "dwt_c75_o50_same"):
            n, h, w, c, o, kh, kw, sh, sw, pad = CASES[case_id]
            oh, ow, pads = ref.geometry(h, w, kh, kw, sh, sw, pad)
            r = np.random.default_rng(5)
            x = r.standard_normal((40, h, w, c)).astype(np.float32)
            k = r.standard_normal((kh, kw, c, o)).astype(np.float32)
            b = r.standard_normal(o).astype(np.float32)
            dy = r.standard_normal((40, oh, ow, o)).astype(np.float32)
            got = []
            for threads in (1, 2):
                pycnn.set_num_threads(threads)
                y = forward(x, k, b, (sh, sw), pads, (oh, ow), "relu")
                got.append((y,) + backward(x, k, dy, (sh, sw), pads, y=y))
            for name, a, bb in zip(("y", "dx", "dw", "db"), *got):
                np.testing.assert_array_equal(a, bb, err_msg=f"{case_id} {name}")
    finally:
        if before is not None:
            pycnn.set_num_threads(before)
