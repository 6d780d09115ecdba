#!/usr/bin/env bash
# tools/setup.sh - installs what is missing on Debian 12 and builds Ember into build/.
# Idempotent: a second run only rebuilds what changed. Usage: tools/setup.sh [BUILD_DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}

need=()
# Build tools and libraries; PoCL runs the OpenCL backend on the CPU, so CI tests it for real.
# cairo is optional (PNG pictures from `ember plot`); installed here so that CI tests them.
for pkg in meson ninja-build pkg-config gcc libcriterion-dev libopenblas-dev zlib1g-dev \
           libjansson-dev valgrind ocl-icd-opencl-dev opencl-headers pocl-opencl-icd \
           libcairo2-dev; do
    dpkg -s "$pkg" >/dev/null 2>&1 || need+=("$pkg")
done
if [ ${#need[@]} -gt 0 ]; then
    echo "setup: installing ${need[*]}"
    sudo_cmd=""
    [ "$(id -u)" -eq 0 ] || sudo_cmd="sudo"
    $sudo_cmd apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq "${need[@]}" >/dev/null
fi

if [ ! -f "$build/build.ninja" ]; then
    meson setup "$build" --buildtype=debugoptimized >/dev/null
fi
ninja -C "$build" >/dev/null
echo "setup: built into $build/"
