"""Writes tests/data/keras_augment_reference.npz: Keras 3's outputs of its image preprocessing
layers for fixed images and fixed drawn parameters (run with the Keras 3 + JAX venv:
KERAS_BACKEND=jax /work/venvs/keras3/bin/python tools/keras_augment_reference.py).
tests/test_augmentation.py compares pycnn's pixels with these."""
import os

os.environ.setdefault("KERAS_BACKEND", "jax")
import numpy as np  # noqa: E402
import keras  # noqa: E402
from keras import layers  # noqa: E402

rng = np.random.default_rng(0)
x = rng.random((3, 11, 9, 2)).astype("float32")
out = {"x": x}
ANGLES = np.array([-30.0, 17.3, 95.0], "float32")
TRANS = np.array([[1.3, -2.2], [-4.7, 3.1], [0.5, 7.9]], "float32")
HZ = np.array([[0.7], [1.3], [1.05]], "float32")
WZ = np.array([[1.2], [0.8], [0.9]], "float32")
for fill in ("reflect", "wrap", "constant", "nearest"):
    for interp in ("bilinear", "nearest"):
        key = f"{fill}_{interp}"
        lay = layers.RandomRotation(0.5, fill_mode=fill, interpolation=interp, fill_value=0.3)
        n = 3
        z = np.zeros(n, "float32")
        m = lay._compute_affine_matrix(0.5, 0.5, ANGLES, z, z, np.ones(n, "float32"), z, z,
                                       11, 9)
        out[f"rotation_{key}"] = np.asarray(lay.transform_images(
            x, {"rotation_matrix": m}, training=True))
        lay = layers.RandomTranslation(0.5, 0.5, fill_mode=fill, interpolation=interp,
                                       fill_value=0.3)
        out[f"translation_{key}"] = np.asarray(lay.transform_images(
            x, {"translations": TRANS, "input_shape": x.shape}, training=True))
        lay = layers.RandomZoom(0.5, 0.5, fill_mode=fill, interpolation=interp, fill_value=0.3)
        out[f"zoom_{key}"] = np.asarray(lay.transform_images(
            x, {"height_zoom": HZ, "width_zoom": WZ, "input_shape": x.shape}, training=True))
flips = np.array([True, False, True]).reshape(3, 1, 1, 1)
for mode in ("horizontal", "vertical", "horizontal_and_vertical"):
    lay = layers.RandomFlip(mode)
    out[f"flip_{mode}"] = np.asarray(lay.transform_images(x, {"flips": flips}, training=True))
lay = layers.RandomContrast(0.5, value_range=(0, 1))
out["contrast"] = np.asarray(lay.transform_images(
    x, {"contrast_factor": np.array([0.5, 1.2, 1.7], "float32").reshape(3, 1, 1, 1)}))
lay = layers.RandomBrightness(0.5, value_range=(0, 1))
out["brightness"] = np.asarray(lay.transform_images(
    x.copy(), {"rgb_delta": np.array([0.1, -0.3, 0.5], "float32").reshape(3, 1, 1, 1)}))
for interp in ("bilinear", "nearest"):
    out[f"resize_up_{interp}"] = np.asarray(layers.Resizing(15, 6, interpolation=interp)(x))
    out[f"resize_down_{interp}"] = np.asarray(layers.Resizing(5, 4, interpolation=interp)(x))
out["resize_crop_aspect"] = np.asarray(layers.Resizing(6, 7, crop_to_aspect_ratio=True)(x))
out["center_crop"] = np.asarray(layers.CenterCrop(5, 4)(x))
out["center_crop_up"] = np.asarray(layers.CenterCrop(13, 12)(x))
out["random_crop"] = np.asarray(layers.RandomCrop(5, 4).transform_images(x, (2, 1)))
norm = layers.Normalization()
norm.adapt(x)
out["normalization_adapt"] = np.asarray(norm(x))
out["normalization_invert"] = np.asarray(layers.Normalization(mean=0.2, variance=4.0,
                                                              invert=True)(x))
np.savez_compressed(os.path.join(os.path.dirname(__file__), "..", "tests", "data",
                                 "keras_augment_reference.npz"), **out)
print("wrote", len(out), "arrays with keras", keras.__version__)
