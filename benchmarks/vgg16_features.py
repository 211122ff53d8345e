"""Images per second of VGG16 feature extraction (``include_top=False``, 180x180x3, batch 32:
the convolutional base of Chollet's transfer-learning example), pycnn beside PyTorch's
VGG16's ``features`` in PyTorch (the same layers as torchvision's) when torch is importable.

    python3 benchmarks/vgg16_features.py [--threads N] [--batches B] [--batch 32] [--size 180]
                                         [--json F]

Both run random weights (speed does not depend on them) in inference mode on the same random
float32 images (NHWC for pycnn, NCHW for PyTorch, converted outside the timed region). Each
framework runs one warm-up batch, then B timed batches; the report gives images per second
from the median batch time (and the best), and the rate as GFLOP/s (the forward FLOPs of
``summary(show_flops=True)``). ``benchmarks/run.py`` runs this script. On a shared machine the numbers vary with the other
processes' load: compare rows from the same run.
"""
import argparse
import json
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


def bench_pycnn(x, threads: int, batches: int) -> tuple[list, int]:
    """The timed batches' seconds and the forward FLOPs per image."""
    import pycnn
    from pycnn.applications import VGG16
    from pycnn.utils.layer_stats import layer_stats
    pycnn.backend.set_num_threads(threads)
    model = VGG16(include_top=False, weights=None, input_shape=x.shape[1:])
    out = model.predict(x[:1], verbose=0)
    assert out.shape == (1, x.shape[1] // 32, x.shape[2] // 32, 512), out.shape
    flops = sum(s.flops or 0 for s in layer_stats(model).values())
    return time_batches(lambda a: model.predict(a, batch_size=len(a), verbose=0), x,
                        batches), flops


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
    ap.add_argument("--json", help="also write the rows to this JSON file")
    args = ap.parse_args()
    x = np.random.default_rng(0).uniform(-120, 150, (args.batch, args.size, args.size, 3))
    x = x.astype(np.float32)
    print(f"VGG16 features (include_top=False), {args.size}x{args.size}x3, batch {args.batch}, "
          f"{args.threads} thread(s), {args.batches} timed batches; load average "
          f"{os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs")
    pycnn_times, flops = bench_pycnn(x, args.threads, args.batches)
    rows = [("pycnn", pycnn_times), ("PyTorch", bench_torch(x, args.threads, args.batches))]
    out = []
    for name, times in rows:
        if times is None:
            print(f"  {name:12s} not importable (skipped)")
            continue
        med, best = statistics.median(times), min(times)
        rate = args.batch / med
        print(f"  {name:12s} {rate:8.1f} images/s = {rate * flops / 1e9:6.1f} GFLOP/s (median "
              f"batch {med * 1e3:8.1f} ms; best {args.batch / best:8.1f} images/s)")
        out.append({"framework": name, "images_per_s": rate, "gflops": rate * flops / 1e9,
                    "best_images_per_s": args.batch / best})
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"threads": args.threads, "batch": args.batch, "size": args.size,
                       "batches": args.batches, "fwd_flops": flops, "rows": out}, f, indent=1)


if __name__ == "__main__":
    main()
