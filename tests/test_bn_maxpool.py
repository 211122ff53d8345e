"""BatchNormalization + MaxPooling2D in one pass, the ``bn_maxpool`` fusion rule, and the few-taps
direct weight gradient of the convolution (csrc/conv_small.c) that the first layer of such a
network uses.

* ``_C.batchnorm_maxpool_forward`` / ``_C.batchnorm_maxpool_backward`` (csrc/normalization.c,
  contract in csrc/pycnn.h): bit-identical to ``batchnorm_forward`` then ``maxpool2d_forward``
  (y, argmax, mean, var) and to ``maxpool2d_backward`` then ``batchnorm_backward`` (dx, dgamma,
  dbeta), with ``relu=True`` also to the relu mask ``x > 0 ? dx : 0``; on every SIMD path, for 1
  and 2 threads, for training and inference statistics, with and without padding; NaN
  propagates as in the pair; within float64 bounds of a NumPy reference, and the gradients
  agree with finite differences.
* The ``bn_maxpool`` rule (pycnn/models/fusion_bn.py): which layers it fuses (with the relu
  convolution before the normalization when nothing else reads it), and training with the rule
  on and off giving bit-identical weights, history and predictions.
* ``conv2d_backward``'s direct few-taps dw: bit-identical to the GEMM's (a one-channel
  convolution fused with its pooling takes the GEMM; apart it takes conv_small.c), on every
  path, and correct against float64.
"""
from __future__ import annotations

import os
import sys

import numpy as np
import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import pycnn  # noqa: E402
from pycnn import _C, layers  # noqa: E402
from test_kernels import directional_check  # noqa: E402

EPS = 1e-3
# (n, h, w, c, pool, pads, oh, ow): 'same' 2x2 on even and odd sizes, 3x3 and 2x3 with pads
CASES = [(2, 8, 8, 75, (2, 2), (0, 0), 4, 4), (3, 7, 7, 25, (2, 2), (0, 0), 4, 4),
         (2, 9, 10, 5, (3, 3), (1, 2), 3, 4), (2, 6, 6, 3, (2, 3), (1, 0), 4, 2),
         (1, 5, 6, 17, (2, 2), (0, 0), 2, 3)]


def _bits(a):
    return np.asarray(a, np.float32).view(np.int32)


def _data(case, training, relu, seed=0, nan=False):
    n, h, w, c = case[:4]
    r = np.random.default_rng(seed)
    x = r.standard_normal((n, h, w, c)).astype(np.float32)
    if relu:
        x = np.maximum(x, np.float32(0))
    x[0, 0, 0, 0] = 0.0
    if nan:
        x[-1, 1, 1, min(2, c - 1)] = np.nan
    gamma = r.standard_normal(c).astype(np.float32)
    beta = r.standard_normal(c).astype(np.float32)
    mean = np.empty(c, np.float32)
    var = np.empty(c, np.float32)
    if not training:
        mean[:] = r.standard_normal(c)
        var[:] = r.random(c) + 0.5
    dy = r.standard_normal((n,) + case[6:8] + (c,)).astype(np.float32)
    dy[0, 0, 0, :2] = -0.0
    return x, gamma, beta, mean, var, dy


def _unfused(case, x, gamma, beta, mean, var, dy, training, relu):
    n, h, w, c, pool, pads, oh, ow = case
    mean, var = mean.copy(), var.copy()
    z = np.empty_like(x)
    _C.batchnorm_forward(x.reshape(-1, c, 1), mean, var, gamma, beta, z.reshape(-1, c, 1), EPS,
                         training)
    y = np.empty((n, oh, ow, c), np.float32)
    am = np.empty((n, oh, ow, c), np.int32)
    _C.maxpool2d_forward(z, y, am, pool, pool, pads)
    dz = np.empty_like(x)
    _C.maxpool2d_backward(dy, am, dz)
    dx = np.empty_like(x)
    dg, db = np.empty(c, np.float32), np.empty(c, np.float32)
    _C.batchnorm_backward(x.reshape(-1, c, 1), mean, var, gamma, dz.reshape(-1, c, 1),
                          dx.reshape(-1, c, 1), dg, db, EPS, training)
    if relu:
        dx = np.where(x > 0, dx, np.float32(0))
    return y, am, mean, var, dx, dg, db


def _fused(case, x, gamma, beta, mean, var, dy, training, relu):
    n, h, w, c, pool, pads, oh, ow = case
    mean, var = mean.copy(), var.copy()
    y = np.full((n, oh, ow, c), 7.0, np.float32)
    am = np.full((n, oh, ow, c), 7, np.int32)
    _C.batchnorm_maxpool_forward(x, mean, var, gamma, beta, y, am, pool, pool, pads, EPS,
                                 training)
    dx = np.full_like(x, 7.0)
    dg, db = np.full(c, 7.0, np.float32), np.full(c, 7.0, np.float32)
    _C.batchnorm_maxpool_backward(x, mean, var, gamma, dy, am, dx, dg, db, pool, pool, pads,
                                  EPS, training, relu=relu)
    return y, am, mean, var, dx, dg, db


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("training", [True, False])
@pytest.mark.parametrize("relu", [False, True])
def test_fused_batchnorm_maxpool_has_the_bits_of_the_pair_on_every_path(isa, keep_num_threads,
                                                                        case, training, relu):
    for threads in (1, 2):
        pycnn.set_num_threads(threads)
        for nan in (False, True):
            data = _data(case, training, relu, nan=nan)
            a = _unfused(case, *data, training, relu)
            b = _fused(case, *data, training, relu)
            for name, u, v in zip(("y", "argmax", "mean", "var", "dx", "dgamma", "dbeta"),
                                  a, b):
                assert np.array_equal(np.asarray(u).view(np.int32),
                                      np.asarray(v).view(np.int32)), \
                    f"{name} differs ({threads} threads, nan={nan})"


def _ref_forward(case, x, gamma, beta, mean=None, var=None):
    """float64: pool(gamma (x - mean) / sqrt(var + eps) + beta), 'first maximum' windows."""
    n, h, w, c, pool, pads, oh, ow = case
    x = x.astype(np.float64)
    if mean is None:
        mean, var = x.mean(axis=(0, 1, 2)), x.var(axis=(0, 1, 2))
    z = gamma * (x - mean) / np.sqrt(var + EPS) + beta
    y = np.full((n, oh, ow, c), -np.inf)
    for i in range(oh):
        for j in range(ow):
            h0, w0 = i * pool[0] - pads[0], j * pool[1] - pads[1]
            win = z[:, max(h0, 0):h0 + pool[0], max(w0, 0):w0 + pool[1]]
            if win.size:
                y[:, i, j] = win.max(axis=(1, 2))
    return y, mean, var


@pytest.mark.parametrize("case", CASES[:3])
@pytest.mark.parametrize("training", [True, False])
def test_fused_batchnorm_maxpool_matches_float64_and_finite_differences(case, training):
    x, gamma, beta, mean, var, dy = _data(case, training, False, seed=3)
    y, am, m2, v2, dx, dg, db = _fused(case, x, gamma, beta, mean, var, dy, training, False)
    ref = _ref_forward(case, x, gamma, beta, None if training else mean.astype(np.float64),
                       None if training else var.astype(np.float64))
    np.testing.assert_allclose(y, ref[0], rtol=1e-5, atol=1e-5)
    if training:
        np.testing.assert_allclose(m2, ref[1], rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(v2, ref[2], rtol=1e-5, atol=1e-6)

    def loss(xv=x, g=gamma, b=beta):
        yy = np.empty_like(y)
        aa = np.empty_like(am)
        _C.batchnorm_maxpool_forward(xv, mean.copy(), var.copy(), g, b, yy, aa, case[4],
                                     case[4], case[5], EPS, training)
        return float((yy.astype(np.float64) * dy).sum())

    directional_check(lambda v: loss(xv=v), x, dx, eps=1e-3, what="dx")
    directional_check(lambda v: loss(g=v), gamma, dg, eps=1e-3, what="dgamma")
    directional_check(lambda v: loss(b=v), beta, db, eps=1e-3, what="dbeta")


def test_fused_entry_points_reject_overlapping_windows_and_bad_shapes():
    x = np.zeros((1, 4, 4, 2), np.float32)
    c = np.zeros(2, np.float32)
    y = np.zeros((1, 3, 3, 2), np.float32)
    am = np.zeros((1, 3, 3, 2), np.int32)
    with pytest.raises(ValueError, match="strides must equal pool"):
        _C.batchnorm_maxpool_forward(x, c.copy(), c.copy(), None, None, y, am, (2, 2), (1, 1),
                                     (0, 0), EPS, True)
    with pytest.raises(ValueError, match="argmax"):
        _C.batchnorm_maxpool_forward(x, c.copy(), c.copy(), None, None,
                                     np.zeros((1, 2, 2, 2), np.float32), am, (2, 2), (2, 2),
                                     (0, 0), EPS, True)


# ---- models ------------------------------------------------------------------------------------
def _signs_like(dropout_first=False):
    return pycnn.Sequential([
        pycnn.Input((12, 12, 1)),
        layers.Conv2D(20, 3, padding="same", activation="relu"),
        layers.BatchNormalization(),
        layers.MaxPool2D(2, strides=2, padding="same"),
        layers.Conv2D(12, 3, padding="same", activation="relu"),
        layers.Dropout(0.2),
        layers.BatchNormalization(),
        layers.MaxPool2D(2, strides=2, padding="same"),
        layers.Conv2D(7, 3, padding="same", activation="relu"),
        layers.BatchNormalization(),
        layers.MaxPool2D(2, strides=2, padding="same"),
        layers.Flatten(),
        layers.Dense(5, activation="softmax")])


def _train(fuse):
    pycnn.utils.set_random_seed(0)
    r = np.random.default_rng(0)
    x = r.random((96, 12, 12, 1), dtype=np.float32)
    y = r.integers(0, 5, 96)
    model = _signs_like()
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    model.set_fusion("bn_maxpool", fuse)
    hist = model.fit(x, y, batch_size=32, epochs=2, verbose=0)
    return model, hist.history, model.predict(x[:16], verbose=0), x


def test_bn_maxpool_rule_fuses_relu_conv_bn_pool_and_bn_pool():
    model = _train(True)[0]
    plan = model.compiled_plan(True)
    assert model.compiled_plan(False).fused_pairs == plan.fused_pairs
    names = [tuple(layer.name for layer in group) for group in plan.fused_pairs]
    kinds = [tuple(type(layer).__name__ for layer in group) for group in plan.fused_pairs]
    assert kinds.count(("Conv2D", "BatchNormalization", "MaxPooling2D")) == 2, names
    assert kinds.count(("BatchNormalization", "MaxPooling2D")) == 1, names


def test_training_with_bn_maxpool_on_and_off_is_bit_identical(isa):
    on, off = _train(True), _train(False)
    for a, b in zip(on[0].get_weights(), off[0].get_weights()):
        assert np.array_equal(_bits(a), _bits(b))
    assert on[1] == off[1]
    assert np.array_equal(_bits(on[2]), _bits(off[2]))


# ---- the few-taps direct dw --------------------------------------------------------------------
@pytest.mark.parametrize("filters", [20, 75])
def test_one_channel_conv_dw_direct_has_the_bits_of_the_gemm_path(isa, filters):
    """conv+pool fused (dw by the GEMM; 75 filters keep the direct conv+pool kernel out) against
    the pair apart (dw by conv_small.c): bit-identical weights after training."""
    def run(fuse):
        pycnn.utils.set_random_seed(1)
        r = np.random.default_rng(1)
        x = r.standard_normal((64, 14, 14, 1)).astype(np.float32)
        y = r.integers(0, 4, 64)
        model = pycnn.Sequential([pycnn.Input((14, 14, 1)),
                                  layers.Conv2D(filters, 3, padding="same", activation="relu"),
                                  layers.MaxPool2D(2), layers.Flatten(),
                                  layers.Dense(4, activation="softmax")])
        model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
        model.set_fusion("conv_maxpool", fuse)
        model.fit(x, y, batch_size=64, epochs=2, verbose=0, shuffle=False)
        return model.get_weights()
    for a, b in zip(run(True), run(False)):
        assert np.array_equal(_bits(a), _bits(b))


def test_one_channel_conv_dw_direct_matches_float64(isa):
    r = np.random.default_rng(5)
    x = r.standard_normal((3, 9, 11, 1)).astype(np.float32)
    w = r.standard_normal((3, 3, 1, 21)).astype(np.float32)
    dy = r.standard_normal((3, 9, 11, 21)).astype(np.float32)
    yv = np.maximum(r.standard_normal(dy.shape), 0).astype(np.float32)
    dw, db = np.full_like(w, 7.0), np.full(21, 7.0, np.float32)
    _C.conv2d_backward(x, w, dy, None, dw, db, (1, 1), (1, 1), y=yv)
    g = np.where(yv > 0, dy, 0).astype(np.float64)
    xp = np.pad(x.astype(np.float64), ((0, 0), (1, 1), (1, 1), (0, 0)))
    ref = np.zeros((3, 3, 1, 21))
    for i in range(3):
        for j in range(3):
            ref[i, j, 0] = np.einsum("nhw,nhwo->o", xp[:, i:i + 9, j:j + 11, 0],
                                     g)
    np.testing.assert_allclose(dw, ref, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(db, g.sum(axis=(0, 1, 2)), rtol=1e-4, atol=1e-4)
