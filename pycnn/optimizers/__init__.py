"""Optimizers with Keras' names, arguments, defaults and update rules (Keras 3,
``keras.optimizers``); each update is one C call per variable (``pycnn._C.<rule>_update``).

    from pycnn import optimizers
    opt = optimizers.get("adam")                       # or optimizers.Adam(learning_rate=1e-3)
    opt = optimizers.SGD(learning_rate=optimizers.schedules.ExponentialDecay(0.1, 1000, 0.9))
"""
from __future__ import annotations

import inspect
from typing import Optional

from . import schedules
from .adagrad import Adadelta, Adagrad
from .adam import Adam, Adamax, AdamW, Nadam
from .base import LearningRate, Optimizer, OptimizerVariable
from .lion import Lion
from .rmsprop import RMSprop
from .sgd import SGD

__all__ = ["Optimizer", "SGD", "RMSprop", "Adam", "AdamW", "Adamax", "Nadam", "Adagrad",
           "Adadelta", "Lion", "schedules", "get", "serialize", "deserialize"]

ALL_OBJECTS = (SGD, RMSprop, Adam, AdamW, Adamax, Nadam, Adagrad, Adadelta, Lion)
ALL_OBJECTS_DICT = {cls.__name__.lower(): cls for cls in ALL_OBJECTS}
_BY_NAME = ALL_OBJECTS_DICT        # (the name the model module used)


def serialize(optimizer: Optimizer) -> dict:
    """The optimizer's configuration as Keras 3 serialises it:
    ``{"module": "keras.optimizers", "class_name": "Adam", "config": {...},
    "registered_name": None}``."""
    if not isinstance(optimizer, Optimizer):
        raise TypeError(f"serialize() expects an Optimizer. Received: {optimizer!r}")
    cls = type(optimizer)
    builtin = ALL_OBJECTS_DICT.get(cls.__name__.lower()) is cls
    return {"module": "keras.optimizers" if builtin else cls.__module__,
            "class_name": cls.__name__, "config": optimizer.get_config(),
            "registered_name": None if builtin else cls.__name__}


def deserialize(config: dict, custom_objects: Optional[dict] = None) -> Optimizer:
    """An optimizer from ``serialize``'s dict, Keras 3's or tf.keras 2's (``{"class_name":
    "Adam", "config": {...}}``); built-in class names in any case; user classes from
    ``custom_objects``."""
    if not isinstance(config, dict) or not isinstance(config.get("class_name"), str):
        raise ValueError(f"Could not interpret optimizer identifier: {config!r}")
    name = config["class_name"]
    cls = (custom_objects or {}).get(name) or ALL_OBJECTS_DICT.get(name.lower())
    if cls is None and config.get("registered_name"):
        cls = (custom_objects or {}).get(config["registered_name"])
    if cls is None:
        raise ValueError(f"Could not interpret optimizer identifier: {name!r}. Expected one of "
                         f"{sorted(ALL_OBJECTS_DICT)}, or a class in `custom_objects`.")
    return cls.from_config(dict(config.get("config") or {}), custom_objects=custom_objects) \
        if "custom_objects" in inspect.signature(cls.from_config).parameters \
        else cls.from_config(dict(config.get("config") or {}))


def get(identifier) -> Optimizer:
    """An optimizer from a Keras name (``"rmsprop"``, any case), a config dict, an
    ``Optimizer`` subclass (instantiated with its defaults) or an instance (returned as is).
    ``None`` is refused (Keras returns None and fails later, at the first update)."""
    if isinstance(identifier, Optimizer):
        return identifier
    if isinstance(identifier, dict):
        return deserialize(identifier)
    if isinstance(identifier, str):
        cls = ALL_OBJECTS_DICT.get(identifier.lower())
        if cls is not None:
            return cls()
    elif isinstance(identifier, type) and issubclass(identifier, Optimizer) and \
            identifier is not Optimizer:
        return identifier()
    raise ValueError(f"Could not interpret optimizer identifier: {identifier!r}. Expected one "
                     f"of {sorted(ALL_OBJECTS_DICT)}, a config dict or a "
                     "pycnn.optimizers.Optimizer instance")
