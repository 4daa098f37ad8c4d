#!/usr/bin/env python3
"""The TorchRec peer of `mpirun -np N reckit bench train --distributed mpi`: DLRM trained with TorchRec's
DistributedModelParallel (its planner chooses the sharding) on CPU, gloo over loopback, one process per rank.

Launch: `.venv-torchrec/bin/torchrun --nproc_per_node 2 dist_peer.py --data-like kaggle --json` (rank 0 prints).

Workload (the same as RecKit's `bench train --distributed` with `reckit train`'s default DLRM): 26 tables with the
Criteo Kaggle cardinalities (dim 16), bottom MLP 13-64-32-16, top MLP 367-128-64-1, dot interaction; one id per
table and sample, Zipf(1.05) ids; global batch 2048 (each rank 1024); embeddings row-wise Adagrad fused into the
backward (FBGEMM, lr 0.05), dense parameters Adam (lr 1e-3, DDP allreduce). 3 warm-up steps, then `--steps` timed
steps; samples/s = global samples / wall time of the timed steps (the slowest rank's).
"""
import argparse, json, os, time

import numpy as np
import torch
import torch.distributed as dist
import torch.nn as nn

KAGGLE = [1460, 583, 10131227, 2202608, 305, 24, 12517, 633, 3, 93145, 5683, 8351593, 3194, 27, 14992,
          5461306, 10, 5652, 2173, 4, 7046547, 18, 15, 286181, 105, 142572]


def zipf_ids(rng, n, size, s=1.05):
    u = rng.random(size)
    a = 1.0 - s
    x = ((np.power(n + 1.0, a) - 1.0) * u + 1.0) ** (1.0 / a)
    return np.minimum(np.floor(x).astype(np.int64) - 1, n - 1)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--global-batch", type=int, default=2048)
    ap.add_argument("--steps", type=int, default=40)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--table-cap", type=int, default=None)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    dist.init_process_group("gloo")
    rank, world = dist.get_rank(), dist.get_world_size()

    from torchrec import EmbeddingBagCollection, EmbeddingBagConfig, KeyedJaggedTensor
    from torchrec.distributed.embeddingbag import EmbeddingBagCollectionSharder
    from torchrec.distributed.model_parallel import DistributedModelParallel
    from torchrec.distributed.planner import EmbeddingShardingPlanner, Topology
    from torchrec.models.dlrm import DLRM
    from torchrec.optim.keyed import CombinedOptimizer, KeyedOptimizerWrapper
    from torchrec.optim.optimizers import in_backward_optimizer_filter
    from fbgemm_gpu.split_embedding_configs import EmbOptimType

    tables = [min(n, args.table_cap) if args.table_cap else n for n in KAGGLE]
    configs = [EmbeddingBagConfig(name=f"t{i}", embedding_dim=16, num_embeddings=n, feature_names=[f"C{i + 1}"])
               for i, n in enumerate(tables)]
    ebc = EmbeddingBagCollection(tables=configs, device=torch.device("meta"))
    model = DLRM(embedding_bag_collection=ebc, dense_in_features=13, dense_arch_layer_sizes=[64, 32, 16],
                 over_arch_layer_sizes=[128, 64, 1])
    sharders = [EmbeddingBagCollectionSharder(fused_params={"optimizer": EmbOptimType.EXACT_ROWWISE_ADAGRAD, "learning_rate": 0.05})]
    t_plan = time.time()
    planner = EmbeddingShardingPlanner(topology=Topology(world_size=world, compute_device="cpu"))
    plan = planner.collective_plan(model, sharders, dist.GroupMember.WORLD)
    plan_seconds = time.time() - t_plan
    dmp = DistributedModelParallel(module=model, device=torch.device("cpu"), plan=plan, sharders=sharders)
    dense = KeyedOptimizerWrapper(dict(in_backward_optimizer_filter(dmp.named_parameters())),
                                  lambda params: torch.optim.Adam(params, lr=1e-3))
    opt = CombinedOptimizer([dmp.fused_optimizer, dense])

    b = args.global_batch // world
    rng = np.random.default_rng(100 + rank)
    keys = [f"C{i + 1}" for i in range(len(tables))]
    batches = []
    for _ in range(8):
        ids = np.concatenate([zipf_ids(rng, n, b) for n in tables])
        kjt = KeyedJaggedTensor.from_lengths_sync(keys=keys, values=torch.from_numpy(ids),
                                                  lengths=torch.ones(b * len(tables), dtype=torch.int32))
        batches.append((torch.from_numpy((rng.random((b, 13)) * 4).astype(np.float32)), kjt,
                        torch.from_numpy((rng.integers(0, 4, b) == 0).astype(np.float32))))

    def step(i):
        d, kjt, y = batches[i % len(batches)]
        logits = dmp(d, kjt).squeeze(1)
        loss = nn.functional.binary_cross_entropy_with_logits(logits, y)
        opt.zero_grad()
        loss.backward()
        opt.step()

    for i in range(3):
        step(i)
    dist.barrier()
    t0 = time.time()
    for i in range(args.steps):
        step(i)
    dist.barrier()
    seconds = time.time() - t0
    if rank == 0:
        shardings = {}
        for module_plan in plan.plan.values():
            for name, p in module_plan.items():
                shardings[p.sharding_type] = shardings.get(p.sharding_type, 0) + 1
        out = {"impl": "torchrec-dmp", "torch": torch.__version__, "world_size": world, "threads": args.threads,
               "global_batch": args.global_batch, "steps": args.steps, "samples_per_s": args.steps * args.global_batch / seconds,
               "step_ms": seconds / args.steps * 1000, "plan_seconds": plan_seconds, "shardings": shardings}
        print(json.dumps(out) if args.json else out)
    dist.destroy_process_group()


if __name__ == "__main__":
    main()
