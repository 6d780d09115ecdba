#!/usr/bin/env bash
# tools/fuzz.sh - builds the libFuzzer harnesses (clang, ASan + UBSan, into build-fuzz/) and
# runs one, or each, for a number of seconds over its corpus. New inputs go to
# build-fuzz/corpus/NAME (the seeds in tests/fuzz/corpus/NAME are read, never written);
# crashes to build-fuzz/artifacts/. Closing line: "fuzz: N passed, N failed".
# Usage: tools/fuzz.sh NAME|all [SECONDS] [libFuzzer options...]   NAME: spec, config, ...
# FUZZ_AVOID_KNOWN=1 makes the harnesses skip the input shapes of known, open findings (see
# tests/fuzz/fuzz_common.h), so that a long campaign gets past them.
set -euo pipefail
cd "$(dirname "$0")/.."
name=${1:?usage: tools/fuzz.sh NAME|all [SECONDS] [libFuzzer options...]}
secs=${2:-60}
shift $(( $# < 2 ? $# : 2 ))
build=build-fuzz
all_names=(spec config train_config csv idx safetensors optim_state plugin_descriptor)

# clang and libFuzzer (libclang-rt-14-dev carries libclang_rt.fuzzer), plus the build deps.
need=()
for pkg in clang libclang-rt-14-dev; do
    dpkg -s "$pkg" >/dev/null 2>&1 || need+=("$pkg")
done
if [ ${#need[@]} -gt 0 ]; then
    echo "fuzz: installing ${need[*]}"
    sudo_cmd=""
    [ "$(id -u)" -eq 0 ] || sudo_cmd="sudo"
    $sudo_cmd apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq "${need[@]}" >/dev/null
fi
if [ ! -f "$build/build.ninja" ]; then
    tools/setup.sh build >/dev/null   # the other build dependencies
    CC=clang meson setup "$build" -Dfuzz=true -Dtests=disabled -Dopencl=disabled -Dcuda=disabled \
        -Db_sanitize=address,undefined -Db_lundef=false --buildtype=debugoptimized \
        -Dwerror=true >/dev/null
fi
if ! ninja -C "$build" >"$build/ninja.log" 2>&1; then
    grep -E -B2 -A6 'error|FAILED' "$build/ninja.log" | head -40
    echo "the fuzz harnesses did not build (log: $build/ninja.log)"
    echo "fuzz: 0 passed, 1 failed"
    exit 1
fi

export EMBER_CONFIG= ASAN_OPTIONS=detect_leaks=1:allocator_may_return_null=1
export UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
export LSAN_OPTIONS=suppressions=$PWD/tools/sanitizers/lsan.supp:print_suppressions=0

run_one() {
    local n=$1 exe=$build/tests/fuzz/fuzz_$1 work=$build/corpus/$1 dict=tests/fuzz/$1.dict
    shift
    mkdir -p "$work" "$build/artifacts"
    local opts=(-max_total_time="$secs" -timeout=20 -rss_limit_mb=2560 -malloc_limit_mb=2048
                -print_final_stats=1 -artifact_prefix="$build/artifacts/$n-")
    [ -f "$dict" ] && opts+=(-dict="$dict")
    # train.c reports every bad config on stderr; libFuzzer keeps its own output.
    [ "$n" = train_config ] && opts+=(-close_fd_mask=2)
    echo "== fuzz_$n for ${secs}s"
    "$exe" "${opts[@]}" "$@" "$work" "tests/fuzz/corpus/$n" >"$build/fuzz-$n.log" 2>&1
    local rc=$?
    grep -E '^#[0-9]+.*(DONE|pulse)|stat::number_of_executed_units|stat::peak_rss_mb' \
        "$build/fuzz-$n.log" | tail -3
    if [ $rc -ne 0 ]; then
        grep -E 'ERROR:|SUMMARY:|fuzz: .*check failed|Test unit written|runtime error' \
            "$build/fuzz-$n.log" | head -8
        echo "FAIL fuzz_$n (exit $rc; log: $build/fuzz-$n.log)"
    else
        echo "PASS fuzz_$n"
    fi
    return $rc
}

names=("$name")
[ "$name" = all ] && names=("${all_names[@]}")
pass=0 fail=0
for n in "${names[@]}"; do
    if [ ! -x "$build/tests/fuzz/fuzz_$n" ]; then
        echo "fuzz: no harness named '$n' (known: ${all_names[*]})" >&2
        exit 2
    fi
    if run_one "$n" "$@"; then pass=$((pass + 1)); else fail=$((fail + 1)); fi
done
echo "fuzz: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
