"""``keras.utils.PyDataset`` (Keras 3) and ``keras.utils.Sequence`` (tf.keras 2's name): the
base class of Python batch generators that ``fit``, ``evaluate`` and ``predict`` take.

    class Batches(keras.utils.PyDataset):
        def __init__(self, x, y, batch_size, **kwargs):
            super().__init__(**kwargs)
            self.x, self.y, self.batch_size = x, y, batch_size

        def __len__(self):                       # batches per epoch
            return math.ceil(len(self.x) / self.batch_size)

        def __getitem__(self, idx):              # one batch: (x, y) or (x, y, sample_weight)
            lo = idx * self.batch_size
            return self.x[lo:lo + self.batch_size], self.y[lo:lo + self.batch_size]

``fit`` asks for the batches by index (in a new random order each epoch when
``shuffle=True``) and calls ``on_epoch_end()`` after every epoch.
"""
from __future__ import annotations

from typing import Any, Iterator


class PyDataset:
    """Base class for a dataset of batches: define ``__len__`` and ``__getitem__``."""

    def __init__(self, workers: int = 1, use_multiprocessing: bool = False,
                 max_queue_size: int = 10):
        for name, value in (("workers", workers), ("max_queue_size", max_queue_size)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"`{name}` must be a positive integer. Received: "
                                 f"{name}={value!r}")
        self.workers, self.use_multiprocessing = workers, bool(use_multiprocessing)
        self.max_queue_size = max_queue_size

    def __getitem__(self, index: int) -> Any:
        raise NotImplementedError(f"{type(self).__name__} must define __getitem__(index) "
                                  "returning one batch")

    def __len__(self) -> int:
        raise NotImplementedError(f"{type(self).__name__} must define __len__() (the number "
                                  "of batches per epoch)")

    @property
    def num_batches(self) -> int:
        return len(self)

    def on_epoch_begin(self) -> None:
        """Called before every epoch."""

    def on_epoch_end(self) -> None:
        """Called after every epoch (shuffle your data here)."""

    def __iter__(self) -> Iterator:
        for i in range(len(self)):
            yield self[i]


#: tf.keras 2's name of the same base class.
Sequence = PyDataset
