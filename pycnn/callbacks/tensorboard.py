"""``TensorBoard`` (Keras 3's ``keras.callbacks.TensorBoard``): training curves and weight
histograms as TensorBoard event files, written with the ``tensorboard`` package's own writer
(no TensorFlow needed)."""
from __future__ import annotations

import json
import os
import time
import warnings

import numpy as np

from .callback import Callback


def _tensorboard_modules():
    try:
        from tensorboard.compat.proto import event_pb2, summary_pb2, tensor_pb2
        from tensorboard.compat.proto import tensor_shape_pb2, types_pb2
        from tensorboard.plugins.histogram import summary_v2 as histogram
        from tensorboard.plugins.scalar import summary_v2 as scalar
        from tensorboard.summary.writer.event_file_writer import EventFileWriter
    except ImportError as err:
        raise ImportError("The TensorBoard callback writes TensorBoard event files with the "
                          "`tensorboard` package, which is not installed: pip install "
                          f"tensorboard ({err})") from None
    return {"event_pb2": event_pb2, "summary_pb2": summary_pb2, "tensor_pb2": tensor_pb2,
            "tensor_shape_pb2": tensor_shape_pb2, "types_pb2": types_pb2,
            "histogram": histogram, "scalar": scalar, "EventFileWriter": EventFileWriter}


class _Writer:
    """One event file in one folder (``train`` or ``validation``)."""

    def __init__(self, tb: dict, logdir: str):
        os.makedirs(logdir, exist_ok=True)
        self._tb = tb
        self._writer = tb["EventFileWriter"](logdir)

    def _add(self, summary, step: int) -> None:
        event = self._tb["event_pb2"].Event(wall_time=time.time(), step=int(step),
                                            summary=summary)
        self._writer.add_event(event)

    def scalar(self, tag: str, value, step: int) -> None:
        self._add(self._tb["scalar"].scalar_pb(tag, float(np.asarray(value, np.float64))),
                  step)

    def histogram(self, tag: str, values, step: int) -> None:
        data = np.asarray(values, np.float64).ravel()
        self._add(self._tb["histogram"].histogram_pb(tag, data), step)

    def model_config(self, model_json: str, step: int = 0) -> None:
        """The model's JSON config under the tag ``keras`` (TensorBoard's "conceptual graph"
        of a Keras model, as Keras' ``keras_model_summary`` writes it)."""
        tb = self._tb
        tensor = tb["tensor_pb2"].TensorProto(
            dtype=tb["types_pb2"].DT_STRING, tensor_shape=tb["tensor_shape_pb2"].TensorShapeProto(),
            string_val=[model_json.encode("utf-8")])
        metadata = tb["summary_pb2"].SummaryMetadata(
            plugin_data=tb["summary_pb2"].SummaryMetadata.PluginData(
                plugin_name="graph_keras_model", content=b"1"))
        summary = tb["summary_pb2"].Summary(value=[tb["summary_pb2"].Summary.Value(
            tag="keras", tensor=tensor, metadata=metadata)])
        self._add(summary, step)

    def flush(self) -> None:
        self._writer.flush()

    def close(self) -> None:
        self._writer.close()


class TensorBoard(Callback):
    """Write TensorBoard logs: the epoch's loss and metrics (and learning rate) as scalars,
    and with ``histogram_freq`` the histograms of the weights. View them with
    ``tensorboard --logdir logs``. Needs the ``tensorboard`` package (``pip install
    tensorboard``); TensorFlow is not needed.

    The layout is Keras': ``log_dir/train`` holds ``epoch_loss``, ``epoch_accuracy``,
    ``epoch_learning_rate`` ... (step = epoch index) and the histograms
    ``<layer>/<weight>/histogram``; ``log_dir/validation`` holds the ``val_`` values under the
    same tags (``epoch_loss`` ...) and ``evaluation_<name>_vs_iterations`` (step = the
    optimizer's iterations).

    Args:
        log_dir: the folder of the logs. Defaults to ``"logs"``.
        histogram_freq: write weight histograms every that many epochs (0: never).
        write_graph: write the model's config, shown as TensorBoard's conceptual graph
            (Sequential and functional models).
        write_images: not supported by pycnn (a warning).
        write_steps_per_second: also log ``epoch_steps_per_second``.
        update_freq: ``"epoch"``, or ``"batch"`` / an integer N: also write ``batch_<name>``
            scalars every N batches (step = batches since the start of training).
        profile_batch: must be 0 (pycnn has no profiler); embeddings_freq,
            embeddings_metadata: not supported (a warning).

    Example:
        >>> tb = TensorBoard(log_dir="logs/run1", histogram_freq=1)     # doctest: +SKIP
        >>> model.fit(x, y, epochs=5, validation_split=0.1, callbacks=[tb])  # doctest: +SKIP
    """

    def __init__(self, log_dir="logs", histogram_freq: int = 0, write_graph: bool = True,
                 write_images: bool = False, write_steps_per_second: bool = False,
                 update_freq="epoch", profile_batch=0, embeddings_freq: int = 0,
                 embeddings_metadata=None, **kwargs):
        super().__init__()
        self._tb = _tensorboard_modules()
        kwargs.pop("write_grads", None)         # tf.keras 1/2 arguments with no effect
        kwargs.pop("batch_size", None)
        if kwargs:
            raise TypeError(f"Unrecognized arguments in `TensorBoard`: {kwargs}")
        if isinstance(histogram_freq, bool) or not isinstance(histogram_freq, (int, np.integer)) \
                or histogram_freq < 0:
            raise ValueError(f"histogram_freq must be a non-negative integer. Received: "
                             f"histogram_freq={histogram_freq!r}")
        if update_freq == "batch":
            update_freq = 1
        if update_freq != "epoch" and (isinstance(update_freq, bool) or not isinstance(
                update_freq, (int, np.integer)) or update_freq <= 0):
            raise ValueError(f"update_freq must be 'epoch', 'batch' or a positive integer. "
                             f"Received: update_freq={update_freq!r}")
        if profile_batch not in (0, None, (0, 0), "0"):
            raise ValueError(f"Profiling is not available in pycnn. Received: "
                             f"profile_batch={profile_batch} (must be 0)")
        for arg, value in (("write_images", write_images), ("embeddings_freq", embeddings_freq),
                           ("embeddings_metadata", embeddings_metadata)):
            if value:
                warnings.warn(f"TensorBoard: {arg} is not supported by pycnn and is ignored.",
                              stacklevel=2)
        self.log_dir = os.fspath(log_dir)
        self.histogram_freq = int(histogram_freq)
        self.write_graph = bool(write_graph)
        self.write_images = write_images
        self.write_steps_per_second = bool(write_steps_per_second)
        self.update_freq = update_freq if update_freq == "epoch" else int(update_freq)
        self.embeddings_freq = embeddings_freq
        self.embeddings_metadata = embeddings_metadata
        self._train_dir = os.path.join(self.log_dir, "train")
        self._val_dir = os.path.join(self.log_dir, "validation")
        self._writers: dict[str, _Writer] = {}
        self._global_train_batch = 0
        self._epoch_start_time = 0.0
        self._epoch_start_iterations = 0
        self._graph_written = False

    # ---- writers -----------------------------------------------------------------------------
    @property
    def _train_writer(self) -> _Writer:
        if "train" not in self._writers:
            self._writers["train"] = _Writer(self._tb, self._train_dir)
        return self._writers["train"]

    @property
    def _val_writer(self) -> _Writer:
        if "val" not in self._writers:
            self._writers["val"] = _Writer(self._tb, self._val_dir)
        return self._writers["val"]

    def _close_writers(self) -> None:
        for writer in self._writers.values():
            writer.close()
        self._writers = {}

    def _write_model_config(self) -> None:
        if type(self.model).__name__ not in ("Functional", "Sequential", "Model") or \
                getattr(self.model, "_is_subclassed", False):
            return
        try:
            model_json = self.model.to_json()
        except Exception as exc:      # noqa: BLE001 - Keras warns and goes on as well
            warnings.warn(f"Model failed to serialize as JSON. Ignoring... {exc}")
            return
        self._train_writer.model_config(model_json, step=0)

    # ---- hooks -------------------------------------------------------------------------------
    def on_train_begin(self, logs=None):
        self._global_train_batch = 0
        if self.write_graph and not self._graph_written:
            self._write_model_config()
            self._graph_written = True

    def on_train_end(self, logs=None):
        self._close_writers()

    def on_epoch_begin(self, epoch, logs=None):
        if self.write_steps_per_second:
            self._epoch_start_time = time.time()
            self._epoch_start_iterations = int(getattr(self.model.optimizer, "iterations", 0))

    def on_train_batch_begin(self, batch, logs=None):
        self._global_train_batch += 1

    def on_train_batch_end(self, batch, logs=None):
        if self.update_freq == "epoch" or self._global_train_batch % self.update_freq:
            return
        writer = self._train_writer
        for name, value in (logs or {}).items():
            writer.scalar(f"batch_{name}", value, self._global_train_batch)

    def on_test_end(self, logs=None):
        opt = getattr(self.model, "optimizer", None)
        if opt is not None and hasattr(opt, "iterations") and logs:
            writer = self._val_writer
            for name, value in logs.items():
                writer.scalar(f"evaluation_{name}_vs_iterations", value, int(opt.iterations))
            writer.flush()

    def on_epoch_end(self, epoch, logs=None):
        self._log_epoch_metrics(epoch, logs)
        if self.histogram_freq and epoch % self.histogram_freq == 0:
            self._log_weights(epoch)

    def _log_epoch_metrics(self, epoch: int, logs) -> None:
        if not logs:
            return
        train_logs = {k: v for k, v in logs.items() if not k.startswith("val_")}
        val_logs = {k[4:]: v for k, v in logs.items() if k.startswith("val_")}
        opt = getattr(self.model, "optimizer", None)
        if opt is not None and hasattr(opt, "learning_rate"):
            train_logs["learning_rate"] = float(np.asarray(opt.learning_rate))
        if self.write_steps_per_second:
            seconds = max(time.time() - self._epoch_start_time, 1e-9)
            steps = int(getattr(opt, "iterations", 0)) - self._epoch_start_iterations
            train_logs["steps_per_second"] = steps / seconds
        if train_logs:
            writer = self._train_writer
            for name, value in train_logs.items():
                writer.scalar(f"epoch_{name}", value, epoch)
            writer.flush()
        if val_logs:
            writer = self._val_writer
            for name, value in val_logs.items():
                writer.scalar(f"epoch_{name}", value, epoch)
            writer.flush()

    def _log_weights(self, epoch: int) -> None:
        writer = self._train_writer
        for layer in self.model.layers:
            for weight in layer.weights:
                name = getattr(weight, "path", weight.name).replace(":", "_")
                writer.histogram(f"{name}/histogram", weight.numpy(), epoch)
        writer.flush()
