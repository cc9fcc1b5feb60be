#!/usr/bin/env bash
# The main job on the bundled demo model: set up, build, then quantize it to every format and
# measure each (size, memory, speed, perplexity, KL divergence) into report-demo/.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
scripts/build.sh
./build/qforge report models/tiny-demo-8m -o report-demo
