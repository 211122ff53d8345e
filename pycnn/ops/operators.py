"""Python's operators on symbolic tensors (``KerasTensor``) and on weights (``Variable``), as
Keras has them: ``+ - * / ** @``, unary minus, ``abs()``, comparisons (boolean results for
``ops.where``), and slicing of symbolic tensors. NumPy ufuncs applied to a symbolic tensor
(``np.exp(x)``, ``array + x``) run the matching op, so NumPy-style code traces too."""
from __future__ import annotations

import numpy as np

from .. import ops
from ..layers.base import Variable
from ..layers.symbolic import KerasTensor
from .core import Op, apply, unbroadcast


class _Compare(Op):
    """A comparison (boolean result, no gradient)."""

    out_dtype = "bool"

    def __init__(self, fn):
        super().__init__()
        self.fn = fn
        self.op_name = fn.__name__

    def compute(self, ctx, a, b):
        return self.fn(a, b)


def _binary(fn, reflected: bool = False):
    if reflected:
        return lambda self, other: fn(other, self)
    return lambda self, other: fn(self, other)


def _compare(ufunc):
    return lambda self, other: apply(_Compare(ufunc), self, other)


_UFUNCS = {np.add: ops.add, np.subtract: ops.subtract, np.multiply: ops.multiply,
           np.true_divide: ops.divide, np.divide: ops.divide, np.power: ops.power,
           np.negative: ops.negative, np.exp: ops.exp, np.log: ops.log, np.sqrt: ops.sqrt,
           np.square: ops.square, np.absolute: ops.abs, np.maximum: ops.maximum,
           np.minimum: ops.minimum, np.tanh: ops.tanh, np.matmul: ops.matmul,
           np.greater: _compare(np.greater), np.less: _compare(np.less),
           np.greater_equal: _compare(np.greater_equal),
           np.less_equal: _compare(np.less_equal)}


def _array_ufunc(self, ufunc, method, *inputs, **kwargs):
    fn = _UFUNCS.get(ufunc)
    if method != "__call__" or fn is None or kwargs:
        raise TypeError(f"NumPy's {ufunc.__name__} cannot run on a symbolic tensor; use the "
                        f"matching pycnn.ops function")
    return fn(*inputs)


def _reduction(fn):
    def method(self, axis=None, dtype=None, out=None, keepdims=False, **kwargs):
        if out is not None:
            raise TypeError("A symbolic tensor cannot be reduced into `out`")
        return fn(self, axis=axis, keepdims=keepdims)
    method.__name__ = fn.__name__
    return method


def install() -> None:
    """Give KerasTensor and Variable their operators."""
    for cls in (KerasTensor, Variable):
        for name, fn in (("add", ops.add), ("sub", ops.subtract), ("mul", ops.multiply),
                         ("truediv", ops.divide), ("pow", ops.power), ("matmul", ops.matmul)):
            setattr(cls, f"__{name}__", _binary(fn))
            setattr(cls, f"__r{name}__", _binary(fn, reflected=True))
        cls.__neg__ = lambda self: ops.negative(self)
        cls.__pos__ = lambda self: self
        cls.__abs__ = lambda self: ops.abs(self)
    for name, uf in (("gt", np.greater), ("lt", np.less), ("ge", np.greater_equal),
                     ("le", np.less_equal)):
        setattr(KerasTensor, f"__{name}__", _compare(uf))
    KerasTensor.__getitem__ = lambda self, key: ops.getitem(self, key)
    for name in ("sum", "mean", "max", "min"):      # np.mean(x, axis=...) calls x.mean
        setattr(KerasTensor, name, _reduction(getattr(ops, name)))
    KerasTensor.reshape = lambda self, *shape: ops.reshape(
        self, shape[0] if len(shape) == 1 else shape)
    KerasTensor.T = property(lambda self: ops.transpose(self))
    KerasTensor.__array_ufunc__ = _array_ufunc
    KerasTensor.__array_priority__ = 1000


__all__ = ["install", "unbroadcast"]
