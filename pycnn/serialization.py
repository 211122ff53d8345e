"""Objects to configs and back, in the form Keras 3 writes into ``config.json``:
``{"module": ..., "class_name": ..., "config": {...}, "registered_name": ...}``.

``serialize`` turns an initializer, regularizer, constraint, layer, loss, metric or optimizer
into that dictionary (strings, numbers and None pass through); ``deserialize`` finds the class
again, by Keras' class names (pycnn keeps them), by ``custom_objects`` or by the registry of
``register_keras_serializable``.
"""
from __future__ import annotations

import contextlib
import threading
from typing import Any, Callable, Optional

_registry: dict[str, Any] = {}          # "package>Name" -> class or function
_local = threading.local()               # custom_object_scope stack


def register_keras_serializable(package: str = "Custom", name: Optional[str] = None):
    """Register a class or function so that saved configs can name it:
    ``@keras.saving.register_keras_serializable(package="my_package")``."""
    def decorator(obj):
        key = f"{package}>{name or obj.__name__}"
        if key in _registry and _registry[key] is not obj:
            raise ValueError(f"{key} has already been registered to {_registry[key]}")
        _registry[key] = obj
        obj._registered_name = key
        return obj
    return decorator


def get_registered_name(obj) -> str:
    return getattr(obj, "_registered_name", None) or getattr(obj, "__name__",
                                                             type(obj).__name__)


def get_registered_object(name: str, custom_objects: Optional[dict] = None,
                          module_objects: Optional[dict] = None):
    """The class or function called ``name`` in ``custom_objects``, the active
    ``custom_object_scope``s, the registry, then ``module_objects``; None when unknown."""
    for scope in reversed(getattr(_local, "scopes", [])):
        if name in scope:
            return scope[name]
    if custom_objects and name in custom_objects:
        return custom_objects[name]
    if name in _registry:
        return _registry[name]
    if module_objects and name in module_objects:
        return module_objects[name]
    return None


@contextlib.contextmanager
def custom_object_scope(*scopes: dict):
    """``with custom_object_scope({"MyLayer": MyLayer}): load_model(...)``."""
    stack = getattr(_local, "scopes", None)
    if stack is None:
        stack = _local.scopes = []
    merged: dict = {}
    for s in scopes:
        merged.update(s or {})
    stack.append(merged)
    try:
        yield
    finally:
        stack.pop()


CustomObjectScope = custom_object_scope


def serialize(obj: Any, module: Any = None) -> Any:
    """``obj`` as Keras 3's ``serialize_keras_object`` writes it."""
    if obj is None or isinstance(obj, (str, bool, int, float)):
        return obj
    if isinstance(obj, (list, tuple)):
        return [serialize(o) for o in obj]
    if isinstance(obj, dict):
        return {k: serialize(v) for k, v in obj.items()}
    if hasattr(obj, "get_config"):
        cls = type(obj)
        registered = getattr(cls, "_registered_name", None)
        return {"module": _keras_module(cls), "class_name": cls.__name__,
                "config": obj.get_config(), "registered_name": registered}
    if callable(obj):
        registered = getattr(obj, "_registered_name", None)
        if registered:
            return {"module": None, "class_name": "function", "config": registered,
                    "registered_name": registered}
        return getattr(obj, "__name__", repr(obj))
    raise TypeError(f"Cannot serialize {obj!r}: it has no get_config()")


def deserialize(config: Any, module_objects: Optional[dict] = None,
                custom_objects: Optional[dict] = None, printable_module_name: str = "object"):
    """The object a ``serialize`` dictionary (or a plain name) describes."""
    if config is None or isinstance(config, (bool, int, float)):
        return config
    if isinstance(config, str):
        obj = get_registered_object(config, custom_objects, module_objects)
        if obj is None:
            raise ValueError(f"Unknown {printable_module_name}: '{config}'. Please ensure you "
                             "are using a `keras.utils.custom_object_scope` and that this "
                             "object is included in the scope.")
        return obj
    if not isinstance(config, dict) or "class_name" not in config:
        raise ValueError(f"Could not interpret serialized {printable_module_name}: {config!r}")
    name = config["class_name"]
    inner = config.get("config", {})
    if name == "function":
        return deserialize(inner, module_objects, custom_objects, printable_module_name)
    cls = None
    if config.get("registered_name"):
        cls = get_registered_object(config["registered_name"], custom_objects, module_objects)
    if cls is None:
        cls = get_registered_object(name, custom_objects, module_objects)
    if cls is None:
        raise ValueError(f"Unknown {printable_module_name}: '{name}'. Please ensure you are "
                         "using a `keras.utils.custom_object_scope` and that this object is "
                         "included in the scope.")
    if hasattr(cls, "from_config"):
        return cls.from_config(inner)
    return cls(**inner)


def _keras_module(cls) -> str:
    """The Keras module path a Keras 3 file names for a class (pycnn's module otherwise)."""
    mod = cls.__module__
    if mod.startswith("pycnn."):
        part = mod.split(".")[1]
        return {"layers": "keras.layers", "initializers": "keras.initializers",
                "regularizers": "keras.regularizers", "constraints": "keras.constraints",
                "losses": "keras.losses", "metrics": "keras.metrics",
                "optimizers": "keras.optimizers", "models": "keras.src.models.functional"
                }.get(part, "keras." + part)
    return mod


def is_callable_name(obj: Any) -> bool:
    return isinstance(obj, str) or isinstance(obj, Callable)
