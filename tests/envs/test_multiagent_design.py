"""Tests of the PettingZoo modality env and the design environments."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from gymnasium.utils.env_checker import check_env
from pettingzoo.test import parallel_api_test, parallel_seed_test

from scagents.envs import (
    BatchDesignParallelEnv,
    DesignEnv,
    ModalityParallelEnv,
    ResponseTask,
    encode_perturbations,
    network_gene_embedding,
    twin_effect_table,
)
from scagents.errors import DataError, GoalError
from scagents.twin import load_model


@pytest.fixture(scope="module")
def task() -> ResponseTask:
    return ResponseTask.from_twin("th", ["IFNG", "TBX21", "GATA3", "STAT6 overexpression"],
                                  n_cells=32, n_points=2, n_steps=100, seed=0)


@pytest.fixture(scope="module")
def table() -> pd.DataFrame:
    cands = ["TBX21 overexpression", "GATA3 overexpression", "TBX21", "GATA3", "IFNG",
             "STAT1 overexpression", "IL4", "STAT6 overexpression"]
    return twin_effect_table("th", cands, goal="Th1", n_cells=64, n_steps=200, seed=0)


def test_modality_env_api_and_seed(task):
    parallel_api_test(ModalityParallelEnv(task), num_cycles=20)
    parallel_seed_test(lambda: ModalityParallelEnv(task, team_weight=0.3))


def test_modality_env_rewards(task):
    env = ModalityParallelEnv(task, team_weight=0.0)
    obs, _ = env.reset(seed=0, options={"perturbation": "GATA3", "cell": 3})
    assert env.agents == ["rna", "atac", "prot"]
    d_ctx = task.encoding_dim + 1
    for m in env.agents:
        assert obs[m].shape == (task.dims[m] + d_ctx,)
        np.testing.assert_allclose(obs[m][: task.dims[m]], task.states[m][3, 0])
    true = {m: task.deltas[m][task.index("GATA3"), 0] for m in env.agents}
    wrong = dict(true, prot=true["prot"] + 0.5)
    _, rew, term, _, _ = env.step(wrong)
    assert rew["rna"] == pytest.approx(0.0, abs=1e-7) and rew["atac"] == pytest.approx(0.0, abs=1e-7)
    assert rew["prot"] == pytest.approx(-0.25, rel=1e-5)
    assert not any(term.values())
    team = ModalityParallelEnv(task, team_weight=1.0)
    team.reset(seed=0, options={"perturbation": "GATA3", "cell": 3})
    _, rew_t, *_ = team.step(wrong)
    assert all(v == pytest.approx(-0.25 / 3, rel=1e-5) for v in rew_t.values())
    env.step(true)
    assert env.agents == []


def test_twin_effect_table_goals(table):
    eff = table["effect"]
    assert eff["TBX21 overexpression"] > 0.2     # forcing T-bet on pushes cells to Th1
    assert eff["GATA3 overexpression"] < 0       # GATA3 blocks Th1
    assert eff["TBX21"] <= 0
    assert (table["control"] == table["control"].iloc[0]).all()
    ifng = twin_effect_table("th", ["IFNG", "GATA3"], goal="gene:IFNG", n_cells=32, n_steps=100)
    assert (ifng["effect"] >= 0).all() and ifng.loc["IFNG", "effect"] > 0
    with pytest.raises(GoalError):
        twin_effect_table("th", ["IFNG"], goal="fate:Th17", n_cells=8, n_steps=10)


def test_design_env_reward_matches_table(table):
    net = load_model("th")
    feats = encode_perturbations(list(table.index), network_gene_embedding(net, k=6))
    env = DesignEnv(list(table.index), effects=table["effect"], features=feats, budget=4,
                    repeat_penalty=0.5)
    check_env(env, skip_render_check=True)
    obs, _ = env.reset(seed=0)
    assert obs.shape == (len(table) * feats.shape[1] + len(table) + 1,)
    for a in (0, 3, 0):
        obs, r, term, _, info = env.step(a)
        if info["repeat"]:
            assert r == -0.5
        else:
            assert r == pytest.approx(table["effect"].iloc[a])
    assert obs[len(table) * feats.shape[1] + 3] == 1.0      # tested mask
    _, _, term, _, _ = env.step(5)
    assert term
    with pytest.raises(DataError):
        DesignEnv(list(table.index), effects=[1.0, 2.0])


def test_design_env_effect_fn():
    calls = []

    def fn(idx, rng):
        calls.append(idx.copy())
        return idx.astype(float) * 10 + rng.normal(0, 0.0, idx.shape)

    env = DesignEnv(["A", "B", "C"], effect_fn=fn, budget=2)
    env.reset(seed=0)
    _, r, *_ = env.step(2)
    assert r == 20.0 and calls[-1].tolist() == [2]


def test_batch_design_api_seed_and_duplicates(table):
    make = lambda: BatchDesignParallelEnv(list(table.index), effects=table["effect"],  # noqa: E731
                                          batch_size=3, n_rounds=2, duplicate_penalty=0.7,
                                          repeat_penalty=0.4)
    parallel_api_test(make(), num_cycles=10)
    parallel_seed_test(make)
    env = make()
    obs, _ = env.reset(seed=0)
    assert env.agents == ["slot_0", "slot_1", "slot_2"]
    assert not np.array_equal(obs["slot_0"], obs["slot_1"])  # slot one-hot differs
    e = table["effect"].to_numpy()
    _, rew, term, _, info = env.step({"slot_0": 0, "slot_1": 0, "slot_2": 4})
    assert rew["slot_0"] == pytest.approx(e[0] - 0.7) and rew["slot_1"] == pytest.approx(e[0] - 0.7)
    assert rew["slot_2"] == pytest.approx(e[4]) and info["slot_0"]["duplicate"]
    assert not any(term.values())
    _, rew, term, _, info = env.step({"slot_0": 4, "slot_1": 1, "slot_2": 2})
    assert rew["slot_0"] == pytest.approx(-0.4) and info["slot_0"]["repeat"]
    assert rew["slot_1"] == pytest.approx(e[1]) and all(term.values()) and env.agents == []
