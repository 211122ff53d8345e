"""pycnn.viz: every picture on a small model, saved and checked by its pixels and the arrays it
carries; the numbers behind them (confusion matrix, ROC/PR, Grad-CAM, gradient ascent,
receptive fields, FLOPs) against hand or NumPy references."""
from __future__ import annotations

import sys

import numpy as np
import pytest

import pycnn
from pycnn import layers, viz

matplotlib = pytest.importorskip("matplotlib")
matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def _png(path, fig=None, dpi=None):
    """The saved image as an (H, W, 3) float array; its size checked against the figure's."""
    img = plt.imread(str(path))[..., :3]
    if fig is not None:
        d = dpi or fig.dpi
        w, h = fig.get_size_inches()
        assert abs(img.shape[0] - h * d) <= 1 and abs(img.shape[1] - w * d) <= 1
    return img


def _not_blank(img):
    assert img.std() > 0.02
    assert (img < 0.9).mean() > 0.005


def _red_pixels(img):
    return int(np.sum((img[..., 0] > 0.7) & (img[..., 1] < 0.35) & (img[..., 2] < 0.35)))


def _lecture_convnet():
    inp = pycnn.Input(shape=(28, 28, 1))
    x = layers.Conv2D(32, 3, activation="relu")(inp)
    x = layers.MaxPool2D(2)(x)
    x = layers.Conv2D(64, 3, activation="relu")(x)
    x = layers.MaxPool2D(2)(x)
    x = layers.Conv2D(128, 3, activation="relu")(x)
    x = layers.Flatten()(x)
    out = layers.Dense(10, activation="softmax")(x)
    return pycnn.Model(inputs=inp, outputs=out)


def _small_convnet(seed=0, act="relu"):
    pycnn.utils.set_random_seed(seed)
    inp = pycnn.Input(shape=(12, 12, 1))
    x = layers.Conv2D(6, 3, activation=act, name="c1")(inp)
    x = (layers.MaxPool2D if act == "relu" else layers.AvgPool2D)(2, name="p1")(x)
    x = layers.Conv2D(8, 3, activation=act, name="c2")(x)
    x = layers.Flatten()(x)
    out = layers.Dense(3, activation="softmax", name="d")(x)
    return pycnn.Model(inp, out)


# ---- matplotlib is optional ---------------------------------------------------------------
@pytest.mark.parametrize("draw", [
    lambda: viz.plot_history({"loss": [1.0, 0.5]}),
    lambda: viz.conv_arithmetic(5, 3),
    lambda: viz.show_images(np.zeros((2, 4, 4))),
    lambda: pycnn.utils.plot_model(_small_convnet(), to_file=None),
    lambda: viz.plot_confusion_matrix([0, 1], [1, 1]),
])
def test_missing_matplotlib_raises_import_error_naming_the_install(monkeypatch, draw):
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    monkeypatch.setitem(sys.modules, "matplotlib.pyplot", None)
    monkeypatch.setitem(sys.modules, "matplotlib.patches", None)
    with pytest.raises(ImportError, match=r"pip install matplotlib.*pip install pycnn\[plot\]"):
        draw()


def test_numbers_need_no_matplotlib(monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    monkeypatch.setitem(sys.modules, "matplotlib.pyplot", None)
    assert viz.confusion_matrix([0, 1, 1], [0, 1, 0]).tolist() == [[1, 0], [1, 1]]
    m = _small_convnet()
    heat, k, _ = viz.grad_cam(m, np.random.default_rng(0).random((12, 12, 1)))
    assert heat.shape == (12, 12)
    assert viz.layer_stats(m)["c2"].receptive_field == (8, 8)


# ---- input gradients through the plan -------------------------------------------------------
def test_plan_input_gradients_match_finite_differences_for_whole_model_and_head():
    m = _small_convnet(3, act="tanh")           # smooth: no kink between x - e and x + e
    rng = np.random.default_rng(0)
    x = rng.random((2, 12, 12, 1)).astype(np.float32)
    plan = m.compiled_plan(False, input_grads=True)
    plan.forward([x])
    dout = np.zeros((2, 3), np.float32)
    dout[:, 1] = 1
    _, gx = plan.backward([dout], return_input_grads=True)
    gx = np.array(gx[0], copy=True)

    def f(z):
        return float(m.predict(z, verbose=0)[:, 1].astype(np.float64).sum())
    for pos in [(0, 3, 4, 0), (1, 6, 6, 0), (0, 10, 2, 0)]:
        xp, xm = x.copy(), x.copy()
        xp[pos] += 1e-2
        xm[pos] -= 1e-2
        np.testing.assert_allclose(gx[pos], (f(xp) - f(xm)) / 2e-2, atol=2e-4, rtol=2e-2)
    # the head after a layer: inputs that are not Input tensors
    head = pycnn.Model(m.get_layer("c1").output, m.output)
    feats = pycnn.Model(m.input, m.get_layer("c1").output).predict(x, verbose=0)
    np.testing.assert_allclose(head.predict(feats, verbose=0), m.predict(x, verbose=0),
                               rtol=1e-5, atol=1e-6)
    plan = head.compiled_plan(False, input_grads=True)
    plan.forward([feats])
    _, ga = plan.backward([dout], return_input_grads=True)
    ga = np.array(ga[0], copy=True)

    def g(a):
        return float(head.predict(a, verbose=0)[:, 1].astype(np.float64).sum())
    for pos in [(0, 2, 3, 1), (1, 5, 5, 4)]:
        ap, am = feats.copy(), feats.copy()
        ap[pos] += 1e-2
        am[pos] -= 1e-2
        np.testing.assert_allclose(ga[pos], (g(ap) - g(am)) / 2e-2, atol=2e-4, rtol=2e-2)


# ---- training curves --------------------------------------------------------------------------
def test_plot_history_of_a_real_fit_has_training_and_validation_panels(tmp_path):
    pycnn.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    x = rng.random((64, 8)).astype(np.float32)
    y = (x.sum(axis=1) > 4).astype(np.int64)
    m = pycnn.Sequential([pycnn.Input(shape=(8,)), layers.Dense(4, activation="relu"),
                          layers.Dense(2, activation="softmax")])
    m.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    history = m.fit(x, y, epochs=3, batch_size=16, validation_split=0.25, verbose=0)
    path = tmp_path / "history.png"
    fig = viz.plot_history(history, to_file=path)
    assert len(fig.axes) == 2
    loss_ax, acc_ax = fig.axes
    assert loss_ax.get_title() == "Training and validation loss"
    assert acc_ax.get_title() == "Training and validation accuracy"
    assert [t.get_text() for t in loss_ax.get_legend().get_texts()] == \
        ["Training loss", "Validation loss"]
    assert [t.get_text() for t in acc_ax.get_legend().get_texts()] == \
        ["Training accuracy", "Validation accuracy"]
    train, val = loss_ax.get_lines()
    assert list(train.get_xdata()) == [1, 2, 3]
    np.testing.assert_allclose(train.get_ydata(), history.history["loss"])
    np.testing.assert_allclose(val.get_ydata(), history.history["val_loss"])
    assert loss_ax.get_xlabel() == "Epochs"
    _not_blank(_png(path, fig))


def test_plot_history_selects_metrics_and_names_unknown_ones():
    logs = {"loss": [1.0, 0.8], "val_loss": [1.2, 1.0], "accuracy": [0.5, 0.6]}
    fig = viz.plot_history(logs, metrics="accuracy")
    assert len(fig.axes) == 1 and fig.axes[0].get_title() == "Training accuracy"
    with pytest.raises(ValueError, match="Unknown metric 'auc'.*available"):
        viz.plot_history(logs, metrics=["auc"])


# ---- image grids --------------------------------------------------------------------------------
def test_show_images_marks_wrong_predictions_in_red(tmp_path):
    rng = np.random.default_rng(1)
    x = (rng.random((9, 10, 10)) * 255).astype(np.uint8)
    y = np.arange(9) % 3
    scores = np.eye(3)[y]
    scores[[2, 7]] = np.eye(3)[[(y[2] + 1) % 3, (y[7] + 1) % 3]]
    path = tmp_path / "grid.png"
    fig = viz.show_images(x, y, scores, class_names=["a", "b", "c"], to_file=path)
    assert fig.wrong == [2, 7]
    titles = [ax.get_title() for ax in fig.axes]
    assert titles[2] == "a (true c)" and titles[0] == "a"
    assert matplotlib.colors.to_hex(fig.axes[2].title.get_color()) == viz.images.WRONG_COLOR
    red = _red_pixels(_png(path, fig))
    right = tmp_path / "right.png"
    fig = viz.show_images(x, y, np.eye(3)[y], to_file=right)
    assert fig.wrong == [] and _red_pixels(_png(right, fig)) == 0
    assert red > 200            # two red frames and titles


def test_show_images_labels_only_and_shapes():
    fig = viz.show_images(np.zeros((5, 6, 6, 1), np.float32), y=[1, 2, 3, 4, 5], n=4)
    shown = [ax.get_title() for ax in fig.axes if ax.get_title()]
    assert shown == ["1", "2", "3", "4"]
    with pytest.raises(ValueError, match=r"x of shape \(6, 6\)"):
        viz.show_images(np.zeros((6, 6)))


# ---- feature maps, filters, Grad-CAM --------------------------------------------------------
def test_feature_maps_draw_every_channel_and_return_the_raw_output(tmp_path):
    m = _lecture_convnet()
    img = np.random.default_rng(2).random((28, 28, 1)).astype(np.float32)
    path = tmp_path / "fm.png"
    fig = viz.feature_maps(m, img, "conv2d", to_file=path)
    want = pycnn.Model(m.input, m.get_layer("conv2d").output).predict(img[None], verbose=0)[0]
    np.testing.assert_allclose(fig.feature_maps, want, rtol=1e-6, atol=1e-6)
    assert fig.feature_maps.shape == (26, 26, 32)
    grid = fig.axes[0].get_images()[0].get_array()
    assert grid.shape == (2 * 27 - 1, 16 * 27 - 1)      # 32 channels, 16 per row
    k = 5                                               # the book's normalisation, channel 5
    a = want[:, :, k].astype(np.float64)
    if a.sum() != 0:
        a = np.clip((a - a.mean()) / a.std() * 64 + 128, 0, 255).astype(np.uint8)
    np.testing.assert_array_equal(grid[:26, k * 27:k * 27 + 26], a)
    _not_blank(_png(path, fig))
    np.testing.assert_allclose(viz.activations(m, img[None], 1), want, rtol=1e-6, atol=1e-6)
    with pytest.raises(ValueError, match="dense"):
        viz.feature_maps(m, img, "dense")
    with pytest.raises(ValueError, match="No such layer: conv9"):
        viz.feature_maps(m, img, "conv9")


def test_filters_gradient_ascent_increases_each_filters_activation(tmp_path):
    m = _small_convnet(4)
    path = tmp_path / "filters.png"
    fig = viz.filters(m, "c2", to_file=path, ascent_steps=15)
    history = fig.ascent_history
    assert history.shape == (16, 8)
    assert np.all(history[-1] >= history[0] - 1e-6)
    assert np.mean(history[-1] > history[0] + 1e-4) >= 0.75
    assert history[-1].mean() > 2 * history[0].mean() + 1e-3
    assert fig.patterns.shape == (8, 12, 12, 1)
    assert fig.kernels.shape == (8, 3, 3, 6)       # not images: only the patterns are drawn
    assert len(fig.axes) == 1
    _not_blank(_png(path, fig))
    # the first layer's kernels are drawn as images, and what is drawn is the layer's kernel
    fig = viz.filters(m, "c1", ascent_steps=3, filter_indices=[0, 2])
    np.testing.assert_array_equal(fig.kernels, np.moveaxis(m.get_layer("c1").kernel.numpy(),
                                                           3, 0)[[0, 2]])
    assert len(fig.axes) == 2 and fig.patterns.shape == (2, 12, 12, 1)
    with pytest.raises(ValueError, match="Conv2D"):
        viz.filters(m, "d")


def test_filter_patterns_climb_the_mean_activation_the_book_maximises():
    m = _small_convnet(5)
    x0, hist0 = viz.filter_patterns(m, "c1", [1], ascent_steps=0)
    x, hist = viz.filter_patterns(m, "c1", [1], ascent_steps=10)
    np.testing.assert_array_equal(x0, x0.clip(0.4, 0.6))     # grey noise to start
    sub = pycnn.Model(m.input, m.get_layer("c1").output)
    before = sub.predict(x0, verbose=0)[0, 2:-2, 2:-2, 1].mean()
    after = sub.predict(x, verbose=0)[0, 2:-2, 2:-2, 1].mean()
    np.testing.assert_allclose([hist[0, 0], hist[-1, 0]], [before, after], rtol=1e-5,
                               atol=1e-6)
    assert after > before


def _bars(n, rng, size=16):
    """Class 0: a horizontal bar 2x6, class 1: a vertical bar 6x2, anywhere on dim noise."""
    x = rng.uniform(0, 0.3, (n, size, size, 1)).astype(np.float32)
    y = rng.integers(0, 2, n)
    boxes = []
    for i in range(n):
        h, w = (2, 6) if y[i] == 0 else (6, 2)
        r, c = rng.integers(0, size - h + 1), rng.integers(0, size - w + 1)
        x[i, r:r + h, c:c + w, 0] = 1.0
        boxes.append((r, c, h, w))
    return x, y, boxes


def _bar_model():
    pycnn.utils.set_random_seed(1)
    inp = pycnn.Input(shape=(16, 16, 1))
    h = layers.Conv2D(8, 3, padding="same", activation="relu")(inp)
    h = layers.MaxPool2D(2)(h)
    h = layers.Conv2D(16, 3, padding="same", activation="relu", name="last_conv")(h)
    h = layers.GlobalAveragePooling2D()(h)
    out = layers.Dense(2, activation="softmax", name="head")(h)
    return pycnn.Model(inp, out)


def test_grad_cam_is_cam_for_a_global_pooling_head():
    """With global average pooling then Dense, d logit_k / dA = W[:, k] / (h w) everywhere:
    Grad-CAM is relu(A @ W[:, k]) normalised (Zhou et al.'s CAM)."""
    m = _bar_model()
    img = _bars(1, np.random.default_rng(3))[0][0]
    for k in (0, 1):
        heat, got_k, cam = viz.grad_cam(m, img, "last_conv", class_index=k)
        a = viz.activations(m, img, "last_conv").astype(np.float64)
        want = np.maximum(a @ m.get_layer("head").kernel.numpy()[:, k].astype(np.float64), 0)
        want = want / want.max()
        assert got_k == k
        np.testing.assert_allclose(cam, want, rtol=1e-4, atol=1e-5)
        assert heat.shape == (16, 16) and heat.dtype == np.float32
        assert heat.min() >= 0 and heat.max() == pytest.approx(1.0)


def test_grad_cam_points_at_the_object_that_decides_the_class(tmp_path):
    m = _bar_model()
    x, y, _ = _bars(512, np.random.default_rng(0))
    m.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    m.fit(x, y, epochs=12, batch_size=32, verbose=0)
    xt, yt, boxes = _bars(20, np.random.default_rng(5))
    hits = 0
    for i in range(20):
        heat, k, _ = viz.grad_cam(m, xt[i])            # default: the last convolution
        r, c = np.unravel_index(np.argmax(heat), heat.shape)
        br, bc, bh, bw = boxes[i]
        hits += (k == yt[i]) and br - 2 <= r < br + bh + 2 and bc - 2 <= c < bc + bw + 2
    assert hits >= 16
    path = tmp_path / "cam.png"
    fig = viz.class_activation_map(m, xt[0], to_file=path, class_names=["horizontal",
                                                                         "vertical"])
    assert fig.heatmap.shape == (16, 16) and 0 <= fig.heatmap.min() and \
        fig.heatmap.max() == pytest.approx(1.0)
    assert fig.axes[2].get_title() == f"class {['horizontal', 'vertical'][fig.class_index]}"
    _not_blank(_png(path, fig))
    with pytest.raises(ValueError, match="class_index must be in"):
        viz.grad_cam(m, xt[0], class_index=2)


# ---- confusion matrix and curves ------------------------------------------------------------
def test_confusion_matrix_equals_a_numpy_count():
    rng = np.random.default_rng(0)
    t = rng.integers(0, 4, 200)
    p = rng.integers(0, 4, 200)
    want = np.zeros((4, 4), np.int64)
    for a, b in zip(t, p):
        want[a, b] += 1
    cm = viz.confusion_matrix(t, p)
    assert cm.dtype == np.int64
    np.testing.assert_array_equal(cm, want)
    np.testing.assert_array_equal(viz.confusion_matrix(np.eye(4)[t], rng.random((200, 4)) +
                                                       np.eye(4)[p] * 2), want)
    np.testing.assert_array_equal(viz.confusion_matrix(t, p, num_classes=6)[:4, :4], want)
    np.testing.assert_allclose(viz.confusion_matrix(t, p, normalize="true"),
                               want / want.sum(axis=1, keepdims=True))
    np.testing.assert_allclose(viz.confusion_matrix(t, p, normalize="pred"),
                               want / want.sum(axis=0, keepdims=True))
    np.testing.assert_allclose(viz.confusion_matrix(t, p, normalize="all"), want / 200)
    # one sigmoid probability per sample
    np.testing.assert_array_equal(viz.confusion_matrix([0, 1, 1], [[0.2], [0.4], [0.9]]),
                                  [[1, 0], [1, 1]])
    with pytest.raises(ValueError, match="out of range for num_classes=2"):
        viz.confusion_matrix([0, 2], [0, 1], num_classes=2)


def test_plot_confusion_matrix_writes_every_count(tmp_path):
    t = [0, 0, 1, 2, 2, 2]
    p = [0, 1, 1, 2, 2, 0]
    path = tmp_path / "cm.png"
    fig = viz.plot_confusion_matrix(t, p, class_names=["cat", "dog", "cow"], to_file=path)
    np.testing.assert_array_equal(fig.matrix, [[1, 1, 0], [0, 1, 0], [1, 0, 2]])
    ax = fig.axes[0]
    assert sorted(tx.get_text() for tx in ax.texts) == sorted("110010102")
    assert ax.get_xlabel() == "Predicted label" and ax.get_ylabel() == "True label"
    _not_blank(_png(path, fig))


def test_roc_and_precision_recall_curves_by_hand(tmp_path):
    y = np.array([0, 0, 1, 1, 0, 1])
    s = np.array([0.1, 0.4, 0.35, 0.8, 0.4, 0.9])
    fpr, tpr, thr = viz.roc_curve(y, s)
    np.testing.assert_allclose(thr, [np.inf, 0.9, 0.8, 0.4, 0.35, 0.1])
    np.testing.assert_allclose(fpr, [0, 0, 0, 2 / 3, 2 / 3, 1])
    np.testing.assert_allclose(tpr, [0, 1 / 3, 2 / 3, 2 / 3, 1, 1])
    pos, neg = s[y == 1], s[y == 0]      # AUC = P(score of a positive > a negative)
    pairs = (pos[:, None] > neg[None]).mean() + 0.5 * (pos[:, None] == neg[None]).mean()
    assert viz.auc(fpr, tpr) == pytest.approx(pairs)
    precision, recall, pthr = viz.precision_recall_curve(y, s)
    np.testing.assert_allclose(pthr, [0.1, 0.35, 0.4, 0.8, 0.9])
    np.testing.assert_allclose(precision, [0.5, 0.6, 0.5, 1, 1, 1])
    np.testing.assert_allclose(recall, [1, 1, 2 / 3, 2 / 3, 1 / 3, 0])
    assert viz.average_precision(y, s) == pytest.approx(1 / 3 + 1 / 3 + 0.6 / 3)
    path = tmp_path / "roc.png"
    fig = viz.plot_roc_curve(np.array([0, 1, 2, 1]), np.eye(3)[[0, 1, 2, 2]] * 0.8 + 0.1,
                             to_file=path)
    assert sorted(fig.curves) == ["0", "1", "2"] and fig.curves["0"][3] == pytest.approx(1.0)
    _not_blank(_png(path, fig))
    fig = viz.plot_precision_recall_curve(y, s)
    assert fig.curves["PR"][3] == pytest.approx(viz.average_precision(y, s))


# ---- convolution arithmetic -----------------------------------------------------------------
@pytest.mark.parametrize("i, f, s, padding, text", [
    (5, 3, 1, "valid", "O = (I - F + 2P) / S + 1 = (5 - 3 + 2*0) / 1 + 1 = 3"),
    (5, 3, 2, "valid", "O = (I - F + 2P) / S + 1 = (5 - 3 + 2*0) / 2 + 1 = 2"),
    (5, 3, 1, "same", "O = (I - F + 2P) / S + 1 = (5 - 3 + 2*1) / 1 + 1 = 5"),
    (5, 3, 2, "same", "O = (I - F + 2P) / S + 1 = (5 - 3 + 2*1) / 2 + 1 = 3"),
    (28, 3, 1, "valid", "O = (I - F + 2P) / S + 1 = (28 - 3 + 2*0) / 1 + 1 = 26"),
    (26, 2, 2, "valid", "O = (I - F + 2P) / S + 1 = (26 - 2 + 2*0) / 2 + 1 = 13"),
    (6, 3, 2, "valid", "O = floor((I - F + 2P) / S) + 1 = floor((6 - 3 + 2*0) / 2) + 1 = 2"),
    (6, 3, 2, "same", "O = (I - F + 2P) / S + 1 = (6 - 3 + (0 + 1)) / 2 + 1 = 3"),
    (7, 5, 1, 2, "O = (I - F + 2P) / S + 1 = (7 - 5 + 2*2) / 1 + 1 = 7"),
])
def test_conv_arithmetic_writes_the_lecture_formula_with_the_numbers(tmp_path, i, f, s,
                                                                      padding, text):
    assert viz.conv_formula(i, f, s, padding) == text
    path = tmp_path / "conv.png"
    fig = viz.conv_arithmetic(i, f, strides=s, padding=padding, to_file=path)
    assert fig.formula == text and fig._suptitle.get_text() == text
    o = int(text.rsplit("= ", 1)[1])
    assert fig.output_size == (o, o)
    img = _png(path, fig)
    _not_blank(img)
    # the output grid: o x o cells, the window's cell in blue
    assert len(fig.axes[1].collections[0].get_paths()) == o * o
    assert np.sum((img[..., 2] > 0.6) & (img[..., 0] < 0.25)) > 50


def test_conv_arithmetic_output_size_agrees_with_conv2d():
    for i in (5, 6, 7, 28):
        for f in (1, 2, 3, 5):
            for s in (1, 2, 3):
                for padding in ("valid", "same"):
                    if f > i:
                        continue
                    layer = layers.Conv2D(1, f, strides=s, padding=padding)
                    want = layer.compute_output_shape((None, i, i, 1))[1:3]
                    assert viz.output_size(i, f, s, padding) == tuple(want)
    assert viz.conv_formula((7, 6), (3, 2), (2, 1)).split("\n") == [
        "height: O = (I - F + 2P) / S + 1 = (7 - 3 + 2*0) / 2 + 1 = 3",
        "width: O = (I - F + 2P) / S + 1 = (6 - 2 + 2*0) / 1 + 1 = 5"]
    with pytest.raises(ValueError, match="larger than the padded input"):
        viz.conv_formula(3, 5)


# ---- plot_model -----------------------------------------------------------------------------
def _branching_model():
    inp = pycnn.Input(shape=(8, 8, 3), name="image")
    a = layers.Conv2D(4, 3, padding="same", activation="relu", name="left")(inp)
    b = layers.Conv2D(4, 1, name="right")(inp)
    b = layers.ReLU(name="right_relu")(b)
    m = layers.Concatenate(name="merge")([a, b])
    x = layers.GlobalAveragePooling2D(name="gap")(m)
    s = layers.Add(name="skip_sum")([layers.Dense(5, name="d1")(x), layers.Dense(5, name="d2")(x)])
    return pycnn.Model(inp, s)


def test_plot_model_lays_out_branches_and_merges(tmp_path):
    m = _branching_model()
    path = tmp_path / "model.png"
    fig = pycnn.utils.plot_model(m, to_file=str(path), show_shapes=True, dpi=80)
    boxes, edges = fig.boxes, fig.edges
    assert set(boxes) == {"image", "left", "right", "right_relu", "merge", "gap", "d1", "d2",
                          "skip_sum"}
    assert sorted(edges) == sorted([("image", "left"), ("image", "right"),
                                    ("right", "right_relu"), ("left", "merge"),
                                    ("right_relu", "merge"), ("merge", "gap"), ("gap", "d1"),
                                    ("gap", "d2"), ("d1", "skip_sum"), ("d2", "skip_sum")])
    level = {k: b.level for k, b in boxes.items()}
    assert level == {"image": 0, "left": 1, "right": 1, "right_relu": 2, "merge": 3, "gap": 4,
                     "d1": 5, "d2": 5, "skip_sum": 6}
    assert boxes["left"].y == boxes["right"].y and boxes["left"].x != boxes["right"].x
    assert boxes["d1"].y == boxes["d2"].y and abs(boxes["d1"].x - boxes["d2"].x) >= \
        (boxes["d1"].w + boxes["d2"].w) / 2
    for src, dst in edges:                 # every arrow points down
        assert boxes[dst].y > boxes[src].y
    assert boxes["merge"].lines == ["merge (Concatenate)",
                                    "input:  [(None, 8, 8, 4), (None, 8, 8, 4)]",
                                    "output: (None, 8, 8, 8)"]
    assert boxes["image"].lines[0] == "image (InputLayer)"
    assert len([c for c in fig.axes[0].get_children()
                if type(c).__name__ == "Annotation"]) == len(edges)
    _not_blank(_png(path, fig, dpi=80))
    fig = viz.plot_model(m, to_file=None, rankdir="LR", show_layer_names=False)
    for src, dst in fig.edges:
        assert fig.boxes[dst].x > fig.boxes[src].x
    assert fig.boxes["left"].lines == ["Conv2D"]
    with pytest.raises(ValueError, match="rankdir"):
        viz.plot_model(m, to_file=None, rankdir="XY")


def test_plot_model_of_a_sequential_model(tmp_path):
    m = pycnn.Sequential([pycnn.Input(shape=(4,)), layers.Dense(3, name="a"),
                          layers.Dense(2, name="b")])
    fig = pycnn.utils.plot_model(m, to_file=str(tmp_path / "seq.png"))
    assert [e for e in fig.edges] == [(m.inputs[0].node.layer.name, "a"), ("a", "b")]
    assert (tmp_path / "seq.png").stat().st_size > 0


# ---- summary columns ------------------------------------------------------------------------
def test_receptive_field_and_flops_of_the_lecture_convnet():
    m = _lecture_convnet()
    stats = viz.layer_stats(m)
    names = [l.name for l in m.layers]
    rf = [stats[n].receptive_field for n in names[:6]]
    jump = [stats[n].jump for n in names[:6]]
    # by hand: r' = r + (k - 1) j, j' = j s from (1, 1): conv3 3, pool2 4, conv3 8, pool2 10,
    # conv3 18
    assert rf == [(1, 1), (3, 3), (4, 4), (8, 8), (10, 10), (18, 18)]
    assert jump == [(1, 1), (1, 1), (2, 2), (2, 2), (4, 4), (4, 4)]
    assert stats[names[6]].receptive_field == (18, 18) and stats[names[6]].jump is None
    assert stats[names[7]].receptive_field == (28, 28)            # a Dense sees everything
    flops = [stats[n].flops for n in names]
    assert flops == [0, 2 * 26 * 26 * 32 * 3 * 3 * 1, 13 * 13 * 32 * 4,
                     2 * 11 * 11 * 64 * 3 * 3 * 32, 5 * 5 * 64 * 4,
                     2 * 3 * 3 * 128 * 3 * 3 * 64, 0, 2 * 1152 * 10]


def test_flops_of_transposed_convolutions_count_every_input_value_times_the_kernel():
    m = pycnn.Sequential([pycnn.Input(shape=(5, 6, 3)),
                          layers.Conv2DTranspose(4, 2, strides=2, name="up"),
                          layers.Conv2DTranspose(2, 3, strides=1, padding="same", name="same")])
    stats = viz.layer_stats(m)
    assert stats["up"].flops == 2 * 5 * 6 * 3 * 2 * 2 * 4
    assert stats["same"].flops == 2 * 10 * 12 * 4 * 3 * 3 * 2


def test_summary_prints_receptive_field_and_flops_columns_only_when_asked():
    from pycnn.utils.summary_table import format_summary
    m = _lecture_convnet()
    plain = []
    m.summary(print_fn=plain.append)
    assert "\n".join(plain) == format_summary(m.name, m._summary_rows(), 104202, 0)
    lines = []
    m.summary(print_fn=lines.append, show_receptive_field=True, show_flops=True)
    assert lines[2].split() == ["Layer", "(type)", "Output", "Shape", "Param", "#", "Receptive",
                                "field", "Jump", "FLOPs"]
    rows = {ln.split()[0]: ln.split() for ln in lines[4:] if ln.strip() and ln[1] != " "}
    conv2 = [l.name for l in m.layers][5]
    assert rows[conv2][-3:] == ["18x18", "4", str(2 * 3 * 3 * 128 * 3 * 3 * 64)]
    assert lines[-2].startswith("FLOPs per sample: ")
    assert len({len(ln) for ln in lines[1:-6]}) == 1               # every table line padded
    rf_only = []
    m.summary(print_fn=rf_only.append, show_receptive_field=True)
    assert "FLOPs" not in "\n".join(rf_only) and "18x18" in "\n".join(rf_only)


def test_models_show_their_summary_as_html_in_notebooks():
    m = _lecture_convnet()
    text = m._repr_html_()
    assert text.startswith("<div>") and "<table" in text
    for layer in m.layers:
        assert f"{layer.name} ({type(layer).__name__})" in text
    assert "Total params: 104202" in text and "18x18 (jump 4)" in text

    class Sub(pycnn.Model):
        def __init__(self):
            super().__init__()
            self.d = layers.Dense(2)

        def call(self, x):
            return self.d(x)
    assert Sub()._repr_html_() is None


def test_receptive_field_through_a_nested_model_composes_its_layers():
    base = pycnn.Sequential([pycnn.Input(shape=(16, 16, 1)), layers.Conv2D(2, 3),
                             layers.MaxPool2D(2)], name="base")
    inp = pycnn.Input(shape=(16, 16, 1))
    x = layers.Conv2D(1, 3, padding="same", name="pre")(inp)
    x = base(x)
    x = layers.Conv2D(2, 3, name="post")(x)
    out = layers.Dense(2, name="head")(layers.Flatten(name="flat")(x))
    stats = viz.layer_stats(pycnn.Model(inp, out))
    # pre 3 (jump 1); base: conv 3 -> 5, pool 2 -> 6 (jump 2); post: 6 + 2 * 2 = 10 (jump 2)
    assert stats["base"].receptive_field == (6, 6) and stats["base"].jump == (2, 2)
    assert stats["post"].receptive_field == (10, 10) and stats["post"].jump == (2, 2)
    assert stats["base"].flops == 2 * 14 * 14 * 2 * 9 + 7 * 7 * 2 * 4
    assert stats["head"].receptive_field == (16, 16)
