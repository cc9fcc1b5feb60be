#!/usr/bin/env bash
# The whole test suite under ASan+UBSan, the aarch64 kernels under qemu, then each fuzzer for a bounded time.
set -euo pipefail
cd "$(dirname "$0")/.."
FUZZ_SECONDS="${QFORGE_FUZZ_SECONDS:-60}"

echo "== tests under AddressSanitizer + UndefinedBehaviorSanitizer"
QFORGE_BUILD_DIR=build-asan scripts/build.sh -DCMAKE_BUILD_TYPE=RelWithDebInfo -DQFORGE_SANITIZE=ON -DQFORGE_WERROR=ON
QFORGE_NO_PROGRESS=1 ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 \
  ctest --test-dir build-asan --output-on-failure -j2 -E "PerplexityGolden|ImatrixGolden"  # numeric golden runs: covered by the release build

echo "== aarch64 kernels under qemu (NEON, dotprod)"
scripts/cross-arm.sh

echo "== fuzzers (${FUZZ_SECONDS}s each)"
scripts/fuzz.sh "$FUZZ_SECONDS"
