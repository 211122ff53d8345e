"""Data for ``fit``/``evaluate``/``predict``: NumPy arrays (one per input and output, as lists
or dicts), or an iterable of batches (a generator, a ``keras.utils.Sequence``/``PyDataset``,
a ``pycnn.utils.Dataset``). Arrays are checked once and cut into batches (shuffled every epoch
by fit); iterables are checked batch by batch."""
from __future__ import annotations

import math
from typing import Any, Iterator, Optional

import numpy as np

from .. import _C, backend
from . import data as data_mod


def is_batch_source(x: Any) -> bool:
    """Whether ``x`` yields batches itself (a generator, Sequence or dataset); a string is
    not (it is bad data, reported as such)."""
    if x is None or isinstance(x, (np.ndarray, list, tuple, dict, str, bytes)):
        return False
    if hasattr(x, "__array__"):
        return False
    return hasattr(x, "__iter__") or hasattr(x, "__next__") or hasattr(x, "__getitem__")


def unpack(data: Any):
    """``(x, y, sample_weight)`` from a batch given as ``x``, ``(x,)``, ``(x, y)`` or
    ``(x, y, sample_weight)``."""
    if isinstance(data, tuple):
        if len(data) == 1:
            return data[0], None, None
        if len(data) == 2:
            return data[0], data[1], None
        if len(data) == 3:
            return data
        raise ValueError(f"Data is expected to be (x,), (x, y) or (x, y, sample_weight); got a "
                         f"tuple of {len(data)} elements")
    return data, None, None


def check_sample_weight(sw: Any, n: int, where: str) -> Optional[np.ndarray]:
    if sw is None:
        return None
    sw = np.asarray(sw)
    if sw.dtype.kind not in "biuf":
        raise TypeError(f"{where}: sample_weight must be numeric, got dtype {sw.dtype}")
    sw = sw.astype(np.float32).reshape(len(sw), -1) if sw.ndim > 1 else sw.astype(np.float32)
    if sw.ndim > 1 and sw.shape[1] == 1:
        sw = sw[:, 0]
    if len(sw) != n:
        raise ValueError(f"{where}: sample_weight has {len(sw)} entries but there are {n} "
                         "samples")
    if not np.isfinite(sw).all() or (sw < 0).any():
        raise ValueError(f"{where}: sample_weight must be finite and non-negative")
    return np.ascontiguousarray(sw)


def class_weights_to_sample(class_weight: dict, y: np.ndarray, where: str) -> np.ndarray:
    """Per-sample weights from ``class_weight`` (class index -> weight) and the targets."""
    if not isinstance(class_weight, dict):
        raise ValueError(f"{where}: class_weight must be a dict from class index to weight")
    labels = y.argmax(axis=-1) if y.ndim > 1 and y.shape[-1] > 1 else \
        (y.reshape(len(y), -1)[:, 0] > 0.5 if y.dtype.kind == "f" and y.ndim > 1 else y)
    labels = np.asarray(labels).astype(np.int64).reshape(-1)
    table = np.ones(int(max(labels.max(initial=0), max(class_weight, default=0))) + 1,
                    np.float32)
    for k, w in class_weight.items():
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 0:
            raise ValueError(f"{where}: class_weight keys must be class indices, got {k!r}")
        table[int(k)] = float(w)
    return table[labels]


class ArrayBatches:
    """Batches of checked arrays: ``xs`` per input, ``ys`` per output (or None), sample
    weights; ``epoch_iterator(shuffle)`` yields ``(xs, ys, sw)`` per step."""

    def __init__(self, xs: list[np.ndarray], ys: Optional[list], sw: Optional[np.ndarray],
                 batch_size: int, steps: Optional[int] = None):
        self.xs, self.ys, self.sw = xs, ys, sw
        self.n = len(xs[0])
        self.batch_size = batch_size
        full = -(-self.n // batch_size)
        self.steps = full if steps is None else min(int(steps), full)
        self._xbufs: list[Optional[np.ndarray]] = [None] * len(xs)

    def __len__(self) -> int:
        return self.steps

    def epoch_iterator(self, shuffle: bool) -> Iterator:
        order = backend.rng().permutation(self.n) if shuffle else None
        bs = self.batch_size
        for step in range(self.steps):
            lo, hi = step * bs, min((step + 1) * bs, self.n)
            if order is None:
                xb = [x[lo:hi] for x in self.xs]
                yb = None if self.ys is None else [y if y is None else y[lo:hi]
                                                   for y in self.ys]
                swb = None if self.sw is None else self.sw[lo:hi]
            else:
                idx = order[lo:hi]
                xb = [self._gather(i, x, idx) for i, x in enumerate(self.xs)]
                yb = None if self.ys is None else [y if y is None else y[idx] for y in self.ys]
                swb = None if self.sw is None else self.sw[idx]
            yield step, xb, yb, swb

    def _gather(self, i: int, x: np.ndarray, idx: np.ndarray) -> np.ndarray:
        """x[idx] gathered by the C threads into a buffer reused from batch to batch."""
        buf = self._xbufs[i]
        if buf is None or buf.shape[1:] != x.shape[1:] or len(buf) < len(idx):
            buf = self._xbufs[i] = np.empty((min(self.batch_size, self.n),) + x.shape[1:],
                                            np.float32)
        out = buf[:len(idx)]
        _C.take_rows(x, idx, out)
        return out


class IterableBatches:
    """Batches from a generator, Sequence or dataset, checked one by one by ``prepare``."""

    def __init__(self, source: Any, steps: Optional[int]):
        self.source = source
        self._pending: list = []            # a batch peeked at, yielded first next time
        known = None
        if steps is not None:
            known = int(steps)
        else:
            try:
                known = len(source)
            except TypeError:
                known = None
        self.steps = known

    def __len__(self):
        if self.steps is None:
            raise TypeError("the number of steps is unknown")
        return self.steps

    def _indexable(self) -> bool:
        src = self.source
        return hasattr(src, "__getitem__") and hasattr(src, "__len__") and \
            not hasattr(src, "__next__") and not hasattr(src, "batch")

    def peek(self):
        """The first batch, without losing it (None when there is none)."""
        if self._indexable():
            return self.source[0] if len(self.source) else None
        if not self._pending:
            it = self.source if hasattr(self.source, "__next__") else iter(self.source)
            try:
                self._pending.append(next(it))
            except StopIteration:
                return None
            if not hasattr(self.source, "__next__"):
                self._pending_iter = it
        return self._pending[0]

    def epoch_iterator(self, shuffle: bool) -> Iterator:
        src = self.source
        if self._indexable():           # a Sequence: batches by index, order shuffled
            begin = getattr(src, "on_epoch_begin", None)
            if callable(begin):
                begin()
            n = len(src) if self.steps is None else min(self.steps, len(src))
            order = backend.rng().permutation(len(src)) if shuffle and \
                getattr(src, "shuffle", None) is None else np.arange(len(src))
            for step in range(n):
                yield step, src[int(order[step])]
            end = getattr(src, "on_epoch_end", None)
            if callable(end):
                end()
            return
        if hasattr(src, "__next__"):            # a generator: keeps going across epochs
            it = src
        elif self._pending and getattr(self, "_pending_iter", None) is not None:
            it, self._pending_iter = self._pending_iter, None
        else:
            it = iter(src)
        step = 0
        while self.steps is None or step < self.steps:
            try:
                batch = self._pending.pop(0) if self._pending else next(it)
            except StopIteration:
                if self.steps is None:
                    self.steps = step
                return
            yield step, batch
            step += 1


def make_batches(x, y, sample_weight, batch_size: int, steps: Optional[int], prepare,
                 where: str):
    """Arrays → ``ArrayBatches`` (checked now); batch sources → ``IterableBatches``."""
    if is_batch_source(x):
        if y is not None:
            raise ValueError(f"{where}: `y` should not be passed when `x` is a generator, a "
                             "Sequence or a dataset (it yields (x, y) itself)")
        if sample_weight is not None:
            raise ValueError(f"{where}: `sample_weight` should not be passed when `x` is a "
                             "generator, a Sequence or a dataset")
        return IterableBatches(x, steps)
    xs, ys, sw = prepare(x, y, sample_weight)
    return ArrayBatches(xs, ys, sw, batch_size, steps)


def split_validation(xs: list, ys: Optional[list], sw, fraction: float):
    """The last ``fraction`` of the arrays (before any shuffling), as Keras takes it."""
    n = len(xs[0])
    split = int(math.floor(n * (1.0 - fraction)))
    if split == 0 or split == n:
        raise ValueError(f"validation_split={fraction} leaves no training or no validation "
                         f"samples out of {n}")
    cut = lambda arrs: None if arrs is None else [a if a is None else a[:split] for a in arrs]  # noqa: E731
    rest = lambda arrs: None if arrs is None else [a if a is None else a[split:] for a in arrs]  # noqa: E731
    train = (cut(xs), cut(ys), None if sw is None else sw[:split])
    val = (rest(xs), rest(ys), None if sw is None else sw[split:])
    return train, val


def as_float(x, where):
    return data_mod.as_float_input(x, where)
