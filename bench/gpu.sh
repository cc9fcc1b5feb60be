#!/usr/bin/env bash
# The GPU table of issue #8: llama2-7b-shaped synth models in F16, Q8_0, Q4_0 and Q4_K_M, then
# `qforge bench -p 512 -n 128 --device gpu` on each. Usage: bench/gpu.sh [QFORGE] [DIR] [TYPES...]
# (DIR holds the models; made when missing). Prints the device, each result and the achieved GB/s.
# LAYERS=N: llama2-7b's layer shape with N layers instead of 32 (models made ~32/N times faster,
# for comparisons between builds when device time is short; not the issue's table).
set -euo pipefail
Q="${1:-build/qforge}"
DIR="${2:-bench-models}"
shift $(( $# > 2 ? 2 : $# )) || true
TYPES=("$@")
[ ${#TYPES[@]} -eq 0 ] && TYPES=(Q4_0 Q4_K_M Q8_0 F16)
mkdir -p "$DIR"
REPS="${REPS:-3}"
LAYERS="${LAYERS:-}"
name() { if [ -n "$LAYERS" ]; then echo "$DIR/llama2-7b-l$LAYERS-$1.gguf"; else echo "$DIR/llama2-7b-$1.gguf"; fi; }
for t in "${TYPES[@]}"; do
  f=$(name "$t")
  [ -f "$f" ] && continue
  if [ -n "$LAYERS" ]; then
    "$Q" synth --arch llama --layers "$LAYERS" --embd 4096 --ff 11008 --heads 32 --heads-kv 32 --vocab-size 32000 --type "$t" -o "$f" >/dev/null
  else
    "$Q" synth --preset llama2-7b --type "$t" -o "$f" >/dev/null
  fi
done
for t in "${TYPES[@]}"; do
  f=$(name "$t")
  out=$("$Q" bench -m "$f" -p "${PP:-512}" -n "${TG:-128}" -r "$REPS" --device gpu -o json)
  echo "$out" | python3 -c "$(cat <<'PY'
import json, sys
r = json.load(sys.stdin)[0]
gbs = r["size_bytes"] * r["tg_tokens_per_s"] / 1e9
print("%-8s %6.2f GiB  pp%d %9.1f ± %.1f  tg%d %7.1f ± %.1f t/s  (%.0f GB/s)  %s" % (r["type"], r["size_bytes"] / 2**30, r["n_prompt"],
      r["pp_tokens_per_s"], r["pp_stddev"], r["n_gen"], r["tg_tokens_per_s"], r["tg_stddev"], gbs, r["kernel"]))
PY
)"
done
