"""tf.keras 2's legacy ImageDataGenerator (pycnn.preprocessing.image).

Expected numbers come from tf.keras 2 itself (``tests/data/tf_image_data_generator_reference.npz``,
written by ``tools/tf_image_data_generator_reference.py`` in the TensorFlow venv): the affine
transforms of ``apply_transform`` for every fill mode and interpolation order, flips, channel
shifts, brightness, ``fit``'s statistics, and whole seeded batches of ``flow``.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import pycnn
from pycnn.preprocessing import image as image_mod
from pycnn.preprocessing.image import ImageDataGenerator

REF = np.load(Path(__file__).parent / "data" / "tf_image_data_generator_reference.npz")
PARAMS = [dict(theta=25.0, tx=1.5, ty=-2.0, shear=10.0, zx=0.9, zy=1.2),
          dict(theta=-40.0, tx=0.0, ty=3.3, shear=0.0, zx=1.1, zy=1.1),
          dict(theta=0.0, tx=-2.5, ty=0.7, shear=-20.0, zx=1.0, zy=1.0),
          dict(theta=75.0, tx=0.0, ty=0.0, shear=0.0, zx=1.3, zy=0.8)]


@pytest.mark.parametrize("fill_mode", ["nearest", "reflect", "wrap", "constant"])
@pytest.mark.parametrize("order", [0, 1])
def test_apply_transform_matches_tf_keras(fill_mode, order):
    x = REF["x"]
    gen = ImageDataGenerator(fill_mode=fill_mode, cval=0.4, interpolation_order=order)
    y = np.stack([gen.apply_transform(x[i], PARAMS[i]) for i in range(4)])
    np.testing.assert_allclose(y, REF[f"affine_{fill_mode}_{order}"], atol=1e-5, rtol=0)


def test_flips_channel_shift_and_brightness_match_tf_keras():
    x255 = (REF["x"] * 255).astype(np.float32)
    gen = ImageDataGenerator()
    extra = [dict(flip_horizontal=True, channel_shift_intensity=0.2),
             dict(flip_vertical=True, theta=10.0),
             dict(flip_horizontal=True, flip_vertical=True, brightness=1.3),
             dict(brightness=0.6)]
    y = np.stack([gen.apply_transform(x255[i], extra[i]) for i in range(4)])
    np.testing.assert_allclose(y, REF["extra"], atol=1e-3, rtol=0)
    small = np.stack([gen.apply_transform(REF["x"][i], {"brightness": 1.4}) for i in range(2)])
    np.testing.assert_allclose(small, REF["brightness_small_range"], atol=1e-6)


def test_seeded_flow_yields_tf_keras_batches():
    """Same seed, same draws in the same order: tf.keras' shuffling, parameters, rescale and
    sample-wise centring, batch by batch."""
    x, y = REF["x"], np.arange(4)
    gen = ImageDataGenerator(rotation_range=20, width_shift_range=0.1, height_shift_range=2,
                             shear_range=5, zoom_range=0.2, horizontal_flip=True,
                             vertical_flip=True, rescale=0.5, samplewise_center=True,
                             channel_shift_range=0.1, fill_mode="reflect")
    it = gen.flow(x, y, batch_size=3, seed=7)
    for b in range(2):
        bx, by = it[b]
        np.testing.assert_allclose(bx, REF[f"flow_batch{b}_x"], atol=1e-5)
        assert np.array_equal(by, REF[f"flow_batch{b}_y"])
    nx, ny = next(gen.flow(x, y, batch_size=4, seed=11))
    np.testing.assert_allclose(nx, REF["flow_next_x"], atol=1e-5)
    assert np.array_equal(ny, REF["flow_next_y"])


def test_fit_and_standardize_match_tf_keras():
    gen = ImageDataGenerator(featurewise_center=True, featurewise_std_normalization=True)
    gen.fit(REF["x"])
    np.testing.assert_allclose(gen.mean, REF["fit_mean"], atol=1e-6)
    np.testing.assert_allclose(gen.std, REF["fit_std"], atol=1e-6)
    np.testing.assert_allclose(gen.standardize(REF["x"].copy()), REF["fit_standardized"],
                               atol=1e-5)


def test_random_transform_with_seed_matches_tf_keras():
    gen = ImageDataGenerator(rotation_range=30, zoom_range=[0.8, 1.0])
    np.testing.assert_allclose(gen.random_transform(REF["x"][0], seed=3),
                               REF["random_transform_seed3"], atol=1e-5)


def test_transform_matrix_is_tf_keras_centring():
    """tf.keras' conventions as it runs them (numbers from tf.keras 2.21): with channels-last
    images its matrix has rows and columns exchanged, so ``tx`` (drawn from the height range)
    moves content left by tx columns and ``ty`` up by ty rows; 180 degrees about the centre
    (h/2 - 0.5, w/2 - 0.5) reverses rows and columns."""
    x = np.arange(1, 37, dtype=np.float32).reshape(6, 6, 1)
    shifted = ImageDataGenerator(fill_mode="constant").apply_transform(x, {"tx": 2, "ty": 1})
    assert np.array_equal(shifted[:5, :4], x[1:, 2:])
    assert np.all(shifted[5:] == 0) and np.all(shifted[:, 4:] == 0)
    turned = ImageDataGenerator().apply_transform(x, {"theta": 180})
    np.testing.assert_allclose(turned, x[::-1, ::-1], atol=1e-5)


# ---- the Sequence protocol ------------------------------------------------------------------------

def test_flow_is_a_sequence_and_an_iterator():
    x = np.random.default_rng(1).random((10, 5, 5, 1)).astype(np.float32)
    y = np.arange(10)
    it = ImageDataGenerator().flow(x, y, batch_size=4, shuffle=False)
    assert len(it) == 3
    bx, by = it[2]
    assert bx.shape == (2, 5, 5, 1) and list(by) == [8, 9]
    assert np.array_equal(it[0][0], x[:4])
    with pytest.raises(ValueError, match="Asked to retrieve element 3"):
        it[3]
    seen = [next(it)[1] for _ in range(4)]
    assert [list(s) for s in seen] == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9], [0, 1, 2, 3]]
    assert iter(it) is it


def test_shuffled_epochs_cover_every_sample_and_reshuffle():
    x = np.zeros((9, 3, 3, 1), np.float32)
    it = ImageDataGenerator().flow(x, np.arange(9), batch_size=4, seed=3)
    first = np.concatenate([it[i][1] for i in range(len(it))])
    assert sorted(first) == list(range(9))
    it.on_epoch_end()
    second = np.concatenate([it[i][1] for i in range(len(it))])
    assert sorted(second) == list(range(9)) and list(second) != list(first)


def test_seeded_flows_repeat_and_unseeded_follow_pycnn_seed():
    x = np.random.default_rng(2).random((6, 8, 8, 1)).astype(np.float32)
    gen = ImageDataGenerator(rotation_range=30, zoom_range=0.2, horizontal_flip=True)
    a = gen.flow(x, batch_size=6, seed=5)[0]
    b = gen.flow(x, batch_size=6, seed=5)[0]
    assert np.array_equal(a, b)
    assert not np.array_equal(a, gen.flow(x, batch_size=6, seed=6)[0])
    pycnn.utils.set_random_seed(9)
    c = gen.flow(x, batch_size=6)[0]
    pycnn.utils.set_random_seed(9)
    assert np.array_equal(c, gen.flow(x, batch_size=6)[0])


def test_flow_extra_inputs_sample_weights_and_no_labels():
    x = np.random.default_rng(3).random((5, 4, 4, 3)).astype(np.float32)
    meta = np.arange(5) * 10
    it = ImageDataGenerator().flow((x, meta), np.arange(5), batch_size=5, shuffle=False,
                                   sample_weight=np.linspace(0, 1, 5))
    (bx, bm), by, bw = it[0]
    assert np.array_equal(bm, meta) and np.array_equal(bw, np.linspace(0, 1, 5))
    assert ImageDataGenerator().flow(x, batch_size=2, shuffle=False)[0].shape == (2, 4, 4, 3)


def test_validation_split_subsets():
    x = np.zeros((10, 2, 2, 1), np.float32)
    y = np.array([0, 1] * 5)
    gen = ImageDataGenerator(validation_split=0.2)
    val = gen.flow(x, y, batch_size=10, shuffle=False, subset="validation")
    train = gen.flow(x, y, batch_size=10, shuffle=False, subset="training")
    assert list(val[0][1]) == [0, 1] and len(train[0][1]) == 8
    with pytest.raises(ValueError, match="different number of classes"):
        gen.flow(x, np.sort(y), subset="validation")
    with pytest.raises(ValueError, match="Invalid subset name"):
        gen.flow(x, y, subset="test")


def test_preprocessing_function_runs_on_each_image_before_rescale():
    calls = []

    def fn(img):
        calls.append(img.shape)
        return img + 1

    x = np.ones((3, 4, 4, 1), np.float32)
    out = ImageDataGenerator(preprocessing_function=fn, rescale=0.5).flow(
        x, batch_size=3, shuffle=False)[0]
    assert calls == [(4, 4, 1)] * 3
    np.testing.assert_allclose(out, 1.0)


def test_argument_errors():
    with pytest.raises(ValueError, match="`zoom_range` should be a float or a tuple"):
        ImageDataGenerator(zoom_range=(0.1, 0.2, 0.3))
    with pytest.raises(ValueError, match="`validation_split` must be strictly between 0 and 1"):
        ImageDataGenerator(validation_split=1.5)
    with pytest.raises(ValueError, match="brightness_range should be tuple or list of two"):
        ImageDataGenerator(brightness_range=0.5)
    with pytest.raises(ValueError, match="fill_mode"):
        ImageDataGenerator(fill_mode="mirror")
    with pytest.raises(ValueError, match="should have rank 4"):
        ImageDataGenerator().flow(np.zeros((3, 4, 4)))
    with pytest.raises(ValueError, match="should have the same length"):
        ImageDataGenerator().flow(np.zeros((3, 4, 4, 1)), np.zeros(2))
    with pytest.raises(ValueError, match="Input to `.fit\\(\\)` should have rank 4"):
        ImageDataGenerator(featurewise_center=True).fit(np.zeros((3, 4)))
    with pytest.warns(UserWarning, match="hasn't been fit"):
        ImageDataGenerator(featurewise_center=True).standardize(np.zeros((2, 2, 1), np.float32))


def test_zoom_range_and_shift_conventions():
    gen = ImageDataGenerator(zoom_range=0.25, width_shift_range=3, height_shift_range=0.5)
    assert gen.zoom_range == [0.75, 1.25]
    for s in range(20):
        p = gen.get_random_transform((10, 20, 1), seed=s)
        assert 0.75 <= p["zx"] <= 1.25 and 0.75 <= p["zy"] <= 1.25
        assert p["ty"] in (-2, -1, 0, 1, 2)          # an int range: whole pixels, either sign
        assert -5 <= p["tx"] <= 5                     # a fraction < 1 of the height


def test_reachable_as_keras_paths():
    from pycnn.preprocessing import ImageDataGenerator as A
    assert A is image_mod.ImageDataGenerator


# ---- flow_from_directory ---------------------------------------------------------------------------

@pytest.fixture
def image_dir(tmp_path):
    Image = pytest.importorskip("PIL.Image")
    rng = np.random.default_rng(0)
    for cls, n in (("cats", 3), ("dogs", 5)):
        d = tmp_path / cls
        d.mkdir()
        for i in range(n):
            arr = rng.integers(0, 256, (12, 10, 3), dtype=np.uint8)
            Image.fromarray(arr).save(d / f"{i}.png")
    (tmp_path / "dogs" / "notes.txt").write_text("not an image")
    return tmp_path


def test_flow_from_directory_reads_classes_and_prints_like_keras(image_dir, capsys):
    it = ImageDataGenerator(rescale=1 / 255).flow_from_directory(
        str(image_dir), target_size=(6, 5), batch_size=4, shuffle=False)
    assert capsys.readouterr().out == "Found 8 images belonging to 2 classes.\n"
    assert it.class_indices == {"cats": 0, "dogs": 1}
    assert list(it.classes) == [0, 0, 0, 1, 1, 1, 1, 1]
    assert it.filenames[0] == str(Path("cats") / "0.png")
    assert len(it) == 2
    bx, by = it[0]
    assert bx.shape == (4, 6, 5, 3) and bx.dtype == np.float32
    assert bx.max() <= 1.0
    np.testing.assert_array_equal(by, np.array([[1, 0]] * 3 + [[0, 1]], np.float32))


@pytest.mark.parametrize("class_mode,check", [
    ("binary", lambda b: b[1].shape == (8,)),
    ("sparse", lambda b: list(b[1]) == [0, 0, 0, 1, 1, 1, 1, 1]),
    ("input", lambda b: np.array_equal(b[0], b[1])),
    (None, lambda b: isinstance(b, np.ndarray) and b.shape == (8, 12, 10, 1)),
])
def test_flow_from_directory_class_modes(image_dir, class_mode, check):
    it = ImageDataGenerator().flow_from_directory(
        str(image_dir), target_size=(12, 10), color_mode="grayscale", class_mode=class_mode,
        batch_size=8, shuffle=False)
    assert check(it[0])


def test_flow_from_directory_subset_and_errors(image_dir, capsys):
    gen = ImageDataGenerator(validation_split=0.4)
    val = gen.flow_from_directory(str(image_dir), subset="validation", target_size=(4, 4))
    assert capsys.readouterr().out == "Found 3 images belonging to 2 classes.\n"
    assert list(val.classes) == [0, 1, 1]
    with pytest.raises(ValueError, match="Invalid class_mode"):
        gen.flow_from_directory(str(image_dir), class_mode="other")
    with pytest.raises(ValueError, match="Invalid color mode"):
        gen.flow_from_directory(str(image_dir), color_mode="cmyk")
    with pytest.raises(FileNotFoundError):
        gen.flow_from_directory(str(image_dir / "missing"))


def test_flow_from_directory_augments(image_dir):
    it = ImageDataGenerator(rotation_range=40, horizontal_flip=True).flow_from_directory(
        str(image_dir), target_size=(12, 10), batch_size=8, shuffle=False, seed=1)
    plain = ImageDataGenerator().flow_from_directory(
        str(image_dir), target_size=(12, 10), batch_size=8, shuffle=False)
    assert not np.array_equal(it[0][0], plain[0][0])


def test_fit_takes_a_flow_iterator():
    from pycnn import layers
    pycnn.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 128)
    x = rng.random((128, 10, 10, 1)).astype(np.float32) * 0.2
    x[y == 1, 2:8, 4:6] += 0.8
    x[y == 0, 4:6, 2:8] += 0.8
    model = pycnn.Sequential([pycnn.Input((10, 10, 1)), layers.Conv2D(4, 3, activation="relu"),
                              layers.Flatten(), layers.Dense(2, activation="softmax")])
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    gen = ImageDataGenerator(rotation_range=10, zoom_range=0.1, width_shift_range=0.1,
                             height_shift_range=0.1)
    it = gen.flow(x, y, batch_size=32, seed=1)
    hist = model.fit(it, epochs=4, verbose=0)
    loss = hist.history["loss"]
    assert len(loss) == 4 and np.all(np.isfinite(loss)) and loss[-1] < loss[0]
    assert it.total_batches_seen >= 4 * len(it)


def test_reachable_through_the_package_as_in_keras():
    import pycnn as keras
    assert keras.preprocessing.image.ImageDataGenerator is ImageDataGenerator
