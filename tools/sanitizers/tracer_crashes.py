#!/usr/bin/python3
"""tools/sanitizers/tracer_crashes.py - reads a meson testlog.json and prints, one per line,
the tests that failed only because LeakSanitizer's tracer crashed at exit ("Tracer caught
signal 11 ... LeakSanitizer has encountered a fatal error"). That happens now and then while
PoCL's worker threads wind down, after the test itself has finished; tools/test.sh runs such
tests once more, alone. Exits 1 (printing nothing) when any other test failed.
Usage: tracer_crashes.py TESTLOG_JSON
"""
import json
import sys

flaky, other = [], []
with open(sys.argv[1]) as f:
    for line in f:
        t = json.loads(line)
        if t["result"] in ("OK", "SKIP", "EXPECTEDFAIL"):
            continue
        err = (t.get("stderr") or "") + (t.get("stdout") or "")
        tracer = "Tracer caught signal" in err and "LeakSanitizer has encountered a fatal error" in err
        (flaky if tracer else other).append(t["name"].split(" / ")[-1])
if other:
    sys.exit(1)
print("\n".join(flaky))
