#!/usr/bin/env bash
# tests/e2e/op_plugin.sh - the out-of-tree plugin path, end to end: installs Ember into a
# temporary prefix, builds examples/op-plugin against it with pkg-config, trains a small model
# that uses the plugin's op (softplus) with the plugin found through EMBER_PLUGIN_PATH, and runs
# the plugin's own conformance cases with the installed `ember conformance`.
# Usage: tests/e2e/op_plugin.sh [WORK_DIR]   (default: a fresh temporary folder, removed after)
set -euo pipefail
src=$(cd "$(dirname "$0")/../.." && pwd)
if [ $# -ge 1 ]; then
    work=$1
    mkdir -p "$work"
else
    work=$(mktemp -d)
    trap 'rm -rf "$work"' EXIT
fi
prefix=$work/prefix
step() { echo "== op-plugin e2e: $*"; }

step "install Ember into $prefix"
meson setup "$work/ember-build" "$src" --prefix "$prefix" --libdir lib -Dtests=disabled \
    -Dopencl=disabled -Dcuda=disabled --buildtype=plain >/dev/null   # no -O: quick to build
meson install -C "$work/ember-build" --quiet >/dev/null

step "build examples/op-plugin against it with pkg-config"
export PKG_CONFIG_PATH=$prefix/lib/pkgconfig
export LD_LIBRARY_PATH=$prefix/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
pkg-config --modversion ember
meson setup "$work/plugin-build" "$src/examples/op-plugin" >/dev/null
ninja -C "$work/plugin-build" >/dev/null

export EMBER_CONFIG= EMBER_PLUGIN_PATH=$work/plugin-build EMBER_STRICT=1
step "the installed ember finds the plugin"
"$prefix/bin/ember" info | grep -E 'softplus .*ember_softplus\.so'

step "train y = softplus(x @ w + b) for 100 steps"
"$work/plugin-build/train_softplus"

step "the plugin's conformance cases on the cpu backend"
"$prefix/bin/ember" conformance --backend cpu --op softplus | tee "$work/conformance.log"
grep -qE '^[1-9][0-9]* passed, 0 failed, 0 skipped$' "$work/conformance.log"
echo "op-plugin e2e: ok"
