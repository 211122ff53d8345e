"""Files are never lost, and sizes are checked before anything is allocated or inflated.

* ``pycnn.utils.file_io.atomic_write``: a failing, interrupted or concurrent save never leaves
  a half-written target nor a temporary file; symlinks are written through; the file is
  fsync-ed before the rename and the directory after it.
* ``pycnn.datasets._idx``: a gzip IDX file may declare only what its compressed size can
  inflate to, and is never inflated past what it declares.
* ``pycnn.utils.safe_npz``: each ``.npy`` member's header is checked against the zip directory
  and a bound before reading; pickles are refused; errors name the file and the member.

Memory bounds are checked with ``tracemalloc`` (NumPy reports its array allocations to it)."""
from __future__ import annotations

import errno
import gzip
import io
import os
import re
import stat
import struct
import threading
import tracemalloc
import warnings
import zipfile
import zlib
from pathlib import Path

import numpy as np
import pytest

from pycnn.datasets import _idx
from pycnn.utils import file_io, safe_npz
from pycnn.utils.file_io import atomic_write

from threads import run_threads

MiB = 1 << 20


def leftovers(directory: Path) -> list[str]:
    """Temporary files atomic_write may have left."""
    return sorted(p.name for p in directory.iterdir() if p.name.endswith(".tmp"))


class peak_memory:
    """Context manager: ``.peak`` is the most memory traced (bytes) inside the block."""

    def __enter__(self):
        tracemalloc.start()
        return self

    def __exit__(self, *exc):
        self.peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        return False


# ==== atomic_write ==============================================================================

def test_atomic_write_creates_the_file_and_leaves_no_temporary(tmp_path):
    target = tmp_path / "weights.bin"
    with atomic_write(target) as f:
        f.write(b"hello")
        assert not target.exists()          # nothing visible before the block ends
        assert len(leftovers(tmp_path)) == 1
        assert leftovers(tmp_path)[0].startswith(".weights.bin.")
    assert target.read_bytes() == b"hello"
    assert leftovers(tmp_path) == []


def test_atomic_write_text_mode(tmp_path):
    target = tmp_path / "model.json"
    with atomic_write(target, "w") as f:
        f.write('{"name": "caf\u00e9"}')
    assert target.read_text(encoding="utf-8") == '{"name": "caf\u00e9"}'


def test_new_file_gets_open_permissions_and_an_existing_file_keeps_its_own(tmp_path):
    old = os.umask(0o027)
    try:
        new = tmp_path / "new.bin"
        with atomic_write(new) as f:
            f.write(b"x")
        assert stat.S_IMODE(new.stat().st_mode) == 0o640      # 0o666 less the umask
    finally:
        os.umask(old)
    existing = tmp_path / "existing.bin"
    existing.write_bytes(b"old")
    existing.chmod(0o604)
    with atomic_write(existing) as f:
        f.write(b"new")
    assert stat.S_IMODE(existing.stat().st_mode) == 0o604


@pytest.mark.parametrize("error", [RuntimeError("the saver failed"), KeyboardInterrupt()])
def test_failing_write_leaves_the_old_file_and_no_temporary(tmp_path, error):
    target = tmp_path / "w.npz"
    target.write_bytes(b"the old weights")
    with pytest.raises(type(error)):
        with atomic_write(target) as f:
            f.write(b"half of the new wei")
            raise error
    assert target.read_bytes() == b"the old weights"
    assert leftovers(tmp_path) == []


def test_failing_first_save_leaves_no_file(tmp_path):
    target = tmp_path / "w.npz"
    with pytest.raises(ValueError):
        with atomic_write(target) as f:
            f.write(b"partial")
            raise ValueError("boom")
    assert list(tmp_path.iterdir()) == []


class _FullDisk(io.RawIOBase):
    """A file that accepts ``room`` bytes, then fails as a full disk does."""

    def __init__(self, real, room):
        self.real, self.room = real, room

    def writable(self):
        return True

    def write(self, b):
        if len(b) > self.room:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        self.room -= len(b)
        return self.real.write(b)

    def fileno(self):
        return self.real.fileno()

    def flush(self):
        if not self.real.closed:
            self.real.flush()

    def close(self):
        super().close()
        self.real.close()


def test_full_disk_during_the_write_leaves_the_old_file(tmp_path, monkeypatch):
    target = tmp_path / "w.npz"
    np.savez(target, a=np.arange(10))
    before = target.read_bytes()
    real_open = open
    monkeypatch.setattr(file_io, "open",
                        lambda fd, mode, **kw: _FullDisk(real_open(fd, mode, **kw), 1000),
                        raising=False)
    with pytest.raises(OSError) as info:
        with atomic_write(target) as f:
            np.savez(f, a=np.arange(100000))
    assert info.value.errno == errno.ENOSPC
    assert target.read_bytes() == before
    assert leftovers(tmp_path) == []


def test_full_disk_at_fsync_leaves_the_old_file(tmp_path, monkeypatch):
    """Delayed allocation: the disk can report ENOSPC only when the data is flushed."""
    target = tmp_path / "w.bin"
    target.write_bytes(b"old")

    def fsync(fd):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(file_io.os, "fsync", fsync)
    with pytest.raises(OSError, match="No space"):
        with atomic_write(target) as f:
            f.write(b"new contents")
    assert target.read_bytes() == b"old"
    assert leftovers(tmp_path) == []


def test_file_is_fsynced_before_the_rename_and_the_directory_after(tmp_path, monkeypatch):
    target = tmp_path / "w.bin"
    target.write_bytes(b"old")
    events = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd):
        events.append(("fsync", stat.S_ISDIR(os.fstat(fd).st_mode), target.read_bytes()))
        real_fsync(fd)

    def replace(a, b):
        events.append(("replace", b))
        real_replace(a, b)

    monkeypatch.setattr(file_io.os, "fsync", fsync)
    monkeypatch.setattr(file_io.os, "replace", replace)
    with atomic_write(target) as f:
        f.write(b"new")
    assert events == [("fsync", False, b"old"), ("replace", str(target)),
                      ("fsync", True, b"new")]


def test_writing_through_a_symlink_replaces_its_target_not_the_link(tmp_path):
    real_dir = tmp_path / "real"
    real_dir.mkdir()
    real = real_dir / "weights.npz"
    real.write_bytes(b"old")
    link = tmp_path / "latest.npz"
    link.symlink_to(os.path.relpath(real, tmp_path))
    with atomic_write(link) as f:
        f.write(b"new")
    assert link.is_symlink()
    assert os.readlink(link) == os.path.relpath(real, tmp_path)
    assert real.read_bytes() == b"new"
    assert leftovers(tmp_path) == [] and leftovers(real_dir) == []


def test_writing_through_a_dangling_symlink_creates_its_target(tmp_path):
    link = tmp_path / "link"
    link.symlink_to(tmp_path / "missing.bin")
    with atomic_write(link) as f:
        f.write(b"data")
    assert link.is_symlink() and (tmp_path / "missing.bin").read_bytes() == b"data"


def test_concurrent_saves_to_one_path_leave_one_whole_file(tmp_path):
    target = tmp_path / "w.bin"
    payloads = {name: bytes([name]) * (3 * MiB) for name in (ord("A"), ord("B"))}
    start = threading.Barrier(2)

    def save(name):
        start.wait()
        for _ in range(5):
            with atomic_write(target) as f:
                data = payloads[name]
                for i in range(0, len(data), 64 * 1024):   # interleave with the other
                    f.write(data[i:i + 64 * 1024])

    run_threads([lambda n=n: save(n) for n in payloads])
    assert target.read_bytes() in payloads.values()
    assert leftovers(tmp_path) == []


def test_concurrent_npz_saves_load_as_one_of_the_two(tmp_path):
    target = tmp_path / "w.npz"
    arrays = [np.full((300, 300), v, np.float32) for v in (1.0, 2.0)]

    def save(a):
        for _ in range(5):
            with atomic_write(target) as f:
                np.savez(f, w=a)

    run_threads([lambda a=a: save(a) for a in arrays])
    got = safe_npz.load_npz(target)["w"]
    assert any(np.array_equal(got, a) for a in arrays)


def test_bad_mode_and_directory_target_are_refused_without_a_temporary(tmp_path):
    with pytest.raises(ValueError, match="mode='a'"):
        with atomic_write(tmp_path / "x", "a"):
            pass
    (tmp_path / "d").mkdir()
    with pytest.raises(IsADirectoryError):
        with atomic_write(tmp_path / "d"):
            pass
    assert leftovers(tmp_path) == []


def test_missing_directory_is_an_error_and_creates_nothing(tmp_path):
    with pytest.raises(FileNotFoundError):
        with atomic_write(tmp_path / "no" / "such" / "file.bin") as f:
            f.write(b"x")
    assert list(tmp_path.iterdir()) == []


# ==== IDX files =================================================================================

def _idx_header(n, rows=28, cols=28):
    return struct.pack(">IIII", _idx.IMAGES_MAGIC, n, rows, cols)


def test_tiny_gzip_declaring_1_3_million_images_fails_before_allocating(tmp_path, monkeypatch):
    """1.3 M images of 28x28 is under the 1 GiB limit: only the compressed size can tell
    that 100 bytes cannot hold them."""
    path = tmp_path / "train-images-idx3-ubyte.gz"
    path.write_bytes(gzip.compress(_idx_header(1_300_000) + bytes(60)))
    assert path.stat().st_size < 120
    monkeypatch.setattr(np, "empty", None)          # any allocation would crash
    with pytest.raises(ValueError, match=re.escape(str(path)) + ".*inflates to at most"):
        _idx.read_idx(path, _idx.IMAGES_MAGIC)


def test_tiny_gzip_declaring_1_37_million_images_fails_before_allocating(tmp_path,
                                                                         monkeypatch):
    path = tmp_path / "big.gz"
    path.write_bytes(gzip.compress(_idx_header(1_370_000) + bytes(60)))
    monkeypatch.setattr(np, "empty", None)
    with pytest.raises(ValueError, match=re.escape(str(path))):
        _idx.read_idx(path, _idx.IMAGES_MAGIC)


def test_gzip_bomb_is_not_inflated_past_the_declared_size(tmp_path):
    """A gzip whose data inflates to 200 MiB behind a header declaring 10 images: the reader
    stops right after the declared bytes."""
    path = tmp_path / "bomb.gz"
    comp = zlib.compressobj(9, zlib.DEFLATED, 31)          # gzip container
    parts = [comp.compress(_idx_header(10))]
    zeros = bytes(MiB)
    for _ in range(200):
        parts.append(comp.compress(zeros))
    parts.append(comp.flush())
    path.write_bytes(b"".join(parts))
    assert path.stat().st_size < 400 * 1024
    with peak_memory() as mem:
        with pytest.raises(ValueError, match=re.escape(str(path)) + ".*extra bytes"):
            _idx.read_idx(path, _idx.IMAGES_MAGIC)
    assert mem.peak < 8 * MiB, mem.peak


@pytest.mark.parametrize("gz", [True, False], ids=["gzip", "raw"])
def test_truncated_idx_names_the_file(tmp_path, gz):
    raw = _idx_header(5) + bytes(5 * 784)
    cut = raw[:-100]
    path = tmp_path / ("t.gz" if gz else "t")
    path.write_bytes(gzip.compress(cut) if gz else cut)
    with pytest.raises(ValueError, match=re.escape(str(path)) + ".*truncated"):
        _idx.read_idx(path, _idx.IMAGES_MAGIC)


def test_truncated_gzip_stream_names_the_file(tmp_path):
    path = tmp_path / "t.gz"
    path.write_bytes(gzip.compress(_idx_header(5) + os.urandom(5 * 784))[:-50])
    with pytest.raises(ValueError, match=re.escape(str(path))):
        _idx.read_idx(path, _idx.IMAGES_MAGIC)


def test_raw_idx_declaring_more_than_the_file_holds_fails_before_allocating(tmp_path,
                                                                            monkeypatch):
    path = tmp_path / "lying"
    path.write_bytes(_idx_header(1_000_000) + bytes(784))
    monkeypatch.setattr(np, "empty", None)
    with pytest.raises(ValueError, match=re.escape(str(path)) + ".*truncated"):
        _idx.read_idx(path, _idx.IMAGES_MAGIC)


def test_valid_gzip_idx_still_reads(tmp_path):
    data = np.random.default_rng(0).integers(0, 256, (7, 28, 28), dtype=np.uint8)
    path = tmp_path / "ok.gz"
    path.write_bytes(gzip.compress(_idx_header(7) + data.tobytes()))
    np.testing.assert_array_equal(_idx.read_idx(path, _idx.IMAGES_MAGIC), data)


# ==== safe_npz ==================================================================================

def _central_directory_set_size(blob: bytes, member: str, file_size: int) -> bytes:
    """The zip `blob` with `member`'s uncompressed size in the central directory changed."""
    data = bytearray(blob)
    name = member.encode()
    at = 0
    while True:
        at = data.find(b"PK\x01\x02", at)
        assert at >= 0, member
        name_len = struct.unpack_from("<H", data, at + 28)[0]
        if bytes(data[at + 46:at + 46 + name_len]) == name:
            struct.pack_into("<I", data, at + 24, file_size)
            return bytes(data)
        at += 4


def _npy(arr) -> bytes:
    buf = io.BytesIO()
    np.save(buf, arr)
    return buf.getvalue()


def _npy_header(shape, descr="<f4") -> bytes:
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(
        buf, {"descr": descr, "fortran_order": False, "shape": shape})
    return buf.getvalue()


@pytest.mark.parametrize("compressed", [False, True])
def test_safe_npz_reads_what_np_savez_writes(tmp_path, compressed):
    arrays = {
        "w": np.arange(12, dtype=np.float32).reshape(3, 4),
        "fortran": np.asfortranarray(np.arange(6, dtype=np.int64).reshape(2, 3)),
        "scalar": np.array(3.5),
        "empty": np.zeros((0, 5), np.float32),
        "u8": np.arange(256, dtype=np.uint8),
        "bools": np.array([True, False]),
    }
    path = tmp_path / "a.npz"
    (np.savez_compressed if compressed else np.savez)(path, **arrays)
    got = safe_npz.load_npz(path)
    assert list(got) == list(arrays)
    for k, a in arrays.items():
        assert got[k].dtype == a.dtype and got[k].shape == a.shape
        np.testing.assert_array_equal(got[k], a)
    assert got["w"].flags.c_contiguous and got["w"].flags.writeable
    infos = safe_npz.inspect_npz(path)
    assert infos["w"].shape == (3, 4) and infos["fortran"].fortran_order


def test_safe_npz_refuses_pickles_without_unpickling(tmp_path):
    unpickled = []

    class Evil:
        def __reduce__(self):
            return (unpickled.append, ("unpickled!",))

    path = tmp_path / "evil.npz"
    np.savez(path, w=np.ones(3), obj=np.array([Evil()], dtype=object))
    with pytest.raises(ValueError, match=re.escape(f"{path}['obj']") + ".*never loaded"):
        safe_npz.load_npz(path)
    with pytest.raises(ValueError, match=re.escape(f"{path}['obj']")):
        safe_npz.load_npz(path, ["w"])       # every member is checked, even unread ones
    assert unpickled == []


def test_lying_npy_header_fails_before_allocating(tmp_path, monkeypatch):
    path = tmp_path / "lying.npz"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("w.npy", _npy_header((100000, 1000)) + bytes(400))
    monkeypatch.setattr(np, "empty", None)
    with pytest.raises(ValueError, match=re.escape(f"{path}['w']") +
                       r".*shape \(100000, 1000\).*stores 400 bytes"):
        safe_npz.load_npz(path)


def test_header_over_the_bound_fails_before_reading(tmp_path):
    path = tmp_path / "big.npz"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("w.npy", _npy(np.zeros((1024, 1024), np.float32)))   # 4 MiB
    with pytest.raises(ValueError, match=re.escape(f"{path}['w']") + ".*1048576-byte limit"):
        safe_npz.load_npz(path, max_member_bytes=MiB)
    with pytest.raises(ValueError, match=re.escape(str(path)) + ".*2097152-byte limit"):
        safe_npz.load_npz(path, max_total_bytes=2 * MiB)


def test_zip_bomb_with_a_forged_directory_fails_before_inflating(tmp_path, monkeypatch):
    """A 100-byte member whose directory entry claims 1 GiB (and whose header agrees)."""
    n = (1 << 28) - 32
    header = _npy_header((n,))
    blob = io.BytesIO()
    with zipfile.ZipFile(blob, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("w.npy", header + bytes(100))
    path = tmp_path / "bomb.npz"
    path.write_bytes(_central_directory_set_size(blob.getvalue(), "w.npy",
                                                 len(header) + 4 * n))
    monkeypatch.setattr(np, "empty", None)
    with pytest.raises(ValueError, match=re.escape(f"{path}['w']") + ".*deflate cannot"):
        safe_npz.load_npz(path)


def test_honest_zip_bomb_is_bounded(tmp_path):
    """64 MiB of zeros (64 KiB compressed), refused under a 16 MiB bound without inflating."""
    path = tmp_path / "zeros.npz"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        with archive.open("w.npy", "w", force_zip64=True) as member:
            member.write(_npy_header((16 * MiB,)))
            zeros = bytes(MiB)
            for _ in range(64):
                member.write(zeros)
    assert path.stat().st_size < 1 * MiB
    with peak_memory() as mem:
        with pytest.raises(ValueError, match=re.escape(f"{path}['w']") + ".*limit"):
            safe_npz.load_npz(path, max_member_bytes=16 * MiB)
    assert mem.peak < 4 * MiB, mem.peak


def test_member_inflating_past_its_recorded_size_is_caught(tmp_path):
    """The directory records a small size, the header agrees, the deflate stream holds more:
    reading stops at the recorded size and the CRC check fails."""
    real = _npy(np.arange(1000, dtype=np.float32))
    header = _npy_header((10,))
    blob = io.BytesIO()
    with zipfile.ZipFile(blob, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("w.npy", header + real[len(header):])
    path = tmp_path / "long.npz"
    path.write_bytes(_central_directory_set_size(blob.getvalue(), "w.npy", len(header) + 40))
    with pytest.raises(ValueError, match=re.escape(str(path))):
        safe_npz.load_npz(path)


def test_truncated_and_corrupt_archives_name_the_file(tmp_path):
    path = tmp_path / "t.npz"
    np.savez_compressed(path, w=np.random.default_rng(0).random(5000))
    whole = path.read_bytes()
    path.write_bytes(whole[:len(whole) // 2])
    with pytest.raises(ValueError, match=re.escape(str(path)) + ".*not a readable"):
        safe_npz.load_npz(path)
    damaged = bytearray(whole)
    mid = len(whole) // 2
    damaged[mid:mid + 64] = bytes(64)          # inside the deflate stream
    path.write_bytes(bytes(damaged))
    with pytest.raises(ValueError, match=re.escape(str(path))):
        safe_npz.load_npz(path)
    path.write_bytes(b"not a zip at all")
    with pytest.raises(ValueError, match=re.escape(str(path)) + ".*not a readable"):
        safe_npz.load_npz(path)


def test_other_members_missing_keys_and_wrong_dtypes_are_named(tmp_path):
    path = tmp_path / "m.npz"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("w.npy", _npy(np.ones(3, np.float32)))
        archive.writestr("notes.txt", b"hello")
    with pytest.raises(ValueError, match=re.escape(f"{path}['notes.txt']") + ".*not a .npy"):
        safe_npz.load_npz(path)
    np.savez(path, w=np.ones(3, np.float32))
    with pytest.raises(ValueError, match=re.escape(str(path)) + ".*no array 'b'"):
        safe_npz.load_npz(path, ["w", "b"])
    with pytest.raises(ValueError, match=re.escape(f"{path}['w']") + ".*dtype float32; "
                                                                     "expected uint8"):
        safe_npz.load_npz(path, dtype=np.uint8)


def test_member_stored_twice_is_refused(tmp_path):
    path = tmp_path / "dup.npz"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")             # zipfile warns of the duplicate name
        with zipfile.ZipFile(path, "w") as archive:
            archive.writestr("w.npy", _npy(np.ones(3)))
            archive.writestr("w.npy", _npy(np.zeros(3)))
    with pytest.raises(ValueError, match=re.escape(f"{path}['w']") + ".*twice"):
        safe_npz.load_npz(path)


def test_idx_npz_with_a_forged_directory_fails_before_inflating(tmp_path, monkeypatch):
    """The datasets package's own .npz check (it does not import pycnn.utils)."""
    arrays = {"x_train": np.zeros((2, 28, 28), np.uint8), "y_train": np.zeros(2, np.uint8),
              "x_test": np.zeros((2, 28, 28), np.uint8), "y_test": np.zeros(2, np.uint8)}
    blob = io.BytesIO()
    n = 1_300_000
    header = _npy_header((n, 28, 28), "|u1")
    with zipfile.ZipFile(blob, "w", zipfile.ZIP_DEFLATED) as archive:
        for k, a in arrays.items():
            archive.writestr(k + ".npy", header + bytes(64) if k == "x_train" else _npy(a))
    path = tmp_path / "mnist.npz"
    path.write_bytes(_central_directory_set_size(blob.getvalue(), "x_train.npy",
                                                 len(header) + n * 784))
    monkeypatch.setattr(np, "empty", None)
    with pytest.raises(ValueError, match=re.escape(f"{path}['x_train']") + ".*deflate"):
        _idx.load_npz(path)
