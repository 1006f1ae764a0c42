"""One answering rule and one set of constructors for the policy agent and the ablation.

``scagents.agents.policy``: :func:`answering_rule` (who answers), :func:`validation_split`,
:func:`fit_candidates` / :func:`refit_candidate` (the candidates, built by the constructors of the
ablation's rows), :func:`policy_train_config` (the ablation's RL configuration) and
:func:`answering_predictor` (the rule run on a set of perturbations, the ablation's "answering
predictor" row). Small budgets only: no test trains for long.
"""

from __future__ import annotations

import json
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import scagents.agents.policy as policy_mod
from scagents.agents.policy import (
    COMBINATION,
    NETWORK,
    POLICY,
    answering_predictor,
    answering_rule,
    fit_candidates,
    policy_train_config,
    refit_candidate,
    validation_split,
)
from scagents.agents.state import RunOptions

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def twin_task():
    from scagents.envs.response import ResponseTask

    return ResponseTask.from_twin("th", modalities=("rna",), n_cells=48, keep_cells=True)


def _rows(mse: dict[str, list[float]], pearson: dict[str, list[float]] | None = None
          ) -> dict[str, pd.DataFrame]:
    labels = [f"p{i}" for i in range(len(next(iter(mse.values()))))]
    pearson = pearson or {k: [0.5] * len(v) for k, v in mse.items()}
    return {k: pd.DataFrame({"mse": v, "pearson_delta_topk": pearson[k], "pearson": pearson[k],
                             "direction_accuracy": 0.5}, index=labels)
            for k, v in mse.items()}


# ----------------------------------------------------------------------------- the rule itself
def test_rule_policy_answers_only_when_validated():
    rows = _rows({POLICY: [0.01, 0.012, 0.011, 0.009], "a": [0.05, 0.04, 0.06, 0.05],
                  "b": [0.03, 0.031, 0.029, 0.03]})
    ans = answering_rule(rows, baselines=["a", "b"], attempt=1, max_attempts=2,
                         min_improvement=0.05)
    assert ans.verdict.validated and ans.answer == POLICY and not ans.retrain
    # the same policy moving an answered perturbation's own target the wrong way: not validated
    bad = answering_rule(rows, baselines=["a", "b"], attempt=2, max_attempts=2,
                         min_improvement=0.05, wrong_targets=["IFNG"])
    assert not bad.verdict.validated and bad.answer == "b"   # lowest validation MSE among a, b
    assert bad.verdict.checks[policy_mod.WRONG_TARGETS] is False


def test_rule_close_miss_retrains_first_then_falls_back_to_lowest_mse():
    rows = _rows({POLICY: [0.031, 0.032, 0.030, 0.031], "a": [0.05, 0.04, 0.06, 0.05],
                  "b": [0.03, 0.031, 0.029, 0.03]})
    first = answering_rule(rows, baselines=["a", "b"], attempt=1, max_attempts=2,
                           min_improvement=0.05)
    assert not first.verdict.validated and first.retrain and first.answer is None
    last = answering_rule(rows, baselines=["a", "b"], attempt=2, max_attempts=2,
                          min_improvement=0.05)
    assert last.retrain and last.answer == "b"
    # far from the best baseline (> RETRAIN_GAP): no retrain even with attempts left
    far = _rows({POLICY: [0.1, 0.1, 0.1, 0.1], "a": [0.05, 0.04, 0.06, 0.05],
                 "b": [0.03, 0.031, 0.029, 0.03]})
    ans = answering_rule(far, baselines=["a", "b"], attempt=1, max_attempts=2,
                         min_improvement=0.05)
    assert not ans.retrain and ans.answer == "b"


def test_validation_split_is_stratified_and_says_when_too_few():
    kinds = ["knockout"] * 12 + ["overexpression"] * 6
    val, why = validation_split(kinds, list(range(18)), 10, seed=0)
    assert why == "" and len(val) == 6                     # a third of 18
    assert sum(kinds[i] == "overexpression" for i in val) == 3  # interleaved by kind
    assert val == validation_split(kinds, list(range(18)), 10, seed=0)[0]   # seeded
    none, why = validation_split(kinds[:2], [0, 1], 10, seed=0)
    assert none == [] and "at least 3 are needed" in why


# ------------------------------------------------------------------ one set of constructors
def test_agent_train_config_is_the_ablations():
    """The agent's TrainConfig equals the ablation's RL rows' for the same steps and seed, and the
    agent's default budget is the one the ablation's inner validation chose."""
    from scagents.evaluation import default_train_config

    sys.path.insert(0, str(ROOT))
    from benchmarks.ablation import CANDIDATES

    for steps, seed in ((512, 0), (65_536, 3)):
        assert policy_train_config(steps, seed) == default_train_config(
            "trpo_ppo", total_steps=steps, seed=seed)
        # what benchmarks/ablation.py's run_one + heldout_scores build for TRPO→PPO
        chosen = CANDIDATES["65,536 steps, per-gene rewards, δ 0.02"]
        cfg = replace(default_train_config("trpo_ppo", **{**chosen, "total_steps": steps}),
                      algo="trpo_ppo", seed=seed)
        assert policy_train_config(steps, seed) == cfg
    selection = json.loads((ROOT / "benchmarks" / "results" / "ablation_rl.json").read_text())
    best = selection["selection"]["best"]
    assert RunOptions(goal="x").policy_steps == CANDIDATES[best]["total_steps"]
    assert policy_train_config(1, 0).delta == CANDIDATES[best]["delta"]


def test_candidates_are_the_ablations_constructors(twin_task, monkeypatch):
    """The agent's network candidate and the combination's network base are
    ``fit_network_baseline`` on the training perturbations (refitted per inner fold), and the
    combination is the ablation's ``fit_baseline("combination")``."""
    import scagents.evaluation as ev
    from scagents.evaluation import fit_baseline

    train, test = twin_task.split(n_folds=5, fold=0, seed=0)
    fitted_on = []
    real = ev.fit_network_baseline

    def spy(task, **kw):
        fitted_on.append(list(task.labels))
        return real(task, **kw)

    monkeypatch.setattr(ev, "fit_network_baseline", spy)
    policy_mod._CANDIDATES.clear()  # the last fit of this process is reused (see the memo test)
    cands = fit_candidates(train, seed=1)
    assert set(cands) == {*policy_mod.BASELINES, NETWORK, COMBINATION}
    assert list(train.labels) in fitted_on                  # the candidate and the refit base
    inner = [labs for labs in fitted_on if labs != list(train.labels)]
    assert len(inner) == 5 and all(set(labs) < set(train.labels) for labs in inner)
    monkeypatch.setattr(ev, "fit_network_baseline", real)
    net, comb = fit_baseline("network", train), fit_baseline("combination", train, seed=1)
    for p in test.perturbations:
        assert np.allclose(cands[NETWORK](p.targets, p.kind), net(p))
        assert np.allclose(cands[COMBINATION](p.targets, p.kind), comb(p))
    # the refit before answering is the same constructor on the larger set
    refit = refit_candidate(NETWORK, twin_task, seed=1)
    p = test.perturbations[0]
    assert np.allclose(refit(p.targets, p.kind), fit_baseline("network", twin_task)(p))
    without = fit_candidates(train, seed=1, network=False)
    assert NETWORK not in without and COMBINATION in without


def test_fit_candidates_reuses_the_fits_of_the_same_task_only(twin_task, monkeypatch):
    """The policy and the fallback agents of one run fit the same candidates: the second call
    reuses them; another task or seed fits again."""
    import scagents.evaluation as ev

    train, _ = twin_task.split(n_folds=5, fold=1, seed=0)
    calls = []
    real = ev.fit_network_baseline
    monkeypatch.setattr(ev, "fit_network_baseline", lambda task, **kw: calls.append(1) or real(task, **kw))
    policy_mod._CANDIDATES.clear()
    first = fit_candidates(train, seed=2)
    n = len(calls)
    assert n > 0
    again = fit_candidates(train, seed=2)
    assert len(calls) == n and all(again[k] is first[k] for k in first)
    fit_candidates(train, seed=3)
    assert len(calls) > n
    other, _ = twin_task.split(n_folds=5, fold=2, seed=0)
    assert policy_mod._task_key(other, 2, True) != policy_mod._task_key(train, 2, True)


def test_answering_predictor_runs_the_agents_rule(twin_task, monkeypatch):
    train, test = twin_task.split(n_folds=5, fold=0, seed=0)
    decisions = []
    real_rule = policy_mod.answering_rule

    def spy(rows, **kw):
        ans = real_rule(rows, **kw)
        decisions.append((set(rows), kw, ans))
        return ans

    monkeypatch.setattr(policy_mod, "answering_rule", spy)
    predict, info = answering_predictor(train, seed=0, answer_for=list(test.perturbations),
                                        policy_steps=256, max_policy_attempts=1)
    rows, kw, ans = decisions[-1]
    assert info["answered_by"] == ans.answer and info["attempts"] == 1
    assert rows == {POLICY, *policy_mod.BASELINES, NETWORK, COMBINATION}
    assert kw["min_improvement"] == RunOptions(goal="x").min_improvement
    # validation perturbations come from the training fold only, as many as the agent holds out
    assert set(info["validation_labels"]) <= set(train.labels)
    assert len(info["validation_labels"]) == min(10, train.n_perturbations // 3)
    pred = np.stack([predict(p) for p in test.perturbations])
    assert np.isfinite(pred).all()
    if ans.answer != POLICY:   # a baseline answers refitted on the whole training fold
        again = refit_candidate(ans.answer, train, seed=0)
        p = test.perturbations[0]
        assert np.allclose(pred[0], again(p.targets, p.kind))
    with pytest.raises(Exception, match="unknown option"):
        answering_predictor(train, seed=0, n_validaton=3)
