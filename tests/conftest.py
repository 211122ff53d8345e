"""Shared fixtures of pycnn's test suite.

* ``mnist_dir``: the real MNIST files (``$PYCNN_DATA_DIR``, else ``../shared/data`` beside the
  checkout, holding ``mnist/``: see ``datadir.py``); tests that need it skip, saying where the
  data was looked for, when it is absent.
* ``mnist_env``: ``PYCNN_DATA_DIR`` pointed at ``mnist_dir``, so the lecture's
  ``mnist.load_data()`` runs verbatim without a network.
* ``small_mnist``: a session-wide normalized subset (the first 10,000 training and 2,000 test
  images), read-only so that no test can change it for the others.
* ``fresh_names`` (autouse): ``pycnn.backend.clear_session()`` before every test, so automatic
  names (``conv2d``, ``dense_1``, ``input_1``, ...) never depend on the order tests run in.
* ``seed``: ``pycnn.utils.set_random_seed(1234)`` (weights, shuffling and dropout repeat).
* ``keep_num_threads``: restores pycnn's thread count after a test that changes it.
* ``main_thread_sigint``: skips unless in the main thread with the default SIGINT handler
  (tests that raise Ctrl-C), and restores that handler afterwards.
* ``isa`` (parametrized): runs a test once per SIMD path (``ISAS``) of every kernel family: the
  GEMM micro-kernel and the elementwise loops both follow ``_C.set_isa``. Skips the paths this
  CPU lacks, and restores the path in use afterwards.
"""
from __future__ import annotations

import signal
import threading
import types
from pathlib import Path

import numpy as np
import pytest

import pycnn

from datadir import DATA_DIR  # its ``mnist/`` holds the four IDX files

SEED = 1234

#: The SIMD paths of the kernels, from the portable one up.
ISAS = ("generic", "avx2", "avx512")


@pytest.fixture(params=ISAS)
def isa(request):
    """Run the test with ``_C.set_isa(name)``; skip ISAs the CPU lacks; restore afterwards."""
    from pycnn import _C

    before = _C.isa()
    try:
        _C.set_isa(request.param)
    except ValueError as e:
        pytest.skip(f"CPU does not support the {request.param!r} SIMD path "
                    f"(set_isa raised ValueError: {e})")
    assert _C.isa() == request.param and _C.loop_isa() == request.param
    try:
        yield request.param
    finally:
        _C.set_isa(before)


@pytest.fixture(scope="session")
def mnist_dir() -> Path:
    """The directory whose ``mnist/`` holds the original MNIST files (skip when absent)."""
    mnist = DATA_DIR / "mnist"
    names = ["train-images-idx3-ubyte", "train-labels-idx1-ubyte",
             "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"]
    missing = [n for n in names
               if not (mnist / n).is_file() and not (mnist / f"{n}.gz").is_file()]
    if missing:
        pytest.skip(f"real MNIST data not found: expected {', '.join(missing)} (or .gz) in "
                    f"{mnist} (set PYCNN_DATA_DIR to the directory holding mnist/)")
    return DATA_DIR


@pytest.fixture
def mnist_env(mnist_dir, monkeypatch, tmp_path) -> Path:
    """Make ``mnist.load_data()`` (no argument, as in the lecture) find the shared files and
    never touch the user's caches or the network."""
    monkeypatch.setenv("PYCNN_DATA_DIR", str(mnist_dir))
    monkeypatch.setenv("PYCNN_CACHE_DIR", str(tmp_path / "pycnn-cache"))
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras-home"))
    return mnist_dir


@pytest.fixture(scope="session")
def mnist_arrays(mnist_dir):
    """``(x_train, y_train), (x_test, y_test)`` as ``load_data`` returns them (read-only)."""
    from pycnn.datasets import mnist

    arrays = mnist.load_data(path=mnist_dir)
    for pair in arrays:
        for a in pair:
            a.setflags(write=False)
    return arrays


@pytest.fixture(scope="session")
def small_mnist(mnist_arrays) -> types.SimpleNamespace:
    """The first 10,000 training and 2,000 test images, float32 in [0, 1], shape (N, 28, 28, 1),
    uint8 labels; ``x_train_flat``/``x_test_flat`` are the (N, 784) views for dense models."""
    (x_train, y_train), (x_test, y_test) = mnist_arrays
    ns = types.SimpleNamespace(
        x_train=x_train[:10000].reshape(10000, 28, 28, 1).astype("float32") / 255,
        y_train=y_train[:10000].copy(),
        x_test=x_test[:2000].reshape(2000, 28, 28, 1).astype("float32") / 255,
        y_test=y_test[:2000].copy(),
    )
    ns.x_train_flat = ns.x_train.reshape(10000, 784)
    ns.x_test_flat = ns.x_test.reshape(2000, 784)
    for name in ("x_train", "y_train", "x_test", "y_test"):
        getattr(ns, name).setflags(write=False)
    return ns


@pytest.fixture(autouse=True)
def fresh_names():
    """Reset pycnn's automatic-name counters before every test (Keras' ``clear_session``)."""
    pycnn.backend.clear_session()
    yield


@pytest.fixture
def seed() -> int:
    """Seed Python, NumPy and pycnn (``pycnn.utils.set_random_seed``); returns the seed."""
    pycnn.utils.set_random_seed(SEED)
    return SEED


@pytest.fixture
def main_thread_sigint():
    """Skip unless the test runs in the main thread with Python's default SIGINT handler;
    restore that handler afterwards."""
    if threading.current_thread() is not threading.main_thread() or \
            signal.getsignal(signal.SIGINT) is not signal.default_int_handler:
        pytest.skip("needs the default SIGINT handler in the main thread")
    yield
    signal.signal(signal.SIGINT, signal.default_int_handler)


@pytest.fixture
def keep_num_threads():
    """Restore pycnn's thread count after the test."""
    before = pycnn.get_num_threads()
    try:
        yield before
    finally:
        pycnn.set_num_threads(before)
