"""``CSVLogger`` (Keras 3's ``keras.callbacks.CSVLogger``)."""
from __future__ import annotations

import collections.abc
import csv
import os

import numpy as np

from .callback import Callback


def _pythonify(value):
    """A logs value as Keras writes it: a Python float where it converts (so the text is
    ``repr(float)``, e.g. ``0.6931471824645996``), else the value itself."""
    if isinstance(value, str):
        return value
    try:
        return float(value)
    except (TypeError, ValueError):
        return value


def _cell(value):
    if isinstance(value, str):
        return value
    if isinstance(value, collections.abc.Iterable) and not (
            isinstance(value, np.ndarray) and value.ndim == 0):
        return f"\"[{', '.join(map(str, value))}]\""
    return value


class CSVLogger(Callback):
    """Write every epoch's logs as a row of a CSV file.

    The columns are ``epoch`` (from 0) and the logs' names in sorted order; when the first
    epoch has no ``val_`` values (e.g. ``validation_freq > 1``), a ``val_`` column is added for
    every name, and missing values are written ``NA``. Values are written as Python writes
    floats (``repr``); rows end in ``\\r\\n`` (Python's csv "excel" dialect), as in Keras.

    Args:
        filename: the CSV file.
        separator: the column separator. Defaults to ``","``.
        append: append to an existing file (the header is written only if the file is empty)
            instead of overwriting it.

    Example:
        >>> model.fit(x, y, epochs=5, callbacks=[CSVLogger("training.log")])  # doctest: +SKIP
    """

    def __init__(self, filename, separator: str = ",", append: bool = False):
        super().__init__()
        self.sep = separator
        self.filename = os.fspath(filename)
        self.append = bool(append)
        self.writer = None
        self.keys = None
        self.append_header = True
        self.csv_file = None

    def on_train_begin(self, logs=None):
        if self.append:
            if os.path.exists(self.filename):
                with open(self.filename, "r", encoding="utf-8", newline="") as f:
                    self.append_header = not bool(len(f.readline()))
            mode = "a"
        else:
            mode = "w"
        if self.csv_file is not None and not self.csv_file.closed:
            self.csv_file.close()
        self.csv_file = open(self.filename, mode, encoding="utf-8", newline="")
        self.writer = None
        self.keys = None

    def on_epoch_end(self, epoch, logs=None):
        logs = {k: _pythonify(v) for k, v in (logs or {}).items()}
        if self.keys is None:
            self.keys = sorted(logs.keys())
            if self.keys and not any(k.startswith("val_") for k in self.keys):
                self.keys.extend([f"val_{k}" for k in self.keys])
        if self.writer is None:
            sep = self.sep

            class CustomDialect(csv.excel):
                delimiter = sep

            self.writer = csv.DictWriter(self.csv_file, fieldnames=["epoch"] + self.keys,
                                         dialect=CustomDialect)
            if self.append_header:
                self.writer.writeheader()
        row = {"epoch": epoch}
        row.update((k, _cell(logs.get(k, "NA"))) for k in self.keys)
        self.writer.writerow(row)
        self.csv_file.flush()

    def on_train_end(self, logs=None):
        if self.csv_file is not None and not self.csv_file.closed:
            self.csv_file.close()
        self.writer = None
