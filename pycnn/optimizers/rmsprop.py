"""RMSprop (keras/src/optimizers/rmsprop.py)."""
from __future__ import annotations

from typing import Optional

from .. import _C as C
from .base import LearningRate, Optimizer, base_arguments, check_epsilon, check_float


class RMSprop(Optimizer):
    """RMSprop: ``v = rho * v + (1 - rho) * g^2``; ``w -= learning_rate * g / sqrt(v +
    epsilon)`` (epsilon inside the root, as in Keras). ``centered=True`` divides by the
    variance instead (``v - mg^2``, ``mg`` the moving mean of g); ``momentum > 0`` accumulates
    the steps. Defaults: ``learning_rate=0.001, rho=0.9, momentum=0.0, epsilon=1e-7,
    centered=False``."""

    def __init__(self, learning_rate: LearningRate = 0.001, rho=0.9, momentum=0.0,
                 epsilon=1e-7, centered: bool = False, weight_decay=None, clipnorm=None,
                 clipvalue=None, global_clipnorm=None, use_ema: bool = False,
                 ema_momentum=0.99, ema_overwrite_frequency=None, loss_scale_factor=None,
                 gradient_accumulation_steps=None, name: Optional[str] = None, **kwargs):
        super().__init__(**base_arguments(locals()))
        self.rho = check_float(rho, "rho", 0.0, 1.0, hi_open=True,
                               message="`rho` must be in [0, 1)")
        self.momentum = check_float(momentum, "momentum", 0.0, message="`momentum` must be >= 0")
        self.epsilon = check_epsilon(epsilon)
        self.centered = bool(centered)

    def _slot_groups(self):
        groups = [("velocity",)]
        if self.momentum > 0:
            groups.append(("momentum",))
        if self.centered:
            groups.append(("average_gradient",))
        return groups

    def _update(self, w, g, slots, lr, pre):
        return C.rmsprop_update(w, g, slots["velocity"], lr, self.rho, self.epsilon,
                                self.momentum, slots.get("momentum") if self.momentum > 0
                                else None, self.centered,
                                slots.get("average_gradient") if self.centered else None, **pre)

    def get_config(self) -> dict:
        return {**super().get_config(), "rho": self.rho, "momentum": self.momentum,
                "epsilon": self.epsilon, "centered": self.centered}
