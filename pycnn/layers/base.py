"""The life of a layer, as in Keras: ``__init__`` stores and validates the configuration,
``build(input_shape)`` creates the weights, ``forward``/``backward`` do the arithmetic (one call
into C each), ``compute_output_shape`` is a pure function. Input checks are declared once in an
``InputSpec`` and enforced here, so every layer raises the same family of messages.
"""
from __future__ import annotations

import math
import threading
from typing import Any, Iterable, Optional, Sequence

import numpy as np

from .. import backend
from .. import initializers as initializers_mod
from .context import Context

Shape = tuple  # a shape with None for unknown (batch) sizes


class Variable:
    """A weight of a layer: a float32 array (``.numpy()``), its gradient after a backward pass
    (``.grad``) and whether the optimizer trains it."""

    def __init__(self, value: np.ndarray, name: str, trainable: bool = True):
        value = np.asarray(value)
        self.value = backend.empty(value.shape)
        self.value[...] = value
        self.name = name
        self.trainable = trainable
        self.grad = backend.zeros(value.shape)
        self.regularizer = None     # a callable of the value giving a penalty (regularizers.py)
        self.constraint = None      # a callable projecting the value after each update

    @property
    def path(self) -> str:
        """``"<layer>/<weight>"``, as Keras 3 names a variable's place."""
        return self.name

    @property
    def shape(self) -> tuple:
        return self.value.shape

    @property
    def dtype(self) -> str:
        return "float32"

    def numpy(self) -> np.ndarray:
        return self.value.copy()

    def assign(self, value) -> None:
        value = np.asarray(value)
        if value.shape != self.value.shape:
            raise ValueError(f"Variable {self.name!r} has shape {self.value.shape}; cannot "
                             f"assign a value of shape {value.shape}")
        self.value[...] = value.astype(np.float32, copy=False)

    def __array__(self, dtype=None, copy=None):
        return self.value if dtype is None else self.value.astype(dtype)

    def __repr__(self) -> str:
        return f"<Variable path={self.name} shape={self.value.shape} dtype=float32>"


def format_shape(shape: Sequence) -> str:
    return "(" + ", ".join("None" if d is None else str(d) for d in shape) + \
        ("," if len(shape) == 1 else "") + ")"


class InputSpec:
    """What a layer accepts: ``ndim`` exactly, at least ``min_ndim``, and fixed sizes of some
    ``axes`` (``{-1: 784}``)."""

    def __init__(self, ndim: Optional[int] = None, min_ndim: Optional[int] = None,
                 axes: Optional[dict] = None):
        self.ndim, self.min_ndim, self.axes = ndim, min_ndim, dict(axes or {})

    def check(self, layer_name: str, shape: Sequence, index: int = 0) -> None:
        prefix = f'Input {index} of layer "{layer_name}" is incompatible with the layer: '
        nd = len(shape)
        full = format_shape(shape)
        if self.ndim is not None and nd != self.ndim:
            raise ValueError(prefix + f"expected ndim={self.ndim}, found ndim={nd}. "
                             f"Full shape received: {full}")
        if self.min_ndim is not None and nd < self.min_ndim:
            raise ValueError(prefix + f"expected min_ndim={self.min_ndim}, found ndim={nd}. "
                             f"Full shape received: {full}")
        for axis, value in self.axes.items():
            if -nd <= axis < nd and shape[axis] is not None and shape[axis] != value:
                raise ValueError(prefix + f"expected axis {axis} of input shape to have value "
                                 f"{value}, but received input with shape {full}")


#: The largest size the C kernels index (a C int).
MAX_SIZE = 2**31 - 1


def positive_int(value: Any, arg: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value <= 0:
        raise ValueError(f"Received an invalid value for `{arg}`, expected a positive integer. "
                         f"Received: {arg}={value!r}")
    if value > MAX_SIZE:
        raise ValueError(f"Received an invalid value for `{arg}`, expected a positive integer "
                         f"<= {MAX_SIZE}. Received: {arg}={value!r}")
    return int(value)


def int_pair(value: Any, arg: str, allow_none: bool = False) -> Optional[tuple[int, int]]:
    """Keras' normalize_tuple: an int or a pair of positive ints."""
    if value is None and allow_none:
        return None
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        pair: Iterable = (value, value)
    elif isinstance(value, (tuple, list)) and len(value) == 2:
        pair = value
    else:
        raise ValueError(f"The `{arg}` argument must be a tuple of 2 integers. Received: "
                         f"{arg}={value!r}")
    out = []
    for v in pair:
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or not 0 < v <= MAX_SIZE:
            raise ValueError(f"The `{arg}` argument must be a tuple of 2 positive integers "
                             f"(at most {MAX_SIZE}). Received: {arg}={value!r}")
        out.append(int(v))
    return out[0], out[1]


def padding_arg(value: Any) -> str:
    if not isinstance(value, str) or value.lower() not in ("valid", "same"):
        raise ValueError(f"The `padding` argument must be one of 'valid', 'same'. "
                         f"Received: padding={value!r}")
    return value.lower()


class Layer:
    """Base class of all layers.

    Subclasses set ``self.input_spec`` and implement ``build``, ``compute_output_shape``,
    ``forward(ctx, x, training)`` and ``backward(ctx, dy, need_dx)``. The per-call state lives
    in ``ctx`` (a :class:`~pycnn.layers.context.Context`): what the backward pass needs and the
    arrays ``forward`` writes, reused from batch to batch. Layers with ``multi_input = True``
    (merge layers) take a list of arrays and return a list of input gradients. Calling a layer
    on arrays returns fresh arrays; calling it on symbolic tensors (``pycnn.Input``) records a
    node of the functional graph.
    """

    #: Whether ``forward`` takes a list of inputs (and ``backward`` returns a list).
    multi_input = False
    #: Whether ``forward`` honours ``ctx.logits_only`` (a layer with a final activation that a
    #: loss can take the logits of).
    supports_logits = False

    def __init__(self, name: Optional[str] = None, trainable: bool = True, dtype: Any = None,
                 input_shape: Optional[Sequence] = None, batch_input_shape=None,
                 input_dim: Optional[int] = None, batch_size: Optional[int] = None, **kwargs):
        if kwargs:
            raise TypeError(f"Unrecognized keyword arguments passed to {type(self).__name__}: "
                            f"{kwargs}")
        if isinstance(dtype, dict):     # a Keras 3 DTypePolicy config
            dtype = dtype.get("config", {}).get("name", dtype)
        if dtype not in (None, "float32", np.float32):
            raise ValueError(f"pycnn computes in float32 only. Received: dtype={dtype!r}")
        if name is not None and (not isinstance(name, str) or not name or "\0" in name):
            raise ValueError(f"Layer name must be a non-empty string. Received: name={name!r}")
        self.name = name or backend.unique_name(backend.snake_case(type(self).__name__))
        self._trainable = bool(trainable)
        self._built = False
        self.input_spec: Optional[InputSpec] = None
        self._variables: list[Variable] = []
        self._inbound_nodes: list = []
        self._lock = threading.RLock()
        if input_dim is not None and input_shape is None:
            input_shape = (input_dim,)
        if batch_input_shape is not None:
            self._batch_input_shape = tuple(batch_input_shape)
        elif input_shape is not None:
            self._batch_input_shape = (batch_size,) + tuple(input_shape)
        else:
            self._batch_input_shape = None

    @property
    def built(self) -> bool:
        return self._built

    @built.setter
    def built(self, value: bool) -> None:
        self._built = bool(value)

    @property
    def trainable(self) -> bool:
        """Whether the optimizer updates this layer's weights (``False`` freezes them)."""
        return self._trainable

    @trainable.setter
    def trainable(self, value: bool) -> None:
        self._trainable = bool(value)
        for layer in self._sublayers():        # Keras freezes a layer's sublayers with it
            layer.trainable = value

    def _sublayers(self) -> list:
        """The layers a ``call``-based layer holds as attributes (none for other layers)."""
        from . import call_layer
        return call_layer.sublayers(self) if call_layer.is_call_based(self) else []

    # ---- weights ------------------------------------------------------------------------------
    def add_weight(self, *args, shape: Optional[Sequence[int]] = None, initializer=None,
                   dtype: Any = None, trainable: bool = True, regularizer=None,
                   constraint=None, name: Optional[str] = None, **kwargs) -> Variable:
        """Create a weight of this layer: ``add_weight(shape=(784, 10),
        initializer="glorot_uniform", name="kernel")`` (Keras 3; ``add_weight("kernel",
        shape)`` as tf.keras 2 wrote it works too). ``regularizer`` adds its penalty to the
        training loss; ``constraint`` projects the weight after each optimizer step."""
        for key in ("autocast", "aggregation", "synchronization", "use_resource",
                    "experimental_autocast", "caching_device"):
            kwargs.pop(key, None)
        if kwargs:
            raise TypeError(f"add_weight() got unexpected arguments {sorted(kwargs)}")
        positional = list(args)
        if positional and isinstance(positional[0], str):       # tf.keras 2: name first
            name = positional.pop(0) if name is None else name
        if positional:
            shape = positional.pop(0) if shape is None else shape
        if positional:
            initializer = positional.pop(0) if initializer is None else initializer
        if positional:
            raise TypeError("add_weight() takes shape, initializer and keyword arguments")
        if dtype not in (None, "float32", np.float32):
            raise ValueError(f"pycnn weights are float32. Received: dtype={dtype!r}")
        shape = () if shape is None else tuple(int(d) for d in shape)
        if name is None:
            name = f"variable_{len(self._variables)}" if self._variables else "variable"
        if initializer is None:
            initializer = "glorot_uniform" if len(shape) >= 2 else "zeros"
        init = initializers_mod.get(initializer)
        if math.prod(shape) > MAX_SIZE or any(d > MAX_SIZE or d < 0 for d in shape):
            raise ValueError(f'Layer "{self.name}": the weight {name!r} of shape {shape} '
                             f"is invalid or too large (more than {MAX_SIZE} values)")
        value = np.asarray(init(shape), dtype=np.float32)
        if value.shape != shape:
            raise ValueError(f"initializer of {self.name}/{name} returned shape {value.shape}, "
                             f"expected {shape}")
        var = Variable(value, f"{self.name}/{name}", trainable)
        var._layer = self           # whose ``trainable`` also decides (ops read variables)
        if regularizer is not None:
            from .. import regularizers
            var.regularizer = regularizers.get(regularizer)
        if constraint is not None:
            from .. import constraints
            var.constraint = constraints.get(constraint)
        self._variables.append(var)
        return var

    @property
    def weights(self) -> list[Variable]:
        """The layer's own weights, then its sublayers' (a ``call``-based layer's)."""
        out = list(self._variables)
        for layer in self._sublayers():
            out += [v for v in layer.weights if not any(v is o for o in out)]
        return out

    @property
    def trainable_weights(self) -> list[Variable]:
        return [v for v in self.weights if v.trainable and self.trainable and
                getattr(v, "_layer", self).trainable]

    @property
    def non_trainable_weights(self) -> list[Variable]:
        trainable = {id(v) for v in self.trainable_weights}
        return [v for v in self.weights if id(v) not in trainable]

    def get_weights(self) -> list[np.ndarray]:
        """The layer's weights as NumPy arrays, in Keras' order (kernel, then bias)."""
        return [v.numpy() for v in self.weights]

    def set_weights(self, weights: Sequence) -> None:
        """Set the weights from arrays in ``get_weights()``'s order and shapes."""
        weights = list(weights)
        variables = self.weights
        if len(weights) != len(variables):
            raise ValueError(f'Layer "{self.name}" expects {len(variables)} weights, but '
                             f"the weight list provided has {len(weights)} entries")
        for var, w in zip(variables, weights):
            w = np.asarray(w)
            if w.shape != var.shape:
                raise ValueError(f'Layer "{self.name}" weight shape {var.shape} is not '
                                 f"compatible with provided weight shape {w.shape}")
            if w.dtype.kind not in "fiub":
                raise TypeError(f'Layer "{self.name}": weights must be numeric, got {w.dtype}')
        for var, w in zip(variables, weights):
            var.assign(w)

    def count_params(self) -> int:
        if not self.built:
            raise ValueError(f"You tried to call `count_params` on layer '{self.name}', but "
                             "the layer isn't built. You can build it manually via: "
                             f"`{self.name}.build(batch_input_shape)`.")
        return int(sum(math.prod(v.shape) for v in self.weights))

    # ---- shapes -----------------------------------------------------------------------------
    def build(self, input_shape: Shape) -> None:
        self.built = True

    def compute_output_shape(self, input_shape: Shape) -> Shape:
        return tuple(input_shape)

    def _check_input(self, shape: Sequence) -> None:
        if self.input_spec is not None and not self.multi_input:
            self.input_spec.check(self.name, tuple(shape))

    def _maybe_build(self, input_shape) -> None:
        self._check_input(input_shape)
        if not self.built:
            self.build(input_shape if self.multi_input else tuple(input_shape))
            self.built = True
            self._check_input(input_shape)

    # ---- arithmetic -------------------------------------------------------------------------
    def forward(self, ctx: Context, x, training: bool = False):
        """The output for ``x`` (a list of arrays for ``multi_input`` layers), keeping in
        ``ctx`` what ``backward`` needs. May return an array from ``ctx.buffer``."""
        raise NotImplementedError(f"{type(self).__name__} has no forward pass")

    def backward(self, ctx: Context, dy, need_dx=True):
        """Given dL/d(output) of the call ``ctx`` holds, store dL/d(weight) in each
        ``Variable.grad`` and return dL/d(input) (None when ``need_dx`` is False; for
        ``multi_input`` layers a list, ``need_dx`` a list of flags)."""
        raise NotImplementedError(f"{type(self).__name__} has no backward pass")

    # ---- the functional graph ---------------------------------------------------------------
    def _node_attr(self, attr: str, what: str):
        if not self._inbound_nodes:
            raise AttributeError(f'Layer "{self.name}" has never been called and thus has no '
                                 f"defined {what}.")
        return getattr(self._inbound_nodes[0], attr)

    @property
    def input(self):
        """The symbolic input of the layer's first call (a list for several inputs)."""
        return self._node_attr("input_structure", "input")

    @property
    def output(self):
        """The symbolic output of the layer's first call."""
        return self._node_attr("output_structure", "output")

    @property
    def input_shape(self):
        inp = self.input
        return [t.shape for t in inp] if isinstance(inp, list) else inp.shape

    @property
    def output_shape(self):
        out = self.output
        return [t.shape for t in out] if isinstance(out, list) else out.shape

    # ---- calling ------------------------------------------------------------------------------
    def __call__(self, inputs, *args, training: Optional[bool] = None, mask=None, **kwargs):
        from .symbolic import KerasTensor, Node, flatten

        if args or kwargs:
            raise TypeError(f"{type(self).__name__}.__call__ got unexpected arguments "
                            f"{args or ''}{kwargs or ''}")
        if training is not None and not isinstance(training, (bool, np.bool_)):
            raise ValueError(f"`training` must be a bool or None. Received: training={training!r}")
        if isinstance(inputs, (list, tuple)) and len(inputs) == 1 and not self.multi_input:
            inputs = inputs[0]
        flat = flatten(inputs)
        from . import call_layer
        if call_layer.is_call_based(self):      # a layer written with call() and ops
            if any(isinstance(t, KerasTensor) for t in flat):
                return call_layer.call_symbolic(self, inputs, training)
            return call_layer.call_eager(self, inputs, training, mask)
        if any(isinstance(t, KerasTensor) for t in flat):
            if not all(isinstance(t, KerasTensor) for t in flat):
                raise ValueError(f'Layer "{self.name}" was called on a mix of symbolic tensors '
                                 "and arrays; all inputs of a functional call must be symbolic")
            return Node.record(self, inputs, training)
        return self._call_eager(inputs, training)

    def _call_eager(self, inputs, training):
        from ..models.data import as_float_input
        from .symbolic import flatten

        if self.multi_input:
            if not isinstance(inputs, (list, tuple)):
                raise ValueError(f'Layer "{self.name}" expects a list of inputs')
            xs = [as_float_input(t, f'layer "{self.name}" input {i}')
                  for i, t in enumerate(flatten(inputs))]
            self._maybe_build([(None,) + x.shape[1:] for x in xs])
            out = self.forward(Context(), xs, training=bool(training))
        else:
            x = as_float_input(inputs, f'layer "{self.name}"')
            self._maybe_build((None,) + x.shape[1:])
            out = self.forward(Context(), x, training=bool(training))
        return np.array(out, dtype=np.float32, copy=True)

    def get_config(self) -> dict:
        """The constructor arguments, as Keras' ``get_config`` gives them."""
        config = {"name": self.name, "trainable": self.trainable, "dtype": "float32"}
        if self._batch_input_shape is not None:
            config["batch_input_shape"] = list(self._batch_input_shape)
        return config

    @classmethod
    def from_config(cls, config: dict):
        """A new layer from ``get_config()``'s dictionary."""
        return cls(**config)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} name={self.name}, built={self.built}>"
