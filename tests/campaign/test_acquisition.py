"""Designers, the design environment and features on small synthetic data."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from scagents.campaign.acquisition import DesignerError, hit_likeness, knn_smooth, make_designer
from scagents.campaign.features import align_features, combine_features, expression_prior
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
def test_policy_designer_trains_and_proposes():
    pytest.importorskip("scagents.policies.trpo_ppo")
    X, scores, is_hit = _problem(n=300, seed=2)
    d = make_designer("policy", seed=0, total_timesteps=1024, ucb_weight=0.5)
    measured = np.arange(60)
    picks = d.propose(X, measured, hit_likeness(scores[:60], "increase"), 12, round_index=1)
    assert len(picks) == 12 and picks["index"].min() >= 60 and picks["index"].is_unique
    assert np.isfinite(picks["score"]).all() and "policy" in picks["rationale"].iloc[0]
    first = {k: v.clone() for k, v in d._weights.items()}
    # warm start: the next round starts from (and so stays near) the stored weights
    d.propose(X, np.arange(72), hit_likeness(scores[:72], "increase"), 12, round_index=2)
    assert set(d._weights) == set(first)
    assert any(not np.allclose(first[k].numpy(), d._weights[k].numpy()) for k in first)


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
