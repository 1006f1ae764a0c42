"""The twin-attractor benchmark's Boolean fixed points and keep shares (benchmarks/twin_attractors.py)."""

from __future__ import annotations

import numpy as np

from scagents.twin import read_model
from tests.conftest import load_benchmark

# the AND of five self-sustaining genes, plus an input that drives a sixth gene
MODEL = "\n".join(f"{g}, A & B & C & D & E" for g in "ABCDE") + "\nF, S\nS, S\n"


def test_fixed_points_exhaustive_and_by_the_synchronous_map_agree(monkeypatch):
    bench = load_benchmark("twin_attractors")
    net = read_model(MODEL, format="bnet")
    fp = bench.boolean_fixed_points(net)
    assert fp["method"] == "exhaustive" and fp["n_input_combos"] == 2
    got = {tuple(int(v) for v in row) for row in fp["fixed_points"]}
    s, f = net.genes.index("S"), net.genes.index("F")
    want = set()
    for on in (0, 1):
        for inp in (0, 1):
            x = [on] * net.n_genes
            x[s] = x[f] = inp
            want.add(tuple(x))
    assert got == want
    monkeypatch.setattr(bench, "EXHAUSTIVE_MAX", 0)
    fp2 = bench.boolean_fixed_points(net)
    assert fp2["method"].startswith("sync map")
    assert {tuple(int(v) for v in row) for row in fp2["fixed_points"]} == want


def test_keep_share_standard_loses_the_and_state_normalized_keeps_it():
    bench = load_benchmark("twin_attractors")
    net = read_model(MODEL, format="bnet")
    fps = bench.boolean_fixed_points(net)["fixed_points"]
    on = fps[:, net.genes.index("A")]
    std = bench.keep_share(net, fps, hill="standard", noise=0.0, n_cells=1)
    norm = bench.keep_share(net, fps, hill="normalized", noise=0.0, n_cells=1)
    np.testing.assert_array_equal(std["per_fp"], (~on).astype(float))
    assert norm["share"] == 1.0
