#!/usr/bin/env python
"""pycnn benchmark harness: pycnn vs PyTorch vs Keras 3 on the two lecture models.

    python benchmarks/run.py [--quick] [--threads N] [--epochs 5] [--out benchmarks/results.md]

See benchmarks/README.md for what each number means.  This script is never part of the test
suite.  It needs only Python + NumPy + a C compiler to start; pycnn, torch and keras are each
skipped with a printed reason when they cannot be imported.

Every framework x model is trained in its own child process (this same file, run with
--child SPEC.json), one after another, so that timings do not overlap and each child's
peak RSS (ru_maxrss) belongs to that framework alone.  The children write JSON; the parent
collects it, prints the tables and writes Markdown (--out) and the raw JSON next to it.
"""
import argparse
import datetime
import inspect
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
FRAMEWORKS = ("pycnn", "torch", "keras")
MODELS = ("dense", "convnet")
BATCH = 128
PREDICT_BATCH = 32
PEAK_FRACTION = 0.60          # the "epoch at 60 % of peak" bound

# --------------------------------------------------------------------------------------
# FLOP counting (multiply-add = 2 FLOPs; GEMM-like work only: conv and dense layers;
# activations, pooling, loss and optimizer are memory-bound and not counted)
# --------------------------------------------------------------------------------------

# The lecture's convnet, layer by layer, in Keras layout: (kind, input HWC, output HWC, kernel)
CONVNET_LAYERS = [
    ("conv2d", (28, 28, 1), (26, 26, 32), (3, 3, 1, 32)),
    ("max_pooling2d", (26, 26, 32), (13, 13, 32), None),
    ("conv2d", (13, 13, 32), (11, 11, 64), (3, 3, 32, 64)),
    ("max_pooling2d", (11, 11, 64), (5, 5, 64), None),
    ("conv2d", (5, 5, 64), (3, 3, 128), (3, 3, 64, 128)),
    ("flatten", (3, 3, 128), (1152,), None),
    ("dense", (1152,), (10,), (1152, 10)),
]
DENSE_LAYERS = [
    ("dense", (784,), (512,), (784, 512)),
    ("dense", (512,), (10,), (512, 10)),
]
ARCH = {"dense": DENSE_LAYERS, "convnet": CONVNET_LAYERS}


def layer_flops(kind, out_shape, kernel, n, first):
    """(forward, backward) FLOPs of one layer for a batch of n.  Backward = dW + dX, the dX
    GEMM skipped for the model's first layer (its input needs no gradient)."""
    if kind == "conv2d":
        kh, kw, c, o = kernel
        oh, ow = out_shape[0], out_shape[1]
        f = 2 * n * oh * ow * kh * kw * c * o
    elif kind == "dense":
        f = 2 * n * kernel[0] * kernel[1]
    else:
        return 0, 0
    return f, f if first else 2 * f


def model_flops(name, n=1):
    """(forward, training) FLOPs of the model for n samples; training = fwd + bwd."""
    fwd = bwd = 0
    first = True
    for kind, _, out, kernel in ARCH[name]:
        f, b = layer_flops(kind, out, kernel, n, first)
        if kernel is not None:
            first = False
        fwd += f
        bwd += b
    return fwd, fwd + bwd


# --------------------------------------------------------------------------------------
# children
# --------------------------------------------------------------------------------------

def _maxrss_mb():
    import resource
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0   # KiB on Linux


def _read_idx_gz(path):
    import gzip
    import numpy as np
    with gzip.open(path, "rb") as f:
        data = f.read()
    ndim = data[3]
    dims = [int.from_bytes(data[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim)]
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims).copy()


def child_data(spec):
    """Loads MNIST (through pycnn when it imports, else straight from the IDX files in
    $PYCNN_DATA_DIR/mnist) and saves the four uint8 arrays as .npy for the other children."""
    import numpy as np
    source, err = None, None
    try:
        from pycnn.datasets import mnist
        (xtr, ytr), (xte, yte) = mnist.load_data()
        source = "pycnn.datasets.mnist.load_data()"
    except Exception as e:                                   # pycnn missing or not ready
        err = f"{type(e).__name__}: {e}"
        d = os.path.join(os.environ.get("PYCNN_DATA_DIR", ""), "mnist")
        xtr = _read_idx_gz(os.path.join(d, "train-images-idx3-ubyte.gz"))
        ytr = _read_idx_gz(os.path.join(d, "train-labels-idx1-ubyte.gz"))
        xte = _read_idx_gz(os.path.join(d, "t10k-images-idx3-ubyte.gz"))
        yte = _read_idx_gz(os.path.join(d, "t10k-labels-idx1-ubyte.gz"))
        source = f"IDX files in {d} (pycnn loader unavailable: {err})"
    arrays = {"x_train": xtr, "y_train": ytr, "x_test": xte, "y_test": yte}
    for k, v in arrays.items():
        np.save(os.path.join(spec["data_dir"], k + ".npy"), np.asarray(v))
    return {"source": source, "shapes": {k: list(np.shape(v)) for k, v in arrays.items()},
            "dtypes": {k: str(np.asarray(v).dtype) for k, v in arrays.items()}}


def _load_data(spec, model):
    """The saved arrays, preprocessed as the lecture does (float32 / 255, reshaped)."""
    import numpy as np
    d = spec["data_dir"]
    xtr = np.load(os.path.join(d, "x_train.npy"))
    ytr = np.load(os.path.join(d, "y_train.npy"))
    xte = np.load(os.path.join(d, "x_test.npy"))
    yte = np.load(os.path.join(d, "y_test.npy"))
    n = spec.get("train_n") or xtr.shape[0]
    xtr, ytr = xtr[:n], ytr[:n]
    shape = (784,) if model == "dense" else (28, 28, 1)
    xtr = xtr.reshape((xtr.shape[0],) + shape).astype("float32") / 255
    xte = xte.reshape((xte.shape[0],) + shape).astype("float32") / 255
    return xtr, ytr, xte, yte


def _set_seeds(seed):
    import random
    import numpy as np
    random.seed(seed)
    np.random.seed(seed)


def _pycnn_build(name):
    import pycnn
    import lecture_models
    return lecture_models.build(pycnn, name)


def _keras_like_run(spec, model, fit_epochs, xtr, ytr, xte, yte, res):
    """fit / evaluate / predict for the two Keras-API frameworks (pycnn and Keras).
    fit_epochs(epochs) -> per-epoch list of dicts."""
    import numpy as np
    res["epochs"] = fit_epochs(spec["epochs"])
    if spec.get("evaluate", True):
        try:
            out = model.evaluate(xte, yte, batch_size=BATCH, verbose=0)
        except TypeError:
            out = model.evaluate(xte, yte, verbose=0)
        res["test_loss"], res["test_acc"] = float(out[0]), float(out[1])
    if spec.get("predict", True):
        model.predict(xte[:10 * PREDICT_BATCH], batch_size=PREDICT_BATCH, verbose=0)  # warm-up
        rates = []
        for _ in range(spec["predict_repeats"]):
            t0 = time.perf_counter()
            p = model.predict(xte, batch_size=PREDICT_BATCH, verbose=0)
            rates.append(xte.shape[0] / (time.perf_counter() - t0))
        p = np.asarray(p)
        res["predict_img_s"] = statistics.median(rates)
        res["predict_img_s_all"] = rates
        res["predict_shape"] = list(p.shape)
        res["predict_acc"] = float((p.argmax(1) == np.asarray(yte)).mean())


def child_train_pycnn(spec):
    import numpy as np
    import pycnn
    res = {"version": getattr(pycnn, "__version__", "?")}
    try:
        res["isa"] = pycnn._C.isa()
    except Exception as e:
        res["isa"] = f"? ({type(e).__name__})"
    pycnn.set_num_threads(spec["threads"])
    try:
        res["threads_reported"] = pycnn._C.num_threads()
    except Exception:
        pass
    xtr, ytr, xte, yte = _load_data(spec, spec["model"])
    res["rss_base_mb"] = _maxrss_mb()
    _set_seeds(spec["seed"])
    pycnn.utils.set_random_seed(spec["seed"])
    model = _pycnn_build(spec["model"])
    clock = time.perf_counter

    base = getattr(getattr(pycnn, "callbacks", None), "Callback", None)

    def fit_epochs(epochs):
        if base is None:                       # no callbacks: time fit(epochs=1) calls
            out = []
            for _ in range(epochs):
                t0 = clock()
                h = model.fit(xtr, ytr, epochs=1, batch_size=BATCH, verbose=0)
                logs = {k: v[-1] for k, v in getattr(h, "history", {}).items()}
                out.append({"seconds": clock() - t0, "loss": float(logs.get("loss", np.nan)),
                            "accuracy": float(logs.get("accuracy", np.nan))})
            res["timing"] = "fit(epochs=1) per epoch"
            return out

        class Timer(base):
            def __init__(self):
                super().__init__()
                self.epochs = []

            def on_epoch_begin(self, epoch, logs=None):
                self._t0 = clock()

            def on_epoch_end(self, epoch, logs=None):
                dt = clock() - self._t0
                logs = logs or {}
                self.epochs.append({"seconds": dt,
                                    "loss": float(logs.get("loss", np.nan)),
                                    "accuracy": float(logs.get("accuracy", np.nan))})

        timer = Timer()
        model.fit(xtr, ytr, epochs=epochs, batch_size=BATCH, verbose=0, callbacks=[timer])
        res["timing"] = "callback on_epoch_begin/end"
        return timer.epochs

    _keras_like_run(spec, model, fit_epochs, xtr, ytr, xte, yte, res)
    return res


def child_train_keras(spec):
    import torch
    torch.set_num_threads(spec["threads"])
    import keras
    import keras_models
    res = {"version": keras.__version__, "backend": keras.backend.backend(),
           "torch_version": torch.__version__, "threads_reported": torch.get_num_threads()}
    xtr, ytr, xte, yte = _load_data(spec, spec["model"])
    res["rss_base_mb"] = _maxrss_mb()
    _set_seeds(spec["seed"])
    keras.utils.set_random_seed(spec["seed"])
    model = keras_models.build(spec["model"])

    def fit_epochs(epochs):
        timer = keras_models.EpochTimer(time.perf_counter)
        model.fit(xtr, ytr, epochs=epochs, batch_size=BATCH, verbose=0, callbacks=[timer])
        return timer.epochs

    _keras_like_run(spec, model, fit_epochs, xtr, ytr, xte, yte, res)
    return res


def child_train_torch(spec):
    import numpy as np
    import torch
    torch.set_num_threads(spec["threads"])
    import torch_models as tm
    res = {"version": torch.__version__, "threads_reported": torch.get_num_threads()}
    xtr, ytr, xte, yte = _load_data(spec, spec["model"])
    name = spec["model"]
    Xtr, Xte = tm.to_tensor(name, xtr), tm.to_tensor(name, xte)
    Ytr = torch.from_numpy(ytr.astype(np.int64))
    Yte = torch.from_numpy(yte.astype(np.int64))
    res["rss_base_mb"] = _maxrss_mb()
    _set_seeds(spec["seed"])
    torch.manual_seed(spec["seed"])
    model = tm.build(name)
    res["epochs"] = tm.train(model, Xtr, Ytr, spec["epochs"], BATCH, spec["seed"])
    if spec.get("evaluate", True):
        res["test_acc"] = tm.accuracy(model, Xte, Yte)
    if spec.get("predict", True):
        tm.predict(model, Xte[:10 * PREDICT_BATCH], PREDICT_BATCH)          # warm-up
        rates = []
        for _ in range(spec["predict_repeats"]):
            t0 = time.perf_counter()
            p = tm.predict(model, Xte, PREDICT_BATCH)
            rates.append(Xte.shape[0] / (time.perf_counter() - t0))
        res["predict_img_s"] = statistics.median(rates)
        res["predict_img_s_all"] = rates
        res["predict_shape"] = list(p.shape)
        res["predict_acc"] = float((p.argmax(1) == yte).mean())
    return res


def _layer_input_shape(model):
    return (BATCH, 28, 28, 1) if model == "convnet" else (BATCH, 784)


def pycnn_steps(model):
    """The calls of a built pycnn model's training step, as fit() makes them: a Conv2D feeding a
    MaxPooling2D is one fused call (forward_pooled / backward_pooled); the last layer's softmax
    is fused into the crossentropy (forward_logits / backward_from_logits); the first layer
    computes no input gradient. A list of (name, arch indices, forward(x), backward(dy), mode)."""
    layers = [l for l in model.layers if type(l).__name__ != "InputLayer"]
    fused = {id(conv): pool for conv, pool in model._graph.fused_pairs}
    steps = []
    i = 0
    while i < len(layers):
        l = layers[i]
        need_dx = bool(steps)          # as fit() does: no input gradient for the first layer
        if id(l) in fused:
            pool = fused[id(l)]
            steps.append((f"{l.name} + {pool.name} (fused)", [i, i + 1],
                          lambda a, l=l, p=pool: l.forward_pooled(a, p, True),
                          lambda d, l=l, n=need_dx: l.backward_pooled(d, n),
                          f"backward_pooled(need_dx={need_dx})"))
            i += 2
            continue
        # the last layer's softmax is fused into the crossentropy: fit's forward stops at the
        # logits (forward_logits) and the backward starts from them (backward_from_logits)
        last = i == len(layers) - 1
        f, mode = l.backward, "backward"
        forward_fn = l.forward
        if last and getattr(l, "output_activation", None) == "softmax" and \
                hasattr(l, "backward_from_logits"):
            f, mode = l.backward_from_logits, "backward_from_logits"
            forward_fn = l.forward_logits
        if "need_dx" in inspect.signature(f).parameters:
            f = (lambda d, f=f, n=need_dx: f(d, need_dx=n))
            mode += f"(need_dx={need_dx})"
        steps.append((l.name, [i], lambda a, ff=forward_fn: ff(a, training=True), f, mode))
        i += 1
    return steps


def child_layers_pycnn(spec):
    """Forward/backward time of each step of a lecture model (spec["model"]) on a random batch
    of 128, run as
    fit() runs it: a Conv2D feeding a MaxPooling2D is one fused call (forward_pooled /
    backward_pooled), timed as one row; other layers through forward(x, training=True) /
    backward(dy). Timed twice: in step (the whole forward pass, then the whole backward pass,
    repeated: each call finds the caches as the layers before it left them) and alone (each
    step's forward then its backward, repeated: how PyTorch's modules are timed)."""
    import numpy as np
    import pycnn
    pycnn.set_num_threads(spec["threads"])
    pycnn.utils.set_random_seed(spec["seed"])
    model = _pycnn_build(spec["model"])
    rng = np.random.default_rng(spec["seed"])
    x = rng.random(_layer_input_shape(spec["model"]), dtype=np.float32)
    model.predict(x[:2], verbose=0)                  # builds the graph and its fusion plan
    steps = pycnn_steps(model)
    fwd = [[] for _ in steps]
    bwd = [[] for _ in steps]
    shapes = None
    for rep in range(spec["reps"] + 1):              # repetition 0 is a warm-up
        acts = [x]
        for k, st in enumerate(steps):
            t0 = time.perf_counter()
            y = st[2](acts[-1])
            fwd[k].append(time.perf_counter() - t0)
            acts.append(y)
        shapes = [list(np.shape(a)) for a in acts]
        dy = rng.standard_normal(np.shape(acts[-1])).astype(np.float32)
        for k in reversed(range(len(steps))):
            t0 = time.perf_counter()
            dy = steps[k][3](dy)
            bwd[k].append(time.perf_counter() - t0)
    alone_fwd = [[] for _ in steps]
    alone_bwd = [[] for _ in steps]
    for k, st in enumerate(steps):
        g = rng.standard_normal(shapes[k + 1]).astype(np.float32)
        for rep in range(spec["reps"] + 1):
            t0 = time.perf_counter()
            st[2](acts[k])
            t1 = time.perf_counter()
            st[3](g)
            t2 = time.perf_counter()
            if rep:
                alone_fwd[k].append(t1 - t0)
                alone_bwd[k].append(t2 - t1)
    out = []
    for k, st in enumerate(steps):
        out.append({"name": st[0], "arch": st[1], "backward": st[4],
                    "in_shape": shapes[k], "out_shape": shapes[k + 1],
                    "fwd": float(np.median(fwd[k][1:])), "bwd": float(np.median(bwd[k][1:])),
                    "alone_fwd": float(np.median(alone_fwd[k])),
                    "alone_bwd": float(np.median(alone_bwd[k]))})
    return {"layers": out}


def child_layers_torch(spec):
    import numpy as np
    import torch
    torch.set_num_threads(spec["threads"])
    torch.manual_seed(spec["seed"])
    import torch_models as tm
    model = tm.build(spec["model"])
    x = torch.rand(BATCH, 1, 28, 28) if spec["model"] == "convnet" else torch.rand(BATCH, 784)
    return {"layers": tm.layer_times(model, x, spec["reps"])}


CHILD_TASKS = {
    ("data", None): child_data,
    ("train", "pycnn"): child_train_pycnn,
    ("train", "torch"): child_train_torch,
    ("train", "keras"): child_train_keras,
    ("layers", "pycnn"): child_layers_pycnn,
    ("layers", "torch"): child_layers_torch,
}


def child_main(spec_path):
    with open(spec_path) as f:
        spec = json.load(f)
    sys.path.insert(0, HERE)
    t0 = time.perf_counter()
    res = CHILD_TASKS[(spec["task"], spec.get("framework"))](spec)
    res["wall_s"] = time.perf_counter() - t0
    res["peak_rss_mb"] = _maxrss_mb()
    with open(spec["out"], "w") as f:
        json.dump(res, f)


# --------------------------------------------------------------------------------------
# parent
# --------------------------------------------------------------------------------------

OTHER_LOAD_WARN = 0.25        # cores used by other processes that make a run "disturbed"


def _busy_cpu_s():
    """CPU seconds all processes on the machine have used (busy jiffies in /proc/stat)."""
    try:
        with open("/proc/stat") as f:
            v = [int(x) for x in f.readline().split()[1:]]
    except (OSError, ValueError):
        return None
    idle = v[3] + (v[4] if len(v) > 4 else 0)          # idle + iowait
    guest = sum(v[8:10]) if len(v) > 9 else 0           # already counted in user/nice
    return (sum(v) - idle - guest) / os.sysconf("SC_CLK_TCK")


def _children_cpu_s():
    import resource
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def log(*a):
    print(*a, flush=True)


class Runner:
    def __init__(self, args, tmp):
        self.args = args
        self.tmp = tmp
        self.count = 0
        self.pythons = {}            # framework -> interpreter
        self.skipped = {}            # framework -> reason
        self.errors = []
        self.other_load = []         # (what, cores used by other processes meanwhile)

    def env(self, framework, threads):
        env = dict(os.environ)
        for k in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS",
                  "PYCNN_NUM_THREADS"):
            env[k] = str(threads)
        if framework == "keras":
            env["KERAS_BACKEND"] = "torch"
        return env

    def child(self, task, framework=None, python=None, threads=None, **kw):
        """Runs one child; returns its JSON, or None (error recorded) when it fails."""
        self.count += 1
        threads = threads or self.args.threads
        spec = dict(kw, task=task, framework=framework, threads=threads,
                    seed=self.args.seed, data_dir=self.tmp,
                    out=os.path.join(self.tmp, f"out{self.count}.json"))
        spec_path = os.path.join(self.tmp, f"spec{self.count}.json")
        with open(spec_path, "w") as f:
            json.dump(spec, f)
        cmd = [python or sys.executable, os.path.abspath(__file__), "--child", spec_path]
        what = " ".join(x for x in (task, framework, kw.get("model"), f"threads={threads}") if x)
        if task != "data":
            self.wait_idle()
        busy0, kids0, t0 = _busy_cpu_s(), _children_cpu_s(), time.perf_counter()
        timeout = self.args.child_timeout
        try:
            p = subprocess.run(cmd, env=self.env(framework, threads), capture_output=True,
                               text=True, timeout=timeout)
            rc, tail = p.returncode, (p.stderr or p.stdout or "").strip()
        except subprocess.TimeoutExpired as e:    # run() has killed the child
            rc = None
            err = e.stderr.decode(errors="replace") if isinstance(e.stderr, bytes) else e.stderr
            tail = (f"timed out after {timeout:.0f} s (killed; hung?)\n" + (err or "")).strip()
        wall = time.perf_counter() - t0
        # CPU used by other processes while the child ran, in cores: all busy CPU time
        # (/proc/stat) minus this harness's children's CPU time.
        other = None
        if busy0 is not None:
            other = max(0.0, ((_busy_cpu_s() - busy0) - (_children_cpu_s() - kids0)) / wall)
        if task != "data":
            self.other_load.append((what, other))
        if rc != 0 or not os.path.exists(spec["out"]):
            tail = "\n".join(tail.splitlines()[-12:])
            if rc is not None and rc < 0:
                tail = f"killed by signal {-rc}\n" + tail
            self.errors.append((what, tail.strip()))
            log(f"  !! {what} failed (exit {rc}):\n    " + tail.replace("\n", "\n    "))
            return None
        with open(spec["out"]) as f:
            res = json.load(f)
        res["other_load"] = other
        if other is not None and other > OTHER_LOAD_WARN and task != "data":
            log(f"  (other processes used {other:.2f} cores meanwhile: numbers disturbed)")
        return res

    def wait_idle(self):
        """Waits (at most --wait-idle seconds) until other processes use less than
        OTHER_LOAD_WARN cores, sampled over one second, before a timed run starts."""
        limit = self.args.wait_idle
        if not limit or _busy_cpu_s() is None:
            return
        t_end, said = time.monotonic() + limit, False
        while True:
            b0 = _busy_cpu_s()
            time.sleep(1.0)
            other = _busy_cpu_s() - b0
            if other < OTHER_LOAD_WARN:
                if said:
                    log("  ... idle now")
                return
            if time.monotonic() > t_end:
                log(f"  ... still busy ({other:.2f} cores) after {limit:.0f} s; running anyway")
                return
            if not said:
                log(f"  waiting up to {limit:.0f} s for other processes to stop using the "
                    f"CPU ({other:.2f} cores busy) ...")
                said = True

    def probe(self):
        """Which frameworks can run, and with which interpreter."""
        a = self.args

        def check(python, code, framework):
            try:
                # cwd=tmp: import what the children will import, not ./pycnn in the cwd
                p = subprocess.run([python, "-c", code], capture_output=True, text=True,
                                   env=self.env(framework, 1), timeout=300, cwd=self.tmp)
            except (OSError, subprocess.TimeoutExpired) as e:
                return None, f"{type(e).__name__}: {e}"
            if p.returncode == 0:
                return p.stdout.strip(), None
            return None, (p.stderr.strip().splitlines() or ["?"])[-1]

        for fw in a.frameworks:
            if fw == "pycnn":
                v, err = check(sys.executable, "import pycnn; pycnn.Sequential; "
                               "print(getattr(pycnn, '__version__', '?'))", fw)
                python = sys.executable
            elif fw == "torch":
                v, err = check(sys.executable, "import torch; print(torch.__version__)", fw)
                python = sys.executable
            else:
                cands = [a.keras_python] if a.keras_python else [
                    sys.executable, "/tmp/kerasvenv/bin/python"]
                v = None
                errs = []
                for python in cands:
                    if not os.path.exists(python):
                        errs.append(f"{python}: not found")
                        continue
                    v, err = check(python, "import keras, torch; "
                                   "print(keras.__version__, keras.backend.backend())", fw)
                    if v:
                        break
                    errs.append(f"{python}: {err}")
                err = "; ".join(errs)
            if v:
                self.pythons[fw] = python
                log(f"  {fw}: {v} ({python})")
            else:
                self.skipped[fw] = err
                log(f"  {fw}: SKIPPED ({err})")


def run_peak(threads_list, tmp):
    cc = os.environ.get("CC", "cc")
    if not shutil.which(cc):
        return None, f"no C compiler ({cc})"
    exe = os.path.join(tmp, "peak")
    p = subprocess.run([cc, "-O2", "-pthread", "-o", exe, os.path.join(HERE, "peak.c")],
                       capture_output=True, text=True)
    if p.returncode != 0:
        return None, "peak.c did not compile: " + p.stderr.strip()[-500:]
    p = subprocess.run([exe] + [str(t) for t in threads_list], capture_output=True, text=True,
                       timeout=600)
    if p.returncode != 0:
        return None, "peak failed: " + p.stderr.strip()
    rows = [json.loads(l) for l in p.stdout.splitlines() if l.strip()]
    return rows, None


def cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "?"


def cpu_flags():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("flags"):
                    fl = line.split(":", 1)[1].split()
                    return [x for x in ("avx2", "fma", "avx512f", "avx512_bf16") if x in fl]
    except OSError:
        pass
    return []


def med(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


def merge_layer_runs(runs):
    """One per-layer result from several runs of the same breakdown: per layer, the median over
    the runs of each timing (each run's own median over its repetitions); None if none ran."""
    ok = [r for r in runs if r and r.get("layers")]
    if not ok:
        return None
    merged = []
    for k, layer in enumerate(ok[0]["layers"]):
        row = dict(layer)
        for key in ("fwd", "bwd", "alone_fwd", "alone_bwd"):
            vals = [r["layers"][k][key] for r in ok if key in r["layers"][k]]
            if vals:
                row[key] = float(med(vals))
        merged.append(row)
    return {"layers": merged, "runs": len(ok)}


def epoch_stats(r):
    """(median epoch seconds, first epoch seconds): the median is over the epochs after the
    first when there are at least two (steady state), else the only epoch."""
    s = [e["seconds"] for e in r.get("epochs", [])]
    if not s:
        return None, None
    return (statistics.median(s[1:]) if len(s) > 1 else s[0]), s[0]


def fmt(x, spec=".2f", none="-"):
    return none if x is None else format(x, spec)


def md_table(header, rows):
    out = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    out += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    return "\n".join(out)


def main():
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
    args = ap.parse_args()
    if args.child:
        return child_main(args.child)
    if args.from_json:
        with open(args.from_json) as f:
            raw = json.load(f)
        info = raw["info"]
        info["peak"] = {int(k): v for k, v in info["peak"].items()}
        args.models = info["models"]
        args.scaling_size = info["scaling_size"]
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

    data_dir = os.path.join(REPO, "..", "shared", "data")
    if "PYCNN_DATA_DIR" not in os.environ and os.path.isdir(data_dir):
        os.environ["PYCNN_DATA_DIR"] = os.path.abspath(data_dir)
    ncores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    args.threads = args.threads or ncores
    args.child_timeout = args.child_timeout or (600 if args.quick else 3600)
    args.epochs = args.epochs or (2 if args.quick else 5)
    args.train_size = args.train_size or (5000 if args.quick else None)
    args.scaling_size = args.scaling_size or (5000 if args.quick else 20000)
    args.frameworks = [f for f in args.frameworks.split(",") if f]
    args.models = [m for m in args.models.split(",") if m]
    predict_repeats = 1 if args.quick else 3
    layer_reps = 5 if args.quick else 60
    started = datetime.datetime.now()
    t_start = time.perf_counter()

    with tempfile.TemporaryDirectory(prefix="pycnn-bench-") as tmp:
        R = Runner(args, tmp)
        log(f"pycnn benchmark: threads={args.threads}, epochs={args.epochs}, "
            f"train size={args.train_size or 60000}, batch={BATCH}, repeats={args.repeats}")
        log("frameworks:")
        R.probe()

        log("peak FMA throughput (benchmarks/peak.c) ...")
        tl = sorted({1, args.threads})
        # A peak is a ceiling: noise only lowers it, so keep each (ISA, threads) best over
        # up to 3 attempts, retrying while other processes disturbed the measurement.
        best = {}
        for attempt in range(3):
            R.wait_idle()
            busy0, kids0, t0 = _busy_cpu_s(), _children_cpu_s(), time.perf_counter()
            rows, peak_err = run_peak(tl, tmp)
            for r in rows or []:
                k = (r["isa"], r["threads"])
                if k not in best or r["gflops"] > best[k]["gflops"]:
                    best[k] = r
            other = None
            if busy0 is not None:
                other = max(0.0, ((_busy_cpu_s() - busy0) - (_children_cpu_s() - kids0))
                            / (time.perf_counter() - t0))
            if not rows or other is None or other <= OTHER_LOAD_WARN:
                break
            log(f"  (other processes used {other:.2f} cores meanwhile: peak disturbed"
                + ("; measuring again)" if attempt < 2 else ")"))
        if other is not None:
            R.other_load.append(("peak.c", other))
        peak_rows = list(best.values()) or None
        peak = {}
        if peak_rows:
            for t in tl:
                peak[t] = max(r["gflops"] for r in peak_rows if r["threads"] == t)
            for r in peak_rows:
                log(f"  {r['isa']:7s} {r['threads']} thread(s): {r['gflops']:8.1f} GFLOP/s "
                    f"({r['gflops_per_core']:.1f} per core)")
        else:
            log(f"  peak: {peak_err}")
        peak_n = peak.get(args.threads)

        log("data ...")
        data = R.child("data")
        if data is None:
            log("cannot load MNIST; giving up")
            return 1
        log(f"  {data['source']}")

        results = {fw: {m: [] for m in args.models} for fw in R.pythons}
        for rep in range(args.repeats):
            for fw in FRAMEWORKS:
                if fw not in R.pythons:
                    continue
                for m in args.models:
                    log(f"train {fw} {m} (run {rep + 1}/{args.repeats}) ...")
                    r = R.child("train", fw, R.pythons[fw], model=m, epochs=args.epochs,
                                train_n=args.train_size, predict_repeats=predict_repeats)
                    if r:
                        e_med, e_first = epoch_stats(r)
                        log(f"  epoch {fmt(e_med, '.3f')} s (first {fmt(e_first, '.3f')} s), "
                            f"test acc {fmt(r.get('test_acc'), '.4f')}, predict "
                            f"{fmt(r.get('predict_img_s'), '.0f')} img/s, peak RSS "
                            f"{r['peak_rss_mb']:.0f} MB")
                    results[fw][m].append(r)

        layer_res = {}              # model -> framework -> per-layer times
        if not args.no_layers:
            # --repeats rounds, each framework x model in its own process: medians over rounds
            runs = {}
            for rep in range(args.repeats):
                for m in args.models:
                    for fw in ("pycnn", "torch"):
                        if fw in R.pythons:
                            log(f"per-layer breakdown {fw} {m} (run {rep + 1}/{args.repeats}) ...")
                            runs.setdefault(m, {}).setdefault(fw, []).append(R.child(
                                "layers", fw, R.pythons[fw], model=m, reps=layer_reps))
            layer_res = {m: {fw: merge_layer_runs(rs) for fw, rs in by_fw.items()}
                         for m, by_fw in runs.items()}

        scaling = {}
        if not args.no_scaling and "convnet" in args.models and args.threads > 1:
            # the thread counts in turn, --repeats rounds: medians, like every other number
            runs = {fw: {t: [] for t in sorted({1, args.threads})}
                    for fw in ("pycnn", "torch") if fw in R.pythons}
            for rep in range(args.repeats):
                for fw, by_t in runs.items():
                    for t in by_t:
                        log(f"thread scaling {fw} convnet, {t} thread(s), 1 epoch on "
                            f"{args.scaling_size} images (run {rep + 1}/{args.repeats}) ...")
                        r = R.child("train", fw, R.pythons[fw], threads=t, model="convnet",
                                    epochs=1, train_n=args.scaling_size, evaluate=False,
                                    predict=False)
                        if r:
                            by_t[t].append(r["epochs"][0]["seconds"])
                            log(f"  {fmt(by_t[t][-1], '.3f')} s")
            scaling = {fw: {t: statistics.median(v) if v else None for t, v in by_t.items()}
                       for fw, by_t in runs.items()}

    elapsed = time.perf_counter() - t_start
    info = {
        "started": started.isoformat(timespec="seconds"),
        "elapsed_s": elapsed,
        "command": "python benchmarks/run.py " + " ".join(sys.argv[1:]),
        "cpu": cpu_model(), "cores": ncores, "cpu_flags": cpu_flags(),
        "python": platform.python_version(), "numpy": _numpy_version(),
        "threads": args.threads, "epochs": args.epochs,
        "train_size": args.train_size or 60000, "batch": BATCH, "seed": args.seed,
        "repeats": args.repeats, "quick": args.quick, "data": data,
        "models": args.models, "scaling_size": args.scaling_size,
        "peak_rows": peak_rows, "peak_error": peak_err, "peak": peak,
        "skipped": R.skipped, "errors": R.errors, "other_load": R.other_load,
    }
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
    log(f"\nwrote {out} and {raw} ({elapsed:.0f} s)")
    return 0


def _numpy_version():
    try:
        import numpy
        return numpy.__version__
    except ImportError:
        return "?"


def report(info, results, layer_res, scaling, args):
    fws = [fw for fw in FRAMEWORKS if fw in results]
    models = args.models
    peak = info["peak"].get(info["threads"])
    L = []
    L.append("# pycnn benchmark results")
    L.append("")
    L.append(f"Command: `{info['command']}` ({info['started']}, {info['elapsed_s']:.0f} s). "
             "See `benchmarks/README.md` for what each number means.")
    L.append("")
    vers = {}
    for fw in fws:
        for m in models:
            for r in results[fw][m]:
                if r:
                    vers[fw] = r.get("version")
                    if fw == "pycnn":
                        vers["pycnn ISA"] = r.get("isa")
                    if fw == "keras":
                        vers["keras backend"] = (f"{r.get('backend')} "
                                                 f"(torch {r.get('torch_version')})")
    L.append(f"- Machine: {info['cpu']}, {info['cores']} cores "
             f"(flags: {', '.join(info['cpu_flags'])}); pycnn ISA: "
             f"`{vers.get('pycnn ISA', '-')}`")
    L.append(f"- Versions: Python {info['python']}, NumPy {info['numpy']}, "
             + ", ".join(f"{k} {v}" for k, v in vers.items() if k != "pycnn ISA"))
    L.append(f"- Settings: {info['threads']} thread(s) for every framework, batch {BATCH}, "
             f"{info['epochs']} epoch(s) on {info['train_size']} training images, test on "
             f"10,000, predict at batch {PREDICT_BATCH}, seed {info['seed']}, "
             f"{info['repeats']} repeat(s)" + (" (--quick)" if info["quick"] else ""))
    L.append(f"- Data: {info['data']['source']}")
    for fw, why in info["skipped"].items():
        L.append(f"- {fw}: not run ({why})")
    loads = [(w, o) for w, o in info.get("other_load", []) if o is not None]
    if loads:
        worst = max(loads, key=lambda t: t[1])
        bad = [w for w, o in loads if o > OTHER_LOAD_WARN]
        line = (f"- Other processes on the machine used up to {worst[1]:.2f} cores during a "
                f"timed run (`{worst[0]}`)")
        if bad:
            line += (f": **{len(bad)} of {len(loads)} runs were disturbed** (more than "
                     f"{OTHER_LOAD_WARN} cores), their numbers are not reliable: "
                     + ", ".join(f"`{w}`" for w in bad))
        L.append(line)
    L.append("")

    # peak
    L.append("## Peak single-precision FMA throughput (benchmarks/peak.c)")
    L.append("")
    if info["peak_rows"]:
        L.append(md_table(["ISA", "threads", "GFLOP/s", "GFLOP/s per core"],
                          [[r["isa"], r["threads"], f"{r['gflops']:.1f}",
                            f"{r['gflops_per_core']:.1f}"] for r in info["peak_rows"]]))
        L.append("")
        L.append(f"Peak used below: **{fmt(peak, '.1f')} GFLOP/s** on {info['threads']} "
                 f"thread(s) (best ISA); 1 thread: {fmt(info['peak'].get(1), '.1f')} GFLOP/s.")
    else:
        L.append(f"not measured: {info['peak_error']}")
    L.append("")

    # main table
    def agg(fw, m):
        rs = [r for r in results[fw][m] if r]
        if not rs:
            return None
        es = [epoch_stats(r) for r in rs]
        return {
            "epoch": med([e[0] for e in es]), "first": med([e[1] for e in es]),
            "acc": med([r.get("test_acc") for r in rs]),
            "pred": med([r.get("predict_img_s") for r in rs]),
            "rss": med([r["peak_rss_mb"] for r in rs]),
            "rss_base": med([r.get("rss_base_mb") for r in rs]),
            "train_acc": med([r["epochs"][-1].get("accuracy") for r in rs if r.get("epochs")]),
        }

    A = {fw: {m: agg(fw, m) for m in models} for fw in fws}

    def ratio(other, m, key):
        """Median over repeats of pycnn's number / other's, each pair from the same repeat."""
        out = []
        for rp, ro in zip(results["pycnn"][m], results[other][m]):
            if not rp or not ro:
                continue
            if key == "epoch":
                a, b = epoch_stats(rp)[0], epoch_stats(ro)[0]
            elif key == "first":
                a, b = epoch_stats(rp)[1], epoch_stats(ro)[1]
            elif key == "pred":           # time per image ratio = inverse throughput ratio
                a, b = ro.get("predict_img_s"), rp.get("predict_img_s")
            else:
                a, b = rp.get(key), ro.get(key)
            if a and b:
                out.append(a / b)
        return med(out)

    def cell(vals):
        return " / ".join(vals)

    L.append("## Results (" + " / ".join(models) + " in each cell)")
    L.append("")
    hdr = ["framework", "epoch s (median)", "1st epoch s", "test acc", "predict img/s",
           "peak RSS MB", "base RSS MB"]
    rows = []
    for fw in fws:
        row = [fw]
        for key, spec in (("epoch", ".3f"), ("first", ".3f"), ("acc", ".4f"), ("pred", ".0f"),
                          ("rss", ".0f"), ("rss_base", ".0f")):
            row.append(cell([fmt(A[fw][m][key], spec) if A[fw][m] else "failed"
                             for m in models]))
        rows.append(row)
    if "pycnn" in fws:
        for other in fws:
            if other == "pycnn":
                continue
            row = [f"ratio pycnn/{other}"]
            for key in ("epoch", "first", None, "pred", "peak_rss_mb", None):
                row.append("" if key is None else
                           cell([fmt(ratio(other, m, key), ".2f") for m in models]))
            rows.append(row)
    L.append(md_table(hdr, rows))
    L.append("")
    L.append("Epoch s: median over the epochs after the first (the only epoch when there is "
             "one). Ratios come from the same run (medians over repeats); for epoch and "
             "predict they are time ratios (predict: inverse throughput ratio), so < 1 means "
             "pycnn is faster; for RSS < 1 means pycnn uses less memory. Base RSS: after "
             "imports and data loading, before the model is built.")
    L.append("")

    # efficiency
    L.append("## Whole-epoch efficiency")
    L.append("")
    n = info["train_size"]
    rows = []
    for m in models:
        fwd1, train1 = model_flops(m)
        ef = train1 * n
        bound = ef / (PEAK_FRACTION * peak * 1e9) if peak else None
        row = [m, f"{fwd1 / 1e6:.2f}", f"{train1 / 1e6:.2f}", f"{ef / 1e9:.1f}",
               fmt(bound, ".3f")]
        for fw in fws:
            a = A[fw][m]
            if a and a["epoch"] and peak:
                g = ef / a["epoch"] / 1e9
                row.append(f"{a['epoch']:.3f} s = {g:.1f} GFLOP/s = {100 * g / peak:.1f} %")
            else:
                row.append("-")
        rows.append(row)
    L.append(md_table(["model", "fwd MFLOP/img", "train MFLOP/img",
                       f"GFLOP/epoch ({n} img)", f"epoch at {PEAK_FRACTION:.0%} of peak, s"]
                      + [f"{fw} (% of peak)" for fw in fws], rows))
    L.append("")
    L.append("FLOPs count conv/dense GEMM work only (forward, dW, dX; no dX for the first "
             "layer); activations, pooling, loss and optimizer are extra work not counted.")
    L.append("")

    # per layer
    for model, by_fw in layer_res.items():
        arch = ARCH[model]
        L.append(f"## {model.capitalize()} per layer (one batch of {BATCH}, "
                 f"{info['threads']} thread(s), % of the {fmt(peak, '.0f')} GFLOP/s peak)")
        L.append("")
        for fw, lr in by_fw.items():
            if not lr:
                L.append(f"{fw}: failed (see errors)")
                L.append("")
                continue
            rows = []
            tf = tb = 0.0
            ta = 0.0          # alone, summed (None when a layer has no alone time)
            first = True
            for i, l in enumerate(lr["layers"]):
                f = b = 0
                for a in l.get("arch", [i]):        # a fused row covers several layers
                    kind, _, out, kernel = arch[a] if a < len(arch) else ("?", None, None, None)
                    fa, ba = layer_flops(kind, out, kernel, BATCH, first)
                    f, b = f + fa, b + ba
                    if kernel is not None:
                        first = False
                tf += l["fwd"]
                tb += l["bwd"]

                def g(fl, s):
                    if not fl or not s:
                        return "-", "-"
                    v = fl / s / 1e9
                    return f"{v:.1f}", (f"{100 * v / peak:.1f}" if peak else "-")

                gf, pf = g(f, l["fwd"])
                gb, pb = g(b, l["bwd"])
                _, pt = g(f + b, l["fwd"] + l["bwd"])     # the issue's "forward + backward together"
                # alone: PyTorch's rows are timed that way only
                alone = (l["fwd"] + l["bwd"]) if fw == "torch" else \
                    (l["alone_fwd"] + l["alone_bwd"]) if "alone_fwd" in l else None
                _, pa = g(f + b, alone)
                ta = ta + alone if ta is not None and alone else None
                rows.append([l["name"], "x".join(str(s) for s in l["out_shape"][1:]),
                             f"{l['fwd'] * 1e3:.3f}", gf, pf, f"{l['bwd'] * 1e3:.3f}", gb, pb,
                             pt, fmt(alone * 1e3 if alone else None, ".3f"), pa])
            fwd1, train1 = model_flops(model, BATCH)
            rows.append(["**total**", "", f"{tf * 1e3:.3f}",
                         f"{fwd1 / tf / 1e9:.1f}" if tf else "-", "",
                         f"{tb * 1e3:.3f}",
                         f"{(train1 - fwd1) / tb / 1e9:.1f}" if tb else "-", "",
                         f"{100 * train1 / (tf + tb) / 1e9 / peak:.1f}" if tf + tb and peak
                         else "-", fmt(ta * 1e3 if ta else None, ".3f"),
                         f"{100 * train1 / ta / 1e9 / peak:.1f}" if ta and peak else "-"])
            pycnn_note = (" (as fit runs them: a convolution and the max pooling it feeds are "
                          "one fused call; the second convolution's forward runs Winograd "
                          "F(2x2, 3x3), and its GFLOP/s count the direct method's FLOPs, an "
                          "effective rate; the output layer's softmax runs in the loss)" if model == "convnet" else
                          " (as fit runs them: relu fused into the first layer, the output "
                          "layer's softmax into the loss, so its forward stops at the logits "
                          "and its backward starts from them)")
            runs_note = f" Medians of {lr['runs']} run(s)." if lr.get("runs") else ""
            L.append(f"**{fw}**" + (" (NCHW; ReLU timed with its layer)" if fw == "torch"
                                     else pycnn_note) + runs_note)
            L.append("")
            L.append(md_table(["layer", "output", "fwd ms", "fwd GFLOP/s", "fwd % peak",
                               "bwd ms", "bwd GFLOP/s", "bwd % peak", "fwd+bwd % peak",
                               "alone fwd+bwd ms", "alone % peak"], rows))
            L.append("")
            a = A.get(fw, {}).get(model)
            if a and a["epoch"]:
                steps = -(-info["train_size"] // BATCH)
                L.append(f"Layers' forward + backward: {(tf + tb) * 1e3:.2f} ms; one training "
                         f"step of the epoch above: {a['epoch'] / steps * 1e3:.2f} ms (epoch s / "
                         f"{steps} batches; it adds the loss, optimizer update, batch gather "
                         "and framework overhead).")
                L.append("")

    # scaling
    if scaling:
        L.append(f"## Thread scaling (convnet, 1 epoch on {args.scaling_size} images, median of "
                 f"{info['repeats']} run(s) per thread count, run in turn)")
        L.append("")
        rows = []
        t = info["threads"]
        for fw, s in scaling.items():
            s1, sn = s.get(1), s.get(t)
            sp = s1 / sn if s1 and sn else None
            rows.append([fw, fmt(s1, ".3f"), fmt(sn, ".3f"), fmt(sp, ".2f"),
                         fmt(sp / t * 100 if sp else None, ".0f")])
        L.append(md_table(["framework", "1 thread s", f"{t} threads s", "speedup",
                           "parallel efficiency %"], rows))
        L.append("")

    if info["errors"]:
        L.append("## Errors")
        L.append("")
        for what, tail in info["errors"]:
            L.append(f"- `{what}`:")
            L.append("")
            L.append("```")
            L.append(tail)
            L.append("```")
        L.append("")
    return "\n".join(L).rstrip()


if __name__ == "__main__":
    sys.exit(main())
