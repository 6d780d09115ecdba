# tools/bench-args.sh - the command line every tools/bench-*.sh script takes, sourced by them:
#   tools/bench-NAME.sh [BUILD_DIR] [--quick]
# Sets build (default build), quick (0 or 1), rounds (BENCH_ROUNDS, else 1 with --quick and 3
# without) and ember (BUILD_DIR's tool, which must exist), and empties EMBER_CONFIG so that no
# user config changes the figures. The caller sets `bench` (its name, for messages) first.
# shellcheck shell=bash disable=SC2154
build=build
quick=0
for a in "$@"; do
    case "$a" in
        --quick) quick=1 ;;
        -*) echo "usage: tools/$bench.sh [BUILD_DIR] [--quick]" >&2; exit 2 ;;
        *) build=$a ;;
    esac
done
rounds=${BENCH_ROUNDS:-$((quick ? 1 : 3))}
if ! [[ "$rounds" =~ ^[1-9][0-9]*$ ]]; then
    echo "$bench: BENCH_ROUNDS must be a positive integer, not '$rounds'" >&2
    exit 2
fi
ember=$build/tools/ember
if [ ! -x "$ember" ]; then
    echo "$bench: $ember not found: build Ember first (tools/setup.sh $build)" >&2
    exit 1
fi
export EMBER_CONFIG=
