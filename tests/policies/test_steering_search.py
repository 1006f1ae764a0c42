"""Tests of the steering searchers and the adaptive KL penalty of the PPO phase."""

from __future__ import annotations

import math

import numpy as np
import pytest

from scagents.envs import IdentityEnv
from scagents.envs.steering import SteeringTask, TwinSteerer, canonical, enumerate_schedules
from scagents.perturbation import Perturbation
from scagents.policies import TrainConfig, TrainConfigError, train
from scagents.policies.steering_search import SEARCHERS, exhaustive, greedy, search
from scagents.policies.trpo_ppo import adapt_kl_coef


class PlantedSteerer:
    """A steerer whose objective is a planted table: the optimum (0, 3, 5) needs a first step
    that alone lowers the objective (every single intervention scores below doing nothing)."""

    def __init__(self, task):
        self.task = task
        rng = np.random.default_rng(0)
        self.table = {s: -0.1 * sum(a > 0 for a in s) - 0.05 * rng.random() for s in enumerate_schedules(task)}
        self.table[(0, 0, 0)] = 0.0
        self.table[(0, 3, 5)] = 1.0
        self.history = []
        self.n_simulations = 0

    def objective(self, s, record=True):
        s = canonical(s, self.task.max_interventions)
        self.n_simulations += 1
        self.history.append((s, self.table[s]))
        return self.table[s]


@pytest.fixture(scope="module")
def task() -> SteeringTask:
    cands = [Perturbation(g, kind=k) for g in ("Cebpa", "Gata2", "EKLF") for k in ("knockout", "overexpression")]
    return SteeringTask("krumsiek11", "granulocyte", candidates=cands, n_cells=16, n_steps=30)


def test_exhaustive_finds_planted_optimum_greedy_is_trapped(task):
    st = PlantedSteerer(task)
    ex = exhaustive(st)
    assert ex.best == ((0, 3, 5), 1.0)
    assert ex.n_simulations == len(enumerate_schedules(task))
    g = greedy(st, 1000)
    assert g.best[1] == 0.0          # no single step improves on doing nothing: greedy stops
    assert g.n_simulations == 1 + 3 * len(task.candidates)


@pytest.mark.parametrize("name", ["random", "cem", "bo", "greedy"])
def test_black_box_searchers_respect_budget(task, name):
    st = TwinSteerer(task, 0)
    r = search(name, st, 25, seed=1)
    assert 0 < r.n_simulations <= 25
    assert len({s for s, _ in r.evaluated}) == r.n_simulations   # never pays twice for a schedule
    s, v = r.best
    assert v == pytest.approx(TwinSteerer(task, 0).objective(s))


@pytest.mark.parametrize("name", ["trpo_ppo", "ppo_kl"])
def test_rl_searchers_count_episodes(task, name):
    st = TwinSteerer(task, 0)
    r = SEARCHERS[name](st, 48, 0, n_envs=4, episodes_per_env=2)
    assert r.n_simulations == 48
    s, v = r.best
    assert v == pytest.approx(TwinSteerer(task, 0).objective(s))


def test_adaptive_kl_coefficient_rule():
    assert adapt_kl_coef(1.0, kl=0.02, target=0.01) == 2.0      # KL > 1.5 target: rises
    assert adapt_kl_coef(1.0, kl=0.005, target=0.01) == 0.5     # KL < target / 1.5: falls
    assert adapt_kl_coef(1.0, kl=0.01, target=0.01) == 1.0      # in between: kept
    with pytest.raises(TrainConfigError):
        TrainConfig(ppo_penalty="kl")


def test_adaptive_kl_training_logs_and_adapts_the_coefficient():
    cfg = TrainConfig(algo="ppo", ppo_penalty="adaptive_kl", kl_target=1e-6, kl_coef=1.0, total_steps=512,
                      n_envs=4, n_steps=32, hidden_sizes=(16,), seed=0)
    _, log = train(IdentityEnv(3, 8), cfg, progress=False)
    coefs = log.column("kl_coef")
    assert all(not math.isnan(c) for c in coefs)
    assert coefs[0] == 2.0 and coefs[-1] == 2.0 ** len(coefs)   # KL far above a tiny target: doubles
    _, clip_log = train(IdentityEnv(3, 8), TrainConfig(algo="ppo", total_steps=256, n_envs=4, n_steps=32,
                                                       hidden_sizes=(16,)), progress=False)
    assert all(math.isnan(c) for c in clip_log.column("kl_coef"))
