"""BEELINE GSD with its pseudotime: the time-aware candidates of ``benchmarks/grn_select.py`` scored on GSD.

For the report only (GSD is an evaluation network: nothing here steers the default). Run from the
repository root::

    python benchmarks/grn_gsd_time.py     # writes benchmarks/results/grn_gsd_time.{json,md}

BEELINE's ``PseudoTime.csv`` gives two lineage pseudotimes (``PseudoTime1``/``PseudoTime2``, NA where a
cell is not on the lineage; 558 of 2,000 cells are on both). The candidates get one time per cell
(``obs["pseudotime"]``: the mean of the available lineage times, ``"combined"``) and, as BEELINE runs
pseudotime methods on multi-lineage data, once per lineage on that lineage's cells with the per-edge
maximum ``|weight|`` over lineages (``"per_lineage"``). The default (no time) is scored on all cells.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from grn import SHARED, beeline_gsd  # noqa: E402
from grn_select import OBS_CANDIDATES, _explicit, _score, ours  # noqa: E402

from scagents._atomic import write_json  # noqa: E402

OUT = ROOT / "benchmarks" / "results" / "grn_gsd_time"
TIME_CANDIDATES = [n for n, kw in OBS_CANDIDATES.items() if "_time" in kw or "_smooth" in kw]


def _max_abs(tables: list[pd.DataFrame]) -> pd.DataFrame:
    e = pd.concat(tables, ignore_index=True)
    e = e.loc[e["weight"].abs().groupby([e["source"], e["target"]]).idxmax()]
    return e.reindex(e["weight"].abs().sort_values(ascending=False, kind="stable").index).reset_index(drop=True)


def main() -> dict:
    adata, truth = beeline_gsd()
    genes = list(map(str, adata.var_names))
    pt = pd.read_csv(SHARED / "beeline_GSD" / "PseudoTime.csv", index_col=0)
    cells = pd.read_csv(SHARED / "beeline_GSD" / "ExpressionData.csv", index_col=0, nrows=0).columns
    pt = pt.reindex(cells)
    adata.obs_names = list(cells)
    adata.obs["pseudotime"] = pt.mean(axis=1, skipna=True).to_numpy()
    out: dict = {"command": "python benchmarks/grn_gsd_time.py", "n_cells": int(adata.n_obs),
                 "n_genes": len(genes), "cells_per_lineage": {c: int(pt[c].notna().sum()) for c in pt},
                 "scores": {}}
    t0 = time.perf_counter()
    out["scores"]["default (no time)"] = _score(ours(adata, {}), truth, genes)
    for name in TIME_CANDIDATES:
        kw = _explicit(OBS_CANDIDATES[name])
        out["scores"][f"{name} / combined"] = _score(ours(adata, kw), truth, genes)
        per = []
        for c in pt:
            on = pt[c].notna().to_numpy()
            a = adata[on].copy()
            a.obs["pseudotime"] = pt.loc[on, c].to_numpy()
            per.append(ours(a, kw))
        out["scores"][f"{name} / per_lineage"] = _score(_max_abs(per), truth, genes)
        print(name, out["scores"][f"{name} / combined"], out["scores"][f"{name} / per_lineage"], flush=True)
    out["seconds"] = round(time.perf_counter() - t0, 1)
    write_json(OUT.with_suffix(".json"), out, indent=1)
    L = ["# BEELINE GSD with its pseudotime (report only; GSD does not steer the default)", "",
         f"Produced by `{out['command']}` ({out['n_cells']} cells, {out['n_genes']} genes; lineage cells "
         f"{out['cells_per_lineage']}). AUPRC ratio and EPR (BEELINE, directed, self-loops excluded). "
         "Goal (issue 18): AUPRC ratio ≥ 1.55 (SCRIBE's published median over BEELINE's GSD data sets).", "",
         "| method / time | AUPRC ratio | EPR |", "|---|---|---|"]
    L += [f"| {k} | {v['auprc_ratio']:.2f} | {v['epr']:.2f} |" for k, v in out["scores"].items()]
    OUT.with_suffix(".md").write_text("\n".join(L) + "\n")
    return out


if __name__ == "__main__":
    main()
