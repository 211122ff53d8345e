"""Where a single-file dataset (an `.npz`, a `.json`, a `.tar.gz`) is found.

The same search as MNIST's (`_fetch`), for datasets that Keras keeps in one
file (or, for CIFAR, an archive and the folder Keras extracts it to):

1. `path`, when it names an existing file or directory (not verified
   against the checksum, validated by the reader). A bare file name that
   does not exist in the working directory (such as Keras'
   `path="imdb.npz"`) names a cache file, as in Keras: it is looked up in
   the pycnn cache and in Keras' cache, and downloaded under that name.
2. `$PYCNN_DATA_DIR/<name>/` holding one of the accepted names.
3. the pycnn cache (`_fetch.cache_dir`): the canonical file, verified.
4. Keras' cache (`~/.keras/datasets/`): Keras' file names, verified; or a
   folder Keras extracted (CIFAR), validated by the reader.
5. the URL Keras downloads from: saved atomically in the pycnn cache once
   its hash (SHA-256, or MD5 where Keras pins an MD5) is verified.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from . import _fetch


@dataclass(frozen=True)
class FileSpec:
    """One dataset file, where Keras gets it, and the names it goes by."""

    name: str  # sub-directory of the caches and of PYCNN_DATA_DIR, such as "imdb"
    title: str  # for messages
    file_name: str  # canonical name in the pycnn cache
    url: str
    file_hash: str  # SHA-256 (64 digits) or MD5 (32 digits), as Keras pins
    keras_files: tuple[str, ...] = ()  # files in Keras' cache (verified)
    keras_dirs: tuple[str, ...] = ()  # extracted folders in Keras' cache
    local_names: tuple[str, ...] = ()  # more names accepted in PYCNN_DATA_DIR/<name>/


def on_keras_mirror(name: str, title: str, file_name: str, file_hash: str) -> FileSpec:
    """A file Keras downloads from its mirror (`_fetch.ORIGIN`) and caches under its own name."""
    return FileSpec(name=name, title=title, file_name=file_name,
                    url=_fetch.ORIGIN + file_name, file_hash=file_hash, keras_files=(file_name,))


def locate(spec: FileSpec, path: str | os.PathLike[str] | None = None) -> Path:
    """Returns a local copy of the dataset: a file (or an extracted folder); see the module doc.

    Raises:
        DatasetNotFoundError: nowhere to be found and the download failed.
        ChecksumError: a cached or downloaded file has the wrong hash.
    """
    looked: list[str] = []
    cache = _fetch.cache_dir(spec)  # type: ignore[arg-type]
    keras = _fetch.keras_datasets_dir()
    save_as = spec.file_name

    if path is not None:
        given = Path(os.fspath(path)).expanduser()
        if given.is_absolute() or given.exists() or len(given.parts) != 1:
            if not given.exists():
                raise _fetch.DatasetNotFoundError(
                    f"{spec.title}: path={os.fspath(path)!r}: {given.absolute()} "
                    f"does not exist.\n" + _how_to_supply(spec, cache)
                )
            if given.is_dir():
                for name in (spec.file_name,) + spec.local_names:
                    if (given / name).exists():
                        return given / name
            return given
        save_as = given.name
        for where, label in ((cache / save_as, "pycnn cache"), (keras / save_as, "Keras cache")):
            if where.is_file():
                _fetch.verify_sha256(where, spec.file_hash)
                return where
            looked.append(f"path={save_as!r} in the {label}: {where} (not found)")

    data_dir = os.environ.get("PYCNN_DATA_DIR")
    if data_dir:
        where = Path(data_dir).expanduser() / spec.name
        for name in (spec.file_name,) + spec.local_names:
            if (where / name).exists():
                return where / name
        looked.append(f"PYCNN_DATA_DIR: {where} (holds none of "
                      f"{', '.join((spec.file_name,) + spec.local_names)})")
    else:
        looked.append("PYCNN_DATA_DIR: not set")

    if (cache / spec.file_name).is_file():
        _fetch.verify_sha256(cache / spec.file_name, spec.file_hash)
        return cache / spec.file_name
    looked.append(f"pycnn cache: {cache / spec.file_name} (not found)")
    for name in spec.keras_files:
        if (keras / name).is_file():
            _fetch.verify_sha256(keras / name, spec.file_hash)
            return keras / name
        looked.append(f"Keras cache: {keras / name} (not found)")
    for name in spec.keras_dirs:
        if (keras / name).is_dir():
            return keras / name
        looked.append(f"Keras cache: {keras / name} (not found)")

    dest = cache / save_as
    remote = _fetch.RemoteFile(save_as, spec.url, spec.file_hash)
    try:
        _fetch.download_file(remote, dest)
    except _fetch._DownloadFailed as exc:
        looked.append(f"download: {spec.url} ({exc})")
        raise _fetch.DatasetNotFoundError(
            f"{spec.title} was not found, and downloading it failed. Looked in:\n"
            + "".join(f"  - {line}\n" for line in looked)
            + _how_to_supply(spec, cache)
        ) from exc.__cause__
    return dest


def _how_to_supply(spec: FileSpec, cache: Path) -> str:
    return (
        f"To supply {spec.title} without a network, pass path= the file "
        f"{spec.file_name} (downloaded from {spec.url}), or set PYCNN_DATA_DIR to "
        f"a directory whose {spec.name}/ sub-directory holds it, or copy it into {cache}."
    )
