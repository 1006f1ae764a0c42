"""Tests of scagents.evaluation (held-out scoring shared by the benchmarks)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from scagents.envs.response import PerturbationResponseVecEnv, ResponseTask, predict_delta
from scagents.errors import DataError
from scagents.evaluation import (
    crossfit_baseline,
    default_train_config,
    fit_baseline,
    fit_network_baseline,
    heldout_scores,
    select_train_config,
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


def test_default_config_uses_the_paper_networks():
    cfg = default_train_config("ppo")
    assert cfg.hidden_sizes == (256, 256) and cfg.branch_sizes == (64,)
    assert cfg.algo == "ppo" and default_train_config(hidden_sizes=(8,)).hidden_sizes == (8,)


def test_select_train_config_uses_only_the_outer_training_perturbations(monkeypatch):
    import scagents.evaluation as ev

    task = _task()
    _, outer_test = task.split(n_folds=4, fold=1, seed=2)
    seen: list[tuple[str, ...]] = []
    real = ev.heldout_scores

    def spy(sub, **kw):
        seen.append(tuple(sub.labels))
        return real(sub, **kw)

    monkeypatch.setattr(ev, "heldout_scores", spy)
    # a one-update config against a longer one; the winner must follow the recorded MSE
    cands = {"short": default_train_config(total_steps=128, n_envs=64, n_steps=2, hidden_sizes=(8,)),
             "long": default_train_config(total_steps=1024, n_envs=64, n_steps=2, hidden_sizes=(8,))}
    best, table = select_train_config(task, cands, fold=1, n_folds=4, split_seed=2,
                                      inner_folds=3, inner_fold_ids=(0,), seeds=(0, 1))
    assert len(seen) == 4                                    # 2 candidates × 2 seeds × 1 inner fold
    assert all(not set(labels) & set(outer_test.labels) for labels in seen)
    assert list(table.index) == ["short", "long"] and (table["n_splits"] == 2).all()
    assert best == table["mse_mean"].idxmin()
    assert np.isfinite(table[["mse_mean", "mse_sd", "train_time_s"]].to_numpy()).all()
    with pytest.raises(DataError, match="not one of"):
        select_train_config(task, cands, method="linear")
    with pytest.raises(DataError, match="at least one"):
        select_train_config(task, {})


def test_diverged_training_is_flagged_and_counted(monkeypatch):
    import torch

    import scagents.policies as policies

    real_train = policies.train

    def nan_train(env, cfg, **kw):
        policy, log = real_train(env, cfg, **kw)
        with torch.no_grad():
            next(policy.parameters()).fill_(float("nan"))
        return policy, log

    task = _task()
    cfg = default_train_config(total_steps=128, n_envs=64, n_steps=2, hidden_sizes=(8,))
    ok = heldout_scores(task, method="ppo", seed=0, fold=0, n_folds=4, train_config=cfg)
    monkeypatch.setattr(policies, "train", nan_train)
    bad = heldout_scores(task, method="ppo", seed=1, fold=0, n_folds=4, train_config=cfg)
    assert not ok["diverged"].any() and bad["diverged"].all()
    assert "mse" not in bad.columns                      # no score for a failed training
    assert len(bad) == task.split(n_folds=4, fold=0, seed=1)[1].n_perturbations
    out = summarize(pd.concat([ok, bad], ignore_index=True), metrics=("mse",))
    assert int(out["n_diverged"].iloc[0]) == 1 and int(out["n_splits"].iloc[0]) == 2
    assert out.loc["ppo", ("mse", "mean")] == pytest.approx(ok["mse"].mean())  # only the good split


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


def _split_rows(units: bool, twice: bool = False) -> pd.DataFrame:
    """Two splits of method x; in split 0 gene A is measured under three labels when ``twice``."""
    rows = []
    for fold, vals in enumerate([[(1.0, 0.5), (3.0, -1e9), (5.0, 0.2)], [(4.0, 0.1), (4.0, 0.3)]]):
        for p, (m, r) in enumerate(vals):
            reps = 3 if twice and fold == 0 and p == 0 else 1
            for g in range(reps):
                rows.append({"method": "x", "seed": 0, "fold": fold, "perturbation": f"G{p}g{g}",
                             "mse": m + 0.1 * g, "r2": r})
                if units:
                    rows[-1]["target_group"] = f"G{p} knockout"
    return pd.DataFrame(rows)


def test_summarize_averages_a_genes_labels_first():
    """Gene A's three labels in split 0 count as one held-out gene, as in the agent's validation:
    split 0's mean is (1.1 + 3 + 5) / 3, not (1 + 1.1 + 1.2 + 3 + 5) / 5."""
    out = summarize(_split_rows(units=True, twice=True), metrics=("mse", "r2"))
    assert out.loc["x", ("mse", "mean")] == pytest.approx(((1.1 + 3 + 5) / 3 + 4) / 2)
    labels = summarize(_split_rows(units=False, twice=True), metrics=("mse", "r2"))
    assert labels.loc["x", ("mse", "mean")] == pytest.approx(((1 + 1.1 + 1.2 + 3 + 5) / 5 + 4) / 2)
    assert out.loc["x", ("r2", "mean")] == pytest.approx((0.2 + 0.2) / 2)   # median of 3 genes


def test_summarize_with_one_label_per_unit_is_unchanged():
    """One label per unit: the summary without units, bit for bit."""
    with_units = summarize(_split_rows(units=True), metrics=("mse", "r2"))
    without = summarize(_split_rows(units=False), metrics=("mse", "r2"))
    pd.testing.assert_frame_equal(with_units, without, check_exact=True)


def test_heldout_scores_name_each_rows_unit():
    task = _task()
    df = heldout_scores(task, method="no_change", seed=3, fold=1, n_folds=4)
    test = task.split(n_folds=4, fold=1, seed=3)[1]
    assert list(df["target_group"]) == [f"{'+'.join(sorted(p.targets))} {p.kind}"
                                        for p in test.perturbations]


def test_errors_name_the_problem():
    task = _task()
    with pytest.raises(DataError, match="Unknown method"):
        heldout_scores(task, method="magic")
    with pytest.raises(DataError, match="lacks the column"):
        summarize(pd.DataFrame({"method": ["x"]}))


def _network_task(seed: int = 0) -> ResponseTask:
    """Cells where G1 = 0.8 · G0 (+ noise) and the other genes are independent noise."""
    rng = np.random.default_rng(seed)
    genes = ["G0", "G1", "G2", "G3", "G4", "G5"]

    def cells(n: int, g0_scale: float = 1.0, g2_scale: float = 1.0) -> np.ndarray:
        x = rng.normal(2.0, 0.5, (n, len(genes)))
        x[:, 0] *= g0_scale
        x[:, 2] *= g2_scale
        x[:, 1] = 0.8 * x[:, 0] + rng.normal(0, 0.05, n)
        return np.clip(x, 0, None).astype(np.float32)

    control = cells(200)
    per = {"G0": cells(100, g0_scale=0.0), "G2": cells(100, g2_scale=0.0),
           "G3": cells(100), "G4": cells(100), "G5": cells(100)}
    labels = list(per)
    cm = control.mean(axis=0, keepdims=True)
    deltas = np.stack([per[lab].mean(axis=0) - cm[0] for lab in labels])[:, None, :]
    return ResponseTask(modalities=("rna",), features={"rna": genes},
                        states={"rna": control[:, None, :]}, pseudotime=np.ones((200, 1), np.float32),
                        perturbations=[Perturbation((lab,)) for lab in labels], labels=labels,
                        deltas={"rna": deltas.astype(np.float32)}, control_mean={"rna": cm},
                        action_bounds={"rna": 5.0}, embedding_k=2, source="test",
                        cell_states=per)


def test_split_keeps_only_the_training_cells():
    task = _network_task()
    train, test = task.split(["G0"])
    assert set(train.cell_states) == set(train.labels) and "G0" not in train.cell_states
    assert set(test.cell_states) == {"G0"}


def test_network_baseline_propagates_a_knockout_along_the_inferred_edge():
    task = _network_task()
    train, test = task.split(["G0"])               # G0's own cells never reach the network
    predict = fit_network_baseline(train)
    pred = predict(Perturbation(("G0",)))
    control = train.control_mean["rna"][-1]
    assert pred[0] == pytest.approx(-control[0], rel=1e-6)      # knockout: target to 0
    assert pred[1] < -0.5 * 0.8 * control[0]                     # the downstream gene falls
    assert np.abs(pred[2:]).max() < 0.2 * abs(pred[1])           # unconnected genes barely move
    observed = test.observed_delta("G0")
    assert np.corrcoef(pred, observed)[0, 1] > 0.9
    np.testing.assert_array_equal(predict(Perturbation(("NOT_A_GENE",))), 0.0)
    df = heldout_scores(task, method="network", seed=0, fold=0, n_folds=5)
    assert len(df) == 1 and np.isfinite(df["mse"]).all()


def test_network_baseline_caps_the_regulators_named_targets_first():
    task = _network_task()
    train, _ = task.split(["G0"])
    # every gene a regulator (6 genes <= the cap): G0's knockout reaches G1
    assert fit_network_baseline(train)(Perturbation(("G0",)))[1] < -0.5
    # one regulator: a training perturbation's target (named first), not G0 — G1 does not move
    capped = fit_network_baseline(train, n_regulators=1)(Perturbation(("G0",)))
    assert capped[0] < -1.0 and np.abs(capped[1:]).max() < 1e-9
    from scagents.evaluation import _network_regulators

    X = np.concatenate([train.states["rna"][:, -1]] + [train.cell_states[lab] for lab in train.labels])
    regs = _network_regulators(train, pd.Index(train.features["rna"]), X, 5)
    assert len(regs) == 5 and set(regs[:4]) == set(train.labels) and regs[4] in {"G0", "G1"}


def test_network_baseline_signs_option_and_counts():
    """``signs="edges"`` propagates |coefficient| x the drawn sign; the fit reports the sign counts."""
    task = _network_task()
    train, _ = task.split(["G0"])
    coef = fit_network_baseline(train)
    drawn = fit_network_baseline(train, signs="edges")
    counts = coef.sign_agreement
    assert counts == drawn.sign_agreement and set(counts) == {"n_edges", "n_with_coef", "n_opposite"}
    assert 0 <= counts["n_opposite"] <= counts["n_with_coef"] <= counts["n_edges"]
    p = Perturbation(("G0",))
    a, b = coef(p), drawn(p)
    assert a[0] == pytest.approx(b[0])                           # the forced change is the same
    assert counts["n_opposite"] > 0 and np.abs(a - b).max() > 1e-9  # 10 of its 30 edges disagree
    with pytest.raises(ValueError, match="signs"):
        fit_network_baseline(train, signs="magic")


def test_network_baseline_needs_the_cells():
    with pytest.raises(DataError, match="keep_cells=True"):
        fit_network_baseline(_task())


def test_crossfit_baseline_never_sees_the_predicted_perturbation():
    task = _task()
    base = crossfit_baseline(task, method="linear", n_folds=4, seed=1)
    assert base.shape == (task.n_perturbations, task.dims["rna"])
    changed = task.subset(range(task.n_perturbations), refit_embedding=False)
    changed.deltas = {"rna": task.deltas["rna"].copy()}
    changed.deltas["rna"][0] *= 10.0              # only perturbation 0's own data changes
    changed.embedding = pd.DataFrame()
    changed.embedding = changed._fit_embedding()
    again = crossfit_baseline(changed, method="linear", n_folds=4, seed=1)
    fold_of_0 = next(f for f in range(4)
                     if task.labels[0] in task.split(n_folds=4, fold=f, seed=1)[1].labels)
    rows = [task.index(lab) for lab in task.split(n_folds=4, fold=fold_of_0, seed=1)[1].labels]
    # rows of perturbation 0's inner fold come from a model that never saw perturbation 0
    np.testing.assert_allclose(again[rows], base[rows], atol=1e-5)
    assert not np.allclose(again, base)           # the other inner folds' models did see it


def test_residual_env_scores_baseline_plus_correction():
    task = _task()
    target = task.deltas["rna"][:, -1]
    env = PerturbationResponseVecEnv(task, num_envs=8, baseline=target)
    obs, _ = env.reset(seed=0)
    assert obs.shape[1] == env.single_observation_space.shape[0]
    assert env.modality_slices["baseline"].stop == obs.shape[1]
    _, reward, *_ = env.step(np.zeros((8, task.dims["rna"]), np.float32))
    np.testing.assert_allclose(reward, 0.0, atol=1e-7)          # a zero correction is perfect here
    plain = PerturbationResponseVecEnv(task, num_envs=8)
    plain.reset(seed=0)
    _, r_plain, *_ = plain.step(np.zeros((8, task.dims["rna"]), np.float32))
    assert (r_plain < 0).all()
    pred = predict_delta(lambda o: np.zeros((len(o), task.dims["rna"])), task, 3, baseline=target)
    np.testing.assert_allclose(pred, target[3], atol=1e-6)


@pytest.mark.slow
def test_residual_method_starts_at_the_linear_baseline():
    task = _task()
    cfg = default_train_config(total_steps=256, n_envs=64, n_steps=4, hidden_sizes=(16,))
    lin = heldout_scores(task, method="linear", seed=0, fold=0, n_folds=4)
    res = heldout_scores(task, method="trpo_ppo_residual", seed=0, fold=0, n_folds=4,
                         train_config=cfg)
    assert list(res["perturbation"]) == list(lin["perturbation"])
    # one tiny update from a ~0 initial correction: predictions stay close to the baseline
    assert abs(res["mse"].mean() - lin["mse"].mean()) < 0.25 * lin["mse"].mean() + 1e-4
