#!/usr/bin/env python
"""pycnn benchmark harness: pycnn vs PyTorch vs Keras 3 on the two lecture models, then the
course's other models and VGG16 feature extraction beside PyTorch.

    python benchmarks/run.py [--quick] [--threads N] [--epochs 5] [--out benchmarks/results.md]

See benchmarks/README.md for what each number means.  This script is never part of the test
suite.  It needs only Python + NumPy + a C compiler to start; pycnn, torch and keras are each
skipped with a printed reason when they cannot be imported.

Every framework x model is trained in its own child process (this same file, run with
--child SPEC.json), one after another, so that timings do not overlap and each child's
peak RSS (ru_maxrss) belongs to that framework alone.  The children write JSON; the parent
collects it, prints the tables and writes Markdown (--out) and the raw JSON next to it.
The pieces live in benchmarks/harness/.
"""
import argparse
import datetime
import json
import os
import platform
import statistics
import sys
import tempfile
import time

from harness import BATCH, FRAMEWORKS, HERE, MODELS, REPO, log
from harness import machine
from harness.children import child_main
from harness.course import course_runs
from harness.flops import ARCH
from harness.report import epoch_stats, fmt, merge_layer_runs, report
from harness.runner import Runner


def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true",
                    help="short run: 2 epochs on 5,000 training images, fewer repetitions")
    ap.add_argument("--threads", type=int, default=None,
                    help="threads for every framework (default: all cores)")
    ap.add_argument("--epochs", type=int, default=None, help="training epochs (default 5)")
    ap.add_argument("--train-size", type=int, default=None,
                    help="train on the first N images (default: all 60,000)")
    ap.add_argument("--repeats", type=int, default=1,
                    help="repeat every framework x model run; numbers are medians")
    ap.add_argument("--frameworks", default=",".join(FRAMEWORKS))
    ap.add_argument("--models", default=",".join(MODELS))
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default=os.path.join(HERE, "results.md"))
    ap.add_argument("--keras-python", default=None,
                    help="interpreter with keras installed (default: this one, else "
                         "/tmp/kerasvenv/bin/python)")
    ap.add_argument("--no-layers", action="store_true", help="skip the per-layer breakdown")
    ap.add_argument("--no-scaling", action="store_true",
                    help="skip the 1-thread vs all-threads convnet runs")
    ap.add_argument("--no-course", action="store_true",
                    help="skip the course models (benchmarks/course_models.py) and VGG16 "
                         "feature extraction (benchmarks/vgg16_features.py)")
    ap.add_argument("--course-repeats", type=int, default=None,
                    help="timed epochs per course model (default 3; quick 1)")
    ap.add_argument("--scaling-size", type=int, default=None,
                    help="training images for the thread-scaling epoch (default 20,000; "
                         "quick 5,000)")
    ap.add_argument("--wait-idle", type=float, default=120,
                    help="before each timed run wait up to this many seconds until other "
                         "processes use < 0.25 cores (0: do not wait; default 120)")
    ap.add_argument("--child-timeout", type=float, default=None,
                    help="seconds before a child run counts as hung and is killed "
                         "(default 600 with --quick, else 3600)")
    ap.add_argument("--from-json", metavar="RAW.json",
                    help="only re-render the Markdown (--out) from a raw results JSON that "
                         "an earlier run wrote")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    return ap.parse_args(argv)


def apply_defaults(args):
    """Fills the options whose defaults depend on --quick and on the machine."""
    ncores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    args.cores = ncores
    args.threads = args.threads or ncores
    args.child_timeout = args.child_timeout or (600 if args.quick else 3600)
    args.epochs = args.epochs or (2 if args.quick else 5)
    args.train_size = args.train_size or (5000 if args.quick else None)
    args.scaling_size = args.scaling_size or (5000 if args.quick else 20000)
    args.course_repeats = args.course_repeats or (1 if args.quick else 3)
    args.frameworks = [f for f in args.frameworks.split(",") if f]
    args.models = [m for m in args.models.split(",") if m]
    args.predict_repeats = 1 if args.quick else 3
    args.layer_reps = 5 if args.quick else 60


def rerender(args):
    """--from-json: the Markdown of an earlier run, nothing run."""
    with open(args.from_json) as f:
        raw = json.load(f)
    info = raw["info"]
    info["peak"] = {int(k): v for k, v in info["peak"].items()}
    args.models = info["models"]
    args.scaling_size = info["scaling_size"]
    info["course"] = raw.get("course") or {}
    layers = raw["layers"]
    if layers and not set(layers) <= set(ARCH):       # before per-model breakdowns
        layers = {"convnet": layers}
    md = report(info, raw["results"], layers,
                {fw: {int(k): v for k, v in s.items()} for fw, s in raw["scaling"].items()},
                args)
    print(md)
    with open(args.out, "w") as f:
        f.write(md + "\n")
    return 0


def measure_peak(R, args, tmp):
    log("peak FMA throughput (benchmarks/peak.c) ...")
    rows, err, peak, other = machine.measure_peak(sorted({1, args.threads}), tmp,
                                                  args.wait_idle)
    if other is not None:
        R.other_load.append(("peak.c", other))
    for r in rows or []:
        log(f"  {r['isa']:7s} {r['threads']} thread(s): {r['gflops']:8.1f} GFLOP/s "
            f"({r['gflops_per_core']:.1f} per core)")
    if not rows:
        log(f"  peak: {err}")
    return {"peak_rows": rows, "peak_error": err, "peak": peak}


def train_runs(R, args):
    """framework -> model -> one result per repeat (None for a failed run)."""
    results = {fw: {m: [] for m in args.models} for fw in R.pythons}
    for rep in range(args.repeats):
        for fw in FRAMEWORKS:
            if fw not in R.pythons:
                continue
            for m in args.models:
                log(f"train {fw} {m} (run {rep + 1}/{args.repeats}) ...")
                r = R.child("train", fw, model=m, epochs=args.epochs,
                            train_n=args.train_size, predict_repeats=args.predict_repeats)
                if r:
                    e_med, e_first = epoch_stats(r)
                    log(f"  epoch {fmt(e_med, '.3f')} s (first {fmt(e_first, '.3f')} s), "
                        f"test acc {fmt(r.get('test_acc'), '.4f')}, predict "
                        f"{fmt(r.get('predict_img_s'), '.0f')} img/s, peak RSS "
                        f"{r['peak_rss_mb']:.0f} MB")
                results[fw][m].append(r)
    return results


def layer_runs(R, args):
    """model -> framework -> per-layer times: --repeats rounds, each framework x model in its
    own process, medians over the rounds."""
    runs = {}
    for rep in range(args.repeats):
        for m in args.models:
            for fw in ("pycnn", "torch"):
                if fw in R.pythons:
                    log(f"per-layer breakdown {fw} {m} (run {rep + 1}/{args.repeats}) ...")
                    runs.setdefault(m, {}).setdefault(fw, []).append(
                        R.child("layers", fw, model=m, reps=args.layer_reps))
    return {m: {fw: merge_layer_runs(rs) for fw, rs in by_fw.items()}
            for m, by_fw in runs.items()}


def scaling_runs(R, args):
    """framework -> threads -> median seconds of one convnet epoch: the thread counts in turn,
    --repeats rounds."""
    runs = {fw: {t: [] for t in sorted({1, args.threads})}
            for fw in ("pycnn", "torch") if fw in R.pythons}
    for rep in range(args.repeats):
        for fw, by_t in runs.items():
            for t in by_t:
                log(f"thread scaling {fw} convnet, {t} thread(s), 1 epoch on "
                    f"{args.scaling_size} images (run {rep + 1}/{args.repeats}) ...")
                r = R.child("train", fw, threads=t, model="convnet", epochs=1,
                            train_n=args.scaling_size, evaluate=False, predict=False)
                if r:
                    by_t[t].append(r["epochs"][0]["seconds"])
                    log(f"  {fmt(by_t[t][-1], '.3f')} s")
    return {fw: {t: statistics.median(v) if v else None for t, v in by_t.items()}
            for fw, by_t in runs.items()}


def write_outputs(args, info, results, layer_res, scaling):
    md = report(info, results, layer_res, scaling, args)
    print()
    print(md)
    out = os.path.abspath(args.out)
    os.makedirs(os.path.dirname(out), exist_ok=True)
    with open(out, "w") as f:
        f.write(md + "\n")
    raw = os.path.splitext(out)[0] + ".json"
    with open(raw, "w") as f:
        json.dump({"info": info, "results": results, "layers": layer_res,
                   "scaling": scaling}, f, indent=1, default=str)
    log(f"\nwrote {out} and {raw} ({info['elapsed_s']:.0f} s)")


def main(argv=None):
    args = parse_args(argv)
    if args.child:
        return child_main(args.child)
    if args.from_json:
        return rerender(args)
    data_dir = os.path.join(REPO, "..", "shared", "data")
    if "PYCNN_DATA_DIR" not in os.environ and os.path.isdir(data_dir):
        os.environ["PYCNN_DATA_DIR"] = os.path.abspath(data_dir)
    apply_defaults(args)
    started = datetime.datetime.now()
    t_start = time.perf_counter()

    with tempfile.TemporaryDirectory(prefix="pycnn-bench-") as tmp:
        R = Runner(args, tmp)
        log(f"pycnn benchmark: threads={args.threads}, epochs={args.epochs}, "
            f"train size={args.train_size or 60000}, batch={BATCH}, repeats={args.repeats}")
        log("frameworks:")
        R.probe()
        peak = measure_peak(R, args, tmp)
        log("data ...")
        data = R.child("data")
        if data is None:
            log("cannot load MNIST; giving up")
            return 1
        log(f"  {data['source']}")
        results = train_runs(R, args)
        layer_res = {} if args.no_layers else layer_runs(R, args)
        scaling = {}
        if not args.no_scaling and "convnet" in args.models and args.threads > 1:
            scaling = scaling_runs(R, args)
        course = {} if args.no_course else \
            course_runs(R, args, (peak["peak"] or {}).get(args.threads))

    info = {
        "started": started.isoformat(timespec="seconds"),
        "elapsed_s": time.perf_counter() - t_start,
        "command": "python benchmarks/run.py " + " ".join(sys.argv[1:]),
        "cpu": machine.cpu_model(), "cores": args.cores, "cpu_flags": machine.cpu_flags(),
        "python": platform.python_version(), "numpy": machine.numpy_version(),
        "threads": args.threads, "epochs": args.epochs,
        "train_size": args.train_size or 60000, "batch": BATCH, "seed": args.seed,
        "repeats": args.repeats, "quick": args.quick, "data": data,
        "models": args.models, "scaling_size": args.scaling_size,
        **peak, "course": course,
        "skipped": R.skipped, "errors": R.errors, "other_load": R.other_load,
    }
    write_outputs(args, info, results, layer_res, scaling)
    return 0


if __name__ == "__main__":
    sys.exit(main())
