"""Epoch times of the course's other models in pycnn and in PyTorch, same threads, same data:

- ``bn_aug``: three augmentation layers (rotation, zoom, translation) leading an MLP with
  BatchNormalization and Dropout (practical 1's kind of model), 28x28x1, batch 128;
- ``signs``: practical 2's convnet (Conv2D 75/50/25 same + BatchNormalization + max pooling
  2/2 same + Dropout + Dense 512), 28x28x1, 24 classes, batch 128;
- ``unet``: a small U-Net (3x3 convolutions without bias, max pooling, 2x2 transposed
  convolutions of stride 2, concatenated skips, 1x1 output, binary crossentropy from logits),
  64x64x1, batch 32.

    python3 benchmarks/course_models.py [--models bn_aug,signs,unet] [--repeats 3] [--json F]

Prints seconds per epoch (median of the timed epochs after a warm-up epoch), the ratio
pycnn / PyTorch (< 1: pycnn is faster) and pycnn's rate as a fraction of the CPU's peak, counting
a training step as three times the forward FLOPs of ``summary(show_flops=True)`` (forward,
input gradient, weight gradient). ``benchmarks/run.py`` runs this script and reports its rows. PyTorch augments with affine_grid + grid_sample, its
idiomatic batched warp. Synthetic data: the timings do not depend on the pixels.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import sys
import time

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

SIZES = {"bn_aug": (12800, 128), "signs": (12800, 128), "unet": (1024, 32)}


def data(name: str, n: int, rng):
    if name == "unet":
        x = rng.random((n, 64, 64, 1), dtype=np.float32)
        return x, (x > 0.5).astype(np.float32)
    classes = 24 if name == "signs" else 10
    x = rng.random((n, 28, 28, 1), dtype=np.float32)
    y = rng.integers(0, classes, n)
    return x, y


# ---- pycnn -------------------------------------------------------------------------------------
def pycnn_model(name: str):
    import pycnn
    from pycnn import layers
    if name == "bn_aug":
        inp = pycnn.Input((28, 28, 1))
        x = layers.RandomRotation(0.05)(inp)
        x = layers.RandomZoom(0.1)(x)
        x = layers.RandomTranslation(0.1, 0.1)(x)
        x = layers.Flatten()(x)
        for units in (512, 512):
            x = layers.Dense(units, use_bias=False)(x)
            x = layers.BatchNormalization()(x)
            x = layers.Activation("relu")(x)
            x = layers.Dropout(0.2)(x)
        out = layers.Dense(10, activation="softmax")(x)
        model = pycnn.Model(inp, out)
        model.compile(optimizer="adam", loss="sparse_categorical_crossentropy",
                      metrics=["accuracy"])
    elif name == "signs":
        model = pycnn.Sequential([
            pycnn.Input((28, 28, 1)),
            layers.Conv2D(75, 3, padding="same", activation="relu"),
            layers.BatchNormalization(),
            layers.MaxPool2D(2, strides=2, padding="same"),
            layers.Conv2D(50, 3, padding="same", activation="relu"),
            layers.Dropout(0.2),
            layers.BatchNormalization(),
            layers.MaxPool2D(2, strides=2, padding="same"),
            layers.Conv2D(25, 3, padding="same", activation="relu"),
            layers.BatchNormalization(),
            layers.MaxPool2D(2, strides=2, padding="same"),
            layers.Flatten(),
            layers.Dense(512, activation="relu"),
            layers.Dropout(0.3),
            layers.Dense(24, activation="softmax")])
        model.compile(optimizer="adam", loss="sparse_categorical_crossentropy",
                      metrics=["accuracy"])
    else:
        inp = pycnn.Input((64, 64, 1))

        def block(x, f):
            x = layers.Conv2D(f, 3, padding="same", activation="relu", use_bias=False)(x)
            return layers.Conv2D(f, 3, padding="same", activation="relu", use_bias=False)(x)

        c1 = block(inp, 16)
        c2 = block(layers.MaxPooling2D(2)(c1), 32)
        c3 = block(layers.MaxPooling2D(2)(c2), 64)
        u2 = block(layers.concatenate([layers.Conv2DTranspose(32, 2, strides=2)(c3), c2]), 32)
        u1 = block(layers.concatenate([layers.Conv2DTranspose(16, 2, strides=2)(u2), c1]), 16)
        model = pycnn.Model(inp, layers.Conv2D(1, 1)(u1))
        model.compile(optimizer=pycnn.optimizers.AdamW(1e-3),
                      loss=pycnn.losses.BinaryCrossentropy(from_logits=True))
    return model


def pycnn_epochs(name: str, x, y, batch: int, repeats: int,
                 threads: int) -> tuple[list[float], int]:
    """The timed epochs' seconds and the model's forward FLOPs per sample."""
    import pycnn
    from pycnn.utils.layer_stats import layer_stats
    pycnn.set_num_threads(threads)
    pycnn.utils.set_random_seed(0)
    model = pycnn_model(name)
    model.fit(x, y, batch_size=batch, epochs=1, verbose=0)
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        model.fit(x, y, batch_size=batch, epochs=1, verbose=0)
        times.append(time.perf_counter() - t)
    flops = sum(s.flops or 0 for s in layer_stats(model).values())
    return times, flops


# ---- PyTorch -------------------------------------------------------------------------------------
def torch_model(name: str, torch):
    nn = torch.nn
    if name == "bn_aug":
        layers_ = [nn.Flatten()]
        c = 784
        for units in (512, 512):
            layers_ += [nn.Linear(c, units, bias=False), nn.BatchNorm1d(units, eps=1e-3,
                                                                       momentum=0.01),
                        nn.ReLU(), nn.Dropout(0.2)]
            c = units
        return nn.Sequential(*layers_, nn.Linear(c, 10))
    if name == "signs":
        def stage(cin, cout, drop=None):
            mods = [nn.Conv2d(cin, cout, 3, padding=1), nn.ReLU()]
            if drop:
                mods.append(nn.Dropout(drop))
            return mods + [nn.BatchNorm2d(cout, eps=1e-3, momentum=0.01),
                           nn.MaxPool2d(2, 2, ceil_mode=True)]
        return nn.Sequential(*stage(1, 75), *stage(75, 50, 0.2), *stage(50, 25), nn.Flatten(),
                             nn.Linear(25 * 4 * 4, 512), nn.ReLU(), nn.Dropout(0.3),
                             nn.Linear(512, 24))

    class UNet(nn.Module):
        def __init__(self):
            super().__init__()

            def block(cin, f):
                return nn.Sequential(nn.Conv2d(cin, f, 3, padding=1, bias=False), nn.ReLU(),
                                     nn.Conv2d(f, f, 3, padding=1, bias=False), nn.ReLU())
            self.b1, self.b2, self.b3 = block(1, 16), block(16, 32), block(32, 64)
            self.t2, self.t1 = nn.ConvTranspose2d(64, 32, 2, 2), nn.ConvTranspose2d(32, 16, 2, 2)
            self.u2, self.u1 = block(64, 32), block(32, 16)
            self.out = nn.Conv2d(16, 1, 1)
            self.pool = nn.MaxPool2d(2)

        def forward(self, x):
            c1 = self.b1(x)
            c2 = self.b2(self.pool(c1))
            c3 = self.b3(self.pool(c2))
            u2 = self.u2(torch.cat([self.t2(c3), c2], 1))
            u1 = self.u1(torch.cat([self.t1(u2), c1], 1))
            return self.out(u1)
    return UNet()


def torch_augment(torch, xb):
    """Rotation (+-0.05 turn), zoom (+-10 %) and translation (+-10 %) by one affine warp."""
    n = xb.shape[0]
    angle = (torch.rand(n) * 2 - 1) * 0.05 * 2 * math.pi
    zoom = 1 + (torch.rand(n) * 2 - 1) * 0.1
    shift = (torch.rand(n, 2) * 2 - 1) * 0.2
    cos, sin = torch.cos(angle) * zoom, torch.sin(angle) * zoom
    theta = torch.stack([torch.stack([cos, -sin, shift[:, 0]], 1),
                         torch.stack([sin, cos, shift[:, 1]], 1)], 1)
    grid = torch.nn.functional.affine_grid(theta, list(xb.shape), align_corners=False)
    return torch.nn.functional.grid_sample(xb, grid, padding_mode="reflection",
                                           align_corners=False)


def torch_epochs(name: str, x, y, batch: int, repeats: int, threads: int) -> list[float]:
    import torch
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    model = torch_model(name, torch)
    opt = torch.optim.AdamW(model.parameters(), 1e-3) if name == "unet" else \
        torch.optim.Adam(model.parameters(), 1e-3, eps=1e-7)
    xt = torch.from_numpy(np.ascontiguousarray(x.transpose(0, 3, 1, 2)))
    yt = torch.from_numpy(np.ascontiguousarray(y.transpose(0, 3, 1, 2)) if name == "unet"
                          else y.astype(np.int64))
    loss_fn = torch.nn.BCEWithLogitsLoss() if name == "unet" else torch.nn.CrossEntropyLoss()

    def epoch():
        model.train()
        perm = torch.randperm(len(xt))
        for lo in range(0, len(xt), batch):
            idx = perm[lo:lo + batch]
            xb, yb = xt[idx], yt[idx]
            if name == "bn_aug":
                xb = torch_augment(torch, xb)
            opt.zero_grad(set_to_none=True)
            loss = loss_fn(model(xb), yb)
            loss.backward()
            opt.step()

    epoch()
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        epoch()
        times.append(time.perf_counter() - t)
    return times


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", default="bn_aug,signs,unet")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--peak", type=float, default=115.0 * (os.cpu_count() or 1),
                    help="the CPU's fp32 peak in GFLOP/s for these threads (default: 115 per "
                         "core, a Zen 4 core's AVX-512 FMA rate; run.py passes the measured one)")
    ap.add_argument("--fraction", type=float, default=1.0,
                    help="train on this fraction of each model's samples (run.py --quick: 0.25)")
    ap.add_argument("--json", help="also write the rows to this JSON file")
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    print(f"{args.threads} thread(s), median of {args.repeats} epochs after a warm-up; load "
          f"average {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs")
    print("| model | samples, batch | pycnn s/epoch | PyTorch s/epoch | ratio | "
          "pycnn % of peak |")
    print("|---|---|---|---|---|---|")
    rows = []
    for name in args.models.split(","):
        n, batch = SIZES[name]
        n = max(batch, int(n * args.fraction) // batch * batch)
        x, y = data(name, n, rng)
        times, fwd = pycnn_epochs(name, x, y, batch, args.repeats, args.threads)
        p = statistics.median(times)
        try:
            t = statistics.median(torch_epochs(name, x, y, batch, args.repeats, args.threads))
        except ImportError:
            t = None
        gflops = 3 * fwd * n / p / 1e9
        rows.append({"model": name, "samples": n, "batch": batch, "pycnn_s": p, "torch_s": t,
                     "ratio": p / t if t else None, "fwd_flops": fwd, "pycnn_gflops": gflops,
                     "peak_fraction": gflops / args.peak})
        ratio = f"{p / t:.2f}" if t else "-"
        print(f"| {name} | {n}, {batch} | {p:.3f} | {t or float('nan'):.3f} | {ratio} | "
              f"{100 * gflops / args.peak:.0f} % |", flush=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"threads": args.threads, "repeats": args.repeats, "peak": args.peak,
                       "rows": rows}, f, indent=1)


if __name__ == "__main__":
    main()
