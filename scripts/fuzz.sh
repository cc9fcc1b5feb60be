#!/usr/bin/env bash
# Build the libFuzzer targets with clang and run each for SECONDS (default 60) from the seed corpus.
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_EACH="${1:-60}"
BUILD_DIR=build-fuzz
CC=clang CXX=clang++ cmake -S . -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DQFORGE_FUZZ=ON \
  -DQFORGE_TESTS=OFF -DCMAKE_CXX_COMPILER=clang++ >/dev/null
cmake --build "$BUILD_DIR" -j2 --target fuzz_gguf fuzz_safetensors
for t in gguf safetensors; do
  work="$BUILD_DIR/corpus-$t"
  mkdir -p "$work"
  echo "fuzz_$t: ${SECONDS_EACH}s"
  "$BUILD_DIR/fuzz/fuzz_$t" -max_total_time="$SECONDS_EACH" -max_len=65536 -rss_limit_mb=2048 \
    -print_final_stats=1 "$work" "fuzz/seeds/$t" 2>&1 | grep -E '^(stat::number_of_executed_units|stat::peak_rss_mb|#[0-9]+ +DONE)|ERROR|SUMMARY' || true
  if ls crash-* leak-* timeout-* oom-* >/dev/null 2>&1; then
    echo "fuzz_$t: found a problem"; ls crash-* leak-* timeout-* oom-* 2>/dev/null; exit 1
  fi
done
