"""Merge layers: ``Add``, ``Subtract``, ``Multiply``, ``Average``, ``Maximum``, ``Minimum``
(elementwise, pairwise from the left) and ``Concatenate``, with Keras' functional forms
``add([a, b])``, ``concatenate([a, b], axis=-1)``, ...

Shapes follow Keras 3 (``keras/src/layers/merging/base_merge.py``): the inputs' non-batch shapes
must be equal or broadcast (aligned on the right, a size 1 stretches; an input of lower rank is
expanded after its batch axis); the batch sizes must be equal. The arithmetic and its gradients
run in C (``_C.merge_forward`` / ``merge_backward``; a broadcast input's gradient is summed
over its copies). ``Maximum``/``Minimum`` send the gradient where TensorFlow's pairwise
``maximum``/``minimum`` gradient sends it: of tied inputs, to the first.
"""
from __future__ import annotations

from typing import Optional, Sequence

import numpy as np

from .. import _C
from .base import Layer


def _tuple(shape) -> Optional[tuple]:
    return None if shape is None else tuple(shape)


def _elemwise_shape(shape1: Optional[tuple], shape2: Optional[tuple]) -> Optional[tuple]:
    """Keras' ``_compute_elemwise_op_output_shape`` of two non-batch shapes."""
    if shape1 is None or shape2 is None:
        return None
    if len(shape1) < len(shape2):
        return _elemwise_shape(shape2, shape1)
    if not shape2:
        return shape1
    out = list(shape1[:-len(shape2)])
    for i, j in zip(shape1[-len(shape2):], shape2):
        if i is None or j is None:
            out.append(None)
        elif i == 1:
            out.append(j)
        elif j == 1 or i == j:
            out.append(i)
        else:
            raise ValueError(f"Inputs have incompatible shapes. Received shapes {shape1} and "
                             f"{shape2}")
    return tuple(out)


def _need_list(need_dx, k: int) -> list:
    if isinstance(need_dx, (list, tuple)):
        if len(need_dx) != k:
            raise ValueError(f"need_dx holds {len(need_dx)} flags for {k} inputs")
        return [bool(n) for n in need_dx]
    return [bool(need_dx)] * k


class Merge(Layer):
    """The base of the elementwise merge layers: called on a list of tensors, returns one."""

    multi_input = True
    #: the kernel's name of the operation (``_C.merge_forward``'s ``kind``)
    _kind = ""

    def _check_list(self, input_shape) -> list:
        if not isinstance(input_shape, (list, tuple)) or not input_shape or \
                not all(isinstance(s, (list, tuple)) for s in input_shape):
            raise ValueError("A merge layer should be called on a list of inputs. "
                             f"Received: input_shape={input_shape} (not a list of shapes)")
        return [tuple(s) for s in input_shape]

    def build(self, input_shape):
        shapes = self._check_list(input_shape)
        batch_sizes = {s[0] for s in shapes if s} - {None}
        if len(batch_sizes) > 1:
            raise ValueError("Cannot merge tensors with different batch sizes. Received "
                             f"tensors with shapes {shapes}")
        self.compute_output_shape(shapes)
        self.built = True

    def compute_output_shape(self, input_shape):
        shapes = self._check_list(input_shape)
        out = shapes[0][1:]
        for s in shapes[1:]:
            out = _elemwise_shape(out, s[1:])
        batch_sizes = {s[0] for s in shapes if s} - {None}
        batch = next(iter(batch_sizes)) if len(batch_sizes) == 1 else None
        return (batch,) + tuple(out)

    # ---- arithmetic -----------------------------------------------------------------------
    def forward(self, ctx, xs, training=False):
        if not isinstance(xs, (list, tuple)) or not xs:
            raise ValueError("A merge layer should be called on a list of inputs. "
                             f"Received: inputs={xs!r} (not a list of tensors)")
        xs = [np.ascontiguousarray(x, dtype=np.float32) for x in xs]
        if len({x.shape[0] for x in xs}) > 1:
            raise ValueError("Cannot merge tensors with different batch sizes. Received "
                             f"tensors with shapes {[x.shape for x in xs]}")
        out = (xs[0].shape[0],) + tuple(self.compute_output_shape(
            [(None,) + x.shape[1:] for x in xs])[1:])
        rank = len(out)
        # Keras expands an input of lower rank after its batch axis (then broadcasts)
        xr = [x.reshape(x.shape[:1] + (1,) * (rank - x.ndim) + x.shape[1:]) for x in xs]
        y = ctx.buffer("y", out)
        _C.merge_forward(self._kind, xr, y)
        ctx.xs, ctx.in_shapes = xr, [x.shape for x in xs]
        return y

    def backward(self, ctx, dy, need_dx=True):
        need = _need_list(need_dx, len(ctx.xs))
        if not any(need):
            return [None] * len(need)
        dxs = [ctx.buffer(f"dx{i}", x.shape) if n else None
               for i, (x, n) in enumerate(zip(ctx.xs, need))]
        _C.merge_backward(self._kind, ctx.xs, np.ascontiguousarray(dy, dtype=np.float32), dxs)
        return [None if dx is None else dx.reshape(shape)
                for dx, shape in zip(dxs, ctx.in_shapes)]


class Add(Merge):
    """Elementwise sum of a list of inputs of the same shape: ``Add()([x1, x2])``."""

    _kind = "add"


class Subtract(Merge):
    """Elementwise difference ``inputs[0] - inputs[1]`` of exactly two inputs."""

    _kind = "subtract"

    def build(self, input_shape):
        super().build(input_shape)
        if len(input_shape) != 2:
            raise ValueError("A `Subtract` layer should be called on exactly 2 inputs. "
                             f"Received: input_shape={[tuple(s) for s in input_shape]}")

    def forward(self, ctx, xs, training=False):
        if len(xs) != 2:
            raise ValueError("A `Subtract` layer should be called on exactly 2 inputs. "
                             f"Received: {len(xs)} inputs")
        return super().forward(ctx, xs, training)


class Multiply(Merge):
    """Elementwise product of a list of inputs; each input's gradient is the output gradient
    times the product of the other inputs."""

    _kind = "multiply"


class Average(Merge):
    """Elementwise mean of a list of inputs (their sum divided by their number)."""

    _kind = "average"


class Maximum(Merge):
    """Elementwise maximum of a list of inputs (NaN propagates). The gradient goes to the first
    input holding the maximum, as TensorFlow's pairwise ``maximum`` gradient sends it."""

    _kind = "maximum"


class Minimum(Merge):
    """Elementwise minimum of a list of inputs; the gradient goes to the first input holding
    it."""

    _kind = "minimum"


class Concatenate(Layer):
    """Concatenates a list of inputs along ``axis`` (default the last); every other axis must
    match. The batch axis cannot be the concatenation axis."""

    multi_input = True

    def __init__(self, axis: int = -1, **kwargs):
        super().__init__(**kwargs)
        if isinstance(axis, bool) or not isinstance(axis, (int, np.integer)):
            raise ValueError(f"Invalid value for argument `axis`: expected an integer. "
                             f"Received: axis={axis!r}")
        self.axis = int(axis)

    def _axis(self, rank: int) -> int:
        if not -rank <= self.axis < rank:
            raise ValueError(f"Invalid value for argument `axis`: {self.axis} is out of range "
                             f"for inputs of rank {rank}")
        axis = self.axis % rank
        if axis == 0:
            raise ValueError(f"pycnn's Concatenate cannot concatenate along the batch axis "
                             f"(axis=0 for inputs of rank {rank}). Received: axis={self.axis}")
        return axis

    def _check(self, input_shape) -> list:
        if not isinstance(input_shape, (list, tuple)) or not input_shape or \
                not all(isinstance(s, (list, tuple)) for s in input_shape):
            raise ValueError("A `Concatenate` layer should be called on a list of at least 1 "
                             f"input. Received: input_shape={input_shape}")
        shapes = [tuple(s) for s in input_shape]
        message = ("A `Concatenate` layer requires inputs with matching shapes except for the "
                   f"concatenation axis. Received: input_shape={shapes}")
        if len({len(s) for s in shapes}) != 1:
            raise ValueError(message)
        rank = len(shapes[0])
        axis = self._axis(rank)
        for a in range(rank):
            if a != axis and len({s[a] for s in shapes} - {None}) > 1:
                raise ValueError(message)
        return shapes

    def build(self, input_shape):
        self._check(input_shape)
        self.built = True

    def compute_output_shape(self, input_shape):
        shapes = self._check(input_shape)
        axis = self._axis(len(shapes[0]))
        out = list(shapes[0])
        for a in range(len(out)):
            known = [s[a] for s in shapes if s[a] is not None]
            out[a] = known[0] if known and a != axis else out[a]
        lengths = [s[axis] for s in shapes]
        out[axis] = None if None in lengths else sum(lengths)
        return tuple(out)

    def forward(self, ctx, xs, training=False):
        xs = [np.ascontiguousarray(x, dtype=np.float32) for x in xs]
        self._check([x.shape for x in xs])
        axis = self._axis(xs[0].ndim)
        out = list(xs[0].shape)
        out[axis] = sum(x.shape[axis] for x in xs)
        y = ctx.buffer("y", tuple(out))
        _C.concat_forward(xs, y, axis)
        ctx.axis, ctx.in_shapes = axis, [x.shape for x in xs]
        return y

    def backward(self, ctx, dy, need_dx=True):
        need = _need_list(need_dx, len(ctx.in_shapes))
        if not any(need):
            return [None] * len(need)
        dxs = [ctx.buffer(f"dx{i}", s) if n else None
               for i, (s, n) in enumerate(zip(ctx.in_shapes, need))]
        _C.concat_backward(np.ascontiguousarray(dy, dtype=np.float32), dxs, ctx.axis,
                           [s[ctx.axis] for s in ctx.in_shapes])
        return dxs

    def get_config(self):
        return {**super().get_config(), "axis": self.axis}


# ---- Keras' functional interface ----------------------------------------------------------

def add(inputs: Sequence, **kwargs):
    """``Add(**kwargs)(inputs)``: the elementwise sum of the inputs."""
    return Add(**kwargs)(inputs)


def subtract(inputs: Sequence, **kwargs):
    """``Subtract(**kwargs)(inputs)``: ``inputs[0] - inputs[1]``."""
    return Subtract(**kwargs)(inputs)


def multiply(inputs: Sequence, **kwargs):
    """``Multiply(**kwargs)(inputs)``: the elementwise product of the inputs."""
    return Multiply(**kwargs)(inputs)


def average(inputs: Sequence, **kwargs):
    """``Average(**kwargs)(inputs)``: the elementwise mean of the inputs."""
    return Average(**kwargs)(inputs)


def maximum(inputs: Sequence, **kwargs):
    """``Maximum(**kwargs)(inputs)``: the elementwise maximum of the inputs."""
    return Maximum(**kwargs)(inputs)


def minimum(inputs: Sequence, **kwargs):
    """``Minimum(**kwargs)(inputs)``: the elementwise minimum of the inputs."""
    return Minimum(**kwargs)(inputs)


def concatenate(inputs: Sequence, axis: int = -1, **kwargs):
    """``Concatenate(axis=axis, **kwargs)(inputs)``."""
    return Concatenate(axis=axis, **kwargs)(inputs)
