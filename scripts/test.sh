#!/usr/bin/env bash
# Set up, build and run every test (unit, golden against ../shared when present, CLI).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh --test
scripts/build.sh -DQFORGE_WERROR=ON
QFORGE_NO_PROGRESS=1 ctest --test-dir build --output-on-failure -j2
