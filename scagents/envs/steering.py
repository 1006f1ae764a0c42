"""Steering cell fate on the digital twin: timed, combinatorial interventions on a whole population.

A :class:`SteeringTask` fixes a Boolean model, a start population (cells of the model's start state,
or the cells of one fate after a control run), ``n_decisions`` equally spaced decision times, a list
of candidate interventions (``(gene, kind, strength)``), a target fate (or a fate to avoid), a
budget of at most ``max_interventions`` interventions and a cost per intervention.

A **schedule** is a tuple of ``n_decisions`` action indices: ``0`` does nothing at that decision
time, ``i ≥ 1`` applies candidate ``i - 1`` from then on (interventions stay on). Interventions past
the budget are ignored (the schedule is *canonicalised*), so every schedule is valid. Its
**objective** is the target-fate fraction of the population at the end (``1 - fraction`` for a fate
to avoid) minus ``cost`` per intervention.

One twin **simulation** is one schedule run to the end on the whole population. The population is
stepped segment by segment (from one decision time to the next) with the twin's own vectorised
integrator (:func:`scagents.twin.dynamics.integrate`); segment ``k`` uses the noise stream
``[seed, 1, k]`` whatever happened before (common random numbers), so the objective of a schedule
is a deterministic function of the seed and schedules with a common prefix share their simulated
prefix (:class:`TwinSteerer` caches it).

:class:`SteeringEnv` (Gymnasium)
    One step per decision time. Observation: ``[fate fractions (fates + undecided) | mean gene
    activities | time (fraction) | interventions left (fraction)]``; action: ``Discrete(1 +
    n_candidates)``; reward: ``-cost`` for an applied intervention, plus the end term at the last
    step, so an episode's return is the schedule's objective.
:class:`SteeringParallelEnv` (PettingZoo)
    One agent per decision time (``t0 … t{D-1}``); all choose at once in a single step and share the
    schedule's objective as reward (a cooperative one-shot game).
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import gymnasium as gym
import numpy as np
from pettingzoo import ParallelEnv

from scagents.errors import GoalError
from scagents.perturbation import Perturbation

__all__ = ["SteeringTask", "TwinSteerer", "SteeringEnv", "SteeringParallelEnv", "Schedule",
           "default_candidates", "enumerate_schedules", "canonical", "milieu_text", "silent_hint", "task_milieu"]

Schedule = tuple[int, ...]


def default_candidates(network, kinds: Sequence[str] = ("knockout", "overexpression")) -> list[Perturbation]:
    """A knockout and an overexpression of every gene of ``network`` that is not a model input (the
    milieu is set by the task's ``inputs``, not searched over; the benchmark's tasks use the same set)."""
    inputs = set(network.inputs)
    return [Perturbation((g,), kind=k) for g in network.genes if g not in inputs for k in kinds]


def _resolve_fate(network, name: str | None, what: str) -> str | None:
    if name is None:
        return None
    fates = {f.lower(): f for f in network.fates}
    fate = fates.get(str(name).strip().lower())
    if fate is None:
        raise GoalError(f"Unknown {what} fate {name!r} for model {network.name!r}; its fates are: "
                        f"{', '.join(network.fates)}.")
    return fate


@dataclass
class SteeringTask:
    """What to steer, from where, with what (see the module docstring).

    Parameters
    ----------
    network
        A :class:`~scagents.twin.BooleanNetwork` or a shipped model name.
    target
        Fate to reach (or to avoid with ``avoid=True``); one of ``network.fates``.
    start_fate
        Start from the cells that end in this fate after a control run of ``n_steps`` (``None``:
        the model's initial states).
    avoid
        Minimise the ``target`` fraction instead of maximising it.
    candidates
        Interventions (targets, kind, strength); default :func:`default_candidates`.
    n_decisions
        Decision times ``0, 1/D, …, (D-1)/D`` of the trajectory.
    max_interventions
        Budget of interventions per schedule.
    cost
        Subtracted from the objective per intervention.
    n_cells, n_steps, dt, noise
        Population size and simulation settings (:func:`scagents.twin.run_dynamics`).
    inputs
        Milieu: ``{input gene: activity}`` clamped for the whole run.
    """

    network: Any
    target: str
    start_fate: str | None = None
    avoid: bool = False
    candidates: list[Perturbation] | None = None
    n_decisions: int = 3
    max_interventions: int = 2
    cost: float = 0.02
    n_cells: int = 200
    n_steps: int = 300
    dt: float = 0.05
    noise: float = 0.1
    inputs: dict[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        from scagents.twin import load_model

        if isinstance(self.network, str):
            self.network = load_model(self.network)
        net = self.network
        self.target = _resolve_fate(net, self.target, "target")
        self.start_fate = _resolve_fate(net, self.start_fate, "start")
        if self.candidates is None:
            self.candidates = default_candidates(net)
        self.candidates = [Perturbation(tuple(net.resolve_gene(t) for t in p.targets), kind=p.kind,
                                        strength=p.strength) for p in self.candidates]
        if self.n_decisions < 1 or self.max_interventions < 0 or self.n_cells < 1:
            raise GoalError("n_decisions and n_cells must be ≥ 1 and max_interventions ≥ 0.")
        if self.n_steps < self.n_decisions:
            raise GoalError(f"n_steps ({self.n_steps}) must be at least n_decisions ({self.n_decisions}).")

    @property
    def n_actions(self) -> int:
        """``1 + n_candidates`` (action 0 does nothing)."""
        return 1 + len(self.candidates)

    @property
    def fate_names(self) -> list[str]:
        """The model's fates plus ``"undecided"``."""
        return [*self.network.fates, "undecided"]

    @property
    def bounds(self) -> list[int]:
        """Step indices of the decision times plus the end (``n_decisions + 1`` values)."""
        return [int(round(k * self.n_steps / self.n_decisions)) for k in range(self.n_decisions + 1)]

    def action_label(self, a: int) -> str:
        """``"none"`` or e.g. ``"GATA3 knockout"``."""
        if a == 0:
            return "none"
        p = self.candidates[a - 1]
        extra = f" ({p.strength:.0%})" if p.kind == "knockdown" else ""
        return f"{p.label}{extra}"

    def describe(self, schedule: Sequence[int]) -> list[dict]:
        """The interventions of a schedule as ``{"time", "decision", "intervention"}`` records."""
        return [{"decision": k, "time": round(k / self.n_decisions, 4), "intervention": self.action_label(a)}
                for k, a in enumerate(canonical(schedule, self.max_interventions)) if a]

    def to_dict(self) -> dict:
        return {"model": self.network.name, "target": self.target, "avoid": self.avoid,
                "start_fate": self.start_fate, "n_candidates": len(self.candidates),
                "n_decisions": self.n_decisions, "max_interventions": self.max_interventions,
                "cost": self.cost, "n_cells": self.n_cells, "n_steps": self.n_steps, "dt": self.dt,
                "noise": self.noise, "inputs": dict(self.inputs)}


def canonical(schedule: Sequence[int], max_interventions: int) -> Schedule:
    """Drop interventions past the budget (in time order)."""
    out, used = [], 0
    for a in schedule:
        a = int(a)
        if a and used < max_interventions:
            out.append(a)
            used += 1
        else:
            out.append(0)
    return tuple(out)


def enumerate_schedules(task: SteeringTask) -> list[Schedule]:
    """Every canonical schedule of ``task`` (``Σ_{m ≤ budget} C(D, m) K^m`` of them)."""
    d, k = task.n_decisions, len(task.candidates)
    out: list[Schedule] = []
    for m in range(min(task.max_interventions, d) + 1):
        for times in itertools.combinations(range(d), m):
            for acts in itertools.product(range(1, k + 1), repeat=m):
                s = [0] * d
                for t, a in zip(times, acts, strict=True):
                    s[t] = a
                out.append(tuple(s))
    return out


def task_milieu(task: SteeringTask) -> dict[str, float]:
    """The input activities the task's simulations use (the user's over the model's own)."""
    from scagents.twin.milieu import current_milieu

    net = task.network
    return current_milieu(net, {net.resolve_gene(g): float(v) for g, v in (task.inputs or {}).items()})


def milieu_text(task: SteeringTask) -> str:
    """The task's milieu as ``"TCR=1, IL12=0"`` (``"no inputs"`` without any)."""
    return ", ".join(f"{g}={v:g}" for g, v in task_milieu(task).items()) or "no inputs"


def silent_hint(task: SteeringTask, *, start_fate: str | None = None, n_cells: int = 64, seed: int = 0) -> str:
    """What to set so that the twin's cells do not all end all-off, computed by simulation.

    Control cells are simulated from the model's start state (``n_cells`` cells, the task's
    ``n_steps``, ``dt`` and ``noise``) under each milieu :func:`scagents.twin.milieu.scan_milieus`
    would scan (every 0 / 1 combination of the model's inputs, or single inputs and pairs switched
    on); the sentence names the milieu closest to the current one (fewest inputs changed, then scan
    order) whose cells are not all all-off (and reach ``start_fate`` when given), with the fates its
    cells end in, or says that none does.

    Returns
    -------
    str
        One sentence ending with a full stop.
    """
    from scagents.twin import classify_fate, initial_states
    from scagents.twin.dynamics import integrate
    from scagents.twin.milieu import MAX_FULL_INPUTS, _milieus
    from scagents.twin.simulate import is_silent

    net = task.network
    initial = "initial states ('# @initial GENE = 0.8' lines or a sidecar)"
    if not net.inputs:
        return f"the model has no inputs: give it {initial}."
    now = task_milieu(task)
    milieus = _milieus(net, now)
    scanned = (f"{net.inputs[0]} = 0 and 1" if len(net.inputs) == 1 else
               f"every 0/1 combination of {', '.join(net.inputs)}" if len(net.inputs) <= MAX_FULL_INPUTS
               else f"each input of {', '.join(net.inputs)} and each pair switched on")
    active, with_start = [], []
    for m in milieus:
        rng = np.random.default_rng([seed, 2])
        x = initial_states(net, n_cells, rng, m)
        final, _, _ = integrate(net, x, n_steps=task.n_steps, dt=task.dt, noise=task.noise, rng=rng, inputs=m)
        if is_silent(net, final):
            continue
        names, counts = np.unique(classify_fate(net, final), return_counts=True)
        ends = ", ".join(f"{n} {c / n_cells:.0%}" for n, c in sorted(zip(names, counts, strict=True),
                                                                      key=lambda e: -e[1]))
        active.append((m, ends))
        if start_fate is not None and start_fate in set(names):
            with_start.append((m, ends))
    checked = f"the {len(milieus)} milieus checked ({scanned})"
    if not active:
        return f"none of {checked} keeps a cell active: give the model {initial}."
    if start_fate is not None and not with_start:
        return f"in none of {checked} does a cell reach {start_fate}: give the model {initial}."
    pick = with_start or active
    # the active milieu closest to the current one (fewest inputs changed; scan order among equals)
    m, ends = min(pick, key=lambda e: sum(v != now.get(g) for g, v in e[0].items()))
    change = " ".join(f"{g}={v:g}" for g, v in m.items() if v != now.get(g)) or "(the current milieu)"
    one = len(pick) == 1
    verb = f"keep{'s' * one} cells active" + (f" and reach{'es' * one} {start_fate}" if start_fate else "")
    return (f"{len(pick)} of {checked} {verb}, e.g. --inputs "
            f"{change} (the closest to yours; its cells end {ends}), or give the model {initial}.")

# ================================================================================== simulator
class TwinSteerer:
    """Runs schedules of a :class:`SteeringTask` on the twin for one population seed.

    Simulated prefixes are cached (``cache=True``), so evaluating many schedules that share their
    first interventions costs only their differing segments. :attr:`n_simulations` counts schedule
    evaluations run to the end (cached or not: the budget unit of the searchers) and
    :attr:`history` keeps ``(schedule, objective)`` of each of them in order.

    Parameters
    ----------
    task
        The steering task.
    seed
        Population seed: start cells ``[seed, 0]``, noise of segment ``k`` ``[seed, 1, k]``.
    cache
        Keep simulated prefixes (memory: about ``n_cells · n_genes · 4`` bytes per prefix).
    """

    def __init__(self, task: SteeringTask, seed: int = 0, *, cache: bool = True):
        self.task = task
        self.seed = int(seed)
        self.use_cache = bool(cache)
        self._cache: dict[Schedule, np.ndarray] = {}
        self.n_simulations = 0
        self.n_segments = 0
        self.history: list[tuple[Schedule, float]] = []
        self.x0 = self._start_population()

    # ------------------------------------------------------------------ population
    def _start_population(self) -> np.ndarray:
        from scagents.twin import classify_fate, initial_states
        from scagents.twin.dynamics import integrate
        from scagents.twin.simulate import is_silent

        t, net = self.task, self.task.network
        rng = np.random.default_rng([self.seed, 0])
        if t.start_fate is None:
            return initial_states(net, t.n_cells, rng, t.inputs).astype(np.float32)
        n_pool = max(4 * t.n_cells, 400)
        x = initial_states(net, n_pool, rng, t.inputs)
        final, _, _ = integrate(net, x, n_steps=t.n_steps, dt=t.dt, noise=t.noise, rng=rng,
                                inputs=t.inputs)
        fates = classify_fate(net, final)
        pick = np.flatnonzero(fates == t.start_fate)
        if pick.size == 0 and is_silent(net, final):
            raise GoalError(f"No cell of model {net.name!r} reaches the start fate {t.start_fate!r}: every cell ends "
                            f"all-off (milieu {milieu_text(t)}); " + silent_hint(t, start_fate=t.start_fate))
        if pick.size == 0:
            names, counts = np.unique(fates, return_counts=True)
            ends = ", ".join(f"{n} {c}" for n, c in sorted(zip(names, counts, strict=True), key=lambda e: -e[1]))
            reached = [f for f in net.fates if f in set(names)]
            milieu = f"the milieu {t.inputs}" if t.inputs else "the model's default milieu"
            start = (f"start from a fate they reach ({', '.join(reached)}) or from the model's start state"
                     if reached else "start from the model's start state")
            raise GoalError(f"No cell of model {net.name!r} reaches the start fate {t.start_fate!r} under "
                            f"{milieu} (the {n_pool} simulated cells end: {ends}); {start} (no start fate in the "
                            "goal), or change the milieu (--inputs) or the initial states ('# @initial GENE = 0.8' "
                            "lines or a sidecar with \"initial\").")
        # the committed cells keep their per-cell inputs (e.g. TCR strength) and their state
        return final[rng.choice(pick, size=t.n_cells, replace=pick.size < t.n_cells)].astype(np.float32)

    # ------------------------------------------------------------------ dynamics
    def _active(self, prefix: Schedule) -> list[Perturbation]:
        return [self.task.candidates[a - 1] for a in prefix if a]

    def segment(self, x: np.ndarray, prefix: Schedule, k: int, *, record_every: int | None = None
                ) -> tuple[np.ndarray, np.ndarray | None]:
        """Simulate decision segment ``k`` from state ``x`` with the interventions of ``prefix``
        (length ``k + 1``) active; returns the state at the segment's end (and records)."""
        from scagents.twin.dynamics import integrate

        t = self.task
        b = t.bounds
        x = x.copy()
        inputs = t.network.inputs
        if inputs:  # inputs restart from their start value (a knocked-down input is scaled once)
            idx = [t.network.gene_index(g) for g in inputs]
            x[:, idx] = self.x0[:, idx]
        final, rec, _ = integrate(t.network, x, n_steps=b[k + 1] - b[k], dt=t.dt, noise=t.noise,
                                  rng=np.random.default_rng([self.seed, 1, k]),
                                  perturbation=self._active(prefix), inputs=t.inputs,
                                  record_every=record_every)
        self.n_segments += 1
        return final.astype(np.float32), rec

    def segment_batch(self, prefixes: Sequence[Schedule]) -> list[np.ndarray]:
        """Simulate the last segment of several prefixes of the same length in one array program.

        The populations of all prefixes are stacked side by side (gene-major, ``n_genes × (B ·
        n_cells)``) with per-column clamps and production factors, and every cell column gets the
        same noise as in :meth:`segment` (the segment's stream, broadcast over the prefixes), so the
        result equals :meth:`segment` of each prefix exactly, at a fraction of the Python overhead.
        """
        from scagents.twin.dynamics import _check_inputs, _compiled

        t, net = self.task, self.task.network
        k = len(prefixes[0]) - 1
        b = t.bounds
        n_steps, n_cells, n_genes, n_b = b[k + 1] - b[k], t.n_cells, net.n_genes, len(prefixes)
        cn = _compiled(net)
        x = np.empty((n_genes, n_b * n_cells), np.float32)
        inputs = [net.gene_index(g) for g in net.inputs]
        for j, p in enumerate(prefixes):
            start = self.state_after(p[:-1]).copy()
            if inputs:
                start[:, inputs] = self.x0[:, inputs]
            x[:, j * n_cells:(j + 1) * n_cells] = np.clip(start.T, 0.0, 1.0)
        for g, v in _check_inputs(net, t.inputs).items():
            x[net.genes.index(g)] = v
        mask = np.zeros_like(x, dtype=bool)
        values = np.zeros_like(x)
        production = np.ones_like(x)
        mask[list(cn.inputs)] = True
        values[list(cn.inputs)] = x[list(cn.inputs)]
        for j, p in enumerate(prefixes):
            cols = slice(j * n_cells, (j + 1) * n_cells)
            for pert in self._active(p):
                for i in (net.gene_index(g) for g in pert.targets):
                    if pert.kind == "knockdown":
                        production[i, cols] = 1.0 - pert.strength
                        values[i, cols] *= np.where(mask[i, cols], 1.0 - pert.strength, 1.0).astype(np.float32)
                    else:
                        mask[i, cols] = True
                        values[i, cols] = 0.0 if pert.kind == "knockout" else 1.0
        knocked = bool((production != 1.0).any())
        rng = np.random.default_rng([self.seed, 1, k])
        sq = np.float32(t.noise * np.sqrt(t.dt))
        rate = np.float32(t.dt / net.tau)
        f, tmp, noise = x.copy(), np.empty_like(x), np.empty_like(x)
        buffers = (np.empty_like(x), np.empty_like(x))
        xi = np.empty((n_genes, n_cells), np.float32)
        shape3 = (n_genes, n_b, n_cells)
        for _ in range(n_steps):
            np.copyto(x, values, where=mask)
            h, nh = cn.hill(x, buffers)
            cn.rule_fn(h, nh, f)
            if knocked:
                f *= production
            np.subtract(f, x, out=tmp)
            tmp *= rate
            if sq > 0:
                rng.standard_normal(out=xi, dtype=np.float32)
                np.add(f, x, out=f)
                np.sqrt(f, out=f)
                np.multiply(f.reshape(shape3), xi[:, None, :], out=noise.reshape(shape3))
                noise *= sq
                x += noise
            x += tmp
            np.clip(x, 0.0, 1.0, out=x)
        np.copyto(x, values, where=mask)
        self.n_segments += n_b
        return [np.ascontiguousarray(x[:, j * n_cells:(j + 1) * n_cells].T) for j in range(n_b)]

    def prefetch(self, schedules: Sequence[Sequence[int]], batch: int = 64) -> None:
        """Simulate (and cache) every prefix of ``schedules`` level by level, ``batch`` at a time."""
        if not self.use_cache:
            return
        canon = {canonical(s, self.task.max_interventions) for s in schedules}
        for k in range(self.task.n_decisions):
            todo = sorted({s[:k + 1] for s in canon} - set(self._cache))
            for i in range(0, len(todo), batch):
                chunk = todo[i:i + batch]
                for p, x in zip(chunk, self.segment_batch(chunk), strict=True):
                    self._cache[p] = x

    def state_after(self, prefix: Schedule) -> np.ndarray:
        """Population state at the end of segment ``len(prefix) - 1`` (cached)."""
        prefix = tuple(prefix)
        if not prefix:
            return self.x0
        hit = self._cache.get(prefix)
        if hit is not None:
            return hit
        return self.advance(self.state_after(prefix[:-1]), prefix)

    def advance(self, x: np.ndarray, prefix: Schedule) -> np.ndarray:
        """State after ``prefix`` given ``x``, the state after ``prefix[:-1]`` (cached when on)."""
        prefix = tuple(prefix)
        hit = self._cache.get(prefix)
        if hit is not None:
            return hit
        x, _ = self.segment(x, prefix, len(prefix) - 1)
        if self.use_cache:
            self._cache[prefix] = x
        return x

    def clear_cache(self) -> None:
        self._cache.clear()

    # ------------------------------------------------------------------ read-outs
    def fractions(self, x: np.ndarray) -> np.ndarray:
        """Fate fractions (model fates, then undecided) of a population state."""
        from scagents.twin import classify_fate

        names = classify_fate(self.task.network, x)
        return np.array([np.mean(names == f) for f in self.task.fate_names], dtype=np.float64)

    def end_value(self, x: np.ndarray) -> float:
        """Target fraction (or ``1 -`` the avoided fraction) of a final state."""
        t = self.task
        frac = float(self.fractions(x)[t.fate_names.index(t.target)])
        return 1.0 - frac if t.avoid else frac

    def objective(self, schedule: Sequence[int], *, record: bool = True) -> float:
        """Run one schedule to the end (one simulation) and return its objective."""
        s = canonical(schedule, self.task.max_interventions)
        value = self.end_value(self.state_after(s)) - self.task.cost * sum(a > 0 for a in s)
        if record:
            self.n_simulations += 1
            self.history.append((s, value))
        return value

    def evaluate(self, schedules: Sequence[Sequence[int]]) -> np.ndarray:
        """Objectives of several schedules (one simulation each)."""
        return np.array([self.objective(s) for s in schedules])

    def trajectory(self, schedule: Sequence[int], record_every: int = 10) -> tuple[np.ndarray, np.ndarray]:
        """Fate fractions over time under ``schedule`` (not counted, not cached).

        Returns
        -------
        times, fractions
            Times as fractions of the trajectory, and ``(n_times, n_fates + 1)`` fractions.
        """
        s = canonical(schedule, self.task.max_interventions)
        b = self.task.bounds
        x = self.x0
        times, fr = [0.0], [self.fractions(x)]
        for k in range(self.task.n_decisions):
            x, rec = self.segment(x, s[:k + 1], k, record_every=record_every)
            for j, state in enumerate(rec[1:], start=1):
                times.append((b[k] + j * record_every) / self.task.n_steps)
                fr.append(self.fractions(state))
            if (b[k + 1] - b[k]) % record_every:
                times.append(b[k + 1] / self.task.n_steps)
                fr.append(self.fractions(x))
        return np.array(times), np.array(fr)

    def mean_path(self, schedule: Sequence[int], record_every: int = 10) -> tuple[np.ndarray, np.ndarray]:
        """The population's mean state over time under ``schedule`` (not counted, not cached): the
        steered trajectory drawn on the landscape.

        Returns
        -------
        times, means
            Times as fractions of the trajectory, and ``(n_times, n_genes)`` mean activities.
        """
        s = canonical(schedule, self.task.max_interventions)
        b = self.task.bounds
        x = self.x0
        times, means = [0.0], [x.mean(0)]
        for k in range(self.task.n_decisions):
            x, rec = self.segment(x, s[:k + 1], k, record_every=record_every)
            for j, state in enumerate(rec[1:], start=1):
                times.append((b[k] + j * record_every) / self.task.n_steps)
                means.append(state.mean(0))
            if (b[k + 1] - b[k]) % record_every:
                times.append(b[k + 1] / self.task.n_steps)
                means.append(x.mean(0))
        return np.array(times), np.array(means)

    def final_states(self, schedule: Sequence[int]) -> np.ndarray:
        """The population's final states under ``schedule`` (not counted)."""
        return self.state_after(canonical(schedule, self.task.max_interventions))


# ================================================================================== Gymnasium
class SteeringEnv(gym.Env):
    """One decision time per step (see the module docstring).

    Parameters
    ----------
    task
        The steering task.
    seed
        Population seed of the twin (fixed: every episode steers the same population). ``None``
        draws a new population seed at every ``reset`` from the env's generator.
    steerer
        Share a :class:`TwinSteerer` (its prefix cache, simulation count and history) between
        several environments; default: a new one for ``seed``.
    """

    metadata: dict[str, Any] = {"render_modes": []}

    def __init__(self, task: SteeringTask, seed: int | None = 0, *, steerer: TwinSteerer | None = None):
        self.task = task
        self.fixed_seed = seed
        self.steerer = steerer if steerer is not None else TwinSteerer(task, 0 if seed is None else seed)
        nf, ng = len(task.fate_names), task.network.n_genes
        self.observation_space = gym.spaces.Box(0.0, 1.0, (nf + ng + 2,), np.float32)
        self.action_space = gym.spaces.Discrete(task.n_actions)
        self.modality_slices = {"fates": slice(0, nf), "genes": slice(nf, nf + ng + 2)}
        self._prefix: Schedule = ()
        self._x = self.steerer.x0

    def _obs(self) -> np.ndarray:
        t = self.task
        x = self._x
        used = sum(a > 0 for a in self._prefix)
        left = (t.max_interventions - used) / t.max_interventions if t.max_interventions else 0.0
        return np.concatenate([self.steerer.fractions(x), x.mean(0),
                               [len(self._prefix) / t.n_decisions, left]]).astype(np.float32)

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        if self.fixed_seed is None:
            pop_seed = int(self.np_random.integers(2**31 - 1))
            if pop_seed != self.steerer.seed:
                self.steerer = TwinSteerer(self.task, pop_seed, cache=self.steerer.use_cache)
        self._prefix = ()
        self._x = self.steerer.x0
        return self._obs(), {"schedule": []}

    def step(self, action):
        t = self.task
        a = int(action)
        if not 0 <= a < t.n_actions:
            raise GoalError(f"Action {a} is not in 0-{t.n_actions - 1}.")
        used = sum(x > 0 for x in self._prefix)
        applied = a if (a and used < t.max_interventions) else 0
        self._prefix = (*self._prefix, applied)
        self._x = self.steerer.advance(self._x, self._prefix)
        reward = -t.cost if applied else 0.0
        done = len(self._prefix) >= t.n_decisions
        obs = self._obs()
        info = {"applied": t.action_label(applied), "over_budget": bool(a and not applied)}
        if done:
            end = self.steerer.end_value(self._x)
            reward += end
            value = end - t.cost * sum(x > 0 for x in self._prefix)
            self.steerer.n_simulations += 1
            self.steerer.history.append((self._prefix, value))
            info["objective"] = value
        return obs, float(reward), done, False, info


# ================================================================================== PettingZoo
class SteeringParallelEnv(ParallelEnv):
    """One agent per decision time choosing its intervention; shared reward (see the module docstring)."""

    metadata: dict[str, Any] = {"name": "scagents_steering_v0", "render_modes": []}

    def __init__(self, task: SteeringTask, seed: int = 0, *, steerer: TwinSteerer | None = None):
        self.task = task
        self.steerer = steerer if steerer is not None else TwinSteerer(task, seed)
        self.possible_agents = [f"t{k}" for k in range(task.n_decisions)]
        self.agents: list[str] = []
        nf, ng = len(task.fate_names), task.network.n_genes
        dim = nf + ng + task.n_decisions
        self._obs_spaces = {a: gym.spaces.Box(0.0, 1.0, (dim,), np.float32) for a in self.possible_agents}
        self._act_spaces = {a: gym.spaces.Discrete(task.n_actions) for a in self.possible_agents}

    def observation_space(self, agent: str) -> gym.spaces.Box:
        return self._obs_spaces[agent]

    def action_space(self, agent: str) -> gym.spaces.Discrete:
        return self._act_spaces[agent]

    def _observe(self) -> dict[str, np.ndarray]:
        x = self.steerer.x0
        shared = np.concatenate([self.steerer.fractions(x), x.mean(0)]).astype(np.float32)
        out = {}
        for k, a in enumerate(self.possible_agents):
            onehot = np.zeros(self.task.n_decisions, np.float32)
            onehot[k] = 1.0
            out[a] = np.concatenate([shared, onehot])
        return out

    def reset(self, seed: int | None = None, options: dict | None = None):
        self.agents = list(self.possible_agents)
        return self._observe(), {a: {} for a in self.possible_agents}

    def step(self, actions: Mapping[str, int]):
        if not self.agents:
            raise GoalError("The episode is over; call reset() before step().")
        missing = [a for a in self.agents if a not in actions]
        if missing:
            raise GoalError(f"step() needs an action from every decision time; missing {missing}.")
        schedule = tuple(int(actions[a]) for a in self.possible_agents)
        value = self.steerer.objective(schedule)
        applied = canonical(schedule, self.task.max_interventions)
        rewards = {a: float(value) for a in self.agents}
        infos = {a: {"applied": self.task.action_label(applied[k])} for k, a in enumerate(self.agents)}
        obs = self._observe()
        terms = {a: True for a in self.agents}
        truncs = {a: False for a in self.agents}
        self.agents = []
        return obs, rewards, terms, truncs, infos

    def render(self) -> None:
        return None

    def close(self) -> None:
        return None
