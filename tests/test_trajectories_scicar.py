"""The sci-CAR dexamethasone time course of benchmarks/trajectories.py: task, cell split, baselines."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import shared_file

BENCH = Path(__file__).resolve().parents[1] / "benchmarks" / "trajectories.py"


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("benchmarks_trajectories", BENCH)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module          # dataclasses look the module up while defining
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def adata():
    import anndata as ad

    return ad.read_h5ad(shared_file("multiome/cao2018_scicar_a549_dex_rna.h5ad"))


@pytest.fixture(scope="module")
def split(bench, adata):
    return bench.time_course_task(adata, n_top_genes=50, seed=0)


def test_task_shapes_follow_the_time_course(split, adata):
    train, test = split.train, split.test
    assert split.hours == (0, 1, 3)
    assert len(split.genes) == 50 and train.features["rna"] == split.genes
    n0 = len(split.cells["train"][0])
    assert train.n_points == 2 and train.n_perturbations == 1
    assert train.states["rna"].shape == (n0, 2, 50)
    assert train.deltas["rna"].shape == (1, 2, 50)
    assert test.states["rna"].shape == (len(split.cells["test"][0]), 2, 50)
    # the observation at both points is the same 0 h cell (cells are not tracked through time)
    np.testing.assert_array_equal(train.states["rna"][:, 0], train.states["rna"][:, 1])
    np.testing.assert_allclose(train.states["rna"][:, 0], split.cells["train"][0], rtol=1e-6)
    # the delta at each point is the half's mean at that time minus its 0 h mean
    c = split.cells["train"]
    np.testing.assert_allclose(train.deltas["rna"][0, 1], c[2].mean(0) - c[0].mean(0), atol=1e-5)
    np.testing.assert_allclose(train.pseudotime[0], [1 / 3, 1.0], rtol=1e-6)
    times = adata.obs["Time"].astype(str).astype(int).to_numpy()
    for i, h in enumerate(split.hours):
        assert len(c[i]) + len(split.cells["test"][i]) == int((times == h).sum())


def test_held_out_halves_are_disjoint(split):
    for i in range(len(split.hours)):
        tr, te = set(split.obs_names["train"][i]), set(split.obs_names["test"][i])
        assert tr and te and not tr & te
    np.testing.assert_array_equal(split.train.encoding, split.test.encoding)


def test_mean_shift_beats_no_change_on_held_out_cells(bench, split):
    preds = bench.scicar_predictions(split, {})
    truth = split.cells["test"]
    res = {m: bench.compare_time_course(p, truth, seed=0) for m, p in preds.items()}
    assert res["mean_shift"]["dtw"] < 0.5 * res["no_change"]["dtw"]
    assert res["mean_shift"]["wasserstein"] < res["no_change"]["wasserstein"]
    # the 0 h point is the held-out cells themselves for every method
    np.testing.assert_array_equal(preds["mean_shift"][0], truth[0])


def test_split_depends_on_the_seed(bench, adata, split):
    other = bench.time_course_task(adata, n_top_genes=50, seed=1)
    assert set(other.obs_names["test"][1]) != set(split.obs_names["test"][1])


@pytest.mark.slow
def test_a_short_trpo_ppo_run_moves_towards_the_time_course(bench, split):
    from scagents.envs import PerturbationResponseVecEnv
    from scagents.evaluation import default_train_config
    from scagents.policies import train

    cfg = default_train_config("trpo_ppo", total_steps=4_096, n_envs=64, n_steps=4,
                               hidden_sizes=(64, 64), seed=0)
    pol, _ = train(PerturbationResponseVecEnv(split.train, cfg.n_envs), cfg, progress=False)
    preds = bench.scicar_predictions(split, {"trpo_ppo": pol})
    truth = split.cells["test"]
    dtw = {m: bench.compare_time_course(p, truth, seed=0)["dtw"] for m, p in preds.items()}
    assert dtw["trpo_ppo:teacher"] < 0.8 * dtw["no_change"]
