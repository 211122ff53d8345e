"""Files written whole or not at all.

``atomic_write(path)`` is how pycnn saves anything (weights, models, caches): the bytes go to a
new temporary file beside the target, which replaces the target only once it is complete and on
disk. A crash, a full disk, an exception or Ctrl-C while writing leave the old file as it was
(or no file, when there was none) and no temporary file behind; two saves to one path at once
leave one of the two files whole.
"""
from __future__ import annotations

import contextlib
import errno
import os
import tempfile
from collections.abc import Iterator
from typing import IO

__all__ = ["atomic_write", "fsync_directory"]

_MODES = ("wb", "w")


def _umask() -> int:
    """The process' umask, read without changing it where Linux shows it (os.umask would set it
    for every thread for a moment)."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _target_mode(target: str) -> int:
    """The permission bits the file gets: the existing file's, else those of a file created
    with open() (0o666 less the umask). mkstemp makes its file 0o600."""
    try:
        return os.stat(target).st_mode & 0o7777
    except OSError:
        return 0o666 & ~_umask()


def fsync_directory(directory: str | os.PathLike[str]) -> None:
    """Flush a directory's entries (a rename into it) to disk, where the platform can; file
    systems that cannot fsync a directory are skipped silently."""
    flags = os.O_RDONLY | getattr(os, "O_DIRECTORY", 0)
    try:
        fd = os.open(directory, flags)
    except OSError:
        return                      # Windows, or a directory we may not open: nothing to do
    try:
        os.fsync(fd)
    except OSError as exc:
        if exc.errno not in (errno.EINVAL, errno.ENOTSUP, errno.EBADF, errno.EACCES):
            raise
    finally:
        os.close(fd)


def _remove(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike[str], mode: str = "wb", *,
                 encoding: str | None = "utf-8") -> Iterator[IO]:
    """Opens ``path`` for writing so that it is replaced atomically when the block ends.

    Writes go to a temporary file ``.<name>.<random>.tmp`` in the target's directory, made
    with ``tempfile.mkstemp`` (unique, so concurrent saves never share one). When the block
    ends without an exception, the file is flushed and ``fsync``-ed, given the old file's
    permission bits (or a new file's), renamed over the target with ``os.replace``, and the
    directory is ``fsync``-ed. On any exception (``OSError`` such as a full disk,
    ``KeyboardInterrupt``, an error of the code writing) the temporary file is removed and the
    target is left untouched.

    A symbolic link is written through: ``path`` is resolved with ``os.path.realpath``, so the
    file the link points to is replaced and the link stays a link.

    Args:
        path: the file to write.
        mode: ``"wb"`` (binary, the default) or ``"w"`` (text).
        encoding: the text encoding for ``mode="w"``.

    Yields:
        The open temporary file.

    Example:
        >>> with atomic_write("weights.npz") as f:      # doctest: +SKIP
        ...     np.savez(f, w=w)
    """
    if mode not in _MODES:
        raise ValueError(f"Invalid mode for atomic_write: expected 'wb' or 'w'. "
                         f"Received: mode={mode!r}")
    target = os.path.realpath(os.fspath(path))
    if os.path.isdir(target):
        raise IsADirectoryError(errno.EISDIR, f"Cannot write a file over a directory: {target}")
    directory, name = os.path.split(target)
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=f".{name}.", suffix=".tmp")
    try:
        f = open(fd, mode, encoding=None if "b" in mode else encoding, closefd=True)
    except BaseException:
        os.close(fd)
        _remove(tmp)
        raise
    try:
        with f:
            yield f
            f.flush()
            if hasattr(os, "fchmod"):
                os.fchmod(f.fileno(), _target_mode(target))
            os.fsync(f.fileno())
        os.replace(tmp, target)
    except BaseException:
        _remove(tmp)
        raise
    fsync_directory(directory)
