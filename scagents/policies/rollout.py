"""Rollout collection from (batched) Gymnasium vector environments, and GAE advantages.

Speed matters here: an environment whose ``step`` handles all ``n_envs`` copies at once (a
:class:`gymnasium.vector.VectorEnv` written in NumPy/torch) costs one Python call per time step, and
the policy is evaluated once per time step on the whole batch into pre-allocated tensors.

Both Gymnasium autoreset modes are handled:

* ``SAME_STEP``: the step that ends an episode returns the first observation of the next one and
  the final observation in ``infos["final_obs"]`` (used to bootstrap truncated episodes).
* ``NEXT_STEP`` (Gymnasium's default): the step after an episode end is a reset step whose action
  is ignored; that transition is marked invalid and left out of every loss, and the final
  observation returned by the ending step bootstraps a truncation.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass

import gymnasium as gym
import numpy as np
import torch
from gymnasium.vector import AutoresetMode, SyncVectorEnv, VectorEnv

from scagents.policies.networks import ActorCritic, SpaceError, flatten_obs

__all__ = ["RolloutBuffer", "compute_gae", "as_vector_env", "VecEnvRunner"]


def as_vector_env(env: VectorEnv | gym.Env | Callable[[], gym.Env], n_envs: int) -> VectorEnv:
    """Return a vector environment for ``env``.

    Parameters
    ----------
    env
        A :class:`gymnasium.vector.VectorEnv` (used as is, its ``num_envs`` wins), a plain
        :class:`gymnasium.Env` (copied ``n_envs - 1`` times with :func:`copy.deepcopy`) or a
        zero-argument factory of plain environments.
    n_envs
        Number of copies when ``env`` is not already vectorised.

    Returns
    -------
    gymnasium.vector.VectorEnv
        Plain environments are wrapped in a :class:`~gymnasium.vector.SyncVectorEnv` with
        ``SAME_STEP`` autoreset.
    """
    if isinstance(env, VectorEnv):
        mode = env.metadata.get("autoreset_mode", AutoresetMode.NEXT_STEP)
        if AutoresetMode(mode) == AutoresetMode.DISABLED:
            raise SpaceError("The vector environment has autoreset disabled; use autoreset_mode=SAME_STEP "
                             "(preferred) or NEXT_STEP so episodes restart automatically during training.")
        return env
    if isinstance(env, gym.Env):
        fns = [lambda: env] + [lambda: copy.deepcopy(env) for _ in range(n_envs - 1)]
    elif callable(env):
        fns = [env] * n_envs
    else:
        raise SpaceError(f"Cannot train on {type(env).__name__}: pass a gymnasium.vector.VectorEnv, a "
                         "gymnasium.Env or a zero-argument function returning a gymnasium.Env.")
    return SyncVectorEnv(fns, autoreset_mode=AutoresetMode.SAME_STEP)


@dataclass
class RolloutBuffer:
    """Pre-allocated storage for one rollout of ``n_steps`` × ``n_envs`` transitions.

    ``dones[t]`` is 1 when the episode ended *at* step ``t`` (terminated or truncated; truncations
    are bootstrapped through the reward), ``valid[t]`` is 0 for ignored reset steps. ``dist[t]``
    holds the rollout policy's Gaussian means (or normalised logits), so the update knows
    ``π_old(·|s)`` without another forward pass over the batch.
    """

    obs: torch.Tensor
    actions: torch.Tensor
    logprobs: torch.Tensor
    values: torch.Tensor
    rewards: torch.Tensor
    dones: torch.Tensor
    valid: torch.Tensor
    advantages: torch.Tensor
    returns: torch.Tensor
    dist: torch.Tensor | None = None

    @classmethod
    def allocate(cls, n_steps: int, n_envs: int, obs_dim: int, act_shape: tuple[int, ...],
                 act_dtype: torch.dtype, device: str | torch.device = "cpu", dist_dim: int | None = None,
                 value_dim: int = 1) -> RolloutBuffer:
        """Zero-filled buffers; ``dist_dim`` (the policy's ``act_dim``) also allocates ``dist``.

        With ``value_dim > 1`` (factored rewards) rewards, values, advantages and returns get a
        trailing dimension of that size.
        """
        z = lambda *s, dtype=torch.float32: torch.zeros(s, dtype=dtype, device=device)  # noqa: E731
        v = () if value_dim == 1 else (int(value_dim),)
        return cls(obs=z(n_steps, n_envs, obs_dim), actions=z(n_steps, n_envs, *act_shape, dtype=act_dtype),
                   logprobs=z(n_steps, n_envs), values=z(n_steps, n_envs, *v), rewards=z(n_steps, n_envs, *v),
                   dones=z(n_steps, n_envs), valid=z(n_steps, n_envs), advantages=z(n_steps, n_envs, *v),
                   returns=z(n_steps, n_envs, *v), dist=None if dist_dim is None else z(n_steps, n_envs, dist_dim))

    def flat(self) -> dict[str, torch.Tensor]:
        """The valid transitions, flattened to one batch dimension."""
        keep = self.valid.reshape(-1) > 0
        n = keep.numel()
        out = {
            "obs": self.obs.reshape(n, -1), "actions": self.actions.reshape(n, *self.actions.shape[2:]),
            "logprobs": self.logprobs.reshape(n), "values": self.values.reshape(n, *self.values.shape[2:]),
            "advantages": self.advantages.reshape(n, *self.advantages.shape[2:]),
            "returns": self.returns.reshape(n, *self.returns.shape[2:]),
        }
        if self.dist is not None:
            out["dist"] = self.dist.reshape(n, -1)
        if bool(keep.all()):
            return out
        return {k: v[keep] for k, v in out.items()}


def compute_gae(rewards: np.ndarray, values: np.ndarray, dones: np.ndarray, last_value: np.ndarray,
                gamma: float, gae_lambda: float) -> tuple[np.ndarray, np.ndarray]:
    """Generalised advantage estimation (Schulman et al. 2016).

    ``δ_t = r_t + γ V(s_{t+1}) (1 - d_t) - V(s_t)`` and ``Â_t = δ_t + γ λ (1 - d_t) Â_{t+1}``.

    Parameters
    ----------
    rewards, values, dones
        Arrays of shape ``(n_steps, n_envs)``; ``dones[t]`` marks an episode end at step ``t``.
        Rewards and values may have a trailing component dimension (factored rewards; each
        component gets its own advantage).
    last_value
        ``V(s_T)`` of the observation after the last step, shape ``(n_envs,)`` (or
        ``(n_envs, components)``).
    gamma, gae_lambda
        Discount and GAE λ.

    Returns
    -------
    advantages, returns
        ``Â_t`` and the value targets ``Â_t + V(s_t)``.
    """
    n_steps = rewards.shape[0]
    adv = np.zeros_like(rewards)
    last = np.zeros_like(last_value)
    next_value = last_value
    extra = (1,) * (rewards.ndim - dones.ndim)
    for t in range(n_steps - 1, -1, -1):
        nonterminal = (1.0 - dones[t]).reshape(dones[t].shape + extra)
        delta = rewards[t] + gamma * next_value * nonterminal - values[t]
        last = delta + gamma * gae_lambda * nonterminal * last
        adv[t] = last
        next_value = values[t]
    return adv, adv + values


def reward_components(infos: dict, n_envs: int, n_components: int, need: np.ndarray | None = None) -> np.ndarray:
    """The per-component rewards a vector environment reports in ``infos["reward_components"]``.

    A batched environment gives one ``(n_envs, n_components)`` array. Gymnasium's
    ``SyncVectorEnv`` (same-step autoreset) puts the step info of the environments that just
    finished an episode under ``infos["final_info"]``, with ``_``-prefixed masks saying which rows
    are filled; both places are merged here. ``need`` marks the environments whose rewards count
    (not the reset steps of next-step autoreset); the others may be missing and are returned as 0.

    Raises
    ------
    SpaceError
        The environment does not report them for every environment, or with the wrong shape.
    """
    out = np.zeros((n_envs, n_components), dtype=np.float64)
    filled = np.zeros(n_envs, dtype=bool)
    for source in (infos, infos.get("final_info") if isinstance(infos, dict) else None):
        if not isinstance(source, dict) or source.get("reward_components") is None:
            continue
        comps = np.asarray(source["reward_components"], dtype=np.float64)
        if comps.shape != (n_envs, n_components):
            raise SpaceError(f"info['reward_components'] has shape {comps.shape}; expected "
                             f"{(n_envs, n_components)} (environments × action dimensions).")
        mask = np.asarray(source.get("_reward_components", np.ones(n_envs, dtype=bool)), dtype=bool)
        out[mask] = comps[mask]
        filled |= mask
    if (~filled & (np.ones(n_envs, dtype=bool) if need is None else need)).any():
        raise SpaceError("TrainConfig(reward_components=True) needs an environment that reports its reward "
                         "split over the action dimensions in info['reward_components'] (e.g. "
                         "scagents.envs.PerturbationResponseEnv / PerturbationResponseVecEnv); this one does "
                         "not. Set reward_components=False.")
    return out


class VecEnvRunner:
    """Steps a vector environment with a policy and fills a :class:`RolloutBuffer`.

    Keeps the current observation, the running episode returns and the autoreset bookkeeping
    between rollouts.
    """

    def __init__(self, env: VectorEnv, policy: ActorCritic, *, gamma: float, seed: int | None,
                 generator: torch.Generator, device: str | torch.device = "cpu"):
        self.env, self.policy, self.gamma = env, policy, gamma
        self.generator, self.device = generator, torch.device(device)
        self.n_envs = env.num_envs
        self.obs_space = env.single_observation_space
        self.next_step_mode = (AutoresetMode(env.metadata.get("autoreset_mode", AutoresetMode.NEXT_STEP))
                               == AutoresetMode.NEXT_STEP)
        if seed is not None:
            env.action_space.seed(seed)
        obs, _ = env.reset(seed=seed)
        self.obs = self._to_tensor(obs)
        self.reset_pending = np.zeros(self.n_envs, dtype=bool)   # NEXT_STEP: next step is a reset step
        self.trunc_pending = np.zeros(self.n_envs, dtype=bool)   # NEXT_STEP: bootstrap with next value
        self.ep_return = np.zeros(self.n_envs, dtype=np.float64)
        self.ep_length = np.zeros(self.n_envs, dtype=np.int64)

    def _to_tensor(self, obs) -> torch.Tensor:
        flat = flatten_obs(obs, self.obs_space, batch_dims=1)
        return torch.from_numpy(np.ascontiguousarray(flat)).to(self.device)

    @torch.no_grad()
    def collect(self, buf: RolloutBuffer) -> tuple[list[float], list[int]]:
        """Fill ``buf`` with ``n_steps`` steps of every environment and compute GAE targets later.

        Returns
        -------
        episode_returns, episode_lengths
            Undiscounted returns and lengths of the episodes that ended during this rollout.
        """
        policy, env, gamma = self.policy, self.env, self.gamma
        n_steps = buf.obs.shape[0]
        factored = buf.rewards.ndim == 3
        ep_returns: list[float] = []
        ep_lengths: list[int] = []
        for t in range(n_steps):
            obs_t = self.obs
            params = policy.dist_params(obs_t)
            value = policy.value(obs_t)
            action = policy.sample(params, self.generator)
            buf.obs[t] = obs_t
            buf.actions[t] = action
            buf.logprobs[t] = policy.log_prob(params, action)
            buf.values[t] = value
            if buf.dist is not None:
                buf.dist[t] = params[0]
            if self.trunc_pending.any():  # NEXT_STEP: obs_t is the final obs of a truncated episode
                if t > 0:
                    m = torch.from_numpy(self.trunc_pending).to(self.device)
                    buf.rewards[t - 1] += gamma * value * (m[:, None] if factored else m)
                self.trunc_pending[:] = False
            valid = ~self.reset_pending
            buf.valid[t] = torch.from_numpy(valid.astype(np.float32))
            next_obs, reward, terminated, truncated, infos = env.step(policy.to_env_action(action))
            reward = np.asarray(reward, dtype=np.float64)
            terminated = np.asarray(terminated, dtype=bool)
            truncated = np.asarray(truncated, dtype=bool)
            done = (terminated | truncated) & valid
            if factored:
                comps = reward_components(infos, self.n_envs, buf.rewards.shape[2], need=valid)
                r32 = np.where(valid[:, None], comps, 0.0).astype(np.float32)
            else:
                r32 = np.where(valid, reward, 0.0).astype(np.float32)
            self.ep_return += np.where(valid, reward, 0.0)
            self.ep_length += valid
            if done.any():
                ep_returns.extend(self.ep_return[done].tolist())
                ep_lengths.extend(self.ep_length[done].tolist())
                self.ep_return[done] = 0.0
                self.ep_length[done] = 0
                boot = truncated & ~terminated & valid
                if boot.any():
                    if self.next_step_mode:
                        self.trunc_pending = boot.copy()
                    else:
                        r32 += self._final_values(infos, boot)
            buf.rewards[t] = torch.from_numpy(r32)
            buf.dones[t] = torch.from_numpy(done.astype(np.float32))
            if self.next_step_mode:
                self.reset_pending = done.copy()
            self.obs = self._to_tensor(next_obs)
        self.last_value = policy.value(self.obs)
        if self.trunc_pending.any():
            m = torch.from_numpy(self.trunc_pending).to(self.device)
            buf.rewards[n_steps - 1] += gamma * self.last_value * (m[:, None] if factored else m)
            # the bootstrap is done; the reset step still follows in the next rollout
            self.trunc_pending[:] = False
        return ep_returns, ep_lengths

    def _final_values(self, infos: dict, boot: np.ndarray) -> np.ndarray:
        """γ V(final_obs) for SAME_STEP truncations (zeros elsewhere)."""
        out = np.zeros((self.n_envs, *(() if self.policy.value_dim == 1 else (self.policy.value_dim,))),
                       dtype=np.float32)
        if "final_obs" not in infos:
            return out
        idx = np.flatnonzero(boot)
        finals = infos["final_obs"]
        if isinstance(finals, np.ndarray) and finals.dtype != object:  # a batched env: one array
            rows = flatten_obs(finals[idx], self.obs_space, batch_dims=1)
        else:  # SyncVectorEnv: one observation object per environment
            rows = np.stack([flatten_obs(finals[i], self.obs_space, batch_dims=0) for i in idx])
        x = torch.from_numpy(rows.astype(np.float32)).to(self.device)
        out[idx] = self.gamma * self.policy.value(x).cpu().numpy()
        return out

    def finish(self, buf: RolloutBuffer, gae_lambda: float) -> None:
        """Compute GAE advantages and value targets into ``buf``."""
        adv, ret = compute_gae(buf.rewards.cpu().numpy(), buf.values.cpu().numpy(), buf.dones.cpu().numpy(),
                               self.last_value.cpu().numpy(), self.gamma, gae_lambda)
        buf.advantages.copy_(torch.from_numpy(adv))
        buf.returns.copy_(torch.from_numpy(ret))
