"""Neural-network ops: 2-D convolution and pooling (NHWC, the C kernels of Conv2D and the
pooling layers) and the crossentropies as Keras 3's ``keras.ops`` defines them (probabilities
clipped to [1e-7, 1 - 1e-7]; with ``from_logits`` the stable log-sigmoid / log-softmax forms)."""
from __future__ import annotations

import numpy as np

from .. import _C
from ..layers import conv_utils
from .core import Op, unbroadcast

EPSILON = np.float32(1e-7)


def _c32(a) -> np.ndarray:
    return np.ascontiguousarray(a, dtype=np.float32)


class Conv(Op):
    """``conv(inputs, kernel, strides, padding)``: inputs (N, H, W, C), kernel
    (kh, kw, C, filters)."""
    op_name = "conv"

    def compute(self, ctx, x, w):
        x, w = _c32(x), _c32(w)
        if x.ndim != 4 or w.ndim != 4:
            raise ValueError(f"conv: pycnn supports 2-D convolutions: inputs of rank 4 (N, H, "
                             f"W, C) and a kernel of rank 4; got {x.shape} and {w.shape}")
        if w.shape[2] != x.shape[3]:
            raise ValueError(f"conv: the kernel's input channels {w.shape[2]} differ from the "
                             f"inputs' {x.shape[3]}")
        strides, padding = self.attrs["strides"], self.attrs["padding"]
        kernel = (w.shape[0], w.shape[1])
        oh, ow = conv_utils.spatial_output("conv", x.shape, kernel, strides, padding)
        pads = (conv_utils.pads(x.shape[1], kernel[0], strides[0], padding)[0],
                conv_utils.pads(x.shape[2], kernel[1], strides[1], padding)[0])
        y = ctx.buffer("y", (x.shape[0], oh, ow, w.shape[3]))
        _C.conv2d_forward(x, w, None, y, strides, pads)
        ctx.x, ctx.w, ctx.pads = x, w, pads
        return y

    def gradient(self, ctx, dy, need):
        dy = _c32(dy)
        dx = ctx.buffer("dx", ctx.x.shape) if need[0] else None
        dw = ctx.buffer("dw", ctx.w.shape)
        _C.conv2d_backward(ctx.x, ctx.w, dy, dx, dw, None, self.attrs["strides"], ctx.pads)
        return [dx, dw if need[1] else None]


class _Pool(Op):
    def _geometry(self, x):
        if x.ndim != 4:
            raise ValueError(f"{self.op_name}: pycnn pools 2-D inputs of rank 4 (N, H, W, C); "
                             f"got shape {x.shape}")
        size, strides, padding = (self.attrs["pool_size"], self.attrs["strides"],
                                  self.attrs["padding"])
        oh, ow = conv_utils.spatial_output(self.op_name, x.shape, size, strides, padding,
                                           "pool")
        pads = (conv_utils.pads(x.shape[1], size[0], strides[0], padding)[0],
                conv_utils.pads(x.shape[2], size[1], strides[1], padding)[0])
        return (x.shape[0], oh, ow, x.shape[3]), pads


class MaxPool(_Pool):
    op_name = "max_pool"

    def compute(self, ctx, x):
        x = _c32(x)
        shape, pads = self._geometry(x)
        y = ctx.buffer("y", shape)
        ctx.argmax = ctx.buffer("argmax", shape, np.int32)
        _C.maxpool2d_forward(x, y, ctx.argmax, self.attrs["pool_size"], self.attrs["strides"],
                             pads)
        ctx.x_shape = x.shape
        return y

    def gradient(self, ctx, dy, need):
        if not need[0]:
            return [None]
        dx = ctx.buffer("dx", ctx.x_shape)
        _C.maxpool2d_backward(_c32(dy), ctx.argmax, dx)
        return [dx]


class AveragePool(_Pool):
    op_name = "average_pool"

    def compute(self, ctx, x):
        x = _c32(x)
        shape, ctx.pads = self._geometry(x)
        y = ctx.buffer("y", shape)
        _C.avgpool2d_forward(x, y, self.attrs["pool_size"], self.attrs["strides"], ctx.pads)
        ctx.x_shape = x.shape
        return y

    def gradient(self, ctx, dy, need):
        if not need[0]:
            return [None]
        dx = ctx.buffer("dx", ctx.x_shape)
        _C.avgpool2d_backward(_c32(dy), dx, self.attrs["pool_size"], self.attrs["strides"],
                              ctx.pads)
        return [dx]


class BinaryCrossentropy(Op):
    """Keras 3's ``ops.binary_crossentropy(target, output, from_logits)``: elementwise."""
    op_name = "binary_crossentropy"

    def compute(self, ctx, t, o):
        t, o = t.astype(np.float32, copy=False), o.astype(np.float32, copy=False)
        ctx.t, ctx.o = t, o
        if self.attrs["from_logits"]:
            return np.maximum(o, 0) - o * t + np.log1p(np.exp(-np.abs(o)))
        p = np.clip(o, EPSILON, 1 - EPSILON)
        return -(t * np.log(p) + (1 - t) * np.log(1 - p))

    def gradient(self, ctx, dy, need):
        t, o = ctx.t, ctx.o
        dy = np.asarray(dy, np.float32)
        shape = np.broadcast_shapes(t.shape, o.shape)
        dt = do = None
        if self.attrs["from_logits"]:
            sig = 1 / (1 + np.exp(-o))
            if need[1]:
                do = dy * (sig - t)
            if need[0]:
                do_t = -o
                dt = dy * np.broadcast_to(do_t, shape)
        else:
            p = np.clip(o, EPSILON, 1 - EPSILON)
            inside = (o >= EPSILON) & (o <= 1 - EPSILON)
            if need[1]:
                do = dy * np.where(inside, -t / p + (1 - t) / (1 - p), 0)
            if need[0]:
                dt = dy * (-np.log(p) + np.log(1 - p))
        return [None if dt is None else unbroadcast(dt.astype(np.float32), t.shape),
                None if do is None else unbroadcast(do.astype(np.float32), o.shape)]


class CategoricalCrossentropy(Op):
    """Keras 3's ``ops.categorical_crossentropy(target, output, from_logits, axis)``: the
    output normalised to sum 1 and clipped, or log-softmax of logits; reduced over ``axis``."""
    op_name = "categorical_crossentropy"

    def compute(self, ctx, t, o):
        axis = self.attrs["axis"]
        if t.shape != o.shape:
            raise ValueError(f"Arguments `target` and `output` must have the same shape. "
                             f"Received: target.shape={t.shape}, output.shape={o.shape}")
        t, o = t.astype(np.float32, copy=False), o.astype(np.float32, copy=False)
        ctx.t, ctx.o = t, o
        if self.attrs["from_logits"]:
            z = o - np.max(o, axis=axis, keepdims=True)
            logp = z - np.log(np.sum(np.exp(z), axis=axis, keepdims=True))
            ctx.logp = logp
            return -np.sum(t * logp, axis=axis)
        s = np.sum(o, axis=axis, keepdims=True)
        q = o / s
        c = np.clip(q, EPSILON, 1 - EPSILON)
        ctx.s, ctx.q, ctx.c = s, q, c
        return -np.sum(t * np.log(c), axis=axis)

    def gradient(self, ctx, dy, need):
        axis = self.attrs["axis"]
        t, o = ctx.t, ctx.o
        dy = np.expand_dims(np.asarray(dy, np.float32), axis)
        dt = do = None
        if self.attrs["from_logits"]:
            if need[1]:
                p = np.exp(ctx.logp)
                do = dy * (p * np.sum(t, axis=axis, keepdims=True) - t)
            if need[0]:
                dt = -dy * ctx.logp
        else:
            s, q, c = ctx.s, ctx.q, ctx.c
            if need[1]:
                inside = (q >= EPSILON) & (q <= 1 - EPSILON)
                g = np.where(inside, -t / c, 0)                   # d loss / d q
                do = dy * (g / s - np.sum(g * o, axis=axis, keepdims=True) / (s * s))
            if need[0]:
                dt = -dy * np.log(c)
        return [None if dt is None else dt.astype(np.float32),
                None if do is None else do.astype(np.float32)]
