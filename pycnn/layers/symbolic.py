"""Symbolic tensors for the functional API: ``Input(shape=...)`` gives a ``KerasTensor``;
calling a layer on it records a ``Node`` (layer, its input tensors, its output tensors), and
``Model(inputs, outputs)`` walks those nodes back from the outputs to build the graph."""
from __future__ import annotations

import itertools
from typing import Optional, Sequence

from .. import backend
from .base import Layer, format_shape

_ids = itertools.count()


class KerasTensor:
    """A placeholder with a shape (``None`` for the batch axis) and the node that produced it."""

    def __init__(self, shape: Sequence, dtype: str = "float32", name: Optional[str] = None):
        self.shape = tuple(None if d is None else int(d) for d in shape)
        self.dtype = dtype
        self.name = name
        self.node: Optional[Node] = None    # set by the producing Node
        self.id = next(_ids)

    @property
    def ndim(self) -> int:
        return len(self.shape)

    def __repr__(self) -> str:
        return f"<KerasTensor shape={format_shape(self.shape)}, dtype={self.dtype}, name={self.name}>"

    def __array__(self, *args, **kwargs):
        raise TypeError("A symbolic KerasTensor has no values: build a pycnn.Model from it "
                        "and call the model on data")


class Node:
    """One call of a layer in a graph."""

    def __init__(self, layer: Layer, inputs: list, outputs: list):
        self.layer, self.inputs, self.outputs = layer, list(inputs), list(outputs)
        for t in self.outputs:
            t.node = self
            if t.name is None:
                t.name = layer.name
        layer._inbound_nodes.append(self)


class InputLayer(Layer):
    """The layer behind ``Input``: it passes its input through unchanged."""

    def __init__(self, input_shape=None, batch_size=None, name=None, dtype=None,
                 shape=None, batch_shape=None, **kwargs):
        if shape is not None:
            input_shape = shape
        if batch_shape is not None:
            full = tuple(batch_shape)
        elif input_shape is not None:
            if isinstance(input_shape, int):
                input_shape = (input_shape,)
            full = (batch_size,) + tuple(input_shape)
        else:
            raise ValueError("InputLayer needs `shape` (or `batch_shape`). "
                             "Example: Input(shape=(28, 28, 1))")
        for d in full[1:]:
            if d is None or isinstance(d, bool) or not isinstance(d, int) or d <= 0:
                raise ValueError(f"Input shape must be positive integers (the batch axis "
                                 f"aside). Received: shape={full[1:]}")
        super().__init__(name=name or backend.unique_name("input", zero_based=False), dtype=dtype, **kwargs)
        self.batch_shape = full
        self.built = True
        out = KerasTensor(full, name=self.name)
        Node(self, [], [out])
        self.output = out

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def forward(self, x, training=False):
        return x

    def backward(self, dy, need_dx=True):
        return dy if need_dx else None

    def get_config(self):
        return {"name": self.name, "batch_shape": self.batch_shape}


def Input(shape=None, batch_size: Optional[int] = None, name: Optional[str] = None,
          dtype=None, batch_shape=None) -> KerasTensor:
    """A symbolic input of the functional API: ``Input(shape=(28, 28, 1))``."""
    if shape is None and batch_shape is None:
        raise ValueError("Input() needs `shape`. Example: keras.Input(shape=(28, 28, 1))")
    layer = InputLayer(input_shape=shape, batch_size=batch_size, name=name, dtype=dtype,
                       batch_shape=batch_shape)
    return layer.output
