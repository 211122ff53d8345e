"""Adagrad and Adadelta (keras/src/optimizers/adagrad.py, adadelta.py)."""
from __future__ import annotations

from typing import Optional

from .. import _C as C
from .base import LearningRate, Optimizer, base_arguments, check_epsilon, check_float


class Adagrad(Optimizer):
    """Adagrad: ``acc += g^2; w -= learning_rate * g / sqrt(acc + epsilon)``, the accumulator
    starting at ``initial_accumulator_value``. Defaults: ``learning_rate=0.001,
    initial_accumulator_value=0.1, epsilon=1e-7``."""

    def __init__(self, learning_rate: LearningRate = 0.001, initial_accumulator_value=0.1,
                 epsilon=1e-7, weight_decay=None, clipnorm=None, clipvalue=None,
                 global_clipnorm=None, use_ema: bool = False, ema_momentum=0.99,
                 ema_overwrite_frequency=None, loss_scale_factor=None,
                 gradient_accumulation_steps=None, name: Optional[str] = None, **kwargs):
        super().__init__(**base_arguments(locals()))
        self.initial_accumulator_value = check_float(
            initial_accumulator_value, "initial_accumulator_value", 0.0,
            message="`initial_accumulator_value` must be >= 0")
        self.epsilon = check_epsilon(epsilon)

    def _slot_groups(self):
        return [("accumulator",)]

    def _slot_initial_value(self, slot: str) -> float:
        return self.initial_accumulator_value

    def _update(self, w, g, slots, lr, pre):
        return C.adagrad_update(w, g, slots["accumulator"], lr, self.epsilon, **pre)

    def get_config(self) -> dict:
        return {**super().get_config(),
                "initial_accumulator_value": self.initial_accumulator_value,
                "epsilon": self.epsilon}


class Adadelta(Optimizer):
    """Adadelta: ``ag = rho ag + (1 - rho) g^2``,
    ``delta = -sqrt(ad + epsilon) * g / sqrt(ag + epsilon)``, ``ad = rho ad + (1 - rho)
    delta^2``, ``w += learning_rate * delta``. Defaults: ``learning_rate=0.001, rho=0.95,
    epsilon=1e-7``."""

    def __init__(self, learning_rate: LearningRate = 0.001, rho=0.95, epsilon=1e-7,
                 weight_decay=None, clipnorm=None, clipvalue=None, global_clipnorm=None,
                 use_ema: bool = False, ema_momentum=0.99, ema_overwrite_frequency=None,
                 loss_scale_factor=None, gradient_accumulation_steps=None,
                 name: Optional[str] = None, **kwargs):
        super().__init__(**base_arguments(locals()))
        self.rho = check_float(rho, "rho", 0.0, 1.0, message="`rho` must be in [0, 1]")
        self.epsilon = check_epsilon(epsilon)

    def _slot_groups(self):
        return [("accumulated_grad", "accumulated_delta_var")]

    def _update(self, w, g, slots, lr, pre):
        return C.adadelta_update(w, g, slots["accumulated_grad"], slots["accumulated_delta_var"],
                                 lr, self.rho, self.epsilon, **pre)

    def get_config(self) -> dict:
        return {**super().get_config(), "rho": self.rho, "epsilon": self.epsilon}
