"""Optimizers with Keras' names, defaults and update rules; each update is one C call per
variable. ``learning_rate`` may be a float or a callable of the step count (a schedule)."""
from __future__ import annotations

from typing import Callable, Optional, Union

import numpy as np

from . import _C, backend
from .layers.base import Variable

LearningRate = Union[float, Callable[[int], float]]


def _check_rate(value, arg: str) -> None:
    if callable(value):
        return
    if isinstance(value, bool) or not isinstance(value, (int, float, np.floating)) or \
            not np.isfinite(value) or value < 0 or value > np.finfo(np.float32).max:
        raise ValueError(f"Argument `{arg}` must be a non-negative number that fits in "
                         f"float32. Received: {arg}={value!r}")


class Optimizer:
    """Base class. ``apply(variables)`` updates each variable from its ``.grad``."""

    def __init__(self, learning_rate: LearningRate = 0.001, name: Optional[str] = None,
                 **kwargs):
        unsupported = {k: v for k, v in kwargs.items() if v is not None}
        if unsupported:
            raise ValueError(f"{type(self).__name__}: unsupported arguments {unsupported} "
                             "(gradient clipping and weight decay are not implemented yet)")
        _check_rate(learning_rate, "learning_rate")
        self.learning_rate = learning_rate
        self.name = name or type(self).__name__.lower()
        self.iterations = 0
        self._slots: dict[int, dict[str, np.ndarray]] = {}

    def current_learning_rate(self) -> float:
        lr = self.learning_rate
        return float(lr(self.iterations) if callable(lr) else lr)

    def _slot(self, var: Variable, key: str) -> np.ndarray:
        slots = self._slots.setdefault(id(var), {})
        if key not in slots:
            slots[key] = backend.zeros(var.value.shape)
        return slots[key]

    def apply(self, variables: list[Variable]) -> int:
        """Update every variable from its gradient; returns how many weights became
        non-finite (0 normally)."""
        lr = self.current_learning_rate()
        if not np.isfinite(lr) or lr < 0:
            raise ValueError(f"{type(self).__name__}: the learning rate at step "
                             f"{self.iterations} is {lr}; it must be a finite number >= 0")
        self.iterations += 1
        return sum(self._update(var, lr) for var in variables)

    def _update(self, var: Variable, lr: float) -> int:
        raise NotImplementedError

    def variables_state(self) -> dict:
        return {"iterations": self.iterations}

    def get_config(self) -> dict:
        lr = self.learning_rate
        return {"name": self.name, "learning_rate": lr if not callable(lr) else repr(lr)}


class SGD(Optimizer):
    """Gradient descent with optional momentum and Nesterov momentum:
    ``v = momentum * v - lr * g; w += v`` (Nesterov: ``w += momentum * v - lr * g``)."""

    def __init__(self, learning_rate: LearningRate = 0.01, momentum: float = 0.0,
                 nesterov: bool = False, name: Optional[str] = None, **kwargs):
        super().__init__(learning_rate, name, **kwargs)
        if not 0 <= momentum <= 1:
            raise ValueError(f"`momentum` must be a float between [0, 1]. Received: "
                             f"momentum={momentum}")
        self.momentum, self.nesterov = float(momentum), bool(nesterov)

    def _update(self, var, lr):
        vel = self._slot(var, "momentum") if self.momentum else None
        return _C.sgd_update(var.value, var.grad, vel, lr, self.momentum, self.nesterov)


class RMSprop(Optimizer):
    """RMSprop: ``v = rho * v + (1 - rho) * g^2; w -= lr * g / sqrt(v + epsilon)``, with
    Keras' defaults (learning_rate=0.001, rho=0.9, epsilon=1e-7)."""

    def __init__(self, learning_rate: LearningRate = 0.001, rho: float = 0.9,
                 momentum: float = 0.0, epsilon: float = 1e-7, centered: bool = False,
                 name: Optional[str] = None, **kwargs):
        super().__init__(learning_rate, name, **kwargs)
        if not 0 <= rho < 1:
            raise ValueError(f"`rho` must be in [0, 1). Received: rho={rho}")
        if momentum < 0:
            raise ValueError(f"`momentum` must be >= 0. Received: momentum={momentum}")
        _check_rate(epsilon, "epsilon")
        self.rho, self.momentum, self.epsilon, self.centered = rho, momentum, epsilon, centered

    def _update(self, var, lr):
        return _C.rmsprop_update(var.value, var.grad, self._slot(var, "velocity"), lr, self.rho,
                          self.epsilon, self.momentum,
                          self._slot(var, "momentum") if self.momentum > 0 else None,
                          self.centered, self._slot(var, "average_gradient") if self.centered else None)


class Adam(Optimizer):
    """Adam with Keras' defaults (learning_rate=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-7)."""

    def __init__(self, learning_rate: LearningRate = 0.001, beta_1: float = 0.9,
                 beta_2: float = 0.999, epsilon: float = 1e-7, amsgrad: bool = False,
                 name: Optional[str] = None, **kwargs):
        super().__init__(learning_rate, name, **kwargs)
        if amsgrad:
            raise ValueError("pycnn's Adam does not implement amsgrad yet")
        for arg, v in (("beta_1", beta_1), ("beta_2", beta_2)):
            if not 0 <= v < 1:
                raise ValueError(f"`{arg}` must be in [0, 1). Received: {arg}={v}")
        _check_rate(epsilon, "epsilon")
        self.beta_1, self.beta_2, self.epsilon = beta_1, beta_2, epsilon

    def _update(self, var, lr):
        return _C.adam_update(var.value, var.grad, self._slot(var, "m"), self._slot(var, "v"), lr,
                       self.beta_1, self.beta_2, self.epsilon, self.iterations)


_BY_NAME = {"sgd": SGD, "rmsprop": RMSprop, "adam": Adam}


def get(identifier) -> Optimizer:
    """An optimizer from its Keras name (``"rmsprop"``) or an instance."""
    if isinstance(identifier, Optimizer):
        return identifier
    if isinstance(identifier, str) and identifier.lower() in _BY_NAME:
        return _BY_NAME[identifier.lower()]()
    raise ValueError(f"Could not interpret optimizer identifier: {identifier!r}. Expected one "
                     f"of {sorted(_BY_NAME)} or a pycnn.optimizers.Optimizer instance")
