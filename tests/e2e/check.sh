# tests/e2e/check.sh - the check helper of the end-to-end scripts (sourced, not run).
# check NAME EXPECTED_RC PATTERN -- command...: runs the command, and counts a pass when it
# exits with EXPECTED_RC and its output (stdout and stderr) matches the extended regex PATTERN.
pass=0 fail=0
check() {
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
