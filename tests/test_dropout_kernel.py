"""Dropout's C kernel (csrc/dropout.c): the mask from a counter-based hash of (key, element),
checked against a NumPy re-implementation of that hash, on every SIMD path and thread count;
its rate, scaling, NaN rule and gradient; and the layer that uses it."""
from __future__ import annotations

import numpy as np
import pytest

import pycnn
from pycnn import _C, layers
from pycnn.layers.context import Context

M32 = np.uint64(0xFFFFFFFF)


def _mix32(v: np.ndarray) -> np.ndarray:
    v = v.astype(np.uint64)
    v ^= v >> np.uint64(16)
    v = (v * np.uint64(0x7FEB352D)) & M32
    v ^= v >> np.uint64(15)
    v = (v * np.uint64(0x846CA68B)) & M32
    v ^= v >> np.uint64(16)
    return v


def reference_bits(key: int, idx: np.ndarray) -> np.ndarray:
    """The hash of pycnn.h ("dropout"), in uint64 arithmetic masked to 32 bits."""
    idx = idx.astype(np.uint64)
    k0, k1 = np.uint64(key & 0xFFFFFFFF), np.uint64(key >> 32)
    hi = _mix32((idx >> np.uint64(32)) ^ k1)
    return _mix32(_mix32((idx & M32) ^ k0) ^ hi)


def reference_mask(key: int, n: int, rate: float) -> np.ndarray:
    u = (reference_bits(key, np.arange(n)) >> np.uint64(8)).astype(np.float64) * 2.0 ** -24
    keep = u >= np.float64(np.float32(rate))
    return np.where(keep, np.float32(1.0 / (1.0 - rate)), np.float32(0.0)).astype(np.float32)


def run(x, rate, key):
    y, mask = np.empty_like(x), np.empty_like(x)
    _C.dropout_forward(x, y, mask, rate, key)
    return y, mask


def test_bits_match_the_reference_hash_for_large_indices():
    key = 0x0123456789ABCDEF
    idx = np.array([0, 1, 2, 16383, 16384, 2 ** 32 - 1, 2 ** 32, 2 ** 40 + 7], np.uint64)
    got = [_C.dropout_bits(key, int(i)) for i in idx]
    np.testing.assert_array_equal(got, reference_bits(key, idx))


@pytest.mark.parametrize("n", [1, 17, 16384, 16385, 40000])
def test_mask_and_output_match_the_reference_on_every_path(isa, n):
    rng = np.random.default_rng(n)
    x = rng.standard_normal(n).astype(np.float32)
    key = int(rng.integers(0, 2 ** 63)) * 2 + 1
    y, mask = run(x, 0.3, key)
    ref = reference_mask(key, n, 0.3)
    np.testing.assert_array_equal(mask, ref)
    np.testing.assert_array_equal(y, x * ref)


def test_same_mask_for_any_thread_count(keep_num_threads):
    x = np.random.default_rng(0).standard_normal((64, 1000)).astype(np.float32)
    pycnn.set_num_threads(1)
    y1, m1 = run(x, 0.2, 99)
    pycnn.set_num_threads(2)
    y2, m2 = run(x, 0.2, 99)
    np.testing.assert_array_equal(m1, m2)
    np.testing.assert_array_equal(y1, y2)


@pytest.mark.parametrize("rate", [0.0, 0.1, 0.5, 0.9])
def test_fraction_kept_is_one_minus_rate(rate):
    n = 1_000_000
    _, mask = run(np.ones(n, np.float32), rate, 12345)
    kept = np.count_nonzero(mask) / n
    sigma = np.sqrt(rate * (1 - rate) / n)
    assert abs(kept - (1 - rate)) <= 5 * sigma + 1e-12
    assert set(np.unique(mask)) <= {0.0, np.float32(1.0 / (1.0 - rate))}


def test_keys_give_independent_looking_masks():
    n = 200_000
    _, a = run(np.ones(n, np.float32), 0.5, 1)
    _, b = run(np.ones(n, np.float32), 0.5, 2)
    ka, kb = a > 0, b > 0
    # agreement of two independent fair masks: 1/2 +- 5 sigma
    assert abs(np.mean(ka == kb) - 0.5) < 5 * 0.5 / np.sqrt(n)
    # neighbours are not correlated within a mask
    assert abs(np.mean(ka[1:] == ka[:-1]) - 0.5) < 5 * 0.5 / np.sqrt(n)


def test_dropped_nan_and_inf_stay_nan_like_x_times_mask():
    x = np.array([np.nan, np.inf, -np.inf, 1.0] * 2000, np.float32)
    y, mask = run(x, 0.5, 7)
    with np.errstate(invalid="ignore"):
        np.testing.assert_array_equal(y, x * mask)
    assert np.isnan(y[(mask == 0) & ~np.isfinite(x)]).all()


def test_backward_is_the_mask_times_dy_and_matches_finite_differences(isa):
    rng = np.random.default_rng(3)
    x = rng.standard_normal(3000).astype(np.float32)
    g = rng.standard_normal(3000).astype(np.float32)
    y, mask = run(x, 0.25, 5)
    dx = np.empty_like(x)
    _C.dropout_backward(g, mask, dx)
    np.testing.assert_array_equal(dx, g * mask)
    # d/dx_i of sum(g * y) by central differences in float64 (the map is linear in x)
    i = np.arange(0, 3000, 97)
    h = 1e-2
    xp, xm = x.astype(np.float64), x.astype(np.float64)
    xp[i] += h
    xm[i] -= h
    fd = (g * (xp * mask) - g * (xm * mask))[i] / (2 * h)
    np.testing.assert_allclose(dx[i], fd, rtol=1e-5, atol=1e-6)


def test_bad_arguments_name_the_argument():
    x = np.ones(10, np.float32)
    with pytest.raises(ValueError, match="rate"):
        _C.dropout_forward(x, np.empty_like(x), np.empty_like(x), 1.0, 1)
    with pytest.raises(ValueError, match="rate"):
        _C.dropout_forward(x, np.empty_like(x), np.empty_like(x), -0.1, 1)
    with pytest.raises(ValueError, match="mask"):
        _C.dropout_forward(x, np.empty_like(x), np.empty(9, np.float32), 0.5, 1)
    with pytest.raises(ValueError, match="mask"):
        _C.dropout_backward(x, np.empty(9, np.float32), np.empty_like(x))
    with pytest.raises(ValueError):
        _C.dropout_forward(x, x, np.empty_like(x), 0.5, 1)


def test_layer_seeded_masks_repeat_and_calls_differ():
    x = np.ones((32, 100), np.float32)
    a, b = layers.Dropout(0.4, seed=11), layers.Dropout(0.4, seed=11)
    ya1 = a.forward(Context(), x, True).copy()
    yb1 = b.forward(Context(), x, True).copy()
    np.testing.assert_array_equal(ya1, yb1)
    ya2 = a.forward(Context(), x, True)
    assert not np.array_equal(ya1, ya2)


def test_layer_identity_at_inference_and_rate_zero():
    x = np.random.default_rng(0).standard_normal((4, 5)).astype(np.float32)
    assert layers.Dropout(0.5).forward(Context(), x, False) is x
    assert layers.Dropout(0.0).forward(Context(), x, True) is x


def test_layer_gradient_is_the_saved_mask():
    x = np.random.default_rng(1).standard_normal((8, 50)).astype(np.float32)
    d, ctx = layers.Dropout(0.3, seed=2), Context()
    y = d.forward(ctx, x, True)
    dy = np.random.default_rng(2).standard_normal(x.shape).astype(np.float32)
    np.testing.assert_array_equal(y, x * ctx.mask)
    np.testing.assert_array_equal(d.backward(ctx, dy, True), dy * ctx.mask)
    assert d.backward(ctx, dy, False) is None
