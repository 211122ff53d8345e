"""Reading ``.npz`` archives (zips of ``.npy`` files) that may be damaged or hostile.

``np.load`` trusts an archive: it allocates whatever shape a member's ``.npy`` header declares
and inflates whatever the zip holds. ``load_npz`` checks everything it can before allocating or
inflating anything, and raises ``ValueError`` naming the file and the member:

* each member is a ``.npy`` file (``name.npy``), stored or deflated, named once;
* its header is format 1.0, 2.0 or 3.0, of bounded length, and describes a plain array: a
  dtype holding Python objects (which only pickle could restore) is refused, nothing is ever
  unpickled;
* the header's ``shape`` x ``itemsize`` plus the header's length equals the member's
  uncompressed size recorded in the zip directory, and is at most ``max_member_bytes``
  (all the members read at most ``max_total_bytes``);
* the recorded uncompressed size is possible for the recorded compressed size (deflate
  inflates at most 1032-fold), so a directory lying about sizes is caught before inflating;
* the data is then read into the array with a bounded, incremental inflate that stops at the
  recorded size, and the zip's CRC-32 is checked.
"""
from __future__ import annotations

import math
import os
import tokenize
import zipfile
import zlib
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

__all__ = ["MemberInfo", "inspect_npz", "load_npz", "MAX_MEMBER_BYTES", "MAX_TOTAL_BYTES"]

#: The largest array one member may hold by default (1 GiB).
MAX_MEMBER_BYTES = 1 << 30
#: The most all members read together may hold by default (2 GiB).
MAX_TOTAL_BYTES = 2 << 30
#: The longest ``.npy`` header accepted (NumPy's own default limit).
MAX_HEADER_BYTES = 10000
#: Deflate's largest expansion: 258 bytes from every 2 bits (1032 : 1), plus a block's slack.
_MAX_DEFLATE_RATIO = 1032
_DEFLATE_SLACK = 1 << 16
_CHUNK = 1 << 20


@dataclass(frozen=True)
class MemberInfo:
    """What a member's ``.npy`` header declares, once checked."""

    key: str                  # the member's name without ``.npy``
    shape: tuple[int, ...]
    dtype: np.dtype
    fortran_order: bool
    nbytes: int               # shape x itemsize
    header_bytes: int         # magic + header length


def _fail(where: str, message: str) -> ValueError:
    return ValueError(f"{where}: {message}")


def _read_header(fp, where: str) -> tuple[tuple[int, ...], bool, np.dtype, int]:
    try:
        version = np.lib.format.read_magic(fp)
    except ValueError as exc:
        raise _fail(where, f"not a .npy file ({exc})") from None
    readers = {(1, 0): np.lib.format.read_array_header_1_0,
               (2, 0): np.lib.format.read_array_header_2_0}
    if version not in readers and version != (3, 0):
        raise _fail(where, f".npy format version {version[0]}.{version[1]}; expected 1.0, 2.0 "
                           f"or 3.0")
    reader = readers.get(version, np.lib.format.read_array_header_2_0)   # 3.0: utf-8 header
    try:
        shape, fortran_order, dtype = reader(fp, max_header_size=MAX_HEADER_BYTES)
    except (ValueError, SyntaxError, TypeError, tokenize.TokenError) as exc:
        raise _fail(where, f"corrupt .npy header ({exc})") from None
    return tuple(int(d) for d in shape), bool(fortran_order), dtype, fp.tell()


def _check_member(archive: zipfile.ZipFile, info: zipfile.ZipInfo, path: str,
                  max_member_bytes: int) -> MemberInfo:
    key = info.filename[:-4]
    where = f"{path}[{key!r}]"
    if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
        raise _fail(where, f"compression method {info.compress_type}; expected stored or "
                           f"deflated")
    if info.flag_bits & 0x1:
        raise _fail(where, "encrypted; expected a plain .npy member")
    limit = (info.compress_size if info.compress_type == zipfile.ZIP_STORED
             else info.compress_size * _MAX_DEFLATE_RATIO + _DEFLATE_SLACK)
    if info.file_size > limit:
        raise _fail(where, f"the zip directory records {info.file_size} uncompressed bytes "
                           f"from {info.compress_size} compressed ones, which deflate cannot "
                           f"produce; the archive is corrupt or forged")
    with archive.open(info) as fp:
        shape, fortran_order, dtype, header_bytes = _read_header(fp, where)
    if dtype.hasobject:
        raise _fail(where, "holds Python objects (pickled data), which are never loaded; "
                           "expected an array of numbers")
    if any(d < 0 for d in shape):
        raise _fail(where, f"negative dimension in shape {shape}")
    nbytes = math.prod(shape) * dtype.itemsize
    if nbytes > max_member_bytes:
        raise _fail(where, f"the header declares shape {shape} of {dtype} ({nbytes} bytes), "
                           f"more than the {max_member_bytes}-byte limit")
    if header_bytes + nbytes != info.file_size:
        raise _fail(where, f"the header declares shape {shape} of {dtype} ({nbytes} bytes), "
                           f"the archive stores {info.file_size - header_bytes} bytes of data")
    return MemberInfo(key, shape, dtype, fortran_order, nbytes, header_bytes)


def _members(archive: zipfile.ZipFile, path: str) -> dict[str, zipfile.ZipInfo]:
    found: dict[str, zipfile.ZipInfo] = {}
    for info in archive.infolist():
        if not info.filename.endswith(".npy") or info.is_dir():
            raise _fail(f"{path}[{info.filename!r}]", "not a .npy member; expected an .npz "
                                                      "archive of .npy files only")
        key = info.filename[:-4]
        if key in found:
            raise _fail(f"{path}[{key!r}]", "stored twice in the archive")
        found[key] = info
    return found


def _open(path: str) -> zipfile.ZipFile:
    try:
        return zipfile.ZipFile(path)
    except FileNotFoundError:
        raise
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, ValueError, EOFError,
            NotImplementedError) as exc:
        raise _fail(path, f"not a readable .npz archive ({type(exc).__name__}: {exc})") \
            from None


def inspect_npz(path: str | os.PathLike[str], *,
                max_member_bytes: int = MAX_MEMBER_BYTES) -> dict[str, MemberInfo]:
    """Checks every member's header against the zip directory without reading any data.

    Returns:
        The checked ``MemberInfo`` of each member, by key, in archive order.

    Raises:
        ValueError: naming the file (and member) that fails a check.
        FileNotFoundError: no such file.
    """
    path = os.fspath(path)
    with _open(path) as archive:
        try:
            return {key: _check_member(archive, info, path, max_member_bytes)
                    for key, info in _members(archive, path).items()}
        except (zipfile.BadZipFile, zlib.error, EOFError, OSError, NotImplementedError) as exc:
            raise _fail(path, f"not a readable .npz archive ({type(exc).__name__}: {exc})") \
                from None


def _read_member(archive: zipfile.ZipFile, info: zipfile.ZipInfo, m: MemberInfo,
                 where: str) -> np.ndarray:
    out = np.empty(m.shape[::-1] if m.fortran_order else m.shape, dtype=m.dtype)
    view = memoryview(out.reshape(-1).view(np.uint8)) if m.nbytes else memoryview(b"")
    with archive.open(info) as fp:
        fp.read(m.header_bytes)        # the header, checked already
        got = 0
        while got < m.nbytes:
            n = fp.readinto(view[got:got + _CHUNK])
            if not n:
                break
            got += n
        extra = fp.read(1)             # also triggers the CRC check at the member's end
    if got != m.nbytes or extra:
        raise _fail(where, f"the member holds {'more' if extra else got} bytes of data where "
                           f"the header declares {m.nbytes}")
    return out.T if m.fortran_order else out


def load_npz(path: str | os.PathLike[str], keys: Iterable[str] | None = None, *,
             max_member_bytes: int = MAX_MEMBER_BYTES,
             max_total_bytes: int = MAX_TOTAL_BYTES,
             dtype: np.dtype | str | None = None) -> dict[str, np.ndarray]:
    """Reads the arrays of an ``.npz`` archive after checking them all (module docstring).

    Args:
        path: the archive.
        keys: the arrays to read (each must be present); ``None`` reads all of them. Every
            member's header is checked either way.
        max_member_bytes: the largest array accepted.
        max_total_bytes: the most the arrays read may hold together.
        dtype: when given, every array read must have this dtype (checked before reading).

    Returns:
        A dict of key -> array (C-contiguous, writable and owning its memory, unless stored in
        Fortran order: then the transposed view of such an array, as ``np.load`` gives).

    Raises:
        ValueError: naming the file and the member that fails a check.
        FileNotFoundError: no such file.
    """
    path = os.fspath(path)
    want = None if keys is None else list(keys)
    expect = None if dtype is None else np.dtype(dtype)
    with _open(path) as archive:
        try:
            members = _members(archive, path)
            infos = {key: _check_member(archive, info, path, max_member_bytes)
                     for key, info in members.items()}
            if want is not None:
                missing = [k for k in want if k not in infos]
                if missing:
                    held = ", ".join(infos) or "nothing"
                    raise _fail(path, f"no array {missing[0]!r} (it holds: {held}); expected "
                                      f"the keys {', '.join(want)}")
            chosen = want if want is not None else list(infos)
            for key in chosen:
                if expect is not None and infos[key].dtype != expect:
                    raise _fail(f"{path}[{key!r}]", f"dtype {infos[key].dtype}; expected "
                                                    f"{expect}")
            total = sum(infos[k].nbytes for k in chosen)
            if total > max_total_bytes:
                raise _fail(path, f"the arrays declare {total} bytes together, more than the "
                                  f"{max_total_bytes}-byte limit")
            return {key: _read_member(archive, members[key], infos[key], f"{path}[{key!r}]")
                    for key in chosen}
        except (zipfile.BadZipFile, zlib.error, EOFError, OSError, NotImplementedError) as exc:
            raise _fail(path, f"not a readable .npz archive ({type(exc).__name__}: {exc})") \
                from None
