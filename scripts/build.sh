#!/usr/bin/env bash
# Release build for benchmarks and the main job, compiled for this host's CPU.
# Usage: scripts/build.sh [--print-flags]
set -euo pipefail
cd "$(dirname "$0")/.."
cpu=$(scripts/target-cpu.sh)
flags=()
if [[ -n "$cpu" ]]; then
  flags=(-Xswiftc -target-cpu -Xswiftc "$cpu" -Xswiftc -DRECKIT_NATIVE_BUILD -Xcc -march=native)
else
  echo "build: warning: no AVX2 on this host; building for baseline x86-64 (kernels will be slow)" >&2
fi
if [[ "${1:-}" == "--print-flags" ]]; then echo "${flags[*]}"; exit 0; fi
echo "build: swift build -c release ${flags[*]}"
swift build -c release "${flags[@]}"
