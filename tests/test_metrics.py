"""Hand-computed checks of every metric in scagents.metrics."""

from __future__ import annotations

import itertools
import warnings

import numpy as np
import pandas as pd
import pytest

from scagents import metrics as m
from scagents.errors import DataError

# --------------------------------------------------------------------------------------------------
# regression metrics
# --------------------------------------------------------------------------------------------------


def test_mse_rmse_mae_hand_computed():
    pred, true = np.array([1.0, 2.0, 3.0]), np.array([1.0, 2.0, 5.0])
    assert m.mse(pred, true) == pytest.approx(4 / 3)
    assert m.rmse(pred, true) == pytest.approx(np.sqrt(4 / 3))
    assert m.mae(pred, true) == pytest.approx(2 / 3)
    assert m.mse(true, true) == 0.0 and m.mae(true, true) == 0.0


def test_r2_hand_computed_and_edge_cases():
    true = np.array([1.0, 2.0, 3.0])
    assert m.r2(np.array([1.0, 2.0, 4.0]), true) == pytest.approx(1 - 1 / 2)
    assert m.r2(true, true) == 1.0
    # predicting the mean of the truth scores exactly 0, predicting zero (no change) scores below 0
    assert m.r2(np.full(3, 2.0), true) == pytest.approx(0.0)
    assert m.r2(np.zeros(3), true) == pytest.approx(1 - 14 / 2)
    assert np.isnan(m.r2(true, np.full(3, 0.7)))  # constant truth: undefined


def test_pearson_hand_computed():
    assert m.pearson([1, 2, 3], [2, 4, 6]) == pytest.approx(1.0)
    assert m.pearson([1, 2, 3], [3, 2, 1]) == pytest.approx(-1.0)
    assert m.pearson([1, 2, 3], [1, 3, 2]) == pytest.approx(0.5)


def test_pearson_constant_is_nan_without_warning():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert np.isnan(m.pearson(np.zeros(5), np.arange(5.0)))
        assert np.isnan(m.pearson(np.arange(5.0), np.full(5, 0.1)))
        assert np.isnan(m.pearson([1.0], [2.0]))


@pytest.mark.parametrize("bad", [
    (np.zeros(3), np.zeros(4)),
    (np.zeros((2, 2)), np.zeros((2, 2))),
    (np.array([1.0, np.nan]), np.zeros(2)),
    (np.array([]), np.array([])),
])
def test_regression_metrics_reject_bad_input(bad):
    with pytest.raises(DataError):
        m.mse(*bad)


def test_pearson_delta_topk_uses_top_genes_by_absolute_true_delta():
    true = np.array([5.0, -4.0, 0.1, 0.2, 0.0])
    pred = np.array([1.0, 0.0, 100.0, -100.0, 7.0])
    # top 2 by |true|: genes 0 and 1 -> pred (1, 0) vs true (5, -4): perfectly correlated
    assert m.pearson_delta_topk(pred, true, k=2) == pytest.approx(1.0)
    # over all genes the two wild predictions dominate
    assert m.pearson_delta_topk(pred, true, k=5) == pytest.approx(m.pearson(pred, true))
    assert m.pearson_delta_topk(pred, true, k=50) == pytest.approx(m.pearson(pred, true))
    # given DE genes: genes 2, 3 -> pred (100, -100) vs true (0.1, 0.2)
    assert m.pearson_delta_topk(pred, true, de_genes=[2, 3]) == pytest.approx(-1.0)
    mask = np.array([False, False, True, True, False])
    assert m.pearson_delta_topk(pred, true, de_genes=mask) == pytest.approx(-1.0)
    # the no-change prediction has no defined correlation
    assert np.isnan(m.pearson_delta_topk(np.zeros(5), true, k=2))
    with pytest.raises(DataError):
        m.pearson_delta_topk(pred, true, de_genes=[7])
    with pytest.raises(DataError):
        m.pearson_delta_topk(pred, true, k=0)


# --------------------------------------------------------------------------------------------------
# direction of change
# --------------------------------------------------------------------------------------------------


def test_direction_labels():
    np.testing.assert_array_equal(m.direction_labels([0.6, -0.6, 0.5, -0.2, 0.0], eps=0.5),
                                  [1, -1, 0, 0, 0])


def test_direction_metrics_hand_computed():
    true = np.array([1.0, -1.0, 0.0, 0.2, 2.0])   # labels: up, down, -, -, up
    pred = np.array([0.8, 1.0, 0.0, -0.6, 0.1])    # labels: up, up, -, down, -
    d = m.direction_metrics(pred, true, eps=0.5)
    assert d["accuracy"] == pytest.approx(2 / 5)
    # up: precision 1/2, recall 1/2; down: precision 0, recall 0 -> macro 0.25
    assert d["precision"] == pytest.approx(0.25)
    assert d["recall"] == pytest.approx(0.25)
    assert d["f1"] == pytest.approx(0.25)
    # changed = {0, 1, 4}; ranking by |pred|: 1(+), 0(+), 3(-), 4(+), 2(-) -> (1 + 1 + 3/4) / 3
    assert d["auprc"] == pytest.approx(2.75 / 3)
    # up = {0, 4}; ranking by pred: 1(-), 0(+), 4(+), 2, 3 -> (1/2 + 2/3) / 2
    assert d["auprc_up"] == pytest.approx((1 / 2 + 2 / 3) / 2)
    # down = {1}; ranking by -pred puts gene 1 last of 5
    assert d["auprc_down"] == pytest.approx(1 / 5)
    assert d["n_changed"] == 3 and d["frac_changed"] == pytest.approx(0.6)


def test_direction_metrics_perfect_and_all_wrong():
    true = np.array([1.0, 2.0, -1.0, -2.0, 0.0, 0.01])
    perfect = m.direction_metrics(true, true, eps=0.1)
    for key in ("accuracy", "precision", "recall", "f1", "auprc", "auprc_up", "auprc_down"):
        assert perfect[key] == pytest.approx(1.0), key
    wrong = m.direction_metrics(-true, true, eps=0.1)
    assert wrong["precision"] == 0.0 and wrong["recall"] == 0.0 and wrong["f1"] == 0.0
    assert wrong["accuracy"] == pytest.approx(2 / 6)  # only the two unchanged genes agree
    # magnitudes are right, so "changed" is still ranked perfectly; the signed AUPRCs are not
    assert wrong["auprc"] == pytest.approx(1.0)
    assert wrong["auprc_up"] < 0.5 and wrong["auprc_down"] < 0.5


def test_direction_metrics_no_change_prediction_and_degenerate_classes():
    true = np.array([1.0, -1.0, 0.0, 0.0])
    d = m.direction_metrics(np.zeros(4), true, eps=0.1)
    assert d["accuracy"] == pytest.approx(0.5)
    assert d["f1"] == 0.0
    # every gene unchanged: the AUPRCs are undefined
    d = m.direction_metrics(np.array([0.3, -0.2, 0.0]), np.zeros(3), eps=0.1)
    assert np.isnan(d["auprc"]) and np.isnan(d["auprc_up"]) and np.isnan(d["auprc_down"])
    with pytest.raises(DataError):
        m.direction_metrics(true, true, eps=-1)


def test_prediction_report_bundles_every_metric():
    rng = np.random.default_rng(0)
    true = rng.normal(0, 0.3, 200)
    pred = true + rng.normal(0, 0.1, 200)
    rep = m.prediction_report(pred, true, k=10, eps=0.1)
    assert rep["mse"] == pytest.approx(m.mse(pred, true))
    assert rep["r2"] == pytest.approx(m.r2(pred, true))
    assert rep["pearson"] == pytest.approx(m.pearson(pred, true))
    assert rep["pearson_delta_topk"] == pytest.approx(m.pearson_delta_topk(pred, true, k=10))
    d = m.direction_metrics(pred, true, eps=0.1)
    for key, value in d.items():
        assert rep[f"direction_{key}"] == pytest.approx(value)
    assert all(isinstance(v, float) for v in rep.values())
    assert rep["pearson"] > 0.9 and rep["direction_f1"] > 0.7


# --------------------------------------------------------------------------------------------------
# network recovery
# --------------------------------------------------------------------------------------------------
GENES4 = ["a", "b", "c", "d"]
TRUTH4 = pd.DataFrame({"source": ["a", "b", "c"], "target": ["b", "c", "d"],
                       "sign": [1, -1, 1]})  # 3 of 12 possible directed edges: density 1/4


def _edges(rows):
    return pd.DataFrame(rows, columns=["source", "target", "weight"])


def test_auprc_ratio_of_truth_is_inverse_density():
    pred = TRUTH4.assign(weight=-1.0)  # the sign of a weight does not matter
    assert m.auprc_ratio(pred, TRUTH4, genes=GENES4) == pytest.approx(4.0)
    assert m.early_precision_ratio(pred, TRUTH4, genes=GENES4) == pytest.approx(4.0)


def test_auprc_ratio_absent_edges_tie_at_the_bottom():
    # one true edge on top; the other 11 possible edges (2 true) score 0 together:
    # AP = 1/3 * 1 + 2/3 * (3/12) = 0.5, density 1/4
    pred = _edges([("a", "b", 1.0)])
    assert m.auprc_ratio(pred, TRUTH4, genes=GENES4) == pytest.approx(0.5 * 4)


def test_auprc_ratio_reversed_ranking_is_below_random():
    genes = [f"g{i}" for i in range(10)]
    pairs = [(s, t) for s, t in itertools.permutations(genes, 2)]
    truth = pd.DataFrame(pairs[:5], columns=["source", "target"])
    n_possible, n_true = len(pairs), 5
    # true edges get the smallest (but non-zero) weights
    weights = np.r_[np.arange(1, 6), np.arange(100, 100 + n_possible - 5)].astype(float)
    pred = pd.DataFrame(pairs, columns=["source", "target"]).assign(weight=weights)
    expected_ap = np.mean([j / (n_possible - n_true + j) for j in range(1, n_true + 1)])
    ratio = m.auprc_ratio(pred, truth, genes=genes)
    assert ratio == pytest.approx(expected_ap / (n_true / n_possible))
    assert ratio < 0.7
    assert m.early_precision_ratio(pred, truth, genes=genes) == 0.0


def test_auprc_ratio_of_random_predictions_is_about_one():
    genes = [f"g{i}" for i in range(30)]
    pairs = list(itertools.permutations(genes, 2))
    rng = np.random.default_rng(1)
    ratios, eprs = [], []
    for _ in range(20):
        truth = pd.DataFrame([pairs[i] for i in rng.choice(len(pairs), 200, replace=False)],
                             columns=["source", "target"])
        pred = pd.DataFrame(pairs, columns=["source", "target"]).assign(
            weight=rng.random(len(pairs)))
        ratios.append(m.auprc_ratio(pred, truth, genes=genes))
        eprs.append(m.early_precision_ratio(pred, truth, genes=genes))
    assert np.mean(ratios) == pytest.approx(1.0, abs=0.1)
    assert np.mean(eprs) == pytest.approx(1.0, abs=0.15)


def test_auprc_ratio_directed_vs_undirected_and_gene_restriction():
    truth = pd.DataFrame({"source": ["a"], "target": ["b"]})
    pred = _edges([("b", "a", 1.0)])
    # directed: the only prediction is wrong, the true edge ties with 10 others at the bottom
    assert m.auprc_ratio(pred, truth, genes=GENES4) == pytest.approx((1 / 12) * 12)
    # undirected: 6 possible pairs, the pair {a, b} is ranked first
    assert m.auprc_ratio(pred, truth, genes=GENES4, directed=False) == pytest.approx(6.0)
    # edges with genes outside `genes` are dropped from both tables
    truth_x = pd.concat([truth, pd.DataFrame({"source": ["x"], "target": ["a"]})])
    pred_x = pd.concat([_edges([("a", "b", 1.0)]), _edges([("x", "a", 5.0)])])
    assert m.auprc_ratio(pred_x, truth_x, genes=GENES4) == pytest.approx(12.0)
    # genes=None: every gene named in either table (here a, b, x: 6 directed edges)
    assert m.auprc_ratio(pred_x, truth_x) == pytest.approx(3.0)


def test_exclude_self_changes_possible_edges():
    truth = pd.DataFrame({"source": ["a", "a"], "target": ["a", "b"]})
    pred = _edges([("a", "b", 1.0), ("a", "a", 2.0)])
    # self-loops excluded: 1 true edge of 12, ranked first
    assert m.auprc_ratio(pred, truth, genes=GENES4) == pytest.approx(12.0)
    # self-loops allowed: 2 true edges of 16, both ranked on top
    assert m.auprc_ratio(pred, truth, genes=GENES4, exclude_self=False) == pytest.approx(8.0)


def test_early_precision_ratio_hand_computed():
    # k = 3 true edges; top 3 predictions hold 2 true ones -> EP 2/3, density 1/4
    pred = _edges([("a", "b", 0.9), ("d", "a", 0.8), ("b", "c", 0.7), ("c", "d", 0.1)])
    assert m.early_precision_ratio(pred, TRUTH4, genes=GENES4) == pytest.approx(8 / 3)
    # ties at the cut-off are all kept: top set {a-b, d-a, b-c, c-a}, 2 true -> EP 1/2
    tied = _edges([("a", "b", 3.0), ("d", "a", 2.0), ("b", "c", 1.0), ("c", "a", 1.0)])
    assert m.early_precision_ratio(tied, TRUTH4, genes=GENES4) == pytest.approx(2.0)
    # fewer predictions than true edges: judged on those made
    assert m.early_precision_ratio(_edges([("a", "b", 1.0)]), TRUTH4,
                                   genes=GENES4) == pytest.approx(4.0)
    assert m.early_precision_ratio(_edges([]), TRUTH4, genes=GENES4) == 0.0


def test_network_metrics_errors():
    with pytest.raises(DataError, match="weight"):
        m.auprc_ratio(TRUTH4, TRUTH4, genes=GENES4)
    with pytest.raises(DataError, match="no edge"):
        m.auprc_ratio(TRUTH4.assign(weight=1.0), TRUTH4, genes=["x", "y"])
    with pytest.raises(DataError, match="no edge"):
        m.early_precision_ratio(TRUTH4.assign(weight=1.0), TRUTH4.iloc[:0], genes=GENES4)


# --------------------------------------------------------------------------------------------------
# trajectories and populations
# --------------------------------------------------------------------------------------------------


def test_dtw_distance_hand_computed():
    # every alignment has at least 3 pairs at squared distance 2 -> sqrt(6)
    assert m.dtw_distance(np.zeros((3, 2)), np.ones((3, 2))) == pytest.approx(np.sqrt(6))
    assert m.dtw_distance(np.zeros(3), np.ones(3)) == pytest.approx(np.sqrt(3))


def test_dtw_distance_identical_shifted_and_different():
    t = np.linspace(0, 2 * np.pi, 50)
    traj = np.column_stack([np.sin(t), np.cos(t), 0.5 * np.sin(2 * t)])
    assert m.dtw_distance(traj, traj) == 0.0
    assert m.dtw_distance(traj, np.repeat(traj, 2, axis=0)) == pytest.approx(0.0)  # time-stretched
    shifted = np.column_stack([np.sin(t + 0.2), np.cos(t + 0.2), 0.5 * np.sin(2 * (t + 0.2))])
    different = np.column_stack([np.cos(3 * t), -np.sin(t), np.full_like(t, 1.0)])
    d_shift = m.dtw_distance(traj, shifted)
    d_diff = m.dtw_distance(traj, different)
    assert d_shift < 0.2 * d_diff
    with pytest.raises(DataError):
        m.dtw_distance(traj, traj[:, :2])


def test_wasserstein_distance_identical_and_shifted():
    rng = np.random.default_rng(0)
    x = rng.normal(size=300)
    assert m.wasserstein_distance(x, x) == pytest.approx(0.0, abs=1e-12)
    assert m.wasserstein_distance(x, x + 1.5) == pytest.approx(1.5)
    cloud = rng.normal(size=(200, 3))
    assert m.wasserstein_distance(cloud, cloud) == pytest.approx(0.0, abs=1e-9)
    # a translation by v moves every point by |v|: W1 = |v| exactly
    v = np.array([3.0, 4.0, 0.0])
    assert m.wasserstein_distance(cloud, cloud + v) == pytest.approx(5.0, rel=1e-6)


def test_wasserstein_distance_subsampling_is_seeded():
    rng = np.random.default_rng(1)
    a, b = rng.normal(size=(600, 2)), rng.normal(size=(500, 2)) + [2.0, 0.0]
    d1 = m.wasserstein_distance(a, b, max_points=150, seed=3)
    assert d1 == m.wasserstein_distance(a, b, max_points=150, seed=3)
    assert d1 == pytest.approx(2.0, abs=0.4)
    with pytest.raises(DataError):
        m.wasserstein_distance(a, b[:, :1])


# --------------------------------------------------------------------------------------------------
# closed loop
# --------------------------------------------------------------------------------------------------


def test_hit_ratio():
    assert m.hit_ratio(["a", "b", "c"], ["b", "c", "d", "e"]) == pytest.approx(0.5)
    assert m.hit_ratio(["b", "b", "b"], ["b", "c"]) == pytest.approx(0.5)
    assert m.hit_ratio([], ["a"]) == 0.0
    assert m.hit_ratio(iter(["a"]), iter(["a"])) == 1.0
    with pytest.raises(DataError):
        m.hit_ratio(["a"], [])
