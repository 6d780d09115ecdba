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

echo "e2e: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
