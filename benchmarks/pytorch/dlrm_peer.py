#!/usr/bin/env python3
"""The PyTorch peers of `reckit bench train` / `reckit bench infer`: the same DLRM Criteo-Kaggle workload.

Workload (identical to RecKit's ModelBenchmark): 26 tables with the Kaggle cardinalities (33.8M rows, dim 16;
`--table-cap` caps each), bottom MLP 13-512-256-64-16, top MLP 367-512-256-1, dot interaction (lower triangle
without the diagonal, after the dense vector), one id per table per sample, uniform or Zipf(1.05) ids, dense
features U[0, 4), labels Bernoulli(0.25); a cycle of 8 pre-generated batches; 3 warm-up iterations, then
`--blocks` timed blocks of at least 0.5 s each; samples/s from the median ms per iteration.

Implementations (`--impl`):
* `pytorch`: the DLRM reference script's design — one `nn.EmbeddingBag(mode="sum", sparse=True)` per table,
  `nn.Linear`/ReLU MLPs. Optimizer `sgd`: `torch.optim.SGD` on everything (the reference script).
  `rowwise_adagrad`: core PyTorch has no row-wise Adagrad, so embeddings use sparse *exact* `torch.optim.Adagrad`
  (more state, same access pattern) and dense parameters `torch.optim.Adagrad`.
* `torchrec`: `torchrec.models.dlrm.DLRM` over a `FusedEmbeddingBagCollection` (FBGEMM table-batched kernels with
  the optimizer fused into the backward, the CPU set-up TorchRec documents): `rowwise_adagrad` =
  `torchrec.optim.RowWiseAdagrad` on the tables + `torch.optim.Adagrad` on dense; `sgd` = SGD for both.
`--precision bf16` runs the model under `torch.autocast("cpu", dtype=torch.bfloat16)` (oneDNN/AMX matmuls).

Prints one JSON object (`--json`) with samples_per_s, ms_per_iter, peak_rss_mb, batch_size, threads, ...
"""
import argparse, json, math, resource, sys, time

import numpy as np
import torch
import torch.nn as nn

KAGGLE = [1460, 583, 10131227, 2202608, 305, 24, 12517, 633, 3, 93145, 5683, 8351593, 3194, 27, 14992,
          5461306, 10, 5652, 2173, 4, 7046547, 18, 15, 286181, 105, 142572]
BOTTOM = [512, 256, 64, 16]
TOP = [512, 256, 1]
DIM = 16


def zipf_ids(rng, n, size, s=1.05):
    """Bounded continuous power-law ranks in [0, n): inverse CDF of x^-s on [1, n+1)."""
    u = rng.random(size)
    a = 1.0 - s
    x = ((np.power(n + 1.0, a) - 1.0) * u + 1.0) ** (1.0 / a)
    return np.minimum(np.floor(x).astype(np.int64) - 1, n - 1)


def make_batches(tables, batch, ids, seed, count=8):
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(count):
        dense = torch.from_numpy((rng.random((batch, 13)) * 4).astype(np.float32))
        cols = [zipf_ids(rng, n, batch) if ids == "zipf" else rng.integers(0, n, batch) for n in tables]
        labels = torch.from_numpy((rng.integers(0, 4, batch) == 0).astype(np.float32))
        out.append((dense, [torch.from_numpy(c) for c in cols], labels))
    return out


def mlp(sizes, last_sigmoid=False):
    layers = []
    for i in range(len(sizes) - 1):
        layers.append(nn.Linear(sizes[i], sizes[i + 1]))
        if i < len(sizes) - 2 or not last_sigmoid:
            layers.append(nn.ReLU())
    return nn.Sequential(*layers)


class ReferenceDLRM(nn.Module):
    """The DLRM reference script's structure (dot interaction, no diagonal)."""

    def __init__(self, tables):
        super().__init__()
        self.emb = nn.ModuleList()
        for n in tables:
            e = nn.EmbeddingBag(n, DIM, mode="sum", sparse=True)
            bound = math.sqrt(1.0 / n)
            nn.init.uniform_(e.weight, -bound, bound)
            self.emb.append(e)
        self.bot = mlp([13] + BOTTOM)
        f = len(tables) + 1
        self.tri = torch.tril_indices(f, f, offset=-1)
        self.top = mlp([DIM + f * (f - 1) // 2] + TOP, last_sigmoid=True)

    def forward(self, dense, ids, offsets):
        x = self.bot(dense)
        ly = [e(i, offsets) for e, i in zip(self.emb, ids)]
        t = torch.stack([x] + ly, dim=1)                       # B x F x D
        z = torch.bmm(t, t.transpose(1, 2))[:, self.tri[0], self.tri[1]]
        return self.top(torch.cat([x, z], dim=1)).squeeze(1)


def build_pytorch(tables, optimizer, lr):
    model = ReferenceDLRM(tables)
    emb = list(model.emb.parameters())
    dense = list(model.bot.parameters()) + list(model.top.parameters())
    if optimizer == "sgd":
        opts = [torch.optim.SGD(emb + dense, lr=lr)]
    else:
        opts = [torch.optim.Adagrad(emb, lr=lr), torch.optim.Adagrad(dense, lr=lr)]

    def step(batch, train):
        dense_x, ids, labels = batch
        offsets = torch.arange(dense_x.shape[0], dtype=torch.int64)
        logits = model(dense_x, ids, offsets)
        if train:
            loss = nn.functional.binary_cross_entropy_with_logits(logits.float(), labels)
            for o in opts:
                o.zero_grad(set_to_none=True)
            loss.backward()
            for o in opts:
                o.step()
    return model, step


def build_torchrec(tables, optimizer, lr):
    from torchrec import EmbeddingBagConfig, KeyedJaggedTensor
    from torchrec.models.dlrm import DLRM
    from torchrec.modules.fused_embedding_modules import FusedEmbeddingBagCollection
    from torchrec.optim.rowwise_adagrad import RowWiseAdagrad

    configs = [EmbeddingBagConfig(name=f"t{i}", embedding_dim=DIM, num_embeddings=n, feature_names=[f"C{i + 1}"])
               for i, n in enumerate(tables)]
    opt_type = torch.optim.SGD if optimizer == "sgd" else RowWiseAdagrad
    ebc = FusedEmbeddingBagCollection(tables=configs, optimizer_type=opt_type, optimizer_kwargs={"lr": lr},
                                      device=torch.device("cpu"))
    model = DLRM(embedding_bag_collection=ebc, dense_in_features=13, dense_arch_layer_sizes=BOTTOM,
                 over_arch_layer_sizes=TOP)
    dense_params = [p for n, p in model.named_parameters() if "embedding_bag_collection" not in n]
    dense_opt = torch.optim.SGD(dense_params, lr=lr) if optimizer == "sgd" else torch.optim.Adagrad(dense_params, lr=lr)
    keys = [f"C{i + 1}" for i in range(len(tables))]
    cache = {}

    def step(batch, train):
        dense_x, ids, labels = batch
        key = id(batch)
        if key not in cache:
            b = dense_x.shape[0]
            cache[key] = KeyedJaggedTensor.from_lengths_sync(
                keys=keys, values=torch.cat(ids), lengths=torch.ones(b * len(tables), dtype=torch.int32))
        logits = model(dense_x, cache[key]).squeeze(1)
        if train:
            loss = nn.functional.binary_cross_entropy_with_logits(logits.float(), labels)
            dense_opt.zero_grad(set_to_none=True)
            loss.backward()          # the fused table optimizer updates the rows here
            dense_opt.step()
    return model, step


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--impl", choices=["pytorch", "torchrec"], default="pytorch")
    ap.add_argument("--mode", choices=["train", "infer"], default="train")
    ap.add_argument("--batch-size", type=int, default=2048)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--optimizer", choices=["rowwise_adagrad", "sgd"], default="rowwise_adagrad")
    ap.add_argument("--ids", choices=["uniform", "zipf"], default="uniform")
    ap.add_argument("--precision", choices=["fp32", "bf16"], default="fp32")
    ap.add_argument("--table-cap", type=int, default=None)
    ap.add_argument("--table-gib", type=float, default=None,
                    help="scale the 26 tables so rows x (4*16 + 4) bytes (row + row-wise Adagrad) total this many GiB, "
                         "as `reckit bench tiered --table-gib` does")
    ap.add_argument("--batches", type=int, default=8, help="pre-generated batches cycled through (default 8)")
    ap.add_argument("--blocks", type=int, default=5)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()

    torch.manual_seed(a.seed)
    torch.set_num_threads(a.threads)
    tables = [min(n, a.table_cap) if a.table_cap else n for n in KAGGLE]
    if a.table_gib:
        scale = a.table_gib * (1 << 30) / (sum(KAGGLE) * (4 * DIM + 4))
        tables = [max(2, int(round(n * scale))) for n in KAGGLE]
    build = build_pytorch if a.impl == "pytorch" else build_torchrec
    model, step = build(tables, a.optimizer, 0.01)
    train = a.mode == "train"
    model.train(train)
    batches = make_batches(tables, a.batch_size, a.ids, a.seed, count=a.batches)
    n = [0]

    def iteration():
        b = batches[n[0] % len(batches)]
        n[0] += 1
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=a.precision == "bf16"):
            if train:
                step(b, True)
            else:
                # no_grad, not inference_mode: FBGEMM's fused CPU lookup is registered under the autograd key only.
                with torch.no_grad():
                    step(b, False)

    for _ in range(3):
        iteration()
    per_iter = []
    for _ in range(a.blocks):
        t0, k = time.perf_counter(), 0
        while True:
            iteration()
            k += 1
            dt = time.perf_counter() - t0
            if dt >= 0.5:
                break
        per_iter.append(dt / k)
    ms = float(np.median(per_iter)) * 1e3
    lat, t_start = [], time.perf_counter()          # per-batch latency, like RecKit's (≤ 1.5 s / 3,000 batches)
    while len(lat) < 3000 and (len(lat) < 20 or time.perf_counter() - t_start < 1.5):
        t0 = time.perf_counter()
        iteration()
        lat.append(time.perf_counter() - t0)
    out = {
        "impl": a.impl, "mode": a.mode, "samples_per_s": a.batch_size / (ms / 1e3), "ms_per_iter": ms,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0, "batch_size": a.batch_size,
        "threads": a.threads, "precision": a.precision, "distribution": a.ids,
        "optimizer": ("sgd" if a.optimizer == "sgd" else
                      ("rowwise_adagrad+adagrad" if a.impl == "torchrec" else "sparse_adagrad(exact)+adagrad")),
        "table_rows": sum(tables), "table_gib": sum(tables) * (4 * DIM + 4) / (1 << 30), "batches": a.batches,
        "torch": torch.__version__,
        "latency_p50_ms": float(np.quantile(lat, 0.5)) * 1e3, "latency_p99_ms": float(np.quantile(lat, 0.99)) * 1e3,
    }
    if a.json:
        print(json.dumps(out))
    else:
        print(f"{a.impl} DLRM {a.mode}: {out['samples_per_s']:.0f} samples/s, {ms:.2f} ms/iter, "
              f"peak RSS {out['peak_rss_mb']:.0f} MiB")


if __name__ == "__main__":
    sys.exit(main())
