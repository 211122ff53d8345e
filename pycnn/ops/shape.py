"""Ops that move values without arithmetic: reshape, transpose, expand_dims, squeeze,
concatenate, stack, slicing, cast, one_hot."""
from __future__ import annotations

import numpy as np

from .core import Op


class Reshape(Op):
    op_name = "reshape"
    out_dtype = None

    def compute(self, ctx, x):
        ctx.x_shape = x.shape
        return np.reshape(x, self.attrs["newshape"])

    def gradient(self, ctx, dy, need):
        return [np.reshape(dy, ctx.x_shape) if need[0] else None]


class Transpose(Op):
    op_name = "transpose"
    out_dtype = None

    def compute(self, ctx, x):
        axes = self.attrs["axes"]
        ctx.axes = tuple(range(x.ndim))[::-1] if axes is None else \
            tuple(int(a) % x.ndim for a in axes)
        return np.transpose(x, ctx.axes)

    def gradient(self, ctx, dy, need):
        return [np.transpose(dy, np.argsort(ctx.axes)) if need[0] else None]


class ExpandDims(Op):
    op_name = "expand_dims"
    out_dtype = None

    def compute(self, ctx, x):
        ctx.x_shape = x.shape
        return np.expand_dims(x, self.attrs["axis"])

    def gradient(self, ctx, dy, need):
        return [np.reshape(dy, ctx.x_shape) if need[0] else None]


class Squeeze(ExpandDims):
    op_name = "squeeze"

    def compute(self, ctx, x):
        ctx.x_shape = x.shape
        return np.squeeze(x, self.attrs["axis"])


class Concatenate(Op):
    op_name = "concatenate"
    out_dtype = None

    def compute(self, ctx, *xs):
        axis = self.attrs["axis"]
        ctx.sizes = [x.shape[axis] for x in xs]
        ctx.axis = axis
        return np.concatenate(xs, axis=axis)

    def gradient(self, ctx, dy, need):
        parts = np.split(np.asarray(dy), np.cumsum(ctx.sizes)[:-1], axis=ctx.axis)
        return [p if n else None for p, n in zip(parts, need)]


class Stack(Op):
    op_name = "stack"
    out_dtype = None

    def compute(self, ctx, *xs):
        ctx.axis = self.attrs["axis"]
        return np.stack(xs, axis=ctx.axis)

    def gradient(self, ctx, dy, need):
        dy = np.asarray(dy)
        return [np.take(dy, i, axis=ctx.axis) if n else None for i, n in enumerate(need)]


class GetItem(Op):
    """``x[key]`` with a static key (ints, slices, None, Ellipsis, integer arrays); the
    gradient scatters back (summing repeated indices)."""
    op_name = "getitem"
    out_dtype = None

    def compute(self, ctx, x):
        ctx.x_shape, ctx.x_dtype = x.shape, x.dtype
        return x[self.attrs["key"]]

    def gradient(self, ctx, dy, need):
        if not need[0]:
            return [None]
        dx = np.zeros(ctx.x_shape, np.float32)
        np.add.at(dx, self.attrs["key"], np.asarray(dy, np.float32))
        return [dx]


_DTYPES = {"float32": np.float32, "float64": np.float32, "float16": np.float32,
           "bfloat16": np.float32, "int32": np.int32, "int64": np.int64, "int8": np.int8,
           "int16": np.int16, "uint8": np.uint8, "bool": np.bool_}


def dtype_of(dtype) -> str:
    """Keras' dtype names (and NumPy dtypes): pycnn computes floats in float32."""
    try:
        name = np.dtype(dtype).name if not isinstance(dtype, str) else dtype
    except TypeError:
        name = str(dtype)
    if name not in _DTYPES:
        raise ValueError(f"Invalid dtype: {dtype!r}. Expected one of {sorted(_DTYPES)}")
    return np.dtype(_DTYPES[name]).name


class Cast(Op):
    op_name = "cast"

    def __init__(self, dtype: str):
        super().__init__(dtype=dtype)
        self.out_dtype = dtype

    def compute(self, ctx, x):
        ctx.float_in = x.dtype.kind == "f"
        return x.astype(self.out_dtype)

    def gradient(self, ctx, dy, need):
        ok = need[0] and ctx.float_in and np.dtype(self.out_dtype).kind == "f"
        return [np.asarray(dy, np.float32) if ok else None]


class Identity(Op):
    op_name = "identity"
    out_dtype = None

    def compute(self, ctx, x):
        return x

    def gradient(self, ctx, dy, need):
        return [dy if need[0] else None]


class OneHot(Op):
    op_name = "one_hot"

    def compute(self, ctx, x):
        n, axis = self.attrs["num_classes"], self.attrs["axis"]
        idx = np.asarray(x).astype(np.int64)
        y = (idx[..., None] == np.arange(n)).astype(np.float32)
        return y if axis == -1 else np.moveaxis(y, -1, axis)
