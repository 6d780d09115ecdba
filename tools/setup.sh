#!/usr/bin/env bash
# tools/setup.sh - installs what is missing on Debian 12 and builds Ember into build/.
# Idempotent: a second run only rebuilds what changed. Usage: tools/setup.sh [BUILD_DIR]
# EMBER_WERROR=1 (tools/test.sh sets it) makes every compiler warning an error in that build
# (meson's werror option); a user build leaves warnings as warnings. The compiler's output is
# shown, so a CI log has the warnings in it.
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}

need=()
# Build tools and libraries; PoCL runs the OpenCL backend on the CPU, so CI tests it for real.
# locales: the de_DE.UTF-8 locale the locale tests run under (generated below).
# cairo is optional (PNG pictures from `ember plot`); installed here so that CI tests them.
# libdlpack-dev: em_to_dlpack/em_from_dlpack; python3-numpy: the NumPy interop test.
# clang-format: tools/check-format.sh (git clang-format), the format stage of tools/test.sh.
# Open MPI: the mpi communicator plugin and the 'dist' test suite; dataset-fashion-mnist
# (30 MB): examples/fashion-mnist.ini and the test that 2 ranks reach 1 rank's accuracy.
for pkg in meson ninja-build pkg-config gcc libcriterion-dev zlib1g-dev \
           libjansson-dev valgrind ocl-icd-opencl-dev opencl-headers pocl-opencl-icd locales \
           libdlpack-dev python3-numpy libcairo2-dev \
           libopenmpi-dev openmpi-bin dataset-fashion-mnist clang-format; do
    dpkg -s "$pkg" >/dev/null 2>&1 || need+=("$pkg")
done
sudo_cmd=""
[ "$(id -u)" -eq 0 ] || sudo_cmd="sudo"
if [ ${#need[@]} -gt 0 ]; then
    echo "setup: installing ${need[*]}"
    $sudo_cmd apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq "${need[@]}" >/dev/null
fi
# A locale with a decimal comma, so the tests can check that numbers never follow the locale.
if ! locale -a 2>/dev/null | grep -qix 'de_DE\.utf-\?8'; then
    echo "setup: generating the de_DE.UTF-8 locale"
    $sudo_cmd sed -i 's/^# *de_DE.UTF-8 UTF-8/de_DE.UTF-8 UTF-8/' /etc/locale.gen
    $sudo_cmd locale-gen >/dev/null
fi

werror=false
[ "${EMBER_WERROR:-0}" = 1 ] && werror=true
if [ ! -f "$build/build.ninja" ]; then
    meson setup "$build" --buildtype=debugoptimized -Dwerror="$werror"
elif [ "$werror" = true ] &&
     ! meson introspect "$build" --buildoptions | grep -q '"name": "werror", "value": true'; then
    meson configure "$build" -Dwerror=true   # an existing build turned strict (never back)
fi
ninja -C "$build"
echo "setup: built into $build/"
