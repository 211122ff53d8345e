"""Running test code in threads at once (shared by the concurrency tests)."""
from __future__ import annotations

import threading
from typing import Callable, Iterable


def run_threads(fns: Iterable[Callable[[], object]], timeout: float = 120) -> None:
    """Runs each function in its own thread, all at once; waits for them (a thread still
    running after ``timeout`` seconds fails the test) and raises the first error any raised."""
    errors = []

    def wrap(fn):
        try:
            fn()
        except BaseException as err:       # noqa: BLE001 - reported below
            errors.append(err)

    threads = [threading.Thread(target=wrap, args=(fn,)) for fn in fns]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=timeout)
        assert not t.is_alive(), "a thread hung"
    if errors:
        raise errors[0]
