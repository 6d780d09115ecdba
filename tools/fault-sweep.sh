#!/usr/bin/env bash
# tools/fault-sweep.sh - the allocation and I/O fault sweeps (tests/faults/) in full: every
# injection point instead of the sample the unit suite tries. Prints each problem (target,
# kind, N, what went wrong, where the failed call was made) and one summary line per sweep.
# Usage: tools/fault-sweep.sh [BUILD_DIR] [CRITERION_FILTER]   e.g. 'faults/a_training*'
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
filter=${2:-}
if [ ! -f "$build/build.ninja" ]; then
    tools/setup.sh "$build"
fi
ninja -C "$build" tests/faults/faults_sweep >/dev/null
args=(-j1)
[ -n "$filter" ] && args+=("--filter=$filter")
EMBER_CONFIG= EMBER_PLUGIN_PATH= EMBER_FAULT_STRIDE=1 "$build/tests/faults/faults_sweep" "${args[@]}"
