"""Images per second of VGG16 feature extraction (``include_top=False``, 180x180x3, batch 32:
the convolutional base of Chollet's transfer-learning example), pycnn beside PyTorch's
VGG16's ``features`` in PyTorch (the same layers as torchvision's) when torch is importable.

    python3 benchmarks/vgg16_features.py [--threads N] [--batches B] [--batch 32] [--size 180]

Both run random weights (speed does not depend on them) in inference mode on the same random
float32 images (NHWC for pycnn, NCHW for PyTorch, converted outside the timed region). Each
framework runs one warm-up batch, then B timed batches; the report gives images per second
from the median batch time (and the best). On a shared machine the numbers vary with the other
processes' load: compare rows from the same run.
"""
import argparse
import os
import statistics
import sys
import time

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))


def time_batches(run, x, batches: int) -> list:
    run(x)                                              # warm-up: plans, buffers, caches
    times = []
    for _ in range(batches):
        t0 = time.perf_counter()
        run(x)
        times.append(time.perf_counter() - t0)
    return times


def bench_pycnn(x, threads: int, batches: int) -> list:
    import pycnn
    from pycnn.applications import VGG16
    pycnn.backend.set_num_threads(threads)
    model = VGG16(include_top=False, weights=None, input_shape=x.shape[1:])
    out = model.predict(x[:1], verbose=0)
    assert out.shape == (1, x.shape[1] // 32, x.shape[2] // 32, 512), out.shape
    return time_batches(lambda a: model.predict(a, batch_size=len(a), verbose=0), x, batches)


#: VGG16's convolutional base: filters per 3x3 convolution, "M" a 2x2 max pooling.
VGG16_BASE = [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M",
              512, 512, 512, "M"]


def torch_vgg16_features(torch):
    """torchvision's ``vgg16().features`` written out in plain torch (the same layers)."""
    mods, c = [], 3
    for v in VGG16_BASE:
        if v == "M":
            mods.append(torch.nn.MaxPool2d(2, 2))
        else:
            mods += [torch.nn.Conv2d(c, v, 3, padding=1), torch.nn.ReLU(inplace=True)]
            c = v
    return torch.nn.Sequential(*mods)


def bench_torch(x, threads: int, batches: int):
    try:
        import torch
    except ImportError:
        return None
    torch.set_num_threads(threads)
    features = torch_vgg16_features(torch).eval()
    xt = torch.from_numpy(np.ascontiguousarray(x.transpose(0, 3, 1, 2)))

    def run(a):
        with torch.inference_mode():
            return features(a)

    return time_batches(run, xt, batches)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--batches", type=int, default=5)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--size", type=int, default=180)
    args = ap.parse_args()
    x = np.random.default_rng(0).uniform(-120, 150, (args.batch, args.size, args.size, 3))
    x = x.astype(np.float32)
    print(f"VGG16 features (include_top=False), {args.size}x{args.size}x3, batch {args.batch}, "
          f"{args.threads} thread(s), {args.batches} timed batches; load average "
          f"{os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs")
    rows = [("pycnn", bench_pycnn(x, args.threads, args.batches))]
    torch_times = bench_torch(x, args.threads, args.batches)
    rows.append(("PyTorch", torch_times))
    for name, times in rows:
        if times is None:
            print(f"  {name:12s} not importable (skipped)")
            continue
        med, best = statistics.median(times), min(times)
        print(f"  {name:12s} {args.batch / med:8.1f} images/s (median batch {med * 1e3:8.1f} ms; "
              f"best {args.batch / best:8.1f} images/s)")


if __name__ == "__main__":
    main()
