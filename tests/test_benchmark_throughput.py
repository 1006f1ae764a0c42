"""The throughput benchmark's network records and the report sentence built from them (benchmarks/throughput.py)."""

from __future__ import annotations

import gymnasium as gym
import numpy as np

from tests.conftest import load_benchmark


def _policy(slices, value_dim=1):
    from scagents.policies.networks import ActorCritic

    obs = gym.spaces.Box(-np.inf, np.inf, (6,), np.float32)
    act = gym.spaces.Box(-1.0, 1.0, (3,), np.float32)
    return ActorCritic(obs, act, modality_slices=slices, hidden_sizes=(8, 8), branch_sizes=(4,), value_dim=value_dim)


def test_record_of_one_block_is_a_plain_mlp():
    bench = load_benchmark("throughput")
    pol = _policy({"obs": slice(0, 6)}, value_dim=3)
    rec = bench.our_network_record(pol)
    assert rec["actor"] == "6→8→8→3" and rec["critic"] == "6→8→8→3"
    assert rec["modality_branches"] == 0 and rec["value_outputs"] == 3 and rec["activations"] == ["Tanh"]
    assert rec["params"] == sum(p.numel() for p in pol.parameters())


def test_record_with_branches_lists_the_layers():
    bench = load_benchmark("throughput")
    pol = _policy({"a": slice(0, 2), "b": slice(2, 6)})
    rec = bench.our_network_record(pol)
    assert rec["modality_branches"] == 2
    assert rec["actor"] == "2→4, 4→4, 8→8, 8→8, 8→3"  # two branches, then the trunk and the head


def test_sentence_groups_rows_by_network_and_says_when_missing():
    bench = load_benchmark("throughput")
    one = bench.our_network_record(_policy({"obs": slice(0, 6)}))
    per_gene = bench.our_network_record(_policy({"obs": slice(0, 6)}, value_dim=3))
    text = bench.networks_text({"x": {"network": one}, "y": {"network": one}, "z": {"network": per_gene}})
    assert "x, y: actor 6→8→8→3, critic 6→8→8→1, tanh" in text
    assert "z: actor 6→8→8→3, critic 6→8→8→3 (one value per reward component)" in text
    assert "each run trained" in text
    assert "not recorded" in bench.networks_text({"x": {"network": one}, "y": {}})


def test_sb3_record_matches_ours_for_the_same_sizes():
    import pytest

    pytest.importorskip("stable_baselines3", reason="stable-baselines3 is a bench extra (pip install -e '.[bench]')")
    import torch
    from stable_baselines3 import PPO

    bench = load_benchmark("throughput")

    class Env(gym.Env):
        observation_space = gym.spaces.Box(-np.inf, np.inf, (6,), np.float32)
        action_space = gym.spaces.Box(-1.0, 1.0, (3,), np.float32)

        def reset(self, *, seed=None, options=None):
            return np.zeros(6, np.float32), {}

        def step(self, action):
            return np.zeros(6, np.float32), 0.0, True, False, {}

    model = PPO("MlpPolicy", Env(), n_steps=8, batch_size=8, device="cpu",
                policy_kwargs={"net_arch": {"pi": [8, 8], "vf": [8, 8]}, "activation_fn": torch.nn.Tanh})
    rec, ours = bench.sb3_network_record(model), bench.our_network_record(_policy({"obs": slice(0, 6)}))
    assert {k: rec[k] for k in ("actor", "critic", "activations", "params")} == \
        {k: ours[k] for k in ("actor", "critic", "activations", "params")}
