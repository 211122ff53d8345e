"""``Model``: a graph of layers that is itself a layer.

Three ways to make one, as in Keras:
- functional: ``Model(inputs=..., outputs=...)`` over symbolic tensors (any number of inputs and
  outputs, as lists or dicts; shared layers; models used as layers);
- ``Sequential`` (sequential.py), a stack;
- subclassing: ``class M(Model)`` creating layers in ``__init__`` and composing them in
  ``call(inputs, training=None)``; pycnn traces ``call`` on symbolic inputs the first time it
  sees data of a shape, which gives the same graph a functional model has.

Running a model is the compiled plan's business (plan.py); training is trainer.py's; this file
holds structure, weights and the summary.
"""
from __future__ import annotations

import contextlib
import inspect
import math
import threading
from typing import Any, Optional, Sequence

import numpy as np

from .. import backend
from ..layers.base import Layer, Variable, format_shape
from ..layers.symbolic import Input, InputLayer, KerasTensor, Node, flatten, pack_like
from ..utils import summary_table
from . import data as data_mod
from . import saving
from .graph import Graph
from .plan import Plan
from .trainer import Trainer


class Model(Trainer, Layer):
    """A model of layers. Functional API::

        inputs = pycnn.Input(shape=(28, 28, 1))
        x = layers.Conv2D(32, 3, activation="relu")(inputs)
        ...
        model = pycnn.Model(inputs=inputs, outputs=outputs)

    or subclassing::

        class MyModel(pycnn.Model):
            def __init__(self):
                super().__init__()
                self.dense = layers.Dense(10, activation="softmax")

            def call(self, inputs, training=None):
                return self.dense(inputs)
    """

    _default_name = "model"

    @classmethod
    def _auto_name(cls) -> str:
        """tf.keras 2's default name: ``model`` for ``Model(inputs, outputs)``, ``sequential``,
        else the snake_case of the subclass' name (``my_model`` for ``class MyModel``)."""
        if "_default_name" in cls.__dict__:
            return cls._default_name
        return backend.snake_case(cls.__name__)

    def __init__(self, *args, **kwargs):
        inputs = kwargs.pop("inputs", None)
        outputs = kwargs.pop("outputs", None)
        if args:
            if inputs is None:
                inputs, args = args[0], args[1:]
            if args and outputs is None:
                outputs, args = args[0], args[1:]
            if args:
                raise TypeError("Model() takes inputs and outputs as arguments")
        name = kwargs.pop("name", None)
        trainable = kwargs.pop("trainable", True)
        for key in ("dtype", "autocast"):
            kwargs.pop(key, None)
        if kwargs:
            raise TypeError(f"Unrecognized keyword arguments passed to Model: {kwargs}")
        object.__setattr__(self, "_tracked", [])
        Layer.__init__(self, name=name or backend.unique_name(self._auto_name()),
                       trainable=trainable)
        Trainer.__init__(self)
        self._graph: Optional[Graph] = None
        self._traced: dict = {}                 # subclassed: (shapes, training) -> Graph
        self._plans: dict = {}
        self._fusions: dict[str, bool] = {}
        self._input_structure: Any = None
        self._output_structure: Any = None
        if inputs is None and outputs is None:
            if type(self) is Model:
                raise ValueError("Model() needs `inputs` and `outputs` (functional API), or "
                                 "subclass Model and define call()")
            return
        if inputs is None or outputs is None:
            raise ValueError("Model() needs both `inputs` and `outputs`")
        self._init_graph(inputs, outputs)

    def _init_graph(self, inputs, outputs) -> None:
        if isinstance(inputs, dict):
            self._input_names = list(inputs)
        self._input_structure = inputs
        self._output_structure = outputs
        self._graph = Graph(flatten(inputs), flatten(outputs))
        self._plans.clear()

    # ---- attribute tracking (subclassed models) ------------------------------------------------
    def __setattr__(self, name: str, value) -> None:
        tracked = self.__dict__.get("_tracked")
        if tracked is not None and not name.startswith("_"):
            for v in (value if isinstance(value, (list, tuple)) else [value]):
                if isinstance(v, Layer) and not any(v is t for t in tracked):
                    tracked.append(v)
        object.__setattr__(self, name, value)

    # ---- structure -----------------------------------------------------------------------------
    @property
    def _is_subclassed(self) -> bool:
        return self._graph is None and type(self).call is not Model.call

    @property
    def built(self) -> bool:
        return self._graph is not None or bool(self._traced)

    @built.setter
    def built(self, value: bool) -> None:
        pass

    @property
    def trainable(self) -> bool:
        """Whether the optimizer updates the model's weights. Setting it sets it on every
        layer of the model (nested models' layers included), as Keras does: a model frozen
        with ``trainable = False`` stays frozen inside a model that uses it."""
        return self._trainable

    @trainable.setter
    def trainable(self, value: bool) -> None:
        self._trainable = bool(value)
        for layer in self.layers:
            layer.trainable = value

    @property
    def layers(self) -> list[Layer]:
        if self._graph is not None:
            return list(self._graph.layers)
        return [l for l in self._tracked if not isinstance(l, InputLayer)]

    @property
    def inputs(self) -> list[KerasTensor]:
        return list(self._current_graph().inputs) if self.built else []

    @property
    def outputs(self) -> list[KerasTensor]:
        return list(self._current_graph().outputs) if self.built else []

    @property
    def input(self):
        """The model's symbolic input(s), as given to ``Model(inputs=...)``."""
        self._require_built("input")
        if self._input_structure is not None:
            return self._input_structure
        ins = self.inputs
        return ins[0] if len(ins) == 1 else ins

    @property
    def output(self):
        """The model's symbolic output(s), as given to ``Model(outputs=...)``."""
        self._require_built("output")
        if self._output_structure is not None:
            return self._output_structure
        outs = self.outputs
        return outs[0] if len(outs) == 1 else outs

    @property
    def input_names(self) -> list[str]:
        names = getattr(self, "_input_names", None)
        return list(names) if names else [t.name for t in self.inputs]

    @property
    def output_names(self) -> list[str]:
        if isinstance(self._output_structure, dict):
            return list(self._output_structure)
        if self._graph is None and self._traced:        # subclassed: tf.keras 2's names
            return [f"output_{i + 1}" for i in range(len(self.outputs))]
        return [t.node.layer.name if t.node is not None else t.name for t in self.outputs]

    @property
    def input_shape(self):
        self._require_built("input_shape")
        shapes = [t.shape for t in self.inputs]
        return shapes[0] if len(shapes) == 1 else shapes

    @property
    def output_shape(self):
        self._require_built("output_shape")
        shapes = [t.shape for t in self.outputs]
        return shapes[0] if len(shapes) == 1 else shapes

    def get_layer(self, name: Optional[str] = None, index: Optional[int] = None) -> Layer:
        """The layer called ``name`` (or at position ``index`` of ``model.layers``)."""
        if index is not None:
            if name is not None:
                raise ValueError("Provide only a layer name or a layer index, not both")
            if not -len(self.layers) <= index < len(self.layers):
                raise ValueError(f"Was asked to retrieve layer at index {index} but model only "
                                 f"has {len(self.layers)} layers.")
            return self.layers[index]
        for layer in self.layers:
            if layer.name == name:
                return layer
        raise ValueError(f"No such layer: {name}. Existing layers are: "
                         f"{[l.name for l in self.layers]}.")

    def _require_built(self, what: str) -> None:
        if not self.built:
            raise ValueError(f"This model has not yet been built. Build the model first by "
                             f"calling `build()` or by calling the model on a batch of data "
                             f"(needed for `{what}`).")

    def _current_graph(self) -> Graph:
        if self._graph is not None:
            return self._graph
        return next(iter(self._traced.values()))

    def _ensure_built(self, shapes: list[tuple]) -> None:
        """Sequential builds itself from the first data; a subclassed model traces call()."""
        if self._graph is None:
            self._graph_for(shapes, False)

    def _graph_for(self, shapes: list[tuple], training: bool) -> Graph:
        """The graph for inputs of ``shapes`` in a training mode (a functional model has one
        graph for all; a subclassed model traces ``call`` once per shape and mode)."""
        if self._graph is not None:
            return self._graph
        if not self._is_subclassed:
            raise ValueError(f'Model "{self.name}" has no layers to run: give Model() inputs '
                             "and outputs, or subclass Model and define call()")
        key = (tuple(tuple(s[1:]) for s in shapes), bool(training))
        graph = self._traced.get(key)
        if graph is None:
            graph = self._trace(shapes, training)
            self._traced[key] = graph
        return graph

    def _trace(self, shapes: list[tuple], training: bool) -> Graph:
        keys = getattr(self, "_input_names", None)
        if keys and len(keys) == len(shapes):       # called with a dict: call() gets a dict
            tensors = [Input(batch_shape=(None,) + tuple(s[1:]), name=k)
                       for k, s in zip(keys, shapes)]
            structure = dict(zip(keys, tensors))
        else:
            tensors = [Input(batch_shape=(None,) + tuple(s[1:]),
                             name=f"{self.name}_input_{i}") for i, s in enumerate(shapes)]
            structure = tensors[0] if len(tensors) == 1 else tensors
        kwargs = {}
        params = inspect.signature(self.call).parameters
        if "training" in params:
            kwargs["training"] = training
        from ..ops.core import tracing
        with tracing():                 # ops on weights inside call() record graph nodes
            outputs = self.call(structure, **kwargs)
        if self._output_structure is None or not self._traced:
            self._output_structure = outputs
        if not all(isinstance(t, KerasTensor) for t in flatten(outputs)):
            raise TypeError(f'Model "{self.name}": call() must return the outputs of layers '
                            "(pycnn traces call() on symbolic inputs); got "
                            f"{[type(t).__name__ for t in flatten(outputs)]}")
        return Graph(tensors, flatten(outputs))

    def call(self, inputs, training=None):
        """The forward pass of a subclassed model, written with layer calls."""
        raise NotImplementedError(f"Model {type(self).__name__} has no call()")

    def compute_output_shape(self, input_shape):
        shapes = input_shape if isinstance(input_shape, list) else [input_shape]
        outs = [t.shape for t in self._graph_for(shapes, False).outputs]
        return outs[0] if len(outs) == 1 else outs

    # ---- plans ---------------------------------------------------------------------------------
    def set_fusion(self, rule: str, enabled: bool) -> None:
        """Switch one fusion rule of the compiled plan (models/fusion.py) on or off."""
        from . import fusion
        if rule not in fusion.RULES:
            raise ValueError(f"Unknown fusion rule {rule!r}; known: {sorted(fusion.RULES)}")
        self._fusions[rule] = bool(enabled)
        self._plans.clear()

    def compiled_plan(self, training: bool = False, logits=(), input_grads: bool = False,
                      shapes: Optional[list] = None) -> Plan:
        """The plan that runs this model (cached per mode, which outputs stop at logits and
        which layers are trainable)."""
        if shapes is None:
            self._require_built("compiled_plan")
            shapes = [t.shape for t in self.inputs]
        graph = self._graph_for(shapes, training)
        trainable = tuple(v.trainable and l.trainable for l in _all_layers(self)
                          for v in l.weights)
        key = (id(graph), bool(training), tuple(logits), input_grads, trainable)
        plan = self._plans.get(key)
        if plan is None:
            if len(self._plans) > 16:
                self._plans.clear()
            plan = Plan(graph, bool(training), logits, dict(self._fusions), input_grads)
            plan.graph = graph
            self._plans[key] = plan
        return plan

    @contextlib.contextmanager
    def _running(self, plan: Optional[Plan] = None):
        """Hold the model's lock and every layer's weights lock while a batch runs (so that the
        weights API of another thread never sees half an update), then drop the plan's
        references to the caller's arrays."""
        with self._lock:
            locks = sorted({id(l): l._lock for l in _all_layers(self)}.items())
            with contextlib.ExitStack() as stack:
                for _, lock in locks:
                    stack.enter_context(lock)
                try:
                    yield
                finally:
                    if plan is not None:
                        plan.release()

    # ---- inputs ------------------------------------------------------------------------------
    def _flatten_inputs(self, x, where: str) -> list:
        """The arrays for each model input, in the order of ``model.inputs``."""
        if isinstance(x, dict):
            if not self.built and self._graph is None:
                self._input_names = list(x)     # a subclassed model traced with these keys
            names = self.input_names if self.built else list(x)
            missing = [n for n in names if n not in x]
            if missing:
                raise ValueError(f"{where}: missing data for input(s) {missing}; the model's "
                                 f"inputs are {names}, got keys {sorted(x)}")
            return [x[n] for n in names]
        if isinstance(x, (list, tuple)) and x and all(
                isinstance(a, np.ndarray) or hasattr(a, "__array__") for a in x) and \
                (len(x) > 1 or (self.built and len(self.inputs) == 1 and
                                isinstance(x[0], np.ndarray) and
                                (x[0].ndim == len(self.inputs[0].shape)))):
            return list(x)
        return [x]

    def _prepare_inputs(self, x, where: str) -> list[np.ndarray]:
        xs = self._flatten_inputs(x, where)
        xs = [data_mod.as_float_input(a, where if len(xs) == 1 else f"{where}[{i}]")
              for i, a in enumerate(xs)]
        self._ensure_built([(None,) + a.shape[1:] for a in xs])
        want = [t.shape for t in self.inputs]
        if len(xs) != len(want):
            raise ValueError(f"{where}: the model expects {len(want)} input(s) "
                             f"{self.input_names}, but it received {len(xs)} input array(s)")
        for i, (a, w) in enumerate(zip(xs, want)):
            if a.ndim != len(w) or any(d is not None and d != g
                                       for d, g in zip(w[1:], a.shape[1:])):
                raise ValueError(f'Input {i} of layer "{self.name}" is incompatible with the '
                                 f"layer: expected shape={format_shape(w)}, found shape="
                                 f"{format_shape((None,) + a.shape[1:])} (in {where})")
        n = {len(a) for a in xs}
        if len(n) > 1:
            raise ValueError(f"{where}: all input arrays must have the same number of samples; "
                             f"got {[len(a) for a in xs]}")
        return xs

    def _pack_outputs(self, outs: list):
        if isinstance(self._output_structure, dict):
            return dict(zip(self._output_structure, outs))
        if isinstance(self._output_structure, (list, tuple)):
            return pack_like(list(self._output_structure), outs)
        return outs[0] if len(outs) == 1 else outs

    # ---- calling -------------------------------------------------------------------------------
    def __call__(self, inputs, training: Optional[bool] = None, mask=None, **kwargs):
        """On symbolic tensors: a node of an enclosing graph (a nested model). On arrays: the
        outputs for a batch (as ``predict`` without batching or progress bar)."""
        if kwargs:
            raise TypeError(f"Model.__call__ got unexpected arguments {kwargs}")
        flat = flatten(inputs)
        if any(isinstance(t, KerasTensor) for t in flat):
            if isinstance(inputs, dict) and self.built:
                flat = [inputs[n] for n in self.input_names]
            graph = self._graph_for([t.shape for t in flat], bool(training))
            for i, (t, want) in enumerate(zip(flat, graph.inputs)):
                if len(t.shape) != len(want.shape) or any(
                        a is not None and b is not None and a != b
                        for a, b in zip(t.shape[1:], want.shape[1:])):
                    raise ValueError(f'Input {i} of layer "{self.name}" is incompatible with '
                                     f"the layer: expected shape={format_shape(want.shape)}, "
                                     f"found shape={format_shape(t.shape)}")
            outs = [KerasTensor(t.shape) for t in graph.outputs]
            Node(self, flat, outs, training)
            return self._pack_outputs(outs)
        xs = self._prepare_inputs(inputs, f'model "{self.name}"')
        plan = self.compiled_plan(bool(training))
        with self._running(plan):
            outs = [np.array(o, dtype=np.float32, copy=True) for o in plan.forward(xs)]
        return self._pack_outputs(outs)

    def build(self, input_shape) -> None:
        """Build the model for inputs of ``input_shape`` (batch axis first, may be None)."""
        shapes = input_shape if isinstance(input_shape, list) and input_shape and \
            isinstance(input_shape[0], (list, tuple)) else [input_shape]
        self._ensure_built([tuple(s) for s in shapes])
        self._require_built("build")

    # ---- weights -------------------------------------------------------------------------------
    @property
    def weights(self) -> list[Variable]:
        out, seen = [], set()
        for layer in self.layers:
            for v in layer.weights:
                if id(v) not in seen:
                    seen.add(id(v))
                    out.append(v)
        return out

    @property
    def trainable_weights(self) -> list[Variable]:
        if not self.trainable:
            return []
        out, seen = [], set()
        for layer in self.layers:
            for v in layer.trainable_weights:
                if id(v) not in seen:
                    seen.add(id(v))
                    out.append(v)
        return out

    @property
    def non_trainable_weights(self) -> list[Variable]:
        trainable = {id(v) for v in self.trainable_weights}
        return [v for v in self.weights if id(v) not in trainable]

    @property
    def variables(self) -> list[Variable]:
        return self.weights

    def get_weights(self) -> list[np.ndarray]:
        """All weights as arrays: layer by layer, kernel then bias (Keras' order and shapes)."""
        with self._weights_locked():
            return [v.numpy() for v in self.weights]

    def set_weights(self, weights: Sequence) -> None:
        """Set all weights from arrays in ``get_weights()``'s order. Every count and shape is
        checked before any weight changes (the first layer that does not match is named)."""
        weights = list(weights)
        self._require_built("set_weights")
        variables = self.weights
        if len(weights) != len(variables):
            raise ValueError(f'Model "{self.name}" expects {len(variables)} weight arrays, but '
                             f"the list provided has {len(weights)}")
        arrays = []
        for var, w in zip(variables, weights):
            w = np.asarray(w)
            if w.shape != var.shape:
                raise ValueError(f'Layer "{var.name.split("/")[0]}" weight shape {var.shape} is '
                                 f"not compatible with provided weight shape {w.shape}")
            if w.dtype.kind not in "fiub":
                raise TypeError(f"Weight {var.name}: weights must be numeric, got {w.dtype}")
            arrays.append(w)
        with self._weights_locked():
            for var, w in zip(variables, arrays):
                var.assign(w)

    @contextlib.contextmanager
    def _weights_locked(self):
        locks = sorted({id(l): l._lock for l in _all_layers(self)}.items())
        with contextlib.ExitStack() as stack:
            for _, lock in locks:
                stack.enter_context(lock)
            yield

    def count_params(self) -> int:
        self._require_built("count_params")
        return int(sum(math.prod(v.shape) for v in self.weights))

    def save_weights(self, filepath, overwrite: bool = True, **kwargs) -> None:
        """Save all weights: ``.weights.h5`` (Keras 3), ``.h5`` (tf.keras 2) or ``.npz``."""
        self._require_built("save_weights")
        with self._weights_locked():
            saving.save_weights(self, filepath, overwrite, **kwargs)

    def load_weights(self, filepath, skip_mismatch: bool = False, by_name: bool = False,
                     **kwargs) -> None:
        """Load weights saved by pycnn or Keras; matched by layer name and shape."""
        self._require_built("load_weights")
        with self._weights_locked():
            saving.load_weights(self, filepath, skip_mismatch=skip_mismatch, by_name=by_name,
                                **kwargs)

    def save(self, filepath, overwrite: bool = True, **kwargs) -> None:
        """Save the whole model: ``.keras`` (Keras 3's format) or ``.h5`` (tf.keras 2)."""
        self._require_built("save")
        with self._weights_locked():
            saving.save_model(self, filepath, overwrite, **kwargs)

    # ---- summary -------------------------------------------------------------------------------
    def _summary_layers(self) -> list[tuple[Layer, list[Node]]]:
        """The layers the summary lists, in Keras' order (``model.layers`` with the inputs of a
        functional model), each with its nodes in this model."""
        graph = self._current_graph()
        in_graph = {id(n) for n in graph._order}
        if self._show_input_layer():
            layers = list(graph.layers)
        else:
            layers, seen = [], set()
            for node in graph.nodes:
                if not isinstance(node.layer, InputLayer) and id(node.layer) not in seen:
                    seen.add(id(node.layer))
                    layers.append(node.layer)
        return [(layer, [n for n in layer._inbound_nodes if id(n) in in_graph])
                for layer in layers]

    @staticmethod
    def _summary_class_name(layer: Layer) -> str:
        return "Functional" if type(layer) is Model else type(layer).__name__

    @staticmethod
    def _node_shape_text(node: Node) -> str:
        shapes = [format_shape(t.shape) for t in node.outputs]
        return shapes[0] if len(shapes) == 1 else "[" + ", ".join(shapes) + "]"

    def _summary_rows(self, style: str = "tf_keras") -> list[tuple[str, str, str, int]]:
        """``(name, class name, output shape text, parameter count)`` per layer. tf.keras 2
        shows an input as ``[(None, 28, 28, 1)]``, a layer whose calls give different shapes
        as ``multiple`` (so is every layer of a subclassed model); Keras 3 shows the shape
        of the layer's last call."""
        rows = []
        subclassed = self._graph is None and not self._show_input_layer() and \
            type(self).call is not Model.call
        for layer, nodes in self._summary_layers():
            texts = [self._node_shape_text(n) for n in nodes]
            if style == "keras3":
                shape = texts[-1] if texts else "?"
            elif isinstance(layer, InputLayer):
                shape = f"[{texts[0]}]"
            elif subclassed or len(set(texts)) != 1:
                shape = "multiple"
            else:
                shape = texts[0]
            params = int(sum(math.prod(v.shape) for v in layer.weights))
            rows.append((layer.name, self._summary_class_name(layer), shape, params))
        return rows

    def _show_input_layer(self) -> bool:
        return self._graph is not None

    def _summary_is_sequential_like(self) -> bool:
        """Keras' test for the three-column table: a Sequential or subclassed model, or a
        functional one whose nodes form a chain (one node per depth, each with at most one
        input tensor, no layer called twice)."""
        if not self._show_input_layer():
            return True
        graph = self._current_graph()
        nodes = list(graph._order)
        in_graph = {id(n) for n in nodes}
        depth: dict[int, int] = {}
        for node in reversed(nodes):                    # consumers before their inputs
            d = depth.setdefault(id(node), 0)
            for t in node.inputs:
                if t.node is not None and id(t.node) in in_graph:
                    depth[id(t.node)] = max(depth.get(id(t.node), 0), d + 1)
        per_depth: dict[int, int] = {}
        for node in nodes:
            if len(node.inputs) > 1:
                return False
            per_depth[depth[id(node)]] = per_depth.get(depth[id(node)], 0) + 1
        if any(count > 1 for count in per_depth.values()):
            return False
        return len({id(n.layer) for n in nodes}) == len(nodes)

    def _summary_connections(self, layers_nodes) -> list[list[str]]:
        """Per layer, its inputs in this model as ``layer_name[node_index][tensor_index]``
        (the node's index among every call of that layer, as Keras counts)."""
        out = []
        for _layer, nodes in layers_nodes:
            cells = []
            for node in nodes:
                for t in node.inputs:
                    src = t.node
                    index = next(i for i, n in enumerate(src.layer._inbound_nodes) if n is src)
                    cells.append(f"{src.layer.name}[{index}][{t.index}]")
            out.append(cells)
        return out

    def summary(self, line_length: Optional[int] = None, positions=None, print_fn=None,
                expand_nested: bool = False, show_trainable: bool = False,
                layer_range=None, show_receptive_field: bool = False,
                show_flops: bool = False) -> None:
        """Print the layer table, as tf.keras 2.15 prints it (Keras 3's boxed table after
        ``pycnn.config.set_output_style("keras3")``): a functional model that is not a chain
        gets a "Connected to" column. ``show_receptive_field`` and ``show_flops`` add pycnn's
        columns (utils/layer_stats.py): each layer's receptive field and jump, and its FLOPs
        per sample."""
        from .. import config
        self._require_built("summary")
        trainable = int(sum(math.prod(v.shape) for v in self.trainable_weights))
        total = int(sum(math.prod(v.shape) for v in self.weights))
        kwargs = {}
        if line_length is not None:
            kwargs["line_length"] = line_length
        if positions is not None:
            kwargs["positions"] = positions
        if show_receptive_field or show_flops:
            from ..utils import layer_stats
            layer_stats.print_summary(self, self._summary_rows(), trainable, total - trainable,
                                      bool(show_receptive_field), bool(show_flops),
                                      print_fn=print_fn, **kwargs)
            return
        sequential_like = self._summary_is_sequential_like()
        if config.get_output_style() == "keras3":
            connections = None if sequential_like else \
                self._summary_connections(self._summary_layers())
            optimizer = self.optimizer if self._compiled else None
            optimizer_count = None
            if optimizer is not None and getattr(optimizer, "built", False):
                optimizer_count = int(sum(math.prod(v.shape) for v in optimizer.variables))
            text = summary_table.keras3_summary_text(
                self.name, self._summary_rows("keras3"), trainable, total - trainable,
                connections=connections, optimizer_count=optimizer_count, **kwargs)
            if print_fn is None:
                import sys
                sys.stdout.write(text)
                sys.stdout.flush()
            else:
                print_fn(text)
            return
        rows = self._summary_rows()
        if not sequential_like:
            rows = [row + (cells,) for row, cells in
                    zip(rows, self._summary_connections(self._summary_layers()))]
            kwargs.setdefault("line_length", summary_table.CONNECTED_LINE_LENGTH)
            kwargs.setdefault("positions", summary_table.CONNECTED_POSITIONS)
            kwargs["headers"] = summary_table.CONNECTED_HEADERS
        summary_table.print_summary(self.name, rows, trainable, total - trainable,
                                    print_fn=print_fn, **kwargs)

    def _repr_html_(self) -> Optional[str]:
        """The summary as an HTML table, which Jupyter shows for a model (None before it is
        built: Jupyter then shows the repr)."""
        from ..utils import layer_stats
        return layer_stats.summary_html(self)

    # ---- config --------------------------------------------------------------------------------
    def get_config(self) -> dict:
        from . import functional_config
        return functional_config.get_config(self)

    @classmethod
    def from_config(cls, config: dict, custom_objects: Optional[dict] = None):
        from . import functional_config
        return functional_config.from_config(cls, config, custom_objects)

    def to_json(self, **kwargs) -> str:
        """The model's architecture as JSON (``models.model_from_json`` reads it)."""
        import json
        from . import functional_config
        return json.dumps(functional_config.serialize_model(self), **kwargs)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} name={self.name}, built={self.built}>"


def _all_layers(model) -> list[Layer]:
    """Every layer of a model, nested models' layers included (each once)."""
    out, seen = [], set()

    def walk(m):
        for layer in m.layers:
            if id(layer) in seen:
                continue
            seen.add(id(layer))
            out.append(layer)
            if isinstance(layer, Model):
                walk(layer)

    walk(model)
    return out
