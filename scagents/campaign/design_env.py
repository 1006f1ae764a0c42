"""Gymnasium design environment: learn, from measured candidates, which ones to propose.

Each episode replays a small retrospective campaign on the candidates measured so far: a random
part of them plays "known" (their rewards visible), the rest is a pool whose per-candidate states
(:func:`~scagents.campaign.acquisition.candidate_state`: ridge-ensemble mean/sd, neighbour
rewards, novelty, progress) are shown one at a time, mixed with a few already-known candidates.

* observation: ``[state of the shown candidate (6), already measured flag, budget left]``;
* action: ``Discrete(2)`` — 0 skip, 1 propose (a shared per-candidate scorer: the policy's log-odds
  of "propose" ranks every candidate at deployment);
* reward: proposing a pool candidate gives its observed hit-likeness, standardised over the pool
  (0 = an average pick); proposing an already-measured candidate costs ``repeat_penalty``;
  skipping gives 0. The episode ends when the proposal budget or the stream runs out.
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np

from scagents.campaign.acquisition import STATE_COLUMNS, candidate_state

__all__ = ["DesignEnv"]


class DesignEnv(gym.Env):
    """Propose-or-skip environment over measured candidates.

    Parameters
    ----------
    X
        Candidate features ``(n_candidates, n_features)``.
    measured
        Indices of measured candidates.
    rewards
        Their hit-likeness.
    stream_length
        Candidates shown per episode.
    budget_fraction
        Proposals allowed per episode, as a fraction of ``stream_length``.
    known_fraction
        Share of the measured candidates playing "known" in an episode.
    repeat_penalty
        Reward for proposing an already-measured candidate (negative).
    n_splits
        Number of known/pool splits precomputed (episodes cycle through them).
    round_frac
        Campaign progress shown in the state.
    seed
        Seed of the splits.
    """

    metadata: dict = {"render_modes": []}

    def __init__(self, X: np.ndarray, measured: np.ndarray, rewards: np.ndarray, *, stream_length: int = 32,
                 budget_fraction: float = 0.25, known_fraction: float = 0.6, repeat_penalty: float = -1.0,
                 n_splits: int = 8, round_frac: float = 0.0, seed: int = 0):
        super().__init__()
        X = np.asarray(X, dtype=np.float64)
        measured = np.asarray(measured, dtype=np.int64)
        rewards = np.asarray(rewards, dtype=np.float64)
        if len(measured) < 6:
            raise ValueError(f"The design environment needs ≥ 6 measured candidates, got {len(measured)}.")
        self.stream_length = int(stream_length)
        self.budget = max(1, int(round(budget_fraction * stream_length)))
        self.repeat_penalty = float(repeat_penalty)
        self.n_state = len(STATE_COLUMNS)
        self.observation_space = gym.spaces.Box(-np.inf, np.inf, shape=(self.n_state + 2,), dtype=np.float32)
        self.action_space = gym.spaces.Discrete(2)
        rng = np.random.default_rng(seed)
        self._splits = []
        n = len(measured)
        for s in range(n_splits):
            perm = rng.permutation(n)
            k = int(np.clip(round(known_fraction * n), 3, n - 3))
            kn, pool = perm[:k], perm[k:]
            st = candidate_state(X, measured[kn], rewards[kn], measured[pool], round_frac=round_frac, seed=seed + s)
            rp = rewards[pool]
            z = (rp - rp.mean()) / (rp.std() or 1.0)
            st_known = candidate_state(X, measured[kn], rewards[kn], measured[kn], round_frac=round_frac, seed=seed + s)
            self._splits.append((st, z, st_known))
        self._rng = rng
        self._t = 0

    def observation_for(self, states: np.ndarray, *, measured: bool = False, budget_left: float = 1.0) -> np.ndarray:
        """Observations for candidate ``states`` (rows of :func:`candidate_state`)."""
        states = np.asarray(states, dtype=np.float32)
        extra = np.tile(np.array([float(measured), budget_left], np.float32), (len(states), 1))
        return np.concatenate([states, extra], axis=1)

    def _obs(self) -> np.ndarray:
        st, rep = self._stream[self._t]
        return self.observation_for(st[None], measured=rep, budget_left=self._left / self.budget)[0]

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        if seed is not None:
            self._rng = np.random.default_rng(seed)
        st, z, st_known = self._splits[int(self._rng.integers(len(self._splits)))]
        n_rep = max(1, self.stream_length // 8)
        take = self._rng.choice(len(z), size=min(self.stream_length - n_rep, len(z)), replace=False)
        rep = self._rng.choice(len(st_known), size=n_rep, replace=True)
        items = [(st[i], False, float(z[i])) for i in take] + [(st_known[i], True, self.repeat_penalty) for i in rep]
        order = self._rng.permutation(len(items))
        items = [items[i] for i in order]
        self._stream = [(s, r) for s, r, _ in items]
        self._payoff = [p for _, _, p in items]
        self._t, self._left = 0, self.budget
        return self._obs(), {}

    def step(self, action):
        reward = 0.0
        if int(action) == 1:
            reward = self._payoff[self._t]
            self._left -= 1
        self._t += 1
        terminated = self._left <= 0 or self._t >= len(self._stream)
        obs = np.zeros(self.observation_space.shape, np.float32) if terminated else self._obs()
        return obs, float(reward), terminated, False, {}
