"""``LambdaCallback`` and ``TerminateOnNaN`` (Keras 3's)."""
from __future__ import annotations

import math
from typing import Callable, Optional

from .callback import Callback


class LambdaCallback(Callback):
    """A callback from functions, e.g. ``LambdaCallback(on_epoch_end=lambda epoch, logs:
    print(logs["loss"]))``.

    ``on_epoch_begin``/``on_epoch_end`` take ``(epoch, logs)``, ``on_train_batch_begin``/
    ``on_train_batch_end`` take ``(batch, logs)``, ``on_train_begin``/``on_train_end`` take
    ``(logs)``. Other keyword arguments (such as ``on_test_end=...``) become attributes, as in
    Keras.
    """

    def __init__(self, on_epoch_begin: Optional[Callable] = None,
                 on_epoch_end: Optional[Callable] = None,
                 on_train_begin: Optional[Callable] = None,
                 on_train_end: Optional[Callable] = None,
                 on_train_batch_begin: Optional[Callable] = None,
                 on_train_batch_end: Optional[Callable] = None, **kwargs):
        super().__init__()
        self.__dict__.update(kwargs)
        for name, fn in (("on_epoch_begin", on_epoch_begin), ("on_epoch_end", on_epoch_end),
                         ("on_train_begin", on_train_begin), ("on_train_end", on_train_end),
                         ("on_train_batch_begin", on_train_batch_begin),
                         ("on_train_batch_end", on_train_batch_end)):
            if fn is not None:
                setattr(self, name, fn)


class TerminateOnNaN(Callback):
    """Stop training when the loss becomes NaN or infinite.

    pycnn checks the loss before the batch's update, so the weights are those of the previous
    batch. ``fit`` prints ``Batch 3: Invalid loss, terminating training`` and returns.

    Args:
        raise_error: raise ``RuntimeError`` instead of stopping quietly (Keras 3.10+).
    """

    def __init__(self, raise_error: bool = False):
        super().__init__()
        self.raise_error = bool(raise_error)

    def on_batch_end(self, batch, logs=None):
        loss = (logs or {}).get("loss")
        if loss is not None and not math.isfinite(loss):
            if self.raise_error:
                raise RuntimeError(f"NaN or Inf loss encountered at batch {batch}. Loss value: "
                                   f"{loss}. Terminating training immediately.")
            print(f"Batch {batch}: Invalid loss, terminating training")
            self.model.stop_training = True
