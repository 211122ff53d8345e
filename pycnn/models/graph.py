"""The layer graph of a model, and its lowering to a flat list of layer calls.

A ``Graph`` is what ``Model(inputs, outputs)`` keeps: the nodes reachable from the outputs back
to the inputs, in topological order (several inputs and outputs; a tensor used by several
layers; one layer called several times; a model called as a layer). ``lower()`` turns it into
``Call``s over value keys with every nested model expanded in place, which is what the compiled
plan (plan.py) schedules: a nested model is not a black box, so the plan sees its layers, fuses
across its border and keeps one buffer per call.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional

from ..layers.base import Layer
from ..layers.symbolic import InputLayer, KerasTensor, Node, flatten

Key = tuple  # (scope, tensor id): a value in the lowered graph


class Graph:
    """Nodes from ``inputs`` to ``outputs`` (lists of KerasTensors), checked: every output is
    computed from the inputs alone."""

    def __init__(self, inputs: list[KerasTensor], outputs: list[KerasTensor]):
        for t in list(inputs) + list(outputs):
            if not isinstance(t, KerasTensor):
                raise TypeError(f"Model inputs and outputs must be symbolic tensors (from "
                                f"pycnn.Input and layer calls), got {type(t).__name__}")
        if not inputs:
            raise ValueError("A model needs at least one input")
        if not outputs:
            raise ValueError("A model needs at least one output")
        if len({t.id for t in inputs}) != len(inputs):
            raise ValueError("The same tensor is given twice in the model's `inputs`")
        self.inputs, self.outputs = list(inputs), list(outputs)
        self._order: list[Node] = []        # post-order, input nodes where the walk meets them
        self._entered: dict[int, int] = {}  # id(layer) -> pre-order index of its first visit
        self.nodes = self._topological_nodes()
        for t in self.inputs:                       # inputs the outputs never read
            if t.node is not None and not any(t.node is n for n in self._order):
                self._order.append(t.node)
                self._entered.setdefault(id(t.node.layer), len(self._entered))
        self.layers: list[Layer] = self._keras_layer_order()

    def _keras_layer_order(self) -> list[Layer]:
        """``model.layers`` in Keras' order: by depth (distance from the outputs, a layer at
        its deepest node) decreasing, ties in the order the walk from the outputs first
        entered them. Keras' weight files name layers by this order."""
        in_graph = {id(n) for n in self._order}
        node_depth: dict[int, int] = {}
        layer_depth: dict[int, int] = {}
        for node in reversed(self._order):
            depth = max(node_depth.get(id(node), 0), layer_depth.get(id(node.layer), 0))
            layer_depth[id(node.layer)] = depth
            node_depth[id(node)] = depth
            for t in node.inputs:
                parent = t.node
                if parent is not None and id(parent) in in_graph:
                    node_depth[id(parent)] = max(depth + 1, node_depth.get(id(parent), 0))
        layers: dict[int, Layer] = {}
        for node in self._order:
            layers.setdefault(id(node.layer), node.layer)
        return sorted(layers.values(), key=lambda l: (-layer_depth.get(id(l), 0),
                                                      self._entered.get(id(l), 0)))

    def _topological_nodes(self) -> list[Node]:
        """The nodes between inputs and outputs, each after the nodes it reads."""
        inputs = {t.id for t in self.inputs}
        order: list[Node] = []
        state: dict[int, int] = {}          # 1 visiting, 2 done

        def visit(t: KerasTensor, path: list[str]) -> None:
            if t.id in inputs:
                if t.node is not None and state.get(id(t.node)) != 2:
                    state[id(t.node)] = 2
                    self._order.append(t.node)
                    self._entered.setdefault(id(t.node.layer), len(self._entered))
                return
            node = t.node
            if node is None:
                raise ValueError(f"Tensor {t} was not produced by a layer")
            if isinstance(node.layer, InputLayer):
                raise ValueError(
                    f'Graph disconnected: cannot obtain value for tensor {t} at layer '
                    f'"{node.layer.name}". The following previous layers were accessed '
                    f"without issue: {path}. Pass this Input in the model's `inputs`.")
            s = state.get(id(node))
            if s == 2:
                return
            if s == 1:
                raise ValueError("The layer graph has a cycle")
            state[id(node)] = 1
            self._entered.setdefault(id(node.layer), len(self._entered))
            for src in node.inputs:
                visit(src, path + [node.layer.name])
            state[id(node)] = 2
            order.append(node)
            self._order.append(node)

        for t in self.outputs:
            visit(t, [])
        return order

    def input_nodes(self) -> list[Node]:
        """The InputLayer nodes of the inputs (for the summary)."""
        return [t.node for t in self.inputs
                if t.node is not None and isinstance(t.node.layer, InputLayer)]


@dataclass
class Call:
    """One layer call of the lowered graph: the layer, the keys of its inputs (in the order
    of ``node.inputs``) and outputs, and the training flag the call fixed (None: the plan's)."""
    layer: Layer
    node: Node
    inputs: list = field(default_factory=list)
    outputs: list = field(default_factory=list)
    training: Optional[bool] = None


@dataclass
class Lowered:
    calls: list[Call]
    inputs: list
    outputs: list


def lower(graph: Graph, training: bool, trace: Any = None) -> Lowered:
    """The graph as a flat list of ``Call``s, nested models expanded (recursively) in place.
    ``trace(model, input_shapes, training)`` gives a subclassed model's graph."""
    alias: dict = {}
    calls: list[Call] = []

    def resolve(key):
        while key in alias:
            key = alias[key]
        return key

    def expand(g: Graph, scope: tuple, fixed: Optional[bool]) -> None:
        for node in g.nodes:
            layer = node.layer
            in_keys = [(scope, t.id) for t in node.inputs]
            out_keys = [(scope, t.id) for t in node.outputs]
            flag = node.training if node.training is not None else fixed
            inner = _graph_of(layer, node, training if flag is None else flag, trace)
            if inner is not None:
                inner_scope = scope + (id(node),)
                if len(inner.inputs) != len(in_keys) or len(inner.outputs) != len(out_keys):
                    raise ValueError(f'Model "{layer.name}" was called on {len(in_keys)} '
                                     f"tensors but has {len(inner.inputs)} inputs")
                for t, key in zip(inner.inputs, in_keys):
                    alias[(inner_scope, t.id)] = key
                for t, key in zip(inner.outputs, out_keys):
                    alias[key] = (inner_scope, t.id)
                expand(inner, inner_scope, flag)
                continue
            calls.append(Call(layer, node, in_keys, out_keys, flag))

    expand(graph, (), None)
    for c in calls:
        c.inputs = [resolve(k) for k in c.inputs]
        c.outputs = [resolve(k) for k in c.outputs]
    return Lowered(calls, [resolve(((), t.id)) for t in graph.inputs],
                   [resolve(((), t.id)) for t in graph.outputs])


def _graph_of(layer: Layer, node: Node, training: bool, trace) -> Optional[Graph]:
    """The graph of a model used as a layer, or of a layer written with ``call`` (traced per
    shapes and mode); None for an ordinary layer."""
    from .model import Model
    if not isinstance(layer, Model):
        from ..layers import call_layer
        if call_layer.is_call_based(layer):
            return call_layer.graph_for_node(layer, node, training)
        return None
    return layer._graph_for([t.shape for t in node.inputs], training)
