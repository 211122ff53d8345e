"""The benchmark harness behind ``benchmarks/run.py``, in small modules:

- ``flops``: the lecture models' layers and their FLOP counts;
- ``machine``: CPU model and flags, other processes' load, the FMA peak (``peak.c``);
- ``plan_timing``: per-step times of pycnn's compiled training plan;
- ``children``: what one child process runs (data, training, per-layer breakdown);
- ``runner``: the parent's side: child processes one after another, idle waits, probes;
- ``report``: the Markdown report.
"""
import os

HERE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))     # benchmarks/
REPO = os.path.dirname(HERE)
RUN_PY = os.path.join(HERE, "run.py")
FRAMEWORKS = ("pycnn", "torch", "keras")
MODELS = ("dense", "convnet")
BATCH = 128
PREDICT_BATCH = 32
PEAK_FRACTION = 0.60          # the "epoch at 60 % of peak" bound
OTHER_LOAD_WARN = 0.25        # cores used by other processes that make a run "disturbed"


def log(*a):
    print(*a, flush=True)
