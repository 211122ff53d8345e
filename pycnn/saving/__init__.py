"""Saving and loading models and weights in Keras' formats (``keras.saving``):

- ``model.save("m.keras")`` / ``load_model("m.keras")``: Keras 3's zip (config + weights);
- ``model.save("m.h5")`` / ``load_model("m.h5")``: tf.keras 2's HDF5 model file;
- ``save_weights``/``load_weights`` with ``.weights.h5`` (Keras 3), ``.h5`` (tf.keras 2) or
  ``.npz`` (pycnn's own);
- ``register_keras_serializable``, ``custom_object_scope`` for your own classes.
"""
from __future__ import annotations

from ..serialization import (CustomObjectScope, custom_object_scope, deserialize,
                             get_registered_name, get_registered_object,
                             register_keras_serializable, serialize)
from .dispatch import load_model, save_model

serialize_keras_object = serialize
deserialize_keras_object = deserialize

__all__ = ["CustomObjectScope", "custom_object_scope", "deserialize_keras_object",
           "get_registered_name", "get_registered_object", "load_model",
           "register_keras_serializable", "save_model", "serialize_keras_object"]
