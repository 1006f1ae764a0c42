"""Tests of scagents.evaluation (held-out scoring shared by the benchmarks)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from scagents.envs.response import ResponseTask
from scagents.errors import DataError
from scagents.evaluation import (
    default_train_config,
    fit_baseline,
    heldout_scores,
    summarize,
)
from scagents.perturbation import Perturbation


def _task(n_genes: int = 12, seed: int = 0) -> ResponseTask:
    """Knockouts lower their own gene; over-expressions raise it (opposite kinds)."""
    rng = np.random.default_rng(seed)
    genes = [f"G{i}" for i in range(n_genes)]
    perts, labels, deltas = [], [], []
    for i, g in enumerate(genes[:8]):
        for kind, sign in (("knockout", -1.0), ("overexpression", 1.0)):
            d = np.zeros(n_genes, np.float32)
            d[i] = 0.5 * sign
            d[(i + 1) % n_genes] = 0.2 * sign
            perts.append(Perturbation((g,), kind=kind))
            labels.append(g if kind == "knockout" else f"{g} overexpression")
            deltas.append(d)
    states = rng.normal(1.0, 0.1, (32, 1, n_genes)).astype(np.float32)
    return ResponseTask(modalities=("rna",), features={"rna": genes}, states={"rna": states},
                        pseudotime=np.ones((32, 1), np.float32), perturbations=perts,
                        labels=labels, deltas={"rna": np.stack(deltas)[:, None, :]},
                        control_mean={"rna": states.mean(axis=0)},
                        action_bounds={"rna": 1.0}, embedding_k=4, source="test")


def test_no_change_scores_the_observed_delta_and_holds_out_perturbations():
    task = _task()
    df = heldout_scores(task, method="no_change", seed=3, fold=1, n_folds=4)
    train, test = task.split(n_folds=4, fold=1, seed=3)
    assert list(df["perturbation"]) == test.labels
    assert not set(df["perturbation"]) & set(train.labels)
    expected = [float(np.mean(test.observed_delta(i) ** 2)) for i in range(test.n_perturbations)]
    np.testing.assert_allclose(df["mse"], expected, rtol=1e-6)
    assert set(df[["method", "seed", "fold"]].itertuples(index=False)) == {("no_change", 3, 1)}


def test_mean_effect_is_fitted_per_kind():
    task = _task()
    train, test = task.split(n_folds=4, fold=0, seed=0)
    predict = fit_baseline("mean_effect", train)
    ko = [i for i, p in enumerate(train.perturbations) if p.kind == "knockout"]
    expected = train.deltas["rna"][ko, -1].mean(axis=0)
    np.testing.assert_allclose(predict(Perturbation(("G0",), kind="knockout")), expected, atol=1e-6)
    # over-expressions have the opposite sign here: the per-kind mean must too
    oe = predict(Perturbation(("G0",), kind="overexpression"))
    assert float(oe.sum()) > 0 > float(expected.sum())


def test_linear_fits_training_effects_better_than_no_change():
    task = _task()
    train, _ = task.split(n_folds=4, fold=0, seed=0)
    predict = fit_baseline("linear", train)
    errors = [float(np.mean((predict(p) - train.observed_delta(i)) ** 2))
              for i, p in enumerate(train.perturbations)]
    zero = [float(np.mean(train.observed_delta(i) ** 2)) for i in range(train.n_perturbations)]
    assert np.mean(errors) < 0.5 * np.mean(zero)


def test_rl_method_trains_and_scores_every_heldout_perturbation():
    task = _task()
    cfg = default_train_config(total_steps=512, n_envs=64, n_steps=2, hidden_sizes=(16,))
    df, policy = heldout_scores(task, method="trpo_ppo", seed=0, fold=0, n_folds=4,
                                train_config=cfg, return_policy=True)
    assert policy is not None and policy.train_config.algo == "trpo_ppo"
    assert len(df) == task.split(n_folds=4, fold=0, seed=0)[1].n_perturbations
    assert np.isfinite(df["mse"]).all() and (df["train_time_s"] > 0).all()


def test_summarize_means_over_splits_and_median_r2():
    rows = []
    for fold, (mse_vals, r2_vals) in enumerate([([1.0, 3.0], [0.5, -1e9]), ([4.0, 4.0], [0.1, 0.3])]):
        for p, (m, r) in enumerate(zip(mse_vals, r2_vals, strict=True)):
            rows.append({"method": "x", "seed": 0, "fold": fold, "perturbation": str(p),
                         "mse": m, "r2": r})
    out = summarize(pd.DataFrame(rows), metrics=("mse", "r2"))
    assert out.loc["x", ("mse", "mean")] == pytest.approx(3.0)            # splits: 2 and 4
    assert out.loc["x", ("mse", "sd")] == pytest.approx(np.std([2.0, 4.0], ddof=1))
    assert out.loc["x", ("r2", "mean")] == pytest.approx((-5e8 + 0.2) / 2)  # medians per split
    assert int(out["n_splits"].iloc[0]) == 2


def test_errors_name_the_problem():
    task = _task()
    with pytest.raises(DataError, match="Unknown method"):
        heldout_scores(task, method="magic")
    with pytest.raises(DataError, match="lacks the column"):
        summarize(pd.DataFrame({"method": ["x"]}))
