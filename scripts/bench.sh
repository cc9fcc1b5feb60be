#!/usr/bin/env bash
# Build and run the micro-benchmarks in bench/; prints the machine first. Extra args go to the benchmark.
set -euo pipefail
cd "$(dirname "$0")/.."
QFORGE_BUILD_DIR=build-bench scripts/build.sh -DQFORGE_BENCH=ON -DQFORGE_TESTS=OFF >/dev/null
echo "machine: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(nproc) cores, $(uname -sr)"
build-bench/bench/bench_quant --benchmark_min_time=0.2 "$@"
build-bench/bench/bench_kernels --benchmark_min_time=0.2 "$@"
