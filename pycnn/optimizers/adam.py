"""The Adam family (keras/src/optimizers/adam.py, adamw.py, adamax.py, nadam.py)."""
from __future__ import annotations

from typing import Optional

import numpy as np

from .. import _C as C
from .base import (LearningRate, Optimizer, OptimizerVariable, base_arguments, check_epsilon,
                   check_float)


def _betas(beta_1, beta_2, epsilon, beta_2_closed: bool = False):
    b1 = check_float(beta_1, "beta_1", 0.0, 1.0, hi_open=True, message="`beta_1` must be in [0, 1)")
    b2 = check_float(beta_2, "beta_2", 0.0, 1.0, hi_open=not beta_2_closed,
                     message="`beta_2` must be in [0, 1" + ("]" if beta_2_closed else ")"))
    eps = check_epsilon(epsilon)
    return b1, b2, eps


class Adam(Optimizer):
    """Adam with Keras' defaults (``learning_rate=0.001, beta_1=0.9, beta_2=0.999,
    epsilon=1e-7, amsgrad=False``). With ``t`` the step from 1:
    ``m += (g - m)(1 - beta_1)``, ``v += (g^2 - v)(1 - beta_2)``,
    ``w -= lr * sqrt(1 - beta_2^t) / (1 - beta_1^t) * m / (sqrt(v) + epsilon)``;
    ``amsgrad=True`` uses the running maximum of ``v`` instead of ``v``."""

    def __init__(self, learning_rate: LearningRate = 0.001, beta_1=0.9, beta_2=0.999,
                 epsilon=1e-7, amsgrad: bool = False, weight_decay=None, clipnorm=None,
                 clipvalue=None, global_clipnorm=None, use_ema: bool = False,
                 ema_momentum=0.99, ema_overwrite_frequency=None, loss_scale_factor=None,
                 gradient_accumulation_steps=None, name: Optional[str] = None, **kwargs):
        super().__init__(**base_arguments(locals()))
        self.beta_1, self.beta_2, self.epsilon = _betas(beta_1, beta_2, epsilon)
        self.amsgrad = bool(amsgrad)

    def _slot_groups(self):
        groups = [("momentum", "velocity")]
        if self.amsgrad:
            groups.append(("velocity_hat",))
        return groups

    def _update(self, w, g, slots, lr, pre):
        return C.adam_update(w, g, slots["momentum"], slots["velocity"], lr, self.beta_1,
                             self.beta_2, self.epsilon, self.iterations + 1,
                             slots.get("velocity_hat") if self.amsgrad else None, **pre)

    def get_config(self) -> dict:
        return {**super().get_config(), "beta_1": self.beta_1, "beta_2": self.beta_2,
                "epsilon": self.epsilon, "amsgrad": self.amsgrad}


class AdamW(Adam):
    """Adam with decoupled weight decay (``weight_decay=0.004`` by default): each step first
    ``w -= w * learning_rate * weight_decay``, then Adam's update."""

    def __init__(self, learning_rate: LearningRate = 0.001, weight_decay=0.004, beta_1=0.9,
                 beta_2=0.999, epsilon=1e-7, amsgrad: bool = False, clipnorm=None,
                 clipvalue=None, global_clipnorm=None, use_ema: bool = False,
                 ema_momentum=0.99, ema_overwrite_frequency=None, loss_scale_factor=None,
                 gradient_accumulation_steps=None, name: Optional[str] = None, **kwargs):
        if weight_decay is None:
            raise ValueError("Argument `weight_decay` must be a float. Received: "
                             "weight_decay=None")
        super().__init__(**base_arguments(locals(), ("beta_1", "beta_2", "epsilon", "amsgrad")))


class Adamax(Optimizer):
    """Adamax, Adam with the infinity norm: ``m += (g - m)(1 - beta_1)``,
    ``u = max(beta_2 * u, |g|)``, ``w -= lr * m / ((1 - beta_1^t)(u + epsilon))``. Defaults:
    ``learning_rate=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-7``."""

    def __init__(self, learning_rate: LearningRate = 0.001, beta_1=0.9, beta_2=0.999,
                 epsilon=1e-7, weight_decay=None, clipnorm=None, clipvalue=None,
                 global_clipnorm=None, use_ema: bool = False, ema_momentum=0.99,
                 ema_overwrite_frequency=None, loss_scale_factor=None,
                 gradient_accumulation_steps=None, name: Optional[str] = None, **kwargs):
        super().__init__(**base_arguments(locals()))
        self.beta_1, self.beta_2, self.epsilon = _betas(beta_1, beta_2, epsilon, True)

    def _slot_groups(self):
        return [("momentum", "norm")]

    def _update(self, w, g, slots, lr, pre):
        return C.adamax_update(w, g, slots["momentum"], slots["norm"], lr, self.beta_1,
                               self.beta_2, self.epsilon, self.iterations + 1, **pre)

    def get_config(self) -> dict:
        return {**super().get_config(), "beta_1": self.beta_1, "beta_2": self.beta_2,
                "epsilon": self.epsilon}


class Nadam(Optimizer):
    """Nadam, Adam with Nesterov momentum and Keras' momentum schedule
    ``u_t = beta_1 * (1 - 0.5 * 0.96^t)``. Defaults: ``learning_rate=0.001, beta_1=0.9,
    beta_2=0.999, epsilon=1e-7``."""

    def __init__(self, learning_rate: LearningRate = 0.001, beta_1=0.9, beta_2=0.999,
                 epsilon=1e-7, weight_decay=None, clipnorm=None, clipvalue=None,
                 global_clipnorm=None, use_ema: bool = False, ema_momentum=0.99,
                 ema_overwrite_frequency=None, loss_scale_factor=None,
                 gradient_accumulation_steps=None, name: Optional[str] = None, **kwargs):
        super().__init__(**base_arguments(locals()))
        self.beta_1, self.beta_2, self.epsilon = _betas(beta_1, beta_2, epsilon)
        self._u_product = 1.0

    def _slot_groups(self):
        return [("momentum", "velocity")]

    def _before_update(self) -> None:
        t = self.iterations + 1
        self._u_product *= self.beta_1 * (1.0 - 0.5 * 0.96 ** t)

    def _update(self, w, g, slots, lr, pre):
        return C.nadam_update(w, g, slots["momentum"], slots["velocity"], lr, self.beta_1,
                              self.beta_2, self.epsilon, self.iterations + 1, self._u_product,
                              **pre)

    def _extra_variables(self):
        if not self.built:
            return []

        def setter(value):
            self._u_product = float(np.asarray(value))
        return [OptimizerVariable(f"{self.name}/u_product",
                                  lambda: np.array(self._u_product, np.float32), setter)]

    def get_config(self) -> dict:
        return {**super().get_config(), "beta_1": self.beta_1, "beta_2": self.beta_2,
                "epsilon": self.epsilon}
