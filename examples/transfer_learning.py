"""Transfer learning on a folder of images, as in the course (lecture 7 and the second
practical) and Keras' guide "Transfer learning & fine-tuning": a pretrained MobileNetV2
without its classifier is frozen and used as a feature extractor under a new head
(global average pooling, dropout, a softmax layer); after the head has learned, the top
layers of the base are unfrozen and the whole is fine-tuned with a small learning rate.

The images are read with ``utils.image_dataset_from_directory`` from one sub-directory per
class. Without ``--data-dir`` the script first writes a small image folder into a temporary
directory: three classes of generated colour pictures ("circles", "stripes", "checks") of
random sizes, as PNG and JPEG files.

ImageNet weights (``--weights imagenet``) are downloaded once into ``~/.keras/models/`` and
need a network. The default, ``--weights none``, starts from random weights: the script then
runs every step of the method, but its accuracies say little about transfer learning (the
"pretrained" features are random convolutions, whose outputs after MobileNetV2's 17 blocks
are about 1e-12, in Keras as here).

Run:
    python examples/transfer_learning.py                        # generated folder, random weights
    python examples/transfer_learning.py --weights imagenet     # needs a network once
    python examples/transfer_learning.py --data-dir PATH/TO/IMAGES --weights imagenet
    python examples/transfer_learning.py --quick                # tiny, for tests

Nothing is written outside the temporary directory (and ``~/.keras/models/`` for weights).
"""
import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

import pycnn as keras                       # was: from tensorflow import keras
from pycnn import layers                    # was: from tensorflow.keras import layers
from pycnn import applications              # keras.applications

IMAGE_SIZE = (96, 96)


# ---- a small image folder --------------------------------------------------------------------
def write_image_folder(root, per_class, seed=0):
    """``root/<class>/<i>.png|jpg``: pictures of random sizes (80 to 160 pixels a side) of
    circles, stripes or checks in random colours on a noisy background of another colour."""
    rng = np.random.default_rng(seed)
    for name in ("circles", "stripes", "checks"):
        (Path(root) / name).mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            h, w = rng.integers(80, 161, 2)
            yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
            period = rng.uniform(10, 24)
            angle = rng.uniform(0, np.pi)
            u = xx * np.cos(angle) + yy * np.sin(angle)
            v = -xx * np.sin(angle) + yy * np.cos(angle)
            if name == "circles":
                ink = np.zeros((h, w), dtype=bool)
                for _ in range(rng.integers(2, 6)):
                    cy, cx, r = rng.uniform(0, h), rng.uniform(0, w), rng.uniform(8, 25)
                    ink |= (yy - cy) ** 2 + (xx - cx) ** 2 <= r ** 2
            elif name == "stripes":
                ink = np.mod(u, period) < period / 2
            else:
                ink = (np.mod(u, period) < period / 2) ^ (np.mod(v, period) < period / 2)
            fg, bg = rng.uniform(0, 255, 3), rng.uniform(0, 255, 3)
            img = np.where(ink[..., None], fg, bg) + rng.normal(0, 12, (h, w, 3))
            img = np.clip(img, 0, 255).astype(np.uint8)
            ext = "png" if i % 2 == 0 else "jpg"
            keras.utils.save_img(Path(root) / name / f"{i:04d}.{ext}", img, scale=False)


# ---- the model -------------------------------------------------------------------------------
def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", help="a folder with one sub-folder of images per class "
                        "(default: a generated one in a temporary directory)")
    parser.add_argument("--weights", default="none",
                        help='"none" (random weights, the default), "imagenet" (downloads '
                        "once) or the path to a weights file")
    parser.add_argument("--per-class", type=int, default=None,
                        help="images per class of the generated folder (default 150; 20 "
                        "with --quick)")
    parser.add_argument("--epochs", type=int, default=None,
                        help="epochs of each phase (default 5; 1 with --quick)")
    parser.add_argument("--unfreeze", type=int, default=20,
                        help="how many of the base's top layers are fine-tuned (default 20)")
    parser.add_argument("--quick", action="store_true", help="a tiny run for tests")
    args = parser.parse_args()
    epochs = args.epochs or (1 if args.quick else 5)
    per_class = args.per_class or (20 if args.quick else 150)
    weights = None if args.weights.lower() == "none" else args.weights
    keras.utils.set_random_seed(0)

    with tempfile.TemporaryDirectory() as tmp:
        data_dir = args.data_dir
        if data_dir is None:
            data_dir = Path(tmp) / "images"
            write_image_folder(data_dir, per_class)
            print(f"wrote {3 * per_class} generated images to {data_dir}")
        train_ds, val_ds = keras.utils.image_dataset_from_directory(
            data_dir, image_size=IMAGE_SIZE, batch_size=32,
            validation_split=0.2, subset="both", seed=1337)
        class_names = train_ds.class_names
        run(train_ds, val_ds, class_names, weights, epochs, args.unfreeze)


def run(train_ds, val_ds, class_names, weights, epochs, unfreeze):
    if weights is None:
        print("\nNOTE: MobileNetV2 starts from RANDOM weights (--weights none): every step of "
              "transfer learning runs, but the accuracies below mean little (a random "
              "MobileNetV2's features are nearly zero, in Keras too, so the head barely "
              "learns). Use --weights imagenet (needs a network once) for the real thing.\n")
    base_model = applications.MobileNetV2(include_top=False, weights=weights,
                                          input_shape=IMAGE_SIZE + (3,))
    base_model.trainable = False             # freeze the base: feature extraction

    data_augmentation = keras.Sequential([layers.RandomFlip("horizontal"),
                                          layers.RandomRotation(0.1)], name="augmentation")
    inputs = keras.Input(shape=IMAGE_SIZE + (3,))
    x = data_augmentation(inputs)
    # MobileNetV2 wants pixels in [-1, 1] (what mobilenet_v2.preprocess_input does)
    x = layers.Rescaling(scale=1 / 127.5, offset=-1)(x)
    # training=False: the base's BatchNormalization layers keep their statistics, also later
    # when the base is unfrozen for fine-tuning
    x = base_model(x, training=False)
    x = layers.GlobalAveragePooling2D()(x)
    x = layers.Dropout(0.2)(x)
    outputs = layers.Dense(len(class_names), activation="softmax")(x)
    model = keras.Model(inputs, outputs)
    model.summary()

    # ---- phase 1: train the new head on the frozen base's features ------------------------
    model.compile(optimizer=keras.optimizers.Adam(learning_rate=1e-3),
                  loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    start = time.perf_counter()
    model.fit(train_ds, epochs=epochs, validation_data=val_ds)
    head_time = time.perf_counter() - start
    _, head_acc = model.evaluate(val_ds, verbose=0)

    # ---- phase 2: unfreeze the top of the base, fine-tune with a small learning rate ----------
    base_model.trainable = True
    for layer in base_model.layers[:-unfreeze]:
        layer.trainable = False
    trainable = sum(layer.trainable for layer in base_model.layers)
    print(f"\nfine-tuning the top {trainable} of the base's {len(base_model.layers)} layers")
    model.compile(optimizer=keras.optimizers.Adam(learning_rate=1e-4),   # 10x smaller
                  loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    model.summary()
    start = time.perf_counter()
    model.fit(train_ds, epochs=epochs, validation_data=val_ds)
    tune_time = time.perf_counter() - start
    _, tuned_acc = model.evaluate(val_ds, verbose=0)

    note = " (random base weights: these numbers mean little)" if weights is None else ""
    print(f"\nclasses: {class_names}{note}")
    print(f"validation accuracy after feature extraction: {head_acc:.4f} "
          f"({head_time / epochs:.1f} s per epoch)")
    print(f"validation accuracy after fine-tuning:        {tuned_acc:.4f} "
          f"({tune_time / epochs:.1f} s per epoch)")


if __name__ == "__main__":
    main()
