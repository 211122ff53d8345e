"""Fork safety of the C runtime (csrc/runtime.c, "fork safety").

A child made by ``os.fork()`` (and so every ``multiprocessing`` worker of the fork start method)
must be able to run kernels after the parent used its thread pool, and after a fork made while
another thread was inside a kernel; its results must equal the parent's. A hang is the failure
mode, so every child is waited for with a bound and killed when it does not finish."""
from __future__ import annotations

import multiprocessing as mp
import os
import signal
import sys
import threading
import time

import numpy as np
import pytest

import pycnn
from pycnn import _C, layers

#: How long a child may take before it is declared hung (seconds; generous for a loaded CI).
CHILD_TIMEOUT = 120.0

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork (POSIX)")


def _wait_bounded(pid: int, timeout: float = CHILD_TIMEOUT) -> int:
    """The child's exit code; kills it (SIGKILL) and fails the test when it does not exit in
    time."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return os.waitstatus_to_exitcode(status)
        time.sleep(0.01)
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
    pytest.fail(f"the forked child (pid {pid}) hung: killed after {timeout:.0f} s")


def _fork_and_check(work, expected) -> None:
    """Fork; the child runs ``work()`` and exits 0 when it equals ``expected`` bit for bit, 3
    when it differs, 4 on an exception; the parent asserts exit code 0."""
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid == 0:   # child: never return into pytest
        code = 4
        try:
            got = work()
            code = 0 if all(np.array_equal(g, e, equal_nan=True) and g.dtype == e.dtype
                            for g, e in zip(got, expected)) else 3
        except BaseException:   # noqa: BLE001 - reported through the exit code
            code = 4
        finally:
            os._exit(code)
    code = _wait_bounded(pid)
    assert code == 0, {3: "the child's results differ from the parent's",
                       4: "the child raised an exception"}.get(code, f"child exit code {code}")


def _kernels(seed: int = 0):
    """A GEMM large enough to be split over the pool's threads, a Dense(relu) and a
    Conv2D(relu) + max pooling forward: the results as a tuple of arrays."""
    rng = np.random.default_rng(seed)
    a = rng.standard_normal((300, 200), dtype=np.float32)
    b = rng.standard_normal((200, 260), dtype=np.float32)
    c = np.empty((300, 260), np.float32)
    _C.gemm(a, b, c)
    dense = layers.Dense(64, activation="relu")
    conv = layers.Conv2D(32, 3, activation="relu")
    pool = layers.MaxPooling2D()
    x = rng.standard_normal((16, 12, 12, 3), dtype=np.float32)
    dense.build((None, 200))
    conv.build((None, 12, 12, 3))
    dense.kernel.value[...] = rng.standard_normal(dense.kernel.value.shape) * 0.1
    conv.kernel.value[...] = rng.standard_normal(conv.kernel.value.shape) * 0.1
    return c, np.asarray(dense(a)), np.asarray(pool(conv(x)))


@pytest.mark.parametrize("threads", [1, 2, 4])
def test_forked_child_runs_kernels_after_multithreaded_work(threads, keep_num_threads):
    pycnn.set_num_threads(threads)
    expected = _kernels()          # the pool's workers are started and then idle
    for _ in range(3):             # parent, child, parent, child ...: each child starts fresh
        _fork_and_check(_kernels, expected)
        assert all(np.array_equal(g, e) for g, e in zip(_kernels(), expected))


def test_forked_child_of_an_idle_pool_that_slept(keep_num_threads):
    """The workers asleep on their condition variable (not spinning) at the fork."""
    pycnn.set_num_threads(2)
    expected = _kernels()
    time.sleep(0.05)
    _fork_and_check(_kernels, expected)


def test_grandchild_of_a_forked_child_runs_kernels(keep_num_threads):
    pycnn.set_num_threads(2)
    expected = _kernels()

    def child_work():
        _kernels()                          # the child starts its own pool ...
        _fork_and_check(_kernels, expected)  # ... and forks again (fails -> exit 4)
        return _kernels()

    _fork_and_check(child_work, expected)


def test_thread_count_is_kept_in_the_forked_child(keep_num_threads):
    pycnn.set_num_threads(3)
    _kernels()
    _fork_and_check(lambda: (np.array(pycnn.get_num_threads()),), (np.array(3),))


@pytest.mark.parametrize("threads", [1, 2])
def test_fork_while_another_thread_is_inside_a_long_kernel(threads, keep_num_threads):
    """The fork waits for the kernel running in the other thread; the child's runtime is not
    left locked, and both the other thread's result and the child's are right."""
    pycnn.set_num_threads(threads)
    expected = _kernels()
    n = 3000
    rng = np.random.default_rng(1)
    a = rng.standard_normal((n, 64), dtype=np.float32)
    a = np.ascontiguousarray(np.repeat(a, n // 64 + 1, axis=1)[:, :n])
    big = np.empty((n, n), np.float32)
    started = threading.Event()
    finished_at = []

    def long_call():
        started.set()
        _C.gemm(a, a, big)
        finished_at.append(time.monotonic())

    t = threading.Thread(target=long_call)
    t.start()
    started.wait()
    time.sleep(0.1)                      # let the thread enter the kernel
    fork_at = time.monotonic()
    _fork_and_check(_kernels, expected)
    t.join()
    if finished_at[0] <= fork_at:
        pytest.skip("the long kernel ended before the fork started (machine too fast): "
                    "the fork did not overlap it")
    ref = np.empty((n, n), np.float32)
    _C.gemm(a, a, ref)
    assert np.array_equal(big, ref)


# ---- multiprocessing ------------------------------------------------------------------------

def _fit_and_predict(seed: int):
    """A small convnet fitted for one epoch and its predictions (a multiprocessing task)."""
    import pycnn as keras
    from pycnn import layers as L

    keras.utils.set_random_seed(seed)
    rng = np.random.default_rng(seed)
    x = rng.random((64, 10, 10, 1), dtype=np.float32)
    y = (x.reshape(64, -1).sum(axis=1) > 50).astype(np.int64)
    model = keras.Sequential([keras.Input(shape=(10, 10, 1)), L.Conv2D(8, 3, activation="relu"),
                              L.MaxPooling2D(), L.Flatten(), L.Dense(2, activation="softmax")])
    model.compile(optimizer="rmsprop", loss="sparse_categorical_crossentropy")
    model.fit(x, y, batch_size=16, epochs=1, verbose=0, shuffle=False)
    return model.predict(x, verbose=0), [np.asarray(w) for w in model.get_weights()]


@pytest.mark.parametrize("method", ["fork", "forkserver", "spawn"])
def test_multiprocessing_workers_fit_and_predict_like_the_parent(method, keep_num_threads):
    if method not in mp.get_all_start_methods():
        pytest.skip(f"start method {method!r} not available here")
    pycnn.set_num_threads(2)
    expected = [_fit_and_predict(s) for s in (0, 1)]    # also leaves the parent's pool started
    ctx = mp.get_context(method)
    with ctx.Pool(2) as pool:
        result = pool.map_async(_fit_and_predict, [0, 1])
        try:
            got = result.get(timeout=CHILD_TIMEOUT)
        except mp.TimeoutError:
            pytest.fail(f"multiprocessing workers ({method}) hung: no result after "
                        f"{CHILD_TIMEOUT:.0f} s")
    for (pred, weights), (epred, eweights) in zip(got, expected):
        assert np.array_equal(pred, epred)
        assert len(weights) == len(eweights)
        assert all(np.array_equal(w, e) for w, e in zip(weights, eweights))
