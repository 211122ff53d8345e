"""Stochastic gradient descent (keras/src/optimizers/sgd.py)."""
from __future__ import annotations

from typing import Optional

from .base import LearningRate, Optimizer, base_arguments, check_float
from .. import _C as C


class SGD(Optimizer):
    """Gradient descent with optional momentum and Nesterov momentum:
    ``velocity = momentum * velocity - learning_rate * g; w += velocity``
    (Nesterov: ``w += momentum * velocity - learning_rate * g``); without momentum
    ``w -= learning_rate * g``. Defaults as in Keras: ``learning_rate=0.01, momentum=0.0,
    nesterov=False``."""

    def __init__(self, learning_rate: LearningRate = 0.01, momentum=0.0, nesterov: bool = False,
                 weight_decay=None, clipnorm=None, clipvalue=None, global_clipnorm=None,
                 use_ema: bool = False, ema_momentum=0.99, ema_overwrite_frequency=None,
                 loss_scale_factor=None, gradient_accumulation_steps=None,
                 name: Optional[str] = None, **kwargs):
        super().__init__(**base_arguments(locals()))
        self.momentum = check_float(momentum, "momentum", 0.0, 1.0,
                                    message="`momentum` must be a float between [0, 1]")
        self.nesterov = bool(nesterov)

    def _slot_groups(self):
        return [("momentum",)] if self.momentum != 0 else []

    def _update(self, w, g, slots, lr, pre):
        return C.sgd_update(w, g, slots.get("momentum") if self.momentum else None, lr,
                            self.momentum, self.nesterov, **pre)

    def get_config(self) -> dict:
        return {**super().get_config(), "momentum": self.momentum, "nesterov": self.nesterov}
