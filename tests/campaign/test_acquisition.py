"""Designers, the design environment and features on small synthetic data."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from scagents.campaign.acquisition import (
    STATE_COLUMNS,
    DesignerError,
    candidate_state,
    group_smooth,
    hit_likeness,
    knn_smooth,
    make_designer,
)
from scagents.campaign.features import (
    align_features,
    combine_features,
    expression_prior,
    symbol_families,
)
from scagents.campaign.screens import run_retrospective
from scagents.envs.design import DesignProblem, StreamDesignEnv


def _problem(n=400, d=6, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d))
    signal = X[:, 0] + 0.5 * X[:, 1]
    scores = signal + 0.3 * rng.normal(size=n)
    is_hit = scores > np.quantile(scores, 0.9)
    return X, scores, is_hit


def test_hit_likeness_objectives():
    v = np.array([-3.0, 0.0, 0.1, -0.1, 2.0])
    r = hit_likeness(v, "abs")
    assert r.argmax() == 0 and r[1] < r[4]
    assert hit_likeness(v, "increase").argmax() == 4
    assert hit_likeness(v, "decrease").argmax() == 0
    with pytest.raises(DesignerError):
        hit_likeness(v, "sideways")


def test_ridge_and_gp_beat_random_on_learnable_signal():
    X, scores, is_hit = _problem()
    res = {}
    for d in ("random", "ridge_ucb", "gp_ucb"):
        res[d] = np.mean([run_retrospective(make_designer(d, seed=s), X, scores, is_hit, n_rounds=4, batch=16,
                                            objective="increase")[-1] for s in range(3)])
    assert res["ridge_ucb"] > 2 * res["random"]
    assert res["gp_ucb"] > 1.5 * res["random"]


def test_designer_excludes_measured_and_proposed():
    X, scores, _ = _problem(n=50)
    d = make_designer("ridge_ucb")
    measured = np.arange(10)
    picks = d.propose(X, measured, scores[:10], 30, exclude=np.arange(10, 20))
    assert not set(picks["index"]) & set(range(20)) and picks["index"].is_unique
    with pytest.raises(DesignerError, match="already been proposed"):
        d.propose(X, np.arange(50), scores, 5)
    with pytest.raises(DesignerError, match="Unknown designer"):
        make_designer("oracle")


def test_stream_design_env_rewards_and_checker():
    from gymnasium.utils.env_checker import check_env

    X, scores, _ = _problem(n=120)
    tested = np.arange(120) >= 100
    prob = DesignProblem([str(i) for i in range(120)], effects=scores, features=X)
    env = StreamDesignEnv(prob, tested=[tested], stream_length=16, repeat_penalty=2.0)
    check_env(env, skip_render_check=True)
    fresh = scores[~tested]
    z = dict(zip(np.flatnonzero(~tested), (fresh - fresh.mean()) / fresh.std(), strict=True))
    obs, _ = env.reset(seed=1)
    steps, done = 0, False
    while not done:
        c = int(env._stream[env._t])
        obs, r, done, _, _ = env.step(1)
        assert r == pytest.approx(-2.0 if tested[c] else z[c])
        steps += 1
    assert steps == env.budget  # proposing every time spends the budget
    env.reset(seed=1)
    done, skip_total = False, 0.0
    while not done:
        _, r, done, _, _ = env.step(0)
        skip_total += r
    assert skip_total == 0.0
    o = StreamDesignEnv.observation_for(X[:3], tested=True, budget_left=0.5)
    assert o.shape == (3, X.shape[1] + 2) and (o[:, -2] == 1).all() and (o[:, -1] == 0.5).all()


def test_knn_smooth_and_prior_round_zero():
    X = np.array([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0], [0.1, 0.9], [1.0, 0.05]])
    mean, mx, nn = knn_smooth(X, np.array([0, 2]), np.array([5.0, -1.0]), np.array([1, 3]), k=1)
    assert mean.tolist() == [5.0, -1.0] and mx.tolist() == [5.0, -1.0] and (nn > 0.9).all()
    prior = np.arange(50, dtype=float)
    Xr = np.random.default_rng(0).normal(size=(50, 3))
    picks = make_designer("ridge_ucb", prior=prior).propose(Xr, np.zeros(0, int), np.zeros(0), 5)
    assert sorted(picks["index"]) == [45, 46, 47, 48, 49] and "prior" in picks["rationale"].iloc[0]
    rnd = make_designer("random", prior=prior).propose(Xr, np.zeros(0, int), np.zeros(0), 5)
    assert "baseline" in rnd["rationale"].iloc[0]
    with pytest.raises(DesignerError, match="prior has"):
        make_designer("ridge_ucb", prior=prior[:10]).propose(Xr, np.zeros(0, int), np.zeros(0), 5)


def test_expression_prior_uses_measured_columns_only():
    F = pd.DataFrame({"a__mean": [2.0, 0.0, 9.0], "b__mean": [1.0, 1.0, 0.0],
                      "a__missing": [0.0, 0.0, 1.0], "b__missing": [0.0, 0.0, 1.0]}, index=["G1", "G2", "G3"])
    p = expression_prior(F, absent=-7.0)
    assert p["G1"] == pytest.approx(1.5) and p["G2"] == pytest.approx(0.5) and p["G3"] == -7.0
    assert p.idxmax() == "G1"


@pytest.mark.slow
def test_policy_designer_trains_and_proposes(monkeypatch):
    pytest.importorskip("scagents.policies.trpo_ppo")
    X, scores, is_hit = _problem(n=300, seed=2)
    d = make_designer("policy", seed=0, total_timesteps=1024, ucb_weight=0.5)
    measured = np.arange(60)
    picks = d.propose(X, measured, hit_likeness(scores[:60], "increase"), 12, round_index=1)
    assert len(picks) == 12 and picks["index"].min() >= 60 and picks["index"].is_unique
    assert np.isfinite(picks["score"]).all() and "policy" in picks["rationale"].iloc[0]
    # plain words: what the score means, and that picks are spread out (no jargon)
    why = picks["rationale"].iloc[0]
    assert "log-odds" not in why and "score = " in why and "diversity" in why
    first = {k: v.clone() for k, v in d._weights.items()}
    # warm start: the next round's train() gets the stored weights as init_policy
    import scagents.policies as pol

    seen = []
    real_train = pol.train

    def spy(env, cfg, **kw):
        seen.append(kw.get("init_policy"))
        return real_train(env, cfg, **kw)

    monkeypatch.setattr(pol, "train", spy)
    d.propose(X, np.arange(72), hit_likeness(scores[:72], "increase"), 12, round_index=2)
    assert len(seen) == 1 and seen[0] is not None and set(seen[0]) == set(first)
    assert all(np.allclose(first[k].numpy(), seen[0][k].numpy()) for k in first)
    assert any(not np.allclose(first[k].numpy(), d._weights[k].numpy()) for k in first)
    cold = make_designer("policy", seed=0, total_timesteps=512, warm_start=False)
    cold._weights = first
    cold.propose(X, np.arange(72), hit_likeness(scores[:72], "increase"), 12, round_index=2)
    assert seen[-1] is None


def test_feature_alignment_missing_indicator():
    a = pd.DataFrame({"x": [1.0, 2.0, 3.0]}, index=["A", "B", "C"])
    b = pd.DataFrame({"y": [5.0, 6.0]}, index=["B", "D"])
    comb = combine_features({"a": a, "b": b})
    assert comb.loc["D", "a__missing"] == 1.0 and comb.loc["A", "b__missing"] == 1.0
    assert comb.loc["D", "a__x"] == 0.0 and abs(comb["a__x"].loc[["A", "B", "C"]].mean()) < 1e-12
    al = align_features(comb, ["a", "ZZZ"])
    assert list(al.index) == ["a", "ZZZ"]
    assert al.loc["ZZZ", "missing"] == 1.0 and al.loc["a", "missing"] == 0.0
    assert (al.loc["ZZZ"].drop("missing") == 0).all()


def test_group_smooth_shrinks_toward_mean():
    groups = np.array([0, 0, 0, 1, 1, -1, 0, 1, -1])
    known = np.array([0, 1, 3])
    y = np.array([4.0, 2.0, 0.0])  # mean 2
    mean, n = group_smooth(groups, known, y, np.array([2, 4, 5, 6]), shrink=2.0)
    # group 0: (4 + 2 + 2·2) / (2 + 2) − 2 = 0.5 ; group 1: (0 + 4) / 3 − 2 = −2/3 ; no group: 0
    assert mean == pytest.approx([0.5, -2 / 3, 0.0, 0.5])
    assert n.tolist() == [2, 1, 0, 2]


def test_symbol_families_from_names():
    genes = ["RPL10A", "RPL3", "RPS6", "RPS3A", "MED12", "MED1", "CD3E", "CD28", "SOLO", "NDUFA4", "NDUFA1"]
    fam = symbol_families(genes)
    assert fam[0] == fam[1] and fam[2] == fam[3] and fam[0] != fam[2]
    assert fam[4] == fam[5] and fam[6] == fam[7] and fam[9] == fam[10]
    assert fam[8] == -1  # a family of one is no family
    assert (symbol_families(genes, max_size=1) == -1).all()


def test_prior_only_designer_ignores_feedback_and_state_columns():
    X = np.random.default_rng(0).normal(size=(30, 4))
    prior = np.arange(30, dtype=float)
    d = make_designer("prior_only", prior=prior)
    a = d.propose(X, np.array([29, 28]), np.array([0.0, 9.0]), 3)
    b = d.propose(X, np.array([29, 28]), np.array([9.0, 0.0]), 3)
    assert a["index"].tolist() == b["index"].tolist() == [27, 26, 25]
    st = candidate_state(X, np.arange(10), np.linspace(0, 1, 10), np.arange(10, 30))
    assert st.shape == (20, len(STATE_COLUMNS))
    gi = STATE_COLUMNS.index("group_mean")
    assert (st[:, gi] == 0).all() and (st[:, gi + 1] == 0).all()
    groups = np.repeat(np.arange(6), 5)
    st = candidate_state(X, np.arange(10), np.r_[np.ones(5) * 3, np.zeros(5)], np.arange(10, 30), groups=groups)
    assert (st[:, gi + 1] == 0).all()  # no query shares a group with the measured ones (groups 0, 1)


def test_ridge_group_weight_follows_rewarded_group():
    rng = np.random.default_rng(1)
    X = rng.normal(size=(60, 3))
    groups = np.repeat(np.arange(6), 10)
    measured = np.array([0, 1, 2, 10, 11, 12, 20, 21, 22])
    rewards = np.array([5.0, 5.0, 5.0, 0, 0, 0, 0, 0, 0])
    picks = make_designer("ridge_ucb", groups=groups, group=10.0).propose(X, measured, rewards, 5)
    assert set(groups[picks["index"]]) == {0} and "group" in picks["rationale"].iloc[0]


def _planted(seed: int, n: int = 1000, d: int = 8):
    """Synthetic screen: a weakly informative prior plus a planted linear signal in the features."""
    rng = np.random.default_rng(seed)
    X, prior = rng.normal(size=(n, d)), rng.normal(size=n)
    scores = 0.5 * prior + 1.2 * X[:, 0] - 0.8 * X[:, 1] + rng.normal(size=n)
    return X, prior, scores, scores >= np.quantile(scores, 0.95)


#: bayes_prior with its feature model on (Thompson draws of the Bayesian ridge; the issue's item 1 properties)
FEATURE_BAYES = {"anchor": 0.5, "acquisition": "thompson", "beta": 1.0, "diversity": 0.3, "group": 0.5,
                 "neighbours": 0.5, "evidence": "residual", "feature_weight": 1.0}


def test_bayes_prior_beats_the_prior_ranking_on_planted_signal():
    from scagents.campaign.screens import run_retrospective

    finals = {d: [] for d in ("prior_only", "bayes_prior")}
    for seed in range(3):
        X, prior, scores, hit = _planted(seed)
        for d in finals:
            opts = FEATURE_BAYES if d == "bayes_prior" else {}
            curve = run_retrospective(make_designer(d, seed=seed, prior=prior, **opts), X, scores, hit, n_rounds=4,
                                      batch=30,
                                      objective="increase")
            finals[d].append(curve[-1])
    assert min(np.subtract(finals["bayes_prior"], finals["prior_only"])) > 0.2  # measured ≈ +0.4 per seed


def test_bayes_prior_keeps_the_prior_ranking_under_pure_noise_feedback():
    from scagents.campaign.screens import retrospective_picks

    X, prior, _, _ = _planted(0)
    noise = np.random.default_rng(9).normal(size=len(X))  # feedback unrelated to anything

    def picked(d):
        opts = FEATURE_BAYES if d == "bayes_prior" else {}
        return set(np.concatenate(retrospective_picks(make_designer(d, seed=0, prior=prior, **opts), X, noise,
                                                      n_rounds=4, batch=30)).tolist())

    static = picked("prior_only")
    bayes = len(picked("bayes_prior") & static) / len(static)
    ridge = len(picked("ridge_ucb") & static) / len(static)
    assert bayes >= 0.7 and ridge < 0.5  # measured 0.75 and 0.34: the ridge bandit follows the noise


def test_bayes_prior_rationale_and_options():
    X, prior, scores, _ = _planted(1, n=200)
    des = make_designer("bayes_prior", seed=0, prior=prior, **{**FEATURE_BAYES, "acquisition": "ucb"})
    out = des.propose(X, np.arange(20), scores[:20], 5, round_index=1)
    assert len(out) == 5 and "expression prior" in out["rationale"].iloc[0]
    assert 0.0 <= des.evidence_weight_ <= 1.0
    with pytest.raises(DesignerError, match="acquisition"):
        make_designer("bayes_prior", prior=prior, acquisition="greedy").propose(X, np.arange(20), scores[:20], 5)


def test_graph_smooth_lifts_neighbours_of_high_rewards():
    import scipy.sparse as sp

    from scagents.campaign.acquisition import graph_smooth

    # 0 — 1 (weight 1), 2 — 3 (weight 1), 4 alone
    A = sp.csr_matrix(([1.0, 1.0, 1.0, 1.0], ([0, 1, 2, 3], [1, 0, 3, 2])), shape=(5, 5))
    lift, w = graph_smooth(A, np.array([0, 2]), np.array([3.0, 1.0]), np.array([1, 3, 4]), shrink=1.0)
    assert lift[0] == pytest.approx(0.5) and lift[1] == pytest.approx(-0.5) and lift[2] == 0.0  # (y − ȳ)/(1 + 1)
    assert list(w) == [1.0, 1.0, 0.0]


def _family_screen(seed: int, n_fam: int = 60, per_fam: int = 8):
    """Hits cluster in 6 of 60 symbol-named families; the prior is a weak hint (noise + 0.5 × hit)."""
    rng = np.random.default_rng(seed)
    genes = [f"{chr(65 + f // 26)}{chr(65 + f % 26)}Q{i + 1}" for f in range(n_fam) for i in range(per_fam)]
    hot = rng.choice(n_fam, 6, replace=False)
    fam = np.repeat(np.arange(n_fam), per_fam)
    hit = np.isin(fam, hot) & (rng.random(len(genes)) < 0.7)
    scores = np.where(hit, 4.0, 0.0) + rng.normal(0, 1, len(genes))
    prior = 0.5 * hit + rng.normal(0, 1, len(genes))
    return genes, rng.normal(size=(len(genes), 4)), prior, scores, hit


def _family_signal_vs_noise(cfg: dict):
    """Four rounds of 24 picks by ``cfg`` on three planted family screens and on pure noise: hits gained over
    the prior's order, overlap with the prior's picks under noise, and the family weights fitted with signal
    and with noise; also the last seed's signal designer, features and scores."""
    from scagents.campaign.acquisition import build_designer, designer_config
    from scagents.campaign.screens import retrospective_picks

    gains, overlaps, w_signal, w_noise = [], [], [], []
    for seed in range(3):
        genes, X, prior, scores, hit = _family_screen(seed)

        def picks(c, sc, genes=genes, X=X, prior=prior):
            des = build_designer(c, genes, prior=prior)
            return np.concatenate(retrospective_picks(des, X, sc, n_rounds=4, batch=24)), des

        real, des = picks(cfg, scores)
        gains.append(hit[real].sum() - hit[picks(designer_config("prior_only"), scores)[0]].sum())
        w_signal.append(des.calibration_["weights"]["family"])
        noise = np.random.default_rng(100 + seed).normal(size=len(genes))
        nz, des_n = picks(cfg, noise)
        overlaps.append(len(set(nz) & set(picks(designer_config("prior_only"), noise)[0])) / (4 * 24))
        w_noise.append(des_n.calibration_["weights"]["family"])
    return gains, overlaps, w_signal, w_noise, (des, X, scores)


def test_default_designer_spreads_a_hit_to_its_family_and_keeps_the_prior_under_noise():
    from scagents.campaign.acquisition import build_designer, designer_config
    from scagents.campaign.screens import retrospective_picks

    cfg = designer_config()
    gains, overlaps = [], []
    for seed in range(3):
        genes, X, prior, scores, hit = _family_screen(seed)

        def picks(name, sc, genes=genes, X=X, prior=prior):
            c = cfg if name is None else designer_config(name)
            des = build_designer(c, genes, prior=prior)
            return np.concatenate(retrospective_picks(des, X, sc, n_rounds=4, batch=24))

        gains.append(hit[picks(None, scores)].sum() - hit[picks("prior_only", scores)].sum())
        noise = np.random.default_rng(100 + seed).normal(size=len(genes))
        overlaps.append(len(set(picks(None, noise)) & set(picks("prior_only", noise))) / (4 * 24))
    # informative feedback: more hits than the prior's order on every seed (measured +16, +8, +7 of ~33 hits)
    assert min(gains) >= 1 and sum(gains) >= 12
    assert min(overlaps) >= 0.7  # uninformative feedback: mostly the prior's order (measured 0.85–0.90)


def test_hitlike_evidence_option_is_checked():
    X, prior, scores, _ = _planted(1, n=200)
    with pytest.raises(DesignerError, match="evidence"):
        make_designer("bayes_prior", prior=prior, evidence="vibes").propose(X, np.arange(20), scores[:20], 5)


def test_calibrated_evidence_learns_family_weight_from_signal_and_keeps_the_prior_under_noise():
    """Empirical-Bayes weights of the family evidence: large with planted family hits, ≈ 0 with pure noise."""
    from scagents.campaign.acquisition import designer_config

    cfg = designer_config("bayes_prior", graph="none", evidence="calibrated")
    gains, overlaps, w_signal, w_noise, (des, X, scores) = _family_signal_vs_noise(cfg)
    assert min(gains) >= 3 and sum(gains) >= 15  # measured +9, +8, +5 of ~33 hits
    assert min(overlaps) >= 0.9  # measured 1.0: pure noise leaves the prior's order
    assert min(w_signal) > 1.0 and max(abs(w) for w in w_noise) < 0.2  # measured ≈ 2.6 and ≤ 0.02
    assert "empirical Bayes" in des.propose(X, np.arange(30), scores[:30], 4, round_index=1)["rationale"].iloc[0]


def test_feature_model_with_the_prior_as_covariate_keeps_the_prior_under_noise_and_learns_signal():
    """feature_target='covariate': the features' weights are what they add beyond the prior."""
    from scagents.campaign.screens import retrospective_picks

    gains, overlap = {}, {}
    for target in ("residual", "covariate"):
        opts = {**FEATURE_BAYES, "feature_target": target}
        gains[target], overlap[target] = [], []
        for seed in range(3):
            X, prior, scores, hit = _planted(seed)
            finals = [run_retrospective(make_designer(d, seed=seed, prior=prior, **o), X, scores, hit, n_rounds=4,
                                        batch=30, objective="increase")[-1]
                      for d, o in (("bayes_prior", opts), ("prior_only", {}))]
            gains[target].append(finals[0] - finals[1])
            noise = np.random.default_rng(9 + seed).normal(size=len(X))

            def picked(d, o, X=X, prior=prior, noise=noise):
                des = make_designer(d, seed=0, prior=prior, **o)
                return set(np.concatenate(retrospective_picks(des, X, noise, n_rounds=4, batch=30)).tolist())

            static = picked("prior_only", {})
            overlap[target].append(len(picked("bayes_prior", opts) & static) / len(static))
    assert min(gains["covariate"]) > 0.3  # measured +0.46, +0.42, +0.52 (residual: +0.48, +0.40, +0.50)
    # pure noise: measured overlap 0.94 / 0.88 / 0.99 with the prior's picks (residual: 0.75 / 0.80 / 0.99)
    assert min(overlap["covariate"]) >= 0.85 and sum(overlap["covariate"]) > sum(overlap["residual"])
    with pytest.raises(DesignerError, match="feature_target"):
        X, prior, scores, _ = _planted(1, n=200)
        make_designer("bayes_prior", prior=prior, feature_weight=1.0, feature_target="x").propose(
            X, np.arange(20), scores[:20], 5)


def _two_source_screen(seed: int, n: int = 600):
    """Hits in 10 hidden modules of 12 genes; a sparse graph links each module (the specific source), a
    dense random graph links every gene to 30 others with larger weights (an uninformative source)."""
    import scipy.sparse as sp

    rng = np.random.default_rng(seed)
    module = np.full(n, -1)
    members = rng.choice(n, 120, replace=False)
    module[members] = np.repeat(np.arange(10), 12)
    hot = np.isin(module, rng.choice(10, 4, replace=False))
    hit = hot & (rng.random(n) < 0.8)
    scores = np.where(hit, 4.0, 0.0) + rng.normal(0, 1, n)
    r, c = np.nonzero((module[:, None] == module[None, :]) & (module[:, None] >= 0) & ~np.eye(n, dtype=bool))
    specific = sp.csr_matrix((np.ones(len(r)), (r, c)), shape=(n, n))
    rr = np.repeat(np.arange(n), 30)
    cc = rng.integers(0, n, len(rr))
    dense = sp.csr_matrix((np.ones(len(rr)), (rr, cc)), shape=(n, n))
    dense = ((dense + dense.T) > 0).astype(float)
    dense.setdiag(0)
    dense.eliminate_zeros()
    prior = 0.3 * hit + rng.normal(0, 1, n)
    return rng.normal(size=(n, 3)), prior, scores, hit, [dense.tocsr(), specific]


def test_per_source_graph_evidence_is_not_averaged_away_by_a_dense_source():
    from scagents.campaign.screens import retrospective_picks

    opts = {"acquisition": "ucb", "beta": 0.0, "group": 0.0, "neighbours": 1.0, "evidence": "hitlike",
            "feature_weight": 0.0}
    found = {"sum": [], "per_source": []}
    for seed in range(3):
        X, prior, scores, hit, graphs = _two_source_screen(seed)
        for mode in found:
            des = make_designer("bayes_prior", seed=seed, prior=prior, graph_mode=mode, **opts)
            des.graph = graphs if mode == "per_source" else graphs[0] + graphs[1]
            found[mode].append(int(hit[np.concatenate(retrospective_picks(des, X, scores, n_rounds=4,
                                                                          batch=30))].sum()))
    assert all(p > s for p, s in zip(found["per_source"], found["sum"], strict=True)), found
    with pytest.raises(DesignerError, match="graph_mode"):
        X, prior, scores, _, graphs = _two_source_screen(0)
        des = make_designer("bayes_prior", prior=prior, graph_mode="mean", **opts)
        des.graph = graphs
        des.propose(X, np.arange(20), scores[:20], 5, round_index=1)


def test_build_designer_passes_one_graph_per_source_in_per_source_mode(tmp_path, monkeypatch):
    import scipy.sparse as sp

    from scagents.campaign import features as fmod
    from scagents.campaign.acquisition import build_designer, designer_config

    n = 4
    fake = {"coexpression": sp.csr_matrix(np.eye(n)[::-1]), "ligand_receptor": sp.csr_matrix((n, n)),
            "phenotype": sp.csr_matrix(np.ones((n, n)) - np.eye(n))}
    monkeypatch.setattr(fmod, "knowledge_graphs", lambda genes, sources: ({s: fake[s] for s in sources},
                                                                          {s: 0.5 for s in sources}))
    genes = ["A1", "A2", "B1", "B2"]
    per = build_designer(designer_config("bayes_prior", graph="coexpression+ligand_receptor+phenotype",
                                         graph_mode="per_source"), genes)
    assert isinstance(per.graph, list) and len(per.graph) == 3 and len(per._graphs()) == 2  # empty one left out
    summed = build_designer(designer_config("bayes_prior", graph="coexpression+ligand_receptor+phenotype",
                                            graph_mode="sum"), genes)
    assert abs(summed.graph - (fake["coexpression"] + fake["phenotype"])).max() == 0
    assert summed.feature_coverage_["phenotype"] == 0.5


def test_penalised_logistic_recovers_coefficients_and_shrinks_penalised_ones():
    from scagents.campaign.acquisition import _penalised_logistic

    rng = np.random.default_rng(0)
    D = np.column_stack([np.ones(4000), rng.normal(size=(4000, 2))])
    t = (rng.random(4000) < 1 / (1 + np.exp(-(-1.0 + 1.5 * D[:, 1] - 0.5 * D[:, 2])))).astype(float)
    w, cov = _penalised_logistic(D, t, np.zeros(3))
    assert np.allclose(w, [-1.0, 1.5, -0.5], atol=0.15) and (np.diag(cov) > 0).all()
    w_pen, _ = _penalised_logistic(D, t, np.array([0.0, 0.0, 1e6]))
    assert abs(w_pen[2]) < 1e-3 and abs(w_pen[1] - 1.5) < 0.3  # a huge penalty removes only its own column


def test_learned_source_weights_keep_the_prior_under_noise_and_follow_planted_family_hits():
    """evidence='learned': source weights fitted on the campaign's rounds; ≈ 0 (the prior ranking) under pure noise,
    > 0 for the family source and more hits than the prior's order when hits cluster in families."""
    from scagents.campaign.acquisition import designer_config

    # diversity 0: this checks the learned weights alone (the similarity penalty reorders a batch by design; the
    # default designer with it is checked under noise in test_default_designer_spreads_a_hit_...)
    cfg = designer_config("bayes_prior", graph="none", evidence="learned", feature_weight=0.0, diversity=0.0)
    gains, overlaps, w_signal, w_noise, (des, X, scores) = _family_signal_vs_noise(cfg)
    assert min(gains) >= 3 and sum(gains) >= 15, gains
    # pure noise: the prior's order (measured overlaps 1.0, 1.0, 0.89: a noise weight passes its 1-SD bound now and then)
    assert min(overlaps) >= 0.85 and np.mean(overlaps) >= 0.9, overlaps
    # measured: family weights 3.8–4.9 with signal; 0, 0, 1.6 under noise (the last round's fit)
    assert min(w_signal) > 1.0 and sum(w == 0 for w in w_noise) >= 2 and max(w_noise) < 0.5 * min(w_signal)
    assert "learned" in des.propose(X, np.arange(30), scores[:30], 4, round_index=1)["rationale"].iloc[0]


def test_learned_weights_add_to_the_fixed_ones_only_as_far_as_the_rounds_support_them():
    """evidence='hitlike+learned' = 'hitlike' plus learned weights: the same picks as 'hitlike' under pure noise
    (learned weights ≈ 0), at least as many hits with planted family hits."""
    from scagents.campaign.acquisition import build_designer, designer_config
    from scagents.campaign.screens import retrospective_picks

    opts = {"graph": "none", "feature_weight": 0.0, "group": 1.0}
    plus, fixed = (designer_config("bayes_prior", evidence=e, **opts) for e in ("hitlike+learned", "hitlike"))
    gains, overlaps = [], []
    for seed in range(3):
        genes, X, prior, scores, hit = _family_screen(seed)

        def picks(c, sc, genes=genes, X=X, prior=prior):
            return np.concatenate(retrospective_picks(build_designer(c, genes, prior=prior), X, sc, n_rounds=4,
                                                      batch=24))

        gains.append(hit[picks(plus, scores)].sum() - hit[picks(fixed, scores)].sum())
        noise = np.random.default_rng(100 + seed).normal(size=len(genes))
        overlaps.append(len(set(picks(plus, noise)) & set(picks(fixed, noise))) / (4 * 24))
    assert min(gains) >= 0 and sum(gains) >= 3, gains
    assert min(overlaps) >= 0.9, overlaps


def test_learned_prior_weight_follows_whether_the_rounds_support_the_prior():
    """prior_weight='learned': the prior's weight × P(its coefficient in the campaign's logistic model > 0) —
    near 1 when the prior ranks the measured genes' hits, near 0 when it ranks them last, 1 with 'fixed'."""
    from scagents.campaign.acquisition import build_designer, designer_config, hit_likeness

    rng = np.random.default_rng(0)
    n = 400
    genes = [f"G{i}" for i in range(n)]
    X = rng.normal(size=(n, 4))
    scores = rng.normal(size=n) * np.where(rng.random(n) < 0.2, 5.0, 1.0)
    pull = np.abs(scores - np.median(scores))
    shares, why = {}, {}
    for sign in (1.0, -1.0):
        prior = sign * pull + rng.normal(0, 1.0, n)
        for pw in ("learned", "fixed"):
            des = build_designer(designer_config("bayes_prior", graph="none", prior_weight=pw), genes, prior=prior)
            m = rng.choice(n, 120, replace=False)
            out = des.propose(X, m, hit_likeness(scores[m]), 10, round_index=1)
            shares[sign, pw], why[sign, pw] = des.calibration_["prior_share"], out["rationale"].iloc[0]
    assert shares[1.0, "learned"] > 0.9 and shares[-1.0, "learned"] < 0.1, shares
    assert shares[1.0, "fixed"] == 1.0 and shares[-1.0, "fixed"] == 1.0
    assert "prior's weight" in why[-1.0, "learned"] and "prior's weight" not in why[-1.0, "fixed"]
    with pytest.raises(Exception, match="prior_weight"):
        build_designer(designer_config("bayes_prior", graph="none", prior_weight="bogus"), genes,
                       prior=prior).propose(X, m, hit_likeness(scores[m]), 10, round_index=1)


def test_default_designer_follows_the_objective_sign():
    """A feature predicts negative scores for one group of genes: after round 1 a "decrease" campaign of the
    default designer (the one ``scagents next`` builds) picks genes with lower scores than an "increase" one.
    Fails when the objective's sign is ignored (both would pick the same genes)."""
    from scagents.campaign.acquisition import build_designer, designer_config
    from scagents.campaign.screens import retrospective_picks

    gaps = []
    for seed in range(3):
        rng = np.random.default_rng(seed)
        n = 600
        X, prior = rng.normal(size=(n, 6)), rng.normal(size=n)
        group = X[:, 0] > 0.5  # the planted group: its feature value predicts a drop of the read-out
        scores = -1.5 * X[:, 0] * group + 0.5 * rng.normal(size=n)
        genes = [f"SYN{seed}G{i}" for i in range(n)]
        mean_later = {}
        for objective in ("decrease", "increase"):
            des = build_designer(designer_config(seed=seed, n_rounds=4), genes, prior=prior)
            picks = retrospective_picks(des, X, scores, n_rounds=4, batch=30, objective=objective)
            assert np.array_equal(picks[0], np.argsort(-prior, kind="stable")[:30])  # round 1: the prior's top
            mean_later[objective] = float(scores[np.concatenate(picks[1:])].mean())
        gaps.append(mean_later["increase"] - mean_later["decrease"])
    assert min(gaps) > 0.3, gaps  # measured 1.76, 2.02, 1.95; 0.0 on every seed when rewards are |score − median|
