"""The machinery behind ``pycnn.ops``: an ``Op`` is a ``Layer`` per kind of operation
(``multi_input``: it takes a list of arrays and returns a list of input gradients), so the
compiled plan runs and differentiates ops exactly as it runs built-in layers.

``apply(op, *args)`` is how every public op runs: on NumPy values it computes at once (a fresh
``Context``, float32 out); when any argument is a symbolic ``KerasTensor`` it records a node of
the op instead. Other arguments then become nodes too: a weight ``Variable`` a node that reads
its value at each forward pass and writes its gradient to ``Variable.grad``; a Python number or
NumPy array a constant node. Output shapes are found by running the op on small dummy arrays
twice, the unknown (None) sizes replaced by two different sizes: a size that differs between
the two runs is unknown in the output.
"""
from __future__ import annotations

import contextlib
import threading
from typing import Any, Optional, Sequence

import numpy as np

from ..layers.base import Layer, Variable
from ..layers.context import Context
from ..layers.symbolic import KerasTensor, Node

#: The sizes substituted for unknown (None) sizes when an op's output shape is inferred.
_PROBE_SIZES = (2, 3)


_trace_state = threading.local()


@contextlib.contextmanager
def tracing():
    """While a layer's ``call`` (or a loss) is traced, ops on weights record nodes even when no
    other argument is symbolic (``self.kernel / ops.sqrt(ops.sum(self.kernel ** 2))``), so the
    graph reads the weights' values at each run instead of freezing them."""
    depth = getattr(_trace_state, "depth", 0)
    _trace_state.depth = depth + 1
    try:
        yield
    finally:
        _trace_state.depth = depth


def is_symbolic(x: Any) -> bool:
    return isinstance(x, KerasTensor)


def _records(args) -> bool:
    if any(isinstance(a, KerasTensor) for a in args):
        return True
    return getattr(_trace_state, "depth", 0) > 0 and any(isinstance(a, Variable) for a in args)


def to_array(x: Any, name: str = "x") -> np.ndarray:
    """A NumPy value for an op: floats as float32, integers and booleans kept."""
    if isinstance(x, Variable):
        return x.value
    if isinstance(x, np.ndarray):
        if x.dtype == np.float32 or x.dtype.kind in "biu":
            return x
        if x.dtype.kind == "f":
            return x.astype(np.float32)
        raise TypeError(f"Expected a numeric array for `{name}`, received dtype {x.dtype}")
    if isinstance(x, (bool, np.bool_)):
        return np.asarray(x)
    if isinstance(x, (int, np.integer)):
        return np.asarray(x, dtype=np.int64) if not isinstance(x, np.integer) else np.asarray(x)
    if isinstance(x, (float, np.floating)):
        return np.asarray(x, dtype=np.float32)
    try:
        a = np.asarray(x)
    except Exception as err:    # noqa: BLE001 - a clear message instead
        raise TypeError(f"Expected a tensor, array or number for `{name}`, received "
                        f"{type(x).__name__}") from err
    if a.dtype.kind == "f":
        return a.astype(np.float32, copy=False)
    if a.dtype.kind not in "biu":
        raise TypeError(f"Expected a numeric value for `{name}`, received {x!r}")
    return a


def unbroadcast(g: np.ndarray, shape: tuple) -> np.ndarray:
    """The gradient ``g`` of a broadcast result summed back to an input of ``shape``."""
    if g.shape == tuple(shape):
        return g
    extra = g.ndim - len(shape)
    if extra > 0:
        g = g.sum(axis=tuple(range(extra)))
    axes = tuple(i for i, d in enumerate(shape) if d == 1 and g.shape[i] != 1)
    if axes:
        g = g.sum(axis=axes, keepdims=True)
    return g.reshape(shape)


def f32(a) -> np.ndarray:
    return np.asarray(a, dtype=np.float32)


class Op(Layer):
    """One kind of operation. Subclasses implement ``compute(ctx, *xs)`` (NumPy values in, one
    array out, saving on ``ctx`` what the gradient needs) and ``gradient(ctx, dy, need)`` (a
    list with d loss / d input per input, None where not needed or not differentiable)."""

    multi_input = True
    #: the op's name in messages and node names
    op_name = "op"
    #: the dtype of the output ("float32"; "int32" for argmax; None: the first input's)
    out_dtype: Optional[str] = "float32"

    def __init__(self, **attrs):
        Layer.__init__(self, name=self.op_name)
        self.attrs = attrs
        self.built = True

    # ---- the layer interface the plan uses --------------------------------------------------
    def build(self, input_shape) -> None:
        self.built = True

    def forward(self, ctx: Context, xs, training: bool = False):
        return self.compute(ctx, *xs)

    def backward(self, ctx: Context, dy, need_dx=True):
        if not isinstance(need_dx, (list, tuple)):
            need_dx = [need_dx]
        return self.gradient(ctx, dy, list(need_dx))

    def compute_output_shape(self, input_shapes):
        return infer_shape(self, input_shapes, self._in_dtypes)

    # ---- to implement -------------------------------------------------------------------------
    def compute(self, ctx: Context, *xs) -> np.ndarray:
        raise NotImplementedError

    def gradient(self, ctx: Context, dy: np.ndarray, need: list) -> list:
        return [None] * len(need)

    def get_config(self) -> dict:
        return {"name": self.name, **self.attrs}

    def __repr__(self) -> str:
        return f"<{type(self).__name__} op={self.op_name}>"

    _in_dtypes: tuple = ()


class ReadVariable(Op):
    """A weight's value as a node of the graph; its gradient lands in ``Variable.grad``
    (overwritten: the plan sums the gradients of several reads)."""

    op_name = "read_variable"

    def __init__(self, variable: Variable):
        super().__init__()
        self.variable = variable

    @property
    def weights(self) -> list:
        return []

    @property
    def trainable_weights(self) -> list:
        v = self.variable
        owner = getattr(v, "_layer", None)
        owner_trainable = True if owner is None else owner.trainable
        return [v] if v.trainable and owner_trainable else []

    @property
    def non_trainable_weights(self) -> list:
        return []

    def compute(self, ctx):
        return self.variable.value

    def gradient(self, ctx, dy, need):
        np.copyto(self.variable.grad, unbroadcast(np.asarray(dy), self.variable.shape),
                  casting="same_kind")
        return []

    def compute_output_shape(self, input_shapes):
        return self.variable.shape


class Constant(Op):
    """A NumPy value used in a graph (no gradient)."""

    op_name = "constant"
    out_dtype = None

    def __init__(self, value: np.ndarray):
        super().__init__()
        self.value = value

    def compute(self, ctx):
        return self.value

    def compute_output_shape(self, input_shapes):
        return self.value.shape


def _dtype_name(a: np.ndarray) -> str:
    return "float32" if a.dtype.kind == "f" else str(a.dtype)


def infer_shape(op: Op, shapes: Sequence[tuple], dtypes: Sequence[str]) -> tuple:
    """The output shape of ``op`` for inputs of ``shapes`` (None: unknown), found by running
    it on dummy arrays with two different sizes in place of each unknown size."""
    outs = []
    for size in _PROBE_SIZES:
        arrays = []
        for shape, dt in zip(shapes, dtypes):
            concrete = tuple(size if d is None else d for d in shape)
            arrays.append(np.ones(concrete, dtype=np.dtype(dt)) if dt != "float32" else
                          np.full(concrete, 0.5, np.float32))
        with np.errstate(all="ignore"):
            y = op.compute(Context(), *arrays)
        outs.append(np.shape(y))
    a, b = outs
    if len(a) != len(b):
        raise ValueError(f"ops.{op.op_name}: the output rank depends on an unknown size of the "
                         f"inputs {list(shapes)}")
    return tuple(x if x == y else None for x, y in zip(a, b))


def apply(op: Op, *args, names: Sequence[str] = ()):
    """Run ``op`` on ``args``: at once on NumPy values, or recorded as a node when any argument
    is symbolic. Returns a float32 array (the op's own dtype for integer ops) or a
    KerasTensor."""
    names = list(names) + [f"x{i}" for i in range(len(names), len(args))]
    if _records(args):
        return _record(op, args, names)
    arrays = [to_array(a, n) for a, n in zip(args, names)]
    try:
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            y = op.compute(Context(), *arrays)
    except (ValueError, IndexError) as err:
        raise ValueError(f"ops.{op.op_name}: {err} (input shapes "
                         f"{[a.shape for a in arrays]})") from None
    y = np.asarray(y)
    if y.dtype.kind == "f" and y.dtype != np.float32:
        y = y.astype(np.float32)
    elif op.out_dtype == "float32" and y.dtype.kind != "f":
        y = y.astype(np.float32)
    if any(np.may_share_memory(y, a) for a in arrays):
        y = np.array(y, copy=True)      # never a view of the caller's array or a weight
    return y


def as_node_input(x: Any, name: str) -> KerasTensor:
    """A symbolic tensor for an argument of an op being recorded."""
    if isinstance(x, KerasTensor):
        return x
    if isinstance(x, Variable):
        return _leaf(ReadVariable(x), "float32")
    value = to_array(x, name)
    value = np.array(value, copy=True)
    value.setflags(write=False)
    return _leaf(Constant(value), _dtype_name(value))


def _leaf(op: Op, dtype: str) -> KerasTensor:
    out = KerasTensor(op.compute_output_shape([]), dtype=dtype)
    Node(op, [], [out])
    return out


def _record(op: Op, args, names) -> KerasTensor:
    tensors = [as_node_input(a, n) for a, n in zip(args, names)]
    op._in_dtypes = tuple(t.dtype for t in tensors)
    try:
        shape = op.compute_output_shape([t.shape for t in tensors])
    except (ValueError, IndexError) as err:
        raise ValueError(f"ops.{op.op_name}: {err} (input shapes "
                         f"{[t.shape for t in tensors]})") from None
    dtype = op.out_dtype or (tensors[0].dtype if tensors else "float32")
    out = KerasTensor(shape, dtype=dtype)
    Node(op, tensors, [out])
    return out
