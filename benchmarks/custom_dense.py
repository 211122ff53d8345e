"""How fast a layer written with ``pycnn.ops`` trains next to the built-in ``Dense``.

MNIST-sized random data (784 inputs, 10 classes), a 784 -> 512 (relu) -> 10 (softmax) network,
batch 128, SGD, ``fit``. Three models with the same weights:

- ``builtin``: ``Dense(512, relu)`` + ``Dense(10, softmax)``;
- ``custom_hidden``: ``SimpleDense(512, relu)`` (``ops.matmul`` + bias + ``ops.relu``) +
  ``Dense(10, softmax)``;
- ``custom_both``: ``SimpleDense(512, relu)`` + ``SimpleDense(10)`` + ``Activation("softmax")``.

Each model trains one warm-up epoch, then ``--epochs`` timed epochs; the best epoch time of
each and the ratio to ``builtin`` are printed. Not part of the tests (the machine may be
shared: numbers vary with its load)::

    python benchmarks/custom_dense.py [--samples 12800] [--epochs 3] [--threads N]
"""
from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

import pycnn as keras  # noqa: E402
from pycnn import layers, ops  # noqa: E402


class SimpleDense(keras.layers.Layer):
    """``activation(inputs @ kernel + bias)`` written with ops."""

    def __init__(self, units, activation=None, **kwargs):
        super().__init__(**kwargs)
        self.units, self.activation = units, activation

    def build(self, input_shape):
        self.kernel = self.add_weight(shape=(input_shape[-1], self.units),
                                      initializer="glorot_uniform", name="kernel")
        self.bias = self.add_weight(shape=(self.units,), initializer="zeros", name="bias")

    def call(self, inputs):
        y = ops.matmul(inputs, self.kernel) + self.bias
        return ops.relu(y) if self.activation == "relu" else y


def build(kind: str):
    if kind == "builtin":
        hidden, out = [layers.Dense(512, activation="relu")], \
            [layers.Dense(10, activation="softmax")]
    elif kind == "custom_hidden":
        hidden, out = [SimpleDense(512, "relu")], [layers.Dense(10, activation="softmax")]
    else:
        hidden, out = [SimpleDense(512, "relu")], [SimpleDense(10),
                                                   layers.Activation("softmax")]
    model = keras.Sequential([keras.Input((784,))] + hidden + out)
    model.compile(keras.optimizers.SGD(0.01), "sparse_categorical_crossentropy")
    return model


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--samples", type=int, default=12800)
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--threads", type=int, default=None)
    args = p.parse_args()
    if args.threads:
        keras.set_num_threads(args.threads)
    rng = np.random.default_rng(0)
    x = rng.random((args.samples, 784), dtype=np.float32)
    y = rng.integers(0, 10, args.samples)
    weights = None
    times = {}
    for kind in ("builtin", "custom_hidden", "custom_both"):
        model = build(kind)
        if weights is None:
            weights = model.get_weights()
        model.set_weights(weights)
        model.fit(x, y, batch_size=128, epochs=1, verbose=0)         # warm-up
        best = float("inf")
        for _ in range(args.epochs):
            t0 = time.perf_counter()
            model.fit(x, y, batch_size=128, epochs=1, verbose=0)
            best = min(best, time.perf_counter() - t0)
        times[kind] = best
        print(f"{kind:14s} {best * 1e3:8.1f} ms/epoch  "
              f"({best / (args.samples / 128) * 1e3:.2f} ms/step)  "
              f"ratio {best / times['builtin']:.2f}", flush=True)
    print(f"threads={keras.get_num_threads()} samples={args.samples} batch=128 "
          f"(best of {args.epochs} epochs; the machine may be shared)")


if __name__ == "__main__":
    main()
