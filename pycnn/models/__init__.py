"""Models: the functional ``Model``, ``Sequential``, and the functions that save, load, clone
and rebuild them (``keras.models``)."""
from __future__ import annotations

import json
from typing import Optional

from ..saving import load_model, save_model
from .model import Model
from .sequential import Sequential


def model_from_config(config: dict, custom_objects: Optional[dict] = None):
    """A model from ``{"class_name": ..., "config": ...}`` (``model.get_config()`` wrapped as
    Keras serialises it)."""
    from .functional_config import deserialize_layer
    return deserialize_layer(config, custom_objects, "model_from_config")


def model_from_json(json_string: str, custom_objects: Optional[dict] = None):
    """A model (new weights) from ``model.to_json()``."""
    try:
        config = json.loads(json_string)
    except ValueError as err:
        raise ValueError(f"model_from_json: not JSON ({err})") from None
    return model_from_config(config, custom_objects)


def clone_model(model, input_tensors=None, clone_function=None):
    """A new model with the same architecture and new, freshly initialised weights (Keras'
    ``clone_model``; copy weights with ``set_weights(model.get_weights())``)."""
    if input_tensors is not None or clone_function is not None:
        raise ValueError("pycnn's clone_model does not take input_tensors or clone_function")
    from .functional_config import serialize_model, deserialize_layer
    return deserialize_layer(serialize_model(model), None, "clone_model")


__all__ = ["Model", "Sequential", "clone_model", "load_model", "model_from_config",
           "model_from_json", "save_model"]
