"""Edge signs of infer_network (``sign_from``): the sources differ only in sign, never in ranking."""

from __future__ import annotations

import anndata as ad
import numpy as np
import pytest

from scagents.grn import SIGN_SOURCES, infer_network, network_edges
from scagents.grn.infer import _marginal

EDGES = [("A", "B"), ("B", "C"), ("B", "D"), ("C", "D")]
TRUE = {("A", "B"): 1, ("B", "C"): -1, ("B", "D"): 1, ("C", "D"): -1}


def _collider(n_cells: int = 600, seed: int = 0, n_ko: int = 0) -> ad.AnnData:
    """A activates B, B represses C; D = B - C is their common target (near-collinear with them): conditioning
    C's regression on D turns B's coefficient positive. ``n_ko`` extra cells with B knocked out."""
    rng = np.random.default_rng(seed)

    def cells(n: int, ko: bool) -> np.ndarray:
        A = rng.uniform(1, 3, n)
        B = np.zeros(n) if ko else 1.0 * A + 0.3 * rng.normal(size=n)
        C = 6 - 1.0 * B + 0.5 * rng.normal(size=n)
        D = B - C + 6 + 0.1 * rng.normal(size=n)
        return np.clip(np.column_stack([A, B, C, D]), 0, None)

    X = np.vstack([cells(n_cells, False), cells(n_ko, True)]) if n_ko else cells(n_cells, False)
    a = ad.AnnData(X.astype(np.float32))
    a.var_names = list("ABCD")
    a.obs_names = [f"c{i}" for i in range(a.n_obs)]
    lab = np.array([""] * n_cells + ["B"] * n_ko)
    a.obs["target_genes"] = lab
    a.obs["is_control"] = lab == ""
    return a


def _signs(a: ad.AnnData) -> dict:
    e = network_edges(a).set_index(["source", "target"])
    return {k: int(e.loc[k, "sign"]) for k in EDGES}


@pytest.mark.parametrize("method", ["ridge", "ensemble"])
def test_correlation_sign_right_where_ridge_flips(method):
    a = _collider()
    infer_network(a, method=method, sign_from="ridge")
    assert _signs(a)[("B", "C")] == 1  # the conditional coefficient flips under the collider
    infer_network(a, method=method, sign_from="correlation")
    assert _signs(a) == TRUE
    assert a.uns["grn"]["params"]["sign_from"] == "correlation"
    e = network_edges(a)
    assert (np.sign(e["weight"]) == e["sign"]).all()


@pytest.mark.parametrize("screen", [False, True])
def test_sign_sources_keep_the_ranking(screen):
    a = _collider(n_cells=300, n_ko=40 if screen else 0)
    kw = {"perturbations": "target_genes"} if screen else {}
    ref = None
    for s in SIGN_SOURCES:
        infer_network(a, sign_from=s, **kw)
        e = network_edges(a)
        key = (e["source"].astype(str).tolist(), e["target"].astype(str).tolist(), np.abs(e["weight"].to_numpy()))
        if ref is None:
            ref = key
        assert key[0] == ref[0] and key[1] == ref[1]
        np.testing.assert_array_equal(key[2], ref[2])


def test_marginal_uses_the_cells_each_target_is_fitted_on():
    a = _collider(n_cells=200, n_ko=30)
    X = np.asarray(a.X, dtype=float)
    drop = (a.obs["target_genes"] == "B").to_numpy()
    reg = np.arange(4)
    R = _marginal(X, reg, False, {1: drop})
    np.testing.assert_allclose(R[:, 0], np.corrcoef(X.T)[:, 0], atol=1e-10)  # all cells
    np.testing.assert_allclose(R[:, 1], np.corrcoef(X[~drop].T)[:, 1], atol=1e-10)  # B: its own cells left out
    from scipy.stats import spearmanr

    S = _marginal(X, reg, True, {1: drop})
    np.testing.assert_allclose(S[:, 1], spearmanr(X[~drop]).statistic[:, 1], atol=1e-10)


def test_unknown_sign_source_raises():
    with pytest.raises(ValueError, match="sign_from"):
        infer_network(_collider(n_cells=50), sign_from="magic")


def test_knockout_direction_still_overrides():
    """Where a knockout counts (``|t_direct| > min_t``) the edge takes the knockout's direction whatever the
    source; elsewhere the source's sign. (Here B's direct effect on C is itself flipped by the collider D, which
    the direct-effect correction conditions on: the override is right only as often as the direct t is.)"""
    a = _collider(n_cells=300, n_ko=40)
    X = np.asarray(a.X, dtype=float)
    r_all = np.corrcoef(X.T)
    genes = list(a.var_names)
    for s in ("ridge", "correlation"):
        infer_network(a, sign_from=s, perturbations="target_genes")
        e = network_edges(a)
        ko = e["perturbation_t"].abs() > a.uns["grn"]["params"]["min_t"]
        assert ko.any() and (~ko).any()
        assert (e.loc[ko, "sign"] == np.sign(e.loc[ko, "perturbation_t"])).all()
        if s == "correlation":  # the other edges: the marginal correlation's sign (targets fitted on all cells)
            rest = e[~ko & (e["target"].astype(str) != "B")]
            want = [np.sign(r_all[genes.index(str(u)), genes.index(str(v))])
                    for u, v in zip(rest["source"], rest["target"], strict=True)]
            assert len(rest) and (rest["sign"].to_numpy() == want).all()


def test_report_sentence_names_the_sign_source():
    from scagents.agents.network import method_label, weight_scale

    a = _collider(n_cells=200)
    for s, word, label in (("ridge", "ridge coefficient", "ridge"), ("spearman", "Spearman", "Spearman correlation")):
        infer_network(a, sign_from=s)
        params = a.uns["grn"]["params"]
        assert word in weight_scale(params)
        assert method_label(params).endswith(f"signed by {label}")


def test_partial_correlation_refuses_too_many_genes(monkeypatch):
    """The dense genes x genes inverse is size-guarded, as method and as sign source, with one clear line."""
    import anndata as ad
    import numpy as np
    import pytest

    from scagents.grn import infer as infer_mod

    monkeypatch.setattr(infer_mod, "MAX_PARTIAL_GENES", 4)
    a = ad.AnnData(np.random.default_rng(0).normal(size=(50, 6)).astype(np.float32))
    with pytest.raises(ValueError, match="sign_from='partial_correlation' needs a dense .*sign_from='spearman'"):
        infer_mod.infer_network(a, sign_from="partial_correlation")
    with pytest.raises(ValueError, match="method='partial_correlation' needs a dense .*method='ensemble'"):
        infer_mod.infer_network(a, method="partial_correlation")
    infer_mod.infer_network(a)  # the default is not affected


def test_network_matrix_edge_signs_and_sign_agreement():
    """``network_matrix(signs="edges")``: |coefficient| with the drawn edge's sign; ``sign_agreement`` counts
    the drawn edges whose coefficient has the other sign (the collider's B→C: ridge +, Spearman −)."""
    from scagents.grn import network_matrix, sign_agreement

    a = _collider()
    infer_network(a, method="ridge", sign_from="spearman")
    assert _signs(a) == TRUE
    coef, drawn = network_matrix(a), network_matrix(a, signs="edges")
    assert coef.loc["B", "C"] > 0 and drawn.loc["B", "C"] < 0  # propagation vs the drawn arrow
    np.testing.assert_allclose(np.abs(drawn.to_numpy()), np.abs(coef.to_numpy()))
    e = network_edges(a)
    c = coef.to_numpy()[coef.index.get_indexer(e["source"]), coef.columns.get_indexer(e["target"])]
    d = drawn.to_numpy()[coef.index.get_indexer(e["source"]), coef.columns.get_indexer(e["target"])]
    assert (np.sign(d[c != 0]) == e["sign"].to_numpy()[c != 0]).all()
    counts = sign_agreement(a)
    assert counts["n_edges"] == len(e) and counts["n_with_coef"] == int((c != 0).sum())
    assert counts["n_opposite"] == int(((c != 0) & (np.sign(c) != e["sign"].to_numpy())).sum()) >= 1
    infer_network(a, method="ridge", sign_from="ridge")
    assert sign_agreement(a)["n_opposite"] == 0
    np.testing.assert_allclose(network_matrix(a, signs="edges").to_numpy(), network_matrix(a).to_numpy())
    with pytest.raises(ValueError, match="signs"):
        network_matrix(a, signs="magic")
