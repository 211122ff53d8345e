"""CIFAR "python version" archives: the batches read without unpickling.

Each batch file is a Python 2 pickle (protocol 2) of a dict with the keys
`data` (a `uint8` array `(N, 3072)`: 1024 red, 1024 green, 1024 blue values
of each 32x32 image, row-major) and the label lists (`labels` for CIFAR-10,
`fine_labels` and `coarse_labels` for CIFAR-100), plus names and file names.
`_pickle.loads` reads it strictly. The batches are read from the `.tar.gz`
Keras downloads (never extracted to disk) or from a folder it was extracted
to.
"""

from __future__ import annotations

import tarfile
from pathlib import Path

import numpy as np

from . import _files, _pickle

def spec(name: str, title: str, file_name: str, folder: str, file_hash: str) -> _files.FileSpec:
    """The archive `file_name` from the CIFAR homepage, which extracts to `folder`."""
    return _files.FileSpec(
        name=name,
        title=title,
        file_name=file_name,
        url="https://www.cs.toronto.edu/~kriz/" + file_name,
        file_hash=file_hash,
        # Keras 3 keeps the archive as "<fname>_archive", tf.keras as "<dirname>.tar.gz".
        keras_files=(folder + "-target_archive", folder + ".tar.gz"),
        keras_dirs=(folder + "-target/" + folder, folder),
        local_names=(folder,),
    )


#: The largest batch file accepted (a real one is about 31 MB, CIFAR-100's train 155 MB).
MAX_MEMBER_BYTES = 400 << 20


def read_members(where: Path, folder: str, members: tuple[str, ...]) -> dict[str, bytes]:
    """The bytes of `folder/member` for each member, from a tarball or a directory."""
    out: dict[str, bytes] = {}
    if where.is_dir():
        base = where if (where / members[0]).is_file() else where / folder
        for m in members:
            f = base / m
            if not f.is_file():
                raise ValueError(f"{where}: no {folder}/{m}; expected the extracted CIFAR folder")
            if f.stat().st_size > MAX_MEMBER_BYTES:
                raise ValueError(f"{f}: {f.stat().st_size} bytes, more than a CIFAR batch")
            out[m] = f.read_bytes()
        return out
    try:
        with tarfile.open(where, mode="r:*") as tar:
            for m in members:
                try:
                    info = tar.getmember(f"{folder}/{m}")
                except KeyError:
                    raise ValueError(
                        f"{where}: the archive has no {folder}/{m}; expected Keras' "
                        f"CIFAR python-version archive"
                    ) from None
                if not info.isfile() or info.size > MAX_MEMBER_BYTES:
                    raise ValueError(f"{where}: {folder}/{m} is not a CIFAR batch file")
                stream = tar.extractfile(info)
                assert stream is not None
                out[m] = stream.read()
    except (tarfile.TarError, EOFError, OSError) as exc:
        if isinstance(exc, FileNotFoundError):
            raise
        raise ValueError(f"{where}: not a readable tar archive ({type(exc).__name__}: {exc})") from None
    return out


def load_batch(raw: bytes, what: str, label_key: str, num_classes: int) -> tuple[np.ndarray, list[int]]:
    """One batch: images `(N, 3, 32, 32)` uint8 and the list of labels under `label_key`."""
    d = _pickle.loads(raw, what)
    if not isinstance(d, dict):
        raise ValueError(f"{what}: expected a pickled dict, found {type(d).__name__}")
    d = {(k.decode("utf8") if isinstance(k, bytes) else k): v for k, v in d.items()}
    data, labels = d.get("data"), d.get(label_key)
    if not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.ndim != 2 or (
        data.shape[1] != 3072
    ):
        raise ValueError(f"{what}: 'data' must be a uint8 array (N, 3072)")
    if not isinstance(labels, list) or len(labels) != len(data):
        raise ValueError(f"{what}: {label_key!r} must be a list of {len(data)} labels")
    if not all(type(v) is int and 0 <= v < num_classes for v in labels):
        raise ValueError(f"{what}: {label_key!r} must hold ints 0..{num_classes - 1}")
    return data.reshape(data.shape[0], 3, 32, 32), labels


def channels_last(x: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(x.transpose(0, 2, 3, 1))
