"""Throughput of the augmentation layers that lead the lecture's convnet: RandomRotation,
RandomZoom and RandomTranslation (factors 0.1, Keras' defaults otherwise: bilinear, reflect) on
batches of 128 MNIST-sized images (28x28x1), in training mode, as a model's step calls them
(``forward`` with a reused per-call context). Prints images/s and the time for one 60,000-image
epoch, which the target compares with the lecture convnet's ~4.3 s epoch: at most 15 %, 0.65 s.

    python3 benchmarks/augmentation.py [--batches 469] [--repeats 3] [--threads N]
"""
from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

import pycnn  # noqa: E402
from pycnn import layers  # noqa: E402
from pycnn.layers.context import Context  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--batches", type=int, default=469, help="batches per round (469: MNIST)")
    ap.add_argument("--repeats", type=int, default=3, help="rounds; the best is reported")
    ap.add_argument("--threads", type=int, default=None)
    args = ap.parse_args()
    if args.threads:
        pycnn.set_num_threads(args.threads)
    rng = np.random.default_rng(0)
    x = rng.random((128, 28, 28, 1), dtype=np.float32)
    stack = [layers.RandomRotation(0.1, seed=1), layers.RandomZoom(0.1, seed=2),
             layers.RandomTranslation(0.1, 0.1, seed=3)]
    for lay in stack:
        lay._maybe_build((None, 28, 28, 1))
    ctxs = [Context() for _ in stack]

    def step():
        y = x
        for lay, ctx in zip(stack, ctxs):
            y = lay.forward(ctx, y, training=True)
        return y

    step()
    per_layer = {type(l).__name__: [] for l in stack}
    best = best_cpu = float("inf")
    for _ in range(args.repeats):
        t0, c0 = time.perf_counter(), time.process_time()
        for _ in range(args.batches):
            step()
        best = min(best, time.perf_counter() - t0)
        best_cpu = min(best_cpu, time.process_time() - c0)
        for lay, ctx in zip(stack, ctxs):        # each layer alone, for the breakdown
            t1 = time.perf_counter()
            for _ in range(50):
                lay.forward(ctx, x, training=True)
            per_layer[type(lay).__name__].append((time.perf_counter() - t1) / 50)
    images = args.batches * 128
    rate = images / best
    epoch = 60000 / rate
    print(f"threads: {pycnn.get_num_threads()}, SIMD path: {pycnn.backend.simd_path()}")
    for name, times in per_layer.items():
        print(f"  {name:<18} {min(times) * 1e3:.3f} ms per batch of 128")
    print(f"RandomRotation+RandomZoom+RandomTranslation: {rate:,.0f} images/s "
          f"(best of {args.repeats} rounds of {args.batches} batches)")
    print(f"one 60,000-image epoch: {epoch:.3f} s = {100 * epoch / 4.3:.1f} % of a 4.3 s "
          f"convnet epoch (target: <= 15 %, 0.65 s)")
    print(f"CPU time of the process for one epoch (all threads): "
          f"{best_cpu * 60000 / images:.3f} s; load average now: "
          f"{', '.join(f'{v:.2f}' for v in os.getloadavg())} on {os.cpu_count()} CPUs")


if __name__ == "__main__":
    main()
