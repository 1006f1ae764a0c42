"""Tests of scagents.evidence: the noise floor, the conformal intervals and the evidence verdict."""

import numpy as np
import pandas as pd
import pytest

from scagents.evidence import (
    cells_needed,
    conformal_intervals,
    conformal_quantile,
    evidence_check,
    interval_scale,
    noise_floor,
)

GENES = [f"g{i}" for i in range(20)]


def _cells(rng, n, shift=None):
    x = rng.normal(2.0, 1.0, size=(n, len(GENES)))
    if shift is not None:
        x += shift
    return x


def test_noise_floor_finds_a_real_effect_and_only_it():
    rng = np.random.default_rng(0)
    shift = np.zeros(len(GENES))
    shift[3] = -1.0
    floor = noise_floor(_cells(rng, 300), _cells(rng, 300, shift), GENES, seed=1)
    assert list(floor.columns) == ["observed_delta", "se", "noise_floor", "clears"]
    assert floor.loc["g3", "clears"] and floor["clears"].sum() == 1
    # the bootstrap s.e. of a difference of means of unit-variance cells: sqrt(2 / 300)
    assert floor["se"].median() == pytest.approx(np.sqrt(2 / 300), rel=0.2)


def test_noise_floor_of_five_cells_is_not_fooled_by_a_sparse_gene_all_at_zero():
    # sparse genes: 5 % of control cells express them; 5 perturbed cells that all sit at 0 (as 77 %
    # of such draws do with no effect at all) have a bootstrap s.e. of 0 and must not "clear"
    rng = np.random.default_rng(0)
    n_genes = 30
    control = rng.binomial(1, 0.05, size=(600, n_genes)) * rng.normal(1.0, 0.2, size=(600, n_genes))
    perturbed = np.zeros((5, n_genes))
    # one real effect: a well-expressed gene (mean 3) knocked out to 0 in all 5 cells
    control[:, 0] = rng.normal(3.0, 0.5, 600)
    floor = noise_floor(control, perturbed, [f"g{i}" for i in range(n_genes)], seed=0)
    assert floor["clears"].tolist() == [True] + [False] * (n_genes - 1)


def test_noise_floor_on_pure_noise_clears_nothing_most_of_the_time():
    rng = np.random.default_rng(1)
    cleared = [noise_floor(_cells(rng, 80), _cells(rng, 80), GENES, seed=s)["clears"].any()
               for s in range(20)]
    assert sum(cleared) <= 3   # false-discovery control at 5 %: rarely any false call


def test_evidence_check_no_effect_says_what_is_needed():
    rng = np.random.default_rng(2)
    floor = noise_floor(_cells(rng, 50), _cells(rng, 50), GENES, seed=0)
    floor["clears"] = False
    ev = evidence_check(floor, kind="observed", n_cells=50, inputs=["TCR", "IL12"])
    assert not ev["detectable"] and ev["n_clear"] == 0 and ev["cleared"] == []
    assert "cells per condition" in ev["needed"] and "TCR" in ev["needed"]
    assert ev["cells_needed"] == cells_needed(floor, 50) and ev["cells_needed"] > 50
    silent = evidence_check(floor, kind="observed", n_cells=50, inputs=["TCR"], silent_model=True)
    assert "all-off" in silent["needed"] and "--inputs" in silent["needed"]


def test_cells_needed_none_without_any_change():
    floor = pd.DataFrame({"observed_delta": [0.0, 0.0], "noise_floor": [0.1, 0.1]})
    assert cells_needed(floor, 100) is None


def test_interval_evidence_and_scale():
    table = pd.DataFrame({"delta": [0.5, 0.1, -0.4], "lower": [0.2, -0.1, -0.6],
                          "upper": [0.8, 0.3, -0.1]}, index=["a", "b", "c"])
    ev = evidence_check(table, kind="interval")
    assert ev["detectable"] and ev["cleared"] == ["a", "c"]
    cand = np.array([[0.0, 1.0], [0.0, 3.0]])
    assert interval_scale(cand, np.array([0.0, 0.0])) == pytest.approx([1e-6, 1.0 + 1e-6])
    lo, hi = conformal_intervals(np.array([1.0]), np.array([2.0]), 0.5)
    assert (lo[0], hi[0]) == (0.0, 2.0)


def test_conformal_quantile_covers_at_the_nominal_level():
    rng = np.random.default_rng(3)
    cover = []
    for _ in range(200):
        scale = rng.uniform(0.5, 2.0, size=(60,))
        cal = rng.normal(0, 1, 60) * scale
        q = conformal_quantile(cal, scale, level=0.8)
        s_test = rng.uniform(0.5, 2.0, size=200)
        test = rng.normal(0, 1, 200) * s_test
        lo, hi = conformal_intervals(np.zeros(200), s_test, q)
        cover.append(np.mean((test >= lo) & (test <= hi)))
    assert np.mean(cover) == pytest.approx(0.8, abs=0.02)
    assert conformal_quantile(np.ones(3), np.ones(3), level=0.8) == float("inf")  # too few


def test_conformal_quantile_counts_a_genes_labels_as_one_unit():
    # two labels of one gene with identical errors (a per-promoter pair): one calibration unit, so
    # q is that of the data with the gene once; counted label by label, the duplicate row moves
    # the finite-sample rank
    rng = np.random.default_rng(5)
    res, sc = rng.normal(size=(4, 3)), rng.uniform(0.5, 2, (4, 3))
    once = conformal_quantile(res, sc, level=0.8)
    twice_r, twice_s = np.vstack([res, res[2:3]]), np.vstack([sc, sc[2:3]])
    grouped = conformal_quantile(twice_r, twice_s, level=0.8, groups=[[0], [1], [2, 4], [3]])
    assert grouped == once
    assert conformal_quantile(twice_r, twice_s, level=0.8) != once
    # a unit's scores are averaged gene by gene before ranking
    r = np.array([[1.0], [3.0], [0.5], [9.0]])
    # units [2, 0.5, 9]: rank ceil((3 + 1) · 0.5) = 2 → 2; label by label rank 3 of [0.5, 1, 3, 9]
    assert conformal_quantile(r, np.ones((4, 1)), level=0.5, groups=[[0, 1], [2], [3]]) == 2.0
    assert conformal_quantile(r, np.ones((4, 1)), level=0.5) == 3.0
    with pytest.raises(ValueError, match="exactly once"):
        conformal_quantile(res, sc, groups=[[0, 1], [1, 2, 3]])


def test_conformal_quantile_with_one_label_per_unit_is_unchanged():
    rng = np.random.default_rng(5)
    res, sc = rng.normal(size=(9, 30)), rng.uniform(0.5, 2, (9, 30))
    pinned = 1.0950149946331886   # the ungrouped quantile of earlier versions on these data
    assert conformal_quantile(res, sc, level=0.8) == pinned
    assert conformal_quantile(res, sc, level=0.8, groups=[[i] for i in range(9)]) == pinned
