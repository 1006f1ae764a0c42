"""scagents.stimulation: held-out group responses from the other groups (synthetic, small)."""

import numpy as np
import pytest

from scagents.stimulation import (
    ENSEMBLE,
    MEAN_SHIFT,
    REFERENCE,
    condition_means,
    fit_response,
    score,
)


def _two_family_data(seed=0, n_types=8, n_genes=60, cells=12):
    """Cell types of two families (A, B): family A responds on genes 0-9, family B on 10-19;
    their control profiles differ by family, so similar cell types respond alike."""
    rng = np.random.default_rng(seed)
    base = {"A": rng.uniform(0.5, 2.0, n_genes), "B": rng.uniform(0.5, 2.0, n_genes)}
    resp = {"A": np.r_[np.full(10, 1.5), np.zeros(n_genes - 10)],
            "B": np.r_[np.zeros(10), np.full(10, -0.8), np.zeros(n_genes - 20)]}
    x, groups, cond = [], [], []
    for t in range(n_types):
        fam = "AB"[t % 2]
        ctrl = base[fam] + rng.normal(0, 0.05, n_genes)
        for c, shift in (("CTRL", 0.0), ("STIM", 1.0)):
            mean = np.clip(ctrl + shift * resp[fam], 0, None)
            x.append(mean + rng.normal(0, 0.1, (cells, n_genes)))
            groups += [f"type{t}"] * cells
            cond += [c] * cells
    return np.vstack(x), np.array(groups), np.array(cond), [f"g{i}" for i in range(n_genes)]


def test_condition_means_match_numpy_and_sparse():
    import scipy.sparse as sp

    x, groups, cond, genes = _two_family_data()
    m = condition_means(sp.csr_matrix(x), groups, cond, control="CTRL", treated="STIM", genes=genes)
    i = m.index("type3")
    np.testing.assert_allclose(m.control[i], x[(groups == "type3") & (cond == "CTRL")].mean(0))
    np.testing.assert_allclose(m.treated[i], x[(groups == "type3") & (cond == "STIM")].mean(0))
    assert m.n_control[i] == m.n_treated[i] == 12


def test_similar_cell_types_beat_the_mean_shift_and_held_out_cells_are_unused():
    x, groups, cond, genes = _two_family_data()
    m = condition_means(x, groups, cond, control="CTRL", treated="STIM", genes=genes)
    fit = fit_response(m, "type2")
    obs = m.delta[m.index("type2")]
    assert "type2" not in fit.train and "type2" not in fit.inner
    assert fit.status == "validated" and fit.method not in (MEAN_SHIFT, REFERENCE)
    assert score(fit.delta, obs)["mse"] < 0.5 * score(fit.candidates[MEAN_SHIFT], obs)["mse"]
    assert ENSEMBLE in fit.validation
    # the held-out type's treated cells are never read: garbage there changes nothing
    x2 = x.copy()
    x2[(groups == "type2") & (cond == "STIM")] = 1e6
    m2 = condition_means(x2, groups, cond, control="CTRL", treated="STIM", genes=genes)
    np.testing.assert_allclose(fit_response(m2, "type2").delta, fit.delta)
    assert fit.lower is not None and np.all(fit.lower <= fit.delta) and np.all(fit.delta <= fit.upper)


def test_identical_responses_fall_back_to_a_baseline():
    """When every cell type responds the same, no learned candidate beats the mean shift by the
    rule's margin: a baseline answers."""
    rng = np.random.default_rng(1)
    n_genes, x, groups, cond = 40, [], [], []
    resp = np.r_[np.full(8, 1.0), np.zeros(32)]
    for t in range(6):
        ctrl = rng.uniform(0.5, 2.0, n_genes)
        for c, s in (("CTRL", 0.0), ("STIM", 1.0)):
            x.append(ctrl + s * resp + rng.normal(0, 0.3, (10, n_genes)))
            groups += [f"t{t}"] * 10
            cond += [c] * 10
    m = condition_means(np.vstack(x), np.array(groups), np.array(cond), control="CTRL",
                        treated="STIM", genes=[f"g{i}" for i in range(n_genes)])
    fit = fit_response(m, "t0")
    assert fit.status == "fallback" and "answers" in fit.decision


def test_time_course_without_validation_answers_with_the_mean_shift():
    rng = np.random.default_rng(0)
    genes = [f"g{i}" for i in range(20)]
    resp = np.r_[np.full(5, 1.0), np.zeros(15)]
    x, cond = [], []
    for lv, h in (("0", 0.0), ("1", 1.0), ("3", 3.0)):
        x.append(1.0 + h / 3 * resp + rng.normal(0, 0.05, (15, 20)))
        cond += [lv] * 15
    m = condition_means(np.vstack(x), None, np.array(cond), control="0", genes=genes,
                        hours={"0": 0.0, "1": 1.0, "3": 3.0})
    fit = fit_response(m, "3")
    assert fit.status == "unchecked" and fit.method == MEAN_SHIFT and fit.train == ["1"]
    # linear in time extrapolates the 1 h change three-fold
    np.testing.assert_allclose(fit.candidates["linear in time"], 3 * m.delta[m.index("1")])


def test_a_group_without_control_cells_cannot_be_predicted():
    x, groups, cond, genes = _two_family_data()
    keep = ~((groups == "type1") & (cond == "CTRL"))
    m = condition_means(x[keep], groups[keep], cond[keep], control="CTRL", treated="STIM",
                        genes=genes)
    with pytest.raises(ValueError, match="no control cells"):
        fit_response(m, "type1")


def test_validation_table_fills_every_column_it_shows():
    """The report's validation table shows mse, mse_sd, pearson, pearson_delta_topk and
    direction_accuracy: each is computed per inner-validation group (no change has no Pearson)."""
    from scagents.metrics import prediction_report
    from scagents.stimulation import SCORE_KEYS

    x, groups, cond, genes = _two_family_data()
    m = condition_means(x, groups, cond, control="CTRL", treated="STIM", genes=genes)
    fit = fit_response(m, "type2")
    for name, v in fit.validation.items():
        assert {"mse", "mse_sd", *SCORE_KEYS} <= set(v)
        assert 0.0 <= v["direction_accuracy"] <= 1.0
        assert np.isnan(v["pearson"]) == (name == REFERENCE)
    # score() uses prediction_report's definitions
    obs = m.delta[m.index("type2")]
    rep, s = prediction_report(fit.delta, obs, k=20), score(fit.delta, obs)
    for key in SCORE_KEYS:
        assert s[key] == pytest.approx(rep[key])


def test_one_group_of_cells_says_what_column_is_missing():
    """A treatment column but no cell-type or time column: one line naming what to add."""
    x, _, cond, genes = _two_family_data()
    m = condition_means(x, np.array(["all cells"] * len(cond)), cond, control="CTRL",
                        treated="STIM", genes=genes)
    with pytest.raises(ValueError, match=r"one group .*cell-type column") as err:
        fit_response(m, "all cells")
    assert "np.str_" not in str(err.value)
