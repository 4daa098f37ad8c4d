#!/usr/bin/env bash
# Creates the git-ignored virtualenvs used by the comparison benchmarks and the golden-fixture script. Never used by
# the product or CI.
#   .venv          PyTorch (latest CPU-usable wheel) + numpy: golden_fixtures.py, train_compare.py
#   .venv-torchrec the peers of compare.py / dlrm_peer.py: torch 2.13 CPU, torchrec 1.8, fbgemm-gpu-cpu 1.8 (the
#                  versions the performance issue measured). torchrec 1.8 pulls the CUDA `fbgemm_gpu` 1.9 wheel, whose
#                  config library does not load next to the CPU one, so it is removed and the CPU wheel reinstalled.
set -euo pipefail
cd "$(dirname "$0")"
[[ -x .venv/bin/python ]] || python3 -m venv .venv
.venv/bin/pip install --quiet --upgrade pip
.venv/bin/pip install --quiet torch numpy fastapi uvicorn   # uvicorn + fastapi: serve_peer.py
.venv/bin/python -c "import torch; print('.venv: torch', torch.__version__)"

[[ -x .venv-torchrec/bin/python ]] || python3 -m venv .venv-torchrec
.venv-torchrec/bin/pip install --quiet --upgrade pip
.venv-torchrec/bin/pip install --quiet "torch==2.13.*" fbgemm-gpu-cpu==1.8.0 torchrec==1.8.0 numpy
if .venv-torchrec/bin/pip show fbgemm_gpu >/dev/null 2>&1; then
  .venv-torchrec/bin/pip uninstall --quiet -y fbgemm_gpu
  .venv-torchrec/bin/pip install --quiet --force-reinstall --no-deps fbgemm-gpu-cpu==1.8.0
fi
.venv-torchrec/bin/python -c "import torch, torchrec, fbgemm_gpu; print('.venv-torchrec: torch', torch.__version__, 'torchrec ok')"
