"""Where the tests find the real datasets (MNIST): ``$PYCNN_DATA_DIR`` when it is set, else
``../shared/data`` relative to the repository. A clone anywhere runs the end-to-end tests with
``PYCNN_DATA_DIR`` pointing at a directory whose ``mnist/`` holds the four IDX files.

``isolate_dataset_search`` does the opposite for the tests of the search itself: it finds
nothing but what a test puts in its own directories, and never downloads."""
from __future__ import annotations

import os
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def data_dir() -> Path:
    env = os.environ.get("PYCNN_DATA_DIR")
    return Path(env).resolve() if env else (REPO.parent / "shared" / "data").resolve()


#: Read once at import, before any test changes the environment.
DATA_DIR = data_dir()


def no_network(url, timeout=None):
    """Stands in for ``pycnn.datasets._fetch._urlopen``: every download fails at once."""
    raise OSError(f"network disabled in tests: {url}")


def isolate_dataset_search(monkeypatch, home: Path, cwd: Path) -> None:
    """Every place the dataset search looks is inside the test's directories: ``HOME`` is
    ``home`` (made here: pycnn's and Keras' caches are below it), no ``PYCNN_DATA_DIR``,
    ``PYCNN_CACHE_DIR``, ``XDG_CACHE_HOME`` or ``KERAS_HOME``, the working directory ``cwd``;
    and no network."""
    from pycnn.datasets import _fetch

    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    for var in ("PYCNN_DATA_DIR", "PYCNN_CACHE_DIR", "XDG_CACHE_HOME", "KERAS_HOME"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.chdir(cwd)
    monkeypatch.setattr(_fetch, "_urlopen", no_network)
