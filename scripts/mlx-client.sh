#!/usr/bin/env bash
# The optional mlx-lm cross-check: a virtual environment with MLX's CPU build and mlx-lm from
# PyPI (.venv-mlx, ignored by git), then the MlxClient test against it. Needs a build (scripts/build.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -x .venv-mlx/bin/python ]; then
  python3 -m venv .venv-mlx
  .venv-mlx/bin/pip install -q "mlx[cpu]" mlx-lm
fi
QFORGE_MLX_PYTHON="$PWD/.venv-mlx/bin/python" "${QFORGE_BUILD_DIR:-build}/tests/qforge_tests" --gtest_filter='MlxClient.*'
