#!/usr/bin/env bash
# Kendall's τ between model rankings (pop, bpr, ease, infae by nDCG@10) on full ML-1M train vs a 20% sample, per
# sampling strategy and seed; test = the ∞-AE split's validation file (its test part is held out).
# Writes JSON lines to docs/measurements/cf-sampling.jsonl.
set -euo pipefail
cd "$(dirname "$0")/../.."
D=${D:-../shared/data/movielens/ml-1m-infae}
OUT=docs/measurements/cf-sampling.jsonl
: > "$OUT"
for seed in 1 2 3; do
  for s in ${STRATEGIES:-random svp-cf svp-cf-prop}; do
    .build/release/reckit data sample --strategy "$s" --fraction 0.2 --input "$D/train.tsv" --output /tmp/cf-sample.tsv --seed "$seed" > /dev/null
    .build/release/reckit cf rank-models --train "$D/train.tsv" --test "$D/valid.tsv" --sampled /tmp/cf-sample.tsv --json 2>/dev/null \
      | python3 -c "import json,sys; r=json.load(sys.stdin); r['strategy']='$s'; r['seed']=$seed; r['fraction']=0.2; print(json.dumps(r))" >> "$OUT"
    tail -1 "$OUT"
  done
done
