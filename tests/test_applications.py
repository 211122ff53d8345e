"""pycnn.applications: VGG16, ResNet50 and MobileNetV2 as Keras builds them (layer names,
order, classes, weight names and shapes from tf-keras in fixtures/applications/structure.json),
Keras' weight files loaded and predicting as Keras (a committed MobileNetV2 file; VGG16 and
ResNet50 files written by tf-keras when its Python is available), ``weights="imagenet"`` through
Keras' cache with Keras' hashes (downloads faked: no test touches the network), Keras' argument
checks, ``preprocess_input`` and ``decode_predictions``, and frozen bases (weights and batch
normalization statistics unchanged by ``fit``, a new head trains).
"""
from __future__ import annotations

import hashlib
import io
import json
import os
import subprocess
from pathlib import Path

import h5py
import numpy as np
import pytest

import pycnn
from pycnn import applications, layers
from pycnn.applications import imagenet_utils, mobilenet_v2, resnet, vgg16
from pycnn.datasets import _fetch

FIXTURES = Path(__file__).parent / "fixtures" / "applications"
STRUCTURES = json.loads((FIXTURES / "structure.json").read_text())
APPS = {"VGG16": applications.VGG16, "ResNet50": applications.ResNet50,
        "MobileNetV2": applications.MobileNetV2}


@pytest.fixture(autouse=True)
def keras_home(tmp_path, monkeypatch):
    """Every test gets an empty Keras cache, and any download attempt fails loudly."""
    home = tmp_path / "keras_home"
    monkeypatch.setenv("KERAS_HOME", str(home))

    def no_network(url, timeout):
        raise AssertionError(f"a test tried to download {url}")

    monkeypatch.setattr(_fetch, "_urlopen", no_network)
    monkeypatch.setattr(imagenet_utils, "CLASS_INDEX", None)
    return home


def md5(path) -> str:
    return hashlib.md5(Path(path).read_bytes()).hexdigest()


def weights_of(model) -> dict:
    return {v.name: np.array(v.value, copy=True) for v in model.weights}


class FakeResponse(io.BytesIO):
    def __init__(self, data: bytes):
        super().__init__(data)
        self.headers = {"Content-Length": str(len(data))}


def serve(monkeypatch, files: dict) -> list:
    """Fake downloads: ``files`` maps URL -> bytes; returns the list of URLs fetched."""
    fetched = []

    def urlopen(url, timeout):
        fetched.append(url)
        if url not in files:
            raise OSError(f"404 {url}")
        return FakeResponse(files[url])

    monkeypatch.setattr(_fetch, "_urlopen", urlopen)
    return fetched


# ---- structure: Keras' layers, names, order, weights ------------------------------------------
@pytest.mark.parametrize("entry", STRUCTURES,
                         ids=[f"{e['app']}-{e['name']}-{len(e['layers'])}" for e in STRUCTURES])
def test_layers_names_order_and_weights_are_keras(entry):
    """structure.json is tf-keras 2's, whose DepthwiseConv2D calls its weight
    ``depthwise_kernel``; Keras 3 (and pycnn) call it ``kernel`` (loading matches it by
    position and shape)."""
    model = APPS[entry["app"]](**entry["kwargs"])
    assert model.name == entry["name"]
    got = [[l.name, type(l).__name__,
            [[v.name.rsplit("/", 1)[-1], list(v.shape)] for v in l.weights]]
           for l in model.layers]
    keras3 = {"depthwise_kernel": "kernel"}
    want = [[name, cls, [[keras3.get(w, w), shape] for w, shape in weights]]
            for name, cls, weights in entry["layers"]]
    assert got == want
    assert list(model.output_shape) == entry["output_shape"]
    assert model.count_params() == entry["params"]


def test_models_are_importable_as_in_keras():
    from pycnn.applications.resnet50 import ResNet50, preprocess_input
    assert ResNet50 is applications.ResNet50 is resnet.ResNet50
    assert preprocess_input is resnet.preprocess_input
    assert applications.VGG16 is vgg16.VGG16
    assert applications.MobileNetV2 is mobilenet_v2.MobileNetV2


def test_input_tensor_becomes_the_model_input_and_its_sources_are_kept():
    inp = pycnn.Input(shape=(32, 32, 3))
    model = applications.VGG16(include_top=False, weights=None, input_tensor=inp)
    assert model.inputs[0] is inp
    assert model.output_shape == (None, 1, 1, 512)
    # a tensor computed from an Input: the model starts at that Input (Keras'
    # get_source_inputs), the layers in between included
    raw = pycnn.Input(shape=(36, 36, 3))
    cropped = layers.Cropping2D(2, name="crop")(raw)
    model = applications.MobileNetV2(include_top=False, weights=None, alpha=0.35,
                                     input_tensor=cropped)
    assert model.inputs[0] is raw
    assert "crop" in [l.name for l in model.layers]
    assert model.predict(np.zeros((1, 36, 36, 3), np.float32), verbose=0).shape == \
        (1, 1, 1, 1280)


# ---- numbers: Keras' files predict as Keras ---------------------------------------------------
def test_mobilenet_v2_keras_file_predicts_as_keras():
    """tf-keras' MobileNetV2(alpha=0.35, 32x32, no top), random batch-norm statistics, saved
    with save_weights (the published layout): pycnn's model loads it and predicts the same."""
    ref = np.load(FIXTURES / "mobilenet_v2.npz")
    model = applications.MobileNetV2(input_shape=(32, 32, 3), alpha=0.35, include_top=False,
                                     weights=str(FIXTURES / "mobilenet_v2.h5"))
    with h5py.File(FIXTURES / "mobilenet_v2.h5", "r") as f:
        assert [str(n) for n in ref["layers"]] == \
            [n.decode() if isinstance(n, bytes) else str(n) for n in f.attrs["layer_names"]]
    assert [l.name for l in model.layers] == [str(n) for n in ref["layers"]]
    y = model.predict(ref["x"], verbose=0)
    assert y.shape == ref["y"].shape
    np.testing.assert_allclose(y, ref["y"], rtol=0, atol=1e-4)
    # and not by luck: a model without those weights predicts something else
    other = applications.MobileNetV2(input_shape=(32, 32, 3), alpha=0.35, include_top=False,
                                     weights=None)
    assert np.abs(other.predict(ref["x"], verbose=0) - ref["y"]).max() > 1e-2


def _tf_keras_python():
    exe = os.environ.get("PYCNN_TF_KERAS_PYTHON") or "/work/venvs/tf/bin/python"
    return exe if Path(exe).exists() else None


@pytest.fixture(scope="module")
def keras_files(tmp_path_factory):
    """VGG16 (with and without top) and ResNet50 weights and predictions written by tf-keras
    (make_fixtures.py), once per test session; skipped without tf-keras."""
    exe = _tf_keras_python()
    if exe is None:
        pytest.skip("tf-keras not available (set PYCNN_TF_KERAS_PYTHON to its python)")
    out = tmp_path_factory.mktemp("keras_apps")
    subprocess.run([exe, str(FIXTURES / "make_fixtures.py"), str(out), "vgg16", "vgg16_top",
                    "resnet50"], check=True, capture_output=True, timeout=600)
    return out


@pytest.mark.parametrize("name, build", [
    ("vgg16", lambda w: applications.VGG16(include_top=False, weights=w,
                                           input_shape=(32, 32, 3))),
    ("vgg16_top", lambda w: applications.VGG16(include_top=True, weights=w,
                                               input_shape=(32, 32, 3), classes=10)),
    ("resnet50", lambda w: applications.ResNet50(include_top=False, weights=w,
                                                 input_shape=(64, 64, 3))),
])
def test_vgg16_and_resnet50_keras_files_predict_as_keras(keras_files, name, build):
    ref = np.load(keras_files / f"{name}.npz")
    model = build(str(keras_files / f"{name}.h5"))
    assert [l.name for l in model.layers] == [str(n) for n in ref["layers"]]
    y = model.predict(ref["x"], verbose=0)
    scale = max(1.0, float(np.abs(ref["y"]).max()))
    np.testing.assert_allclose(y / scale, ref["y"] / scale, rtol=0, atol=1e-4)


def test_keras1_weight_names_of_the_published_vgg16_files_load_by_position(tmp_path):
    """Keras' VGG16 files date from Keras 1: weights are named ``block1_conv1_W_1:0``,
    ``block1_conv1_b_1:0``; within a layer they load in order, checked by shape."""
    src = applications.VGG16(include_top=False, weights=None, input_shape=(32, 32, 3))
    path = tmp_path / "vgg16_keras1.h5"
    with h5py.File(path, "w") as f:
        f.attrs["layer_names"] = np.array([l.name.encode() for l in src.layers])
        f.attrs["backend"] = b"tensorflow"
        f.attrs["keras_version"] = b"1.2.2"
        for l in src.layers:
            g = f.create_group(l.name)
            names = [f"{l.name}_{s}_1:0" for s in ("W", "b")][:len(l.weights)]
            g.attrs["weight_names"] = np.array([n.encode() for n in names])
            for n, v in zip(names, l.weights):
                g.create_dataset(n, data=np.asarray(v.value))
    model = applications.VGG16(include_top=False, weights=str(path), input_shape=(32, 32, 3))
    for a, b in zip(model.get_weights(), src.get_weights()):
        np.testing.assert_array_equal(a, b)


# ---- weights="imagenet": Keras' cache, names and hashes ---------------------------------------
def _cache_file(home: Path, name: str, model) -> Path:
    path = home / "models" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    model.save_weights(str(path))
    return path


def test_imagenet_weights_are_read_from_keras_cache_with_their_hash(keras_home, monkeypatch):
    src = applications.VGG16(include_top=False, weights=None, input_shape=(32, 32, 3))
    name = "vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5"
    path = _cache_file(keras_home, name, src)
    monkeypatch.setitem(vgg16.WEIGHTS_FILES, False, (name, md5(path)))
    model = applications.VGG16(include_top=False, weights="imagenet", input_shape=(32, 32, 3))
    for a, b in zip(model.get_weights(), src.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_imagenet_file_names_urls_and_hashes_are_keras():
    assert vgg16.WEIGHTS_FILES[True] == ("vgg16_weights_tf_dim_ordering_tf_kernels.h5",
                                         "64373286793e3c8b2b4e3219cbf3544b")
    assert vgg16.WEIGHTS_FILES[False] == ("vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5",
                                          "6d6bbae143d832006294945121d1f1fc")
    assert vgg16.WEIGHTS_PATH_NO_TOP.endswith("/vgg16/" + vgg16.WEIGHTS_FILES[False][0])
    assert resnet.WEIGHTS_HASHES["resnet50"] == ("2cb95161c43110f7111970584f804107",
                                                 "4d473c1dd8becc155b73f8504c6f6626")
    assert mobilenet_v2.weights_file_name(0.35, 96, False) == \
        "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_0.35_96_no_top.h5"
    assert mobilenet_v2.weights_file_name(1, 224, True) == \
        "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_224.h5"
    assert imagenet_utils.CLASS_INDEX_HASH == "c2c37ea517e94d9795004a39431a14cb"


def test_imagenet_download_goes_once_into_keras_cache(keras_home, monkeypatch, tmp_path):
    src = applications.ResNet50(include_top=False, weights=None, input_shape=(32, 32, 3))
    staged = tmp_path / "staged.h5"
    src.save_weights(str(staged))
    data = staged.read_bytes()
    name = "resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5"
    url = resnet.BASE_WEIGHTS_PATH + name
    monkeypatch.setitem(resnet.WEIGHTS_HASHES, "resnet50",
                        ("0" * 32, hashlib.md5(data).hexdigest()))
    fetched = serve(monkeypatch, {url: data})
    for _ in range(2):
        model = applications.ResNet50(include_top=False, weights="imagenet",
                                      input_shape=(32, 32, 3))
        for a, b in zip(model.get_weights(), src.get_weights()):
            np.testing.assert_array_equal(a, b)
    assert fetched == [url]
    assert (keras_home / "models" / name).read_bytes() == data
    assert not [p for p in (keras_home / "models").iterdir() if p.name != name]


def test_imagenet_download_with_a_wrong_hash_saves_nothing(keras_home, monkeypatch):
    name = "resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5"
    serve(monkeypatch, {resnet.BASE_WEIGHTS_PATH + name: b"not the weights"})
    with pytest.raises(_fetch.ChecksumError, match="4d473c1dd8becc155b73f8504c6f6626"):
        applications.ResNet50(include_top=False, weights="imagenet", input_shape=(32, 32, 3))
    assert not list((keras_home / "models").iterdir())


def test_imagenet_without_network_says_where_to_put_the_file(keras_home, monkeypatch):
    serve(monkeypatch, {})
    with pytest.raises(FileNotFoundError) as err:
        applications.VGG16(include_top=False, weights="imagenet", input_shape=(32, 32, 3))
    msg = str(err.value)
    assert "vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5" in msg
    assert str(keras_home / "models") in msg and "weights=" in msg


def test_cached_file_with_a_wrong_hash_is_downloaded_again(keras_home, monkeypatch, tmp_path):
    src = applications.VGG16(include_top=False, weights=None, input_shape=(32, 32, 3))
    name = vgg16.WEIGHTS_FILES[False][0]
    staged = tmp_path / "good.h5"
    src.save_weights(str(staged))
    good = staged.read_bytes()
    (keras_home / "models").mkdir(parents=True)
    (keras_home / "models" / name).write_bytes(b"truncated")
    monkeypatch.setitem(vgg16.WEIGHTS_FILES, False, (name, hashlib.md5(good).hexdigest()))
    fetched = serve(monkeypatch, {vgg16.WEIGHTS_PATH_NO_TOP: good})
    with pytest.warns(UserWarning, match="invalid hash"):
        applications.VGG16(include_top=False, weights="imagenet", input_shape=(32, 32, 3))
    assert fetched == [vgg16.WEIGHTS_PATH_NO_TOP]
    assert (keras_home / "models" / name).read_bytes() == good


def test_mobilenet_v2_imagenet_file_is_chosen_by_alpha_and_size(keras_home):
    """Keras publishes MobileNetV2's files without a hash; the file depends on alpha and on
    the input size (96..224 squares; other sizes warn and take the 224 file)."""
    src = applications.MobileNetV2(input_shape=(32, 32, 3), alpha=0.35, include_top=False,
                                   weights=None)
    _cache_file(keras_home, mobilenet_v2.weights_file_name(0.35, 224, False), src)
    with pytest.warns(UserWarning, match=r"Weights for input shape \(224, 224\)"):
        model = applications.MobileNetV2(input_shape=(32, 32, 3), alpha=0.35,
                                         include_top=False, weights="imagenet")
    assert model.name == "mobilenetv2_0.35_224"
    for a, b in zip(model.get_weights(), src.get_weights()):
        np.testing.assert_array_equal(a, b)
    # a 96x96 input looks for the _96_ file, which is not there (and nothing downloads)
    with pytest.raises(AssertionError, match="0.35_96_no_top.h5"):
        applications.MobileNetV2(input_shape=(96, 96, 3), alpha=0.35, include_top=False,
                                 weights="imagenet")


# ---- Keras' argument checks -------------------------------------------------------------------
@pytest.mark.parametrize("build, message", [
    (lambda: applications.VGG16(weights="no/such/file.h5"),
     "The `weights` argument should be either `None`"),
    (lambda: applications.ResNet50(weights="imagenet", classes=10),
     r"`classes` should be 1000.  Received classes=10"),
    (lambda: applications.MobileNetV2(weights="imagenet", classes=10),
     r"`classes` should be 1000. Received `classes=10`"),
    (lambda: applications.VGG16(weights="imagenet", input_shape=(32, 32, 3)),
     r"When setting `include_top=True` and loading `imagenet` weights, `input_shape` should "
     r"be \(224, 224, 3\)"),
    (lambda: applications.VGG16(include_top=False, weights=None, input_shape=(31, 64, 3)),
     "Input size must be at least 32x32"),
    (lambda: applications.ResNet50(include_top=False, weights="imagenet",
                                   input_shape=(64, 64, 1)),
     "The input must have 3 channels"),
    (lambda: applications.VGG16(include_top=False, weights=None, input_shape=(64, 64)),
     "`input_shape` must be a tuple of three integers"),
    (lambda: applications.MobileNetV2(alpha=0.6, weights="imagenet"),
     "alpha must be one of `0.35`, `0.50`, `0.75`, `1.0`, `1.3` or `1.4` only"),
    (lambda: applications.MobileNetV2(input_shape=(64, 64, 3),
                                      input_tensor=pycnn.Input((64, 32, 3)), weights=None,
                                      include_top=False),
     r"input_tensor.shape\[2\] must equal input_shape\[1\]"),
    (lambda: applications.VGG16(include_top=False, weights=None),
     "pycnn builds models for one input size: pass `input_shape`"),
    (lambda: applications.VGG16(input_tensor=np.zeros((1, 32, 32, 3)), include_top=False,
                                weights=None),
     "`input_tensor` must be a pycnn symbolic tensor"),
], ids=["weights-path", "resnet-classes", "mobilenet-classes", "top-shape", "min-size",
        "channels", "rank", "alpha", "tensor-shape", "static-shape", "tensor-type"])
def test_argument_errors_are_keras(build, message):
    with pytest.raises(ValueError, match=message):
        build()


def test_pretrained_classifier_allows_only_softmax_or_none(keras_home, monkeypatch):
    path = keras_home / "w.h5"
    path.parent.mkdir(parents=True)
    applications.VGG16(weights=None, input_shape=(32, 32, 3), classes=3).save_weights(str(path))
    with pytest.raises(ValueError, match="Only `None` and `softmax` activations are allowed"):
        applications.VGG16(weights=str(path), input_shape=(32, 32, 3), classes=3,
                           classifier_activation="sigmoid")
    model = applications.VGG16(weights=str(path), input_shape=(32, 32, 3), classes=3,
                               classifier_activation=None)
    out = model.predict(np.ones((2, 32, 32, 3), np.float32), verbose=0)
    assert out.shape == (2, 3) and not np.allclose(out.sum(axis=1), 1.0)
    # without pretrained weights any activation goes
    model = applications.VGG16(weights=None, input_shape=(32, 32, 3), classes=3,
                               classifier_activation="sigmoid")
    assert model.get_layer("predictions").activation == "sigmoid"


def test_unusual_channel_count_warns_without_imagenet():
    with pytest.warns(UserWarning, match="usually expects 1 or 3 input channels"):
        model = applications.VGG16(include_top=False, weights=None, input_shape=(32, 32, 4))
    assert model.get_layer("block1_conv1").weights[0].shape == (3, 3, 4, 64)


# ---- preprocess_input -------------------------------------------------------------------------
def test_caffe_preprocessing_is_bgr_minus_imagenet_mean():
    rng = np.random.default_rng(0)
    x = rng.uniform(0, 255, (2, 4, 5, 3)).astype(np.float32)
    want = x[..., ::-1] - np.array([103.939, 116.779, 123.68], np.float32)
    for module in (vgg16, resnet):
        got = module.preprocess_input(x.copy())
        assert got.dtype == np.float32
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-5)


def test_caffe_preprocessing_writes_a_float_input_in_place_as_keras():
    x = np.full((1, 2, 2, 3), 200.0, np.float64)
    x[..., 0] = 10.0                                       # R
    out = vgg16.preprocess_input(x)
    assert out.dtype == np.float64
    np.testing.assert_allclose(out[0, 0, 0], [200 - 103.939, 200 - 116.779, 10 - 123.68])
    assert np.shares_memory(out, x) and not np.all(x[..., 0] == 10.0)
    u = np.full((2, 2, 3), 255, np.uint8)                  # other dtypes: a float32 copy
    out = vgg16.preprocess_input(u)
    assert out.dtype == np.float32 and (u == 255).all()
    np.testing.assert_allclose(out[0, 0], [255 - 103.939, 255 - 116.779, 255 - 123.68],
                               rtol=1e-6)


def test_caffe_preprocessing_channels_first():
    x = np.arange(2 * 3 * 2 * 2, dtype=np.float32).reshape(2, 3, 2, 2)
    got = vgg16.preprocess_input(x.copy(), data_format="channels_first")
    mean = np.array([103.939, 116.779, 123.68], np.float32).reshape(1, 3, 1, 1)
    np.testing.assert_allclose(got, x[:, ::-1] - mean, atol=1e-5)
    single = vgg16.preprocess_input(x[0].copy(), data_format="channels_first")
    np.testing.assert_allclose(single, got[0], atol=1e-5)


def test_tf_and_torch_preprocessing():
    x = np.array([[[0.0, 127.5, 255.0]]], np.float32)
    np.testing.assert_allclose(mobilenet_v2.preprocess_input(x.copy()), [[[-1.0, 0.0, 1.0]]])
    got = imagenet_utils.preprocess_input(x.copy(), mode="torch")
    want = (x / 255.0 - np.array([0.485, 0.456, 0.406])) / np.array([0.229, 0.224, 0.225])
    np.testing.assert_allclose(got, want, rtol=1e-6)


def test_preprocessing_errors_name_the_argument():
    x = np.zeros((1, 2, 2, 3), np.float32)
    with pytest.raises(ValueError, match="Received: mode=bgr"):
        imagenet_utils.preprocess_input(x, mode="bgr")
    with pytest.raises(ValueError, match="Received: data_format=nhwc"):
        vgg16.preprocess_input(x, data_format="nhwc")
    with pytest.raises(ValueError, match="3 color channels"):
        vgg16.preprocess_input(np.zeros((1, 2, 2, 4), np.float32))


# ---- decode_predictions -----------------------------------------------------------------------
@pytest.fixture
def fake_class_index(keras_home, monkeypatch):
    index = {str(i): [f"n{i:08d}", f"class_{i}"] for i in range(1000)}
    path = keras_home / "models" / "imagenet_class_index.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(index))
    monkeypatch.setattr(imagenet_utils, "CLASS_INDEX_HASH", md5(path))
    return index


def test_decode_predictions_gives_top_classes_best_first(fake_class_index):
    preds = np.zeros((2, 1000), np.float32)
    preds[0, [7, 500, 3]] = [0.5, 0.3, 0.2]
    preds[1, 999] = 1.0
    out = vgg16.decode_predictions(preds, top=3)
    assert [r[:2] for r in out[0]] == [("n00000007", "class_7"), ("n00000500", "class_500"),
                                       ("n00000003", "class_3")]
    np.testing.assert_allclose([r[2] for r in out[0]], [0.5, 0.3, 0.2])
    assert out[1][0] == ("n00000999", "class_999", np.float32(1.0))
    assert len(mobilenet_v2.decode_predictions(preds)[0]) == 5


def test_decode_predictions_reads_the_index_once_and_checks_its_hash(keras_home,
                                                                      fake_class_index,
                                                                      monkeypatch):
    path = keras_home / "models" / "imagenet_class_index.json"
    resnet.decode_predictions(np.eye(1, 1000, dtype=np.float32))
    path.write_text("{}")                        # read once per session, as Keras
    assert resnet.decode_predictions(np.eye(1, 1000, dtype=np.float32))[0][0][1] == "class_0"
    monkeypatch.setattr(imagenet_utils, "CLASS_INDEX", None)
    fetched = serve(monkeypatch, {})              # a wrong hash: downloaded again
    with pytest.warns(UserWarning, match="invalid hash"), pytest.raises(FileNotFoundError):
        resnet.decode_predictions(np.eye(1, 1000, dtype=np.float32))
    assert fetched == [imagenet_utils.CLASS_INDEX_PATH]


def test_decode_predictions_shape_error_is_keras():
    with pytest.raises(ValueError, match=r"\(samples, 1000\)\). Received array with shape: "
                                         r"\(2, 10\)"):
        vgg16.decode_predictions(np.zeros((2, 10)))


# ---- frozen bases -----------------------------------------------------------------------------
def _head_model(base, classes=3):
    inputs = pycnn.Input(shape=base.input_shape[1:])
    x = base(inputs)
    x = layers.GlobalAveragePooling2D()(x) if len(base.output_shape) == 4 else x
    outputs = layers.Dense(classes, activation="softmax", name="head")(x)
    model = pycnn.Model(inputs, outputs)
    model.compile(optimizer=pycnn.optimizers.Adam(1e-2),
                  loss="sparse_categorical_crossentropy")
    return model


def _data(shape, n=8, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(0, 1, (n,) + tuple(shape)).astype(np.float32)
    y = rng.integers(0, 3, n)
    return x, y


@pytest.mark.parametrize("build", [
    lambda: applications.ResNet50(include_top=False, weights=None, input_shape=(64, 64, 3)),
    lambda: applications.MobileNetV2(input_shape=(32, 32, 3), alpha=0.35, include_top=False,
                                     weights=None),
], ids=["ResNet50-64", "MobileNetV2-32"])
@pytest.mark.parametrize("how", ["model", "layers"])
def test_frozen_base_keeps_weights_and_statistics_and_the_head_trains(seed, build, how):
    base = build()
    if how == "model":
        base.trainable = False
    else:
        for layer in base.layers:
            layer.trainable = False
    model = _head_model(base)
    x, y = _data(base.input_shape[1:])
    before, head_before = weights_of(base), model.get_layer("head").get_weights()
    first = model.evaluate(x, y, batch_size=len(x), verbose=0)
    hist = model.fit(x, y, batch_size=len(x), epochs=5, shuffle=False, verbose=0)
    # batch normalization ran in inference mode: fit's first loss is evaluate's
    assert hist.history["loss"][0] == pytest.approx(first, rel=1e-5)
    assert hist.history["loss"][-1] < hist.history["loss"][0]
    after = weights_of(base)
    assert [k for k in before if not np.array_equal(before[k], after[k])] == []
    assert not np.array_equal(head_before[0], model.get_layer("head").get_weights()[0])
    assert len(model.trainable_weights) == 2


def test_unfrozen_base_updates_statistics_and_called_with_training_false_does_not(seed):
    """Keras' fine-tuning recipe: ``base(inputs, training=False)`` keeps batch normalization
    in inference mode while the base's weights train; a plain call trains both."""
    x, y = _data((32, 32, 3))
    for training, stats_change in ((None, True), (False, False)):
        pycnn.backend.clear_session()
        base = applications.MobileNetV2(input_shape=(32, 32, 3), alpha=0.35,
                                        include_top=False, weights=None)
        inputs = pycnn.Input(shape=(32, 32, 3))
        h = base(inputs, training=training) if training is not None else base(inputs)
        out = layers.Dense(3, activation="softmax")(layers.GlobalAveragePooling2D()(h))
        model = pycnn.Model(inputs, out)
        model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
        before = weights_of(base)
        model.fit(x, y, batch_size=len(x), epochs=1, verbose=0)
        after = weights_of(base)
        changed = {k for k in before if not np.array_equal(before[k], after[k])}
        # the base trains (with random weights and statistics, inference-mode activations
        # shrink to ~1e-10 at the top, so only the betas move visibly)
        assert "Conv_1_bn/beta" in changed
        moving = {k for k in before if "moving_" in k}
        assert (changed & moving == moving) if stats_change else not changed & moving


def test_fine_tuning_after_unfreezing_changes_the_base(seed):
    base = applications.VGG16(include_top=False, weights=None, input_shape=(32, 32, 3))
    base.trainable = False
    model = _head_model(base)
    x, y = _data((32, 32, 3))
    frozen = weights_of(base)
    model.fit(x, y, batch_size=4, epochs=1, verbose=0)
    assert all(np.array_equal(frozen[k], v) for k, v in weights_of(base).items())
    base.trainable = True
    model.compile(optimizer=pycnn.optimizers.Adam(1e-5),
                  loss="sparse_categorical_crossentropy")
    model.fit(x, y, batch_size=4, epochs=1, verbose=0)
    assert not np.array_equal(frozen["block1_conv1/kernel"],
                              base.get_layer("block1_conv1").get_weights()[0])
