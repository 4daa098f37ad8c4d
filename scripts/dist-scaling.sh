#!/usr/bin/env bash
# The issue's scaling figures on this machine, in one run: calibrate the planner's constants
# (`mpirun -np 2|4 reckit bench comm`), then alternate rounds of `reckit bench train --distributed mpi` at
# np 1 × 2 threads (--bind-to none, so the rank gets both cores), np 2 × 1 thread and np 4 × 1 thread
# (oversubscribed), each with its planner's plan, and print per round: samples/s, measured and predicted step, the
# prediction error, bytes sent per step vs the model, and the np 2 / np 1 ratio.
# Usage: scripts/dist-scaling.sh [rounds] [data dir]   (needs scripts/build.sh; makes the data when missing)
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${1:-3}
DATA=${2:-/tmp/reckit-dist-kaggle}
R=.build/release/reckit
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1
[[ -d "$DATA" ]] || "$R" data synth --rows 400000 --tables kaggle --output "$DATA" >/dev/null
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
echo "machine: $(lscpu | sed -n 's/^Model name: *//p')"
# Compute constants per core from np 2; the network's with the rank layout they predict (at np 4, 4 ranks share 2
# cores and every collective also waits for the scheduler, which only an np 4 measurement sees).
mpirun -np 2 "$R" bench comm --distributed mpi --output "$WORK/constants2.json" >/dev/null 2>&1
mpirun -np 4 "$R" bench comm --distributed mpi --output "$WORK/comm4.json" >/dev/null 2>&1
cp "$WORK/constants2.json" "$WORK/constants1.json"
python3 - "$WORK" <<'PY'
import json, sys
w = sys.argv[1]
c = json.load(open(f"{w}/constants2.json")); n = json.load(open(f"{w}/comm4.json"))
c["network_gbps"], c["network_latency_us"] = n["network_gbps"], n["network_latency_us"]
json.dump(c, open(f"{w}/constants4.json", "w"))
PY
for np in 1 2 4; do
  cores=$(python3 -c "print({1: 2, 2: 1, 4: 0.5}[$np])")
  "$R" plan shard --dataset "$DATA" --ranks $np --memory-gib 8 --batch-size 2048 --constants "$WORK/constants$np.json" \
    --cores-per-rank $cores --output "$WORK/plan$np.json" >/dev/null
done
run() {  # np threads extra-mpirun-args...
  local np=$1 threads=$2; shift 2
  mpirun -np "$np" "$@" "$R" bench train --data "$DATA" --distributed mpi --batch-size 2048 --steps 60 --threads "$threads" \
    --constants "$WORK/constants$np.json" --plan "$WORK/plan$np.json" --json 2>/dev/null
}
summary() {
  python3 -c '
import json, sys
d = json.load(sys.stdin)
p = d["predicted"]
print("%s: %.0f samples/s, step %.2f ms, predicted %.2f ms (error %.1f%%), bytes/step %d vs model %d" % (
    sys.argv[1], d["samples_per_s"], d["step_ms"], p["step_ms"], 100 * d["prediction_error"], d["bytes_sent_per_step"],
    d["predicted_bytes_sent_per_step"]))
print(d["samples_per_s"], file=open(sys.argv[2], "a"))' "$1" "$2"
}
for i in $(seq "$ROUNDS"); do
  echo "round $i"
  run 1 2 --bind-to none | summary "  np 1 x 2 threads" "$WORK/np1"
  run 2 1 | summary "  np 2 x 1 thread " "$WORK/np2"
  run 4 1 | summary "  np 4 x 1 thread " "$WORK/np4"
  echo "  np 2 / np 1 = $(python3 -c "print(round($(tail -1 "$WORK/np2") / $(tail -1 "$WORK/np1"), 2))")"
done
