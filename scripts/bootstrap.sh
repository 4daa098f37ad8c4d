#!/usr/bin/env bash
# Installs the Debian packages RecKit needs, idempotently.
#  - nothing to do when every package is present (exit 0, no apt calls);
#  - as root: apt-get update + install; with passwordless sudo: the same through sudo;
#  - otherwise: prints the exact apt-get line to run and exits 1.
# Usage: scripts/bootstrap.sh [--check]   (--check only reports what is missing)
set -euo pipefail

PACKAGES=(
  pkg-config          # locating system libraries
  libopenblas-dev     # GEMM (loaded at run time with the right kernel family; see BLASRuntime.swift)
  libdnnl-dev         # oneDNN 2.6: bf16 matmul on AMX / AVX512-BF16 (headers at build time, dlopen'ed; BF16Runtime.swift)
  liburing-dev        # io_uring: batched reads and write-backs of the tiered embedding storage (RecKitTiered)
  libopenmpi-dev      # Open MPI 4.1: headers at build time (CMPI dlopens libmpi), for `--distributed mpi`
  openmpi-bin         # mpirun, to launch multi-process training
  iproute2            # tests only: network namespaces as simulated hosts for mpirun (scripts/netns-hosts.sh)
  chromium-headless-shell  # tests only: renders `reckit report` pages in a real browser (RunReportTests)
)

if ! command -v swift >/dev/null 2>&1; then
  echo "bootstrap: the Swift 6 toolchain is not on PATH (RecKit needs swift 6.0 or newer; tested with 6.3.1)." >&2
  echo "           Debian has no Swift package: install the toolchain from swift.org, or use the project's machine image." >&2
  exit 1
fi

missing=()
for p in "${PACKAGES[@]}"; do
  status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
  [[ "$status" == "install ok installed" ]] || missing+=("$p")
done

if [[ ${#missing[@]} -eq 0 ]]; then
  echo "bootstrap: all system packages present (${PACKAGES[*]})"
  exit 0
fi
echo "bootstrap: missing: ${missing[*]}"
[[ "${1:-}" == "--check" ]] && exit 1

line="apt-get install -y --no-install-recommends ${missing[*]}"
if [[ $(id -u) -eq 0 ]]; then
  SUDO=""
elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
  SUDO="sudo"
else
  echo "bootstrap: not root and no passwordless sudo. Run:" >&2
  echo "  sudo apt-get update && sudo $line" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO $line
echo "bootstrap: installed ${missing[*]}"
