"""Reference Python implementations for `reckit cf` (comparison only; the product never runs Python).

- EASE in numpy (Steck's published recipe: G = XᵀX + λI, P = inv(G) in float64, B = −P / diag(P), diag(B) = 0);
- ∞-AE as in the paper's repository (noveens/infinite_ae_cf): neural_tangents' NTK of
  Dense(√2, 0.1) → ReLU → Dense(√2, 0.1), K_reg = K + λ·tr(K)/n·I, jax.scipy.linalg.solve (assume_a="pos");
- the ∞-AE repository's metric code (HR, nDCG, with train positives set to −inf), on a user × item split.

Usage: python reference.py --train train.tsv --test valid.tsv --model ease|infae --lam X [--json]
Prints fit seconds, peak RSS and nDCG@10 / HR@10 on --test with --train as the context.
"""
import argparse, json, resource, sys, time
import numpy as np


def load(path):
    rows = np.loadtxt(path, delimiter="\t", skiprows=1, dtype=np.int64, usecols=(0, 1))
    return rows[:, 0], rows[:, 1]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--train", required=True)
    ap.add_argument("--test", required=True)
    ap.add_argument("--model", choices=["ease", "infae"], required=True)
    ap.add_argument("--lam", type=float, required=True)
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()
    tu, ti = load(a.train)
    vu, vi = load(a.test)
    users = np.unique(tu); items = np.unique(ti)
    umap = {u: k for k, u in enumerate(users)}; imap = {i: k for k, i in enumerate(items)}
    X = np.zeros((len(users), len(items)), dtype=np.float32)
    X[[umap[u] for u in tu], [imap[i] for i in ti]] = 1
    t0 = time.perf_counter()
    if a.model == "ease":
        G = (X.T.astype(np.float64) @ X.astype(np.float64))
        G[np.diag_indices_from(G)] += a.lam
        P = np.linalg.inv(G)
        B = P / (-np.diag(P))
        B[np.diag_indices_from(B)] = 0
        fit = time.perf_counter() - t0
        scores = X @ B.astype(np.float32)
    else:
        import jax, jax.numpy as jnp, functools
        from jax import scipy as sp
        from neural_tangents import stax
        _, _, kernel_fn = stax.serial(stax.Flatten(), stax.Dense(1024, W_std=2 ** 0.5, b_std=0.1, parameterization="ntk"), stax.Relu(),
                                      stax.Dense(len(items), W_std=2 ** 0.5, b_std=0.1, parameterization="ntk"))
        kernel_fn = functools.partial(kernel_fn, get="ntk")

        @jax.jit
        def fit_alpha(Xt, reg):
            K = kernel_fn(Xt, Xt)
            K_reg = K + jnp.abs(reg) * jnp.trace(K) * jnp.eye(K.shape[0]) / K.shape[0]
            return sp.linalg.solve(K_reg, Xt, assume_a="pos"), K

        Xj = jnp.array(X)
        alpha, K = fit_alpha(Xj, a.lam)
        alpha.block_until_ready()
        fit = time.perf_counter() - t0
        scores = np.array(K @ alpha)  # context = train rows: Θ(X, X)·α
    # The ∞-AE repository's HR@k / nDCG@k (evaluate_batch), users with at least one known test item.
    test = {}
    for u, i in zip(vu, vi):
        if u in umap and i in imap:
            test.setdefault(umap[u], set()).add(imap[i])
    scores[X > 0] = -1e6
    top = np.argsort(-scores, axis=1)[:, :10]
    hr = ndcg = 0.0
    for u, pos in test.items():
        hits = [1 if t in pos else 0 for t in top[u]]
        hr += sum(hits) / min(len(pos), 10)
        dcg = sum(h / np.log2(r + 2) for r, h in enumerate(hits))
        idcg = sum(1 / np.log2(r + 2) for r in range(min(len(pos), 10)))
        ndcg += dcg / idcg
    out = {"model": a.model, "lambda": a.lam, "fit_seconds": fit, "ndcg@10": ndcg / len(test), "hr@10": hr / len(test),
           "users": len(test), "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}
    print(json.dumps(out) if a.json else out)


if __name__ == "__main__":
    main()
