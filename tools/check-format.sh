#!/usr/bin/env bash
# tools/check-format.sh - checks that the C lines changed since a base commit follow
# .clang-format. Only changed lines are judged (git clang-format), so the check never asks for
# a reformat of code nobody touched. Usage: tools/check-format.sh [BASE]  (default: main, else
# HEAD~1). Exit 0 when clean, 1 with the diff to apply, 77 when clang-format is not installed.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v clang-format >/dev/null 2>&1 || ! git clang-format -h >/dev/null 2>&1; then
    echo "check-format: skipped: clang-format (and git clang-format) not installed"
    exit 77
fi
base=${1:-}
if [ -z "$base" ]; then
    if git rev-parse -q --verify main >/dev/null; then base=$(git merge-base HEAD main)
    else base=HEAD~1; fi
fi
mapfile -t files < <(git diff --name-only --diff-filter=ACMR "$base" -- \
                         '*.c' '*.h' '*.cu' '*.cuh' | while read -r f; do
                         [ -f "$f" ] && echo "$f"; done)
if [ ${#files[@]} -eq 0 ]; then
    echo "check-format: no C files changed since $base"
    exit 0
fi
out=$(git clang-format --binary "$(command -v clang-format)" --diff "$base" -- "${files[@]}" \
      || true)
if [ -z "$out" ] || echo "$out" | grep -qE '^(no modified files to format|clang-format did not modify any files)$'; then
    echo "check-format: ${#files[@]} changed file(s) since $base follow .clang-format"
    exit 0
fi
# clang-format puts one space before a trailing /* comment; the tree often puts two or three
# (no option keeps them). A diff that changes only that spacing is not a failure.
side() {   # the removed (-) or added (+) lines of the diff, comment spacing evened out
    echo "$out" | grep -E "^[$1][^$1]|^[$1]\$" | cut -c2- | sed -E 's/[[:space:]]+\/\*/ \/*/g' | sort
}
if [ "$(side -)" = "$(side +)" ]; then
    echo "check-format: ${#files[@]} changed file(s) since $base follow .clang-format" \
         "(trailing comment spacing aside)"
    exit 0
fi
echo "$out"
echo "check-format: lines changed since $base differ from .clang-format (apply the diff above," \
     "or run: git clang-format $base)"
exit 1
