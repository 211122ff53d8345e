"""Symbolic tensors for the functional API: ``Input(shape=...)`` gives a ``KerasTensor``;
calling a layer on symbolic tensors records a ``Node`` (the layer, its input tensors in the
structure it was called with, its output tensors), and ``Model(inputs, outputs)`` walks those
nodes back from the outputs to build the graph. One layer may have several nodes (a shared
layer); a model is a layer, so a model called on tensors is a node too (a nested model)."""
from __future__ import annotations

import itertools
from typing import Any, Optional, Sequence

from .. import backend
from .base import Layer, format_shape

_ids = itertools.count()


def flatten(structure: Any) -> list:
    """The leaves of a nest of lists, tuples and dicts (dicts in key order as given)."""
    if isinstance(structure, (list, tuple)):
        return [leaf for item in structure for leaf in flatten(item)]
    if isinstance(structure, dict):
        return [leaf for item in structure.values() for leaf in flatten(item)]
    return [structure]


def pack_like(structure: Any, flat: Sequence) -> Any:
    """The leaves ``flat`` put back into the shape of ``structure``."""
    it = iter(flat)

    def build(s):
        if isinstance(s, (list, tuple)):
            return type(s)(build(item) for item in s) if isinstance(s, tuple) else \
                [build(item) for item in s]
        if isinstance(s, dict):
            return {k: build(v) for k, v in s.items()}
        return next(it)

    return build(structure)


class KerasTensor:
    """A placeholder with a shape (``None`` for the batch axis) and the node that produced it
    (``node``, and its position ``index`` among that node's outputs)."""

    def __init__(self, shape: Sequence, dtype: str = "float32", name: Optional[str] = None):
        self.shape = tuple(None if d is None else int(d) for d in shape)
        self.dtype = dtype
        self.name = name
        self.node: Optional[Node] = None    # set by the producing Node
        self.index = 0
        self.id = next(_ids)

    @property
    def ndim(self) -> int:
        return len(self.shape)

    def __repr__(self) -> str:
        return (f"<KerasTensor shape={format_shape(self.shape)}, dtype={self.dtype}, "
                f"name={self.name}>")

    def __array__(self, *args, **kwargs):
        raise TypeError("A symbolic KerasTensor has no values: build a pycnn.Model from it "
                        "and call the model on data")

    def __len__(self):
        raise TypeError("A symbolic KerasTensor has no length; use `.shape`")


class Node:
    """One call of a layer in a graph: ``input_structure`` as the layer was called (a tensor,
    or a list of tensors for merge layers), ``inputs`` its tensors in order, ``outputs`` the
    tensors it produced, and ``training`` when the call fixed it (``layer(x, training=False)``
    keeps a nested model in inference mode inside a model being trained)."""

    def __init__(self, layer: Layer, input_structure: Any, outputs: list,
                 training: Optional[bool] = None):
        self.layer = layer
        self.input_structure = input_structure
        self.inputs: list[KerasTensor] = flatten(input_structure)
        self.outputs: list[KerasTensor] = list(outputs)
        self.output_structure = outputs[0] if len(outputs) == 1 else list(outputs)
        self.training = None if training is None else bool(training)
        for i, t in enumerate(self.outputs):
            t.node, t.index = self, i
            if t.name is None:
                t.name = layer.name
        layer._inbound_nodes.append(self)

    @staticmethod
    def record(layer: Layer, inputs: Any, training: Optional[bool]):
        """The symbolic call ``layer(inputs)``: builds the layer for the inputs' shapes, checks
        them, and returns the output tensor(s)."""
        if layer.multi_input:
            if not isinstance(inputs, (list, tuple)):
                raise ValueError(f'Layer "{layer.name}" (a merge layer) should be called on a '
                                 f"list of inputs. Received: inputs={inputs!r}")
            inputs = list(inputs)
            shapes: Any = [t.shape for t in inputs]
        else:
            if not isinstance(inputs, KerasTensor):
                raise ValueError(f'Layer "{layer.name}" expects 1 input, but it received '
                                 f"{len(flatten(inputs))} input tensors")
            shapes = inputs.shape
        layer._maybe_build(shapes)
        out_shape = layer.compute_output_shape(shapes)
        if isinstance(out_shape, list):
            outputs = [KerasTensor(s) for s in out_shape]
        else:
            outputs = [KerasTensor(out_shape)]
        node = Node(layer, inputs, outputs, training)
        return node.output_structure


class InputLayer(Layer):
    """The layer behind ``Input``: it passes its input through unchanged."""

    def __init__(self, input_shape=None, batch_size=None, name=None, dtype=None,
                 shape=None, batch_shape=None, sparse=None, batch_input_shape=None,
                 ragged=None, input_tensor=None, **kwargs):
        if sparse or ragged:
            raise ValueError("pycnn has no sparse or ragged tensors")
        if input_tensor is not None:
            raise ValueError("pycnn's InputLayer does not take `input_tensor`")
        if batch_input_shape is not None and batch_shape is None:
            batch_shape = batch_input_shape
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
        super().__init__(name=name or backend.unique_name("input", zero_based=False),
                         dtype=dtype, **kwargs)
        self.batch_shape = full
        self.built = True
        out = KerasTensor(full, name=self.name)
        Node(self, [], [out])
        self.output_tensor = out

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def forward(self, ctx, x, training=False):
        return x

    def backward(self, ctx, dy, need_dx=True):
        return dy if need_dx else None

    def get_config(self):
        return {"name": self.name, "batch_shape": list(self.batch_shape), "dtype": "float32",
                "sparse": False, "ragged": False}


def Input(shape=None, batch_size: Optional[int] = None, name: Optional[str] = None,
          dtype=None, batch_shape=None, sparse=None, tensor=None, ragged=None,
          optional=False) -> KerasTensor:
    """A symbolic input of the functional API: ``Input(shape=(28, 28, 1))``."""
    if shape is None and batch_shape is None:
        raise ValueError("Input() needs `shape`. Example: keras.Input(shape=(28, 28, 1))")
    layer = InputLayer(input_shape=shape, batch_size=batch_size, name=name, dtype=dtype,
                       batch_shape=batch_shape, sparse=sparse, ragged=ragged)
    return layer.output_tensor
