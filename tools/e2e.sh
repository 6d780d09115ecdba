#!/usr/bin/env bash
# tools/e2e.sh - end-to-end checks of the `ember` tool and the examples in BUILD_DIR.
set -uo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
export EMBER_CONFIG=
pass=0 fail=0

check() {   # check NAME EXPECTED_RC PATTERN -- command...
    local name=$1 want_rc=$2 pattern=$3
    shift 4
    local out rc
    out=$("$@" 2>&1)
    rc=$?
    if [ "$rc" -eq "$want_rc" ] && grep -qE -- "$pattern" <<<"$out"; then
        pass=$((pass + 1))
    else
        fail=$((fail + 1))
        echo "FAIL: $name (exit $rc, wanted $want_rc; pattern '$pattern')"
        echo "$out" | sed 's/^/    /' | head -20
    fi
}

ember=$build/tools/ember
check "info lists the cpu backend" 0 'cpu +available: yes' -- "$ember" info
check "info shows the plugin file" 0 'ember_cpu\.so' -- "$ember" info
check "info shows config sources" 0 'runtime\.backend.*default' -- "$ember" info
check "help" 0 'usage: ember' -- "$ember" --help
check "unknown command" 2 "unknown command 'frobnicate'" -- "$ember" frobnicate
check "unknown info argument" 2 "unknown argument '--bogus'" -- "$ember" info --bogus
check "missing config file" 1 'nonexistent\.ini' -- "$ember" info --config /nonexistent.ini
check "unknown backend" 1 "unknown backend 'tpu'" -- env EMBER_BACKEND=tpu "$ember" info
check "bad plugin dir is reported" 0 'does not exist' -- env EMBER_PLUGIN_PATH=/nonexistent "$ember" info
check "tensor example" 0 'tensor\(\[\[999, +2, +3\]' -- "$build/examples/tensors"
check "bench runs" 0 'dispatch overhead' -- "$ember" bench --quick

# The conformance runner: passes, skips (never counted as passes), and the planted bugs of
# tests/conformance/faulty that it must catch.
check "conformance on cpu" 0 '^[1-9][0-9]* passed, 0 failed, 0 skipped$' -- \
    "$ember" conformance --backend cpu --op softmax --junit "$build/conformance-e2e.xml"
check "conformance writes JUnit XML" 0 '<testcase classname="conformance.cpu.softmax"' -- \
    cat "$build/conformance-e2e.xml"
check "conformance skips what a backend lacks" 0 '^[1-9][0-9]* passed, 0 failed, [1-9][0-9]* skipped$' -- \
    env EMBER_PLUGIN_PATH="$build/tests/plugins/mockdev" "$ember" conformance --backend mock
if "$ember" info | grep -qE '^  cuda +available: no.*no plugin provides it'; then
    check "conformance on an absent backend is all skipped" 0 '^0 passed, 0 failed, [1-9][0-9]* skipped$' -- \
        "$ember" conformance --backend cuda
fi
check "conformance: unknown backend" 1 "unknown backend 'tpu'" -- "$ember" conformance --backend tpu
faulty=(env EMBER_PLUGIN_PATH="$build/tests/conformance/faulty" "$ember" conformance --backend faulty)
check "conformance catches a wrong value" 1 'FAIL add f32 same shape .*max abs err' -- \
    "${faulty[@]}" --op add --dtype f32
check "conformance catches NaN where the reference has none" 1 'FAIL exp f32 .*got nan' -- \
    "${faulty[@]}" --op exp --dtype f32
check "conformance guard values catch writes outside a view" 1 \
    'FAIL copy f32 copy_ into every other element .*expected 77' -- "${faulty[@]}" --op copy --dtype f32
check "conformance --support" 0 'softmax +Y +Y +Y +Y +\. +\. +\. +\.' -- \
    "$ember" conformance --support --backend cpu
check "conformance --list" 0 '^[0-9]+ cases, [0-9]+ case-dtype instances$' -- \
    "$ember" conformance --list
# An op plugin built out of tree against an installed Ember (about half a minute).
check "out-of-tree op plugin, end to end" 0 '^op-plugin e2e: ok$' -- tests/e2e/op_plugin.sh

echo "e2e: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
