"""Interventional evidence from a knockout screen (scagents.grn.interventional, infer_network)."""

import numpy as np
import pandas as pd
import pytest

import scagents.data as scd
from scagents.grn import infer_network, network_edges
from scagents.grn.interventional import (
    ancestor_gate,
    combine_evidence,
    indirect_penalty,
    orient_by_knockouts,
    perturbation_effects,
    regulator_prior,
    transitive_reduction,
)
from scagents.metrics import auprc_ratio
from scagents.perturbation import Perturbation
from scagents.twin import read_model, simulate

# a tiny planted network: S (input) -> A -> B -> C, A -| D, B -| E
MODEL = """@name tiny
@input S = 0.6 sd 0.4
@initial A = 0.3 sd 0.3
S =
A = S
B = A
C = B
D = not A
E = not B
"""
PLANTED = {("S", "A", 1), ("A", "B", 1), ("B", "C", 1), ("A", "D", -1), ("B", "E", -1)}


@pytest.fixture(scope="module")
def tiny_screen():
    net = read_model(MODEL, format="scanpy")
    perts = [None, Perturbation("A"), Perturbation("B")]
    mdata = simulate(net, perturbations=perts, n_cells=200, seed=0, modalities=("rna",), library_size=5000,
                     dropout=0.02)
    rna = mdata["rna"].copy()
    scd.lognormalize(rna)
    rna.X = rna.layers["lognorm"]
    rna.layers.clear()
    return rna


def test_perturbation_effects_find_targets_and_signs(tiny_screen):
    P, cells = perturbation_effects(tiny_screen)
    assert set(P.index) == {"A", "B"} and cells == {"A": 200, "B": 200}
    assert P.loc["A", "A"] == 0.0 and P.loc["B", "B"] == 0.0
    # knockout of A: B goes down (A activates B: positive evidence), D goes up (A represses D)
    assert P.loc["A", "B"] > 5 and P.loc["A", "D"] < -5
    assert P.loc["B", "C"] > 5 and P.loc["B", "E"] < -5
    assert abs(P.loc["B", "A"]) < 3  # upstream of B: the knockout of B does not move A


def test_infer_network_with_screen_recovers_planted_edges_and_signs(tiny_screen):
    a = tiny_screen.copy()
    infer_network(a, perturbations="target_genes")
    e = network_edges(a)
    top = e.head(6)
    got = {(r.source, r.target, int(r.sign)) for r in top.itertuples()}
    assert len(got & PLANTED) >= 4  # the planted edges lead the ranking, with their signs
    # the direct edges of the perturbed regulators are supported by the screen
    sup = e[e["evidence"] == "perturbation"]
    assert {("A", "B"), ("A", "D"), ("B", "C"), ("B", "E")} <= set(zip(sup.source, sup.target, strict=True))
    # A -> C is only indirect (through B): direct-effect scoring weakens it below its total effect
    P, _ = perturbation_effects(a)
    ac = e[(e.source == "A") & (e.target == "C")]
    assert ac.empty or abs(ac["perturbation_t"].iloc[0]) < 0.8 * abs(P.loc["A", "C"])
    src = a.uns["grn"]["sources"]
    assert src["n_perturbed_regulators"] == 2 and src["n_perturbation_supported"] == len(sup)
    genes = list(a.var_names)
    truth = pd.DataFrame(sorted(PLANTED), columns=["source", "target", "sign"])
    with_screen = auprc_ratio(e, truth, genes=genes)
    ctrl = tiny_screen[tiny_screen.obs["is_control"].to_numpy(bool)].copy()
    infer_network(ctrl)
    assert with_screen >= auprc_ratio(network_edges(ctrl), truth, genes=genes)


def test_without_perturbations_nothing_changes(tiny_screen):
    a, b = tiny_screen.copy(), tiny_screen.copy()
    infer_network(a)
    infer_network(b, perturbations=None, fit_cells="control", combine="mean")
    pd.testing.assert_frame_equal(network_edges(a), network_edges(b))
    assert "evidence" not in network_edges(a)


def test_bad_perturbation_column_is_one_clear_error(tiny_screen):
    from scagents.errors import DataError

    with pytest.raises(DataError, match="No obs column 'guide'"):
        infer_network(tiny_screen.copy(), perturbations="guide")
    with pytest.raises(ValueError, match="combine"):
        infer_network(tiny_screen.copy(), perturbations="target_genes", combine="max")


def test_combine_evidence_ranks_perturbed_edges_with_both_sources():
    regs = pd.Index(["R1", "R2"])
    B = np.array([[0.0, 0.5, 0.1], [0.2, 0.0, 0.4]])  # regulators x genes (G = R1, R2, T)
    P = pd.DataFrame([[0.0, -1.0, 8.0]], index=["R1"], columns=["R1", "R2", "T"])
    S, info = combine_evidence(B, regs, P, how="sum", min_t=3.0)
    assert info["n_perturbed_regulators"] == 1
    assert S[0, 2] > S[0, 1] > 0  # R1 -> T: weak regression, strong knockout evidence
    assert S[1, 0] > 0 and S[1, 2] > 0  # the unperturbed regulator keeps its regression ranks
    S2, _ = combine_evidence(B, regs, P, how="perturbation", min_t=3.0)
    assert S2[0, 1] == 0.0  # |t| below min_t: no evidence


CHAIN = """@name chain
@input S = 0.6 sd 0.4
@initial A = 0.3 sd 0.3
S =
A = S
B = A
C = B
"""


def test_knockout_of_chain_head_ranks_indirect_edge_below_direct():
    """S -> A -> B -> C with a knockout of A only: A's knockout moves B and C, but A -> C is
    indirect (through B), so the default inference ranks it below A -> B."""
    net = read_model(CHAIN, format="scanpy")
    mdata = simulate(net, perturbations=[None, Perturbation("A")], n_cells=200, seed=1, modalities=("rna",),
                     library_size=5000, dropout=0.02)
    rna = mdata["rna"].copy()
    scd.lognormalize(rna)
    rna.X = rna.layers["lognorm"]
    rna.layers.clear()
    P, _ = perturbation_effects(rna)
    assert abs(P.loc["A", "C"]) > 5  # the knockout does move C (the indirect effect is there)
    plain = rna.copy()
    infer_network(plain, perturbations="target_genes", orient=1.0)
    infer_network(rna, perturbations="target_genes", orient=0.5, gate=0.6, reduce=True)
    e, e0 = network_edges(rna), network_edges(plain)
    w = {(r.source, r.target): abs(r.weight) for r in e.itertuples()}
    w0 = {(r.source, r.target): abs(r.weight) for r in e0.itertuples()}
    for ww in (w, w0):
        assert ww[("A", "B")] > ww.get(("A", "C"), 0.0)
    t_ac = e0.set_index(["source", "target"]).loc[("A", "C"), "perturbation_t"]
    assert abs(t_ac) < 0.85 * abs(P.loc["A", "C"])  # direct-effect scoring weakens A -> C
    # A's knockout moves B, so the reverse edge B -> A is halved by orient=0.5
    assert w[("B", "A")] == pytest.approx(0.5 * w0[("B", "A")]) and w0[("B", "A")] > 0
    assert rna.uns["grn"]["params"]["orient"] == 0.5 and rna.uns["grn"]["params"]["reduce"]


def test_transitive_reduction_drops_explained_edge_only():
    genes = ["a", "b", "c", "d"]
    # knockouts of a and b (edge evidence, + = activates): a -> b, b -> c, a -> c (weaker), a -> d
    P = pd.DataFrame([[0.0, 10.0, 6.0, 8.0], [0.0, 0.0, 9.0, 0.5]], index=["a", "b"], columns=genes)
    R = transitive_reduction(P)
    assert R.loc["a", "c"] == 0.0  # explained by a -> b -> c, whose weakest link (9) beats 6
    assert R.loc["a", "b"] == 10.0 and R.loc["a", "d"] == 8.0 and R.loc["b", "c"] == 9.0
    P2 = P.copy()
    P2.loc["a", "c"] = -6.0  # the path's sign (+ x +) disagrees with the edge's: kept
    assert transitive_reduction(P2).loc["a", "c"] == -6.0
    P3 = P.copy()
    P3.loc["a", "c"] = 9.5  # stronger than the path's weakest link (9): kept
    assert transitive_reduction(P3).loc["a", "c"] == 9.5


def test_orient_by_knockouts_scales_reverse_edges_unless_loop():
    regs = pd.Index(["r", "g", "h"])
    S = np.array([[0.0, 0.8, 0.6], [0.8, 0.0, 0.1], [0.6, 0.2, 0.0]])  # symmetric observational scores
    P = pd.DataFrame([[0.0, 7.0, -4.0]], index=["r"], columns=["r", "g", "h"])
    Sr = orient_by_knockouts(S, regs, P, factor=0.5)
    assert Sr[1, 0] == 0.4 and Sr[2, 0] == 0.3  # g -> r and h -> r: r's knockout moves g and h
    assert Sr[0, 1] == 0.8 and Sr[0, 2] == 0.6 and Sr[1, 2] == 0.1  # everything else unchanged
    P_loop = pd.DataFrame([[0.0, 7.0, -4.0], [5.0, 0.0, 0.0]], index=["r", "g"], columns=["r", "g", "h"])
    O2 = orient_by_knockouts(S, regs, P_loop, factor=0.5)
    assert O2[1, 0] == 0.8 and O2[0, 1] == 0.8  # both knockouts move each other: a loop, both kept
    assert O2[2, 0] == 0.3


def test_ancestor_gate_pushes_down_unmoved_targets():
    regs = pd.Index(["r", "g", "h"])
    S = np.array([[0.0, -0.8, 0.6], [0.5, 0.0, 0.4], [0.3, 0.2, 0.0]])
    P = pd.DataFrame([[0.0, -6.0, 0.2]], index=["r"], columns=["r", "g", "h"])
    G = ancestor_gate(S, regs, P, factor=0.5)
    assert G[0, 2] == 0.3  # r's knockout leaves h unmoved: r -> h halved
    assert G[0, 1] == -0.8  # moved: kept, sign too
    assert np.array_equal(G[1:], S[1:]) and G[0, 0] == 0.0  # other regulators and the self-edge untouched


def test_combine_odds_multiplies_odds_instead_of_lifting_every_knockout_edge():
    regs = pd.Index(["R1", "R2", "R3"])
    # regulators x genes (genes R1, R2, R3, T, U); R2 -> T is the best regression edge
    B = np.array([[0.0, 0.05, 0.02, 0.01, 0.3], [0.1, 0.0, 0.2, 0.9, 0.4], [0.15, 0.25, 0.0, 0.35, 0.5]])
    P = pd.DataFrame([[0.0, 1.0, -2.0, -6.0, 20.0]], index=["R1"], columns=["R1", "R2", "R3", "T", "U"])
    S, info = combine_evidence(B, regs, P, how="odds", min_t=1.5, weight=2.0)
    assert info["combine"] == "odds" and info["weight"] == 2.0
    n = 12  # non-zero regression edges
    nz = B != 0
    u = np.zeros(B.shape)
    u[nz] = pd.Series(np.abs(B[nz])).rank().to_numpy() / n  # the percentiles of the non-zero edges
    L = np.where(nz, -np.log(1 - u + 1 / n), 0.0)
    assert S[1, 3] == pytest.approx(L[1, 3]) and S[1, 3] == pytest.approx(np.log(n))  # top edge: log N
    assert S[0, 1] == pytest.approx(L[0, 1])  # |t| = 1 < min_t: regression alone (sign from it)
    # |t| above min_t adds weight * log(1 + |t| - min_t); the knockout gives the sign (loss of T: activates)
    assert S[0, 3] == pytest.approx(-(L[0, 3] + 2.0 * np.log1p(6.0 - 1.5)))
    assert S[0, 2] == pytest.approx(-(L[0, 2] + 2.0 * np.log1p(0.5)))
    # a weak knockout shift (|t| = 2) does not lift a weak regression edge above the best regression edge ...
    assert abs(S[0, 2]) < S[1, 3]
    # ... a strong one (|t| = 6) does, and the order among the knockout's edges follows |t|
    assert abs(S[0, 3]) > S[1, 3] and abs(S[0, 4]) > abs(S[0, 3]) > abs(S[0, 2])
    S0, _ = combine_evidence(B, regs, P, how="odds", min_t=1.5, weight=0.0)
    assert np.allclose(np.abs(S0), L)  # weight 0: the regression's scores only


def test_regulator_prior_raises_rows_of_knockouts_that_move_something():
    regs = pd.Index(["r", "q", "g"])
    S = np.array([[0.0, -1.5, 0.5], [0.4, 0.0, 0.0], [0.3, 0.2, 0.0]])
    P = pd.DataFrame([[0.0, -4.0, 0.2], [0.0, 0.0, 2.0]], index=["r", "q"], columns=["r", "q", "g"])
    R = regulator_prior(S, regs, P, boost=1.0)
    assert R[0, 1] == -2.5 and R[0, 2] == 1.5 and R[0, 0] == 0.0  # r moves q: its row gains 1, signs kept
    assert np.array_equal(R[1:], S[1:])  # q moves nothing at |t| >= 3; g was not knocked out
    P_self = pd.DataFrame([[9.0, 1.0, 0.2]], index=["r"], columns=["r", "q", "g"])
    assert np.array_equal(regulator_prior(S, regs, P_self), S)  # its own shift does not count


def test_indirect_penalty_lowers_knockout_rows_by_the_total_shift():
    regs = pd.Index(["r", "q", "g"])
    S = np.array([[0.0, -3.0, 2.0], [0.4, 0.0, 0.0], [0.3, 0.2, 0.0]])
    P = pd.DataFrame([[0.0, -4.0, 0.5]], index=["r"], columns=["r", "q", "g"])
    R = indirect_penalty(S, regs, P, weight=0.5)
    assert R[0, 1] == pytest.approx(-(3.0 - 0.5 * np.log1p(4.0)))  # sign kept, |S| lowered by the total |t|
    assert R[0, 2] == pytest.approx(2.0 - 0.5 * np.log1p(0.5))
    assert R[0, 0] == 0.0 and np.array_equal(R[1:], S[1:])  # zero edges stay 0; other rows unchanged
    R2 = indirect_penalty(S, regs, P, weight=0.0, still=1.0)
    assert R2[0, 2] == pytest.approx(1.0) and R2[0, 1] == -3.0  # unmoved target (|t| < 1) loses `still`
    R3 = indirect_penalty(S, regs, P, weight=10.0)
    assert np.all(np.abs(R3[0, 1:]) > 0) and np.sign(R3[0, 1]) == -1  # lowered, never to 0 or across 0
    assert np.array_equal(indirect_penalty(S, regs, P, weight=0.0), S)


def test_infer_network_indirect_option(tiny_screen):
    a, b = tiny_screen.copy(), tiny_screen.copy()
    infer_network(a, perturbations="target_genes")
    infer_network(b, perturbations="target_genes", indirect=0.5)
    assert a.uns["grn"]["params"]["indirect"] == 0.0 and b.uns["grn"]["params"]["indirect"] == 0.5
    wa = network_edges(a).set_index(["source", "target"])["weight"].abs()
    wb = network_edges(b).set_index(["source", "target"])["weight"].abs()
    assert wb[("S", "A")] == pytest.approx(wa[("S", "A")])  # S was not knocked out: unchanged
    assert wb[("A", "B")] < wa[("A", "B")]  # A's knockout moves B: its edge is lowered


def test_infer_network_odds_combination_and_regulator_prior(tiny_screen):
    a, b = tiny_screen.copy(), tiny_screen.copy()
    infer_network(a, perturbations="target_genes", combine="odds", min_t=1.5, evidence_weight=2.0, orient=1.0,
                  regulator_prior=0.0)
    infer_network(b, perturbations="target_genes", combine="odds", min_t=1.5, evidence_weight=2.0, orient=1.0,
                  regulator_prior=1.0)
    p = b.uns["grn"]["params"]
    assert p["combine"] == "odds" and p["regulator_prior"] == 1.0 and p["evidence_weight"] == 2.0
    ea, eb = network_edges(a), network_edges(b)
    for e in (ea, eb):
        top = e.head(5)
        got = {(s, t, int(np.sign(w))) for s, t, w in zip(top.source, top.target, top.weight, strict=True)}
        assert len(got & PLANTED) >= 4  # the planted edges lead, with their signs
    wa = ea.set_index(["source", "target"])["weight"].abs()
    wb = eb.set_index(["source", "target"])["weight"].abs()
    # A and B were knocked out and move genes: their edges gain 1, the others are unchanged
    assert wb[("A", "C")] == pytest.approx(wa[("A", "C")] + 1.0)
    assert wb[("S", "A")] == pytest.approx(wa[("S", "A")])
    with pytest.raises(ValueError, match="evidence_weight"):
        infer_network(tiny_screen.copy(), perturbations="target_genes", combine="odds", evidence_weight=-1.0)
