"""The speed shortcuts of the optimiser compute exactly what the plain formulation computes."""

from __future__ import annotations

import copy

import gymnasium as gym
import numpy as np
import pytest
import torch

from scagents.envs.toy import IdentityEnv, TargetMatchVecEnv
from scagents.policies import TrainConfig
from scagents.policies.networks import ActorCritic
from scagents.policies.rollout import RolloutBuffer, VecEnvRunner, as_vector_env
from scagents.policies.trpo_ppo import make_adam, old_distribution, ppo_update, trpo_update


def _rollout(continuous: bool, n_steps: int = 8):
    env = TargetMatchVecEnv(4, 5, 3, ep_length=4) if continuous else as_vector_env(IdentityEnv(3, ep_length=4), 4)
    torch.manual_seed(0)
    policy = ActorCritic(env.single_observation_space, env.single_action_space, hidden_sizes=(16,))
    act_shape = (policy.act_dim,) if continuous else ()
    buf = RolloutBuffer.allocate(n_steps, env.num_envs, policy.obs_dim, act_shape,
                                 torch.float32 if continuous else torch.long, dist_dim=policy.act_dim)
    runner = VecEnvRunner(env, policy, gamma=0.9, seed=0, generator=torch.Generator().manual_seed(0))
    runner.collect(buf)
    runner.finish(buf, 0.95)
    return policy, buf, runner


@pytest.mark.parametrize("continuous", [True, False])
def test_stored_rollout_distribution_equals_a_fresh_forward_pass(continuous):
    policy, buf, _ = _rollout(continuous)
    batch = buf.flat()
    assert batch["dist"].shape == (len(batch["obs"]), policy.act_dim)
    stored = old_distribution(policy, batch)
    fresh = old_distribution(policy, {k: v for k, v in batch.items() if k != "dist"})
    assert torch.allclose(stored[0], fresh[0], atol=1e-6)
    if continuous:
        assert torch.equal(stored[1], fresh[1])
        assert not stored[1].requires_grad
    else:
        assert stored[1] is None and fresh[1] is None


@pytest.mark.parametrize("update", ["ppo", "trpo"])
def test_update_with_stored_distribution_matches_update_with_forward_pass(update):
    policy, buf, _ = _rollout(True)
    batch = buf.flat()
    cfg = TrainConfig(algo=update, n_minibatches=2, ppo_epochs=2, vf_epochs=2)
    results = []
    for b in (batch, {k: v for k, v in batch.items() if k != "dist"}):
        pol = copy.deepcopy(policy)
        opt = make_adam(pol.parameters() if update == "ppo" else pol.value_parameters(), 1e-3)
        gen = torch.Generator().manual_seed(3)
        stats = (ppo_update if update == "ppo" else trpo_update)(pol, b, cfg, opt, gen)
        results.append((pol, stats))
    (p1, s1), (p2, s2) = results
    for a, b in zip(p1.parameters(), p2.parameters(), strict=True):
        assert torch.allclose(a, b, atol=1e-6)
    assert s1["policy_loss"] == pytest.approx(s2["policy_loss"], abs=1e-6)
    # the update really moved the policy
    assert any(not torch.equal(a, b) for a, b in zip(p1.parameters(), policy.parameters(), strict=True))


def test_fused_adam_takes_the_same_step_as_the_reference_adam():
    torch.manual_seed(0)
    ref = [torch.nn.Parameter(torch.randn(5, 3)), torch.nn.Parameter(torch.randn(3))]
    fast = [torch.nn.Parameter(p.detach().clone()) for p in ref]
    opt_ref = torch.optim.Adam(ref, lr=1e-2, eps=1e-5)
    opt_fast = make_adam(fast, 1e-2)
    assert opt_fast.defaults["lr"] == 1e-2 and opt_fast.defaults["eps"] == 1e-5
    for step in range(3):
        g = [torch.randn_like(p) * (step + 1) for p in ref]
        for p, q, gi in zip(ref, fast, g, strict=True):
            p.grad, q.grad = gi.clone(), gi.clone()
        opt_ref.step()
        opt_fast.step()
    for p, q in zip(ref, fast, strict=True):
        assert torch.allclose(p, q, atol=1e-6)


class _TruncatingVecEnv(TargetMatchVecEnv):
    """TargetMatchVecEnv whose episodes are truncated (not terminated), with final_obs as one array."""

    def __init__(self, as_objects: bool):
        super().__init__(3, 4, 2, ep_length=2)
        self.as_objects = as_objects

    def step(self, actions):
        final = self._x.copy()
        obs, rew, term, trunc, info = super().step(actions)
        if term.any():
            info = {"final_obs": np.array(list(final), dtype=object) if self.as_objects else final,
                    "_final_obs": term.copy()}
            term, trunc = np.zeros_like(term), term.copy()
        return obs, rew, term, trunc, info


def test_truncation_bootstrap_is_the_same_for_batched_and_per_env_final_observations():
    rewards = []
    for as_objects in (False, True):
        env = _TruncatingVecEnv(as_objects)
        torch.manual_seed(0)
        policy = ActorCritic(env.single_observation_space, env.single_action_space, hidden_sizes=(8,))
        buf = RolloutBuffer.allocate(4, 3, 4, (2,), torch.float32)
        VecEnvRunner(env, policy, gamma=0.9, seed=0, generator=torch.Generator().manual_seed(0)).collect(buf)
        rewards.append(buf.rewards.clone())
    assert torch.allclose(rewards[0], rewards[1])
    # the same run with terminations: identical rewards, except the truncation steps (t = 1, 3),
    # which carry the bootstrap γ V(final obs)
    env = TargetMatchVecEnv(3, 4, 2, ep_length=2)
    torch.manual_seed(0)
    policy = ActorCritic(env.single_observation_space, env.single_action_space, hidden_sizes=(8,))
    buf = RolloutBuffer.allocate(4, 3, 4, (2,), torch.float32)
    VecEnvRunner(env, policy, gamma=0.9, seed=0, generator=torch.Generator().manual_seed(0)).collect(buf)
    assert torch.allclose(buf.rewards[[0, 2]], rewards[0][[0, 2]])
    assert torch.all(buf.rewards[[1, 3]] != rewards[0][[1, 3]])


def test_discrete_buffer_stores_normalised_logits():
    policy, buf, _ = _rollout(False)
    probs = buf.dist.exp().sum(-1)
    assert torch.allclose(probs, torch.ones_like(probs), atol=1e-5)
    assert isinstance(policy.action_space, gym.spaces.Discrete)
