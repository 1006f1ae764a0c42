"""Sharded vector envs: in-process shards and Ray actors give the trajectories of the batched env."""

from __future__ import annotations

from functools import partial

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.vector import AutoresetMode, SyncVectorEnv

from scagents.envs.ray_vec import RayVectorEnv, ShardedVectorEnv, ShardError, _merge_infos
from scagents.envs.response import PerturbationResponseVecEnv, ResponseTask
from scagents.envs.toy import TargetMatchEnv, TargetMatchVecEnv


@pytest.fixture(scope="module")
def task() -> ResponseTask:
    return ResponseTask.from_twin("th", ["STAT1", "TBET", "GATA3", "IL4"], n_cells=32, n_points=3,
                                  n_steps=150, seed=0)


def _sync(n: int) -> SyncVectorEnv:
    return SyncVectorEnv([partial(TargetMatchEnv, obs_dim=4, act_dim=2, ep_length=3)] * n,
                         autoreset_mode=AutoresetMode.SAME_STEP)


def rollout(env, n_steps: int, seed: int = 0) -> dict[str, list]:
    """Reset with ``seed`` and step with seeded random actions; everything the env returned."""
    rng = np.random.default_rng(seed + 1)
    obs, info = env.reset(seed=seed)
    out = {"obs": [obs], "rew": [], "term": [], "final": [], "pert": [info.get("perturbation_index")]}
    low, high = env.action_space.low, env.action_space.high
    for _ in range(n_steps):
        act = rng.uniform(np.maximum(low, -1), np.minimum(high, 1)).astype(np.float32)
        obs, rew, term, trunc, info = env.step(act)
        out["obs"].append(obs)
        out["rew"].append(rew)
        out["term"].append(term | trunc)
        fin = info.get("final_obs")
        out["final"].append(None if fin is None else np.stack(list(fin)).astype(np.float64))
    return out


def assert_same(a: dict, b: dict) -> None:
    for key in a:
        assert len(a[key]) == len(b[key])
        for x, y in zip(a[key], b[key], strict=True):
            if x is None or y is None:
                assert x is None and y is None, key
            else:
                np.testing.assert_array_equal(x, y, err_msg=key)


# ----------------------------------------------------------------------------- in-process shards
def test_one_shard_equals_the_batched_env(task):
    plain = PerturbationResponseVecEnv(task, num_envs=12)
    sharded = ShardedVectorEnv(partial(PerturbationResponseVecEnv, task, num_envs=12), 1)
    assert sharded.num_envs == 12 and sharded.modality_slices == plain.modality_slices
    assert sharded.metadata["autoreset_mode"] == AutoresetMode.SAME_STEP
    a, b = rollout(plain, 7), rollout(sharded, 7)
    assert sum(f is not None for f in a["final"]) == 2  # two episode ends (T = 3) were crossed
    assert_same(a, b)


def test_shards_of_sync_envs_equal_the_unsharded_env():
    # each copy is seeded seed + i, so 3 shards of 2 copies are the 6-copy SyncVectorEnv exactly
    whole = rollout(_sync(6), 8, seed=5)
    sharded = ShardedVectorEnv(partial(_sync, 2), 3)
    assert sharded.shard_sizes == [2, 2, 2] and sharded.observation_space.shape == (6, 4)
    split = rollout(sharded, 8, seed=5)
    assert_same(whole, split)
    # and the shards really differ from one another (offset seeds, not copies of shard 0)
    assert not np.array_equal(split["obs"][0][:2], split["obs"][0][2:4])


def test_uneven_shards_and_final_obs_mask():
    sharded = ShardedVectorEnv([partial(_sync, 1), partial(_sync, 3)], 2)
    assert sharded.num_envs == 4 and sharded.shard_sizes == [1, 3]
    sharded.reset(seed=0)
    for _ in range(3):
        *_, info = sharded.step(np.zeros((4, 2), np.float32))
    assert info["_final_obs"].tolist() == [True] * 4 and len(info["final_obs"]) == 4


def test_merge_infos_fills_missing_keys_with_a_false_mask():
    merged = _merge_infos([{"a": np.array([1.0, 2.0])}, {"b": np.array([3, 4, 5]), "_b": np.array([1, 0, 1], bool)}],
                          [2, 3])
    np.testing.assert_array_equal(merged["a"], [1.0, 2.0, 0.0, 0.0, 0.0])
    assert merged["_a"].tolist() == [True, True, False, False, False]
    np.testing.assert_array_equal(merged["b"], [0, 0, 3, 4, 5])
    assert merged["_b"].tolist() == [False, False, True, False, True]


def test_shard_errors():
    with pytest.raises(ShardError, match="at least 1"):
        ShardedVectorEnv(partial(_sync, 2), 0)
    with pytest.raises(ShardError, match="list of 3 functions"):
        ShardedVectorEnv([partial(_sync, 2)] * 2, 3)
    with pytest.raises(ShardError, match="different spaces"):
        ShardedVectorEnv([partial(TargetMatchVecEnv, 2, 4, 2), partial(TargetMatchVecEnv, 2, 5, 2)], 2)
    with pytest.raises(ShardError, match="SyncVectorEnv"):
        ShardedVectorEnv(lambda: gym.make("CartPole-v1"), 1)
    with pytest.raises(ShardError, match="one seed per environment"):
        ShardedVectorEnv(partial(_sync, 2), 2).reset(seed=[1, 2, 3])


# ----------------------------------------------------------------------------- Ray actors
def _train_log(env) -> tuple[dict[str, list], np.ndarray]:
    from scagents.policies import TrainConfig, train

    cfg = TrainConfig(algo="trpo_ppo", total_steps=16 * 6 * 4, n_steps=6, hidden_sizes=(16,), branch_sizes=(8,),
                      seed=3, n_minibatches=2, ppo_epochs=2, vf_epochs=2, cg_iters=4)
    policy, log = train(env, cfg, progress=False)
    cols = [c for c in log.rows[0] if c not in ("sps", "time_s")]
    params = np.concatenate([p.detach().numpy().ravel() for p in policy.parameters()])
    return {c: [row[c] for row in log.rows] for c in cols}, params


@pytest.mark.slow
def test_ray_actors_give_the_in_process_trajectories_and_training_log(ray_local, task):
    make = partial(PerturbationResponseVecEnv, task, num_envs=8)
    remote = RayVectorEnv(make, 2)
    local = ShardedVectorEnv(make, 2)
    try:
        assert remote.num_envs == 16 and remote.modality_slices == local.modality_slices
        a, b = rollout(local, 7, seed=11), rollout(remote, 7, seed=11)
        assert_same(a, b)
        assert not np.array_equal(a["rew"][0][:8], a["rew"][0][8:])  # the two shards differ
        log_local, params_local = _train_log(local)
        log_remote, params_remote = _train_log(remote)
        assert len(log_local["update"]) == 4
        assert log_local == log_remote
        np.testing.assert_array_equal(params_local, params_remote)
    finally:
        remote.close()
    assert remote._shards == []
    # one actor = the batched env itself
    single = RayVectorEnv(partial(PerturbationResponseVecEnv, task, num_envs=16), 1)
    try:
        assert_same(rollout(PerturbationResponseVecEnv(task, num_envs=16), 4, seed=2), rollout(single, 4, seed=2))
    finally:
        single.close()


def test_ray_refuses_more_shards_than_the_instance_can_hold(ray_local, task, monkeypatch):
    """4 shards x 1 CPU on a 2-CPU instance: refused before any actor starts (they would wait forever)."""
    def no_actors(self, fns):
        raise AssertionError("actors were started")

    make = partial(PerturbationResponseVecEnv, task, num_envs=4)
    with monkeypatch.context() as m:
        m.setattr(RayVectorEnv, "_start", no_actors)
        with pytest.raises(ShardError, match=r"cpus_per_shard=0\.5"):
            RayVectorEnv(make, 4)
    env = RayVectorEnv(make, 4, cpus_per_shard=0.5)  # fits: 4 x 0.5 = 2 CPUs
    try:
        assert env.num_envs == 16
    finally:
        env.close()
