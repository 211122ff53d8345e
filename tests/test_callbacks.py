"""Keras' callbacks (pycnn.callbacks), each run by ``fit`` on tiny Dense models.

Monitored values are scripted: a ``LambdaCallback`` placed first writes ``score`` into the epoch
logs (the same dict every later callback sees, as in Keras), so improvements and plateaus are
exactly the ones intended. The expected epochs, learning rates, messages and CSV bytes were
computed by Keras 3.15 (JAX backend) on the same scripts (``fit`` with the same callbacks);
where pycnn follows tf.keras 2 instead (the printed ``improved from inf``), the test says so.
"""
from __future__ import annotations

import importlib.util
import json
import math
import os
import signal
import sys
import warnings

import numpy as np
import pytest

import pycnn
import pycnn as keras
from pycnn import callbacks as C
from pycnn import layers

X = np.random.default_rng(0).normal(size=(16, 3)).astype(np.float32)
Y = np.array([0, 1] * 8)


def tiny_model(optimizer=None, seed=7):
    pycnn.utils.set_random_seed(seed)
    model = keras.Sequential([keras.Input((3,)), layers.Dense(4, activation="relu"),
                              layers.Dense(2, activation="softmax")])
    model.compile(optimizer or keras.optimizers.SGD(learning_rate=0.1),
                  "sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


def scripted(values, key="score"):
    """Writes ``values[epoch]`` into the epoch logs as ``key``."""
    return C.LambdaCallback(on_epoch_end=lambda epoch, logs: logs.update({key: values[epoch]}))


def fit(model, callbacks, epochs, **kwargs):
    kwargs.setdefault("verbose", 0)
    kwargs.setdefault("batch_size", 8)
    return model.fit(X, Y, epochs=epochs, callbacks=callbacks, **kwargs)


# ---- the package ---------------------------------------------------------------------------------
def test_every_callback_is_importable_from_pycnn_callbacks():
    for name in ("Callback", "CallbackList", "History", "ProgbarLogger", "TerminateOnNaN",
                 "EarlyStopping", "LambdaCallback", "ModelCheckpoint", "ReduceLROnPlateau",
                 "LearningRateScheduler", "CSVLogger", "BackupAndRestore", "TensorBoard"):
        cls = getattr(keras.callbacks, name)
        assert issubclass(cls, C.Callback), name
    assert issubclass(C.CallbackList, C.Callback)


# ---- Callback and CallbackList --------------------------------------------------------------------
class Hooks(C.Callback):
    def __init__(self):
        super().__init__()
        self.calls = []

    def on_batch_end(self, batch, logs=None):           # the tf.keras 2 name
        self.calls.append(("batch_end", batch))

    def on_test_begin(self, logs=None):
        self.calls.append(("test_begin",))

    def on_test_end(self, logs=None):
        self.calls.append(("test_end", sorted(logs)))

    def on_epoch_end(self, epoch, logs=None):
        self.calls.append(("epoch_end", epoch))


def test_on_batch_end_is_called_for_every_training_batch_and_validation_calls_test_hooks():
    hooks = Hooks()
    fit(tiny_model(), [hooks], epochs=2, validation_data=(X, Y))
    assert hooks.calls == [("batch_end", 0), ("batch_end", 1), ("test_begin",),
                           ("test_end", ["accuracy", "loss"]), ("epoch_end", 0),
                           ("batch_end", 0), ("batch_end", 1), ("test_begin",),
                           ("test_end", ["accuracy", "loss"]), ("epoch_end", 1)]


def test_callback_list_in_the_callbacks_is_opened_and_history_comes_after_the_users():
    order = []
    a = C.LambdaCallback(on_epoch_end=lambda e, logs: order.append("a"))
    b = C.LambdaCallback(on_epoch_end=lambda e, logs: order.append("b"))
    model = tiny_model()
    history = fit(model, [C.CallbackList([a]), [b]], epochs=1)
    assert order == ["a", "b"]
    assert isinstance(history, C.History) and model.history is history
    assert a.model is model and b.params["epochs"] == 1 and b.params["steps"] == 2


def test_callback_list_sets_model_and_params_and_adds_history_and_progbar():
    model = tiny_model()
    es = C.EarlyStopping()
    cl = C.CallbackList([es], add_history=True, add_progbar=True, model=model, verbose=0,
                        epochs=3, steps=5)
    assert [type(c).__name__ for c in cl.callbacks] == ["EarlyStopping", "History",
                                                        "ProgbarLogger"]
    assert es.model is model and es.params == {"verbose": 0, "epochs": 3, "steps": 5}
    assert model.history is cl.callbacks[1]
    user_history = C.History()
    cl = C.CallbackList([user_history], add_history=True)
    assert cl.callbacks == [user_history]


def test_a_user_history_is_the_one_fit_returns_and_accumulates_values_as_keras():
    history = C.History()
    model = tiny_model()
    assert fit(model, [history], epochs=2) is history
    assert history.epoch == [0, 1] and len(history.history["loss"]) == 2
    fit(model, [history], epochs=1)
    assert history.epoch == [0] and len(history.history["loss"]) == 3
    assert len(fit(model, [], epochs=1).history["loss"]) == 1


@pytest.mark.parametrize("bad", [object(), "cb", [C.History(), 3]])
def test_callbacks_that_are_not_callbacks_are_a_type_error(bad):
    with pytest.raises(TypeError, match="Callback"):
        fit(tiny_model(), bad if isinstance(bad, (str, list)) else [bad], epochs=1)


# ---- EarlyStopping --------------------------------------------------------------------------------
# (values of `score`, arguments) -> epochs run, best_epoch, stopped_epoch, wait; from Keras 3.15
EARLY_STOPPING = {
    "patience2": ([1.0, 0.8, 0.9, 0.85, 0.7, 0.95], dict(mode="min", patience=2),
                  [0, 1, 2, 3], 1, 3, 2),
    "patience0": ([1.0, 0.8, 0.9, 0.7], dict(mode="min", patience=0), [0, 1, 2], 1, 2, 1),
    "min_delta": ([1.0, 0.95, 0.91, 0.5, 0.4], dict(mode="min", patience=1, min_delta=0.05),
                  [0, 1], 0, 1, 1),
    "max": ([0.1, 0.5, 0.4, 0.45, 0.3], dict(mode="max", patience=2), [0, 1, 2, 3], 1, 3, 2),
    "baseline_never_met": ([1.0, 0.9, 0.8, 0.7, 0.6], dict(mode="min", patience=3,
                                                          baseline=0.5),
                           [0, 1, 2, 3, 4], 4, 0, 5),
    "baseline_met": ([1.0, 0.4, 0.45, 0.3, 0.35, 0.5, 0.6], dict(mode="min", patience=2,
                                                                baseline=0.5),
                     [0, 1, 2, 3, 4, 5], 3, 5, 2),
    "start_from_epoch": ([1.0, 2.0, 3.0, 2.5, 2.6, 2.7], dict(mode="min", patience=1,
                                                             start_from_epoch=2),
                         [0, 1, 2, 3, 4], 3, 4, 1),
}


@pytest.mark.parametrize("case", sorted(EARLY_STOPPING))
def test_early_stopping_stops_at_keras_epoch(case):
    values, kwargs, epochs, best_epoch, stopped_epoch, wait = EARLY_STOPPING[case]
    stop = C.EarlyStopping(monitor="score", **kwargs)
    history = fit(tiny_model(), [scripted(values), stop], epochs=len(values))
    assert history.epoch == epochs
    assert (stop.best_epoch, stop.stopped_epoch, stop.wait) == (best_epoch, stopped_epoch, wait)
    assert history.history["score"] == values[:len(epochs)]


class Snapshots(C.Callback):
    def __init__(self):
        super().__init__()
        self.weights = []

    def on_epoch_end(self, epoch, logs=None):
        self.weights.append(self.model.get_weights())


@pytest.mark.parametrize("values,patience,printed", [
    # no early stop: Keras 3 restores the best weights at the end all the same
    ([1.0, 0.5, 0.7, 0.8], 5,
     "Restoring model weights from the end of the best epoch: 2.\n"),
    ([1.0, 0.5, 0.7, 0.8, 0.9], 2,
     "Epoch 4: early stopping\nRestoring model weights from the end of the best epoch: 2.\n"),
])
def test_early_stopping_restores_the_best_epochs_weights(values, patience, printed, capsys):
    snaps = Snapshots()
    stop = C.EarlyStopping(monitor="score", mode="min", patience=patience, verbose=1,
                           restore_best_weights=True)
    model = tiny_model()
    fit(model, [scripted(values), snaps, stop], epochs=len(values))
    assert capsys.readouterr().out == printed
    for got, best in zip(model.get_weights(), snaps.weights[1]):
        np.testing.assert_array_equal(got, best)
    assert not np.array_equal(snaps.weights[1][0], snaps.weights[-1][0])


def test_early_stopping_auto_mode_follows_the_metric():
    model = tiny_model()
    fit(model, [], epochs=1)
    for monitor, op in (("val_loss", np.less), ("loss", np.less), ("accuracy", np.greater),
                        ("val_accuracy", np.greater)):
        stop = C.EarlyStopping(monitor=monitor)
        stop.set_model(model)
        stop._set_monitor_op()
        assert stop.monitor_op is op, monitor
    # a name that is no metric of the model: Keras 3 raises; pycnn uses tf.keras 2's rule
    for monitor, op in (("val_my_acc", np.greater), ("score", np.less)):
        stop = C.EarlyStopping(monitor=monitor)
        stop.set_model(model)
        stop._set_monitor_op()
        assert stop.monitor_op is op, monitor


def test_early_stopping_on_a_missing_value_warns_and_goes_on():
    stop = C.EarlyStopping(monitor="val_loss", patience=0)
    with pytest.warns(UserWarning, match="Early stopping conditioned on metric `val_loss` "
                                         "which is not available"):
        history = fit(tiny_model(), [stop], epochs=3)
    assert history.epoch == [0, 1, 2]


def test_early_stopping_unknown_mode_warns_and_means_auto():
    with pytest.warns(UserWarning, match="mode 'bigger' is unknown, fallback to auto mode"):
        stop = C.EarlyStopping(mode="bigger")
    assert stop.mode == "auto"
    with pytest.raises(ValueError, match="patience"):
        C.EarlyStopping(patience=-1)


# ---- ModelCheckpoint ------------------------------------------------------------------------------
def test_model_checkpoint_best_only_formats_names_and_saves_only_improvements(tmp_path, capsys):
    values = [0.5, 0.4, 0.45, 0.3]
    snaps = Snapshots()
    path = tmp_path / "m.{epoch:02d}-{score:.2f}.keras"
    checkpoint = C.ModelCheckpoint(path, monitor="score", mode="min", save_best_only=True,
                                   verbose=1)
    fit(tiny_model(), [scripted(values), snaps, checkpoint], epochs=4)
    # the files Keras 3 writes for the same script
    assert sorted(os.listdir(tmp_path)) == ["m.01-0.50.keras", "m.02-0.40.keras",
                                            "m.04-0.30.keras"]
    d = str(tmp_path)
    # tf.keras 2.15's messages (Keras 3 prints "from None" and a "finished saving" line)
    assert capsys.readouterr().out == (
        f"\nEpoch 1: score improved from inf to 0.50000, saving model to {d}/m.01-0.50.keras\n"
        f"\nEpoch 2: score improved from 0.50000 to 0.40000, saving model to "
        f"{d}/m.02-0.40.keras\n"
        f"\nEpoch 3: score did not improve from 0.40000\n"
        f"\nEpoch 4: score improved from 0.40000 to 0.30000, saving model to "
        f"{d}/m.04-0.30.keras\n")
    for name, epoch in (("m.02-0.40.keras", 1), ("m.04-0.30.keras", 3)):
        loaded = pycnn.saving.load_model(tmp_path / name)
        for got, want in zip(loaded.get_weights(), snaps.weights[epoch]):
            np.testing.assert_array_equal(got, want)
    assert loaded.optimizer is not None


def test_model_checkpoint_fixed_name_holds_the_best_model(tmp_path):
    values = [0.2, 0.6, 0.5, 0.7, 0.1]           # mode "max": epochs 1, 2, 4 improve
    snaps = Snapshots()
    checkpoint = C.ModelCheckpoint(tmp_path / "best.h5", monitor="score", mode="max",
                                   save_best_only=True)
    fit(tiny_model(), [scripted(values), snaps, checkpoint], epochs=5)
    assert os.listdir(tmp_path) == ["best.h5"]
    assert checkpoint.best == 0.7
    loaded = pycnn.saving.load_model(tmp_path / "best.h5")
    for got, want in zip(loaded.get_weights(), snaps.weights[3]):
        np.testing.assert_array_equal(got, want)


def test_model_checkpoint_initial_value_threshold_must_be_beaten(tmp_path):
    checkpoint = C.ModelCheckpoint(tmp_path / "m{epoch}.keras", monitor="score", mode="min",
                                   save_best_only=True, initial_value_threshold=0.35)
    fit(tiny_model(), [scripted([0.5, 0.4, 0.3, 0.32]), checkpoint], epochs=4)
    assert os.listdir(tmp_path) == ["m3.keras"]


def test_model_checkpoint_every_epoch_weights_only(tmp_path, capsys):
    snaps = Snapshots()
    checkpoint = C.ModelCheckpoint(tmp_path / "w.{epoch:02d}.weights.h5",
                                   save_weights_only=True, verbose=1)
    fit(tiny_model(), [snaps, checkpoint], epochs=2)
    assert sorted(os.listdir(tmp_path)) == ["w.01.weights.h5", "w.02.weights.h5"]
    d = str(tmp_path)
    assert capsys.readouterr().out == (f"\nEpoch 1: saving model to {d}/w.01.weights.h5\n"
                                       f"\nEpoch 2: saving model to {d}/w.02.weights.h5\n")
    other = tiny_model(seed=99)
    other.load_weights(tmp_path / "w.01.weights.h5")
    for got, want in zip(other.get_weights(), snaps.weights[0]):
        np.testing.assert_array_equal(got, want)
    with pytest.raises(ValueError):                 # weights only: not a model file
        pycnn.saving.load_model(tmp_path / "w.01.weights.h5")


def test_model_checkpoint_tf_keras_2_h5_weights(tmp_path):
    snaps = Snapshots()
    checkpoint = C.ModelCheckpoint(tmp_path / "weights.{epoch:02d}-{loss:.2f}.hdf5",
                                   monitor="loss", save_weights_only=True)
    history = fit(tiny_model(), [snaps, checkpoint], epochs=2)
    name = f"weights.02-{history.history['loss'][1]:.2f}.hdf5"
    assert name in os.listdir(tmp_path)
    other = tiny_model(seed=99)
    other.load_weights(tmp_path / name)
    for got, want in zip(other.get_weights(), snaps.weights[1]):
        np.testing.assert_array_equal(got, want)


def test_model_checkpoint_integer_save_freq_counts_batches(tmp_path):
    # 16 samples in batches of 2: 8 batches per epoch; every 3 batches (as Keras 3 names them)
    checkpoint = C.ModelCheckpoint(tmp_path / "b.{epoch:02d}-{batch:02d}.keras", save_freq=3)
    fit(tiny_model(), [checkpoint], epochs=2, batch_size=2)
    assert sorted(os.listdir(tmp_path)) == ["b.01-03.keras", "b.01-06.keras", "b.02-01.keras",
                                            "b.02-04.keras", "b.02-07.keras"]


@pytest.mark.parametrize("kwargs,message", [
    (dict(filepath="a.ckpt"), r"must end in `\.keras`.*Received: filepath=a\.ckpt"),
    (dict(filepath="cp.ckpt", save_weights_only=True), r"must end in `\.weights\.h5`"),
    (dict(filepath="a.keras", save_weights_only=True), r"must end in `\.weights\.h5`"),
    (dict(filepath="a.keras", save_freq="batch"), "Unrecognized save_freq: batch"),
    (dict(filepath="a.keras", save_freq=0), "Unrecognized save_freq: 0"),
])
def test_model_checkpoint_rejects_what_keras_rejects(kwargs, message):
    with pytest.raises(ValueError, match=message):
        C.ModelCheckpoint(**kwargs)


def test_model_checkpoint_accepts_keras_3_and_tf_keras_2_names():
    for kwargs in (dict(filepath="a.keras"), dict(filepath="a.h5"),
                   dict(filepath="a.weights.h5"), dict(filepath="a.hdf5"),
                   dict(filepath="a.weights.h5", save_weights_only=True),
                   dict(filepath="a.h5", save_weights_only=True),
                   dict(filepath="a.keras", save_freq=np.int64(5))):
        C.ModelCheckpoint(**kwargs)


def test_model_checkpoint_unknown_placeholder_is_a_key_error(tmp_path):
    checkpoint = C.ModelCheckpoint(tmp_path / "m.{val_auc:.2f}.keras")
    with pytest.raises(KeyError, match="Failed to format this callback filepath"):
        fit(tiny_model(), [checkpoint], epochs=1)


def test_model_checkpoint_into_a_directory_is_an_io_error(tmp_path):
    (tmp_path / "m.keras").mkdir()
    with pytest.raises(IOError, match="non-directory filepath"):
        fit(tiny_model(), [C.ModelCheckpoint(tmp_path / "m.keras")], epochs=1)


def test_model_checkpoint_creates_missing_folders(tmp_path):
    fit(tiny_model(), [C.ModelCheckpoint(tmp_path / "a" / "b" / "m.keras")], epochs=1)
    assert os.path.isfile(tmp_path / "a" / "b" / "m.keras")


# ---- ReduceLROnPlateau ----------------------------------------------------------------------------
# (values, arguments) -> learning rate after each epoch, history["learning_rate"], printed
# (Keras 3.15, the optimizer starting at 0.1: float32 0.10000000149011612)
REDUCE = {
    "basic": ([1.0, 0.9, 0.95, 0.97, 0.99, 0.98, 0.97, 0.99, 0.5, 0.6, 0.7],
              dict(factor=0.5, patience=2, verbose=1),
              [0.10000000149011612] * 3 + [0.05000000074505806] * 2 +
              [0.02500000037252903] * 2 + [0.012500000186264515] * 3 + [0.0062500000931322575],
              [0.10000000149011612] * 4 + [0.05000000074505806] * 2 +
              [0.02500000037252903] * 2 + [0.012500000186264515] * 3,
              "\nEpoch 4: ReduceLROnPlateau reducing learning rate to 0.05000000074505806.\n"
              "\nEpoch 6: ReduceLROnPlateau reducing learning rate to 0.02500000037252903.\n"
              "\nEpoch 8: ReduceLROnPlateau reducing learning rate to 0.012500000186264515.\n"
              "\nEpoch 11: ReduceLROnPlateau reducing learning rate to 0.0062500000931322575."
              "\n"),
    "cooldown_min_lr": ([1.0, 1.1, 1.2, 1.3, 1.4, 1.5, 1.6, 1.7, 1.8],
                        dict(factor=0.1, patience=1, cooldown=2, min_lr=0.0005, verbose=1),
                        [0.10000000149011612] + [0.009999999776482582] * 2 +
                        [0.0009999999310821295] * 2 + [0.0005000000237487257] * 4,
                        [0.10000000149011612] * 2 + [0.009999999776482582] * 2 +
                        [0.0009999999310821295] * 2 + [0.0005000000237487257] * 3,
                        "\nEpoch 2: ReduceLROnPlateau reducing learning rate to "
                        "0.010000000149011612.\n"
                        "\nEpoch 4: ReduceLROnPlateau reducing learning rate to "
                        "0.0009999999776482583.\n"
                        "\nEpoch 6: ReduceLROnPlateau reducing learning rate to 0.0005.\n"),
    "min_delta": ([1.0, 0.99995, 0.9999, 0.99985, 0.5], dict(factor=0.2, patience=1,
                                                             min_delta=1e-4),
                  [0.10000000149011612, 0.019999999552965164] + [0.003999999724328518] * 3,
                  [0.10000000149011612] * 2 + [0.019999999552965164] +
                  [0.003999999724328518] * 2, ""),
    "max": ([0.5, 0.6, 0.6, 0.6, 0.7, 0.7], dict(factor=0.3, patience=1, mode="max"),
            [0.10000000149011612] * 2 + [0.030000001192092896] + [0.009000000543892384] * 2 +
            [0.0027000000700354576],
            [0.10000000149011612] * 3 + [0.030000001192092896] + [0.009000000543892384] * 2,
            ""),
}


@pytest.mark.parametrize("case", sorted(REDUCE))
def test_reduce_lr_on_plateau_changes_the_learning_rate_as_keras(case, capsys):
    values, kwargs, lrs, logged, printed = REDUCE[case]
    kwargs = {"mode": "min", **kwargs}
    model = tiny_model()
    seen = []
    record = C.LambdaCallback(
        on_epoch_end=lambda e, logs: seen.append(model.optimizer.learning_rate))
    history = fit(model, [scripted(values), C.ReduceLROnPlateau(monitor="score", **kwargs),
                          record], epochs=len(values))
    assert seen == lrs
    assert history.history["learning_rate"] == logged
    assert capsys.readouterr().out == printed


def test_reduced_learning_rate_is_the_one_the_optimizer_uses():
    """After a reduction, one SGD step moves the weights by the new rate times the gradient:
    the same step with a fresh optimizer at that rate gives the same weights."""
    model = tiny_model()
    fit(model, [scripted([1.0, 2.0]), C.ReduceLROnPlateau(monitor="score", mode="min",
                                                         patience=1, factor=0.5)], epochs=2)
    assert model.optimizer.learning_rate == np.float32(0.05)
    twin = tiny_model()
    twin.set_weights(model.get_weights())
    twin.compile(keras.optimizers.SGD(learning_rate=0.05), "sparse_categorical_crossentropy")
    model.fit(X, Y, epochs=1, batch_size=16, verbose=0, shuffle=False)
    twin.fit(X, Y, epochs=1, batch_size=16, verbose=0, shuffle=False)
    for a, b in zip(model.get_weights(), twin.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_reduce_lr_on_plateau_rejects_a_factor_of_one():
    with pytest.raises(ValueError, match="does not support a factor >= 1.0"):
        C.ReduceLROnPlateau(factor=1.0)


def test_reduce_lr_on_plateau_on_a_missing_value_warns_and_logs_the_rate():
    with pytest.warns(UserWarning, match="Learning rate reduction is conditioned on metric "
                                         "`val_loss` which is not available"):
        history = fit(tiny_model(), [C.ReduceLROnPlateau(patience=0)], epochs=2)
    assert history.history["learning_rate"] == [0.10000000149011612] * 2


def test_learning_rate_appears_on_the_progress_bar_line(capsys):
    fit(tiny_model(), [C.ReduceLROnPlateau(monitor="loss")], epochs=1, verbose=2)
    line = capsys.readouterr().out.strip()
    assert line.endswith("/step")
    assert " - learning_rate: 0.1000 - " in line


# ---- LearningRateScheduler ------------------------------------------------------------------------
def _decay_after_two(epoch, lr):
    return lr if epoch < 2 else lr * float(np.exp(-0.1))


def _inverse_time(epoch):
    return 0.1 / (1 + epoch)


@pytest.mark.parametrize("schedule,lrs,printed", [
    (_decay_after_two,
     [0.10000000149011612, 0.10000000149011612, 0.09048373997211456, 0.08187307417392731],
     ["0.10000000149011612", "0.10000000149011612", "0.09048374315190877",
      "0.08187307365060528"]),
    (_inverse_time,
     [0.10000000149011612, 0.05000000074505806, 0.03333333507180214, 0.02500000037252903],
     ["0.1", "0.05", "0.03333333333333333", "0.025"]),
], ids=["schedule(epoch, lr)", "schedule(epoch)"])
def test_learning_rate_scheduler_sets_the_rate_each_epoch(schedule, lrs, printed, capsys):
    model = tiny_model()
    seen = []
    record = C.LambdaCallback(
        on_epoch_begin=lambda e, logs: seen.append(model.optimizer.learning_rate))
    history = fit(model, [C.LearningRateScheduler(schedule, verbose=1), record], epochs=4)
    # Keras' formula: lr_e = schedule(e, lr_{e-1}) in float32
    assert seen == lrs
    assert history.history["learning_rate"] == lrs
    assert list(history.history) == ["loss", "accuracy", "learning_rate"]
    assert capsys.readouterr().out == "".join(
        f"\nEpoch {e + 1}: LearningRateScheduler setting learning rate to {p}.\n"
        for e, p in enumerate(printed))


def test_learning_rate_scheduler_needs_a_float():
    with pytest.raises(ValueError, match="should be a float. Got: 1"):
        fit(tiny_model(), [C.LearningRateScheduler(lambda epoch: 1)], epochs=1)
    fit(tiny_model(), [C.LearningRateScheduler(lambda epoch: np.float32(0.5))], epochs=1)


# ---- CSVLogger ------------------------------------------------------------------------------------
def test_csv_logger_writes_keras_bytes(tmp_path):
    """The hooks called directly with the same logs as in Keras 3: the same bytes."""
    path = tmp_path / "log.csv"
    logger = C.CSVLogger(path)
    logger.on_train_begin()
    logger.on_epoch_end(0, {"loss": 0.5, "accuracy": 1 / 3, "val_loss": 0.25,
                            "val_accuracy": 2 / 3})
    logger.on_epoch_end(1, {"loss": 0.1, "accuracy": 0.75, "val_loss": 1e-7,
                            "val_accuracy": 1.0})
    logger.on_train_end()
    first = ("epoch,accuracy,loss,val_accuracy,val_loss\r\n"
             "0,0.3333333333333333,0.5,0.6666666666666666,0.25\r\n"
             "1,0.75,0.1,1.0,1e-07\r\n")
    assert path.read_bytes().decode() == first
    logger = C.CSVLogger(path, separator=";", append=True)
    logger.on_train_begin()
    logger.on_epoch_end(0, {"loss": 2.0, "accuracy": 0.0})
    logger.on_epoch_end(1, {"loss": 1.5, "accuracy": 0.5, "val_loss": 3.0})
    logger.on_train_end()
    assert path.read_bytes().decode() == first + "0;0.0;2.0;NA;NA\r\n1;0.5;1.5;NA;3.0\r\n"


def test_csv_logger_during_fit_writes_the_history(tmp_path):
    path = tmp_path / "training.log"
    history = fit(tiny_model(), [C.CSVLogger(path)], epochs=3, validation_data=(X, Y))
    h = history.history
    keys = sorted(h)
    expected = ",".join(["epoch"] + keys) + "\r\n" + "".join(
        ",".join([str(e)] + [repr(float(h[k][e])) for k in keys]) + "\r\n" for e in range(3))
    assert path.read_bytes().decode() == expected
    # a second fit overwrites (append=False)
    fit(tiny_model(), [C.CSVLogger(path)], epochs=1)
    assert path.read_bytes().decode().count("\r\n") == 2


def test_csv_logger_with_validation_every_other_epoch_writes_na(tmp_path):
    path = tmp_path / "log.csv"
    history = fit(tiny_model(), [C.CSVLogger(path)], epochs=2, validation_data=(X, Y),
                  validation_freq=2)
    rows = path.read_bytes().decode().split("\r\n")
    assert rows[0] == "epoch,accuracy,loss,val_accuracy,val_loss"
    assert rows[1].endswith(",NA,NA")
    assert rows[2].endswith(f",{history.history['val_loss'][0]!r}")


# ---- BackupAndRestore -----------------------------------------------------------------------------
class Boom(Exception):
    pass


class RaiseAtEpochEnd(C.Callback):
    def __init__(self, epoch):
        super().__init__()
        self.epoch = epoch

    def on_epoch_end(self, epoch, logs=None):
        if epoch == self.epoch:
            raise Boom(f"crash at the end of epoch {epoch + 1}")


def adam_model(seed=7):
    return tiny_model(keras.optimizers.Adam(learning_rate=0.05), seed=seed)


def test_backup_and_restore_resumes_an_interrupted_fit_bit_identically(tmp_path):
    backup_dir = tmp_path / "backup"
    reference = adam_model()
    fit(reference, [], epochs=5, batch_size=4, shuffle=False)

    model = adam_model()
    with pytest.raises(Boom):
        fit(model, [C.BackupAndRestore(backup_dir), RaiseAtEpochEnd(1)], epochs=5,
            batch_size=4, shuffle=False)
    # Keras 3's two files: weights (with the optimizer) and the epoch to resume at
    assert sorted(os.listdir(backup_dir)) == ["latest.weights.h5", "training_metadata.json"]
    assert json.loads((backup_dir / "training_metadata.json").read_text()) == \
        {"epoch": 2, "batch": 0}

    # a new process: a new model (other initial weights) and a new optimizer
    resumed = adam_model(seed=123)
    seen = []
    history = fit(resumed, [C.BackupAndRestore(backup_dir),
                            C.LambdaCallback(on_epoch_begin=lambda e, logs: seen.append(e))],
                  epochs=5, batch_size=4, shuffle=False)
    assert seen == [2, 3, 4] and history.epoch == [2, 3, 4]
    for got, want in zip(resumed.get_weights(), reference.get_weights()):
        np.testing.assert_array_equal(got, want)
    assert resumed.optimizer.iterations == reference.optimizer.iterations == 20
    for got, want in zip(resumed.optimizer.get_weights(), reference.optimizer.get_weights()):
        np.testing.assert_array_equal(got, want)
    assert not backup_dir.exists()                   # deleted once training finished


def test_backup_and_restore_keeps_the_backup_when_asked_and_leaves_other_files(tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    fit(adam_model(), [C.BackupAndRestore(tmp_path, delete_checkpoint=False)], epochs=2)
    assert json.loads((tmp_path / "training_metadata.json").read_text())["epoch"] == 2
    history = fit(adam_model(), [C.BackupAndRestore(tmp_path)], epochs=2)
    assert history.epoch == []                       # nothing left to do
    assert os.listdir(tmp_path) == ["notes.txt"]


def test_backup_and_restore_by_batches_repeats_the_unfinished_epoch(tmp_path):
    with pytest.raises(Boom):
        fit(adam_model(), [C.BackupAndRestore(tmp_path, save_freq=3), RaiseAtEpochEnd(1)],
            epochs=4, batch_size=4)
    # 4 batches per epoch, a backup every 3 batches counted across epochs: after batch 3 of
    # epoch 1 and batch 2 of epoch 2 (Keras records the 0-based batch and the epoch index)
    meta = json.loads((tmp_path / "training_metadata.json").read_text())
    assert meta == {"epoch": 1, "batch": 1}
    history = fit(adam_model(), [C.BackupAndRestore(tmp_path, save_freq=3)], epochs=4,
                  batch_size=4)
    assert history.epoch == [1, 2, 3]


def test_backup_and_restore_falls_back_to_the_previous_backup(tmp_path):
    with pytest.raises(Boom):
        fit(adam_model(), [C.BackupAndRestore(tmp_path, double_checkpoint=True),
                           RaiseAtEpochEnd(2)], epochs=5)
    assert json.loads((tmp_path / "training_metadata.json.bkp").read_text())["epoch"] == 2
    (tmp_path / "latest.weights.h5").write_bytes(b"half a file")
    history = fit(adam_model(), [C.BackupAndRestore(tmp_path, double_checkpoint=True)],
                  epochs=5)
    assert history.epoch == [2, 3, 4]


def test_backup_and_restore_arguments():
    with pytest.raises(ValueError, match="Empty `backup_dir`"):
        C.BackupAndRestore("")
    with pytest.raises(ValueError, match="Invalid value for argument `save_freq`"):
        C.BackupAndRestore("b", save_freq="batch")


def test_ctrl_c_keeps_the_backup_for_the_next_fit(tmp_path, main_thread_sigint, capsys):
    ctrl_c = C.LambdaCallback(on_epoch_end=lambda e, logs: e == 1 and
                              signal.raise_signal(signal.SIGINT))
    history = fit(adam_model(), [C.BackupAndRestore(tmp_path), ctrl_c], epochs=4)
    assert history.epoch == [0, 1]
    assert "interrupted" in capsys.readouterr().err.lower()
    assert json.loads((tmp_path / "training_metadata.json").read_text())["epoch"] == 2
    history = fit(adam_model(), [C.BackupAndRestore(tmp_path)], epochs=4)
    assert history.epoch == [2, 3]
    assert not tmp_path.exists()


# ---- TensorBoard ----------------------------------------------------------------------------------
HAVE_TENSORBOARD = importlib.util.find_spec("tensorboard") is not None


def test_tensorboard_without_the_package_says_how_to_install_it(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "tensorboard", None)     # as if it were not installed
    with pytest.raises(ImportError, match="pip install tensorboard"):
        C.TensorBoard(log_dir=tmp_path)
    assert not tmp_path.joinpath("train").exists()


def _events(folder):
    from tensorboard.backend.event_processing.event_file_loader import EventFileLoader
    from tensorboard.util import tensor_util
    files = [f for f in os.listdir(folder) if f.startswith("events.out.tfevents.")]
    assert len(files) == 1, files
    out = {}
    for event in EventFileLoader(os.path.join(folder, files[0])).Load():
        for value in event.summary.value:
            out.setdefault(value.tag, []).append(
                (event.step, value.metadata.plugin_data.plugin_name,
                 tensor_util.make_ndarray(value.tensor)))
    return out


@pytest.mark.skipif(not HAVE_TENSORBOARD, reason="tensorboard is not installed")
def test_tensorboard_writes_keras_scalars_and_histograms(tmp_path):
    model = tiny_model()
    history = fit(model, [C.TensorBoard(log_dir=tmp_path, histogram_freq=2)], epochs=3,
                  validation_data=(X, Y))
    assert sorted(os.listdir(tmp_path)) == ["train", "validation"]
    train, val = _events(tmp_path / "train"), _events(tmp_path / "validation")
    h = history.history
    for name in ("loss", "accuracy"):
        assert [s for s, _, _ in train[f"epoch_{name}"]] == [0, 1, 2]
        np.testing.assert_allclose([v for _, _, v in train[f"epoch_{name}"]], h[name],
                                   rtol=1e-6)
        np.testing.assert_allclose([v for _, _, v in val[f"epoch_{name}"]], h[f"val_{name}"],
                                   rtol=1e-6)
        assert [s for s, _, _ in val[f"evaluation_{name}_vs_iterations"]] == [2, 4, 6]
    assert {p for _, p, _ in train["epoch_loss"]} == {"scalars"}
    np.testing.assert_allclose([v for _, _, v in train["epoch_learning_rate"]], [0.1] * 3)
    assert train["keras"][0][1] == "graph_keras_model"
    hist = train["dense/kernel/histogram"]
    assert [s for s, _, _ in hist] == [0, 2] and hist[0][1] == "histograms"
    assert hist[-1][2][:, 2].sum() == 3 * 4        # every weight counted once
    assert {"dense/bias/histogram", "dense_1/kernel/histogram"} <= set(train)


@pytest.mark.skipif(not HAVE_TENSORBOARD, reason="tensorboard is not installed")
def test_tensorboard_batch_scalars(tmp_path):
    fit(tiny_model(), [C.TensorBoard(log_dir=tmp_path, update_freq=3, write_graph=False)],
        epochs=2, batch_size=2)
    train = _events(tmp_path / "train")
    assert [s for s, _, _ in train["batch_loss"]] == [3, 6, 9, 12, 15]
    assert "keras" not in train


# ---- TerminateOnNaN, LambdaCallback -------------------------------------------------------------------
def _overflowing_data():
    x = X.copy()
    x[8:12] = 3e38
    return x


def test_terminate_on_nan_raise_error_raises_runtime_error():
    model = tiny_model()
    with pytest.raises(RuntimeError, match="NaN or Inf loss encountered at batch 2"):
        model.fit(_overflowing_data(), Y, batch_size=4, epochs=2, verbose=0, shuffle=False,
                  callbacks=[C.TerminateOnNaN(raise_error=True)])
    assert all(np.isfinite(w).all() for w in model.get_weights())


def test_terminate_on_nan_stops_quietly(capsys):
    history = tiny_model().fit(_overflowing_data(), Y, batch_size=4, epochs=3, verbose=0,
                               shuffle=False, callbacks=[C.TerminateOnNaN()])
    assert len(history.epoch) <= 1 and math.isnan(history.history["loss"][0])
    assert "Batch 2: Invalid loss, terminating training" in capsys.readouterr().out


def test_lambda_callback_hooks_and_extra_keywords():
    calls = []
    cb = C.LambdaCallback(on_train_begin=lambda logs: calls.append("begin"),
                          on_train_batch_end=lambda batch, logs: calls.append(batch),
                          on_train_end=lambda logs: calls.append("end"),
                          on_test_end=lambda logs: calls.append("test"))
    fit(tiny_model(), [cb], epochs=1, validation_data=(X, Y))
    assert calls == ["begin", 0, 1, "test", "end"]


def test_callbacks_see_model_and_params():
    seen = {}
    cb = C.LambdaCallback(on_train_begin=lambda logs: seen.update(
        model=cb.model, params=dict(cb.params)))
    model = tiny_model()
    fit(model, [cb], epochs=2, batch_size=5)
    assert seen["model"] is model
    assert seen["params"]["epochs"] == 2 and seen["params"]["steps"] == 4
    assert seen["params"]["verbose"] == 0
