#!/usr/bin/env bash
# Load test of `qforge serve` on the demo model: 16 concurrent clients (completions and chat,
# streamed and not, a quarter of the streams hung up early) against 2 slots and a queue of 6 for
# SECONDS (default 30); prints what was answered, rejected (503) and the server's memory.
# Usage: bench/serve-load.sh [SECONDS]   (after scripts/build.sh or scripts/test.sh)
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=build/tests/qforge_tests
[ -x "$BIN" ] || { echo "serve-load: build the tests first (scripts/test.sh)" >&2; exit 1; }
echo "machine: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(nproc) cores"
QFORGE_SERVE_LOAD_SECONDS="${1:-30}" QFORGE_NO_PROGRESS=1 "$BIN" --gtest_filter=Serve.BoundedLoad | grep -E "^load:|OK|FAILED"
