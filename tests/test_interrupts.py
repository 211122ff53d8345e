"""Ctrl-C during fit is honoured wherever it arrives: in a batch, in validation, in a callback
at the end of the last epoch. fit stops at the next boundary, says so, keeps the finished
epochs and marks the history as interrupted; evaluate and predict raise KeyboardInterrupt."""
from __future__ import annotations

import signal

import numpy as np
import pytest

import pycnn
from pycnn import layers


@pytest.fixture(autouse=True)
def default_sigint():
    if signal.getsignal(signal.SIGINT) is not signal.default_int_handler:
        pytest.skip("needs the default SIGINT handler in the main thread")
    yield
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def _model():
    model = pycnn.Sequential([pycnn.Input(shape=(4,)), layers.Dense(3, activation="softmax")])
    model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
    r = np.random.default_rng(0)
    return model, r.standard_normal((64, 4)).astype(np.float32), r.integers(0, 3, 64)


class _SigintAt(pycnn.callbacks.Callback):
    """One Ctrl-C (a second one would interrupt at once, by design)."""

    def __init__(self, hook, epoch):
        super().__init__()
        self.hook_name, self.epoch = hook, epoch
        self.sent = False

    def _send(self):
        if not self.sent:
            self.sent = True
            signal.raise_signal(signal.SIGINT)

    def on_epoch_end(self, epoch, logs=None):
        if self.hook_name == "epoch_end" and epoch == self.epoch:
            self._send()

    def on_epoch_begin(self, epoch, logs=None):
        self.in_epoch = epoch                   # the validation of this epoch sends it

    def on_test_batch_end(self, batch, logs=None):
        if self.hook_name == "validation" and getattr(self, "in_epoch", -1) == self.epoch:
            self._send()


@pytest.mark.parametrize("hook", ["epoch_end", "validation"])
def test_ctrl_c_in_the_last_epochs_callbacks_or_validation_is_not_lost(hook, capsys):
    model, x, y = _model()
    cb = _SigintAt(hook, epoch=1)
    history = model.fit(x, y, epochs=2, batch_size=16, verbose=0, callbacks=[cb],
                        validation_data=(x, y) if hook == "validation" else None)
    assert getattr(history, "interrupted", False)
    assert "interrupted" in capsys.readouterr().err
    assert len(history.history.get("loss", [])) <= 2


def test_ctrl_c_in_an_earlier_epochs_callback_stops_before_the_next_epoch():
    model, x, y = _model()
    history = model.fit(x, y, epochs=5, batch_size=16, verbose=0,
                        callbacks=[_SigintAt("epoch_end", epoch=0)])
    assert history.interrupted
    assert history.epoch == [0]


def test_ctrl_c_during_evaluate_or_predict_raises_keyboard_interrupt():
    model, x, y = _model()

    class Interrupt(pycnn.callbacks.Callback):
        def on_test_batch_end(self, batch, logs=None):
            signal.raise_signal(signal.SIGINT)

        def on_predict_batch_end(self, batch, logs=None):
            signal.raise_signal(signal.SIGINT)

    with pytest.raises(KeyboardInterrupt):
        model.evaluate(x, y, batch_size=16, verbose=0, callbacks=[Interrupt()])
    with pytest.raises(KeyboardInterrupt):
        model.predict(x, batch_size=16, verbose=0, callbacks=[Interrupt()])
    assert model.predict(x, verbose=0).shape == (64, 3)      # still usable
