"""Random Boolean networks with motifs and the signal check (scagents.twin.generate)."""

import numpy as np
import pytest

from scagents.twin import read_model, simulate
from scagents.twin.generate import informative_simulation, random_network, signal_check


@pytest.mark.parametrize("n", [10, 40, 100])
def test_random_network_size_motifs_and_determinism(n):
    net = random_network(n, seed=3)
    assert net.n_genes == n and len(net.inputs) == max(1, n // 10)
    e = net.edges
    assert set(e["sign"]) == {-1, 1}  # activations and repressions
    assert set(e["target"]) == set(net.genes) - set(net.inputs)  # every non-input gene is regulated
    again = random_network(n, seed=3).edges
    assert e[["source", "target", "sign"]].equals(again[["source", "target", "sign"]])
    assert not e[["source", "target"]].equals(random_network(n, seed=4).edges[["source", "target"]])
    # scale-free-like out-degree: the top regulator has several times the median out-degree
    out = e[e["source"] != e["target"]].groupby("source").size()
    assert out.max() >= 3 * out.median()
    if n >= 40:  # a planted feed-forward loop A->B, A->C, B->C exists
        pairs = set(zip(e["source"], e["target"], strict=True))
        assert any((a, c) in pairs and (b, c) in pairs
                   for a, b in pairs for c in net.genes if a != b != c != a)


def test_random_network_simulates_informatively():
    net = random_network(30, seed=1)
    mdata, rec = informative_simulation(net, n_cells=200, seed=1)
    assert rec["passed"] and mdata is not None
    check = signal_check(mdata)
    assert check.passed and check.frac_varying >= 0.4 and check.n_dynamic == 27
    X = np.asarray(mdata["rna"].X)
    assert (X.std(axis=0) > 0).mean() > 0.9  # counts vary across cells


def test_signal_check_rejects_an_all_off_model():
    # no rule can ever be true: whatever the initial states, every gene ends off
    net = read_model("@name dead\nA = B and not B\nB = A and not A\nC = A or B\n", format="scanpy")
    with pytest.warns(UserWarning):
        mdata = simulate(net, n_cells=50, seed=0, modalities=("rna",))
    check = signal_check(mdata)
    assert not check.passed and "all genes off" in check.reasons
    _, rec = informative_simulation(net, n_cells=50, seed=0, tries=2)
    assert not rec["passed"] and rec["tries"] == 2 and "all genes off" in rec["reasons"]
