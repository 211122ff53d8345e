"""Seeded random fuzzing of every input boundary of pycnn.

* ``pycnn._C`` (the C entry points) called directly with nearly-valid arguments mutated at
  random: dtypes (float16/32/64, ints, bool, object, str, complex, datetime, structured),
  ranks 0..6, empty and size-1 dimensions, huge declared dimensions (broadcast views),
  byte-swapped, non-contiguous, Fortran-ordered, read-only and misaligned arrays, outputs that
  alias inputs or other outputs, NaN/inf/huge values, strides/pads/pool tuples that are 0,
  negative, huge, of the wrong length, floats, None or not sequences, unknown activation kinds,
  out-of-range scalars. Every call must return or raise TypeError/ValueError/MemoryError.
* layers and models with random hyper-parameters and random data for fit/evaluate/predict:
  only ValueError/TypeError (MemoryError only for absurdly large sizes; FloatingPointError only
  from fit with an absurd learning rate or extreme data).
* the IDX/npz parsers and ``load_weights`` on mutated, truncated and extended (and gzipped)
  files: only ValueError (the documented exception type).

The C, layer and model fuzz loops run in a child process (so that a segfault or an abort is a
test failure, not the end of the session); the child writes the case it is about to run to a
breadcrumb file, and after a crash the parent reports that case and resumes after it. Every case
is generated from ``numpy.random.default_rng([SEED, index])`` alone, so any case can be replayed:

    python tests/test_fuzz.py <family> <seed> <index>      # e.g. conv2d_forward 1234 17
"""
from __future__ import annotations

import gzip
import io
import json
import os
import re
import struct
import subprocess
import sys
import tempfile
import textwrap
import zipfile
from collections import Counter
from pathlib import Path

import numpy as np

import pytest
from childproc import child_env, run_python

HERE = os.path.dirname(os.path.abspath(__file__))
SEED = 20240601
CASES_PER_KERNEL = 1500
CASES_RUNTIME = 150
CASES_LAYERS = 2500
CASES_MODELS = 1200
CASES_IDX = 900
CASES_NPZ = 700
CASES_WEIGHTS = 300
MAX_CRASHES = int(os.environ.get("PYCNN_FUZZ_MAX_CRASHES", "3"))
CHILD_TIMEOUT = 600

ALLOWED_C = (TypeError, ValueError, MemoryError)
INT_MAX = 2**31 - 1


# =============================================================================================
# Random values
# =============================================================================================

def pick(rng, pool):
    return pool[int(rng.integers(len(pool)))]


def chance(rng, p):
    return bool(rng.random() < p)


SPECIALS = np.array([np.nan, np.inf, -np.inf, 3.0e38, -3.0e38, 1e-45, -0.0, 1e30], np.float64)


def floats(rng, shape, dtype=np.float32, special=0.1):
    """Normal floats; with probability ``special`` sprinkled with NaN/inf/huge/denormals."""
    a = rng.standard_normal(shape).astype(dtype)
    if a.size and chance(rng, special):
        k = int(rng.integers(1, min(a.size, 4) + 1))
        flat = a.reshape(-1)
        with np.errstate(over="ignore"):
            flat[rng.integers(0, a.size, k)] = SPECIALS[rng.integers(0, len(SPECIALS), k)]
    return a


def dims(rng, lo=1, hi=6):
    return int(rng.integers(lo, hi + 1))


# dtypes an array argument may be turned into
OTHER_DTYPES = [np.float16, np.float64, np.longdouble, np.int8, np.int32, np.int64, np.uint8,
                np.uint64, np.bool_, np.complex64, np.complex128, object, "U3", "S3", "M8[s]",
                "m8[ms]", [("f", "<f4")], np.float32]
HUGE_DIMS = [2**31, 2**31 + 7, 2**32 + 1, 2**40, 3 * 2**30]


def _describe(v) -> str:
    if isinstance(v, np.ndarray):
        flags = []
        if not v.flags.c_contiguous:
            flags.append("F" if v.flags.f_contiguous else "noncontig")
        if not v.flags.writeable:
            flags.append("ro")
        if not v.flags.aligned:
            flags.append("misaligned")
        if 0 in v.strides and v.size > 1:
            flags.append("bcast")
        sub = "" if type(v) is np.ndarray else type(v).__name__ + ":"
        return f"{sub}{v.dtype.str}{list(v.shape)}" + (("<" + ",".join(flags) + ">")
                                                         if flags else "")
    r = repr(v)
    return r if len(r) <= 60 else r[:57] + "..."


class _BadSeq:
    """A 'sequence' whose items blow up."""

    def __len__(self):
        return 2

    def __getitem__(self, i):
        raise RuntimeError("boom from __getitem__")

    def __repr__(self):
        return "_BadSeq()"


class _BadBool:
    def __bool__(self):
        raise ValueError("no truth value")

    def __repr__(self):
        return "_BadBool()"


def mutate_array(rng, a):
    """Return (new value, tag): one random corruption of a valid array argument."""
    kinds = ["dtype", "byteswap", "noncontig", "fortran", "readonly", "misaligned",
             "bcast_huge", "bcast", "rank", "dim", "empty", "none", "notarray", "values",
             "subclass", "scalar0d"]
    kind = pick(rng, kinds)
    if not isinstance(a, np.ndarray) or a.size > 10**5 or not a.flags.writeable:
        a = floats(rng, (dims(rng), dims(rng)))     # an earlier mutation made it unusable
    if kind == "dtype":
        dt = pick(rng, OTHER_DTYPES)
        try:
            if dt in ("M8[s]", "m8[ms]") or isinstance(dt, list):
                return np.zeros(a.shape, dt), kind
            with np.errstate(all="ignore"):
                return a.astype(dt), kind
        except (TypeError, ValueError, OverflowError):
            return np.zeros(a.shape, np.float64), kind
    if kind == "byteswap":
        return a.byteswap().view(a.dtype.newbyteorder()), kind
    if kind == "noncontig" and a.ndim >= 1 and a.size > 1:
        big = np.zeros(a.shape[:-1] + (a.shape[-1] * 2,), a.dtype)
        v = big[..., ::2]
        v[...] = a
        return v, kind
    if kind == "fortran" and a.ndim >= 2:
        return np.asfortranarray(a) if a.size > 1 else a.T, kind
    if kind == "readonly":
        b = a.copy()
        b.flags.writeable = False
        return b, kind
    if kind == "misaligned" and a.size and a.dtype.itemsize > 1:
        buf = np.zeros(a.nbytes + a.dtype.itemsize, np.uint8)
        v = buf[1:1 + a.nbytes].view(a.dtype).reshape(a.shape)
        v[...] = a
        return v, kind
    if kind == "bcast_huge":
        shape = list(a.shape) or [1]
        shape[int(rng.integers(len(shape)))] = pick(rng, HUGE_DIMS)
        try:
            return np.broadcast_to(a.reshape(-1)[:1].reshape((1,) * len(shape)) if a.size
                                   else np.zeros((1,) * len(shape), a.dtype), shape), kind
        except ValueError:
            return a, kind
    if kind == "bcast" and a.ndim >= 1 and a.shape[0] > 1:
        return np.broadcast_to(a[:1], a.shape), kind
    if kind == "rank":
        rank = pick(rng, [0, 1, 2, 3, 4, 5, 6, 6, 9, 32])
        shape = tuple(int(rng.integers(0 if chance(rng, 0.15) else 1, 4))
                      for _ in range(rank))
        if rank > 8:
            shape = (1,) * rank
        return floats(rng, shape).astype(a.dtype), kind
    if kind == "dim" and a.ndim:
        shape = list(a.shape)
        ax = int(rng.integers(len(shape)))
        shape[ax] = max(0, pick(rng, [0, 1, shape[ax] + 1, shape[ax] - 1, dims(rng, 1, 9)]))
        return floats(rng, tuple(shape)).astype(a.dtype), kind
    if kind == "empty" and a.ndim:
        shape = list(a.shape)
        shape[int(rng.integers(len(shape)))] = 0
        return np.zeros(shape, a.dtype), kind
    if kind == "none":
        return None, kind
    if kind == "notarray":
        try:
            view = memoryview(np.ascontiguousarray(a))
        except (TypeError, ValueError):     # dtypes the buffer protocol cannot express
            view = memoryview(b"abcd")
        return pick(rng, [a.tolist() if a.size < 64 else [1.0], 3.0, 7, "abc", b"abc",
                          {"a": 1}, [a], view, (1, 2), _BadSeq(), object()]), kind
    if kind == "values":
        b = a.copy()
        if b.size and b.dtype.kind == "f":
            with np.errstate(over="ignore"):
                b.reshape(-1)[rng.integers(0, b.size, 3)] = pick(rng, list(SPECIALS))
        elif b.size and b.dtype.kind in "iu":
            info = np.iinfo(b.dtype)
            b.reshape(-1)[rng.integers(0, b.size, 2)] = pick(
                rng, [info.min, info.max, -1, 10, 2**31 - 1 if info.max >= 2**31 else 0])
        return b, kind
    if kind == "subclass":
        return np.ma.masked_array(a), kind
    if kind == "scalar0d":
        return np.array(a.reshape(-1)[0] if a.size else 0, a.dtype), kind
    return a.copy(), "copy"


def alias_output(rng, args, out_names, array_names):
    """Make one output share memory with another array argument (same object or overlap)."""
    outs = [n for n in out_names if isinstance(args.get(n), np.ndarray)]
    others = [n for n in array_names if isinstance(args.get(n), np.ndarray)]
    if not outs or len(others) < 2:
        return None
    o = pick(rng, outs)
    src = pick(rng, [n for n in others if n != o])
    A, O = args[src], args[o]
    if (chance(rng, 0.6) and A.dtype == O.dtype and A.flags.c_contiguous and
            A.size >= O.size and O.size):
        off = int(rng.integers(0, A.size - O.size + 1))
        args[o] = A.reshape(-1)[off:off + O.size].reshape(O.shape)
        return f"alias:{o}~{src}[{off}:]"
    args[o] = A
    return f"alias:{o}={src}"


# scalar argument pools
PAIR_ITEMS = [0, 1, 1, 2, 3, -1, 2**30, 2**30 + 1, INT_MAX, 2**31, -2**31, -2**31 - 1, 2**63,
              10**30, 1.5, None, True, np.int64(2), "1"]


def weird_pair(rng):
    r = rng.random()
    if r < 0.55:
        return (pick(rng, PAIR_ITEMS), pick(rng, PAIR_ITEMS))
    if r < 0.65:
        return [pick(rng, PAIR_ITEMS), pick(rng, PAIR_ITEMS)]
    return pick(rng, [(), (1,), (1, 1, 1), None, 2, 1.5, "ab", b"ab", np.array([1, 1]),
                      np.array([1.0, 1.0]), (x for x in (1, 1)), {1: 1, 2: 2}, {1, 2},
                      _BadSeq(), range(1, 3), [[1], [1]], (np.int32(1), np.int32(1))])


FLOAT_SCALARS = [0.0, 1e-3, 0.1, 0.9, 0.999, 1.0, -1.0, 2.0, float("nan"), float("inf"),
                 float("-inf"), 1e300, -1e300, 10**400, 2**70, 5e-324, "0.1", None,
                 np.float32(0.5), np.float64(0.5), True, 1 + 1j, [0.1], 0]
INT_SCALARS = [1, 2, 3, 10, 0, -1, 2**31, 2**63, 2**70, -2**70, 1.5, None, "1", True,
               np.int64(5), 10**400]
BOOL_SCALARS = [True, False, 0, 1, 2, None, "yes", "", [], [0], np.bool_(True),
                np.array([1, 2]), _BadBool()]
KINDS = ["linear", "relu", "sigmoid", "tanh", "softmax", "RELU", "", "gelu", "elu",
         "relu\x00sigmoid", "\ud800", None, 3, b"relu", ["relu"], "softmax " * 50]


def valid_window(rng, lo=1, hi=3):
    return (dims(rng, lo, hi), dims(rng, lo, hi))


# =============================================================================================
# The C entry points: valid argument builders
# =============================================================================================

def k_gemm(rng):
    M, K, N = dims(rng, 1, 33), dims(rng, 1, 33), dims(rng, 1, 33)
    ta, tb = chance(rng, 0.5), chance(rng, 0.5)
    args = dict(a=floats(rng, (K, M) if ta else (M, K)), b=floats(rng, (N, K) if tb else (K, N)),
                c=floats(rng, (M, N)), trans_a=ta, trans_b=tb, accumulate=chance(rng, 0.5))
    return args, ["c"], {"trans_a": BOOL_SCALARS, "trans_b": BOOL_SCALARS,
                         "accumulate": BOOL_SCALARS}


def k_dense_forward(rng):
    N, IN, OUT = dims(rng, 1, 9), dims(rng, 1, 20), dims(rng, 1, 20)
    args = dict(x=floats(rng, (N, IN)), w=floats(rng, (IN, OUT)),
                b=floats(rng, (OUT,)) if chance(rng, 0.7) else None, y=floats(rng, (N, OUT)),
                activation=pick(rng, ["linear", "relu"]))
    return args, ["y"], {"activation": KINDS}


def k_dense_backward(rng):
    N, IN, OUT = dims(rng, 1, 9), dims(rng, 1, 20), dims(rng, 1, 20)
    args = dict(x=floats(rng, (N, IN)), w=floats(rng, (IN, OUT)), dy=floats(rng, (N, OUT)),
                dx=floats(rng, (N, IN)) if chance(rng, 0.7) else None,
                dw=floats(rng, (IN, OUT)), db=floats(rng, (OUT,)) if chance(rng, 0.7) else None)
    return args, ["dx", "dw", "db"], {}


def _strides_pads_output(rng, H, W, KH, KW, out_max):
    """Strides, pads and the output size of a KH x KW window over H x W: mostly the true
    size, sometimes a random one (up to ``out_max``)."""
    sh, sw = valid_window(rng, 1, 3)
    pt, pl = dims(rng, 0, 2), dims(rng, 0, 2)
    if chance(rng, 0.7):
        OH = max(1, (H + 2 * pt - KH) // sh + 1)
        OW = max(1, (W + 2 * pl - KW) // sw + 1)
    else:
        OH, OW = dims(rng, 1, out_max), dims(rng, 1, out_max)
    return sh, sw, pt, pl, OH, OW


def _conv_geometry(rng):
    N, H, W, C = dims(rng, 1, 3), dims(rng, 1, 9), dims(rng, 1, 9), dims(rng, 1, 4)
    KH, KW, O = dims(rng, 1, 4), dims(rng, 1, 4), dims(rng, 1, 5)
    sh, sw, pt, pl, OH, OW = _strides_pads_output(rng, H, W, KH, KW, 7)
    return N, H, W, C, KH, KW, O, sh, sw, pt, pl, OH, OW


def k_conv2d_forward(rng):
    N, H, W, C, KH, KW, O, sh, sw, pt, pl, OH, OW = _conv_geometry(rng)
    args = dict(x=floats(rng, (N, H, W, C)), w=floats(rng, (KH, KW, C, O)),
                b=floats(rng, (O,)) if chance(rng, 0.7) else None, y=floats(rng, (N, OH, OW, O)),
                strides=(sh, sw), pads=(pt, pl), activation=pick(rng, ["linear", "relu"]))
    return args, ["y"], {"strides": "pair", "pads": "pair", "activation": KINDS}


def k_conv2d_backward(rng):
    N, H, W, C, KH, KW, O, sh, sw, pt, pl, OH, OW = _conv_geometry(rng)
    args = dict(x=floats(rng, (N, H, W, C)), w=floats(rng, (KH, KW, C, O)),
                dy=floats(rng, (N, OH, OW, O)),
                dx=floats(rng, (N, H, W, C)) if chance(rng, 0.7) else None,
                dw=floats(rng, (KH, KW, C, O)), db=floats(rng, (O,)) if chance(rng, 0.7) else None,
                strides=(sh, sw), pads=(pt, pl))
    return args, ["dx", "dw", "db"], {"strides": "pair", "pads": "pair"}


def _pool_geometry(rng):
    N, H, W, C = dims(rng, 1, 3), dims(rng, 1, 9), dims(rng, 1, 9), dims(rng, 1, 20)
    ph, pw = valid_window(rng, 1, 3)
    sh, sw, pt, pl, OH, OW = _strides_pads_output(rng, H, W, ph, pw, 7)
    return N, H, W, C, ph, pw, sh, sw, pt, pl, OH, OW


def _argmax(rng, shape, cells):
    if chance(rng, 0.7):
        return rng.integers(-1, cells, shape).astype(np.int32)
    return rng.integers(-2**31, 2**31 - 1, shape, dtype=np.int64).astype(np.int32)


def k_maxpool2d_forward(rng):
    N, H, W, C, ph, pw, sh, sw, pt, pl, OH, OW = _pool_geometry(rng)
    args = dict(x=floats(rng, (N, H, W, C)), y=floats(rng, (N, OH, OW, C)),
                argmax=_argmax(rng, (N, OH, OW, C), H * W), pool=(ph, pw), strides=(sh, sw),
                pads=(pt, pl))
    return args, ["y", "argmax"], {"pool": "pair", "strides": "pair", "pads": "pair"}


def k_maxpool2d_backward(rng):
    N, H, W, C, ph, pw, sh, sw, pt, pl, OH, OW = _pool_geometry(rng)
    args = dict(dy=floats(rng, (N, OH, OW, C)), argmax=_argmax(rng, (N, OH, OW, C), H * W),
                dx=floats(rng, (N, H, W, C)))
    return args, ["dx"], {}


def _conv_pool_geometry(rng):
    """A convolution (output conv_hw = (OH, OW)) and a max pooling of its output (POH, POW)."""
    N, H, W, C, KH, KW, O, sh, sw, pt, pl, OH, OW = _conv_geometry(rng)
    ph, pw = valid_window(rng, 1, 3)
    psh, psw, ppt, ppl, POH, POW = _strides_pads_output(rng, OH, OW, ph, pw, 5)
    geometry = dict(strides=(sh, sw), pads=(pt, pl), conv_hw=(OH, OW), pool=(ph, pw),
                    pool_strides=(psh, psw), pool_pads=(ppt, ppl))
    return N, H, W, C, KH, KW, O, POH, POW, geometry


_CONV_POOL_PAIRS = {name: "pair" for name in ("strides", "pads", "conv_hw", "pool",
                                               "pool_strides", "pool_pads")}


def k_conv2d_maxpool_forward(rng):
    N, H, W, C, KH, KW, O, POH, POW, geometry = _conv_pool_geometry(rng)
    OH, OW = geometry["conv_hw"]
    args = dict(x=floats(rng, (N, H, W, C)), w=floats(rng, (KH, KW, C, O)),
                b=floats(rng, (O,)) if chance(rng, 0.7) else None,
                y=floats(rng, (N, POH, POW, O)),
                argmax=_argmax(rng, (N, POH, POW, O), OH * OW), **geometry,
                activation=pick(rng, ["linear", "relu"]))
    return args, ["y", "argmax"], {**_CONV_POOL_PAIRS, "activation": KINDS}


def k_conv2d_maxpool_backward(rng):
    N, H, W, C, KH, KW, O, POH, POW, geometry = _conv_pool_geometry(rng)
    OH, OW = geometry["conv_hw"]
    shape = (N, POH, POW, O)
    args = dict(x=floats(rng, (N, H, W, C)), w=floats(rng, (KH, KW, C, O)),
                dy=floats(rng, shape), argmax=_argmax(rng, shape, OH * OW),
                dx=floats(rng, (N, H, W, C)) if chance(rng, 0.7) else None,
                dw=floats(rng, (KH, KW, C, O)), db=floats(rng, (O,)) if chance(rng, 0.7) else None,
                **geometry, y=np.abs(floats(rng, shape)) if chance(rng, 0.5) else None)
    return args, ["dx", "dw", "db"], dict(_CONV_POOL_PAIRS)


def k_avgpool2d_forward(rng):
    N, H, W, C, ph, pw, sh, sw, pt, pl, OH, OW = _pool_geometry(rng)
    args = dict(x=floats(rng, (N, H, W, C)), y=floats(rng, (N, OH, OW, C)), pool=(ph, pw),
                strides=(sh, sw), pads=(pt, pl))
    return args, ["y"], {"pool": "pair", "strides": "pair", "pads": "pair"}


def k_avgpool2d_backward(rng):
    N, H, W, C, ph, pw, sh, sw, pt, pl, OH, OW = _pool_geometry(rng)
    args = dict(dy=floats(rng, (N, OH, OW, C)), dx=floats(rng, (N, H, W, C)), pool=(ph, pw),
                strides=(sh, sw), pads=(pt, pl))
    return args, ["dx"], {"pool": "pair", "strides": "pair", "pads": "pair"}


def _any_shape(rng):
    rank = pick(rng, [1, 1, 2, 2, 2, 3, 4, 5, 6, 0])
    return tuple(dims(rng, 1, 5) for _ in range(rank))


def k_activation_forward(rng):
    shape = _any_shape(rng)
    x = floats(rng, shape, special=0.3)
    args = dict(kind=pick(rng, KINDS[:5]), x=x, y=x if chance(rng, 0.2) else floats(rng, shape))
    return args, ["y"], {"kind": KINDS}


def k_activation_backward(rng):
    shape = _any_shape(rng)
    dy = floats(rng, shape)
    args = dict(kind=pick(rng, KINDS[:5]), y=floats(rng, shape, special=0.3), dy=dy,
                dx=dy if chance(rng, 0.2) else floats(rng, shape))
    return args, ["dx"], {"kind": KINDS}


def _labels(rng, n, classes):
    if chance(rng, 0.85):
        return rng.integers(0, classes, n).astype(np.int64)
    lab = rng.integers(0, classes, n).astype(np.int64)
    lab[int(rng.integers(n))] = pick(rng, [-1, classes, classes + 5, -2**63, 2**63 - 1, 2**31])
    return lab


def _probs(rng, shape):
    r = rng.random()
    if r < 0.6:
        p = rng.random(shape).astype(np.float32)
        return (p / p.sum(axis=1, keepdims=True)).astype(np.float32)
    if r < 0.7:
        return np.zeros(shape, np.float32)
    return floats(rng, shape, special=0.4)


def k_softmax_xent_sparse(rng):
    N, C = dims(rng, 1, 9), dims(rng, 1, 12)
    args = dict(logits=floats(rng, (N, C), special=0.3) * np.float32(pick(rng, [1, 1e4, 1e30])),
                labels=_labels(rng, N, C), probs=floats(rng, (N, C)),
                dlogits=floats(rng, (N, C)) if chance(rng, 0.7) else None)
    return args, ["probs", "dlogits"], {}


def k_xent_sparse(rng):
    N, C = dims(rng, 1, 9), dims(rng, 1, 12)
    args = dict(probs=_probs(rng, (N, C)), labels=_labels(rng, N, C),
                dprobs=floats(rng, (N, C)) if chance(rng, 0.7) else None)
    return args, ["dprobs"], {}


def k_softmax_xent(rng):
    N, C = dims(rng, 1, 9), dims(rng, 1, 12)
    args = dict(logits=floats(rng, (N, C), special=0.3) * np.float32(pick(rng, [1, 1e4, 1e30])),
                targets=_probs(rng, (N, C)), probs=floats(rng, (N, C)),
                dlogits=floats(rng, (N, C)) if chance(rng, 0.7) else None)
    return args, ["probs", "dlogits"], {}


def k_xent(rng):
    N, C = dims(rng, 1, 9), dims(rng, 1, 12)
    args = dict(probs=_probs(rng, (N, C)), targets=_probs(rng, (N, C)),
                dprobs=floats(rng, (N, C)) if chance(rng, 0.7) else None)
    return args, ["dprobs"], {}


def _opt_shape(rng):
    return _any_shape(rng) or (3,)


def k_sgd_update(rng):
    shape = _opt_shape(rng)
    mom = pick(rng, [0.0, 0.0, 0.9, 0.5])
    args = dict(w=floats(rng, shape), g=floats(rng, shape),
                velocity=floats(rng, shape) if mom or chance(rng, 0.3) else None,
                lr=pick(rng, [0.01, 0.1, 1.0]), momentum=mom, nesterov=chance(rng, 0.5))
    return args, ["w", "velocity"], {"lr": FLOAT_SCALARS, "momentum": FLOAT_SCALARS,
                                     "nesterov": BOOL_SCALARS}


def k_rmsprop_update(rng):
    shape = _opt_shape(rng)
    mom, centered = pick(rng, [0.0, 0.0, 0.9]), chance(rng, 0.4)
    args = dict(w=floats(rng, shape), g=floats(rng, shape), v=np.abs(floats(rng, shape)),
                lr=0.001, rho=0.9, epsilon=1e-7, momentum=mom,
                mom=floats(rng, shape) if mom else None, centered=centered,
                mg=floats(rng, shape) if centered else None)
    return args, ["w", "v", "mom", "mg"], {"lr": FLOAT_SCALARS, "rho": FLOAT_SCALARS,
                                           "epsilon": FLOAT_SCALARS, "momentum": FLOAT_SCALARS,
                                           "centered": BOOL_SCALARS}


def k_adam_update(rng):
    shape = _opt_shape(rng)
    args = dict(w=floats(rng, shape), g=floats(rng, shape), m=floats(rng, shape),
                v=np.abs(floats(rng, shape)), lr=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-7,
                step=dims(rng, 1, 1000))
    return args, ["w", "m", "v"], {"lr": FLOAT_SCALARS, "beta_1": FLOAT_SCALARS,
                                   "beta_2": FLOAT_SCALARS, "epsilon": FLOAT_SCALARS,
                                   "step": INT_SCALARS}


def k_take_rows(rng):
    shape = _opt_shape(rng)
    n = dims(rng, 1, 6)
    rows = shape[0]
    idx = rng.integers(0, rows, n) if chance(rng, 0.8) else \
        rng.integers(-2**63, 2**63 - 1, n, dtype=np.int64)
    args = dict(x=floats(rng, shape), indices=idx.astype(np.int64),
                out=floats(rng, (n,) + shape[1:]))
    return args, ["out"], {}


KERNELS = {f.__name__[2:]: f for f in (
    k_gemm, k_dense_forward, k_dense_backward, k_conv2d_forward, k_conv2d_backward,
    k_conv2d_maxpool_forward, k_conv2d_maxpool_backward,
    k_maxpool2d_forward, k_maxpool2d_backward, k_avgpool2d_forward, k_avgpool2d_backward,
    k_activation_forward, k_activation_backward, k_softmax_xent_sparse, k_xent_sparse,
    k_softmax_xent, k_xent, k_take_rows, k_sgd_update, k_rmsprop_update, k_adam_update)}


class Case:
    """One generated call: ``run()`` must return or raise one of ``allowed``; ``vet(exc)``
    may still reject an allowed exception (returns a reason)."""

    def __init__(self, desc, run, allowed, vet=None):
        self.desc, self.run, self.allowed, self.vet = desc, run, allowed, vet


_KERNEL_MESSAGE = re.compile(r"^(gemm|dense_\w+|conv2d_\w+|maxpool2d_\w+|avgpool2d_\w+|"
                             r"activation_\w+|softmax_xent\w*|xent\w*|sgd_update|"
                             r"rmsprop_update|adam_update|take_rows|set_num_threads|set_isa)\(\)")


def no_kernel_message(exc):
    """Errors raised through the public API must speak of the user's layer or argument; a
    message of the C binding (``conv2d_forward(): argument 'x' ...``) means an input reached a
    kernel unchecked."""
    if _KERNEL_MESSAGE.match(str(exc)):
        return f"internal kernel error reached the user: {type(exc).__name__}: {exc}"
    return None


def kernel_case(name):
    builder = KERNELS[name]

    def gen(rng):
        from pycnn import _C
        args, outs, scalars = builder(rng)
        arrays = [k for k, v in args.items() if isinstance(v, np.ndarray)]
        tags = []
        r = rng.random()
        n_mut = 0 if r < 0.3 else (1 if r < 0.75 else int(rng.integers(2, 4)))
        for _ in range(n_mut):
            what = rng.random()
            if what < 0.55 and arrays:
                k = pick(rng, arrays)
                args[k], tag = mutate_array(rng, args[k])
                tags.append(f"{k}:{tag}")
            elif what < 0.75:
                t = alias_output(rng, args, outs, arrays)
                if t:
                    tags.append(t)
            elif scalars:
                k = pick(rng, list(scalars))
                args[k] = weird_pair(rng) if scalars[k] == "pair" else pick(rng, scalars[k])
                tags.append(f"{k}:scalar")
        fn = getattr(_C, name)
        style = rng.random()
        if style < 0.5:
            call = (lambda: fn(*args.values()))
        elif style < 0.96:
            call = (lambda: fn(**args))
        elif style < 0.98:
            call = (lambda: fn(*list(args.values())[:-2]))          # missing arguments
        else:
            call = (lambda: fn(*args.values(), bogus=1))              # unknown keyword
        desc = (f"_C.{name}(" + ", ".join(f"{k}={_describe(v)}" for k, v in args.items()) +
                f")  mutations={tags} style={style:.2f}")
        return Case(desc, call, ALLOWED_C)
    return gen


def runtime_case(rng):
    from pycnn import _C
    op = pick(rng, ["threads", "threads", "isa", "query"])
    if op == "threads":
        n = pick(rng, [1, 2, 3, 4, 8, 0, -1, 1025, 2**31, 2**70, 1.5, None, "2", True,
                       np.int64(2), [2]])
        desc = f"_C.set_num_threads({n!r})"
    elif op == "isa":
        n = pick(rng, ["generic", "avx2", "avx512", "sse", "", "GENERIC", None, 3, b"avx2",
                       "generic\x00", "\ud800"])
        desc = f"_C.set_isa({n!r})"
    else:
        n = None
        desc = "_C.isa()/best_isa()/num_threads()"

    def run():
        before_threads, before_isa = _C.num_threads(), _C.isa()
        try:
            if op == "threads":
                _C.set_num_threads(n)
            elif op == "isa":
                _C.set_isa(n)
            else:
                assert _C.isa() in ("generic", "avx2", "avx512")
                assert _C.best_isa() in ("generic", "avx2", "avx512")
                assert _C.num_threads() >= 1
            a = np.ones((40, 30), np.float32)
            c = np.empty((40, 40), np.float32)
            _C.gemm(a, a, c, trans_b=True)
            assert np.all(c == 30)
        finally:
            _C.set_num_threads(before_threads)
            _C.set_isa(before_isa)
    return Case(desc, run, ALLOWED_C)


# =============================================================================================
# Layers
# =============================================================================================

def _is_huge(v) -> bool:
    if isinstance(v, (tuple, list)):
        return any(_is_huge(e) for e in v)
    return isinstance(v, (int, np.integer)) and not isinstance(v, bool) and abs(int(v)) >= 10**5


class Knobs:
    """Hyper-parameters drawn from a good pool, or (with probability ``p_bad``) a bad one."""

    def __init__(self, rng):
        self.rng = rng
        self.p_bad = pick(rng, [0.0, 0.0, 0.1, 0.2, 0.4])
        self.bad = []

    def __call__(self, name, good, bad=()):
        if bad and chance(self.rng, self.p_bad):
            self.bad.append(name)
            return pick(self.rng, bad)
        return pick(self.rng, good)


# Sizes that NumPy refuses before allocating anything ("array is too big"), so that no case
# can make the OS try to find terabytes; values near INT_MAX only where nothing is allocated
# in proportion (strides, pools).
ABSURD = [10**18, 2**62]
GOOD_UNITS = [1, 2, 3, 4, 8, np.int64(4)]
BAD_UNITS = [0, -1, 1.5, None, "8", True, [3], np.float64(2.0), float("nan")] + ABSURD
GOOD_WINDOWS = [1, 2, 3, (2, 2), (1, 3), (3, 1), [2, 2], np.int64(2)]
BAD_WINDOWS = [0, -1, (3, 3, 3), (2,), (), (0, 1), (-1, 2), 1.5, (1.5, 2), None, "3", True,
               (True, 2), 9, [2, None], {2: 2}] + ABSURD
BAD_STRIDES = BAD_WINDOWS + [2**31, INT_MAX, (INT_MAX, 1), 2**30 + 1]
GOOD_PADDINGS = ["valid", "same", "VALID", "Same"]
BAD_PADDINGS = ["full", "causal", "", None, 3, b"same", ["same"]]
GOOD_ACTIVS = [None, "linear", "relu", "sigmoid", "tanh", "softmax"]
BAD_ACTIVS = ["gelu", "", "RELU", 3, print, "swish", lambda t: t]


def _random_input_array(rng, want_rank=None, p_bad=0.3):
    """(array-like, moderate) random layer input: a float32 array of a plausible shape, or
    (with probability p_bad) another dtype/rank/container or non-finite values."""
    moderate = True
    rank = want_rank if (want_rank and not chance(rng, p_bad)) else \
        pick(rng, [0, 1, 2, 2, 3, 4, 4, 5])
    shape = tuple(int(rng.integers(0 if chance(rng, 0.03) else 1, 7)) for _ in range(rank))
    x = rng.uniform(-3, 3, shape).astype(np.float32)
    if chance(rng, p_bad):
        dt = pick(rng, [np.float64, np.float16, np.int32, np.uint8, np.bool_, object, "U4",
                        np.complex64, ">f4", "<f8", np.longdouble, ">i2"])
        x = x.astype(dt)
    if x.size and x.dtype.kind == "f" and chance(rng, p_bad / 3):
        x.reshape(-1)[0] = pick(rng, [np.nan, np.inf, -np.inf, 3e38, 1e39])
        moderate = False
    r = rng.random()
    if r < p_bad / 6 and x.ndim:
        return x.tolist(), moderate
    if r < p_bad / 3:
        return pick(rng, [None, "abc", 3.0, {"x": 1}]), moderate
    if x.ndim >= 2 and chance(rng, 0.1):
        return np.asfortranarray(x), moderate
    if x.size and x.dtype.kind in "biufc" and x.dtype.itemsize > 1 and chance(rng, 0.05):
        return _misaligned(x), moderate
    if x.ndim and x.shape[-1] > 1 and chance(rng, 0.05):
        big = np.repeat(x, 2, axis=-1)
        return big[..., ::2], moderate
    return x, moderate


def _misaligned(a: np.ndarray) -> np.ndarray:
    buf = np.zeros(a.nbytes + 1, np.uint8)
    m = buf[1:].view(a.dtype).reshape(a.shape)
    m[...] = a
    return m


def layer_case(rng):
    import pycnn
    from pycnn import layers as L

    kind = pick(rng, ["Dense", "Dense", "Conv2D", "Conv2D", "MaxPooling2D", "AveragePooling2D",
                      "Flatten", "Reshape", "Activation", "ReLU", "Softmax", "Dropout", "Input"])
    k = Knobs(rng)
    kw = {}
    if kind == "Dense":
        kw = dict(units=k("units", GOOD_UNITS, BAD_UNITS),
                  activation=k("activation", GOOD_ACTIVS, BAD_ACTIVS),
                  use_bias=k("use_bias", [True, True, False]))
    elif kind == "Conv2D":
        kw = dict(filters=k("filters", GOOD_UNITS, BAD_UNITS),
                  kernel_size=k("kernel_size", GOOD_WINDOWS, BAD_WINDOWS),
                  strides=k("strides", [1, 1, 2, (1, 2), (2, 1)], BAD_STRIDES),
                  padding=k("padding", GOOD_PADDINGS, BAD_PADDINGS),
                  activation=k("activation", GOOD_ACTIVS, BAD_ACTIVS))
    elif kind in ("MaxPooling2D", "AveragePooling2D"):
        kw = dict(pool_size=k("pool_size", GOOD_WINDOWS, BAD_WINDOWS),
                  strides=k("strides", [None, None, 1, 2, (1, 2)], BAD_STRIDES),
                  padding=k("padding", GOOD_PADDINGS, BAD_PADDINGS))
    elif kind == "Reshape":
        kw = dict(target_shape=k("target_shape", [(4,), (2, 2), (-1,), (-1, 2), (2, -1, 1),
                                                  (3, 3), (-1, 3), (6,)],
                                 [(0,), (-1, -1), (1.5,), (None,), ("2",), 3, None, (),
                                  (2**31,), (10**18, -1)]))
    elif kind == "Activation":
        kw = dict(activation=k("activation", GOOD_ACTIVS, BAD_ACTIVS))
    elif kind == "ReLU":
        kw = dict(max_value=k("max_value", [None, None, 0, 1.0, 6], [-1, float("nan"), "a"]),
                  negative_slope=k("negative_slope", [0, 0, 0.1], [-0.1, None,
                                                                    float("nan")]),
                  threshold=k("threshold", [0, 0, 0.5], [-1, None, float("nan")]))
    elif kind == "Softmax":
        kw = dict(axis=k("axis", [-1], [1, 0, None, "x"]))
    elif kind == "Dropout":
        kw = dict(rate=k("rate", [0, 0.0, 0.25, 0.5, 0.99, np.float64(0.3)],
                         [1, 1.0, -0.1, 1.5, float("nan"), "0.5", None, True]),
                  seed=k("seed", [None, 1, 2**40], [-1, "s"]))
    elif kind == "Input":
        kw = dict(shape=k("shape", [(3,), (4, 4, 2), (5, 5, 1), 3],
                          [(0,), (-1, 2), (None, 3), (1.5,), None, (), ("3",), (10**18, 2)]))
    if chance(rng, 0.04):
        key = pick(rng, ["name", "dtype", "input_shape", "bogus", "trainable"])
        kw[key] = pick(rng, ["", None, 3, "float64", (4,), "lyr", np.float32, (0,)])
        k.bad.append(key)
    huge = any(_is_huge(v) for v in kw.values())
    clean = not k.bad

    image_layer = kind in ("Conv2D", "MaxPooling2D", "AveragePooling2D")
    steps = []
    for _ in range(int(rng.integers(1, 4))):
        if chance(rng, 0.3):
            rank = 4 if image_layer and chance(rng, 0.7) else pick(rng, [1, 2, 3, 4, 5])
            shape = tuple(pick(rng, [1, 2, 3, 4, 5, 6, 8, None if chance(rng, 0.1) else 3])
                          for _ in range(rank - 1))
            steps.append(("symbolic", shape, chance(rng, 0.5)))
        else:
            x, moderate = _random_input_array(rng, 4 if image_layer else pick(rng, [2, 2, 3, 4]),
                                              p_bad=k.p_bad)
            steps.append(("array", x, moderate, pick(rng, [None, True, False, 1, "yes"])))
    extra = pick(rng, [None, None, "get_weights", "set_weights", "count_params", "config"])
    desc = (f"layers.{kind}(" + ", ".join(f"{n}={_describe(v)}" for n, v in kw.items()) +
            ") then " + "; ".join(
                f"call(Input(batch_shape=(None,)+{s[1]}))" if s[0] == "symbolic" else
                f"call({_describe(s[1])}, training={s[3]!r})" for s in steps) +
            (f"; {extra}" if extra else "") + f"  bad={k.bad}")

    def run():
        if kind == "Input":
            t = pycnn.Input(**kw)
            assert t.shape[0] is None
            return
        layer = getattr(L, kind)(**kw)
        for step in steps:
            if step[0] == "symbolic":
                t = pycnn.Input(batch_shape=(None,) + step[1])
                out = layer(t)
                assert out.shape[0] is None, out.shape
                if step[2] and all(d is not None for d in step[1]):
                    model = pycnn.Model(t, out)
                    y = model.predict(np.ones((2,) + step[1], np.float32), verbose=0)
                    assert y.dtype == np.float32 and y.shape[0] == 2
                    assert y.shape[1:] == out.shape[1:], (y.shape, out.shape)
            else:
                _, x, moderate, training = step
                y = layer(x, training=training)
                assert isinstance(y, np.ndarray) and y.dtype == np.float32, type(y)
                if clean and moderate:
                    assert np.all(np.isfinite(y)), "non-finite output for finite moderate input"
        if extra == "get_weights":
            for w in layer.get_weights():
                assert w.dtype == np.float32
        elif extra == "set_weights":
            ws = layer.get_weights()
            bad = pick(rng, [[w + 1 for w in ws], ws[:1], [w.astype(object) for w in ws],
                             [np.zeros((1, 1, 1), np.float32)] * len(ws), [w.T for w in ws],
                             [w.astype(np.float64) for w in ws], [w.astype("U3") for w in ws]])
            layer.set_weights(bad)
        elif extra == "count_params":
            assert layer.count_params() == sum(int(np.prod(w.shape))
                                               for w in layer.get_weights())
        elif extra == "config":
            assert isinstance(layer.get_config(), dict)

    allowed = (ValueError, TypeError) + ((MemoryError,) if huge else ())
    return Case(desc, run, allowed, no_kernel_message)


# =============================================================================================
# Models: fit / evaluate / predict / __call__ with random data
# =============================================================================================

def model_case(rng):
    import pycnn
    from pycnn import callbacks as C
    from pycnn import layers as L
    from pycnn import optimizers as O

    k = Knobs(rng)
    template = pick(rng, ["dense", "dense_noinput", "conv", "functional", "reshape"])
    units = pick(rng, [1, 2, 3, 5])
    out_act = pick(rng, ["softmax", "softmax", None, "sigmoid", "relu", "tanh"])
    F = pick(rng, [3, 4, 6])
    in_shape = (F,) if template in ("dense", "dense_noinput", "reshape") else \
        (pick(rng, [4, 5, 6]), pick(rng, [4, 5, 7]), pick(rng, [1, 2]))
    loss = k("loss", ["sparse_categorical_crossentropy", "sparse_categorical_crossentropy",
                      "categorical_crossentropy", "mse", "mean_squared_error", "sparse_logits",
                      "cce_logits"], ["hinge", None, 3])
    opt_kind = k("optimizer", ["rmsprop", "adam", "sgd", "SGD", "RMSprop", "Adam"],
                 ["adamx", None, 3])
    lr = k("learning_rate", [0.01, 0.001, 0.1, 0.0, "schedule"], [1e30, -1.0, float("nan"),
                                                                   "0.1"])
    metrics = k("metrics", [None, [], ["accuracy"], "acc", ["accuracy", "categorical_accuracy"],
                            "binary_accuracy", ["sparse_categorical_accuracy"]],
                [["mse"], [3], "f1"])
    n = pick(rng, [1, 2, 3, 5, 8, 12])
    op = pick(rng, ["fit", "fit", "fit", "evaluate", "predict", "call", "fit_predict"])
    sparse = loss in ("sparse_categorical_crossentropy", "sparse_logits")

    # ---- x
    x_scale = k("x_scale", [1.0, 1.0, 10.0], [1e3, 1e30])
    extreme = x_scale > 1e3
    x_kind = k("x", ["ok", "ok", "ok", "int", "bool", "f64", "list", "fortran", "strided",
                     "misaligned", "big_endian", "readonly"],
               ["rank", "features", "dtype", "nan", "f64_overflow", "empty", "none", "scalar"])
    x_shape = (n,) + in_shape
    x = (rng.uniform(-1, 1, x_shape) * x_scale).astype(np.float32)
    if x_kind == "rank":
        x = x.reshape(n, -1) if len(in_shape) > 1 else x.reshape(n, F, 1)
    elif x_kind == "features":
        x = rng.uniform(-1, 1, (n,) + tuple(d + 1 for d in in_shape)).astype(np.float32)
    elif x_kind == "dtype":
        x = x.astype(pick(rng, [object, "U5", np.complex64, "M8[s]"]))
    elif x_kind == "nan":
        x.reshape(-1)[0] = pick(rng, [np.nan, np.inf, -np.inf])
    elif x_kind == "f64_overflow":
        x = x.astype(np.float64)
        x.reshape(-1)[-1] = 1e39
    elif x_kind == "empty":
        x = x[:0]
    elif x_kind == "none":
        x = None
    elif x_kind == "scalar":
        x = np.float32(1.0)
    elif x_kind == "list":
        x = x.tolist()
    elif x_kind == "int":
        x = rng.integers(-3, 4, x_shape)
    elif x_kind == "bool":
        x = rng.random(x_shape) > 0.5
    elif x_kind == "f64":
        x = x.astype(np.float64)
    elif x_kind == "fortran":
        x = np.asfortranarray(x)
    elif x_kind == "strided":
        x = np.repeat(x, 2, axis=0)[::2]
    elif x_kind == "misaligned":
        x = _misaligned(x)
    elif x_kind == "big_endian":
        x = x.astype(">f4")
    elif x_kind == "readonly":
        x.flags.writeable = False
    # ---- y
    labels = rng.integers(0, units, n)
    onehot = np.eye(units, dtype=np.float32)[labels]
    y_kind = k("y", ["ok", "ok", "ok", "float_int"] +
               (["column", "uint8", "misaligned_labels"] if sparse else []),
               ["out_of_range", "negative", "float_frac", "nan", "onehot" if sparse else "labels",
                "length", "str", "object", "none", "rank3", "huge"])
    y = labels if sparse else onehot
    if y_kind == "out_of_range":
        y = labels.copy()
        y[-1] = units
    elif y_kind == "negative":
        y = labels.copy()
        y[0] = -1
    elif y_kind == "float_int":
        y = labels.astype(np.float64) if sparse else onehot.astype(np.float64)
    elif y_kind == "float_frac":
        y = labels + 0.5
    elif y_kind == "nan":
        y = onehot.copy() if not sparse else labels.astype(np.float32)
        y.reshape(-1)[0] = np.nan
    elif y_kind == "onehot":
        y = onehot
    elif y_kind == "labels":
        y = labels
    elif y_kind == "column":
        y = labels.reshape(-1, 1)
    elif y_kind == "uint8":
        y = labels.astype(np.uint8)
    elif y_kind == "misaligned_labels":
        y = _misaligned(labels.astype(np.int64))
    elif y_kind == "length":
        y = y[:-1] if n > 1 else np.concatenate([y, y])
    elif y_kind == "str":
        y = labels.astype("U2")
    elif y_kind == "object":
        y = labels.astype(object)
    elif y_kind == "none":
        y = None
    elif y_kind == "rank3":
        y = onehot.reshape(n, units, 1)
    elif y_kind == "huge":
        y = onehot.astype(np.float64) * 1e39
    batch_size = k("batch_size", [None, 1, 2, 3, 7, 32, np.int64(4), 10**18],
                   [0, -1, 1.5, "8", True])
    epochs = k("epochs", [1, 1, 2, 3, 0, np.int64(2)], [-1, 1.5, True, None])
    verbose = k("verbose", [0, 0, 0, 0, 2, "auto", 1], [3, "x", True, None])
    vsplit = k("validation_split", [0.0, 0.0, 0.0, 0.25, 0.5],
               [1.0, -0.1, float("nan"), "0.2", True, None])
    vdata = k("validation_data", [None, None, None, "same", "list"], ["short", "bad", "triple"])
    shuffle = chance(rng, 0.5)
    cbs = k("callbacks", [None, None, [], ["TerminateOnNaN"], ["EarlyStopping"], ["Lambda"]],
            [["object"], "cb", ["EarlyStoppingVal"]])
    desc = (f"template={template} in_shape={in_shape} units={units} out_act={out_act} "
            f"loss={loss!r} opt={opt_kind!r} lr={lr!r} metrics={metrics!r} op={op} x={x_kind}:"
            f"{_describe(x)} scale={x_scale} y={y_kind}:{_describe(y)} batch_size={batch_size!r}"
            f" epochs={epochs!r} verbose={verbose!r} validation_split={vsplit!r} "
            f"validation_data={vdata} shuffle={shuffle} callbacks={cbs!r} bad={k.bad}")

    def build():
        if template == "dense":
            return pycnn.Sequential([pycnn.Input(shape=in_shape), L.Dense(5, activation="relu"),
                                     L.Dense(units, activation=out_act)])
        if template == "dense_noinput":
            return pycnn.Sequential([L.Dense(5, activation="tanh"),
                                     L.Dense(units, activation=out_act)])
        if template == "conv":
            return pycnn.Sequential([pycnn.Input(shape=in_shape),
                                     L.Conv2D(3, 3, padding="same", activation="relu"),
                                     L.MaxPool2D(2, padding="same"), L.Flatten(),
                                     L.Dense(units, activation=out_act)])
        if template == "functional":
            i = pycnn.Input(shape=in_shape)
            t = L.Conv2D(2, 2, strides=2, padding="same")(i)
            t = L.AveragePooling2D(2, strides=1, padding="same")(t)
            t = L.Flatten()(t)
            t = L.Dropout(0.25, seed=1)(t)
            t = L.Dense(units)(t)
            t = L.Activation(out_act)(t) if out_act != "softmax" else L.Softmax()(t)
            return pycnn.Model(i, t)
        i = pycnn.Input(shape=in_shape)
        t = L.Reshape((F, 1))(i)
        t = L.Flatten()(t)
        t = L.ReLU(max_value=6.0)(t)
        return pycnn.Model(i, L.Dense(units, activation=out_act)(t))

    def optimizer():
        rate = (lambda step: 0.01) if lr == "schedule" else lr
        if opt_kind == "SGD":
            return O.SGD(learning_rate=rate, momentum=0.9, nesterov=True)
        if opt_kind == "RMSprop":
            return O.RMSprop(learning_rate=rate, momentum=0.5, centered=True)
        if opt_kind == "Adam":
            return O.Adam(learning_rate=rate)
        if opt_kind in ("sgd", "rmsprop", "adam") and lr != 0.001:
            return {"sgd": O.SGD, "rmsprop": O.RMSprop, "adam": O.Adam}[opt_kind](
                learning_rate=rate)
        return opt_kind

    def the_loss():
        if loss == "sparse_logits":
            return pycnn.losses.SparseCategoricalCrossentropy(from_logits=True)
        if loss == "cce_logits":
            return pycnn.losses.CategoricalCrossentropy(from_logits=True)
        return loss

    def callbacks():
        if not isinstance(cbs, list):
            return cbs
        table = {"TerminateOnNaN": lambda: C.TerminateOnNaN(),
                 "EarlyStopping": lambda: C.EarlyStopping(monitor="loss", patience=0),
                 "EarlyStoppingVal": lambda: C.EarlyStopping(monitor="val_loss"),
                 "Lambda": lambda: C.LambdaCallback(on_epoch_end=lambda e, l: None),
                 "object": lambda: object()}
        return [table[c]() for c in cbs]

    def val():
        if vdata in (None, "bad"):
            return vdata
        if vdata == "same":
            return (x, y)
        if vdata == "short":
            return (x, y[:1] if hasattr(y, "__getitem__") else y)
        if vdata == "triple":
            return (x, y, None)
        return [x, y]

    def run():
        model = build()
        model.compile(optimizer=optimizer(), loss=the_loss(), metrics=metrics)
        if op in ("fit", "fit_predict"):
            hist = model.fit(x, y, batch_size=batch_size, epochs=epochs, verbose=verbose,
                             validation_split=vsplit, validation_data=val(), shuffle=shuffle,
                             callbacks=callbacks())
            assert isinstance(hist, C.History)
            for values in hist.history.values():
                assert len(values) <= int(epochs)
            if not (lr == 1e30 or extreme):
                for w in model.get_weights():
                    assert np.all(np.isfinite(w)), "fit left non-finite weights"
            if op == "fit_predict":
                p = model.predict(np.zeros((2,) + in_shape, np.float32), verbose=0)
                assert p.dtype == np.float32 and len(p) == 2
        elif op == "evaluate":
            r = model.evaluate(x, y, batch_size=batch_size, verbose=verbose)
            assert isinstance(r, (float, list))
        elif op == "predict":
            p = model.predict(x, batch_size=batch_size, verbose=verbose)
            assert isinstance(p, np.ndarray) and p.dtype == np.float32
            assert len(p) == len(x)
            if not extreme:
                assert np.all(np.isfinite(p)), "predict gave non-finite values"
        else:
            p = model(x)
            assert isinstance(p, np.ndarray) and p.dtype == np.float32

    allowed = (ValueError, TypeError)
    if op in ("fit", "fit_predict"):
        # a loss that becomes NaN (huge learning rates, crossentropy on outputs that are not
        # probabilities) is the documented training fault: FloatingPointError naming the batch
        allowed += (FloatingPointError,)
    return Case(desc, run, allowed, no_kernel_message)


FAMILIES = {name: kernel_case(name) for name in KERNELS}
FAMILIES["runtime"] = runtime_case
FAMILIES["layers"] = layer_case
FAMILIES["models"] = model_case
COUNTS = {name: CASES_PER_KERNEL for name in KERNELS}
COUNTS.update(runtime=CASES_RUNTIME, layers=CASES_LAYERS, models=CASES_MODELS)


# =============================================================================================
# The child process and the parent that restarts it after a crash
# =============================================================================================

def _child(argv):
    family, seed, start, stop, crumb, expect = argv
    seed, start, stop = int(seed), int(start), int(stop)
    import pycnn
    assert os.path.realpath(pycnn.__file__) == os.path.realpath(expect), \
        f"child imported {pycnn.__file__}, parent uses {expect}"
    if not os.environ.get("PYCNN_SANITIZED"):    # ASan needs a huge address space
        import resource    # a runaway allocation is then a MemoryError, not the OOM killer
        resource.setrlimit(resource.RLIMIT_AS, (8 << 30, 8 << 30))
    gen = FAMILIES[family]
    real_stdout = sys.stdout
    sys.stdout = open(os.devnull, "w")       # progress bars of verbose fits
    fd = os.open(crumb, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    stats = {"cases": 0, "ok": 0, "raised": Counter(), "bad": []}
    np.seterr(all="ignore")
    for i in range(start, stop):
        rng = np.random.default_rng([seed, i])
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{i}\t(while generating the case)".encode(), 0)
        case = gen(rng)          # a bug of the generator stops the child: fix the test
        line = f"{i}\t{case.desc}".encode("utf-8", "backslashreplace")
        os.ftruncate(fd, 0)
        os.pwrite(fd, line, 0)
        stats["cases"] += 1
        try:
            case.run()
            stats["ok"] += 1
        except case.allowed as e:
            stats["raised"][type(e).__name__] += 1
            reason = case.vet(e) if case.vet else None
            if reason:
                stats["bad"].append({"index": i, "error": reason[:400], "case": case.desc[:1500]})
        except BaseException as e:  # noqa: BLE001 - everything else is a finding
            if isinstance(e, (SystemExit,)):
                raise
            msg = f"{type(e).__name__}: {e}"
            stats["bad"].append({"index": i, "error": msg[:400], "case": case.desc[:1500]})
    os.ftruncate(fd, 0)
    os.pwrite(fd, b"DONE", 0)
    os.close(fd)
    stats["raised"] = dict(stats["raised"])
    print("FUZZ-RESULT " + json.dumps(stats), file=real_stdout, flush=True)


def run_family(family, seed=SEED, count=None, max_crashes=MAX_CRASHES):
    """Run cases [0, count) of a family in child processes; after a crash, resume after the
    crashing case. Returns a dict with cases, crashes, bad (disallowed exceptions), raised."""
    count = COUNTS[family] if count is None else count
    import pycnn
    env, pycnn_file = child_env(tests_importable=True), pycnn.__file__
    result = {"cases": 0, "crashes": [], "bad": [], "raised": Counter()}
    start = 0
    with tempfile.TemporaryDirectory() as tmp:
        crumb = os.path.join(tmp, "crumb")
        while start < count:
            code = "import sys, test_fuzz; test_fuzz._child(sys.argv[1:])"
            argv = [family, str(seed), str(start), str(count), crumb, pycnn_file]
            proc = run_python(code, *argv, env=env, timeout=CHILD_TIMEOUT,
                              flags=["-X", "faulthandler"])
            lines = [l for l in proc.stdout.splitlines() if l.startswith("FUZZ-RESULT ")]
            if proc.returncode == 0 and lines:
                stats = json.loads(lines[-1][len("FUZZ-RESULT "):])
                result["cases"] += stats["cases"]
                result["bad"] += stats["bad"]
                result["raised"].update(stats["raised"])
                break
            try:
                text = Path(crumb).read_text("utf-8", "replace")
            except FileNotFoundError:
                text = ""
            if "\t" not in text:   # died before the first case or after the last one
                result["crashes"].append({"index": None, "returncode": proc.returncode,
                                          "case": text, "stderr": proc.stderr[-3000:]})
                break
            idx, desc = text.split("\t", 1)
            idx = int(idx)
            result["cases"] += idx - start + 1
            result["crashes"].append({"index": idx, "returncode": proc.returncode,
                                      "case": desc, "stderr": proc.stderr[-3000:]})
            start = idx + 1
            if len(result["crashes"]) >= max_crashes:
                break
    return result


def _report(family, seed, result) -> str:
    out = [f"fuzz family {family!r} (seed {seed}): {result['cases']} cases"]
    for c in result["crashes"]:
        out.append(f"\n  CRASH (exit code {c['returncode']}) at case {c['index']}: {c['case']}"
                   f"\n    replay: python tests/test_fuzz.py {family} {seed} {c['index']}"
                   f"\n    stderr tail: {textwrap.indent(c['stderr'][-1500:], '      ')}")
    seen = Counter()
    for b in result["bad"]:
        sig = b["error"].split(":")[0] + ":" + b["error"][:80]
        seen[sig] += 1
        if seen[sig] > 2:
            continue
        out.append(f"\n  DISALLOWED {b['error']}\n    at case {b['index']}: {b['case'][:700]}"
                   f"\n    replay: python tests/test_fuzz.py {family} {seed} {b['index']}")
    if result["bad"]:
        out.append(f"\n  ({len(result['bad'])} disallowed exceptions in total)")
    return "\n".join(out)


@pytest.mark.parametrize("family", list(KERNELS) + ["runtime"])
def test_c_entry_points_fuzz(family):
    """Every pycnn._C function with thousands of corrupted argument sets: no crash, only
    TypeError/ValueError/MemoryError."""
    result = run_family(family)
    assert not result["crashes"] and not result["bad"], _report(family, SEED, result)
    assert result["cases"] == COUNTS[family], _report(family, SEED, result)


def test_layers_fuzz():
    """Random layer hyper-parameters at construction and random inputs at call time:
    only ValueError/TypeError (MemoryError for absurd sizes)."""
    result = run_family("layers")
    assert not result["crashes"] and not result["bad"], _report("layers", SEED, result)
    assert result["cases"] == COUNTS["layers"]


def test_models_fuzz():
    """Random models, compile arguments and x/y for fit/evaluate/predict/__call__."""
    result = run_family("models")
    assert not result["crashes"] and not result["bad"], _report("models", SEED, result)
    assert result["cases"] == COUNTS["models"]


# =============================================================================================
# Targeted cases found by the fuzzer (each in a child process: they used to crash)
# =============================================================================================

def run_snippet(code: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return run_python(textwrap.dedent(code), env=child_env(tests_importable=True),
                      timeout=timeout)


def _assert_snippet_ok(code: str) -> str:
    proc = run_snippet(code)
    assert proc.returncode == 0, (f"the process died with exit code {proc.returncode} "
                                  f"(negative = signal):\n{proc.stderr[-3000:]}")
    assert "SNIPPET-OK" in proc.stdout, proc.stdout + proc.stderr
    return proc.stdout


ALLOWED_SNIPPET = """
import numpy as np
from pycnn import _C
def allowed(fn):
    try:
        fn()
    except (TypeError, ValueError, MemoryError) as e:
        return type(e).__name__ + ": " + str(e)
    return "returned"
"""


def test_activation_forward_on_a_0d_array_does_not_crash():
    """activation_forward reads the last dimension of x before rejecting rank 0 (softmax) -
    for a 0-d array NumPy has no dimensions array, so this used to be a NULL dereference."""
    _assert_snippet_ok(ALLOWED_SNIPPET + """
for kind in ("relu", "linear", "sigmoid", "tanh", "softmax"):
    x = np.array(1.5, np.float32)
    y = np.array(0.0, np.float32)
    r = allowed(lambda: _C.activation_forward(kind, x, y))
    print(kind, r, y)
    print(kind, allowed(lambda: _C.activation_forward(kind, x, x)))
    print(kind, allowed(lambda: _C.activation_backward(kind, x, x.copy(), y)))
print("SNIPPET-OK")
""")


@pytest.mark.parametrize("which", ["forward", "backward"])
def test_conv2d_huge_strides_do_not_crash(which):
    """Strides near INT_MAX with an output of 2 columns: ow * sw - pl overflows int in im2col,
    the 'window inside the row' test passes and the copy reads far outside x."""
    _assert_snippet_ok(ALLOWED_SNIPPET + f"""
x = np.ones((1, 3, 3, 1), np.float32)
w = np.ones((3, 3, 1, 1), np.float32)
for strides in [(1, 2**31 - 2), (2**31 - 2, 1), (2**31 - 1, 2**31 - 1), (2**30 + 1, 2**30 + 1)]:
    y = np.zeros((1, 2, 2, 1), np.float32)
    if "{which}" == "forward":
        print(strides, allowed(lambda: _C.conv2d_forward(x, w, None, y, strides, (0, 0))))
    else:
        dw = np.zeros_like(w)
        dx = np.zeros_like(x)
        print(strides, allowed(lambda: _C.conv2d_backward(x, w, y, dx, dw, None, strides,
                                                          (0, 0))))
print("SNIPPET-OK")
""")


def test_pooling_huge_strides_do_not_crash():
    """Strides near INT_MAX in the pooling kernels: oh * sh and hs + ph overflow int. The
    extension is built with CPython's -fwrapv, so this wraps (UBSan does not see it) and the
    window is clipped to the image: no out-of-bounds access, which this test pins down."""
    _assert_snippet_ok(ALLOWED_SNIPPET + """
x = np.arange(9, dtype=np.float32).reshape(1, 3, 3, 1)
for strides in [(2**31 - 1, 2**31 - 1), (2**30 + 1, 1), (1, 2**31 - 2)]:
    for pool in [(2, 2), (2**31 - 1, 1)]:
        y = np.zeros((1, 3, 3, 1), np.float32)
        am = np.zeros((1, 3, 3, 1), np.int32)
        print(allowed(lambda: _C.maxpool2d_forward(x, y, am, pool, strides, (0, 0))))
        print(allowed(lambda: _C.avgpool2d_forward(x, y, pool, strides, (0, 0))))
        dx = np.zeros_like(x)
        print(allowed(lambda: _C.avgpool2d_backward(y, dx, pool, strides, (0, 0))))
print("SNIPPET-OK")
""")


def test_out_of_range_scalars_raise_value_or_type_error():
    """Scalars that do not fit a C long / float must be refused like every other bad argument
    (the contract: TypeError/ValueError naming the argument), not with OverflowError."""
    import pycnn
    from pycnn import _C
    w = np.zeros(3, np.float32)
    calls = {
        "set_num_threads(2**70)": lambda: _C.set_num_threads(2**70),
        "pycnn.set_num_threads(2**70)": lambda: pycnn.set_num_threads(2**70),   # public API
        "sgd_update(lr=10**400)": lambda: _C.sgd_update(w, w.copy(), None, 10**400, 0.0),
        "adam_update(step=2**70)": lambda: _C.adam_update(w, w.copy(), w.copy(), w.copy(),
                                                          0.1, 0.9, 0.999, 1e-7, 2**70),
        "rmsprop_update(rho=-10**400)": lambda: _C.rmsprop_update(w, w.copy(), w.copy(), 0.1,
                                                                  -10**400, 1e-7),
    }
    threads = _C.num_threads()
    wrong = []
    try:
        for name, call in calls.items():
            try:
                call()
            except (TypeError, ValueError):
                pass
            except Exception as e:  # noqa: BLE001
                wrong.append(f"{name} -> {type(e).__name__}: {e}")
    finally:
        _C.set_num_threads(threads)
    assert not wrong, "\n".join(wrong)


def test_misaligned_user_arrays_are_accepted():
    """Valid float32 data in a misaligned buffer (e.g. np.frombuffer(raw, offset=1)) is ordinary
    user input: predict/evaluate/fit must work on it as on a copy, not fail inside a kernel with
    "argument 'x' must be C-contiguous and aligned"."""
    import pycnn
    from pycnn import layers
    pycnn.utils.set_random_seed(3)
    model = pycnn.Sequential([pycnn.Input(shape=(6,)), layers.Dense(3, activation="softmax")])
    model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
    rng = np.random.default_rng(0)
    x = rng.random((5, 6), dtype=np.float32)
    y = rng.integers(0, 3, 5).astype(np.int64)
    expected = model.predict(x, verbose=0)
    np.testing.assert_array_equal(model.predict(_misaligned(x), verbose=0), expected)
    np.testing.assert_array_equal(model(_misaligned(x)), expected)
    assert model.evaluate(_misaligned(x), _misaligned(y), verbose=0) == \
        model.evaluate(x, y, verbose=0)
    model.fit(_misaligned(x), _misaligned(y), epochs=1, verbose=0, shuffle=False)
    conv = pycnn.Sequential([pycnn.Input(shape=(4, 4, 1)), layers.Conv2D(2, 3),
                             layers.Flatten()])
    xc = rng.random((2, 4, 4, 1), dtype=np.float32)
    np.testing.assert_array_equal(conv.predict(_misaligned(xc), verbose=0),
                                  conv.predict(xc, verbose=0))


@pytest.mark.parametrize("layer", ["Conv2D", "MaxPooling2D", "AveragePooling2D"])
def test_layer_windows_beyond_int_range(layer):
    """Strides of 2**31 on a 5x5 input give a 1x1 output in Keras. pycnn accepts them at
    construction and must then either compute that output or refuse them with a ValueError
    naming the argument - not a TypeError from inside the kernel binding."""
    from pycnn import layers
    x = np.ones((1, 5, 5, 1), np.float32)
    make = {"Conv2D": lambda: layers.Conv2D(1, 2, strides=2**31),
            "MaxPooling2D": lambda: layers.MaxPooling2D(2, strides=2**31),
            "AveragePooling2D": lambda: layers.AveragePooling2D(2**31, padding="same")}[layer]
    try:
        lyr = make()
        out = lyr(x)
    except ValueError as e:
        assert "strides" in str(e) or "pool" in str(e), str(e)
        assert "_forward()" not in str(e), f"internal kernel message leaked: {e}"
        return
    except TypeError as e:
        pytest.fail(f"{layer}: TypeError from the kernel binding: {e}")
    assert out.shape[1:3] == (1, 1)


@pytest.mark.parametrize("make", ["Dense(units=2**31)", "Conv2D(filters=2**31, kernel_size=1)",
                                  "Conv2D(filters=1, kernel_size=(1, 2**31))"])
def test_layer_sizes_beyond_int_range_are_refused_at_construction(make):
    """The kernels take int dimensions, so a layer with more than INT_MAX units or filters can
    never run; it must be refused when it is constructed. Accepted, the first call allocates
    (and fills through a float64 temporary) in_dim * 2**31 weights: 24 GB for a single input
    feature - on the test machine the OOM killer ended the process (exit -9) instead of any
    exception. (Only construction is attempted here, nothing is allocated.)"""
    from pycnn import layers
    with pytest.raises(ValueError):
        eval(f"layers.{make}", {"layers": layers})


def test_conv2d_kernel_larger_than_input_is_a_value_error_before_allocating():
    """A kernel that cannot fit the input is a ValueError naming the layer; the check must come
    before the weights are allocated (kernel_size=100_000 would need 37 GB of float32)."""
    import pycnn
    from pycnn import layers
    for k in (100_000, 10**18):
        # 10**18 is refused already at construction (beyond the C int range)
        with pytest.raises(ValueError, match="does not fit|at most"):
            layers.Conv2D(1, k)(pycnn.Input(shape=(28, 28, 1)))
        with pytest.raises(ValueError, match="does not fit|at most"):
            layers.Conv2D(1, k)(np.zeros((1, 28, 28, 1), np.float32))


# =============================================================================================
# IDX / npz parsers and load_weights on mutated files (in-process: pure Python and NumPy)
# =============================================================================================

def _idx_bytes(arr: np.ndarray) -> bytes:
    return struct.pack(">I", 0x0800 | arr.ndim) + struct.pack(f">{arr.ndim}I", *arr.shape) + \
        arr.tobytes()


def mutate_bytes(rng, data: bytes, hot: int = 0) -> tuple[bytes, str]:
    """Random byte flips/sets (biased to the first ``hot`` bytes), truncation, extension,
    insertion, deletion or duplication."""
    b = bytearray(data)
    kind = pick(rng, ["flip", "flip", "set", "truncate", "extend", "insert", "delete", "dup",
                      "zero_run"])
    n = len(b)

    def pos():
        if hot and chance(rng, 0.5):
            return int(rng.integers(0, min(hot, n)))
        if chance(rng, 0.2):                        # the end (zip central directory)
            return int(rng.integers(max(0, n - 100), n))
        return int(rng.integers(0, n))
    if n == 0:
        return bytes(rng.integers(0, 256, 8, dtype=np.uint8)), "random"
    if kind == "flip":
        for _ in range(int(rng.integers(1, 6))):
            b[pos()] ^= 1 << int(rng.integers(0, 8))
    elif kind == "set":
        for _ in range(int(rng.integers(1, 4))):
            b[pos()] = pick(rng, [0, 0xFF, 0x7F, 0x80, int(rng.integers(0, 256))])
    elif kind == "truncate":
        b = b[:pos()]
    elif kind == "extend":
        b += bytes(rng.integers(0, 256, int(rng.integers(1, 64)), dtype=np.uint8)) \
            if chance(rng, 0.5) else b"\0" * int(rng.integers(1, 64))
    elif kind == "insert":
        p = pos()
        b[p:p] = bytes(rng.integers(0, 256, int(rng.integers(1, 9)), dtype=np.uint8))
    elif kind == "delete":
        p = pos()
        del b[p:p + int(rng.integers(1, 9))]
    elif kind == "dup":
        p = pos()
        b[p:p] = b[p:p + int(rng.integers(1, 32))]
    else:
        p = pos()
        b[p:p + 16] = b"\0" * len(b[p:p + 16])
    return bytes(b), kind


def _tiny_mnist(seed=0):
    r = np.random.default_rng(seed)
    return {"x_train": r.integers(0, 256, (3, 28, 28), dtype=np.uint8),
            "y_train": r.integers(0, 10, 3, dtype=np.uint8),
            "x_test": r.integers(0, 256, (2, 28, 28), dtype=np.uint8),
            "y_test": r.integers(0, 10, 2, dtype=np.uint8)}


def _check_loaded(data):
    (xa, ya), (xb, yb) = data
    for a in (xa, ya, xb, yb):
        assert a.dtype == np.uint8 and a.flags.c_contiguous and a.flags.writeable
    assert xa.shape[1:] == (28, 28) and xb.shape[1:] == (28, 28)
    assert len(xa) == len(ya) and len(xb) == len(yb)
    assert ya.max(initial=0) < 10 and yb.max(initial=0) < 10


def _summary(failures) -> str:
    """The failures grouped by exception type, with the first examples of each."""
    kinds = Counter(f.split(": ", 2)[1].split(":")[0] if ": " in f else f for f in failures)
    out = [f"{len(failures)} problems: {dict(kinds)}"]
    shown = Counter()
    for f in failures:
        key = f.split(": ", 2)[1].split(":")[0] if ": " in f else f
        shown[key] += 1
        if shown[key] <= 4:
            out.append("  " + f[:400])
    return "\n".join(out)


def _expect_value_error_only(fn, what, failures, i):
    try:
        return fn()
    except ValueError:
        return None
    except Exception as e:  # noqa: BLE001
        failures.append(f"case {i} ({what}): {type(e).__name__}: {e}")
        return None


def test_idx_parser_fuzz(tmp_path):
    """read_idx and load_data(path=dir) on mutated raw and gzipped IDX files: ValueError or a
    valid array, nothing else."""
    from pycnn.datasets import _idx, mnist
    data = _tiny_mnist()
    small_images = np.random.default_rng(1).integers(0, 256, (2, 5, 4), dtype=np.uint8)
    small_labels = np.arange(7, dtype=np.uint8)
    failures = []
    d = tmp_path / "d"
    d.mkdir()
    for i in range(CASES_IDX):
        rng = np.random.default_rng([SEED, 7, i])
        mode = pick(rng, ["images", "labels", "dir", "dir"])
        gz = chance(rng, 0.5)
        if mode == "dir":
            key = pick(rng, list(_idx.IDX_FILES))
            for k, arr in data.items():
                raw = _idx_bytes(arr)
                stem = _idx.IDX_FILES[k][0]
                for old in (d / stem, d / (stem + ".gz")):
                    if old.exists():
                        old.unlink()
                if k == key:
                    if gz and chance(rng, 0.5):
                        blob, how = mutate_bytes(rng, gzip.compress(raw, mtime=0), hot=24)
                    else:
                        blob, how = mutate_bytes(rng, raw, hot=16)
                        blob = gzip.compress(blob, mtime=0) if gz else blob
                else:
                    blob = gzip.compress(raw, mtime=0) if gz else raw
                (d / (stem + (".gz" if gz else ""))).write_bytes(blob)
            got = _expect_value_error_only(lambda: mnist.load_data(path=d),
                                           f"load_data dir {key} gz={gz}", failures, i)
            if got is not None:
                _check_loaded(got)
            continue
        arr, magic = (small_images, _idx.IMAGES_MAGIC) if mode == "images" else \
            (small_labels, _idx.LABELS_MAGIC)
        raw = _idx_bytes(arr)
        if gz and chance(rng, 0.5):
            blob, how = mutate_bytes(rng, gzip.compress(raw, mtime=0), hot=24)
        else:
            blob, how = mutate_bytes(rng, raw, hot=16)
            blob = gzip.compress(blob, mtime=0) if gz else blob
        p = tmp_path / f"f{i % 7}"
        p.write_bytes(blob)
        got = _expect_value_error_only(lambda: _idx.read_idx(p, magic),
                                       f"read_idx {mode} gz={gz} {how}", failures, i)
        if got is not None:
            assert got.dtype == np.uint8 and got.flags.c_contiguous and got.flags.owndata
            assert got.ndim == (magic & 0xFF)
    assert not failures, _summary(failures)


def _npz_bytes(arrays: dict, compressed: bool) -> bytes:
    buf = io.BytesIO()
    (np.savez_compressed if compressed else np.savez)(buf, **arrays)
    return buf.getvalue()


def _rezip(members: dict[str, bytes], compressed: bool) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED if compressed else zipfile.ZIP_STORED) \
            as z:
        for name, blob in members.items():
            z.writestr(name, blob)
    return buf.getvalue()


def test_npz_parser_fuzz(tmp_path):
    """load_npz (and load_data(path=file.npz)) on mutated archives, stored and deflated, and on
    archives whose .npy members are mutated: ValueError or valid arrays, nothing else."""
    from pycnn.datasets import _idx, mnist
    data = _tiny_mnist(2)
    bases = {c: _npz_bytes(data, c) for c in (False, True)}
    members = {}
    for k, v in data.items():
        b = io.BytesIO()
        np.save(b, v)
        members[k + ".npy"] = b.getvalue()
    failures = []
    for i in range(CASES_NPZ):
        rng = np.random.default_rng([SEED, 8, i])
        compressed = chance(rng, 0.5)
        if chance(rng, 0.35):        # mutate one .npy member (header-biased), then re-zip
            m = dict(members)
            name = pick(rng, list(m))
            m[name], how = mutate_bytes(rng, m[name], hot=128)
            blob = _rezip(m, compressed)
            how = f"member {name} {how}"
        else:
            blob, how = mutate_bytes(rng, bases[compressed], hot=64)
        p = tmp_path / f"a{i % 5}.npz"
        p.write_bytes(blob)
        fn = (lambda: _idx.load_npz(p)) if chance(rng, 0.7) else (lambda: mnist.load_data(path=p))
        got = _expect_value_error_only(fn, f"npz compressed={compressed} {how}", failures, i)
        if got is not None:
            _check_loaded(got)
    assert not failures, _summary(failures)


def test_load_weights_fuzz(tmp_path):
    """load_weights on mutated weight files: ValueError (naming the file) and the model's
    weights untouched, or a successful load of finite float32 weights."""
    import pycnn
    from pycnn import layers
    pycnn.utils.set_random_seed(5)
    model = pycnn.Sequential([pycnn.Input(shape=(4, 4, 1)), layers.Conv2D(2, 3),
                              layers.Flatten(), layers.Dense(3)])
    good = tmp_path / "good.weights.npz"
    model.save_weights(str(good))
    base = good.read_bytes()
    before = model.get_weights()
    failures = []
    for i in range(CASES_WEIGHTS):
        rng = np.random.default_rng([SEED, 9, i])
        blob, how = mutate_bytes(rng, base, hot=64)
        p = tmp_path / f"w{i % 5}.npz"
        p.write_bytes(blob)
        try:
            model.load_weights(str(p))
        except ValueError as e:
            if str(p) not in str(e):
                failures.append(f"case {i} ({how}): message does not name the file: {e}")
            after = model.get_weights()
            if not all(np.array_equal(a, b) for a, b in zip(before, after)):
                failures.append(f"case {i} ({how}): a failed load changed the weights")
                model.set_weights(before)
        except Exception as e:  # noqa: BLE001
            failures.append(f"case {i} ({how}): {type(e).__name__}: {e}")
        else:
            model.set_weights(before)
    assert not failures, _summary(failures)


def _corrupt_zip(blob: bytes, case: str) -> bytes:
    """Deterministic forms of the zip-level corruptions the fuzzer found."""
    b = bytearray(blob)
    cd = b.find(b"PK\x01\x02")               # the first central directory entry
    eocd = b.rfind(b"PK\x05\x06")
    if case == "npy header syntax":           # a '}' lost from a member's header, valid CRC
        with zipfile.ZipFile(io.BytesIO(blob)) as z:
            members = {n: z.read(n) for n in z.namelist()}
        name = sorted(members)[-1]
        members[name] = members[name].replace(b"}", b" ", 1)
        return _rezip(members, False)
    if case == "central directory offset":
        off = struct.unpack_from("<I", b, eocd + 16)[0]
        struct.pack_into("<I", b, eocd + 16, off + 1000)
    elif case == "compression method":
        struct.pack_into("<H", b, cd + 10, 99)
    elif case == "zip version":
        b[cd + 6] = 0x7F
    elif case == "encrypted flag":
        b[cd + 8] |= 1
    elif case == "member not .npy":           # np.load returns such a member as bytes
        with zipfile.ZipFile(io.BytesIO(blob)) as z:
            members = {n: z.read(n) for n in z.namelist()}
        name = sorted(n for n in members if not n.startswith("__"))[-1]   # a weight array
        members[name[:-4]] = b"\0" * 8
        del members[name]
        return _rezip(members, False)
    else:
        raise AssertionError(case)
    return bytes(b)


ZIP_CORRUPTIONS = ["npy header syntax", "central directory offset", "compression method",
                   "zip version", "encrypted flag"]


@pytest.mark.parametrize("case", ZIP_CORRUPTIONS)
def test_corrupt_npz_archive_raises_value_error(tmp_path, case):
    """Found by test_npz_parser_fuzz: damage inside the zip structure or a .npy header escapes
    load_npz as tokenize.TokenError, OSError (EINVAL from a negative seek),
    NotImplementedError or RuntimeError ("is encrypted, password required") instead of the
    documented ValueError naming the file."""
    from pycnn.datasets import _idx, mnist
    path = tmp_path / "bad.npz"
    path.write_bytes(_corrupt_zip(_npz_bytes(_tiny_mnist(), False), case))
    for load in (_idx.load_npz, lambda p: mnist.load_data(path=p)):
        with pytest.raises(ValueError, match=re.escape(str(path))):
            load(path)


@pytest.mark.parametrize("case", ZIP_CORRUPTIONS + ["member not .npy"])
def test_corrupt_weights_file_raises_value_error(tmp_path, case):
    """The same damage in a weights file: load_weights must raise ValueError naming the file
    (it lets TokenError, NotImplementedError, RuntimeError and, for a member that is not a
    .npy, AttributeError: 'bytes' object has no attribute 'shape' through) and leave the
    weights untouched."""
    import pycnn
    from pycnn import layers
    model = pycnn.Sequential([pycnn.Input(shape=(3,)), layers.Dense(2), layers.Dense(2)])
    good = tmp_path / "good.npz"
    model.save_weights(str(good))
    path = tmp_path / "bad.npz"
    path.write_bytes(_corrupt_zip(good.read_bytes(), case))
    before = model.get_weights()
    with pytest.raises(ValueError, match=re.escape(str(path))):
        model.load_weights(str(path))
    for a, b in zip(before, model.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_fuzz_families_name_real_entry_points():
    """Every C entry point the fuzzer mutates exists in pycnn._C: a renamed one would leave
    its family fuzzing nothing but AttributeErrors (each family's test asserts that all its
    cases ran)."""
    from pycnn import _C
    missing = [name for name in KERNELS if not callable(getattr(_C, name, None))]
    assert not missing, f"fuzz families without a pycnn._C function: {missing}"


# =============================================================================================
# Replay one case:  python tests/test_fuzz.py <family> <seed> <index>
# =============================================================================================

if __name__ == "__main__":
    if not os.environ.get("PYTHONPATH"):      # the checkout this file belongs to
        sys.path.insert(0, os.path.dirname(HERE))
    import pycnn as _pycnn
    print(f"pycnn from {_pycnn.__file__}", flush=True)
    fam, sd, ix = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    c = FAMILIES[fam](np.random.default_rng([sd, ix]))
    print(c.desc, flush=True)
    try:
        c.run()
        print("returned normally")
    except c.allowed as err:
        verdict = c.vet(err) if c.vet else None
        print(f"REJECTED: {verdict}" if verdict else f"allowed {type(err).__name__}: {err}")
