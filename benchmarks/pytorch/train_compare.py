#!/usr/bin/env python3
"""Independent PyTorch training of LR, FM, DLRM and DCNv2 on the same splits as `reckit train`, for a
side-by-side quality comparison (not part of CI; venv from setup.sh).

Same data handling as RecKit: rows in file order, the last 10% held out; libFM one-hot fields as categoricals;
Criteo dense log(1 + max(x, 0)), categoricals through a vocabulary with a minimum count (rarer → id 0).
Same architectures as RecKit's recipe for small data: embedding dim 16, DLRM bottom 13-64-32-16, top 128-64-1,
DCNv2 3 full-rank cross layers + deep 128-64-1; Adam 1e-3 on everything, batch 256, early stopping (patience 1).

    .venv/bin/python train_compare.py --format libfm --input ../../../shared/data/frappe/frappe.validation.libfm
    .venv/bin/python train_compare.py --format criteo --input ../../../shared/data/criteo/train.txt --min-count 2
Prints one JSON line per model with the held-out AUC and logloss.
"""
import argparse, json, math

import numpy as np
import torch
import torch.nn as nn


def load(fmt, path, min_count):
    labels, dense, cats = [], [], []
    with open(path, newline="") as fh:
        for line in fh:
            line = line.rstrip("\r\n")
            if not line:
                continue
            if fmt == "libfm":
                parts = line.split()
                labels.append(1.0 if float(parts[0]) > 0 else 0.0)
                cats.append([int(p.split(":")[0]) for p in parts[1:]])
                dense.append([0.0])
            else:
                f = line.split("\t")
                labels.append(float(f[0]))
                dense.append([math.log1p(max(int(x), 0)) if x else 0.0 for x in f[1:14]])
                cats.append([int(x, 16) if x else 0 for x in f[14:40]])
    cats = np.array(cats, dtype=np.int64)
    out = np.zeros_like(cats)
    sizes = []
    for j in range(cats.shape[1]):
        values, first, counts = np.unique(cats[:, j], return_index=True, return_counts=True)
        order = np.argsort(first)            # first-seen order, like RecKit
        vocab = {v: i + 1 for i, v in enumerate(values[order][counts[order] >= min_count])}
        out[:, j] = [vocab.get(v, 0) for v in cats[:, j]]
        sizes.append(len(vocab) + 1)
    return (np.array(labels, dtype=np.float32), np.array(dense, dtype=np.float32), out, sizes)


class Model(nn.Module):
    def __init__(self, kind, sizes, n_dense, dim=16):
        super().__init__()
        self.kind = kind
        self.first = nn.ModuleList([nn.Embedding(s, 1) for s in sizes])
        self.emb = nn.ModuleList([nn.Embedding(s, dim) for s in sizes])
        for e in self.first:
            nn.init.zeros_(e.weight)
        for e in self.emb:  # RecKit's init: FM factors U(±0.01), DLRM/DCNv2 rows U(±√(1/rows)) as the DLRM reference
            b = 0.01 if kind == "fm" else math.sqrt(1 / e.num_embeddings)
            nn.init.uniform_(e.weight, -b, b)
        self.linear = nn.Linear(n_dense, 1)
        f = len(sizes) + 1
        if kind == "dlrm":
            self.bottom = nn.Sequential(nn.Linear(n_dense, 64), nn.ReLU(), nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, dim), nn.ReLU())
            self.top = nn.Sequential(nn.Linear(dim + f * (f - 1) // 2, 128), nn.ReLU(), nn.Linear(128, 64), nn.ReLU(), nn.Linear(64, 1))
        if kind == "dcnv2":
            w = n_dense + len(sizes) * dim
            self.cross = nn.ModuleList([nn.Linear(w, w) for _ in range(3)])
            self.deep = nn.Sequential(nn.Linear(w, 128), nn.ReLU(), nn.Linear(128, 64), nn.ReLU(), nn.Linear(64, 1))

    def forward(self, dense, cats):
        if self.kind in ("lr", "fm"):
            z = self.linear(dense).squeeze(1) + sum(e(cats[:, i]).squeeze(1) for i, e in enumerate(self.first))
            if self.kind == "fm":
                v = torch.stack([e(cats[:, i]) for i, e in enumerate(self.emb)], 1)
                z = z + 0.5 * ((v.sum(1) ** 2) - (v ** 2).sum(1)).sum(1)
            return z
        embs = [e(cats[:, i]) for i, e in enumerate(self.emb)]
        if self.kind == "dlrm":
            x = self.bottom(dense)
            t = torch.stack([x] + embs, 1)
            zz = torch.bmm(t, t.transpose(1, 2))
            f = t.shape[1]
            li = [i for i in range(f) for j in range(i)]
            lj = [j for i in range(f) for j in range(i)]
            return self.top(torch.cat([x, zz[:, li, lj]], 1)).squeeze(1)
        x0 = torch.cat([dense] + embs, 1)
        x = x0
        for c in self.cross:
            x = x0 * c(x) + x
        return self.deep(x).squeeze(1)


def auc(scores, labels):
    order = np.argsort(scores, kind="mergesort")
    s, y = scores[order], labels[order]
    ranks = np.empty(len(s))
    i = 0
    while i < len(s):
        j = i
        while j + 1 < len(s) and s[j + 1] == s[i]:
            j += 1
        ranks[i:j + 1] = (i + j) / 2 + 1
        i = j + 1
    pos = y.sum()
    return (ranks[y > 0.5].sum() - pos * (pos + 1) / 2) / (pos * (len(y) - pos))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--format", choices=["libfm", "criteo"], required=True)
    ap.add_argument("--input", required=True)
    ap.add_argument("--min-count", type=int, default=1)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--models", default="lr,fm,dlrm,dcnv2")
    a = ap.parse_args()
    torch.set_num_threads(2)
    y, d, c, sizes = load(a.format, a.input, a.min_count)
    n_train = int(len(y) * 0.9)
    tr = (torch.tensor(d[:n_train]), torch.tensor(c[:n_train]), torch.tensor(y[:n_train]))
    va = (torch.tensor(d[n_train:]), torch.tensor(c[n_train:]), y[n_train:])
    for kind in a.models.split(","):
        torch.manual_seed(a.seed)
        m = Model(kind, sizes, d.shape[1])
        opt = torch.optim.Adam(m.parameters(), lr=1e-3)
        best, best_epoch, state = -1, 0, None
        for epoch in range(10):
            m.train()
            for s in range(0, n_train, 256):
                opt.zero_grad()
                loss = nn.functional.binary_cross_entropy_with_logits(m(tr[0][s:s + 256], tr[1][s:s + 256]), tr[2][s:s + 256])
                loss.backward()
                opt.step()
            m.eval()
            with torch.no_grad():
                z = m(va[0], va[1]).numpy()
            a_ = auc(z, va[2])
            if a_ > best:
                best, best_epoch, state = a_, epoch + 1, {k: v.clone() for k, v in m.state_dict().items()}
            elif epoch + 1 - best_epoch >= 1:
                break
        m.load_state_dict(state)
        with torch.no_grad():
            z = m(va[0], va[1])
            ll = nn.functional.binary_cross_entropy_with_logits(z, torch.tensor(va[2])).item()
        print(json.dumps({"model": kind, "auc": round(float(best), 4), "logloss": round(ll, 4), "best_epoch": best_epoch}))


if __name__ == "__main__":
    main()
