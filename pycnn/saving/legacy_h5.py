"""tf.keras 2's HDF5 files: ``model.save("m.h5")`` (the model config, training config and
weights) and ``model.save_weights("w.h5")``.

Weights live in one group per layer (under ``model_weights`` for a whole model) whose
``weight_names`` attribute lists ``"<layer>/<weight>:0"`` names in the layer's order; the root
(or ``model_weights``) lists ``layer_names``. A nested model is one group holding all its
weights. Loading matches layers by position among the layers that have weights, or by name
with ``by_name=True``; within a layer, by weight name and shape.
"""
from __future__ import annotations

import json
from typing import Optional

import numpy as np

from .keras_h5 import _read_array

KERAS_VERSION = "2.15.0"


def _weighted_layers(model) -> list:
    return [l for l in model.layers if l.weights]


def _weight_name(var) -> str:
    return f"{var.name}:0"


#: HDF5 keeps attributes in an object header of at most 64 KiB: longer names cannot be stored.
MAX_NAME = 16384


def write_weights(model, group) -> None:
    names = [l.name for l in model.layers]
    long = [n for n in names if len(n.encode("utf8")) > MAX_NAME]
    if long:
        raise ValueError(f"Layer name of {len(long[0])} characters ({long[0][:40]!r}...) is "
                         f"too long for an HDF5 file (at most {MAX_NAME} bytes); rename the "
                         "layer or save as .keras or .npz")
    group.attrs["layer_names"] = np.array([n.encode("utf8") for n in names])
    group.attrs["backend"] = b"tensorflow"
    group.attrs["keras_version"] = KERAS_VERSION.encode()
    for layer in model.layers:
        g = group.create_group(layer.name.replace("/", "_"))
        wnames = [_weight_name(v) for v in layer.weights]
        g.attrs["weight_names"] = np.array([n.encode("utf8") for n in wnames])
        for v, n in zip(layer.weights, wnames):
            g.create_dataset(n, data=np.asarray(v.value, np.float32))


def read_weights(model, group, filepath: str, by_name: bool = False,
                 skip_mismatch: bool = False) -> None:
    from ..models.saving import assign_layers
    if "layer_names" not in group.attrs:
        raise ValueError(f"{filepath}: not a Keras weights file (no 'layer_names')")
    # no array larger than the model's largest weight is read (sizes checked before reading)
    largest = max((int(np.prod(v.shape)) for v in model.weights), default=0)
    stored = []
    for raw in group.attrs["layer_names"]:
        name = raw.decode("utf8") if isinstance(raw, bytes) else str(raw)
        g = group.get(name) if name in group else group.get(name.replace("/", "_"))
        if g is None:
            raise ValueError(f"{filepath}: layer group {name!r} is missing")
        wnames = [w.decode("utf8") if isinstance(w, bytes) else str(w)
                  for w in g.attrs.get("weight_names", [])]
        arrays = [(w, _read_array(g[w], f"{filepath}: {name}/{w}", largest)) for w in wnames]
        if arrays:
            stored.append((name, arrays))
    assign_layers(model, stored, filepath, skip_mismatch=skip_mismatch, by_name=by_name)


def write_model(model, h5) -> None:
    from ..models import functional_config
    config = functional_config.serialize_model(model, legacy=True)
    h5.attrs["keras_version"] = KERAS_VERSION
    h5.attrs["backend"] = "tensorflow"
    h5.attrs["model_config"] = json.dumps(config)
    cfg = getattr(model, "_compile_config", None)
    if cfg is not None:
        from .. import serialization
        opt = model.optimizer
        training = {"loss": _canonical(serialization.serialize(cfg["loss"])),
                    "metrics": serialization.serialize(cfg["metrics"]),
                    "weighted_metrics": serialization.serialize(cfg["weighted_metrics"]),
                    "loss_weights": cfg["loss_weights"],
                    "optimizer_config": {"class_name": type(opt).__name__,
                                         "config": opt.get_config()}}
        h5.attrs["training_config"] = json.dumps(training)
    write_weights(model, h5.create_group("model_weights"))


def read_model(h5, filepath: str, custom_objects: Optional[dict] = None):
    from ..models import functional_config
    raw = h5.attrs.get("model_config")
    if raw is None:
        raise ValueError(f"{filepath}: no model config in this HDF5 file (a weights-only "
                         "file? load it with model.load_weights)")
    if isinstance(raw, bytes):
        raw = raw.decode("utf8")
    try:
        config = json.loads(raw)
    except ValueError as err:
        raise ValueError(f"{filepath}: corrupt model config ({err})") from None
    try:
        model = functional_config.deserialize_layer(config, custom_objects, filepath)
    except ValueError as err:
        if filepath in str(err):
            raise
        raise ValueError(f"{filepath}: {err}") from None
    read_weights(model, h5["model_weights"], filepath)
    training = h5.attrs.get("training_config")
    return model, (json.loads(training) if isinstance(training, (str, bytes)) else None)


_ALIASES = {"mse": "mean_squared_error", "mae": "mean_absolute_error",
            "mape": "mean_absolute_percentage_error", "msle": "mean_squared_logarithmic_error",
            "bce": "binary_crossentropy", "kld": "kl_divergence"}


def _canonical(loss):
    """Loss names as tf.keras 2 files name them (Keras 3 reads only the long names)."""
    if isinstance(loss, str):
        return _ALIASES.get(loss, loss)
    if isinstance(loss, list):
        return [_canonical(v) for v in loss]
    if isinstance(loss, dict) and "class_name" not in loss:
        return {k: _canonical(v) for k, v in loss.items()}
    return loss
