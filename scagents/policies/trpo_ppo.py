"""TRPO → PPO: the two-stage policy optimiser of arXiv:2510.13018, plus PPO-only and TRPO-only.

"Escaping Local Optima in the Waddington Landscape" (Algorithm 1) trains a policy with trust-region
policy optimisation (TRPO) for the first part of the step budget, so that early, noisy updates stay
inside a KL ball and escape poor local optima, and then fine-tunes with proximal policy optimisation
(PPO), whose first-order minibatch updates are cheaper. This module is the whole algorithm, written
top to bottom so that it can be read beside the paper; each function is named after its equation:

==========================  =====================================================================
eq. 3  surrogate gradient   ``g = ∇_θ L(θ)``, ``L(θ) = Ê[π_θ(a|s) / π_old(a|s) · Â]``
eq. 5  Fisher-vector prod.  ``Hv = ∇_θ((∇_θ KL̄(θ_old, θ))ᵀ v) + damping · v`` (double backprop)
CG                          matrix-free conjugate gradient for ``H d = g``
eq. 6  step size            ``α = sqrt(2δ / (gᵀd + ε))`` (``gᵀd ≈ dᵀHd`` once CG has converged)
line search                 backtrack ``θ_old + βʲ α d`` until ``KL̄ ≤ δ`` and ``L`` improves,
                            otherwise keep ``θ_old``
eq. 7  clipped surrogate    ``min(r Â, clip(r, 1-ε, 1+ε) Â)``, ``r = π_θ / π_old``
eq. 8  PPO objective        ``L_clip - c_v · (V - R)² + c_e · H[π]`` (minimised as its negative)
==========================  =====================================================================

Advantages are GAE(γ, λ) estimates; the TRPO step normalises them over the batch, PPO per
minibatch. During the TRPO phase the value function is fitted by a few epochs of minibatch
regression; during PPO it is part of the eq. 8 loss. The same :class:`ActorCritic` (separate actor
and critic bodies with one branch per observation modality) is used by all three algorithms.

Implementation details (and where they come from)
-------------------------------------------------
* The Fisher-vector product uses a ``fvp_fraction`` subsample of the batch (OpenAI Baselines' TRPO
  uses every 5th sample); the line search checks the KL bound on the *full* batch.
* Adam with ``eps=1e-5``, global gradient clipping, orthogonal initialisation and a
  state-independent log-std follow CleanRL's PPO.
* Truncated episodes are bootstrapped with ``γ V(s_final)``; terminated ones are not.

Speed (nothing here changes what is computed for the update itself)
-------------------------------------------------------------------
* ``π_old(·|s)`` is the distribution stored during the rollout (``batch["dist"]``), not a second
  forward pass over the batch.
* Adam uses PyTorch's fused kernel where available (one call for all parameters).
* Per-minibatch statistics stay tensors until the end of the update (no ``.item()`` per step), the
  minibatch observations are gathered once for actor and critic, and the logged diagnostics
  ``mean_kl`` (PPO) and ``entropy`` (TRPO) are estimated on at most ``DIAGNOSTIC_STATES`` states.
"""

from __future__ import annotations

import csv
import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Literal

import gymnasium as gym
import numpy as np
import torch
from gymnasium.vector import VectorEnv
from torch import nn

from scagents._atomic import atomic_path, write_json
from scagents.errors import ScagentsError
from scagents.policies.networks import ActorCritic, SpaceError
from scagents.policies.rollout import RolloutBuffer, VecEnvRunner, as_vector_env

__all__ = [
    "TrainConfig", "TrainConfigError", "TrainingLog", "train", "save", "load",
    "surrogate_objective", "surrogate_gradient", "mean_kl", "make_fisher_vector_product",
    "conjugate_gradient", "trpo_step_size", "trpo_line_search", "trpo_update", "fit_value",
    "ppo_clip_objective", "ppo_update", "adapt_kl_coef", "old_distribution", "make_adam", "LOG_COLUMNS",
]

Dist = tuple[torch.Tensor, torch.Tensor | None]

DIAGNOSTIC_STATES = 4096
"""States used to estimate logged-only diagnostics (PPO's end-of-update KL, TRPO's entropy)."""


class TrainConfigError(ScagentsError, ValueError):
    """A :class:`TrainConfig` field has an invalid value."""


# =============================================================================== configuration
@dataclass
class TrainConfig:
    """Hyper-parameters of PPO, TRPO and TRPO→PPO (CleanRL ``Args`` style)."""

    algo: Literal["ppo", "trpo", "trpo_ppo"] = "trpo_ppo"
    """``"trpo_ppo"``: TRPO for the first ``trpo_fraction`` of the steps, then PPO (the paper);
    ``"ppo"`` / ``"trpo"``: one algorithm throughout."""
    total_steps: int = 100_000
    """Environment steps (summed over the parallel environments) to train for."""
    n_envs: int = 8
    """Parallel environments when a plain ``gymnasium.Env`` is given (a ``VectorEnv`` keeps its own)."""
    n_steps: int = 128
    """Steps per environment in each rollout; one update per rollout of ``n_envs * n_steps`` steps."""
    gamma: float = 0.99
    """Discount factor γ."""
    gae_lambda: float = 0.95
    """GAE λ."""
    delta: float = 0.01
    """TRPO KL budget δ: mean KL(π_old ‖ π_new) of an accepted step is at most δ (eq. 6)."""
    damping: float = 0.1
    """Damping added to the Fisher-vector product (eq. 5)."""
    cg_iters: int = 10
    """Conjugate-gradient iterations for ``H d = g``."""
    backtrack_iters: int = 10
    """Maximum number of line-search trials (step fractions β⁰ … β^(n-1))."""
    backtrack_coeff: float = 0.5
    """Line-search shrink factor β."""
    fvp_fraction: float = 0.2
    """Fraction of the batch used for Fisher-vector products (speed; the KL check uses all of it)."""
    vf_epochs: int = 5
    """Epochs of value regression after each TRPO step."""
    ppo_epochs: int = 4
    """PPO epochs N_ppo over each rollout."""
    n_minibatches: int = 4
    """Minibatches per epoch (PPO and TRPO-phase value regression)."""
    clip_coef: float = 0.2
    """PPO clip range ε (eq. 7)."""
    vf_coef: float = 0.5
    """Value-loss coefficient c_v (eq. 8)."""
    ent_coef: float = 0.0
    """Entropy-bonus coefficient c_e (eq. 8)."""
    lr: float = 3e-4
    """Adam learning rate (PPO and value regression)."""
    max_grad_norm: float = 0.5
    """Global gradient-norm clip for Adam updates."""
    hidden_sizes: tuple[int, ...] = (256, 256)
    """Shared hidden layers of actor and critic (the paper: 2 × 256)."""
    branch_sizes: tuple[int, ...] = (64,)
    """Hidden layers of each modality branch (only used with several modalities)."""
    init_log_std: float = 0.0
    """Initial log standard deviation of a Gaussian policy."""
    critic_init_gain: float = 1.0
    """Orthogonal-init gain of the value head (small when rewards are small, e.g. 0.01 for the
    response tasks, whose rewards are squared errors of order 1e-2 or, per component, 1e-4)."""
    target_kl: float | None = None
    """PPO: stop the epochs of an update early once the approximate KL(π_old ‖ π_θ) of a
    minibatch exceeds this (CleanRL's ``target_kl``); ``None`` never stops."""
    reward_components: bool = False
    """Factored rewards: use the environment's reward split over the action dimensions
    (``info["reward_components"]``, summing to the reward) so that each dimension of a Gaussian
    policy gets its own value head output and advantage. The policy gradient stays unbiased when
    dimension j's reward depends only on ``a_j`` and actions do not change later observations (the
    response environments: separable squared error, teacher forcing) and its variance no longer
    grows with the number of dimensions. ``False``: one scalar reward (the paper, SB3)."""
    ppo_penalty: Literal["clip", "adaptive_kl"] = "clip"
    """PPO phase objective: ``"clip"``, the clipped surrogate of eq. 7 (Algorithm 1), or
    ``"adaptive_kl"``, ``r Â - β KL(π_old ‖ π_θ)`` with β adapted after each update
    (:func:`adapt_kl_coef`; Schulman et al. 2017, sec. 4)."""
    kl_target: float = 0.01
    """Target mean KL per update of the adaptive KL penalty."""
    kl_coef: float = 1.0
    """Initial KL penalty coefficient β of ``"adaptive_kl"``."""
    trpo_fraction: float = 0.5
    """Share of the step budget spent in the TRPO phase of ``trpo_ppo`` (the paper: first half)."""
    seed: int = 0
    """Seed of the network initialisation, action sampling, minibatch order and ``env.reset``."""
    device: str = "cpu"
    """Torch device (small MLPs are fastest on the CPU)."""
    torch_threads: int | None = 1
    """``torch.set_num_threads`` value for training (``None`` leaves it alone)."""

    def __post_init__(self) -> None:
        self.hidden_sizes = tuple(int(h) for h in self.hidden_sizes)
        self.branch_sizes = tuple(int(b) for b in self.branch_sizes)
        if self.algo not in ("ppo", "trpo", "trpo_ppo"):
            raise TrainConfigError(f"algo must be 'ppo', 'trpo' or 'trpo_ppo', got {self.algo!r}.")
        positive_ints = ("total_steps", "n_envs", "n_steps", "cg_iters", "backtrack_iters", "vf_epochs",
                         "ppo_epochs", "n_minibatches")
        for name in positive_ints:
            if int(getattr(self, name)) < 1:
                raise TrainConfigError(f"{name} must be a positive integer, got {getattr(self, name)!r}.")
        checks = {
            "gamma": 0 <= self.gamma <= 1, "gae_lambda": 0 <= self.gae_lambda <= 1,
            "delta": self.delta > 0, "damping": self.damping >= 0,
            "backtrack_coeff": 0 < self.backtrack_coeff < 1, "fvp_fraction": 0 < self.fvp_fraction <= 1,
            "clip_coef": self.clip_coef > 0, "lr": self.lr > 0, "max_grad_norm": self.max_grad_norm > 0,
            "trpo_fraction": 0 <= self.trpo_fraction <= 1, "hidden_sizes": all(h > 0 for h in self.hidden_sizes),
            "critic_init_gain": self.critic_init_gain > 0,
            "target_kl": self.target_kl is None or self.target_kl > 0,
            "ppo_penalty": self.ppo_penalty in ("clip", "adaptive_kl"),
            "kl_target": self.kl_target > 0, "kl_coef": self.kl_coef >= 0,
        }
        bad = [k for k, ok in checks.items() if not ok]
        if bad:
            raise TrainConfigError(f"Invalid TrainConfig value(s): {', '.join(f'{k}={getattr(self, k)!r}' for k in bad)}. "
                                   "See the TrainConfig docstrings for the allowed ranges.")

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> TrainConfig:
        """Build a config from a dict (unknown keys are rejected)."""
        names = {f.name for f in fields(cls)}
        unknown = set(d) - names
        if unknown:
            raise TrainConfigError(f"Unknown TrainConfig field(s): {sorted(unknown)}; known: {sorted(names)}.")
        return cls(**dict(d))


# =============================================================================== training log
LOG_COLUMNS: tuple[str, ...] = (
    "update", "step", "phase", "episodic_return_mean", "episodic_length_mean", "episodes",
    "mean_kl", "approx_kl", "entropy", "policy_loss", "value_loss", "clip_fraction",
    "trpo_step_size", "linesearch_accepted", "backtracks", "ppo_epochs_done", "skipped_minibatches", "kl_coef", "sps",
    "time_s",
)
"""Columns of the per-update training log (NaN where a column does not apply to the phase)."""


@dataclass
class TrainingLog:
    """Per-update training records (see :data:`LOG_COLUMNS`)."""

    rows: list[dict[str, Any]] = field(default_factory=list)

    def append(self, row: Mapping[str, Any]) -> None:
        self.rows.append({c: row.get(c, math.nan) for c in LOG_COLUMNS})

    def __len__(self) -> int:
        return len(self.rows)

    def column(self, name: str) -> list[Any]:
        """Values of one column, in update order."""
        return [r[name] for r in self.rows]

    def to_frame(self):
        """The log as a :class:`pandas.DataFrame`."""
        import pandas as pd

        return pd.DataFrame(self.rows, columns=list(LOG_COLUMNS))

    def write(self, path: str | Path) -> Path:
        """Write the log as CSV (``.csv``) or JSON (``.json``, a list of row objects)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.suffix.lower() == ".json":
            write_json(path, self.rows)
        elif path.suffix.lower() == ".csv":
            with atomic_path(path) as tmp, tmp.open("w", newline="") as fh:
                writer = csv.DictWriter(fh, fieldnames=list(LOG_COLUMNS))
                writer.writeheader()
                writer.writerows(self.rows)
        else:
            raise ValueError(f"Unknown training-log format {path.suffix!r} for {path}; use a .csv or .json path.")
        return path


# =============================================================================== flat parameters
def flat_params(params: Sequence[nn.Parameter]) -> torch.Tensor:
    """Concatenate parameters into one vector (a copy)."""
    return torch.cat([p.detach().reshape(-1) for p in params])


def set_flat_params(params: Sequence[nn.Parameter], flat: torch.Tensor) -> None:
    """Write a flat vector back into the parameters."""
    i = 0
    with torch.no_grad():
        for p in params:
            n = p.numel()
            p.copy_(flat[i:i + n].view_as(p))
            i += n


def _flat_grad(out: torch.Tensor, params: Sequence[nn.Parameter], **kw) -> torch.Tensor:
    grads = torch.autograd.grad(out, params, allow_unused=True, **kw)
    return torch.cat([(torch.zeros_like(p) if g is None else g).reshape(-1) for g, p in zip(grads, params, strict=True)])


# =============================================================================== TRPO (eq. 3-6)
def surrogate_objective(policy: ActorCritic, obs: torch.Tensor, actions: torch.Tensor,
                        old_logprobs: torch.Tensor, advantages: torch.Tensor) -> torch.Tensor:
    """Importance-weighted advantage surrogate ``L(θ) = mean(π_θ(a|s) / π_old(a|s) · Â)``.

    With factored rewards (``advantages`` and ``old_logprobs`` of shape ``(batch, act_dim)``) it is
    ``mean_s Σ_j π_θ,j(a_j|s) / π_old,j(a_j|s) · Â_j``.
    """
    params = policy.dist_params(obs)
    if advantages.ndim == 2:
        ratio = torch.exp(policy.log_prob_components(params, actions) - old_logprobs)
        return (ratio * advantages).sum(-1).mean()
    ratio = torch.exp(policy.log_prob(params, actions) - old_logprobs)
    return (ratio * advantages).mean()


def surrogate_gradient(policy: ActorCritic, obs: torch.Tensor, actions: torch.Tensor,
                       old_logprobs: torch.Tensor, advantages: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Eq. 3: ``g = ∇_θ L(θ)`` over the policy parameters; returns ``(g, L)``."""
    surr = surrogate_objective(policy, obs, actions, old_logprobs, advantages)
    return _flat_grad(surr, policy.policy_parameters()), surr.detach()


def mean_kl(policy: ActorCritic, obs: torch.Tensor, old_dist: Dist) -> torch.Tensor:
    """``KL̄ = mean_s KL(π_old(·|s) ‖ π_θ(·|s))`` (differentiable in θ)."""
    return policy.kl(old_dist, policy.dist_params(obs)).mean()


def make_fisher_vector_product(policy: ActorCritic, obs: torch.Tensor, old_dist: Dist,
                               damping: float) -> Callable[[torch.Tensor], torch.Tensor]:
    """Eq. 5: return ``v ↦ ∇_θ((∇_θ KL̄)ᵀ v) + damping · v`` evaluated at the current θ.

    ``∇_θ KL̄`` is built once with ``create_graph=True``; each product is one extra backward pass
    (double backprop), so ``H`` is never formed.
    """
    params = policy.policy_parameters()
    grad_kl = _flat_grad(mean_kl(policy, obs, old_dist), params, create_graph=True)

    def fvp(v: torch.Tensor) -> torch.Tensor:
        return _flat_grad(grad_kl @ v, params, retain_graph=True) + damping * v

    return fvp


def conjugate_gradient(matvec: Callable[[torch.Tensor], torch.Tensor], b: torch.Tensor,
                       iters: int = 10, tol: float = 1e-10) -> torch.Tensor:
    """Solve ``A x = b`` for symmetric positive-definite ``A`` given only ``v ↦ A v``.

    Parameters
    ----------
    matvec
        Function computing ``A v``.
    b
        Right-hand side.
    iters
        Maximum number of iterations (exact after ``len(b)`` in exact arithmetic).
    tol
        Stop when the squared residual norm falls below this.
    """
    x = torch.zeros_like(b)
    r = b.clone()
    p = b.clone()
    rr = r @ r
    for _ in range(iters):
        if rr <= tol:
            break
        Ap = matvec(p)
        alpha = rr / (p @ Ap)
        x += alpha * p
        r -= alpha * Ap
        rr_new = r @ r
        p = r + (rr_new / rr) * p
        rr = rr_new
    return x


def trpo_step_size(g: torch.Tensor, d: torch.Tensor, delta: float, eps: float = 1e-8) -> float:
    """Eq. 6: ``α = sqrt(2δ / (gᵀd + ε))``, the step that puts the quadratic KL model at δ.

    The exact form is ``sqrt(2δ / dᵀHd)``; with ``H d = g`` solved by CG, ``gᵀd`` equals ``dᵀHd``
    and needs no extra Fisher-vector product.
    """
    return math.sqrt(2.0 * delta / (float(g @ d) + eps))


@dataclass
class LineSearchResult:
    """Outcome of :func:`trpo_line_search`."""

    accepted: bool
    backtracks: int
    step_fraction: float
    kl: float
    surrogate_old: float
    surrogate_new: float


def trpo_line_search(policy: ActorCritic, obs: torch.Tensor, actions: torch.Tensor, old_logprobs: torch.Tensor,
                     advantages: torch.Tensor, old_dist: Dist, full_step: torch.Tensor, *, delta: float,
                     backtrack_iters: int = 10, backtrack_coeff: float = 0.5) -> LineSearchResult:
    """Backtracking line search on ``θ_old + βʲ · full_step``, ``j = 0 … backtrack_iters - 1``.

    A trial is accepted when the mean KL on ``obs`` is at most ``delta`` *and* the surrogate
    improves on its value at ``θ_old``. If no trial is accepted the parameters are restored.
    """
    params = policy.policy_parameters()
    theta_old = flat_params(params)
    with torch.no_grad():
        surr_old = float(surrogate_objective(policy, obs, actions, old_logprobs, advantages))
        for j in range(backtrack_iters):
            frac = backtrack_coeff ** j
            set_flat_params(params, theta_old + frac * full_step)
            kl = float(mean_kl(policy, obs, old_dist))
            surr = float(surrogate_objective(policy, obs, actions, old_logprobs, advantages))
            if math.isfinite(kl) and kl <= delta and surr > surr_old:
                return LineSearchResult(True, j, frac, kl, surr_old, surr)
        set_flat_params(params, theta_old)
    return LineSearchResult(False, backtrack_iters, 0.0, 0.0, surr_old, surr_old)


def fit_value(policy: ActorCritic, batch: Mapping[str, torch.Tensor], optimizer: torch.optim.Optimizer, *,
              epochs: int, n_minibatches: int, max_grad_norm: float, generator: torch.Generator) -> float:
    """Regress ``V_φ(s)`` on the GAE returns for a few epochs; returns the last epoch's mean loss."""
    obs, returns = batch["obs"], batch["returns"]
    n = obs.shape[0]
    mb = max(1, n // n_minibatches)
    params = policy.value_parameters()
    losses: list[torch.Tensor] = []
    for _ in range(epochs):
        losses = []
        perm = torch.randperm(n, generator=generator, device=obs.device)
        for start in range(0, n, mb):
            idx = perm[start:start + mb]
            loss = 0.5 * (policy.value(obs[idx]) - returns[idx]).pow(2).mean()
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            nn.utils.clip_grad_norm_(params, max_grad_norm)
            optimizer.step()
            losses.append(loss.detach())
    return float(torch.stack(losses).mean())


def old_distribution(policy: ActorCritic, batch: Mapping[str, torch.Tensor]) -> Dist:
    """``π_old(·|s)`` for every state of the batch (constant in θ).

    Uses the means / logits stored by the rollout (``batch["dist"]``) and the current log-std,
    which the rollout policy shares; without them, one forward pass of the current policy.
    """
    if "dist" not in batch:
        with torch.no_grad():
            return tuple(None if t is None else t.detach() for t in policy.dist_params(batch["obs"]))
    stored = batch["dist"]
    if policy.continuous:
        return stored, policy.log_std.detach().clone().expand_as(stored)
    return stored, None


def normalize_advantages(adv: torch.Tensor) -> torch.Tensor:
    """Centre and scale advantages; factored ``(batch, dims)`` ones are centred per dimension and
    share one scale, so a dimension with larger errors keeps its larger weight."""
    if adv.shape[0] < 2:
        return adv
    centred = adv - adv.mean(0, keepdim=True) if adv.ndim == 2 else adv - adv.mean()
    return centred / (centred.std() + 1e-8)


def old_logprobs_of(policy: ActorCritic, batch: Mapping[str, torch.Tensor], old_dist: Dist) -> torch.Tensor:
    """``log π_old(a|s)`` as the surrogate needs it: per dimension for factored rewards."""
    if batch["advantages"].ndim == 2:
        with torch.no_grad():
            return policy.log_prob_components(old_dist, batch["actions"])
    return batch["logprobs"]


def trpo_update(policy: ActorCritic, batch: Mapping[str, torch.Tensor], cfg: TrainConfig,
                value_optimizer: torch.optim.Optimizer, generator: torch.Generator) -> dict[str, Any]:
    """One TRPO major step (Algorithm 1, TRPO phase) followed by value regression."""
    obs, actions = batch["obs"], batch["actions"]
    adv = normalize_advantages(batch["advantages"])
    old_dist = old_distribution(policy, batch)
    old_logp = old_logprobs_of(policy, batch, old_dist)
    g, _ = surrogate_gradient(policy, obs, actions, old_logp, adv)                     # eq. 3
    n = obs.shape[0]
    n_fvp = max(1, int(round(cfg.fvp_fraction * n)))
    if n_fvp < n:
        sub = torch.randperm(n, generator=generator, device=obs.device)[:n_fvp]
        fvp_obs = obs[sub]
        fvp_old = tuple(None if t is None else t[sub] for t in old_dist)
    else:
        fvp_obs, fvp_old = obs, old_dist
    fvp = make_fisher_vector_product(policy, fvp_obs, fvp_old, cfg.damping)             # eq. 5
    d = conjugate_gradient(fvp, g, iters=cfg.cg_iters)                                  # H d = g
    alpha = trpo_step_size(g, d, cfg.delta)                                             # eq. 6
    ls = trpo_line_search(policy, obs, actions, old_logp, adv, old_dist, alpha * d, delta=cfg.delta,
                          backtrack_iters=cfg.backtrack_iters, backtrack_coeff=cfg.backtrack_coeff)
    v_loss = fit_value(policy, batch, value_optimizer, epochs=cfg.vf_epochs, n_minibatches=cfg.n_minibatches,
                       max_grad_norm=cfg.max_grad_norm, generator=generator)
    with torch.no_grad():
        entropy = float(policy.entropy(policy.dist_params(obs[:DIAGNOSTIC_STATES])).mean())
    return {"policy_loss": -ls.surrogate_new, "value_loss": v_loss, "mean_kl": ls.kl, "entropy": entropy,
            "trpo_step_size": alpha * ls.step_fraction, "linesearch_accepted": ls.accepted,
            "backtracks": ls.backtracks}


# =============================================================================== PPO (eq. 7-8)
MAX_LOG_RATIO = 20.0
"""Clamp of ``log(π_θ / π_old)`` in the PPO loss (a guard against ``exp`` overflow only)."""


def ppo_clip_objective(ratio: torch.Tensor, advantages: torch.Tensor, clip_coef: float) -> torch.Tensor:
    """Eq. 7 per sample: ``min(r Â, clip(r, 1 - ε, 1 + ε) Â)`` (to be maximised)."""
    return torch.minimum(ratio * advantages, torch.clamp(ratio, 1.0 - clip_coef, 1.0 + clip_coef) * advantages)


def adapt_kl_coef(beta: float, kl: float, target: float) -> float:
    """Adaptive KL penalty rule: double β when ``kl > 1.5 target``, halve it when ``kl < target / 1.5``."""
    if kl > 1.5 * target:
        return beta * 2.0
    if kl < target / 1.5:
        return beta / 2.0
    return beta


def ppo_update(policy: ActorCritic, batch: Mapping[str, torch.Tensor], cfg: TrainConfig,
               optimizer: torch.optim.Optimizer, generator: torch.Generator,
               kl_coef: float | None = None) -> dict[str, Any]:
    """``ppo_epochs`` epochs of minibatch Adam on the negated eq. 8 objective.

    With ``cfg.ppo_penalty == "adaptive_kl"`` the eq. 7 term is replaced by ``r Â - β KL``
    (``β = kl_coef``); the returned ``kl_coef`` is β adapted to the update's mean KL.

    Safeguards (none changes a well-behaved update): log-ratios are clamped to ±``MAX_LOG_RATIO``
    before ``exp`` (far outside the clip range, where eq. 7 is flat or linear in an already huge
    ratio), a minibatch whose loss or gradient is not finite is skipped (counted in
    ``skipped_minibatches``), and with ``cfg.target_kl`` the epochs stop once a minibatch's
    approximate KL exceeds it.
    """
    obs, actions = batch["obs"], batch["actions"]
    adv_all, returns = batch["advantages"], batch["returns"]
    factored = adv_all.ndim == 2
    n = obs.shape[0]
    mb = max(1, n // cfg.n_minibatches)
    params = list(policy.parameters())
    old_dist = old_distribution(policy, batch)
    old_logp = old_logprobs_of(policy, batch, old_dist)
    stats: dict[str, list[torch.Tensor]] = {k: [] for k in ("pg", "v", "ent", "approx_kl", "clip")}
    skipped, epochs_done, stop = 0, 0, False
    for _ in range(cfg.ppo_epochs):
        perm = torch.randperm(n, generator=generator, device=obs.device)
        for start in range(0, n, mb):
            idx = perm[start:start + mb]
            mb_obs = obs[idx]
            dist = policy.dist_params(mb_obs)
            if factored:   # one ratio and one advantage per action dimension
                logratio = policy.log_prob_components(dist, actions[idx]) - old_logp[idx]
            else:
                logratio = policy.log_prob(dist, actions[idx]) - old_logp[idx]
            logratio = logratio.clamp(-MAX_LOG_RATIO, MAX_LOG_RATIO)
            ratio = logratio.exp()
            adv = normalize_advantages(adv_all[idx])                 # per-minibatch normalisation
            if cfg.ppo_penalty == "adaptive_kl":     # KL-penalised surrogate instead of eq. 7
                kl_mb = policy.kl(tuple(None if t is None else t[idx] for t in old_dist), dist)
                clipped = ratio * adv - (kl_coef if kl_coef is not None else cfg.kl_coef) * (
                    kl_mb.unsqueeze(-1) / adv.shape[-1] if factored else kl_mb)
            else:
                clipped = ppo_clip_objective(ratio, adv, cfg.clip_coef)             # eq. 7
            pg_loss = -(clipped.sum(-1) if factored else clipped).mean()
            v_loss = 0.5 * (policy.value(mb_obs) - returns[idx]).pow(2).mean()
            entropy = policy.entropy(dist).mean()
            loss = pg_loss + cfg.vf_coef * v_loss - cfg.ent_coef * entropy            # eq. 8
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            grad_norm = nn.utils.clip_grad_norm_(params, cfg.max_grad_norm)
            if not (torch.isfinite(loss) and torch.isfinite(grad_norm)):
                skipped += 1
                continue
            optimizer.step()
            with torch.no_grad():
                approx_kl = ((ratio - 1) - logratio).mean() * (logratio.shape[-1] if factored else 1)
                stats["pg"].append(pg_loss.detach())
                stats["v"].append(v_loss.detach())
                stats["ent"].append(entropy.detach())
                stats["approx_kl"].append(approx_kl)
                stats["clip"].append(((ratio - 1).abs() > cfg.clip_coef).float().mean())
            if cfg.target_kl is not None and float(approx_kl) > cfg.target_kl:
                stop = True
                break
        epochs_done += 1
        if stop:
            break
    with torch.no_grad():   # logged only: KL(π_old ‖ π_new) on a random subsample of the batch
        sub = perm[:DIAGNOSTIC_STATES]
        kl = float(mean_kl(policy, obs[sub], tuple(None if t is None else t[sub] for t in old_dist)))
    means = {k: (float(torch.stack(v).mean()) if v else math.nan) for k, v in stats.items()}
    return {"policy_loss": means["pg"], "value_loss": means["v"], "entropy": means["ent"],
            "approx_kl": means["approx_kl"], "clip_fraction": means["clip"], "mean_kl": kl,
            "ppo_epochs_done": epochs_done, "skipped_minibatches": skipped,
            "kl_coef": (adapt_kl_coef(kl_coef if kl_coef is not None else cfg.kl_coef, kl, cfg.kl_target)
                        if cfg.ppo_penalty == "adaptive_kl" else math.nan)}


def make_adam(params: Sequence[nn.Parameter], lr: float) -> torch.optim.Optimizer:
    """Adam (``eps=1e-5``), with PyTorch's fused kernel when the device supports it."""
    try:
        return torch.optim.Adam(params, lr=lr, eps=1e-5, fused=True)
    except (RuntimeError, TypeError):  # older torch / unsupported device: the per-tensor loop
        return torch.optim.Adam(params, lr=lr, eps=1e-5)


# =============================================================================== training loop
def _resolve_slices(env: Any, modality_slices: Mapping[str, slice] | None) -> Mapping[str, slice] | None:
    if modality_slices is not None:
        return modality_slices
    for obj in (env, getattr(env, "unwrapped", None)):
        sl = getattr(obj, "modality_slices", None)
        if sl is not None:
            return sl
    return None


def n_trpo_updates(cfg: TrainConfig, num_updates: int) -> int:
    """Number of leading updates that use the TRPO step."""
    if cfg.algo == "ppo":
        return 0
    if cfg.algo == "trpo":
        return num_updates
    return int(round(cfg.trpo_fraction * num_updates))


def _value_dim(cfg: TrainConfig, venv: VectorEnv) -> int:
    """1, or the number of action dimensions for factored rewards."""
    if not cfg.reward_components:
        return 1
    space = venv.single_action_space
    if not isinstance(space, gym.spaces.Box):
        raise TrainConfigError("reward_components=True needs a Box (continuous) action space: the reward is "
                               f"split over action dimensions; got {space!r}.")
    return int(np.prod(space.shape))


def _warm_start(policy: ActorCritic, init: Any, device: torch.device) -> None:
    """Copy ``init``'s weights into ``policy`` (see :func:`train`'s ``init_policy``)."""
    if isinstance(init, (str, Path)):
        init = load(init, device=str(device))
    state = init.state_dict() if isinstance(init, nn.Module) else init
    if not isinstance(state, Mapping):
        raise TrainConfigError("init_policy must be an ActorCritic, a state_dict or a saved policy file, "
                               f"got {type(init).__name__}.")
    try:
        policy.load_state_dict({k: torch.as_tensor(v) for k, v in state.items()})
    except RuntimeError as exc:
        raise TrainConfigError("init_policy does not fit the network this config builds (different spaces "
                               "or hidden sizes); warm-start from a policy trained on the same environment "
                               f"with the same TrainConfig sizes. ({str(exc).splitlines()[0]})") from exc


def train(
    env: VectorEnv | gym.Env | Callable[[], gym.Env],
    config: TrainConfig | None = None,
    *,
    modality_slices: Mapping[str, slice] | None = None,
    progress: bool = True,
    log_path: str | Path | None = None,
    callback: Callable[[dict[str, Any], ActorCritic], bool | None] | None = None,
    init_policy: ActorCritic | Mapping[str, torch.Tensor] | str | Path | None = None,
) -> tuple[ActorCritic, TrainingLog]:
    """Train an actor-critic with PPO, TRPO or the paper's TRPO→PPO schedule.

    Parameters
    ----------
    env
        A :class:`gymnasium.vector.VectorEnv` (fastest when its ``step`` handles the whole batch),
        a plain :class:`gymnasium.Env` (copied into ``config.n_envs`` environments) or a factory.
        Observations: ``Box`` or ``Dict`` of ``Box``; actions: 1-D ``Box`` or ``Discrete``.
    config
        Hyper-parameters; defaults to ``TrainConfig()`` (TRPO→PPO).
    modality_slices
        Named blocks of a flat ``Box`` observation, each given its own network branch. Defaults to
        an ``env.modality_slices`` attribute if the environment has one.
    progress
        Show a tqdm progress bar.
    log_path
        Write the training log to this ``.csv`` or ``.json`` file when training ends.
    callback
        Called after every update as ``callback(row, policy)``; returning ``False`` stops training.
    init_policy
        Warm start: an :class:`ActorCritic`, its ``state_dict()`` or a file written by :func:`save`
        whose weights initialise the network (same spaces and sizes as ``config`` builds). The
        optimiser state starts fresh.

    Returns
    -------
    policy, log
        The trained :class:`ActorCritic` (its ``train_config`` attribute holds ``config``) and the
        per-update :class:`TrainingLog`.

    Raises
    ------
    SpaceError
        Unsupported observation/action spaces or modality slices.
    TrainConfigError
        Invalid hyper-parameters, or ``init_policy`` does not fit the network ``config`` builds.
    """
    cfg = config if config is not None else TrainConfig()
    if not isinstance(cfg, TrainConfig):
        raise TrainConfigError(f"config must be a TrainConfig, got {type(cfg).__name__}.")
    venv = as_vector_env(env, cfg.n_envs)
    n_envs = venv.num_envs
    if cfg.torch_threads is not None:
        torch.set_num_threads(int(cfg.torch_threads))
    device = torch.device(cfg.device)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(cfg.seed)
        policy = ActorCritic(venv.single_observation_space, venv.single_action_space,
                             modality_slices=_resolve_slices(env, modality_slices),
                             hidden_sizes=cfg.hidden_sizes, branch_sizes=cfg.branch_sizes,
                             init_log_std=cfg.init_log_std,
                             value_dim=_value_dim(cfg, venv),
                             critic_init_gain=cfg.critic_init_gain).to(device)
    if init_policy is not None:
        _warm_start(policy, init_policy, device)
    policy.train_config = cfg
    generator = torch.Generator(device=device).manual_seed(cfg.seed)
    act_shape = (policy.act_dim,) if policy.continuous else ()
    buf = RolloutBuffer.allocate(cfg.n_steps, n_envs, policy.obs_dim, act_shape,
                                 torch.float32 if policy.continuous else torch.long, device,
                                 dist_dim=policy.act_dim, value_dim=policy.value_dim)
    runner = VecEnvRunner(venv, policy, gamma=cfg.gamma, seed=cfg.seed, generator=generator, device=device)
    ppo_optimizer = make_adam(policy.parameters(), cfg.lr)
    value_optimizer = make_adam(policy.value_parameters(), cfg.lr)

    batch_size = n_envs * cfg.n_steps
    num_updates = max(1, math.ceil(cfg.total_steps / batch_size))
    n_trpo = n_trpo_updates(cfg, num_updates)
    log = TrainingLog()
    from tqdm.auto import tqdm

    bar = tqdm(total=num_updates * batch_size, disable=not progress, unit="step", desc=cfg.algo, leave=False)
    start = time.perf_counter()
    global_step = 0
    kl_coef = cfg.kl_coef
    try:
        for update in range(num_updates):
            ep_returns, ep_lengths = runner.collect(buf)
            runner.finish(buf, cfg.gae_lambda)
            batch = buf.flat()
            phase = "trpo" if update < n_trpo else "ppo"
            if phase == "trpo":
                stats = trpo_update(policy, batch, cfg, value_optimizer, generator)
            else:
                stats = ppo_update(policy, batch, cfg, ppo_optimizer, generator, kl_coef)
                kl_coef = stats["kl_coef"]
            global_step += batch_size
            elapsed = time.perf_counter() - start
            row = {"update": update, "step": global_step, "phase": phase,
                   "episodic_return_mean": float(np.mean(ep_returns)) if ep_returns else math.nan,
                   "episodic_length_mean": float(np.mean(ep_lengths)) if ep_lengths else math.nan,
                   "episodes": len(ep_returns), "sps": global_step / max(elapsed, 1e-9), "time_s": elapsed,
                   **stats}
            log.append(row)
            bar.update(batch_size)
            if progress:
                bar.set_postfix(phase=phase, ret=f"{row['episodic_return_mean']:.3g}", refresh=False)
            if callback is not None and callback(log.rows[-1], policy) is False:
                break
    finally:
        bar.close()
        if log_path is not None:
            log.write(log_path)
    return policy, log


# =============================================================================== save / load
_FORMAT = "scagents.policies.actor_critic/1"


def _space_to_dict(space: gym.Space) -> dict[str, Any]:
    if isinstance(space, gym.spaces.Box):
        return {"type": "Box", "low": torch.from_numpy(np.array(space.low, dtype=np.float64)),
                "high": torch.from_numpy(np.array(space.high, dtype=np.float64)), "dtype": str(space.dtype)}
    if isinstance(space, gym.spaces.Discrete):
        return {"type": "Discrete", "n": int(space.n), "start": int(space.start)}
    if isinstance(space, gym.spaces.Dict):
        return {"type": "Dict", "spaces": {k: _space_to_dict(s) for k, s in space.spaces.items()}}
    raise SpaceError(f"Cannot save a policy for space {space!r}.")


def _space_from_dict(d: Mapping[str, Any]) -> gym.Space:
    if d["type"] == "Box":
        dtype = np.dtype(d["dtype"])
        return gym.spaces.Box(low=d["low"].numpy().astype(dtype), high=d["high"].numpy().astype(dtype), dtype=dtype)
    if d["type"] == "Discrete":
        return gym.spaces.Discrete(d["n"], start=d["start"])
    if d["type"] == "Dict":
        return gym.spaces.Dict({k: _space_from_dict(s) for k, s in d["spaces"].items()})
    raise SpaceError(f"Unknown saved space type {d['type']!r}.")


def save(policy: ActorCritic, path: str | Path, config: TrainConfig | None = None) -> Path:
    """Save a trained policy: weights, spaces, modality layout and training config.

    Parameters
    ----------
    policy
        The :class:`ActorCritic` returned by :func:`train`.
    path
        Output file (conventionally ``.pt``); parent folders are created.
    config
        Config to store; defaults to ``policy.train_config``.

    Returns
    -------
    pathlib.Path
        The written path.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    cfg = config if config is not None else getattr(policy, "train_config", None)
    payload = {
        "format": _FORMAT,
        "config": asdict(cfg) if cfg is not None else None,
        "observation_space": _space_to_dict(policy.observation_space),
        "action_space": _space_to_dict(policy.action_space),
        "modality_slices": {k: [s.start, s.stop] for k, s in policy.slices.items()},
        "hidden_sizes": list(policy.hidden_sizes),
        "branch_sizes": list(policy.branch_sizes),
        "value_dim": int(policy.value_dim),
        "state_dict": {k: v.detach().cpu() for k, v in policy.state_dict().items()},
    }
    with atomic_path(path) as tmp:
        torch.save(payload, tmp)
    return path


def load(path: str | Path, *, device: str = "cpu") -> ActorCritic:
    """Load a policy written by :func:`save` (its ``train_config`` attribute is restored).

    Raises
    ------
    scagents.errors.ScagentsError
        If the file is missing or not a saved scagents policy.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"No saved policy at {path}; check the path passed to scagents.policies.load.")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - re-raised with context
        raise ScagentsError(f"{path} is not a readable saved policy ({exc}); save one with scagents.policies.save.") from exc
    if not isinstance(payload, dict) or payload.get("format") != _FORMAT:
        raise ScagentsError(f"{path} is not a policy saved by scagents.policies.save (format tag missing).")
    obs_space = _space_from_dict(payload["observation_space"])
    slices = payload["modality_slices"]
    policy = ActorCritic(obs_space, _space_from_dict(payload["action_space"]),
                         modality_slices=None if isinstance(obs_space, gym.spaces.Dict) else
                         {k: slice(a, b) for k, (a, b) in slices.items()},
                         hidden_sizes=payload["hidden_sizes"], branch_sizes=payload["branch_sizes"],
                         value_dim=int(payload.get("value_dim", 1)))
    policy.load_state_dict(payload["state_dict"])
    policy.train_config = TrainConfig.from_dict(payload["config"]) if payload["config"] else None
    return policy.to(device).eval()
