"""Actor-critic networks with one input branch per observation modality.

The observation of a perturbation environment is a concatenation of modality blocks (RNA, ATAC,
protein, goal ...). :class:`ActorCritic` gives every block its own small MLP branch, concatenates the
branch outputs and feeds them through shared hidden layers (2 x 256 in the paper). The actor and the
critic each own such a body, so the TRPO step (which moves only the policy parameters) never
changes the value function. A plain flat ``Box`` observation without named slices is one modality
that goes straight into the hidden layers, i.e. a plain MLP.

Action distributions: diagonal Gaussian with a state-independent log standard deviation for ``Box``
actions, Categorical for ``Discrete`` actions.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import gymnasium as gym
import numpy as np
import torch
from torch import nn

from scagents.errors import ScagentsError

__all__ = ["SpaceError", "ActorCritic", "ModalityBody", "resolve_modality_slices", "flatten_obs"]

_LOG_2PI = math.log(2.0 * math.pi)


class SpaceError(ScagentsError, ValueError):
    """An observation or action space (or its modality layout) is not supported by the policies."""


def obs_dim_of(space: gym.Space) -> int:
    """Length of the flat observation vector fed to the network."""
    if isinstance(space, gym.spaces.Box):
        return int(np.prod(space.shape))
    if isinstance(space, gym.spaces.Dict):
        return sum(obs_dim_of(s) for s in space.spaces.values())
    raise SpaceError(
        f"Observation space {space!r} is not supported: use a gymnasium.spaces.Box (optionally with "
        "modality_slices) or a gymnasium.spaces.Dict of Box spaces, one per modality."
    )


def flatten_obs(obs: np.ndarray | Mapping[str, np.ndarray], space: gym.Space, batch_dims: int = 1) -> np.ndarray:
    """Flatten a (batched) observation into a float32 array of shape ``(*batch, obs_dim)``.

    ``Dict`` observations are concatenated in the order of the space's keys (the same order used by
    :func:`resolve_modality_slices`).
    """
    if isinstance(space, gym.spaces.Dict):
        if not isinstance(obs, Mapping):
            raise SpaceError("The observation space is a Dict but the observation is not a mapping.")
        parts = []
        for key in space.spaces:
            if key not in obs:
                raise SpaceError(f"Observation is missing the modality {key!r} of the Dict observation space.")
            arr = np.asarray(obs[key], dtype=np.float32)
            parts.append(arr.reshape(*arr.shape[:batch_dims], -1))
        return np.concatenate(parts, axis=-1)
    arr = np.asarray(obs, dtype=np.float32)
    return arr.reshape(*arr.shape[:batch_dims], -1)


def resolve_modality_slices(
    space: gym.Space, modality_slices: Mapping[str, slice | Sequence[int]] | None = None
) -> dict[str, slice]:
    """Check and normalise the modality layout of an observation space.

    Parameters
    ----------
    space
        The single-environment observation space (``Box`` or ``Dict`` of ``Box``).
    modality_slices
        ``{name: slice(start, stop)}`` naming the blocks of a flat ``Box`` observation. They must
        be contiguous, non-overlapping and cover every entry exactly once. ``None`` means one
        modality called ``"obs"`` (or, for a ``Dict`` space, one modality per key).

    Returns
    -------
    dict[str, slice]
        Ordered ``{name: slice}`` over the flattened observation vector.

    Raises
    ------
    SpaceError
        If the space is unsupported or the slices are malformed or do not cover the observation.
    """
    dim = obs_dim_of(space)
    if isinstance(space, gym.spaces.Dict):
        if modality_slices is not None:
            raise SpaceError("modality_slices cannot be combined with a Dict observation space: "
                             "the Dict keys already name the modalities; pass modality_slices=None.")
        out, start = {}, 0
        for key, sub in space.spaces.items():
            if not isinstance(sub, gym.spaces.Box):
                raise SpaceError(f"Modality {key!r} of the Dict observation space is {sub!r}; only Box is supported.")
            n = obs_dim_of(sub)
            out[str(key)] = slice(start, start + n)
            start += n
        return out
    if not isinstance(space, gym.spaces.Box):
        obs_dim_of(space)  # raises the unsupported-space error
    if modality_slices is None or len(modality_slices) == 0:
        return {"obs": slice(0, dim)}
    out = {}
    for name, sl in modality_slices.items():
        if not isinstance(sl, slice):
            if len(sl) != 2:
                raise SpaceError(f"Modality {name!r}: give a slice or a (start, stop) pair, got {sl!r}.")
            sl = slice(int(sl[0]), int(sl[1]))
        if sl.step not in (None, 1) or sl.start is None or sl.stop is None:
            raise SpaceError(f"Modality {name!r}: use a contiguous slice(start, stop) with explicit bounds, got {sl!r}.")
        if not 0 <= sl.start < sl.stop <= dim:
            raise SpaceError(f"Modality {name!r}: slice({sl.start}, {sl.stop}) is empty or outside the "
                             f"observation of length {dim}.")
        out[str(name)] = slice(int(sl.start), int(sl.stop))
    covered = np.zeros(dim, dtype=int)
    for sl in out.values():
        covered[sl] += 1
    if (covered > 1).any():
        raise SpaceError(f"modality_slices overlap at observation entries {np.flatnonzero(covered > 1)[:10].tolist()}; "
                         "each entry must belong to exactly one modality.")
    if (covered == 0).any():
        missing = np.flatnonzero(covered == 0)
        raise SpaceError(f"modality_slices do not cover the observation: {missing.size} of {dim} entries "
                         f"(e.g. {missing[:10].tolist()}) belong to no modality; add a slice for them.")
    return out


def _layer(n_in: int, n_out: int, gain: float) -> nn.Linear:
    layer = nn.Linear(n_in, n_out)
    nn.init.orthogonal_(layer.weight, gain)
    nn.init.zeros_(layer.bias)
    return layer


def _mlp(n_in: int, sizes: Sequence[int]) -> tuple[nn.Sequential, int]:
    layers: list[nn.Module] = []
    for n in sizes:
        layers += [_layer(n_in, n, math.sqrt(2.0)), nn.Tanh()]
        n_in = n
    return nn.Sequential(*layers), n_in


class ModalityBody(nn.Module):
    """Per-modality branches, concatenated, then shared hidden layers.

    With a single modality the branch is the identity, so the body is a plain MLP.
    """

    def __init__(self, slices: Mapping[str, slice], branch_sizes: Sequence[int], hidden_sizes: Sequence[int]):
        super().__init__()
        self.slices = dict(slices)
        self.branches = nn.ModuleDict()
        width = 0
        for name, sl in self.slices.items():
            n_in = sl.stop - sl.start
            if len(self.slices) == 1 or not branch_sizes:
                self.branches[name] = nn.Identity()
                width += n_in
            else:
                self.branches[name], n_out = _mlp(n_in, branch_sizes)
                width += n_out
        self.trunk, self.out_dim = _mlp(width, hidden_sizes)
        self._single = len(self.slices) == 1 and isinstance(next(iter(self.branches.values())), nn.Identity)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self._single:
            return self.trunk(x)
        feats = [branch(x[..., sl]) for branch, sl in zip(self.branches.values(), self.slices.values(), strict=True)]
        return self.trunk(torch.cat(feats, dim=-1))


class ActorCritic(nn.Module):
    """Actor-critic used by PPO, TRPO and TRPO→PPO.

    Parameters
    ----------
    observation_space
        Single-environment observation space: ``Box`` or ``Dict`` of ``Box``.
    action_space
        Single-environment action space: ``Box`` (Gaussian policy) or ``Discrete`` (Categorical).
    modality_slices
        Named blocks of a flat ``Box`` observation, see :func:`resolve_modality_slices`.
    hidden_sizes
        Shared hidden layers after the modality branches (the paper uses ``(256, 256)``).
    branch_sizes
        Hidden layers of each modality branch (used only when there are several modalities).
    init_log_std
        Initial log standard deviation of the Gaussian policy.
    value_dim
        Outputs of the value head: 1, or one value per reward component (factored rewards,
        :attr:`scagents.policies.TrainConfig.reward_components`).
    critic_init_gain
        Orthogonal-init gain of the value head (CleanRL: 1.0 for rewards of order 1; use a small
        gain when rewards are small, so the first value estimates are not far off their scale).

    Attributes
    ----------
    continuous
        ``True`` for a Gaussian policy over ``Box`` actions.
    """

    def __init__(
        self,
        observation_space: gym.Space,
        action_space: gym.Space,
        *,
        modality_slices: Mapping[str, slice | Sequence[int]] | None = None,
        hidden_sizes: Sequence[int] = (256, 256),
        branch_sizes: Sequence[int] = (64,),
        init_log_std: float = 0.0,
        value_dim: int = 1,
        critic_init_gain: float = 1.0,
    ):
        super().__init__()
        self.observation_space = observation_space
        self.action_space = action_space
        self.slices = resolve_modality_slices(observation_space, modality_slices)
        self.obs_dim = obs_dim_of(observation_space)
        self.hidden_sizes = tuple(int(h) for h in hidden_sizes)
        self.branch_sizes = tuple(int(b) for b in branch_sizes)
        if isinstance(action_space, gym.spaces.Box):
            if len(action_space.shape) != 1:
                raise SpaceError(f"Box action spaces must be one-dimensional, got shape {action_space.shape}; "
                                 "flatten the action (gymnasium.wrappers.FlattenObservation-like) first.")
            self.continuous = True
            self.act_dim = int(action_space.shape[0])
            low, high = action_space.low.astype(np.float32), action_space.high.astype(np.float32)
            self.register_buffer("action_low", torch.as_tensor(low), persistent=False)
            self.register_buffer("action_high", torch.as_tensor(high), persistent=False)
            self._clip = bool(np.isfinite(low).any() or np.isfinite(high).any())
        elif isinstance(action_space, gym.spaces.Discrete):
            if int(action_space.start) != 0:
                raise SpaceError("Discrete action spaces must start at 0; got start="
                                 f"{action_space.start}. Shift the actions in the environment.")
            self.continuous = False
            self.act_dim = int(action_space.n)
        else:
            raise SpaceError(f"Action space {action_space!r} is not supported: use gymnasium.spaces.Box "
                             "(continuous, 1-D) or gymnasium.spaces.Discrete.")
        self.actor_body = ModalityBody(self.slices, self.branch_sizes, self.hidden_sizes)
        self.critic_body = ModalityBody(self.slices, self.branch_sizes, self.hidden_sizes)
        self.actor_head = _layer(self.actor_body.out_dim, self.act_dim, 0.01)
        if int(value_dim) < 1:
            raise SpaceError(f"value_dim must be a positive number of reward components, got {value_dim}.")
        self.value_dim = int(value_dim)
        self.critic_head = _layer(self.critic_body.out_dim, self.value_dim, float(critic_init_gain))
        if self.continuous:
            self.log_std = nn.Parameter(torch.full((self.act_dim,), float(init_log_std)))
        else:
            self.register_parameter("log_std", None)

    # ----------------------------------------------------------------------------- parameters
    def policy_parameters(self) -> list[nn.Parameter]:
        """Parameters of the policy π_θ (moved by the TRPO step)."""
        params = list(self.actor_body.parameters()) + list(self.actor_head.parameters())
        return params + ([self.log_std] if self.continuous else [])

    def value_parameters(self) -> list[nn.Parameter]:
        """Parameters of the value function V_φ."""
        return list(self.critic_body.parameters()) + list(self.critic_head.parameters())

    # ----------------------------------------------------------------------------- distributions
    def dist_params(self, obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """``(mean, log_std)`` for a Gaussian policy, ``(logits, None)`` for a Categorical one."""
        out = self.actor_head(self.actor_body(obs))
        if self.continuous:
            return out, self.log_std.expand_as(out)
        return out - out.logsumexp(-1, keepdim=True), None

    def value(self, obs: torch.Tensor) -> torch.Tensor:
        """State value ``V(s)``: shape ``(batch,)``, or ``(batch, value_dim)`` for factored rewards."""
        out = self.critic_head(self.critic_body(obs))
        return out.squeeze(-1) if self.value_dim == 1 else out

    def log_prob(self, params: tuple[torch.Tensor, torch.Tensor | None], actions: torch.Tensor) -> torch.Tensor:
        """log π(a|s) for given distribution parameters."""
        mean, log_std = params
        if self.continuous:
            z = (actions - mean) * torch.exp(-log_std)
            return (-0.5 * z.pow(2) - log_std - 0.5 * _LOG_2PI).sum(-1)
        return mean.gather(-1, actions.long().unsqueeze(-1)).squeeze(-1)

    def log_prob_components(self, params: tuple[torch.Tensor, torch.Tensor | None],
                            actions: torch.Tensor) -> torch.Tensor:
        """``log π_j(a_j|s)`` per action dimension of a Gaussian policy, shape ``(batch, act_dim)``.

        The diagonal Gaussian factorises, so these sum to :meth:`log_prob`.
        """
        if not self.continuous:
            raise SpaceError("Per-dimension log-probabilities need a Gaussian (Box-action) policy.")
        mean, log_std = params
        z = (actions - mean) * torch.exp(-log_std)
        return -0.5 * z.pow(2) - log_std - 0.5 * _LOG_2PI

    def entropy(self, params: tuple[torch.Tensor, torch.Tensor | None]) -> torch.Tensor:
        """Entropy of π(·|s) per state."""
        mean, log_std = params
        if self.continuous:
            return (log_std + 0.5 * (1.0 + _LOG_2PI)).sum(-1)
        return -(mean.exp() * mean).sum(-1)

    def kl(self, old: tuple[torch.Tensor, torch.Tensor | None], new: tuple[torch.Tensor, torch.Tensor | None]) -> torch.Tensor:
        """KL(π_old(·|s) ‖ π_new(·|s)) per state (closed form)."""
        if self.continuous:
            (mu0, ls0), (mu1, ls1) = old, new
            var0, var1 = torch.exp(2 * ls0), torch.exp(2 * ls1)
            return (ls1 - ls0 + (var0 + (mu0 - mu1).pow(2)) / (2.0 * var1) - 0.5).sum(-1)
        logp0, logp1 = old[0], new[0]
        return (logp0.exp() * (logp0 - logp1)).sum(-1)

    def sample(self, params: tuple[torch.Tensor, torch.Tensor | None], generator: torch.Generator | None = None) -> torch.Tensor:
        """Draw one action per state (Gaussian noise / Gumbel-max)."""
        mean, log_std = params
        if self.continuous:
            noise = torch.randn(mean.shape, generator=generator, dtype=mean.dtype, device=mean.device)
            return mean + noise * log_std.exp()
        u = torch.rand(mean.shape, generator=generator, dtype=mean.dtype, device=mean.device).clamp_(1e-20, 1.0)
        return (mean - torch.log(-torch.log(u))).argmax(-1)

    def mode(self, params: tuple[torch.Tensor, torch.Tensor | None]) -> torch.Tensor:
        """The most likely action."""
        return params[0] if self.continuous else params[0].argmax(-1)

    def to_env_action(self, actions: torch.Tensor) -> np.ndarray:
        """Convert network actions to what the environment accepts (clipped to the Box bounds)."""
        if self.continuous:
            if self._clip:
                actions = torch.maximum(torch.minimum(actions, self.action_high), self.action_low)
            return actions.cpu().numpy()
        return actions.cpu().numpy().astype(np.int64)

    # ----------------------------------------------------------------------------- inference
    @torch.inference_mode()
    def predict(self, obs: np.ndarray | Mapping[str, np.ndarray], deterministic: bool = True) -> np.ndarray:
        """Action(s) for one observation or a batch of observations.

        Parameters
        ----------
        obs
            A single observation (shape of the observation space, or a dict for ``Dict`` spaces)
            or a batch with a leading batch dimension.
        deterministic
            Return the mean / most likely action instead of a sample.

        Returns
        -------
        numpy.ndarray
            Actions, clipped to the bounds of a ``Box`` action space; no batch dimension for a
            single observation.
        """
        single_shape = (self.observation_space[next(iter(self.observation_space.spaces))].shape
                        if isinstance(self.observation_space, gym.spaces.Dict) else self.observation_space.shape)
        first = obs[next(iter(self.observation_space.spaces))] if isinstance(self.observation_space, gym.spaces.Dict) else obs
        single = np.ndim(first) == len(single_shape)
        flat = flatten_obs(obs, self.observation_space, batch_dims=0 if single else 1)
        if flat.shape[-1] != self.obs_dim:
            raise SpaceError(f"Observation has {flat.shape[-1]} entries, the policy expects {self.obs_dim}.")
        x = torch.as_tensor(flat, device=self.actor_head.weight.device).reshape(-1, self.obs_dim)
        params = self.dist_params(x)
        act = self.mode(params) if deterministic else self.sample(params)
        out = self.to_env_action(act)
        return out[0] if single else out
