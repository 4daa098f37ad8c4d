#!/usr/bin/env bash
# RecD deduplication: speed-up of the embedding phase against session size, measured on this machine.
# For each session size S it synthesizes Criteo-shaped data whose 13 user-side tables are shared by S consecutive
# rows (`data synth --session-size S --user-pooling P`), then runs `reckit bench train --data … --dedup off|on`
# REPS times, interleaved, and prints medians as a Markdown table with the CPU's model name.
# Usage: scripts/dedup-curve.sh [--rows N] [--pooling P] [--reps R] [--sizes "1 2 4 8 16"] [--out DIR]
# Needs a release build (scripts/build.sh). Takes ~10 s per bench run: ~5 minutes with the defaults.
set -euo pipefail
cd "$(dirname "$0")/.."
rows=100000 pooling=20 reps=3 sizes="1 2 4 8 16" out=""
while [[ $# -gt 0 ]]; do
  case "$1" in
    --rows) rows=$2; shift 2 ;;
    --pooling) pooling=$2; shift 2 ;;
    --reps) reps=$2; shift 2 ;;
    --sizes) sizes=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    *) echo "dedup-curve: unknown argument $1" >&2; exit 64 ;;
  esac
done
bin=.build/release/reckit
[[ -x $bin ]] || { echo "dedup-curve: build first (scripts/build.sh)" >&2; exit 1; }
work=$(mktemp -d "${TMPDIR:-/tmp}/reckit-dedup-curve.XXXXXX")
trap 'rm -rf "$work"' EXIT
results=${out:-$work}/dedup-curve.jsonl
mkdir -p "$(dirname "$results")"
: > "$results"
for s in $sizes; do
  "$bin" data synth --rows "$rows" --session-size "$s" --user-pooling "$pooling" --output "$work/s$s" --overwrite >/dev/null 2>&1
  for ((r = 0; r < reps; r++)); do
    for d in off on; do
      RECKIT_LEDGER_DIR="$work/ledger" "$bin" bench train --data "$work/s$s" --dedup "$d" --json 2>/dev/null |
        python3 -c 'import json,sys; d=json.load(sys.stdin); p=d["phases"]; print(json.dumps({"session": int(sys.argv[1]), "dedup": sys.argv[2], "samples_per_s": d["samples_per_s"], "dedup_factor": d.get("dedup_factor"), "embedding_ms": p["embedding_forward"] + p["embedding_backward_optimizer"]}))' "$s" "$d" >> "$results"
    done
  done
  rm -rf "$work/s$s"
done
python3 - "$results" "$pooling" "$rows" <<'EOF'
import json, statistics, subprocess, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
cpu = next((l.split(":", 1)[1].strip() for l in subprocess.run(["lscpu"], capture_output=True, text=True).stdout.splitlines() if l.startswith("Model name")), "?")
print(f"machine: {cpu}; {sys.argv[3]} rows, user-side pooling {sys.argv[2]}, batch 2048, medians")
print("| session size | dedup factor | embedding ms off → on | speed-up | samples/s off → on |")
print("|---|---|---|---|---|")
for s in sorted({r["session"] for r in rows}):
    m = lambda d, k: statistics.median(r[k] for r in rows if r["session"] == s and r["dedup"] == d)
    eo, en = m("off", "embedding_ms"), m("on", "embedding_ms")
    print(f"| {s} | {m('on', 'dedup_factor'):.2f} | {eo:.2f} → {en:.2f} | {eo / en:.2f}× | {m('off', 'samples_per_s'):,.0f} → {m('on', 'samples_per_s'):,.0f} |")
EOF
