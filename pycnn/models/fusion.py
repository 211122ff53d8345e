"""Fusion rules of the compiled plan: small, named rewrites of the step list.

Each rule finds a pattern of layer steps and replaces it by one step that computes the same
numbers with fewer passes over memory. The plan applies the enabled rules (all by default);
switching one off (``Plan(..., fusions={"conv_maxpool": False})``, or
``model.set_fusion("conv_maxpool", False)``) runs the layers apart, which is how the tests prove
each rule exact.

Rules:
- ``conv_maxpool``: a ``Conv2D`` (linear or relu) whose output feeds only a ``MaxPooling2D``
  runs with it as one C call that pools each chunk of the convolution's output while it is in
  cache (the convolution's output is never stored; the backward pass multiplies only the
  pooled cells' gradients).

- ``bn_maxpool``: a ``BatchNormalization`` feeding only a ``MaxPooling2D`` (strides = pool
  size), with the relu ``Conv2D`` before it when nothing else reads that convolution, as one
  step that never stores the normalized map (models/fusion_bn.py).

- ``bn_fold`` (inference plans only): a ``Conv2D`` or ``Dense`` without activation whose
  output feeds only a ``BatchNormalization`` over its channels runs as one call with the
  normalization folded into its kernel and bias (``BatchNormalization.fold_into``: the moving
  statistics, recomputed at every batch so weight changes are seen). Equal to the two layers
  apart up to float32 rounding (the folded kernel is computed in float64).

The other fused pairs are decided where they are cheaper to express: bias + relu inside the
GEMM's epilogue (the layer asks for ``activation="relu"``), and softmax (or sigmoid) into the
loss through ``Context.logits_only``, which the plan sets on an output layer when its loss
takes logits.
"""
from __future__ import annotations

from typing import Callable, Optional, Sequence

import numpy as np

from .. import _C
from ..layers import conv_utils
from ..layers.context import Context
from ..layers.convolutional import Conv2D
from ..layers.pooling import MaxPooling2D

RULES: dict[str, Callable] = {}


def rule(name: str):
    def register(fn):
        RULES[name] = fn
        return fn
    return register


def apply(steps: list, output_slots: Sequence[int], enabled: Optional[dict] = None,
          training: bool = True) -> list:
    """The steps with every enabled rule applied, in the order the rules were registered."""
    enabled = enabled or {}
    for name, fn in RULES.items():
        if enabled.get(name, True) and (training is False or name not in INFERENCE_ONLY):
            steps = fn(steps, set(output_slots))
    return steps


#: Rules that change a plan's numbers within rounding: never applied to a training plan.
INFERENCE_ONLY = {"bn_fold"}


class ConvMaxPoolStep:
    """``pool(conv(x))`` as one call (see the module's ``conv_maxpool`` rule)."""

    def __init__(self, conv_step, pool_step):
        self.conv, self.pool = conv_step.layer, pool_step.layer
        self.layers = (self.conv, self.pool)
        self.inputs, self.outputs = conv_step.inputs, pool_step.outputs
        self.ctx = Context()
        self.name = f"{self.conv.name}+{self.pool.name}"

    def trainable_variables(self):
        return [v for layer in self.layers for v in layer.trainable_weights]

    def _geometry(self, x_shape):
        conv, pool = self.conv, self.pool
        n, h, w, _ = x_shape
        ch, cw = conv_utils.spatial_output(conv.name, x_shape, conv.kernel_size, conv.strides,
                                           conv.padding, "kernel")
        conv_pads = (conv_utils.pads(h, conv.kernel_size[0], conv.strides[0], conv.padding)[0],
                     conv_utils.pads(w, conv.kernel_size[1], conv.strides[1], conv.padding)[0])
        conv_shape = (n, ch, cw, conv.filters)
        ph, pw = conv_utils.spatial_output(pool.name, conv_shape, pool.pool_size, pool.strides,
                                           pool.padding, "pool")
        pool_pads = (conv_utils.pads(ch, pool.pool_size[0], pool.strides[0], pool.padding)[0],
                     conv_utils.pads(cw, pool.pool_size[1], pool.strides[1], pool.padding)[0])
        return conv_pads, (ch, cw), (n, ph, pw, conv.filters), pool_pads

    def _cached_geometry(self, x_shape):
        """_geometry and the pooling arguments, computed once per input shape and layer
        configuration (the training step's Python is on every batch's path)."""
        conv, pool = self.conv, self.pool
        key = (x_shape, conv.kernel_size, conv.strides, conv.padding, pool.pool_size,
               pool.strides, pool.padding)
        cached = self.__dict__.get("_geo")
        if cached is None or cached[0] != key:
            conv_pads, conv_hw, pooled_shape, pool_pads = self._geometry(x_shape)
            pooling = dict(conv_hw=conv_hw, pool=pool.pool_size, pool_strides=pool.strides,
                           pool_pads=pool_pads)
            cached = self._geo = (key, conv_pads, pooled_shape, pooling)
        return cached[1:]

    def forward(self, values, training):
        x = values[self.inputs[0]]
        ctx, conv = self.ctx, self.conv
        conv_pads, pooled_shape, pooling = self._cached_geometry(x.shape)
        y = ctx.buffer("y", pooled_shape)
        argmax = ctx.buffer("argmax", pooled_shape, np.int32)
        ctx.pooling = dict(pooling)
        _C.conv2d_maxpool_forward(x=x, w=conv.kernel.value,
                                  b=conv.bias.value if conv.bias else None, y=y, argmax=argmax,
                                  strides=conv.strides, pads=conv_pads, **ctx.pooling,
                                  activation=conv._fused)
        ctx.x, ctx.y, ctx.argmax, ctx.conv_pads = x, y, argmax, conv_pads
        values[self.outputs[0]] = y

    def backward(self, douts, need_dx):
        ctx, conv = self.ctx, self.conv
        dy = np.ascontiguousarray(douts[0], dtype=np.float32).reshape(ctx.y.shape)
        dx = ctx.buffer("dx", ctx.x.shape) if need_dx[0] else None
        _C.conv2d_maxpool_backward(
            x=ctx.x, w=conv.kernel.value, dy=dy, argmax=ctx.argmax, dx=dx, dw=conv.kernel.grad,
            db=conv.bias.grad if conv.bias else None, strides=conv.strides, pads=ctx.conv_pads,
            **ctx.pooling, y=ctx.y if conv.activation == "relu" else None)
        return [dx]

    def release(self):
        self.ctx.release()


def consumers_of(steps: list) -> dict:
    """{id of a value: the steps reading it, in order}."""
    consumers: dict[int, list] = {}
    for step in steps:
        for s in step.inputs:
            consumers.setdefault(s, []).append(step)
    return consumers


def sole_user(step, consumers: dict, outputs: set):
    """The one step that reads ``step``'s output when nothing else does (no other step, not a
    model output), else None: the condition for fusing the two."""
    out = step.outputs[0]
    users = consumers.get(out, [])
    return users[0] if out not in outputs and len(users) == 1 else None


@rule("conv_maxpool")
def fuse_conv_maxpool(steps: list, outputs: set) -> list:
    from .plan import LayerStep
    consumers = consumers_of(steps)
    fused: dict[int, object] = {}       # id(conv step) -> fused step
    dropped: set[int] = set()           # id(pool step)
    for step in steps:
        if not (isinstance(step, LayerStep) and type(step.layer) is Conv2D and
                step.layer.activation in ("linear", "relu") and not step.ctx.logits_only and
                tuple(step.layer.dilation_rate) == (1, 1) and step.layer.groups == 1):
            continue
        out, pool = step.outputs[0], sole_user(step, consumers, outputs)
        if pool is None:
            continue
        if isinstance(pool, LayerStep) and type(pool.layer) is MaxPooling2D and \
                pool.inputs == [out] and id(pool) not in dropped:
            fused[id(step)] = ConvMaxPoolStep(step, pool)
            dropped.add(id(pool))
    return [fused.get(id(s), s) for s in steps if id(s) not in dropped]


class FoldedBatchNormStep:
    """``bn(layer(x))`` at inference as one call of ``layer`` with BN folded in."""

    def __init__(self, layer_step, bn_step):
        self.layer, self.bn = layer_step.layer, bn_step.layer
        self.layers = (self.layer, self.bn)
        self.inputs, self.outputs = layer_step.inputs, bn_step.outputs
        self.ctx = Context()
        self.name = f"{self.layer.name}+{self.bn.name}"

    def trainable_variables(self):
        return []           # an inference plan has no backward pass

    def forward(self, values, training):
        layer, ctx = self.layer, self.ctx
        x = values[self.inputs[0]]
        bias = layer.bias.value if layer.bias is not None else None
        kernel, bias = self.bn.fold_into(layer.kernel.value, bias)
        if isinstance(layer, Conv2D):
            out_shape, pads = layer._geometry(x.shape)
            y = ctx.buffer("y", out_shape)
            _C.conv2d_forward(x, kernel, bias, y, layer.strides, pads, activation="linear")
        else:
            x2 = x.reshape(-1, kernel.shape[0])
            y = ctx.buffer("y", (x2.shape[0], kernel.shape[1]))
            _C.dense_forward(x2, kernel, bias, y, activation="linear")
            y = y.reshape(x.shape[:-1] + (kernel.shape[1],))
        values[self.outputs[0]] = y

    def backward(self, douts, need_dx):
        raise RuntimeError("a folded BatchNormalization step belongs to an inference plan")

    def release(self):
        self.ctx.release()


@rule("bn_fold")
def fold_batch_norm(steps: list, outputs: set) -> list:
    from ..layers.core import Dense
    from ..layers.normalization import BatchNormalization
    from .plan import LayerStep
    consumers = consumers_of(steps)
    fused: dict[int, object] = {}
    dropped: set[int] = set()
    for step in steps:
        layer = getattr(step, "layer", None)
        if not (isinstance(step, LayerStep) and type(layer) in (Conv2D, Dense) and
                layer.activation == "linear" and not step.ctx.logits_only):
            continue
        if type(layer) is Conv2D and (tuple(layer.dilation_rate) != (1, 1) or
                                      layer.groups != 1):
            continue
        out, bn = step.outputs[0], sole_user(step, consumers, outputs)
        if bn is None:
            continue
        bn_layer = getattr(bn, "layer", None)
        if isinstance(bn, LayerStep) and type(bn_layer) is BatchNormalization and \
                bn.inputs == [out] and bn.training is not True and \
                _last_axis(bn_layer) and id(bn) not in dropped:
            fused[id(step)] = FoldedBatchNormStep(step, bn)
            dropped.add(id(bn))
    return [fused.get(id(s), s) for s in steps if id(s) not in dropped]


def _last_axis(bn) -> bool:
    """Whether a BatchNormalization normalizes the last axis (the channels a kernel makes)."""
    ndim = getattr(bn.input_spec, "ndim", None)
    return bn.axis == -1 or (ndim is not None and bn.axis == ndim - 1)


from . import fusion_bn  # noqa: E402,F401  (registers bn_maxpool)
