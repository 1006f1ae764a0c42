"""Acquisition: which candidates to measure next.

All designers share one call, :meth:`Designer.propose`, on a candidate feature matrix ``X``
(candidates × features), the indices already measured, their rewards (hit-likeness, see
:func:`hit_likeness`), and return a table of picks with a score, an uncertainty and a rationale.

* :class:`RandomDesigner` — uniform picks (the null baseline);
* :class:`RidgeUCBDesigner` — bootstrap ensemble of ridge regressions, UCB = mean + β·sd, greedy;
* :class:`GPUCBDesigner` — Gaussian-process regression (RBF + white noise), UCB, greedy;
* :class:`PolicyDesigner` — a policy trained with the TRPO→PPO optimiser (``scagents.policies``) on
  the :class:`~scagents.campaign.design_env.DesignEnv` built from what was measured so far
  (retrained every round); it scores each candidate from its model summary (ensemble mean,
  uncertainty, neighbour rewards, novelty) and picks greedily with a feature-similarity penalty
  for diversity inside a batch.

Round 0 (nothing measured) is random for every designer.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from scagents.errors import ScagentsError

__all__ = ["hit_likeness", "RidgeEnsemble", "candidate_state", "Designer", "RandomDesigner",
           "RidgeUCBDesigner", "GPUCBDesigner", "PolicyDesigner", "make_designer", "DESIGNERS",
           "DesignerError"]


class DesignerError(ScagentsError, ValueError):
    """A designer name or option is invalid, or there is nothing left to propose."""


def hit_likeness(values: np.ndarray, objective: str = "abs", *, center: float | None = None) -> np.ndarray:
    """Reward of measured read-outs toward the goal.

    Parameters
    ----------
    values
        Measured scores (e.g. a screen's log-fold change).
    objective
        ``"abs"``: largest change either way, ``|v − center| / (1.4826·MAD)``; ``"increase"``:
        ``v``; ``"decrease"``: ``−v`` (both robust-standardised).
    center
        Centre of the ``"abs"`` objective (default: the median of ``values``).
    """
    v = np.asarray(values, dtype=np.float64)
    if v.size == 0:
        return v
    med = float(np.median(v)) if center is None else float(center)
    mad = float(np.median(np.abs(v - med))) * 1.4826
    scale = mad if mad > 0 else (float(v.std()) or 1.0)
    if objective == "abs":
        return np.abs(v - med) / scale
    if objective == "increase":
        return (v - med) / scale
    if objective == "decrease":
        return (med - v) / scale
    raise DesignerError(f"Unknown objective {objective!r}; use 'abs', 'increase' or 'decrease'.")


class RidgeEnsemble:
    """Bootstrap ensemble of ridge regressions: predictive mean and spread for every candidate."""

    def __init__(self, n_models: int = 16, alpha: float = 10.0, seed: int = 0):
        self.n_models, self.alpha, self.seed = n_models, alpha, seed

    def fit(self, X: np.ndarray, y: np.ndarray) -> RidgeEnsemble:
        rng = np.random.default_rng(self.seed)
        n, d = X.shape
        self.x_mean_ = X.mean(0)
        self.y_mean_ = float(y.mean())
        Xc, yc = X - self.x_mean_, y - self.y_mean_
        W = np.empty((self.n_models, d))
        eye = self.alpha * np.eye(d)
        for b in range(self.n_models):
            idx = rng.integers(0, n, n) if self.n_models > 1 else np.arange(n)
            A, t = Xc[idx], yc[idx]
            W[b] = np.linalg.solve(A.T @ A + eye, A.T @ t)
        self.coef_ = W
        return self

    def predict(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        P = (X - self.x_mean_) @ self.coef_.T + self.y_mean_
        return P.mean(1), P.std(1)


def _unit(X: np.ndarray) -> np.ndarray:
    n = np.linalg.norm(X, axis=1, keepdims=True)
    n[n == 0] = 1.0
    return X / n


#: Names of the per-candidate state columns built by :func:`candidate_state`.
STATE_COLUMNS = ("ridge_mean", "ridge_sd", "knn_mean", "knn_max", "nn_sim", "round")


def candidate_state(X: np.ndarray, known: np.ndarray, y_known: np.ndarray, query: np.ndarray, *,
                    round_frac: float = 0.0, k: int = 10, seed: int = 0) -> np.ndarray:
    """Per-candidate summary of what is known, the input of the policy.

    Columns (:data:`STATE_COLUMNS`): ridge-ensemble mean and sd, mean and max reward of the ``k``
    most similar measured candidates (cosine on features), similarity to the nearest measured
    candidate, and the campaign progress ``round_frac``. The reward-like columns are standardised
    by the spread of ``y_known``.
    """
    yk = np.asarray(y_known, dtype=np.float64)
    mu_y, sd_y = float(yk.mean()), float(yk.std()) or 1.0
    ens = RidgeEnsemble(n_models=8, seed=seed).fit(X[known], yk)
    mu, sd = ens.predict(X[query])
    U = _unit(X)
    S = U[query] @ U[known].T
    kk = int(min(k, len(known)))
    top = np.argpartition(-S, kk - 1, axis=1)[:, :kk]
    ny = yk[top]
    out = np.column_stack([(mu - mu_y) / sd_y, sd / sd_y, (ny.mean(1) - mu_y) / sd_y,
                           (ny.max(1) - mu_y) / sd_y, S.max(1), np.full(len(query), round_frac)])
    return out.astype(np.float32)


def _diverse_greedy(scores: np.ndarray, U: np.ndarray, batch: int, penalty: float) -> np.ndarray:
    """Greedy picks maximising ``score − penalty·max cosine similarity to earlier picks``."""
    order = np.argsort(-scores)
    pool = order[: min(len(order), max(batch * 8, batch))]
    s = scores[pool].astype(np.float64).copy()
    spread = float(s.std()) or 1.0
    maxsim = np.zeros(len(pool))
    chosen: list[int] = []
    for _ in range(min(batch, len(pool))):
        adj = s - penalty * spread * maxsim
        adj[chosen] = -np.inf
        j = int(np.argmax(adj))
        chosen.append(j)
        maxsim = np.maximum(maxsim, U[pool] @ U[pool[j]])
    return pool[chosen]


@dataclass
class Designer:
    """Base class. Subclasses implement :meth:`_score`.

    Parameters
    ----------
    seed
        Random seed.
    """

    seed: int = 0
    name: str = field(default="base", init=False)

    def propose(self, X: np.ndarray, measured: np.ndarray, rewards: np.ndarray, batch: int, *,
                exclude: np.ndarray | None = None, round_index: int = 0, n_rounds: int = 5) -> pd.DataFrame:
        """Pick ``batch`` candidates.

        Parameters
        ----------
        X
            Candidate features, shape ``(n_candidates, n_features)``.
        measured
            Integer indices of measured candidates (the only ones whose ``rewards`` are known).
        rewards
            Hit-likeness of ``measured`` (same order).
        batch
            Number of picks.
        exclude
            Indices that may not be picked (already proposed); ``measured`` are always excluded.
        round_index, n_rounds
            Progress of the campaign (a state input of the policy).

        Returns
        -------
        pandas.DataFrame
            Columns ``index`` (into ``X``), ``score``, ``uncertainty``, ``rationale``; best first.
        """
        X = np.asarray(X, dtype=np.float64)
        measured = np.asarray(measured, dtype=np.int64)
        rewards = np.asarray(rewards, dtype=np.float64)
        if len(measured) != len(rewards):
            raise DesignerError(f"{len(measured)} measured indices but {len(rewards)} rewards.")
        blocked = np.zeros(len(X), bool)
        blocked[measured] = True
        if exclude is not None:
            blocked[np.asarray(exclude, dtype=np.int64)] = True
        avail = np.flatnonzero(~blocked)
        if len(avail) == 0:
            raise DesignerError("Every candidate has already been proposed; add candidates or stop the campaign.")
        batch = int(min(batch, len(avail)))
        rng = np.random.default_rng(self.seed + 7919 * round_index)
        if len(measured) < 3 or self.name == "random":
            pick = rng.choice(avail, size=batch, replace=False)
            return pd.DataFrame({"index": pick, "score": np.zeros(batch), "uncertainty": np.ones(batch),
                                 "rationale": "random pick (nothing measured yet)" if self.name != "random"
                                 else "random pick (baseline)"})
        score, unc, why = self._score(X, measured, rewards, avail, batch, rng, round_index / max(n_rounds - 1, 1))
        pick_local = self._select(X, avail, score, batch)
        return pd.DataFrame({"index": avail[pick_local], "score": score[pick_local],
                             "uncertainty": unc[pick_local], "rationale": why})

    def _select(self, X, avail, score, batch):
        return np.argsort(-score)[:batch]

    def _score(self, X, measured, rewards, avail, batch, rng, round_frac):  # pragma: no cover
        raise NotImplementedError


@dataclass
class RandomDesigner(Designer):
    """Uniformly random picks among candidates not yet proposed."""

    name: str = field(default="random", init=False)


@dataclass
class RidgeUCBDesigner(Designer):
    """Bootstrap ridge ensemble on the features; UCB = mean + ``beta``·sd; greedy top-k."""

    beta: float = 1.0
    alpha: float = 10.0
    n_models: int = 16
    name: str = field(default="ridge_ucb", init=False)

    def _score(self, X, measured, rewards, avail, batch, rng, round_frac):
        ens = RidgeEnsemble(self.n_models, self.alpha, seed=int(rng.integers(1 << 31))).fit(X[measured], rewards)
        mu, sd = ens.predict(X[avail])
        return mu + self.beta * sd, sd, f"ridge-ensemble UCB (mean + {self.beta:g}·sd)"


@dataclass
class GPUCBDesigner(Designer):
    """Gaussian-process regression (RBF + white noise, fitted hyper-parameters); UCB; greedy top-k."""

    beta: float = 1.0
    max_train: int = 1500
    name: str = field(default="gp_ucb", init=False)

    def _score(self, X, measured, rewards, avail, batch, rng, round_frac):
        from sklearn.gaussian_process import GaussianProcessRegressor
        from sklearn.gaussian_process.kernels import RBF, ConstantKernel, WhiteKernel

        m, y = measured, rewards
        if len(m) > self.max_train:
            keep = rng.choice(len(m), self.max_train, replace=False)
            m, y = m[keep], y[keep]
        d = X.shape[1]
        kernel = ConstantKernel(1.0) * RBF(length_scale=np.sqrt(d)) + WhiteKernel(1.0)
        gp = GaussianProcessRegressor(kernel, normalize_y=True, random_state=0, n_restarts_optimizer=0)
        gp.fit(X[m], y)
        mu, sd = gp.predict(X[avail], return_std=True)
        return mu + self.beta * sd, sd, f"GP UCB (mean + {self.beta:g}·sd)"


@dataclass
class PolicyDesigner(Designer):
    """Candidates scored by a policy trained with TRPO→PPO on the design environment.

    Every round a fresh policy is trained on :class:`~scagents.campaign.design_env.DesignEnv`
    episodes drawn from the measurements so far (a random part plays "known", the rest the pool
    to choose from; reward = observed hit-likeness of proposed genes). The trained policy's
    log-odds of "propose" on each unmeasured candidate's state (:func:`candidate_state`) is its
    score; the ridge-ensemble sd is its uncertainty; picks are greedy with a cosine-similarity
    penalty ``diversity`` for batch diversity.

    Parameters
    ----------
    algo
        ``"trpo_ppo"`` (default), ``"ppo"`` or ``"trpo"``.
    total_timesteps
        Environment steps per round of training.
    diversity
        Weight of the similarity penalty (in units of the score spread).
    """

    algo: str = "trpo_ppo"
    total_timesteps: int = 6000
    diversity: float = 0.3
    name: str = field(default="policy", init=False)
    last_log: object = field(default=None, init=False, repr=False)

    def _score(self, X, measured, rewards, avail, batch, rng, round_frac):
        import torch

        from scagents.campaign.design_env import DesignEnv
        try:
            from scagents.policies import TrainConfig, train
        except ImportError as exc:  # pragma: no cover - depends on the policies package
            raise DesignerError("The policy designer needs scagents.policies (TrainConfig, train); "
                                f"it could not be imported ({exc}). Use designer='ridge_ucb'.") from exc
        seed = int(rng.integers(1 << 31))
        env = DesignEnv(X, measured, rewards, seed=seed, round_frac=round_frac)
        cfg = TrainConfig(**_small_config(TrainConfig, algo=self.algo, total_steps=self.total_timesteps,
                                          seed=seed))
        agent, self.last_log = train(env, cfg, progress=False)
        state = candidate_state(X, measured, rewards, avail, round_frac=round_frac, seed=seed)
        obs = env.observation_for(state)
        with torch.no_grad():
            logp, _ = agent.dist_params(torch.as_tensor(obs))
        score = (logp[:, 1] - logp[:, 0]).numpy().astype(np.float64)
        return score, state[:, 1].astype(np.float64), f"{self.algo} policy on the design env (log-odds of 'propose')"

    def _select(self, X, avail, score, batch):
        U = _unit(X[avail])
        return _diverse_greedy(score, U, batch, self.diversity)


def _small_config(cfg_cls, **given) -> dict:
    """Small network / rollout settings, keeping those the TrainConfig offers."""
    import dataclasses

    names = {f.name for f in dataclasses.fields(cfg_cls)} if dataclasses.is_dataclass(cfg_cls) else set()
    wanted = {"hidden_sizes": (64, 64), "n_envs": 8, "n_steps": 64, "gamma": 0.9, **given}
    return {k: v for k, v in wanted.items() if k in names}


DESIGNERS = {"random": RandomDesigner, "ridge_ucb": RidgeUCBDesigner, "gp_ucb": GPUCBDesigner,
             "policy": PolicyDesigner}


def make_designer(name: str, *, seed: int = 0, **options) -> Designer:
    """Build a designer by name: ``"random"``, ``"ridge_ucb"``, ``"gp_ucb"`` or ``"policy"``."""
    if name not in DESIGNERS:
        raise DesignerError(f"Unknown designer {name!r}; use one of {', '.join(DESIGNERS)}.")
    return DESIGNERS[name](seed=seed, **options)
