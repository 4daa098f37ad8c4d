#!/usr/bin/env bash
# RecKit `cf fit` vs the reference Python implementations (numpy EASE, the ∞-AE paper's jax/neural_tangents code)
# on ML-1M (∞-AE split), one run, same machine. Needs the git-ignored venv .venv-cf (jax 0.5.0, jaxlib 0.5.0,
# neural-tangents 0.6.5, tf2jax 0.3.6, numpy, scipy). Writes JSON lines to docs/measurements/cf-compare.jsonl.
set -euo pipefail
cd "$(dirname "$0")/../.."
D=${D:-../shared/data/movielens/ml-1m-infae}
OUT=docs/measurements/cf-compare.jsonl
: > "$OUT"
for round in 1 2; do
  for m in ease:800 infae:5; do
    model=${m%%:*}; lam=${m##*:}
    .build/release/reckit cf fit --model "$model" --lambda "$lam" --train "$D/train.tsv" --valid "$D/valid.tsv" --output /tmp/cf-compare.rkcf \
      --json --threads 2 2>/dev/null | python3 -c "import json,sys; r=json.load(sys.stdin); print(json.dumps({'impl':'reckit','model':r['model'],'lambda':r['lambda'],'fit_seconds':r['fit_seconds'],'ndcg@10':r['validation']['ndcg@10'],'peak_rss_mib':r['peak_rss_mib'],'round':$round}))" >> "$OUT"
    .venv-cf/bin/python benchmarks/cf/reference.py --train "$D/train.tsv" --test "$D/valid.tsv" --model "$model" --lam "$lam" --json 2>/dev/null \
      | python3 -c "import json,sys; r=json.loads(sys.stdin.read().strip().splitlines()[-1]); r['impl']='python-reference'; r['round']=$round; print(json.dumps(r))" >> "$OUT"
  done
done
cat "$OUT"
