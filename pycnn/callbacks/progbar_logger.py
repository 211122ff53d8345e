"""``ProgbarLogger``: the ``Epoch 3/5`` lines and progress bars of ``fit``, ``evaluate`` and
``predict``, in tf.keras 2.15's format (pycnn.utils.progbar), or Keras 3's after
``pycnn.config.set_output_style("keras3")``."""
from __future__ import annotations

import sys
from typing import Optional

from .. import config
from ..utils.progbar import Progbar, format_epoch_header, make_progbar
from .callback import Callback


class ProgbarLogger(Callback):
    """Prints the progress bar. ``fit``, ``evaluate`` and ``predict`` add one when ``verbose``
    is not 0; the verbosity, the number of epochs and of steps come from ``self.params``.

    During ``fit`` the validation's test hooks are ignored (the validation values appear on the
    epoch's line), as Keras does.

    Args:
        count_mode: accepted for tf.keras 2 compatibility; progress is counted in steps.
        stateful_metrics: names of values shown as given rather than averaged over the epoch
            (the model's metrics always are: they are running means already).
        verbose: overrides ``params["verbose"]`` when given.
    """

    def __init__(self, count_mode: str = "steps", stateful_metrics=None, *,
                 verbose: Optional[int] = None):
        super().__init__()
        if count_mode not in ("steps", "samples"):
            raise ValueError(f'Unknown `count_mode`: {count_mode!r}. Expected "steps" or '
                             '"samples".')
        self.stateful_metrics = set(stateful_metrics or ())
        self._verbose_arg = verbose
        self.verbose = 1 if verbose is None else verbose
        self.epochs = 1
        self.target: Optional[int] = None
        self.seen = 0
        self.progbar: Optional[Progbar] = None
        self._style = "tf_keras"
        self._called_in_fit = False

    def set_params(self, params: dict) -> None:
        super().set_params(params)
        verbose = params.get("verbose", 1) if self._verbose_arg is None else self._verbose_arg
        self.verbose = 1 if verbose == "auto" else verbose
        self.epochs = params.get("epochs", 1)
        self.target = params.get("steps")

    def _new_bar(self) -> None:
        self.seen = 0
        self._style = config.get_output_style()
        stateful = set(self.params.get("metric_names") or ()) | self.stateful_metrics
        self.progbar = make_progbar(self.target, verbose=self.verbose, stateful_metrics=stateful,
                                    unit_name="step", style=self._style)

    def _items(self, logs) -> list:
        """The logs as the bar shows them: in their order for tf.keras 2, sorted by name for
        Keras 3 (its callbacks receive sorted logs: ``accuracy - loss - val_accuracy``)."""
        items = list((logs or {}).items())
        return sorted(items, key=lambda kv: kv[0]) if self._style == "keras3" else items

    def _update(self, batch: int, logs) -> None:
        if self.progbar is None:
            self._new_bar()
        self.seen = batch + 1
        if self.verbose == 1:
            self.progbar.update(self.seen, self._items(logs), finalize=False)

    def _finalize(self, logs) -> None:
        if self.progbar is None:
            self._new_bar()
        if self.target is None:             # a generator of unknown length: now it is known
            self.target = self.seen
            self.progbar.target = self.seen
        self.progbar.update(self.target, self._items(logs), finalize=True)

    def on_train_begin(self, logs=None):
        self._called_in_fit = True

    def on_epoch_begin(self, epoch, logs=None):
        if self.verbose and self.epochs > 1:
            print(format_epoch_header(epoch + 1, self.epochs), file=sys.stdout)
        self._new_bar()

    def on_train_batch_end(self, batch, logs=None):
        self._update(batch, logs)

    def on_epoch_end(self, epoch, logs=None):
        self._finalize(logs)

    def on_test_begin(self, logs=None):
        if not self._called_in_fit:
            self._new_bar()

    def on_test_batch_end(self, batch, logs=None):
        if not self._called_in_fit:
            self._update(batch, logs)

    def on_test_end(self, logs=None):
        if not self._called_in_fit:
            self._finalize(logs)

    def on_predict_begin(self, logs=None):
        self._new_bar()

    def on_predict_batch_end(self, batch, logs=None):
        self._update(batch, None)

    def on_predict_end(self, logs=None):
        self._finalize(None)
