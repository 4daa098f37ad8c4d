#!/usr/bin/env python3
"""One command: RecKit and its PyTorch peers on the identical DLRM Criteo-Kaggle workload, back to back in the
same run, and the ratios.

    benchmarks/pytorch/setup.sh                      # once: venvs with PyTorch (+ TorchRec/FBGEMM CPU)
    scripts/build.sh                                 # once: the native release build of reckit
    benchmarks/pytorch/compare.py --mode train --batch-size 2048 --optimizer rowwise_adagrad
    benchmarks/pytorch/compare.py --mode infer --batch-size 128 --precision bf16 --ids zipf

Runs `reckit bench <mode> --json` and `dlrm_peer.py --impl pytorch|torchrec` with the same batch size, threads,
optimizer, id distribution, precision and table sizes, each in its own process (so peak RSS is per
implementation), `--repeats` times interleaved (RecKit, PyTorch, TorchRec, RecKit, ...), and reports the median
of each. Prints one JSON object: reckit_sps, pytorch_sps, torchrec_sps (null with torchrec_error when it cannot
run), ratio_vs_best (RecKit / fastest peer), ratio_vs_pytorch, ratio_vs_torchrec, peak RSS of each, the full
reports, and the machine.
"""
import argparse, json, os, platform, statistics, subprocess, sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))


def python_for_peers():
    for venv in (".venv-torchrec", ".venv"):
        p = os.path.join(HERE, venv, "bin", "python")
        if os.path.exists(p):
            return p
    return sys.executable


def run_json(cmd, env=None):
    p = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if p.returncode != 0:
        tail = (p.stderr.strip().splitlines() or ["(no output)"])[-1]
        return None, f"exit {p.returncode}: {tail}"
    lines = p.stdout.splitlines()
    for i in range(len(lines) - 1, -1, -1):      # the last JSON object, single-line or pretty-printed
        if lines[i].startswith("{"):
            try:
                return json.loads("\n".join(lines[i:])), None
            except json.JSONDecodeError:
                continue
    return None, "no JSON object in the output"


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--mode", choices=["train", "infer"], default="train")
    ap.add_argument("--batch-size", type=int, default=2048)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--optimizer", choices=["rowwise_adagrad", "sgd"], default="rowwise_adagrad")
    ap.add_argument("--ids", choices=["uniform", "zipf"], default="uniform")
    ap.add_argument("--precision", choices=["fp32", "bf16"], default="fp32")
    ap.add_argument("--table-cap", type=int, default=None, help="cap each table (smoke runs)")
    ap.add_argument("--repeats", type=int, default=1, help="interleaved runs of each implementation")
    ap.add_argument("--reckit", default=os.path.join(ROOT, ".build", "release", "reckit"))
    ap.add_argument("--python", default=python_for_peers())
    ap.add_argument("--skip-torchrec", action="store_true")
    a = ap.parse_args()

    common = ["--batch-size", str(a.batch_size), "--ids", a.ids, "--precision", a.precision]
    if a.table_cap:
        common += ["--table-cap", str(a.table_cap)]
    reckit_cmd = [a.reckit, "bench", a.mode, "--json", "--threads", str(a.threads)] + common
    peer = [a.python, os.path.join(HERE, "dlrm_peer.py"), "--mode", a.mode, "--threads", str(a.threads),
            "--json"] + common
    if a.mode == "train":
        reckit_cmd += ["--optimizer", a.optimizer]
        peer += ["--optimizer", a.optimizer]

    runs = {"reckit": [], "pytorch": [], "torchrec": []}
    errors = {}
    for _ in range(a.repeats):
        for name, cmd in (("reckit", reckit_cmd), ("pytorch", peer + ["--impl", "pytorch"]),
                          ("torchrec", peer + ["--impl", "torchrec"])):
            if name == "torchrec" and a.skip_torchrec:
                errors[name] = "skipped (--skip-torchrec)"
                continue
            if name in errors:
                continue
            print(f"compare: running {name} ...", file=sys.stderr, flush=True)
            report, err = run_json(cmd)
            if report is None:
                errors[name] = err
                print(f"compare: {name} failed: {err}", file=sys.stderr)
            else:
                runs[name].append(report)
                print(f"compare: {name}: {report['samples_per_s']:.0f} samples/s", file=sys.stderr)

    def med(name, key="samples_per_s"):
        vals = [r[key] for r in runs[name] if r.get(key) is not None]
        return statistics.median(vals) if vals else None

    out = {"mode": a.mode, "batch_size": a.batch_size, "threads": a.threads, "optimizer": a.optimizer,
           "distribution": a.ids, "precision": a.precision, "table_cap": a.table_cap, "repeats": a.repeats}
    for name in runs:
        out[f"{name}_sps"] = med(name)
        out[f"{name}_peak_rss_mb"] = med(name, "peak_rss_mb")
        out[f"{name}_p99_ms"] = med(name, "latency_p99_ms")
        if name in errors:
            out[f"{name}_error"] = errors[name]
    if out["reckit_sps"] is None:
        print(json.dumps(out))
        return 1
    peers = {n: out[f"{n}_sps"] for n in ("pytorch", "torchrec") if out[f"{n}_sps"]}
    for n, v in peers.items():
        out[f"ratio_vs_{n}"] = out["reckit_sps"] / v
    best = max(peers.items(), key=lambda kv: kv[1]) if peers else None
    out["best_peer"] = best[0] if best else None
    out["ratio_vs_best"] = out["reckit_sps"] / best[1] if best else None
    out["reports"] = runs
    out["machine"] = {"cpu": platform.processor() or platform.machine(), "cores": os.cpu_count(),
                      "python": platform.python_version()}
    try:
        with open("/proc/cpuinfo") as fh:
            out["machine"]["cpu"] = next(l.split(":", 1)[1].strip() for l in fh if l.startswith("model name"))
    except (OSError, StopIteration):
        pass
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
