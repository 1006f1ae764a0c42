"""Tests of the fate-steering environments on the twin."""

from __future__ import annotations

import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env
from pettingzoo.test import parallel_api_test

from scagents.envs.steering import (
    SteeringEnv,
    SteeringParallelEnv,
    SteeringTask,
    TwinSteerer,
    canonical,
    enumerate_schedules,
)
from scagents.errors import GoalError
from scagents.perturbation import Perturbation


@pytest.fixture(scope="module")
def task() -> SteeringTask:
    cands = [Perturbation("Cebpa", kind="overexpression"), Perturbation("Gata2"),
             Perturbation("EKLF", kind="overexpression"), Perturbation("Fli1", kind="knockdown", strength=0.8)]
    return SteeringTask("krumsiek11", "granulocyte", candidates=cands, n_cells=24, n_steps=60)


def test_checkers(task):
    check_env(SteeringEnv(task, seed=0), skip_render_check=True)
    check_env(SteeringEnv(task, seed=None), skip_render_check=True)
    parallel_api_test(SteeringParallelEnv(task, seed=0), num_cycles=5)


def test_episode_return_is_schedule_objective_and_deterministic(task):
    schedule = (2, 0, 1)
    returns = []
    for _ in range(2):
        env = SteeringEnv(task, seed=3)
        obs, _ = env.reset(seed=0)
        total, trace = 0.0, [obs]
        for a in schedule:
            obs, r, term, trunc, info = env.step(a)
            total += r
            trace.append(obs)
        assert term and not trunc
        returns.append((total, np.stack(trace)))
    assert returns[0][0] == returns[1][0]
    np.testing.assert_array_equal(returns[0][1], returns[1][1])
    # same as a fresh steerer (no cache) for the same population seed
    fresh = TwinSteerer(task, 3, cache=False)
    assert fresh.objective(schedule) == pytest.approx(returns[0][0])
    assert info["objective"] == pytest.approx(returns[0][0])
    # another population seed gives another population
    assert not np.array_equal(TwinSteerer(task, 4).x0, fresh.x0)


def test_mean_path_runs_from_the_start_to_the_final_states(task):
    steerer = TwinSteerer(task, 2, cache=False)
    times, means = steerer.mean_path((1, 0, 0))
    assert times[0] == 0.0 and times[-1] == pytest.approx(1.0) and np.all(np.diff(times) > 0)
    assert means.shape == (len(times), steerer.x0.shape[1])
    np.testing.assert_allclose(means[0], steerer.x0.mean(0), rtol=1e-6)
    np.testing.assert_allclose(means[-1], steerer.final_states((1, 0, 0)).mean(0), rtol=1e-5, atol=1e-6)
    # a different schedule takes the population elsewhere
    assert not np.allclose(means[-1], steerer.mean_path((0, 0, 0))[1][-1])


def test_budget_costs_and_space(task):
    env = SteeringEnv(task, seed=0)
    env.reset()
    r1 = env.step(1)[1]
    assert r1 == pytest.approx(-task.cost)
    env.step(3)
    _, _, done, _, info = env.step(2)   # third intervention: over the budget of 2, ignored
    assert done and info["over_budget"] and info["applied"] == "none"
    assert canonical((1, 3, 2), 2) == (1, 3, 0)
    space = enumerate_schedules(task)
    k = len(task.candidates)
    assert len(space) == 1 + 3 * k + 3 * k * k and len(set(space)) == len(space)
    # the intervention changes the outcome: Cebpa on from the start makes more granulocytes
    st = TwinSteerer(task, 0)
    assert st.objective((1, 0, 0)) > st.objective((0, 0, 0))
    times, fr = st.trajectory((1, 0, 0), record_every=10)
    assert fr.shape == (len(times), len(task.fate_names)) and np.allclose(fr.sum(1), 1.0)
    assert times[-1] == pytest.approx(1.0)


def test_unknown_fate_lists_the_model_fates():
    with pytest.raises(GoalError, match="erythroid, megakaryocyte"):
        SteeringTask("krumsiek11", "Th1")


def test_batched_prefixes_equal_one_at_a_time():
    cands = [Perturbation("GATA3", kind="knockdown", strength=0.6), Perturbation("TCR", kind="knockdown", strength=0.5),
             Perturbation("TBX21", kind="overexpression"), Perturbation("GATA3")]
    task = SteeringTask("th", "Th1", start_fate="Th2", candidates=cands, n_cells=12, n_steps=30)
    one, batched = TwinSteerer(task, 1), TwinSteerer(task, 1)
    space = enumerate_schedules(task)
    batched.prefetch(space, batch=5)
    for s in space:
        np.testing.assert_array_equal(one.state_after(s), batched.state_after(s))
