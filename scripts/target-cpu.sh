#!/usr/bin/env bash
# Prints the LLVM CPU name to pass as `-Xswiftc -target-cpu -Xswiftc <cpu>` for this host, or nothing when
# the host has no AVX2 (then Swift's baseline x86-64 code is all it can run).
#
# Why: Swift compiles for baseline x86-64 by default, so SIMD16<Float> code becomes SSE and 5–50x slower.
# The choice is made from the ISA flags the kernel reports (what this VM can really execute), not from the CPU
# model number, which hypervisors often misreport.
set -euo pipefail
[[ "$(uname -m)" == "x86_64" ]] || exit 0
flags=" $(grep -m1 '^flags' /proc/cpuinfo | cut -d: -f2) "
has() { for f in "$@"; do [[ "$flags" == *" $f "* ]] || return 1; done; }
if has avx512f avx512bw avx512dq avx512vl avx512cd; then
  if has avx512_fp16 avx512_bf16 amx_tile amx_bf16; then echo sapphirerapids; else echo skylake-avx512; fi
elif has avx2 fma bmi2; then
  echo haswell
fi
