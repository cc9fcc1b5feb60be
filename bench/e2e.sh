#!/usr/bin/env bash
# End-to-end speed: qforge bench on synth models of real shapes, with generation bandwidth against
# the machine's measured memory bandwidth. Usage: bench/e2e.sh [--7b] [threads]
# Run nothing else meanwhile: these machines are shared and noisy.
set -euo pipefail
cd "$(dirname "$0")/.."
WITH_7B=0
if [ "${1:-}" = "--7b" ]; then WITH_7B=1; shift; fi
T="${1:-2}"
QFORGE_BUILD_DIR=build-bench scripts/build.sh -DQFORGE_BENCH=ON -DQFORGE_TESTS=OFF >/dev/null
Q=build-bench/qforge
mkdir -p bench-models
echo "machine: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(nproc) cores; threads $T"
BW_LINE=$(build-bench/bench/bench_stream "$T" 1024)
echo "$BW_LINE"
READ_GBS=$(echo "$BW_LINE" | sed -E 's/.*read ([0-9.]+) GB\/s.*/\1/')
run() {  # preset type
  local f="bench-models/$1-$2.gguf"
  [ -f "$f" ] || "$Q" synth --preset "$1" --type "$2" -o "$f" -t "$T" >/dev/null
  "$Q" bench -m "$f" -p 64 -n 32 -r 3 -t "$T" -o json | python3 -c "
import json,sys
r=json.load(sys.stdin)[0]; bw=float('$READ_GBS')
gbs=r['tg_tokens_per_s']*r['size_bytes']/1e9
print(f\"| $1 | $2 | {r['size_bytes']/1e6:.0f} MB | {r['pp_tokens_per_s']:.1f} ± {r['pp_stddev']:.1f} | {r['tg_tokens_per_s']:.2f} ± {r['tg_stddev']:.2f} | {gbs:.1f} GB/s ({100*gbs/bw:.0f}% of read) |\")"
}
echo "| shape | type | weights | pp64 t/s | tg32 t/s | generation bandwidth |"
echo "|---|---|---:|---:|---:|---:|"
for t in F16 Q8_0 Q6_K Q5_K_M Q5_0 Q4_K_M Q4_0 Q3_K_M Q2_K; do run tinyllama-1.1b "$t"; done
if [ "$WITH_7B" = 1 ]; then for t in Q4_0 Q4_K_M; do run llama2-7b "$t"; done; fi
