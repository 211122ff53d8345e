"""Where a dataset is found: the search path, the cache, the download, the checksums.

`load(spec, path)` looks, in this order, in:

1. `path`, when given: a directory holding the four IDX files (or a data
   directory with a `<name>/` sub-directory, as for `PYCNN_DATA_DIR`), or a
   Keras `.npz` file. A bare file name that does not exist in the working
   directory (such as Keras' `path="mnist.npz"`) names a cache file, as in
   Keras: it is looked up in the pycnn cache and in Keras' cache, and the
   search goes on.
2. `$PYCNN_DATA_DIR/<name>/` (for instance `mnist/`, `fashion_mnist/`).
3. the pycnn cache: `$PYCNN_CACHE_DIR/<name>/`, else
   `$XDG_CACHE_HOME/pycnn/datasets/<name>/`, else
   `~/.cache/pycnn/datasets/<name>/`.
4. Keras' cache: `$KERAS_HOME/datasets/` or `~/.keras/datasets/`.
5. system directories, such as Debian's `/usr/share/datasets/fashion-mnist/`.
6. the public mirror Keras downloads from; the files are saved in the pycnn
   cache after their SHA-256 is verified.

Files in the two caches carry canonical names with known SHA-256 values and
are verified on every read; files supplied through `path` or
`PYCNN_DATA_DIR` are only validated structurally.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from . import _idx

#: The public mirror that Keras downloads its datasets from.
ORIGIN = "https://storage.googleapis.com/tensorflow/tf-keras-datasets/"
DOWNLOAD_TIMEOUT = 60.0
#: The most a download may bring (the largest dataset file, mnist.npz, is 11 MB): a mirror
#: sending more, or declaring more in Content-Length, is refused before the disk fills.
MAX_DOWNLOAD_BYTES = 1 << 30

# Opens a URL; replaced in tests, so that they never touch the network.
def _http_exception() -> type:
    import http.client

    return http.client.HTTPException


def _urlopen(url: str, timeout: float):
    """urllib's opener, imported on first use (it pulls in ssl: slow to import)."""
    import urllib.request

    return urllib.request.urlopen(url, timeout=timeout)


class DatasetNotFoundError(FileNotFoundError):
    """The dataset is in none of the places searched and could not be downloaded."""


class ChecksumError(ValueError):
    """A cached or downloaded file does not have its published SHA-256."""


@dataclass(frozen=True)
class RemoteFile:
    """A file on the download mirror and the SHA-256 of its bytes."""

    name: str
    url: str
    sha256: str


@dataclass(frozen=True)
class DatasetSpec:
    """Everything the search needs to know about one dataset."""

    name: str  # the cache sub-directory, such as "mnist"
    title: str  # for messages, such as "MNIST"
    data_dir_names: tuple[str, ...]  # sub-directories of PYCNN_DATA_DIR
    npz_names: tuple[str, ...]  # .npz names accepted in a directory
    remote: tuple[RemoteFile, ...]  # what a download fetches
    sha256: Mapping[str, str]  # canonical file name -> SHA-256, for the caches
    keras_cache: str  # file or directory relative to Keras' datasets dir
    system_dirs: tuple[str, ...] = ()


def cache_dir(spec: DatasetSpec) -> Path:
    """The pycnn cache directory of a dataset (it need not exist)."""
    root = os.environ.get("PYCNN_CACHE_DIR")
    if root:
        return Path(root).expanduser() / spec.name
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg) if xdg and os.path.isabs(xdg) else Path.home() / ".cache"
    return base / "pycnn" / "datasets" / spec.name


def keras_datasets_dir() -> Path:
    """Keras' cache directory: `$KERAS_HOME/datasets` or `~/.keras/datasets`."""
    home = os.environ.get("KERAS_HOME") or os.path.join("~", ".keras")
    return Path(home).expanduser() / "datasets"


def load(spec: DatasetSpec, path: str | os.PathLike[str] | None = None) -> _idx.Arrays:
    """Finds, verifies and reads a dataset; see the module docstring for the order.

    Returns:
        Tuple of NumPy arrays: `(x_train, y_train), (x_test, y_test)`.

    Raises:
        DatasetNotFoundError: found nowhere, and the download failed.
        ChecksumError: a cached or downloaded file has the wrong SHA-256.
        ValueError: a file that was found is not a valid dataset file.
    """
    looked: list[str] = []
    cache = cache_dir(spec)
    keras = keras_datasets_dir()
    save_as = None

    if path is not None:
        given = Path(os.fspath(path)).expanduser()
        if given.is_absolute() or given.exists() or len(given.parts) != 1:
            if not given.exists():
                raise DatasetNotFoundError(
                    f"{spec.title}: path={os.fspath(path)!r}: {given.absolute()} "
                    f"does not exist.\n" + _how_to_supply(spec, cache)
                )
            label = f"path={os.fspath(path)!r}"
            found = _try(given, spec, looked, label, False)
            # Also accept the root of a data directory, as for PYCNN_DATA_DIR.
            for sub in spec.data_dir_names if given.is_dir() else ():
                if found is None and (given / sub).is_dir():
                    found = _try(given / sub, spec, looked, label, False)
            if found is None:
                raise DatasetNotFoundError(
                    f"{spec.title}: {looked[-1]}.\n" + _how_to_supply(spec, cache)
                )
            return found
        # A bare cache file name, as in Keras' load_data(path="mnist.npz").
        name = given.name
        if name.endswith(".npz") and len(spec.remote) == 1:
            save_as = name
        for where, label in ((cache / name, "pycnn cache"), (keras / name, "Keras cache")):
            found = _try(where, spec, looked, f"path={name!r} in the {label}", True)
            if found is not None:
                return found

    data_dir = os.environ.get("PYCNN_DATA_DIR")
    if data_dir:
        for sub in spec.data_dir_names:
            where = Path(data_dir).expanduser() / sub
            found = _try(where, spec, looked, "PYCNN_DATA_DIR", False)
            if found is not None:
                return found
    else:
        looked.append("PYCNN_DATA_DIR: not set")

    steps = [(cache, "pycnn cache", True), (keras / spec.keras_cache, "Keras cache", True)]
    steps += [(Path(d), "system directory", False) for d in spec.system_dirs]
    for where, label, verify in steps:
        found = _try(where, spec, looked, label, verify)
        if found is not None:
            return found

    return _download(spec, cache, save_as, looked)


def _try(
    where: Path, spec: DatasetSpec, looked: list[str], label: str, verify: bool
) -> _idx.Arrays | None:
    """Loads the dataset from `where` (a directory or an .npz file), or notes why not."""
    shown = where.absolute()
    if where.is_file():
        expected = _expected_sha256(spec, where.name) if verify else None
        if expected is not None:
            verify_sha256(where, expected)
        return _idx.load_npz(where)
    if not where.is_dir():
        looked.append(f"{label}: {shown} (not found)")
        return None
    files: dict[str, Path] = {}
    missing = []
    for key, (stem, _) in _idx.IDX_FILES.items():
        names = _idx.idx_file_names(stem)
        if verify:
            names = tuple(n for n in names if n in spec.sha256)
        hit = next((where / n for n in names if (where / n).is_file()), None)
        if hit is None:
            missing.append(names[0] if names else stem)
        else:
            files[key] = hit
    if not missing:
        if verify:
            for file in files.values():
                verify_sha256(file, spec.sha256[file.name])
        return _idx.load_idx(files)
    npz_names = [n for n in spec.npz_names if not verify or n in spec.sha256]
    for name in npz_names:
        if (where / name).is_file():
            return _try(where / name, spec, looked, label, verify)
    if files:
        looked.append(f"{label}: {shown} (incomplete: missing {', '.join(missing)})")
    else:
        wanted = " nor ".join(["the four IDX files"] + npz_names)
        looked.append(f"{label}: {shown} (holds neither {wanted})")
    return None


def _expected_sha256(spec: DatasetSpec, name: str) -> str | None:
    if name in spec.sha256:
        return spec.sha256[name]
    if name.endswith(".npz") and len(spec.remote) == 1:
        return spec.remote[0].sha256  # Keras' load_data(path=...) renames mnist.npz
    return None


def _digest_for(expected: str | None):
    """SHA-256, or MD5 for a 32-digit hash (as Keras' `get_file` guesses the algorithm)."""
    return hashlib.md5() if expected is not None and len(expected) == 32 else hashlib.sha256()


def sha256_of(path: Path, expected: str = "0" * 64) -> str:
    """The hex SHA-256 of a file's bytes (MD5 when `expected` is a 32-digit MD5)."""
    digest = _digest_for(expected)
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def verify_sha256(path: Path, expected: str) -> None:
    """Raises `ChecksumError` naming `path` unless its SHA-256 is `expected`."""
    actual = sha256_of(path, expected)
    if actual != expected:
        raise ChecksumError(
            f"{path}: SHA-256 mismatch: expected {expected}, got {actual}. "
            f"The cached file is corrupt or was modified; delete it, and "
            f"load_data() will download it again."
        )


class _DownloadFailed(Exception):
    pass


def _download(
    spec: DatasetSpec, cache: Path, save_as: str | None, looked: list[str]
) -> _idx.Arrays:
    for remote in spec.remote:
        dest = cache / (save_as or remote.name)
        if dest.is_file():  # a piece saved by an earlier, interrupted call
            verify_sha256(dest, remote.sha256)
            continue
        try:
            download_file(remote, dest)
        except _DownloadFailed as exc:
            looked.append(f"download: {remote.url} ({exc})")
            raise DatasetNotFoundError(
                f"{spec.title} was not found, and downloading it failed. Looked in:\n"
                + "".join(f"  - {line}\n" for line in looked)
                + _how_to_supply(spec, cache)
            ) from exc.__cause__
    if save_as is not None:
        return _idx.load_npz(cache / save_as)
    found = _try(cache, spec, looked, "pycnn cache", True)
    assert found is not None
    return found


def download_file(remote: RemoteFile, dest: Path) -> None:
    """Downloads `remote` to `dest` atomically, verifying its SHA-256.

    The bytes go to a temporary file in `dest`'s directory, which is renamed
    to `dest` only once complete and verified; on any failure it is removed.

    Raises:
        ChecksumError: the downloaded bytes have the wrong SHA-256.
        _DownloadFailed: the network or the file system failed.
    """
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".part")
    except OSError as exc:
        raise _DownloadFailed(f"cannot write to {dest.parent}: {exc}") from exc
    received = 0
    try:
        digest = _digest_for(remote.sha256)
        with os.fdopen(fd, "wb") as out:
            with _urlopen(remote.url, timeout=DOWNLOAD_TIMEOUT) as response:
                headers = getattr(response, "headers", None)
                length = headers.get("Content-Length") if headers is not None else None
                if length is not None and str(length).isdigit() and \
                        int(length) > MAX_DOWNLOAD_BYTES:
                    raise _DownloadFailed(f"the server announces {length} bytes, more "
                                          f"than the {MAX_DOWNLOAD_BYTES}-byte limit")
                while chunk := response.read(1 << 16):
                    if received + len(chunk) > MAX_DOWNLOAD_BYTES:
                        raise _DownloadFailed(f"more than the {MAX_DOWNLOAD_BYTES}-byte "
                                              f"limit received")
                    out.write(chunk)
                    digest.update(chunk)
                    received += len(chunk)
            out.flush()
            os.fsync(out.fileno())
        if length is not None and str(length).isdigit() and received != int(length):
            raise _DownloadFailed(f"incomplete: received {received} of {length} bytes")
        actual = digest.hexdigest()
        if remote.sha256 is not None and actual != remote.sha256:   # None: no published hash
            raise ChecksumError(
                f"{remote.url}: the downloaded {received} bytes have SHA-256 "
                f"{actual}, expected {remote.sha256}; nothing was saved to {dest}"
            )
        os.replace(tmp, dest)
        _fsync_directory(dest.parent)
    except (OSError, _http_exception(), ValueError) as exc:
        _remove(tmp)
        if isinstance(exc, ChecksumError):
            raise
        raise _DownloadFailed(
            f"failed after {received} bytes: {type(exc).__name__}: {exc}"
        ) from exc
    except BaseException:
        _remove(tmp)
        raise


def _fsync_directory(directory: Path) -> None:
    """Puts the rename on disk (as pycnn.utils.file_io does; this package stands alone)."""
    try:
        fd = os.open(directory, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass   # file systems that cannot fsync a directory
    finally:
        os.close(fd)


def _remove(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


def _how_to_supply(spec: DatasetSpec, cache: Path) -> str:
    files = ", ".join(stem + ".gz" for stem, _ in _idx.IDX_FILES.values())
    return (
        f"To supply {spec.title} without a network, either pass path= a directory "
        f"holding {files} (gzip-compressed or raw), or a Keras .npz file with the "
        f"arrays {', '.join(_idx.NPZ_KEYS)}; or set PYCNN_DATA_DIR to a directory "
        f"whose {spec.data_dir_names[0]}/ sub-directory holds them; or copy "
        f"{', '.join(r.name for r in spec.remote)} into {cache}."
    )
