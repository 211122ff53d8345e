"""The affine warp's fast paths give the same bits everywhere: on every SIMD path, for any
thread count, and RandomRotation's short matrix formula equals ``affine_matrix``'s."""
from __future__ import annotations

import numpy as np
import pytest

import pycnn
from pycnn import _C
from pycnn.layers.preprocessing import _rotation_matrices, affine_matrix

from test_augmentation import reference_warp, random_transforms

FILLS = ("reflect", "wrap", "nearest", "constant")
ROW_PATH_FILLS = ("scipy_wrap", "scipy_constant")      # the row path's per-pixel fill


def _case(seed, c, other_size=False, wild=False):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((9, 17, 12, c)).astype(np.float32)
    x[0, 3, 4, 0] = np.nan
    t = random_transforms(9, 17, 12, rng, wild=wild)
    size = (8, 21) if other_size else (17, 12)
    return x, np.ascontiguousarray(t, np.float32), size


def _warp(x, t, size, interp, fill):
    y = np.empty((x.shape[0],) + size + (x.shape[3],), np.float32)
    _C.affine_warp(x, t, y, interpolation=interp, fill_mode=fill, fill_value=0.75)
    return y


@pytest.mark.parametrize("fill", FILLS + ROW_PATH_FILLS)
@pytest.mark.parametrize("interp", ["bilinear", "nearest"])
@pytest.mark.parametrize("c", [1, 3])
def test_warp_on_every_path_matches_the_reference_and_generic_bits(isa, fill, interp, c):
    for seed, other, wild in [(1, False, False), (2, True, False), (3, False, True)]:
        x, t, size = _case(seed, c, other, wild)
        y = _warp(x, t, size, interp, fill)
        if fill in FILLS:        # the SciPy modes' reference cases: test_augmentation.py
            ref = reference_warp(x, t, interp, fill, 0.75, size=size)
            np.testing.assert_allclose(y, ref, atol=2e-6, rtol=0)
        before = _C.isa()
        _C.set_isa("generic")
        try:
            g = _warp(x, t, size, interp, fill)
        finally:
            _C.set_isa(before)
        np.testing.assert_array_equal(y.view(np.uint32), g.view(np.uint32))


@pytest.mark.parametrize("fill", FILLS)
def test_warp_bits_do_not_depend_on_the_thread_count(keep_num_threads, fill):
    rng = np.random.default_rng(5)
    x = rng.random((130, 28, 28, 1)).astype(np.float32)
    t = np.ascontiguousarray(random_transforms(130, 28, 28, rng), np.float32)
    out = []
    for n in (1, 2, 3):
        pycnn.set_num_threads(n)
        out.append(_warp(x, t, (28, 28), "bilinear", fill))
    for y in out[1:]:
        np.testing.assert_array_equal(y.view(np.uint32), out[0].view(np.uint32))


def test_rotation_matrices_equal_affine_matrix_bit_for_bit():
    rng = np.random.default_rng(0)
    ang = np.concatenate([rng.uniform(-400, 400, 4000),
                          [0.0, -0.0, 90, -90, 180, -180, 360, 45, 1e-30, -1e-30]])
    ang = ang.astype(np.float32)
    n = len(ang)
    z, o = np.zeros(n, np.float32), np.ones(n, np.float32)
    for h, w in [(28, 28), (13, 10), (1, 1), (64, 31)]:
        want = affine_matrix(ang, z, z, o, z, z, h, w)
        got = _rotation_matrices(ang, h, w)
        assert got.dtype == np.float32 and got.shape == (n, 6)
        np.testing.assert_array_equal(got.view(np.uint32), want.view(np.uint32))
