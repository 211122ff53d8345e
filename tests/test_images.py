"""Images on disk: load_img / img_to_array / array_to_img / save_img, the TensorFlow-style
resize, and image_dataset_from_directory (file order, splits, labels, errors as Keras 3).

Every image is made by the test in a temporary directory. Expected numbers come from Keras'
and TensorFlow's algorithms: the resize fixture `data/tf_image_resize.npz` holds the output of
`tf.image.resize` (TensorFlow 2.21) for a small random image; the file orders are Keras'
`index_directory` formula (sorted walk, then `np.random.RandomState(seed).shuffle`), checked
once against Keras 3.15 on a tree like `make_tree`'s.
"""

from __future__ import annotations

import os
import sys
import threading
from pathlib import Path

import numpy as np
import pytest

PIL = pytest.importorskip("PIL.Image")
from PIL import Image  # noqa: E402

import pycnn  # noqa: E402
from pycnn.utils import (  # noqa: E402
    array_to_img,
    image_dataset_from_directory,
    img_to_array,
    load_img,
    save_img,
)
from pycnn.utils import image_resize  # noqa: E402
from childproc import run_python

FIXTURE = Path(__file__).parent / "data" / "tf_image_resize.npz"


def rand_image(h: int, w: int, c: int = 3, seed: int = 0) -> np.ndarray:
    shape = (h, w) if c == 1 else (h, w, c)
    return np.random.default_rng(seed).integers(0, 256, shape).astype(np.uint8)


# --------------------------------------------------------------------------
# load_img / img_to_array / array_to_img / save_img


@pytest.mark.parametrize("fmt", ["png", "bmp"])
@pytest.mark.parametrize("mode,channels", [("rgb", 3), ("grayscale", 1), ("rgba", 4)])
def test_lossless_round_trip(tmp_path, fmt, mode, channels):
    if fmt == "bmp" and channels == 4:
        pytest.skip("Pillow writes BMP without alpha")
    x = rand_image(7, 9, channels).reshape(7, 9, channels)
    path = tmp_path / f"img.{fmt}"
    save_img(path, x, scale=False)
    img = load_img(path, color_mode=mode)
    assert img.size == (9, 7)  # PIL: (width, height)
    arr = img_to_array(img)
    assert arr.dtype == np.float32 and arr.shape == (7, 9, channels)
    np.testing.assert_array_equal(arr, x.astype(np.float32))


def test_jpeg_round_trip_is_close(tmp_path):
    x = np.full((16, 16, 3), 100, np.uint8)
    x[:, 8:] = 200
    save_img(tmp_path / "img.jpg", x, scale=False, quality=95)
    arr = img_to_array(load_img(tmp_path / "img.jpg"))
    assert arr.shape == (16, 16, 3)
    assert np.abs(arr - x).mean() < 3


def test_color_mode_conversions_follow_pillow(tmp_path):
    x = rand_image(5, 6, 3)
    Image.fromarray(x).save(tmp_path / "c.png")
    expected_l = np.asarray(Image.fromarray(x).convert("L"), np.float32)[..., None]
    np.testing.assert_array_equal(img_to_array(load_img(tmp_path / "c.png", "grayscale")),
                                  expected_l)
    rgba = img_to_array(load_img(tmp_path / "c.png", color_mode="rgba"))
    assert rgba.shape == (5, 6, 4) and np.all(rgba[..., 3] == 255)
    Image.fromarray(x[..., 0]).save(tmp_path / "g.png")
    rgb = img_to_array(load_img(tmp_path / "g.png"))
    np.testing.assert_array_equal(rgb, np.repeat(x[..., :1], 3, axis=2).astype(np.float32))


def test_load_img_accepts_str_pathlib_and_bytesio(tmp_path):
    import io

    x = rand_image(4, 5)
    Image.fromarray(x).save(tmp_path / "a.png")
    for source in (str(tmp_path / "a.png"), tmp_path / "a.png",
                   io.BytesIO((tmp_path / "a.png").read_bytes())):
        np.testing.assert_array_equal(np.asarray(load_img(source)), x)
    with pytest.raises(TypeError, match="path should be path-like or io.BytesIO"):
        load_img(12)


@pytest.mark.parametrize("interpolation", ["nearest", "bilinear", "bicubic", "lanczos",
                                           "box", "hamming"])
def test_target_size_resizes_as_pillow(tmp_path, interpolation):
    x = rand_image(23, 31)
    Image.fromarray(x).save(tmp_path / "a.png")
    got = load_img(tmp_path / "a.png", target_size=(10, 14), interpolation=interpolation)
    methods = getattr(Image, "Resampling", Image)
    expected = Image.fromarray(x).resize((14, 10), getattr(methods, interpolation.upper()))
    assert got.size == (14, 10)
    np.testing.assert_array_equal(np.asarray(got), np.asarray(expected))


def test_keep_aspect_ratio_crops_the_centre_as_keras(tmp_path):
    x = rand_image(20, 40)
    Image.fromarray(x).save(tmp_path / "a.png")
    got = load_img(tmp_path / "a.png", target_size=(10, 10), keep_aspect_ratio=True)
    # Keras: crop (width 20, height 20) centred -> box (10, 0, 30, 20), then resize.
    expected = Image.fromarray(x).resize((10, 10), getattr(Image, "Resampling", Image).NEAREST,
                                         box=(10, 0, 30, 20))
    np.testing.assert_array_equal(np.asarray(got), np.asarray(expected))


def test_load_img_argument_errors(tmp_path):
    Image.fromarray(rand_image(4, 4)).save(tmp_path / "a.png")
    with pytest.raises(ValueError, match='color_mode must be "grayscale", "rgb", or "rgba"'):
        load_img(tmp_path / "a.png", color_mode="cmyk")
    with pytest.raises(ValueError, match="Invalid interpolation method cubic"):
        load_img(tmp_path / "a.png", target_size=(2, 2), interpolation="cubic")
    # Same size: no resampling, so the interpolation is not looked at (as Keras).
    load_img(tmp_path / "a.png", target_size=(4, 4), interpolation="cubic")


def test_array_to_img_scales_min_max_to_0_255():
    x = np.array([[[-1.0], [0.0]], [[1.0], [3.0]]], np.float32)
    img = array_to_img(x)
    assert img.mode == "L"
    np.testing.assert_array_equal(np.asarray(img), [[0, 63], [127, 255]])
    assert array_to_img(np.zeros((2, 2, 3))).mode == "RGB"
    assert array_to_img(np.zeros((2, 2, 4))).mode == "RGBA"
    assert array_to_img(np.full((2, 2, 1), 1000.0), scale=False).mode == "I"
    with pytest.raises(ValueError, match="Expected image array to have rank 3"):
        array_to_img(np.zeros((2, 2)))
    with pytest.raises(ValueError, match="Unsupported channel number: 2"):
        array_to_img(np.zeros((2, 2, 2)))


def test_channels_first_layouts():
    x = rand_image(3, 4).astype(np.float32)
    chw = img_to_array(array_to_img(x, scale=False), data_format="channels_first")
    np.testing.assert_array_equal(chw, x.transpose(2, 0, 1))
    with pytest.raises(ValueError, match="data_format"):
        img_to_array(array_to_img(x), data_format="nhwc")


def test_save_img_jpeg_drops_alpha_with_a_warning(tmp_path):
    with pytest.warns(UserWarning, match="JPEG format does not support RGBA"):
        save_img(tmp_path / "a.jpg", rand_image(4, 4, 4))
    assert Image.open(tmp_path / "a.jpg").mode == "RGB"


def test_missing_pillow_names_pip_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "PIL", None)
    with pytest.raises(ImportError, match="pip install pillow"):
        load_img("anything.png")
    with pytest.raises(ImportError, match="pip install pillow"):
        array_to_img(np.zeros((2, 2, 3)))


def test_import_pycnn_does_not_import_pillow():
    out = run_python("import sys, pycnn; print('PIL' in sys.modules)")
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"


# --------------------------------------------------------------------------
# resize: the numbers of tf.image.resize


@pytest.mark.parametrize("method", image_resize.INTERPOLATIONS)
def test_resize_matches_tensorflow(method):
    ref = np.load(FIXTURE)
    exact = method in ("nearest", "bilinear")
    for key in ref.files:
        if not key.startswith(method + "_"):
            continue
        h, w = map(int, key.split("_")[1].split("x"))
        got = image_resize.resize(ref["input"], (h, w), method)
        assert got.dtype == np.float32 and got.shape == ref[key].shape
        if exact:
            np.testing.assert_array_equal(got, ref[key])
        else:
            np.testing.assert_allclose(got, ref[key], atol=2e-3, rtol=0)


def test_resize_rejects_unknown_interpolation():
    with pytest.raises(ValueError, match="Argument `interpolation` should be one of"):
        image_resize.resize(np.zeros((2, 2, 1)), (3, 3), "lanczos")


def test_crop_to_aspect_ratio_takes_the_centred_window():
    x = np.arange(6 * 10).reshape(6, 10, 1)
    crop = image_resize.crop_to_aspect_ratio(x, (3, 3))
    np.testing.assert_array_equal(crop, x[:, 2:8])


# --------------------------------------------------------------------------
# image_dataset_from_directory


CLASSES = {"cats": 7, "dogs": 5, "zebra": 3}


def make_tree(root: Path, classes=CLASSES, nested: bool = True) -> dict[str, np.ndarray]:
    """Class folders of PNG/BMP/GIF images of random sizes, a nested folder, a hidden
    folder, a text file and a top-level image; returns each image by relative path."""
    images = {}
    rng = np.random.default_rng(0)
    exts = ["png", "bmp", "gif", "PNG"]
    for c, n in classes.items():
        (root / c / "sub").mkdir(parents=True, exist_ok=True)
        for i in range(n):
            h, w = (int(v) for v in rng.integers(6, 20, 2))
            x = rng.integers(0, 256, (h, w, 3)).astype(np.uint8)
            ext = exts[i % 4]
            rel = f"{c}/sub/img{i}.{ext}" if nested and i % 3 == 0 else f"{c}/img{i}.{ext}"
            fmt = {"PNG": "png"}.get(ext, ext)
            if fmt == "gif":  # a palette image: exact through GIF
                x = np.asarray(Image.fromarray(x).quantize(16).convert("RGB"))
            Image.fromarray(x).save(root / rel, format=fmt)
            images[rel] = x
        (root / c / "notes.txt").write_text("not an image")
    (root / ".hidden").mkdir(exist_ok=True)
    Image.fromarray(rand_image(5, 5)).save(root / ".hidden" / "x.png")
    Image.fromarray(rand_image(5, 5)).save(root / "top.png")
    return images


def keras_order(root: Path, classes=CLASSES) -> list[str]:
    """Keras' unshuffled order: classes sorted, each walked with sorted roots and names."""
    out = []
    for c in sorted(classes):
        for dirpath, _, files in sorted(os.walk(root / c), key=lambda t: t[0]):
            for f in sorted(files):
                if f.lower().endswith((".bmp", ".gif", ".jpeg", ".jpg", ".png")):
                    out.append(os.path.join(str(root), c, os.path.relpath(
                        os.path.join(dirpath, f), root / c)))
    return out


def test_class_inference_order_and_message(tmp_path, capsys):
    make_tree(tmp_path)
    ds = image_dataset_from_directory(tmp_path, shuffle=False, image_size=(8, 8), batch_size=4)
    assert capsys.readouterr().out == "Found 15 files belonging to 3 classes.\n"
    assert ds.class_names == ["cats", "dogs", "zebra"]
    assert ds.file_paths == keras_order(tmp_path)
    labels = np.concatenate([y for _, y in ds])
    assert labels.dtype == np.int32
    np.testing.assert_array_equal(labels, [0] * 7 + [1] * 5 + [2] * 3)
    assert len(ds) == 4
    shapes = [x.shape for x, _ in ds]
    assert shapes == [(4, 8, 8, 3)] * 3 + [(3, 8, 8, 3)]
    assert all(x.dtype == np.float32 for x, _ in ds)


def test_pixels_are_the_decoded_images_resized_bilinearly(tmp_path):
    images = make_tree(tmp_path)
    ds = image_dataset_from_directory(tmp_path, shuffle=False, image_size=(9, 11),
                                      batch_size=100, verbose=False)
    x, _ = next(iter(ds))
    for i, path in enumerate(ds.file_paths):
        rel = os.path.relpath(path, tmp_path)
        expected = image_resize.resize(images[rel], (9, 11), "bilinear")
        np.testing.assert_array_equal(x[i], expected)


def test_shuffle_with_seed_is_keras_random_state_permutation(tmp_path):
    make_tree(tmp_path)
    ds = image_dataset_from_directory(tmp_path, seed=42, image_size=(4, 4), verbose=False)
    expected = keras_order(tmp_path)
    np.random.RandomState(42).shuffle(expected)
    assert ds.file_paths == expected


def test_validation_split_subsets_are_disjoint_complete_and_as_keras(tmp_path, capsys):
    make_tree(tmp_path)
    kw = dict(validation_split=0.3, seed=7, image_size=(4, 4), batch_size=2)
    train = image_dataset_from_directory(tmp_path, subset="training", **kw)
    val = image_dataset_from_directory(tmp_path, subset="validation", **kw)
    both = image_dataset_from_directory(tmp_path, subset="both", **kw)
    out = capsys.readouterr().out
    assert "Using 11 files for training.\n" in out and "Using 4 files for validation.\n" in out
    expected = keras_order(tmp_path)
    np.random.RandomState(7).shuffle(expected)
    assert train.file_paths == expected[:11] and val.file_paths == expected[11:]
    assert both[0].file_paths == train.file_paths and both[1].file_paths == val.file_paths
    # The labels that come with the images are those of their class folders.
    for ds in (train, val):
        seen = []
        for _, y in ds:
            seen += list(y)
        names = [ds.class_names[i] for i in seen]
        assert sorted(names) == sorted(os.path.relpath(p, tmp_path).split(os.sep)[0]
                                       for p in ds.file_paths)
    # Validation is not reshuffled: two passes give the same order.
    first = np.concatenate([x for x, _ in both[1]])
    second = np.concatenate([x for x, _ in both[1]])
    np.testing.assert_array_equal(first, second)


def test_training_subset_is_reshuffled_each_epoch_but_repeatable(tmp_path):
    make_tree(tmp_path, {"a": 20, "b": 20}, nested=False)
    kw = dict(seed=3, image_size=(4, 4), batch_size=2, verbose=False)
    ds = image_dataset_from_directory(tmp_path, **kw)
    epoch1 = np.concatenate([y for _, y in ds])
    epoch2 = np.concatenate([y for _, y in ds])
    again = image_dataset_from_directory(tmp_path, **kw)
    np.testing.assert_array_equal(np.concatenate([y for _, y in again]), epoch1)
    assert sorted(epoch1) == sorted(epoch2) and not np.array_equal(epoch1, epoch2)


def test_label_modes(tmp_path):
    make_tree(tmp_path, {"a": 3, "b": 2}, nested=False)
    kw = dict(shuffle=False, image_size=(4, 4), batch_size=10, verbose=False)
    _, y = next(iter(image_dataset_from_directory(tmp_path, label_mode="categorical", **kw)))
    assert y.dtype == np.float32
    np.testing.assert_array_equal(y, [[1, 0]] * 3 + [[0, 1]] * 2)
    _, y = next(iter(image_dataset_from_directory(tmp_path, label_mode="binary", **kw)))
    assert y.dtype == np.float32 and y.shape == (5, 1)
    np.testing.assert_array_equal(y[:, 0], [0, 0, 0, 1, 1])
    # Without labels the whole tree is walked, as Keras: also top.png and .hidden/x.png.
    x = next(iter(image_dataset_from_directory(tmp_path, label_mode=None, **kw)))
    assert isinstance(x, np.ndarray) and x.shape == (7, 4, 4, 3)
    x = next(iter(image_dataset_from_directory(tmp_path, labels=None, **kw)))
    assert isinstance(x, np.ndarray)
    ds = image_dataset_from_directory(tmp_path, labels=[4, 4, 9, 9, 9, 4, 9], **kw)
    assert ds.class_names == ["4", "9"]
    np.testing.assert_array_equal(next(iter(ds))[1], [4, 4, 9, 9, 9, 4, 9])
    # Sorted walk: the top directory's files, then its sub-directories' in name order.
    assert [os.path.relpath(p, tmp_path) for p in ds.file_paths][:3] == [
        "top.png", os.path.join(".hidden", "x.png"), os.path.join("a", "img0.png")]


def test_class_names_choose_and_order_the_classes(tmp_path):
    make_tree(tmp_path, nested=False)
    ds = image_dataset_from_directory(tmp_path, class_names=["zebra", "cats"], shuffle=False,
                                      image_size=(4, 4), batch_size=100, verbose=False)
    assert ds.class_names == ["zebra", "cats"]
    np.testing.assert_array_equal(next(iter(ds))[1], [0] * 3 + [1] * 7)


def test_unbatched_grayscale_and_rgba(tmp_path):
    make_tree(tmp_path, {"a": 2, "b": 1}, nested=False)
    ds = image_dataset_from_directory(tmp_path, batch_size=None, color_mode="grayscale",
                                      image_size=5, shuffle=False, verbose=False)
    x, y = next(iter(ds))
    assert x.shape == (5, 5, 1) and y.shape == ()
    ds = image_dataset_from_directory(tmp_path, color_mode="rgba", image_size=(3, 2),
                                      shuffle=False, verbose=False)
    assert next(iter(ds))[0].shape == (3, 3, 2, 4)


def test_crop_to_aspect_ratio_and_other_interpolations(tmp_path):
    images = make_tree(tmp_path, {"a": 2}, nested=False)
    ds = image_dataset_from_directory(tmp_path, crop_to_aspect_ratio=True, interpolation="area",
                                      image_size=(4, 4), shuffle=False, verbose=False)
    x, _ = next(iter(ds))
    for i, path in enumerate(ds.file_paths):
        img = images[os.path.relpath(path, tmp_path)].astype(np.float32)
        expected = image_resize.resize(image_resize.crop_to_aspect_ratio(img, (4, 4)),
                                       (4, 4), "area")
        np.testing.assert_array_equal(x[i], expected)


def test_jpeg_files_are_found(tmp_path):
    (tmp_path / "a").mkdir()
    Image.fromarray(rand_image(8, 8)).save(tmp_path / "a" / "x.jpeg")
    Image.fromarray(rand_image(8, 8)).save(tmp_path / "a" / "y.JPG", format="jpeg")
    ds = image_dataset_from_directory(tmp_path, image_size=(8, 8), verbose=False)
    assert len(ds.file_paths) == 2


def test_error_messages_as_keras(tmp_path):
    (tmp_path / "empty" / "a").mkdir(parents=True)
    with pytest.raises(ValueError, match=r"No images found in directory .*empty\. "
                                         r"Allowed formats: \('.bmp'"):
        image_dataset_from_directory(tmp_path / "empty", verbose=False)
    make_tree(tmp_path / "t", nested=False)
    t = tmp_path / "t"
    cases = [
        (dict(labels="folders"), "`labels` argument should be a list/tuple"),
        (dict(label_mode="sparse"), '`label_mode` argument must be one of "int"'),
        (dict(color_mode="rgbx"), "`color_mode` must be one of"),
        (dict(image_size=(1, 2, 3)), "Invalid `image_size` value"),
        (dict(interpolation="cubic"), "Argument `interpolation` should be one of"),
        (dict(validation_split=1.5, subset="training", seed=1),
         "`validation_split` must be between 0 and 1"),
        (dict(validation_split=0.2), "If `subset` is set, `validation_split` must be set"),
        (dict(validation_split=0.2, subset="test", seed=1), '`subset` must be either "training"'),
        (dict(validation_split=0.2, subset="training"), "you must provide a `seed` argument"),
        (dict(label_mode="binary"), 'When passing `label_mode="binary"`, there must be exactly 2'),
        (dict(class_names=["cats", "lions"]), "The `class_names` passed did not match"),
        (dict(labels=[0, 1]), "Expected the lengths of `labels` to match the number of files"),
        (dict(labels=None, class_names=["cats"]), "When `labels=None` \\(no labels\\)"),
        (dict(batch_size=0), "`batch_size` must be a positive integer or None"),
    ]
    for kwargs, message in cases:
        with pytest.raises(ValueError, match=message):
            image_dataset_from_directory(t, verbose=False, **kwargs)
    with pytest.raises(FileNotFoundError):
        image_dataset_from_directory(tmp_path / "nowhere")


def test_no_threads_left_after_iterating_or_abandoning(tmp_path):
    make_tree(tmp_path, {"a": 6, "b": 6}, nested=False)
    before = set(threading.enumerate())
    ds = image_dataset_from_directory(tmp_path, image_size=(4, 4), batch_size=2, seed=1,
                                      verbose=False)
    for _ in ds:
        pass
    it = iter(ds)
    next(it)
    it.close()
    del it
    assert set(threading.enumerate()) == before


def test_fit_style_epochs_restart_the_pipeline(tmp_path):
    make_tree(tmp_path, {"a": 3, "b": 2}, nested=False)
    ds = image_dataset_from_directory(tmp_path, image_size=(4, 4), batch_size=2, seed=0,
                                      verbose=False)
    for _ in range(3):
        batches = list(ds)
        assert len(batches) == len(ds) == 3
        assert sum(len(y) for _, y in batches) == 5


def test_exported_names():
    assert pycnn.utils.load_img is load_img
    assert pycnn.utils.image_dataset_from_directory is image_dataset_from_directory
