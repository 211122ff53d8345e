"""``Sequential``: a plain stack of layers, built when its input shape becomes known (from an
``Input``/``input_shape=`` or, as in the lecture's dense model, from the first data)."""
from __future__ import annotations

from typing import Optional

from ..layers.base import Layer
from ..layers.symbolic import Input, InputLayer, KerasTensor
from .graph import Graph
from .model import Model


class Sequential(Model):
    """``Sequential([layers.Dense(512, activation="relu"), layers.Dense(10, activation="softmax")])``"""

    _default_name = "sequential"

    def __init__(self, layers: Optional[list] = None, name: Optional[str] = None,
                 trainable: bool = True, **kwargs):
        super().__init__(name=name, trainable=trainable, **kwargs)
        self._stack: list[Layer] = []
        self._input: Optional[KerasTensor] = None
        self._nodes: list = []          # the nodes this model's graph made on its layers
        for layer in layers or []:
            self.add(layer)

    def add(self, layer) -> None:
        """Append a layer (or set the input with ``Input(shape=...)`` as the first entry)."""
        if isinstance(layer, KerasTensor):
            if layer.node is None or not isinstance(layer.node.layer, InputLayer):
                raise ValueError("Sequential.add() takes layers or an Input(...) tensor")
            layer = layer.node.layer
        if isinstance(layer, InputLayer):
            if self._stack or self._input is not None:
                raise ValueError("An Input can only be the first entry of a Sequential model")
            self._input = layer.output
            return
        if not isinstance(layer, Layer):
            raise TypeError(f"The added layer must be an instance of class Layer. Received: "
                            f"layer={layer!r} of type {type(layer).__name__}")
        if any(l is layer for l in self._stack):
            raise ValueError(f'Layer "{layer.name}" is already in this Sequential model')
        if not self._stack and self._input is None and layer._batch_input_shape:
            self._input = Input(batch_shape=layer._batch_input_shape)
        self._stack.append(layer)
        if self._graph is not None:                 # extend the built graph by one call
            out = self._call_layer(layer, self._graph.outputs[0])
            self._set_graph(out)
        elif self._input is not None:
            self._build_graph()

    def pop(self) -> Layer:
        """Remove and return the last layer."""
        if not self._stack:
            raise TypeError("There are no layers in the model.")
        layer = self._stack.pop()
        self._forget_nodes()
        self._graph = None
        self._plans.clear()
        if self._input is not None and self._stack:
            self._build_graph()
        return layer

    def _call_layer(self, layer: Layer, t: KerasTensor) -> KerasTensor:
        before = len(layer._inbound_nodes)
        out = layer(t)
        self._nodes.extend(layer._inbound_nodes[before:])
        if isinstance(out, list):
            raise ValueError(f'Layer "{layer.name}" has several outputs; a Sequential model '
                             "needs layers with one output each (use the functional API)")
        return out

    def _forget_nodes(self) -> None:
        """Remove the nodes this model made from its layers (no stale nodes after pop())."""
        for node in self._nodes:
            nodes = node.layer._inbound_nodes
            if any(n is node for n in nodes):
                nodes.remove(node)
        self._nodes = []

    def _build_graph(self) -> None:
        self._forget_nodes()
        t = self._input
        try:
            for layer in self._stack:
                t = self._call_layer(layer, t)
        except Exception:
            self._forget_nodes()
            raise
        self._set_graph(t)

    def _set_graph(self, out: KerasTensor) -> None:
        self._graph = Graph([self._input], [out])
        self._input_structure, self._output_structure = self._input, out
        self._plans.clear()

    def _ensure_built(self, shapes: list) -> None:
        if self._graph is not None:
            return
        if not self._stack:
            raise ValueError("This Sequential model has no layers: add some with "
                             "Sequential([...]) or model.add(layer)")
        if len(shapes) != 1:
            raise ValueError(f"A Sequential model has one input; got {len(shapes)} inputs")
        given = self._input
        if self._input is None:
            self._input = Input(batch_shape=(None,) + tuple(shapes[0][1:]))
        try:
            self._build_graph()
        except Exception:
            self._input = given
            raise

    def _graph_for(self, shapes, training):
        self._ensure_built(shapes)
        return self._graph

    @property
    def _is_subclassed(self) -> bool:
        return False

    @property
    def layers(self) -> list[Layer]:
        return list(self._stack)

    def _show_input_layer(self) -> bool:
        return False

    def get_config(self) -> dict:
        from . import functional_config
        return functional_config.sequential_config(self)

    @classmethod
    def from_config(cls, config, custom_objects=None):
        from . import functional_config
        return functional_config.sequential_from_config(cls, config, custom_objects)
