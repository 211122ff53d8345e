"""Tests of the C kernels `pycnn._C` against the float64 oracle in tests/reference.py.

The contract is docs/kernels.md.  Every numeric test runs once per SIMD path the CPU supports
(fixture ``isa``); float32 kernel results are compared with the float64 reference using an
error bound scaled by the magnitude of the terms summed (the same computation on absolute
values), so cancellation does not produce spurious failures.  Each backward pass is compared
with the reference backward (itself checked by finite differences in test_reference.py) and
with a directional derivative of the C forward pass.  Then: bit-identical results across
thread counts, and bad input raising TypeError/ValueError that names the argument.
"""

import os
import re
import sys
import textwrap

import numpy as np
import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import reference as ref  # noqa: E402

from pycnn import _C  # noqa: E402

from conftest import ISAS  # noqa: E402
from childproc import child_env, run_python


# ---------------------------------------------------------------------------------------------
# Fixtures and helpers
# ---------------------------------------------------------------------------------------------

# ``isa``: the per-SIMD-path fixture lives in conftest.py

def f32(a):
    return np.ascontiguousarray(a, dtype=np.float32)


def rng(seed):
    return np.random.default_rng(seed)


def randn(r, shape):
    return f32(r.standard_normal(shape))


def nans(shape, dtype=np.float32):
    """An output buffer full of NaN (or -7 for ints): the kernel must overwrite all of it."""
    if np.dtype(dtype).kind == "f":
        return np.full(shape, np.nan, dtype=dtype)
    return np.full(shape, -7, dtype=dtype)


def assert_close(actual, expected, absref, rtol=3e-5, what=""):
    """Elementwise ``|actual - expected| <= rtol * (absref + 1e-3 * max(absref)) + 1e-30``.

    ``absref`` is the reference computed on absolute values (the sum of |terms|): float32
    rounding of a sum is bounded by a multiple of it.
    """
    actual = np.asarray(actual)
    expected = np.asarray(expected, dtype=np.float64)
    absref = np.abs(np.asarray(absref, dtype=np.float64))
    assert actual.shape == expected.shape, f"{what}: shape {actual.shape} != {expected.shape}"
    assert np.all(np.isfinite(actual)), f"{what}: non-finite values (output not fully written?)"
    err = np.abs(actual.astype(np.float64) - expected)
    scale = absref.max() if absref.size else 0.0
    bound = rtol * (absref + 1e-3 * scale) + 1e-30
    if (err > bound).any():
        pytest.fail(ref.out_of_tolerance(what, actual, expected, err, bound))


def directional_check(f, x, grad, eps=1e-2, rtol=2e-2, seed=99, what=""):
    """Compare ``grad`` (a C backward result w.r.t. ``x``) with a central difference of the
    scalar ``f`` (built on the C forward) along a random direction (components in [-1, 1]).
    The actual float32 step ``xp - xm`` is used, so rounding of the step does not matter."""
    d = rng(seed).uniform(-1.0, 1.0, size=x.shape)
    xp, xm = f32(x + eps * d), f32(x - eps * d)
    step = xp.astype(np.float64) - xm.astype(np.float64)
    fd = (f(xp) - f(xm)) / (2 * eps)
    g = grad.astype(np.float64) * step / (2 * eps)
    an, scale = g.sum(), np.abs(g).sum()
    tol = rtol * (abs(an) + 0.05 * scale) + 1e-5
    assert abs(fd - an) <= tol, (f"{what}: directional derivative: finite difference {fd!r} "
                                 f"vs backward {an!r} (tol {tol:.3g})")


def assert_raises_naming(fn, *names, exc=(TypeError, ValueError)):
    """``fn()`` raises TypeError/ValueError whose message names one of ``names``."""
    with pytest.raises(exc) as info:
        fn()
    msg = str(info.value)
    assert any(re.search(r"(?<![A-Za-z0-9_])" + re.escape(n) + r"(?![A-Za-z0-9_])", msg)
               for n in names), f"error message {msg!r} names none of {names}"


# ---------------------------------------------------------------------------------------------
# Module-level functions: isa, threads
# ---------------------------------------------------------------------------------------------

def test_isa_and_threads_api(keep_num_threads):
    assert _C.isa() in ISAS
    for n in (1, 2, 3):
        _C.set_num_threads(n)
        assert _C.num_threads() == n
    assert isinstance(_C.num_threads(), int)


def test_best_isa():
    """best_isa() names a supported path; every path up to it can be chosen, none above it."""
    best = _C.best_isa()
    assert best in ISAS
    before = _C.isa()
    try:
        for name in ISAS[:ISAS.index(best) + 1]:
            _C.set_isa(name)
            assert _C.isa() == name
        for name in ISAS[ISAS.index(best) + 1:]:
            with pytest.raises(ValueError):
                _C.set_isa(name)
    finally:
        _C.set_isa(before)


def test_generic_isa_always_available():
    before = _C.isa()
    try:
        _C.set_isa("generic")
        assert _C.isa() == "generic"
    finally:
        _C.set_isa(before)


def test_set_isa_and_threads_bad_values(keep_num_threads):
    before = _C.isa()
    with pytest.raises(ValueError):
        _C.set_isa("sse9")
    assert _C.isa() == before
    for n in (0, -1):
        assert_raises_naming(lambda: _C.set_num_threads(n), "n", "num_threads", "threads", str(n))
    assert _C.num_threads() >= 1


def test_pycnn_isa_env_var():
    out = run_python("from pycnn import _C; print(_C.isa())", env=child_env(PYCNN_ISA="generic"),
                     timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "generic"


def test_concurrent_calls_from_python_threads():
    """The GIL is released while kernels run: two Python threads calling conv/gemm at once must
    both get correct results (run in a subprocess so a deadlock or crash cannot take down
    the test session)."""
    code = textwrap.dedent("""
        import threading, numpy as np
        from pycnn import _C
        _C.set_num_threads(2)
        r = np.random.default_rng(0)
        x = r.standard_normal((4, 12, 12, 16)).astype(np.float32)
        w = r.standard_normal((3, 3, 16, 24)).astype(np.float32)
        a = r.standard_normal((150, 170)).astype(np.float32)
        b = r.standard_normal((170, 90)).astype(np.float32)
        def conv():
            y = np.empty((4, 10, 10, 24), np.float32)
            _C.conv2d_forward(x, w, None, y, (1, 1), (0, 0))
            return y
        def mm():
            c = np.empty((150, 90), np.float32)
            _C.gemm(a, b, c)
            return c
        y0, c0 = conv(), mm()
        errors = []
        def work(fn, ref):
            for _ in range(30):
                if not np.array_equal(fn(), ref):
                    errors.append(fn.__name__)
        ts = [threading.Thread(target=work, args=a_) for a_ in
              [(conv, y0), (mm, c0), (conv, y0), (mm, c0)]]
        [t.start() for t in ts]
        [t.join() for t in ts]
        print("OK" if not errors else "MISMATCH " + ",".join(sorted(set(errors))))
    """)
    out = run_python(code)
    assert out.returncode == 0, f"subprocess died (rc={out.returncode}): {out.stderr[-2000:]}"
    assert out.stdout.strip() == "OK", out.stdout


# ---------------------------------------------------------------------------------------------
# GEMM
# ---------------------------------------------------------------------------------------------

GEMM_SHAPES = [  # (M, N, K): edges of every blocking, not multiples of 8/16/32
    (1, 1, 1), (1, 7, 3), (5, 1, 9), (7, 5, 3), (3, 2, 300), (8, 16, 32), (17, 33, 65),
    (31, 47, 129), (64, 64, 64), (100, 10, 300), (129, 257, 77), (255, 129, 300),
    (300, 299, 301),
    # few columns (<= 12, a class layer): the AVX-512 path's narrow kernels (runtime.h), by rows
    # of A (NN, NT) or of A^T (TN): k a multiple of 16 or not, 2-row pairs and a last odd row,
    # 32-row blocks and a partial one
    (128, 10, 1152), (33, 12, 17), (70, 11, 16), (40, 3, 31), (65, 1, 200),
    # few k (<= 12, a class layer's dy w^T): the narrow_k kernel, 4 rows at a time and a
    # partial block, columns in 64-wide tiles with a masked end, column tasks of any width
    (130, 100, 10), (5, 700, 12), (3, 17, 7), (128, 512, 10),
    # whole 32-column slivers: a row-major B read in place (AVX-512; AVX2's slivers are 16), by
    # the column split
    # (M within one row block), the row split (M larger), with one and several k blocks
    (12, 64, 1), (128, 96, 130), (200, 64, 77), (150, 32, 513), (145, 512, 128),
]


def _gemm_operands(r, m, n, k, trans_a, trans_b):
    a = randn(r, (k, m) if trans_a else (m, k))
    b = randn(r, (n, k) if trans_b else (k, n))
    opa = a.astype(np.float64).T if trans_a else a.astype(np.float64)
    opb = b.astype(np.float64).T if trans_b else b.astype(np.float64)
    return a, b, opa, opb


@pytest.mark.parametrize("accumulate", [False, True], ids=["overwrite", "accumulate"])
@pytest.mark.parametrize("trans_a,trans_b", [(False, False), (True, False), (False, True), (True, True)],
                         ids=["NN", "TN", "NT", "TT"])
@pytest.mark.parametrize("m,n,k", GEMM_SHAPES, ids=lambda v: str(v))
def test_gemm(isa, m, n, k, trans_a, trans_b, accumulate):
    r = rng(m * 1000003 + n * 1009 + k)
    a, b, opa, opb = _gemm_operands(r, m, n, k, trans_a, trans_b)
    if accumulate:
        c0 = randn(r, (m, n))
        c = c0.copy()
        expect = c0 + opa @ opb
        absref = np.abs(c0) + np.abs(opa) @ np.abs(opb)
    else:
        c = nans((m, n))
        expect = opa @ opb
        absref = np.abs(opa) @ np.abs(opb)
    ret = _C.gemm(a, b, c, trans_a=trans_a, trans_b=trans_b, accumulate=accumulate)
    assert ret is None or ret is c
    assert_close(c, expect, absref, what=f"gemm M,N,K={m},{n},{k} ta={trans_a} tb={trans_b} acc={accumulate}")


@pytest.mark.parametrize("trans_a,trans_b", [(False, False), (True, False), (False, True)],
                         ids=["NN", "TN", "NT"])
@pytest.mark.parametrize("m,n,k", [(33, 10, 17), (128, 10, 1152), (40, 3, 31), (5, 12, 300)],
                         ids=lambda v: str(v))
def test_gemm_reads_nothing_past_its_operands(isa, m, n, k, trans_a, trans_b):
    """Each operand is the leading rows of a buffer whose next rows are NaN: a kernel reading
    past the end of A or B (a vector tail, a row pair, a 32-row block) turns results NaN."""
    r = rng(m + n + k)
    a, b, opa, opb = _gemm_operands(r, m, n, k, trans_a, trans_b)

    def nan_tailed(x):
        buf = np.full((x.shape[0] + 2, x.shape[1]), np.nan, np.float32)
        buf[:x.shape[0]] = x
        view = buf[:x.shape[0]]
        assert view.flags.c_contiguous
        return view
    c = nans((m, n))
    _C.gemm(nan_tailed(a), nan_tailed(b), c, trans_a=trans_a, trans_b=trans_b)
    assert_close(c, opa @ opb, np.abs(opa) @ np.abs(opb), what=f"gemm {m},{n},{k}")


@pytest.mark.parametrize("offset", [0, 1, 4, 15], ids=lambda o: f"offset{o}")
@pytest.mark.parametrize("m,n,k,trans_a", [(128, 64, 784, False), (300, 96, 128, True)],
                         ids=["column_split", "row_split"])
def test_gemm_reads_b_in_place_at_any_alignment(isa, m, n, k, trans_a, offset):
    """B's rows are read where they are (no packing) when it is row-major with whole slivers:
    unaligned rows must give the same sums as aligned ones."""
    r = rng(offset + m)
    a, b, opa, opb = _gemm_operands(r, m, n, k, trans_a, False)
    buf = np.full(b.size + 32, np.nan, np.float32)     # NaN around: no read outside B
    start = (-buf.ctypes.data % 64) // 4 + offset
    b_view = buf[start:start + b.size].reshape(b.shape)
    b_view[...] = b
    c, c_aligned = nans((m, n)), nans((m, n))
    _C.gemm(a, b_view, c, trans_a=trans_a)
    b_aligned = buf[start - offset:start - offset + b.size].reshape(b.shape)
    b_aligned[...] = b
    _C.gemm(a, b_aligned, c_aligned, trans_a=trans_a)
    assert_close(c, opa @ opb, np.abs(opa) @ np.abs(opb), what=f"gemm B at +{offset} floats")
    np.testing.assert_array_equal(c, c_aligned)


def test_gemm_positional_flags_and_defaults(isa):
    r = rng(5)
    a, b = randn(r, (6, 4)), randn(r, (5, 4))
    c = nans((6, 5))
    _C.gemm(a, b, c, False, True, False)
    assert_close(c, a.astype(float) @ b.astype(float).T, np.abs(a) @ np.abs(b).T, what="gemm NT positional")
    c2 = nans((6, 5))
    _C.gemm(a, f32(b.T), c2)                  # defaults: no transposes, overwrite
    assert_close(c2, a.astype(float) @ b.astype(float).T, np.abs(a) @ np.abs(b).T, what="gemm defaults")


# ---------------------------------------------------------------------------------------------
# Dense
# ---------------------------------------------------------------------------------------------

DENSE_SHAPES = [(1, 1, 1), (1, 784, 10), (32, 784, 128), (7, 300, 129), (64, 1600, 10),
                (3, 5, 300), (33, 17, 1)]


# (with bias, activation): None = the default, which is "linear"
FWD_VARIANTS = [(True, None), (False, None), (True, "linear"), (True, "relu"), (False, "relu")]
FWD_IDS = ["bias", "nobias", "bias_linear", "bias_relu", "nobias_relu"]


def fused(y, activation):
    return np.maximum(y, 0.0) if activation == "relu" else y


@pytest.mark.parametrize("with_bias,activation", FWD_VARIANTS, ids=FWD_IDS)
@pytest.mark.parametrize("n,din,dout", DENSE_SHAPES, ids=lambda v: str(v))
def test_dense_forward(isa, n, din, dout, with_bias, activation):
    r = rng(n + din + dout)
    x, w = randn(r, (n, din)), randn(r, (din, dout))
    b = randn(r, dout) if with_bias else None
    y = nans((n, dout))
    if activation is None:
        _C.dense_forward(x, w, b, y)
    else:
        _C.dense_forward(x, w, b, y, activation=activation)
    absb = None if b is None else np.abs(b)
    # relu is 1-Lipschitz, so the same error bound holds after it
    assert_close(y, fused(ref.dense_forward(x, w, b), activation),
                 ref.dense_forward(np.abs(x), np.abs(w), absb),
                 what=f"dense_forward {n},{din},{dout} activation={activation}")


@pytest.mark.parametrize("want_dx,want_db", [(True, True), (False, True), (True, False), (False, False)],
                         ids=["dx_db", "no_dx", "no_db", "dw_only"])
@pytest.mark.parametrize("n,din,dout", DENSE_SHAPES, ids=lambda v: str(v))
def test_dense_backward(isa, n, din, dout, want_dx, want_db):
    r = rng(7 * n + din + dout)
    x, w, dy = randn(r, (n, din)), randn(r, (din, dout)), randn(r, (n, dout))
    dx = nans((n, din)) if want_dx else None
    dw = nans((din, dout))
    db = nans(dout) if want_db else None
    _C.dense_backward(x, w, dy, dx, dw, db)
    edx, edw, edb = ref.dense_backward(x, w, dy)
    adx, adw, adb = ref.dense_backward(np.abs(x), np.abs(w), np.abs(dy))
    assert_close(dw, edw, adw, what="dense dw")
    if want_dx:
        assert_close(dx, edx, adx, what="dense dx")
    if want_db:
        assert_close(db, edb, adb, what="dense db")


@pytest.mark.parametrize("n,din,dout", [(4, 9, 5), (32, 100, 10)], ids=lambda v: str(v))
def test_dense_backward_directional(isa, n, din, dout):
    r = rng(11)
    x, w, b, dy = randn(r, (n, din)), randn(r, (din, dout)), randn(r, dout), randn(r, (n, dout))
    dy64 = dy.astype(np.float64)

    def loss(x_, w_, b_):
        y = np.empty((n, dout), np.float32)
        _C.dense_forward(x_, w_, b_, y)
        return float((y.astype(np.float64) * dy64).sum())

    dx, dw, db = nans((n, din)), nans((din, dout)), nans(dout)
    _C.dense_backward(x, w, dy, dx, dw, db)
    directional_check(lambda v: loss(v, w, b), x, dx, what="dense dx")
    directional_check(lambda v: loss(x, v, b), w, dw, what="dense dw")
    directional_check(lambda v: loss(x, w, v), b, db, what="dense db")


# ---------------------------------------------------------------------------------------------
# Conv2D
# ---------------------------------------------------------------------------------------------

CONV_CASES = {
    # id: (N, H, W, C, O, KH, KW, sh, sw, padding | ((top, left), (OH, OW)))
    "valid3x3": (2, 5, 5, 3, 4, 3, 3, 1, 1, "valid"),
    "same3x3": (2, 5, 5, 3, 4, 3, 3, 1, 1, "same"),
    "same_s2_in6_pads01": (1, 6, 6, 1, 2, 3, 3, 2, 2, "same"),
    "same_s2_in7": (2, 7, 7, 2, 3, 3, 3, 2, 2, "same"),
    "even_kernel2_same": (2, 7, 8, 2, 3, 2, 2, 1, 1, "same"),
    "even_kernel4_same": (1, 9, 9, 3, 5, 4, 4, 1, 1, "same"),
    "nonsquare_k42_s23": (3, 9, 7, 4, 5, 4, 2, 2, 3, "same"),
    "nonsquare_k13_s31_valid": (2, 10, 6, 3, 4, 1, 3, 3, 1, "valid"),
    "stride_gt_kernel_valid": (2, 9, 9, 3, 2, 2, 2, 3, 3, "valid"),
    "stride_gt_kernel_same": (1, 10, 11, 2, 3, 2, 1, 3, 4, "same"),
    "1x1": (2, 8, 8, 5, 7, 1, 1, 1, 1, "valid"),
    "1x1_s2_same": (2, 7, 8, 5, 7, 1, 1, 2, 2, "same"),
    "kernel_eq_input": (1, 5, 5, 3, 4, 5, 5, 1, 1, "valid"),
    "kernel_gt_input_same": (2, 4, 3, 3, 2, 5, 5, 1, 1, "same"),
    "single_pixel": (1, 1, 1, 1, 1, 1, 1, 1, 1, "valid"),
    "mnist_conv1": (2, 28, 28, 1, 32, 3, 3, 1, 1, "valid"),
    "mnist_conv2": (2, 13, 13, 32, 64, 3, 3, 1, 1, "valid"),
    "bigK_925": (2, 11, 10, 37, 45, 5, 5, 1, 1, "same"),
    "O33_same": (1, 16, 16, 8, 33, 3, 3, 1, 1, "same"),
    "C67_O1": (3, 6, 6, 67, 1, 3, 3, 1, 1, "valid"),
    "explicit_pads_past_edge": (2, 6, 5, 2, 3, 3, 2, 1, 2, ((2, 0), (5, 3))),
    # the C code cuts the batch into chunks of whole images (~512 output pixels) and sums dw/db
    # over 8 fixed lanes: more chunks than lanes, and multi-image chunks with a partial tail
    "chunks_gt_lanes": (11, 25, 25, 2, 3, 3, 3, 1, 1, "valid"),
    "multi_image_chunks": (37, 7, 7, 3, 5, 3, 3, 1, 1, "valid"),
    "pointwise_same": (3, 6, 7, 9, 4, 1, 1, 1, 1, "same"),
    # 3x3 stride-1 layers with >= 8 channels and >= 16 filters take the Winograd F(2x2, 3x3)
    # forward (csrc/winograd.c): odd output sizes (tiles cut at the border), "same" padding,
    # filters not a multiple of the micro-kernel's width, tile groups with a partial tail
    "winograd_odd_same": (3, 9, 7, 12, 20, 3, 3, 1, 1, "same"),
    "winograd_many_tiles": (6, 12, 12, 16, 24, 3, 3, 1, 1, "valid"),
    "winograd_pads_past_edge": (2, 8, 7, 9, 17, 3, 3, 1, 1, ((2, 1), (9, 8))),
}


def conv_setup(case_id, seed=0):
    n, h, w, c, o, kh, kw, sh, sw, pad = CONV_CASES[case_id]
    if isinstance(pad, str):
        oh, ow, pads = ref.geometry(h, w, kh, kw, sh, sw, pad)
    else:
        pads, (oh, ow) = pad
    r = rng(seed + sum(map(ord, case_id)))
    x, k, b = randn(r, (n, h, w, c)), randn(r, (kh, kw, c, o)), randn(r, o)
    dy = randn(r, (n, oh, ow, o))
    return x, k, b, dy, (sh, sw), tuple(pads), (oh, ow)


def c_conv_forward(x, k, b, strides, pads, out_hw, activation=None):
    y = nans((x.shape[0],) + tuple(out_hw) + (k.shape[3],))
    if activation is None:
        _C.conv2d_forward(x, k, b, y, strides, pads)
    else:
        _C.conv2d_forward(x, k, b, y, strides, pads, activation=activation)
    return y


def c_conv_backward(x, k, dy, strides, pads, want_dx=True, want_db=True):
    dx = nans(x.shape) if want_dx else None
    dw = nans(k.shape)
    db = nans(k.shape[3]) if want_db else None
    _C.conv2d_backward(x, k, dy, dx, dw, db, strides, pads)
    return dx, dw, db


@pytest.mark.parametrize("with_bias,activation", FWD_VARIANTS, ids=FWD_IDS)
@pytest.mark.parametrize("case_id", list(CONV_CASES))
def test_conv2d_forward(isa, case_id, with_bias, activation):
    x, k, b, _, strides, pads, out = conv_setup(case_id)
    b = b if with_bias else None
    y = c_conv_forward(x, k, b, strides, pads, out, activation)
    absb = None if b is None else np.abs(b)
    assert_close(y, fused(ref.conv2d_forward(x, k, b, strides, pads, out), activation),
                 ref.conv2d_forward(np.abs(x), np.abs(k), absb, strides, pads, out),
                 what=f"conv2d_forward {case_id} {CONV_CASES[case_id]} activation={activation}")


@pytest.mark.parametrize("want_dx,want_db", [(True, True), (False, True), (True, False), (False, False)],
                         ids=["dx_db", "no_dx", "no_db", "dw_only"])
@pytest.mark.parametrize("case_id", list(CONV_CASES))
def test_conv2d_backward(isa, case_id, want_dx, want_db):
    x, k, _, dy, strides, pads, _ = conv_setup(case_id)
    dx, dw, db = c_conv_backward(x, k, dy, strides, pads, want_dx, want_db)
    edx, edw, edb = ref.conv2d_backward(x, k, dy, strides, pads)
    adx, adw, adb = ref.conv2d_backward(np.abs(x), np.abs(k), np.abs(dy), strides, pads)
    what = f"conv2d_backward {case_id} {CONV_CASES[case_id]}"
    assert_close(dw, edw, adw, what=what + " dw")
    if want_dx:
        assert_close(dx, edx, adx, what=what + " dx")
    if want_db:
        assert_close(db, edb, adb, what=what + " db")


@pytest.mark.parametrize("case_id", list(CONV_CASES))
def test_conv2d_backward_directional(isa, case_id):
    x, k, b, dy, strides, pads, out = conv_setup(case_id, seed=1)
    dy64 = dy.astype(np.float64)

    def loss(x_, k_, b_):
        return float((c_conv_forward(x_, k_, b_, strides, pads, out).astype(np.float64) * dy64).sum())

    dx, dw, db = c_conv_backward(x, k, dy, strides, pads)
    directional_check(lambda v: loss(v, k, b), x, dx, what=f"{case_id} dx")
    directional_check(lambda v: loss(x, v, b), k, dw, what=f"{case_id} dw")
    directional_check(lambda v: loss(x, k, v), b, db, what=f"{case_id} db")


def test_conv2d_scratch_reuse(isa):
    """The runtime's scratch memory is reused across calls: alternating big and small
    problems (and forward/backward) must not leak state from one call into the next."""
    ids = ["mnist_conv2", "single_pixel", "bigK_925", "nonsquare_k42_s23", "mnist_conv2"]
    first = {}
    for round_ in range(2):
        for case_id in ids:
            x, k, b, dy, strides, pads, out = conv_setup(case_id)
            res = (c_conv_forward(x, k, b, strides, pads, out),) + c_conv_backward(x, k, dy, strides, pads)
            if case_id in first:
                for name, got, want in zip(("y", "dx", "dw", "db"), res, first[case_id]):
                    np.testing.assert_array_equal(got, want, err_msg=f"{case_id} {name} changed on a repeated call")
            else:
                first[case_id] = res
    x, k, b, _, strides, pads, out = conv_setup("mnist_conv2")
    assert_close(first["mnist_conv2"][0], ref.conv2d_forward(x, k, b, strides, pads, out),
                 ref.conv2d_forward(np.abs(x), np.abs(k), np.abs(b), strides, pads, out), what="mnist_conv2")


def test_conv2d_hand_example(isa):
    """5x5 ramp, 3x3 ones kernel: valid, stride 2, same stride 2 (pads (1, 1))."""
    x = f32(np.arange(25.0).reshape(1, 5, 5, 1))
    k = np.ones((3, 3, 1, 1), np.float32)
    y = c_conv_forward(x, k, None, (1, 1), (0, 0), (3, 3))
    np.testing.assert_array_equal(y[0, :, :, 0], [[54, 63, 72], [99, 108, 117], [144, 153, 162]])
    y = c_conv_forward(x, k, None, (2, 2), (0, 0), (2, 2))
    np.testing.assert_array_equal(y[0, :, :, 0], [[54, 72], [144, 162]])
    y = c_conv_forward(x, k, None, (2, 2), (1, 1), (3, 3))
    np.testing.assert_array_equal(y[0, :, :, 0], [[12, 27, 24], [63, 108, 81], [72, 117, 84]])
    # cross-correlation, not convolution
    k = np.zeros((2, 2, 1, 1), np.float32)
    k[1, 1] = 1
    y = c_conv_forward(x, k, None, (1, 1), (0, 0), (4, 4))
    np.testing.assert_array_equal(y[0, :, :, 0], x[0, 1:, 1:, 0])


# ---------------------------------------------------------------------------------------------
# Determinism across thread counts
# ---------------------------------------------------------------------------------------------

def _by_threads(fn):
    results = []
    for n in (1, 2, 3):
        _C.set_num_threads(n)
        results.append(fn())
    return results


@pytest.mark.parametrize("m,n,k", [(255, 129, 301), (300, 10, 1152), (255, 64, 301),
                                   (301, 700, 10)],
                         ids=["wide", "narrow", "whole_slivers", "few_k"])
@pytest.mark.parametrize("trans_a,trans_b,accumulate", [(False, False, False), (True, False, True),
                                                        (False, True, False), (True, True, False)])
def test_gemm_bit_identical_across_threads(isa, keep_num_threads, trans_a, trans_b, accumulate,
                                           m, n, k):
    r = rng(21)
    a, b, _, _ = _gemm_operands(r, m, n, k, trans_a, trans_b)
    c0 = randn(r, (m, n))

    def run():
        c = c0.copy()
        _C.gemm(a, b, c, trans_a=trans_a, trans_b=trans_b, accumulate=accumulate)
        return c

    res = _by_threads(run)
    for nt, c in zip((2, 3), res[1:]):
        np.testing.assert_array_equal(c, res[0], err_msg=f"gemm with {nt} threads != 1 thread")


@pytest.mark.parametrize("case_id", ["mnist_conv2", "nonsquare_k42_s23", "bigK_925", "mnist_conv1",
                                     "chunks_gt_lanes", "multi_image_chunks"])
def test_conv2d_bit_identical_across_threads(isa, keep_num_threads, case_id):
    x, k, b, dy, strides, pads, out = conv_setup(case_id)
    x = f32(np.concatenate([x] * 4))            # a larger batch so that every thread gets work
    dy = f32(np.concatenate([dy] * 4))
    fwd = _by_threads(lambda: c_conv_forward(x, k, b, strides, pads, out))
    bwd = _by_threads(lambda: c_conv_backward(x, k, dy, strides, pads))
    for nt, y in zip((2, 3), fwd[1:]):
        np.testing.assert_array_equal(y, fwd[0], err_msg=f"conv forward {case_id}: {nt} threads != 1")
    for nt, g in zip((2, 3), bwd[1:]):
        for name, got, want in zip(("dx", "dw", "db"), g, bwd[0]):
            np.testing.assert_array_equal(got, want, err_msg=f"conv backward {case_id} {name}: {nt} threads != 1")


def test_dense_bit_identical_across_threads(isa, keep_num_threads):
    r = rng(22)
    x, w, b, dy = randn(r, (96, 1600)), randn(r, (1600, 130)), randn(r, 130), randn(r, (96, 130))

    def run():
        y, dx, dw, db = nans((96, 130)), nans(x.shape), nans(w.shape), nans(130)
        _C.dense_forward(x, w, b, y)
        _C.dense_backward(x, w, dy, dx, dw, db)
        return y, dx, dw, db

    res = _by_threads(run)
    for nt, got in zip((2, 3), res[1:]):
        for name, a, e in zip(("y", "dx", "dw", "db"), got, res[0]):
            np.testing.assert_array_equal(a, e, err_msg=f"dense {name}: {nt} threads != 1")


# ---------------------------------------------------------------------------------------------
# Pooling
# ---------------------------------------------------------------------------------------------

POOL_CASES = {
    # id: (N, H, W, C, ph, pw, sh, sw, padding)
    "2x2_valid_even": (2, 4, 4, 3, 2, 2, 2, 2, "valid"),
    "2x2_valid_odd": (2, 5, 5, 3, 2, 2, 2, 2, "valid"),
    "2x2_same_odd": (2, 5, 5, 3, 2, 2, 2, 2, "same"),
    "3x3_s2_same": (1, 7, 6, 1, 3, 3, 2, 2, "same"),
    "3x3_s1_same": (2, 6, 6, 4, 3, 3, 1, 1, "same"),
    "nonsquare_valid": (2, 9, 8, 5, 3, 2, 3, 2, "valid"),
    "stride_gt_pool": (2, 8, 8, 3, 2, 2, 3, 3, "valid"),
    "mnist": (2, 26, 26, 32, 2, 2, 2, 2, "valid"),
    "1x1": (2, 5, 7, 17, 1, 1, 1, 1, "valid"),
    "4x4_s1_same": (1, 5, 5, 3, 4, 4, 1, 1, "same"),
    "3x3_s2_same_C9": (3, 11, 13, 9, 3, 3, 2, 2, "same"),
    "nonsquare_same": (2, 7, 9, 6, 2, 3, 1, 2, "same"),
    "single": (1, 1, 1, 1, 1, 1, 1, 1, "valid"),
    "C16_same": (2, 6, 6, 16, 3, 3, 2, 2, "same"),
    "C48_valid": (1, 8, 8, 48, 2, 2, 2, 2, "valid"),
}


def pool_setup(case_id):
    n, h, w, c, ph, pw, sh, sw, padding = POOL_CASES[case_id]
    oh, ow, pads = ref.geometry(h, w, ph, pw, sh, sw, padding)
    return (n, h, w, c), (ph, pw), (sh, sw), pads, (oh, ow)


def distinct(r, shape, gap=0.05):
    """float32 values ``gap`` apart in random order: no ties."""
    return f32((r.permutation(int(np.prod(shape))) * gap - 1.0).reshape(shape))


def c_maxpool(x, pool, strides, pads, out):
    y = nans((x.shape[0],) + out + (x.shape[3],))
    am = nans(y.shape, np.int32)
    _C.maxpool2d_forward(x, y, am, pool, strides, pads)
    return y, am


@pytest.mark.parametrize("data", ["distinct", "ties", "negative"])
@pytest.mark.parametrize("case_id", list(POOL_CASES))
def test_maxpool2d(isa, case_id, data):
    shape, pool, strides, pads, out = pool_setup(case_id)
    r = rng(sum(map(ord, case_id)))
    if data == "distinct":
        x = distinct(r, shape)
    elif data == "ties":                       # many equal maxima: the first (row scan) wins
        x = f32(r.integers(0, 3, size=shape))
    else:                                      # all negative: -inf padding must never win
        x = f32(-1.0 - r.integers(0, 4, size=shape))
    y, am = c_maxpool(x, pool, strides, pads, out)
    ey, eam = ref.maxpool2d_forward(x, pool, strides, pads, out)
    np.testing.assert_array_equal(y, ey, err_msg=f"maxpool y {case_id}")
    np.testing.assert_array_equal(am, eam, err_msg=f"maxpool argmax {case_id}")
    assert am.dtype == np.int32
    dy = randn(r, y.shape)
    dx = nans(shape)
    _C.maxpool2d_backward(dy, am, dx)
    edx = ref.maxpool2d_backward(dy, eam, shape)
    adx = ref.maxpool2d_backward(np.abs(dy), eam, shape)
    assert_close(dx, edx, adx, rtol=1e-6, what=f"maxpool dx {case_id}")


@pytest.mark.parametrize("case_id", list(POOL_CASES))
def test_maxpool2d_backward_directional(isa, case_id):
    shape, pool, strides, pads, out = pool_setup(case_id)
    r = rng(3)
    x = distinct(r, shape, gap=0.05)            # perturbations below are <= 0.01 per cell
    dy = randn(r, (shape[0],) + out + (shape[3],))
    _, am = c_maxpool(x, pool, strides, pads, out)
    dx = nans(shape)
    _C.maxpool2d_backward(dy, am, dx)
    loss = lambda v: float((c_maxpool(v, pool, strides, pads, out)[0].astype(np.float64) * dy).sum())  # noqa: E731
    directional_check(loss, x, dx, what=f"maxpool {case_id}")


@pytest.mark.parametrize("case_id", list(POOL_CASES))
def test_avgpool2d(isa, case_id):
    shape, pool, strides, pads, out = pool_setup(case_id)
    r = rng(sum(map(ord, case_id)) + 1)
    x = randn(r, shape)
    y = nans((shape[0],) + out + (shape[3],))
    _C.avgpool2d_forward(x, y, pool, strides, pads)
    assert_close(y, ref.avgpool2d_forward(x, pool, strides, pads, out),
                 ref.avgpool2d_forward(np.abs(x), pool, strides, pads, out), rtol=1e-6,
                 what=f"avgpool y {case_id}")
    dy = randn(r, y.shape)
    dx = nans(shape)
    _C.avgpool2d_backward(dy, dx, pool, strides, pads)
    assert_close(dx, ref.avgpool2d_backward(dy, shape, pool, strides, pads),
                 ref.avgpool2d_backward(np.abs(dy), shape, pool, strides, pads), rtol=1e-6,
                 what=f"avgpool dx {case_id}")

    def loss(v):
        yy = np.empty(y.shape, np.float32)
        _C.avgpool2d_forward(v, yy, pool, strides, pads)
        return float((yy.astype(np.float64) * dy).sum())

    directional_check(loss, x, dx, what=f"avgpool {case_id}")


def test_avgpool2d_same_hand(isa):
    x = f32(np.arange(9.0).reshape(1, 3, 3, 1))
    y = nans((1, 2, 2, 1))
    _C.avgpool2d_forward(x, y, (2, 2), (2, 2), (0, 0))      # "same": pads (0, 1) per axis
    np.testing.assert_array_equal(y[0, :, :, 0], [[2.0, 3.5], [6.5, 8.0]])
    y = nans((1, 1, 1, 1))
    _C.avgpool2d_forward(x, y, (2, 2), (2, 2), (0, 0))      # "valid"
    np.testing.assert_array_equal(y[0, :, :, 0], [[2.0]])


# ---------------------------------------------------------------------------------------------
# Activations
# ---------------------------------------------------------------------------------------------

ACT_SHAPES = [(1,), (7,), (17,), (33,), (1000,), (3, 10), (64, 10), (5, 1), (2, 3, 4, 5), (2, 5, 5, 7),
              (40001,), (700, 33)]          # the last two span several parallel blocks


def act_input(r, kind, shape):
    x = r.standard_normal(shape) * 3
    if kind == "relu":                          # keep away from the kink for the FD check
        x = np.where(np.abs(x) < 0.1, 0.5, x)
    return f32(x)


@pytest.mark.parametrize("shape", ACT_SHAPES, ids=lambda s: "x".join(map(str, s)))
@pytest.mark.parametrize("kind", ref.ACTIVATIONS)
def test_activation(isa, kind, shape):
    r = rng(len(shape) * 100 + shape[-1])
    x, dy = act_input(r, kind, shape), randn(r, shape)
    y = nans(shape)
    _C.activation_forward(kind, x, y)
    ey = ref.activation_forward(kind, x)
    np.testing.assert_allclose(y, ey, rtol=1e-5, atol=1e-6, err_msg=f"{kind} forward {shape}")
    dx = nans(shape)
    _C.activation_backward(kind, y, dy, dx)
    np.testing.assert_allclose(dx, ref.activation_backward(kind, y, dy), rtol=1e-5, atol=1e-6,
                               err_msg=f"{kind} backward {shape}")

    def loss(v):
        yy = np.empty(shape, np.float32)
        _C.activation_forward(kind, v, yy)
        return float((yy.astype(np.float64) * dy).sum())

    directional_check(loss, x, dx, what=f"{kind} {shape}")


@pytest.mark.parametrize("kind", ref.ACTIVATIONS)
def test_activation_in_place(isa, kind):
    r = rng(4)
    x, dy = act_input(r, kind, (6, 11)), randn(r, (6, 11))
    y_sep = nans(x.shape)
    _C.activation_forward(kind, x, y_sep)
    buf = x.copy()
    _C.activation_forward(kind, buf, buf)       # y may be x
    np.testing.assert_array_equal(buf, y_sep)
    dx_sep = nans(x.shape)
    _C.activation_backward(kind, y_sep, dy, dx_sep)
    g = dy.copy()
    _C.activation_backward(kind, y_sep, g, g)   # dx may be dy
    # (the in-place path may associate the product differently: allow an ulp or two)
    np.testing.assert_allclose(g, dx_sep, rtol=1e-6, atol=1e-30)


def test_activation_extremes(isa):
    x = f32([[1000.0, 0.0, -1000.0, 88.0, -88.0, 100.0, -100.0, 20.0, -20.0]])
    for kind in ref.ACTIVATIONS:
        y = nans(x.shape)
        _C.activation_forward(kind, x, y)
        assert np.all(np.isfinite(y)), f"{kind}: {y}"
        np.testing.assert_allclose(y, ref.activation_forward(kind, x), rtol=1e-5, atol=1e-6,
                                   err_msg=kind)
    y = nans((2, 3))
    _C.activation_forward("softmax", f32([[1e4, 1e4, -1e4], [-3e38, 0.0, 3e38]]), y)
    np.testing.assert_allclose(y, [[0.5, 0.5, 0.0], [0.0, 0.0, 1.0]], atol=1e-7)


# ---------------------------------------------------------------------------------------------
# Losses
# ---------------------------------------------------------------------------------------------

LOSS_SHAPES = [(1, 1), (1, 10), (32, 10), (7, 3), (5, 17), (64, 33), (3, 1000)]


def labels_for(r, n, c):
    lab = r.integers(0, c, size=n).astype(np.int64)
    lab[0] = c - 1                               # the last class appears
    return lab


def close_scalar(a, b, rtol=1e-5, atol=1e-6):
    return abs(a - b) <= rtol * abs(b) + atol


def check_xent_kernel(name, x, targets, want_grad, grad_rtol=1e-5, grad_atol_scale=None):
    """``_C.<name>`` against ``reference.<name>`` on the predictions ``x`` (logits for the
    softmax kernels, which also write the probabilities): the loss and, with ``want_grad``,
    the gradient (``atol`` 1e-7 / n, or ``grad_atol_scale`` times its largest magnitude) and
    its directional derivative."""
    n, c = x.shape
    kernel, softmax = getattr(_C, name), name.startswith("softmax")
    probs = nans((n, c)) if softmax else None
    d = nans((n, c)) if want_grad else None
    loss = kernel(x, targets, probs, d) if softmax else kernel(x, targets, d)
    expected = getattr(ref, name)(x, targets)
    eloss, ed = expected[0], expected[-1]
    assert isinstance(loss, float)
    assert close_scalar(loss, eloss), (loss, eloss)
    if softmax:
        np.testing.assert_allclose(probs, expected[1], rtol=1e-5, atol=1e-7)
    if want_grad:
        atol = 1e-7 / n if grad_atol_scale is None else grad_atol_scale * np.abs(ed).max()
        np.testing.assert_allclose(d, ed, rtol=grad_rtol, atol=atol, err_msg=f"{name} d {n}x{c}")
        if softmax:
            fn = lambda v: kernel(v, targets, np.empty((n, c), np.float32), None)  # noqa: E731
        else:
            fn = lambda v: kernel(v, targets, None)  # noqa: E731
        directional_check(fn, x, d, what=f"{name} {n}x{c}")


@pytest.mark.parametrize("want_grad", [True, False], ids=["grad", "nograd"])
@pytest.mark.parametrize("n,c", LOSS_SHAPES, ids=lambda v: str(v))
def test_softmax_xent_sparse(isa, n, c, want_grad):
    r = rng(n * 31 + c)
    logits, labels = randn(r, (n, c)) * 3, labels_for(r, n, c)
    check_xent_kernel("softmax_xent_sparse", logits, labels, want_grad)


@pytest.mark.parametrize("want_grad", [True, False], ids=["grad", "nograd"])
@pytest.mark.parametrize("n,c", LOSS_SHAPES, ids=lambda v: str(v))
def test_softmax_xent(isa, n, c, want_grad):
    r = rng(n * 37 + c)
    logits = randn(r, (n, c)) * 3
    t = r.random((n, c)) + 0.01
    t = f32(t / t.sum(-1, keepdims=True))          # rows sum to 1
    check_xent_kernel("softmax_xent", logits, t, want_grad)


def test_softmax_xent_one_hot_equals_sparse(isa):
    r = rng(40)
    logits, labels = randn(r, (9, 6)), labels_for(r, 9, 6)
    p1, d1, p2, d2 = (nans((9, 6)) for _ in range(4))
    l1 = _C.softmax_xent_sparse(logits, labels, p1, d1)
    l2 = _C.softmax_xent(logits, f32(np.eye(6)[labels]), p2, d2)
    assert close_scalar(l1, l2, rtol=1e-6)
    np.testing.assert_allclose(d1, d2, rtol=1e-6, atol=1e-8)


def test_softmax_xent_large_logits(isa):
    logits = f32([[1000.0, 0.0, -1000.0], [50.0, 50.0, 50.0], [-200.0, 300.0, 0.0]])
    labels = np.array([0, 1, 0], np.int64)
    probs, d = nans((3, 3)), nans((3, 3))
    loss = _C.softmax_xent_sparse(logits, labels, probs, d)
    eloss, eprobs, ed = ref.softmax_xent_sparse(logits, labels)
    assert np.isfinite(loss) and close_scalar(loss, eloss), (loss, eloss)   # = (0 + log 3 + 500)/3
    np.testing.assert_allclose(probs, eprobs, atol=1e-7)
    np.testing.assert_allclose(d, ed, atol=1e-7)


@pytest.mark.parametrize("want_grad", [True, False], ids=["grad", "nograd"])
@pytest.mark.parametrize("n,c", LOSS_SHAPES, ids=lambda v: str(v))
def test_xent_sparse(isa, n, c, want_grad):
    r = rng(n * 41 + c)
    p = f32(r.uniform(0.1, 0.95, size=(n, c)))
    labels = labels_for(r, n, c)
    check_xent_kernel("xent_sparse", p, labels, want_grad)


def test_xent_sparse_clipping(isa):
    p = f32([[0.0, 1.0], [1.0, 0.0], [0.5, 0.5], [1e-9, 1.0]])
    labels = np.array([0, 0, 1, 0], np.int64)
    d = nans(p.shape)
    loss = _C.xent_sparse(p, labels, d)
    eloss, ed = ref.xent_sparse(p, labels)        # (-log 1e-7 - log(1-1e-7) + log 2 - log 1e-7) / 4
    assert close_scalar(loss, eloss, rtol=1e-5, atol=1e-6), (loss, eloss)
    assert np.all(np.isfinite(d))
    # clip_by_value passes no gradient outside [1e-7, 1 - 1e-7]: only row 2 has one
    np.testing.assert_allclose(d, ed, rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("want_grad", [True, False], ids=["grad", "nograd"])
@pytest.mark.parametrize("n,c", LOSS_SHAPES, ids=lambda v: str(v))
def test_xent(isa, n, c, want_grad):
    r = rng(n * 43 + c)
    p = f32(r.uniform(0.2, 2.0, size=(n, c)))      # rows NOT normalised: Keras renormalises
    t = f32(r.random((n, c)))
    check_xent_kernel("xent", p, t, want_grad, grad_rtol=1e-4, grad_atol_scale=1e-5)


def test_xent_normalised_and_clipped(isa):
    # Keras' docstring example (already normalised) and rows with zeros (clipped)
    t = f32(np.eye(3))
    p = f32([[.9, .05, .05], [.05, .89, .06], [.05, .01, .94]])
    loss = _C.xent(p, t, None)
    assert close_scalar(loss, np.mean([0.10536, 0.11653, 0.06188]), atol=2e-5)
    p = f32([[0.0, 2.0, 2.0], [1.0, 0.0, 0.0], [3.0, 1.0, 0.0]])
    t = f32([[1.0, 0.0, 0.0], [0.0, 0.5, 0.5], [0.25, 0.75, 0.0]])
    d = nans(p.shape)
    loss = _C.xent(p, t, d)
    eloss, ed = ref.xent(p, t)
    assert close_scalar(loss, eloss), (loss, eloss)
    np.testing.assert_allclose(d, ed, rtol=1e-5, atol=1e-6)


# ---------------------------------------------------------------------------------------------
# Optimizers
# ---------------------------------------------------------------------------------------------

OPT_SHAPES = [(1,), (7,), (33,), (1000,), (3, 3, 2, 5), (10, 13)]
STEPS = 5


def opt_data(shape, seed):
    r = rng(seed)
    return randn(r, shape), [randn(r, shape) for _ in range(STEPS)]


def assert_state(got, want, what):
    np.testing.assert_allclose(got, want, rtol=2e-5, atol=1e-6, err_msg=what)


@pytest.mark.parametrize("momentum,nesterov", [(0.0, False), (0.9, False), (0.9, True), (0.5, True)])
@pytest.mark.parametrize("shape", OPT_SHAPES, ids=lambda s: "x".join(map(str, s)))
def test_sgd_update(isa, shape, momentum, nesterov):
    w0, gs = opt_data(shape, 1)
    lr = 0.05
    w = w0.copy()
    vel = np.zeros(shape, np.float32) if momentum else None
    ew, ev = w0.astype(np.float64), (np.zeros(shape) if momentum else None)
    for i, g in enumerate(gs):
        _C.sgd_update(w, g, vel, lr, momentum, nesterov)
        ew, ev = ref.sgd_step(ew, g, ev, lr, momentum, nesterov)
        assert_state(w, ew, f"sgd w after step {i + 1}")
        if momentum:
            assert_state(vel, ev, f"sgd velocity after step {i + 1}")


@pytest.mark.parametrize("momentum", [0.0, 0.6])
@pytest.mark.parametrize("centered", [False, True], ids=["plain", "centered"])
@pytest.mark.parametrize("shape", OPT_SHAPES, ids=lambda s: "x".join(map(str, s)))
def test_rmsprop_update(isa, shape, centered, momentum):
    w0, gs = opt_data(shape, 2)
    lr, rho, eps = 0.01, 0.9, 1e-7
    w, v = w0.copy(), np.zeros(shape, np.float32)
    mom = np.zeros(shape, np.float32) if momentum else None
    mg = np.zeros(shape, np.float32) if centered else None
    ew, ev, emom, emg = w0.astype(np.float64), np.zeros(shape), (np.zeros(shape) if momentum else None), \
        (np.zeros(shape) if centered else None)
    for i, g in enumerate(gs):
        _C.rmsprop_update(w, g, v, lr, rho, eps, momentum, mom, centered, mg)
        ew, ev, emom, emg = ref.rmsprop_step(ew, g, ev, lr, rho, eps, momentum, emom, centered, emg)
        assert_state(w, ew, f"rmsprop w after step {i + 1}")
        assert_state(v, ev, f"rmsprop v after step {i + 1}")
        if momentum:
            assert_state(mom, emom, f"rmsprop mom after step {i + 1}")
        if centered:
            assert_state(mg, emg, f"rmsprop mg after step {i + 1}")


def test_rmsprop_keras_docstring(isa):
    w = f32([10.0])
    _C.rmsprop_update(w, f32([10.0]), np.zeros(1, np.float32), 0.1, 0.9, 1e-7, 0.0, None, False, None)
    assert abs(w[0] - 9.683772) < 1e-5


@pytest.mark.parametrize("hp", [(0.001, 0.9, 0.999, 1e-7), (0.01, 0.8, 0.95, 1e-3)], ids=["default", "custom"])
@pytest.mark.parametrize("shape", OPT_SHAPES, ids=lambda s: "x".join(map(str, s)))
def test_adam_update(isa, shape, hp):
    lr, b1, b2, eps = hp
    w0, gs = opt_data(shape, 3)
    w, m, v = w0.copy(), np.zeros(shape, np.float32), np.zeros(shape, np.float32)
    ew, em, ev = w0.astype(np.float64), np.zeros(shape), np.zeros(shape)
    for step, g in enumerate(gs, start=1):
        _C.adam_update(w, g, m, v, lr, b1, b2, eps, step)
        ew, em, ev = ref.adam_step(ew, g, em, ev, lr, b1, b2, eps, step)
        assert_state(w, ew, f"adam w after step {step}")
        assert_state(m, em, f"adam m after step {step}")
        assert_state(v, ev, f"adam v after step {step}")


def test_adam_late_step(isa):
    """A large step count (bias corrections ~1) must not overflow or lose the update."""
    r = rng(6)
    w0, g = randn(r, (20,)), randn(r, (20,))
    m, v = f32(r.standard_normal(20) * 0.1), f32(r.random(20))
    w = w0.copy()
    mm, vv = m.copy(), v.copy()
    _C.adam_update(w, g, mm, vv, 0.001, 0.9, 0.999, 1e-7, 100000)
    ew, em, ev = ref.adam_step(w0, g, m, v, 0.001, 0.9, 0.999, 1e-7, 100000)
    assert_state(w, ew, "adam w at step 1e5")


# ---------------------------------------------------------------------------------------------
# take_rows: the shuffled batch gather of fit
# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("n, row_shape", [(1, (7,)), (5, (3, 4)), (128, (784,)),
                                          (128, (28, 28, 1)), (33, (1,)), (300, (64,))])
def test_take_rows_equals_fancy_indexing(keep_num_threads, n, row_shape):
    """Batches above and below the size where the rows are split over threads, any rank,
    repeated indices and the first and last rows; every thread count gives x[indices]."""
    r = rng(n)
    x = randn(r, (500,) + row_shape)
    idx = r.integers(0, len(x), n)
    idx[0], idx[-1] = len(x) - 1, 0
    for threads in (1, 2, 3):
        _C.set_num_threads(threads)
        out = nans((n,) + row_shape)
        _C.take_rows(x, idx, out)
        np.testing.assert_array_equal(out, x[idx], err_msg=f"{threads} threads")


@pytest.mark.parametrize("bad", [-1, 500, 2**40, -2**63])
def test_take_rows_refuses_indices_out_of_range(bad):
    x = np.arange(500 * 3, dtype=np.float32).reshape(500, 3)
    out = np.zeros((4, 3), np.float32)
    idx = np.array([0, 1, bad, 2])
    with pytest.raises(ValueError, match=r"take_rows\(\): indices\[2\] .* out of range .* 500 rows"):
        _C.take_rows(x, idx, out)
    assert not out.any(), "nothing is copied when an index is bad"


# ---------------------------------------------------------------------------------------------
# Bad input: TypeError / ValueError naming the argument, never a crash
# ---------------------------------------------------------------------------------------------

def z(*shape, dtype=np.float32):
    return np.zeros(shape, dtype=dtype)


def readonly(a):
    a = a.copy()
    a.flags.writeable = False
    return a


def noncontig(shape):
    """A float32 view of ``shape`` that is not C-contiguous (every other column)."""
    big = np.zeros(shape[:-1] + (2 * shape[-1],), np.float32)
    v = big[..., ::2]
    assert v.shape == tuple(shape) and not v.flags.c_contiguous
    return v


def _gemm_bad_cases():
    a, b, c = z(4, 3), z(3, 5), z(4, 5)
    sq = z(4, 4)
    buf = z(40)
    yield "a_float64", lambda: _C.gemm(a.astype(np.float64), b, c), ("a",)
    yield "b_int32", lambda: _C.gemm(a, b.astype(np.int32), c), ("b",)
    yield "a_rank1", lambda: _C.gemm(z(12), b, c), ("a",)
    yield "a_rank3", lambda: _C.gemm(z(1, 4, 3), b, c), ("a",)
    yield "a_list", lambda: _C.gemm(a.tolist(), b, c), ("a",)
    yield "b_none", lambda: _C.gemm(a, None, c), ("b",)
    yield "inner_mismatch", lambda: _C.gemm(a, z(4, 5), c), ("a", "b")
    yield "inner_mismatch_trans", lambda: _C.gemm(a, b, c, trans_a=True), ("a", "b", "c")
    yield "c_shape", lambda: _C.gemm(a, b, z(4, 6)), ("c",)
    yield "c_float64", lambda: _C.gemm(a, b, c.astype(np.float64)), ("c",)
    yield "a_noncontig", lambda: _C.gemm(noncontig((4, 3)), b, c), ("a",)
    yield "c_noncontig", lambda: _C.gemm(a, b, noncontig((4, 5))), ("c",)
    yield "c_readonly", lambda: _C.gemm(a, b, readonly(c)), ("c",)
    yield "c_is_a", lambda: _C.gemm(sq, z(4, 4), sq), ("c", "a")
    yield "c_is_b", lambda: _C.gemm(z(4, 4), sq, sq), ("c", "b")
    yield "c_overlaps_a", lambda: _C.gemm(buf[:16].reshape(4, 4), z(4, 4), buf[8:24].reshape(4, 4)), ("c", "a")


def _dense_bad_cases():
    x, w, b, y = z(2, 3), z(3, 4), z(4), z(2, 4)
    dy, dx, dw, db = z(2, 4), z(2, 3), z(3, 4), z(4)
    yield "fwd_x_float64", lambda: _C.dense_forward(x.astype(np.float64), w, b, y), ("x",)
    yield "fwd_x_rank3", lambda: _C.dense_forward(z(2, 3, 1), w, b, y), ("x",)
    yield "fwd_w_mismatch", lambda: _C.dense_forward(x, z(5, 4), b, y), ("w", "x")
    yield "fwd_b_shape", lambda: _C.dense_forward(x, w, z(5), y), ("b",)
    yield "fwd_b_float64", lambda: _C.dense_forward(x, w, b.astype(np.float64), y), ("b",)
    yield "fwd_y_shape", lambda: _C.dense_forward(x, w, b, z(2, 5)), ("y",)
    yield "fwd_y_readonly", lambda: _C.dense_forward(x, w, b, readonly(y)), ("y",)
    yield "fwd_x_noncontig", lambda: _C.dense_forward(noncontig((2, 3)), w, b, y), ("x",)
    yield "fwd_y_is_x", lambda: (lambda xx: _C.dense_forward(xx, z(3, 3), None, xx))(z(2, 3)), ("y", "x")
    yield "fwd_N0", lambda: _C.dense_forward(z(0, 3), w, b, z(0, 4)), ("x", "y")
    yield "fwd_activation_unknown", lambda: _C.dense_forward(x, w, b, y, activation="elu"), ("activation",)
    yield "fwd_activation_sigmoid", lambda: _C.dense_forward(x, w, b, y, activation="sigmoid"), ("activation",)
    yield "bwd_dy_shape", lambda: _C.dense_backward(x, w, z(2, 5), dx, dw, db), ("dy",)
    yield "bwd_dx_shape", lambda: _C.dense_backward(x, w, dy, z(2, 4), dw, db), ("dx",)
    yield "bwd_dw_shape", lambda: _C.dense_backward(x, w, dy, dx, z(4, 3), db), ("dw",)
    yield "bwd_db_shape", lambda: _C.dense_backward(x, w, dy, dx, dw, z(3)), ("db",)
    yield "bwd_dw_none", lambda: _C.dense_backward(x, w, dy, dx, None, db), ("dw",)
    yield "bwd_dw_readonly", lambda: _C.dense_backward(x, w, dy, dx, readonly(dw), db), ("dw",)
    yield "bwd_dw_is_w", lambda: _C.dense_backward(x, dw, dy, dx, dw, db), ("dw", "w")
    yield "bwd_dx_is_x", lambda: _C.dense_backward(dx, w, dy, dx, dw, db), ("dx", "x")
    yield "bwd_dy_int", lambda: _C.dense_backward(x, w, dy.astype(np.int64), dx, dw, db), ("dy",)


def _conv_bad_cases():
    x, w, b, y = z(2, 5, 5, 3), z(3, 3, 3, 4), z(4), z(2, 3, 3, 4)
    s, p = (1, 1), (0, 0)
    dy, dx, dw, db = z(2, 3, 3, 4), z(2, 5, 5, 3), z(3, 3, 3, 4), z(4)
    yield "fwd_x_rank3", lambda: _C.conv2d_forward(z(5, 5, 3), w, b, y, s, p), ("x",)
    yield "fwd_x_float64", lambda: _C.conv2d_forward(x.astype(np.float64), w, b, y, s, p), ("x",)
    yield "fwd_x_int", lambda: _C.conv2d_forward(x.astype(np.int32), w, b, y, s, p), ("x",)
    yield "fwd_x_noncontig", lambda: _C.conv2d_forward(noncontig((2, 5, 5, 3)), w, b, y, s, p), ("x",)
    yield "fwd_w_rank", lambda: _C.conv2d_forward(x, z(3, 3, 3), b, y, s, p), ("w",)
    yield "fwd_w_channels", lambda: _C.conv2d_forward(x, z(3, 3, 2, 4), b, y, s, p), ("w", "x")
    yield "fwd_b_shape", lambda: _C.conv2d_forward(x, w, z(3), y, s, p), ("b",)
    yield "fwd_y_channels", lambda: _C.conv2d_forward(x, w, b, z(2, 3, 3, 5), s, p), ("y",)
    yield "fwd_y_batch", lambda: _C.conv2d_forward(x, w, b, z(1, 3, 3, 4), s, p), ("y", "x")
    yield "fwd_y_readonly", lambda: _C.conv2d_forward(x, w, b, readonly(y), s, p), ("y",)
    yield "fwd_y_is_x", lambda: (lambda xx: _C.conv2d_forward(xx, z(3, 3, 3, 3), None, xx, (1, 1), (1, 1)))(z(2, 5, 5, 3)), ("y", "x")
    yield "fwd_stride0", lambda: _C.conv2d_forward(x, w, b, y, (0, 1), p), ("strides",)
    yield "fwd_stride_neg", lambda: _C.conv2d_forward(x, w, b, y, (1, -2), p), ("strides",)
    yield "fwd_strides_len", lambda: _C.conv2d_forward(x, w, b, y, (1,), p), ("strides",)
    yield "fwd_pads_neg", lambda: _C.conv2d_forward(x, w, b, y, s, (-1, 0)), ("pads",)
    yield "fwd_pads_len", lambda: _C.conv2d_forward(x, w, b, y, s, (0, 0, 0)), ("pads",)
    yield "fwd_N0", lambda: _C.conv2d_forward(z(0, 5, 5, 3), w, b, z(0, 3, 3, 4), s, p), ("x", "y")
    yield "fwd_C0", lambda: _C.conv2d_forward(z(2, 5, 5, 0), z(3, 3, 0, 4), b, y, s, p), ("x", "w")
    yield "fwd_activation_unknown", lambda: _C.conv2d_forward(x, w, b, y, s, p, activation="gelu"), ("activation",)
    yield "fwd_activation_softmax", lambda: _C.conv2d_forward(x, w, b, y, s, p, activation="softmax"), ("activation",)
    yield "bwd_dy_channels", lambda: _C.conv2d_backward(x, w, z(2, 3, 3, 5), dx, dw, db, s, p), ("dy", "w")
    yield "bwd_dy_float64", lambda: _C.conv2d_backward(x, w, dy.astype(np.float64), dx, dw, db, s, p), ("dy",)
    yield "bwd_dx_shape", lambda: _C.conv2d_backward(x, w, dy, z(2, 5, 4, 3), dw, db, s, p), ("dx",)
    yield "bwd_dw_shape", lambda: _C.conv2d_backward(x, w, dy, dx, z(3, 3, 4, 3), db, s, p), ("dw",)
    yield "bwd_db_shape", lambda: _C.conv2d_backward(x, w, dy, dx, dw, z(5), s, p), ("db",)
    yield "bwd_dw_none", lambda: _C.conv2d_backward(x, w, dy, dx, None, db, s, p), ("dw",)
    yield "bwd_dw_readonly", lambda: _C.conv2d_backward(x, w, dy, dx, readonly(dw), db, s, p), ("dw",)
    yield "bwd_dx_noncontig", lambda: _C.conv2d_backward(x, w, dy, noncontig((2, 5, 5, 3)), dw, db, s, p), ("dx",)
    yield "bwd_dw_is_w", lambda: _C.conv2d_backward(x, dw, dy, dx, dw, db, s, p), ("dw", "w")
    yield "bwd_dx_is_x", lambda: _C.conv2d_backward(dx, w, dy, dx, dw, db, s, p), ("dx", "x")
    yield "bwd_stride0", lambda: _C.conv2d_backward(x, w, dy, dx, dw, db, (1, 0), p), ("strides",)
    yield "bwd_N0", lambda: _C.conv2d_backward(z(0, 5, 5, 3), w, z(0, 3, 3, 4), z(0, 5, 5, 3), dw, db, s, p), ("x", "dy", "dx")


def _pool_bad_cases():
    x, y, am = z(2, 4, 4, 3), z(2, 2, 2, 3), z(2, 2, 2, 3, dtype=np.int32)
    dy, dx = z(2, 2, 2, 3), z(2, 4, 4, 3)
    k, s, p = (2, 2), (2, 2), (0, 0)
    yield "max_pool0", lambda: _C.maxpool2d_forward(x, y, am, (0, 2), s, p), ("pool",)
    yield "max_pool_neg", lambda: _C.maxpool2d_forward(x, y, am, (2, -1), s, p), ("pool",)
    yield "max_stride0", lambda: _C.maxpool2d_forward(x, y, am, k, (2, 0), p), ("strides",)
    yield "max_stride_neg", lambda: _C.maxpool2d_forward(x, y, am, k, (-2, 2), p), ("strides",)
    yield "max_pads_neg", lambda: _C.maxpool2d_forward(x, y, am, k, s, (0, -1)), ("pads",)
    yield "max_x_float64", lambda: _C.maxpool2d_forward(x.astype(np.float64), y, am, k, s, p), ("x",)
    yield "max_x_rank3", lambda: _C.maxpool2d_forward(z(4, 4, 3), y, am, k, s, p), ("x",)
    yield "max_x_noncontig", lambda: _C.maxpool2d_forward(noncontig((2, 4, 4, 3)), y, am, k, s, p), ("x",)
    yield "max_y_channels", lambda: _C.maxpool2d_forward(x, z(2, 2, 2, 4), am, k, s, p), ("y",)
    yield "max_y_readonly", lambda: _C.maxpool2d_forward(x, readonly(y), am, k, s, p), ("y",)
    yield "max_argmax_int64", lambda: _C.maxpool2d_forward(x, y, am.astype(np.int64), k, s, p), ("argmax",)
    yield "max_argmax_float", lambda: _C.maxpool2d_forward(x, y, z(2, 2, 2, 3), k, s, p), ("argmax",)
    yield "max_argmax_shape", lambda: _C.maxpool2d_forward(x, y, z(2, 2, 1, 3, dtype=np.int32), k, s, p), ("argmax",)
    yield "max_argmax_readonly", lambda: _C.maxpool2d_forward(x, y, readonly(am), k, s, p), ("argmax",)
    yield "max_y_is_x", lambda: (lambda xx: _C.maxpool2d_forward(xx, xx, z(2, 4, 4, 3, dtype=np.int32), (1, 1), (1, 1), (0, 0)))(z(2, 4, 4, 3)), ("y", "x")
    yield "max_N0", lambda: _C.maxpool2d_forward(z(0, 4, 4, 3), z(0, 2, 2, 3), z(0, 2, 2, 3, dtype=np.int32), k, s, p), ("x", "y")
    yield "max_C0", lambda: _C.maxpool2d_forward(z(2, 4, 4, 0), z(2, 2, 2, 0), z(2, 2, 2, 0, dtype=np.int32), k, s, p), ("x", "y")
    yield "maxb_argmax_int64", lambda: _C.maxpool2d_backward(dy, am.astype(np.int64), dx), ("argmax",)
    yield "maxb_argmax_shape", lambda: _C.maxpool2d_backward(dy, z(2, 2, 1, 3, dtype=np.int32), dx), ("argmax", "dy")
    yield "maxb_dx_channels", lambda: _C.maxpool2d_backward(dy, am, z(2, 4, 4, 2)), ("dx", "dy", "argmax")
    yield "maxb_dx_batch", lambda: _C.maxpool2d_backward(dy, am, z(3, 4, 4, 3)), ("dx", "dy", "argmax")
    yield "maxb_dx_readonly", lambda: _C.maxpool2d_backward(dy, am, readonly(dx)), ("dx",)
    yield "maxb_dy_float64", lambda: _C.maxpool2d_backward(dy.astype(np.float64), am, dx), ("dy",)
    yield "avg_pool0", lambda: _C.avgpool2d_forward(x, y, (2, 0), s, p), ("pool",)
    yield "avg_stride_neg", lambda: _C.avgpool2d_forward(x, y, k, (2, -2), p), ("strides",)
    yield "avg_pads_neg", lambda: _C.avgpool2d_forward(x, y, k, s, (-1, 0)), ("pads",)
    yield "avg_y_channels", lambda: _C.avgpool2d_forward(x, z(2, 2, 2, 5), k, s, p), ("y",)
    yield "avg_y_readonly", lambda: _C.avgpool2d_forward(x, readonly(y), k, s, p), ("y",)
    yield "avg_x_int", lambda: _C.avgpool2d_forward(x.astype(np.int32), y, k, s, p), ("x",)
    yield "avg_N0", lambda: _C.avgpool2d_forward(z(0, 4, 4, 3), z(0, 2, 2, 3), k, s, p), ("x", "y")
    yield "avgb_pool0", lambda: _C.avgpool2d_backward(dy, dx, (0, 0), s, p), ("pool",)
    yield "avgb_stride0", lambda: _C.avgpool2d_backward(dy, dx, k, (0, 2), p), ("strides",)
    yield "avgb_dx_channels", lambda: _C.avgpool2d_backward(dy, z(2, 4, 4, 4), k, s, p), ("dx", "dy")
    yield "avgb_dx_readonly", lambda: _C.avgpool2d_backward(dy, readonly(dx), k, s, p), ("dx",)
    yield "avgb_dy_noncontig", lambda: _C.avgpool2d_backward(noncontig((2, 2, 2, 3)), dx, k, s, p), ("dy",)


def _activation_bad_cases():
    x, y = z(3, 4), z(3, 4)
    buf = z(13)
    yield "kind_unknown", lambda: _C.activation_forward("gelu_fast", x, y), ("kind",)
    yield "kind_not_str", lambda: _C.activation_forward(5, x, y), ("kind",)
    yield "bkind_unknown", lambda: _C.activation_backward("swish_beta", y, x, z(3, 4)), ("kind",)
    yield "y_shape", lambda: _C.activation_forward("relu", x, z(4, 3)), ("y",)
    yield "y_size", lambda: _C.activation_forward("relu", x, z(3, 5)), ("y",)
    yield "x_float64", lambda: _C.activation_forward("tanh", x.astype(np.float64), y), ("x",)
    yield "y_readonly", lambda: _C.activation_forward("sigmoid", x, readonly(y)), ("y",)
    yield "x_noncontig", lambda: _C.activation_forward("relu", noncontig((3, 4)), y), ("x",)
    yield "y_partial_overlap", lambda: _C.activation_forward("relu", buf[:12].reshape(3, 4), buf[1:13].reshape(3, 4)), ("y", "x")
    yield "b_dy_shape", lambda: _C.activation_backward("relu", y, z(3, 5), z(3, 4)), ("dy", "y")
    yield "b_dx_shape", lambda: _C.activation_backward("relu", y, x, z(3, 5)), ("dx",)
    yield "b_dx_readonly", lambda: _C.activation_backward("tanh", y, x, readonly(y)), ("dx",)
    yield "b_y_int", lambda: _C.activation_backward("tanh", y.astype(np.int32), x, z(3, 4)), ("y",)
    yield "b_dx_partial_overlap", lambda: _C.activation_backward("softmax", y, buf[:12].reshape(3, 4), buf[1:13].reshape(3, 4)), ("dx", "dy")


def _loss_bad_cases():
    lg, lab, pr, d = z(4, 3), np.array([0, 1, 2, 1], np.int64), z(4, 3), z(4, 3)
    t = z(4, 3)
    yield "sxs_label_too_big", lambda: _C.softmax_xent_sparse(lg, np.array([0, 1, 3, 1], np.int64), pr, d), ("labels",)
    yield "sxs_label_negative", lambda: _C.softmax_xent_sparse(lg, np.array([0, -1, 2, 1], np.int64), pr, d), ("labels",)
    yield "sxs_labels_int32", lambda: _C.softmax_xent_sparse(lg, lab.astype(np.int32), pr, d), ("labels",)
    yield "sxs_labels_float", lambda: _C.softmax_xent_sparse(lg, lab.astype(np.float32), pr, d), ("labels",)
    yield "sxs_labels_len", lambda: _C.softmax_xent_sparse(lg, np.array([0, 1, 2], np.int64), pr, d), ("labels",)
    yield "sxs_labels_rank2", lambda: _C.softmax_xent_sparse(lg, lab.reshape(2, 2), pr, d), ("labels",)
    yield "sxs_logits_rank1", lambda: _C.softmax_xent_sparse(z(12), lab, pr, d), ("logits",)
    yield "sxs_logits_float64", lambda: _C.softmax_xent_sparse(lg.astype(np.float64), lab, pr, d), ("logits",)
    yield "sxs_probs_shape", lambda: _C.softmax_xent_sparse(lg, lab, z(4, 4), d), ("probs",)
    yield "sxs_probs_none", lambda: _C.softmax_xent_sparse(lg, lab, None, d), ("probs",)
    yield "sxs_dlogits_shape", lambda: _C.softmax_xent_sparse(lg, lab, pr, z(3, 3)), ("dlogits",)
    yield "sxs_dlogits_readonly", lambda: _C.softmax_xent_sparse(lg, lab, pr, readonly(d)), ("dlogits",)
    yield "sxs_probs_readonly", lambda: _C.softmax_xent_sparse(lg, lab, readonly(pr), d), ("probs",)
    yield "sxs_N0", lambda: _C.softmax_xent_sparse(z(0, 3), np.zeros(0, np.int64), z(0, 3), z(0, 3)), ("logits", "labels")
    yield "sxs_C0", lambda: _C.softmax_xent_sparse(z(4, 0), lab * 0, z(4, 0), z(4, 0)), ("logits", "labels")
    yield "sx_targets_shape", lambda: _C.softmax_xent(lg, z(4, 4), pr, d), ("targets",)
    yield "sx_targets_float64", lambda: _C.softmax_xent(lg, t.astype(np.float64), pr, d), ("targets",)
    yield "sx_logits_noncontig", lambda: _C.softmax_xent(noncontig((4, 3)), t, pr, d), ("logits",)
    yield "sx_N0", lambda: _C.softmax_xent(z(0, 3), z(0, 3), z(0, 3), z(0, 3)), ("logits", "targets")
    yield "xs_label_too_big", lambda: _C.xent_sparse(pr, np.array([3, 0, 0, 0], np.int64), d), ("labels",)
    yield "xs_label_negative", lambda: _C.xent_sparse(pr, np.array([0, 0, 0, -2], np.int64), d), ("labels",)
    yield "xs_dprobs_shape", lambda: _C.xent_sparse(pr, lab, z(4, 4)), ("dprobs",)
    yield "xs_dprobs_readonly", lambda: _C.xent_sparse(pr, lab, readonly(d)), ("dprobs",)
    yield "xs_dprobs_is_probs", lambda: _C.xent_sparse(pr, lab, pr), ("dprobs", "probs")
    yield "xs_probs_float64", lambda: _C.xent_sparse(pr.astype(np.float64), lab, d), ("probs",)
    yield "xs_N0", lambda: _C.xent_sparse(z(0, 3), np.zeros(0, np.int64), z(0, 3)), ("probs", "labels")
    yield "x_targets_shape", lambda: _C.xent(pr, z(4, 2), d), ("targets",)
    yield "x_dprobs_shape", lambda: _C.xent(pr, t, z(5, 3)), ("dprobs",)
    yield "x_probs_rank3", lambda: _C.xent(z(4, 3, 1), t, d), ("probs",)
    yield "x_N0", lambda: _C.xent(z(0, 3), z(0, 3), z(0, 3)), ("probs", "targets")


def _optimizer_bad_cases():
    w, g, s1, s2, s3 = z(5), z(5), z(5), z(5), z(5)
    yield "sgd_g_shape", lambda: _C.sgd_update(w, z(6), s1, 0.1, 0.9, False), ("g",)
    yield "sgd_g_float64", lambda: _C.sgd_update(w, g.astype(np.float64), s1, 0.1, 0.9, False), ("g",)
    yield "sgd_w_readonly", lambda: _C.sgd_update(readonly(w), g, s1, 0.1, 0.9, False), ("w",)
    yield "sgd_w_float64", lambda: _C.sgd_update(w.astype(np.float64), g, s1, 0.1, 0.9, False), ("w",)
    yield "sgd_velocity_none", lambda: _C.sgd_update(w, g, None, 0.1, 0.9, False), ("velocity",)
    yield "sgd_velocity_shape", lambda: _C.sgd_update(w, g, z(4), 0.1, 0.9, False), ("velocity",)
    yield "sgd_velocity_readonly", lambda: _C.sgd_update(w, g, readonly(s1), 0.1, 0.9, False), ("velocity",)
    yield "sgd_velocity_is_w", lambda: _C.sgd_update(w, g, w, 0.1, 0.9, False), ("velocity", "w")
    yield "sgd_w_noncontig", lambda: _C.sgd_update(noncontig((5,)), g, s1, 0.1, 0.9, False), ("w",)
    yield "rms_v_shape", lambda: _C.rmsprop_update(w, g, z(3), 0.01, 0.9, 1e-7, 0.0, None, False, None), ("v",)
    yield "rms_v_none", lambda: _C.rmsprop_update(w, g, None, 0.01, 0.9, 1e-7, 0.0, None, False, None), ("v",)
    yield "rms_mom_none", lambda: _C.rmsprop_update(w, g, s1, 0.01, 0.9, 1e-7, 0.5, None, False, None), ("mom",)
    yield "rms_mg_none", lambda: _C.rmsprop_update(w, g, s1, 0.01, 0.9, 1e-7, 0.0, None, True, None), ("mg",)
    yield "rms_mg_shape", lambda: _C.rmsprop_update(w, g, s1, 0.01, 0.9, 1e-7, 0.0, None, True, z(2)), ("mg",)
    yield "rms_mom_readonly", lambda: _C.rmsprop_update(w, g, s1, 0.01, 0.9, 1e-7, 0.5, readonly(s2), False, None), ("mom",)
    yield "rms_v_is_mg", lambda: _C.rmsprop_update(w, g, s1, 0.01, 0.9, 1e-7, 0.0, None, True, s1), ("mg", "v")
    yield "rms_g_int", lambda: _C.rmsprop_update(w, g.astype(np.int32), s1, 0.01, 0.9, 1e-7, 0.0, None, False, None), ("g",)
    yield "adam_m_shape", lambda: _C.adam_update(w, g, z(4), s2, 0.001, 0.9, 0.999, 1e-7, 1), ("m",)
    yield "adam_v_float64", lambda: _C.adam_update(w, g, s1, s2.astype(np.float64), 0.001, 0.9, 0.999, 1e-7, 1), ("v",)
    yield "adam_m_none", lambda: _C.adam_update(w, g, None, s2, 0.001, 0.9, 0.999, 1e-7, 1), ("m",)
    yield "adam_v_readonly", lambda: _C.adam_update(w, g, s1, readonly(s2), 0.001, 0.9, 0.999, 1e-7, 1), ("v",)
    yield "adam_m_is_v", lambda: _C.adam_update(w, g, s1, s1, 0.001, 0.9, 0.999, 1e-7, 1), ("m", "v")
    yield "adam_step0", lambda: _C.adam_update(w, g, s1, s2, 0.001, 0.9, 0.999, 1e-7, 0), ("step",)
    yield "adam_step_neg", lambda: _C.adam_update(w, g, s1, s2, 0.001, 0.9, 0.999, 1e-7, -3), ("step",)
    yield "adam_w_noncontig", lambda: _C.adam_update(noncontig((5,)), g, s1, s2, 0.001, 0.9, 0.999, 1e-7, 1), ("w",)
    del s3


BAD_CASES = [c for gen in (_gemm_bad_cases, _dense_bad_cases, _conv_bad_cases, _pool_bad_cases,
                           _activation_bad_cases, _loss_bad_cases, _optimizer_bad_cases)
             for c in gen()]


@pytest.mark.parametrize("call,names", [(c[1], c[2]) for c in BAD_CASES], ids=[c[0] for c in BAD_CASES])
def test_bad_input_raises_naming_argument(call, names):
    assert_raises_naming(call, *names)



@pytest.mark.parametrize("bad", [16, 1 << 30, -1, -(1 << 31)])
def test_maxpool2d_backward_argmax_out_of_range_is_safe(bad):
    """argmax values outside the image (H*W = 16 here) must never be written through: the
    kernel either rejects them (naming argmax) or ignores them; it never writes elsewhere."""
    dy = np.ones((2, 2, 2, 3), np.float32)
    am = np.zeros((2, 2, 2, 3), np.int32)
    am[1, 1, 0, 2] = bad
    guard = np.full((2 * 4 * 4 * 3 + 64,), 7.0, np.float32)
    dx = guard[32:32 + 96].reshape(2, 4, 4, 3)
    try:
        _C.maxpool2d_backward(dy, am, dx)
    except (TypeError, ValueError) as e:
        assert "argmax" in str(e)
        return
    assert np.all(guard[:32] == 7.0) and np.all(guard[32 + 96:] == 7.0), "wrote outside dx"
    expect = np.zeros((2, 16, 3), np.float32)
    expect[:, 0, :] = 4.0
    expect[1, 0, 2] = 3.0                      # the out-of-range entry was dropped
    np.testing.assert_array_equal(dx.reshape(2, 16, 3), expect)


# ---------------------------------------------------------------------------------------------
# Subnormal floats: flushed to zero inside the kernels (as TensorFlow's CPU kernels do)
# ---------------------------------------------------------------------------------------------

SUBNORMAL = np.float32(1e-40)


def test_kernels_read_subnormals_as_zero(isa):
    """A subnormal input counts as 0 (DAZ): x * 1e30 would be 1e-10 in IEEE arithmetic."""
    a = f32(np.full((3, 5), SUBNORMAL))
    b = f32(np.full((5, 4), 1e30))
    c = nans((3, 4))
    _C.gemm(a, b, c)
    np.testing.assert_array_equal(c, np.zeros((3, 4), np.float32))


def test_kernels_flush_subnormal_results_to_zero(isa):
    """A result below the smallest normal float is 0 (FTZ), not a subnormal: an RMSprop
    velocity decaying with a zero gradient ends at 0 without passing through the subnormals
    (which take a slow path on x86)."""
    v = f32(np.full(40000, 1.2e-38))           # normal; 0.9 x that is subnormal
    w = f32(np.ones(40000))
    _C.rmsprop_update(w, f32(np.zeros(40000)), v, 0.001, 0.9, 1e-7)
    np.testing.assert_array_equal(v, np.zeros(40000, np.float32))
    np.testing.assert_array_equal(w, np.ones(40000, np.float32))


def test_flushing_subnormals_is_the_same_on_every_thread(isa, keep_num_threads):
    """The pool's threads flush like the calling thread: a product whose inputs are partly
    subnormal is bit-identical on 1, 2 and 3 threads (a worker keeping IEEE subnormals would
    compute some tiles differently)."""
    r = rng(77)
    a = randn(r, (300, 200))
    a[::3] *= np.float32(1e-39)                 # every third row subnormal
    b = randn(r, (200, 130)) * np.float32(1e-3)
    res = _by_threads(lambda: (lambda c: (_C.gemm(a, b, c), c)[1])(nans((300, 130))))
    for nt, c in zip((2, 3), res[1:]):
        np.testing.assert_array_equal(c, res[0], err_msg=f"{nt} threads != 1 thread")
    assert not np.any((res[0] != 0) & (np.abs(res[0]) < np.finfo(np.float32).tiny))


def test_python_keeps_ieee_subnormals_after_a_kernel_call():
    """Only the kernels flush: the caller's floating-point mode is restored on return."""
    c = nans((4, 4))
    _C.gemm(f32(np.ones((4, 4))), f32(np.ones((4, 4))), c)
    assert np.float32(1e-38) * np.float32(0.01) != 0
