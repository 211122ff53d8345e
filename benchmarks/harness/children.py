"""What one child process runs: ``run.py --child SPEC.json`` loads the spec, runs the task it
names (``CHILD_TASKS``) and writes the result as JSON, with its wall time and peak RSS."""
import json
import os
import statistics
import sys
import time

from . import BATCH, HERE, PREDICT_BATCH
from .machine import maxrss_mb


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


def load_data(spec, model):
    """The saved arrays, preprocessed as the lecture does (float32 / 255, reshaped)."""
    import numpy as np
    d = spec["data_dir"]
    xtr, ytr, xte, yte = (np.load(os.path.join(d, k + ".npy"))
                          for k in ("x_train", "y_train", "x_test", "y_test"))
    n = spec.get("train_n") or xtr.shape[0]
    xtr, ytr = xtr[:n], ytr[:n]
    shape = (784,) if model == "dense" else (28, 28, 1)
    xtr = xtr.reshape((xtr.shape[0],) + shape).astype("float32") / 255
    xte = xte.reshape((xte.shape[0],) + shape).astype("float32") / 255
    return xtr, ytr, xte, yte


def set_seeds(seed):
    import random
    import numpy as np
    random.seed(seed)
    np.random.seed(seed)


def build_pycnn(name):
    import pycnn
    import lecture_models
    return lecture_models.build(pycnn, name)


def layer_input_shape(model):
    return (BATCH, 28, 28, 1) if model == "convnet" else (BATCH, 784)


def time_predict(predict, x, y, repeats, res):
    """Throughput of ``predict(x)`` (after a warm-up on 10 batches): the median of
    ``repeats`` calls, and the accuracy of its last answer."""
    import numpy as np
    predict(x[:10 * PREDICT_BATCH])
    rates = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        p = predict(x)
        rates.append(x.shape[0] / (time.perf_counter() - t0))
    p = np.asarray(p)
    res["predict_img_s"] = statistics.median(rates)
    res["predict_img_s_all"] = rates
    res["predict_shape"] = list(p.shape)
    res["predict_acc"] = float((p.argmax(1) == np.asarray(y)).mean())


def epoch_record(seconds, logs):
    logs = logs or {}
    return {"seconds": seconds, "loss": float(logs.get("loss", float("nan"))),
            "accuracy": float(logs.get("accuracy", float("nan")))}


def keras_like_run(spec, model, fit_epochs, xtr, ytr, xte, yte, res):
    """fit / evaluate / predict for the two Keras-API frameworks (pycnn and Keras).
    fit_epochs(epochs) -> per-epoch list of dicts."""
    res["epochs"] = fit_epochs(spec["epochs"])
    if spec.get("evaluate", True):
        out = model.evaluate(xte, yte, batch_size=BATCH, verbose=0)
        res["test_loss"], res["test_acc"] = float(out[0]), float(out[1])
    if spec.get("predict", True):
        time_predict(lambda x: model.predict(x, batch_size=PREDICT_BATCH, verbose=0),
                     xte, yte, spec["predict_repeats"], res)


def epoch_timer(base, clock):
    """A callback (subclass of ``base``) recording each epoch's seconds, loss and accuracy."""
    class EpochTimer(base):
        def __init__(self):
            super().__init__()
            self.epochs = []

        def on_epoch_begin(self, epoch, logs=None):
            self._t0 = clock()

        def on_epoch_end(self, epoch, logs=None):
            self.epochs.append(epoch_record(clock() - self._t0, logs))
    return EpochTimer()


def child_train_pycnn(spec):
    import pycnn
    res = {"version": getattr(pycnn, "__version__", "?"), "isa": pycnn._C.isa()}
    pycnn.set_num_threads(spec["threads"])
    res["threads_reported"] = pycnn._C.num_threads()
    xtr, ytr, xte, yte = load_data(spec, spec["model"])
    res["rss_base_mb"] = maxrss_mb()
    set_seeds(spec["seed"])
    pycnn.utils.set_random_seed(spec["seed"])
    model = build_pycnn(spec["model"])

    def fit_epochs(epochs):
        timer = epoch_timer(pycnn.callbacks.Callback, time.perf_counter)
        model.fit(xtr, ytr, epochs=epochs, batch_size=BATCH, verbose=0, callbacks=[timer])
        res["timing"] = "callback on_epoch_begin/end"
        return timer.epochs

    keras_like_run(spec, model, fit_epochs, xtr, ytr, xte, yte, res)
    return res


def child_train_keras(spec):
    import torch
    torch.set_num_threads(spec["threads"])
    import keras
    import keras_models
    res = {"version": keras.__version__, "backend": keras.backend.backend(),
           "torch_version": torch.__version__, "threads_reported": torch.get_num_threads()}
    xtr, ytr, xte, yte = load_data(spec, spec["model"])
    res["rss_base_mb"] = maxrss_mb()
    set_seeds(spec["seed"])
    keras.utils.set_random_seed(spec["seed"])
    model = keras_models.build(spec["model"])

    def fit_epochs(epochs):
        timer = keras_models.EpochTimer(time.perf_counter)
        model.fit(xtr, ytr, epochs=epochs, batch_size=BATCH, verbose=0, callbacks=[timer])
        return timer.epochs

    keras_like_run(spec, model, fit_epochs, xtr, ytr, xte, yte, res)
    return res


def child_train_torch(spec):
    import numpy as np
    import torch
    torch.set_num_threads(spec["threads"])
    import torch_models as tm
    res = {"version": torch.__version__, "threads_reported": torch.get_num_threads()}
    xtr, ytr, xte, yte = load_data(spec, spec["model"])
    name = spec["model"]
    Xtr, Xte = tm.to_tensor(name, xtr), tm.to_tensor(name, xte)
    Ytr = torch.from_numpy(ytr.astype(np.int64))
    Yte = torch.from_numpy(yte.astype(np.int64))
    res["rss_base_mb"] = maxrss_mb()
    set_seeds(spec["seed"])
    torch.manual_seed(spec["seed"])
    model = tm.build(name)
    res["epochs"] = tm.train(model, Xtr, Ytr, spec["epochs"], BATCH, spec["seed"])
    if spec.get("evaluate", True):
        res["test_acc"] = tm.accuracy(model, Xte, Yte)
    if spec.get("predict", True):
        time_predict(lambda x: tm.predict(model, x, PREDICT_BATCH), Xte, yte,
                     spec["predict_repeats"], res)
    return res


def child_layers_pycnn(spec):
    """Forward/backward time of each step of a lecture model's training plan (spec["model"])
    on a random batch of 128 (see plan_timing.layer_breakdown)."""
    import numpy as np
    import pycnn
    from .plan_timing import layer_breakdown
    pycnn.set_num_threads(spec["threads"])
    pycnn.utils.set_random_seed(spec["seed"])
    model = build_pycnn(spec["model"])
    rng = np.random.default_rng(spec["seed"])
    x = rng.random(layer_input_shape(spec["model"]), dtype=np.float32)
    model.predict(x[:2], verbose=0)                  # builds the model
    return {"layers": layer_breakdown(model, x, spec["reps"], rng)}


def child_layers_torch(spec):
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
    res["peak_rss_mb"] = maxrss_mb()
    with open(spec["out"], "w") as f:
        json.dump(res, f)
