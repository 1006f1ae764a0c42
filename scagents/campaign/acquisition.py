"""Acquisition: which candidates to measure next.

All designers share one call, :meth:`Designer.propose`, on a candidate feature matrix ``X``
(candidates × features), the indices already measured, their rewards (hit-likeness, see
:func:`hit_likeness`), and return a table of picks with a score, an uncertainty and a rationale.

* :class:`RandomDesigner` — uniform picks (the null baseline);
* :class:`RidgeUCBDesigner` — bootstrap ensemble of ridge regressions, UCB = mean + β·sd, greedy;
* :class:`GPUCBDesigner` — Gaussian-process regression (RBF + white noise), UCB, greedy;
* :class:`BayesPriorDesigner` — prior-anchored Bayesian linear regression (the expression prior is
  the model's prior mean; feedback adds to it only as far as the evidence supports), Thompson
  sampling per pick;
* :class:`PolicyDesigner` — a policy trained with the TRPO→PPO optimiser (``scagents.policies``) on
  the :class:`~scagents.envs.design.StreamDesignEnv` built from what was measured so far
  (warm-started from the previous round's policy); it scores each candidate from its model
  summary (:func:`candidate_state`: ridge posterior mean and sd, co-expression neighbours' rewards,
  novelty, expression prior) and picks greedily with a feature-similarity penalty for diversity
  inside a batch.

The first round (``round_index`` 0, nothing measured; round 1 in what users read) is random, or —
when a designer is given an expression ``prior`` (e.g.
:func:`~scagents.campaign.features.expression_prior`, never screen scores) — the top of the prior;
the random designer ignores the prior.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from types import SimpleNamespace

import numpy as np
import pandas as pd

from scagents.errors import ScagentsError

__all__ = ["hit_likeness", "robust_scale", "RidgeEnsemble", "candidate_state", "group_smooth", "knn_smooth", "PriorDesigner", "STATE_COLUMNS", "Designer", "RandomDesigner",
           "RidgeUCBDesigner", "GPUCBDesigner", "PolicyDesigner", "BayesPriorDesigner", "make_designer", "DESIGNERS", "designer_config",
           "designer_options", "build_designer", "DEFAULT_DESIGNER", "GROUPINGS", "GRAPHS", "DEFAULT_GRAPH",
           "graph_smooth",
           "DesignerError"]


class DesignerError(ScagentsError, ValueError):
    """A designer name or option is invalid, or there is nothing left to propose."""


def robust_scale(values: np.ndarray, center: float) -> float:
    """The robust SD of ``values`` around ``center``: ``1.4826·MAD``, else the SD, else 1 (all equal)."""
    v = np.asarray(values, dtype=np.float64)
    mad = float(np.median(np.abs(v - center))) * 1.4826
    return mad if mad > 0 else (float(v.std()) or 1.0)


def hit_likeness(values: np.ndarray, objective: str = "abs", *, center: float | None = None,
                 scale: float | None = None) -> np.ndarray:
    """Reward of measured read-outs toward the goal.

    Parameters
    ----------
    values
        Measured scores (e.g. a screen's log-fold change).
    objective
        ``"abs"`` (or ``"either"``): largest change either way, ``|v − center| / scale``; ``"increase"``:
        ``(v − center) / scale``; ``"decrease"``: ``(center − v) / scale``.
    center
        The centre (default: the median of ``values``).
    scale
        The robust SD (default: :func:`robust_scale` of ``values`` around the centre, i.e.
        ``1.4826·MAD``). Give ``center`` and ``scale`` of a reference distribution (a screen's
        whole library) to score values on a scale that does not move with the values scored.
    """
    v = np.asarray(values, dtype=np.float64)
    if v.size == 0:
        return v
    med = float(np.median(v)) if center is None else float(center)
    scale = robust_scale(v, med) if scale is None else float(scale)
    if not scale > 0:
        raise DesignerError(f"The scale of hit-likeness must be positive, got {scale!r}.")
    if objective in ("abs", "either"):
        return np.abs(v - med) / scale
    if objective == "increase":
        return (v - med) / scale
    if objective == "decrease":
        return (med - v) / scale
    raise DesignerError(f"Unknown objective {objective!r}; use 'increase', 'decrease' or 'either'.")


def _fit_ridge_members(Xc: np.ndarray, yc: np.ndarray, rows: list[np.ndarray], alpha: float) -> np.ndarray:
    """Ridge coefficients ``(len(rows), d)`` of centred data, one member per bootstrap row set."""
    eye = alpha * np.eye(Xc.shape[1])
    W = np.empty((len(rows), Xc.shape[1]))
    for b, idx in enumerate(rows):
        A, t = Xc[idx], yc[idx]
        W[b] = np.linalg.solve(A.T @ A + eye, A.T @ t)
    return W


class RidgeEnsemble:
    """Bootstrap ensemble of ridge regressions: predictive mean and spread for every candidate.

    Parameters
    ----------
    n_models, alpha, seed
        Ensemble size, ridge penalty and the seed of the bootstrap draws.
    backend
        ``"local"`` fits the members in this process; ``"ray"`` fits them as Ray tasks through
        :func:`scagents.parallel.run_tasks` (``n_tasks`` tasks of consecutive members). The bootstrap
        rows are drawn here in both cases, so the coefficients are the same on both backends.
    n_tasks
        Ray tasks the members are split into (default: one per member, at most 8).
    address
        Ray cluster address (see :func:`scagents.parallel.ensure_ray`).
    """

    def __init__(self, n_models: int = 16, alpha: float = 10.0, seed: int = 0, *, backend: str = "local",
                 n_tasks: int | None = None, address: str | None = None):
        self.n_models, self.alpha, self.seed = n_models, alpha, seed
        self.backend, self.n_tasks, self.address = backend, n_tasks, address

    def fit(self, X: np.ndarray, y: np.ndarray) -> RidgeEnsemble:
        rng = np.random.default_rng(self.seed)
        n, d = X.shape
        self.x_mean_ = X.mean(0)
        self.y_mean_ = float(y.mean())
        Xc, yc = X - self.x_mean_, y - self.y_mean_
        rows = [rng.integers(0, n, n) if self.n_models > 1 else np.arange(n) for _ in range(self.n_models)]
        if self.backend == "local":
            self.coef_ = _fit_ridge_members(Xc, yc, rows, self.alpha)
            return self
        from scagents.parallel import run_tasks

        n_tasks = max(1, min(self.n_models, self.n_tasks or min(self.n_models, 8)))
        parts = [list(p) for p in np.array_split(np.arange(self.n_models), n_tasks)]
        kwargs = [{"Xc": Xc, "yc": yc, "rows": [rows[b] for b in p], "alpha": self.alpha} for p in parts]
        self.coef_ = np.concatenate(run_tasks(_fit_ridge_members, kwargs, backend=self.backend,
                                              address=self.address), axis=0)
        return self

    def predict(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        P = (X - self.x_mean_) @ self.coef_.T + self.y_mean_
        return P.mean(1), P.std(1)


def _unit(X: np.ndarray) -> np.ndarray:
    n = np.linalg.norm(X, axis=1, keepdims=True)
    n[n == 0] = 1.0
    return X / n


#: Names of the per-candidate state columns built by :func:`candidate_state`.
STATE_COLUMNS = ("ridge_mean", "ridge_sd", "knn_mean", "knn_max", "nn_sim", "group_mean", "group_n", "prior",
                 "round")


def _zscore(v: np.ndarray) -> np.ndarray:
    v = np.asarray(v, dtype=np.float64)
    return (v - v.mean()) / (v.std() or 1.0) if v.size else v


def knn_smooth(X: np.ndarray, known: np.ndarray, y_known: np.ndarray, query: np.ndarray, *,
               k: int = 10) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Co-expression neighbourhood smoother: rewards of each query's ``k`` nearest measured genes.

    Returns the mean and the max of the neighbours' rewards and the cosine similarity to the
    nearest measured candidate (a novelty measure), all of length ``len(query)``.
    """
    U = _unit(np.asarray(X, dtype=np.float64))
    S = U[query] @ U[known].T
    kk = int(min(k, len(known)))
    top = np.argpartition(-S, kk - 1, axis=1)[:, :kk]
    ny = np.asarray(y_known, dtype=np.float64)[top]
    return ny.mean(1), ny.max(1), S.max(1)


def group_smooth(groups: np.ndarray, known: np.ndarray, y_known: np.ndarray, query: np.ndarray, *,
                 shrink: float = 2.0) -> tuple[np.ndarray, np.ndarray]:
    """Label propagation inside candidate groups (e.g. gene families, co-expression clusters).

    Returns, for every query, the mean reward of the measured members of its group shrunk toward
    the mean of all measured rewards (``(Σ y + shrink·ȳ) / (n + shrink)``), minus that mean, and the
    number ``n`` of measured members. A group id ``< 0`` means "no group" (0 and 0).
    """
    g = np.asarray(groups, dtype=np.int64)
    yk = np.asarray(y_known, dtype=np.float64)
    mu = float(yk.mean()) if yk.size else 0.0
    ng = int(max(g.max(initial=-1), 0)) + 1
    gk = g[known]
    ok = gk >= 0
    tot = np.bincount(gk[ok], weights=yk[ok], minlength=ng)
    cnt = np.bincount(gk[ok], minlength=ng).astype(np.float64)
    gq = g[query]
    has = gq >= 0
    mean = np.zeros(len(query))
    n = np.zeros(len(query))
    mean[has] = (tot[gq[has]] + shrink * mu) / (cnt[gq[has]] + shrink) - mu
    n[has] = cnt[gq[has]]
    return mean, n


def graph_smooth(A, known: np.ndarray, y_known: np.ndarray, query: np.ndarray, *,
                 shrink: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """Propagation along a weighted gene–gene graph ``A`` (e.g.
    :func:`~scagents.campaign.features.knowledge_graph`: co-expression, ligand–receptor, shared
    phenotypes or pathways, complexes, protein interactions).

    Returns, for every query, the edge-weighted mean of its measured neighbours' rewards minus the
    mean of all measured rewards, shrunk toward 0 (``Σ w·(y − ȳ) / (Σ w + shrink)``), and the
    total edge weight ``Σ w`` to measured neighbours (0 and 0 without any).
    """
    yk = np.asarray(y_known, dtype=np.float64)
    n = A.shape[0]
    v = np.zeros(n)
    ind = np.zeros(n)
    v[known] = yk - (float(yk.mean()) if yk.size else 0.0)
    ind[known] = 1.0
    num, den = A @ v, A @ ind
    return (num / (den + shrink))[query], den[query]


def candidate_state(X: np.ndarray, known: np.ndarray, y_known: np.ndarray, query: np.ndarray, *,
                    prior: np.ndarray | None = None, groups: np.ndarray | None = None, round_frac: float = 0.0,
                    k: int = 10, seed: int = 0) -> np.ndarray:
    """Per-candidate summary of what is known, the input of the policy.

    Columns (:data:`STATE_COLUMNS`): ridge-ensemble posterior mean and sd, mean and max reward of
    the ``k`` most similar measured candidates (cosine on features, :func:`knn_smooth`),
    similarity to the nearest measured candidate, the shrunk mean reward of measured members of
    the candidate's group and ``log1p`` of their number (:func:`group_smooth`; 0 without
    ``groups``), the expression prior (z-scored over all candidates; 0 when none is given) and
    the campaign progress ``round_frac``. The reward-like columns are standardised by the spread
    of ``y_known``.
    """
    yk = np.asarray(y_known, dtype=np.float64)
    mu_y, sd_y = float(yk.mean()), float(yk.std()) or 1.0
    ens = RidgeEnsemble(n_models=8, seed=seed).fit(X[known], yk)
    mu, sd = ens.predict(X[query])
    kmean, kmax, nn = knn_smooth(X, known, yk, query, k=k)
    if groups is not None:
        gmean, gn = group_smooth(groups, known, yk, query)
    else:
        gmean, gn = np.zeros(len(query)), np.zeros(len(query))
    pr = _zscore(prior)[query] if prior is not None else np.zeros(len(query))
    out = np.column_stack([(mu - mu_y) / sd_y, sd / sd_y, (kmean - mu_y) / sd_y, (kmax - mu_y) / sd_y, nn,
                           gmean / sd_y, np.log1p(gn), pr, np.full(len(query), round_frac)])
    return out.astype(np.float32)


def _penalised_logistic(D: np.ndarray, t: np.ndarray, penalty: np.ndarray, *,
                        iters: int = 50) -> tuple[np.ndarray, np.ndarray]:
    """L2-penalised logistic regression by Newton steps: coefficients of ``D`` (``penalty`` per column, 0 =
    unpenalised) for 0/1 targets ``t``, and their Laplace posterior covariance (inverse Hessian)."""
    w = np.zeros(D.shape[1])
    P = np.diag(np.asarray(penalty, dtype=np.float64))
    H = P + np.eye(len(w))
    for _ in range(iters):
        m = 1.0 / (1.0 + np.exp(-np.clip(D @ w, -30, 30)))
        H = (D * (m * (1 - m) + 1e-9)[:, None]).T @ D + P + 1e-8 * np.eye(len(w))
        step = np.linalg.solve(H, D.T @ (t - m) - P @ w)
        w = w + step
        if float(np.max(np.abs(step))) < 1e-6:
            break
    return w, np.linalg.inv(H)


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
    prior
        Optional per-candidate prior (higher = more promising), e.g.
        :func:`~scagents.campaign.features.expression_prior`; the first round (``round_index`` 0)
        then takes the top of the prior instead of random picks (the random designer ignores it), and the policy sees it.
    groups
        Optional group id per candidate (``-1`` = none), e.g.
        :func:`~scagents.campaign.features.symbol_families`: measured rewards propagate inside a
        group (:func:`group_smooth`) for the designers that use it (``ridge_ucb`` with
        ``group > 0``, ``policy``).
    """

    seed: int = 0
    prior: np.ndarray | None = field(default=None, repr=False)
    groups: np.ndarray | None = field(default=None, repr=False)
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
        prior = None if self.prior is None else np.asarray(self.prior, dtype=np.float64).reshape(-1)
        if prior is not None and prior.shape != (len(X),):
            raise DesignerError(f"prior has {prior.size} values but there are {len(X)} candidates; give one per row of X.")
        if len(measured) < 3 and prior is not None and self.name != "random":
            top = np.argsort(-prior[avail], kind="stable")[:batch]
            return pd.DataFrame({"index": avail[top], "score": prior[avail][top], "uncertainty": np.ones(batch),
                                 "rationale": "expression prior (nothing measured yet): score = the gene's "
                                              "standardised expression level (highly expressed genes first)"})
        if len(measured) < 3 or self.name == "random":
            pick = rng.choice(avail, size=batch, replace=False)
            return pd.DataFrame({"index": pick, "score": np.zeros(batch), "uncertainty": np.ones(batch),
                                 "rationale": "random pick (nothing measured yet)" if self.name != "random"
                                 else "random pick (baseline)"})
        score, unc, why = self._score(X, measured, rewards, avail, batch, rng, round_index / max(n_rounds - 1, 1),
                                      prior)
        pick_local = self._select(X, avail, score, batch)
        return pd.DataFrame({"index": avail[pick_local], "score": score[pick_local],
                             "uncertainty": unc[pick_local], "rationale": why})

    def _select(self, X, avail, score, batch):
        return np.argsort(-score)[:batch]

    def get_state(self) -> bytes | None:
        """What a later process needs to continue this designer beyond its configuration (``None``:
        nothing — the designer is a function of its configuration and the measurements)."""
        return None

    def set_state(self, state: bytes | None) -> None:
        """Restore :meth:`get_state` (nothing to restore for stateless designers)."""

    def _score(self, X, measured, rewards, avail, batch, rng, round_frac, prior):  # pragma: no cover
        raise NotImplementedError


@dataclass
class RandomDesigner(Designer):
    """Uniformly random picks among candidates not yet proposed."""

    name: str = field(default="random", init=False)


@dataclass
class PriorDesigner(Designer):
    """Static reference: always the top of the ``prior`` among candidates not yet proposed.

    Ignores every measurement (so it cannot react to feedback); without a prior it is random.
    It shows how much a campaign gains over simply following the expression prior.
    """

    name: str = field(default="prior_only", init=False)

    def propose(self, X, measured, rewards, batch, *, exclude=None, round_index=0, n_rounds=5):
        if self.prior is None:
            return RandomDesigner(seed=self.seed).propose(X, measured, rewards, batch, exclude=exclude,
                                                          round_index=round_index, n_rounds=n_rounds)
        prior = np.asarray(self.prior, dtype=np.float64).reshape(-1)
        if prior.shape != (len(X),):
            raise DesignerError(f"prior has {prior.size} values but there are {len(X)} candidates; give one per row of X.")
        blocked = np.zeros(len(X), bool)
        blocked[np.asarray(measured, dtype=np.int64)] = True
        if exclude is not None:
            blocked[np.asarray(exclude, dtype=np.int64)] = True
        avail = np.flatnonzero(~blocked)
        if len(avail) == 0:
            raise DesignerError("Every candidate has already been proposed; add candidates or stop the campaign.")
        top = avail[np.argsort(-prior[avail], kind="stable")[: int(min(batch, len(avail)))]]
        return pd.DataFrame({"index": top, "score": prior[top], "uncertainty": np.zeros(len(top)),
                             "rationale": "expression prior only (static reference, ignores measurements)"})


@dataclass
class RidgeUCBDesigner(Designer):
    """Bootstrap ridge ensemble on the features; UCB = mean + ``beta``·sd; greedy top-k.

    With ``knn > 0`` the score adds ``knn`` × the mean reward of the 10 nearest measured
    candidates in feature (co-expression) space (:func:`knn_smooth`), a local smoother that
    catches what the linear model misses; with ``group > 0`` and ``groups`` given, it adds
    ``group`` × the shrunk mean reward of the measured members of the candidate's group
    (:func:`group_smooth`).

    ``backend="ray"`` fits the ensemble members as Ray tasks (``address`` = an existing cluster,
    default a local instance); proposals are the same as with ``backend="local"`` for the same seed.
    """

    beta: float = 1.0
    alpha: float = 10.0
    n_models: int = 16
    knn: float = 0.0
    group: float = 0.5
    backend: str = "local"
    address: str | None = None
    name: str = field(default="ridge_ucb", init=False)

    def _score(self, X, measured, rewards, avail, batch, rng, round_frac, prior):
        ens = RidgeEnsemble(self.n_models, self.alpha, seed=int(rng.integers(1 << 31)), backend=self.backend,
                            address=self.address).fit(X[measured], rewards)
        mu, sd = ens.predict(X[avail])
        score = mu + self.beta * sd
        why = (f"score = hit-likeness predicted from the genes' features by a ridge ensemble + "
               f"{self.beta:g} × its spread (optimistic: favours promising and unexplored genes); "
               "uncertainty = that spread")
        if self.knn > 0:
            score = score + self.knn * knn_smooth(X, measured, rewards, avail)[0]
            why += f"; + {self.knn:g} × the mean hit-likeness of co-expressed measured genes"
        if self.group > 0 and self.groups is not None:
            score = score + self.group * group_smooth(self.groups, measured, rewards, avail)[0]
            why += f"; + {self.group:g} × the mean hit-likeness of measured group members"
        return score, sd, why


@dataclass
class GPUCBDesigner(Designer):
    """Gaussian-process regression (RBF + white noise, fitted hyper-parameters); UCB; greedy top-k."""

    beta: float = 1.0
    max_train: int = 800
    name: str = field(default="gp_ucb", init=False)

    def _score(self, X, measured, rewards, avail, batch, rng, round_frac, prior):
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
        return mu + self.beta * sd, sd, (f"score = hit-likeness predicted by a Gaussian process + "
                                         f"{self.beta:g} × its uncertainty (optimistic: favours "
                                         "promising and unexplored genes)")


@dataclass
class PolicyDesigner(Designer):
    """Candidates scored by a policy trained with TRPO→PPO on the design environment.

    Every round the policy is trained on :class:`~scagents.envs.design.StreamDesignEnv` episodes
    built from the measurements so far: ``n_splits`` random splits let part of the measured genes
    play "known" (their rewards feed :func:`candidate_state`) and the rest the pool to choose from
    (reward = their observed hit-likeness, standardised). The policy thus sees, for each candidate,
    the ridge posterior mean and sd, the co-expression neighbours' rewards, novelty and the prior,
    and learns its own exploration–exploitation trade-off. The trained policy's log-odds of
    "propose" on each unmeasured candidate's state, z-scored over the candidates, is its score (plus ``ucb_weight`` × the z-scored
    ridge UCB, when set); picks are greedy with a cosine-similarity penalty ``diversity``.

    Parameters
    ----------
    algo
        ``"trpo_ppo"`` (default), ``"ppo"`` or ``"trpo"``.
    total_timesteps
        Environment steps per round of training.
    diversity
        Weight of the similarity penalty (in units of the score spread).
    warm_start
        Start each round from the previous round's weights (the designer object keeps them)
        instead of a fresh network.
    ucb_weight
        Weight of the z-scored ridge UCB (``mean + sd`` of the state) added to the z-scored policy
        log-odds; 0 = the policy alone.
    n_splits
        Known/pool splits of the measurements the episodes are drawn from.

    With fewer than 6 measurements there is nothing to train on and the ridge UCB of the state
    is used (the rationale says so).
    """

    algo: str = "trpo_ppo"
    total_timesteps: int = 4000
    diversity: float = 0.3
    warm_start: bool = True
    ucb_weight: float = 1.0
    n_splits: int = 8
    name: str = field(default="policy", init=False)
    last_log: object = field(default=None, init=False, repr=False)
    _weights: dict | None = field(default=None, init=False, repr=False)

    def training_env(self, X: np.ndarray, measured: np.ndarray, rewards: np.ndarray, *, prior=None,
                     round_frac: float = 0.0, seed: int = 0, known_fraction: float = 0.6):
        """The :class:`~scagents.envs.design.StreamDesignEnv` the policy is trained on this round."""
        from scagents.envs.design import DesignProblem, StreamDesignEnv

        rng = np.random.default_rng(seed)
        n = len(measured)
        if n < 6:
            raise DesignerError(f"The policy designer needs ≥ 6 measured candidates to train, got {n}.")
        problems, tested = [], []
        for s in range(self.n_splits):
            perm = rng.permutation(n)
            k = int(np.clip(round(known_fraction * n), 3, n - 3))
            kn, pool = perm[:k], perm[k:]
            shown = np.concatenate([pool, kn])
            st = candidate_state(X, measured[kn], rewards[kn], measured[shown], prior=prior, groups=self.groups,
                                 round_frac=round_frac, seed=seed + s)
            problems.append(DesignProblem([str(i) for i in range(len(shown))], effects=rewards[shown], features=st))
            tested.append(np.arange(len(shown)) >= len(pool))
        return StreamDesignEnv(problems, tested=tested)

    def _score(self, X, measured, rewards, avail, batch, rng, round_frac, prior):
        import torch

        try:
            from scagents.policies import TrainConfig, train
        except ImportError as exc:  # pragma: no cover - depends on the policies package
            raise DesignerError("The policy designer needs scagents.policies (TrainConfig, train); "
                                f"it could not be imported ({exc}). Use designer='ridge_ucb'.") from exc
        seed = int(rng.integers(1 << 31))
        if len(measured) < 6:  # too little to train on: the ridge UCB the policy would see
            st = candidate_state(X, measured, rewards, avail, prior=prior, groups=self.groups, seed=seed)
            return _zscore(st[:, 0] + st[:, 1]), st[:, 1].astype(np.float64), \
                ("score = predicted hit-likeness + its spread (ridge ensemble, in SDs over the "
                 "untested genes); fewer than 6 measurements, so the policy is not trained yet")
        env = self.training_env(X, measured, rewards, prior=prior, round_frac=round_frac, seed=seed)
        cfg = TrainConfig(**_small_config(TrainConfig, algo=self.algo, total_steps=self.total_timesteps,
                                          seed=seed % (1 << 30)))
        init = self._weights if self.warm_start else None
        agent, self.last_log = train(env, cfg, progress=False, init_policy=init)
        self._weights = {k: v.detach().clone() for k, v in agent.state_dict().items()}
        state = candidate_state(X, measured, rewards, avail, prior=prior, groups=self.groups, round_frac=round_frac,
                                seed=seed)
        obs = env.observation_for(state)
        with torch.no_grad():
            logp, _ = agent.dist_params(torch.as_tensor(obs))
        score = _zscore((logp[:, 1] - logp[:, 0]).numpy())
        algo = {"trpo_ppo": "TRPO→PPO", "ppo": "PPO", "trpo": "TRPO"}.get(self.algo, self.algo)
        why = (f"score = how strongly the {algo} policy, trained on this campaign's measurements, "
               "favours measuring the gene (in SDs above the average untested gene)")
        if self.ucb_weight:
            score = score + self.ucb_weight * _zscore(state[:, 0] + state[:, 1])
            why += f" + {self.ucb_weight:g} × the ridge-ensemble optimistic estimate"
        why += ("; uncertainty = spread of the ridge-ensemble prediction; picked in score order "
                "with a penalty for expression similarity to earlier picks (diversity)")
        return score, state[:, 1].astype(np.float64), why

    def get_state(self) -> bytes | None:
        """The trained policy weights as bytes (a ``torch.save``-d state dict of plain tensors), or ``None``."""
        if self._weights is None:
            return None
        import io

        import torch

        buf = io.BytesIO()
        torch.save({k: v.detach().cpu() for k, v in self._weights.items()}, buf)
        return buf.getvalue()

    def set_state(self, state: bytes | None) -> None:
        """Restore weights written by :meth:`get_state` (loaded with ``weights_only=True``: tensors only)."""
        if state is None:
            self._weights = None
            return
        import io

        import torch

        try:
            w = torch.load(io.BytesIO(state), weights_only=True, map_location="cpu")
        except Exception as exc:  # noqa: BLE001 - any unreadable blob is the same problem for the user
            raise DesignerError(f"The stored policy weights cannot be read ({type(exc).__name__}); the ledger's "
                                "designer state is damaged: start the designer afresh with --designer policy "
                                "--seed N.") from exc
        if not isinstance(w, dict) or not all(isinstance(v, torch.Tensor) for v in w.values()):
            raise DesignerError("The stored policy weights are not a dict of tensors; the ledger's designer "
                                "state is damaged.")
        self._weights = w

    def _select(self, X, avail, score, batch):
        U = _unit(X[avail])
        return _diverse_greedy(score, U, batch, self.diversity)


@dataclass
class BayesPriorDesigner(Designer):
    """Prior-anchored Bayesian linear regression; Thompson sampling (or UCB) with batch diversity.

    Model of the standardised hit-likeness ``y`` of candidate ``x`` with prior score ``p`` (the
    expression prior z-scored over all candidates)::

        y = anchor · p + b + w·x + ε,   w ~ N(0, I/λ),   ε ~ N(0, 1/α)

    ``anchor`` is fixed: the prior enters as the prior mean of the model and feedback cannot
    cancel it, only add to it. ``λ`` and ``α`` are chosen by evidence maximisation
    (:class:`sklearn.linear_model.BayesianRidge` on the residual ``y − anchor·p``), so with
    uninformative feedback ``w`` shrinks to 0 and the ranking is the prior's; with feedback the
    features explain, ``w`` adds to it. What ``w`` adds is weighted by the posterior probability
    that the features explain the residual at all (log evidence of the Bayesian ridge against the
    model ``w = 0``, equal prior odds), so a handful of noisy measurements cannot pull the ranking
    away from the prior (``feature_weight`` scales that weight; 0 = the features are not used). With
    ``feature_target="covariate"`` the Bayesian ridge regresses ``y`` on the prior and the features, its
    null model on the prior alone, and ``w`` is the features' part (what they add beyond the prior). With ``groups`` the shrunk mean residual of measured group
    members (:func:`group_smooth`; with ``evidence="hitlike"`` instead: the shrunk share of
    hit-like members, the top ``1 − hit_quantile`` of the measured rewards) is added with weight
    ``group``; with a gene–gene ``graph`` (co-expression, ligand–receptor, shared phenotypes or pathways,
    complexes, protein interactions: :func:`~scagents.campaign.features.knowledge_graph`) the
    shrunk mean residual of measured neighbours (:func:`graph_smooth`) with weight ``neighbours``.
    With ``evidence="calibrated"`` the family and graph evidence (hit-like shares) get weights fitted
    by empirical Bayes on the measured genes instead of the fixed ``group`` / ``neighbours`` (which
    then only switch a source on, when > 0): see :meth:`_calibrated_lift`; the fitted weights are in
    ``calibration_``. With ``graph_mode="per_source"`` the ``graph`` is one matrix per knowledge source
    (co-expression, ligand–receptor, shared HPO phenotypes) and each source's neighbour evidence is
    computed on its own and added (so a sparse but specific source is not averaged away by a dense one).
    With ``evidence="learned"`` the weight of every source (family, each graph and, with
    ``learned_features``, a cross-fitted expression-feature prediction) is learned from the campaign's
    own rounds by a logistic model of the hit-like genes with the prior as a covariate
    (:meth:`_learned_lift`: weights ≥ 0, penalty ``source_penalty``, lowered by ``source_lcb``
    posterior SDs, put on the score's scale by the prior's coefficient floored at ``prior_floor``), so
    a source enters only on screens where the rounds show it predicts hits and uninformative feedback
    leaves the prior ranking; ``"hitlike+learned"`` adds these learned weights to the fixed ``group`` /
    ``neighbours`` weights of ``"hitlike"``. With ``prior_weight="learned"`` (learned evidence only) the prior's
    own weight in the score is multiplied by the posterior probability (Laplace approximation) that its
    coefficient in that logistic model is > 0, so a campaign whose rounds show the prior ranking its hit-like
    genes last leans on the other sources; ``"fixed"`` keeps ``anchor``.

    Acquisition ``"thompson"``: every pick of a batch is the argmax of one posterior draw of
    ``w`` (draws differ, so the batch spreads); ``"ucb"``: mean + ``beta``·sd with the
    similarity penalty ``diversity`` of the policy designer.
    """

    # defaults = the setting benchmarks/closed_loop.py selects over all screens (leave-one-screen-out protocol;
    # "bayes greedy fam+coexp+LR+HPO+path-hitlike20 n2 +learned-sources+features feat-cov per-source div0.1"): the
    # prior plus what measured family members and co-expression / ligand–receptor / shared-phenotype / shared-pathway
    # partners say (each source on its own; hit-like = top 20 % of the measured) with fixed weights plus weights
    # learned on the campaign's rounds (and a cross-fitted expression-feature column), plus what the features add
    # beyond the prior (weighted by the evidence for it), picked greedily with a small expression-similarity penalty
    anchor: float = 1.0
    acquisition: str = "ucb"
    beta: float = 0.0
    diversity: float = 0.1
    group: float = 2.0
    neighbours: float = 2.0
    evidence: str = "hitlike+learned"
    hit_quantile: float = 0.8
    feature_weight: float = 1.0
    feature_target: str = "covariate"
    graph_mode: str = "per_source"
    source_penalty: float = 3.0
    source_lcb: float = 1.0
    prior_floor: float = 1.0
    learned_features: bool = True
    prior_weight: str = "fixed"
    graph: object = field(default=None, repr=False)
    name: str = field(default="bayes_prior", init=False)

    def _graphs(self) -> list:
        """The gene–gene graphs whose evidence enters separately: one summed graph (``graph_mode="sum"``), or
        one per knowledge source (``"per_source"``; ``graph`` is then a sequence of matrices). Empty ones are
        left out."""
        if self.graph_mode not in ("sum", "per_source"):
            raise DesignerError(f"Unknown graph_mode {self.graph_mode!r}; use 'sum' or 'per_source'.")
        if self.graph is None:
            return []
        gs = list(self.graph) if isinstance(self.graph, (list, tuple)) else [self.graph]
        return [g for g in gs if g is not None and g.nnz]

    def _score(self, X, measured, rewards, avail, batch, rng, round_frac, prior):
        if self.acquisition not in ("thompson", "ucb"):
            raise DesignerError(f"Unknown acquisition {self.acquisition!r}; use 'thompson' or 'ucb'.")
        Z = (X - X.mean(0)) / np.where(X.std(0) > 0, X.std(0), 1.0)
        p = _zscore(prior) if prior is not None else np.zeros(len(X))
        y = np.asarray(rewards, dtype=np.float64)
        y = (y - y.mean()) / (y.std() or 1.0)
        resid = y - self.anchor * p[measured]
        if self.feature_weight > 0:
            from sklearn.linear_model import BayesianRidge

            if self.feature_target == "covariate":
                # the prior is a covariate of the model and of its null, so that w is what the features add
                # beyond it (on the residual y − anchor·p, the features can learn −p from pure noise)
                full = BayesianRidge(fit_intercept=True, compute_score=True).fit(
                    np.column_stack([p[measured], Z[measured]]), y)
                br0 = BayesianRidge(fit_intercept=True, compute_score=True).fit(p[measured][:, None], y)
                null = float(br0.scores_[-1])
                br = SimpleNamespace(coef_=full.coef_[1:], sigma_=full.sigma_[1:, 1:], intercept_=float(full.intercept_),
                                     scores_=full.scores_)
                Za_ = Z[avail]
                mu = Za_ @ br.coef_ + br.intercept_
                sd = np.sqrt(np.einsum("ij,jk,ik->i", Za_, br.sigma_, Za_) + 1.0 / full.alpha_)
            elif self.feature_target == "residual":
                br = BayesianRidge(fit_intercept=True, compute_score=True).fit(Z[measured], resid)
                # Bayes factor of "the features explain the residual" vs "they do not" (w = 0, intercept + noise)
                n = len(resid)
                rss0 = float(np.sum((resid - resid.mean()) ** 2)) or 1e-12
                null = -0.5 * n * (np.log(2 * np.pi * rss0 / n) + 1.0)
                mu, sd = br.predict(Z[avail], return_std=True)
            else:
                raise DesignerError(f"Unknown feature_target {self.feature_target!r}; use 'residual' or 'covariate'.")
            # its posterior probability weights what the features add (model averaging)
            self.evidence_weight_ = float(1.0 / (1.0 + np.exp(np.clip(null - float(br.scores_[-1]), -50, 50))))
            self.evidence_weight_ *= self.feature_weight
            mu = self.evidence_weight_ * (mu - br.intercept_) + br.intercept_
            sd = self.evidence_weight_ * sd
        else:  # the feature model is off: nothing to fit (and sklearn is not imported)
            br, self.evidence_weight_ = None, 0.0
            mu, sd = np.zeros(len(avail)), np.zeros(len(avail))
        base = self.anchor * p[avail] + mu
        why = f"score = {self.anchor:g} × the expression prior (in SDs)"
        if self.feature_weight > 0:
            why += (" + what the measurements add (Bayesian ridge on the genes' features, weighted by the evidence "
                    f"that the features explain the measurements: {self.evidence_weight_:.2f})")
        if self.evidence in ("calibrated", "learned", "hitlike+learned"):  # source weights fitted on the rounds
            if self.evidence == "calibrated":  # weights of the family / graph evidence by empirical Bayes
                lift, note = self._calibrated_lift(measured, y, p[measured], avail)
            else:  # per-source weights of a campaign-level logistic model of the hit-like genes
                lift, note = self._learned_lift(measured, y, p[measured], avail, Z)
                share = self.calibration_.get("prior_share", 1.0)
                if share < 1.0:  # the rounds say the prior predicts the hit-like genes less than assumed
                    lift = lift - (1.0 - share) * self.anchor * p[avail]
                    note += f"; the prior's weight × {share:.2f} (posterior probability that it predicts hit-like genes)"
            self._posterior = (br, Z, avail)
            why += note
            base = base + lift
            if self.acquisition == "ucb":
                return base + self.beta * sd, sd, why + "; picked in score order" + self._diversity_note()
            self._thompson = (base - mu, br, Z[avail], rng)
            return base, sd, why + "; picks: one Thompson draw of the posterior per pick"
        if self.evidence == "hitlike":  # 1 for the top (1 − hit_quantile) of the measured genes, else 0
            spread = (y >= np.quantile(y, self.hit_quantile)).astype(np.float64)
            what = f"share of hit-like (top {1 - self.hit_quantile:.0%} measured)"
        elif self.evidence == "residual":
            spread, what = resid, "mean residual"
        else:
            raise DesignerError(f"Unknown evidence {self.evidence!r}; use 'residual', 'hitlike', 'calibrated', "
                                "'learned' or 'hitlike+learned'.")
        if self.group > 0 and self.groups is not None:
            base = base + self.group * group_smooth(self.groups, measured, spread, avail)[0]
            why += f" + {self.group:g} × the {what} among measured members of the gene's family"
        graphs = self._graphs() if self.neighbours > 0 else []
        for A in graphs:
            base = base + self.neighbours * graph_smooth(A, measured, spread, avail)[0]
        if graphs:
            each = " (each knowledge source on its own)" if len(graphs) > 1 else ""
            why += (f" + {self.neighbours:g} × the {what} among measured co-expressed / ligand–receptor / "
                    f"shared-phenotype / shared-pathway partners{each}")
        self._posterior = (br, Z, avail)
        if self.acquisition == "ucb":
            if self.beta:
                why += f"; + {self.beta:g} × the posterior SD (optimistic); uncertainty = that SD"
            else:
                why += "; picked in score order (greedy); uncertainty = posterior SD of the feature model"
            return base + self.beta * sd, sd, why + self._diversity_note()
        self._thompson = (base - mu, br, Z[avail], rng)
        return base, sd, why + "; picks: one Thompson draw of the posterior per pick; uncertainty = posterior SD"

    def _diversity_note(self) -> str:
        return (f"; each pick's score lowered by {self.diversity:g} × the score SD × its largest expression-profile "
                "similarity (cosine) to the batch's earlier picks") if self.diversity > 0 else ""

    def _calibrated_lift(self, measured, y, prior_m, avail) -> tuple[np.ndarray, str]:
        """What measured family members and graph partners say, with weights set by empirical Bayes.

        Evidence columns (one per source: the gene family with ``group > 0``, the gene–gene graph with
        ``neighbours > 0``): the shrunk share of hit-like genes (top ``1 − hit_quantile`` of the
        measured) among a gene's measured family members / graph partners, minus the measured share
        (:func:`group_smooth`, :func:`graph_smooth`). For the measured genes the same columns are computed
        leaving the gene itself out, and a Bayesian ridge (evidence-maximised ``λ``, ``α``) regresses
        the standardised rewards ``y`` on them and on the prior ``p``: its coefficients of the evidence
        columns are the weights of the sources, and its posterior probability against the model with
        the prior alone (ratio of the two log evidences, equal prior odds) scales them. Uninformative feedback thus leaves the prior ranking; evidence
        that predicts the measured genes from their neighbours lifts the neighbours of hits.
        """
        lab = (y >= np.quantile(y, self.hit_quantile)).astype(np.float64)
        cols_m, cols_a, names, _ = self._evidence_columns(measured, lab, avail)
        self.calibration_ = {"weights": {}, "evidence_weight": 0.0}
        if not names or len(measured) < 8:
            return np.zeros(len(avail)), "; family / graph evidence: none yet"
        from sklearn.linear_model import BayesianRidge

        # the prior is a covariate of both models, so that the weights are what the evidence adds beyond it
        # (regressing the residual y − anchor·p instead would let the evidence learn −p under pure noise)
        Em, Ea = np.column_stack([prior_m, *cols_m]), np.column_stack(cols_a)
        br = BayesianRidge(fit_intercept=True, compute_score=True).fit(Em, y)
        br0 = BayesianRidge(fit_intercept=True, compute_score=True).fit(prior_m[:, None], y)
        w_ev = float(1.0 / (1.0 + np.exp(np.clip(float(br0.scores_[-1]) - float(br.scores_[-1]), -50, 50))))
        coef = w_ev * np.asarray(br.coef_[1:], dtype=np.float64)
        self.calibration_ = {"weights": dict(zip(names, coef.tolist(), strict=True)), "evidence_weight": w_ev}
        desc = ", ".join(f"{c:+.2f} × {nm}" for nm, c in zip(names, coef, strict=True))
        return Ea @ coef, (f" + the share of hit-like (top {1 - self.hit_quantile:.0%} measured) among measured "
                           f"{' and '.join(names)}, weighted by empirical Bayes ({desc}; posterior probability "
                           f"that this evidence predicts the measurements {w_ev:.2f})")

    def _evidence_columns(self, measured: np.ndarray, lab: np.ndarray, avail: np.ndarray):
        """Family and per-source graph evidence of the hit-like labels ``lab`` of the measured genes: columns for
        the measured genes (each gene left out of its own column) and for ``avail``, their names and the fixed
        weights (``group`` / ``neighbours``) the ``"hitlike"`` evidence gives them."""
        mu = float(lab.mean())
        cols_m, cols_a, names, fixed = [], [], [], []
        if self.group > 0 and self.groups is not None:
            g = np.asarray(self.groups, dtype=np.int64)
            ng = int(max(g.max(initial=-1), 0)) + 1
            gm = g[measured]
            ok = gm >= 0
            tot = np.bincount(gm[ok], weights=lab[ok], minlength=ng)
            cnt = np.bincount(gm[ok], minlength=ng).astype(np.float64)
            loo = np.zeros(len(measured))
            loo[ok] = (tot[gm[ok]] - lab[ok] + 2.0 * mu) / (cnt[gm[ok]] - 1.0 + 2.0) - mu  # the gene left out
            cols_m.append(loo)
            cols_a.append(group_smooth(g, measured, lab, avail)[0])
            names.append("family")
            fixed.append(self.group)
        graphs = self._graphs() if self.neighbours > 0 else []
        for k, A in enumerate(graphs):
            # the graphs have no self-loops: a measured gene's own label never enters its column
            cols_m.append(graph_smooth(A, measured, lab, measured)[0])
            cols_a.append(graph_smooth(A, measured, lab, avail)[0])
            names.append("graph partners" + (f" (source {k + 1})" if len(graphs) > 1 else ""))
            fixed.append(self.neighbours)
        return cols_m, cols_a, names, fixed

    def _learned_lift(self, measured, y, prior_m, avail, Z) -> tuple[np.ndarray, str]:
        """What each knowledge source adds on this screen, learned from the ingested rounds.

        A campaign-level logistic regression of the hit-like label (top ``1 − hit_quantile`` of the measured)
        on the prior ``p`` and one evidence column per source (the shrunk hit-like share among measured family
        members and among each graph's measured partners, the gene itself left out; with ``learned_features``
        also a 5-fold cross-fitted Bayesian-ridge prediction of ``y`` from the expression features), fitted on
        the measured genes with an L2 penalty ``source_penalty`` on the (standardised) source weights. Weights
        are kept ≥ 0 (a source whose fitted weight is negative is dropped and the model refitted) and lowered by
        ``source_lcb`` posterior SDs (Laplace approximation), floored at 0, so that a source enters only as far as
        the rounds support it; with uninformative feedback they are ≈ 0. Each weight is put on the scale of the
        score (``anchor`` × prior in SDs) by dividing by the prior's fitted coefficient, floored at
        ``prior_floor``. ``evidence="learned"``: these weights alone (pure noise → the prior ranking);
        ``"hitlike+learned"``: added to the fixed ``group`` / ``neighbours`` weights of ``"hitlike"``. The
        weights are in ``calibration_``.
        """
        lab = (y >= np.quantile(y, self.hit_quantile)).astype(np.float64)
        cols_m, cols_a, names, fixed = self._evidence_columns(measured, lab, avail)
        if self.evidence == "learned":
            fixed = [0.0] * len(fixed)
        if self.learned_features:
            from sklearn.linear_model import BayesianRidge

            fold = np.arange(len(measured)) % 5
            fm = np.zeros(len(measured))
            if len(measured) >= 10:
                for f in range(5):
                    tr = fold != f
                    fm[~tr] = BayesianRidge().fit(Z[measured[tr]], y[tr]).predict(Z[measured[~tr]])
            cols_m.append(fm)
            cols_a.append(BayesianRidge().fit(Z[measured], y).predict(Z[avail]))
            names.append("expression features")
            fixed.append(0.0)
        fixed_a = np.asarray(fixed, dtype=np.float64)
        base = np.column_stack(cols_a) @ fixed_a if names else np.zeros(len(avail))
        self.calibration_ = {"weights": dict.fromkeys(names, 0.0), "prior_coef": None}
        if not names or len(measured) < 8 or lab.sum() < 2 or lab.sum() > len(lab) - 2:
            return base, "; learned source weights: none yet (too few measurements)"
        Cm, Ca = np.column_stack(cols_m), np.column_stack(cols_a)
        sdv = Cm.std(0)
        keep = sdv > 0  # a column without spread among the measured says nothing yet
        sdv[~keep] = 1.0
        Cs = Cm / sdv
        w, cov = np.zeros(2), np.eye(2)
        for _ in range(Cm.shape[1] + 1):  # refit without the sources whose weight is negative
            D = np.column_stack([np.ones(len(lab)), prior_m, Cs[:, keep]])
            pen = np.r_[0.0, 0.0, np.full(int(keep.sum()), self.source_penalty)]
            w, cov = _penalised_logistic(D, lab, pen)
            if (w[2:] >= 0).all():
                break
            idx = np.flatnonzero(keep)
            keep[idx[w[2:] < 0]] = False
        wk, se = np.zeros(Cm.shape[1]), np.zeros(Cm.shape[1])
        wk[keep], se[keep] = w[2:], np.sqrt(np.clip(np.diag(cov)[2:], 0.0, None))
        lower = np.maximum(0.0, wk - self.source_lcb * se)
        a = max(float(w[1]), self.prior_floor)
        learned = self.anchor * lower / sdv / a
        se_p = float(np.sqrt(max(float(cov[1, 1]), 0.0)))
        self.calibration_ = {"weights": dict(zip(names, learned.tolist(), strict=True)), "prior_coef": float(w[1]),
                             "prior_se": se_p, "prior_share": 1.0}
        if self.prior_weight == "learned":
            # the prior's own weight, from the same model: the posterior probability that its coefficient is > 0
            # (Laplace approximation); the score keeps anchor × share × prior
            from scipy.stats import norm

            self.calibration_["prior_share"] = float(norm.cdf(float(w[1]) / max(se_p, 1e-12)))
        elif self.prior_weight != "fixed":
            raise DesignerError(f"Unknown prior_weight {self.prior_weight!r}; use 'fixed' or 'learned'.")
        desc = ", ".join(f"{c:+.2f} × {nm}" for nm, c in zip(names, learned, strict=True))
        what = "fixed + learned" if self.evidence == "hitlike+learned" else "learned"
        return base + Ca @ learned, (f" + the share of hit-like (top {1 - self.hit_quantile:.0%} measured) among "
                                     f"measured {', '.join(names)} with {what} weights (logistic model of this "
                                     f"campaign's hit-like genes, lower {self.source_lcb:g}-SD bound; learned: "
                                     f"{desc})")

    def _select(self, X, avail, score, batch):
        if self.acquisition == "ucb":
            return _diverse_greedy(score, _unit(X[avail]), batch, self.diversity)
        offset, br, Za, rng = self._thompson
        if br is None:  # no feature model: every draw is the score itself
            return np.argsort(-score, kind="stable")[:batch]
        cov = np.asarray(br.sigma_, dtype=np.float64)
        L = np.linalg.cholesky(cov + 1e-10 * np.eye(len(cov)))
        chosen: list[int] = []
        taken = np.zeros(len(avail), bool)
        for _ in range(min(batch, len(avail))):
            w = self.evidence_weight_ * (br.coef_ + L @ rng.standard_normal(len(cov)))
            f = offset + br.intercept_ + Za @ w
            f[taken] = -np.inf
            j = int(np.argmax(f))
            chosen.append(j)
            taken[j] = True
        return np.asarray(chosen, dtype=np.int64)


def _small_config(cfg_cls, **given) -> dict:
    """Small network / rollout settings, keeping those the TrainConfig offers."""
    import dataclasses

    names = {f.name for f in dataclasses.fields(cfg_cls)} if dataclasses.is_dataclass(cfg_cls) else set()
    wanted = {"hidden_sizes": (64, 64), "n_envs": 8, "n_steps": 64, "gamma": 0.9, **given}
    return {k: v for k, v in wanted.items() if k in names}


DESIGNERS = {"random": RandomDesigner, "prior_only": PriorDesigner, "ridge_ucb": RidgeUCBDesigner,
             "gp_ucb": GPUCBDesigner, "policy": PolicyDesigner, "bayes_prior": BayesPriorDesigner}


def make_designer(name: str, *, seed: int = 0, **options) -> Designer:
    """Build a designer by name: ``"random"``, ``"prior_only"``, ``"ridge_ucb"``, ``"gp_ucb"`` or ``"policy"``."""
    if name not in DESIGNERS:
        raise DesignerError(f"Unknown designer {name!r}; use one of {', '.join(DESIGNERS)}.")
    return DESIGNERS[name](seed=seed, **options)


#: The designer ``scagents next``, the tools and the benchmark use when none is named: the one the
#: leave-one-screen-out protocol of ``benchmarks/closed_loop.py`` selects over all shared screens
#: (``benchmarks/results/closed_loop.md``), with its dataclass defaults.
DEFAULT_DESIGNER = "bayes_prior"

#: The gene–gene graph of designers that use one (``bayes_prior``) when none is named.
DEFAULT_GRAPH = "coexpression+ligand_receptor+phenotype+pathway"

#: Candidate groups of :func:`designer_config`: ``"symbol_families"`` (gene families from the gene
#: symbols, :func:`~scagents.campaign.features.symbol_families`) or ``"none"``.
GROUPINGS = ("symbol_families", "none")

#: Gene–gene graphs of :func:`designer_config` (``"+"``-joined knowledge sources of
#: :func:`~scagents.campaign.features.knowledge_graph`), used by ``bayes_prior``.
GRAPHS = ("none", "coexpression", "ligand_receptor", "phenotype", "pathway", "coexpression+ligand_receptor",
          "coexpression+ligand_receptor+phenotype", "coexpression+ligand_receptor+phenotype+pathway",
          "complex_family", "coexpression+ligand_receptor+phenotype+complex_family",
          "coexpression+ligand_receptor+phenotype+pathway+complex_family", "protein_interaction",
          "coexpression+ligand_receptor+phenotype+pathway+protein_interaction")

_NOT_OPTIONS = ("seed", "prior", "groups", "graph", "name", "backend", "address")


def designer_options(name: str) -> dict:
    """Tunable options of designer ``name`` with their defaults (the dataclass defaults, the one
    place those defaults live)."""
    import dataclasses

    if name not in DESIGNERS:
        raise DesignerError(f"Unknown designer {name!r}; use one of {', '.join(DESIGNERS)}.")
    return {f.name: f.default for f in dataclasses.fields(DESIGNERS[name])
            if f.init and f.name not in _NOT_OPTIONS and not f.name.startswith("_")}


def designer_config(name: str | None = None, *, seed: int = 0, groups: str = "symbol_families",
                    n_rounds: int = 5, graph: str | None = None, **options) -> dict:
    """The complete, JSON-able configuration of a designer: every option with its value.

    ``scagents next`` (through :func:`~scagents.campaign.propose_round`), the tools and
    ``benchmarks/closed_loop.py`` all build their designer from such a configuration with
    :func:`build_designer`, so the same arguments give the same designer everywhere; the campaign
    ledger stores it so that later rounds continue the same designer.

    Parameters
    ----------
    name
        Designer name (default :data:`DEFAULT_DESIGNER`).
    seed
        Random seed (each round combines it with the round number).
    groups
        One of :data:`GROUPINGS`.
    graph
        One of :data:`GRAPHS` (default :data:`DEFAULT_GRAPH` for designers that use one, else ``"none"``).
    n_rounds
        Planned number of rounds (the policy sees the progress round / n_rounds).
    **options
        Designer options overriding the defaults of :func:`designer_options`.

    Raises
    ------
    DesignerError
        Unknown designer, grouping or option.
    """
    name = name or DEFAULT_DESIGNER
    opts = designer_options(name)
    unknown = sorted(set(options) - set(opts))
    if unknown:
        raise DesignerError(f"Designer {name!r} has no option(s) {unknown}; its options are {sorted(opts)}.")
    if groups not in GROUPINGS:
        raise DesignerError(f"Unknown groups {groups!r}; use one of {', '.join(GROUPINGS)}.")
    if int(n_rounds) < 1:
        raise DesignerError(f"n_rounds must be ≥ 1, got {n_rounds}.")
    uses_graph = "graph" in {f for f in DESIGNERS[name].__dataclass_fields__}
    graph = (DEFAULT_GRAPH if uses_graph else "none") if graph is None else graph
    if graph not in GRAPHS:
        raise DesignerError(f"Unknown graph {graph!r}; use one of {', '.join(GRAPHS)}.")
    opts.update(options)
    opts = {k: (list(v) if isinstance(v, tuple) else v) for k, v in opts.items()}
    return {"designer": name, "seed": int(seed), "groups": groups, "graph": graph, "n_rounds": int(n_rounds),
            "options": opts}


def build_designer(config: dict, genes, *, prior: np.ndarray | None = None, state: bytes | None = None) -> Designer:
    """The designer of a :func:`designer_config` for candidates ``genes`` (gene symbols).

    Parameters
    ----------
    config
        Output of :func:`designer_config` (e.g. as stored in a campaign ledger).
    genes
        Candidate names, in the row order of the feature matrix (the groups are computed from them).
    prior
        Per-candidate prior (round 1 takes its top), or ``None``.
    state
        :meth:`Designer.get_state` of the same designer after an earlier round (continues it).

    The designer's ``feature_coverage_`` attribute holds the fraction of ``genes`` each knowledge
    source describes (gene families, and the graph's sources: co-expression per data set,
    ligand–receptor table, HPO phenotypes, pathways, FamPlex complexes / families; ``None`` = source not
    available here).
    """
    import scipy.sparse as sp

    from scagents.campaign.features import feature_coverage, knowledge_graphs, symbol_families

    genes = list(genes)
    groups_on = config.get("groups") == "symbol_families"
    groups = symbol_families(genes) if groups_on else None
    des = make_designer(config["designer"], seed=int(config["seed"]), prior=prior, groups=groups,
                        **config.get("options", {}))
    coverage = {k: v for k, v in feature_coverage(genes).items() if groups_on or k != "symbol_families"}
    graph = config.get("graph", "none")
    if graph != "none":
        graphs, cov = knowledge_graphs(genes, tuple(graph.split("+")))
        if getattr(des, "graph_mode", "sum") == "per_source":
            des.graph = list(graphs.values())
        else:  # the sum of the sources (as features.knowledge_graph)
            des.graph = sum(graphs.values(), sp.csr_matrix((len(genes), len(genes)))).tocsr()
        coverage.update(cov)
    des.feature_coverage_ = coverage
    des.set_state(state)
    return des


# the learned acquisition (TRPO→PPO design policy, issue 12 item 3) lives in its own module, which
# builds on the classes above; registered here so that designer_config / build_designer know it
from scagents.campaign.design_policy import LearnedPolicyDesigner  # noqa: E402

DESIGNERS["learned_policy"] = LearnedPolicyDesigner
