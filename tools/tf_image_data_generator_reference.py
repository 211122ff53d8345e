"""Writes tests/data/tf_image_data_generator_reference.npz: tf.keras 2's ImageDataGenerator
outputs for fixed images and parameters, and whole seeded batches of flow(); run with the
TensorFlow venv (it needs SciPy): /work/venvs/tf/bin/python tools/tf_image_data_generator_reference.py
tests/test_image_data_generator.py compares pycnn's with these."""
import os

import numpy as np
from tf_keras.preprocessing.image import ImageDataGenerator

rng = np.random.default_rng(0)
x = rng.random((4, 11, 8, 3)).astype("float32")
out = {"x": x}
PARAMS = [dict(theta=25.0, tx=1.5, ty=-2.0, shear=10.0, zx=0.9, zy=1.2),
          dict(theta=-40.0, tx=0.0, ty=3.3, shear=0.0, zx=1.1, zy=1.1),
          dict(theta=0.0, tx=-2.5, ty=0.7, shear=-20.0, zx=1.0, zy=1.0),
          dict(theta=75.0, tx=0.0, ty=0.0, shear=0.0, zx=1.3, zy=0.8)]
for fill in ("nearest", "reflect", "wrap", "constant"):
    for order in (0, 1):
        gen = ImageDataGenerator(fill_mode=fill, cval=0.4, interpolation_order=order)
        out[f"affine_{fill}_{order}"] = np.stack(
            [gen.apply_transform(x[i], PARAMS[i]) for i in range(4)])
gen = ImageDataGenerator()
extra = [dict(flip_horizontal=True, channel_shift_intensity=0.2),
         dict(flip_vertical=True, theta=10.0),
         dict(flip_horizontal=True, flip_vertical=True, brightness=1.3),
         dict(brightness=0.6)]
x255 = (x * 255).astype("float32")
out["extra"] = np.stack([gen.apply_transform(x255[i], extra[i]) for i in range(4)])
out["brightness_small_range"] = np.stack([gen.apply_transform(x[i], {"brightness": 1.4})
                                          for i in range(2)])
# a seeded flow: parameter draws, shuffling and standardisation as tf.keras does them
y = np.arange(4)
gen = ImageDataGenerator(rotation_range=20, width_shift_range=0.1, height_shift_range=2,
                         shear_range=5, zoom_range=0.2, horizontal_flip=True,
                         vertical_flip=True, rescale=0.5, samplewise_center=True,
                         channel_shift_range=0.1, fill_mode="reflect")
it = gen.flow(x, y, batch_size=3, seed=7)
out["flow_batch0_x"], out["flow_batch0_y"] = it[0]
out["flow_batch1_x"], out["flow_batch1_y"] = it[1]
nx, ny = next(gen.flow(x, y, batch_size=4, seed=11))
out["flow_next_x"], out["flow_next_y"] = nx, ny
gen = ImageDataGenerator(featurewise_center=True, featurewise_std_normalization=True)
gen.fit(x)
out["fit_mean"], out["fit_std"] = gen.mean, gen.std
out["fit_standardized"] = gen.standardize(x.copy())
gen = ImageDataGenerator(rotation_range=30, zoom_range=[0.8, 1.0])
out["random_transform_seed3"] = gen.random_transform(x[0], seed=3)
np.savez_compressed(os.path.join(os.path.dirname(__file__), "..", "tests", "data",
                                 "tf_image_data_generator_reference.npz"), **out)
print("wrote", len(out), "arrays")
