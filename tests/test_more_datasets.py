"""CIFAR-10/100, IMDB, Reuters, Boston and California housing: small files in Keras' exact
formats made here, Keras' splits, seeds and filters, the strict pickle reader, the search.

No test touches the network (the URL opener is replaced). The expected values follow Keras'
algorithms (keras/src/datasets/*.py, transcribed in `keras_*` below); when the Keras venv is
present, `test_keras_itself_agrees` also runs Keras' own code on the same files.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import pickle
import struct
import tarfile
from pathlib import Path

import numpy as np
import pytest

from pycnn.datasets import (
    ChecksumError,
    DatasetNotFoundError,
    _fetch,
    _files,
    _pickle,
    boston_housing,
    california_housing,
    cifar10,
    cifar100,
    imdb,
    reuters,
)
from childproc import run_python
from datadir import isolate_dataset_search

KERAS_PY = Path("/work/venvs/keras3/bin/python")


@pytest.fixture(autouse=True)
def isolated(tmp_path, monkeypatch):
    isolate_dataset_search(monkeypatch, tmp_path / "home", tmp_path)


# --------------------------------------------------------------------------
# writers of Keras' formats


def py2_pickle(obj) -> bytes:
    """A protocol-2 pickle laid out as Python 2's cPickle writes CIFAR's batches: str as
    BINSTRING, lists and dicts with MARK ... APPENDS/SETITEMS, NumPy arrays via
    numpy.core.multiarray._reconstruct."""
    out = bytearray(b"\x80\x02")
    memo = [0]

    def put():
        memo[0] += 1
        out.extend(b"q" + bytes([memo[0] % 256]))

    def s(b: bytes):
        out.extend((b"U" + bytes([len(b)])) if len(b) < 256 else (b"T" + struct.pack("<i", len(b))))
        out.extend(b)
        put()

    def i(v: int):
        if 0 <= v < 256:
            out.extend(b"K" + bytes([v]))
        elif 0 <= v < 65536:
            out.extend(b"M" + struct.pack("<H", v))
        else:
            out.extend(b"J" + struct.pack("<i", v))

    def w(o):
        if isinstance(o, bytes):
            s(o)
        elif isinstance(o, bool):
            out.extend(b"\x88" if o else b"\x89")
        elif isinstance(o, int):
            i(o)
        elif isinstance(o, list):
            out.extend(b"]")
            put()
            for k in range(0, len(o), 1000):
                out.extend(b"(")
                for v in o[k:k + 1000]:
                    w(v)
                out.extend(b"e")
        elif isinstance(o, dict):
            out.extend(b"}")
            put()
            out.extend(b"(")
            for k, v in o.items():
                w(k)
                w(v)
            out.extend(b"u")
        elif isinstance(o, np.ndarray):
            out.extend(b"cnumpy.core.multiarray\n_reconstruct\n")
            put()
            out.extend(b"cnumpy\nndarray\n")
            put()
            out.extend(b"K\x00\x85")
            s(b"b")
            out.extend(b"\x87R")
            put()
            out.extend(b"(K\x01")
            out.extend(b"(")
            for d in o.shape:
                i(d)
            out.extend(b"t")
            out.extend(b"cnumpy\ndtype\n")
            put()
            s(o.dtype.str[1:].encode())
            out.extend(b"K\x00K\x01\x87R")
            put()
            out.extend(b"(K\x03")
            s(o.dtype.str[:1].encode())
            out.extend(b"NNNJ\xff\xff\xff\xffJ\xff\xff\xff\xffK\x00tb\x89")
            s(o.tobytes())
            out.extend(b"tb")
        else:
            raise TypeError(type(o))

    w(obj)
    out.extend(b".")
    return bytes(out)


def cifar_batch(n: int, label_keys: dict[str, int], seed: int) -> tuple[dict, np.ndarray]:
    rng = np.random.default_rng(seed)
    data = rng.integers(0, 256, (n, 3072)).astype(np.uint8)
    d = {b"batch_label": b"testing batch 1 of 1", b"data": data}
    for key, classes in label_keys.items():
        d[key.encode()] = [int(v) for v in rng.integers(0, classes, n)]
    d[b"filenames"] = [f"img_{k}.png".encode() for k in range(n)]
    return d, data


def write_tar(path: Path, folder: str, members: dict[str, bytes]) -> Path:
    with tarfile.open(path, "w:gz") as tar:
        for name, raw in members.items():
            info = tarfile.TarInfo(f"{folder}/{name}")
            info.size = len(raw)
            tar.addfile(info, io.BytesIO(raw))
    return path


def make_cifar10(path: Path, n: int = 4):
    members, batches = {}, {}
    names = [f"data_batch_{k}" for k in range(1, 6)] + ["test_batch"]
    for k, name in enumerate(names):
        d, _ = cifar_batch(n + k % 2, {"labels": 10}, seed=k)
        members[name] = py2_pickle(d)
        batches[name] = d
    members["batches.meta"] = py2_pickle({b"label_names": [b"airplane"]})
    return write_tar(path, "cifar-10-batches-py", members), batches


def make_cifar100(path: Path):
    members, batches = {}, {}
    for k, name in enumerate(("train", "test")):
        d, _ = cifar_batch(5 + k, {"fine_labels": 100, "coarse_labels": 20}, seed=10 + k)
        members[name] = py2_pickle(d)
        batches[name] = d
    return write_tar(path, "cifar-100-python", members), batches


def npy_bytes(arr: np.ndarray, protocol: int) -> bytes:
    """An .npy member as np.save writes it, the object payload pickled with `protocol`."""
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, np.lib.format.header_data_from_array_1_0(arr))
    if arr.dtype.hasobject:
        buf.write(pickle.dumps(arr, protocol=protocol))
    else:
        buf.write(arr.tobytes())
    return buf.getvalue()


def write_npz(path: Path, arrays: dict[str, np.ndarray], protocol: int = 2) -> Path:
    import zipfile

    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        for key, arr in arrays.items():
            z.writestr(key + ".npy", npy_bytes(arr, protocol))
    return path


def sequences(n: int, seed: int, vocab: int = 40, max_len: int = 12) -> np.ndarray:
    rng = np.random.default_rng(seed)
    out = np.empty(n, dtype=object)
    for k in range(n):
        out[k] = [int(v) for v in rng.integers(1, vocab, int(rng.integers(1, max_len)))]
    return out


def make_imdb(path: Path, protocol: int = 2) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(5)
    arrays = {"x_train": sequences(30, 1), "y_train": rng.integers(0, 2, 30).astype(np.int64),
              "x_test": sequences(20, 2), "y_test": rng.integers(0, 2, 20).astype(np.int64)}
    write_npz(path, arrays, protocol)
    return arrays


def make_reuters(path: Path) -> dict[str, np.ndarray]:
    arrays = {"x": sequences(41, 3, vocab=60),
              "y": np.random.default_rng(6).integers(0, 46, 41).astype(np.int64)}
    write_npz(path, arrays)
    return arrays


# --------------------------------------------------------------------------
# Keras' algorithms, transcribed from keras/src/datasets


def keras_imdb(f, num_words=None, skip_top=0, maxlen=None, seed=113, start_char=1,
               oov_char=2, index_from=3):
    x_train, labels_train, x_test, labels_test = (f["x_train"], f["y_train"], f["x_test"],
                                                  f["y_test"])
    rng = np.random.RandomState(seed)
    idx = np.arange(len(x_train))
    rng.shuffle(idx)
    x_train, labels_train = x_train[idx], labels_train[idx]
    idx = np.arange(len(x_test))
    rng.shuffle(idx)
    x_test, labels_test = x_test[idx], labels_test[idx]
    if start_char is not None:
        x_train = [[start_char] + [w + index_from for w in x] for x in x_train]
        x_test = [[start_char] + [w + index_from for w in x] for x in x_test]
    elif index_from:
        x_train = [[w + index_from for w in x] for x in x_train]
        x_test = [[w + index_from for w in x] for x in x_test]
    else:
        x_train = [list(x) for x in x_train]
        x_test = [list(x) for x in x_test]
    if maxlen:
        keep = [k for k, x in enumerate(x_train) if len(x) < maxlen]
        x_train, labels_train = [x_train[k] for k in keep], [labels_train[k] for k in keep]
        keep = [k for k, x in enumerate(x_test) if len(x) < maxlen]
        x_test, labels_test = [x_test[k] for k in keep], [labels_test[k] for k in keep]
    xs = x_train + x_test
    labels = np.concatenate([labels_train, labels_test])
    if not num_words:
        num_words = max(max(x) for x in xs)
    if oov_char is not None:
        xs = [[w if skip_top <= w < num_words else oov_char for w in x] for x in xs]
    else:
        xs = [[w for w in x if skip_top <= w < num_words] for x in xs]
    n = len(x_train)
    return (xs[:n], labels[:n]), (xs[n:], labels[n:])


def keras_split(x, y, test_split=0.2, seed=113):
    rng = np.random.RandomState(seed)
    idx = np.arange(len(x))
    rng.shuffle(idx)
    x, y = x[idx], y[idx]
    cut = int(len(x) * (1 - test_split))
    return (x[:cut], y[:cut]), (x[cut:], y[cut:])


def as_lists(x) -> list:
    return [list(s) for s in x]


# --------------------------------------------------------------------------
# the strict pickle reader


def test_py2_writer_makes_what_python_reads():
    d, data = cifar_batch(3, {"labels": 10}, 0)
    back = pickle.loads(py2_pickle(d), encoding="bytes")
    assert back[b"labels"] == d[b"labels"] and back[b"filenames"] == d[b"filenames"]
    np.testing.assert_array_equal(back[b"data"], data)


@pytest.mark.parametrize("protocol", [2, 3, 4])
def test_pickle_reader_reads_plain_data_and_arrays(protocol):
    obj = {b"a": [1, 300, 70000, -2, 2**70], "b": (None, True, False, 1.25, "é", b"x" * 300),
           "arr": np.arange(6, dtype=np.int64).reshape(2, 3), "f": np.zeros((2, 2), order="F")}
    got = _pickle.loads(pickle.dumps(obj, protocol=protocol))
    assert got[b"a"] == obj[b"a"] and got["b"] == obj["b"]
    np.testing.assert_array_equal(got["arr"], obj["arr"])
    assert got["arr"].dtype == np.int64 and got["arr"].flags.c_contiguous


class _Evil:
    def __reduce__(self):
        return (os.system, ("echo pwned",))


@pytest.mark.parametrize("payload", [
    pickle.dumps(_Evil(), protocol=2),
    pickle.dumps(_Evil(), protocol=4),
    pickle.dumps({"x": _Evil()}, protocol=2),
    pickle.dumps(set([1]), protocol=2),
    b"cos\nsystem\n(S'echo'\ntR.",
])
def test_pickle_reader_refuses_code(payload):
    with pytest.raises(_pickle.UnsafePickleError):
        _pickle.loads(payload)


def test_pickle_reader_rejects_malformed_streams():
    good = py2_pickle({b"data": np.zeros((1, 3072), np.uint8)})
    for bad in (good[:-1], good[:40], good + b"\x00", b"", b"\x80\x02]q\x01(K\x01K\x02."):
        with pytest.raises(ValueError):
            _pickle.loads(bad)
    lying = good.replace(struct.pack("<i", 3072), struct.pack("<i", 3000), 1)
    with pytest.raises(ValueError):
        _pickle.loads(lying)


# --------------------------------------------------------------------------
# CIFAR


def test_cifar10_from_keras_archive(tmp_path):
    tar, batches = make_cifar10(tmp_path / "cifar-10-python.tar.gz")
    (x_train, y_train), (x_test, y_test) = cifar10.load_data(path=tar)
    names = [f"data_batch_{k}" for k in range(1, 6)]
    expect_x = np.concatenate([batches[n][b"data"] for n in names]).reshape(-1, 3, 32, 32)
    np.testing.assert_array_equal(x_train, expect_x.transpose(0, 2, 3, 1))
    assert x_train.shape == (22, 32, 32, 3) and x_train.dtype == np.uint8
    assert y_train.shape == (22, 1) and y_train.dtype == np.uint8
    assert y_train[:, 0].tolist() == sum((batches[n][b"labels"] for n in names), [])
    assert x_test.shape == (5, 32, 32, 3) and y_test.dtype == np.uint8 and y_test.shape == (5, 1)
    assert y_test[:, 0].tolist() == batches["test_batch"][b"labels"]
    # pixel (row 1, col 2) of image 0 takes red/green/blue from offsets 34, 1024+34, 2048+34
    d = batches["data_batch_1"][b"data"][0]
    assert x_train[0, 1, 2].tolist() == [d[34], d[1024 + 34], d[2048 + 34]]
    assert x_train.flags.c_contiguous


def test_cifar10_from_extracted_folder_and_data_dir(tmp_path, monkeypatch):
    tar, _ = make_cifar10(tmp_path / "c.tar.gz")
    with tarfile.open(tar) as t:
        t.extractall(tmp_path / "ex", filter="data")
    from_tar = cifar10.load_data(path=tar)
    for p in (tmp_path / "ex", tmp_path / "ex" / "cifar-10-batches-py"):
        got = cifar10.load_data(path=p)
        np.testing.assert_array_equal(got[0][0], from_tar[0][0])
    (tmp_path / "data").mkdir()
    (tmp_path / "ex").rename(tmp_path / "data" / "cifar10")
    monkeypatch.setenv("PYCNN_DATA_DIR", str(tmp_path / "data"))
    np.testing.assert_array_equal(cifar10.load_data()[1][1], from_tar[1][1])


@pytest.mark.parametrize("mode,classes", [("fine", 100), ("coarse", 20)])
def test_cifar100_label_modes(tmp_path, mode, classes):
    tar, batches = make_cifar100(tmp_path / "cifar-100-python.tar.gz")
    (x_train, y_train), (x_test, y_test) = cifar100.load_data(label_mode=mode, path=tar)
    assert x_train.shape == (5, 32, 32, 3) and x_test.shape == (6, 32, 32, 3)
    assert y_train.dtype == np.int64 and y_train.shape == (5, 1)
    assert y_train[:, 0].tolist() == batches["train"][f"{mode}_labels".encode()]
    assert y_test[:, 0].tolist() == batches["test"][f"{mode}_labels".encode()]
    with pytest.raises(ValueError, match='`label_mode` must be one of `"fine"`, `"coarse"`'):
        cifar100.load_data(label_mode="medium", path=tar)


def test_cifar_archive_with_code_in_a_batch_is_refused(tmp_path):
    _, batches = make_cifar10(tmp_path / "ok.tar.gz")
    members = {n: py2_pickle(d) for n, d in batches.items()}
    members["data_batch_3"] = pickle.dumps(_Evil(), protocol=2)
    tar = write_tar(tmp_path / "evil.tar.gz", "cifar-10-batches-py", members)
    with pytest.raises(ValueError, match="refusing the global"):
        cifar10.load_data(path=tar)


def test_cifar_bad_archives(tmp_path):
    (tmp_path / "junk.tar.gz").write_bytes(b"not a tar")
    with pytest.raises(ValueError, match="not a readable tar archive"):
        cifar10.load_data(path=tmp_path / "junk.tar.gz")
    tar = write_tar(tmp_path / "empty.tar.gz", "cifar-10-batches-py", {})
    with pytest.raises(ValueError, match="no cifar-10-batches-py/data_batch_1"):
        cifar10.load_data(path=tar)
    d, _ = cifar_batch(2, {"labels": 10}, 0)
    d[b"labels"] = [3, 12]
    _, batches = make_cifar10(tmp_path / "ok.tar.gz")
    members = {n: py2_pickle(b) for n, b in batches.items()}
    members["test_batch"] = py2_pickle(d)
    with pytest.raises(ValueError, match="ints 0..9"):
        cifar10.load_data(path=write_tar(tmp_path / "bad.tar.gz", "cifar-10-batches-py", members))


def test_cifar10_cached_archive_is_verified(tmp_path, monkeypatch):
    tar, _ = make_cifar10(tmp_path / "x.tar.gz")
    keras = tmp_path / "home" / ".keras" / "datasets"
    keras.mkdir(parents=True)
    (keras / "cifar-10-batches-py.tar.gz").write_bytes(tar.read_bytes())
    with pytest.raises(ChecksumError):
        cifar10.load_data()
    sha = hashlib.sha256(tar.read_bytes()).hexdigest()
    monkeypatch.setattr(cifar10, "_SPEC", _replace(cifar10._SPEC, file_hash=sha))
    assert cifar10.load_data()[0][0].shape == (22, 32, 32, 3)


def _replace(spec, **changes):
    import dataclasses

    return dataclasses.replace(spec, **changes)


# --------------------------------------------------------------------------
# IMDB and Reuters


@pytest.mark.parametrize("protocol", [2, 3])
@pytest.mark.parametrize("kwargs", [
    {},
    {"num_words": 20},
    {"num_words": 25, "skip_top": 6, "seed": 7},
    {"maxlen": 8},
    {"start_char": None, "index_from": 0, "oov_char": None, "num_words": 30},
    {"start_char": None, "index_from": 2},
])
def test_imdb_as_keras(tmp_path, protocol, kwargs):
    arrays = make_imdb(tmp_path / "imdb.npz", protocol)
    (x_train, y_train), (x_test, y_test) = imdb.load_data(path=tmp_path / "imdb.npz", **kwargs)
    (ex_train, ey_train), (ex_test, ey_test) = keras_imdb(arrays, **kwargs)
    assert x_train.dtype == object and as_lists(x_train) == ex_train
    assert as_lists(x_test) == ex_test
    np.testing.assert_array_equal(y_train, ey_train)
    np.testing.assert_array_equal(y_test, ey_test)
    assert y_train.dtype == np.int64


def test_imdb_maxlen_too_small_raises_as_keras(tmp_path):
    make_imdb(tmp_path / "imdb.npz")
    with pytest.raises(ValueError, match="no sequence was kept. Increase maxlen."):
        imdb.load_data(path=tmp_path / "imdb.npz", maxlen=1)


def test_imdb_refuses_non_integer_sequences_and_pickled_code(tmp_path):
    arrays = make_imdb(tmp_path / "ok.npz")
    bad = dict(arrays)
    bad["x_test"] = bad["x_test"].copy()
    bad["x_test"][3] = [1, "two", 3]
    write_npz(tmp_path / "bad.npz", bad)
    with pytest.raises(ValueError, match=r"item 3 is not a list of non-negative ints"):
        imdb.load_data(path=tmp_path / "bad.npz")
    evil = dict(arrays)
    evil["x_train"] = np.array([_Evil()], dtype=object)
    write_npz(tmp_path / "evil.npz", evil)
    with pytest.raises(ValueError, match="refusing the global"):
        imdb.load_data(path=tmp_path / "evil.npz")
    with pytest.raises(ValueError, match="no array 'x_test'"):
        imdb.load_data(path=write_npz(tmp_path / "part.npz", {"x_train": arrays["x_train"]}))


@pytest.mark.parametrize("kwargs", [{}, {"test_split": 0.5, "seed": 1},
                                    {"num_words": 30, "skip_top": 4, "maxlen": 9}])
def test_reuters_as_keras(tmp_path, kwargs):
    arrays = make_reuters(tmp_path / "reuters.npz")
    (x_train, y_train), (x_test, y_test) = reuters.load_data(path=tmp_path / "reuters.npz",
                                                             **kwargs)
    test_split = kwargs.get("test_split", 0.2)
    seed = kwargs.get("seed", 113)
    rng = np.random.RandomState(seed)
    idx = np.arange(41)
    rng.shuffle(idx)
    xs = [[1] + [w + 3 for w in x] for x in arrays["x"][idx]]
    labels = list(arrays["y"][idx])
    if kwargs.get("maxlen"):
        keep = [k for k, x in enumerate(xs) if len(x) < kwargs["maxlen"]]
        xs, labels = [xs[k] for k in keep], [labels[k] for k in keep]
    nw = kwargs.get("num_words") or max(max(x) for x in xs)
    xs = [[w if kwargs.get("skip_top", 0) <= w < nw else 2 for w in x] for x in xs]
    cut = int(len(xs) * (1 - test_split))
    assert as_lists(x_train) == xs[:cut] and as_lists(x_test) == xs[cut:]
    assert y_train.tolist() == labels[:cut] and y_test.tolist() == labels[cut:]


def test_reuters_label_names():
    names = reuters.get_label_names()
    assert len(names) == 46 and names[:3] == ("cocoa", "grain", "veg-oil") and names[-1] == "lead"


def test_word_index_json_and_md5_verified_cache(tmp_path):
    index = {"the": 1, "and": 2}
    (tmp_path / "wi.json").write_text(json.dumps(index))
    assert imdb.get_word_index(tmp_path / "wi.json") == index
    assert reuters.get_word_index(str(tmp_path / "wi.json")) == index
    keras = tmp_path / "home" / ".keras" / "datasets"
    keras.mkdir(parents=True)
    (keras / "imdb_word_index.json").write_text(json.dumps(index))
    with pytest.raises(ChecksumError, match="imdb_word_index.json"):
        imdb.get_word_index()  # not Keras' file: its MD5 differs
    (tmp_path / "bad.json").write_text('["the"]')
    with pytest.raises(ValueError, match="mapping words to integers"):
        imdb.get_word_index(tmp_path / "bad.json")


class FakeResponse(io.BytesIO):
    def __init__(self, body: bytes):
        super().__init__(body)
        self.headers = {"Content-Length": str(len(body))}


def test_download_to_cache_with_md5_and_sha256(tmp_path, monkeypatch):
    index = json.dumps({"w": 1}).encode()
    npz = make_imdb(tmp_path / "src.npz") and (tmp_path / "src.npz").read_bytes()
    bodies = {"imdb_word_index.json": index, "imdb.npz": npz}
    calls = []

    def opener(url, timeout):
        calls.append(url)
        return FakeResponse(bodies[url.rsplit("/", 1)[1]])

    monkeypatch.setattr(_fetch, "_urlopen", opener)
    monkeypatch.setattr(imdb, "_WORD_INDEX", _replace(
        imdb._WORD_INDEX, file_hash=hashlib.md5(index).hexdigest()))
    monkeypatch.setattr(imdb, "_SPEC", _replace(
        imdb._SPEC, file_hash=hashlib.sha256(npz).hexdigest()))
    assert imdb.get_word_index() == {"w": 1}
    first = imdb.load_data()
    cache = tmp_path / "home" / ".cache" / "pycnn" / "datasets" / "imdb"
    assert sorted(p.name for p in cache.iterdir()) == ["imdb.npz", "imdb_word_index.json"]
    assert calls == [_fetch.ORIGIN + "imdb_word_index.json", _fetch.ORIGIN + "imdb.npz"]
    again = imdb.load_data()  # from the cache, no second download
    assert len(calls) == 2
    assert as_lists(again[0][0]) == as_lists(first[0][0])


def test_download_checksum_mismatch_saves_nothing(tmp_path, monkeypatch):
    monkeypatch.setattr(_fetch, "_urlopen", lambda url, timeout: FakeResponse(b"corrupt"))
    with pytest.raises(ChecksumError):
        boston_housing.load_data()
    cache = tmp_path / "home" / ".cache" / "pycnn" / "datasets" / "boston_housing"
    assert not cache.exists() or list(cache.iterdir()) == []


def test_nowhere_to_be_found_lists_the_places(tmp_path):
    with pytest.raises(DatasetNotFoundError) as info:
        reuters.load_data()
    message = str(info.value)
    assert "PYCNN_DATA_DIR: not set" in message and "Keras cache" in message
    assert _fetch.ORIGIN + "reuters.npz" in message
    with pytest.raises(DatasetNotFoundError, match="does not exist"):
        imdb.load_data(path=tmp_path / "missing.npz")


# --------------------------------------------------------------------------
# Boston and California housing


def make_housing(path: Path, n: int, features: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(n)
    x = rng.normal(size=(n, features))
    y = rng.uniform(10, 50, n)
    np.savez(path, x=x, y=y)
    return x, y


@pytest.mark.parametrize("test_split,seed", [(0.2, 113), (0.0, 1), (0.35, 9)])
def test_boston_housing_split_as_keras(tmp_path, test_split, seed):
    x, y = make_housing(tmp_path / "boston_housing.npz", 23, 13)
    got = boston_housing.load_data(tmp_path / "boston_housing.npz", test_split, seed)
    expected = keras_split(x, y, test_split, seed)
    for g, e in zip(got, expected):
        np.testing.assert_array_equal(g[0], e[0])
        np.testing.assert_array_equal(g[1], e[1])


def test_california_housing_versions(tmp_path):
    x, y = make_housing(tmp_path / "ca.npz", 650, 8)
    (xt, yt), (xv, yv) = california_housing.load_data("small", tmp_path / "ca.npz")
    (ext, eyt), (exv, eyv) = keras_split(x[:600], y[:600])
    assert xt.shape == (480, 8) and xv.shape == (120, 8)
    np.testing.assert_array_equal(xt, ext)
    np.testing.assert_array_equal(yv, eyv)
    (xt, _), (xv, _) = california_housing.load_data(path=tmp_path / "ca.npz", test_split=0.1)
    assert len(xt) == int(650 * 0.9) and len(xt) + len(xv) == 650
    with pytest.raises(ValueError, match="Argument `version` must be one of 'small', 'large'"):
        california_housing.load_data("medium", tmp_path / "ca.npz")
    with pytest.raises(ValueError, match="Invalid `test_split` argument: 1"):
        california_housing.load_data(path=tmp_path / "ca.npz", test_split=1)


def test_housing_refuses_object_arrays(tmp_path):
    write_npz(tmp_path / "b.npz", {"x": np.array([[1.0]], dtype=object), "y": np.zeros(1)})
    with pytest.raises(ValueError, match="expected a numeric array of rank 2"):
        boston_housing.load_data(tmp_path / "b.npz")


# --------------------------------------------------------------------------
# Keras itself, when its venv is at hand


@pytest.mark.skipif(not KERAS_PY.exists(), reason=f"no Keras venv at {KERAS_PY}")
def test_keras_itself_agrees(tmp_path):
    imdb_arrays = make_imdb(tmp_path / "imdb.npz", protocol=3)  # Keras refuses _codecs
    write_npz(tmp_path / "reuters.npz", {"x": sequences(41, 3, vocab=60),
              "y": np.random.default_rng(6).integers(0, 46, 41).astype(np.int64)}, protocol=3)
    make_housing(tmp_path / "boston.npz", 31, 13)
    _, batches = make_cifar100(tmp_path / "c100.tar.gz")
    (tmp_path / "train").write_bytes(py2_pickle(batches["train"]))
    script = f"""
import json, sys, numpy as np
from keras.src.datasets import imdb, reuters, boston_housing, cifar
import keras.src.datasets.imdb as mi, keras.src.datasets.reuters as mr
import keras.src.datasets.boston_housing as mb
files = {{'imdb': r'{tmp_path / "imdb.npz"}', 'reuters': r'{tmp_path / "reuters.npz"}',
         'boston': r'{tmp_path / "boston.npz"}'}}
out = {{}}
mi.get_file = lambda *a, **k: files['imdb']
mr.get_file = lambda *a, **k: files['reuters']
mb.get_file = lambda *a, **k: files['boston']
(a, b), (c, d) = imdb.load_data(num_words=25, skip_top=5, maxlen=10, seed=3)
out['imdb'] = [[list(map(int, s)) for s in a], b.tolist(), [list(map(int, s)) for s in c], d.tolist()]
(a, b), (c, d) = reuters.load_data(num_words=40, test_split=0.3)
out['reuters'] = [[list(map(int, s)) for s in a], b.tolist(), [list(map(int, s)) for s in c], d.tolist()]
(a, b), (c, d) = boston_housing.load_data(test_split=0.25, seed=5)
out['boston'] = [a.tolist(), b.tolist(), c.tolist(), d.tolist()]
x, y = cifar.load_batch(r'{tmp_path / "train"}', label_key='coarse_labels')
out['cifar'] = [x.tolist(), list(map(int, y))]
print(json.dumps(out))
"""
    env = dict(os.environ, KERAS_BACKEND="jax", JAX_PLATFORMS="cpu")
    run = run_python(script, python=str(KERAS_PY), env=env, timeout=300)
    if run.returncode != 0:
        pytest.skip(f"Keras could not run: {run.stderr[-300:]}")
    ref = json.loads(run.stdout.strip().splitlines()[-1])
    (a, b), (c, d) = imdb.load_data(path=tmp_path / "imdb.npz", num_words=25, skip_top=5,
                                    maxlen=10, seed=3)
    assert [as_lists(a), b.tolist(), as_lists(c), d.tolist()] == ref["imdb"]
    (a, b), (c, d) = reuters.load_data(path=tmp_path / "reuters.npz", num_words=40,
                                       test_split=0.3)
    assert [as_lists(a), b.tolist(), as_lists(c), d.tolist()] == ref["reuters"]
    (a, b), (c, d) = boston_housing.load_data(tmp_path / "boston.npz", test_split=0.25, seed=5)
    assert [a.tolist(), b.tolist(), c.tolist(), d.tolist()] == ref["boston"]
    x = np.array(ref["cifar"][0], np.uint8)
    np.testing.assert_array_equal(x, batches["train"][b"data"].reshape(-1, 3, 32, 32))
    assert ref["cifar"][1] == batches["train"][b"coarse_labels"]
    assert imdb_arrays["x_train"].shape == (30,)
