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
                 trainable: bool = True):
        super().__init__(name=name, trainable=trainable)
        self._stack: list[Layer] = []
        self._input: Optional[KerasTensor] = None
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
        elif isinstance(layer, Layer):
            if any(l is layer for l in self._stack):
                raise ValueError(f'Layer "{layer.name}" is already in this Sequential model')
            if not self._stack and self._input is None and layer._batch_input_shape:
                self._input = Input(batch_shape=layer._batch_input_shape)
            self._stack.append(layer)
        else:
            raise TypeError(f"The added layer must be an instance of class Layer. Received: "
                            f"layer={layer!r} of type {type(layer).__name__}")
        self._graph = None
        if self._input is not None and self._stack:
            self._build_graph()

    def pop(self) -> Layer:
        """Remove and return the last layer."""
        if not self._stack:
            raise TypeError("There are no layers in the model.")
        layer = self._stack.pop()
        self._graph = None
        if self._input is not None and self._stack:
            self._build_graph()
        return layer

    def _build_graph(self) -> None:
        t = self._input
        for layer in self._stack:
            t = layer(t)
        self._graph = Graph([self._input], [t])

    def _ensure_built(self, x_shape: tuple) -> None:
        if self._graph is not None:
            return
        if not self._stack:
            raise ValueError("This Sequential model has no layers: add some with "
                             "Sequential([...]) or model.add(layer)")
        if self._input is None:
            self._input = Input(batch_shape=(None,) + tuple(x_shape[1:]))
        try:
            self._build_graph()
        except Exception:
            self._input = None if self._input.node.layer._batch_input_shape is None else self._input
            raise

    @property
    def layers(self) -> list[Layer]:
        return list(self._stack)

    def _show_input_layer(self) -> bool:
        return False
