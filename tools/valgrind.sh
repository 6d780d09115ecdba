#!/usr/bin/env bash
# tools/valgrind.sh - every unit-test binary and the tensor example under valgrind memcheck
# (two at a time): no invalid access, no uninitialised read, no definite leak.
# Usage: tools/valgrind.sh [BUILD_DIR]
set -uo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
export EMBER_CONFIG=
# The OpenCL stack (PoCL starts LLVM) takes minutes to start under valgrind; ASan and the
# conformance suite cover the OpenCL backend, so it is left out here.
export EMBER_DISABLE_PLUGINS=opencl
logdir=$build/valgrind
mkdir -p "$logdir"

# somalloc=nouserintercepts: memcheck replaces only libc's malloc, not the one the fault tests
# define in their executables (tests/faults/inject.c), which forwards to libc's; replacing it
# too would bypass it and inject nothing.
run_one() {
    local exe=$1 log=$logdir/$(basename "$1").log
    if valgrind -q --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite \
        --soname-synonyms=somalloc=nouserintercepts \
        --suppressions="$PWD/tools/sanitizers/valgrind.supp" \
        --trace-children=yes "$exe" >"$log" 2>&1; then
        echo "PASS $exe"
    else
        echo "FAIL $exe (see $log)"
        grep -E "Invalid|uninitialised|definitely|Synthesis|FAIL" "$log" | head -20
    fi
}
export -f run_one
export logdir

bins=$(find "$build/tests" "$build/examples" -maxdepth 2 -type f -executable \
       \( -name 'test_*' -o -name tensors \) | sort)
out=$(printf '%s\n' $bins | xargs -P 2 -I{} bash -c 'run_one {}')
echo "$out"
pass=$(grep -c '^PASS' <<<"$out")
fail=$(grep -c '^FAIL' <<<"$out")
echo "valgrind: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
