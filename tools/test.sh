#!/usr/bin/env bash
# tools/test.sh - set up, build, and run every test: the unit suite (with the sampled fault
# sweep), the unit suite again with tensors on the OpenCL backend by default (when it is built
# and usable), the unit suite built with AddressSanitizer + UndefinedBehaviorSanitizer, the
# threaded programs under ThreadSanitizer, each libFuzzer harness briefly over its corpus,
# valgrind, then the examples end to end. Every build here treats compiler warnings as errors
# (EMBER_WERROR=1, meson's werror option), and the changed lines are checked against .clang-format.
set -euo pipefail
cd "$(dirname "$0")/.."
export EMBER_WERROR=1
tools/setup.sh build
export EMBER_CONFIG=

echo "== format of the lines changed since main"
# Exit 77: clang-format is not installed (the stage says so and is skipped).
fmt_rc=0
tools/check-format.sh || fmt_rc=$?
if [ "$fmt_rc" -ne 0 ] && [ "$fmt_rc" -ne 77 ]; then
    echo "FAIL format"
    format_failed=1
else
    format_failed=0
fi

echo "== unit tests"
meson test -C build --print-errorlogs --num-processes 2

echo "== unit tests with EMBER_BACKEND=opencl"
# Tests that rely on the CPU pin it themselves; the rest must pass on any default device. The
# log has its own name so that the closing count reads both runs (no stale one from before).
rm -f build/meson-logs/testlog-opencl.txt
if EMBER_PLUGIN_PATH= EMBER_BACKEND=opencl build/tools/ember info >/dev/null 2>&1; then
    EMBER_BACKEND=opencl meson test -C build --suite unit --logbase testlog-opencl \
        --print-errorlogs --num-processes 2
else
    echo "skipped: the opencl backend is not built or has no usable device here"
fi

echo "== unit tests under ASan + UBSan"
if [ ! -f build-asan/build.ninja ]; then
    meson setup build-asan -Db_sanitize=address,undefined -Db_lundef=false \
        --buildtype=debug -Dwerror=true >/dev/null
fi
ninja -C build-asan
# intercept_tls_get_addr=0: the sanitizer runtime's tracking of dynamic TLS (blocks that
# dlopen'd libraries' thread-locals get) misreads glibc's blocks and crashes LeakSanitizer's
# tracer at exit (google/sanitizers#1322). Ember's plugins use no dynamic TLS
# (tests/plugins_tls.sh), so this only stops the runtime scanning PoCL's and LLVM's blocks.
asan() {
    ASAN_OPTIONS=detect_leaks=${leaks:-1}:abort_on_error=1:intercept_tls_get_addr=0 \
    UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
    LSAN_OPTIONS=suppressions=$PWD/tools/sanitizers/lsan.supp:print_suppressions=0 "$@"
}
asan meson test -C build-asan --no-suite dist --print-errorlogs --num-processes 2
# The ranks under mpirun without leak checks: Open MPI 4.1 unloads its components at
# MPI_Finalize, so their allocations (PMIx, hwloc, the MCA components) show up as leaks from
# unknown modules that no suppression can name. Address errors and UBSan still stop them;
# the communicator code's own leaks are checked by test_dist above and under valgrind.
leaks=0 asan meson test -C build-asan --suite dist --no-suite bench --logbase testlog-dist \
    --print-errorlogs --num-processes 2

echo "== threaded suites under ThreadSanitizer"
# The CPU pool on two workers, the DataLoader's prefetch thread, plugin loading and the CPU
# conformance cases (kernels split over the pool), and the mpi communicator's worker thread
# under collectives and DistributedDataParallel's bucket hooks, with and without bf16
# compression (2 ranks under mpirun, when the plugin is built). Plain programs: Criterion
# cannot start under TSan. OpenCL is left out (PoCL is not built with TSan).
if [ ! -f build-tsan/build.ninja ]; then
    meson setup build-tsan -Db_sanitize=thread -Db_lundef=false --buildtype=debug \
        -Dopencl=disabled -Dcuda=disabled -Dwerror=true >/dev/null
fi
ninja -C build-tsan backends/cpu/ember_cpu.so plugins/nn/ember_nn.so plugins/optim/ember_optim.so \
    plugins/data/ember_data.so tools/ember tests/stress_threads tests/data/stress_loader
stage_rc=$format_failed
tsan_pass=0 tsan_fail=0
tsan() {
    local name=$1
    shift
    if EMBER_PLUGIN_PATH= EMBER_NUM_THREADS=2 \
       TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1 suppressions=$PWD/tools/sanitizers/tsan.supp" \
       "$@" >"build-tsan/$name.log" 2>&1; then
        echo "PASS $name"
        tsan_pass=$((tsan_pass + 1))
    else
        echo "FAIL $name (see build-tsan/$name.log)"
        grep -A12 -m1 'WARNING: ThreadSanitizer' "build-tsan/$name.log" || tail -5 "build-tsan/$name.log"
        tsan_fail=$((tsan_fail + 1))
    fi
}
tsan thread_pool build-tsan/tests/stress_threads
tsan data_loader_threads build-tsan/tests/data/stress_loader
tsan ember_info build-tsan/tools/ember info
tsan conformance_cpu build-tsan/tools/ember conformance --backend cpu --dtype f32
mpi_targets=(plugins/mpi/ember_mpi.so tests/dist/dist_collectives tests/dist/ddp_equivalence
             tests/dist/ddp_compress)
if command -v mpirun >/dev/null &&
   ninja -C build-tsan -t query "${mpi_targets[@]}" >/dev/null 2>&1; then
    ninja -C build-tsan "${mpi_targets[@]}"
    mpi_tsan=(tools/mpirun.sh -x TSAN_OPTIONS -x EMBER_NUM_THREADS -x EMBER_PLUGIN_PATH -np 2)
    tsan collectives_mpi "${mpi_tsan[@]}" build-tsan/tests/dist/dist_collectives
    tsan ddp_mpi "${mpi_tsan[@]}" build-tsan/tests/dist/ddp_equivalence "Adam(lr=0.01)" 2
    tsan ddp_compress_mpi "${mpi_tsan[@]}" build-tsan/tests/dist/ddp_compress
else
    echo "skipped collectives_mpi, ddp_mpi: mpirun or the mpi plugin is missing"
fi
echo "tsan: $tsan_pass passed, $tsan_fail failed" | tee build-tsan/tsan.log
[ "$tsan_fail" -eq 0 ] || stage_rc=1

echo "== fuzz harnesses over their corpora"
# 15 s each (about 2 minutes); a finding fails the run and is kept in build-fuzz/artifacts/.
tools/fuzz.sh all 15 | tee build/fuzz.log || stage_rc=1

echo "== unit tests under valgrind"
tools/valgrind.sh build | tee build/valgrind.log || stage_rc=1

echo "== examples and the ember tool"
e2e_rc=0
tools/e2e.sh build | tee build/e2e.log || e2e_rc=$?

# One closing line over everything: Criterion's per-test counts from every run, plus e2e.
logs=(build/meson-logs/testlog.txt build-asan/meson-logs/testlog.txt
      build-asan/meson-logs/testlog-dist.txt)
if [ -f build/meson-logs/testlog-opencl.txt ]; then
    logs+=(build/meson-logs/testlog-opencl.txt)
fi
awk '/Synthesis: Tested:/ { for (i = 1; i <= NF; i++) { if ($i == "Passing:") p += $(i+1);
                                                        if ($i == "Failing:" || $i == "Crashing:") f += $(i+1) } }
     /^(e2e|valgrind|tsan|fuzz): / { p += $2; f += $4 }
     /^[0-9]+ passed, [0-9]+ failed, [0-9]+ skipped$/ { p += $1; f += $3 }
     END { printf "tests: %d passed, %d failed\n", p, f }' \
    "${logs[@]}" build-tsan/tsan.log build/fuzz.log build/valgrind.log build/e2e.log
[ "$e2e_rc" -ne 0 ] && exit "$e2e_rc"
exit "$stage_rc"
