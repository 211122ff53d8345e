"""The GEMM tiles chosen for a small U-Net's layers, each against a float64 NumPy reference and
finite differences, under every SIMD path (the ``isa`` fixture):

- the Winograd F(2x2, 3x3) GEMMs of at most 16 filters on AVX-512 by a 16-column tile (24 rows
  for at most 16 channels, else 16): forwards of 16 or fewer filters, and the input gradients of
  'same' layers of 16 or fewer channels (the Winograd forward of dy with the flipped kernel),
  with groups of tiles short of a panel, tiles cut at the borders, filter counts under 16;
- products of one column of C (a convolution with one filter: the forward from A's rows, the
  weight gradient of a 1x1 one from A's columns) vectorised over C's rows on AVX-512, with
  channel counts off the vector width and weight gradients over several k blocks;
- the new tiles give the bits of the tiles they replace: on data whose every sum is exact each
  path equals the float64 reference exactly, and 1 and 2 threads agree bit for bit.
"""
import os
import sys

import numpy as np
import pytest

sys.path.insert(0, os.path.dirname(__file__))
import reference as ref  # noqa: E402
from test_conv_paths import backward, close, forward  # noqa: E402
from test_simd_paths import assert_paths_agree, on_every_path  # noqa: E402

import pycnn  # noqa: E402

# id: (N, H, W, C, O, KH, KW, padding)
CASES = {
    # Winograd, 16 filters, 16 channels: 24-row tiles, 8 full groups and a short one (210 tiles)
    "wino_c16_o16_groups": (5, 12, 14, 16, 16, 3, 3, "same"),
    # 24 channels, 12 filters: 16-row tiles, columns past the filters, odd sides (border tiles)
    "wino_c24_o12_odd": (2, 9, 11, 24, 12, 3, 3, "same"),
    "wino_c9_o16_valid": (3, 10, 9, 9, 16, 3, 3, "valid"),
    # forward by the 12 x 32 tile, dx by the dual with 12 filters: 16-column tiles of 16 rows
    "dual_c12_o20_same": (2, 10, 10, 12, 20, 3, 3, "same"),
    # one filter: 1x1 (k = 16 and 37 from A's rows, transposed in registers; dw from A's
    # columns over several k blocks) and 3x3 (k = 180 >= 128: A's rows in place)
    "one_1x1_c16": (4, 20, 20, 16, 1, 1, 1, "valid"),
    "one_1x1_c37": (3, 7, 9, 37, 1, 1, 1, "valid"),
    "one_3x3_c20_valid": (2, 9, 8, 20, 1, 3, 3, "valid"),
    "one_3x3_c20_same": (2, 7, 9, 20, 1, 3, 3, "same"),
}


def setup(case_id, seed=0):
    n, h, w, c, o, kh, kw, pad = CASES[case_id]
    oh, ow, pads = ref.geometry(h, w, kh, kw, 1, 1, pad)
    r = np.random.default_rng(seed + sum(map(ord, case_id)))
    x = r.standard_normal((n, h, w, c)).astype(np.float32)
    k = (r.standard_normal((kh, kw, c, o)) / np.sqrt(kh * kw * c)).astype(np.float32)
    b = r.standard_normal(o).astype(np.float32)
    dy = r.standard_normal((n, oh, ow, o)).astype(np.float32)
    return x, k, b, dy, (1, 1), tuple(pads), (oh, ow)


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


@pytest.mark.parametrize("relu", [False, True], ids=["linear", "relu"])
@pytest.mark.parametrize("case_id", list(CASES))
def test_backward_matches_float64_reference(isa, case_id, relu):
    x, k, b, dy, strides, pads, out = setup(case_id, seed=2)
    y = forward(x, k, b, strides, pads, out, "relu") if relu else None
    dx, dw, db = backward(x, k, dy, strides, pads, y=y)
    g = np.where(y > 0, dy, 0.0).astype(np.float32) if relu else dy
    edx, edw, edb = ref.conv2d_backward(x, k, g, strides, pads)
    adx, adw, adb = ref.conv2d_backward(np.abs(x), np.abs(k), np.abs(g), strides, pads)
    close(dx, edx, adx, f"{case_id} dx")
    close(dw, edw, adw, f"{case_id} dw")
    close(db, edb, adb, f"{case_id} db")


@pytest.mark.parametrize("case_id", list(CASES))
def test_backward_matches_finite_differences(isa, case_id):
    """Directional derivatives of sum(forward * dy) along a random direction."""
    x, k, b, dy, strides, pads, out = setup(case_id, seed=1)
    dy64 = dy.astype(np.float64)

    def loss(x_, k_, b_):
        return float((forward(x_, k_, b_, strides, pads, out).astype(np.float64) * dy64).sum())

    dx, dw, db = backward(x, k, dy, strides, pads)
    r = np.random.default_rng(7)
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
        assert abs(fd - an) <= tol, f"{case_id} {name}: finite difference {fd!r} vs {an!r}"


@pytest.mark.parametrize("case_id", list(CASES))
def test_exact_data_gives_the_reference_bits_on_every_path(case_id):
    """Small integers and halves: every sum is exact, so each path's tiles (the 16-column ones,
    the one-column product, and the portable kernel) give the float64 values, the same bits."""
    n, h, w, c, o, kh, kw, pad = CASES[case_id]
    oh, ow, pads = ref.geometry(h, w, kh, kw, 1, 1, pad)
    r = np.random.default_rng(3)
    x = r.integers(-3, 4, (n, h, w, c)).astype(np.float32)
    k = (r.integers(-4, 5, (kh, kw, c, o)) / 2).astype(np.float32)
    b = r.integers(-4, 5, o).astype(np.float32)
    dy = r.integers(-2, 3, (n, oh, ow, o)).astype(np.float32)
    want_y = ref.conv2d_forward(x, k, b, (1, 1), pads, (oh, ow))
    want = ref.conv2d_backward(x, k, dy, (1, 1), pads)

    def run():
        y = forward(x, k, b, (1, 1), pads, (oh, ow))
        return [y, *backward(x, k, dy, (1, 1), pads)]

    results = on_every_path(run)
    for path, got in results.items():
        for name, a, e in zip(("y", "dx", "dw", "db"), got, (want_y, *want)):
            np.testing.assert_array_equal(a, e.astype(np.float32), err_msg=f"{path} {name}")
    assert_paths_agree(results)


def test_results_do_not_depend_on_thread_count(isa):
    """Chunks and sums are cut by the shapes only: 1 and 2 threads agree bit for bit."""
    before = pycnn.get_num_threads() if hasattr(pycnn, "get_num_threads") else None
    try:
        for case_id in ("wino_c16_o16_groups", "dual_c12_o20_same", "one_1x1_c16"):
            n, h, w, c, o, kh, kw, pad = CASES[case_id]
            oh, ow, pads = ref.geometry(h, w, kh, kw, 1, 1, pad)
            r = np.random.default_rng(5)
            x = r.standard_normal((40, h, w, c)).astype(np.float32)
            k = r.standard_normal((kh, kw, c, o)).astype(np.float32)
            b = r.standard_normal(o).astype(np.float32)
            dy = r.standard_normal((40, oh, ow, o)).astype(np.float32)
            got = []
            for threads in (1, 2):
                pycnn.set_num_threads(threads)
                y = forward(x, k, b, (1, 1), pads, (oh, ow), "relu")
                got.append((y,) + backward(x, k, dy, (1, 1), pads, y=y))
            for name, a, bb in zip(("y", "dx", "dw", "db"), *got):
                np.testing.assert_array_equal(a, bb, err_msg=f"{case_id} {name}")
    finally:
        if before is not None:
            pycnn.set_num_threads(before)
