"""The compiled step plan: how a model's forward and backward passes run.

A model compiles its graph once per (training mode, which outputs stop at logits, fusion
rules) into a ``Plan``: the lowered layer calls (graph.py) in order, each a ``Step`` that owns
its per-call state (a ``Context``: saved tensors and the buffers it writes), pairs fused by the
named rules of fusion.py, and, for the backward pass, which input gradients each step must
produce (none towards the inputs or towards branches without trainable weights). This is the
only place that decides how a step runs: ``fit``, ``evaluate``, ``predict``, ``model(x)`` and
``benchmarks/`` all run plans.
"""
from __future__ import annotations

from typing import Optional, Sequence

import numpy as np

from ..layers.base import Layer, Variable
from ..layers.context import Context
from . import fusion
from .graph import Graph, lower


class Step:
    """One scheduled operation: reads value slots ``inputs``, writes slots ``outputs``."""

    inputs: list[int]
    outputs: list[int]
    layers: tuple[Layer, ...]

    def forward(self, values: list, training: bool) -> None:
        raise NotImplementedError

    def backward(self, douts: list, need_dx: list[bool]) -> list:
        raise NotImplementedError

    def trainable_variables(self) -> list[Variable]:
        return [v for layer in self.layers for v in layer.trainable_weights]

    def release(self) -> None:
        pass


class LayerStep(Step):
    """A layer call run by itself."""

    def __init__(self, layer: Layer, inputs: list[int], outputs: list[int],
                 training: Optional[bool], name: str):
        self.layer, self.layers = layer, (layer,)
        self.inputs, self.outputs = inputs, outputs
        self.training = training
        self.ctx = Context()
        self.name = name

    def forward(self, values, training):
        flag = training if self.training is None else self.training
        layer = self.layer
        if layer.multi_input:
            out = layer.forward(self.ctx, [values[i] for i in self.inputs], flag)
        else:
            out = layer.forward(self.ctx, values[self.inputs[0]], flag)
        outputs = self.outputs
        if len(outputs) == 1:
            values[outputs[0]] = out
        else:
            for slot, v in zip(self.outputs, out):
                values[slot] = v

    def backward(self, douts, need_dx):
        dy = douts[0] if len(douts) == 1 else douts
        if self.layer.multi_input:
            return list(self.layer.backward(self.ctx, dy, need_dx))
        return [self.layer.backward(self.ctx, dy, need_dx[0])]

    def release(self):
        self.ctx.release()


class Plan:
    """A graph compiled for one training mode.

    ``forward(xs)`` returns the outputs (arrays the plan may overwrite on its next run: copy
    what you keep); ``backward(douts)`` takes d loss / d output for each output (None for
    outputs without a loss), writes every trainable weight's gradient and returns the
    variables that received one.
    """

    def __init__(self, graph: Graph, training: bool, logits_outputs: Sequence[bool] = (),
                 fusions: Optional[dict] = None, input_grads: bool = False):
        self.training = training
        lowered = lower(graph, training)
        slot_of: dict = {}

        def slot(key) -> int:
            if key not in slot_of:
                slot_of[key] = len(slot_of)
            return slot_of[key]

        self.input_slots = [slot(k) for k in lowered.inputs]
        steps: list[Step] = []
        for call in lowered.calls:
            steps.append(LayerStep(call.layer, [slot(k) for k in call.inputs],
                                   [slot(k) for k in call.outputs], call.training,
                                   call.layer.name))
        self.output_slots = [slot(k) for k in lowered.outputs]
        self.n_slots = len(slot_of)
        logits = list(logits_outputs) + [False] * (len(self.output_slots) - len(logits_outputs))
        self.logits_outputs = [bool(v) for v in logits]
        self._mark_logits(steps)
        self.steps = fusion.apply(steps, self.output_slots, fusions, training)
        self._producer = {s: step for step in self.steps for s in step.outputs}
        self._activity = self._activity_terms(lowered.calls, slot_of)
        self.activity_penalty = 0.0
        self._analyse_gradients(input_grads)
        self._acc: dict[int, np.ndarray] = {}            # gradient sums of shared tensors
        self._grad_scratch: dict[tuple, np.ndarray] = {}  # second calls of shared layers

    # ---- compile-time analysis -----------------------------------------------------------
    def _mark_logits(self, steps: list[Step]) -> None:
        """The output layers whose loss takes their logits stop before their activation."""
        consumers = _consumers(steps)
        for i, want in enumerate(self.logits_outputs):
            if not want:
                continue
            slot = self.output_slots[i]
            step = next((s for s in steps if slot in s.outputs), None)
            ok = isinstance(step, LayerStep) and step.layer.supports_logits and \
                not consumers.get(slot) and self.output_slots.count(slot) == 1
            if ok:
                step.ctx.logits_only = True
            else:
                self.logits_outputs[i] = False

    @staticmethod
    def _activity_terms(calls, slot_of) -> list:
        """(slot, regularizer) for each output of a layer with an ``activity_regularizer``."""
        from .. import regularizers
        terms = []
        for call in calls:
            reg = getattr(call.layer, "activity_regularizer", None)
            if reg is not None:
                reg = regularizers.get(reg)
                terms += [(slot_of[k], reg) for k in call.outputs]
        return terms

    def output_activation(self, i: int) -> str:
        """The activation of the layer producing output ``i`` ("linear" when unknown)."""
        step = self._producer.get(self.output_slots[i])
        layer = getattr(step, "layer", None)
        return getattr(layer, "activation", "linear") if getattr(
            layer, "supports_logits", False) else "linear"

    def _analyse_gradients(self, input_grads: bool) -> None:
        needs = [False] * self.n_slots
        if input_grads:
            for s in self.input_slots:
                needs[s] = True
        self._trainable: list[bool] = []
        for step in self.steps:
            trainable = bool(step.trainable_variables())
            self._trainable.append(trainable)
            flows = trainable or any(needs[s] for s in step.inputs)
            for s in step.outputs:
                needs[s] = needs[s] or flows
        self._needs_grad = needs
        # the backward walk, decided once: per step (reversed), its trainable variables, which
        # input gradients it makes, and which of its variables another step may already have
        # written (a shared layer): only those are tracked while the pass runs
        count: dict[int, int] = {}
        for step in self.steps:
            for v in step.trainable_variables():
                count[id(v)] = count.get(id(v), 0) + 1
        self._backward_walk = []
        for step, trainable in zip(reversed(self.steps), reversed(self._trainable)):
            need = [needs[s] for s in step.inputs]
            if not trainable and not any(need):
                continue
            variables = step.trainable_variables()
            self._backward_walk.append(
                (step, need, variables, [v for v in variables if count[id(v)] > 1]))
        self._has_shared = any(shared for _, _, _, shared in self._backward_walk)

    @property
    def fused_pairs(self) -> list[tuple[Layer, ...]]:
        """The layer groups that run as one fused step."""
        return [step.layers for step in self.steps if len(step.layers) > 1]

    # ---- running -----------------------------------------------------------------------------
    def forward(self, xs: Sequence[np.ndarray]) -> list[np.ndarray]:
        values: list = [None] * self.n_slots
        for slot, x in zip(self.input_slots, xs):
            values[slot] = x
        training = self.training
        for step in self.steps:
            step.forward(values, training)
        if self._activity:
            # tf.keras 2: each activity penalty, divided by the batch size, joins the loss
            self._activity_values = [(s, reg, values[s]) for s, reg in self._activity]
            self.activity_penalty = sum(float(reg(v)) / len(v)
                                        for _, reg, v in self._activity_values)
        return [values[s] for s in self.output_slots]

    def backward(self, douts: Sequence[Optional[np.ndarray]],
                 return_input_grads: bool = False):
        grads: dict[int, np.ndarray] = {}
        for slot, g in zip(self.output_slots, douts):
            if g is not None:
                self._accumulate(grads, slot, g)
        for slot, reg, v in getattr(self, "_activity_values", ()):
            self._accumulate(grads, slot, (reg.gradient(v) / np.float32(len(v))).astype(
                np.float32).reshape(v.shape))
        reached: list[Variable] = []
        seen: set[int] = set()          # shared variables already written in this pass
        has_shared = self._has_shared
        for step, need, variables, shared_vars in self._backward_walk:
            outs = step.outputs
            if len(outs) == 1:
                g = grads.pop(outs[0], None)
                if g is None:
                    continue
                douts_step = [g]
            else:
                douts_step = [grads.pop(s, None) for s in outs]
                if all(g is None for g in douts_step):
                    continue
                douts_step = [np.zeros_like(self._shape_ref(step, i)) if g is None else g
                              for i, g in enumerate(douts_step)]
            if shared_vars:
                dxs = self._backward_shared(step, douts_step, need, shared_vars, seen)
            else:
                dxs = step.backward(douts_step, need)
            if not has_shared:          # no variable is written twice: all are new
                reached += variables
            else:
                reached.extend(v for v in variables if id(v) not in seen)
            if shared_vars:
                seen.update(id(v) for v in shared_vars)
            for slot, dx, n in zip(step.inputs, dxs, need):
                if n and dx is not None:
                    self._accumulate(grads, slot, dx)
        if return_input_grads:
            return reached, [grads.get(s) for s in self.input_slots]
        return reached

    def _backward_shared(self, step: Step, douts: list, need: list, shared_vars: list,
                         seen: set) -> list:
        """A step whose layer another step also ran: when that step already wrote the
        gradients of this pass, this one writes into scratch and adds them in."""
        written = [v for v in shared_vars if id(v) in seen]
        saved = [v.grad for v in written]
        for v in written:
            key = (id(step), id(v))
            buf = self._grad_scratch.get(key)
            if buf is None or buf.shape != v.grad.shape:
                buf = self._grad_scratch[key] = np.empty_like(v.grad)
            v.grad = buf
        try:
            return step.backward(douts, need)
        finally:
            for v, g in zip(written, saved):
                np.add(g, v.grad, out=g)
                v.grad = g

    def _shape_ref(self, step: Step, i: int) -> np.ndarray:
        raise ValueError(f"Layer(s) {[l.name for l in step.layers]}: an output without a "
                         "gradient next to one with a gradient is not supported")

    def _accumulate(self, grads: dict, slot: int, g: np.ndarray) -> None:
        prev = grads.get(slot)
        if prev is None:
            grads[slot] = g
            return
        buf = self._acc.get(slot)
        if prev is buf:                 # already the plan's own sum: add in place
            np.add(buf, g.reshape(buf.shape), out=buf)
            return
        if buf is None or buf.shape != prev.shape or buf is g:
            buf = self._acc[slot] = np.empty(prev.shape, np.float32)
        np.add(prev, g.reshape(prev.shape), out=buf)
        grads[slot] = buf

    def release(self) -> None:
        """Drop every reference to the last batch (the caller's arrays among them)."""
        for step in self.steps:
            step.release()
        self._activity_values = []


def _consumers(steps: Sequence[Step]) -> dict[int, list[Step]]:
    out: dict[int, list[Step]] = {}
    for step in steps:
        for s in step.inputs:
            out.setdefault(s, []).append(step)
    return out
