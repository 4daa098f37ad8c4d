#!/usr/bin/env python3
"""Straightforward pandas preprocessing of Criteo TSV, the baseline of `reckit bench data`.

Same transform as `reckit data convert --format criteo --max-ind-range N`: dense negative -> 0, missing -> 0,
then log(1 + x); categorical hex -> int, missing -> 0, modulo N. Reads in chunks (bounded memory) and writes
one .npz per chunk. Prints one JSON line: rows, seconds, mb_per_s.

Set up once: benchmarks/python/setup.sh (creates benchmarks/python/.venv with pandas; git-ignored).
"""
import argparse, json, os, sys, time

import numpy as np
import pandas as pd


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--input", required=True)
    ap.add_argument("--output", required=True)
    ap.add_argument("--max-ind-range", type=int, default=10_000_000)
    ap.add_argument("--chunk-rows", type=int, default=500_000)
    a = ap.parse_args()
    os.makedirs(a.output, exist_ok=True)
    t0 = time.time()
    rows = 0
    names = ["label"] + [f"I{i}" for i in range(1, 14)] + [f"C{i}" for i in range(1, 27)]
    for k, chunk in enumerate(pd.read_csv(a.input, sep="\t", header=None, names=names, chunksize=a.chunk_rows,
                                          dtype={n: str for n in names[14:]})):
        dense = chunk[names[1:14]].apply(pd.to_numeric, errors="coerce").fillna(0).clip(lower=0)
        dense = np.log1p(dense.to_numpy(dtype=np.float64)).astype(np.float32)
        cats = chunk[names[14:]].fillna("0").apply(lambda col: col.map(lambda x: int(x, 16) % a.max_ind_range))
        np.savez(os.path.join(a.output, f"part-{k:05d}.npz"), label=chunk["label"].to_numpy(np.float32),
                 dense=dense, cat=cats.to_numpy(np.int32))
        rows += len(chunk)
    secs = time.time() - t0
    size = os.path.getsize(a.input)
    print(json.dumps({"rows": rows, "seconds": secs, "mb_per_s": size / 1e6 / secs}))


if __name__ == "__main__":
    sys.exit(main())
