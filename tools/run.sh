#!/usr/bin/env bash
# tools/run.sh - the main job: set up, build, then train the bundled digits model with
# `ember train examples/digits.ini` on the default backend.
set -euo pipefail
cd "$(dirname "$0")/.."
tools/setup.sh build
build/tools/ember train examples/digits.ini
