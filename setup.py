"""Build of pycnn's C extension `pycnn._C` from csrc/ (metadata lives in pyproject.toml).

The default build is portable: baseline flags only, never -march=native. The AVX2 and AVX-512
micro-kernels carry their own target attributes and run only when the CPU reports them.

Environment:
  PYCNN_SANITIZE=1   build with AddressSanitizer + UndefinedBehaviorSanitizer (see README).
  PYCNN_DEBUG=1      -O0 -g.
"""
import os
import sys
from glob import glob

import numpy
from setuptools import Extension, setup

sources = sorted(glob(os.path.join("csrc", "*.c")))
# -fno-tree-loop-distribute-patterns: keep the short copy loops of im2col and packing inline
# (GCC would turn them into libc memcpy calls, which cost more than 3 or 12 floats);
# -fno-math-errno: sqrtf becomes one instruction (pycnn never reads errno), so loops vectorise
compile_args = ["-std=c11", "-O3", "-Wall", "-Wextra", "-fvisibility=hidden", "-fno-strict-aliasing", "-pthread",
                "-fno-tree-loop-distribute-patterns", "-fno-math-errno"]
link_args = ["-pthread"]
if os.environ.get("PYCNN_DEBUG"):
    compile_args = [a for a in compile_args if not a.startswith("-O")] + ["-O0", "-g"]
if os.environ.get("PYCNN_SANITIZE"):
    # -fno-wrapv: CPython builds with -fwrapv, which would hide signed overflow from UBSan
    san = ["-fsanitize=address,undefined", "-fno-sanitize-recover=undefined",
           "-fno-omit-frame-pointer", "-g", "-fno-wrapv"]
    compile_args = [a for a in compile_args if not a.startswith("-O")] + ["-O1"] + san
    link_args += san
if sys.platform == "win32":  # MSVC: C11 and threads differ; pthreads are required for now
    raise SystemExit("pycnn: building on Windows is not supported yet")

setup(
    ext_modules=[
        Extension(
            "pycnn._C",
            sources=sources,
            include_dirs=[numpy.get_include(), "csrc"],
            depends=glob(os.path.join("csrc", "*.h")) + glob(os.path.join("csrc", "*.inc")),
            extra_compile_args=compile_args,
            extra_link_args=link_args,
            libraries=["m"],
        )
    ],
)
