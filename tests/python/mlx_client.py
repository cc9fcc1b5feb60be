"""The real client for qforge's MLX directories (run by tests/mlx_client_test.cpp when mlx-lm is
installed; scripts/mlx-client.sh makes a virtual environment with mlx[cpu] and mlx-lm).

  compare A B        every tensor of two MLX directories: same names, dtypes, shapes and bits
  generate DIR P N   mlx-lm's greedy continuation of prompt P (N tokens), as JSON
"""
import json
import sys

import mlx.core as mx
import numpy as np


def compare(a_dir, b_dir):
    a = mx.load(a_dir + "/model.safetensors")
    b = mx.load(b_dir + "/model.safetensors")
    problems = []
    if set(a) != set(b):
        problems.append(f"names differ: {sorted(set(a) ^ set(b))[:8]}")
    for k in sorted(set(a) & set(b)):
        x, y = a[k], b[k]
        if x.dtype != y.dtype or x.shape != y.shape:
            problems.append(f"{k}: {x.dtype}{x.shape} vs {y.dtype}{y.shape}")
            continue
        if x.dtype == mx.bfloat16:
            x, y = x.view(mx.uint16), y.view(mx.uint16)
        if not np.array_equal(np.array(x), np.array(y)):
            problems.append(f"{k}: values differ")
    print(json.dumps({"tensors": len(set(a) & set(b)), "problems": problems}))


def generate(model_dir, prompt, n):
    from mlx_lm import generate as gen, load
    model, tok = load(model_dir)
    ids = tok.encode(prompt)
    text = gen(model, tok, prompt=ids, max_tokens=int(n), verbose=False)
    print(json.dumps({"prompt_ids": ids, "text": text}))


if __name__ == "__main__":
    {"compare": compare, "generate": generate}[sys.argv[1]](*sys.argv[2:])
