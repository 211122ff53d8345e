"""The ``bn_maxpool`` fusion rule (registered by models/fusion.py).

A ``BatchNormalization`` over the channels of a 4-D tensor whose output feeds only a
``MaxPooling2D`` with strides equal to its pool size runs with it as one C call
(``BatchNormalization.forward_maxpool``): the normalized map is never stored, and the backward
pass rebuilds the pool's gradient row by row while it sums and applies the normalization's.
When the normalization's input is the output of a relu ``Conv2D`` read by nothing else, that
convolution joins the step and the relu's mask is applied by the same pass (``x > 0``, ``x``
the normalization's input), so the convolution's backward reads a masked gradient. Every
number (outputs, argmax, moving statistics, gradients) equals the layers' apart, bit for bit.
"""
from __future__ import annotations

from ..layers.context import Context
from ..layers.convolutional import Conv2D
from ..layers.normalization import BatchNormalization
from ..layers.pooling import MaxPooling2D
from .fusion import consumers_of, rule, sole_user


class BatchNormMaxPoolStep:
    """``pool(bn(x))``, or ``pool(bn(relu_conv(x)))`` with ``conv_step``, as one step."""

    def __init__(self, conv_step, bn_step, pool_step):
        self.conv_step = conv_step
        self.bn, self.pool = bn_step.layer, pool_step.layer
        self.bn_training = bn_step.training
        self.layers = ((conv_step.layer,) if conv_step else ()) + (self.bn, self.pool)
        self.inputs = conv_step.inputs if conv_step else bn_step.inputs
        self.bn_input = bn_step.inputs[0]
        self.outputs = pool_step.outputs
        self.ctx = Context()
        self.name = "+".join(layer.name for layer in self.layers)

    def trainable_variables(self):
        return [v for layer in self.layers for v in layer.trainable_weights]

    def forward(self, values, training):
        if self.conv_step is not None:
            self.conv_step.forward(values, training)
        flag = training if self.bn_training is None else self.bn_training
        values[self.outputs[0]] = self.bn.forward_maxpool(self.ctx, values[self.bn_input],
                                                          self.pool, flag)

    def backward(self, douts, need_dx):
        conv_step = self.conv_step
        if conv_step is None:
            return [self.bn.backward_maxpool(self.ctx, douts[0], need_dx[0])]
        # the relu's gradient, masked by the fused pass: the convolution's own backward without
        # its mask (Conv2D.backward with y=None)
        g = self.bn.backward_maxpool(self.ctx, douts[0], True, relu=True)
        conv, cctx = conv_step.layer, conv_step.ctx
        from .. import _C
        dx = cctx.buffer("dx", cctx.x.shape) if need_dx[0] else None
        _C.conv2d_backward(cctx.x, conv.kernel.value, g, dx, conv.kernel.grad,
                           conv.bias.grad if conv.bias else None, conv.strides, cctx.pads,
                           y=None)
        return [dx]

    def release(self):
        self.ctx.release()
        if self.conv_step is not None:
            self.conv_step.release()


def _plain(layer) -> bool:
    return getattr(layer, "activity_regularizer", None) is None


@rule("bn_maxpool")
def fuse_bn_maxpool(steps: list, outputs: set) -> list:
    from .plan import LayerStep
    consumers = consumers_of(steps)
    producer = {s: step for step in steps for s in step.outputs}
    replace: dict[int, object] = {}     # id(pool step) -> fused step
    dropped: set[int] = set()           # id(bn step), id(conv step)
    for step in steps:
        bn = getattr(step, "layer", None)
        if not (isinstance(step, LayerStep) and type(bn) is BatchNormalization and bn.built and
                bn.axis in (-1, 3) and len(step.inputs) == 1 and _plain(bn)):
            continue
        out, pool = step.outputs[0], sole_user(step, consumers, outputs)
        if pool is None:
            continue
        if not (isinstance(pool, LayerStep) and type(pool.layer) is MaxPooling2D and
                pool.inputs == [out] and tuple(pool.layer.strides) ==
                tuple(pool.layer.pool_size) and id(pool) not in replace):
            continue
        conv = producer.get(step.inputs[0])
        src = step.inputs[0]
        if not (isinstance(conv, LayerStep) and type(conv.layer) is Conv2D and
                conv.layer.activation == "relu" and not conv.ctx.logits_only and
                not conv.layer._general and _plain(conv.layer) and src not in outputs and
                len(consumers.get(src, [])) == 1 and conv.outputs == [src] and
                id(conv) not in dropped):
            conv = None
        replace[id(pool)] = BatchNormMaxPoolStep(conv, step, pool)
        dropped.add(id(step))
        if conv is not None:
            dropped.add(id(conv))
    return [replace.get(id(s), s) for s in steps if id(s) not in dropped]
