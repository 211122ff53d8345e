"""Where the tests find the real datasets (MNIST): ``$PYCNN_DATA_DIR`` when it is set, else
``../shared/data`` relative to the repository. A clone anywhere runs the end-to-end tests with
``PYCNN_DATA_DIR`` pointing at a directory whose ``mnist/`` holds the four IDX files."""
from __future__ import annotations

import os
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def data_dir() -> Path:
    env = os.environ.get("PYCNN_DATA_DIR")
    return Path(env).resolve() if env else (REPO.parent / "shared" / "data").resolve()


#: Read once at import, before any test changes the environment.
DATA_DIR = data_dir()
