"""A small U-Net that segments shapes, as the course's supplementary notebook segments
microscopy images: 3x3 convolutions without bias (each followed by BatchNormalization and a
relu), max pooling on the way down, 2x2 transposed convolutions with stride 2 on the way up,
the encoder's feature maps concatenated to the decoder's (the skip connections), a 1x1
convolution giving one logit per pixel, binary crossentropy from logits, AdamW.

The data is generated: 64x64 grey images, each with one to three circles, rectangles or
triangles, brighter or darker than a shaded background, with noise; the target is the mask of
the shapes (1 inside a shape, 0 outside). After training, the script reports the IoU
(intersection over union) of the shape class on held-out images, with the logits thresholded
at 0 (the sigmoid at 0.5).

Run:
    python examples/unet_shapes.py              # 2,000 images, 6 epochs
    python examples/unet_shapes.py --epochs 10 --filters 16
    python examples/unet_shapes.py --quick      # 256 images, one epoch (for tests)

Nothing is written to disk.
"""
import argparse
import time

import numpy as np

import pycnn as keras                 # was: from tensorflow import keras
from pycnn import layers              # was: from tensorflow.keras import layers


# ---- data ------------------------------------------------------------------------------------
def shapes_dataset(n, seed, size=64):
    """``(images, masks)``: ``(n, size, size, 1)`` float32 images in [0, 1] and their 0/1
    masks of the same shape."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size] + 0.5
    images = np.empty((n, size, size, 1), dtype=np.float32)
    masks = np.zeros((n, size, size, 1), dtype=np.float32)
    for i in range(n):
        # a smoothly shaded background: a random plane of brightness
        gy, gx = rng.uniform(-0.3, 0.3, 2) / size
        img = rng.uniform(0.3, 0.7) + gy * (yy - size / 2) + gx * (xx - size / 2)
        mask = np.zeros((size, size), dtype=bool)
        for _ in range(rng.integers(1, 4)):
            kind = rng.integers(0, 3)
            cy, cx = rng.uniform(8, size - 8, 2)
            r = rng.uniform(5, 14)
            if kind == 0:                                       # circle
                inside = (yy - cy) ** 2 + (xx - cx) ** 2 <= r ** 2
            elif kind == 1:                                     # rectangle
                hy, hx = r * rng.uniform(0.5, 1.0, 2)
                inside = (np.abs(yy - cy) <= hy) & (np.abs(xx - cx) <= hx)
            else:                                               # triangle, any rotation
                a = rng.uniform(0, 2 * np.pi) + np.array([0, 2, 4]) * np.pi / 3
                py, px = cy + r * np.sin(a), cx + r * np.cos(a)
                inside = np.ones((size, size), dtype=bool)
                for j in range(3):                              # left of every edge
                    k = (j + 1) % 3
                    inside &= ((px[k] - px[j]) * (yy - py[j])
                               - (py[k] - py[j]) * (xx - px[j])) >= 0
            contrast = rng.uniform(0.15, 0.35) * rng.choice([-1, 1])
            img = np.where(inside, img + contrast, img)
            mask |= inside
        img = img + rng.normal(0, 0.08, img.shape)
        images[i, ..., 0] = np.clip(img, 0, 1)
        masks[i, ..., 0] = mask
    return images, masks


# ---- the U-Net -------------------------------------------------------------------------------
def double_conv(x, filters):
    """Two 3x3 convolutions without bias, each with batch normalization and a relu."""
    for _ in range(2):
        x = layers.Conv2D(filters, 3, padding="same", use_bias=False)(x)
        # momentum 0.9 (PyTorch's default) rather than Keras' 0.99: with ~100 steps an epoch
        # the moving statistics used at inference then catch up within the first epoch
        x = layers.BatchNormalization(momentum=0.9)(x)
        x = layers.Activation("relu")(x)
    return x


def unet(input_shape=(64, 64, 1), base_filters=8, depth=3):
    filters = [base_filters * 2 ** i for i in range(depth)]
    bottom = base_filters * 2 ** depth
    inputs = keras.Input(shape=input_shape)
    x = inputs
    skips = []
    for f in filters:                                   # the contracting path
        x = double_conv(x, f)
        skips.append(x)
        x = layers.MaxPooling2D(2)(x)
    x = double_conv(x, bottom)                          # the bottleneck
    for f, skip in zip(reversed(filters), reversed(skips)):   # the expanding path
        x = layers.Conv2DTranspose(f, 2, strides=2)(x)
        x = layers.concatenate([skip, x])
        x = double_conv(x, f)
    outputs = layers.Conv2D(1, 1)(x)                   # one logit per pixel
    return keras.Model(inputs, outputs, name="unet")


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=int, default=None, help="default 6 (1 with --quick)")
    parser.add_argument("--train", type=int, default=None,
                        help="training images (default 2000; 256 with --quick)")
    parser.add_argument("--filters", type=int, default=8,
                        help="filters of the first level, doubled at each level below (8)")
    parser.add_argument("--quick", action="store_true", help="a small run for tests")
    args = parser.parse_args()
    epochs = args.epochs or (1 if args.quick else 6)
    n_train = args.train or (256 if args.quick else 2000)
    n_test = 64 if args.quick else 500
    keras.utils.set_random_seed(0)

    x_train, y_train = shapes_dataset(n_train, seed=1)
    x_test, y_test = shapes_dataset(n_test, seed=2)
    print(f"{n_train} training and {n_test} held-out images {x_train.shape[1:]}, "
          f"{y_train.mean():.1%} of the pixels inside a shape")

    model = unet(base_filters=args.filters)
    model.summary()
    model.compile(
        optimizer=keras.optimizers.AdamW(learning_rate=1e-3, weight_decay=1e-4),
        loss=keras.losses.BinaryCrossentropy(from_logits=True),
        # the model outputs logits: a logit >= 0 is a sigmoid >= 0.5
        metrics=[keras.metrics.BinaryIoU(target_class_ids=[1], threshold=0.0, name="iou")])
    start = time.perf_counter()
    history = model.fit(x_train, y_train, batch_size=16, epochs=epochs,
                        validation_split=0.1)
    train_time = time.perf_counter() - start

    # IoU on the held-out images, from the sigmoid of the logits thresholded at 0.5
    logits = model.predict(x_test)
    probabilities = keras.ops.sigmoid(logits)
    iou = keras.metrics.BinaryIoU(target_class_ids=[1], threshold=0.5)
    iou.update_state(y_test, probabilities)
    both = keras.metrics.BinaryIoU(target_class_ids=[0, 1], threshold=0.5)
    both.update_state(y_test, probabilities)
    pixel_acc = np.mean((np.asarray(probabilities) >= 0.5) == (y_test == 1))

    print(f"\ntraining: {train_time:.1f} s ({train_time / epochs:.1f} s per epoch)")
    print(f"last epoch: loss {history.history['loss'][-1]:.4f}, "
          f"validation IoU {history.history['val_iou'][-1]:.4f}")
    print(f"held-out IoU of the shapes: {float(iou.result()):.4f}")
    print(f"held-out mean IoU (shapes and background): {float(both.result()):.4f}, "
          f"pixel accuracy {pixel_acc:.4f}")


if __name__ == "__main__":
    main()
