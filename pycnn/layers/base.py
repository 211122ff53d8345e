"""The life of a layer, as in Keras: ``__init__`` stores and validates the configuration,
``build(input_shape)`` creates the weights, ``forward``/``backward`` do the arithmetic (one call
into C each), ``compute_output_shape`` is a pure function. Input checks are declared once in an
``InputSpec`` and enforced here, so every layer raises the same family of messages.
"""
from __future__ import annotations

import math
from typing import Any, Iterable, Optional, Sequence

import numpy as np

from .. import backend
from .. import initializers as initializers_mod

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
    ``forward(x, training)`` and ``backward(dy, need_dx)``. ``forward`` may return arrays it
    owns and reuses on the next call (no allocation per batch); ``__call__`` on arrays returns
    a fresh copy, so users never see that reuse.
    """

    def __init__(self, name: Optional[str] = None, trainable: bool = True, dtype: Any = None,
                 input_shape: Optional[Sequence] = None, batch_input_shape=None,
                 input_dim: Optional[int] = None, **kwargs):
        if kwargs:
            raise TypeError(f"Unrecognized keyword arguments passed to {type(self).__name__}: "
                            f"{kwargs}")
        if dtype not in (None, "float32", np.float32):
            raise ValueError(f"pycnn computes in float32 only. Received: dtype={dtype!r}")
        if name is not None and (not isinstance(name, str) or not name):
            raise ValueError(f"Layer name must be a non-empty string. Received: name={name!r}")
        self.name = name or backend.unique_name(backend.snake_case(type(self).__name__))
        self.trainable = trainable
        self.built = False
        self.input_spec: Optional[InputSpec] = None
        self._variables: list[Variable] = []
        self._buffers: dict[str, np.ndarray] = {}
        self._inbound_nodes: list = []
        self._build_input_shape: Optional[tuple] = None
        if input_dim is not None and input_shape is None:
            input_shape = (input_dim,)
        if batch_input_shape is not None:
            self._batch_input_shape = tuple(batch_input_shape)
        elif input_shape is not None:
            self._batch_input_shape = (None,) + tuple(input_shape)
        else:
            self._batch_input_shape = None

    # ---- weights ------------------------------------------------------------------------------
    def add_weight(self, name: str, shape: Sequence[int], initializer="glorot_uniform",
                   trainable: bool = True) -> Variable:
        init = initializers_mod.get(initializer)
        if math.prod(shape) > MAX_SIZE or any(d > MAX_SIZE for d in shape):
            raise ValueError(f'Layer "{self.name}": the weight {name!r} of shape {tuple(shape)} '
                             f"is too large (more than {MAX_SIZE} values)")
        value = np.asarray(init(tuple(shape)), dtype=np.float32)
        if value.shape != tuple(shape):
            raise ValueError(f"initializer of {self.name}/{name} returned shape {value.shape}, "
                             f"expected {tuple(shape)}")
        var = Variable(value, f"{self.name}/{name}", trainable)
        self._variables.append(var)
        return var

    @property
    def weights(self) -> list[Variable]:
        return list(self._variables)

    @property
    def trainable_weights(self) -> list[Variable]:
        return [v for v in self._variables if v.trainable and self.trainable]

    @property
    def non_trainable_weights(self) -> list[Variable]:
        return [v for v in self._variables if not (v.trainable and self.trainable)]

    def get_weights(self) -> list[np.ndarray]:
        """The layer's weights as NumPy arrays, in Keras' order (kernel, then bias)."""
        return [v.numpy() for v in self._variables]

    def set_weights(self, weights: Sequence) -> None:
        """Set the weights from arrays in ``get_weights()``'s order and shapes."""
        weights = list(weights)
        if len(weights) != len(self._variables):
            raise ValueError(f'Layer "{self.name}" expects {len(self._variables)} weights, but '
                             f"the weight list provided has {len(weights)} entries")
        for var, w in zip(self._variables, weights):
            w = np.asarray(w)
            if w.shape != var.shape:
                raise ValueError(f'Layer "{self.name}" weight shape {var.shape} is not '
                                 f"compatible with provided weight shape {w.shape}")
            if w.dtype.kind not in "fiub":
                raise TypeError(f'Layer "{self.name}": weights must be numeric, got {w.dtype}')
        for var, w in zip(self._variables, weights):
            var.assign(w)

    def count_params(self) -> int:
        if not self.built:
            raise ValueError(f"You tried to call `count_params` on layer '{self.name}', but "
                             "the layer isn't built. You can build it manually via: "
                             f"`{self.name}.build(batch_input_shape)`.")
        return int(sum(math.prod(v.shape) for v in self._variables))

    # ---- shapes -----------------------------------------------------------------------------
    def build(self, input_shape: Shape) -> None:
        self.built = True

    def compute_output_shape(self, input_shape: Shape) -> Shape:
        return tuple(input_shape)

    def _check_input(self, shape: Sequence) -> None:
        if self.input_spec is not None:
            self.input_spec.check(self.name, tuple(shape))

    def _maybe_build(self, input_shape: Shape) -> None:
        self._check_input(input_shape)
        if not self.built:
            self._build_input_shape = tuple(input_shape)
            self.build(tuple(input_shape))
            self.built = True
            self._check_input(input_shape)

    # ---- arithmetic -------------------------------------------------------------------------
    def forward(self, x: np.ndarray, training: bool = False) -> np.ndarray:
        raise NotImplementedError

    def backward(self, dy: np.ndarray, need_dx: bool = True) -> Optional[np.ndarray]:
        """Given dL/d(output), store dL/d(weight) in each ``Variable.grad`` and return
        dL/d(input) (or None when ``need_dx`` is False)."""
        raise NotImplementedError

    @property
    def output_activation(self) -> str:
        """The activation applied last by this layer (``"softmax"`` lets the model fuse the
        softmax into the crossentropy)."""
        return "linear"

    def forward_logits(self, x: np.ndarray, training: bool = False) -> np.ndarray:
        """Like ``forward`` but stops before a final softmax (or sigmoid, tanh): a model training
        with a crossentropy that fuses this layer's softmax needs only the logits. (A relu
        fused into the layer's kernel is still applied.)"""
        raise NotImplementedError(f"{type(self).__name__} has no fused activation")

    def backward_from_logits(self, dz: np.ndarray, need_dx: bool = True) -> Optional[np.ndarray]:
        """Like ``backward`` but given the gradient before the final activation."""
        raise NotImplementedError(f"{type(self).__name__} has no fused activation")

    def preactivation(self) -> np.ndarray:
        """The last forward pass's values before the final activation."""
        raise NotImplementedError(f"{type(self).__name__} has no fused activation")

    #: Attributes that may hold (a view of) the last forward input, for the backward pass.
    _input_refs: tuple = ()

    def release_inputs(self) -> None:
        """Drop the references to the last input, so that a model never keeps the caller's
        arrays alive after fit/evaluate/predict returns."""
        for attr in self._input_refs:
            if hasattr(self, attr):
                setattr(self, attr, None)

    def _buffer(self, key: str, shape: tuple, dtype=np.float32) -> np.ndarray:
        buf = self._buffers.get(key)
        if buf is None or buf.shape != shape or buf.dtype != dtype:
            buf = backend.empty(shape, dtype)
            self._buffers[key] = buf
        return buf

    def release_buffers(self) -> None:
        """Free the arrays kept for reuse between batches."""
        self._buffers.clear()

    # ---- calling ------------------------------------------------------------------------------
    def __call__(self, inputs, training: Optional[bool] = None, **kwargs):
        from .symbolic import KerasTensor, Node

        if kwargs:
            raise TypeError(f"{type(self).__name__}.__call__ got unexpected arguments {kwargs}")
        if isinstance(inputs, (list, tuple)) and len(inputs) == 1:
            inputs = inputs[0]
        if isinstance(inputs, KerasTensor):
            self._maybe_build(inputs.shape)
            out = KerasTensor(self.compute_output_shape(inputs.shape))
            Node(self, [inputs], [out])
            return out
        from ..models.data import as_float_input
        x = as_float_input(inputs, f'layer "{self.name}"')
        self._maybe_build((None,) + x.shape[1:])
        return self.forward(x, training=bool(training)).copy()

    def get_config(self) -> dict:
        return {"name": self.name, "trainable": self.trainable}

    def __repr__(self) -> str:
        return f"<{type(self).__name__} name={self.name}, built={self.built}>"
