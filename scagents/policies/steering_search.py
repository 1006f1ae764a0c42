"""Searchers for fate-steering schedules, side by side, with budgets counted in twin simulations.

Every searcher takes a :class:`~scagents.envs.steering.TwinSteerer` (one population seed, so a
schedule's objective is deterministic), a budget of simulations and a seed, and returns a
:class:`SearchResult` with every schedule it evaluated in order. A black-box searcher never pays
twice for a schedule it has already evaluated; the RL searchers pay one simulation per episode.

=============  =====================================================================================
``exhaustive``  every canonical schedule (the known optimum; small spaces only)
``random``      uniform draws from the schedule space without replacement
``greedy``      one intervention at a time: the best single one (any time), then the best addition
                to it, while the objective improves
``cem``         cross-entropy method over independent per-decision categorical distributions
``bo``          Bayesian optimisation: a Gaussian process on one-hot schedule encodings, batches
                of UCB picks from the schedule space
``trpo_ppo``, ``ppo``, ``trpo``, ``ppo_kl``  :func:`scagents.policies.train` on
                :class:`~scagents.envs.steering.SteeringEnv` (γ = 0.99; ``ppo_kl``: PPO with the
                adaptive KL penalty); the answer is the best schedule of its episodes
=============  =====================================================================================
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from scagents.envs.steering import (
    Schedule,
    SteeringEnv,
    TwinSteerer,
    canonical,
    enumerate_schedules,
)

__all__ = ["SearchResult", "SEARCHERS", "RL_SEARCHERS", "search", "exhaustive", "random_search",
           "greedy", "cem", "bayes_opt", "rl_search"]


@dataclass
class SearchResult:
    """Schedules evaluated by a searcher, in order, with their objectives."""

    name: str
    evaluated: list[tuple[Schedule, float]] = field(default_factory=list)

    @property
    def n_simulations(self) -> int:
        return len(self.evaluated)

    @property
    def best(self) -> tuple[Schedule, float]:
        return max(self.evaluated, key=lambda e: e[1])

    def best_within(self, n: int) -> float:
        """Best objective among the first ``n`` simulations (``-inf`` when none)."""
        vals = [v for _, v in self.evaluated[:n]]
        return max(vals) if vals else -np.inf

    def ranked(self, k: int = 5) -> list[tuple[Schedule, float]]:
        """The ``k`` best distinct schedules."""
        seen: dict[Schedule, float] = {}
        for s, v in self.evaluated:
            seen[s] = v
        return sorted(seen.items(), key=lambda e: -e[1])[:k]


class _Oracle:
    """Memoised objective with a budget: a schedule is paid once."""

    def __init__(self, steerer: TwinSteerer, budget: int, name: str):
        self.steerer, self.budget = steerer, int(budget)
        self.memo: dict[Schedule, float] = {}
        self.result = SearchResult(name)

    @property
    def left(self) -> int:
        return self.budget - len(self.result.evaluated)

    def __call__(self, schedule: Sequence[int]) -> float | None:
        s = canonical(schedule, self.steerer.task.max_interventions)
        if s in self.memo:
            return self.memo[s]
        if self.left <= 0:
            return None
        v = self.steerer.objective(s)
        self.memo[s] = v
        self.result.evaluated.append((s, v))
        return v


def exhaustive(steerer: TwinSteerer, budget: int | None = None, seed: int = 0) -> SearchResult:
    """Evaluate every schedule (budget ignored)."""
    space = enumerate_schedules(steerer.task)
    oracle = _Oracle(steerer, len(space), "exhaustive")
    if hasattr(steerer, "prefetch"):
        steerer.prefetch(space)   # all prefixes, batched (same states as one at a time)
    # prefix order keeps the cache hot: schedules sharing early interventions are neighbours
    for s in sorted(space):
        oracle(s)
    return oracle.result


def random_search(steerer: TwinSteerer, budget: int, seed: int = 0) -> SearchResult:
    """Uniform draws from the schedule space without replacement."""
    space = enumerate_schedules(steerer.task)
    rng = np.random.default_rng(seed)
    oracle = _Oracle(steerer, budget, "random")
    for i in rng.permutation(len(space))[:budget]:
        oracle(space[i])
    return oracle.result


def greedy(steerer: TwinSteerer, budget: int, seed: int = 0) -> SearchResult:
    """Add the best single intervention (any free decision time) while it improves the objective."""
    t = steerer.task
    oracle = _Oracle(steerer, budget, "greedy")
    current: list[int] = [0] * t.n_decisions
    best = oracle(current)
    for _ in range(t.max_interventions):
        moves = [(k, a) for k in range(t.n_decisions) if current[k] == 0 for a in range(1, t.n_actions)]
        scored = []
        for k, a in moves:
            trial = list(current)
            trial[k] = a
            v = oracle(trial)
            if v is None:
                break
            scored.append((v, k, a))
        if not scored:
            break
        v, k, a = max(scored)
        if best is not None and v <= best:
            break
        current[k], best = a, v
    return oracle.result


def cem(steerer: TwinSteerer, budget: int, seed: int = 0, *, population: int = 40,
        elite_frac: float = 0.2, smoothing: float = 0.7) -> SearchResult:
    """Cross-entropy method: per-decision categorical distributions refit to the elite."""
    t = steerer.task
    rng = np.random.default_rng(seed)
    oracle = _Oracle(steerer, budget, "cem")
    # start near "few interventions": do-nothing as likely as all candidates together at each time
    probs = np.full((t.n_decisions, t.n_actions), 0.5 / (t.n_actions - 1))
    probs[:, 0] = 0.5
    stale = 0
    while oracle.left > 0 and stale < 20:
        batch = [tuple(int(rng.choice(t.n_actions, p=p)) for p in probs) for _ in range(population)]
        n_before = oracle.result.n_simulations
        scored = [(oracle(s), canonical(s, t.max_interventions)) for s in batch]
        scored = [(v, s) for v, s in scored if v is not None]
        stale = stale + 1 if oracle.result.n_simulations == n_before else 0
        if not scored:
            break
        scored.sort(key=lambda e: -e[0])
        elite = [s for _, s in scored[:max(1, int(elite_frac * len(scored)))]]
        counts = np.zeros_like(probs)
        for s in elite:
            counts[np.arange(t.n_decisions), s] += 1
        probs = smoothing * counts / len(elite) + (1 - smoothing) * probs
        probs = 0.98 * probs + 0.02 / t.n_actions  # keep every action possible
    return oracle.result


def _encode(schedules: Sequence[Schedule], n_actions: int) -> np.ndarray:
    s = np.asarray(schedules, dtype=np.int64)
    out = np.zeros((len(s), s.shape[1] * n_actions), np.float32)
    for k in range(s.shape[1]):
        out[np.arange(len(s)), k * n_actions + s[:, k]] = 1.0
    return out


def bayes_opt(steerer: TwinSteerer, budget: int, seed: int = 0, *, n_init: int | None = None,
              batch: int | None = None, kappa: float = 2.0, pool: int = 1500) -> SearchResult:
    """Batch GP-UCB over one-hot schedule encodings (scikit-learn's Gaussian process)."""
    from sklearn.gaussian_process import GaussianProcessRegressor
    from sklearn.gaussian_process.kernels import RBF, ConstantKernel, WhiteKernel

    t = steerer.task
    rng = np.random.default_rng(seed)
    oracle = _Oracle(steerer, budget, "bo")
    space = enumerate_schedules(t)
    if len(space) > pool:
        space = [space[i] for i in rng.choice(len(space), pool, replace=False)]
    enc = _encode(space, t.n_actions)
    n_init = n_init or max(5, budget // 10)
    batch = batch or max(5, budget // 6)
    for i in rng.permutation(len(space))[:n_init]:
        oracle(space[i])
    # fixed kernel (no hyper-parameter fit): schedules differing at one decision are √2 apart
    kernel = ConstantKernel(1.0) * RBF(length_scale=1.5) + WhiteKernel(1e-2)
    while oracle.left > 0:
        seen = set(oracle.memo)
        free = np.array([i for i, s in enumerate(space) if s not in seen])
        if free.size == 0:
            break
        xs = _encode(list(oracle.memo), t.n_actions)
        ys = np.array(list(oracle.memo.values()))
        gp = GaussianProcessRegressor(kernel, normalize_y=True, optimizer=None)
        gp.fit(xs, ys)
        mu, sd = gp.predict(enc[free], return_std=True)
        pick = free[np.argsort(-(mu + kappa * sd))[:min(batch, oracle.left)]]
        for i in pick:
            oracle(space[i])
    return oracle.result


RL_ALGOS = {"trpo_ppo": ("trpo_ppo", "clip"), "ppo": ("ppo", "clip"), "trpo": ("trpo", "clip"),
            "ppo_kl": ("ppo", "adaptive_kl")}


def rl_search(steerer: TwinSteerer, budget: int, seed: int = 0, *, algo: str = "trpo_ppo",
              n_envs: int = 8, episodes_per_env: int | None = None, **config) -> SearchResult:
    """Train a policy on :class:`SteeringEnv` for ``budget`` episodes; every episode is a simulation.

    ``config`` overrides :class:`~scagents.policies.TrainConfig` fields (defaults here: γ = 0.99,
    2 × 64 hidden units, lr 1e-3, entropy bonus 0.01). Each rollout holds ``n_envs ·
    episodes_per_env`` episodes (default: enough for about 8 updates, 1-4 per environment).
    """
    from scagents.policies import TrainConfig, train

    t = steerer.task
    name = algo
    algo_name, penalty = RL_ALGOS[algo]
    n_before = len(steerer.history)
    d = t.n_decisions
    if episodes_per_env is None:   # at least ~8 updates within the budget, at most 4 episodes per env
        episodes_per_env = int(np.clip(budget // (8 * n_envs), 1, 4))
    n_steps = d * episodes_per_env
    cfg = dict(algo=algo_name, total_steps=max(budget * d, n_envs * n_steps), n_envs=n_envs,
               n_steps=n_steps, gamma=0.99, gae_lambda=0.95, hidden_sizes=(64, 64), lr=1e-3,
               ent_coef=0.01, seed=seed, ppo_penalty=penalty)
    cfg.update(config)

    def stop(row, policy) -> bool:
        return len(steerer.history) - n_before < budget

    train(lambda: SteeringEnv(t, steerer.seed, steerer=steerer), TrainConfig(**cfg), progress=False,
          callback=stop)
    result = SearchResult(name, list(steerer.history[n_before:n_before + budget]))
    return result


SEARCHERS: dict[str, Callable[..., SearchResult]] = {
    "exhaustive": exhaustive, "random": random_search, "greedy": greedy, "cem": cem, "bo": bayes_opt,
    **{k: (lambda st, b, s=0, _a=k, **kw: rl_search(st, b, s, algo=_a, **kw)) for k in RL_ALGOS},
}
RL_SEARCHERS = tuple(RL_ALGOS)


def search(name: str, steerer: TwinSteerer, budget: int, seed: int = 0, **kw) -> SearchResult:
    """Run the searcher ``name`` (a key of :data:`SEARCHERS`)."""
    if name not in SEARCHERS:
        raise KeyError(f"Unknown searcher {name!r}; use one of {', '.join(SEARCHERS)}.")
    return SEARCHERS[name](steerer, budget, seed, **kw)
