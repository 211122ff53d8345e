"""What the lecture's convnet learned, in pictures (as Chollet's *Deep Learning with Python*,
section 9.4, draws them): train the lecture's convnet on MNIST, then save as PNG files

* ``history.png``            the training and validation curves (``viz.plot_history``);
* ``feature_maps_*.png``     every channel of each convolution's output for one test digit
                             (``viz.feature_maps``);
* ``filters_*.png``          the first layer's 3x3 kernels and, for each convolution, the input
                             patterns that excite its filters most (``viz.filters``);
* ``class_activation_*.png`` where the network looks when it decides on a digit (Grad-CAM,
                             ``viz.class_activation_map``), for a few test digits;
* ``confusion_matrix.png``   which digits it confuses with which (``viz.plot_confusion_matrix``).

MNIST is read from ``$PYCNN_DATA_DIR/mnist/``, ``../shared/data/mnist`` beside this checkout,
the cache, or downloaded once (see the README). Needs matplotlib.

Run:
    python examples/see_inside.py                       # 3 epochs, pictures in see_inside_output/
    python examples/see_inside.py --epochs 5 --out DIR
    python examples/see_inside.py --quick --out DIR     # 5,000 images, one epoch (for tests)
"""
import argparse
import os
import time
from pathlib import Path

import numpy as np

# The project's own scripts find the shared copy of MNIST beside the checkout, if there is one.
_shared = Path(__file__).resolve().parents[2] / "shared" / "data"
if "PYCNN_DATA_DIR" not in os.environ and _shared.is_dir():
    os.environ["PYCNN_DATA_DIR"] = str(_shared)

import pycnn as keras                 # was: from tensorflow import keras
from pycnn import layers              # was: from tensorflow.keras import layers
from pycnn import viz                 # the lecture's pictures, one call each
from pycnn.datasets import mnist      # was: from tensorflow.keras.datasets import mnist


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=int, default=None, help="default 3 (1 with --quick)")
    parser.add_argument("--out", default="see_inside_output",
                        help="directory for the PNG files (default: see_inside_output/)")
    parser.add_argument("--quick", action="store_true",
                        help="5,000 training images, one epoch, fewer ascent steps (for tests)")
    args = parser.parse_args()
    epochs = args.epochs or (1 if args.quick else 3)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    keras.utils.set_random_seed(0)

    (train_images, train_labels), (test_images, test_labels) = mnist.load_data()
    train_images = train_images.reshape(60000, 28, 28, 1).astype("float32") / 255
    test_images = test_images.reshape(10000, 28, 28, 1).astype("float32") / 255
    if args.quick:
        train_images, train_labels = train_images[:5000], train_labels[:5000]
        test_images, test_labels = test_images[:1000], test_labels[:1000]

    # The lecture's convnet (part 2), with names to find its layers by.
    input = keras.Input(shape=(28, 28, 1))
    x = layers.Conv2D(filters=32, kernel_size=3, activation="relu", name="conv1")(input)
    x = layers.MaxPool2D(pool_size=2, name="pool1")(x)
    x = layers.Conv2D(filters=64, kernel_size=3, activation="relu", name="conv2")(x)
    x = layers.MaxPool2D(pool_size=2, name="pool2")(x)
    x = layers.Conv2D(filters=128, kernel_size=3, activation="relu", name="conv3")(x)
    x = layers.Flatten()(x)
    output = layers.Dense(10, activation="softmax")(x)
    model = keras.Model(inputs=input, outputs=output)
    model.summary()

    model.compile(optimizer="rmsprop", loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    start = time.perf_counter()
    history = model.fit(train_images, train_labels, epochs=epochs, batch_size=128,
                        validation_split=0.1)
    train_time = time.perf_counter() - start
    test_loss, test_acc = model.evaluate(test_images, test_labels)
    print(f"test accuracy: {test_acc:.4f} ({train_time / epochs:.1f} s per epoch)\n")

    steps = 10 if args.quick else 30          # gradient-ascent steps of the filter patterns
    digit = test_images[0]                    # a 7

    viz.plot_history(history, to_file=out / "history.png")
    for name in ("conv1", "pool1", "conv2", "conv3"):
        viz.feature_maps(model, digit, name, to_file=out / f"feature_maps_{name}.png")
    viz.filters(model, "conv1", ascent_steps=steps, to_file=out / "filters_conv1.png")
    viz.filters(model, "conv2", ascent_steps=steps, max_filters=32,
                to_file=out / "filters_conv2.png")
    viz.filters(model, "conv3", ascent_steps=steps, max_filters=32,
                to_file=out / "filters_conv3.png")
    # Grad-CAM on conv2 (11x11) rather than the default, the last convolution (3x3 here,
    # too coarse to show much on a 28x28 digit)
    for i in range(3):
        viz.class_activation_map(model, test_images[i], layer="conv2",
                                 to_file=out / f"class_activation_{i}.png")
    predictions = model.predict(test_images)
    viz.plot_confusion_matrix(test_labels, predictions, to_file=out / "confusion_matrix.png")
    wrong = np.flatnonzero(predictions.argmax(axis=1) != test_labels)
    print(f"{len(wrong)} of {len(test_labels)} test digits misclassified")
    print(f"pictures in {out}/: {', '.join(sorted(p.name for p in out.glob('*.png')))}")


if __name__ == "__main__":
    main()
