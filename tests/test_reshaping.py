"""Shape-changing layers (UpSampling1D/2D, ZeroPadding1D/2D, Cropping1D/2D, Permute,
RepeatVector, Identity) and 1-D pooling (MaxPooling1D, AveragePooling1D): values and gradients
of the C kernels against float64 NumPy references and finite differences, Keras 3's bilinear
numbers, configs, argument errors.

The bilinear numbers were computed with Keras 3.15 (JAX backend): ``UpSampling2D(size,
interpolation="bilinear")`` on the input of ``_keras_input()`` and ``jax.grad`` of
``sum(layer(x) * cos(arange))``."""
from __future__ import annotations

import json

import numpy as np
import pytest

import pycnn
from pycnn import _C, layers
from pycnn.layers.context import Context


def run(layer, x, dy=None):
    """forward and backward of a layer on arrays (built for x's shape)."""
    layer._maybe_build((None,) + x.shape[1:])
    ctx = Context()
    y = np.array(layer.forward(ctx, x))
    if dy is None:
        return y, None
    return y, np.array(layer.backward(ctx, dy))


def linear_grad(layer, x, seed=0):
    """forward, then the backward of sum(y * w) for a random w; returns y, w, dx."""
    layer._maybe_build((None,) + x.shape[1:])
    ctx = Context()
    y = np.array(layer.forward(ctx, x))
    w = np.random.default_rng(seed).standard_normal(y.shape).astype(np.float32)
    return y, w, np.array(layer.backward(ctx, w))


def check_linear_layer(layer, x, ref):
    """A layer that is a linear map of x: y against ref(x) in float64, dx against the adjoint
    computed by finite differences of sum(ref(x) * w) (exact for a linear map)."""
    y, w, dx = linear_grad(layer, x)
    np.testing.assert_allclose(y, ref(x.astype(np.float64)), rtol=1e-6, atol=1e-6)
    r = np.random.default_rng(1)
    for _ in range(6):
        idx = tuple(int(r.integers(s)) for s in x.shape)
        e = np.zeros(x.shape)
        e[idx] = 1.0
        assert dx[idx] == pytest.approx(np.sum(ref(e) * w), rel=1e-5, abs=1e-5)
    # the whole adjoint on a small input: <ref(x), w> == <x, dx>
    assert np.sum(ref(x.astype(np.float64)) * w) == pytest.approx(
        np.sum(x.astype(np.float64) * dx), rel=1e-4, abs=1e-4)


def rand(shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


# ---- UpSampling2D ------------------------------------------------------------------------

def ref_bilinear(x, sh, sw):
    """float64 half-pixel bilinear resize by integer factors (TF / JAX resize, upsampling)."""
    n, h, w, c = x.shape

    def weights(out, s, size):
        m = np.zeros((out, size))
        for o in range(out):
            src = min(max((o + 0.5) / s - 0.5, 0.0), size - 1)
            f = int(np.floor(src))
            m[o, f] += 1 - (src - f)
            m[o, min(f + 1, size - 1)] += src - f
        return m

    return np.einsum("ih,jw,nhwc->nijc", weights(h * sh, sh, h), weights(w * sw, sw, w), x)


@pytest.mark.parametrize("size", [(2, 2), (3, 1), (1, 4), (2, 3)])
def test_upsampling2d_nearest_repeats_rows_and_columns(size):
    x = rand((2, 3, 4, 5))
    check_linear_layer(layers.UpSampling2D(size), x,
                       lambda v: v.repeat(size[0], axis=1).repeat(size[1], axis=2))


@pytest.mark.parametrize("size", [(2, 2), (3, 2), (1, 3), (4, 4)])
def test_upsampling2d_bilinear_matches_float64_reference(size):
    x = rand((2, 5, 4, 3))
    check_linear_layer(layers.UpSampling2D(size, interpolation="bilinear"), x,
                       lambda v: ref_bilinear(v, *size))


def _keras_input():
    return (np.arange(2 * 3 * 4 * 2).reshape(2, 3, 4, 2) ** 1.5 / 7.0 - 3.0).astype(np.float32)


KERAS_BILINEAR_2x2 = [
    [-3.0, -2.898984670639038, -2.6969542503356934, -2.4112398624420166, -2.041841745376587,
     -1.6179664134979248, -1.1396137475967407, -0.9004373550415039],
    [-2.191878080368042, -2.0358006954193115, -1.7236464023590088, -1.3402376174926758,
     -0.8855739235877991, -0.3823063373565674, 0.16956496238708496, 0.4455007314682007],
    [-0.5756338834762573, -0.3094329237937927, 0.2229689359664917, 0.8017672896385193,
     1.426961898803711, 2.0890135765075684, 2.7879223823547363, 3.1373770236968994],
    [1.7100803852081299, 2.0614519119262695, 2.764194965362549, 3.498731851577759,
     4.26506233215332, 5.060624122619629, 5.885416507720947, 6.2978129386901855],
    [4.665265083312988, 5.0768537521362305, 5.900032043457031, 6.750656604766846,
     7.628727436065674, 8.532525062561035, 9.462047576904297, 9.92680835723877],
    [6.142857074737549, 6.584554672241211, 7.467949867248535, 8.376618385314941,
     9.31056022644043, 10.268475532531738, 11.250362396240234, 11.74130630493164]]
KERAS_BILINEAR_2x2_GRAD = [
    [0.2956290543079376, 0.020258281379938126, -0.13077685236930847, 0.3098070025444031],
    [0.004416929557919502, -0.0010208617895841599, -0.0005841366946697235,
     0.0043758973479270935],
    [0.2566913366317749, -0.14791932702064514, 0.05772838741540909, 0.2373867928981781]]
KERAS_BILINEAR_3x2_ROWS_2_3 = [
    [-1.9225038290023804, -1.748072624206543, -1.3992104530334473, -0.98323655128479,
     -0.5001510381698608, 0.029580526053905487, 0.605958104133606, 0.8941469788551331],
    [-0.8450076580047607, -0.5971605777740479, -0.10146667808294296, 0.4447668194770813,
     1.0415396690368652, 1.6771273612976074, 2.351530075073242, 2.6887311935424805]]
KERAS_BILINEAR_3x2_GRAD = [
    [0.2888914942741394, -0.018891237676143646, -0.0877595841884613, 0.29535627365112305],
    [-0.0692148357629776, 0.08751532435417175, -0.06485684216022491, -0.05491140857338905],
    [-0.28326159715652466, 0.011772595345973969, 0.09303504228591919, -0.29088982939720154]]


@pytest.mark.parametrize("size,rows,y_want,g_want", [
    ((2, 2), slice(None), KERAS_BILINEAR_2x2, KERAS_BILINEAR_2x2_GRAD),
    ((3, 2), slice(2, 4), KERAS_BILINEAR_3x2_ROWS_2_3, KERAS_BILINEAR_3x2_GRAD),
])
def test_upsampling2d_bilinear_matches_keras_numbers(size, rows, y_want, g_want):
    x = _keras_input()
    layer = layers.UpSampling2D(size=size, interpolation="bilinear")
    ctx = Context()
    layer._maybe_build((None,) + x.shape[1:])
    y = layer.forward(ctx, x)
    np.testing.assert_allclose(y[0, rows, :, 0], y_want, rtol=1e-6, atol=2e-6)
    # edge rows copy the edge of the input exactly, as Keras' do
    np.testing.assert_array_equal(y[0, 0, 0], x[0, 0, 0])
    np.testing.assert_array_equal(y[1, -1, -1], x[1, -1, -1])
    w = np.cos(np.arange(y.size)).reshape(y.shape).astype(np.float32)
    dx = layer.backward(ctx, w)
    np.testing.assert_allclose(dx[0, :, :, 0], g_want, rtol=1e-5, atol=1e-6)


def test_upsampling_is_bit_identical_for_any_thread_count(keep_num_threads):
    x = rand((9, 20, 18, 40))
    for interpolation in ("nearest", "bilinear"):
        out = []
        for n in (1, 2, 3):
            pycnn.set_num_threads(n)
            y, w, dx = linear_grad(layers.UpSampling2D((2, 3), interpolation=interpolation), x)
            out.append((y, dx))
        for y, dx in out[1:]:
            np.testing.assert_array_equal(y, out[0][0])
            np.testing.assert_array_equal(dx, out[0][1])


def test_upsampling2d_arguments_and_config():
    layer = layers.UpSampling2D(size=np.int64(3), interpolation="Bilinear", name="up")
    assert layer.size == (3, 3) and layer.interpolation == "bilinear"
    config = json.loads(json.dumps(layer.get_config()))
    assert config == {"name": "up", "trainable": True, "dtype": "float32", "size": [3, 3],
                      "data_format": "channels_last", "interpolation": "bilinear"}
    assert layers.UpSampling2D.from_config(config).get_config() == layer.get_config()
    assert layers.UpSampling2D((2, 3)).compute_output_shape((None, 4, None, 2)) == \
        (None, 8, None, 2)
    with pytest.raises(ValueError, match="interpolation"):
        layers.UpSampling2D(interpolation="bicubic")
    with pytest.raises(ValueError, match=r"The `size` argument must be a tuple of 2 integers"):
        layers.UpSampling2D(size=(2, 0))
    with pytest.raises(ValueError, match="data_format"):
        layers.UpSampling2D(data_format="channels_first")
    with pytest.raises(ValueError, match="expected ndim=4"):
        layers.UpSampling2D()(np.ones((2, 3, 4), np.float32))


# ---- 1-D upsampling, RepeatVector ----------------------------------------------------------

def test_upsampling1d_repeats_steps():
    x = rand((3, 5, 4))
    check_linear_layer(layers.UpSampling1D(3), x, lambda v: v.repeat(3, axis=1))
    assert layers.UpSampling1D(np.int32(2)).get_config()["size"] == 2
    with pytest.raises(TypeError, match="Expected an integer value for `size`"):
        layers.UpSampling1D(2.0)
    with pytest.raises(ValueError, match="positive integer"):
        layers.UpSampling1D(0)


def test_repeat_vector_repeats_the_input_n_times():
    x = rand((4, 6))
    check_linear_layer(layers.RepeatVector(3), x,
                       lambda v: np.repeat(v[:, None, :], 3, axis=1))
    assert layers.RepeatVector(3).compute_output_shape((None, 6)) == (None, 3, 6)
    layer = layers.RepeatVector(np.int64(2), name="rep")
    assert layers.RepeatVector.from_config(json.loads(json.dumps(layer.get_config()))).n == 2
    with pytest.raises(TypeError, match="Expected an integer value for `n`"):
        layers.RepeatVector("3")
    with pytest.raises(ValueError, match=r"Received: n=0"):
        layers.RepeatVector(0)


# ---- padding and cropping ------------------------------------------------------------------

@pytest.mark.parametrize("padding,want", [
    (1, ((1, 1), (1, 1))), ((2, 0), ((2, 2), (0, 0))), (((1, 2), (3, 0)), ((1, 2), (3, 0))),
    ((np.int64(1), (0, np.int32(2))), ((1, 1), (0, 2))),
])
def test_zero_padding2d(padding, want):
    layer = layers.ZeroPadding2D(padding)
    assert layer.padding == want
    x = rand((2, 3, 4, 5))
    check_linear_layer(layer, x, lambda v: np.pad(v, ((0, 0), want[0], want[1], (0, 0))))


@pytest.mark.parametrize("cropping,want", [
    (1, ((1, 1), (1, 1))), ((2, 0), ((2, 2), (0, 0))), (((1, 2), (3, 0)), ((1, 2), (3, 0))),
])
def test_cropping2d(cropping, want):
    layer = layers.Cropping2D(cropping)
    assert layer.cropping == want
    x = rand((2, 6, 7, 3))
    (t, b), (l, r) = want
    check_linear_layer(layer, x, lambda v: v[:, t:v.shape[1] - b, l:v.shape[2] - r])


def test_padding_and_cropping_1d():
    x = rand((3, 6, 4))
    check_linear_layer(layers.ZeroPadding1D((2, 1)), x,
                       lambda v: np.pad(v, ((0, 0), (2, 1), (0, 0))))
    check_linear_layer(layers.ZeroPadding1D(np.int64(1)), x,
                       lambda v: np.pad(v, ((0, 0), (1, 1), (0, 0))))
    check_linear_layer(layers.Cropping1D((2, 1)), x, lambda v: v[:, 2:5])
    check_linear_layer(layers.Cropping1D((0, 0)), x, lambda v: v)


def test_padding_and_cropping_large_is_bit_identical_for_any_thread_count(keep_num_threads):
    x = rand((16, 30, 31, 24))
    for layer in (layers.ZeroPadding2D(((2, 1), (0, 3))), layers.Cropping2D(((1, 2), (3, 0)))):
        out = []
        for n in (1, 2, 3):
            pycnn.set_num_threads(n)
            out.append(linear_grad(layer, x))
        for y, _, dx in out[1:]:
            np.testing.assert_array_equal(y, out[0][0])
            np.testing.assert_array_equal(dx, out[0][2])


def test_padding_and_cropping_errors_and_configs():
    with pytest.raises(ValueError, match=r"`padding` should have two elements"):
        layers.ZeroPadding2D((1, 2, 3))
    with pytest.raises(ValueError, match=r"The `1st entry of padding` argument"):
        layers.ZeroPadding2D(((1, -1), (0, 0)))
    with pytest.raises(ValueError, match=r"`cropping` cannot be negative"):
        layers.Cropping2D(-1)
    with pytest.raises(ValueError, match=r"Values in `cropping` argument should be smaller "
                                         r"than the corresponding spatial dimension"):
        layers.Cropping2D(((2, 2), (0, 0)))(pycnn.Input((4, 5, 1)))
    with pytest.raises(ValueError, match=r"`cropping` parameter of `Cropping1D` layer must be "
                                         r"smaller than the input length"):
        layers.Cropping1D((3, 3))(pycnn.Input((6, 2)))
    for layer, key, value in [
            (layers.ZeroPadding2D(((1, 2), (3, 4))), "padding", [[1, 2], [3, 4]]),
            (layers.Cropping2D(2), "cropping", [[2, 2], [2, 2]]),
            (layers.ZeroPadding1D(2), "padding", [2, 2]),
            (layers.Cropping1D(2), "cropping", [2, 2])]:
        config = json.loads(json.dumps(layer.get_config()))
        assert config[key] == value
        assert type(layer).from_config(config).get_config() == layer.get_config()


# ---- Permute, Identity ----------------------------------------------------------------------

@pytest.mark.parametrize("dims", [(2, 1), (3, 1, 2), (1, 3, 2), (1, 2, 3), (4, 2, 3, 1)])
def test_permute_matches_numpy_transpose(dims):
    shape = (2, 3, 4, 5, 6)[:len(dims) + 1]
    x = rand(shape)
    check_linear_layer(layers.Permute(dims), x, lambda v: np.transpose(v, (0,) + dims))


def test_permute_arguments_and_config():
    layer = layers.Permute((np.int64(2), 1), name="p")
    assert layer.compute_output_shape((None, 3, 4)) == (None, 4, 3)
    config = json.loads(json.dumps(layer.get_config()))
    assert config["dims"] == [2, 1]
    assert layers.Permute.from_config(config).dims == (2, 1)
    with pytest.raises(ValueError, match="must be consecutive and start from 1"):
        layers.Permute((0, 1))
    with pytest.raises(ValueError, match="expected ndim=3"):
        layers.Permute((2, 1))(np.ones((2, 3), np.float32))


def test_identity_passes_values_and_gradients():
    x = rand((2, 3))
    y, dx = run(layers.Identity(), x, np.ones((2, 3), np.float32))
    np.testing.assert_array_equal(y, x)
    np.testing.assert_array_equal(dx, 1.0)
    assert layers.Identity().compute_output_shape((None, 3)) == (None, 3)


# ---- 1-D pooling ------------------------------------------------------------------------------

def ref_pool1d(kind, x, p, s, padding):
    n, steps, c = x.shape
    if padding == "same":
        out = -(-steps // s)
        total = max((out - 1) * s + p - steps, 0)
        lo = total // 2
    else:
        out, lo = (steps - p) // s + 1, 0
    y = np.zeros((n, out, c))
    for o in range(out):
        a, b = max(o * s - lo, 0), min(o * s - lo + p, steps)
        win = x[:, a:b].astype(np.float64)
        y[:, o] = win.max(1) if kind == "max" else win.mean(1)
    return y


@pytest.mark.parametrize("kind", ["max", "avg"])
@pytest.mark.parametrize("p,s,padding", [(2, None, "valid"), (3, 1, "valid"), (2, 2, "same"),
                                         (3, 2, "same"), (4, 3, "same"), (3, 3, "valid")])
def test_pooling1d_matches_reference_and_finite_differences(kind, p, s, padding):
    cls = layers.MaxPooling1D if kind == "max" else layers.AveragePooling1D
    layer = cls(pool_size=p, strides=s, padding=padding)
    x = rand((3, 11, 4), seed=p * 10 + (s or 0))
    y, w, dx = linear_grad(layer, x)
    np.testing.assert_allclose(y, ref_pool1d(kind, x, p, s or p, padding), rtol=1e-6,
                               atol=1e-6)
    h = 1e-3
    for idx in [(0, 0, 0), (1, 5, 2), (2, 10, 3), (0, 7, 1)]:
        xp, xm = x.astype(np.float64), x.astype(np.float64)
        xp = xp.copy()
        xm = xm.copy()
        xp[idx] += h
        xm[idx] -= h
        fd = (np.sum(ref_pool1d(kind, xp, p, s or p, padding) * w) -
              np.sum(ref_pool1d(kind, xm, p, s or p, padding) * w)) / (2 * h)
        assert dx[idx] == pytest.approx(fd, rel=1e-3, abs=1e-4), idx


def test_pooling1d_aliases_shapes_and_config():
    assert layers.MaxPool1D is layers.MaxPooling1D
    assert layers.AvgPool1D is layers.AveragePooling1D
    assert layers.MaxPooling1D().compute_output_shape((None, 9, 3)) == (None, 4, 3)
    assert layers.AveragePooling1D(3, padding="same").compute_output_shape((None, 10, 2)) == \
        (None, 4, 2)
    layer = layers.MaxPooling1D(np.int64(3), name="mp")
    config = json.loads(json.dumps(layer.get_config()))
    assert {k: config[k] for k in ("pool_size", "strides", "padding", "data_format")} == \
        {"pool_size": [3], "strides": [3], "padding": "valid", "data_format": "channels_last"}
    assert layers.MaxPooling1D.from_config(config).get_config() == layer.get_config()
    with pytest.raises(ValueError, match="Computed output size would be zero or negative"):
        layers.MaxPooling1D(5)(pycnn.Input((3, 2)))
    with pytest.raises(ValueError, match="pool_size"):
        layers.MaxPooling1D(0)
    with pytest.raises(ValueError, match="expected ndim=3"):
        layers.AveragePooling1D()(np.ones((2, 4), np.float32))


def test_max_pooling1d_gradient_goes_to_the_first_maximum():
    x = np.array([[[1.0], [1.0], [0.0], [2.0]]], np.float32)
    y, dx = run(layers.MaxPooling1D(2), x, np.ones((1, 2, 1), np.float32))
    np.testing.assert_array_equal(y[0, :, 0], [1.0, 2.0])
    np.testing.assert_array_equal(dx[0, :, 0], [1.0, 0.0, 0.0, 1.0])


# ---- binding checks and a model --------------------------------------------------------------

def test_binding_validates_arrays():
    x = np.ones((1, 2, 3, 4), np.float32)
    with pytest.raises(ValueError, match="axis 1 must be 4"):
        _C.upsample2d_forward(x, np.empty((1, 3, 6, 4), np.float32), (2, 2), "nearest")
    with pytest.raises(ValueError, match="interpolation"):
        _C.upsample2d_forward(x, np.empty((1, 4, 6, 4), np.float32), (2, 2), "area")
    with pytest.raises(ValueError, match="size must be >= 1"):
        _C.upsample2d_forward(x, np.empty((1, 4, 6, 4), np.float32), (0, 2), "nearest")
    with pytest.raises(ValueError, match="share memory"):
        _C.shift2d(x, x, (0, 0))
    with pytest.raises(ValueError, match="perm"):
        _C.permute(x, np.empty((1, 2, 3, 4), np.float32), (1, 0, 2, 3))
    with pytest.raises(ValueError, match="axis 1 must be 3"):
        _C.permute(x, np.empty((1, 2, 4, 3), np.float32), (0, 2, 1, 3))


def test_a_small_upsampling_model_trains_with_fit(seed):
    r = np.random.default_rng(0)
    x = r.standard_normal((64, 4, 4, 1)).astype(np.float32)
    y = np.repeat(np.repeat(x, 2, 1), 2, 2)[:, 1:7, 1:7] * 0.5
    inp = pycnn.Input((4, 4, 1))
    h = layers.UpSampling2D(interpolation="bilinear")(inp)
    h = layers.ZeroPadding2D(1)(h)
    h = layers.Conv2D(1, 3)(h)
    out = layers.Cropping2D(1)(h)
    model = pycnn.Model(inp, out)
    assert model.output_shape == (None, 6, 6, 1)
    model.compile(optimizer=pycnn.optimizers.Adam(learning_rate=0.05), loss="mse")
    first = model.evaluate(x, y, verbose=0)
    model.fit(x, y, epochs=10, batch_size=16, verbose=0)
    assert model.evaluate(x, y, verbose=0) < 0.5 * first
