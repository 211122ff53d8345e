"""Forward + backward throughput of the convolution variants at batch 128, against the CPU's
fp32 peak (benchmarks/peak.c, compiled and run as benchmarks/run.py does).

    python3 benchmarks/conv_variants.py [--threads N] [--repeats R] [--batch B] [--only NAME]
                                        [--cpu-time] [--peak GFLOPS] [--bandwidth GBPS]

For each layer: the best of R timed forward passes and R backward passes (after a warm-up),
the FLOPs of the arithmetic (2 per multiply-add; the backward counts the input and the weight
gradients, twice the forward), GFLOP/s and % of peak for forward + backward, and the bytes the
passes must move at least (every input, output and gradient array read or written once) with
the FLOP/byte that gives: depthwise convolutions do 2 * kh * kw FLOPs per output value, far
below what the FMA units need per byte of memory traffic, so they are bound by memory
bandwidth, not by the peak.
The roofline: the memory bandwidth B (measured here as a NumPy copy of arrays far larger than
the caches on the timed threads, bytes read + written per second, or given with --bandwidth)
bounds a layer at I * B GFLOP/s for its FLOP per byte I; "attain %" is min(peak, I * B) as a
percentage of the peak (100 % for the compute-bound layers), "of bound" the measured GFLOP/s
against that bound. The L2 copy bandwidth is printed beside it (the rows a 3x3 window re-reads
come from L1/L2, so only the first read of each value and the writes go to memory).
Run it on an idle machine; on a shared one the numbers are noisy (other processes take cores
and memory bandwidth, and peak.c measures a lower peak). There, ``--threads 1 --cpu-time``
times the process's CPU time instead of wall time (time slices given to other processes do not
count), against a one-thread peak given with ``--peak`` (benchmarks/results.md has one measured
on the idle machine).
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))

import numpy as np  # noqa: E402

import pycnn  # noqa: E402
from pycnn import layers  # noqa: E402
from pycnn.layers.context import Context  # noqa: E402


def peak_gflops(threads: int):
    """(GFLOP/s, ISA) of peak.c on `threads` threads, the best ISA; None when unavailable."""
    cc = os.environ.get("CC", "cc")
    if not shutil.which(cc):
        return None
    with tempfile.TemporaryDirectory() as tmp:
        exe = os.path.join(tmp, "peak")
        p = subprocess.run([cc, "-O2", "-pthread", "-o", exe, os.path.join(HERE, "peak.c")],
                           capture_output=True, text=True)
        if p.returncode:
            return None
        p = subprocess.run([exe, str(threads)], capture_output=True, text=True, timeout=600)
        rows = [json.loads(line) for line in p.stdout.splitlines() if line.strip()]
    if not rows:
        return None
    best = max(rows, key=lambda r: r["gflops"])
    return best["gflops"], best["isa"]


def copy_bandwidth(nbytes: int, repeats: int, clock) -> float:
    """GB/s of np.copyto over `nbytes` (read + write counted), best of `repeats`."""
    a = np.ones(nbytes // 4, np.float32)
    b = np.empty_like(a)
    reps = max(1, (64 << 20) // nbytes)          # >= 64 MB copied per timing
    def run():
        for _ in range(reps):
            np.copyto(b, a)
    return 2 * nbytes * reps / best_time(run, repeats, clock) * 1e-9


def per_pass_intensity(batch: int) -> str:
    """The depthwise case's FLOP/byte per pass (minimum bytes: every array once)."""
    v = batch * 56 * 56 * 128                  # values of x, y, dy, dx
    fl = 2 * 9 * v                             # per pass: 9 multiply-adds per value
    rows = [("forward", fl, 8 * v),                         # x read, y written
            ("input gradient", fl, 12 * v),                 # dy, y (relu mask) read; dx written
            ("weight gradient", fl, 12 * v),                # x, dy, y read
            ("backward fused (one pass)", 2 * fl, 16 * v)]  # x, dy, y read; dx written
    return ", ".join(f"{name} {f / b:.2f}" for name, f, b in rows)


def cases(batch: int):
    """(name, layer, input shape, forward FLOPs, forward bytes, backward bytes)."""
    n = batch
    out = []
    # MobileNet-like depthwise 3x3 on 56x56x128
    h = w = 56
    c = 128
    dw_flops = 2 * n * h * w * c * 9
    act = 4 * n * h * w * c
    out.append(("depthwise 3x3 56x56x128",
                layers.DepthwiseConv2D(3, padding="same", activation="relu"),
                (n, h, w, c), dw_flops, 2 * act, 4 * act))      # bwd: x, y, dy read; dx written
    # separable: the depthwise above, then 1x1 128 -> 128
    pw_flops = 2 * n * h * w * c * 128
    out.append(("separable 3x3 56x56x128->128",
                layers.SeparableConv2D(128, 3, padding="same", activation="relu"),
                (n, h, w, c), dw_flops + pw_flops, 4 * act, 8 * act))
    # U-Net up-sampling: 2x2 stride 2, 32x32x64 -> 64x64x32
    t_flops = 2 * n * 32 * 32 * 64 * (2 * 2 * 32)
    t_in, t_out = 4 * n * 32 * 32 * 64, 4 * n * 64 * 64 * 32
    out.append(("transpose 2x2/2 32x32x64->64x64x32",
                layers.Conv2DTranspose(32, 2, strides=2, padding="same", activation="relu"),
                (n, 32, 32, 64), t_flops, t_in + t_out, 2 * t_in + 2 * t_out))
    # U-Net's other transposed convolution: 3x3 stride 2 (overlapping windows)
    t3_flops = 2 * n * 32 * 32 * 64 * (3 * 3 * 32)
    out.append(("transpose 3x3/2 32x32x64->64x64x32",
                layers.Conv2DTranspose(32, 3, strides=2, padding="same", activation="relu"),
                (n, 32, 32, 64), t3_flops, t_in + t_out, 2 * t_in + 2 * t_out))
    # dilated and grouped Conv2D (DeepLab / ResNeXt style), 28x28
    g_act_in, g_act_out = 4 * n * 28 * 28 * 64, 4 * n * 28 * 28 * 64
    out.append(("conv2d 3x3 dilation 2 28x28x64->64",
                layers.Conv2D(64, 3, padding="same", dilation_rate=2, activation="relu"),
                (n, 28, 28, 64), 2 * n * 28 * 28 * 64 * 9 * 64, g_act_in + g_act_out,
                2 * (g_act_in + g_act_out)))
    out.append(("conv2d 3x3 28x28x64->64 (plain, baseline)",
                layers.Conv2D(64, 3, padding="same", activation="relu"),
                (n, 28, 28, 64), 2 * n * 28 * 28 * 64 * 9 * 64, g_act_in + g_act_out,
                2 * (g_act_in + g_act_out)))
    out.append(("conv2d 3x3 groups 4 28x28x128->128",
                layers.Conv2D(128, 3, padding="same", groups=4, activation="relu"),
                (n, 28, 28, 128), 2 * n * 28 * 28 * 128 * 9 * 32, 2 * g_act_in * 2,
                4 * g_act_in * 2))
    return out


def best_time(fn, repeats: int, clock=time.perf_counter) -> float:
    fn()                                   # warm-up: buffers, scratch, packing
    best = float("inf")
    for _ in range(repeats):
        t0 = clock()
        fn()
        best = min(best, clock() - t0)
    return best


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--only", default=None, help="run the cases whose name contains this")
    ap.add_argument("--cpu-time", action="store_true",
                    help="time CPU time (process_time) rather than wall time; with --threads 1")
    ap.add_argument("--peak", type=float, default=None,
                    help="the peak in GFLOP/s to compare with, instead of running peak.c")
    ap.add_argument("--bandwidth", type=float, default=None,
                    help="the memory bandwidth in GB/s (read + write) for the roofline, "
                         "instead of measuring a NumPy copy")
    args = ap.parse_args(argv)
    if args.cpu_time and args.threads != 1:
        ap.error("--cpu-time measures one thread: use it with --threads 1")
    clock = time.process_time if args.cpu_time else time.perf_counter
    pycnn.set_num_threads(args.threads)
    peak = (args.peak, "given") if args.peak else peak_gflops(args.threads)
    print(f"pycnn conv variants, batch {args.batch}, {args.threads} thread(s), SIMD path "
          f"{pycnn._C.isa()}")
    print(f"fp32 peak (peak.c): " + (f"{peak[0]:.1f} GFLOP/s ({peak[1]})" if peak
                                      else "unavailable"))
    if args.bandwidth:
        bw, l2 = args.bandwidth, None
    else:
        bw = copy_bandwidth(256 << 20, 3, clock)
        l2 = copy_bandwidth(256 << 10, 5, clock)
    print(f"memory bandwidth (NumPy copy, read + write): {bw:.1f} GB/s"
          + (f" given" if args.bandwidth else f" from memory, {l2:.1f} GB/s within L2"))
    print("NOTE: a shared machine makes these numbers noisy (best of "
          f"{args.repeats} runs each; {'CPU' if args.cpu_time else 'wall'} time).")
    hdr = (f"{'layer':42s} {'fwd ms':>8s} {'bwd ms':>8s} {'GFLOP/s':>8s} {'% peak':>7s} "
           f"{'FLOP/B':>7s} {'GB/s':>6s} {'attain %':>8s} {'of bound':>8s}")
    print(hdr)
    notes = []
    rng = np.random.default_rng(0)
    for name, layer, shape, flops, fbytes, bbytes in cases(args.batch):
        if args.only and args.only not in name:
            continue
        x = rng.standard_normal(shape).astype(np.float32)
        layer.build((None,) + shape[1:])
        ctx = Context()
        y = layer.forward(ctx, x)
        dy = rng.standard_normal(y.shape).astype(np.float32)
        tf = best_time(lambda: layer.forward(ctx, x), args.repeats, clock)
        layer.forward(ctx, x)
        tb = best_time(lambda: layer.backward(ctx, dy), args.repeats, clock)
        total = 3 * flops                                     # forward + 2x forward backward
        gflops = total / (tf + tb) * 1e-9
        pct = f"{100 * gflops / peak[0]:6.1f}%" if peak else "    n/a"
        moved = fbytes + bbytes
        intensity = total / moved
        bound = min(peak[0], intensity * bw) if peak else intensity * bw
        attain = f"{100 * bound / peak[0]:7.1f}%" if peak else "     n/a"
        print(f"{name:42s} {tf * 1e3:8.2f} {tb * 1e3:8.2f} {gflops:8.1f} {pct:>7s} "
              f"{intensity:7.2f} {moved / (tf + tb) * 1e-9:6.1f} {attain:>8s} "
              f"{100 * gflops / bound:7.1f}%")
        if peak and intensity * bw < peak[0]:
            notes.append(f"{name}: memory-bound, {intensity:.2f} FLOP/B x {bw:.1f} GB/s = "
                         f"{intensity * bw:.1f} GFLOP/s at most ({100 * bound / peak[0]:.0f} % "
                         f"of peak)")
        del ctx, x, y, dy
    for note in notes:
        print(note)
    if not args.only or args.only in "depthwise 3x3":
        print(f"depthwise 3x3 FLOP/B per pass: {per_pass_intensity(args.batch)}")


if __name__ == "__main__":
    main()
