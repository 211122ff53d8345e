"""The course's other benchmarks, run from ``run.py``: ``course_models.py`` (practical 1's
BatchNormalization + augmentation MLP, practical 2's convnet, a small U-Net) and
``vgg16_features.py`` (VGG16 feature extraction at 180x180), each pycnn beside PyTorch in one
child process, each writing its rows as JSON."""
import json
import os
import sys

from . import HERE, log


def _script_run(R, script, extra, what):
    """Runs ``benchmarks/<script> --json OUT <extra>`` after the machine went idle; its JSON
    or None (the failure recorded in the runner)."""
    out = os.path.join(R.tmp, script.replace(".py", ".json"))
    R.wait_idle()
    cmd = [sys.executable, os.path.join(HERE, script), "--json", out,
           "--threads", str(R.args.threads)] + extra
    rc, tail = R._run(cmd, "pycnn", R.args.threads)
    if rc != 0 or not os.path.exists(out):
        R.errors.append((what, "\n".join(tail.splitlines()[-12:])))
        log(f"  !! {what} failed (exit {rc})")
        return None
    with open(out) as f:
        return json.load(f)


def course_runs(R, args, peak=None):
    """{"models": rows of course_models.py, "vgg16": rows of vgg16_features.py}; ``peak``:
    the measured GFLOP/s of ``args.threads`` threads, for the fractions of peak."""
    log(f"course models (BN + augmentation MLP, practical 2 convnet, U-Net), pycnn and torch, "
        f"{args.course_repeats} timed epoch(s) each ...")
    extra = ["--repeats", str(args.course_repeats)] + (["--peak", str(peak)] if peak else []) \
        + (["--fraction", "0.25"] if args.quick else [])
    models = _script_run(R, "course_models.py", extra, "course models")
    for r in (models or {}).get("rows", []):
        log(f"  {r['model']:7s} pycnn {r['pycnn_s']:.3f} s, torch {r['torch_s'] or 0:.3f} s")
    log("VGG16 feature extraction (180x180x3, batch 32), pycnn and torch ...")
    vgg = _script_run(R, "vgg16_features.py",
                      ["--batches", str(2 if args.quick else 5)], "VGG16 features")
    for r in (vgg or {}).get("rows", []):
        log(f"  {r['framework']:7s} {r['images_per_s']:.1f} images/s")
    return {"models": models, "vgg16": vgg}
