"""The layer graph of a model: the nodes reachable from its outputs in topological order, a
forward pass through them and a backward pass in reverse that sums the gradients of tensors
consumed more than once. Models with one input and one output; any DAG between them."""
from __future__ import annotations

from typing import Optional

import numpy as np

from ..layers.base import Layer
from ..layers.symbolic import InputLayer, KerasTensor, Node


class Graph:
    def __init__(self, inputs: list[KerasTensor], outputs: list[KerasTensor]):
        for t in list(inputs) + list(outputs):
            if not isinstance(t, KerasTensor):
                raise TypeError(f"Model inputs and outputs must be symbolic tensors (from "
                                f"pycnn.Input and layer calls), got {type(t).__name__}")
        if len(inputs) != 1 or len(outputs) != 1:
            raise ValueError(f"pycnn models have one input and one output for now; got "
                             f"{len(inputs)} inputs and {len(outputs)} outputs")
        self.inputs, self.outputs = list(inputs), list(outputs)
        for t in self.inputs:
            if t.node is None or not isinstance(t.node.layer, InputLayer):
                raise ValueError("Model inputs must come from pycnn.Input(...)")
        self.nodes = self._topological_nodes()
        reached = {id(t) for n in self.nodes for t in n.outputs}
        if not all(id(t) in reached for t in self.inputs) or \
                sum(isinstance(n.layer, InputLayer) for n in self.nodes) != len(self.inputs):
            raise ValueError("The model's outputs are not computed from its inputs: every "
                             "path from the outputs back must end at the Input given in "
                             "`inputs`")
        self.layers: list[Layer] = []
        for n in self.nodes:
            if any(n.layer is l for l in self.layers):
                raise ValueError(f'Layer "{n.layer.name}" is used more than once in the model; '
                                 "shared layers are not supported yet")
            self.layers.append(n.layer)
        self._input_producers = {id(t): n for n in self.nodes for t in n.outputs}
        self.output_node = self.outputs[0].node
        self.set_fusion(True)

    def set_fusion(self, enabled: bool) -> None:
        """Run each convolution whose output feeds only a max pooling as one fused C call
        (same numbers, the convolution's output never stored); off: every layer on its own."""
        self._pool_of: dict[int, Node] = {}     # id(conv node) -> the pool node it feeds
        self._fused_pools: set[int] = set()
        if not enabled:
            return
        consumers: dict[int, list[Node]] = {}
        for node in self.nodes:
            for t in node.inputs:
                consumers.setdefault(t.id, []).append(node)
        for node in self.nodes:
            out = node.outputs[0]
            users = consumers.get(out.id, [])
            if len(users) != 1 or out is self.outputs[0]:
                continue
            can_fuse = getattr(node.layer, "can_fuse_pool", None)
            if can_fuse is not None and can_fuse(users[0].layer):
                self._pool_of[id(node)] = users[0]
                self._fused_pools.add(id(users[0]))

    @property
    def fused_pairs(self) -> list[tuple[Layer, Layer]]:
        """The (convolution, pooling) layer pairs that run fused."""
        return [(n.layer, self._pool_of[id(n)].layer) for n in self.nodes
                if id(n) in self._pool_of]

    def _topological_nodes(self) -> list[Node]:
        order: list[Node] = []
        state: dict[int, int] = {}          # 1 visiting, 2 done

        def visit(node: Node) -> None:
            s = state.get(id(node))
            if s == 2:
                return
            if s == 1:
                raise ValueError("The layer graph has a cycle")
            state[id(node)] = 1
            for t in node.inputs:
                if t.node is None:
                    raise ValueError(f"Tensor {t} was not produced by a layer")
                visit(t.node)
            state[id(node)] = 2
            order.append(node)

        for t in self.outputs:
            if t.node is None:
                raise ValueError(f"Tensor {t} was not produced by a layer")
            visit(t.node)
        return order

    @property
    def input_shape(self) -> tuple:
        return self.inputs[0].shape

    @property
    def output_shape(self) -> tuple:
        return self.outputs[0].shape

    def forward(self, x: np.ndarray, training: bool, logits: bool = False) -> np.ndarray:
        """The output for input x; with ``logits``, the output layer's values before its final
        activation (``Layer.forward_logits``)."""
        values = {self.inputs[0].id: x}
        for node in self.nodes:
            if isinstance(node.layer, InputLayer) or id(node) in self._fused_pools:
                continue
            pool = self._pool_of.get(id(node))
            if pool is not None:
                values[pool.outputs[0].id] = node.layer.forward_pooled(
                    values[node.inputs[0].id], pool.layer, training)
                continue
            fwd = node.layer.forward_logits if logits and node is self.output_node else \
                node.layer.forward
            values[node.outputs[0].id] = fwd(values[node.inputs[0].id], training)
        return values[self.outputs[0].id]

    def release_inputs(self) -> None:
        for layer in self.layers:
            layer.release_inputs()

    def backward(self, grad: np.ndarray, from_logits: bool = False) -> None:
        """Backpropagate d loss / d output (or d loss / d pre-activation of the output layer
        when ``from_logits``); weight gradients land in each Variable.grad."""
        grads: dict[int, np.ndarray] = {self.outputs[0].id: grad}
        for node in reversed(self.nodes):
            if isinstance(node.layer, InputLayer):
                continue
            g: Optional[np.ndarray] = grads.pop(node.outputs[0].id, None)
            if g is None:
                continue
            fused = id(node) in self._fused_pools
            if fused:                               # back through the pool and its convolution
                node = node.inputs[0].node
            src = node.inputs[0]
            need_dx = not isinstance(self._input_producers[id(src)].layer, InputLayer)
            if fused:
                dx = node.layer.backward_pooled(g, need_dx)
            elif from_logits and node is self.output_node:
                dx = node.layer.backward_from_logits(g, need_dx)
            else:
                dx = node.layer.backward(g, need_dx)
            if need_dx and dx is not None:
                prev = grads.get(src.id)
                grads[src.id] = dx if prev is None else prev + dx
