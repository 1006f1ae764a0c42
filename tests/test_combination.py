"""Tests of scagents.combination (the stacked combination of the simple predictors)."""

from __future__ import annotations

import numpy as np
import pytest

from scagents.combination import StackedCombiner, crossfit_predictions, fit_combination
from scagents.envs.response import ResponseTask
from scagents.errors import DataError
from scagents.evaluation import fit_baseline, heldout_scores
from scagents.metrics import mse, pearson_delta_topk
from scagents.perturbation import Perturbation
from tests.test_evaluation import _network_task

N_GENES, N_PERTS = 30, 20
COMMON = np.r_[np.zeros(N_PERTS), np.full(N_GENES - N_PERTS, 0.3)]
"""Every perturbation raises genes G20…G29 by 0.3 (a shared response the mean effect captures)."""


def _specific(i: int) -> np.ndarray:
    """Perturbation-specific part of knocking out G<i>: the target falls, its neighbour too."""
    d = np.zeros(N_GENES)
    d[i] = -1.0
    d[(i + 1) % N_PERTS] = -0.4
    return d


def _synthetic(scale_of: dict[str, float] | None = None, seed: int = 0) -> ResponseTask:
    """Knockouts of G0…G19: observed delta = shared response + specific part + noise.

    ``scale_of`` multiplies the observed delta of the named perturbations (to change data that
    must not matter)."""
    rng = np.random.default_rng(seed)
    genes = [f"G{i}" for i in range(N_GENES)]
    labels = genes[:N_PERTS]
    deltas = np.stack([(COMMON + _specific(i) + rng.normal(0, 0.05, N_GENES))
                       * (scale_of or {}).get(lab, 1.0) for i, lab in enumerate(labels)])
    states = rng.normal(2.0, 0.1, (16, 1, N_GENES)).astype(np.float32)
    return ResponseTask(modalities=("rna",), features={"rna": genes}, states={"rna": states},
                        pseudotime=np.ones((16, 1), np.float32),
                        perturbations=[Perturbation((g,)) for g in labels], labels=labels,
                        deltas={"rna": deltas[:, None, :].astype(np.float32)},
                        control_mean={"rna": states.mean(axis=0)}, action_bounds={"rna": 5.0},
                        embedding_k=4, source="test")


def _direction_fitter(task):
    """Knows each perturbation's specific pattern (right direction) at 3× its size, and nothing
    of the shared response: the 'network propagation' of this toy."""
    return lambda p: 3.0 * _specific(int(p.targets[0][1:]))


def _mean_fitter(task):
    """Right typical magnitude, no target-specific direction."""
    return fit_baseline("mean_effect", task)


FITTERS = {"direction": _direction_fitter, "mean": _mean_fitter}


def _heldout(predict, test) -> tuple[float, float]:
    m, p = [], []
    for i, pert in enumerate(test.perturbations):
        obs = test.observed_delta(i)
        pred = np.asarray(predict(pert), float)
        m.append(mse(pred, obs))
        p.append(pearson_delta_topk(pred, obs, k=20))
    return float(np.mean(m)), float(np.mean(p))


def test_combination_beats_the_direction_and_the_magnitude_base_on_heldout():
    task = _synthetic()
    for fold in range(4):
        train, test = task.split(n_folds=4, fold=fold, seed=0)
        combo = fit_combination(train, fitters=FITTERS, seed=0)
        c_mse, c_pear = _heldout(combo, test)
        for name, fit in FITTERS.items():
            b_mse, b_pear = _heldout(fit(train), test)
            assert c_mse < 0.5 * b_mse, (fold, name, c_mse, b_mse)
            assert c_pear > b_pear, (fold, name, c_pear, b_pear)
        w = combo.weights
        # the direction base is scaled down to the observed size (~1/3) on the genes it moves
        assert w.loc["direction", "G0"] == pytest.approx(1 / 3, abs=0.1)
        assert combo.combiner.target_weights_[0] == pytest.approx(1 / 3, abs=0.1)


def test_weights_are_fitted_on_training_perturbations_only():
    seen: list[list[str]] = []

    def spy(task):
        seen.append(list(task.labels))
        return _mean_fitter(task)

    task = _synthetic()
    train, test = task.split(n_folds=4, fold=1, seed=3)
    combo = fit_combination(train, fitters={"direction": _direction_fitter, "mean": spy}, seed=3)
    assert seen and all(set(s) <= set(train.labels) for s in seen)
    assert all(set(s).isdisjoint(test.labels) for s in seen)
    assert len(seen) == 5 + 1  # cross-fitting (min(5, n // 2) inner folds) + the final refit
    # the held-out perturbations' labels (their observed deltas) cannot move the weights: change
    # them tenfold in the full task and refit on the same training fold
    changed = _synthetic(scale_of={lab: 10.0 for lab in test.labels})
    train2, test2 = changed.split(n_folds=4, fold=1, seed=3)
    assert train2.labels == train.labels and test2.labels == test.labels
    assert not np.allclose(changed.deltas["rna"], task.deltas["rna"])
    again = fit_combination(train2, fitters={"direction": _direction_fitter, "mean": _mean_fitter},
                            seed=3)
    np.testing.assert_allclose(again.weights.to_numpy(), combo.weights.to_numpy(), atol=1e-12)
    np.testing.assert_allclose(again(test.perturbations[0]), combo(test.perturbations[0]),
                               atol=1e-12)


def test_crossfit_rows_never_come_from_a_model_that_saw_them():
    task = _synthetic()
    fitted_on: list[set[str]] = []

    def spy(t):
        fitted_on.append(set(t.labels))
        return lambda p: np.full(N_GENES, float(p.targets[0] in t.labels))  # 1 = seen in training

    bases, y, folds, target = crossfit_predictions(task, {"spy": spy}, n_folds=5, seed=0)
    assert bases.shape == (1, N_PERTS, N_GENES) and sorted(set(folds)) == list(range(5))
    assert not bases.any()                       # no row was predicted by a model that saw it
    assert target.sum() == N_PERTS and all(target[i, i] for i in range(N_PERTS))


def test_kappa_is_chosen_by_inner_validation_and_weights_are_non_negative():
    rng = np.random.default_rng(1)
    good = rng.normal(0, 1, (40, 8))
    y = 0.5 * good + rng.normal(0, 0.01, (40, 8))
    bases = np.stack([good, -good, rng.normal(0, 1, (40, 8))])   # right, anti, noise
    comb = StackedCombiner().fit(bases, y, np.arange(40) % 4)
    assert set(comb.cv_mse_) == {0.1, 1.0, 10.0, float("inf")} and comb.kappa_ in comb.cv_mse_
    assert comb.cv_mse_[comb.kappa_] == min(comb.cv_mse_.values())
    assert (comb.weights_ >= 0).all() and (comb.global_weights_ >= 0).all()
    assert comb.global_weights_[0] == pytest.approx(0.5, abs=0.01)
    assert comb.global_weights_[1] == 0.0        # a base pointing the wrong way gets no weight
    np.testing.assert_allclose(comb.predict(bases[:, 0]), y[0], atol=0.05)


def test_errors_name_the_problem():
    with pytest.raises(DataError, match="at least 4 training perturbations"):
        fit_combination(_synthetic().subset(range(3)), fitters=FITTERS)
    with pytest.raises(DataError, match="two inner folds"):
        StackedCombiner().fit(np.zeros((1, 4, 3)), np.zeros((4, 3)), np.zeros(4))
    with pytest.raises(DataError, match="NaN"):
        StackedCombiner().fit(np.full((1, 4, 3), np.nan), np.zeros((4, 3)), np.arange(4) % 2)
    with pytest.raises(DataError, match="not fitted"):
        StackedCombiner().predict(np.zeros((1, 3)))
    with pytest.raises(DataError, match="kappas"):
        StackedCombiner(kappas=(0.0,))


def test_heldout_scores_runs_the_default_combination_with_network_propagation():
    task = _network_task()                       # 5 perturbations with cells: 4 train, 1 held out
    df = heldout_scores(task, method="combination", seed=0, fold=0, n_folds=5)
    assert len(df) == 1 and set(df["method"]) == {"combination"}
    assert np.isfinite(df["mse"]).all()
    train, _ = task.split(n_folds=5, fold=0, seed=0)
    combo = fit_combination(train)
    assert combo.bases == ["mean_effect", "linear", "network"]
    assert (combo.weights.to_numpy() >= 0).all()


def test_residual_policy_on_the_combination_starts_at_the_combination(monkeypatch):
    import scagents.combination as combination
    from scagents.evaluation import default_train_config
    from tests.test_evaluation import _task

    monkeypatch.setattr(combination, "COMBINATION_BASES", ("mean_effect", "linear"))  # no cells
    task = _task()
    cfg = default_train_config(total_steps=256, n_envs=64, n_steps=4, hidden_sizes=(16,))
    comb = heldout_scores(task, method="combination", seed=0, fold=0, n_folds=4)
    res = heldout_scores(task, method="trpo_ppo_residual_combination", seed=0, fold=0, n_folds=4,
                         train_config=cfg)
    assert list(res["perturbation"]) == list(comb["perturbation"])
    assert set(res["method"]) == {"trpo_ppo_residual_combination"} and not res["diverged"].any()
    # one tiny update from a ~0 initial correction: predictions stay close to the combination
    assert abs(res["mse"].mean() - comb["mse"].mean()) < 0.25 * comb["mse"].mean() + 1e-4


def _kappa_data(seed: int = 1):
    rng = np.random.default_rng(seed)
    good = rng.normal(0, 1, (24, 8))
    y = 0.5 * good + rng.normal(0, 0.3, (24, 8))
    return np.stack([good, rng.normal(0, 1, (24, 8))]), y, np.arange(24) % 4


def test_kappa_with_one_label_per_unit_is_chosen_as_before():
    """Every unit one label: the inner-validation MSE and κ of earlier versions, bit for bit."""
    for seed in range(5):
        bases, y, folds = _kappa_data(seed)
        before = StackedCombiner().fit(bases, y, folds)
        now = StackedCombiner().fit(bases, y, folds, units=np.array([f"G{i}" for i in range(24)]))
        assert now.cv_mse_ == before.cv_mse_ and now.kappa_ == before.kappa_
        np.testing.assert_array_equal(now.weights_, before.weights_)


def test_kappa_is_chosen_on_units_not_labels():
    """Rows 0-11 are twelve labels of one gene (inner fold 0): per unit they count once."""
    bases, y, folds = _kappa_data(2)
    folds = np.where(np.arange(24) < 12, 0, folds)
    units = np.array(["A"] * 12 + [f"G{i}" for i in range(12, 24)])
    comb = StackedCombiner().fit(bases, y, folds, units=units)
    plain = StackedCombiner().fit(bases, y, folds)
    for kappa in comb.kappas:       # the same per-row errors, averaged per unit
        err = np.empty(24)
        for f in np.unique(folds):
            tr, te = folds != f, folds == f
            _, w, on = StackedCombiner._weights(bases[:, tr], y[tr], np.zeros((tr.sum(), 8), bool), kappa)
            err[te] = ((StackedCombiner._combine(bases[:, te], w, on, np.zeros((te.sum(), 8), bool))
                        - y[te]) ** 2).mean(axis=1)
        assert comb.cv_mse_[kappa] == pytest.approx((err[:12].mean() + err[12:].sum()) / 13)
        assert plain.cv_mse_[kappa] == pytest.approx(err.mean())
    assert comb.cv_mse_ != plain.cv_mse_


def test_fit_combination_passes_the_tasks_units(monkeypatch):
    """fit_combination names each training perturbation's unit (its target gene set and kind)."""
    seen = {}
    original = StackedCombiner.fit

    def spy(self, bases, y, folds, target=None, units=None):
        seen["units"] = units
        return original(self, bases, y, folds, target, units=units)

    monkeypatch.setattr(StackedCombiner, "fit", spy)
    fit_combination(_synthetic(), fitters=FITTERS)
    assert list(seen["units"]) == [f"G{i} knockout" for i in range(N_PERTS)]
