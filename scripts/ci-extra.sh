#!/usr/bin/env bash
# The test suite (less its longest runs) under ASan+UBSan, the aarch64 kernels under qemu, then each
# fuzzer for a bounded time. Each part prints how long it took.
set -euo pipefail
cd "$(dirname "$0")/.."
FUZZ_SECONDS="${QFORGE_FUZZ_SECONDS:-60}"

echo "== tests under AddressSanitizer + UndefinedBehaviorSanitizer"
# -O1 with line tables only (-g1: file:line in the reports) compiles ~40% faster than -O2 -g.
QFORGE_BUILD_DIR=build-asan scripts/build.sh -DCMAKE_BUILD_TYPE=RelWithDebInfo "-DCMAKE_CXX_FLAGS_RELWITHDEBINFO=-O1 -g1 -DNDEBUG" \
  -DQFORGE_SANITIZE=ON -DQFORGE_WERROR=ON
# Left out here, run by the release build only: the numeric golden runs, and end-to-end runs that
# repeat on more data or more formats what a lighter test of the same code already runs here
# (each over 40 s under the sanitizers on a 2-core machine).
LONG="PerplexityGolden|ImatrixGolden|ConvertGolden.TinyLlamaConvertedThenQuantized|QuantGolden.EveryTensorOfTinyDemo"
LONG+="|Awq.CalibratedMethodsEndToEnd|QuantizeCli.TargetSizeMix|Report.CalibratedRows"
LONG+="|GpuShaders.MatvecWithoutIntegerDot|GpuShaders.MatvecOneGroup|GpuModel.TinyLlamaMatchesTheCpu|MlxDir.OtherWidthsRunOnTheirOwnCodes"
QFORGE_NO_PROGRESS=1 ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 \
  ctest --test-dir build-asan --output-on-failure -j2 -E "$LONG"

echo "== sanitizer build and tests: $((SECONDS / 60)) min $((SECONDS % 60)) s"; SECONDS=0
echo "== aarch64 kernels under qemu (NEON, dotprod)"
scripts/cross-arm.sh

echo "== aarch64: $((SECONDS / 60)) min $((SECONDS % 60)) s"; SECONDS=0
echo "== fuzzers (${FUZZ_SECONDS}s each)"
scripts/fuzz.sh "$FUZZ_SECONDS"
echo "== fuzzers, build included: $((SECONDS / 60)) min $((SECONDS % 60)) s"
