"""benchmarks/modality.py: the joint-view cell and the sci-CAR held-out time point, on tiny inputs."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

BENCH = Path(__file__).resolve().parents[1] / "benchmarks" / "modality.py"


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("benchmarks_modality", BENCH)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def joint():
    from scagents.envs import ResponseTask
    from scagents.envs.modalities import modality_task, twin_feature_genes

    full = ResponseTask.from_twin("th", ["IFNG", "TBX21", "GATA3", "STAT1", "STAT6", "IL4",
                                         "TBX21 overexpression", "STAT4"],
                                  n_cells=32, n_steps=200, modalities=("rna", "atac"), keep_cells=True)
    return modality_task(full, ("rna", "atac"), feature_genes=twin_feature_genes(full))


def test_joint_cell_scores_the_concatenation_and_each_block(bench, joint):
    df = bench.joint_cell(joint, "linear", seed=0, fold=0, n_folds=4, rl={})
    assert set(df["block"]) == {"joint", "rna", "atac"}
    assert len(df) == 3 * 2
    _, test = joint.split(n_folds=4, fold=0, seed=0)
    # no change: MSE of the concatenation is the feature-weighted mean of the two blocks'
    zero = bench.joint_cell(joint, "no_change", seed=0, fold=0, n_folds=4, rl={})
    z = zero.set_index(["block", "perturbation"])["mse"]
    d = joint.dims
    for lab in test.labels:
        mix = (z["rna", lab] * d["rna"] + z["atac", lab] * d["atac"]) / (d["rna"] + d["atac"])
        assert z["joint", lab] == pytest.approx(mix, rel=1e-9)
        obs = test.observed_delta(lab)
        assert z["joint", lab] == pytest.approx(float(np.mean(obs ** 2)), rel=1e-6)


def test_joint_cell_rl_runs_on_a_tiny_budget(bench, joint):
    df = bench.joint_cell(joint, "trpo_ppo", seed=0, fold=0, n_folds=4,
                          rl={"total_steps": 512, "n_envs": 64})
    assert set(df["block"]) == {"joint", "rna", "atac"}
    assert not df["diverged"].any() and np.isfinite(df["mse"]).all()


def test_scicar_scores_on_a_synthetic_time_course(bench):
    rng = np.random.default_rng(0)
    hours = np.repeat([0, 1, 3], 40)
    shift = {"rna": np.r_[np.ones(5), np.zeros(15)], "atac": np.r_[np.zeros(10), -np.ones(5)]}
    X = {m: rng.normal(0, 0.01, (len(hours), len(s))) + np.outer(hours > 0, s)
         for m, s in shift.items()}
    sc = bench.scicar_scores(X, hours, seeds=2)
    assert set(sc["block"]) == {"rna", "atac", "joint"}
    assert len(sc) == 2 * 2 * 3 * 4          # seeds × held-out times × blocks × methods
    mse = sc.groupby(["block", "method"])["mse"].mean()
    # a step response (same shift at 1 h and 3 h): the mean shift is right, no change is not,
    # and the linear-in-time model over- or under-shoots
    for block in ("rna", "atac", "joint"):
        assert mse[block, "mean_shift"] < 1e-3 < mse[block, "no_change"]
        assert mse[block, "linear_time"] > 10 * mse[block, "mean_shift"]
    assert isinstance(bench.scicar_markdown(sc, {"cells": 120, "genes": 20, "peaks": 15,
                                                 "peaks_binned": 15, "bins": 15,
                                                 "bin_size": 1_000_000, "min_peaks": 5,
                                                 "cells_per_hour": {0: 40, 1: 40, 3: 40}}, 2),
                      list)
    assert pd.api.types.is_numeric_dtype(sc["mse"])


def test_combination_bases_per_modality_and_the_joint_cell(bench, joint):
    from scagents.combination import COMBINATION_BASES

    assert bench.combination_bases("rna") == tuple(COMBINATION_BASES)
    assert bench.combination_bases("atac") == ("mean_effect", "linear")  # no network on ATAC
    assert "combination" in bench.methods_for("atac") and "network" not in bench.methods_for("atac")
    train, _ = joint.split(n_folds=4, fold=0, seed=0)
    model = bench.fit_view_combination(train, "atac", seed=0)
    assert list(model.weights.index) == ["mean_effect", "linear"]
    assert list(model.weights.columns) == list(joint.features["atac"])
    df = bench.joint_cell(joint, "combination", seed=0, fold=0, n_folds=4, rl={})
    assert set(df["block"]) == {"joint", "rna", "atac"} and np.isfinite(df["mse"]).all()


def _summary(means: dict[str, float], pear: dict[str, float]) -> pd.DataFrame:
    cols = pd.MultiIndex.from_tuples([(k, s) for k in ("mse", "pearson_delta_topk")
                                      for s in ("mean", "sd")])
    return pd.DataFrame([[means[m], 0.0, pear[m], 0.0] for m in means], index=list(means),
                        columns=cols)


def test_best_vs_baselines_is_computed_from_the_paired_splits(bench):
    rng = np.random.default_rng(0)
    idx = pd.MultiIndex.from_product([["no_change", "linear", "combination"], range(3), range(5)],
                                     names=["method", "seed", "fold"])
    base = {"no_change": 0.05, "linear": 0.030, "combination": 0.020}
    pear = {"no_change": np.nan, "linear": 0.6, "combination": 0.6}
    per = pd.DataFrame({"mse": [base[m] + rng.normal(0, 1e-4) for m, _, _ in idx],
                        "pearson_delta_topk": [pear[m] + (0 if np.isnan(pear[m]) else
                                                          rng.normal(0, 0.05)) for m, _, _ in idx]},
                       index=idx).sort_index()
    summary = _summary({m: per.loc[m, "mse"].mean() for m in base},
                       {m: per.loc[m, "pearson_delta_topk"].mean() for m in base})
    lines, facts = bench.best_vs_baselines(summary, per)
    assert facts["best_by_mse"] == "combination"
    assert facts["vs"]["linear"]["mse"]["verdict"] == "better"
    assert facts["vs"]["linear"]["mse"]["n"] == 15
    assert facts["vs"]["linear"]["pearson_delta_topk"]["verdict"] == "no significant difference"
    assert facts["vs"]["no_change"]["pearson_delta_topk"]["verdict"] == "undefined"
    assert not facts["beats_every_baseline_on_both"]
    assert facts["not_beaten"] == ["linear (gene embedding) on Pearson-Δ top-20 (no significant "
                                   "difference)"]
    assert lines[-1].startswith("**") and "it does not beat" in lines[-1]


def test_paper_section_puts_the_paper_rows_beside_the_json(bench):
    keys = bench.PAPER_KEYS
    summ = {m: {**{k: {"mean": v, "sd": 0.0} for k, v in zip(keys, np.linspace(0.1, 1, 10), strict=True)},
                "n_splits": 25} for m in ("ppo", "trpo_ppo", "linear")}
    summ["trpo_ppo"]["mse"]["mean"] = 0.5
    summ["ppo"]["mse"]["mean"] = 0.25
    facts = {"best_vs_baselines": {"best_by_mse": "linear"},
             "pure_paper_order": {"trpo_ppo_minus_ppo": {"mean_diff": 0.25, "n": 25,
                                                         "ci95": [0.2, 0.3]}}}
    md = "\n".join(bench.paper_section({"twin": {"rna": {"summary": summ, "facts": facts}}}))
    assert "| RNA only | paper Table II | TRPO→PPO | 0.5938 |" in md
    assert "| joint RNA + ATAC | paper Table I | PPO | 0.6281 |" in md
    assert "| RNA only | this run, mean of 25 splits | linear (gene embedding) (best by MSE) |" in md
    assert ("paper TRPO→PPO − PPO MSE -0.0042" in md
            and "paired TRPO→PPO − PPO +0.2500 (+100.0 % of PPO's MSE" in md
            and "→ worse, significant" in md)
    assert "this run has no atac rows" in md
