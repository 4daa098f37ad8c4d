#!/usr/bin/env bash
# Creates benchmarks/pytorch/.venv with PyTorch (CPU use) and numpy for the golden-fixture script and the
# comparison benchmarks. Git-ignored; never used by the product or CI.
set -euo pipefail
cd "$(dirname "$0")"
[[ -x .venv/bin/python ]] || python3 -m venv .venv
.venv/bin/pip install --quiet --upgrade pip
.venv/bin/pip install --quiet torch numpy
.venv/bin/python -c "import torch; print('torch', torch.__version__)"
