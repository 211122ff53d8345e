"""Image augmentation and preprocessing layers and their C kernels (csrc/augment.c).

The warp kernel is checked against a float64 NumPy model of Keras 3's ``affine_transform``
(JAX's ``map_coordinates``: per-corner index fixing, round half away from zero), the layers
against Keras 3.15's own outputs for fixed images and fixed drawn parameters
(``tests/data/keras_augment_reference.npz``, written by ``tools/keras_augment_reference.py``),
and every gradient against finite differences.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import pycnn
from pycnn import _C, backend, layers
from pycnn.layers.context import Context
from pycnn.layers.preprocessing import affine_matrix

REF = np.load(Path(__file__).parent / "data" / "keras_augment_reference.npz")
FILLS = ("reflect", "wrap", "constant", "nearest")
SCIPY_FILLS = ("scipy_wrap", "scipy_constant")   # tf.keras 2's ImageDataGenerator
INTERPS = ("bilinear", "nearest")


@pytest.fixture
def keep_threads():
    n = backend.get_num_threads()
    yield
    backend.set_num_threads(n)


# ---- a float64 model of the warp ----------------------------------------------------------------

def fix_index(i: np.ndarray, size: int, mode: str) -> np.ndarray:
    """JAX's index fixers, written from scipy's definitions; -1 = outside (constant)."""
    if mode == "reflect":
        m = np.mod(i, 2 * size)
        return np.where(m >= size, 2 * size - 1 - m, m)
    if mode == "wrap":
        return np.mod(i, size)
    if mode == "nearest":
        return np.clip(i, 0, size - 1)
    return np.where((i >= 0) & (i < size), i, -1)


def reference_warp(x, t, interpolation, fill_mode, fill_value=0.0, size=None):
    """Output pixel (r, q) reads input point (col, row) = ((a1 r + a0 q) + a2, (b1 r + b0 q) + b2)
    (coordinates in float32 as Keras forms them; the interpolation in float64)."""
    n, h, w, c = x.shape
    oh, ow = size or (h, w)
    x = x.astype(np.float64)
    out = np.empty((n, oh, ow, c))
    r, q = np.meshgrid(np.arange(oh, dtype=np.float32), np.arange(ow, dtype=np.float32),
                       indexing="ij")
    outside = np.zeros((oh, ow), bool)
    for i in range(n):
        a0, a1, a2, b0, b1, b2 = np.asarray(t[i], np.float32)[:6]
        cx = ((r * a1 + q * a0) + a2).astype(np.float64)
        cy = ((r * b1 + q * b0) + b2).astype(np.float64)
        if fill_mode.startswith("scipy_"):
            # points within 1e-4 * size of the border are on it
            for v, size in ((cx, w), (cy, h)):
                eps = np.float32(1e-4) * np.float32(size)
                v[(v < 0) & (v >= -eps)] = 0
                v[(v > size - 1) & (v <= size - 1 + eps)] = size - 1
            # scipy.ndimage's legacy modes act on the point: 'constant' is the fill value
            # outside [0, size - 1], 'wrap' has period size - 1; then corners are clamped
            outside = (cx < 0) | (cx > w - 1) | (cy < 0) | (cy > h - 1)
            if fill_mode == "scipy_wrap":
                cx = np.mod(cx, w - 1) if w > 1 else np.zeros_like(cx)
                cy = np.mod(cy, h - 1) if h > 1 else np.zeros_like(cy)
                outside[:] = False
        if interpolation == "nearest":
            nodes_x = [(np.trunc(cx) + np.where(np.abs(cx - np.trunc(cx)) >= 0.5,
                                                np.sign(cx), 0), np.ones_like(cx))]
            nodes_y = [(np.trunc(cy) + np.where(np.abs(cy - np.trunc(cy)) >= 0.5,
                                                np.sign(cy), 0), np.ones_like(cy))]
        else:
            fx, fy = np.floor(cx), np.floor(cy)
            nodes_x = [(fx, 1 - (cx - fx)), (fx + 1, cx - fx)]
            nodes_y = [(fy, 1 - (cy - fy)), (fy + 1, cy - fy)]
        acc = np.zeros((oh, ow, c))
        for iy, wy in nodes_y:
            for ix, wx in nodes_x:
                mode = "nearest" if fill_mode.startswith("scipy_") else fill_mode
                jy = fix_index(iy.astype(np.int64), h, mode)
                jx = fix_index(ix.astype(np.int64), w, mode)
                valid = (jy >= 0) & (jx >= 0)
                v = np.where(valid[..., None], x[i][np.maximum(jy, 0), np.maximum(jx, 0)],
                             fill_value)
                acc += (wy * wx)[..., None] * v
        out[i] = np.where(outside[..., None], fill_value, acc)
    return out


def random_transforms(n, h, w, rng, wild=False):
    """Rotations up to 60 degrees, shears, zooms 0.7-1.4 and shifts (wild: far outside)."""
    ang = rng.uniform(-60, 60, n)
    sh = rng.uniform(-15, 15, n)
    sc = rng.uniform(0.7, 1.4, n)
    tx, ty = rng.uniform(-0.3, 0.3, n) * w, rng.uniform(-0.3, 0.3, n) * h
    if wild:
        tx, ty = tx * 10, ty * 10
    return affine_matrix(ang, tx, ty, sc, sh, np.zeros(n), h, w)


@pytest.mark.parametrize("fill_mode", FILLS + SCIPY_FILLS)
@pytest.mark.parametrize("interpolation", INTERPS)
@pytest.mark.parametrize("c", [1, 3])
def test_warp_matches_float64_reference(fill_mode, interpolation, c):
    rng = np.random.default_rng(7)
    x = rng.random((5, 13, 10, c)).astype(np.float32)
    t = random_transforms(5, 13, 10, rng)
    y = np.empty_like(x)
    _C.affine_warp(x, t, y, interpolation=interpolation, fill_mode=fill_mode, fill_value=-0.5)
    ref = reference_warp(x, t, interpolation, fill_mode, -0.5)
    np.testing.assert_allclose(y, ref, atol=2e-6, rtol=0)


@pytest.mark.parametrize("fill_mode", FILLS + SCIPY_FILLS)
def test_warp_far_outside_and_other_output_size(fill_mode):
    rng = np.random.default_rng(3)
    x = rng.random((4, 6, 9, 2)).astype(np.float32)
    t = random_transforms(4, 6, 9, rng, wild=True)
    y = np.empty((4, 11, 5, 2), np.float32)
    _C.affine_warp(x, t, y, interpolation="bilinear", fill_mode=fill_mode, fill_value=2.0)
    ref = reference_warp(x, t, "bilinear", fill_mode, 2.0, size=(11, 5))
    np.testing.assert_allclose(y, ref, atol=2e-6, rtol=0)


def test_warp_of_one_pixel_wide_images():
    x = np.arange(1.0, 6.0, dtype=np.float32).reshape(1, 5, 1, 1)
    t = affine_matrix([90.0], [0.0], [0.0], [1.0], [0.0], [0.0], 5, 1)
    for fill in FILLS:
        y = np.empty_like(x)
        _C.affine_warp(x, t, y, fill_mode=fill)
        np.testing.assert_allclose(y, reference_warp(x, t, "bilinear", fill), atol=2e-6)


@pytest.mark.parametrize("interpolation", INTERPS)
@pytest.mark.parametrize("fill_mode", FILLS + SCIPY_FILLS)
def test_warp_backward_is_the_adjoint(interpolation, fill_mode):
    """<warp(x), g> == <x, warp^T(g)> for every x, g: the input gradient of a linear map."""
    rng = np.random.default_rng(11)
    x = rng.standard_normal((3, 8, 7, 2)).astype(np.float32)
    g = rng.standard_normal((3, 9, 6, 2)).astype(np.float32)
    t = random_transforms(3, 8, 7, rng)
    y = np.empty_like(g)
    dx = np.empty_like(x)
    _C.affine_warp(x, t, y, interpolation=interpolation, fill_mode=fill_mode)
    _C.affine_warp_backward(g, t, dx, interpolation=interpolation, fill_mode=fill_mode)
    lhs = np.sum(y.astype(np.float64) * g)
    rhs = np.sum(x.astype(np.float64) * dx)
    assert lhs == pytest.approx(rhs, rel=1e-5, abs=1e-4)


def test_kernels_are_bit_identical_for_any_thread_count(keep_threads):
    rng = np.random.default_rng(5)
    x = rng.random((70, 28, 28, 1)).astype(np.float32)
    t = random_transforms(70, 28, 28, rng)
    flags = rng.integers(0, 4, 70).astype(np.uint8)
    off = np.stack([rng.integers(0, 9, 70), rng.integers(0, 5, 70)], 1).astype(np.int32)
    f = rng.uniform(0.5, 1.5, 70).astype(np.float32)

    def run():
        outs = []
        for interp in INTERPS:
            y = np.empty_like(x)
            _C.affine_warp(x, t, y, interpolation=interp, fill_mode="reflect")
            d = np.empty_like(x)
            _C.affine_warp_backward(y, t, d, interpolation=interp, fill_mode="reflect")
            outs += [y, d]
        y = np.empty_like(x)
        _C.flip(x, flags, y)
        c = np.empty((70, 20, 24, 1), np.float32)
        _C.crop(x, off, c)
        cb = np.empty_like(x)
        _C.crop_backward(c, off, cb)
        ct = np.empty_like(x)
        _C.adjust_contrast(x, f, ct, 0.0, 1.0)
        br = np.empty_like(x)
        _C.adjust_brightness(x, f - 1, br, 0.0, 1.0)
        return outs + [y, c, cb, ct, br]

    backend.set_num_threads(1)
    one = run()
    for n in (2, 3, 8):
        backend.set_num_threads(n)
        for a, b in zip(one, run()):
            assert np.array_equal(a, b)


def test_flip_crop_contrast_brightness_kernels_against_numpy():
    rng = np.random.default_rng(2)
    x = rng.random((4, 5, 6, 3)).astype(np.float32)
    flags = np.array([0, 1, 2, 3], np.uint8)
    y = np.empty_like(x)
    _C.flip(x, flags, y)
    want = np.stack([x[0], x[1, :, ::-1], x[2, ::-1], x[3, ::-1, ::-1]])
    assert np.array_equal(y, want)
    off = np.array([[0, 0], [1, 2], [2, 3], [1, 1]], np.int32)
    c = np.empty((4, 3, 3, 3), np.float32)
    _C.crop(x, off, c)
    assert np.array_equal(c, np.stack([x[i, o[0]:o[0] + 3, o[1]:o[1] + 3]
                                       for i, o in enumerate(off)]))
    f = np.array([0.5, 1.0, 1.5, 3.0], np.float32)
    ct = np.empty_like(x)
    _C.adjust_contrast(x, f, ct, 0.1, 0.9)
    m = x.astype(np.float64).mean(axis=(1, 2), keepdims=True)
    np.testing.assert_allclose(ct, np.clip((x - m) * f[:, None, None, None] + m, 0.1, 0.9),
                               atol=1e-6)
    br = np.empty_like(x)
    _C.adjust_brightness(x, f - 1, br, 0.0, 1.0)
    np.testing.assert_allclose(br, np.clip(x + (f - 1)[:, None, None, None], 0, 1), atol=1e-7)


def test_kernel_arguments_are_checked():
    x = np.zeros((2, 4, 4, 1), np.float32)
    t = np.tile(np.array([1, 0, 0, 0, 1, 0], np.float32), (2, 1))
    with pytest.raises(ValueError, match="fill_mode"):
        _C.affine_warp(x, t, np.empty_like(x), fill_mode="mirror")
    with pytest.raises(ValueError, match="interpolation"):
        _C.affine_warp(x, t, np.empty_like(x), interpolation="bicubic")
    with pytest.raises(ValueError, match=r"transforms\[1\]"):
        bad = t.copy()
        bad[1, 2] = np.nan
        _C.affine_warp(x, bad, np.empty_like(x))
    with pytest.raises(ValueError, match=r"transforms\[0\]"):
        bad = t.copy()
        bad[0, 0] = 1e9
        _C.affine_warp(x, bad, np.empty_like(x))
    with pytest.raises(ValueError, match="transforms"):
        _C.affine_warp(x, t[:1], np.empty_like(x))
    with pytest.raises(TypeError, match="float32"):
        _C.affine_warp(x.astype(np.float64), t, np.empty_like(x))
    with pytest.raises(ValueError, match="share memory"):
        _C.affine_warp(x, t, x)
    with pytest.raises(ValueError, match="outside the image"):
        _C.crop(x, np.array([[0, 0], [2, 0]], np.int32), np.empty((2, 3, 3, 1), np.float32))
    with pytest.raises(ValueError, match="lo <= hi"):
        _C.adjust_brightness(x, np.zeros(2, np.float32), np.empty_like(x), 1.0, 0.0)


# ---- the layers against Keras 3 ------------------------------------------------------------------

ANGLES = np.array([-30.0, 17.3, 95.0], np.float32)
TRANS = np.array([[1.3, -2.2], [-4.7, 3.1], [0.5, 7.9]], np.float32)
ZOOM = {"height_zoom": np.array([0.7, 1.3, 1.05], np.float32),
        "width_zoom": np.array([1.2, 0.8, 0.9], np.float32)}


@pytest.mark.parametrize("fill_mode", FILLS)
@pytest.mark.parametrize("interpolation", INTERPS)
def test_warp_layers_match_keras(fill_mode, interpolation):
    x = REF["x"]
    kw = dict(fill_mode=fill_mode, interpolation=interpolation, fill_value=0.3)
    key = f"{fill_mode}_{interpolation}"
    got = {
        "rotation": layers.RandomRotation(0.5, **kw).transform_images(x, {"angle": ANGLES}),
        "translation": layers.RandomTranslation(0.5, 0.5, **kw).transform_images(
            x, {"translations": TRANS}),
        "zoom": layers.RandomZoom(0.5, 0.5, **kw).transform_images(x, ZOOM),
    }
    for name, y in got.items():
        np.testing.assert_allclose(y, REF[f"{name}_{key}"], atol=1e-4, rtol=0, err_msg=name)


def test_other_layers_match_keras():
    x = REF["x"]
    flips = {"flips": np.array([True, False, True])}
    for mode in ("horizontal", "vertical", "horizontal_and_vertical"):
        assert np.array_equal(layers.RandomFlip(mode).transform_images(x, flips),
                              REF[f"flip_{mode}"])
    cases = {
        "contrast": layers.RandomContrast(0.5, value_range=(0, 1)).transform_images(
            x, {"contrast_factor": np.array([0.5, 1.2, 1.7])}),
        "brightness": layers.RandomBrightness(0.5, value_range=(0, 1)).transform_images(
            x, {"rgb_delta": np.array([0.1, -0.3, 0.5])}),
        "resize_up_bilinear": layers.Resizing(15, 6)(x),
        "resize_down_bilinear": layers.Resizing(5, 4)(x),
        "resize_up_nearest": layers.Resizing(15, 6, interpolation="nearest")(x),
        "resize_down_nearest": layers.Resizing(5, 4, interpolation="nearest")(x),
        "resize_crop_aspect": layers.Resizing(6, 7, crop_to_aspect_ratio=True)(x),
        "center_crop": layers.CenterCrop(5, 4)(x),
        "center_crop_up": layers.CenterCrop(13, 12)(x),
        "random_crop": layers.RandomCrop(5, 4).transform_images(x, {"h_start": 2,
                                                                    "w_start": 1}),
        "normalization_invert": layers.Normalization(mean=0.2, variance=4.0, invert=True)(x),
    }
    norm = layers.Normalization()
    norm.adapt(x)
    cases["normalization_adapt"] = norm(x)
    for name, y in cases.items():
        np.testing.assert_allclose(y, REF[name], atol=1e-5, rtol=0, err_msg=name)


def test_rotation_matrix_is_keras_formula():
    """Keras 3: angle = factor * 360 degrees about ((w-1)/2, (h-1)/2); a0 = cos, a1 = -sin."""
    m = affine_matrix([30.0], [0.0], [0.0], [1.0], [0.0], [0.0], 11, 9)[0]
    th = np.deg2rad(30.0)
    cx, cy = 4.0, 5.0
    want = [np.cos(th), -np.sin(th), cx - cx * np.cos(th) + cy * np.sin(th),
            np.sin(th), np.cos(th), cy - cx * np.sin(th) - cy * np.cos(th)]
    np.testing.assert_allclose(m, want, atol=1e-5)


def test_random_rotation_draws_angles_in_the_factor_range():
    lay = layers.RandomRotation((-0.1, 0.25), seed=3)
    a = lay.get_random_transformation((5000, 8, 8, 1))["angle"]
    assert a.min() >= -36.0 and a.max() <= 90.0 and a.max() > 85 and a.min() < -33


# ---- randomness, training and inference -----------------------------------------------------------

def all_random_layers(seed=None):
    return [layers.RandomRotation(0.2, seed=seed), layers.RandomZoom(0.2, seed=seed),
            layers.RandomTranslation(0.2, 0.1, seed=seed), layers.RandomFlip(seed=seed),
            layers.RandomContrast(0.4, value_range=(0, 1), seed=seed),
            layers.RandomBrightness(0.2, value_range=(0, 1), seed=seed),
            layers.RandomCrop(8, 7, seed=seed)]


def test_seeded_layers_repeat_and_seeds_differ():
    x = np.random.default_rng(0).random((16, 12, 10, 2)).astype(np.float32)
    for a, b, c in zip(all_random_layers(5), all_random_layers(5), all_random_layers(6)):
        ya, yb, yc = a(x, training=True), b(x, training=True), c(x, training=True)
        assert np.array_equal(ya, yb), type(a).__name__
        assert not np.array_equal(ya, yc), type(a).__name__
        assert not np.array_equal(a(x, training=True), ya), "a second batch draws anew"


def test_unseeded_layers_follow_the_global_generator():
    x = np.random.default_rng(0).random((8, 12, 10, 1)).astype(np.float32)
    backend.seed(42)
    first = [lay(x, training=True) for lay in all_random_layers()]
    backend.seed(42)
    second = [lay(x, training=True) for lay in all_random_layers()]
    for a, b in zip(first, second):
        assert np.array_equal(a, b)


def test_inference_is_the_identity_and_a_direct_call_augments():
    x = np.random.default_rng(1).random((6, 12, 10, 1)).astype(np.float32)
    for lay in all_random_layers(1)[:-1]:
        assert np.array_equal(lay(x, training=False), x)
        ctx = Context()
        lay._maybe_build((None, 12, 10, 1))
        y = lay.forward(ctx, x, training=False)
        assert y is x
        assert lay.backward(ctx, x) is x
        assert not np.array_equal(lay(x), x), "Keras 3 calls default to training=True"
    crop = layers.RandomCrop(6, 5, seed=1)
    y = crop(x, training=False)
    np.testing.assert_allclose(y, layers.Resizing(6, 5, crop_to_aspect_ratio=True)(x),
                               atol=1e-6)


def test_random_crop_takes_one_window_for_the_batch():
    x = np.random.default_rng(1).random((4, 12, 10, 1)).astype(np.float32)
    lay = layers.RandomCrop(5, 4, seed=2)
    y = lay(x)
    matches = [(t, l) for t in range(8) for l in range(7)
               if np.array_equal(y, x[:, t:t + 5, l:l + 4])]
    assert len(matches) == 1


def test_single_image_call():
    img = np.random.default_rng(0).random((9, 9, 3)).astype(np.float32)
    assert layers.RandomRotation(0.1, seed=1)(img).shape == (9, 9, 3)
    assert layers.CenterCrop(4, 5)(img).shape == (4, 5, 3)


# ---- gradients -------------------------------------------------------------------------------------

def numeric_input_gradient(lay, x, transformation, g, eps=1e-3):
    def loss(v):
        return float(np.sum(lay.transform_images(v, transformation).astype(np.float64) * g))
    grad = np.zeros(x.size)
    flat = x.reshape(-1)
    for i in range(x.size):
        p, m = flat.copy(), flat.copy()
        p[i] += eps
        m[i] -= eps
        grad[i] = (loss(p.reshape(x.shape)) - loss(m.reshape(x.shape))) / (2 * eps)
    return grad.reshape(x.shape)


GRAD_CASES = [
    (lambda: layers.RandomRotation(0.3, fill_mode="reflect"), {"angle": [20.0, -47.0]}),
    (lambda: layers.RandomZoom(0.3, fill_mode="wrap"),
     {"height_zoom": [0.8, 1.2], "width_zoom": [1.1, 0.75]}),
    (lambda: layers.RandomTranslation(0.3, 0.3, fill_mode="constant", interpolation="nearest"),
     {"translations": [[1.0, -2.0], [2.0, 1.0]]}),
    (lambda: layers.RandomTranslation(0.3, 0.3, fill_mode="nearest"),
     {"translations": [[0.4, -1.3], [2.2, 0.7]]}),
    (lambda: layers.RandomFlip(), {"flips": [True, False]}),
    (lambda: layers.RandomCrop(3, 4), {"h_start": 1, "w_start": 0}),
    (lambda: layers.RandomContrast(0.5, value_range=(-10, 10)),
     {"contrast_factor": [0.6, 1.4]}),
    (lambda: layers.RandomBrightness(0.5, value_range=(0.2, 0.8)), {"rgb_delta": [0.1, -0.2]}),
]


@pytest.mark.parametrize("make,transformation", GRAD_CASES)
def test_input_gradients_match_finite_differences(make, transformation):
    rng = np.random.default_rng(4)
    x = rng.random((2, 5, 6, 2)).astype(np.float32)
    lay = make()
    ctx = Context()
    lay._maybe_build((None, 5, 6, 2))
    y = np.array(lay._apply(ctx, x, transformation))
    g = rng.standard_normal(y.shape).astype(np.float32)
    ctx.identity = False
    dx = lay.backward(ctx, g)
    want = numeric_input_gradient(lay, x, transformation, g)
    np.testing.assert_allclose(dx, want, atol=2e-3, rtol=1e-3)


@pytest.mark.parametrize("make", [
    lambda: layers.Rescaling(1 / 255.0, offset=-0.5),
    lambda: layers.Normalization(mean=[0.1, 0.2], variance=[4.0, 0.25]),
    lambda: layers.Normalization(mean=[0.1, 0.2], variance=[4.0, 0.25], invert=True),
    lambda: layers.Resizing(7, 3),
    lambda: layers.Resizing(4, 4, crop_to_aspect_ratio=True, interpolation="nearest"),
    lambda: layers.CenterCrop(3, 3),
    lambda: layers.CenterCrop(8, 7),
])
def test_deterministic_layer_gradients(make):
    rng = np.random.default_rng(9)
    x = rng.random((2, 5, 6, 2)).astype(np.float32)
    lay = make()
    lay._maybe_build((None, 5, 6, 2))
    ctx = Context()
    y = np.array(lay.forward(ctx, x))
    g = rng.standard_normal(y.shape).astype(np.float32)
    dx = lay.backward(ctx, g)

    def loss(v):
        return float(np.sum(np.asarray(lay.forward(Context(), v), np.float64) * g))
    num = np.zeros(x.size)
    for i in range(x.size):
        p, m = x.reshape(-1).copy(), x.reshape(-1).copy()
        p[i] += 1e-3
        m[i] -= 1e-3
        num[i] = (loss(p.reshape(x.shape)) - loss(m.reshape(x.shape))) / 2e-3
    np.testing.assert_allclose(dx, num.reshape(x.shape), atol=2e-3, rtol=1e-3)


# ---- Rescaling and Normalization --------------------------------------------------------------------

def test_rescaling_is_keras_formula():
    x = np.arange(12, dtype=np.float32).reshape(1, 2, 2, 3)
    np.testing.assert_allclose(layers.Rescaling(1 / 255.0)(x), x / 255.0, rtol=1e-6)
    np.testing.assert_allclose(layers.Rescaling([1.0, 2.0, 3.0], offset=np.float32(1))(x),
                               x * [1, 2, 3] + 1, rtol=1e-6)


def test_normalization_adapt_from_batches_equals_the_whole_array():
    x = np.random.default_rng(3).random((20, 4, 3)).astype(np.float32) * 5
    whole = layers.Normalization(axis=(1, 2))
    whole.adapt(x)
    batched = layers.Normalization(axis=(1, 2))
    batched.adapt(iter([x[:7], x[7:15], x[15:]]))
    tupled = layers.Normalization(axis=(1, 2))
    tupled.adapt([(x[:10], None), (x[10:], None)])
    for lay in (batched, tupled):
        np.testing.assert_allclose(lay.get_weights()[0], whole.get_weights()[0], atol=1e-5)
        np.testing.assert_allclose(lay.get_weights()[1], whole.get_weights()[1], atol=1e-5)
    np.testing.assert_allclose(whole.get_weights()[0], x.mean(axis=0), atol=1e-5)
    np.testing.assert_allclose(whole.get_weights()[1], x.var(axis=0), atol=1e-4)
    y = whole(x)
    np.testing.assert_allclose(y.mean(axis=0), 0, atol=1e-4)
    assert [w.shape for w in whole.get_weights()] == [(4, 3), (4, 3), ()]


def test_normalization_errors():
    with pytest.raises(ValueError, match="both `mean` and `variance` must be set"):
        layers.Normalization(mean=1.0)
    with pytest.raises(ValueError, match="must have the same shape"):
        layers.Normalization(mean=[1.0, 2.0], variance=[1.0])
    with pytest.raises(ValueError, match="adapt\\(\\) received an empty iterable"):
        layers.Normalization().adapt([])
    lay = layers.Normalization()
    lay.adapt(np.zeros((4, 3)))
    with pytest.raises(ValueError, match="incompatible shape"):
        lay.adapt(np.zeros((4, 5)))


# ---- arguments and configs ---------------------------------------------------------------------------

def test_argument_errors_use_keras_messages():
    with pytest.raises(ValueError, match=r"The `factor` argument should be a number .*"
                                         r"Received: factor=1.5"):
        layers.RandomRotation(1.5)
    with pytest.raises(NotImplementedError, match="Unknown `fill_mode` mirror"):
        layers.RandomRotation(0.1, fill_mode="mirror")
    with pytest.raises(NotImplementedError, match="Unknown `interpolation` bicubic"):
        layers.RandomZoom(0.1, interpolation="bicubic")
    with pytest.raises(ValueError, match=r"in the range \(-1.0, 1.0\]"):
        layers.RandomZoom(-1.0)
    with pytest.raises(ValueError, match="Received: input_number=1.2"):
        layers.RandomTranslation(1.2, 0.1)
    with pytest.raises(ValueError, match="unknown mode argument diagonal"):
        layers.RandomFlip("diagonal")
    with pytest.raises(ValueError, match="`value_range` argument should be a list of two"):
        layers.RandomBrightness(0.1, value_range=(0, 1, 2))
    with pytest.raises(ValueError, match=r"range \[0, 1\]"):
        layers.RandomContrast(1.5)
    with pytest.raises(ValueError, match="seed"):
        layers.RandomFlip(seed=-1)
    with pytest.raises(ValueError, match="height"):
        layers.RandomCrop(0, 3)
    with pytest.raises(ValueError, match="channels_last"):
        layers.RandomFlip(data_format="channels_first")
    with pytest.raises(ValueError, match="ndim=4"):
        layers.RandomRotation(0.1)(np.zeros((2, 3), np.float32))


def test_numpy_scalars_are_accepted():
    lay = layers.RandomRotation(np.float32(0.1), seed=np.int64(3), fill_value=np.float64(1))
    assert lay.factor == pytest.approx((-0.1, 0.1))
    layers.RandomTranslation(np.float32(0.1), (np.float64(-0.1), 0.2))
    layers.RandomCrop(np.int32(3), np.int64(3))


CONFIG_LAYERS = [
    lambda: layers.RandomRotation((-0.1, 0.2), fill_mode="constant", fill_value=0.5, seed=3),
    lambda: layers.RandomTranslation(0.1, [-0.2, 0.3], interpolation="nearest"),
    lambda: layers.RandomZoom(0.2, None, fill_mode="wrap"),
    lambda: layers.RandomFlip("horizontal", seed=1),
    lambda: layers.RandomContrast(0.3, value_range=(0, 1)),
    lambda: layers.RandomBrightness((-0.1, 0.3)),
    lambda: layers.RandomCrop(5, 6, seed=9),
    lambda: layers.CenterCrop(4, 4),
    lambda: layers.Resizing(10, 12, interpolation="nearest", crop_to_aspect_ratio=True),
    lambda: layers.Rescaling(np.float32(1 / 255)),
    lambda: layers.Normalization(axis=-1, mean=[1.0, 2.0], variance=[3.0, 4.0]),
]


@pytest.mark.parametrize("make", CONFIG_LAYERS)
def test_config_round_trip(make):
    lay = make()
    cfg = lay.get_config()
    json.dumps(cfg)
    again = type(lay).from_config(cfg)
    assert again.get_config() == cfg


def test_keras_config_names():
    cfg = layers.RandomRotation(0.1).get_config()
    assert {"factor", "fill_mode", "interpolation", "seed", "fill_value",
            "data_format"} <= set(cfg)
    assert cfg["factor"] == [-0.1, 0.1]
    cfg = layers.RandomZoom(0.2).get_config()
    assert cfg["height_factor"] == 0.2 and cfg["width_factor"] is None


def test_layers_are_exported_with_keras_names():
    for name in ("Rescaling", "Normalization", "Resizing", "CenterCrop", "RandomCrop",
                 "RandomFlip", "RandomRotation", "RandomTranslation", "RandomZoom",
                 "RandomContrast", "RandomBrightness"):
        assert hasattr(pycnn.layers, name)


# ---- end to end --------------------------------------------------------------------------------------

def bars(n, rng):
    """Vertical bars (class 1) or horizontal bars (class 0) on noise, 12x12."""
    y = rng.integers(0, 2, n)
    x = rng.random((n, 12, 12, 1)).astype(np.float32) * 0.2
    for i in range(n):
        if y[i]:
            x[i, 3:9, 5:7, 0] += 0.8
        else:
            x[i, 5:7, 3:9, 0] += 0.8
    return x, y


def test_model_with_random_flip_and_rotation_trains_with_fit(monkeypatch):
    pycnn.utils.set_random_seed(0)
    x, y = bars(256, np.random.default_rng(0))
    model = pycnn.Sequential([
        pycnn.Input((12, 12, 1)), layers.RandomFlip(seed=1), layers.RandomRotation(0.05, seed=2),
        layers.Conv2D(8, 3, activation="relu"), layers.MaxPooling2D(), layers.Flatten(),
        layers.Dense(2, activation="softmax")])
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    draws = []
    rot = model.layers[1]
    original = rot.get_random_transformation
    monkeypatch.setattr(rot, "get_random_transformation",
                        lambda *a, **k: draws.append(1) or original(*a, **k))
    history = model.fit(x, y, epochs=4, batch_size=32, verbose=0)
    assert len(draws) == 4 * 8, "one draw per training batch"
    loss = history.history["loss"]
    assert loss[-1] < 0.8 * loss[0]
    assert history.history["accuracy"][-1] > 0.9
    p1 = model.predict(x[:16], verbose=0)
    p2 = model.predict(x[:16], verbose=0)
    assert len(draws) == 32, "inference does not augment"
    assert np.array_equal(p1, p2)
    config = model.get_config()
    again = pycnn.Sequential.from_config(config)
    assert [type(l).__name__ for l in again.layers][:2] == ["RandomFlip", "RandomRotation"]
    assert again.layers[1].get_config()["factor"] == [-0.05, 0.05]


def test_rescaling_and_augmentation_in_a_functional_model():
    pycnn.utils.set_random_seed(1)
    x, y = bars(128, np.random.default_rng(1))
    inp = pycnn.Input((12, 12, 1))
    h = layers.Rescaling(2.0, offset=-0.5)(inp)
    h = layers.RandomTranslation(0.1, 0.1, fill_mode="constant", seed=3)(h)
    h = layers.RandomZoom(0.1, seed=4)(h)
    h = layers.Conv2D(4, 3, activation="relu")(h)
    h = layers.Flatten()(h)
    out = layers.Dense(2, activation="softmax")(h)
    model = pycnn.Model(inp, out)
    model.compile("adam", "sparse_categorical_crossentropy")
    hist = model.fit(x, y, epochs=3, batch_size=32, verbose=0)
    assert np.all(np.isfinite(hist.history["loss"]))
    assert hist.history["loss"][-1] < hist.history["loss"][0]
