"""pytest plugin for the sanitizer run (tools/test_sanitized.sh): a LeakSanitizer check while
the interpreter is still alive, after the whole session. Everything CPython and NumPy hold is
then still reachable, so only memory that nothing points to any more (a real leak) is
reported; checking at exit instead would report the interpreter's own teardown."""
import ctypes


def pytest_sessionfinish(session, exitstatus):
    lib = ctypes.CDLL(None)
    try:
        check = lib.__lsan_do_recoverable_leak_check
    except AttributeError:
        return
    check.restype = ctypes.c_int
    if check():
        session.exitstatus = 88
        print("\nLeakSanitizer: leaks found (see the report above)")
    else:
        print("\nLeakSanitizer: no leaks")
