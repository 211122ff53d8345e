#!/usr/bin/env bash
# Build pycnn's extension with AddressSanitizer + UndefinedBehaviorSanitizer into build/asan
# (beside, not instead of, the normal build) and run the test suite against it.
#   tools/test_sanitized.sh [pytest args...]
# The ASan runtime must be loaded before Python starts, hence LD_PRELOAD. Leaks are checked
# after the session while the interpreter is alive (tools/pytest_lsan.py), so CPython's own
# teardown is not mistaken for a leak of pycnn.
set -euo pipefail
cd "$(dirname "$0")/.."
out=build/asan
py=$(python3 -c 'import sys; print(sys.executable)')   # the real interpreter, not a shim
rm -rf "$out"
PYCNN_SANITIZE=1 "$py" setup.py -q build_py --build-lib "$out" \
    build_ext --build-lib "$out" --build-temp build/asan-tmp >/dev/null
asan=$(gcc -print-file-name=libasan.so)
ubsan=$(gcc -print-file-name=libubsan.so)
export LD_PRELOAD="$asan $ubsan"
export ASAN_OPTIONS="detect_leaks=1:leak_check_at_exit=0:abort_on_error=0:halt_on_error=1:exitcode=86:allocator_may_return_null=1:detect_stack_use_after_return=0"
export LSAN_OPTIONS="suppressions=$PWD/tools/lsan.supp:print_suppressions=0"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1:exitcode=87"
export PYTHONMALLOC=malloc
export PYCNN_SANITIZED=1
# -P: do not put the working directory (with the unsanitized pycnn/) first on sys.path
PYTHONPATH="$PWD/$out" "$py" -P -c "import pycnn; assert pycnn.__file__.startswith('$PWD/$out'), pycnn.__file__"
PYTHONPATH="$PWD/$out:$PWD/tools" "$py" -P -m pytest -q -p no:cacheprovider -p pytest_lsan "$@"
