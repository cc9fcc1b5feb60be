#!/usr/bin/env bash
# End-to-end speed: qforge bench on synth models of real shapes, with generation bandwidth against
# the machine's measured memory bandwidth, and llama.cpp's llama-bench on the same files side by
# side when LLAMA_BENCH names its binary. Usage: [LLAMA_BENCH=path] [TYPES="Q4_0 ..."] bench/e2e.sh [--7b] [threads]
# Run nothing else meanwhile: these machines are shared and noisy (the bandwidth available has been
# seen to change from 36 to 58 GB/s within minutes), so the read bandwidth is measured again right
# before each model, and the generation bandwidth is given against that.
set -euo pipefail
cd "$(dirname "$0")/.."
WITH_7B=0
if [ "${1:-}" = "--7b" ]; then WITH_7B=1; shift; fi
T="${1:-2}"
REPS="${REPS:-3}"
QFORGE_BUILD_DIR=build-bench scripts/build.sh -DQFORGE_BENCH=ON -DQFORGE_TESTS=OFF >/dev/null
Q=build-bench/qforge
mkdir -p bench-models
echo "machine: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(nproc) cores; threads $T; $REPS repetitions"
echo "$(build-bench/bench/bench_stream "$T" 1024)"
run() {  # preset type
  local f="bench-models/$1-$2.gguf"
  [ -f "$f" ] || "$Q" synth --preset "$1" --type "$2" -o "$f" -t "$T" >/dev/null
  local READ_GBS
  READ_GBS=$(build-bench/bench/bench_stream "$T" 1024 | sed -E 's/.*read ([0-9.]+) GB\/s.*/\1/')
  # With llama.cpp, the two alternate one repetition at a time (each after its own warm-up), so
  # that the machine's drifting noise meets both alike; the ratio is also given pair by pair.
  local qj="[" lj="["
  if [ -n "${LLAMA_BENCH:-}" ]; then
    for i in $(seq "$REPS"); do
      [ "$i" = 1 ] || { qj+=","; lj+=","; }
      qj+=$("$Q" bench -m "$f" -p 64 -n 32 -r 1 -t "$T" -o json)
      lj+=$("$LLAMA_BENCH" -m "$f" -p 64 -n 32 -r 1 -t "$T" -o json 2>/dev/null)
    done
  else
    qj+=$("$Q" bench -m "$f" -p 64 -n 32 -r "$REPS" -t "$T" -o json)
  fi
  qj+="]" lj+="]"
  python3 - "$1" "$2" "$READ_GBS" "$qj" "$lj" <<'PY'
import json, statistics, sys
shape, typ, bw, qj, lj = sys.argv[1], sys.argv[2], float(sys.argv[3]), json.loads(sys.argv[4]), json.loads(sys.argv[5])
def ms(v):
    return f"{statistics.mean(v):.2f} ± {statistics.stdev(v) if len(v) > 1 else 0:.2f}"
if not lj:  # one run of REPS repetitions
    r = qj[0][0]
    qpp, qtg = (r['pp_tokens_per_s'], r['pp_stddev']), (r['tg_tokens_per_s'], r['tg_stddev'])
    qpp_s, qtg_s = f"{qpp[0]:.1f} ± {qpp[1]:.1f}", f"{qtg[0]:.2f} ± {qtg[1]:.2f}"
    qtg_mean = qtg[0]
else:
    r = qj[0][0]
    pp = [x[0]['pp_tokens_per_s'] for x in qj]
    tg = [x[0]['tg_tokens_per_s'] for x in qj]
    qpp_s, qtg_s, qtg_mean = ms(pp), ms(tg), statistics.mean(tg)
gbs = qtg_mean * r['size_bytes'] / 1e9
row = f"| {shape} | {typ} | {r['size_bytes']/1e6:.0f} MB | {qpp_s} |"
if lj:
    lpp = [next(x for x in run if x['n_prompt'] > 0)['avg_ts'] for run in lj]
    ltg = [next(x for x in run if x['n_gen'] > 0)['avg_ts'] for run in lj]
    def ratio(q, l):
        pairs = [a / b for a, b in zip(q, l)]
        return f"{statistics.mean(q) / statistics.mean(l):.2f}× ({min(pairs):.2f}–{max(pairs):.2f})"
    row += f" {ms(lpp)} | {ratio(pp, lpp)} | {qtg_s} | {ms(ltg)} | {ratio(tg, ltg)} |"
else:
    row += f" {qtg_s} |"
row += f" {gbs:.1f} GB/s ({100*gbs/bw:.0f}% of {bw:.1f}) |"
print(row)
PY
}
if [ -n "${LLAMA_BENCH:-}" ]; then
  echo "| shape | type | weights | qforge pp64 t/s | llama.cpp pp64 | ratio (pairs) | qforge tg32 t/s | llama.cpp tg32 | ratio (pairs) | qforge generation bandwidth (share of the read bandwidth measured just before) |"
  echo "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|"
else
  echo "| shape | type | weights | pp64 t/s | tg32 t/s | generation bandwidth (share of the read bandwidth measured just before) |"
  echo "|---|---|---:|---:|---:|---:|"
fi
for t in ${TYPES:-F16 Q8_0 Q6_K Q5_K_M Q5_0 Q4_K_M Q4_0 Q3_K_M Q2_K}; do run tinyllama-1.1b "$t"; done
if [ "$WITH_7B" = 1 ]; then for t in Q4_0 Q4_K_M; do run llama2-7b "$t"; done; fi
