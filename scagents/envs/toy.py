"""Known-easy toy environments for testing and benchmarking the policy optimisers.

* :class:`IdentityEnv` — observe a one-hot state, reward 1 for choosing the same index
  (Stable-Baselines3's ``IdentityEnv`` with a one-hot ``Box`` observation).
* :class:`TargetMatchEnv` — observe ``x ~ U(-1, 1)^d``, reward ``-mean((a - x[:k])²)``.
* :class:`TargetMatchVecEnv` — the same task for ``num_envs`` copies stepped in one NumPy call; a
  :class:`gymnasium.vector.VectorEnv` with ``SAME_STEP`` autoreset, used to measure throughput.

The optimal policy scores 1 (identity) or 0 (target matching) per step; a uniformly random policy
scores ``1/n`` and ``-2/3`` per step.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium.vector import AutoresetMode, VectorEnv
from gymnasium.vector.utils import batch_space

__all__ = ["IdentityEnv", "TargetMatchEnv", "TargetMatchVecEnv"]


class IdentityEnv(gym.Env):
    """Discrete identity task: the action should equal the index of the one-hot observation.

    Parameters
    ----------
    n
        Number of states and actions.
    ep_length
        Steps per episode (episodes end by truncation).
    """

    metadata: dict[str, Any] = {"render_modes": []}

    def __init__(self, n: int = 4, ep_length: int = 20):
        self.n, self.ep_length = int(n), int(ep_length)
        self.observation_space = gym.spaces.Box(0.0, 1.0, (self.n,), np.float32)
        self.action_space = gym.spaces.Discrete(self.n)
        self._state, self._t = 0, 0

    def _obs(self) -> np.ndarray:
        obs = np.zeros(self.n, np.float32)
        obs[self._state] = 1.0
        return obs

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        self._t = 0
        self._state = int(self.np_random.integers(self.n))
        return self._obs(), {}

    def step(self, action):
        reward = 1.0 if int(action) == self._state else 0.0
        self._t += 1
        self._state = int(self.np_random.integers(self.n))
        return self._obs(), reward, False, self._t >= self.ep_length, {}


class TargetMatchEnv(gym.Env):
    """Continuous target matching: reward ``-mean((a - x[:act_dim])²)`` for observation ``x``.

    Parameters
    ----------
    obs_dim, act_dim
        Observation and action sizes (``act_dim <= obs_dim``).
    ep_length
        Steps per episode (episodes end by termination).
    """

    metadata: dict[str, Any] = {"render_modes": []}

    def __init__(self, obs_dim: int = 4, act_dim: int = 2, ep_length: int = 20):
        if act_dim > obs_dim:
            raise ValueError(f"act_dim ({act_dim}) must not exceed obs_dim ({obs_dim}).")
        self.obs_dim, self.act_dim, self.ep_length = int(obs_dim), int(act_dim), int(ep_length)
        self.observation_space = gym.spaces.Box(-1.0, 1.0, (self.obs_dim,), np.float32)
        self.action_space = gym.spaces.Box(-1.0, 1.0, (self.act_dim,), np.float32)
        self._x = np.zeros(self.obs_dim, np.float32)
        self._t = 0

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        self._t = 0
        self._x = self.np_random.uniform(-1, 1, self.obs_dim).astype(np.float32)
        return self._x.copy(), {}

    def step(self, action):
        a = np.asarray(action, dtype=np.float32)
        reward = -float(np.mean((a - self._x[: self.act_dim]) ** 2))
        self._t += 1
        self._x = self.np_random.uniform(-1, 1, self.obs_dim).astype(np.float32)
        return self._x.copy(), reward, self._t >= self.ep_length, False, {}


class TargetMatchVecEnv(VectorEnv):
    """:class:`TargetMatchEnv` for ``num_envs`` copies, stepped in one vectorised NumPy call.

    All copies start together, so they terminate together every ``ep_length`` steps and are reset
    in the same call (``SAME_STEP`` autoreset: the returned observation starts the next episode).
    ``infos["reward_components"]`` splits each reward over the action dimensions
    (``-(a_j - x_j)² / act_dim``); the next observation does not depend on the action.
    """

    def __init__(self, num_envs: int = 16, obs_dim: int = 20, act_dim: int = 20, ep_length: int = 20):
        if act_dim > obs_dim:
            raise ValueError(f"act_dim ({act_dim}) must not exceed obs_dim ({obs_dim}).")
        self.num_envs, self.obs_dim, self.act_dim, self.ep_length = int(num_envs), int(obs_dim), int(act_dim), int(ep_length)
        self.single_observation_space = gym.spaces.Box(-1.0, 1.0, (self.obs_dim,), np.float32)
        self.single_action_space = gym.spaces.Box(-1.0, 1.0, (self.act_dim,), np.float32)
        self.observation_space = batch_space(self.single_observation_space, self.num_envs)
        self.action_space = batch_space(self.single_action_space, self.num_envs)
        self.metadata = {"autoreset_mode": AutoresetMode.SAME_STEP}
        self._rng = np.random.default_rng()
        self._x = np.zeros((self.num_envs, self.obs_dim), np.float32)
        self._t = 0

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        if seed is not None:
            self._rng = np.random.default_rng(seed)
        self._t = 0
        self._x = self._rng.uniform(-1, 1, (self.num_envs, self.obs_dim)).astype(np.float32)
        return self._x.copy(), {}

    def step(self, actions):
        a = np.asarray(actions, dtype=np.float32)
        comps = -((a - self._x[:, : self.act_dim]) ** 2) / self.act_dim
        rewards = comps.sum(axis=1)
        self._t += 1
        done = self._t >= self.ep_length
        if done:
            self._t = 0
        self._x = self._rng.uniform(-1, 1, (self.num_envs, self.obs_dim)).astype(np.float32)
        terminated = np.full(self.num_envs, done)
        truncated = np.zeros(self.num_envs, dtype=bool)
        return self._x.copy(), rewards, terminated, truncated, {"reward_components": comps}
