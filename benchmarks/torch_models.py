"""The two lecture models in PyTorch, set up to mirror Keras (and so pycnn) as closely as
PyTorch allows.  Used only by benchmarks/run.py; importing this module requires torch.

Mirroring Keras:
  * weights Glorot-uniform (``xavier_uniform_``: PyTorch's fan_in/fan_out for a conv kernel
    (O, C, KH, KW) are C*KH*KW and O*KH*KW, the same as Keras'), biases zero;
  * RMSprop(lr=1e-3, alpha=rho=0.9, eps=1e-7, momentum=0, centered=False).  PyTorch puts eps
    OUTSIDE the square root, w -= lr*g/(sqrt(v)+eps), Keras inside, w -= lr*g/sqrt(v+eps);
    with eps=1e-7 the difference only matters while v is ~1e-7 or smaller (the first steps
    of a weight that sees tiny gradients) and does not change the cost of a step;
  * the final softmax is fused into the loss: the model returns logits and trains with
    CrossEntropyLoss (= sparse categorical crossentropy on softmax(logits)); predict applies
    the softmax so it returns probabilities like Keras;
  * data layout: PyTorch's usual NCHW (the NumPy arrays are transposed once, outside the
    timed region); for the dense model the same (N, 784) arrays as Keras;
  * the training set is reshuffled every epoch and the last partial batch is kept, like
    Keras' fit(shuffle=True); the running training accuracy is computed like Keras' metric.
"""
import time

import numpy as np
import torch
from torch import nn
import torch.nn.functional as F


def build(name):
    if name == "dense":
        model = nn.Sequential(
            nn.Linear(784, 512), nn.ReLU(),
            nn.Linear(512, 10),             # softmax fused into the loss / predict
        )
    elif name == "convnet":
        model = nn.Sequential(
            nn.Conv2d(1, 32, 3), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(32, 64, 3), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(64, 128, 3), nn.ReLU(),
            nn.Flatten(),
            nn.Linear(3 * 3 * 128, 10),
        )
    else:
        raise ValueError(name)
    for m in model.modules():
        if isinstance(m, (nn.Linear, nn.Conv2d)):
            nn.init.xavier_uniform_(m.weight)
            nn.init.zeros_(m.bias)
    return model


def optimizer(model):
    return torch.optim.RMSprop(model.parameters(), lr=1e-3, alpha=0.9, eps=1e-7,
                               momentum=0.0, centered=False)


def to_tensor(name, x):
    """NumPy float32 in Keras layout -> torch tensor in PyTorch layout, sharing memory (with
    one channel, NHWC -> NCHW is only a reshape, so no copy is made)."""
    if name == "convnet":
        x = np.ascontiguousarray(x.transpose(0, 3, 1, 2))   # NHWC -> NCHW
    return torch.from_numpy(np.ascontiguousarray(x))


def train(model, x, y, epochs, batch_size, seed, on_epoch_end=None):
    """Keras-like fit.  Returns a list of per-epoch dicts {seconds, loss, accuracy}."""
    opt = optimizer(model)
    model.train()
    gen = torch.Generator().manual_seed(seed)
    n = x.shape[0]
    out = []
    for epoch in range(epochs):
        t0 = time.perf_counter()
        perm = torch.randperm(n, generator=gen)
        loss_sum = torch.zeros((), dtype=torch.float64)
        correct = 0
        for i in range(0, n, batch_size):
            idx = perm[i:i + batch_size]
            xb, yb = x[idx], y[idx]
            opt.zero_grad(set_to_none=True)
            logits = model(xb)
            loss = F.cross_entropy(logits, yb)
            loss.backward()
            opt.step()
            with torch.no_grad():
                loss_sum += loss.detach() * yb.shape[0]
                correct += int((logits.argmax(1) == yb).sum())
        dt = time.perf_counter() - t0
        out.append({"seconds": dt, "loss": float(loss_sum) / n, "accuracy": correct / n})
        if on_epoch_end:
            on_epoch_end(epoch, out[-1])
    return out


def predict(model, x, batch_size=32):
    """Keras-like predict: softmax probabilities as one NumPy array."""
    model.eval()
    outs = []
    with torch.inference_mode():
        for i in range(0, x.shape[0], batch_size):
            outs.append(torch.softmax(model(x[i:i + batch_size]), dim=1))
        res = torch.cat(outs).numpy()
    model.train()
    return res


def accuracy(model, x, y, batch_size=128):
    model.eval()
    correct = 0
    with torch.inference_mode():
        for i in range(0, x.shape[0], batch_size):
            correct += int((model(x[i:i + batch_size]).argmax(1) == y[i:i + batch_size]).sum())
    model.train()
    return correct / x.shape[0]


def layer_times(model, x, reps):
    """Per-layer forward / backward wall times (seconds, median of `reps`) for one batch.

    Each module is run on a detached copy of its input (requires_grad except for the first
    module, so the first layer computes no input gradient, as in training) and its backward
    is timed with a random output gradient.  Returns a list of dicts
    {name, in_shape, out_shape, fwd, bwd}; a ReLU is timed together with the Conv2d/Linear
    before it (Keras and pycnn fuse the activation into the layer).
    """
    groups = []                             # a ReLU joins the layer before it, as in Keras
    for m in model:
        if isinstance(m, nn.ReLU) and groups:
            groups[-1].append(m)
        else:
            groups.append([m])
    mods = [g[0] if len(g) == 1 else nn.Sequential(*g) for g in groups]
    names = ["+".join(type(m).__name__ for m in g) for g in groups]
    acts = [x]
    with torch.no_grad():
        for m in mods:
            acts.append(m(acts[-1]))
    res = []
    for i, m in enumerate(mods):
        fwd, bwd = [], []
        for r in range(reps + 1):               # one warm-up repetition
            inp = acts[i].detach().clone().requires_grad_(i > 0)
            t0 = time.perf_counter()
            y = m(inp)
            t1 = time.perf_counter()
            dy = torch.randn_like(y)
            model.zero_grad(set_to_none=True)
            t2 = time.perf_counter()
            if y.requires_grad:
                y.backward(dy)
            t3 = time.perf_counter()
            if r:
                fwd.append(t1 - t0)
                bwd.append(t3 - t2)
        res.append({"name": names[i], "in_shape": list(acts[i].shape),
                    "out_shape": list(acts[i + 1].shape),
                    "fwd": float(np.median(fwd)), "bwd": float(np.median(bwd))})
    return res
