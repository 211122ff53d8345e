"""The argument checks of a C binding, tried one array at a time (shared by the kernel tests)."""
from __future__ import annotations

from typing import Callable, Iterable

import numpy as np
import pytest


def assert_every_array_checked(call: Callable, fn: str, args: dict, outs: Iterable[str]) -> None:
    """``call(**args)`` runs; with any one array replaced by another dtype, rank, a strided
    view, an empty batch, a list or (an output in ``outs``) a read-only copy, it raises
    ``TypeError`` or ``ValueError`` naming ``fn`` and the argument."""
    outs = tuple(outs)
    call(**{k: v.copy() for k, v in args.items()})                 # valid
    for name, a in args.items():
        bad = {
            "dtype": a.astype(np.float64 if a.dtype != np.float64 else np.float32),
            "rank": a[None],
            "strided": np.repeat(a, 2, axis=-1)[..., ::2],
            "empty": np.zeros((0,) + a.shape[1:], a.dtype),
            "list": a.tolist(),
        }
        if name in outs:
            ro = a.copy()
            ro.flags.writeable = False
            bad["readonly"] = ro
        for what, value in bad.items():
            kw = {k: v.copy() for k, v in args.items()}
            kw[name] = value
            with pytest.raises((TypeError, ValueError)) as err:
                call(**kw)
            assert fn in str(err.value) and f"'{name}'" in str(err.value), (name, what, err.value)
