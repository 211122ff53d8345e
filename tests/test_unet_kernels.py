"""The GEMM tiles chosen for a small U-Net's layers, each against a float64 NumPy reference and
finite differences, under every SIMD path (the ``isa`` fixture):

- the Winograd F(2x2, 3x3) GEMMs of 16 filters on AVX-512 by a 16-column tile (24 rows for at
  most 16 channels, else 16): forwards of 16 filters, and the input gradients of 'same' layers
  of 16 channels (the Winograd forward of dy with the flipped kernel), with groups of tiles
  short of a panel and tiles cut at the borders;
- transposed convolutions whose kernel tiles the output (2x2 stride 2): columns placed once,
  with bias and relu;
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
from test_conv_paths import backward, check_finite_differences, close, forward  # noqa: E402
from test_simd_paths import assert_paths_agree, on_every_path  # noqa: E402

import pycnn  # noqa: E402

# id: (N, H, W, C, O, KH, KW, padding)
CASES = {
    # Winograd, 16 filters, 16 channels: 24-row tiles, 8 full groups and a short one (210 tiles)
    "wino_c16_o16_groups": (5, 12, 14, 16, 16, 3, 3, "same"),
    # 24 channels, 16 filters: 16-row tiles, odd sides (border tiles); dx by the dual with 24
    # filters (12 x 32 tiles, columns past the filters)
    "wino_c24_o16_odd": (2, 9, 11, 24, 16, 3, 3, "same"),
    "wino_c9_o16_valid": (3, 10, 9, 9, 16, 3, 3, "valid"),
    # forward by the 12 x 32 tile, dx by the dual of 20 channels and 16 filters: 16-row tiles
    "dual_c16_o20_same": (2, 10, 10, 16, 20, 3, 3, "same"),
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
    check_finite_differences(case_id, setup(case_id, seed=1), seed=7)


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
        for case_id in ("wino_c16_o16_groups", "dual_c16_o20_same", "one_1x1_c16"):
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


# ---- transposed convolutions whose kernel tiles the output (the U-Net's 2x2 stride 2) --------

def _transpose_ref(x, w, b, strides, out_hw):
    """float64 transposed convolution, no padding:
    y[n][h*s + i][w*s + j] += x[n][h][w] . w[i][j]^T"""
    n, h, wd, _ = x.shape
    kh, kw, o, _ = w.shape
    sh, sw = strides
    y = np.zeros((n,) + tuple(out_hw) + (o,))
    for i in range(kh):
        for j in range(kw):
            t = np.tensordot(x.astype(np.float64), w[i, j].astype(np.float64), axes=([3], [1]))
            y[:, i:i + sh * (h - 1) + 1:sh, j:j + sw * (wd - 1) + 1:sw] += t
    return y + (0.0 if b is None else b.astype(np.float64))


# (N, H, W, C, O, K, stride): the kernel tiles the output (stride = kernel), and one that does not
TRANSPOSED = {
    "t2x2_s2_c32_o16": (3, 5, 4, 32, 16, 2, 2),
    "t2x2_s2_c6_o5": (2, 3, 5, 6, 5, 2, 2),
    "t3x3_s3_c8_o17": (2, 3, 3, 8, 17, 3, 3),
    "t3x3_s2_overlap": (2, 4, 3, 8, 7, 3, 2),
}


@pytest.mark.parametrize("bias", [True, False], ids=["bias", "no_bias"])
@pytest.mark.parametrize("activation", ["linear", "relu"])
@pytest.mark.parametrize("case_id", list(TRANSPOSED))
def test_transposed_forward_matches_float64_reference(isa, case_id, activation, bias):
    from pycnn import _C
    n, h, w, c, o, k, st = TRANSPOSED[case_id]
    r = np.random.default_rng(sum(map(ord, case_id)))
    x = r.standard_normal((n, h, w, c)).astype(np.float32)
    kern = (r.standard_normal((k, k, o, c)) / np.sqrt(c)).astype(np.float32)
    b = r.standard_normal(o).astype(np.float32) if bias else None
    out = ((h - 1) * st + k, (w - 1) * st + k)
    y = np.full((n,) + out + (o,), np.nan, np.float32)
    _C.conv_transpose_forward(x, kern, b, y, (st, st), (0, 0), (1, 1), activation=activation)
    want = _transpose_ref(x, kern, b, (st, st), out)
    if activation == "relu":
        want = np.maximum(want, 0.0)
    absref = _transpose_ref(np.abs(x), np.abs(kern), None if b is None else np.abs(b), (st, st),
                            out)
    close(y, want, absref, f"{case_id} {activation}")
    if activation == "relu":                    # relu(0) is +0, never -0
        assert not np.signbit(y[y == 0]).any()


@pytest.mark.parametrize("case_id", list(TRANSPOSED))
def test_transposed_forward_on_exact_data_is_the_same_on_every_path(case_id):
    from pycnn import _C
    n, h, w, c, o, k, st = TRANSPOSED[case_id]
    r = np.random.default_rng(4)
    x = r.integers(-3, 4, (n, h, w, c)).astype(np.float32)
    kern = (r.integers(-4, 5, (k, k, o, c)) / 2).astype(np.float32)
    b = r.integers(-3, 4, o).astype(np.float32)
    out = ((h - 1) * st + k, (w - 1) * st + k)
    want = np.maximum(_transpose_ref(x, kern, b, (st, st), out), 0.0).astype(np.float32)

    def run():
        y = np.full((n,) + out + (o,), np.nan, np.float32)
        _C.conv_transpose_forward(x, kern, b, y, (st, st), (0, 0), (1, 1), activation="relu")
        return [y]

    results = on_every_path(run)
    for path, (y,) in results.items():
        np.testing.assert_array_equal(y, want, err_msg=path)
    assert_paths_agree(results)
