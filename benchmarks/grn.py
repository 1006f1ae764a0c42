"""GRN benchmark: BEELINE metrics on networks with known truth, plus runtime / memory at scale.

Run from the repository root::

    python benchmarks/grn.py            # writes benchmarks/results/grn.json and grn.md

Networks: krumsiek11 (scanpy's simulated data; truth = the signed couplings of
``scanpy/sim_models/krumsiek11.txt``), the twin's Th model (``scagents.twin``, if importable), BEELINE GSD
and SERGIO DS4 (``../shared/data/grn``, skipped when absent). Methods: ``scagents.grn`` ridge,
partial correlation, the correlation baseline, and GRNBoost2 / GENIE3 through ``arboreto`` when it
installs and runs (otherwise the reason is recorded). Metrics: AUPRC ratio and early precision ratio
(``scagents.metrics``), directed, self-loops excluded.
"""

from __future__ import annotations

import json
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

import anndata as ad
import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from scagents.grn import infer_network, network_edges  # noqa: E402
from scagents.metrics import auprc_ratio, early_precision_ratio  # noqa: E402

SHARED = ROOT.parent / "shared" / "data" / "grn"
RESULTS = ROOT / "benchmarks" / "results"
METHODS = ("ridge", "partial_correlation", "correlation")


def krumsiek11() -> tuple[ad.AnnData, pd.DataFrame]:
    import scanpy as sc

    adata = sc.datasets.krumsiek11()
    adata.obs_names_make_unique()
    rules = Path(sc.__file__).parent / "sim_models" / "krumsiek11.txt"
    rows, in_coupling = [], False
    for line in rules.read_text().splitlines():
        if line.startswith("# coupling list"):
            in_coupling = True
            continue
        if in_coupling and line.strip() and not line.startswith("#"):
            target, source, w = line.split()
            rows.append((source, target, int(np.sign(float(w)))))
    return adata, pd.DataFrame(rows, columns=["source", "target", "sign"])


def twin_th() -> tuple[ad.AnnData, pd.DataFrame]:
    import scanpy as sc

    from scagents.twin import load_model, simulate

    mdata = simulate(load_model("th_mendoza2006"), n_cells=1000, seed=0, modalities=("rna",))
    rna = mdata.mod["rna"].copy()
    sc.pp.normalize_total(rna, target_sum=1e4)
    sc.pp.log1p(rna)
    return rna, pd.DataFrame(mdata.uns["twin"]["edges"])[["source", "target"]]


def beeline_gsd() -> tuple[ad.AnnData, pd.DataFrame]:
    expr = pd.read_csv(SHARED / "beeline_GSD" / "ExpressionData.csv", index_col=0)
    truth = pd.read_csv(SHARED / "beeline_GSD" / "GroundTruthNetwork.csv")
    adata = ad.AnnData(expr.T.to_numpy(dtype=np.float32))
    adata.var_names = expr.index.astype(str)
    return adata, truth.rename(columns={"Gene1": "source", "Gene2": "target"})[["source", "target"]]


def sergio_ds4() -> tuple[ad.AnnData, pd.DataFrame]:
    d = SHARED / "sergio_DS4"
    expr = pd.read_csv(d / "simulated_noNoise_T_0.csv", index_col=0)  # genes x cells, total counts
    truth = pd.read_csv(d / "gt_GRN.csv", header=None, names=["source", "target"]).astype(str)
    adata = ad.AnnData(np.log1p(expr.T.to_numpy(dtype=np.float32)))
    adata.var_names = expr.index.astype(str)
    return adata, truth


def run_arboreto(adata: ad.AnnData, algo: str) -> pd.DataFrame:
    from arboreto.algo import genie3, grnboost2
    from distributed import Client, LocalCluster

    X = adata.X.toarray() if hasattr(adata.X, "toarray") else np.asarray(adata.X)
    df = pd.DataFrame(X, columns=list(adata.var_names))
    with LocalCluster(n_workers=1, threads_per_worker=2, processes=False, dashboard_address=None) as cluster, \
            Client(cluster) as client:
        fn = grnboost2 if algo == "grnboost2" else genie3
        net = fn(expression_data=df, client_or_address=client, seed=0)
    return net.rename(columns={"TF": "source", "importance": "weight"})[["source", "target", "weight"]]


def evaluate(name: str, adata: ad.AnnData, truth: pd.DataFrame) -> dict:
    genes = list(map(str, adata.var_names))
    out = {"n_genes": len(genes), "n_cells": int(adata.n_obs), "n_true_edges": int(len(truth)), "methods": {}}
    for method in METHODS:
        t0 = time.perf_counter()
        infer_network(adata, method=method)
        dt = time.perf_counter() - t0
        e = network_edges(adata)
        out["methods"][method] = {"auprc_ratio": auprc_ratio(e, truth, genes=genes),
                                  "early_precision_ratio": early_precision_ratio(e, truth, genes=genes),
                                  "seconds": dt}
    for algo in ("grnboost2", "genie3"):
        try:
            t0 = time.perf_counter()
            e = run_arboreto(adata, algo)
            dt = time.perf_counter() - t0
            out["methods"][f"arboreto_{algo}"] = {"auprc_ratio": auprc_ratio(e, truth, genes=genes),
                                                  "early_precision_ratio": early_precision_ratio(e, truth, genes=genes),
                                                  "seconds": dt}
        except Exception as exc:  # recorded, never faked
            out["methods"][f"arboreto_{algo}"] = {"error": f"{type(exc).__name__}: {exc}"[:300]}
    print(name, json.dumps(out["methods"], default=float)[:400], flush=True)
    return out


def _scale_child(method: str) -> None:
    rng = np.random.default_rng(0)
    n_cells, n_genes = 10_000, 2_000
    # sparse linear SEM-like data: 2,000 genes, each with up to 3 parents among earlier genes
    X = rng.normal(size=(n_cells, n_genes)).astype(np.float32)
    for t in range(50, n_genes):
        parents = rng.choice(t, 3, replace=False)
        X[:, t] += X[:, parents] @ rng.uniform(-0.6, 0.6, 3).astype(np.float32)
    adata = ad.AnnData(X)
    t0 = time.perf_counter()
    infer_network(adata, method=method)
    dt = time.perf_counter() - t0
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"seconds": dt, "peak_rss_mb": rss}))


def scale(method: str = "ridge", repeats: int = 3) -> dict:
    runs = []
    for _ in range(repeats):
        res = subprocess.run([sys.executable, __file__, "--scale-child", method], capture_output=True,
                             text=True, cwd=ROOT, env={"OMP_NUM_THREADS": "2", "OPENBLAS_NUM_THREADS": "2",
                                                       "MKL_NUM_THREADS": "2", "PATH": "/usr/bin:/bin"})
        runs.append(json.loads(res.stdout.strip().splitlines()[-1]))
    secs = [r["seconds"] for r in runs]
    return {"method": method, "n_cells": 10_000, "n_genes": 2_000, "threads": 2, "runs_seconds": secs,
            "median_seconds": statistics.median(secs),
            "peak_rss_mb_median": statistics.median(r["peak_rss_mb"] for r in runs),
            "note": "peak RSS of the whole child process (data generation included)"}


def main() -> None:
    RESULTS.mkdir(parents=True, exist_ok=True)
    results: dict = {"networks": {}, "notes": []}
    loaders = {"krumsiek11": krumsiek11, "twin_th": twin_th, "beeline_GSD": beeline_gsd, "sergio_DS4": sergio_ds4}
    for name, loader in loaders.items():
        try:
            adata, truth = loader()
        except (ImportError, FileNotFoundError) as exc:
            results["notes"].append(f"{name} skipped: {type(exc).__name__}: {exc}")
            continue
        results["networks"][name] = evaluate(name, adata, truth)
    for method in ("ridge", "partial_correlation"):
        results[f"scale_{method}"] = scale(method)
        print(results[f"scale_{method}"], flush=True)
    (RESULTS / "grn.json").write_text(json.dumps(results, indent=2, default=float))
    lines = ["# GRN benchmark", "", "AUPRC ratio / early precision ratio (directed, no self-loops; "
             "random ≈ 1). Produced by `python benchmarks/grn.py`.", "",
             "| network | genes | cells | method | AUPRC ratio | EPR | seconds |", "|---|---|---|---|---|---|---|"]
    for net, r in results["networks"].items():
        for m, v in r["methods"].items():
            if "error" in v:
                lines.append(f"| {net} | {r['n_genes']} | {r['n_cells']} | {m} | failed: {v['error'][:80]} | | |")
            else:
                lines.append(f"| {net} | {r['n_genes']} | {r['n_cells']} | {m} | {v['auprc_ratio']:.2f} | "
                             f"{v['early_precision_ratio']:.2f} | {v['seconds']:.1f} |")
    lines += ["", "## Scale: 2,000 genes x 10,000 cells (median of 3 runs, 2 BLAS threads)", ""]
    for key in ("scale_ridge", "scale_partial_correlation"):
        s = results[key]
        lines.append(f"- {s['method']}: {s['median_seconds']:.1f} s (runs {', '.join(f'{x:.1f}' for x in s['runs_seconds'])}), "
                     f"peak RSS {s['peak_rss_mb_median']:.0f} MB")
    lines += [""] + [f"- {n}" for n in results["notes"]]
    (RESULTS / "grn.md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    if len(sys.argv) > 2 and sys.argv[1] == "--scale-child":
        _scale_child(sys.argv[2])
    else:
        main()
