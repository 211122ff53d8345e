"""Layers written as Keras writes them: ``call(inputs, training=None, mask=None)`` composed of
``pycnn.ops`` and other layers, instead of ``forward``/``backward``.

Called on arrays, ``call`` runs at once (ops compute on NumPy). Called on symbolic tensors,
the layer is one node of the enclosing graph (``model.layers``, the summary, saving see it as
one layer) whose inside is ``call`` traced on fresh symbolic inputs, once per input shapes and
training mode, like a subclassed model; ``graph.lower`` expands that traced graph in place, so
the compiled plan runs and differentiates its op nodes like any other layer calls.
"""
from __future__ import annotations

import inspect
from typing import Any, Optional

import numpy as np

from .base import Layer
from .symbolic import KerasTensor, Node, flatten, pack_like

_CALL_BASED: dict[type, bool] = {}


def is_call_based(layer: Layer) -> bool:
    """Whether ``layer`` computes with ``call`` (and has no ``forward`` of its own)."""
    cls = type(layer)
    flag = _CALL_BASED.get(cls)
    if flag is None:
        from ..models.model import Model
        flag = callable(getattr(cls, "call", None)) and cls.forward is Layer.forward and \
            not issubclass(cls, Model)
        _CALL_BASED[cls] = flag
    return flag


def sublayers(layer: Layer) -> list[Layer]:
    """The layers a call-based layer keeps as attributes (directly, or in lists, tuples and
    dicts), in attribute order, as Keras tracks them."""
    out: list[Layer] = []

    def add(v, depth=0):
        if isinstance(v, Layer):
            if v is not layer and not any(v is o for o in out):
                out.append(v)
        elif isinstance(v, (list, tuple)) and depth < 2:
            for item in v:
                add(item, depth + 1)
        elif isinstance(v, dict) and depth < 2:
            for item in v.values():
                add(item, depth + 1)

    for key, value in vars(layer).items():
        if not key.startswith("_"):
            add(value)
    return out


def _call_kwargs(layer: Layer, training: Optional[bool], mask) -> dict:
    params = inspect.signature(layer.call).parameters
    kwargs: dict = {}
    if "training" in params:
        kwargs["training"] = training
    if mask is not None and "mask" in params:
        kwargs["mask"] = mask
    return kwargs


def _build(layer: Layer, shapes: list, structure: Any) -> None:
    """Build for the inputs' shapes: a shape tuple for one input, a list (or dict) of shapes
    for several, as Keras passes them."""
    if layer.built:
        return
    if isinstance(structure, (list, tuple, dict)):
        shape: Any = pack_like(structure, [tuple(s) for s in shapes])
        if isinstance(shape, tuple):
            shape = list(shape)
    else:
        shape = tuple(shapes[0])
        if layer.input_spec is not None:
            layer.input_spec.check(layer.name, shape)
    layer.build(shape)
    layer.built = True


def call_eager(layer: Layer, inputs: Any, training: Optional[bool], mask=None):
    """``layer(arrays)``: build for the inputs' shapes, run ``call`` on NumPy values."""
    from ..ops.core import to_array
    flat = [to_array(a, f'layer "{layer.name}" input') for a in flatten(inputs)]
    structure = flat[0] if not isinstance(inputs, (list, tuple, dict)) else \
        pack_like(inputs, flat)
    _build(layer, [(None,) + a.shape[1:] if a.ndim else () for a in flat], structure)
    out = layer.call(structure, **_call_kwargs(layer, training, mask))
    leaves = [np.array(to_array(v), copy=True) for v in flatten(out)]
    return leaves[0] if not isinstance(out, (list, tuple, dict)) else pack_like(out, leaves)


def _signature(structure: Any) -> str:
    return repr(pack_like(structure, [0] * len(flatten(structure))))


def traced_graph(layer: Layer, structure: Any, shapes: list, training: bool):
    """(graph, output structure) of ``call`` traced on symbolic inputs of ``shapes``."""
    from ..models.graph import Graph
    from ..ops.core import as_node_input
    cache = layer.__dict__.setdefault("_pycnn_traced", {})
    key = (_signature(structure), tuple(tuple(s[1:]) for s in shapes), bool(training))
    hit = cache.get(key)
    if hit is not None:
        return hit
    dtypes = [getattr(t, "dtype", "float32") for t in flatten(structure)]
    tensors = [KerasTensor((None,) + tuple(s[1:]) if len(s) else (), dtype=d,
                           name=f"{layer.name}_input_{i}")
               for i, (s, d) in enumerate(zip(shapes, dtypes))]
    packed = tensors[0] if isinstance(structure, KerasTensor) else \
        pack_like(structure, tensors)
    from ..ops.core import tracing
    with tracing():
        out = layer.call(packed, **_call_kwargs(layer, training, None))
    leaves = [as_node_input(v, "output") for v in flatten(out)]
    if not leaves:
        raise ValueError(f'Layer "{layer.name}": call() returned no tensors')
    out_structure = leaves[0] if not isinstance(out, (list, tuple, dict)) else \
        pack_like(out, leaves)
    graph = Graph(tensors, leaves)
    if len(cache) > 16:
        cache.clear()
    cache[key] = (graph, out_structure)
    return graph, out_structure


def call_symbolic(layer: Layer, inputs: Any, training: Optional[bool]):
    """``layer(symbolic tensors)``: one node of the enclosing graph."""
    flat = flatten(inputs)
    if not all(isinstance(t, KerasTensor) for t in flat):
        from ..ops.core import as_node_input
        flat = [as_node_input(t, "input") for t in flat]
        inputs = flat[0] if not isinstance(inputs, (list, tuple, dict)) else \
            pack_like(inputs, flat)
    shapes = [t.shape for t in flat]
    _build(layer, shapes, inputs)
    graph, out_structure = traced_graph(layer, inputs, shapes, bool(training))
    outs = [KerasTensor(_batch_like(t.shape, shapes), dtype=t.dtype) for t in graph.outputs]
    node = Node(layer, inputs, outs, training)
    node.traced_structure = inputs
    if isinstance(out_structure, (list, tuple, dict)):
        return pack_like(out_structure, outs)
    return outs[0]


def _batch_like(shape: tuple, in_shapes: list) -> tuple:
    """An output shape with the callers' batch size where the trace had None."""
    batch = in_shapes[0][0] if in_shapes and in_shapes[0] else None
    if shape and shape[0] is None and batch is not None:
        return (batch,) + tuple(shape[1:])
    return tuple(shape)


def graph_for_node(layer: Layer, node: Node, training: bool):
    """The traced graph of a call-based layer's node (for ``graph.lower``)."""
    structure = getattr(node, "traced_structure", node.input_structure)
    return traced_graph(layer, structure, [t.shape for t in node.inputs], training)[0]
