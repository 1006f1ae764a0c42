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
                                  n_cells=32, n_steps=200, modalities=("rna", "atac"))
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
