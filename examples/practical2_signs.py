"""The course's second practical ("Getting started with deep learning"): the convnet for
sign-language letters, trained without and then with data augmentation, saved to a ``.keras``
file, loaded back and asked about a new image file.

The practical's own data (Sign Language MNIST, 28x28 grey images of 24 letters) is not
shipped here, so the script runs on Fashion-MNIST: the same 28x28x1 images, 10 classes of
clothing. ``fashion_mnist.load_data()`` finds Debian's copy (``apt-get install
dataset-fashion-mnist``), ``$PYCNN_DATA_DIR/fashion_mnist/`` or Keras' cache, or downloads it
once. ``--quick`` trains one epoch on 1,500 generated images of ten kinds of shapes and
strokes instead (no files or network needed; what the continuous-integration tests run).

Run:
    python examples/practical2_signs.py                 # Fashion-MNIST, 5 + 5 epochs
    python examples/practical2_signs.py --epochs 20     # the practical's 20 epochs
    python examples/practical2_signs.py --image my.png  # predict on your own image file
    python examples/practical2_signs.py --quick         # small generated data, ~20 s

Nothing is written into the current directory: the model file and the example image go to a
temporary directory (``--save-dir DIR`` keeps them).
"""
import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np

# The project's own scripts find the shared copy of the datasets beside the checkout, if any.
_shared = Path(__file__).resolve().parents[2] / "shared" / "data"
if "PYCNN_DATA_DIR" not in os.environ and _shared.is_dir():
    os.environ["PYCNN_DATA_DIR"] = str(_shared)

import pycnn as keras                                       # was: from tensorflow import keras
from pycnn.models import Sequential, load_model             # was: tensorflow.keras.models
from pycnn.layers import (BatchNormalization, Conv2D, Dense, Dropout, Flatten,
                          MaxPool2D)                        # was: tensorflow.keras.layers
from pycnn.preprocessing.image import ImageDataGenerator    # was: tensorflow.keras.preprocessing.image
from pycnn.utils import img_to_array, load_img, save_img    # was: tensorflow.keras.utils
from pycnn.datasets import fashion_mnist

FASHION_NAMES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt",
                 "Sneaker", "Bag", "Ankle boot"]
SHAPE_NAMES = ["horizontal bar", "vertical bar", "diagonal \\", "diagonal /", "ring", "disk",
               "square outline", "filled square", "plus", "cross"]


# ---- data ------------------------------------------------------------------------------------
def _segment_distance(yy, xx, p, q):
    """Distance of every pixel centre to the segment p-q (points as (y, x))."""
    d = np.subtract(q, p, dtype=np.float64)
    t = ((yy - p[0]) * d[0] + (xx - p[1]) * d[1]) / max(d @ d, 1e-9)
    t = np.clip(t, 0, 1)
    return np.hypot(yy - (p[0] + t * d[0]), xx - (p[1] + t * d[1]))


def shapes_dataset(n, seed, size=28):
    """``n`` grey ``size`` x ``size`` uint8 images of ten kinds of shapes and strokes, drawn at a
    random place, size and thickness with noise (Fashion-MNIST's shapes and dtypes)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size] + 0.5
    images = np.zeros((n, size, size), dtype=np.uint8)
    labels = rng.integers(0, 10, n).astype(np.uint8)
    for i, k in enumerate(labels):
        r = rng.uniform(0.22, 0.36) * size                     # half the shape's extent
        cy, cx = rng.uniform(r + 1, size - r - 1, 2)
        w = rng.uniform(1.0, 2.2)                               # stroke half-width
        a = rng.uniform(-0.25, 0.25)                           # a small random tilt
        c, s = np.cos(a), np.sin(a)

        def seg(u0, v0, u1, v1):   # a stroke in the shape's own (tilted) frame
            p = (cy + r * (u0 * c - v0 * s), cx + r * (u0 * s + v0 * c))
            q = (cy + r * (u1 * c - v1 * s), cx + r * (u1 * s + v1 * c))
            return _segment_distance(yy, xx, p, q) - w

        rho = np.hypot(yy - cy, xx - cx)
        u = ((yy - cy) * c + (xx - cx) * s) / r                # pixel in the shape's frame
        v = (-(yy - cy) * s + (xx - cx) * c) / r
        box = np.maximum(np.abs(u), np.abs(v))
        dist = [seg(0, -1, 0, 1), seg(-1, 0, 1, 0), seg(-1, -1, 1, 1), seg(-1, 1, 1, -1),
                np.abs(rho - r) - w, rho - r,
                np.abs(box - 0.85) * r - w, (box - 0.85) * r,
                np.minimum(seg(0, -1, 0, 1), seg(-1, 0, 1, 0)),
                np.minimum(seg(-1, -1, 1, 1), seg(-1, 1, 1, -1))][k]
        ink = np.clip(0.5 - dist, 0, 1) * rng.uniform(0.6, 1.0)   # anti-aliased edge
        noisy = ink * 255 + rng.normal(0, 20, ink.shape)
        images[i] = np.clip(noisy, 0, 255).astype(np.uint8)
    return images, labels


def load_data(source, quick):
    """``(x_train, y_train), (x_valid, y_valid), class_names``; ``quick``: a small part."""
    if source == "shapes":
        (x_train, y_train), (x_valid, y_valid) = shapes_dataset(5000, 1), shapes_dataset(1000, 2)
        names = SHAPE_NAMES
    else:
        (x_train, y_train), (x_valid, y_valid) = fashion_mnist.load_data()
        names = FASHION_NAMES
    if quick:
        x_train, y_train, x_valid, y_valid = x_train[:1500], y_train[:1500], x_valid[:300], \
            y_valid[:300]
    return (x_train, y_train), (x_valid, y_valid), names


# ---- the practical's model ---------------------------------------------------------------------
def build_model(num_classes):
    model = Sequential()
    model.add(Conv2D(75, (3, 3), strides=1, padding="same", activation="relu",
                     input_shape=(28, 28, 1)))
    model.add(BatchNormalization())
    model.add(MaxPool2D((2, 2), strides=2, padding="same"))
    model.add(Conv2D(50, (3, 3), strides=1, padding="same", activation="relu"))
    model.add(Dropout(0.2))
    model.add(BatchNormalization())
    model.add(MaxPool2D((2, 2), strides=2, padding="same"))
    model.add(Conv2D(25, (3, 3), strides=1, padding="same", activation="relu"))
    model.add(BatchNormalization())
    model.add(MaxPool2D((2, 2), strides=2, padding="same"))
    model.add(Flatten())
    model.add(Dense(units=512, activation="relu"))
    model.add(Dropout(0.3))
    model.add(Dense(units=num_classes, activation="softmax"))
    model.compile(loss="categorical_crossentropy", metrics=["accuracy"])
    return model


class EpochTimer(keras.callbacks.Callback):
    """Wall time of each epoch (training and validation)."""

    def on_train_begin(self, logs=None):
        self.times = []

    def on_epoch_begin(self, epoch, logs=None):
        self.start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.times.append(time.perf_counter() - self.start)


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=int, default=None,
                        help="epochs of each phase (default 5; 1 with --quick)")
    parser.add_argument("--data", choices=["fashion_mnist", "shapes"], default=None,
                        help="default: fashion_mnist, or shapes with --quick")
    parser.add_argument("--quick", action="store_true",
                        help="a small generated dataset and one epoch (for tests)")
    parser.add_argument("--image", help="an image file to classify (default: a test image "
                        "written to the save directory)")
    parser.add_argument("--save-dir", help="where to write the .keras file (default: a "
                        "temporary directory, removed at the end)")
    args = parser.parse_args()
    epochs = args.epochs or (1 if args.quick else 5)
    source = args.data or ("shapes" if args.quick else "fashion_mnist")
    keras.utils.set_random_seed(0)

    (x_train, y_train), (x_valid, y_valid), class_names = load_data(source, args.quick)
    num_classes = len(class_names)
    print(f"data: {source}, {len(x_train)} training and {len(x_valid)} validation images "
          f"{x_train.shape[1:]}, {num_classes} classes")

    # As in the practical: pixels scaled to [0, 1], images given a channel axis, one-hot labels.
    x_train = x_train.reshape(-1, 28, 28, 1).astype("float32") / 255
    x_valid = x_valid.reshape(-1, 28, 28, 1).astype("float32") / 255
    y_train = keras.utils.to_categorical(y_train, num_classes)
    y_valid = keras.utils.to_categorical(y_valid, num_classes)

    # ---- 1. the convnet on the images as they are ----------------------------------------
    model = build_model(num_classes)
    model.summary()
    timer = EpochTimer()
    model.fit(x_train, y_train, epochs=epochs, verbose=1, validation_data=(x_valid, y_valid),
              callbacks=[timer])
    _, plain_acc = model.evaluate(x_valid, y_valid, verbose=0)
    plain_time = float(np.mean(timer.times))

    # ---- 2. the same convnet, trained on augmented images ----------------------------------
    model = build_model(num_classes)
    datagen = ImageDataGenerator(
        rotation_range=10,        # randomly rotate images in the range (degrees, 0 to 180)
        zoom_range=0.1,           # randomly zoom image
        width_shift_range=0.1,    # randomly shift images horizontally (fraction of total width)
        height_shift_range=0.1,   # randomly shift images vertically (fraction of total height)
        horizontal_flip=False,    # the practical flips hands; letters and clothes stay as they are
        vertical_flip=False)
    datagen.fit(x_train)
    batch_size = 32
    img_iter = datagen.flow(x_train, y_train, batch_size=batch_size)
    timer = EpochTimer()
    model.fit(img_iter, epochs=epochs, steps_per_epoch=len(x_train) / batch_size,
              validation_data=(x_valid, y_valid), callbacks=[timer])
    _, aug_acc = model.evaluate(x_valid, y_valid, verbose=0)
    aug_time = float(np.mean(timer.times))

    # ---- 3. save, load back, predict on an image file --------------------------------------
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(args.save_dir) if args.save_dir else Path(tmp)
        out.mkdir(parents=True, exist_ok=True)
        model_path = out / "practical2_model.keras"
        model.save(model_path)
        model = load_model(model_path)

        image_path = args.image
        if image_path is None:           # a "new" image: a validation image, saved at 56x56
            image_path = out / "new_image.png"
            big = np.kron(x_valid[0], np.ones((2, 2, 1)))
            save_img(image_path, big)
            print(f"wrote {image_path} (class: {class_names[int(np.argmax(y_valid[0]))]})")
        image = load_img(image_path, color_mode="grayscale", target_size=(28, 28))
        image = img_to_array(image)
        image = image.reshape(1, 28, 28, 1)
        image = image / 255
        prediction = model.predict(image)
        predicted = int(np.argmax(prediction))
        print(f"the loaded model says {image_path} shows: {class_names[predicted]} "
              f"(p = {prediction[0, predicted]:.3f})")
        reloaded_acc = model.evaluate(x_valid, y_valid, verbose=0)[1]

    print(f"\nvalidation accuracy without augmentation: {plain_acc:.4f} "
          f"({plain_time:.1f} s per epoch)")
    print(f"validation accuracy with augmentation:    {aug_acc:.4f} "
          f"({aug_time:.1f} s per epoch)")
    print(f"validation accuracy of the reloaded model: {reloaded_acc:.4f}")


if __name__ == "__main__":
    main()
