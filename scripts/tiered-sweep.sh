#!/usr/bin/env bash
# Tables larger than RAM: throughput and hit rate of tiered DLRM training against table size at a fixed cache.
# For each size it runs `reckit bench tiered --table-gib G --cache-mb C --placement stats --json` (one process per
# size: its peak RSS is that size's alone) and writes
#   OUT/tiered-sweep.csv   one row per size (the bench's JSON keys, phases flattened)
#   OUT/tiered-sweep.svg   samples/s (tiered, and in RAM where it fits) and hit rate against table size
#   OUT/tiered-sweep.jsonl the raw reports
# Usage: scripts/tiered-sweep.sh [--sizes "1 2 4 8 16 32"] [--cache-mb 2048] [--steps 100] [--warmup-seconds 60]
#                                [--tier-dir DIR] [--out DIR] [--summarize-only]
# --summarize-only rebuilds the CSV, SVG and table from an existing OUT/tiered-sweep.jsonl without running anything.
# Needs a release build (scripts/build.sh) and free disk in the tier directory for the largest size (32 GiB of rows
# need 32 GiB). With the defaults: ~35 minutes on a 2-core VM (filling the 32 GiB of tier files takes ~4).
set -euo pipefail
cd "$(dirname "$0")/.."
sizes="1 2 4 8 16 32" cache=2048 steps=100 warmup=60 tierdir="${TMPDIR:-/tmp}" out=docs/measurements summarize=0
while [[ $# -gt 0 ]]; do
  case "$1" in
    --sizes) sizes=$2; shift 2 ;;
    --cache-mb) cache=$2; shift 2 ;;
    --steps) steps=$2; shift 2 ;;
    --warmup-seconds) warmup=$2; shift 2 ;;
    --tier-dir) tierdir=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    --summarize-only) summarize=1; shift ;;
    *) echo "tiered-sweep: unknown argument $1" >&2; exit 64 ;;
  esac
done
bin=.build/release/reckit
raw="$out/tiered-sweep.jsonl"
if [[ $summarize == 0 ]]; then
[[ -x $bin ]] || { echo "tiered-sweep: build first (scripts/build.sh)" >&2; exit 1; }
mkdir -p "$out" "$tierdir"
: > "$raw"
for g in $sizes; do
  echo "tiered-sweep: $g GiB of tables, cache $cache MiB" >&2
  "$bin" bench tiered --table-gib "$g" --cache-mb "$cache" --steps "$steps" --warmup-seconds "$warmup" \
    --tier-dir "$tierdir" --placement stats --json | python3 -c 'import json,sys; print(json.dumps(json.load(sys.stdin)))' >> "$raw"
done
fi
[[ -s $raw ]] || { echo "tiered-sweep: no reports in $raw" >&2; exit 1; }
python3 - "$raw" "$out" <<'EOF'
import csv, json, subprocess, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
out = sys.argv[2]
cpu = next((l.split(":", 1)[1].strip() for l in subprocess.run(["lscpu"], capture_output=True, text=True).stdout.splitlines()
            if l.startswith("Model name")), "?")
mem = rows[0]["machine"]["memory_gib"] if rows else 0
keys = ["table_gib", "cache_mib", "tiered_tables", "placement", "expected_hit_rate", "hit_rate", "samples_per_s", "solo_samples_per_s",
        "in_ram_samples_per_s", "ratio", "peak_rss_mib", "disk_read_mib_s", "disk_write_mib_s", "warmup_steps", "warmup_seconds", "fill_seconds"]
phases = ["lookup", "fetch", "write_back", "compute", "prefetch", "background_write"]
with open(f"{out}/tiered-sweep.csv", "w", newline="") as f:
    w = csv.writer(f)
    w.writerow(["cpu"] + keys + [f"phase_ms_{p}" for p in phases])
    for r in rows:
        w.writerow([cpu] + [r.get(k) if r.get(k) is not None else "" for k in keys] + [round(r["phase_ms"].get(p, 0), 3) for p in phases])
# SVG: log2 table size on x; samples/s (left axis), hit rate (right axis, 0..1).
W, H, L, R, T, B = 760, 420, 80, 80, 50, 60
xs = [r["table_gib"] for r in rows]
import math
lx = [math.log2(x) for x in xs]
x0, x1 = min(lx) - 0.3, max(lx) + 0.3
top = max([r["samples_per_s"] for r in rows] + [r.get("in_ram_samples_per_s") or 0 for r in rows]) * 1.15
X = lambda v: L + (math.log2(v) - x0) / (x1 - x0) * (W - L - R)
Y = lambda v: H - B - v / top * (H - T - B)
YH = lambda v: H - B - v * (H - T - B)
svg = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" font-family="sans-serif" font-size="12">',
       f'<rect width="{W}" height="{H}" fill="white"/>',
       f'<text x="{W/2}" y="20" text-anchor="middle" font-size="14">Tiered DLRM training: {rows[0]["cache_mib"]} MiB cache, Zipf 1.05, batch 2048</text>',
       f'<text x="{W/2}" y="36" text-anchor="middle" fill="#555">{cpu}, {mem:.0f} GiB RAM, 2 cores — scripts/tiered-sweep.sh</text>',
       f'<line x1="{L}" y1="{H-B}" x2="{W-R}" y2="{H-B}" stroke="black"/><line x1="{L}" y1="{T}" x2="{L}" y2="{H-B}" stroke="black"/>',
       f'<line x1="{W-R}" y1="{T}" x2="{W-R}" y2="{H-B}" stroke="black"/>']
for i in range(6):
    v = top / 1.15 * i / 5
    svg.append(f'<text x="{L-6}" y="{Y(v)+4}" text-anchor="end">{v/1000:.0f}k</text><line x1="{L}" y1="{Y(v)}" x2="{W-R}" y2="{Y(v)}" stroke="#eee"/>')
    h = i / 5
    svg.append(f'<text x="{W-R+6}" y="{YH(h)+4}" fill="#c0392b">{h:.1f}</text>')
for x in xs:
    svg.append(f'<text x="{X(x)}" y="{H-B+18}" text-anchor="middle">{x:g}</text>')
svg.append(f'<text x="{(L+W-R)/2}" y="{H-18}" text-anchor="middle">rows + row-wise Adagrad state, GiB (log scale)</text>')
svg.append(f'<text x="20" y="{(T+H-B)/2}" transform="rotate(-90 20 {(T+H-B)/2})" text-anchor="middle">samples/s</text>')
svg.append(f'<text x="{W-20}" y="{(T+H-B)/2}" transform="rotate(90 {W-20} {(T+H-B)/2})" text-anchor="middle" fill="#c0392b">cache hit rate</text>')
if mem:
    svg.append(f'<line x1="{X(mem)}" y1="{T}" x2="{X(mem)}" y2="{H-B}" stroke="#888" stroke-dasharray="4 3"/>'
               f'<text x="{X(mem)+4}" y="{T+12}" fill="#555">RAM {mem:.0f} GiB</text>')
def line(points, color, dash=""):
    if len(points) > 1:
        svg.append(f'<polyline fill="none" stroke="{color}" stroke-width="2" {dash} points="' + " ".join(f"{a:.1f},{b:.1f}" for a, b in points) + '"/>')
    for a, b in points:
        svg.append(f'<circle cx="{a:.1f}" cy="{b:.1f}" r="3.5" fill="{color}"/>')
line([(X(r["table_gib"]), Y(r["samples_per_s"])) for r in rows], "#2c6fbb")
line([(X(r["table_gib"]), Y(r["in_ram_samples_per_s"])) for r in rows if r.get("in_ram_samples_per_s")], "#27ae60", 'stroke-dasharray="6 4"')
line([(X(r["table_gib"]), YH(r["hit_rate"])) for r in rows], "#c0392b")
lg = [("#2c6fbb", "tiered samples/s"), ("#27ae60", "in RAM samples/s (where it fits)"), ("#c0392b", "hit rate (right axis)")]
for i, (c, t) in enumerate(lg):
    svg.append(f'<rect x="{L+12}" y="{T+8+i*18}" width="14" height="4" fill="{c}"/><text x="{L+32}" y="{T+14+i*18}">{t}</text>')
svg.append("</svg>")
open(f"{out}/tiered-sweep.svg", "w").write("\n".join(svg) + "\n")
print(f"machine: {cpu}; cache {rows[0]['cache_mib']} MiB; placement from statistics")
print("| tables GiB | hit rate | tiered samples/s | in RAM samples/s | ratio | peak RSS MiB | disk read MiB/s | disk write MiB/s |")
print("|---|---|---|---|---|---|---|---|")
for r in rows:
    ir = f'{r["in_ram_samples_per_s"]:,.0f}' if r.get("in_ram_samples_per_s") else "does not fit"
    ra = f'{r["ratio"]:.3f}' if r.get("ratio") else "—"
    print(f'| {r["table_gib"]:g} | {r["hit_rate"]:.3f} | {r["samples_per_s"]:,.0f} | {ir} | {ra} | {r["peak_rss_mib"]:,.0f} | '
          f'{r["disk_read_mib_s"]:.1f} | {r["disk_write_mib_s"]:.1f} |')
EOF
