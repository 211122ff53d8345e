"""``Lambda``: a layer from a function of its inputs written with ``pycnn.ops`` (or NumPy-style
operators on tensors), ``Lambda(lambda x: ops.square(x) * 2)``. It is a ``call``-based layer
(call_layer.py): traced in models, run at once on arrays.

Saving follows Keras 3: a named function is written by name (give it in ``custom_objects`` or
register it to load it), a Python ``lambda`` as its marshalled bytecode, which loading refuses
unless ``safe_mode=False`` (or ``enable_unsafe_deserialization()``): bytecode can run anything.
"""
from __future__ import annotations

import base64
import contextlib
import marshal
import threading
import types
from typing import Any, Callable, Optional

from .base import Layer

_state = threading.local()
_unsafe_everywhere = [False]


def enable_unsafe_deserialization() -> None:
    """Allow loading Python lambdas from files everywhere (Keras'
    ``keras.config.enable_unsafe_deserialization``)."""
    _unsafe_everywhere[0] = True


@contextlib.contextmanager
def safe_mode_scope(safe_mode: bool):
    """Within the scope, loading a lambda is allowed when ``safe_mode`` is False."""
    previous = getattr(_state, "safe_mode", True)
    _state.safe_mode = bool(safe_mode)
    try:
        yield
    finally:
        _state.safe_mode = previous


def _safe_mode() -> bool:
    return getattr(_state, "safe_mode", True) and not _unsafe_everywhere[0]


def _is_lambda(fn) -> bool:
    return isinstance(fn, types.LambdaType) and fn.__name__ == "<lambda>"


class Lambda(Layer):
    """Wraps ``function(inputs, **arguments)`` as a layer. ``output_shape`` is accepted for
    Keras compatibility; pycnn finds the output shape by tracing the function."""

    def __init__(self, function: Callable, output_shape=None, mask=None,
                 arguments: Optional[dict] = None, **kwargs):
        if not callable(function):
            raise TypeError(f"Lambda: `function` must be callable. Received: "
                            f"function={function!r}")
        if arguments is not None and not isinstance(arguments, dict):
            raise TypeError(f"Lambda: `arguments` must be a dict. Received: "
                            f"arguments={arguments!r}")
        if mask is not None:
            raise ValueError("pycnn has no masking: Lambda(mask=...) is not supported")
        super().__init__(**kwargs)
        self.function = function
        self.arguments = dict(arguments or {})
        self._output_shape = output_shape

    def call(self, inputs, training=None):
        return self.function(inputs, **self.arguments)

    def compute_output_shape(self, input_shape):
        if self._output_shape is not None:
            shape = self._output_shape(input_shape) if callable(self._output_shape) else \
                self._output_shape
            return (input_shape[0],) + tuple(shape) if not callable(self._output_shape) \
                else tuple(shape)
        return super().compute_output_shape(input_shape)

    def get_config(self) -> dict:
        from .. import serialization
        fn = self.function
        if _is_lambda(fn):
            code = base64.b64encode(marshal.dumps(fn.__code__)).decode("ascii")
            function: Any = {"class_name": "__lambda__",
                             "config": {"code": code, "defaults": None, "closure": None}}
            if fn.__closure__ or fn.__defaults__:
                raise ValueError("Lambda: a lambda with default arguments or closure "
                                 "variables cannot be saved; use a named function (and "
                                 "custom_objects) or `arguments=`")
        else:
            function = serialization.serialize(fn)
        out_shape = self._output_shape
        return {**super().get_config(), "function": function,
                "output_shape": list(out_shape) if isinstance(out_shape, (tuple, list))
                else None, "arguments": dict(self.arguments)}

    @classmethod
    def from_config(cls, config: dict, custom_objects: Optional[dict] = None):
        from .. import serialization
        config = dict(config)
        fn = config.pop("function")
        if isinstance(fn, dict) and fn.get("class_name") == "__lambda__":
            if _safe_mode():
                raise ValueError(
                    "Requested the deserialization of a `Lambda` layer with a Python `lambda` "
                    "inside it. This carries a potential risk of arbitrary code execution and "
                    "thus it is disallowed by default. If you trust the source of the saved "
                    "model, you can pass `safe_mode=False` to the loading function in order "
                    "to allow `Lambda` layer loading.")
            code = marshal.loads(base64.b64decode(fn["config"]["code"]))
            import numpy as np
            import pycnn
            from .. import ops
            function = types.FunctionType(code, {"ops": ops, "np": np, "keras": pycnn})
        else:
            function = serialization.deserialize(fn, None, custom_objects, "function")
        for key in ("mask", "output_shape_type", "function_type", "module", "mask_type"):
            config.pop(key, None)
        out_shape = config.pop("output_shape", None)
        return cls(function, output_shape=tuple(out_shape) if isinstance(out_shape, list)
                   else None, **config)
