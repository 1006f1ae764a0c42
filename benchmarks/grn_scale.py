"""Scale of network inference: ``infer_network`` on 10,000 genes x 10,000 cells, regulators restricted.

Every gene is a target; the regulators are restricted to 1,000 candidate genes (as the network agent
restricts them to perturbation targets, goal genes and highly variable genes); the top 20
regulators of each target are kept. The data are a sparse linear model seen through ``log1p`` of a
clipped value (about 40 % zeros, CSR float32 as a real log-normalised matrix), generated in blocks.
Each repetition is a fresh process limited to 2 BLAS threads; peak memory is the process's maximum
resident set size (data generation included) and ``rss_before_mb`` the resident size just before
inference. Targets (issue 18): ≤ 60 s and ≤ 4 GB on 2 cores.

Usage::

    python benchmarks/grn_scale.py [--repeats 3] [--genes 10000] [--cells 10000] [--regulators 1000]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _util import load_record, machine_line_of, median, write_results  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
TARGET_S, TARGET_MB = 60.0, 4096.0


def synthetic(n_cells: int, n_genes: int, n_regulators: int, seed: int = 0):
    """Sparse log-normalised-like expression: each non-regulator has 3 regulator parents."""
    import anndata as ad
    import numpy as np
    import scipy.sparse as sp

    rng = np.random.default_rng(seed)
    R = rng.normal(size=(n_cells, n_regulators)).astype(np.float32)
    blocks = [sp.csr_matrix(np.log1p(np.clip(R, 0, None)))]
    step = 1000
    for s in range(n_regulators, n_genes, step):
        w = min(step, n_genes - s)
        parents = rng.integers(0, n_regulators, size=(3, w))
        coef = rng.uniform(-0.8, 0.8, size=(3, w)).astype(np.float32)
        Y = rng.normal(size=(n_cells, w)).astype(np.float32)
        for p in range(3):
            Y += R[:, parents[p]] * coef[p]
        blocks.append(sp.csr_matrix(np.log1p(np.clip(Y, 0, None))))
    X = sp.hstack(blocks, format="csr", dtype=np.float32)
    adata = ad.AnnData(X)
    adata.var_names = [f"G{i}" for i in range(n_genes)]
    return adata


def _rss_mb() -> float:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def child(n_cells: int, n_genes: int, n_regulators: int, top_k: int | None) -> None:
    sys.path.insert(0, str(ROOT))
    from scagents.grn import infer_network

    adata = synthetic(n_cells, n_genes, n_regulators)
    before = _rss_mb()
    t0 = time.perf_counter()
    infer_network(adata, regulators=list(adata.var_names[:n_regulators]), top_k=top_k)
    dt = time.perf_counter() - t0
    g = adata.uns["grn"]
    print("__BENCH__" + json.dumps({
        "seconds": dt, "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "rss_before_mb": before, "n_edges": int(len(g["edges"])), "alpha": g["params"]["alpha"],
        "density": float(adata.X.nnz / (n_cells * n_genes)), "method": g["params"]["method"],
        "trees": g["params"].get("trees"), "sign_from": g["params"].get("sign_from")}))


def _method_line(run: dict) -> str:
    """The default method as it ran (the ensemble's trees are skipped above its size rule)."""
    trees = run.get("trees") or {}
    if run.get("method") == "ensemble":
        return ("ensemble; its trees " + ("were fitted" if trees.get("fitted") else
                f"were not fitted ({trees.get('reason', 'size rule')})") + ", α by held-out R²")
    return f"{run.get('method', 'ridge')}, α by held-out R²"


def _sign_line(run: dict) -> str:
    return f", edges signed by {run['sign_from']}" if run.get("sign_from") else ""


def measure(args, top_k: int | None) -> dict:
    env = {**os.environ, "OMP_NUM_THREADS": "2", "OPENBLAS_NUM_THREADS": "2", "MKL_NUM_THREADS": "2",
           "PYTHONPATH": str(ROOT)}
    cmd = [sys.executable, __file__, "--child", "--cells", str(args.cells), "--genes", str(args.genes),
           "--regulators", str(args.regulators), "--top-k", str(top_k if top_k is not None else -1)]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
    line = [x for x in proc.stdout.splitlines() if x.startswith("__BENCH__")]
    if proc.returncode != 0 or not line:
        raise RuntimeError(f"child failed:\n{proc.stdout}\n{proc.stderr}")
    return json.loads(line[0][len("__BENCH__"):])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--cells", type=int, default=10_000)
    ap.add_argument("--genes", type=int, default=10_000)
    ap.add_argument("--regulators", type=int, default=1_000)
    ap.add_argument("--top-k", type=int, default=20)
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    load0 = os.getloadavg()[0]
    top_k = None if args.top_k < 0 else args.top_k
    if args.child:
        child(args.cells, args.genes, args.regulators, top_k)
        return
    runs = []
    for i in range(args.repeats):
        runs.append(measure(args, top_k))
        print(f"run {i}: {runs[-1]['seconds']:.1f} s, peak {runs[-1]['peak_rss_mb']:.0f} MB", flush=True)
    all_edges = measure(args, None)
    print(f"all non-zero edges: {all_edges['seconds']:.1f} s, peak {all_edges['peak_rss_mb']:.0f} MB")
    sec, rss = median([r["seconds"] for r in runs]), median([r["peak_rss_mb"] for r in runs])
    payload = {"n_cells": args.cells, "n_genes": args.genes, "n_regulators": args.regulators,
               "top_k": top_k, "threads": 2, "runs": runs, "median_seconds": sec,
               "median_peak_rss_mb": rss, "all_edges_run": all_edges,
               "target": {"seconds": TARGET_S, "peak_rss_mb": TARGET_MB},
               "meets_target": sec <= TARGET_S and rss <= TARGET_MB,
               "load_average_1min": load_record(load0)}
    run_list = ", ".join(f"{r['seconds']:.1f} s / {r['peak_rss_mb']:.0f} MB" for r in runs)
    md = (f"# Network inference at scale\n\n`infer_network(adata, regulators=<{args.regulators} genes>, "
          f"top_k={top_k})` (default method: {_method_line(runs[0])}{_sign_line(runs[0])}) on {args.genes:,} genes x "
          f"{args.cells:,} cells (CSR float32, density {runs[0]['density']:.2f}), every gene a target; "
          f"median of {args.repeats} fresh processes, 2 BLAS threads. Produced by "
          f"`python benchmarks/grn_scale.py`.\n\n| | median | target |\n|---|---|---|\n"
          f"| wall time of `infer_network` (s) | {sec:.1f} | ≤ {TARGET_S:.0f} |\n"
          f"| peak RSS, whole process (MB) | {rss:.0f} | ≤ {TARGET_MB:.0f} |\n\n"
          f"- runs: {run_list}; "
          f"resident before inference (the data): {runs[0]['rss_before_mb']:.0f} MB; "
          f"{runs[0]['n_edges']:,} edges kept.\n"
          f"- keeping every non-zero edge (`top_k=None`, {all_edges['n_edges']:,} edges): "
          f"{all_edges['seconds']:.1f} s, {all_edges['peak_rss_mb']:.0f} MB (one run).\n"
          f"- Verdict: {'meets' if payload['meets_target'] else 'misses'} the target. "
          f"{machine_line_of(payload['load_average_1min'])}\n")
    js, mdp = write_results("grn_scale", payload, md)
    print(md)
    print(f"written {js} and {mdp}")


if __name__ == "__main__":
    main()
