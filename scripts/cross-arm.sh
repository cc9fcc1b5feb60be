#!/usr/bin/env bash
# The Apple Silicon / ARM path: cross-compile the kernel check for aarch64 and run it under
# qemu-aarch64 with a CPU model that has NEON, dotprod and i8mm (-cpu max).
set -euo pipefail
cd "$(dirname "$0")/.."
CXX=aarch64-linux-gnu-g++
command -v "$CXX" >/dev/null || { echo "cross-arm: $CXX not installed (scripts/setup.sh --test)"; exit 1; }
OUT=build-arm
mkdir -p "$OUT"
SRC="tests/standalone/kernel_check.cpp src/kernels/cpu.cpp src/kernels/gemm.cpp src/kernels/neon.cpp src/kernels/vec_dot.cpp src/quant/types.cpp
     src/quant/float.cpp src/quant/legacy.cpp src/quant/kquants.cpp src/quant/kquant_search.cpp src/quant/iquants.cpp
     src/quant/quantize.cpp src/quant/affine.cpp src/quant/affine_blocks.cpp src/core/error.cpp"
# shellcheck disable=SC2086
"$CXX" -std=c++20 -O2 -Wall -Wextra -Werror -ffp-contract=off -march=armv8-a -Iinclude -Isrc $SRC -o "$OUT/kernel_check" -static -pthread
for cpu in max cortex-a53; do
  echo "== qemu-aarch64 -cpu $cpu"
  qemu-aarch64 -cpu "$cpu" "$OUT/kernel_check"
done
