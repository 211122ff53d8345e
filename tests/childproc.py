"""Running Python code in a child process, for tests that must survive a crash, a hang or a
changed environment (import-time variables, resource limits, Keras' own interpreter).

The child imports the same pycnn as the tests: the checkout holding the imported ``pycnn``
comes first on ``PYTHONPATH``, and ``-P`` keeps the child's working directory (which may hold
another build) off ``sys.path``.
"""
from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from typing import Optional, Sequence

import pycnn

#: The checkout (or site-packages directory) the tests' pycnn was imported from.
PYCNN_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(pycnn.__file__)))
TESTS = os.path.dirname(os.path.abspath(__file__))


def python_cmd(python: Optional[str] = None) -> list[str]:
    """The interpreter to start: this one (with ``-P`` where Python has it), or ``python``."""
    if python is not None:
        return [str(python)]
    return [sys.executable, "-P"] if sys.version_info >= (3, 11) else [sys.executable]


def child_env(*, drop_pycnn_vars: bool = False, tests_importable: bool = False,
              **extra: str) -> dict[str, str]:
    """This process's environment with pycnn's checkout first on ``PYTHONPATH`` (and the tests
    directory after it when ``tests_importable``), without the ``PYCNN_*`` variables when
    ``drop_pycnn_vars``, and with ``extra`` set."""
    env = {k: v for k, v in os.environ.items()
           if not (drop_pycnn_vars and k.startswith("PYCNN_"))}
    paths = [PYCNN_ROOT] + ([TESTS] if tests_importable else [])
    paths += [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]
    env["PYTHONPATH"] = os.pathsep.join(paths)
    env.update(extra)
    return env


def run_python(code: str, *args: str, env: Optional[dict] = None, timeout: float = 120,
               cwd: Optional[str] = None, python: Optional[str] = None,
               flags: Sequence[str] = ()) -> subprocess.CompletedProcess:
    """``python -c code args...`` in a child (``child_env()`` unless ``env`` is given, the
    temporary directory as its working directory unless ``cwd``); its output as text."""
    cmd = python_cmd(python) + list(flags) + ["-c", code] + [str(a) for a in args]
    return subprocess.run(cmd, env=child_env() if env is None else env,
                          cwd=cwd or tempfile.gettempdir(), capture_output=True, text=True,
                          timeout=timeout)


def popen_python(code: str, env: Optional[dict] = None, **kw) -> subprocess.Popen:
    """A long-lived child running ``code`` (the caller wires its pipes through ``kw``)."""
    return subprocess.Popen(python_cmd() + ["-c", code], env=child_env() if env is None else env,
                            cwd=tempfile.gettempdir(), **kw)
