"""Per-step times of a pycnn model's compiled training plan.

The plan decides how a training step runs (which layers are fused, where the forward pass
stops at the logits, which steps compute an input gradient); these helpers only put a clock
around each of its steps while ``plan.forward`` and ``plan.backward`` run them, so the timed
calls are exactly the calls ``fit`` makes.
"""
import contextlib
import time

import numpy as np

clock = time.perf_counter


def training_plan(model):
    """The plan ``fit`` runs for a compiled model: training mode, each output stopping at its
    logits where its loss takes them."""
    from pycnn.models.trainer import _Step
    return _Step(model, True).plan


def model_layers(model):
    return [l for l in model.layers if type(l).__name__ != "InputLayer"]


@contextlib.contextmanager
def replaced(step, name, fn):
    """``step.<name>`` replaced by ``fn`` (an instance attribute) while the block runs."""
    setattr(step, name, fn)
    try:
        yield
    finally:
        delattr(step, name)


class StepClock:
    """Times every step of ``plan`` while the plan runs: per step, the forward and backward
    seconds of each call, the inputs it read last, its output shapes and the ``need_dx`` the
    plan asked of it."""

    def __init__(self, plan):
        self.plan = plan
        n = len(plan.steps)
        self.fwd = [[] for _ in range(n)]
        self.bwd = [[] for _ in range(n)]
        self.inputs = [None] * n
        self.out_shapes = [None] * n
        self.need_dx = [None] * n
        self._stack = contextlib.ExitStack()

    def __enter__(self):
        for k, step in enumerate(self.plan.steps):
            self._stack.enter_context(replaced(step, "forward", self._forward(k, step)))
            self._stack.enter_context(replaced(step, "backward", self._backward(k, step)))
        return self

    def __exit__(self, *exc):
        self._stack.close()

    def _forward(self, k, step):
        run = step.forward

        def forward(values, training):
            self.inputs[k] = [values[i] for i in step.inputs]
            t0 = clock()
            run(values, training)
            self.fwd[k].append(clock() - t0)
            self.out_shapes[k] = [list(np.shape(values[i])) for i in step.outputs]
        return forward

    def _backward(self, k, step):
        run = step.backward

        def backward(douts, need_dx):
            self.need_dx[k] = list(need_dx)
            t0 = clock()
            dxs = run(douts, need_dx)
            self.bwd[k].append(clock() - t0)
            return dxs
        return backward


def time_alone(plan, step, inputs, need_dx, dy, reps):
    """(forward seconds, backward seconds) of ``step`` run by itself: its forward on the inputs
    it read in the plan, then its backward from ``dy``, ``reps`` times after a warm-up."""
    values = [None] * plan.n_slots
    for slot, x in zip(step.inputs, inputs):
        values[slot] = x
    fwd, bwd = [], []
    for rep in range(reps + 1):
        t0 = clock()
        step.forward(values, True)
        t1 = clock()
        if need_dx is not None:
            step.backward([dy], need_dx)
        t2 = clock()
        if rep:
            fwd.append(t1 - t0)
            bwd.append(t2 - t1)
    return fwd, bwd


def _median(xs):
    return float(np.median(xs)) if xs else 0.0


def layer_breakdown(model, x, reps, rng):
    """Each step of the model's training plan on the batch ``x``, timed in step (the plan's
    whole forward pass, then its whole backward pass, ``reps`` times after a warm-up: each call
    finds the caches as the steps before it left them) and alone (each step's forward then
    its backward, repeated: how PyTorch's modules are timed). One row per step."""
    plan = training_plan(model)
    layers = model_layers(model)
    index = {id(l): i for i, l in enumerate(layers)}
    with StepClock(plan) as sc:
        for _ in range(reps + 1):                     # repetition 0 is a warm-up
            (out,) = plan.forward([x])
            dz = rng.standard_normal(np.shape(out)).astype(np.float32)
            plan.backward([dz])
    rows = []
    for k, step in enumerate(plan.steps):
        names = [l.name for l in step.layers]
        need = sc.need_dx[k]
        dy = rng.standard_normal(sc.out_shapes[k][0]).astype(np.float32)
        alone_fwd, alone_bwd = time_alone(plan, step, sc.inputs[k], need, dy, reps)
        logits = getattr(getattr(step, "ctx", None), "logits_only", False)
        mode = "not run" if need is None else \
            f"backward{' from logits' if logits else ''}(need_dx={need[0]})"
        rows.append({
            "name": " + ".join(names) + (" (fused)" if len(names) > 1 else ""),
            "arch": [index[id(l)] for l in step.layers], "backward": mode,
            "in_shape": list(np.shape(sc.inputs[k][0])), "out_shape": sc.out_shapes[k][0],
            "fwd": _median(sc.fwd[k][1:]), "bwd": _median(sc.bwd[k][1:]),
            "alone_fwd": _median(alone_fwd), "alone_bwd": _median(alone_bwd)})
    return rows
