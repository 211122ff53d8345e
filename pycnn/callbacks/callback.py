"""``Callback``, the base class of every callback, and ``CallbackList``, which calls a list of
them (Keras 3's ``keras.callbacks.Callback`` and ``keras.callbacks.CallbackList``)."""
from __future__ import annotations

from typing import Any, Iterable, Optional


class Callback:
    """Base class of callbacks: override any ``on_*`` hook.

    ``fit``, ``evaluate`` and ``predict`` set ``self.model`` (the model being trained) and
    ``self.params`` (``{"verbose": ..., "epochs": ..., "steps": ...}``) before training starts.
    ``logs`` holds the running values of the loss and metrics (``on_train_batch_end``) or the
    epoch's values including the ``val_`` ones (``on_epoch_end``).

    As in Keras, ``on_train_batch_begin``/``on_train_batch_end`` call the older
    ``on_batch_begin``/``on_batch_end``, so either may be overridden.
    """

    def __init__(self):
        self.model = None
        self.params: dict = {}

    def set_model(self, model) -> None:
        self.model = model

    def set_params(self, params: dict) -> None:
        self.params = params

    def on_batch_begin(self, batch, logs=None):
        """A backwards-compatible alias of ``on_train_batch_begin``."""

    def on_batch_end(self, batch, logs=None):
        """A backwards-compatible alias of ``on_train_batch_end``."""

    def on_epoch_begin(self, epoch, logs=None):
        """Called at the start of an epoch (``epoch`` counts from 0)."""

    def on_epoch_end(self, epoch, logs=None):
        """Called at the end of an epoch with the epoch's logs (``val_*`` included)."""

    def on_train_batch_begin(self, batch, logs=None):
        self.on_batch_begin(batch, logs=logs)

    def on_train_batch_end(self, batch, logs=None):
        self.on_batch_end(batch, logs=logs)

    def on_test_batch_begin(self, batch, logs=None):
        """Called before a batch of ``evaluate`` (and of the validation inside ``fit``)."""

    def on_test_batch_end(self, batch, logs=None):
        """Called after a batch of ``evaluate`` (and of the validation inside ``fit``)."""

    def on_predict_batch_begin(self, batch, logs=None):
        """Called before a batch of ``predict``."""

    def on_predict_batch_end(self, batch, logs=None):
        """Called after a batch of ``predict``."""

    def on_train_begin(self, logs=None):
        """Called at the start of ``fit``."""

    def on_train_end(self, logs=None):
        """Called at the end of ``fit``."""

    def on_test_begin(self, logs=None):
        """Called at the start of ``evaluate`` (and of the validation inside ``fit``)."""

    def on_test_end(self, logs=None):
        """Called at the end of ``evaluate`` (and of the validation inside ``fit``)."""

    def on_predict_begin(self, logs=None):
        """Called at the start of ``predict``."""

    def on_predict_end(self, logs=None):
        """Called at the end of ``predict``."""


def _flatten(callbacks: Any) -> list:
    """The callbacks of a list (nested lists and CallbackLists are opened), each checked."""
    if callbacks is None:
        return []
    if isinstance(callbacks, CallbackList):
        return list(callbacks.callbacks)
    if isinstance(callbacks, Callback):
        return [callbacks]
    if not isinstance(callbacks, (list, tuple)):
        raise TypeError("callbacks must be a list of pycnn.callbacks.Callback instances. "
                        f"Received: callbacks={callbacks!r}")
    out: list = []
    for cb in callbacks:
        if isinstance(cb, (list, tuple, CallbackList)):
            out.extend(_flatten(cb))
        elif isinstance(cb, Callback):
            out.append(cb)
        else:
            raise TypeError(f"callbacks must be pycnn.callbacks.Callback instances, got "
                            f"{type(cb).__name__}")
    return out


def _forwarding(hook: str, index: Optional[str] = None):
    """``CallbackList.<hook>``: calls ``hook`` of every callback, with the batch or epoch
    number ``index`` names (its signature is ``Callback``'s) and ``logs``."""
    if index == "batch":
        def method(self, batch, logs=None):
            self.call(hook, batch, logs)
    elif index == "epoch":
        def method(self, epoch, logs=None):
            self.call(hook, epoch, logs)
    else:
        def method(self, logs=None):
            self.call(hook, logs)
    method.__name__ = hook
    method.__qualname__ = f"CallbackList.{hook}"
    method.__doc__ = f"Calls ``{hook}`` of every callback."
    return method


class CallbackList(Callback):
    """Calls the hooks of a list of callbacks in order, as Keras' ``CallbackList``.

    Args:
        callbacks: a list of ``Callback`` instances (nested lists and ``CallbackList``s are
            opened).
        add_history: whether to add a ``History`` callback when the list has none.
        add_progbar: whether to add a ``ProgbarLogger`` when the list has none.
        model: the model the callbacks see as ``self.model``.
        **params: given to every callback's ``set_params`` (``verbose``, ``epochs``,
            ``steps``).

    Example:
        >>> callbacks = CallbackList([EarlyStopping()], add_history=True, model=model,
        ...                          epochs=2, steps=10, verbose=0)   # doctest: +SKIP
        >>> callbacks.on_train_begin()                                # doctest: +SKIP
    """

    def __init__(self, callbacks: Optional[Iterable] = None, add_history: bool = False,
                 add_progbar: bool = False, model=None, **params):
        super().__init__()
        self.callbacks: list = _flatten(callbacks)
        self._add_default_callbacks(add_history, add_progbar)
        self.set_model(model)
        self.set_params(params)

    def _add_default_callbacks(self, add_history: bool, add_progbar: bool) -> None:
        from .history import History
        from .progbar_logger import ProgbarLogger
        self._history = next((c for c in self.callbacks if isinstance(c, History)), None)
        self._progbar = next((c for c in self.callbacks if isinstance(c, ProgbarLogger)), None)
        if self._history is None and add_history:
            self._history = History()
            self.callbacks.append(self._history)
        if self._progbar is None and add_progbar:
            self._progbar = ProgbarLogger()
            self.callbacks.append(self._progbar)

    def append(self, callback: Callback) -> None:
        self.callbacks.extend(_flatten([callback]))

    def set_model(self, model) -> None:
        if model is None:
            return
        super().set_model(model)
        if self._history is not None:
            model.history = self._history
        for cb in self.callbacks:
            cb.set_model(model)

    def set_params(self, params: dict) -> None:
        self.params = params
        if params:
            for cb in self.callbacks:
                cb.set_params(params)

    def call(self, hook: str, *args) -> None:
        """Call ``hook`` (e.g. ``"on_epoch_end"``) of every callback with ``args``."""
        for cb in self.callbacks:
            getattr(cb, hook)(*args)

    on_batch_begin = _forwarding("on_batch_begin", "batch")
    on_batch_end = _forwarding("on_batch_end", "batch")
    on_epoch_begin = _forwarding("on_epoch_begin", "epoch")
    on_epoch_end = _forwarding("on_epoch_end", "epoch")
    on_train_batch_begin = _forwarding("on_train_batch_begin", "batch")
    on_train_batch_end = _forwarding("on_train_batch_end", "batch")
    on_test_batch_begin = _forwarding("on_test_batch_begin", "batch")
    on_test_batch_end = _forwarding("on_test_batch_end", "batch")
    on_predict_batch_begin = _forwarding("on_predict_batch_begin", "batch")
    on_predict_batch_end = _forwarding("on_predict_batch_end", "batch")
    on_train_begin = _forwarding("on_train_begin")
    on_train_end = _forwarding("on_train_end")
    on_test_begin = _forwarding("on_test_begin")
    on_test_end = _forwarding("on_test_end")
    on_predict_begin = _forwarding("on_predict_begin")
    on_predict_end = _forwarding("on_predict_end")

    def __iter__(self):
        return iter(self.callbacks)

    def __len__(self) -> int:
        return len(self.callbacks)
