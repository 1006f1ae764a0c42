"""Extra-trees importance and the ridge + trees rank average (scagents.grn.ensemble)."""

import anndata as ad
import numpy as np
import pandas as pd
import pytest

from scagents.grn import ensemble, infer_network, network_edges


def _and_gate(n_cells: int = 600, seed: int = 0) -> ad.AnnData:
    """C = A AND B (a threshold interaction a linear fit sees only weakly); N is noise."""
    rng = np.random.default_rng(seed)
    A, B, N = rng.uniform(0, 1, (3, n_cells))
    C = ((A > 0.5) & (B > 0.5)).astype(float) * 3 + 0.1 * rng.normal(size=n_cells)
    adata = ad.AnnData(np.column_stack([A, B, N, C]).astype(np.float32))
    adata.var_names = ["A", "B", "N", "C"]
    return adata


def test_tree_importance_finds_the_inputs_of_an_and_gate():
    adata = _and_gate()
    W = ensemble.tree_importance(adata.X, np.arange(4), n_trees=30)
    assert W.shape == (4, 4)
    assert np.all(np.diag(W) == 0)  # a target never regulates itself
    c = W[:, 3]
    assert c[0] > 3 * c[2] and c[1] > 3 * c[2]  # A and B, not the noise gene
    assert abs(c.sum() - 1.0) < 1e-9


def test_tree_importance_leaves_out_the_targets_own_perturbed_cells():
    adata = _and_gate()
    X = np.asarray(adata.X).copy()
    labels = np.array([""] * adata.n_obs, dtype=object)
    labels[:200] = "C"  # C clamped by the intervention in these cells: they must not be used for C
    X[:200, 3] = np.where(X[:200, 2] > 0.5, 3.0, 0.0)  # ... and there C follows the noise gene
    with_lab = ensemble.tree_importance(X, np.arange(4), labels=labels, genes=list(adata.var_names),
                                        n_trees=30)
    without = ensemble.tree_importance(X, np.arange(4), n_trees=30)
    assert without[2, 3] > 2 * with_lab[2, 3]


def test_tree_importance_subsamples_cells_and_respects_a_mask():
    adata = _and_gate(n_cells=400)
    allowed = np.ones((4, 4), dtype=bool)
    allowed[0, 3] = False
    W = ensemble.tree_importance(adata.X, np.arange(4), max_cells=100, n_trees=10, allowed=allowed)
    assert W[0, 3] == 0 and W[1, 3] > 0


def test_rank_average_keeps_the_regression_sign_and_zeros():
    B = np.array([[0.0, -0.5, 0.2], [0.1, 0.0, -0.9]])
    W = np.array([[0.0, 0.1, 0.9], [0.3, 0.0, 0.5]])
    S = ensemble.rank_average(B, W)
    assert S[0, 0] == 0 and S[1, 1] == 0
    assert np.all(np.sign(S) == np.sign(B))
    # |B| percentiles of (-0.5, 0.2, 0.1, -0.9): .75, .5, .25, 1; W's: .25, 1, .5, .75
    assert S[0, 1] == pytest.approx(-(0.75 + 0.25) / 2)
    assert S[1, 2] == pytest.approx(-(1.0 + 0.75) / 2)


def test_size_rule():
    assert ensemble.trees_fit(10_000, 150)  # cells beyond TREE_MAX_CELLS are subsampled
    assert not ensemble.trees_fit(10_000, 10_000)
    assert ensemble.trees_fit(1000, 300) and not ensemble.trees_fit(1000, 301)


def test_infer_network_ensemble_ranks_the_and_gate_and_records_the_trees():
    adata = _and_gate()
    infer_network(adata, method="ensemble")
    p = adata.uns["grn"]["params"]
    assert p["method"] == "ensemble" and p["trees"]["fitted"]
    e = network_edges(adata)
    top2 = set(e[e.target == "C"].head(2)["source"])
    assert top2 == {"A", "B"}
    assert e["weight"].abs().max() <= 1.0
    assert (np.sign(e["weight"]) == e["sign"]).all()


def test_infer_network_ensemble_above_the_size_rule_is_ridge(monkeypatch):
    adata = _and_gate()
    monkeypatch.setattr(ensemble, "TREE_BUDGET", 10)
    infer_network(adata, method="ensemble")
    assert not adata.uns["grn"]["params"]["trees"]["fitted"]
    ridge = _and_gate()
    infer_network(ridge, method="ridge")
    a = network_edges(adata).set_index(["source", "target"])["weight"]
    b = network_edges(ridge).set_index(["source", "target"])["weight"]
    pd.testing.assert_series_equal(a.sort_index(), b.sort_index())


# --- tree options: GENIE3's random forest, the tree count, the rank weights (issue #18) ---


def test_tree_importance_random_forest_finds_the_and_gate_and_differs_from_extra_trees():
    adata = _and_gate()
    rf = ensemble.tree_importance(adata.X, np.arange(4), n_trees=30, kind="rf")
    et = ensemble.tree_importance(adata.X, np.arange(4), n_trees=30, kind="extra")
    c = rf[:, 3]
    assert c[0] > 3 * c[2] and c[1] > 3 * c[2]
    assert abs(c.sum() - 1.0) < 1e-9 and np.all(np.diag(rf) == 0)
    assert not np.allclose(rf, et)  # a different regressor, not the extra trees under another name
    with pytest.raises(ValueError, match="tree kind"):
        ensemble.tree_importance(adata.X, np.arange(4), kind="gbm")
    with pytest.raises(ValueError, match="n_trees"):
        ensemble.tree_importance(adata.X, np.arange(4), n_trees=0)


def test_tree_importance_both_is_the_mean_of_the_two_forests():
    X = _and_gate().X
    both = ensemble.tree_importance(X, np.arange(4), n_trees=20, kind="both")
    rf = ensemble.tree_importance(X, np.arange(4), n_trees=20, kind="rf")
    et = ensemble.tree_importance(X, np.arange(4), n_trees=20, kind="extra")
    np.testing.assert_allclose(both, (rf + et) / 2)
    c = both[:, 3]
    assert c[0] > 3 * c[2] and c[1] > 3 * c[2] and abs(c.sum() - 1.0) < 1e-9
    adata = _and_gate()
    infer_network(adata, method="ensemble", trees="both", n_trees=20)
    assert adata.uns["grn"]["params"]["trees"]["kind"] == "both"


def _spy_fit(monkeypatch, forest: str, attr: str) -> list:
    """Record ``attr`` of every fitted sklearn ``forest`` (the fit itself is unchanged)."""
    from sklearn import ensemble as sk

    seen: list = []
    cls = getattr(sk, forest)
    real = cls.fit

    def spy(self, X, y, **kw):
        seen.append(getattr(self, attr))
        return real(self, X, y, **kw)

    monkeypatch.setattr(cls, "fit", spy)
    return seen


def test_tree_importance_threads_over_targets_give_the_same_importances(monkeypatch):
    import threading

    threads = _spy_fit(monkeypatch, "ExtraTreesRegressor", "n_jobs")
    seen = set()
    real = ensemble.np.mean

    def mean(*a, **kw):
        seen.add(threading.get_ident())
        return real(*a, **kw)

    X = _and_gate(n_cells=200).X
    one = ensemble.tree_importance(X, np.arange(4), n_trees=8, kind="both", n_jobs=1)
    monkeypatch.setattr(ensemble.np, "mean", mean)
    two = ensemble.tree_importance(X, np.arange(4), n_trees=8, kind="both", n_jobs=2)
    default = ensemble.tree_importance(X, np.arange(4), n_trees=8, kind="both")
    assert threads == [1] * 12  # each forest on one thread; the targets are spread over threads
    assert threading.get_ident() not in seen  # fitted in the pool, not in the caller
    np.testing.assert_array_equal(one, two)
    np.testing.assert_array_equal(one, default)


def test_tree_importance_uses_the_requested_number_of_trees(monkeypatch):
    seen = _spy_fit(monkeypatch, "RandomForestRegressor", "n_estimators")
    ensemble.tree_importance(_and_gate(n_cells=100).X, np.arange(4), n_trees=7, kind="rf")
    assert seen == [7, 7, 7, 7]


def test_rank_average_weights():
    B = np.array([[0.0, -0.5, 0.2], [0.1, 0.0, -0.9]])
    W = np.array([[0.0, 0.1, 0.9], [0.3, 0.0, 0.5]])
    # |B| percentiles of (-0.5, 0.2, 0.1, -0.9): .75, .5, .25, 1; W's: .25, 1, .5, .75
    np.testing.assert_allclose(ensemble.rank_average(B, W, weight=1.0), ensemble.rank_average(B, W))
    S2 = ensemble.rank_average(B, W, weight=2.0)
    assert S2[0, 1] == pytest.approx(-(0.75 + 2 * 0.25) / 3)
    assert S2[0, 2] == pytest.approx((0.5 + 2 * 1.0) / 3)
    Sinf = ensemble.rank_average(B, W, weight=float("inf"))  # the tree ranks alone, signed by B
    assert Sinf[0, 1] == pytest.approx(-0.25) and Sinf[1, 2] == pytest.approx(-0.75)
    assert Sinf[0, 0] == 0 and Sinf[1, 1] == 0
    S0 = ensemble.rank_average(B, W, weight=0.0)  # ridge ranks alone
    assert S0[1, 2] == pytest.approx(-1.0) and S0[0, 2] == pytest.approx(0.5)
    with pytest.raises(ValueError):
        ensemble.rank_average(B, W, weight=-1.0)


def test_infer_network_tree_options_are_applied_and_recorded():
    adata = _and_gate()
    infer_network(adata, method="ensemble", trees="rf", n_trees=20, tree_weight=2.0)
    t = adata.uns["grn"]["params"]["trees"]
    assert t["fitted"] and t["kind"] == "rf" and t["n_trees"] == 20 and t["weight"] == 2.0
    e = network_edges(adata)
    assert set(e[e.target == "C"].head(2)["source"]) == {"A", "B"}
    # tree_weight=inf: the edge order is the random forest's importance order
    alone = _and_gate()
    infer_network(alone, method="ensemble", trees="rf", n_trees=20, tree_weight=float("inf"))
    W = ensemble.tree_importance(alone.X, np.arange(4), n_trees=20, kind="rf")
    ea = network_edges(alone)
    c = ea[ea.target == "C"].set_index("source")["weight"].abs()
    imp = pd.Series(W[:, 3], index=list(alone.var_names)).drop("C")
    assert list(c.sort_values(ascending=False).index) == list(imp.sort_values(ascending=False).index)
    default = _and_gate()
    infer_network(default, method="ensemble")
    assert not network_edges(default)["weight"].equals(e["weight"])
    with pytest.raises(ValueError, match="trees"):
        infer_network(_and_gate(), method="ensemble", trees="boost")
    with pytest.raises(ValueError, match="n_trees"):
        infer_network(_and_gate(), method="ensemble", n_trees=0)
    with pytest.raises(ValueError, match="tree_weight"):
        infer_network(_and_gate(), method="ensemble", tree_weight=-1.0)


def test_size_rule_applies_to_every_tree_option(monkeypatch):
    monkeypatch.setattr(ensemble, "TREE_BUDGET", 10)
    ridge = _and_gate()
    infer_network(ridge, method="ridge")
    b = network_edges(ridge).set_index(["source", "target"])["weight"].sort_index()
    for kw in ({"trees": "rf"}, {"trees": "both"}, {"n_trees": 200}, {"tree_weight": float("inf")}):
        adata = _and_gate()
        infer_network(adata, method="ensemble", **kw)
        assert not adata.uns["grn"]["params"]["trees"]["fitted"]
        a = network_edges(adata).set_index(["source", "target"])["weight"].sort_index()
        pd.testing.assert_series_equal(a, b)
