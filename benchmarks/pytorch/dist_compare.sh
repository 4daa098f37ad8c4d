#!/usr/bin/env bash
# np 2 on this machine, alternating rounds: RecKit (`mpirun -np 2 reckit bench train --distributed mpi`) against
# TorchRec's DistributedModelParallel (dist_peer.py, gloo, its own planner) and the DLRM reference's distributed mode
# (dlrm_s_pytorch.py + extend_distributed.py, gloo with scatter-based all-to-all), all 1 thread per rank, the same
# DLRM (26 Kaggle-sized tables of dim 16, MLPs 13-64-32-16 / 367-128-64-1, one id per table and sample, global batch
# 2048, row-wise Adagrad embeddings; RecKit and TorchRec each with their planner's plan). Needs: scripts/build.sh, benchmarks/pytorch/setup.sh, and the DLRM reference
# fetched into benchmarks/pytorch/peers (git-ignored; github.com/facebookresearch/dlrm).
# Usage: benchmarks/pytorch/dist_compare.sh [rounds] [data dir]   → one line per run, then the medians.
set -euo pipefail
cd "$(dirname "$0")"
ROUNDS=${1:-3}
DATA=${2:-/tmp/reckit-dist-kaggle}
R=../../.build/release/reckit
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMP_NUM_THREADS=1
[[ -d "$DATA" ]] || "$R" data synth --rows 400000 --tables kaggle --output "$DATA" >/dev/null
# RecKit with its planner's plan, as TorchRec runs with its planner's (without --plan RecKit balances bytes only).
PLAN=$(mktemp --suffix .json)
"$R" plan shard --dataset "$DATA" --ranks 2 --memory-gib 8 --batch-size 2048 --output "$PLAN" >/dev/null
EMB=1460-583-10131227-2202608-305-24-12517-633-3-93145-5683-8351593-3194-27-14992-5461306-10-5652-2173-4-7046547-18-15-286181-105-142572
echo "machine: $(lscpu | sed -n 's/^Model name: *//p')"
reckit=(); torchrec=(); reference=()
for i in $(seq "$ROUNDS"); do
  r=$(mpirun -np 2 "$R" bench train --data "$DATA" --distributed mpi --batch-size 2048 --steps 60 --plan "$PLAN" --json 2>/dev/null | python3 -c 'import json,sys; print(json.load(sys.stdin)["samples_per_s"])')
  t=$(.venv-torchrec/bin/torchrun --nproc_per_node 2 dist_peer.py --steps 60 --json 2>/dev/null | tail -1 | python3 -c 'import json,sys; print(json.load(sys.stdin)["samples_per_s"])')
  ms=$(cd peers && ../.venv-torchrec/bin/torchrun --nproc_per_node 2 dlrm_s_pytorch.py --arch-sparse-feature-size=16 --arch-mlp-bot=13-64-32-16 \
        --arch-mlp-top=367-128-64-1 --arch-embedding-size=$EMB --data-generation=random --num-indices-per-lookup=1 \
        --num-indices-per-lookup-fixed=True --mini-batch-size=2048 --num-batches=60 --num-workers=0 --dist-backend=gloo --print-time \
        --print-freq=20 --nepochs=1 --learning-rate=0.05 2>/dev/null | sed -n 's/.*, \([0-9.]*\) ms\/it.*/\1/p' | tail -2 | head -1)
  d=$(python3 -c "print(2048 / ($ms / 1000))")
  echo "round $i: reckit $r, torchrec-dmp $t, dlrm-reference $d samples/s (ratios $(python3 -c "print(round($r/$t,2), round($r/$d,2))"))"
  reckit+=("$r"); torchrec+=("$t"); reference+=("$d")
done
python3 - "${reckit[*]}" "${torchrec[*]}" "${reference[*]}" <<'PY'
import statistics, sys
r, t, d = ([float(x) for x in a.split()] for a in sys.argv[1:4])
mr, mt, md = statistics.median(r), statistics.median(t), statistics.median(d)
print(f"medians: reckit {mr:.0f}, torchrec-dmp {mt:.0f}, dlrm-reference {md:.0f} samples/s; reckit / better peer {mr / max(mt, md):.2f}")
PY
