"""The TRPO→PPO design policy as a learned acquisition function (issue 12, item 3).

A campaign is a sequential decision: after every round the designer sees the measurements of its
picks and chooses the next batch. This module trains that choice with the project's optimiser
(:func:`scagents.policies.train`: TRPO→PPO, PPO or TRPO) on *simulated* campaigns — retrospective
campaigns on other screens and on twin effect tables — and then runs it, frozen, on a campaign whose
scores it has never been trained on.

The policy is a shared per-gene scorer. Every round each untested gene gets a posterior state
(:func:`posterior_state`, :data:`STATE_NAMES`, each column z-scored over the untested genes): the
posterior mean and sd of the prior-anchored Bayesian designer
(:class:`~scagents.campaign.acquisition.BayesPriorDesigner`: expression prior as prior mean, Bayesian
ridge on the features, gene-family residuals), the prior itself, and the mean and max hit-likeness
of the gene's 10 nearest measured feature neighbours. The policy's action is a weight vector ``a``
(one weight per state column) and the gene's score is ``post_mean + a · state`` — the same linear
function for every gene, so it applies to any number of candidates; the batch is the top ``batch``
scores. The policy's observation is the campaign-level state (:data:`OBS_NAMES`: progress, how much
the features explain, how the prior agrees with the measurements so far, …), so the scoring
function changes with what the campaign has learnt. ``a = 0`` is greedy on the Bayesian posterior
mean; the network's initial output is close to it.

:class:`DesignCampaignEnv` (Gymnasium): one episode = one simulated campaign drawn from a list of
:class:`CampaignTask` (a random gene subsample of a screen, batch scaled to the same share, or a
twin effect table); round 1 is the top of the prior (random without one) as in every designer;
each step is a later round; reward = hits in the batch / hits a random batch finds on average.

:class:`LearnedPolicyDesigner` (``designer_config("learned_policy")``): the trained policy as a
designer for ``scagents next`` and the benchmark. Like the policy agent it answers only when its
training run passed leave-one-screen-out validation against the Bayesian designer
(:func:`loso_gate`); otherwise the Bayesian designer answers and the rationale says why, in one
computed line. Its weights and the validation verdict travel in the campaign ledger's designer
state (``torch.save`` bytes of tensors and plain values, read back with ``weights_only=True``).
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import gymnasium as gym
import numpy as np

from scagents.campaign.acquisition import (
    BayesPriorDesigner,
    Designer,
    DesignerError,
    _zscore,
    hit_likeness,
    knn_smooth,
)

__all__ = ["STATE_NAMES", "OBS_NAMES", "CampaignTask", "posterior_state", "campaign_obs", "policy_scores",
           "DesignCampaignEnv", "train_design_policy", "policy_state_bytes", "loso_gate", "paired_ci",
           "LearnedPolicyDesigner", "network_fate_prior", "DEFAULT_POLICY_FILE"]

#: Per-gene posterior state columns (each z-scored over the untested genes).
STATE_NAMES = ("post_mean", "post_sd", "prior", "knn_mean", "knn_max")
#: Campaign-level observation of the policy.
OBS_NAMES = ("round_frac", "measured_frac", "evidence", "last_reward", "prior_corr", "strong_frac")
#: Where the benchmark writes the trained, validated policy ``scagents next`` uses.
DEFAULT_POLICY_FILE = Path(__file__).resolve().parent / "data" / "design_policy.pt"
ACTION_BOUND = 2.0
HIDDEN = (32, 32)


# ================================================================================== state
def posterior_state(X: np.ndarray, measured: np.ndarray, rewards: np.ndarray, avail: np.ndarray, *,
                    prior: np.ndarray | None = None, groups: np.ndarray | None = None, seed: int = 0
                    ) -> tuple[np.ndarray, float]:
    """Per-gene posterior state of the untested genes ``avail`` and the evidence weight.

    Returns ``(S, evidence)``: ``S`` has one row per ``avail`` gene and the columns
    :data:`STATE_NAMES` (z-scored over ``avail``); ``evidence`` is the Bayesian designer's posterior
    probability that the features explain the measurements (0–1).
    """
    # the feature model's posterior, with the options the shipped policy was trained on (pinned: the designer's
    # defaults have since become the leave-one-screen-out choice)
    bp = BayesPriorDesigner(seed=seed, prior=prior, groups=groups, acquisition="ucb", beta=0.0, anchor=0.5,
                            group=0.5, evidence="residual", feature_weight=1.0, feature_target="residual",
                            hit_quantile=0.7)
    rng = np.random.default_rng(seed)
    base, sd, _ = bp._score(X, measured, rewards, avail, 1, rng, 0.0, prior)
    kmean, kmax, _ = knn_smooth(X, measured, rewards, avail, k=10)
    p = _zscore(np.asarray(prior, dtype=np.float64))[avail] if prior is not None else np.zeros(len(avail))
    S = np.column_stack([_zscore(base), _zscore(sd), _zscore(p), _zscore(kmean), _zscore(kmax)])
    return S, float(bp.evidence_weight_)


def campaign_obs(round_frac: float, n_measured: int, n_total: int, evidence: float,
                 rewards: np.ndarray, last: int, prior_measured: np.ndarray | None) -> np.ndarray:
    """The policy's observation (:data:`OBS_NAMES`) of a campaign about to pick round
    ``round_index`` (``round_frac = round_index / (n_rounds − 1)``, as designers get it).

    ``rewards`` are the hit-likeness values of the measured genes in pick order, ``last`` the size
    of the last batch, ``prior_measured`` the prior of the measured genes (same order) or ``None``.
    """
    r = np.asarray(rewards, dtype=np.float64)
    corr = 0.0
    if prior_measured is not None and len(r) > 2 and np.std(r) > 0 and np.std(prior_measured) > 0:
        corr = float(np.corrcoef(prior_measured, r)[0, 1])
    last_r = float(np.mean(r[-last:])) if last and len(r) else 0.0
    strong = float(np.mean(r > 2.0)) if len(r) else 0.0
    return np.array([round_frac, n_measured / max(n_total, 1), evidence,
                     np.clip(last_r, 0, 10) / 5.0, corr, strong], dtype=np.float32)


def policy_scores(action: np.ndarray, S: np.ndarray) -> np.ndarray:
    """Scores ``post_mean + a · state`` of the genes with posterior state ``S``."""
    a = np.clip(np.asarray(action, dtype=np.float64).reshape(-1), -ACTION_BOUND, ACTION_BOUND)
    return S[:, 0] + S @ a


# ================================================================================== tasks and env
@dataclass
class CampaignTask:
    """A campaign to simulate: candidates, what measuring each returns, and which are hits.

    Parameters
    ----------
    name
        Label (e.g. the screen).
    X
        Candidate features ``(n, d)``.
    scores
        What measuring each candidate returns (screen score, twin effect); the designer sees
        :func:`~scagents.campaign.acquisition.hit_likeness` of the measured ones under ``objective``.
    hits
        Boolean hit mask (the episode reward counts them; never shown to the policy).
    prior, groups
        Optional per-candidate prior and group ids (as the designers take them).
    batch, n_rounds
        Picks per round and rounds of the full-size campaign.
    subsample
        Genes drawn per simulated campaign (``None``: all); the batch is scaled to the same share.
    objective
        ``"either"``, ``"increase"`` or ``"decrease"``.
    """

    name: str
    X: np.ndarray
    scores: np.ndarray
    hits: np.ndarray
    prior: np.ndarray | None = None
    groups: np.ndarray | None = None
    batch: int = 128
    n_rounds: int = 5
    subsample: int | None = None
    objective: str = "either"

    def __post_init__(self) -> None:
        self.X = np.asarray(self.X, dtype=np.float64)
        self.scores = np.asarray(self.scores, dtype=np.float64).reshape(-1)
        self.hits = np.asarray(self.hits, dtype=bool).reshape(-1)
        n = len(self.X)
        if self.scores.shape != (n,) or self.hits.shape != (n,):
            raise DesignerError(f"Task {self.name!r}: {n} candidates but {self.scores.size} scores and "
                                f"{self.hits.size} hit flags; give one of each per row of X.")
        if not self.hits.any():
            raise DesignerError(f"Task {self.name!r} has no hit; a simulated campaign needs at least one.")
        if self.n_rounds < 2 or self.batch < 3:
            raise DesignerError(f"Task {self.name!r}: needs ≥ 2 rounds and a batch ≥ 3, got {self.n_rounds}, "
                                f"{self.batch}.")


class DesignCampaignEnv(gym.Env):
    """Simulated campaigns; the action weights the per-gene posterior state (module docstring).

    Parameters
    ----------
    tasks
        Campaigns to draw episodes from (uniformly).
    reward_clip
        Upper clip of the per-round reward (hits / expected random hits).
    relative
        Reward each round's hits minus the hits the greedy Bayesian choice (``a = 0``, the top of
        the posterior mean) would have found in the same state, both over a random batch's expected
        hits: the policy is paid for what it adds to the Bayesian designer, and the large
        differences between campaigns (hit rates, how informative the prior is) no longer drown the
        effect of the action. ``False``: the hits alone.
    """

    metadata: dict = {"render_modes": []}

    def __init__(self, tasks: CampaignTask | Sequence[CampaignTask], *, reward_clip: float = 20.0,
                 relative: bool = True):
        super().__init__()
        self.relative = bool(relative)
        self.tasks = [tasks] if isinstance(tasks, CampaignTask) else list(tasks)
        if not self.tasks:
            raise DesignerError("DesignCampaignEnv needs at least one CampaignTask.")
        self.reward_clip = float(reward_clip)
        self.observation_space = gym.spaces.Box(-np.inf, np.inf, (len(OBS_NAMES),), np.float32)
        self.action_space = gym.spaces.Box(-ACTION_BOUND, ACTION_BOUND, (len(STATE_NAMES),), np.float32)
        self._task: CampaignTask | None = None

    # -- episode bookkeeping
    def _measure(self, picks: np.ndarray) -> int:
        self._measured.extend(int(i) for i in picks)
        self._last = len(picks)
        return int(self._hits[picks].sum())

    def _observe(self) -> np.ndarray:
        m = np.asarray(self._measured, dtype=np.int64)
        blocked = np.zeros(len(self._X), bool)
        blocked[m] = True
        self._avail = np.flatnonzero(~blocked)
        rewards = hit_likeness(self._scores[m], self._task.objective)
        seed = int(self.np_random.integers(1 << 31))
        self._S, ev = posterior_state(self._X, m, rewards, self._avail, prior=self._prior, groups=self._groups,
                                      seed=seed)
        return campaign_obs(self._round / max(self._task.n_rounds - 1, 1), len(m), len(self._X), ev, rewards, self._last,
                            None if self._prior is None else self._prior[m])

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        rng = self.np_random
        t = self.tasks[int(rng.integers(len(self.tasks)))]
        self._task = t
        n = len(t.X)
        if t.subsample is not None and t.subsample < n:
            idx = np.sort(rng.choice(n, size=t.subsample, replace=False))
            if not t.hits[idx].any():  # keep at least one hit in the simulated campaign
                idx[0] = int(rng.choice(np.flatnonzero(t.hits)))
            self._batch = max(3, int(round(t.batch * t.subsample / n)))
        else:
            idx = np.arange(n)
            self._batch = t.batch
        self._X, self._scores, self._hits = t.X[idx], t.scores[idx], t.hits[idx]
        self._prior = None if t.prior is None else np.asarray(t.prior, dtype=np.float64)[idx]
        self._groups = None if t.groups is None else np.asarray(t.groups)[idx]
        self._rate = self._hits.mean() * self._batch  # hits a random batch finds on average
        self._measured: list[int] = []
        self._last = 0
        # round 1: the top of the prior (random without one), as every designer does
        if self._prior is not None:
            first = np.argsort(-self._prior, kind="stable")[: self._batch]
        else:
            first = rng.choice(len(self._X), size=self._batch, replace=False)
        self._measure(first)
        self._round = 1
        return self._observe(), {"task": t.name}

    def step(self, action):
        if self._task is None:
            raise DesignerError("Call reset() before step().")
        score = policy_scores(action, self._S)
        k = min(self._batch, len(self._avail))
        picks = self._avail[np.argsort(-score, kind="stable")[:k]]
        greedy = int(self._hits[self._avail[np.argsort(-self._S[:, 0], kind="stable")[:k]]].sum())
        found = self._measure(picks)
        reward = float(min(found / max(self._rate, 1e-9), self.reward_clip))
        if self.relative:
            reward -= float(min(greedy / max(self._rate, 1e-9), self.reward_clip))
        self._round += 1
        done = self._round >= self._task.n_rounds or len(self._measured) >= len(self._X)
        obs = self._observe() if not done else np.zeros(len(OBS_NAMES), np.float32)
        return obs, reward, done, False, {"task": self._task.name, "hits": found}


def train_design_policy(tasks: Sequence[CampaignTask], *, algo: str = "trpo_ppo", total_steps: int = 1024,
                        seed: int = 0, relative: bool = True, **config):
    """Train the design policy on simulated campaigns of ``tasks``.

    Parameters
    ----------
    tasks
        Simulated campaigns (never the one the policy will be run on).
    algo
        ``"trpo_ppo"`` (the paper's Algorithm 1), ``"ppo"`` or ``"trpo"``.
    total_steps
        Environment steps (rounds of simulated campaigns) to train for; the same budget for every
        ``algo`` makes the ablation fair.
    seed
        Network initialisation, episode draws and action noise.
    relative
        Reward relative to the greedy Bayesian choice (see :class:`DesignCampaignEnv`).
    **config
        Other :class:`~scagents.policies.TrainConfig` fields.

    Returns
    -------
    policy, log
        The :class:`~scagents.policies.networks.ActorCritic` and its training log.
    """
    from scagents.policies import TrainConfig, train

    settings = {"algo": algo, "total_steps": int(total_steps), "n_envs": 4, "n_steps": 16, "gamma": 1.0,
                "gae_lambda": 0.95, "hidden_sizes": HIDDEN, "init_log_std": -1.0, "lr": 1e-3,
                "n_minibatches": 2, "seed": int(seed), **config}
    return train(DesignCampaignEnv(tasks, relative=relative), TrainConfig(**settings), progress=False)


def policy_state_bytes(policy, *, gate: dict | None = None, trained_on: Sequence[str] = ()) -> bytes:
    """The trained ``policy`` (an ActorCritic or its state dict) and its validation ``gate`` as
    bytes (``torch.save`` of tensors and plain values; read with ``weights_only=True``)."""
    import torch

    sd = policy.state_dict() if hasattr(policy, "state_dict") else dict(policy)
    payload = {"format": "scagents.design_policy/1",
               "weights": {k: v.detach().cpu().clone() for k, v in sd.items()},
               "hidden": list(HIDDEN), "state_names": list(STATE_NAMES), "obs_names": list(OBS_NAMES),
               "gate": dict(gate or {"passed": False, "reason": "not validated"}),
               "trained_on": [str(t) for t in trained_on]}
    buf = io.BytesIO()
    torch.save(payload, buf)
    return buf.getvalue()


def _load_payload(blob: bytes) -> dict:
    import torch

    try:
        w = torch.load(io.BytesIO(blob), weights_only=True, map_location="cpu")
    except Exception as exc:  # noqa: BLE001 - any unreadable blob is the same problem for the user
        raise DesignerError(f"The stored design policy cannot be read ({type(exc).__name__}); the designer state "
                            "is damaged: start afresh with --designer learned_policy --seed N.") from exc
    ok = (isinstance(w, dict) and w.get("format") == "scagents.design_policy/1"
          and isinstance(w.get("weights"), dict) and all(isinstance(v, torch.Tensor) for v in w["weights"].values())
          and isinstance(w.get("gate"), dict))
    if not ok or list(w.get("state_names", [])) != list(STATE_NAMES) or list(w.get("obs_names", [])) != list(OBS_NAMES):
        raise DesignerError("The stored design policy is not one this version of scagents wrote (format or state "
                            "columns differ); retrain it with benchmarks/design_policy.py.")
    return w


def _actor(payload: dict):
    from scagents.policies.networks import ActorCritic

    net = ActorCritic(gym.spaces.Box(-np.inf, np.inf, (len(OBS_NAMES),), np.float32),
                      gym.spaces.Box(-ACTION_BOUND, ACTION_BOUND, (len(STATE_NAMES),), np.float32),
                      hidden_sizes=tuple(int(h) for h in payload["hidden"]))
    try:
        net.load_state_dict(payload["weights"])
    except RuntimeError as exc:
        raise DesignerError("The stored design policy's weights do not fit its network; retrain it with "
                            "benchmarks/design_policy.py.") from exc
    return net.eval()


# ================================================================================== validation gate
def paired_ci(diffs: Sequence[float], level: float = 0.95) -> tuple[float, float, float]:
    """Mean and two-sided t confidence interval of paired differences ``(mean, low, high)``."""
    from scipy import stats

    d = np.asarray(diffs, dtype=np.float64)
    if d.size == 0:
        return float("nan"), float("nan"), float("nan")
    m = float(d.mean())
    if d.size < 2 or d.std(ddof=1) == 0:
        return m, m, m
    h = float(stats.t.ppf(0.5 + level / 2, d.size - 1) * d.std(ddof=1) / np.sqrt(d.size))
    return m, m - h, m + h


def loso_gate(policy: dict[str, Sequence[float]], bayes: dict[str, Sequence[float]], *,
              algo: str = "TRPO→PPO") -> dict:
    """Does the learned policy beat the Bayesian designer in leave-one-screen-out validation?

    Parameters
    ----------
    policy, bayes
        Per held-out screen, final hit ratios by seed (paired: seed ``i`` of both on the same screen).

    Returns
    -------
    dict
        ``passed`` (the 95 % CI of the seed-paired differences pooled over the screens is above 0
        and the policy's mean is above the Bayesian designer's on most screens), the figures,
        and ``reason``: one line saying why the policy answers or not.
    """
    screens = [s for s in policy if s in bayes]
    if not screens:
        return {"passed": False, "reason": "no leave-one-screen-out validation was run; the Bayesian designer "
                                           "answers", "screens": []}
    diffs, wins = [], 0
    for s in screens:
        p, b = np.asarray(policy[s], float), np.asarray(bayes[s], float)
        n = min(len(p), len(b))
        diffs.extend((p[:n] - b[:n]).tolist())
        wins += int(p[:n].mean() > b[:n].mean())
    m, lo, hi = paired_ci(diffs)
    pm = float(np.mean([np.mean(policy[s]) for s in screens]))
    bm = float(np.mean([np.mean(bayes[s]) for s in screens]))
    passed = bool(lo > 0 and wins * 2 > len(screens))
    verb = "beat" if passed else "did not beat"
    reason = (f"the learned {algo} acquisition {verb} the Bayesian designer in leave-one-screen-out validation "
              f"(mean final hit ratio {pm:.3f} vs {bm:.3f} over {len(screens)} held-out screens, above it on "
              f"{wins}; paired difference {m:+.3f}, 95% CI [{lo:+.3f}, {hi:+.3f}])")
    return {"passed": passed, "reason": reason, "screens": screens, "policy_mean": pm, "bayes_mean": bm,
            "diff_mean": m, "ci_low": lo, "ci_high": hi, "screens_above": wins}


# ================================================================================== designer
@dataclass
class LearnedPolicyDesigner(Designer):
    """The trained design policy as a designer (see the module docstring).

    Parameters
    ----------
    policy_file
        A policy written by ``benchmarks/design_policy.py`` (``""``: the one shipped with scagents,
        :data:`DEFAULT_POLICY_FILE`). A campaign's later rounds use the copy stored in its ledger.
    require_validation
        Answer only if the policy passed leave-one-screen-out validation (:func:`loso_gate`);
        otherwise the Bayesian designer answers and the rationale says why. ``False`` runs the policy
        regardless (the benchmark does so to measure it).
    """

    policy_file: str = ""
    require_validation: bool = True
    graph: object = field(default=None, repr=False)
    # how build_designer attaches the knowledge graphs: as the default Bayesian designer takes them (one matrix
    # per source), so that the fallback is that designer; not an option of this designer
    graph_mode: str = field(default=BayesPriorDesigner.graph_mode, init=False, repr=False)
    name: str = field(default="learned_policy", init=False)
    _payload: dict | None = field(default=None, init=False, repr=False)
    _blob: bytes | None = field(default=None, init=False, repr=False)
    _net: object = field(default=None, init=False, repr=False)
    _delegate: Designer | None = field(default=None, init=False, repr=False)

    def _ensure_loaded(self) -> None:
        if self._blob is not None or self._payload is not None:
            return
        path = Path(self.policy_file) if self.policy_file else DEFAULT_POLICY_FILE
        if not path.is_file():
            self._payload = {"gate": {"passed": False, "reason": f"no trained design policy at {path} (train and "
                                      "validate one with benchmarks/design_policy.py)"}}
            return
        self.set_state(path.read_bytes())

    def _score(self, X, measured, rewards, avail, batch, rng, round_frac, prior):
        self._ensure_loaded()
        gate = self._payload["gate"]
        if (self.require_validation and not gate.get("passed")) or "weights" not in self._payload:
            # the fallback is the default Bayesian designer: its defaults, and the gene–gene graph
            # build_designer attached (the same designer `next` builds by default)
            self._delegate = BayesPriorDesigner(seed=self.seed, prior=self.prior, groups=self.groups,
                                                graph=self.graph)
            score, unc, why = self._delegate._score(X, measured, rewards, avail, batch, rng, round_frac, prior)
            return score, unc, f"learned design policy not used: {gate.get('reason')}. Bayesian designer: {why}"
        self._delegate = None
        import torch

        if self._net is None:
            self._net = _actor(self._payload)
        seed = int(rng.integers(1 << 31))
        S, ev = posterior_state(X, measured, rewards, avail, prior=prior, groups=self.groups, seed=seed)
        last = int(min(batch, len(measured)))
        obs = campaign_obs(round_frac, len(measured), len(X), ev, rewards, last,
                           None if prior is None else np.asarray(prior, float)[measured])
        with torch.no_grad():
            a = self._net.dist_params(torch.as_tensor(obs[None]))[0][0].numpy()
        a = np.clip(a, -ACTION_BOUND, ACTION_BOUND)
        score = policy_scores(a, S)
        terms = ", ".join(f"{w:+.2f}·{n}" for w, n in zip(a, STATE_NAMES, strict=True))
        why = (f"score = posterior mean + ({terms}) in SDs over the untested genes — the weights the "
               f"{'validated' if gate.get('passed') else 'unvalidated'} learned TRPO→PPO acquisition chose for this "
               "campaign state; picks: top scores; uncertainty = the Bayesian posterior SD (z)")
        return score, S[:, 1].astype(np.float64), why

    def _select(self, X, avail, score, batch):
        if self._delegate is not None:
            return self._delegate._select(X, avail, score, batch)
        return np.argsort(-score, kind="stable")[:batch]

    def get_state(self) -> bytes | None:
        """The policy (weights and validation verdict) as bytes, so later rounds use the same one."""
        self._ensure_loaded()
        return self._blob

    def set_state(self, state: bytes | None) -> None:
        """Restore :meth:`get_state` bytes (``weights_only=True``: tensors and plain values only)."""
        self._net = None
        if state is None:
            self._blob = self._payload = None
            return
        self._payload = _load_payload(state)
        self._blob = bytes(state)


# ================================================================================== twin prior
def network_fate_prior(network, labels: Sequence[str], fate: str, *, decay: float = 0.5, depth: int = 6
                       ) -> np.ndarray:
    """Prior of twin perturbations toward a fate from the model's signed wiring (no simulation).

    The influence of gene ``i`` on gene ``j`` is ``Σ_{k≤depth} ((decay·A)^k)[i, j]`` with ``A`` the
    signed adjacency; the fate's markers are the literals of its rule (``"TBX21 and not GATA3"``:
    TBX21 +1, GATA3 −1). A gene's pull toward the fate is its influence on the markers (itself
    included); an overexpression scores ``+pull``, a knockout ``−pull``.

    Parameters
    ----------
    network
        A :class:`~scagents.twin.BooleanNetwork`.
    labels
        Candidate labels as :func:`~scagents.envs.design.twin_effect_table` names them (``"STAT1"`` =
        knockout, ``"STAT1 overexpression"``).
    fate
        A fate of ``network.fates``.
    """
    from scagents.twin.rules import _literals, parse_rule

    if fate not in network.fates:
        raise DesignerError(f"Unknown fate {fate!r}; the model has {list(network.fates)}.")
    genes = list(network.genes)
    pos = {g: i for i, g in enumerate(genes)}
    A = np.zeros((len(genes), len(genes)))
    for s, t, sign in network.edges[["source", "target", "sign"]].itertuples(index=False):
        A[pos[s], pos[t]] = float(sign)
    M, P = np.eye(len(genes)), np.eye(len(genes))
    for _ in range(depth):
        P = P @ (decay * A)
        M = M + P
    w = np.zeros(len(genes))
    for g, sgn in _literals(parse_rule(network.fates[fate]), 1):
        if g in pos:
            w[pos[g]] += sgn
    pull = M @ w
    out = np.zeros(len(labels))
    for i, lab in enumerate(labels):
        gene, _, kind = str(lab).partition(" ")
        if gene in pos:
            out[i] = pull[pos[gene]] * (1.0 if kind.strip() == "overexpression" else -1.0)
    return out
