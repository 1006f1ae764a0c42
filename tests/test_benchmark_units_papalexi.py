"""The per-label vs per-gene benchmark's relabelling and its per-label reference (benchmarks/units_papalexi.py)."""

from __future__ import annotations

import warnings

import anndata as ad
import numpy as np
import pandas as pd

from tests.conftest import load_benchmark


def test_relabel_splits_promoters_guides_and_alternate_genes(tmp_path):
    bench = load_benchmark("units_papalexi")
    guides = ["NTg1", "Ag1", "Ag2", "Ag3", "Ag4", "Bg1", "Bg4", "Cg2", "Cg3"]
    pert = ["non-targeting", "A", "A", "A", "A", "B", "B", "C", "C"]
    src = tmp_path / "src.h5ad"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ad.AnnData(np.ones((9, 3), np.float32),
                   obs=pd.DataFrame({"perturbation": pert, "top_grna": guides},
                                    index=[f"c{i}" for i in range(9)])).write_h5ad(src)
    expected = {"promoter": ["non-targeting", "A_P1", "A_P1", "A_P2", "A_P2", "B_P1", "B_P2", "C_P1", "C_P2"],
                "guide": ["non-targeting", *guides[1:]],
                "mixed": ["non-targeting", "A_P1", "A_P1", "A_P2", "A_P2", "B", "B", "C_P1", "C_P2"]}
    for how, labels in expected.items():
        info = bench.relabel(src, tmp_path / f"{how}.h5ad", how)
        got = ad.read_h5ad(tmp_path / f"{how}.h5ad").obs["perturbation"].astype(str).tolist()
        assert got == labels, how
        assert info == {"labels": len(set(labels)) - 1, "targets": 3}


def test_per_label_reference_is_the_agents_rule_with_one_label_per_gene():
    """With one label per gene the per-label and per-gene decisions are the agent's, field by field."""
    from scagents.agents.policy import POLICY

    bench = load_benchmark("units_papalexi")
    rng = np.random.default_rng(4)
    idx = [f"G{i}" for i in range(8)]

    def rows(scale):
        return pd.DataFrame({"mse": rng.uniform(0.2, 0.6, 8) * scale,
                             "pearson_delta_topk": rng.uniform(0, 1, 8),
                             "target_direction": rng.choice([0.0, 1.0], 8),
                             "target_group": [f"{g} knockout" for g in idx]}, index=idx)

    data = {POLICY: rows(0.8), "b": rows(1.0), "c": rows(1.1)}
    lab = bench.label_compare(data, policy=POLICY, baselines=["b", "c"], min_improvement=0.05)
    gen = bench.unit_compare(data, policy=POLICY, baselines=["b", "c"], min_improvement=0.05)
    for key in ("best", "rel", "paired_mean", "paired_se", "pearson", "checks", "validated"):
        assert lab[key] == gen[key], key
