"""Peak memory and time of the data → environment path on synthetic atlases of growing size.

For each size (default 100k, 300k and 1M cells × 2,000 genes, ~7 % non-zeros, 2,000 perturbations
plus non-targeting controls) a ``.h5ad`` file is generated chunk by chunk under ``/tmp`` (never in
memory, never in the repository), then a FRESH Python process runs the path on it in backed mode:

1. ``open_backed`` (obs / var in memory, X on disk);
2. ``standardize_backed`` (standard obs columns + a streaming NaN / inf / negative-count scan of X);
3. ``perturbation_summary`` (cells, mean UMIs, mean genes per perturbation);
4. ``highly_variable_backed`` (scanpy "seurat" statistics, 1,000 genes);
5. ``ResponseTask.from_backed`` (stage ``response_task_backed``: streaming pseudobulk of every
   perturbation, 500 most variable genes, 2,000 control cells as episode starts) → ``PerturbationResponseVecEnv`` (256 envs) stepped 100 times;
6. ``CellMinibatchSampler``: 50 random minibatches of 256 cells on the selected genes.

The child reports wall time per stage and its peak RSS (``VmHWM`` from ``/proc/self/status``; ``ru_maxrss``
would include the parent's peak, inherited across fork + exec),
including the imports (measured separately as ``import_rss_mib``). The machine's memory, its 1-minute
load average at the start and the end and the niceness are recorded. Results go to
``benchmarks/results/atlas_memory.{json,md}``.

Not measured by this script: the profile (tracemalloc + VmHWM per stage, 1M vs 100k cells) made for
commit ad901a4 put the growth of the peak in the cell names that anndata loads with ``obs`` (one Python
string per cell, ~98 MB at 1M) and in non-Python memory (HDF5 / allocator) during the streaming passes;
the Python allocations of the streaming stages were flat in cells.

Usage::

    python benchmarks/atlas_memory.py                  # 100k, 300k, 1M cells
    python benchmarks/atlas_memory.py --sizes 20000 --keep
    python benchmarks/atlas_memory.py --render         # rewrite the .md from the saved .json
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

N_GENES = 2000
N_PERTURBATIONS = 2000
CHUNK_SIZE = 50_000


def _rss_mib() -> float:
    """Peak resident memory of this process in MiB.

    Linux: ``VmHWM`` of ``/proc/self/status`` (the high-water mark of this address space; unlike
    ``ru_maxrss`` it is not inherited from the parent across fork + exec). Elsewhere ``ru_maxrss``.
    """
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    scale = 2**20 if sys.platform == "darwin" else 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / scale


def _load() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:  # pragma: no cover - not Linux
        return "n/a"


def child(path: str) -> dict:
    """The data → environment path in this (fresh) process; returns times and peak RSS."""
    import warnings

    warnings.filterwarnings("ignore")
    import numpy as np
    import torch

    torch.set_num_threads(1)
    from scagents.data.backed import (
        CellMinibatchSampler,
        highly_variable_backed,
        open_backed,
        perturbation_summary,
        standardize_backed,
    )
    from scagents.envs.response import PerturbationResponseVecEnv, ResponseTask

    out: dict = {"import_rss_mib": _rss_mib(), "stages_s": {}}
    t0 = time.perf_counter()

    def stage(name: str, start: float) -> float:
        now = time.perf_counter()
        out["stages_s"][name] = round(now - start, 3)
        return now

    t = time.perf_counter()
    adata = open_backed(path)
    t = stage("open_backed", t)
    out["rss_after_open_mib"] = _rss_mib()
    standardize_backed(adata)
    t = stage("standardize_backed", t)
    summary = perturbation_summary(adata, control="control", chunk_size=CHUNK_SIZE)
    t = stage("perturbation_summary", t)
    hvg = highly_variable_backed(adata, n_top_genes=1000, chunk_size=CHUNK_SIZE)
    t = stage("highly_variable_backed", t)
    task = ResponseTask.from_backed(adata, n_top_genes=500, max_control_cells=2000, chunk_size=CHUNK_SIZE)
    t = stage("response_task_backed", t)
    env = PerturbationResponseVecEnv(task, num_envs=256)
    env.reset(seed=0)
    rng = np.random.default_rng(0)
    rewards = []
    for _ in range(100):
        _, r, *_ = env.step(rng.uniform(-0.1, 0.1, env.action_space.shape).astype(np.float32))
        rewards.append(float(np.mean(r)))
    t = stage("env_100_steps", t)
    sampler = CellMinibatchSampler(adata, batch_size=256, genes=task.features["rna"], seed=0)
    total = 0.0
    for _ in range(50):
        _, batch = sampler.sample()
        total += float(batch.sum())
    stage("minibatches_50x256", t)
    out.update(
        total_s=round(time.perf_counter() - t0, 3), peak_rss_mib=round(_rss_mib(), 1),
        n_cells=int(adata.n_obs), n_genes=int(adata.n_vars), n_groups=int(len(summary)),
        n_hvg=int(hvg["highly_variable"].sum()), task=repr(task),
        mean_umis=float(summary["mean_umis"].mean()), mean_reward=float(np.mean(rewards)),
        nnz=int(adata.X.group["data"].shape[0]) if hasattr(adata.X, "group") else None,
    )
    return out


def _memory_gib() -> float | None:
    """This machine's memory (``MemTotal`` of ``/proc/meminfo``) in GiB; ``None`` elsewhere."""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) / 2**20
    except OSError:
        pass
    return None


def render_markdown(payload: dict) -> str:
    """The report, from the results payload only."""
    from _util import run_conditions

    rows = payload["runs"]
    nz = sorted({f"{100 * r['nnz'] / (r['n_cells'] * r['n_genes']):.1f}" for r in rows if r.get("nnz")}, key=float)
    nz_text = f"{nz[0]}–{nz[-1]} % non-zeros, " if len(nz) > 1 else f"{nz[0]} % non-zeros, " if nz else ""
    mem = payload.get("memory_gib")
    lines = [
        "# Atlas memory: data → environment path on backed synthetic files",
        "",
        f"Synthetic screens of {payload['n_genes']} genes, {payload['n_perturbations']} perturbations + "
        "non-targeting controls, "
        + nz_text
        + f"read in chunks of {payload['chunk_size']:,} cells; each size runs in a fresh process. "
        "Peak RSS is the child's `VmHWM` (peak resident set, imports included). "
        + (f"Machine memory: {mem:.1f} GiB." if mem else "Machine memory not recorded."),
        "",
        run_conditions(payload),
        "",
        "| cells | non-zeros | file (MiB) | path time (s) | peak RSS (MiB) | RSS after imports (MiB) | "
        "peak RSS after open_backed (MiB) |",
        "|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(f"| {r['n_cells']:,} | {r['nnz']:,} | {r['file_mib']:.0f} | {r['total_s']:.1f} | "
                     f"{r['peak_rss_mib']:.0f} | {r['import_rss_mib']:.0f} | {r['rss_after_open_mib']:.0f} |")
    lines += ["", "Time per stage (s):", "",
              "| cells | " + " | ".join(rows[0]["stages_s"]) + " |",
              "|---:|" + "---:|" * len(rows[0]["stages_s"])]
    for r in rows:
        lines.append(f"| {r['n_cells']:,} | " + " | ".join(f"{v:.1f}" for v in r["stages_s"].values()) + " |")
    if len(rows) > 1:
        lo, hi = rows[0], rows[-1]
        growth = hi["peak_rss_mib"] - lo["peak_rss_mib"]
        lines += ["", f"From {lo['n_cells']:,} to {hi['n_cells']:,} cells ({hi['n_cells'] / lo['n_cells']:.0f}×) "
                  f"peak RSS grows by {growth:.0f} MiB ({hi['peak_rss_mib'] / lo['peak_rss_mib']:.2f}×); "
                  f"opening the file (obs / var in memory) adds "
                  f"{lo['rss_after_open_mib'] - lo['import_rss_mib']:.0f} MiB over the imports at "
                  f"{lo['n_cells']:,} cells and {hi['rss_after_open_mib'] - hi['import_rss_mib']:.0f} MiB at "
                  f"{hi['n_cells']:,}."]
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", type=int, nargs="+", default=[100_000, 300_000, 1_000_000])
    ap.add_argument("--dir", default=None,
                    help="where the generated files go (default: a new temporary folder)")
    ap.add_argument("--keep", action="store_true", help="keep the generated files")
    ap.add_argument("--render", action="store_true", help="rewrite the .md from the saved .json and exit")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        print(json.dumps(child(args.child)))
        return

    from _util import RESULTS, load_record, write_results

    if args.render:
        from scagents._atomic import write_text

        md = render_markdown(json.loads((RESULTS / "atlas_memory.json").read_text()))
        write_text(RESULTS / "atlas_memory.md", md)
        print(md)
        return
    from scagents.data.backed import write_synthetic_atlas

    # a fresh private folder by default: a fixed /tmp name could be pre-created by another user
    folder = Path(args.dir) if args.dir else Path(tempfile.mkdtemp(prefix="scagents_atlas_"))
    folder.mkdir(parents=True, exist_ok=True)
    rows = []
    load_before = _load()
    load0 = os.getloadavg()[0]
    for n in args.sizes:
        path = folder / f"atlas_{n}.h5ad"
        t = time.perf_counter()
        write_synthetic_atlas(path, n_cells=n, n_genes=N_GENES, n_perturbations=N_PERTURBATIONS, seed=0)
        gen_s = time.perf_counter() - t
        size_mb = path.stat().st_size / 2**20
        print(f"[{n} cells] generated {size_mb:.0f} MiB in {gen_s:.1f} s", flush=True)
        env = {**os.environ, "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
        proc = subprocess.run([sys.executable, __file__, "--child", str(path)], capture_output=True, text=True,
                              cwd=ROOT, env=env, check=False)
        if proc.returncode != 0:
            raise SystemExit(f"child failed for {n} cells:\n{proc.stderr[-3000:]}")
        res = json.loads(proc.stdout.strip().splitlines()[-1])
        res.update(file_mib=round(size_mb, 1), generate_s=round(gen_s, 1))
        rows.append(res)
        print(f"[{n} cells] path {res['total_s']:.1f} s, peak RSS {res['peak_rss_mib']:.0f} MiB", flush=True)
        if not args.keep:
            path.unlink()
    load_after = _load()
    if not args.keep:
        try:
            folder.rmdir()
        except OSError:
            pass

    payload = {"load_average_before": load_before, "load_average_after": load_after,
               "load_average_1min": load_record(load0), "memory_gib": _memory_gib(), "n_genes": N_GENES,
               "n_perturbations": N_PERTURBATIONS, "chunk_size": CHUNK_SIZE, "runs": rows}
    js, md = write_results("atlas_memory", payload, render_markdown(payload))
    print(f"wrote {js} and {md}")


if __name__ == "__main__":
    main()
