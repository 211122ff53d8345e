"""The state of one call of a layer.

A layer's ``forward(ctx, x, training)`` keeps what its ``backward(ctx, dy, need_dx)`` needs in
``ctx`` (``ctx.x = x``), and takes the arrays it writes from ``ctx.buffer(...)``, which reuses
them from batch to batch. The compiled plan of a model owns one ``Context`` per layer call, so a
layer called twice in a graph (shared weights), or shared by two models running in two threads,
never mixes the state of its calls; calling a layer on arrays uses a fresh one.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from .. import backend


class Context:
    """Per-call state: saved tensors as attributes, reusable output buffers, and the plan's
    instructions to the layer.

    ``logits_only``: set by the plan when the loss takes this (output) layer's values before
    its final activation: ``forward`` then returns the pre-activation values and ``backward``
    receives their gradient.
    """

    _own = ("_buffers", "logits_only")

    def __init__(self, logits_only: bool = False):
        self._buffers: dict[str, np.ndarray] = {}
        self.logits_only = logits_only

    def buffer(self, key: str, shape: tuple, dtype: Any = np.float32) -> np.ndarray:
        """An uninitialised, cache-line aligned array of ``shape``, the same one on every batch
        of that shape (the caller overwrites it)."""
        buf = self._buffers.get(key)
        if buf is None or buf.shape != shape or buf.dtype != dtype:
            buf = backend.empty(shape, dtype)
            self._buffers[key] = buf
        return buf

    def buffers(self) -> dict[str, np.ndarray]:
        """The buffers by key (for tests and memory accounting)."""
        return dict(self._buffers)

    def release(self) -> None:
        """Drop everything the last forward pass saved (references to the caller's arrays
        among it); the reusable buffers stay."""
        for key in [k for k in self.__dict__ if k not in self._own]:
            del self.__dict__[key]
