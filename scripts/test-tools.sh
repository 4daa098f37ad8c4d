#!/usr/bin/env bash
# Optional Python tools some tests use to check interoperability (Python's safetensors reads RecKit checkpoints;
# the tensorboard package reads RecKit's event files).
# Installed into the git-ignored .venv-tools from PyPI, idempotently; best effort: without network the tests that
# need them report themselves as skipped. The product itself never needs Python.
set -uo pipefail
cd "$(dirname "$0")/.."
venv=.venv-tools
want="safetensors numpy tensorboard"
if [[ -x $venv/bin/python ]] && $venv/bin/python -c "import safetensors, numpy, tensorboard" 2>/dev/null; then
  echo "test-tools: present ($want)"
  exit 0
fi
python3 -m venv "$venv" 2>/dev/null || { echo "test-tools: python3 -m venv unavailable; interop tests will be skipped"; exit 0; }
if timeout 300 "$venv/bin/pip" install -q $want; then
  echo "test-tools: installed $want into $venv"
else
  echo "test-tools: could not install $want (offline?); interop tests will be skipped"
fi
exit 0
