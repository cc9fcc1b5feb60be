#!/usr/bin/env bash
# The main job on the bundled demo model: set up, build, then inspect it.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
scripts/build.sh
./build/qforge inspect models/tiny-demo-8m
