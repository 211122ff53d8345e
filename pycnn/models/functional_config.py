"""Model configs as Keras writes them, and models rebuilt from them.

Keras 3 (``config.json`` of a ``.keras`` file, ``model.get_config()``): a functional model is
``{"name", "trainable", "layers": [entry, ...], "input_layers", "output_layers"}``; each layer
entry is the layer's serialized config plus ``name``, ``build_config`` and ``inbound_nodes``
(``{"args": [...], "kwargs": {...}}`` per call, tensors as ``__keras_tensor__`` with a
``keras_history`` of ``[layer name, node index, tensor index]``). A Sequential model is
``{"name", "layers": [InputLayer entry, layer entries], "build_input_shape"}``.

tf.keras 2 (``model_config`` of an ``.h5`` file): the same without ``module``, and each node a
list of ``[layer name, node index, tensor index, kwargs]``. Both are read; Keras 3's is written
(``legacy=True`` writes tf.keras 2's).
"""
from __future__ import annotations

import inspect
from typing import Any, Optional

from .. import serialization
from ..layers.base import Layer
from ..layers.symbolic import Input, InputLayer, KerasTensor, Node

_MODULES = {"Functional": "keras.src.models.functional", "Sequential": "keras",
            "Model": "keras.src.models.model"}


# ---- writing -------------------------------------------------------------------------------------
def keras_class_name(obj) -> str:
    """The class name Keras writes (a functional pycnn Model is Keras' ``Functional``)."""
    from .model import Model
    from .sequential import Sequential
    cls = type(obj)
    if cls is Model or (isinstance(obj, Model) and not isinstance(obj, Sequential) and
                        obj._graph is not None and cls.get_config is Model.get_config):
        return "Functional"
    return cls.__name__


def serialize_layer(layer: Layer, legacy: bool = False) -> dict:
    """A layer (or nested model) as one entry of a model config, without graph links."""
    from .model import Model
    name = keras_class_name(layer)
    if legacy:
        config = layer.get_config() if not isinstance(layer, Model) else \
            model_config(layer, legacy=True)
        if isinstance(layer, InputLayer):       # tf.keras 2's name of the key
            config = {"batch_input_shape": config["batch_shape"], "dtype": "float32",
                      "sparse": False, "ragged": False, "name": layer.name}
        return {"class_name": "Functional" if name == "Functional" else name,
                "config": config}
    config = layer.get_config() if not isinstance(layer, Model) else model_config(layer)
    registered = getattr(type(layer), "_registered_name", None)
    entry = {"module": _MODULES.get(name, serialization._keras_module(type(layer))),
             "class_name": name, "config": config,
             "registered_name": registered or (name if name == "Functional" else None)}
    if not isinstance(layer, InputLayer):
        shape = _build_shape(layer)
        if shape is not None:
            entry["build_config"] = {"input_shape": shape}
    return entry


def _build_shape(layer: Layer):
    if not layer._inbound_nodes:
        return None
    shapes = [list(t.shape) for t in layer._inbound_nodes[0].inputs]
    if not shapes:
        return None
    return shapes if layer.multi_input or len(shapes) > 1 else shapes[0]


def model_config(model, legacy: bool = False) -> dict:
    from .sequential import Sequential
    if isinstance(model, Sequential):
        return sequential_config(model, legacy)
    if model._graph is None:               # subclassed: its constructor's arguments
        return {"name": model.name, "trainable": model.trainable}
    return get_config(model, legacy)


def get_config(model, legacy: bool = False) -> dict:
    """A functional model's config (Keras 3's layout; tf.keras 2's with ``legacy``)."""
    from .model import Model
    if model._graph is None:
        return {"name": model.name, "trainable": model.trainable}
    graph = model._graph
    in_model = {id(n) for n in graph.nodes} | {id(n) for n in graph.input_nodes()}
    node_index: dict[int, int] = {}
    for layer in graph.layers:
        k = 0
        for node in layer._inbound_nodes:
            if id(node) in in_model:
                node_index[id(node)] = k
                k += 1

    def history(t: KerasTensor) -> list:
        k = node_index.get(id(t.node), 0)
        if legacy and isinstance(t.node.layer, Model):
            k += 1          # tf.keras 2 counts a model's own construction as its node 0
        return [t.node.layer.name, k, t.index]

    def tensor(t: KerasTensor):
        if legacy:
            return None
        return {"class_name": "__keras_tensor__",
                "config": {"shape": list(t.shape), "dtype": "float32",
                           "keras_history": history(t)}}

    layers = []
    for layer in graph.layers:
        entry = serialize_layer(layer, legacy)
        entry["name"] = layer.name
        nodes = [n for n in layer._inbound_nodes if id(n) in in_model and n.inputs]
        if legacy:
            entry["inbound_nodes"] = [
                [history(t) + [{"training": n.training} if n.training is not None else {}]
                 for t in n.inputs] for n in nodes]
        else:
            entry["inbound_nodes"] = []
            for n in nodes:
                if isinstance(n.input_structure, (list, tuple)):
                    args = [[tensor(t) for t in n.inputs]]
                else:
                    args = [tensor(n.inputs[0])]
                kwargs = {} if n.training is None else {"training": n.training}
                entry["inbound_nodes"].append({"args": args, "kwargs": kwargs})
        layers.append(entry)

    def io(structure, tensors):
        if isinstance(structure, dict):
            return {k: history(t) for k, t in structure.items()}
        if isinstance(structure, (list, tuple)) or legacy:
            return [history(t) for t in tensors]
        return history(tensors[0])

    return {"name": model.name, "trainable": model.trainable, "layers": layers,
            "input_layers": io(model._input_structure, graph.inputs),
            "output_layers": io(model._output_structure, graph.outputs)}


def sequential_config(model, legacy: bool = False) -> dict:
    entries = []
    if model._input is not None and model._graph is not None:
        inp = model._input.node.layer
        entries.append(serialize_layer(inp, legacy))
    entries += [serialize_layer(l, legacy) for l in model.layers]
    config = {"name": model.name, "trainable": model.trainable, "layers": entries}
    if model._input is not None:
        config["build_input_shape"] = list(model._input.shape)
    return config


def serialize_model(model, legacy: bool = False) -> dict:
    """The whole ``config.json`` entry of a model (with its compile config when compiled)."""
    entry = serialize_layer(model, legacy)
    if not legacy and model.built:
        entry["build_config"] = {"input_shape": None if model._graph is not None else
                                 [list(t.shape) for t in model.inputs][0]}
    cfg = getattr(model, "_compile_config", None)
    if cfg is not None and not legacy:
        entry["compile_config"] = compile_config(model)
    return entry


def compile_config(model) -> dict:
    cfg = model._compile_config

    def ser(v):
        if isinstance(v, (list, tuple)):
            return [ser(x) for x in v]
        if isinstance(v, dict):
            return {k: ser(x) for k, x in v.items()}
        return serialization.serialize(v)

    return {"optimizer": serialization.serialize(model.optimizer), "loss": ser(cfg["loss"]),
            "loss_weights": cfg["loss_weights"], "metrics": ser(cfg["metrics"]),
            "weighted_metrics": ser(cfg["weighted_metrics"]), "run_eagerly": False,
            "steps_per_execution": 1, "jit_compile": False}


# ---- reading -------------------------------------------------------------------------------------
def _class_table() -> dict:
    from .. import layers as layers_mod
    from .model import Model
    from .sequential import Sequential
    table = {name: obj for name, obj in vars(layers_mod).items()
             if isinstance(obj, type) and issubclass(obj, Layer)}
    table.update({"Functional": Model, "Model": Model, "Sequential": Sequential})
    return table


def deserialize_layer(entry: dict, custom_objects: Optional[dict] = None,
                      where: str = "config"):
    """A layer or nested model from its config entry (Keras 3 or tf.keras 2)."""
    if not isinstance(entry, dict) or "class_name" not in entry:
        raise ValueError(f"{where}: not a layer config: {str(entry)[:200]}")
    name = entry["class_name"]
    config = entry.get("config", {})
    label = f"{where}: layer {config.get('name', '?')!r}"
    cls = serialization.get_registered_object(entry.get("registered_name") or name,
                                              custom_objects, _class_table())
    if cls is None:
        cls = serialization.get_registered_object(name, custom_objects, _class_table())
    if cls is None:
        raise ValueError(f"{where}: unknown layer class {name!r} (layer "
                         f"{config.get('name', '?')!r}); pass it in custom_objects or "
                         "register it with pycnn.saving.register_keras_serializable")
    from .model import Model
    if isinstance(cls, type) and issubclass(cls, Model):
        return cls.from_config(config, custom_objects=custom_objects) \
            if "custom_objects" in inspect.signature(cls.from_config).parameters \
            else cls.from_config(config)
    if "from_config" in cls.__dict__ and cls.from_config.__func__ is not Layer.from_config.__func__:
        with serialization.custom_object_scope(custom_objects or {}):
            return cls.from_config(config)
    with serialization.custom_object_scope(custom_objects or {}):
        layer = serialization.construct(cls, config, label)
    build = entry.get("build_config")
    if build and build.get("input_shape") is not None and not layer.built:
        layer._pending_build_shape = build["input_shape"]
    return layer


def _tensor_refs(args: Any) -> Any:
    """Replace ``__keras_tensor__`` dicts by their keras_history triples, keeping structure."""
    if isinstance(args, dict):
        if args.get("class_name") == "__keras_tensor__":
            return tuple(args["config"]["keras_history"])
        return {k: _tensor_refs(v) for k, v in args.items()}
    if isinstance(args, (list, tuple)):
        return [_tensor_refs(a) for a in args]
    return args


def from_config(cls, config: dict, custom_objects: Optional[dict] = None):
    """A functional model rebuilt from its config (Keras 3 or tf.keras 2)."""
    from .model import Model
    if "layers" not in config:                     # a subclassed model's own config
        if cls is Model:
            raise ValueError("A functional model config needs 'layers', 'input_layers' and "
                             "'output_layers'")
        return serialization.construct(cls, config, f"{cls.__name__} config")
    where = f"model {config.get('name', '?')!r}"
    created: dict[str, Layer] = {}
    outputs_of: dict[tuple, KerasTensor] = {}      # (layer, node index, tensor) -> tensor
    node_counts: dict[str, int] = {}
    pending: list = []
    for entry in config["layers"]:
        name = entry.get("name") or entry.get("config", {}).get("name")
        if entry.get("class_name") == "InputLayer":
            cfg = dict(entry["config"])
            shape = cfg.get("batch_shape") or cfg.get("batch_input_shape")
            t = Input(batch_shape=tuple(shape), name=cfg.get("name", name))
            created[name] = t.node.layer
            outputs_of[(name, 0, 0)] = t
            node_counts[name] = 1
            continue
        layer = deserialize_layer(entry, custom_objects, where)
        created[name] = layer
        # tf.keras 2 counts a model's own construction as its node 0: its calls start at 1
        legacy_node = bool(entry.get("inbound_nodes")) and \
            not isinstance(entry["inbound_nodes"][0], dict)
        node_counts[name] = 1 if legacy_node and isinstance(layer, Model) else 0
        for node in entry.get("inbound_nodes", []):
            pending.append((name, node))

    def resolve(ref):
        if isinstance(ref, tuple):
            return outputs_of.get((ref[0], ref[1], ref[2]))
        if isinstance(ref, list):
            vals = [resolve(r) for r in ref]
            return None if any(v is None for v in vals) else vals
        return ref

    while pending:
        progress = False
        rest = []
        for name, node in pending:
            if isinstance(node, dict):               # Keras 3
                args = _tensor_refs(node.get("args", []))
                kwargs = node.get("kwargs", {}) or {}
                inputs = resolve(args[0]) if args else None
            else:                                    # tf.keras 2: [[name, node, tensor, kw]]
                refs = [tuple(r[:3]) for r in node]
                kwargs = node[0][3] if node and len(node[0]) > 3 else {}
                tensors = [outputs_of.get(r) for r in refs]
                inputs = None if any(t is None for t in tensors) else \
                    (tensors if len(tensors) > 1 else tensors[0])
            if inputs is None or any(n == name and r is not None for n, r in rest if False):
                rest.append((name, node))
                continue
            layer = created[name]
            training = kwargs.get("training") if isinstance(kwargs, dict) else None
            out = layer(inputs, training=training)
            outs = out if isinstance(out, list) else [out]
            if isinstance(out, dict):
                outs = list(out.values())
            k = node_counts[name]
            for i, t in enumerate(outs):
                outputs_of[(name, k, i)] = t
            node_counts[name] = k + 1
            progress = True
        if not progress:
            missing = sorted({n for n, _ in rest})
            raise ValueError(f"{where}: the layer graph cannot be rebuilt; the inputs of "
                             f"layer(s) {missing} are never produced")
        pending = rest

    def io(spec):
        if isinstance(spec, dict):
            return {k: outputs_of[tuple(v[:3])] for k, v in spec.items()}
        if spec and isinstance(spec[0], str):
            return outputs_of[tuple(spec[:3])]
        return [outputs_of[tuple(v[:3])] for v in spec]

    try:
        inputs, outputs = io(config["input_layers"]), io(config["output_layers"])
    except KeyError as err:
        raise ValueError(f"{where}: input or output tensor {err} is not in the graph") \
            from None
    if isinstance(inputs, list) and len(inputs) == 1 and not isinstance(
            config["input_layers"][0], list):
        inputs = inputs[0]
    model = Model(inputs=inputs, outputs=outputs, name=config.get("name"),
                  trainable=config.get("trainable", True)) if cls is Model else \
        cls(inputs=inputs, outputs=outputs, name=config.get("name"))
    return model


def sequential_from_config(cls, config, custom_objects: Optional[dict] = None):
    if isinstance(config, list):                   # very old Keras: a list of layers
        config = {"layers": config}
    model = cls(name=config.get("name"))
    for entry in config.get("layers", []):
        if entry.get("class_name") == "InputLayer":
            cfg = entry["config"]
            shape = cfg.get("batch_shape") or cfg.get("batch_input_shape")
            model.add(Input(batch_shape=tuple(shape), name=cfg.get("name")))
            continue
        layer = deserialize_layer(entry, custom_objects, f"model {model.name!r}")
        if not model._stack and model._input is None:
            cfg = entry.get("config", {})
            shape = cfg.get("batch_input_shape") or cfg.get("batch_shape")
            if shape is None and config.get("build_input_shape"):
                shape = config["build_input_shape"]
            if shape is not None:
                model.add(Input(batch_shape=tuple(shape)))
        model.add(layer)
    if model._graph is None and config.get("build_input_shape"):
        model.build(tuple(config["build_input_shape"]))
    if "trainable" in config:
        model.trainable = config["trainable"]
    return model
