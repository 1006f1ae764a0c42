"""Experimental-design environments: choose which perturbations to test.

A design problem is a list of candidate perturbations, a feature matrix describing them
(``n_candidates × d``, e.g. :func:`~scagents.envs.encoding.encode_perturbations` of a gene
embedding) and their effect toward a goal — higher is better — given either as a measured
*effect table* or as a callable ``effect_fn(indices, rng) -> effects`` (e.g. a simulation on the
twin, possibly noisy). :func:`twin_effect_table` precomputes effects on the twin for goals such as
``"Th1"`` (fraction of cells reaching the Th1 fate, minus control) or ``"gene:IFNG"`` (absolute
change of IFNG activity).

:class:`DesignEnv` (Gymnasium)
    One proposal per step for ``budget`` steps. Observation: ``[features (n × d, row-major) |
    tested mask (n) | budget left (fraction)]``; action: ``Discrete(n)``; reward: the effect of
    the proposed candidate, or ``-repeat_penalty`` when it was already tested in the episode.
:class:`BatchDesignParallelEnv` (PettingZoo)
    The agents ``slot_0 … slot_{B-1}`` are the slots of one experimental batch; each round every
    slot proposes a candidate at once. Slot ``i`` sees the same features, tested mask and rounds
    left plus a one-hot of its own slot index, and is rewarded by its candidate's effect minus
    ``duplicate_penalty`` when another slot proposed the same candidate in that round (or
    ``-repeat_penalty`` for a candidate tested in an earlier round).
:class:`StreamDesignEnv` (Gymnasium)
    Propose-or-skip over a stream of candidates shown one at a time, so that one small network
    scores every candidate from its own features (a shared per-candidate scorer; used by the
    closed-loop campaign's policy designer, ``scagents.campaign``). Observation: ``[features of
    the shown candidate | already-tested flag | proposals left (fraction)]``; action:
    ``Discrete(2)`` (0 skip, 1 propose); reward: the proposed candidate's effect, standardised over
    the untested candidates of its problem (0 = an average pick), ``-repeat_penalty`` for a
    tested one, 0 for a skip.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import gymnasium as gym
import numpy as np
import pandas as pd
from pettingzoo import ParallelEnv

from scagents.envs.encoding import as_perturbation
from scagents.errors import DataError, GeneNotFoundError, GoalError
from scagents.perturbation import Perturbation

__all__ = ["DesignProblem", "DesignEnv", "BatchDesignParallelEnv", "StreamDesignEnv", "twin_effect_table"]

EffectFn = Callable[[np.ndarray, np.random.Generator], np.ndarray]


class DesignProblem:
    """Candidates, their features and their effects (table or callable), shared by the envs.

    Parameters
    ----------
    candidates
        Perturbations or labels.
    effects
        Measured effect of each candidate toward the goal (array, or Series indexed by label).
    effect_fn
        Instead of ``effects``: ``effect_fn(indices, rng)`` returns the effects of the candidates
        at ``indices`` (called once per step/round with all indices to evaluate).
    features
        ``(n_candidates, d)`` descriptions (array, or DataFrame indexed by label); default: the
        identity (one-hot candidates).
    """

    def __init__(self, candidates: Sequence[Perturbation | str], *,
                 effects: Sequence[float] | np.ndarray | pd.Series | None = None,
                 effect_fn: EffectFn | None = None,
                 features: np.ndarray | pd.DataFrame | None = None):
        self.candidates = [as_perturbation(c) if not isinstance(c, str) else c for c in candidates]
        self.labels = [c if isinstance(c, str) else _label(c) for c in self.candidates]
        n = len(self.labels)
        if n < 2:
            raise DataError(f"A design problem needs at least 2 candidates, got {n}.")
        if len(set(self.labels)) != n:
            raise DataError("Candidate labels must be unique.")
        if (effects is None) == (effect_fn is None):
            raise DataError("Give exactly one of effects= (a measured table) or effect_fn= "
                            "(a callable evaluating candidates).")
        if effects is not None:
            if isinstance(effects, pd.Series):
                missing = [lab for lab in self.labels if lab not in effects.index]
                if missing:
                    raise DataError(f"effects has no value for candidates {missing[:5]}.")
                effects = effects.reindex(self.labels).to_numpy()
            effects = np.asarray(effects, dtype=np.float64).reshape(-1)
            if effects.shape != (n,) or not np.isfinite(effects).all():
                raise DataError(f"effects must be {n} finite values (one per candidate), got "
                                f"shape {effects.shape}.")
        self.effects = effects
        self.effect_fn = effect_fn
        if features is None:
            features = np.eye(n)
        elif isinstance(features, pd.DataFrame):
            features = features.reindex(self.labels).to_numpy()
        features = np.asarray(features, dtype=np.float32)
        if features.ndim != 2 or features.shape[0] != n or not np.isfinite(features).all():
            raise DataError(f"features must be a finite ({n}, d) matrix, got shape {features.shape}.")
        self.features = features

    @property
    def n(self) -> int:
        """Number of candidates."""
        return len(self.labels)

    def evaluate(self, indices: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Effects of the candidates at ``indices`` (table lookup or one ``effect_fn`` call)."""
        idx = np.asarray(indices, dtype=np.int64)
        if self.effects is not None:
            return self.effects[idx]
        out = np.asarray(self.effect_fn(idx, rng), dtype=np.float64).reshape(-1)
        if out.shape != idx.shape:
            raise DataError(f"effect_fn returned {out.shape[0]} values for {idx.size} candidates.")
        return out


def _label(p: Perturbation) -> str:
    label = "+".join(p.targets)
    return label if p.kind == "knockout" else f"{label} {p.kind}"


def _problem(candidates, effects, effect_fn, features) -> DesignProblem:
    if isinstance(candidates, DesignProblem):
        return candidates
    return DesignProblem(candidates, effects=effects, effect_fn=effect_fn, features=features)


# ================================================================================== Gymnasium
class DesignEnv(gym.Env):
    """Sequential design: propose one candidate per step (see the module docstring).

    Parameters
    ----------
    candidates
        Candidate perturbations/labels, or a :class:`DesignProblem` (then ``effects``,
        ``effect_fn`` and ``features`` are ignored).
    effects, effect_fn, features
        See :class:`DesignProblem`.
    budget
        Proposals per episode.
    repeat_penalty
        A repeated proposal earns ``-repeat_penalty``.

    Attributes
    ----------
    modality_slices
        Observation blocks ``"candidates"`` (features) and ``"progress"`` (tested mask + budget).
    """

    metadata: dict[str, Any] = {"render_modes": []}

    def __init__(self, candidates: Sequence[Perturbation | str] | DesignProblem, *,
                 effects: Sequence[float] | np.ndarray | pd.Series | None = None,
                 effect_fn: EffectFn | None = None, features: np.ndarray | pd.DataFrame | None = None,
                 budget: int = 5, repeat_penalty: float = 1.0):
        self.problem = _problem(candidates, effects, effect_fn, features)
        if not 1 <= budget:
            raise DataError(f"budget must be at least 1, got {budget}.")
        self.budget = int(budget)
        self.repeat_penalty = float(repeat_penalty)
        n, d = self.problem.features.shape
        self._feat = self.problem.features.reshape(-1)
        self.observation_space = gym.spaces.Box(-np.inf, np.inf, (n * d + n + 1,), np.float32)
        self.action_space = gym.spaces.Discrete(n)
        self.modality_slices = {"candidates": slice(0, n * d), "progress": slice(n * d, n * d + n + 1)}
        self._tested = np.zeros(n, np.float32)
        self._t = 0

    def _obs(self) -> np.ndarray:
        left = np.float32((self.budget - self._t) / self.budget)
        return np.concatenate([self._feat, self._tested, [left]]).astype(np.float32)

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        self._tested[:] = 0.0
        self._t = 0
        return self._obs(), {}

    def step(self, action):
        a = int(action)
        if not 0 <= a < self.problem.n:
            raise DataError(f"Action {a} is not a candidate index (0-{self.problem.n - 1}).")
        repeat = bool(self._tested[a])
        effect = float(self.problem.evaluate(np.array([a]), self.np_random)[0]) if not repeat else 0.0
        reward = -self.repeat_penalty if repeat else effect
        self._tested[a] = 1.0
        self._t += 1
        info = {"candidate": self.problem.labels[a], "effect": effect, "repeat": repeat}
        return self._obs(), reward, self._t >= self.budget, False, info


# ================================================================================== PettingZoo
class BatchDesignParallelEnv(ParallelEnv):
    """The slots of one experimental batch as agents (see the module docstring).

    Parameters
    ----------
    candidates, effects, effect_fn, features
        As in :class:`DesignEnv`.
    batch_size
        Slots (agents) per batch, ``slot_0`` … ``slot_{batch_size-1}``.
    n_rounds
        Batches per episode.
    duplicate_penalty
        Subtracted from the reward of every slot whose candidate another slot also proposed in the
        same round.
    repeat_penalty
        A candidate tested in an earlier round earns ``-repeat_penalty``.
    """

    metadata: dict[str, Any] = {"name": "scagents_batch_design_v0", "render_modes": []}

    def __init__(self, candidates: Sequence[Perturbation | str] | DesignProblem, *,
                 effects: Sequence[float] | np.ndarray | pd.Series | None = None,
                 effect_fn: EffectFn | None = None, features: np.ndarray | pd.DataFrame | None = None,
                 batch_size: int = 4, n_rounds: int = 2, duplicate_penalty: float = 1.0,
                 repeat_penalty: float = 1.0):
        self.problem = _problem(candidates, effects, effect_fn, features)
        if batch_size < 1 or n_rounds < 1:
            raise DataError(f"batch_size and n_rounds must be ≥ 1, got {batch_size}, {n_rounds}.")
        self.batch_size, self.n_rounds = int(batch_size), int(n_rounds)
        self.duplicate_penalty = float(duplicate_penalty)
        self.repeat_penalty = float(repeat_penalty)
        self.possible_agents = [f"slot_{i}" for i in range(self.batch_size)]
        self.agents: list[str] = []
        n, d = self.problem.features.shape
        dim = n * d + n + 1 + self.batch_size
        self._obs_spaces = {a: gym.spaces.Box(-np.inf, np.inf, (dim,), np.float32)
                            for a in self.possible_agents}
        self._act_spaces = {a: gym.spaces.Discrete(n) for a in self.possible_agents}
        self._feat = self.problem.features.reshape(-1)
        self._tested = np.zeros(n, np.float32)
        self._round = 0
        self._rng = np.random.default_rng()

    def observation_space(self, agent: str) -> gym.spaces.Box:
        """The (always identical) observation space of ``agent``."""
        return self._obs_spaces[agent]

    def action_space(self, agent: str) -> gym.spaces.Discrete:
        """The (always identical) action space of ``agent``."""
        return self._act_spaces[agent]

    def _observe(self) -> dict[str, np.ndarray]:
        left = (self.n_rounds - self._round) / self.n_rounds
        shared = np.concatenate([self._feat, self._tested, [left]]).astype(np.float32)
        out = {}
        for i, a in enumerate(self.possible_agents):
            slot = np.zeros(self.batch_size, np.float32)
            slot[i] = 1.0
            out[a] = np.concatenate([shared, slot])
        return out

    def reset(self, seed: int | None = None, options: dict | None = None):
        if seed is not None:
            self._rng = np.random.default_rng(seed)
        self._tested[:] = 0.0
        self._round = 0
        self.agents = list(self.possible_agents)
        return self._observe(), {a: {} for a in self.possible_agents}

    def step(self, actions: Mapping[str, int]):
        if not self.agents:
            raise DataError("The episode is over; call reset() before step().")
        missing = [a for a in self.agents if a not in actions]
        if missing:
            raise DataError(f"step() needs a proposal from every slot; missing {missing}.")
        n = self.problem.n
        choice = np.array([int(actions[a]) for a in self.agents], dtype=np.int64)
        if ((choice < 0) | (choice >= n)).any():
            raise DataError(f"Proposals must be candidate indices 0-{n - 1}, got {choice.tolist()}.")
        counts = np.bincount(choice, minlength=n)
        repeat = self._tested[choice] > 0
        new = np.unique(choice[~repeat])
        effect_of = dict(zip(new.tolist(), self.problem.evaluate(new, self._rng).tolist(), strict=True)
                         ) if new.size else {}
        rewards, infos = {}, {}
        for a, c, rep in zip(self.agents, choice.tolist(), repeat.tolist(), strict=True):
            dup = counts[c] > 1
            effect = effect_of.get(c, 0.0)
            r = -self.repeat_penalty if rep else effect
            if dup:
                r -= self.duplicate_penalty
            rewards[a] = float(r)
            infos[a] = {"candidate": self.problem.labels[c], "effect": float(effect),
                        "duplicate": bool(dup), "repeat": bool(rep)}
        self._tested[choice] = 1.0
        self._round += 1
        done = self._round >= self.n_rounds
        terminations = {a: done for a in self.agents}
        truncations = {a: False for a in self.agents}
        obs = self._observe()
        if done:
            self.agents = []
        return obs, rewards, terminations, truncations, infos

    def render(self) -> None:
        return None

    def close(self) -> None:
        return None


# ================================================================================== stream (per-candidate)
class StreamDesignEnv(gym.Env):
    """Propose-or-skip over a stream of candidates (see the module docstring).

    Each episode draws one of ``problems``, shows ``stream_length`` of its candidates in random
    order (about ``repeat_share`` of them already tested, the rest untested) and allows
    ``budget_fraction · stream_length`` proposals. Because the observation is one candidate's
    features, a policy trained here scores any candidate: its log-odds of "propose" ranks them.

    Parameters
    ----------
    problems
        One :class:`DesignProblem` or several (e.g. several known/pool splits of the same
        measurements); their feature widths must agree.
    tested
        Per problem, a boolean mask of candidates already tested (proposing one earns
        ``-repeat_penalty``); default: none tested.
    stream_length
        Candidates shown per episode.
    budget_fraction
        Proposals allowed per episode, as a fraction of ``stream_length``.
    repeat_share
        Share of the stream drawn from tested candidates (when there are any).
    repeat_penalty
        Proposing a tested candidate earns ``-repeat_penalty``.

    Raises
    ------
    DataError
        Empty ``problems``, mismatched widths or masks, or fewer than 2 untested candidates.
    """

    metadata: dict[str, Any] = {"render_modes": []}

    def __init__(self, problems: DesignProblem | Sequence[DesignProblem], *,
                 tested: Sequence[np.ndarray] | None = None, stream_length: int = 32,
                 budget_fraction: float = 0.25, repeat_share: float = 0.125, repeat_penalty: float = 1.0):
        super().__init__()
        self.problems = [problems] if isinstance(problems, DesignProblem) else list(problems)
        if not self.problems:
            raise DataError("StreamDesignEnv needs at least one DesignProblem.")
        widths = {p.features.shape[1] for p in self.problems}
        if len(widths) != 1:
            raise DataError(f"All problems must have the same feature width, got {sorted(widths)}.")
        masks = [np.zeros(p.n, bool) for p in self.problems] if tested is None else \
            [np.asarray(t, bool).reshape(-1) for t in tested]
        if len(masks) != len(self.problems) or any(m.shape != (p.n,) for m, p in
                                                     zip(masks, self.problems, strict=False)):
            raise DataError("tested must hold one boolean mask per problem, each of its number of candidates.")
        if stream_length < 2 or not 0 < budget_fraction <= 1:
            raise DataError(f"stream_length must be ≥ 2 and budget_fraction in (0, 1], got "
                            f"{stream_length}, {budget_fraction}.")
        self._payoffs = []
        for p, m in zip(self.problems, masks, strict=True):
            fresh = np.flatnonzero(~m)
            if len(fresh) < 2:
                raise DataError("Every problem needs at least 2 untested candidates.")
            pay = np.full(p.n, -float(repeat_penalty))
            if p.effects is not None:
                e = p.effects[fresh]
                pay[fresh] = (e - e.mean()) / (e.std() or 1.0)
            else:
                pay[fresh] = np.nan  # evaluated with effect_fn when proposed
            self._payoffs.append(pay)
        self.tested = masks
        self.stream_length = int(stream_length)
        self.budget = max(1, int(round(budget_fraction * stream_length)))
        self.repeat_share = float(repeat_share)
        self.repeat_penalty = float(repeat_penalty)
        d = widths.pop()
        self.observation_space = gym.spaces.Box(-np.inf, np.inf, (d + 2,), np.float32)
        self.action_space = gym.spaces.Discrete(2)
        self._k = 0
        self._stream = np.zeros(0, np.int64)
        self._t = self._left = 0

    @staticmethod
    def observation_for(features: np.ndarray, *, tested: bool | np.ndarray = False,
                        budget_left: float = 1.0) -> np.ndarray:
        """Observations of candidates with the given ``features`` rows (for scoring with a policy)."""
        f = np.atleast_2d(np.asarray(features, dtype=np.float32))
        t = np.broadcast_to(np.asarray(tested, np.float32), (len(f),))
        return np.column_stack([f, t, np.full(len(f), budget_left, np.float32)]).astype(np.float32)

    def _obs(self) -> np.ndarray:
        p, c = self.problems[self._k], int(self._stream[self._t])
        return self.observation_for(p.features[c], tested=bool(self.tested[self._k][c]),
                                    budget_left=self._left / self.budget)[0]

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        rng = self.np_random
        self._k = int(rng.integers(len(self.problems)))
        m = self.tested[self._k]
        fresh, old = np.flatnonzero(~m), np.flatnonzero(m)
        n_rep = min(len(old), max(1, int(round(self.repeat_share * self.stream_length)))) if len(old) else 0
        n_new = min(self.stream_length - n_rep, len(fresh))
        parts = [rng.choice(fresh, size=n_new, replace=False)]
        if n_rep:
            parts.append(rng.choice(old, size=n_rep, replace=False))
        self._stream = rng.permutation(np.concatenate(parts))
        self._t, self._left = 0, self.budget
        return self._obs(), {}

    def step(self, action):
        c = int(self._stream[self._t])
        reward = 0.0
        if int(action) == 1:
            reward = float(self._payoffs[self._k][c])
            if np.isnan(reward):
                reward = float(self.problems[self._k].evaluate(np.array([c]), self.np_random)[0])
            self._left -= 1
        self._t += 1
        done = self._left <= 0 or self._t >= len(self._stream)
        obs = np.zeros(self.observation_space.shape, np.float32) if done else self._obs()
        return obs, reward, done, False, {"candidate": self.problems[self._k].labels[c]}


# ================================================================================== twin effects
def _goal_fn(network, goal: str | Callable[[np.ndarray], float]
             ) -> tuple[Callable[[np.ndarray], float], bool, str]:
    """(value of a set of final states, take |difference|?, description)."""
    from scagents.twin import classify_fate

    if callable(goal):
        return goal, False, getattr(goal, "__name__", "custom goal")
    text = str(goal).strip()
    kind, _, rest = text.partition(":")
    if not rest:
        kind, rest = ("fate", text) if text.lower() in {f.lower() for f in network.fates} else ("gene", text)
    kind = kind.lower()
    if kind == "fate":
        fates = {f.lower(): f for f in network.fates}
        fate = fates.get(rest.lower())
        if fate is None:
            raise GoalError(f"Unknown fate {rest!r}; the model {network.name!r} has fates "
                            f"{list(network.fates)}.")
        return (lambda x: float(np.mean(classify_fate(network, x) == fate))), False, \
            f"fraction of cells reaching {fate} minus control"
    if kind == "gene":
        name, _, direction = rest.partition(":")
        try:
            j = network.gene_index(network.resolve_gene(name.strip()))
        except (GeneNotFoundError, KeyError, ValueError) as err:
            raise GoalError(f"Goal {text!r}: {err}") from err
        direction = direction.strip().lower()
        if direction not in ("", "up", "down"):
            raise GoalError(f"Goal {text!r}: the direction must be 'up' or 'down'.")
        sign = -1.0 if direction == "down" else 1.0
        what = {"": "absolute change", "up": "increase", "down": "decrease"}[direction]
        return (lambda x: sign * float(np.mean(x[:, j]))), direction == "", \
            f"{what} of {network.genes[j]} activity"
    raise GoalError(f"Cannot read goal {text!r}; use a fate name ('Th1', 'fate:Th1'), "
                    "'gene:IFNG' (absolute change), 'gene:IFNG:up' or 'gene:IFNG:down'.")


def twin_effect_table(network="th", candidates: Sequence[Perturbation | str] | None = None, *,
                      goal: str | Callable[[np.ndarray], float] = "Th1", n_cells: int = 200,
                      n_steps: int = 400, dt: float = 0.05, noise: float = 0.1, seed: int = 0,
                      inputs: Mapping[str, float] | None = None) -> pd.DataFrame:
    """Simulate every candidate on the twin and score its effect toward a goal.

    The control and every candidate start from the same ``n_cells`` initial states with the same
    noise stream (common random numbers), so differences come from the perturbation.

    Parameters
    ----------
    network
        A :class:`~scagents.twin.BooleanNetwork` or shipped model name.
    candidates
        Perturbations or labels; ``None``: a knockout and an overexpression of every gene.
    goal
        ``"Th1"`` / ``"fate:Th1"``: fraction of cells whose final state is in that fate, minus
        control; ``"gene:IFNG"``: absolute change of the mean final activity of IFNG;
        ``"gene:IFNG:up"`` / ``":down"``: its signed increase / decrease; or a callable mapping
        final states ``(n_cells, n_genes)`` to a number (effect = value - control value).
    n_cells, n_steps, dt, noise, seed, inputs
        Simulation settings (:func:`scagents.twin.run_dynamics`).

    Returns
    -------
    pandas.DataFrame
        Indexed by candidate label, columns ``targets`` ("+"-joined), ``kind``, ``value`` (goal
        value under the perturbation), ``control`` and ``effect``; ``df.attrs["goal"]`` describes
        the goal.
    """
    from scagents.twin import initial_states, load_model, run_dynamics

    net = load_model(network) if isinstance(network, str) else network
    if candidates is None:
        candidates = [Perturbation((g,), kind=k) for g in net.genes
                      for k in ("knockout", "overexpression")]
    perts = []
    for c in candidates:
        p = as_perturbation(c)
        perts.append(Perturbation(tuple(net.resolve_gene(t) for t in p.targets), kind=p.kind,
                                  strength=p.strength, start_time=p.start_time))
    value, absolute, description = _goal_fn(net, goal)
    x0 = initial_states(net, n_cells, np.random.default_rng([seed, 0]), dict(inputs or {}))

    def final(p: Perturbation | None) -> np.ndarray:
        rec = run_dynamics(net, x0, n_steps=n_steps, dt=dt, noise=noise,
                           rng=np.random.default_rng([seed, 1]), perturbation=p,
                           inputs=dict(inputs or {}), record_every=n_steps)
        return rec[-1]

    control = value(final(None))
    rows = []
    for p in perts:
        v = value(final(p))
        effect = abs(v - control) if absolute else v - control
        rows.append({"targets": "+".join(p.targets), "kind": p.kind, "value": v,
                     "control": control, "effect": effect})
    df = pd.DataFrame(rows, index=pd.Index([_label(p) for p in perts], name="candidate"))
    df.attrs["goal"] = description
    return df
