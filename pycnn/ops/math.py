"""Elementwise, reduction and matrix ops with their gradients (NumPy broadcasting; the
gradient of a broadcast input is summed over the broadcast axes). Activations run the C
kernels of ``csrc/activations.c``; 2-D matrix products run the C GEMM."""
from __future__ import annotations

from typing import Optional

import numpy as np

from .. import _C
from .core import Op, unbroadcast


def _fl(a: np.ndarray) -> np.ndarray:
    return a if a.dtype == np.float32 else a.astype(np.float32)


def _c32(a) -> np.ndarray:
    return np.ascontiguousarray(a, dtype=np.float32)


# ---- binary elementwise ----------------------------------------------------------------------
class _Binary(Op):
    def compute(self, ctx, a, b):
        a, b = _fl(a), _fl(b)
        ctx.a, ctx.b = a, b
        return self.fn(a, b)

    def gradient(self, ctx, dy, need):
        a, b = ctx.a, ctx.b
        ga, gb = self.partials(ctx, np.asarray(dy, np.float32), need)
        return [unbroadcast(ga, a.shape) if need[0] and ga is not None else None,
                unbroadcast(gb, b.shape) if need[1] and gb is not None else None]


class Add(_Binary):
    op_name = "add"
    fn = staticmethod(np.add)

    def partials(self, ctx, dy, need):
        return dy, dy


class Subtract(_Binary):
    op_name = "subtract"
    fn = staticmethod(np.subtract)

    def partials(self, ctx, dy, need):
        return dy, (-dy if need[1] else None)


class Multiply(_Binary):
    op_name = "multiply"
    fn = staticmethod(np.multiply)

    def partials(self, ctx, dy, need):
        return (dy * ctx.b if need[0] else None), (dy * ctx.a if need[1] else None)


class Divide(_Binary):
    op_name = "divide"
    fn = staticmethod(np.divide)

    def partials(self, ctx, dy, need):
        a, b = ctx.a, ctx.b
        return (dy / b if need[0] else None), (-dy * a / (b * b) if need[1] else None)


class Power(_Binary):
    op_name = "power"
    fn = staticmethod(np.power)

    def partials(self, ctx, dy, need):
        a, b = ctx.a, ctx.b
        ga = dy * b * np.power(a, b - 1) if need[0] else None
        gb = None
        if need[1]:
            with np.errstate(divide="ignore", invalid="ignore"):
                la = np.where(a > 0, np.log(np.where(a > 0, a, 1)), 0).astype(np.float32)
            gb = dy * np.power(a, b) * la
        return ga, gb


class Maximum(_Binary):
    """The gradient goes to ``a`` where ``a >= b`` (ties to the first), as TensorFlow."""
    op_name = "maximum"
    fn = staticmethod(np.maximum)

    def partials(self, ctx, dy, need):
        m = ctx.a >= ctx.b
        return (np.where(m, dy, 0).astype(np.float32) if need[0] else None,
                np.where(m, 0, dy).astype(np.float32) if need[1] else None)


class Minimum(_Binary):
    """The gradient goes to ``a`` where ``a <= b`` (ties to the first), as TensorFlow."""
    op_name = "minimum"
    fn = staticmethod(np.minimum)

    def partials(self, ctx, dy, need):
        m = ctx.a <= ctx.b
        return (np.where(m, dy, 0).astype(np.float32) if need[0] else None,
                np.where(m, 0, dy).astype(np.float32) if need[1] else None)


class Where(Op):
    op_name = "where"

    def compute(self, ctx, cond, a, b):
        ctx.cond = cond.astype(bool)
        ctx.shapes = (a.shape, b.shape)
        return np.where(ctx.cond, _fl(a), _fl(b))

    def gradient(self, ctx, dy, need):
        dy = np.asarray(dy, np.float32)
        zero = np.float32(0)
        return [None,
                unbroadcast(np.where(ctx.cond, dy, zero), ctx.shapes[0]) if need[1] else None,
                unbroadcast(np.where(ctx.cond, zero, dy), ctx.shapes[1]) if need[2] else None]


# ---- unary elementwise -----------------------------------------------------------------------
class _Unary(Op):
    def gradient(self, ctx, dy, need):
        if not need[0]:
            return [None]
        return [self.partial(ctx, np.asarray(dy, np.float32))]


class Negative(_Unary):
    op_name = "negative"

    def compute(self, ctx, x):
        return np.negative(_fl(x))

    def partial(self, ctx, dy):
        return -dy


class Exp(_Unary):
    op_name = "exp"

    def compute(self, ctx, x):
        ctx.y = np.exp(_fl(x))
        return ctx.y

    def partial(self, ctx, dy):
        return dy * ctx.y


class Log(_Unary):
    op_name = "log"

    def compute(self, ctx, x):
        ctx.x = _fl(x)
        return np.log(ctx.x)

    def partial(self, ctx, dy):
        return dy / ctx.x


class Sqrt(_Unary):
    op_name = "sqrt"

    def compute(self, ctx, x):
        ctx.y = np.sqrt(_fl(x))
        return ctx.y

    def partial(self, ctx, dy):
        return dy * np.float32(0.5) / ctx.y


class Square(_Unary):
    op_name = "square"

    def compute(self, ctx, x):
        ctx.x = _fl(x)
        return np.square(ctx.x)

    def partial(self, ctx, dy):
        return dy * np.float32(2) * ctx.x


class Abs(_Unary):
    op_name = "abs"

    def compute(self, ctx, x):
        ctx.x = _fl(x)
        return np.abs(ctx.x)

    def partial(self, ctx, dy):
        return dy * np.sign(ctx.x)


class Clip(_Unary):
    """``clip(x, x_min, x_max)``: the gradient passes where ``x_min <= x <= x_max``."""
    op_name = "clip"

    def compute(self, ctx, x):
        ctx.x = _fl(x)
        return np.clip(ctx.x, np.float32(self.attrs["x_min"]), np.float32(self.attrs["x_max"]))

    def partial(self, ctx, dy):
        x = ctx.x
        inside = (x >= np.float32(self.attrs["x_min"])) & (x <= np.float32(self.attrs["x_max"]))
        return np.where(inside, dy, np.float32(0))


class _Activation(_Unary):
    """relu, sigmoid, tanh with the C kernels (``_C.activation_forward/backward``)."""

    def compute(self, ctx, x):
        x = _c32(x)
        y = ctx.buffer("y", x.shape)
        _C.activation_forward(self.op_name, x, y)
        ctx.y = y
        return y

    def partial(self, ctx, dy):
        dx = ctx.buffer("dx", ctx.y.shape)
        _C.activation_backward(self.op_name, ctx.y, _c32(dy).reshape(ctx.y.shape), dx)
        return dx


class Relu(_Activation):
    op_name = "relu"


class Sigmoid(_Activation):
    op_name = "sigmoid"


class Tanh(_Activation):
    op_name = "tanh"


class Softmax(_Unary):
    op_name = "softmax"

    def compute(self, ctx, x):
        axis = self.attrs["axis"]
        x = _fl(x)
        e = np.exp(x - np.max(x, axis=axis, keepdims=True))
        ctx.y = e / np.sum(e, axis=axis, keepdims=True)
        return ctx.y

    def partial(self, ctx, dy):
        y = ctx.y
        return y * (dy - np.sum(dy * y, axis=self.attrs["axis"], keepdims=True))


class LogSoftmax(_Unary):
    op_name = "log_softmax"

    def compute(self, ctx, x):
        axis = self.attrs["axis"]
        x = _fl(x)
        z = x - np.max(x, axis=axis, keepdims=True)
        y = z - np.log(np.sum(np.exp(z), axis=axis, keepdims=True))
        ctx.y = y
        return y

    def partial(self, ctx, dy):
        return dy - np.exp(ctx.y) * np.sum(dy, axis=self.attrs["axis"], keepdims=True)


# ---- reductions ------------------------------------------------------------------------------
def _axes(axis, ndim: int) -> tuple:
    if axis is None:
        return tuple(range(ndim))
    axes = axis if isinstance(axis, (tuple, list)) else (axis,)
    out = []
    for a in axes:
        if isinstance(a, bool) or not isinstance(a, (int, np.integer)):
            raise TypeError(f"`axis` must be an integer or a tuple of integers. Received: "
                            f"axis={axis!r}")
        if not -ndim <= a < max(ndim, 1):
            raise ValueError(f"axis {a} is out of bounds for a tensor of rank {ndim}")
        out.append(int(a) % max(ndim, 1))
    return tuple(sorted(set(out)))


class _Reduce(_Unary):
    def compute(self, ctx, x):
        x = _fl(x)
        ctx.x_shape = x.shape
        ctx.axes = _axes(self.attrs["axis"], x.ndim)
        return self.reduce(ctx, x, ctx.axes)

    def _expand(self, ctx, a):
        """``a`` (a reduced result) with the reduced axes back as size 1."""
        if self.attrs["keepdims"]:
            return a
        shape = list(ctx.x_shape)
        for ax in ctx.axes:
            shape[ax] = 1
        return np.reshape(a, shape)


class Sum(_Reduce):
    op_name = "sum"

    def reduce(self, ctx, x, axes):
        return np.sum(x, axis=axes, keepdims=self.attrs["keepdims"])

    def partial(self, ctx, dy):
        return np.broadcast_to(self._expand(ctx, dy), ctx.x_shape).astype(np.float32)


class Mean(_Reduce):
    op_name = "mean"

    def reduce(self, ctx, x, axes):
        ctx.n = int(np.prod([ctx.x_shape[a] for a in axes])) if axes else 1
        return np.mean(x, axis=axes, keepdims=self.attrs["keepdims"], dtype=np.float32)

    def partial(self, ctx, dy):
        g = self._expand(ctx, dy) / np.float32(max(ctx.n, 1))
        return np.broadcast_to(g, ctx.x_shape).astype(np.float32)


class Max(_Reduce):
    """The gradient is shared equally by the maxima (TensorFlow's rule)."""
    op_name = "max"
    fn = staticmethod(np.max)

    def reduce(self, ctx, x, axes):
        y = self.fn(x, axis=axes, keepdims=True)
        ctx.hit = (x == y).astype(np.float32)
        ctx.count = np.sum(ctx.hit, axis=axes, keepdims=True)
        return y if self.attrs["keepdims"] else np.squeeze(y, axis=axes)

    def partial(self, ctx, dy):
        return ctx.hit * (self._expand(ctx, dy) / ctx.count)


class Min(Max):
    op_name = "min"
    fn = staticmethod(np.min)


class ArgMax(Op):
    op_name = "argmax"
    out_dtype = "int32"

    def compute(self, ctx, x):
        return np.argmax(x, axis=self.attrs["axis"],
                         keepdims=self.attrs["keepdims"]).astype(np.int32)


class ArgMin(ArgMax):
    op_name = "argmin"

    def compute(self, ctx, x):
        return np.argmin(x, axis=self.attrs["axis"],
                         keepdims=self.attrs["keepdims"]).astype(np.int32)


# ---- matrix products -----------------------------------------------------------------------
class MatMul(Op):
    """``matmul(a, b)`` as NumPy's (batched over leading axes, vectors promoted); the 2-D case
    forward and backward with the C GEMM."""
    op_name = "matmul"

    def compute(self, ctx, a, b):
        a, b = _fl(a), _fl(b)
        if a.ndim == 0 or b.ndim == 0:
            raise ValueError("matmul: inputs must have rank >= 1 (use ops.multiply for "
                             "scalars)")
        ctx.a_shape, ctx.b_shape = a.shape, b.shape
        a2 = a[None, :] if a.ndim == 1 else a
        b2 = b[:, None] if b.ndim == 1 else b
        if a2.shape[-1] != b2.shape[-2]:
            raise ValueError(f"matmul: inner dimensions differ: {a.shape} @ {b.shape}")
        ctx.a2, ctx.b2 = a2, b2
        if a2.ndim == 2 and b2.ndim == 2 and a2.size and b2.size:
            a2c, b2c = _c32(a2), _c32(b2)
            ctx.a2, ctx.b2 = a2c, b2c
            y = ctx.buffer("y", (a2.shape[0], b2.shape[1]))
            _C.gemm(a2c, b2c, y)
        else:
            y = np.matmul(a2, b2)
        ctx.y_shape = y.shape
        if a.ndim == 1:
            y = y[..., 0, :]
        if b.ndim == 1:
            y = y[..., 0]
        return y

    def gradient(self, ctx, dy, need):
        a2, b2 = ctx.a2, ctx.b2
        dy = np.asarray(dy, np.float32).reshape(ctx.y_shape)
        ga = gb = None
        if a2.ndim == 2 and b2.ndim == 2 and a2.size and b2.size:
            dy = _c32(dy)
            if need[0]:
                ga = ctx.buffer("da", a2.shape)
                _C.gemm(dy, b2, ga, trans_b=True)
            if need[1]:
                gb = ctx.buffer("db", b2.shape)
                _C.gemm(a2, dy, gb, trans_a=True)
        else:
            if need[0]:
                ga = unbroadcast(np.matmul(dy, np.swapaxes(b2, -1, -2)), a2.shape)
            if need[1]:
                gb = unbroadcast(np.matmul(np.swapaxes(a2, -1, -2), dy), b2.shape)
        return [None if ga is None else ga.reshape(ctx.a_shape),
                None if gb is None else gb.reshape(ctx.b_shape)]


class Dot(MatMul):
    """``dot(a, b)`` as NumPy's for ``b`` of rank <= 2 (the last axis of ``a`` with the first
    of ``b``); scalars multiply."""
    op_name = "dot"

    def compute(self, ctx, a, b):
        if a.ndim == 0 or b.ndim == 0:
            ctx.scalar = True
            ctx.a, ctx.b = _fl(a), _fl(b)
            return np.multiply(ctx.a, ctx.b)
        ctx.scalar = False
        if b.ndim > 2:
            raise ValueError("pycnn's ops.dot supports a second argument of rank <= 2; use "
                             "ops.matmul or ops.tensordot-style reshapes for more")
        return super().compute(ctx, a, b)

    def gradient(self, ctx, dy, need):
        if ctx.scalar:
            dy = np.asarray(dy, np.float32)
            return [unbroadcast(dy * ctx.b, ctx.a.shape) if need[0] else None,
                    unbroadcast(dy * ctx.a, ctx.b.shape) if need[1] else None]
        return super().gradient(ctx, dy, need)


def reduction_attrs(axis, keepdims) -> dict:
    if axis is not None and not isinstance(axis, (int, np.integer, tuple, list)) or \
            isinstance(axis, bool):
        raise TypeError(f"`axis` must be None, an integer or a tuple of integers. Received: "
                        f"axis={axis!r}")
    if isinstance(axis, list):
        axis = tuple(axis)
    return {"axis": None if axis is None else (int(axis) if not isinstance(axis, tuple)
                                               else tuple(int(a) for a in axis)),
            "keepdims": bool(keepdims)}


def scalar_attr(value, name: str) -> Optional[float]:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(f"`{name}` must be a number. Received: {name}={value!r}")
    return float(value)

