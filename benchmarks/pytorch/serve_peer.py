#!/usr/bin/env python3
"""The Python peer of `reckit bench serve`: a minimal FastAPI + uvicorn server scoring the same DLRM architecture
(Criteo layout: 13 dense, 26 categorical hashed modulo --rows; dim 16; bottom 13-512-256-64-16; top 367-512-256-1)
with PyTorch, one request at a time (no cross-request batching), same preprocessing as RecKit's hash mode:
dense log(1 + max(x, 0)) with null = 0, categorical hex → int → mod rows (empty = 0).

    .venv/bin/python serve_peer.py --port 8090 --rows 100000 [--threads 2]

POST /v1/predict {"rows": [{"dense": [...13], "categorical": [...26 hex]}]} → {"scores": [...], "model_version": ...};
GET /healthz. Bad input → 422 with a message. Used by `reckit bench serve`; not part of the product.
"""
import argparse, json, math

import torch
import torch.nn as nn
import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response

DIM, BOTTOM, TOP = 16, [512, 256, 64, 16], [512, 256, 1]


def mlp(sizes, last_relu):
    layers = []
    for i in range(len(sizes) - 1):
        layers.append(nn.Linear(sizes[i], sizes[i + 1]))
        if i < len(sizes) - 2 or last_relu:
            layers.append(nn.ReLU())
    return nn.Sequential(*layers)


class DLRM(nn.Module):
    def __init__(self, rows):
        super().__init__()
        self.emb = nn.ModuleList([nn.EmbeddingBag(rows, DIM, mode="sum") for _ in range(26)])
        self.bot = mlp([13] + BOTTOM, True)
        f = 27
        self.tri = torch.tril_indices(f, f, offset=-1)
        self.top = mlp([DIM + f * (f - 1) // 2] + TOP, False)

    def forward(self, dense, ids):
        b = dense.shape[0]
        offsets = torch.arange(b, dtype=torch.int64)
        x = self.bot(dense)
        t = torch.stack([x] + [e(ids[:, j], offsets) for j, e in enumerate(self.emb)], dim=1)
        z = torch.bmm(t, t.transpose(1, 2))[:, self.tri[0], self.tri[1]]
        return torch.sigmoid(self.top(torch.cat([x, z], dim=1)).squeeze(1))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, default=8090)
    ap.add_argument("--rows", type=int, default=100000)
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(1)
    model = DLRM(a.rows).eval()
    app = FastAPI()

    @app.get("/healthz")
    async def healthz():
        return {"status": "ok"}

    @app.post("/v1/predict")
    async def predict(request: Request):
        try:
            body = json.loads(await request.body())
            rows = body["rows"]
            if not rows:
                raise ValueError("empty batch")
            dense = [[math.log1p(max(int(v), 0)) if v is not None else 0.0 for v in r["dense"]] for r in rows]
            ids = [[(int(c, 16) if c else 0) % a.rows for c in r["categorical"]] for r in rows]
            if any(len(d) != 13 for d in dense) or any(len(c) != 26 for c in ids):
                raise ValueError("expected 13 dense and 26 categorical values")
        except (ValueError, KeyError, TypeError) as e:
            return JSONResponse(status_code=422, content={"error": str(e)})
        with torch.no_grad():
            scores = model(torch.tensor(dense, dtype=torch.float32), torch.tensor(ids, dtype=torch.int64))
        return Response(content=json.dumps({"scores": scores.tolist(), "model_version": "python-peer"}),
                        media_type="application/json")

    uvicorn.run(app, host="127.0.0.1", port=a.port, log_level="warning", access_log=False)


if __name__ == "__main__":
    main()
