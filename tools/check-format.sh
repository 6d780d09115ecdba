#!/usr/bin/env bash
# tools/check-format.sh - checks that the C lines changed since a base commit follow
# .clang-format. Only changed lines are judged (git clang-format), so the check never asks for
# a reformat of code nobody touched; where clang-format would only move line breaks, the hand
# layout stands (see below). Needs python3 (the judge) besides clang-format.
# Usage: tools/check-format.sh [BASE]  (default: the merge base with main, else HEAD~1).
# Exit 0 when clean, 1 with the diff to apply, 77 (skipped, with the reason) when clang-format
# or the base commit is missing.
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
if ! git rev-parse -q --verify "$base^{commit}" >/dev/null; then
    echo "check-format: skipped: no base commit '$base' in this checkout (a shallow clone?)"
    exit 77
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
# What is judged: spacing within lines (around operators, after keywords and commas, pointer
# stars) and the indentation a changed block starts at. Where clang-format would only break
# lines elsewhere, or re-space a trailing /* comment, the hand layout stands: clang-format 14
# cannot reproduce the tree's wrapping of error messages and designated-initialiser tables.
strict=$(echo "$out" | python3 -c '
import re, sys
hunks, cur = [], None
for line in sys.stdin.read().splitlines():
    if line.startswith("@@") or line.startswith("diff --git"):
        cur = {"-": [], "+": [], "changed": False}
        hunks.append(cur)
    elif cur is None or line.startswith(("---", "+++", "index ")):
        continue
    elif line[:1] in "-+":
        cur[line[0]].append(line[1:])
        cur["changed"] = True
    elif line[:1] == " ":                        # context: on both sides
        cur["-"].append(line[1:])
        cur["+"].append(line[1:])
def flat(lines):   # the text with line breaks (and the spaces a break leaves) taken out
    t = re.sub(r"\s+", " ", " ".join(l.rstrip("\\") for l in lines)).strip()
    return re.sub(r"([({]) | ([)}])", r"\1\2", t)
def indent(lines):
    return len(lines[0]) - len(lines[0].lstrip()) if lines else 0
def starts(side):   # lines that begin a statement (not continuations): text -> indentation
    out, prev = {}, ";"
    for l in side:
        if not l.strip():
            continue
        if prev.endswith((";", "{", "}", "*/", ":", ")", "else")) or prev.startswith("#"):
            out.setdefault(l.strip(), indent([l]))
        prev = l.strip()
    return out
def reindented(h):
    a, b = starts(h["-"]), starts(h["+"])
    return any(a[k] != b[k] for k in a.keys() & b.keys())
bad = [h for h in hunks if h["changed"] if flat(h["-"]) != flat(h["+"]) or reindented(h)]
print(len(bad))
')
if [ "$strict" = 0 ]; then
    echo "check-format: ${#files[@]} changed file(s) since $base follow .clang-format" \
         "(line breaks and trailing comment spacing aside)"
    exit 0
fi
echo "$out"
echo "check-format: lines changed since $base differ from .clang-format (apply the diff above," \
     "or run: git clang-format $base)"
exit 1
