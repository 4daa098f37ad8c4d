#!/usr/bin/env bash
# Creates benchmarks/python/.venv with pandas + numpy for the comparison scripts (git-ignored; never used by
# the product or by CI's test run).
set -euo pipefail
cd "$(dirname "$0")"
[[ -x .venv/bin/python ]] || python3 -m venv .venv
.venv/bin/pip install --quiet --upgrade pip
.venv/bin/pip install --quiet pandas numpy
.venv/bin/python -c "import pandas, numpy; print('pandas', pandas.__version__, 'numpy', numpy.__version__)"
