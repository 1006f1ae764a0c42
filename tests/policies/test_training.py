"""End-to-end tests of train(): learning on known-easy tasks, logs, seeding, save/load, errors."""

from __future__ import annotations

import csv
import json
import math

import gymnasium as gym
import numpy as np
import pytest
import torch
from gymnasium.vector import AutoresetMode, SyncVectorEnv

from scagents.envs.toy import IdentityEnv, TargetMatchEnv, TargetMatchVecEnv
from scagents.policies import (
    LOG_COLUMNS,
    SpaceError,
    TrainConfig,
    TrainConfigError,
    load,
    save,
    train,
)
from scagents.policies.networks import ActorCritic
from scagents.policies.rollout import RolloutBuffer, VecEnvRunner

SMALL = {"hidden_sizes": (64, 64), "lr": 1e-3, "n_steps": 64}


def _target_match_score(policy, n: int = 2000) -> float:
    """Mean per-step reward of the deterministic policy on fresh TargetMatchEnv(4, 2) observations."""
    x = np.random.default_rng(123).uniform(-1, 1, (n, 4)).astype(np.float32)
    return -float(np.mean((policy.predict(x) - x[:, :2]) ** 2))


@pytest.mark.parametrize("algo", ["ppo", "trpo", "trpo_ppo"])
def test_continuous_target_matching_is_learned(algo):
    policy, log = train(TargetMatchVecEnv(8, 4, 2, ep_length=16),
                        TrainConfig(algo=algo, total_steps=8192, **SMALL), progress=False)
    # uniform random actions score -2/3 per step, always acting 0 scores -1/3
    assert _target_match_score(policy) > -0.2
    returns = [r for r in log.column("episodic_return_mean") if not math.isnan(r)]
    assert np.mean(returns[-3:]) > np.mean(returns[:2]) + 2.0
    phases = log.column("phase")
    expected = {"ppo": {"ppo"}, "trpo": {"trpo"}, "trpo_ppo": {"trpo", "ppo"}}[algo]
    assert set(phases) == expected


@pytest.mark.parametrize("algo", ["ppo", "trpo", "trpo_ppo"])
def test_discrete_identity_is_learned_from_a_plain_env(algo):
    policy, log = train(IdentityEnv(4, ep_length=16),
                        TrainConfig(algo=algo, total_steps=4096, n_envs=4, **SMALL), progress=False)
    accuracy = np.mean(policy.predict(np.eye(4, dtype=np.float32)) == np.arange(4))
    assert accuracy == 1.0  # random: 0.25
    assert log.rows[-1]["episodic_return_mean"] > 0.6 * 16  # random policy: 16 / 4 = 4


def test_trpo_ppo_schedule_splits_updates_at_trpo_fraction():
    cfg = TrainConfig(algo="trpo_ppo", total_steps=10 * 4 * 16, n_envs=4, n_steps=16, trpo_fraction=0.3,
                      hidden_sizes=(16,))
    _, log = train(IdentityEnv(3), cfg, progress=False)
    assert log.column("phase") == ["trpo"] * 3 + ["ppo"] * 7
    trpo_rows = [r for r in log.rows if r["phase"] == "trpo"]
    ppo_rows = [r for r in log.rows if r["phase"] == "ppo"]
    assert all(r["mean_kl"] <= cfg.delta * (1 + 1e-6) for r in trpo_rows)
    assert all(isinstance(r["linesearch_accepted"], bool) for r in trpo_rows)
    assert all(math.isnan(r["trpo_step_size"]) and not math.isnan(r["approx_kl"]) for r in ppo_rows)
    assert [r["step"] for r in log.rows] == [64 * (i + 1) for i in range(10)]


def test_same_seed_gives_identical_logs_and_weights():
    cfg = TrainConfig(algo="trpo_ppo", total_steps=1024, n_envs=4, n_steps=32, hidden_sizes=(32,))
    runs = [train(TargetMatchEnv(4, 2), cfg, progress=False) for _ in range(2)]
    other = train(TargetMatchEnv(4, 2), TrainConfig(**{**cfg.__dict__, "seed": 1}), progress=False)
    skip = {"sps", "time_s"}
    strip = lambda log: [{k: v for k, v in r.items() if k not in skip} for r in log.rows]  # noqa: E731
    assert strip(runs[0][1]) == strip(runs[1][1])
    for a, b in zip(runs[0][0].state_dict().values(), runs[1][0].state_dict().values(), strict=True):
        assert torch.equal(a, b)
    assert strip(other[1]) != strip(runs[0][1])


@pytest.mark.parametrize("suffix", [".csv", ".json"])
def test_training_log_file_contents(tmp_path, suffix):
    path = tmp_path / "logs" / f"train{suffix}"
    cfg = TrainConfig(algo="trpo_ppo", total_steps=4 * 4 * 16, n_envs=4, n_steps=16, hidden_sizes=(16,))
    _, log = train(IdentityEnv(3, ep_length=8), cfg, progress=False, log_path=path)
    if suffix == ".csv":
        with path.open() as fh:
            rows = list(csv.DictReader(fh))
        assert list(rows[0]) == list(LOG_COLUMNS)
        assert [r["phase"] for r in rows] == ["trpo", "trpo", "ppo", "ppo"]
        assert [int(r["step"]) for r in rows] == [64, 128, 192, 256]
        assert float(rows[0]["episodic_return_mean"]) == pytest.approx(log.rows[0]["episodic_return_mean"])
    else:
        rows = json.loads(path.read_text())
        assert len(rows) == 4 and set(rows[0]) == set(LOG_COLUMNS)
        assert rows[0]["trpo_step_size"] > 0 and rows[3]["trpo_step_size"] is None
        assert all(r["sps"] > 0 and r["episodes"] == 8 for r in rows)  # 4 envs x 16 steps / 8 per episode
    with pytest.raises(ValueError, match="csv or .json"):
        log.write(tmp_path / "train.txt")


def test_callback_receives_rows_and_can_stop_training():
    seen = []

    def cb(row, policy):
        seen.append(row["update"])
        assert isinstance(policy, ActorCritic)
        return row["update"] < 2

    _, log = train(IdentityEnv(3), TrainConfig(algo="ppo", total_steps=10_000, n_envs=2, n_steps=16,
                                               hidden_sizes=(16,)), progress=False, callback=cb)
    assert seen == [0, 1, 2] and len(log) == 3


def test_save_load_round_trip_gives_identical_predictions(tmp_path):
    cfg = TrainConfig(algo="trpo", total_steps=512, n_envs=4, n_steps=32, hidden_sizes=(32, 32))
    policy, _ = train(TargetMatchEnv(4, 2), cfg, progress=False)
    path = save(policy, tmp_path / "agent.pt")
    loaded = load(path)
    obs = np.random.default_rng(0).uniform(-1, 1, (50, 4)).astype(np.float32)
    assert np.array_equal(policy.predict(obs), loaded.predict(obs))
    assert np.array_equal(policy.predict(obs[0]), loaded.predict(obs[0]))
    assert loaded.predict(obs[0]).shape == (2,)
    assert loaded.train_config == cfg
    assert loaded.action_space == policy.action_space and loaded.observation_space == policy.observation_space
    with pytest.raises(FileNotFoundError):
        load(tmp_path / "missing.pt")


def test_modality_branches_and_dict_observations(tmp_path):
    slices = {"rna": slice(0, 2), "atac": slice(2, 4)}
    policy, _ = train(TargetMatchVecEnv(4, 4, 2), TrainConfig(algo="ppo", total_steps=512, n_steps=32,
                                                              hidden_sizes=(32,)),
                      modality_slices=slices, progress=False)
    assert set(policy.actor_body.branches) == {"rna", "atac"}
    assert isinstance(policy.actor_body.branches["rna"][0], torch.nn.Linear)
    assert policy.actor_body.branches["rna"][0].in_features == 2
    loaded = load(save(policy, tmp_path / "m.pt"))
    obs = np.random.default_rng(0).uniform(-1, 1, (5, 4)).astype(np.float32)
    assert np.array_equal(policy.predict(obs), loaded.predict(obs))
    assert loaded.slices == slices

    class DictEnv(IdentityEnv):
        def __init__(self):
            super().__init__(4, 8)
            self.observation_space = gym.spaces.Dict({
                "rna": gym.spaces.Box(0, 1, (2,), np.float32), "prot": gym.spaces.Box(0, 1, (2,), np.float32)})

        def _obs(self):
            flat = super()._obs()
            return {"rna": flat[:2], "prot": flat[2:]}

    dpolicy, _ = train(DictEnv(), TrainConfig(algo="ppo", total_steps=256, n_envs=2, n_steps=32,
                                              hidden_sizes=(16,)), progress=False)
    assert set(dpolicy.slices) == {"rna", "prot"}
    action = dpolicy.predict({"rna": np.array([1, 0], np.float32), "prot": np.zeros(2, np.float32)})
    assert action.shape == () and 0 <= int(action) < 4


def test_next_step_autoreset_masks_reset_steps_and_bootstraps_truncation():
    env = SyncVectorEnv([lambda: IdentityEnv(4, ep_length=3) for _ in range(2)])  # gymnasium's default: NEXT_STEP
    assert env.metadata["autoreset_mode"] == AutoresetMode.NEXT_STEP
    torch.manual_seed(0)
    policy = ActorCritic(env.single_observation_space, env.single_action_space, hidden_sizes=(8,))
    buf = RolloutBuffer.allocate(10, 2, 4, (), torch.long)
    gamma = 0.9
    runner = VecEnvRunner(env, policy, gamma=gamma, seed=0, generator=torch.Generator().manual_seed(0))
    runner.collect(buf)
    # steps 0-2 are episode 1 (truncated at t=2), t=3 is the ignored reset step, 4-6 episode 2, t=7 reset ...
    assert buf.valid[:, 0].tolist() == [1, 1, 1, 0, 1, 1, 1, 0, 1, 1]
    assert buf.dones[:, 0].tolist() == [0, 0, 1, 0, 0, 0, 1, 0, 0, 0]
    with torch.no_grad():
        final_value = policy.value(buf.obs[3])  # NEXT_STEP: the obs at the reset step is the final obs
    raw = buf.rewards[2] - gamma * final_value
    assert torch.allclose(raw, raw.round(), atol=1e-5) and set(raw.round().tolist()) <= {0.0, 1.0}
    assert len(buf.flat()["obs"]) == 16
    # training through the NEXT_STEP path learns too
    trained, _ = train(SyncVectorEnv([lambda: IdentityEnv(4, ep_length=16) for _ in range(4)]),
                       TrainConfig(algo="trpo", total_steps=4096, **SMALL), progress=False)
    assert np.mean(trained.predict(np.eye(4, dtype=np.float32)) == np.arange(4)) == 1.0


def test_clear_errors_for_bad_spaces_and_config():
    with pytest.raises(SpaceError, match="not supported"):
        ActorCritic(gym.spaces.Box(-1, 1, (3,)), gym.spaces.MultiDiscrete([2, 2]))
    with pytest.raises(SpaceError, match="one-dimensional"):
        ActorCritic(gym.spaces.Box(-1, 1, (3,)), gym.spaces.Box(-1, 1, (2, 2)))
    with pytest.raises(SpaceError, match="not supported"):
        ActorCritic(gym.spaces.Discrete(3), gym.spaces.Discrete(2))
    with pytest.raises(SpaceError, match="do not cover"):
        ActorCritic(gym.spaces.Box(-1, 1, (5,)), gym.spaces.Discrete(2), modality_slices={"a": slice(0, 3)})
    with pytest.raises(SpaceError, match="overlap"):
        ActorCritic(gym.spaces.Box(-1, 1, (4,)), gym.spaces.Discrete(2),
                    modality_slices={"a": slice(0, 3), "b": slice(2, 4)})
    with pytest.raises(SpaceError, match="outside"):
        ActorCritic(gym.spaces.Box(-1, 1, (4,)), gym.spaces.Discrete(2), modality_slices={"a": slice(0, 9)})
    with pytest.raises(TrainConfigError, match="algo"):
        TrainConfig(algo="sac")
    with pytest.raises(TrainConfigError, match="delta"):
        TrainConfig(delta=0)
    with pytest.raises(TrainConfigError, match="trpo_fraction"):
        TrainConfig(trpo_fraction=1.5)
    with pytest.raises(SpaceError, match="VectorEnv"):
        train(42, TrainConfig(), progress=False)


def test_warm_start_continues_from_given_weights(tmp_path):
    env = TargetMatchVecEnv(8, 4, 2, ep_length=16)
    cfg = TrainConfig(algo="ppo", total_steps=8192, seed=0, **SMALL)
    trained, _ = train(env, cfg, progress=False)
    # one update at a negligible learning rate leaves the weights as given
    frozen = TrainConfig(algo="ppo", total_steps=1, seed=5, **{**SMALL, "lr": 1e-12})
    for init in (trained, trained.state_dict(), save(trained, tmp_path / "agent.pt")):
        copy, _ = train(env, frozen, progress=False, init_policy=init)
        for (name, a), b in zip(trained.state_dict().items(), copy.state_dict().values(), strict=True):
            assert torch.allclose(a, b, atol=1e-8), name
    # a short warm-started run is already good; the same budget from scratch is not
    short = TrainConfig(algo="ppo", total_steps=512, seed=1, **SMALL)
    warm, _ = train(env, short, progress=False, init_policy=trained)
    cold, _ = train(env, short, progress=False)
    assert _target_match_score(warm) > -0.15 > -0.22 > _target_match_score(cold)
    with pytest.raises(TrainConfigError, match="does not fit"):
        train(env, TrainConfig(algo="ppo", total_steps=64, n_steps=8, hidden_sizes=(16,)), progress=False,
              init_policy=trained)
    with pytest.raises(TrainConfigError, match="init_policy must be"):
        train(env, short, progress=False, init_policy=42)


def test_factored_rewards_learn_a_wide_action_faster_than_one_scalar_reward():
    """With 16 action dimensions one scalar reward hides which dimension was good; the factored
    policy gradient (one advantage per dimension) learns the same task much faster."""
    def score(policy):
        x = np.random.default_rng(7).uniform(-1, 1, (2000, 16)).astype(np.float32)
        return float(np.mean((policy.predict(x) - x) ** 2))

    common = dict(algo="ppo", total_steps=16 * 64 * 8, n_envs=16, n_steps=64, hidden_sizes=(64, 64), lr=1e-3,
                  init_log_std=-1.0, gamma=0.0, gae_lambda=0.0, critic_init_gain=0.01, seed=0)
    factored, log = train(TargetMatchVecEnv(16, 16, 16, ep_length=8), TrainConfig(reward_components=True, **common),
                          progress=False)
    scalar, _ = train(TargetMatchVecEnv(16, 16, 16, ep_length=8), TrainConfig(**common), progress=False)
    assert factored.value_dim == 16 and scalar.value_dim == 1
    # acting 0 scores 1/3; measured 0.009 (factored) vs 0.12 (scalar) at this budget
    assert score(factored) < 0.03 and score(scalar) > 0.08
    assert all(r["skipped_minibatches"] == 0 for r in log.rows)


def test_factored_rewards_need_components_and_box_actions(tmp_path):
    cfg = TrainConfig(algo="ppo", total_steps=64, n_envs=4, n_steps=16, reward_components=True)
    with pytest.raises(SpaceError, match="reward_components"):
        train(TargetMatchEnv(4, 2), cfg, progress=False)    # the single toy env reports no split
    with pytest.raises(TrainConfigError, match="Box"):
        train(IdentityEnv(4), cfg, progress=False)
    # save / load keeps the per-dimension value head
    policy, _ = train(TargetMatchVecEnv(4, 4, 2, ep_length=4), cfg, progress=False)
    loaded = load(save(policy, tmp_path / "f.pt"))
    obs = torch.zeros(3, 4)
    assert loaded.value(obs).shape == (3, 2)
    assert torch.equal(loaded.value(obs), policy.value(obs))


def test_ppo_guards_skip_non_finite_minibatches_and_stop_at_target_kl():
    from scagents.policies.trpo_ppo import ppo_update

    env = TargetMatchVecEnv(8, 4, 2, ep_length=4)
    cfg = TrainConfig(algo="ppo", total_steps=256, n_envs=8, n_steps=32, ppo_epochs=4, n_minibatches=4,
                      hidden_sizes=(16,))
    policy = ActorCritic(env.single_observation_space, env.single_action_space, hidden_sizes=(16,))
    gen = torch.Generator().manual_seed(0)
    buf = RolloutBuffer.allocate(32, 8, 4, (2,), torch.float32, dist_dim=2)
    runner = VecEnvRunner(env, policy, gamma=0.99, seed=0, generator=gen)
    runner.collect(buf)
    runner.finish(buf, 0.95)
    batch = buf.flat()
    batch["advantages"][0] = float("nan")         # poisons the minibatch that holds this row
    opt = torch.optim.Adam(policy.parameters(), lr=1e-3)
    stats = ppo_update(policy, batch, cfg, opt, gen)
    assert stats["skipped_minibatches"] == 4      # one poisoned minibatch per epoch
    assert all(torch.isfinite(p).all() for p in policy.parameters())
    batch["advantages"] = torch.nan_to_num(batch["advantages"])
    tight = TrainConfig(**{**cfg.__dict__, "target_kl": 1e-9, "lr": 1e-2})
    stats = ppo_update(policy, batch, tight, torch.optim.Adam(policy.parameters(), lr=1e-2), gen)
    assert stats["ppo_epochs_done"] == 1 and stats["skipped_minibatches"] == 0
