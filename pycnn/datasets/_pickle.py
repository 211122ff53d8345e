"""A strict reader for the pickles inside Keras' dataset files: nothing is ever unpickled.

Two of Keras' datasets are stored as Python pickles: the CIFAR "python
version" batches (a dict of byte strings, lists and a `uint8` NumPy array,
pickled by Python 2) and the `.npz` files of IMDB and Reuters, whose
sequences are NumPy object arrays of lists of ints (an `.npy` member whose
payload is a pickle). `pickle.load` would run whatever code such a file
names. This module instead reads the opcode stream itself and builds only
plain values: `None`, `bool`, `int`, `float`, `bytes`, `str`, `tuple`,
`list`, `dict`, and NumPy arrays and dtypes described in NumPy's own
pickle layout (`_reconstruct(ndarray, (0,), b"b")` then its state). No
global is ever imported or called: the four names NumPy's layout uses
(and `_codecs.encode`, Python 3's spelling of bytes in protocol 2) are
recognised by name, any other raises `UnsafePickleError`, as does any
opcode outside the small set such files use.
"""

from __future__ import annotations

import math
import os
import struct
from pathlib import Path
from typing import Any

import numpy as np


class UnsafePickleError(ValueError):
    """The pickle holds something other than plain data and NumPy arrays."""


_RECONSTRUCT = ("numpy.core.multiarray", "numpy._core.multiarray")
#: dtype descriptions an array may have (NumPy's pickled `dtype(descr, 0, 1)`).
_DTYPES = {"u1", "i1", "b1", "u2", "i2", "u4", "i4", "u8", "i8", "f4", "f8", "O8", "O4"}
#: The largest array payload accepted (1 GiB).
MAX_BYTES = 1 << 30


class _Global:
    def __init__(self, kind: str):
        self.kind = kind


class _ArraySkeleton:
    """`_reconstruct(ndarray, (0,), b"b")`: an array waiting for its state."""


class _DtypeSkeleton:
    def __init__(self, descr: str):
        self.descr = descr


_MARK = object()


def _text(value: Any) -> str:
    if isinstance(value, bytes):
        return value.decode("latin-1")
    if isinstance(value, str):
        return value
    raise UnsafePickleError(f"expected a string, found {type(value).__name__}")


def loads(data: bytes | memoryview, what: str = "pickle") -> Any:
    """Reads one pickled value from `data` (which must hold exactly one pickle).

    Raises:
        UnsafePickleError: (a `ValueError`) anything outside plain data and
            NumPy arrays, or a malformed stream; the message names `what`.
    """
    try:
        value, end = _run(bytes(data))
    except UnsafePickleError as exc:
        raise UnsafePickleError(f"{what}: {exc}") from None
    except (IndexError, struct.error, UnicodeDecodeError, TypeError, KeyError) as exc:
        raise UnsafePickleError(f"{what}: malformed pickle ({type(exc).__name__}: {exc})") from None
    if end != len(data):
        raise UnsafePickleError(f"{what}: {len(data) - end} bytes after the pickle's end")
    return value


def _run(buf: bytes) -> tuple[Any, int]:
    stack: list[Any] = []
    memo: dict[int, Any] = {}
    pos = 0
    n = len(buf)

    def take(k: int) -> bytes:
        nonlocal pos
        if k < 0 or pos + k > n:
            raise UnsafePickleError(f"truncated: needs {k} bytes at offset {pos}")
        out = buf[pos : pos + k]
        pos += k
        return out

    def u(fmt: str, size: int) -> int:
        return struct.unpack(fmt, take(size))[0]

    def pop_mark() -> list[Any]:
        for i in range(len(stack) - 1, -1, -1):
            if stack[i] is _MARK:
                items = stack[i + 1 :]
                del stack[i:]
                return items
        raise UnsafePickleError("no MARK on the stack")

    while True:
        if pos >= n:
            raise UnsafePickleError("truncated: no STOP opcode")
        op = buf[pos]
        pos += 1
        if op == 0x4B:  # BININT1
            stack.append(buf[pos])
            pos += 1
        elif op == 0x4D:  # BININT2
            stack.append(u("<H", 2))
        elif op == 0x4A:  # BININT
            stack.append(u("<i", 4))
        elif op == 0x8A:  # LONG1
            size = buf[pos]
            pos += 1
            stack.append(int.from_bytes(take(size), "little", signed=True))
        elif op == 0x71:  # BINPUT
            memo[buf[pos]] = stack[-1]
            pos += 1
        elif op == 0x72:  # LONG_BINPUT
            memo[u("<I", 4)] = stack[-1]
        elif op == 0x94:  # MEMOIZE
            memo[len(memo)] = stack[-1]
        elif op == 0x68:  # BINGET
            stack.append(memo[buf[pos]])
            pos += 1
        elif op == 0x6A:  # LONG_BINGET
            stack.append(memo[u("<I", 4)])
        elif op == 0x28:  # MARK
            # Fast path for the lists of word indices: MARK, a run of ints, APPENDS.
            items = []
            while True:
                o = buf[pos]
                if o == 0x4B:
                    items.append(buf[pos + 1])
                    pos += 2
                elif o == 0x4D:
                    items.append(buf[pos + 1] | (buf[pos + 2] << 8))
                    pos += 3
                elif o == 0x4A:
                    items.append(struct.unpack_from("<i", buf, pos + 1)[0])
                    pos += 5
                else:
                    break
            if items and o == 0x65 and stack and isinstance(stack[-1], list):
                stack[-1].extend(items)
                pos += 1
            else:
                stack.append(_MARK)
                stack.extend(items)
        elif op == 0x65:  # APPENDS
            items = pop_mark()
            target = stack[-1]
            if not isinstance(target, list):
                raise UnsafePickleError("APPENDS to a non-list")
            target.extend(items)
        elif op == 0x61:  # APPEND
            item = stack.pop()
            if not isinstance(stack[-1], list):
                raise UnsafePickleError("APPEND to a non-list")
            stack[-1].append(item)
        elif op == 0x5D:  # EMPTY_LIST
            stack.append([])
        elif op == 0x7D:  # EMPTY_DICT
            stack.append({})
        elif op == 0x29:  # EMPTY_TUPLE
            stack.append(())
        elif op == 0x75:  # SETITEMS
            items = pop_mark()
            target = stack[-1]
            if not isinstance(target, dict) or len(items) % 2:
                raise UnsafePickleError("SETITEMS on a non-dict")
            for i in range(0, len(items), 2):
                target[_key(items[i])] = items[i + 1]
        elif op == 0x73:  # SETITEM
            value = stack.pop()
            key = stack.pop()
            if not isinstance(stack[-1], dict):
                raise UnsafePickleError("SETITEM on a non-dict")
            stack[-1][_key(key)] = value
        elif op == 0x74:  # TUPLE
            stack.append(tuple(pop_mark()))
        elif op in (0x85, 0x86, 0x87):  # TUPLE1..3
            k = op - 0x84
            if len(stack) < k or any(s is _MARK for s in stack[-k:]):
                raise UnsafePickleError("TUPLE of a MARK")
            items = tuple(stack[-k:])
            del stack[-k:]
            stack.append(items)
        elif op == 0x4E:  # NONE
            stack.append(None)
        elif op == 0x88:  # NEWTRUE
            stack.append(True)
        elif op == 0x89:  # NEWFALSE
            stack.append(False)
        elif op == 0x47:  # BINFLOAT
            stack.append(u(">d", 8))
        elif op in (0x55, 0x43):  # SHORT_BINSTRING (Python 2 str: kept as bytes), SHORT_BINBYTES
            size = buf[pos]
            pos += 1
            stack.append(bytes(take(size)))
        elif op == 0x54:  # BINSTRING
            stack.append(bytes(take(u("<i", 4))))
        elif op == 0x42:  # BINBYTES
            stack.append(bytes(take(u("<I", 4))))
        elif op == 0x8E:  # BINBYTES8
            stack.append(bytes(take(u("<Q", 8))))
        elif op == 0x8C:  # SHORT_BINUNICODE
            size = buf[pos]
            pos += 1
            stack.append(str(take(size), "utf-8"))
        elif op == 0x58:  # BINUNICODE
            stack.append(str(take(u("<I", 4)), "utf-8"))
        elif op == 0x8D:  # BINUNICODE8
            stack.append(str(take(u("<Q", 8)), "utf-8"))
        elif op == 0x63:  # GLOBAL "module\nname\n"
            end1 = bytes(buf[pos : pos + 256]).find(b"\n")
            module = str(take(end1 + 1)[:-1], "ascii") if end1 >= 0 else None
            end2 = bytes(buf[pos : pos + 256]).find(b"\n")
            name = str(take(end2 + 1)[:-1], "ascii") if end2 >= 0 else None
            if module is None or name is None:
                raise UnsafePickleError("malformed GLOBAL")
            stack.append(_global(module, name))
        elif op == 0x93:  # STACK_GLOBAL
            name = stack.pop()
            module = stack.pop()
            stack.append(_global(_text(module), _text(name)))
        elif op == 0x52:  # REDUCE
            args = stack.pop()
            func = stack.pop()
            stack.append(_reduce(func, args))
        elif op == 0x62:  # BUILD
            state = stack.pop()
            obj = stack.pop()
            stack.append(_build(obj, state))
        elif op == 0x80:  # PROTO
            if buf[pos] > 5:
                raise UnsafePickleError(f"unsupported pickle protocol {buf[pos]}")
            pos += 1
        elif op == 0x95:  # FRAME
            pos += 8
        elif op == 0x2E:  # STOP
            if len(stack) != 1 or stack[0] is _MARK:
                raise UnsafePickleError("STOP with a malformed stack")
            value = stack[0]
            if isinstance(value, (_Global, _ArraySkeleton, _DtypeSkeleton)):
                raise UnsafePickleError("an incomplete object at STOP")
            return value, pos
        else:
            raise UnsafePickleError(
                f"opcode {bytes([op])!r} at offset {pos - 1} is not allowed "
                f"(only plain data and NumPy arrays are read)"
            )


def _key(key: Any) -> Any:
    if isinstance(key, (str, bytes, int)) and not isinstance(key, bool):
        return key
    raise UnsafePickleError(f"a dict key of type {type(key).__name__}")


def _global(module: str, name: str) -> _Global:
    if name == "_reconstruct" and module in _RECONSTRUCT:
        return _Global("reconstruct")
    if module == "numpy" and name in ("ndarray", "dtype"):
        return _Global(name)
    if module == "_codecs" and name == "encode":
        return _Global("encode")
    raise UnsafePickleError(
        f"refusing the global {module}.{name} (only NumPy arrays and plain data are read)"
    )


def _reduce(func: Any, args: Any) -> Any:
    if not isinstance(func, _Global) or not isinstance(args, tuple):
        raise UnsafePickleError("REDUCE of something other than an allowed global")
    if func.kind == "reconstruct":
        if (
            len(args) == 3
            and isinstance(args[0], _Global)
            and args[0].kind == "ndarray"
            and args[1] == (0,)
            and _text(args[2]) == "b"
        ):
            return _ArraySkeleton()
    elif func.kind == "dtype":
        if len(args) == 3 and args[1] in (0, False) and args[2] in (1, True):
            descr = _text(args[0])
            if descr in _DTYPES:
                return _DtypeSkeleton(descr)
            raise UnsafePickleError(f"dtype {descr!r} is not accepted")
    elif func.kind == "encode":
        if len(args) == 2 and isinstance(args[0], str) and _text(args[1]) == "latin1":
            return args[0].encode("latin-1")
    raise UnsafePickleError(f"unexpected arguments to {func.kind}")


def _build(obj: Any, state: Any) -> Any:
    if isinstance(obj, _DtypeSkeleton):
        if not isinstance(state, tuple) or len(state) < 2:
            raise UnsafePickleError("malformed dtype state")
        endian = _text(state[1])
        if endian not in ("|", "<", ">", "="):
            raise UnsafePickleError(f"dtype byte order {endian!r}")
        if obj.descr.startswith("O"):
            return np.dtype(object)
        return np.dtype((endian if endian != "|" else "") + obj.descr)
    if isinstance(obj, _ArraySkeleton):
        if not isinstance(state, tuple) or len(state) != 5 or state[0] != 1:
            raise UnsafePickleError("malformed ndarray state")
        _, shape, dtype, fortran, payload = state
        if not isinstance(dtype, np.dtype):
            raise UnsafePickleError("ndarray state without a dtype")
        if not isinstance(shape, tuple) or not all(
            isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape
        ):
            raise UnsafePickleError(f"ndarray shape {shape!r}")
        count = math.prod(shape)
        order = "F" if fortran else "C"
        if dtype.hasobject:
            if not isinstance(payload, list) or len(payload) != count:
                raise UnsafePickleError("object array whose items do not match its shape")
            out = np.empty(count, dtype=object)
            for i, item in enumerate(payload):
                out[i] = item
            return out.reshape(shape, order=order)
        if not isinstance(payload, bytes):
            raise UnsafePickleError("ndarray data is not a byte string")
        if count * dtype.itemsize > MAX_BYTES or len(payload) != count * dtype.itemsize:
            raise UnsafePickleError(
                f"ndarray of shape {shape} and dtype {dtype} needs "
                f"{count * dtype.itemsize} bytes, the pickle holds {len(payload)}"
            )
        arr = np.frombuffer(payload, dtype=dtype).reshape(shape, order=order)
        return np.array(arr, order="C")
    raise UnsafePickleError("BUILD of something other than a NumPy array or dtype")


def read_npz(path: str | os.PathLike[str], keys: tuple[str, ...]) -> dict[str, np.ndarray]:
    """Reads the arrays `keys` of an `.npz` archive, object arrays through `loads`.

    Numeric members are read by `np.lib.format.read_array(allow_pickle=False)`;
    a member of dtype `object` has its pickle payload read by this module's
    strict reader. Raises `ValueError` naming the file for anything else.
    """
    import io
    import zipfile

    path = Path(path)
    out: dict[str, np.ndarray] = {}
    try:
        with zipfile.ZipFile(path) as archive:
            names = {n.removesuffix(".npy") for n in archive.namelist()}
            for key in keys:
                if key not in names:
                    raise ValueError(
                        f"{path}: no array {key!r} (it holds: {', '.join(sorted(names))}); "
                        f"expected the keys {', '.join(keys)}"
                    )
                info = archive.getinfo(key + ".npy")
                if info.file_size > MAX_BYTES:
                    raise ValueError(f"{path}[{key!r}]: {info.file_size} bytes, over the limit")
                with archive.open(info) as member:
                    raw = member.read()
                fp = io.BytesIO(raw)
                version = np.lib.format.read_magic(fp)
                if version == (1, 0):
                    shape, fortran, dtype = np.lib.format.read_array_header_1_0(fp)
                elif version in ((2, 0), (3, 0)):
                    shape, fortran, dtype = np.lib.format.read_array_header_2_0(fp)
                else:
                    raise ValueError(f"{path}[{key!r}]: .npy format version {version}")
                if dtype.hasobject:
                    arr = loads(memoryview(raw)[fp.tell():], f"{path}[{key!r}]")
                    if not isinstance(arr, np.ndarray) or arr.shape != tuple(shape):
                        raise ValueError(
                            f"{path}[{key!r}]: the pickle does not hold an array of shape {shape}"
                        )
                else:
                    fp.seek(0)
                    arr = np.lib.format.read_array(fp, allow_pickle=False)
                out[key] = arr
    except (zipfile.BadZipFile, OSError, EOFError) as exc:
        if isinstance(exc, FileNotFoundError):
            raise
        raise ValueError(f"{path}: not a readable .npz archive ({type(exc).__name__}: {exc})") from None
    return out
