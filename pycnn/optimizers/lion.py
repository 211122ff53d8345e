"""Lion (keras/src/optimizers/lion.py)."""
from __future__ import annotations

from typing import Optional

from .. import _C as C
from .base import LearningRate, Optimizer, base_arguments, check_float


class Lion(Optimizer):
    """Lion: ``w -= learning_rate * sign(beta_1 * m + (1 - beta_1) * g)``, then
    ``m = beta_2 * m + (1 - beta_2) * g``. Defaults: ``learning_rate=0.001, beta_1=0.9,
    beta_2=0.99``."""

    def __init__(self, learning_rate: LearningRate = 0.001, beta_1=0.9, beta_2=0.99,
                 weight_decay=None, clipnorm=None, clipvalue=None, global_clipnorm=None,
                 use_ema: bool = False, ema_momentum=0.99, ema_overwrite_frequency=None,
                 loss_scale_factor=None, gradient_accumulation_steps=None,
                 name: Optional[str] = None, **kwargs):
        super().__init__(**base_arguments(locals()))
        self.beta_1 = check_float(
            beta_1, "beta_1", 0.0, 1.0, lo_open=True,
            message="Argument `beta_1` must be in the [0, 1] range. Otherwise, the optimizer "
                    "degenerates to SignSGD")
        self.beta_2 = check_float(beta_2, "beta_2", 0.0, 1.0,
                                  message="Argument `beta_2` must be in the [0, 1] range")

    def _slot_groups(self):
        return [("momentum",)]

    def _update(self, w, g, slots, lr, pre):
        return C.lion_update(w, g, slots["momentum"], lr, self.beta_1, self.beta_2, **pre)

    def get_config(self) -> dict:
        return {**super().get_config(), "beta_1": self.beta_1, "beta_2": self.beta_2}
