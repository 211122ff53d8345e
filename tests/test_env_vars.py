"""Environment variables read at ``import pycnn`` are named in their errors, with what is valid.

Each case imports pycnn in a child process (the variables are read once, at import) with a
modified environment, so the test process' own pycnn state is never touched."""
from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from childproc import child_env, run_python

ROOT = Path(__file__).resolve().parents[1]


def _import_pycnn(**env: str) -> subprocess.CompletedProcess:
    code = ("import pycnn, sys; "
            "print(pycnn.get_num_threads(), pycnn.backend.simd_path()); sys.stdout.flush()")
    return run_python(code, env=child_env(drop_pycnn_vars=True, **env), cwd=str(ROOT))


@pytest.mark.parametrize("value", ["5000", "1025", "0", "-3", "four", "2.5"])
def test_bad_num_threads_names_the_variable_and_the_range(value):
    r = _import_pycnn(PYCNN_NUM_THREADS=value)
    assert r.returncode != 0
    last = r.stderr.strip().splitlines()[-1]
    assert last.startswith("ValueError:"), r.stderr
    assert "PYCNN_NUM_THREADS" in last
    assert "from 1 to 1024" in last
    assert repr(value) in last


@pytest.mark.parametrize("value", ["1", "3", "1024"])
def test_valid_num_threads_is_used(value):
    r = _import_pycnn(PYCNN_NUM_THREADS=value)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split()[0] == value


def test_bad_isa_names_the_variable_and_the_choices():
    r = _import_pycnn(PYCNN_ISA="avx3")
    assert r.returncode != 0
    last = r.stderr.strip().splitlines()[-1]
    assert last.startswith("ValueError:"), r.stderr
    assert "PYCNN_ISA" in last and "'avx3'" in last
    for name in ("'generic'", "'avx2'", "'avx512'"):
        assert name in last


def test_generic_isa_from_the_environment_is_selected():
    r = _import_pycnn(PYCNN_ISA="generic")
    assert r.returncode == 0, r.stderr
    assert r.stdout.split()[1] == "generic"


def test_unsupported_isa_names_the_variable_and_what_the_cpu_supports():
    from pycnn import _C

    if _C.best_isa() == "avx512":
        pytest.skip("this CPU supports every SIMD path")
    r = _import_pycnn(PYCNN_ISA="avx512")
    assert r.returncode != 0
    last = r.stderr.strip().splitlines()[-1]
    assert "PYCNN_ISA" in last and "'generic'" in last and "does not support" in last
