"""Tests of pycnn.datasets: parsers, search order, cache, download, checksums.

No test touches the network: the URL opener is replaced for every test, and
HOME, the working directory and every environment variable the search reads
point into a temporary directory.
"""

from __future__ import annotations

import ast
import dataclasses
import gzip
import hashlib
import io
import os
import re
import struct
import sys
from pathlib import Path

import numpy as np
import pytest

import pycnn.datasets
from pycnn.datasets import _fetch, _idx, fashion_mnist, mnist
from pycnn.datasets import ChecksumError, DatasetNotFoundError

from datadir import DATA_DIR as SHARED_DATA
from datadir import isolate_dataset_search, no_network
DEBIAN_FASHION = Path("/usr/share/datasets/fashion-mnist")
STEMS = [stem for stem, _ in _idx.IDX_FILES.values()]
GZ_NAMES = [stem + ".gz" for stem in STEMS]

needs_mnist = pytest.mark.skipif(
    not (SHARED_DATA / "mnist" / "train-images-idx3-ubyte.gz").is_file(),
    reason=f"the real MNIST files are not in {SHARED_DATA / 'mnist'}",
)


# --------------------------------------------------------------------------
# helpers


def idx_bytes(arr: np.ndarray, magic: int | None = None) -> bytes:
    magic = (0x0800 | arr.ndim) if magic is None else magic
    return struct.pack(">I", magic) + struct.pack(f">{arr.ndim}I", *arr.shape) + arr.tobytes()


def make_arrays(n_train: int = 6, n_test: int = 4, seed: int = 0):
    rng = np.random.default_rng(seed)
    x_train = rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8)
    x_test = rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8)
    y_train = rng.integers(0, 10, n_train, dtype=np.uint8)
    y_test = rng.integers(0, 10, n_test, dtype=np.uint8)
    return (x_train, y_train), (x_test, y_test)


def as_dict(data) -> dict[str, np.ndarray]:
    (x_train, y_train), (x_test, y_test) = data
    return {"x_train": x_train, "y_train": y_train, "x_test": x_test, "y_test": y_test}


def write_idx_dir(directory: Path, data, gz: bool = True) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    for key, arr in as_dict(data).items():
        stem = _idx.IDX_FILES[key][0]
        raw = idx_bytes(arr)
        if gz:
            (directory / (stem + ".gz")).write_bytes(gzip.compress(raw, mtime=0))
        else:
            (directory / stem).write_bytes(raw)
    return directory


def write_npz(path: Path, data) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(path, **as_dict(data))
    return path


def assert_same(got, expected) -> None:
    for key, arr in as_dict(got).items():
        want = as_dict(expected)[key]
        assert arr.dtype == np.uint8, key
        assert arr.shape == want.shape, key
        np.testing.assert_array_equal(arr, want, err_msg=key)
        assert arr.flags.c_contiguous and arr.flags.writeable and arr.flags.owndata, key
        assert not isinstance(arr, np.memmap), key


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def patch_spec(monkeypatch, module, **changes) -> _fetch.DatasetSpec:
    spec = dataclasses.replace(module._SPEC, **changes)
    monkeypatch.setattr(module, "_SPEC", spec)
    return spec


class FakeResponse:
    """Stands in for urlopen()'s response: serves `body` in small chunks."""

    def __init__(self, body: bytes, fail_after: int | None = None, length: int | None = None,
                 on_read=None):
        self._stream = io.BytesIO(body)
        self._fail_after = fail_after
        self._on_read = on_read
        self.headers = {"Content-Length": str(len(body) if length is None else length)}

    def read(self, n: int = -1) -> bytes:
        if self._on_read is not None:
            self._on_read()
        if self._fail_after is not None and self._stream.tell() >= self._fail_after:
            raise ConnectionResetError("connection reset by peer (simulated)")
        return self._stream.read(min(n, 1000) if n > 0 else 1000)

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        return None


class FakeOpener:
    def __init__(self, bodies: dict[str, bytes], **response_kwargs):
        self.bodies = bodies
        self.kwargs = response_kwargs
        self.urls: list[str] = []

    def __call__(self, url: str, timeout: float | None = None) -> FakeResponse:
        self.urls.append(url)
        return FakeResponse(self.bodies[url.rsplit("/", 1)[1]], **self.kwargs)


@pytest.fixture(autouse=True)
def isolated(tmp_path, monkeypatch):
    """No network, and every place the search looks is inside tmp_path."""
    work = tmp_path / "work"
    work.mkdir()
    isolate_dataset_search(monkeypatch, tmp_path / "home", work)
    patch_spec(monkeypatch, fashion_mnist, system_dirs=(str(tmp_path / "usr-share"),))
    return tmp_path


def pycnn_cache(tmp_path: Path, name: str) -> Path:
    return tmp_path / "home" / ".cache" / "pycnn" / "datasets" / name


def keras_cache(tmp_path: Path) -> Path:
    return tmp_path / "home" / ".keras" / "datasets"


# --------------------------------------------------------------------------
# the real MNIST files

TRAIN_COUNTS = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
TEST_COUNTS = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]


@pytest.fixture(scope="module")
def real_mnist():
    return mnist.load_data(path=SHARED_DATA / "mnist")


def check_real_mnist(data) -> None:
    (x_train, y_train), (x_test, y_test) = data
    assert x_train.shape == (60000, 28, 28) and y_train.shape == (60000,)
    assert x_test.shape == (10000, 28, 28) and y_test.shape == (10000,)
    for arr in (x_train, y_train, x_test, y_test):
        assert arr.dtype == np.uint8
        assert arr.flags.c_contiguous and arr.flags.writeable and arr.flags.owndata
    assert y_train[:10].tolist() == [5, 0, 4, 1, 9, 2, 1, 3, 1, 4]
    assert y_test[:10].tolist() == [7, 2, 1, 0, 4, 1, 4, 9, 5, 9]
    assert np.bincount(y_train, minlength=10).tolist() == TRAIN_COUNTS
    assert np.bincount(y_test, minlength=10).tolist() == TEST_COUNTS
    assert x_train.max() == 255 and x_train[0, 0, 0] == 0


@needs_mnist
def test_real_mnist_from_path(real_mnist):
    check_real_mnist(real_mnist)


@needs_mnist
def test_real_mnist_from_pycnn_data_dir(monkeypatch, real_mnist):
    monkeypatch.setenv("PYCNN_DATA_DIR", str(SHARED_DATA))
    data = mnist.load_data()
    check_real_mnist(data)
    assert_same(data, real_mnist)


@needs_mnist
def test_real_mnist_from_data_root_as_path():
    (x_train, y_train), _ = mnist.load_data(path=SHARED_DATA)
    assert x_train.shape == (60000, 28, 28) and y_train[:3].tolist() == [5, 0, 4]


@needs_mnist
def test_real_mnist_arrays_are_independent(real_mnist):
    (x_train, _), _ = real_mnist
    again = mnist.load_data(path=str(SHARED_DATA / "mnist"))
    x_train[0, 0, 0] = 17
    assert again[0][0][0, 0, 0] == 0
    x_train[0, 0, 0] = 0


@pytest.mark.skipif(not (DEBIAN_FASHION / "train-images-idx3-ubyte.gz").is_file(),
                    reason="Debian's dataset-fashion-mnist is not installed")
def test_debian_fashion_mnist_files():
    (x_train, y_train), (x_test, y_test) = fashion_mnist.load_data(path=DEBIAN_FASHION)
    assert x_train.shape == (60000, 28, 28) and x_test.shape == (10000, 28, 28)
    assert y_train[:10].tolist() == [9, 0, 0, 3, 0, 2, 7, 2, 5, 5]
    assert y_test[:10].tolist() == [9, 2, 1, 1, 6, 1, 4, 6, 5, 7]
    assert np.bincount(y_train).tolist() == [6000] * 10
    assert np.bincount(y_test).tolist() == [1000] * 10


# --------------------------------------------------------------------------
# small files: formats that are accepted


@pytest.mark.parametrize("gz", [True, False], ids=["gzip", "raw"])
def test_small_idx_directory(tmp_path, gz):
    data = make_arrays()
    directory = write_idx_dir(tmp_path / "d", data, gz=gz)
    assert_same(mnist.load_data(path=directory), data)
    assert_same(fashion_mnist.load_data(path=str(directory)), data)


def test_mixed_and_gunzip_n_names(tmp_path):
    data = make_arrays(seed=1)
    directory = write_idx_dir(tmp_path / "d", data, gz=True)
    raw = gzip.decompress((directory / "train-images-idx3-ubyte.gz").read_bytes())
    (directory / "train-images-idx3-ubyte.gz").unlink()
    (directory / "train-images.idx3-ubyte").write_bytes(raw)  # what `gunzip -N` restores
    assert_same(mnist.load_data(path=directory), data)


def test_small_npz_file_and_relative_path(tmp_path):
    data = make_arrays(seed=2)
    write_npz(Path.cwd() / "sub" / "mine.npz", data)
    assert_same(mnist.load_data(path="sub/mine.npz"), data)
    assert_same(fashion_mnist.load_data(path=Path.cwd() / "sub" / "mine.npz"), data)


def test_npz_inside_data_dir(tmp_path, monkeypatch):
    data = make_arrays(seed=3)
    write_npz(tmp_path / "data" / "mnist" / "mnist.npz", data)
    write_npz(tmp_path / "data" / "fashion-mnist" / "fashion-mnist.npz", data)
    monkeypatch.setenv("PYCNN_DATA_DIR", str(tmp_path / "data"))
    assert_same(mnist.load_data(), data)
    assert_same(fashion_mnist.load_data(), data)


def test_fortran_order_npz_is_returned_c_contiguous(tmp_path):
    data = as_dict(make_arrays(seed=4))
    data["x_train"] = np.asfortranarray(data["x_train"])
    path = tmp_path / "f.npz"
    np.savez(path, **data)
    (x_train, _), _ = mnist.load_data(path=path)
    assert x_train.flags.c_contiguous and x_train.flags.owndata
    np.testing.assert_array_equal(x_train, data["x_train"])


# --------------------------------------------------------------------------
# corrupt IDX files


def _corrupt_idx(directory: Path, case: str) -> str:
    """Damages one file of a valid gzip IDX directory; returns the file's name."""
    name = {"labels": "train-labels-idx1-ubyte.gz", "test": "t10k-labels-idx1-ubyte.gz"}.get(
        case.split(":")[0], "train-images-idx3-ubyte.gz")
    path = directory / name
    raw = gzip.decompress(path.read_bytes())
    if case == "images:wrong magic":
        raw = struct.pack(">I", 0x0801) + raw[4:]
    elif case == "labels:wrong magic":
        raw = struct.pack(">I", 0x0803) + raw[4:]
    elif case == "images:truncated payload":
        raw = raw[:-5]
    elif case == "images:truncated header":
        raw = raw[:9]
    elif case == "images:extra bytes":
        raw = raw + b"\0\0\0"
    elif case == "images:huge dims":
        raw = struct.pack(">IIII", 0x0803, 0xFFFFFFFF, 0xFFFFFFFF, 0xFFFFFFFF) + raw[16:]
    elif case == "images:empty":
        raw = b""
    elif case == "images:bad gzip":
        comp = bytearray(path.read_bytes())
        comp[len(comp) // 2] ^= 0xFF
        comp[-8] ^= 0xFF  # the CRC, in case the flipped byte still inflates
        path.write_bytes(bytes(comp))
        return name
    elif case == "images:truncated gzip":
        path.write_bytes(path.read_bytes()[:-20])
        return name
    elif case == "images:not gzip after magic":
        path.write_bytes(b"\x1f\x8b" + b"garbage" * 5)
        return name
    elif case == "images:32x32":
        raw = idx_bytes(np.zeros((6, 32, 32), np.uint8))
    elif case == "labels:count mismatch":
        raw = idx_bytes(np.zeros(5, np.uint8))
    elif case == "test:out of range":
        labels = np.frombuffer(raw[8:], np.uint8).copy()
        labels[2] = 10
        raw = raw[:8] + labels.tobytes()
    else:
        raise AssertionError(case)
    path.write_bytes(gzip.compress(raw))
    return name


CORRUPT_IDX = {
    "images:wrong magic": "expected 0x00000803",
    "labels:wrong magic": "expected 0x00000801",
    "images:truncated payload": "truncated",
    "images:truncated header": "inside the header",
    "images:extra bytes": "extra bytes",
    "images:huge dims": "limit",
    "images:empty": "inside the header",
    "images:bad gzip": "gzip",
    "images:truncated gzip": "gzip",
    "images:not gzip after magic": "gzip",
    "images:32x32": r"expected \(N, 28, 28\)",
    "labels:count mismatch": "one label per image",
    "test:out of range": "label 10 at index 2 is out of range; expected labels 0..9",
}


@pytest.mark.parametrize("case", list(CORRUPT_IDX))
def test_corrupt_gzip_idx_raises_value_error_naming_the_file(tmp_path, case):
    directory = write_idx_dir(tmp_path / "d", make_arrays())
    name = _corrupt_idx(directory, case)
    with pytest.raises(ValueError, match=re.escape(name)) as info:
        mnist.load_data(path=directory)
    assert re.search(CORRUPT_IDX[case], str(info.value)), str(info.value)


@pytest.mark.parametrize("case", ["wrong magic", "truncated", "extra", "huge dims"])
def test_corrupt_raw_idx(tmp_path, case):
    directory = write_idx_dir(tmp_path / "d", make_arrays(), gz=False)
    path = directory / "t10k-images-idx3-ubyte"
    raw = path.read_bytes()
    raw = {
        "wrong magic": b"\0\0\x0c\x03" + raw[4:],
        "truncated": raw[:-1],
        "extra": raw + b"\0",
        "huge dims": struct.pack(">IIII", 0x0803, 0x7FFFFFFF, 28, 28) + raw[16:],
    }[case]
    path.write_bytes(raw)
    with pytest.raises(ValueError, match=re.escape(str(path))):
        fashion_mnist.load_data(path=directory)


def test_huge_declared_gzip_dims_fail_before_reading(tmp_path, monkeypatch):
    """A header declaring more than the limit fails at once, whatever follows."""
    path = tmp_path / "big.gz"
    path.write_bytes(gzip.compress(struct.pack(">IIII", 0x0803, 2_000_000, 28, 28)))
    monkeypatch.setattr(np, "empty", None)  # any allocation attempt would crash
    with pytest.raises(ValueError, match=re.escape(str(path)) + ".*limit"):
        _idx.read_idx(path, _idx.IMAGES_MAGIC)


# --------------------------------------------------------------------------
# corrupt .npz files

UNPICKLED: list[str] = []


def _record_unpickling() -> str:
    UNPICKLED.append("unpickled!")
    return "payload"


class _Evil:
    def __reduce__(self):
        return (_record_unpickling, ())


def _npz_case(path: Path, case: str) -> None:
    data = as_dict(make_arrays())
    if case == "pickled object array":
        data["y_train"] = np.array([_Evil()] * 6, dtype=object)
        np.savez(path, **data)
        return
    if case == "missing key":
        del data["y_test"]
    elif case == "wrong dtype":
        data["x_train"] = data["x_train"].astype(np.float32)
    elif case == "wrong label dtype":
        data["y_test"] = data["y_test"].astype(np.int64)
    elif case == "wrong shape":
        data["x_test"] = data["x_test"].reshape(4, 784)
    elif case == "count mismatch":
        data["y_train"] = data["y_train"][:5]
    elif case == "labels out of range":
        data["y_train"][3] = 200
    elif case == "not a zip":
        path.write_bytes(b"this is not an npz file")
        return
    elif case == "truncated zip":
        np.savez(path, **data)
        path.write_bytes(path.read_bytes()[:-100])
        return
    elif case == "lying npy header":
        buf = io.BytesIO()
        np.lib.format.write_array_header_1_0(
            buf, {"descr": "|u1", "fortran_order": False, "shape": (100000, 28, 28)})
        import zipfile
        with zipfile.ZipFile(path, "w") as archive:
            for key, arr in data.items():
                member = io.BytesIO()
                np.save(member, arr)
                blob = member.getvalue()
                if key == "x_train":
                    blob = buf.getvalue() + arr.tobytes()
                archive.writestr(key + ".npy", blob)
        return
    else:
        raise AssertionError(case)
    np.savez(path, **data)


NPZ_CASES = {
    "pickled object array": "never loaded",
    "missing key": "no array 'y_test'",
    "wrong dtype": "dtype float32; expected uint8",
    "wrong label dtype": "dtype int64; expected uint8",
    "wrong shape": r"expected \(N, 28, 28\)",
    "count mismatch": "one label per image",
    "labels out of range": "label 200 at index 3",
    "not a zip": "not a readable .npz",
    "truncated zip": "not a readable .npz",
    "lying npy header": r"shape \(100000, 28, 28\)",
}


@pytest.mark.parametrize("case", list(NPZ_CASES))
def test_corrupt_npz_raises_value_error_naming_the_file(tmp_path, case):
    path = tmp_path / "bad.npz"
    _npz_case(path, case)
    with pytest.raises(ValueError, match=re.escape(str(path))) as info:
        mnist.load_data(path=path)
    assert re.search(NPZ_CASES[case], str(info.value)), str(info.value)
    assert UNPICKLED == []


# --------------------------------------------------------------------------
# search order


def test_path_wins_over_every_other_place(tmp_path, monkeypatch):
    mine = make_arrays(n_train=3, seed=10)
    write_idx_dir(tmp_path / "mine", mine)
    write_idx_dir(tmp_path / "data" / "mnist", make_arrays(n_train=4, seed=11))
    monkeypatch.setenv("PYCNN_DATA_DIR", str(tmp_path / "data"))
    assert_same(mnist.load_data(path=tmp_path / "mine"), mine)


def test_search_order_for_fashion_mnist(tmp_path, monkeypatch):
    """data dir > pycnn cache > Keras cache > system dir, each found in turn."""
    layers = {
        "data": write_idx_dir(tmp_path / "data" / "fashion_mnist", make_arrays(n_train=1)),
        "cache": write_idx_dir(pycnn_cache(tmp_path, "fashion_mnist"), make_arrays(n_train=2)),
        "keras": write_idx_dir(keras_cache(tmp_path) / "fashion-mnist", make_arrays(n_train=3)),
        "system": write_idx_dir(tmp_path / "usr-share", make_arrays(n_train=4)),
    }
    # The caches are checksummed: pin the hashes of this test's files.
    sums = {name: sha256(layers["cache"] / name) for name in GZ_NAMES}
    keras_sums = {name: sha256(layers["keras"] / name) for name in GZ_NAMES}
    patch_spec(monkeypatch, fashion_mnist, sha256=sums)
    monkeypatch.setenv("PYCNN_DATA_DIR", str(tmp_path / "data"))
    assert len(fashion_mnist.load_data()[0][0]) == 1
    monkeypatch.delenv("PYCNN_DATA_DIR")
    assert len(fashion_mnist.load_data()[0][0]) == 2
    (pycnn_cache(tmp_path, "fashion_mnist") / GZ_NAMES[0]).unlink()
    with pytest.raises(ChecksumError, match="fashion-mnist"):  # Keras' files differ
        fashion_mnist.load_data()
    patch_spec(monkeypatch, fashion_mnist, sha256=keras_sums)
    assert len(fashion_mnist.load_data()[0][0]) == 3
    for name in GZ_NAMES:
        (keras_cache(tmp_path) / "fashion-mnist" / name).unlink()
    assert len(fashion_mnist.load_data()[0][0]) == 4  # not checksummed


def test_fashion_mnist_dash_data_dir(tmp_path, monkeypatch):
    data = make_arrays(seed=5)
    write_idx_dir(tmp_path / "data" / "fashion-mnist", data, gz=False)
    monkeypatch.setenv("PYCNN_DATA_DIR", str(tmp_path / "data"))
    assert_same(fashion_mnist.load_data(), data)


def test_cache_dir_environment_variables(tmp_path, monkeypatch):
    spec = mnist._SPEC
    assert _fetch.cache_dir(spec) == pycnn_cache(tmp_path, "mnist")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert _fetch.cache_dir(spec) == tmp_path / "xdg" / "pycnn" / "datasets" / "mnist"
    monkeypatch.setenv("PYCNN_CACHE_DIR", str(tmp_path / "pc"))
    assert _fetch.cache_dir(spec) == tmp_path / "pc" / "mnist"
    assert _fetch.keras_datasets_dir() == keras_cache(tmp_path)
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "kh"))
    assert _fetch.keras_datasets_dir() == tmp_path / "kh" / "datasets"


def test_keras_cache_mnist_npz_and_bare_path_name(tmp_path, monkeypatch):
    data = make_arrays(seed=6)
    npz = write_npz(keras_cache(tmp_path) / "mnist.npz", data)
    remote = dataclasses.replace(mnist._SPEC.remote[0], sha256=sha256(npz))
    patch_spec(monkeypatch, mnist, remote=(remote,), sha256={"mnist.npz": sha256(npz)})
    assert_same(mnist.load_data(), data)
    # Keras' load_data(path="mnist.npz") names a file in the cache.
    assert_same(mnist.load_data(path="mnist.npz"), data)
    # A file in the working directory comes first.
    other = make_arrays(seed=7)
    write_npz(Path.cwd() / "mnist.npz", other)
    assert_same(mnist.load_data(path="mnist.npz"), other)


def test_missing_explicit_path_raises_file_not_found(tmp_path):
    with pytest.raises(DatasetNotFoundError, match=re.escape(str(tmp_path / "nope"))):
        mnist.load_data(path=tmp_path / "nope")
    with pytest.raises(FileNotFoundError, match="no_such_dir"):
        mnist.load_data(path="no_such_dir/mnist.npz")


def test_incomplete_directory_names_the_missing_file(tmp_path):
    directory = write_idx_dir(tmp_path / "d", make_arrays())
    (directory / "t10k-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(DatasetNotFoundError, match="missing t10k-labels-idx1-ubyte"):
        mnist.load_data(path=directory)


# --------------------------------------------------------------------------
# download, cache, checksums


def _mnist_remote(monkeypatch, body: bytes, sha: str | None = None) -> None:
    sha = hashlib.sha256(body).hexdigest() if sha is None else sha
    remote = dataclasses.replace(mnist._SPEC.remote[0], sha256=sha)
    patch_spec(monkeypatch, mnist, remote=(remote,), sha256={"mnist.npz": sha})


def _npz_body(tmp_path: Path, data) -> bytes:
    return write_npz(tmp_path / "served" / "mnist.npz", data).read_bytes()


def test_download_is_verified_and_cached_atomically(tmp_path, monkeypatch):
    data = make_arrays(seed=8)
    body = _npz_body(tmp_path, data)
    _mnist_remote(monkeypatch, body)
    cache = pycnn_cache(tmp_path, "mnist")
    seen_partial = []

    def during_read():  # the final name never appears before the download ends
        assert not (cache / "mnist.npz").exists()
        seen_partial.extend(p.name for p in cache.iterdir())

    opener = FakeOpener({"mnist.npz": body}, on_read=during_read)
    monkeypatch.setattr(_fetch, "_urlopen", opener)
    assert_same(mnist.load_data(), data)
    assert opener.urls == [_fetch.ORIGIN + "mnist.npz"]
    assert any(name.endswith(".part") for name in seen_partial)
    assert sorted(p.name for p in cache.iterdir()) == ["mnist.npz"]
    assert (cache / "mnist.npz").read_bytes() == body
    # The second call reads the cache, without the network.
    monkeypatch.setattr(_fetch, "_urlopen", no_network)
    assert_same(mnist.load_data(), data)


def test_download_under_keras_style_name(tmp_path, monkeypatch):
    data = make_arrays(seed=9)
    body = _npz_body(tmp_path, data)
    _mnist_remote(monkeypatch, body)
    monkeypatch.setattr(_fetch, "_urlopen", FakeOpener({"mnist.npz": body}))
    assert_same(mnist.load_data(path="digits.npz"), data)
    assert (pycnn_cache(tmp_path, "mnist") / "digits.npz").read_bytes() == body
    monkeypatch.setattr(_fetch, "_urlopen", no_network)
    assert_same(mnist.load_data(path="digits.npz"), data)


def test_download_checksum_mismatch_leaves_nothing(tmp_path, monkeypatch):
    body = _npz_body(tmp_path, make_arrays())
    _mnist_remote(monkeypatch, body, sha="0" * 64)
    monkeypatch.setattr(_fetch, "_urlopen", FakeOpener({"mnist.npz": body}))
    with pytest.raises(ChecksumError, match="mnist.npz.*SHA-256"):
        mnist.load_data()
    assert list(pycnn_cache(tmp_path, "mnist").iterdir()) == []


@pytest.mark.parametrize("how", ["raises mid-stream", "short body"])
def test_partial_download_leaves_nothing(tmp_path, monkeypatch, how):
    body = _npz_body(tmp_path, make_arrays())
    _mnist_remote(monkeypatch, body)
    if how == "raises mid-stream":
        opener = FakeOpener({"mnist.npz": body}, fail_after=len(body) // 2)
    else:
        opener = FakeOpener({"mnist.npz": body[: len(body) // 2]}, length=len(body))
    monkeypatch.setattr(_fetch, "_urlopen", opener)
    with pytest.raises(DatasetNotFoundError, match="mnist.npz") as info:
        mnist.load_data()
    assert ("reset" if how == "raises mid-stream" else "incomplete") in str(info.value)
    assert list(pycnn_cache(tmp_path, "mnist").iterdir()) == []


def test_fashion_mnist_download_of_four_files(tmp_path, monkeypatch):
    data = make_arrays(seed=12)
    served = write_idx_dir(tmp_path / "served", data)
    bodies = {name: (served / name).read_bytes() for name in GZ_NAMES}
    sums = {name: hashlib.sha256(b).hexdigest() for name, b in bodies.items()}
    remote = tuple(_fetch.RemoteFile(n, _fetch.ORIGIN + n, s) for n, s in sums.items())
    patch_spec(monkeypatch, fashion_mnist, remote=remote, sha256=sums)
    opener = FakeOpener(bodies)
    monkeypatch.setattr(_fetch, "_urlopen", opener)
    assert_same(fashion_mnist.load_data(), data)
    assert sorted(opener.urls) == sorted(_fetch.ORIGIN + n for n in GZ_NAMES)
    cache = pycnn_cache(tmp_path, "fashion_mnist")
    assert sorted(p.name for p in cache.iterdir()) == sorted(GZ_NAMES)


def test_tampered_cache_file_is_detected(tmp_path, monkeypatch):
    data = make_arrays(seed=13)
    npz = write_npz(pycnn_cache(tmp_path, "mnist") / "mnist.npz", data)
    _mnist_remote(monkeypatch, npz.read_bytes())
    assert_same(mnist.load_data(), data)
    blob = bytearray(npz.read_bytes())
    blob[-30] ^= 1
    npz.write_bytes(bytes(blob))
    with pytest.raises(ChecksumError, match=re.escape(str(npz))):
        mnist.load_data()


def test_tampered_keras_fashion_cache_is_detected(tmp_path):
    """Real hashes: synthetic files in Keras' layout never pass them."""
    directory = write_idx_dir(keras_cache(tmp_path) / "fashion-mnist", make_arrays())
    with pytest.raises(ChecksumError, match=re.escape(str(directory)) + ".*SHA-256"):
        fashion_mnist.load_data()


@needs_mnist
def test_real_mnist_files_pass_the_cache_checksums(tmp_path, monkeypatch, real_mnist):
    monkeypatch.setenv("PYCNN_CACHE_DIR", str(tmp_path / "pc"))
    (tmp_path / "pc" / "mnist").mkdir(parents=True)
    for name in GZ_NAMES:
        (tmp_path / "pc" / "mnist" / name).symlink_to(SHARED_DATA / "mnist" / name)
    assert_same(mnist.load_data(), real_mnist)


def test_offline_error_lists_every_place(tmp_path, monkeypatch):
    monkeypatch.setenv("PYCNN_DATA_DIR", str(tmp_path / "data"))
    with pytest.raises(DatasetNotFoundError) as info:
        fashion_mnist.load_data()
    message = str(info.value)
    assert isinstance(info.value, FileNotFoundError)
    for place in (
        tmp_path / "data" / "fashion_mnist",
        tmp_path / "data" / "fashion-mnist",
        pycnn_cache(tmp_path, "fashion_mnist"),
        keras_cache(tmp_path) / "fashion-mnist",
        tmp_path / "usr-share",
        _fetch.ORIGIN + "train-images-idx3-ubyte.gz",
    ):
        assert str(place) in message, place
    assert "network disabled in tests" in message
    assert "path=" in message and "PYCNN_DATA_DIR" in message
    assert not (pycnn_cache(tmp_path, "fashion_mnist")).exists() or not any(
        pycnn_cache(tmp_path, "fashion_mnist").iterdir())


def test_offline_error_for_mnist_mentions_unset_data_dir(tmp_path):
    with pytest.raises(FileNotFoundError) as info:
        mnist.load_data()
    message = str(info.value)
    assert "PYCNN_DATA_DIR: not set" in message
    assert str(keras_cache(tmp_path) / "mnist.npz") in message
    assert _fetch.ORIGIN + "mnist.npz" in message


# --------------------------------------------------------------------------
# the package stands alone


def test_datasets_import_only_stdlib_numpy_and_each_other():
    package = Path(pycnn.datasets.__file__).parent
    for source in sorted(package.glob("*.py")):
        for node in ast.walk(ast.parse(source.read_text())):
            if isinstance(node, ast.ImportFrom):
                if node.level:
                    assert node.level == 1, (source.name, node.module)
                    continue
                names = [node.module]
            elif isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            else:
                continue
            for name in names:
                top = name.split(".")[0]
                assert top in sys.stdlib_module_names or top == "numpy", (source.name, name)


def test_public_api():
    assert issubclass(DatasetNotFoundError, FileNotFoundError)
    assert issubclass(ChecksumError, ValueError)
    assert callable(pycnn.datasets.mnist.load_data)
    assert callable(pycnn.datasets.fashion_mnist.load_data)
    assert mnist._SPEC.remote[0].sha256 == (
        "731c5ac602752760c8e48fbffcf8c3b850d9dc2a2aedcf2cc48468fc17b673d1")
    assert os.path.basename(mnist._SPEC.remote[0].url) == "mnist.npz"
