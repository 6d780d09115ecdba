#!/usr/bin/env bash
# tools/bench-dist.sh - data-parallel scaling: N ranks x 1 thread against one rank x 1 thread and
# one rank x N threads, alternated in the same minutes, with medians and the scaling figure
# (N ranks' samples/s over N times one rank's). A benchmark, never a test.
#
# Usage: tools/bench-dist.sh [BUILD_DIR] [--quick]
#   BUILD_DIR (default build) holds the ember tool; N is BENCH_RANKS (default 2); --quick runs
#   `ember bench --dist --train --quick` (a quarter of the steps) instead of the full epochs;
#   BENCH_ROUNDS (default 3, --quick 1) rounds of the three runs, the order rotated each round.
# Each run is `ember bench --dist --train`: two synthetic Fashion-MNIST-shaped cases with a
# fixed batch per rank (weak scaling, as `mpirun -np N ember train` reads a config's
# batch_size), float32 gradients (and bf16, reported on the side). The ranks start through
# tools/mpirun.sh (shared memory, oversubscription allowed, no binding). Needs mpirun and the
# mpi plugin: without them, a "skipped: ..." line and exit 0.
# On a shared machine run it as root under `chrt -f 50` so that other jobs cannot preempt it.
set -euo pipefail
cd "$(dirname "$0")/.."
bench="bench-dist"
source tools/bench-args.sh
ranks=${BENCH_RANKS:-2}
if ! [[ "$ranks" =~ ^[1-9][0-9]*$ ]]; then
    echo "bench-dist: BENCH_RANKS must be a positive integer, not '$ranks'" >&2
    exit 2
fi
if ! command -v mpirun >/dev/null 2>&1; then
    echo "skipped: mpirun not found (install openmpi-bin: tools/setup.sh)"
    exit 0
fi
if ! "$ember" info 2>/dev/null | grep -q "communicator mpi"; then
    echo "skipped: $ember has no mpi plugin (install libopenmpi-dev, then rebuild)"
    exit 0
fi
flags=(bench --dist --train)
[ "$quick" = 1 ] && flags+=(--quick)
runs=$(mktemp -d)
trap 'rm -rf "$runs"' EXIT

# run NAME: one configuration, its output in $runs/NAME.ROUND
run() {
    local out=$runs/$1.$2
    case "$1" in
        one) EMBER_NUM_THREADS=1 "$ember" "${flags[@]}" >"$out" ;;
        threads) EMBER_NUM_THREADS=$ranks "$ember" "${flags[@]}" >"$out" ;;
        ranks) tools/mpirun.sh -np "$ranks" -x EMBER_NUM_THREADS=1 "$ember" "${flags[@]}" \
                    >"$out" ;;
    esac
}
order=(one ranks threads)
for ((r = 1; r <= rounds; r++)); do
    for ((k = 0; k < 3; k++)); do
        run "${order[(r + k) % 3]}" "$r"
    done
done

cpu=$(grep -m1 'model name' /proc/cpuinfo | sed 's/.*: //')
echo "data-parallel scaling, $ranks ranks, $rounds round(s) alternating; $cpu, $(nproc) CPUs;" \
     "$(date -u '+%Y-%m-%d %H:%M UTC')"
# samples/s of case C (1-based, in the order the bench prints them) in configuration NAME,
# float32 gradients: the median over the rounds
median() {
    local name=$1 case=$2
    for f in "$runs/$name".*; do
        awk -v c="$case" '/ a rank, / { n++ } n == c && /samples\/s/ && !/bf16/ {
            for (i = 1; i <= NF; i++) if ($(i + 1) ~ /^samples\/s/) { print $i; exit } }' "$f"
    done | sort -n | awk '{ v[NR] = $1 }
        END { if (NR % 2) print v[(NR + 1) / 2]; else if (NR) print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}
ncases=$(grep -c " a rank, " "$runs/one.1")
for ((c = 1; c <= ncases; c++)); do
    grep " a rank, " "$runs/one.1" | sed -n "${c}p" | sed 's/, [0-9]* samples an epoch.*//'
    one=$(median one "$c")
    thr=$(median threads "$c")
    rk=$(median ranks "$c")
    awk -v one="$one" -v thr="$thr" -v rk="$rk" -v n="$ranks" 'BEGIN {
        printf "  1 rank x 1 thread   %9.0f samples/s\n", one
        printf "  1 rank x %d threads  %9.0f samples/s  (%.0f%% of %d x one rank)\n",
               n, thr, 100 * thr / (n * one), n
        printf "  %d ranks x 1 thread  %9.0f samples/s  (%.0f%% of %d x one rank; %.2fx the threads)\n",
               n, rk, 100 * rk / (n * one), n, rk / thr }'
done
