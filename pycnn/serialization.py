"""Objects to configs and back, in the form Keras 3 writes into ``config.json``:
``{"module": ..., "class_name": ..., "config": {...}, "registered_name": ...}``.

``serialize`` turns an initializer, regularizer, constraint, layer, loss, metric or optimizer
into that dictionary (strings, numbers and None pass through); ``deserialize`` finds the class
again, by Keras' class names (pycnn keeps them), by ``custom_objects`` or by the registry of
``register_keras_serializable``.
"""
from __future__ import annotations

import contextlib
import inspect
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
        out = {k: serialize(v) for k, v in obj.items()}
        if "class_name" in out and isinstance(out.get("config"), dict):
            # an object serialized by Keras: keep what pycnn's own class would write
            out["config"] = {k: v for k, v in out["config"].items()
                             if not (k in _KERAS_DEFAULTS and v == _KERAS_DEFAULTS[k])}
        return out
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
        try:
            return cls.from_config(inner)
        except TypeError as err:
            if "unexpected keyword" not in str(err):
                raise
    return construct(cls, inner, f"{printable_module_name} {name!r}")


def _accepted(cls) -> Optional[set]:
    """The keyword arguments ``cls(...)`` accepts through its constructors (None: any)."""
    names: set = set()
    for klass in cls.__mro__:
        init = klass.__dict__.get("__init__")
        if init is None:
            continue
        params = inspect.signature(init).parameters.values()
        names |= {p.name for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD,
                                                        p.KEYWORD_ONLY)}
        if not any(p.kind == p.VAR_KEYWORD for p in params):
            return names - {"self"}
        if klass.__module__ == "pycnn.layers.base" and klass.__name__ == "Layer":
            return names - {"self"}     # Layer takes **kwargs only to reject them by name
    return None


#: Keras config keys that pycnn layers do not take; dropped when they hold Keras' default.
_KERAS_DEFAULTS = {"quantization_config": None, "lora_rank": None, "lora_alpha": None,
                   "synchronized": False, "renorm": False, "renorm_clipping": None,
                   "renorm_momentum": 0.99, "optional": False, "sparse": False,
                   "ragged": False, "autocast": True, "input_axes": None,
                   "output_axes": None}


def construct(cls, config: dict, where: str = "config"):
    """``cls(**config)`` with the keys Keras writes but pycnn's class does not take removed
    (an unsupported key with a non-default value is an error naming it)."""
    config = dict(config)
    accepted = _accepted(cls)
    if accepted is not None:
        for key in [k for k in config if k not in accepted]:
            value = config.pop(key)
            if key in _KERAS_DEFAULTS and value != _KERAS_DEFAULTS[key] and value is not None:
                raise ValueError(f"{where}: pycnn's {cls.__name__} does not support "
                                 f"{key}={value!r}")
    try:
        return cls(**config)
    except TypeError as err:
        raise ValueError(f"{where}: cannot build {cls.__name__} from its config ({err})") \
            from None


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
