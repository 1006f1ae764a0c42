"""PettingZoo view of the response task: one agent per modality branch.

:class:`ModalityParallelEnv` splits :class:`~scagents.envs.response.PerturbationResponseEnv` along
the modality-specific policy branches of the paper: agents ``"rna"``, ``"atac"`` and ``"prot"``
(those present in the task) follow the *same* control cell under the *same* perturbation.

What each agent sees
    its own modality's block of the cell state, the perturbation encoding and the pseudotime
    (``[state_m | encoding | pseudotime]``) — never the other modalities' states;
what it does
    predicts its own modality's post-perturbation change (a ``Box`` of ``d_m`` values in
    ``[-b_m, b_m]``);
what it is rewarded for
    ``reward_scale · ((1 - team_weight) · (-MSE_m) + team_weight · mean_m'(-MSE_m'))``: its own
    modality's negative mean squared error against the observed/simulated delta, plus (when
    ``team_weight > 0``) a shared team term — the single-agent reward of the response env — that
    rewards agreement on the whole profile. With ``team_weight = 1`` every agent gets exactly the
    Gymnasium environment's reward.

Episodes last ``T = task.n_points`` steps (teacher-forced along pseudotime) and all agents end
together.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
from pettingzoo import ParallelEnv

from scagents.envs.response import ResponseTask, _check_task, _ResponseCore
from scagents.errors import DataError

__all__ = ["ModalityParallelEnv"]


class ModalityParallelEnv(ParallelEnv):
    """One agent per modality predicting its modality's response (see the module docstring).

    Parameters
    ----------
    task
        The data (:class:`~scagents.envs.response.ResponseTask`).
    team_weight
        Weight of the shared team term in each agent's reward (0 = own modality only).
    reward_scale
        Multiplies every reward.
    """

    metadata: dict[str, Any] = {"name": "scagents_modality_response_v0", "render_modes": []}

    def __init__(self, task: ResponseTask, *, team_weight: float = 0.0, reward_scale: float = 1.0):
        self.task = _check_task(task)
        if not 0.0 <= team_weight <= 1.0:
            raise DataError(f"team_weight must be in [0, 1], got {team_weight}.")
        self.team_weight = float(team_weight)
        self.reward_scale = float(reward_scale)
        self._core = _ResponseCore(task)
        self.possible_agents = list(task.modalities)
        self.agents: list[str] = []
        enc = self._core.d_enc + 1
        self._obs_spaces = {m: gym.spaces.Box(-np.inf, np.inf, (task.dims[m] + enc,), np.float32)
                            for m in task.modalities}
        self._act_spaces = {m: gym.spaces.Box(-task.action_bounds[m], task.action_bounds[m],
                                              (task.dims[m],), np.float32)
                            for m in task.modalities}
        self._rng = np.random.default_rng()
        self._ci = np.zeros(1, np.int64)
        self._pi = np.zeros(1, np.int64)
        self._k = 0

    def observation_space(self, agent: str) -> gym.spaces.Box:
        """The (always identical) observation space of ``agent``."""
        return self._obs_spaces[agent]

    def action_space(self, agent: str) -> gym.spaces.Box:
        """The (always identical) action space of ``agent``."""
        return self._act_spaces[agent]

    def _observe(self) -> dict[str, np.ndarray]:
        full = self._core.observe(self._ci, self._pi, min(self._k, self.task.n_points - 1))[0]
        context = full[self._core.d_state:]
        return {m: np.concatenate([full[self._core.mod_slices[m]], context])
                for m in self.possible_agents}

    def _infos(self) -> dict[str, dict]:
        label = self.task.labels[int(self._pi[0])]
        return {m: {"perturbation": label, "point": self._k} for m in self.possible_agents}

    def reset(self, seed: int | None = None, options: dict | None = None):
        if seed is not None:
            self._rng = np.random.default_rng(seed)
        options = options or {}
        p = options.get("perturbation")
        self._pi[0] = (self.task.index(p) if p is not None
                       else self._rng.integers(self.task.n_perturbations))
        c = options.get("cell")
        self._ci[0] = int(c) % self.task.n_cells if c is not None else self._rng.integers(self.task.n_cells)
        self._k = 0
        self.agents = list(self.possible_agents)
        return self._observe(), self._infos()

    def step(self, actions: dict[str, np.ndarray]):
        if not self.agents:
            raise DataError("The episode is over; call reset() before step().")
        missing = [m for m in self.agents if m not in actions]
        if missing:
            raise DataError(f"step() needs an action for every live agent; missing {missing}.")
        core = self._core
        full = np.concatenate([np.asarray(actions[m], np.float32).reshape(-1)
                               for m in self.possible_agents])
        sq = core.squared_error(full[None], self._pi, self._k)[0]
        own = {m: -float(sq[core.mod_slices[m]].mean()) for m in self.possible_agents}
        team = float(np.mean(list(own.values())))
        rewards = {m: self.reward_scale * ((1 - self.team_weight) * own[m] + self.team_weight * team)
                   for m in self.agents}
        self._k += 1
        done = self._k >= self.task.n_points
        obs = self._observe()
        infos = self._infos()
        for m in self.possible_agents:
            infos[m]["mse"] = -own[m]
        terminations = {m: done for m in self.agents}
        truncations = {m: False for m in self.agents}
        if done:
            self.agents = []
        return obs, rewards, terminations, truncations, infos

    def render(self) -> None:
        return None

    def close(self) -> None:
        return None
