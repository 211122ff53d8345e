"""The lecture's convnet (lecture 4, part 2), verbatim but for the imports: train 5 epochs on
MNIST and print the test accuracy. Run: python examples/lecture4_convnet.py [--epochs N]"""
import argparse
import os
from pathlib import Path

# The project's own scripts find the shared copy of MNIST beside the checkout, if there is one.
_shared = Path(__file__).resolve().parents[2] / "shared" / "data"
if "PYCNN_DATA_DIR" not in os.environ and _shared.is_dir():
    os.environ["PYCNN_DATA_DIR"] = str(_shared)

import pycnn as keras                 # was: from tensorflow import keras
from pycnn import layers              # was: from tensorflow.keras import layers
from pycnn.datasets import mnist      # was: from tensorflow.keras.datasets import mnist

parser = argparse.ArgumentParser(description=__doc__)
parser.add_argument("--epochs", type=int, default=5)
args = parser.parse_args()

(train_images, train_labels), (test_images, test_labels) = mnist.load_data()

input = keras.Input(shape=(28, 28, 1))
x = layers.Conv2D(filters=32, kernel_size=3, activation="relu") (input)
x = layers.MaxPool2D(pool_size=2) (x)
x = layers.Conv2D(filters=64, kernel_size=3, activation="relu") (x)
x = layers.MaxPool2D(pool_size=2)(x)
x = layers.Conv2D(filters=128, kernel_size=3, activation="relu") (x)
x = layers.Flatten() (x)
output = layers.Dense(10, activation="softmax") (x)
model = keras.Model(inputs=input, outputs=output)
model.summary()

train_images = train_images.reshape(60000, 28, 28, 1).astype("float32") / 255
test_images = test_images.reshape(10000, 28, 28, 1).astype("float32") / 255
model.compile(optimizer="rmsprop", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
model.fit(train_images, train_labels, epochs=args.epochs, batch_size=128)
test_loss, test_acc = model.evaluate(test_images, test_labels)
print(f"test accuracy: {test_acc}")
