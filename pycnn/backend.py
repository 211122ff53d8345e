"""Process-wide state of pycnn, as Keras keeps it in its backend: the C runtime's thread count
and SIMD path, the random generator behind initializers, shuffling and dropout, and the
counters that give layers and models their automatic names (``conv2d``, ``conv2d_1``, ...).
"""
from __future__ import annotations

import operator
import os
import re
from collections import defaultdict

import numpy as np

from . import _C

_name_counts: defaultdict[str, int] = defaultdict(int)
_rng = np.random.default_rng()


#: The thread counts ``set_num_threads`` and ``PYCNN_NUM_THREADS`` accept.
MAX_THREADS = 1024

#: The SIMD paths ``set_simd_path`` and ``PYCNN_ISA`` accept.
SIMD_PATHS = ("generic", "avx2", "avx512")


def _default_threads() -> int:
    """``PYCNN_NUM_THREADS`` when set (an integer from 1 to ``MAX_THREADS``), else the CPUs this
    process may run on. A bad value is a ValueError naming the variable and the valid range."""
    env = os.environ.get("PYCNN_NUM_THREADS")
    if env is not None and env.strip():
        try:
            n = int(env)
        except ValueError:
            n = 0
        if not 1 <= n <= MAX_THREADS:
            raise ValueError(f"Environment variable PYCNN_NUM_THREADS must be an integer from 1 "
                             f"to {MAX_THREADS}. Received: PYCNN_NUM_THREADS={env!r}")
        return n
    try:
        return max(1, min(MAX_THREADS, len(os.sched_getaffinity(0))))
    except AttributeError:  # not on Linux
        return max(1, min(MAX_THREADS, os.cpu_count() or 1))


def _apply_isa_env() -> None:
    """Select the SIMD path named by ``PYCNN_ISA`` (when set); a bad or unsupported value is a
    ValueError naming the variable, the accepted values and what this CPU supports."""
    env = os.environ.get("PYCNN_ISA")
    if env is None or not env.strip():
        return
    name = env.strip().lower()
    best = _C.best_isa()
    supported = SIMD_PATHS[:SIMD_PATHS.index(best) + 1] if best in SIMD_PATHS else ("generic",)
    if name not in SIMD_PATHS:
        raise ValueError(f"Environment variable PYCNN_ISA must be one of "
                         f"{', '.join(map(repr, SIMD_PATHS))}. Received: PYCNN_ISA={env!r}")
    if name not in supported:
        raise ValueError(f"Environment variable PYCNN_ISA={env!r} names a SIMD path this CPU "
                         f"does not support; supported here: {', '.join(map(repr, supported))}")
    _C.set_isa(name)


def set_num_threads(n: int) -> None:
    """Use ``n`` threads for the C kernels (default: the CPUs this process may run on, or
    ``PYCNN_NUM_THREADS``). Results are bit-identical for any thread count."""
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or not 1 <= n <= MAX_THREADS:
        raise ValueError(f"expected an integer from 1 to {MAX_THREADS}. Received: n={n!r}")
    _C.set_num_threads(int(n))


def get_num_threads() -> int:
    """The number of threads the C kernels use."""
    return _C.num_threads()


def simd_path() -> str:
    """The SIMD path of the GEMM micro-kernel in use: ``"avx512"``, ``"avx2"`` or ``"generic"``."""
    return _C.isa()


def set_simd_path(name: str) -> None:
    """Force a SIMD path (``"generic"`` for the portable C kernels); only paths the CPU supports."""
    _C.set_isa(name)


def rng() -> np.random.Generator:
    """The generator behind weight initialisation, shuffling and dropout."""
    return _rng


def seed(value: int) -> None:
    global _rng
    _rng = np.random.default_rng(value)


def snake_case(name: str) -> str:
    """Keras' automatic layer names: ``Conv2D`` -> ``conv2d``, ``MaxPooling2D`` -> ``max_pooling2d``."""
    s = re.sub(r"(.)([A-Z][a-z]+)", r"\1_\2", name)
    s = re.sub(r"([a-z])([A-Z])", r"\1_\2", s).lower()
    return s


def unique_name(base: str, zero_based: bool = True) -> str:
    """``base`` the first time, then ``base_1``, ``base_2``, ... (per process, as in Keras);
    with ``zero_based=False`` (Keras' inputs) ``base_1``, ``base_2``, ..."""
    count = _name_counts[base]
    _name_counts[base] += 1
    if not zero_based:
        return f"{base}_{count + 1}"
    return base if count == 0 else f"{base}_{count}"


def clear_session() -> None:
    """Reset the automatic name counters, as ``keras.backend.clear_session()`` does."""
    _name_counts.clear()


def floatx() -> str:
    return "float32"


ALIGNMENT = 64  # bytes: a cache line, and one AVX-512 register


def empty(shape, dtype=np.float32) -> np.ndarray:
    """An uninitialised C-contiguous array whose data starts on a cache line. Weights,
    gradients and layer buffers are allocated this way: the C kernels read their rows in place,
    and a row that straddles cache lines costs two loads per vector (NumPy aligns to 16
    bytes)."""
    dtype = np.dtype(dtype)
    shape = (tuple(operator.index(d) for d in shape) if isinstance(shape, (tuple, list))
             else (operator.index(shape),))
    if any(d < 0 for d in shape):
        raise ValueError(f"negative dimensions are not allowed: {shape}")
    nbytes = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    buf = np.empty(nbytes + ALIGNMENT, np.uint8)
    start = -buf.__array_interface__["data"][0] % ALIGNMENT   # (.ctypes caches objects)
    return buf[start:start + nbytes].view(dtype).reshape(shape)


def zeros(shape, dtype=np.float32) -> np.ndarray:
    """``empty`` filled with zeros."""
    a = empty(shape, dtype)
    a[...] = 0
    return a


set_num_threads(_default_threads())
_apply_isa_env()
