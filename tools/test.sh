#!/usr/bin/env bash
# tools/test.sh - set up, build, and run every test: the unit suite, then the same suite built
# with AddressSanitizer + UndefinedBehaviorSanitizer, then the examples end to end.
set -euo pipefail
cd "$(dirname "$0")/.."
tools/setup.sh build
export EMBER_CONFIG=

echo "== unit tests"
meson test -C build --print-errorlogs --num-processes 2

echo "== unit tests under ASan + UBSan"
if [ ! -f build-asan/build.ninja ]; then
    meson setup build-asan -Db_sanitize=address,undefined -Db_lundef=false \
        --buildtype=debug >/dev/null
fi
ninja -C build-asan >/dev/null
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
    meson test -C build-asan --print-errorlogs --num-processes 2

echo "== examples and the ember tool"
tools/e2e.sh build
