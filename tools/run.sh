#!/usr/bin/env bash
# tools/run.sh - the main job: set up, build, then show the runtime and run the tensor example.
set -euo pipefail
cd "$(dirname "$0")/.."
tools/setup.sh build
export EMBER_CONFIG=${EMBER_CONFIG-}
build/tools/ember info
echo
build/examples/tensors
