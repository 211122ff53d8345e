"""Where the time of a 10-class output layer goes in a training step (see benchmarks/NOTES.md).

For each lecture model the training plan's steps before the output layer run one forward pass
as fit runs them (``plan.forward`` with the output step held back); then the output step's
forward (to its logits) and backward (from them) are timed as the first call after those steps,
as in a step, and once more right after, warm. The backward is also timed without the input
gradient, and a tiny model's whole plan (one 16x10 Dense layer on 4 rows: two tasks on the
thread pool, almost no work) first and warm gives the fixed cost of a call. Medians over
--reps rounds.

    python benchmarks/class_layer_probe.py [--reps 200] [--threads 2] [--peak GFLOPS]

The budget column is what 60 % of the peak allows for the layer's forward + backward FLOPs
(forward, weight gradient, input gradient: 3 x 2 x 128 x K x 10). The peak is measured with
peak.c, as run.py does, unless --peak is given.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time

import numpy as np

from harness import BATCH
from harness.children import layer_input_shape
from harness.machine import run_peak
from harness.plan_timing import replaced, training_plan


def probe(pycnn, lecture_models, name: str, reps: int, seed: int) -> dict:
    model = lecture_models.build(pycnn, name)
    rng = np.random.default_rng(seed)
    x = rng.random(layer_input_shape(name), dtype=np.float32)
    model.predict(x[:2], verbose=0)              # builds the model
    plan = training_plan(model)
    out = plan.steps[-1]                         # the output layer's step (to its logits)
    values = [None] * plan.n_slots

    def keep_values(vals, training):             # stands for the output step: keeps its input
        values[:] = vals

    def prefix():                                # the steps before the output step
        with replaced(out, "forward", keep_values):
            plan.forward([x])

    tiny = pycnn.Sequential([pycnn.layers.Dense(10)])
    tiny.build((None, 16))
    tiny_plan = tiny.compiled_plan(True)
    tiny_x = rng.random((4, 16), dtype=np.float32)
    dz = [rng.standard_normal((BATCH, 10)).astype(np.float32)]
    clock = time.perf_counter
    times: dict[str, list[float]] = {}

    def timed(key, fn):
        t0 = clock()
        fn()
        times.setdefault(key, []).append(clock() - t0)

    fwd = lambda: out.forward(values, True)
    bwd = lambda: out.backward(dz, [True])
    bwd_no_dx = lambda: out.backward(dz, [False])
    tiny_call = lambda: tiny_plan.forward([tiny_x])
    for rep in range(reps + 1):                  # round 0 is a warm-up
        prefix()
        timed("fwd first", fwd)
        timed("fwd warm", fwd)
        prefix()
        fwd()
        timed("bwd first", bwd)
        timed("bwd warm", bwd)
        prefix()
        fwd()
        timed("bwd without dx first", bwd_no_dx)
        timed("bwd without dx warm", bwd_no_dx)
        prefix()
        timed("tiny call first", tiny_call)
        timed("tiny call warm", tiny_call)
    res = {k: float(np.median(v[1:])) for k, v in times.items()}
    res["k"] = int(out.layers[0].kernel.shape[0])
    return res


def measured_peak(threads: int) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        rows, err = run_peak([threads], tmp)
    if err:
        raise SystemExit(f"peak.c: {err} (pass --peak GFLOPS)")
    return max(r["gflops"] for r in rows)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--reps", type=int, default=200)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--peak", type=float, default=None, help="GFLOP/s (default: measure)")
    args = ap.parse_args(argv)
    peak = args.peak or measured_peak(args.threads)
    import pycnn
    import lecture_models
    pycnn.set_num_threads(args.threads)
    print(f"peak {peak:.1f} GFLOP/s on {args.threads} thread(s); medians of {args.reps} rounds, us")
    cols = ["fwd first", "fwd warm", "bwd first", "bwd warm", "bwd without dx first",
            "bwd without dx warm", "tiny call first", "tiny call warm"]
    print("| model | K | 60 % budget | " + " | ".join(cols) + " | % of peak first | % warm |")
    print("|---" * (len(cols) + 5) + "|")
    for name in ("dense", "convnet"):
        r = probe(pycnn, lecture_models, name, args.reps, args.seed)
        flops = 3 * 2 * BATCH * r["k"] * 10
        budget = flops / (0.6 * peak * 1e9)
        first = r["fwd first"] + r["bwd first"]
        warm = r["fwd warm"] + r["bwd warm"]
        pct = lambda s: f"{100 * flops / s / 1e9 / peak:.0f}"
        print(f"| {name} | {r['k']} | {budget * 1e6:.1f} | "
              + " | ".join(f"{r[c] * 1e6:.1f}" for c in cols)
              + f" | {pct(first)} | {pct(warm)} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
