"""Strict readers for the files that hold MNIST-style datasets.

Two formats are read:

* IDX files, as published by Yann LeCun for MNIST and by Zalando for
  Fashion-MNIST, gzip-compressed or raw. Images carry the magic number
  `0x00000803` followed by the big-endian dimensions `N, rows, cols`; labels
  carry `0x00000801` followed by `N`. The payload is exactly the product of
  the dimensions in bytes.
* Keras' `.npz` archives (such as `mnist.npz`) with the arrays `x_train`,
  `y_train`, `x_test` and `y_test`, read with `np.load(allow_pickle=False)`
  once every member's header was checked against the zip directory (the
  same checks as `pycnn.utils.safe_npz`, which this package, standing alone,
  does not import).

Every problem with a file raises `ValueError` naming the file and saying
what was expected. Declared sizes are checked against the real ones (and
against `MAX_PAYLOAD_BYTES`) before anything is allocated: a raw file's
size must match its header; a gzip file's header may declare at most what
its compressed size can inflate to (deflate expands at most 1032-fold), and
it is inflated incrementally, never past the declared size. The returned
arrays are C-contiguous, writable `uint8` arrays that own their memory.
"""

from __future__ import annotations

import gzip
import math
import os
import zipfile
import zlib
from pathlib import Path
from typing import BinaryIO

import numpy as np

IMAGES_MAGIC = 0x00000803
LABELS_MAGIC = 0x00000801

#: The largest payload an IDX file or an `.npz` member may declare (1 GiB).
MAX_PAYLOAD_BYTES = 1 << 30

#: Deflate inflates at most 1032-fold (258 bytes from 2 bits); plus slack for
#: the gzip header and the smallest files.
MAX_GZIP_RATIO = 1032
GZIP_SLACK = 1 << 16

#: Key of each array -> (IDX file stem, magic number), in Keras' order.
IDX_FILES: dict[str, tuple[str, int]] = {
    "x_train": ("train-images-idx3-ubyte", IMAGES_MAGIC),
    "y_train": ("train-labels-idx1-ubyte", LABELS_MAGIC),
    "x_test": ("t10k-images-idx3-ubyte", IMAGES_MAGIC),
    "y_test": ("t10k-labels-idx1-ubyte", LABELS_MAGIC),
}

NPZ_KEYS = ("x_train", "y_train", "x_test", "y_test")

IMAGE_SHAPE = (28, 28)
NUM_CLASSES = 10

Arrays = tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]

_WHAT = {
    IMAGES_MAGIC: "uint8 images with 3 dimensions (N, rows, cols)",
    LABELS_MAGIC: "uint8 labels with 1 dimension (N,)",
}


def idx_file_names(stem: str) -> tuple[str, ...]:
    """File names under which the IDX file `stem` is accepted, preferred first.

    The gzip-compressed name, the raw name, and the raw name that
    `gunzip -N` restores from LeCun's originals (`train-images.idx3-ubyte`).
    """
    return (stem + ".gz", stem, stem.replace("-idx", ".idx", 1))


def read_idx(path: str | os.PathLike[str], magic: int) -> np.ndarray:
    """Reads one IDX file of `uint8` data, gzip-compressed or raw.

    Args:
        path: the file. Gzip compression is recognised by its content.
        magic: `IMAGES_MAGIC` or `LABELS_MAGIC`, the expected magic number.

    Returns:
        A writable `uint8` array with the dimensions the header declares.

    Raises:
        ValueError: the file is not a valid IDX file of that kind (wrong
            magic, truncated, extra bytes, corrupt gzip data).
    """
    path = Path(path)
    try:
        with open(path, "rb") as raw:
            compressed = raw.read(2) == b"\x1f\x8b"
            raw.seek(0)
            size = os.fstat(raw.fileno()).st_size
            if not compressed:
                return _parse_idx(raw, path, magic, size)
            with gzip.GzipFile(fileobj=raw, mode="rb") as stream:
                return _parse_idx(stream, path, magic, None, gzip_size=size)
    except (EOFError, zlib.error, gzip.BadGzipFile) as exc:
        raise ValueError(
            f"{path}: corrupt or truncated gzip data ({exc}); expected a "
            f"gzip-compressed or raw IDX file of {_WHAT[magic]}"
        ) from None


def _parse_idx(
    stream: BinaryIO, path: Path, magic: int, size: int | None,
    gzip_size: int | None = None,
) -> np.ndarray:
    ndim = magic & 0xFF
    header_len = 4 + 4 * ndim
    header = _read_up_to(stream, header_len)
    if len(header) >= 4:
        found = int.from_bytes(header[:4], "big")
        if found != magic:
            raise ValueError(
                f"{path}: magic number 0x{found:08x}; expected 0x{magic:08x} "
                f"(an IDX file of {_WHAT[magic]})"
            )
    if len(header) < header_len:
        raise ValueError(
            f"{path}: file ends after {len(header)} bytes, inside the header; "
            f"expected a {header_len}-byte IDX header for {_WHAT[magic]}"
        )
    dims = tuple(
        int.from_bytes(header[i : i + 4], "big") for i in range(4, header_len, 4)
    )
    count = math.prod(dims)
    shape = " x ".join(map(str, dims))
    if size is not None and size != header_len + count:
        actual = size - header_len
        problem = "truncated" if actual < count else "has extra bytes"
        raise ValueError(
            f"{path}: {problem}: the header declares {shape} = {count} bytes "
            f"of data, the file holds {actual}"
        )
    if count > MAX_PAYLOAD_BYTES:
        raise ValueError(
            f"{path}: the header declares {shape} = {count} bytes of data, "
            f"more than the {MAX_PAYLOAD_BYTES}-byte limit; the header is corrupt"
        )
    if gzip_size is not None:
        most = gzip_size * MAX_GZIP_RATIO + GZIP_SLACK
        if header_len + count > most:
            raise ValueError(
                f"{path}: the header declares {shape} = {count} bytes of data, "
                f"but a {gzip_size}-byte gzip file inflates to at most {most} "
                f"bytes; the header is corrupt or the file truncated"
            )
    out = np.empty(dims, dtype=np.uint8)
    got = _read_into(stream, memoryview(out.reshape(-1)))
    if got < count:
        raise ValueError(
            f"{path}: truncated: the header declares {shape} = {count} bytes "
            f"of data, the file holds {got}"
        )
    if stream.read(1):
        raise ValueError(
            f"{path}: has extra bytes after the {count} bytes of data that "
            f"the header declares ({shape})"
        )
    return out


def _read_up_to(stream: BinaryIO, n: int) -> bytes:
    chunks = []
    while n > 0:
        chunk = stream.read(n)
        if not chunk:
            break
        chunks.append(chunk)
        n -= len(chunk)
    return b"".join(chunks)


def _read_into(stream: BinaryIO, view: memoryview) -> int:
    got = 0
    while got < len(view):
        n = stream.readinto(view[got:])
        if not n:
            break
        got += n
    return got


def load_idx(
    files: dict[str, Path],
    image_shape: tuple[int, int] = IMAGE_SHAPE,
    num_classes: int = NUM_CLASSES,
) -> Arrays:
    """Reads the four IDX files of a dataset.

    Args:
        files: the file of each key of `IDX_FILES` (`x_train`, ...).
        image_shape: the `(rows, cols)` every image must have.
        num_classes: labels must lie in `0..num_classes - 1`.

    Returns:
        Tuple of NumPy arrays: `(x_train, y_train), (x_test, y_test)`.
    """
    arrays = {key: read_idx(files[key], IDX_FILES[key][1]) for key in NPZ_KEYS}
    names = {key: str(files[key]) for key in NPZ_KEYS}
    return _checked(arrays, names, image_shape, num_classes)


def load_npz(
    path: str | os.PathLike[str],
    image_shape: tuple[int, int] = IMAGE_SHAPE,
    num_classes: int = NUM_CLASSES,
) -> Arrays:
    """Reads a Keras `.npz` archive with `x_train`, `y_train`, `x_test`, `y_test`.

    Each member's `.npy` header is checked first (dtype `uint8`, declared
    size equal to the stored size); the arrays are then read with
    `np.load(path, allow_pickle=False)`, so nothing is ever unpickled.

    Returns:
        Tuple of NumPy arrays: `(x_train, y_train), (x_test, y_test)`.

    Raises:
        ValueError: the file is not such an archive.
    """
    path = Path(path)
    try:
        with zipfile.ZipFile(path) as archive:
            for key in NPZ_KEYS:
                _check_npy_member(archive, key, path)
        with np.load(path, allow_pickle=False) as npz:
            arrays = {key: npz[key] for key in NPZ_KEYS}
    except FileNotFoundError:
        raise
    except (MemoryError, KeyboardInterrupt):
        raise
    except Exception as exc:  # zip, zlib, npy-header and OS errors of a corrupt archive alike
        if isinstance(exc, ValueError) and str(exc).startswith(str(path)):
            raise
        raise ValueError(
            f"{path}: not a readable .npz archive ({type(exc).__name__}: {exc}); "
            f"expected a Keras .npz file with uint8 arrays {', '.join(NPZ_KEYS)} "
            f"(for IDX files, pass the directory that holds all four)"
        ) from None
    names = {key: f"{path}[{key!r}]" for key in NPZ_KEYS}
    return _checked(arrays, names, image_shape, num_classes)


def _check_npy_member(archive: zipfile.ZipFile, key: str, path: Path) -> None:
    try:
        info = archive.getinfo(key + ".npy")
    except KeyError:
        found = ", ".join(sorted(n.removesuffix(".npy") for n in archive.namelist()))
        raise ValueError(
            f"{path}: no array {key!r} (it holds: {found or 'nothing'}); "
            f"expected the keys {', '.join(NPZ_KEYS)}"
        ) from None
    with archive.open(info) as fp:
        version = np.lib.format.read_magic(fp)
        if version == (1, 0):
            shape, _, dtype = np.lib.format.read_array_header_1_0(fp)
        elif version == (2, 0):
            shape, _, dtype = np.lib.format.read_array_header_2_0(fp)
        else:
            raise ValueError(
                f"{path}[{key!r}]: .npy format version {version}; expected 1.0 or 2.0"
            )
        header_len = fp.tell()
    if dtype.hasobject:
        raise ValueError(
            f"{path}[{key!r}]: holds Python objects (pickled data), which are "
            f"never loaded; expected a uint8 array"
        )
    if dtype != np.uint8:
        raise ValueError(f"{path}[{key!r}]: dtype {dtype}; expected uint8")
    if info.compress_type == zipfile.ZIP_DEFLATED:
        most = info.compress_size * MAX_GZIP_RATIO + GZIP_SLACK
        if info.file_size > most:
            raise ValueError(
                f"{path}[{key!r}]: the zip directory records {info.file_size} "
                f"uncompressed bytes from {info.compress_size} compressed ones, "
                f"more than deflate can produce; the archive is corrupt or forged"
            )
    elif info.compress_type != zipfile.ZIP_STORED:
        raise ValueError(
            f"{path}[{key!r}]: compression method {info.compress_type}; "
            f"expected stored or deflated"
        )
    count = math.prod(shape)
    if count > MAX_PAYLOAD_BYTES or info.file_size != header_len + count:
        raise ValueError(
            f"{path}[{key!r}]: the header declares shape {shape} ({count} bytes), "
            f"the archive stores {info.file_size - header_len} bytes of data"
        )


def _checked(
    arrays: dict[str, np.ndarray],
    names: dict[str, str],
    image_shape: tuple[int, int],
    num_classes: int,
) -> Arrays:
    for split in ("train", "test"):
        xk, yk = "x_" + split, "y_" + split
        x, y = arrays[xk], arrays[yk]
        for key, arr in ((xk, x), (yk, y)):
            if arr.dtype != np.uint8:
                raise ValueError(f"{names[key]}: dtype {arr.dtype}; expected uint8")
        if x.ndim != 3 or x.shape[1:] != image_shape:
            raise ValueError(
                f"{names[xk]}: images of shape {x.shape}; expected "
                f"(N, {image_shape[0]}, {image_shape[1]})"
            )
        if x.shape[0] == 0:
            raise ValueError(f"{names[xk]}: holds no images; expected at least one")
        if y.ndim != 1:
            raise ValueError(f"{names[yk]}: labels of shape {y.shape}; expected (N,)")
        if y.shape[0] != x.shape[0]:
            raise ValueError(
                f"{names[xk]} holds {x.shape[0]} images but {names[yk]} holds "
                f"{y.shape[0]} labels; expected one label per image"
            )
        bad = np.flatnonzero(y >= num_classes)
        if bad.size:
            i = int(bad[0])
            raise ValueError(
                f"{names[yk]}: label {int(y[i])} at index {i} is out of range; "
                f"expected labels 0..{num_classes - 1}"
            )
    out = {
        key: np.require(arr, np.uint8, ["C_CONTIGUOUS", "WRITEABLE", "OWNDATA"])
        for key, arr in arrays.items()
    }
    return (out["x_train"], out["y_train"]), (out["x_test"], out["y_test"])
