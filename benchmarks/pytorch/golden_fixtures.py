#!/usr/bin/env python3
"""Golden fixtures for RecKit's DLRM and DCNv2, from an independent PyTorch implementation.

Run by hand (never in CI), in the git-ignored venv made by setup.sh:
    benchmarks/pytorch/.venv/bin/python benchmarks/pytorch/golden_fixtures.py
writes Tests/RecKitModelsTests/Fixtures/{dlrm,dcnv2}.json: the tiny model's parameters, a batch, and the
logits, loss, every gradient, the parameters after one SGD step and after one row-wise Adagrad step on the
embeddings, and (version 2) the dense parameters after two steps of each torch.optim optimizer RecKit implements —
SGD, Adagrad, Adam, AdamW, with weight decay — applied to the batch's gradients. `swift test` loads the parameters
into RecKit's models, runs RecKit's own optimizers, and compares.
"""
import json, os, sys

import numpy as np
import torch

FIXTURE_VERSION = 2
OUT = os.path.join(os.path.dirname(__file__), "..", "..", "Tests", "RecKitModelsTests", "Fixtures")
torch.set_default_dtype(torch.float32)
rng = np.random.default_rng(1234)


def arr(shape, scale=0.5):
    return torch.tensor(rng.uniform(-scale, scale, size=shape).astype(np.float32), requires_grad=True)


# A batch shared by both models: 2 dense features, 2 tables (5 and 6 rows), bags of 0-3 ids, dim 3.
B, DENSE, DIM, ROWS = 5, 2, 3, [5, 6]
dense = torch.tensor(rng.uniform(0, 1, size=(B, DENSE)).astype(np.float32))
lengths = [[1, 2, 1, 0, 3], [1, 1, 1, 1, 1]]
ids = [rng.integers(0, ROWS[t], size=sum(lengths[t])).tolist() for t in range(2)]
labels = torch.tensor([1, 0, 1, 1, 0], dtype=torch.float32)
offsets = [np.concatenate([[0], np.cumsum(l)]).tolist() for l in lengths]


def pooled(tables):
    outs = []
    for t, table in enumerate(tables):
        rows = []
        for b in range(B):
            idx = ids[t][offsets[t][b]:offsets[t][b + 1]]
            rows.append(table[idx].sum(0) if idx else torch.zeros(DIM))
        outs.append(torch.stack(rows))
    return outs


def linear(x, w, b, relu):
    y = x @ w.T + b
    return torch.relu(y) if relu else y


def mlp(x, layers, last_relu):
    for i, (w, b) in enumerate(layers):
        x = linear(x, w, b, relu=(i < len(layers) - 1) or last_relu)
    return x


def dlrm_model():
    bottom = [(arr((4, DENSE)), arr(4)), (arr((DIM, 4)), arr(DIM))]
    f = 1 + len(ROWS)
    top_in = DIM + f * (f - 1) // 2
    top = [(arr((6, top_in)), arr(6)), (arr((1, 6)), arr(1))]
    tables = [arr((r, DIM)) for r in ROWS]

    def forward():
        x = mlp(dense, bottom, last_relu=True)
        t = torch.stack([x] + pooled(tables), dim=1)          # B × F × D
        z = torch.bmm(t, t.transpose(1, 2))
        li = [i for i in range(f) for j in range(i)]
        lj = [j for i in range(f) for j in range(i)]
        r = torch.cat([x, z[:, li, lj]], dim=1)
        return mlp(r, top, last_relu=False).squeeze(1)

    dense_params = [p for layer in bottom + top for p in layer]
    cfg = {"denseCount": DENSE, "tableSizes": ROWS, "embeddingDim": DIM, "bottomHidden": [4], "topHidden": [6], "includeDiagonal": False}
    return cfg, dense_params, tables, forward


def dcn_model():
    width = DENSE + len(ROWS) * DIM
    cross = [(arr((width, width), 0.3), arr(width, 0.1)) for _ in range(2)]
    deep = [(arr((6, width)), arr(6)), (arr((1, 6)), arr(1))]
    tables = [arr((r, DIM)) for r in ROWS]

    def forward():
        x0 = torch.cat([dense] + pooled(tables), dim=1)
        x = x0
        for w, b in cross:
            x = x0 * (x @ w.T + b) + x
        return mlp(x, deep, last_relu=False).squeeze(1)

    dense_params = [p for layer in cross + deep for p in layer]
    cfg = {"denseCount": DENSE, "tableSizes": ROWS, "embeddingDim": DIM, "bottomHidden": [], "topHidden": [6],
           "crossLayers": 2, "crossParallel": False, "includeDiagonal": False}
    return cfg, dense_params, tables, forward


def fixture(name, build, lr=0.1, eps=1e-8):
    cfg, dense_params, tables, forward = build()
    init = {"dense": [p.detach().flatten().tolist() for p in dense_params],
            "tables": [t.detach().flatten().tolist() for t in tables]}
    logits = forward()
    loss = torch.nn.functional.binary_cross_entropy_with_logits(logits, labels)
    loss.backward()
    grads = {"dense": [p.grad.flatten().tolist() for p in dense_params],
             "tables": [t.grad.flatten().tolist() for t in tables]}
    with torch.no_grad():
        sgd = {"dense": [(p - lr * p.grad).flatten().tolist() for p in dense_params],
               "tables": [(t - lr * t.grad).flatten().tolist() for t in tables]}
        rowwise = []
        for t in tables:
            g = t.grad
            touched = sorted(set(i for i in range(t.shape[0]) if g[i].abs().sum() > 0))
            h = torch.zeros(t.shape[0])
            new = t.clone()
            for i in range(t.shape[0]):
                if g[i].abs().sum() > 0 or i in touched:
                    h[i] = (g[i] ** 2).mean()
                    new[i] = t[i] - lr / (h[i].sqrt() + eps) * g[i]
            rowwise.append({"tables": new.flatten().tolist(), "state": h.tolist()})
    # torch.optim: two steps of each dense optimizer with the batch's gradients (the same gradient both steps).
    optimizers = {}
    for kind, make in [("sgd", lambda ps: torch.optim.SGD(ps, lr=lr, weight_decay=0.01)),
                       ("adagrad", lambda ps: torch.optim.Adagrad(ps, lr=lr, weight_decay=0.01, eps=1e-10)),
                       ("adam", lambda ps: torch.optim.Adam(ps, lr=lr, weight_decay=0.01, eps=1e-8)),
                       ("adamw", lambda ps: torch.optim.AdamW(ps, lr=lr, weight_decay=0.01, eps=1e-8))]:
        copies = [p.detach().clone().requires_grad_(True) for p in dense_params]
        opt = make(copies)
        for _ in range(2):
            for c, p in zip(copies, dense_params):
                c.grad = p.grad.detach().clone()
            opt.step()
        optimizers[kind] = [c.detach().flatten().tolist() for c in copies]
    data = {"version": FIXTURE_VERSION, "generator": f"benchmarks/pytorch/golden_fixtures.py, torch {torch.__version__}",
            "model": name, "config": cfg, "lr": lr, "eps": eps,
            "batch": {"dense": dense.flatten().tolist(), "ids": ids, "offsets": offsets, "labels": labels.tolist()},
            "init": init, "logits": logits.detach().tolist(), "loss": loss.item(), "grads": grads,
            "after_sgd": sgd, "after_rowwise_adagrad": rowwise, "dense_after_two_steps": optimizers,
            "optimizer_weight_decay": 0.01}
    os.makedirs(OUT, exist_ok=True)
    with open(os.path.join(OUT, f"{name}.json"), "w") as fh:
        json.dump(data, fh, indent=1)
    print(f"{name}: loss {loss.item():.6f}")


if __name__ == "__main__":
    fixture("dlrm", dlrm_model)
    fixture("dcnv2", dcn_model)
    sys.exit(0)
