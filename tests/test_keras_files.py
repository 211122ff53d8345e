"""Keras' own files, both ways.

The fixtures in tests/fixtures/keras/ were written by real Keras 3 (``.keras``,
``.weights.h5``) and tf-keras 2 (``.h5``) with ``make_fixtures.py`` (which regenerates them),
each with an input batch and Keras' predictions. pycnn must open every one and predict the
same; and files pycnn writes must open in real Keras (that test runs when
``PYCNN_KERAS_PYTHON`` names a Python with Keras 3 installed, as CI sets it).
"""
from __future__ import annotations

import json
import os
import sys
import zipfile

import numpy as np
import pytest

import pycnn
from pycnn import layers
from childproc import run_python

h5py = pytest.importorskip("h5py")

HERE = os.path.join(os.path.dirname(__file__), "fixtures", "keras")
MODELS = ["mlp", "convnet", "multi_io", "nested", "residual_bn", "unet"]


def _io(flavour, name):
    with np.load(os.path.join(HERE, flavour, f"{name}.io.npz")) as z:
        xs = [z[f"x{i}"] for i in range(sum(k.startswith("x") for k in z.files))]
        ys = [z[f"y{i}"] for i in range(sum(k.startswith("y") for k in z.files))]
    return xs, ys


def _predict(model, xs):
    out = model.predict(xs if len(xs) > 1 else xs[0], verbose=0)
    return out if isinstance(out, list) else [out]


def _assert_same(model, flavour, name):
    xs, ys = _io(flavour, name)
    for got, want in zip(_predict(model, xs), ys):
        np.testing.assert_allclose(got, want.reshape(got.shape), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("name", MODELS)
def test_keras3_model_files_load_and_predict_as_keras(name):
    model = pycnn.saving.load_model(os.path.join(HERE, "keras3", f"{name}.keras"))
    _assert_same(model, "keras3", name)


@pytest.mark.parametrize("name", MODELS)
def test_tf_keras2_h5_model_files_load_and_predict_as_keras(name):
    model = pycnn.models.load_model(os.path.join(HERE, "tf2", f"{name}.h5"))
    _assert_same(model, "tf2", name)


@pytest.mark.parametrize("flavour", ["keras3", "tf2"])
@pytest.mark.parametrize("name", MODELS)
def test_keras_weights_files_load_into_the_same_architecture(flavour, name):
    ref = pycnn.saving.load_model(os.path.join(HERE, "keras3", f"{name}.keras"))
    fresh = pycnn.Model.from_config(ref.get_config()) if not isinstance(
        ref, pycnn.Sequential) else pycnn.Sequential.from_config(ref.get_config())
    fresh.load_weights(os.path.join(HERE, flavour, f"{name}.weights.h5"))
    _assert_same(fresh, flavour, name)


@pytest.mark.parametrize("name", MODELS)
def test_saved_and_reloaded_in_every_format_predicts_the_same(tmp_path, name):
    model = pycnn.saving.load_model(os.path.join(HERE, "keras3", f"{name}.keras"))
    xs, _ = _io("keras3", name)
    want = _predict(model, xs)
    for fname in ("m.keras", "m.h5"):
        model.save(tmp_path / fname)
        again = pycnn.saving.load_model(tmp_path / fname)
        for a, b in zip(_predict(again, xs), want):
            np.testing.assert_array_equal(a, b)
    for fname in ("w.weights.h5", "w.h5", "w.npz"):
        model.save_weights(tmp_path / fname)
        clone = pycnn.models.clone_model(model)
        clone.load_weights(tmp_path / fname)
        for a, b in zip(_predict(clone, xs), want):
            np.testing.assert_array_equal(a, b)


def test_a_keras_file_keeps_its_compile_config_and_optimizer_state(tmp_path):
    r = np.random.default_rng(0)
    x, y = r.standard_normal((64, 6)).astype("float32"), r.integers(0, 3, 64)
    model = pycnn.Sequential([pycnn.Input(shape=(6,)), layers.Dense(8, activation="relu"),
                              layers.Dense(3, activation="softmax")])
    model.compile(optimizer=pycnn.optimizers.Adam(0.01), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    model.fit(x, y, epochs=2, verbose=0, shuffle=False)
    model.save(tmp_path / "m.keras")
    again = pycnn.saving.load_model(tmp_path / "m.keras")
    assert isinstance(again.optimizer, pycnn.optimizers.Adam)
    assert again.optimizer.iterations == model.optimizer.iterations
    model.fit(x, y, epochs=1, verbose=0, shuffle=False)
    again.fit(x, y, epochs=1, verbose=0, shuffle=False)
    for a, b in zip(model.get_weights(), again.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_the_keras_file_is_the_layout_keras_3_writes(tmp_path):
    model = pycnn.Sequential([pycnn.Input(shape=(4,)), layers.Dense(3), layers.Dense(2)])
    model.save(tmp_path / "m.keras")
    with zipfile.ZipFile(tmp_path / "m.keras") as zf:
        assert sorted(zf.namelist()) == ["config.json", "metadata.json", "model.weights.h5"]
        config = json.loads(zf.read("config.json"))
        zf.extract("model.weights.h5", tmp_path)
    assert config["class_name"] == "Sequential"
    assert [l["class_name"] for l in config["config"]["layers"]] == \
        ["InputLayer", "Dense", "Dense"]
    with h5py.File(tmp_path / "model.weights.h5") as f:
        assert f["layers/dense/vars/0"].shape == (4, 3)
        assert f["layers/dense_1/vars/1"].shape == (2,)
        assert f["layers/dense/vars"].attrs["name"] == model.layers[0].name


def test_weights_are_matched_by_name_not_position_within_a_layer(tmp_path):
    """A layer whose two weights have the same shape (like BatchNormalization's gamma and
    beta) gets each back under its own name even when the file lists them in another order."""
    model = pycnn.Sequential([pycnn.Input(shape=(3,)), layers.Dense(3, name="d")])
    model.set_weights([np.eye(3, dtype="float32"), np.arange(3, dtype="float32")])
    with h5py.File(tmp_path / "w.h5", "w") as f:
        f.attrs["layer_names"] = [b"d"]
        g = f.create_group("d")
        g.attrs["weight_names"] = [b"d/bias:0", b"d/kernel:0"]     # reversed order
        g["d/bias:0"] = np.full(3, 7, np.float32)
        g["d/kernel:0"] = 2 * np.eye(3, dtype=np.float32)
    model.load_weights(tmp_path / "w.h5")
    np.testing.assert_array_equal(model.layers[0].bias.numpy(), np.full(3, 7))
    np.testing.assert_array_equal(model.layers[0].kernel.numpy(), 2 * np.eye(3))


def test_load_weights_by_name_with_skip_mismatch(tmp_path):
    a = pycnn.Sequential([pycnn.Input(shape=(4,)), layers.Dense(3, name="one"),
                          layers.Dense(2, name="two")])
    a.save_weights(tmp_path / "a.h5")
    b = pycnn.Sequential([pycnn.Input(shape=(4,)), layers.Dense(3, name="one"),
                          layers.Dense(5, name="two")])
    with pytest.raises(ValueError, match="two"):
        b.load_weights(tmp_path / "a.h5", by_name=True)
    before = b.layers[1].kernel.numpy()
    b.load_weights(tmp_path / "a.h5", by_name=True, skip_mismatch=True)
    np.testing.assert_array_equal(b.layers[0].kernel.numpy(), a.layers[0].kernel.numpy())
    np.testing.assert_array_equal(b.layers[1].kernel.numpy(), before)


def test_a_failed_load_changes_no_weight(tmp_path):
    a = pycnn.Sequential([pycnn.Input(shape=(4,)), layers.Dense(3), layers.Dense(2)])
    a.save_weights(tmp_path / "a.weights.h5")
    b = pycnn.Sequential([pycnn.Input(shape=(4,)), layers.Dense(3), layers.Dense(6)])
    before = b.get_weights()
    with pytest.raises(ValueError, match="shape"):
        b.load_weights(tmp_path / "a.weights.h5")
    for x, y in zip(before, b.get_weights()):
        np.testing.assert_array_equal(x, y)


@pytest.mark.parametrize("content", [b"", b"PK\x03\x04garbage", b"\x89HDF\r\n\x1a\n junk"])
def test_corrupt_model_files_raise_value_error_naming_the_file(tmp_path, content):
    path = tmp_path / "broken.keras"
    path.write_bytes(content)
    with pytest.raises(ValueError, match="broken.keras"):
        pycnn.saving.load_model(path)


def test_an_unknown_layer_class_names_the_layer_and_the_file(tmp_path):
    model = pycnn.Sequential([pycnn.Input(shape=(4,)), layers.Dense(3, name="mine")])
    model.save(tmp_path / "m.keras")
    with zipfile.ZipFile(tmp_path / "m.keras") as zf:
        members = {n: zf.read(n) for n in zf.namelist()}
    config = json.loads(members["config.json"])
    config["config"]["layers"][1]["class_name"] = "FancyDense"
    members["config.json"] = json.dumps(config).encode()
    with zipfile.ZipFile(tmp_path / "bad.keras", "w") as zf:
        for n, data in members.items():
            zf.writestr(n, data)
    with pytest.raises(ValueError, match=r"bad\.keras.*FancyDense.*mine"):
        pycnn.saving.load_model(tmp_path / "bad.keras")


def test_custom_layers_load_with_custom_objects(tmp_path):
    class Scale(layers.Layer):
        def __init__(self, factor=2.0, **kwargs):
            super().__init__(**kwargs)
            self.factor = factor

        def forward(self, ctx, x, training=False):
            return x * np.float32(self.factor)

        def backward(self, ctx, dy, need_dx=True):
            return dy * np.float32(self.factor) if need_dx else None

        def get_config(self):
            return {**super().get_config(), "factor": self.factor}

    inp = pycnn.Input(shape=(3,))
    model = pycnn.Model(inp, Scale(3.0)(layers.Dense(2)(inp)))
    model.save(tmp_path / "m.keras")
    with pytest.raises(ValueError, match="Scale"):
        pycnn.saving.load_model(tmp_path / "m.keras")
    again = pycnn.saving.load_model(tmp_path / "m.keras", custom_objects={"Scale": Scale})
    x = np.ones((2, 3), np.float32)
    np.testing.assert_array_equal(again.predict(x, verbose=0), model.predict(x, verbose=0))


def test_to_json_and_model_from_json_round_trip():
    inp = pycnn.Input(shape=(5,))
    h = layers.Dense(4, activation="relu")(inp)
    model = pycnn.Model(inp, [layers.Dense(2)(h), layers.Dense(1)(h)])
    again = pycnn.models.model_from_json(model.to_json())
    assert [type(l).__name__ for l in again.layers] == [type(l).__name__ for l in model.layers]
    assert [t.shape for t in again.outputs] == [t.shape for t in model.outputs]


def _save_with_io(tmp_path, name, files):
    """pycnn loads the Keras 3 fixture ``name`` and saves it as each of ``files`` in
    ``tmp_path``, beside ``io.npz``: the inputs ``x<i>`` and pycnn's predictions ``y<i>``."""
    model = pycnn.saving.load_model(os.path.join(HERE, "keras3", f"{name}.keras"))
    xs, _ = _io("keras3", name)
    want = _predict(model, xs)
    for file in files:
        model.save(tmp_path / file)
    np.savez(tmp_path / "io.npz", **{f"x{i}": x for i, x in enumerate(xs)},
             **{f"y{i}": y for i, y in enumerate(want)})


KERAS_PYTHON = os.environ.get("PYCNN_KERAS_PYTHON")
TF_KERAS_PYTHON = os.environ.get("PYCNN_TF_KERAS_PYTHON")


@pytest.mark.skipif(not KERAS_PYTHON, reason="PYCNN_KERAS_PYTHON (a Python with Keras 3) "
                    "is not set; CI sets it")
@pytest.mark.parametrize("name", MODELS)
def test_files_pycnn_writes_open_in_real_keras(tmp_path, name):
    _save_with_io(tmp_path, name, ("m.keras", "m.h5"))
    # Keras 3 cannot read a nested model from tf.keras 2's .h5 layout (not even a file
    # tf.keras 2 wrote: its legacy reader needs TensorFlow); tf.keras 2 reads those below.
    files = "('m.keras',)" if name == "nested" else "('m.keras', 'm.h5')"
    _run_keras(KERAS_PYTHON, files, tmp_path)


@pytest.mark.skipif(not TF_KERAS_PYTHON, reason="PYCNN_TF_KERAS_PYTHON (a Python with "
                    "tf-keras 2) is not set")
@pytest.mark.parametrize("name", MODELS)
def test_h5_files_pycnn_writes_open_in_tf_keras_2(tmp_path, name):
    _save_with_io(tmp_path, name, ("m.h5",))
    _run_keras(TF_KERAS_PYTHON, "('m.h5',)", tmp_path, tf2=True)


def _run_keras(python: str, files: str, tmp_path, tf2: bool = False) -> None:
    header = ("os.environ['TF_USE_LEGACY_KERAS'] = '1'\nimport tf_keras as keras"
              if tf2 else "os.environ.setdefault('KERAS_BACKEND', 'jax')\nimport keras")
    script = """
import os, sys
HEADER
import numpy as np
d = sys.argv[1]
z = np.load(os.path.join(d, "io.npz"))
xs = [z[k] for k in sorted(k for k in z.files if k.startswith("x"))]
ys = [z[k] for k in sorted(k for k in z.files if k.startswith("y"))]
for f in FILES:
    m = keras.models.load_model(os.path.join(d, f), compile=False)
    out = m.predict(xs if len(xs) > 1 else xs[0], verbose=0)
    out = out if isinstance(out, list) else [out]
    for a, b in zip(out, ys):
        np.testing.assert_allclose(np.asarray(a), b, rtol=1e-4, atol=1e-5)
print("ok")
""".replace("HEADER", header).replace("FILES", files)
    done = run_python(script, str(tmp_path), python=python, env=dict(os.environ), timeout=300)
    assert done.returncode == 0 and "ok" in done.stdout, done.stderr[-3000:]


def test_a_keras_file_member_declaring_a_huge_size_is_refused_before_inflating(tmp_path):
    """A zip bomb inside a .keras file: the member's declared size and compression ratio are
    checked against bounds before anything is inflated."""
    model = pycnn.Sequential([pycnn.Input(shape=(4,)), layers.Dense(3)])
    model.save(tmp_path / "m.keras")
    with zipfile.ZipFile(tmp_path / "m.keras") as zf:
        members = {n: zf.read(n) for n in zf.namelist()}
    with zipfile.ZipFile(tmp_path / "bomb.keras", "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("metadata.json", members["metadata.json"])
        zf.writestr("config.json", members["config.json"])
        zf.writestr("model.weights.h5", b"\0" * (64 * 2**20))    # 64 MiB of zeros: ~1000x
    with pytest.raises(ValueError, match=r"bomb\.keras.*model\.weights\.h5.*refusing"):
        pycnn.saving.load_model(tmp_path / "bomb.keras")


def test_a_weights_file_whose_array_is_larger_than_the_layer_is_refused_unread(tmp_path):
    model = pycnn.Sequential([pycnn.Input(shape=(4,)), layers.Dense(3, name="d")])
    with h5py.File(tmp_path / "w.h5", "w") as f:
        f.attrs["layer_names"] = [b"d"]
        g = f.create_group("d")
        g.attrs["weight_names"] = [b"d/kernel:0", b"d/bias:0"]
        g.create_dataset("d/kernel:0", shape=(40000, 40000), dtype="f4",
                         compression="gzip")            # 6 GB declared, a few KB on disk
        g["d/bias:0"] = np.zeros(3, np.float32)
    with pytest.raises(ValueError, match=r"w\.h5"):
        model.load_weights(tmp_path / "w.h5")
