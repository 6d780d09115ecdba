#!/usr/bin/env bash
# tools/bench-vs-pytorch.sh - Ember's training-step and data-epoch figures next to PyTorch's,
# measured in the same run on the same machine, with the ratio (PyTorch time / Ember time:
# above 1 means Ember is faster). Needs Debian's python3-torch (/usr/bin/python3).
# Usage: tools/bench-vs-pytorch.sh [BUILD_DIR] [--quick]
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
shift || true
export EMBER_CONFIG=
if ! /usr/bin/python3 -c 'import torch' 2>/dev/null; then
    echo "bench-vs-pytorch: skipped: torch is not importable by /usr/bin/python3 (apt-get install python3-torch)"
    exit 0
fi
ember_out=$("$build"/tools/ember bench --train "$@" | grep -E '^  (step|epoch)')
torch_out=$(/usr/bin/python3 tools/bench_torch.py "$@")
echo "OPENBLAS_CORETYPE=${OPENBLAS_CORETYPE:-(unset)}; $(tail -1 <<<"$torch_out")"
printf '%-40s %12s %12s %8s\n' "case" "ember" "pytorch" "ratio"
paste -d'|' <(echo "$ember_out") <(grep -E '^  (step|epoch)' <<<"$torch_out") |
while IFS='|' read -r e t; do
    name=$(awk '{print $1, $2, $3, $4}' <<<"$e")
    ev=$(awk '{print $5}' <<<"$e")
    tv=$(awk '{print $5}' <<<"$t")
    if [[ "$ev" =~ ^[0-9.]+$ && "$tv" =~ ^[0-9.]+$ ]]; then
        printf '%-40s %12s %12s %7.2fx\n' "$name" "$ev" "$tv" "$(echo "$tv / $ev" | bc -l)"
    else
        printf '%-40s %12s %12s %8s\n' "$name" "${ev:-?}" "${tv:-?}" "-"
    fi
done
