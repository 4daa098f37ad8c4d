#!/usr/bin/env bash
# Optional Python tools some tests use to check interoperability (Python's safetensors reads RecKit checkpoints;
# the tensorboard package reads RecKit's event files; mlcroissant validates `reckit data croissant` output).
# Installed into the git-ignored .venv-tools from PyPI, idempotently; best effort: without network the tests that
# need them report themselves as skipped. The product itself never needs Python.
set -uo pipefail
cd "$(dirname "$0")/.."
venv=.venv-tools
want="safetensors numpy tensorboard mlcroissant"
if [[ -x $venv/bin/python ]] && $venv/bin/python -c "import safetensors, numpy, tensorboard, mlcroissant" 2>/dev/null; then
  echo "test-tools: present ($want)"
  exit 0
fi
python3 -m venv "$venv" 2>/dev/null || { echo "test-tools: python3 -m venv unavailable; interop tests will be skipped"; exit 0; }
# One package at a time: a package that cannot install skips only the tests that need it.
for p in $want; do
  if timeout 300 "$venv/bin/pip" install -q "$p"; then
    echo "test-tools: installed $p into $venv"
  else
    echo "test-tools: could not install $p (offline?); the tests that need it will be skipped"
  fi
done
exit 0
