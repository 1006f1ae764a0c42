"""Fate-steering goals: parse "drive Th0 cells to Th1" and answer it on the digital twin.

Goals understood (model fates matched case-insensitively, plurals accepted)::

    drive Th0 cells to Th1            start population Th0, target Th1
    turn Th2 cells into Th1           start population Th2, target Th1
    block the erythroid fate          avoid erythroid (model chosen by its fates: krumsiek11)
    which two perturbations make granulocytes     target granulocyte, budget 2
    steer to Th1 without touching IFNG            IFNG's knockout and overexpression left out

A model file (``model="my.bnet"``) stays the model; a fixed time ("after t=0.5") is refused (the
search picks the decision times). When the best schedule's target fraction does not clear the
control's over the fresh population seeds, the answer says the simulation carries no signal (or, when
the control already ends in the target fate on every seed, that the goal is met without
intervention) and proposes nothing. A best schedule that perturbs a gene the target fate's own rule
reads is flagged (the fate then changes partly by definition), and genes a ``.bnet`` model reads
without a rule are named (they are inputs).

:func:`parse_steering_goal` turns the words into a :class:`SteeringGoal` (model, start fate, target,
avoid, budget); :func:`answer_steering_goal` searches schedules on the twin
(:mod:`scagents.policies.steering_search`: greedy, cross-entropy and TRPO→PPO, budgets in twin
simulations), re-runs the best schedules on fresh population seeds for an interval, ranks the best
schedule's steps by their marginal contribution and plots fate fractions over time, control vs
schedule, and the cells' final states in a 2-D embedding.
"""

from __future__ import annotations

import re
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from scagents._atomic import atomic_path, write_json, write_text
from scagents.errors import GoalError

__all__ = ["SteeringGoal", "is_steering_goal", "parse_steering_goal", "answer_steering_goal",
           "steering_goal_text", "goal_with_budget"]

_STEER = re.compile(r"\b(drive|turn|steer|push|convert|reprogram|block|prevent|avoid|suppress|"
                    r"make|makes|produce|generate)\b", re.I)
_AVOID = re.compile(r"\b(block|prevent|avoid|suppress)\b", re.I)
_BUDGET = re.compile(r"\b(one|single|a|two|pair|three|[123])\s+(?:of\s+)?(?:perturbations?|interventions?|"
                     r"knockouts?|steps?|changes?)", re.I)
_NUMBERS = {"one": 1, "single": 1, "a": 1, "two": 2, "pair": 2, "three": 3, "1": 1, "2": 2, "3": 3}


@dataclass(frozen=True)
class SteeringGoal:
    """A parsed steering goal."""

    text: str
    model: str
    target: str
    start_fate: str | None = None
    avoid: bool = False
    max_interventions: int = 2
    n_decisions: int = 3
    exclude: tuple[str, ...] = ()

    def to_dict(self) -> dict:
        return asdict(self)


def is_steering_goal(text: str | None) -> bool:
    """Whether a goal asks to steer cell fate (rather than predict a perturbation's response)."""
    if not text or re.match(r"\s*(predict|what happens)", text, re.I):
        return False
    return bool(_STEER.search(text))


def _fate_index(models: list[str]) -> dict[str, dict[str, str]]:
    from scagents.twin import load_model

    return {m: {f.lower(): f for f in load_model(m).fates} for m in models}


# words that stand before "cells" without naming a start fate ("push cells", "make more cells")
_NOT_A_FATE = {"the", "of", "my", "these", "those", "all", "some", "more", "which", "what", "naive", "our",
               "your", "their", "any", "many", "most", "t", "the.", "into", "to", "towards", "toward"}
_TIMED = re.compile(r"\b(?:at|after|before|from|until|by)\s+(?:time\s+|t\s*=?\s*|day\s+|hour\s+)?\d[\d.]*"
                    r"\s*(?:h|hours?|d|days?|min|%)?(?=\W|$)", re.I)
_EXCLUDE = re.compile(r"\b(?:without|except|excluding)\s+(?:touching|using|perturbing|targeting|"
                      r"changing|hitting)?\s*([A-Za-z0-9_.\-]+(?:\s*(?:,|and|or|nor)\s*[A-Za-z0-9_.\-]+)*)",
                      re.I)


def _match(word: str, fates: dict[str, str]) -> str | None:
    w = word.lower().strip(".,?!")
    for cand in (w, w[:-1] if w.endswith("s") else w, w[:-2] if w.endswith("es") else w):
        if cand in fates:
            return fates[cand]
    return None


def _no_fates_message(path: Path) -> str:
    """How to give a model file fates, in the file's own format, with two of its own genes."""
    from scagents.twin import load_model

    net = load_model(path)
    genes = [g for g in net.genes if g not in net.inputs] or list(net.genes)
    a, b = (genes + genes)[:2]
    rule = f"{a} & !{b}"
    side = path.with_name(path.stem + ".inputs.json")
    in_file = {"bnet": f"add lines such as '# @fate NAME = {rule}' to it, or ",
               "booleannet": f"add lines such as '# @fate NAME = {rule}' to it, or ",
               "scanpy": f"add lines such as '@fate NAME = {rule}' to it, or "}.get(net.format, "")
    return (f"The model file {str(path)!r} defines no fates (the cell states a goal can name); {in_file}write "
            f"them in a sidecar {side.name} beside it ({{\"fates\": {{\"NAME\": \"{rule}\"}}}}; copy the model "
            f"to a writable folder first if needed). Its genes: {', '.join(net.genes[:15])}"
            f"{', …' if net.n_genes > 15 else ''}.")


def parse_steering_goal(text: str, model: str = "th") -> SteeringGoal:
    """Parse a steering goal (see the module docstring).

    Parameters
    ----------
    text
        The goal in plain words.
    model
        Preferred twin model; another shipped model is used when the goal names only its fates.

    Raises
    ------
    GoalError
        No target fate, or a fate word the model does not have (the message lists its fates).
    """
    from scagents.twin import list_models, load_model, shipped_model

    if not text or not text.strip():
        raise GoalError('The goal is empty. Write e.g. --goal "drive Th0 cells to Th1".')
    # a model file stays the model (its path is kept: the task reads the file again); a shipped
    # model may give way to another shipped model whose fates the goal names
    user_file = shipped_model(model) is None
    preferred = str(model) if user_file else load_model(model).name
    shipped = [] if user_file else [m for m in list_models() if m != preferred]
    index = _fate_index([preferred] + shipped)
    if user_file and not index[preferred]:
        raise GoalError(_no_fates_message(Path(model)))
    timed = _TIMED.search(text)
    if timed:
        raise GoalError(f"A fixed time ({timed.group(0).strip()!r}) cannot be set in a steering goal: the search "
                        "picks when to intervene among t = 0, 0.33 and 0.67 of the trajectory and the report "
                        "says when; drop the time from the goal.")
    words = re.findall(r"[A-Za-z0-9_.\-]+", text)
    chosen = preferred
    if not any(_match(w, index[preferred]) for w in words):
        for m, fates in index.items():
            if any(_match(w, fates) for w in words):
                chosen = m
                break
    fates = index[chosen]
    low = text.lower()
    # the words in fate positions: "<X> cells", "to/into <Y>", "block the <Y> fate", "make <Y>"
    start_w = re.search(r"([A-Za-z0-9_.\-]+)\s+cells?\b", text)
    target_w = (re.search(r"\b(?:to|into|towards?)\s+(?:the\s+|a\s+)?([A-Za-z0-9_.\-]+)", text)
                or re.search(r"\b(?:block|prevent|avoid|suppress)\s+(?:the\s+)?([A-Za-z0-9_.\-]+)", text)
                or re.search(r"\b(?:make|makes|produce|generate)\s+(?:more\s+)?([A-Za-z0-9_.\-]+)", text))
    if target_w is None:
        raise GoalError(f"Cannot find the target fate in {text!r}; write e.g. \"drive Th0 cells to Th1\" "
                        f"or \"block the erythroid fate\". Model {chosen!r} has fates: {', '.join(fates.values())}.")
    target = _match(target_w.group(1), fates)
    if target is None and _AVOID.fullmatch(verb := target_w.group(0).split()[0]):
        try:  # "block JAK1": a gene, not a fate: the user asks for its loss, not fate steering
            gene = load_model(model if chosen == preferred else chosen).resolve_gene(target_w.group(1))
        except KeyError:
            gene = None
        if gene is not None:
            raise GoalError(f"{target_w.group(1)!r} is a gene of model {chosen!r}, not a fate, and "
                            f"{verb!r} + a fate is a steering goal; to predict the response to "
                            f"{verb}ing {gene}, write \"predict {gene} knockdown\" (or knockout). "
                            f"Fates: {', '.join(fates.values())}.")
    if target is None:
        raise GoalError(f"Unknown fate {target_w.group(1)!r} in the goal; model {chosen!r} has fates: "
                        f"{', '.join(fates.values())}. For a fate no shipped model has, pass --model "
                        f"FILE.bnet with a line such as '# @fate {target_w.group(1)} = GENE1 & !GENE2'.")
    start = None
    if (start_w is not None and start_w.group(1).lower() not in _NOT_A_FATE
            and not _STEER.fullmatch(start_w.group(1))):
        start = _match(start_w.group(1), fates)
        if start is None:
            raise GoalError(f"Unknown start fate {start_w.group(1)!r} in the goal; model {chosen!r} has "
                            f"fates: {', '.join(fates.values())}.")
    if start == target and start_w is not None and start_w.start() >= target_w.start():
        start = None  # "make Th1 cells": the target's own word, not a start population
    exclude: list[str] = []
    for m_ex in _EXCLUDE.finditer(text):
        net = load_model(model if chosen == preferred else chosen)
        for word in re.split(r"\s*(?:,|\band\b|\bor\b|\bnor\b)\s*", m_ex.group(1)):
            if not word:
                continue
            try:
                exclude.append(net.resolve_gene(word))
            except KeyError as e:
                raise GoalError(f"Cannot leave out {word!r} ({m_ex.group(0).split()[0]!r} in the goal): "
                                f"{e.args[0]}") from None
    budget = 2
    m = _BUDGET.search(low)
    if m:
        budget = _NUMBERS[m.group(1)]
    return SteeringGoal(text=text, model=chosen, target=target, start_fate=start,
                        avoid=bool(_AVOID.search(text)), max_interventions=budget,
                        exclude=tuple(dict.fromkeys(exclude)))


_BUDGET_WORDS = {1: "one", 2: "two", 3: "three"}

GOAL_MET = 0.95
"""Target fraction of the control (on every fresh seed) from which an answer without signal says the
goal is met without intervention rather than that the simulation carries no signal (wording only)."""


def steering_goal_text(target: str, *, start_fate: str | None = None, avoid: bool = False,
                       exclude: list[str] | tuple[str, ...] = (), max_interventions: int | None = None) -> str:
    """The plain-words goal that :func:`parse_steering_goal` reads back as these fields.

    Callers holding the fields (the ``steer_cells`` tool) write the goal the CLI would be given, so
    both answer through the one parser and the one agent.

    Parameters
    ----------
    target
        The fate to reach (or to block with ``avoid``).
    start_fate
        The start population's fate; ``None``: the model's start state.
    avoid
        Block the target fate instead of reaching it.
    exclude
        Genes left out of the search (no knockout or overexpression of them).
    max_interventions
        At most this many interventions (1-3); ``None``: the parser's default.

    Returns
    -------
    str
        E.g. ``"drive Th0 cells to Th1 with one intervention without touching IFNG, TBX21"``.

    Raises
    ------
    GoalError
        A name holds characters a goal cannot carry, or the budget is not 1-3.
    """
    for word in (target, start_fate, *exclude):
        if word is not None and not re.fullmatch(r"[A-Za-z0-9_.\-]+", str(word)):
            raise GoalError(f"{word!r} cannot be named in a steering goal: fate and gene names are "
                            "letters, digits, '_', '.' and '-'.")
    if max_interventions is not None and max_interventions not in _BUDGET_WORDS:
        raise GoalError(f"At most 1, 2 or 3 interventions can be searched, not {max_interventions}.")
    if avoid:
        text = f"block the {target} fate" + (f" in {start_fate} cells" if start_fate else "")
    else:
        text = f"drive {start_fate} cells to {target}" if start_fate else f"steer cells to {target}"
    if max_interventions is not None:
        n = max_interventions
        text += f" with {_BUDGET_WORDS[n]} intervention{'s' if n > 1 else ''}"
    if exclude:
        text += " without touching " + ", ".join(exclude)
    return text


def goal_with_budget(text: str, max_interventions: int | None) -> str:
    """``text`` with an intervention budget: ``" with N interventions"`` appended when the goal names
    none (what the parser reads back as ``max_interventions``).

    Raises
    ------
    GoalError
        The goal's own words name another budget, or the budget is not 1-3.
    """
    if max_interventions is None:
        return text
    if max_interventions not in _BUDGET_WORDS:
        raise GoalError(f"At most 1, 2 or 3 interventions can be searched, not {max_interventions}.")
    m = _BUDGET.search(text)
    if m is None:
        n = max_interventions
        return f"{text.rstrip(' .')} with {_BUDGET_WORDS[n]} intervention{'s' if n > 1 else ''}"
    if _NUMBERS[m.group(1).lower()] != max_interventions:
        raise GoalError(f"The goal asks for {m.group(0)!r} but max_interventions is {max_interventions}: "
                        "give the budget once.")
    return text


def _task(goal: SteeringGoal, n_cells: int, n_steps: int, inputs: dict[str, float] | None = None):
    from scagents.envs.steering import SteeringTask, default_candidates
    from scagents.twin import load_model

    net = load_model(goal.model)
    candidates = [p for p in default_candidates(net) if not set(p.targets) & set(goal.exclude)]
    return SteeringTask(net, goal.target, start_fate=goal.start_fate, avoid=goal.avoid,
                        candidates=candidates, n_decisions=goal.n_decisions,
                        max_interventions=goal.max_interventions, n_cells=n_cells, n_steps=n_steps,
                        inputs=dict(inputs or {}))


def answer_steering_goal(goal: SteeringGoal | str, out_dir: str | Path, *, model: str = "th", seed: int = 0,
                         n_cells: int = 100, n_steps: int = 240, rl_budget: int = 240, n_seeds: int = 5,
                         n_runner_up: int = 4, inputs: dict[str, float] | None = None) -> dict:
    """Search a schedule for a steering goal on the twin and write ``steering.{json,md}`` and plots.

    Returns
    -------
    dict
        ``goal``, ``task``, ``best`` (schedule steps, objective, target fraction mean and min–max over
        ``n_seeds`` population seeds, fate fractions), ``runner_up``, ``control``, ``proposals``
        (steps ranked by marginal contribution), ``searchers`` (simulations, best objective),
        ``files`` and ``wall_time_s``.
    """
    from scagents.envs.steering import TwinSteerer, canonical
    from scagents.policies.steering_search import search
    from scagents.twin.rules import undefined_inputs_line
    from scagents.twin.simulate import is_silent

    t0 = time.perf_counter()
    if isinstance(goal, str):
        goal = parse_steering_goal(goal, model)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    task = _task(goal, n_cells, n_steps, inputs)
    steerer = TwinSteerer(task, seed)
    control = canonical((0,) * task.n_decisions, task.max_interventions)
    if is_silent(task.network, steerer.final_states(control)):
        # every control cell ends all-off: nothing to steer from, no plan and no verdict on the goal
        return _silent_answer(goal, task, steerer, control, seed, out, inputs, t0)
    runs = {"greedy": search("greedy", steerer, 10 * task.n_actions, seed),
            "cem": search("cem", steerer, rl_budget, seed),
            "trpo_ppo": search("trpo_ppo", steerer, rl_budget, seed)}
    pooled: dict[tuple, float] = {}
    for r in runs.values():
        for s, v in r.evaluated:
            pooled[s] = v
    pooled.setdefault(control, float(steerer.objective(control, record=False)))
    order = sorted(pooled.items(), key=lambda e: -e[1])
    # a schedule that leaves every cell all-off reaches (or avoids) the fate with no program at all:
    # computed from a silent simulation, so it is not proposed (the control is not silent, so one is left)
    silent_s = {sch for sch, _ in order if is_silent(task.network, steerer.final_states(sch))}
    kept = [(sch, v) for sch, v in order if sch not in silent_s]
    ranked = kept[:1 + n_runner_up]
    k_target = task.fate_names.index(task.target)
    seeds = [seed + 1000 + i for i in range(n_seeds)]
    others = [TwinSteerer(task, s) for s in seeds]

    def over_seeds(schedule) -> dict:
        fr = np.array([o.fractions(o.final_states(schedule)) for o in others])
        tf = fr[:, k_target]
        return {"target_fraction_mean": float(tf.mean()), "target_fraction_min": float(tf.min()),
                "target_fraction_max": float(tf.max()),
                "fractions": dict(zip(task.fate_names, fr.mean(0).round(4).tolist(), strict=True))}

    def entry(s, v) -> dict:
        return {"schedule": list(s), "steps": task.describe(s), "objective": round(float(v), 4), **over_seeds(s)}

    best_s, best_v = ranked[0]
    n_tied = sum(v == best_v for _, v in kept)  # schedules as good as the best on the search seed
    silenced = [sch for sch, v in order if sch in silent_s and v > best_v]
    answer_best = entry(best_s, best_v)
    runner_up = [entry(s, v) for s, v in ranked[1:]]
    ctrl = {"objective": round(float(steerer.objective(control, record=False)), 4), **over_seeds(control)}
    # marginal contribution of each step: objective with it minus without it, over the seeds
    proposals = []
    for k, a in enumerate(best_s):
        if not a:
            continue
        without = list(best_s)
        without[k] = 0
        gain = float(np.mean([o.objective(best_s, record=False) - o.objective(without, record=False)
                              for o in others]))
        proposals.append({"perturbation": task.action_label(a), "time": round(k / task.n_decisions, 3),
                          "decision": k, "marginal_contribution": round(gain, 4)})
    proposals.sort(key=lambda p: -p["marginal_contribution"])
    for i, p in enumerate(proposals, 1):
        p["rank"] = i
    # signal: the best schedule's target fraction clears the control's over every fresh seed
    lo, hi = ("target_fraction_max", "target_fraction_min") if task.avoid else ("target_fraction_min",
                                                                               "target_fraction_max")
    moved = (answer_best[lo] < ctrl[hi]) if task.avoid else (answer_best[lo] > ctrl[hi])
    no_signal = None
    # the goal is (all but) met without intervention on every fresh seed: little to steer, which is
    # no missing signal (a wording threshold only: the signal test above decides what is proposed)
    already = ((ctrl["target_fraction_max"] <= 1 - GOAL_MET) if task.avoid
               else (ctrl["target_fraction_min"] >= GOAL_MET))
    if not moved and already:
        no_signal = (f"Without intervention {ctrl['target_fraction_mean']:.1%} of the simulated cells end "
                     f"{task.target} already (control {ctrl['target_fraction_min']:.3f}-"
                     f"{ctrl['target_fraction_max']:.3f} over {len(seeds)} fresh population seeds) and no schedule "
                     f"found does {'better' if not task.avoid else 'lower it'} beyond that spread: the goal is met in "
                     "this milieu and start population, so no schedule is proposed; ask with another start fate "
                     "or milieu (inputs) to see what steers the cells.")
        proposals = []
    elif not moved:
        no_signal = (f"No schedule found moves the {task.target} fraction beyond its spread over "
                     f"{len(seeds)} fresh population seeds (control {ctrl['target_fraction_min']:.3f}-"
                     f"{ctrl['target_fraction_max']:.3f}, best {answer_best['target_fraction_min']:.3f}-"
                     f"{answer_best['target_fraction_max']:.3f}): the simulation carries no signal for "
                     "this goal, so no schedule is proposed.")
        if answer_best["fractions"]["undecided"] == 1.0 and ctrl["fractions"]["undecided"] == 1.0:
            no_signal += (" Every simulated cell ends in none of the model's fates (all 'undecided'), "
                          "without interventions and under the best schedule found: check the fate "
                          "rules (@fate) against the states the model reaches.")
        proposals = []
    marker_note = _marker_note(task, canonical(best_s, task.max_interventions)) if moved else None
    files = _plots(steerer, task, control, best_s, out)
    result = {
        "signal": moved, "no_signal": no_signal, "goal_met_without_intervention": bool(not moved and already),
        "goal": goal.to_dict(), "task": task.to_dict(), "seed": seed, "interval_seeds": seeds,
        "best": answer_best, "runner_up": runner_up, "control": ctrl, "proposals": proposals,
        "searchers": {k: {"simulations": r.n_simulations, "best_objective": round(r.best[1], 4),
                          "best_schedule": task.describe(r.best[0])} for k, r in runs.items()},
        "simulations": sum(r.n_simulations for r in runs.values()), "n_tied_best": n_tied, "silent": False,
        "excluded": list(goal.exclude), "undefined_inputs": undefined_inputs_line(task.network, given=inputs or {}),
        "marker_note": marker_note,
        "silenced": ({"n": len(silenced), "example": task.describe(silenced[0])} if silenced else None),
        "objective": ("1 - fraction of " if task.avoid else "fraction of ") + f"{task.target} cells at the "
                     f"end minus {task.cost} per intervention",
    }
    result["files"] = {**files, **_write(result, out)}
    result["wall_time_s"] = round(time.perf_counter() - t0, 2)
    return result


def _silent_answer(goal: SteeringGoal, task, steerer, control, seed: int, out: Path,
                   inputs: dict[str, float] | None, t0: float) -> dict:
    """The answer when every control cell ends all-off: one line naming what to set, no search.

    A schedule found from all-off cells, or a verdict on the goal (a fate such as ``Th0 = !TBX21 &
    !GATA3`` holds in all-off cells), would be computed from a simulation that carries no signal.
    """
    from scagents.envs.steering import milieu_text, silent_hint
    from scagents.twin.rules import undefined_inputs_line
    from scagents.twin.simulate import SILENT_ACTIVITY

    fr = steerer.fractions(steerer.final_states(control))
    ctrl = {"fractions": dict(zip(task.fate_names, fr.round(4).tolist(), strict=True))}
    milieu = milieu_text(task)
    start = f"{task.start_fate} cells" if task.start_fate else "the model's start state"
    line = (f"Without interventions every simulated cell ends all-off (no gene but the inputs above activity "
            f"{SILENT_ACTIVITY}; "
            f"milieu {milieu}; start: {start}): the simulation carries no signal, so no schedule and no verdict on "
            f"the goal are computed; {silent_hint(task, start_fate=task.start_fate)}")
    files = _plots(steerer, task, control, None, out)
    result = {
        "signal": False, "silent": True, "no_signal": line, "goal_met_without_intervention": False,
        "goal": goal.to_dict(), "task": task.to_dict(), "seed": seed, "interval_seeds": [],
        "best": None, "runner_up": [], "control": ctrl, "proposals": [], "searchers": {}, "simulations": 0,
        "n_tied_best": 0, "excluded": list(goal.exclude),
        "undefined_inputs": undefined_inputs_line(task.network, given=inputs or {}), "marker_note": None,
        "objective": ("1 - fraction of " if task.avoid else "fraction of ") + f"{task.target} cells at the "
                     f"end minus {task.cost} per intervention",
    }
    result["files"] = {**files, **_write(result, out)}
    result["wall_time_s"] = round(time.perf_counter() - t0, 2)
    return result


def _marker_note(task, schedule) -> str | None:
    """A sentence when the best schedule perturbs a gene the target fate is defined by (its @fate
    rule reads it): the fate then changes by definition, and leaving the gene out shows other routes."""
    from scagents.twin.rules import parse_rule, rule_variables

    rule = task.network.fates[task.target]
    markers = set(rule_variables(parse_rule(rule)))
    hit = list(dict.fromkeys(t for a in schedule if a for t in task.candidates[a - 1].targets if t in markers))
    if not hit:
        return None
    genes = ", ".join(hit)
    return (f"The schedule perturbs {genes}, read by the {task.target} fate's own rule ({task.target} = {rule}): "
            f"that step changes the fate partly by definition. To see routes through its regulators, ask again "
            f"with 'without touching {genes}'.")


def _spread_labels(values: list[float], gap: float, lo: float, hi: float) -> list[float]:
    """Label heights near ``values`` at least ``gap`` apart within ``[lo, hi]`` (same order)."""
    order = sorted(range(len(values)), key=lambda i: values[i])
    ys = [0.0] * len(values)
    prev = lo - gap
    for i in order:  # upwards: each label at least gap above the one below
        ys[i] = prev = max(values[i], prev + gap)
    nxt = hi + gap
    for i in order[::-1]:  # downwards: none above hi, the gaps kept
        ys[i] = nxt = min(ys[i], nxt - gap)
    return ys


def _plot_fates(steerer, task, control, best) -> Any:
    """Fate shares over time: one panel without intervention, one under the schedule (none when the
    control is silent); every line is labelled at its end with its fate and final share, so lines at
    0 or on top of each other are still read, and the y axis starts below 0 so a line at 0 shows."""
    import matplotlib.pyplot as plt

    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    panels = [(control, "no intervention")]
    if best is not None:
        steps = task.describe(best)
        panels.append((best, "schedule: " + "; ".join(f"t={s['time']:.2f} {s['intervention']}" for s in steps)
                       if steps else "best schedule found: do nothing"))
    fig, axes = plt.subplots(1, len(panels), figsize=(4.6 * len(panels) + 0.4, 4), sharey=True, squeeze=False)
    for ax, (schedule, title) in zip(axes[0], panels, strict=True):
        times, fr = steerer.trajectory(schedule)
        n = len(task.fate_names)
        for j, f in enumerate(task.fate_names):  # earlier fates wider and below: lines on top of each other
            ax.plot(times, fr[:, j], color=colors[j % len(colors)], lw=1.6 + min(1.0, 4.0 / n) * (n - 1 - j),  # seen
                    ls=":" if f == "undecided" else "-", zorder=2 + j, solid_capstyle="butt")
        ends = [float(v) for v in fr[-1]]
        ys = _spread_labels(ends, 0.075, -0.04, 1.04)
        for j, f in enumerate(task.fate_names):
            name = f + (" (target)" if f == task.target and not task.avoid else
                        " (to avoid)" if f == task.target else "")
            ax.annotate(f"{name} {ends[j]:.2f}", (times[-1], ends[j]), xytext=(times[-1] + 0.03, ys[j]),
                        textcoords="data", fontsize=7, va="center", color=colors[j % len(colors)],
                        arrowprops={"arrowstyle": "-", "color": colors[j % len(colors)], "lw": 0.6})
        if schedule is not control:
            for step in task.describe(schedule):
                ax.axvline(step["time"], color="grey", lw=0.8, ls="--", zorder=1)
        ax.set_xlim(-0.03, 1.45)  # an intervention at t = 0 stays visible
        ax.set_xticks([0, 0.25, 0.5, 0.75, 1.0])
        ax.set_ylim(-0.06, 1.06)
        ax.axhline(0, color="0.85", lw=0.6, zorder=0)
        ax.spines[["top", "right"]].set_visible(False)
        ax.set_xlabel("time (fraction of the trajectory)")
        ax.set_title(title, fontsize=8, wrap=True)
    axes[0][0].set_ylabel(f"share of the {task.n_cells} cells of the search population")
    goal = f"{'avoid' if task.avoid else 'reach'} {task.target}" + (
        f" from {task.start_fate} cells" if task.start_fate else " from the model's start state")
    fig.suptitle(f"Fate shares over time on {task.network.name}\n({goal}"
                 + ("; dashed grey: interventions)" if best is not None else ")"), fontsize=9)
    fig.tight_layout()
    return fig


def _plots(steerer, task, control, best, out: Path) -> dict[str, str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    files = {}
    fig = _plot_fates(steerer, task, control, best)
    files["fates_plot"] = _savefig(fig, out / "steering_fates.png")
    plt.close(fig)
    if best is None:  # a silent control: no schedule to draw on a landscape
        return files
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    # landscape: the final states of control and steered cells in the control cells' PCA plane
    from scagents.twin import classify_fate

    xc, xs = steerer.final_states(control), steerer.final_states(best)
    mu = xc.mean(0)
    _, _, vt = np.linalg.svd(np.vstack([xc, xs]) - mu, full_matrices=False)
    fig, ax = plt.subplots(figsize=(5, 4))
    for x, marker, name in ((xc, "o", "control"), (xs, "^", "schedule")):
        z = (x - mu) @ vt[:2].T
        fate = classify_fate(task.network, x)
        for j, f in enumerate(task.fate_names):
            sel = fate == f
            if sel.any():
                ax.scatter(z[sel, 0], z[sel, 1], s=10, marker=marker, color=colors[j % len(colors)],
                           alpha=0.6, label=f"{f} ({name})")
    z0 = (steerer.x0 - mu) @ vt[:2].T
    ax.scatter(z0[:, 0], z0[:, 1], s=6, color="k", alpha=0.3, label="start")
    # the population's mean path, control vs schedule, with the intervention times marked
    steps = task.describe(best)
    for s, style, name in ((control, ":", "control path"), (best, "-", "steered path")):
        times, means = steerer.mean_path(s)
        z = (means - mu) @ vt[:2].T
        ax.plot(z[:, 0], z[:, 1], style, color="k", lw=1.6, label=name)
        ax.annotate("", xy=z[-1], xytext=z[-2], arrowprops={"arrowstyle": "->", "color": "k", "lw": 1.6})
        if name == "steered path":
            for step in steps:
                i = int(np.argmin(np.abs(times - step["time"])))
                ax.plot(*z[i], "s", color="k", ms=5)
                ax.annotate(step["intervention"], z[i], fontsize=6, xytext=(4, 4),
                            textcoords="offset points")
    ax.set_xlabel("PC1 of the cell states")
    ax.set_ylabel("PC2 of the cell states")
    ax.legend(fontsize=6)
    ax.set_title("Fate basins (final states by fate) and the population's path,\n"
                 "control vs schedule (squares: interventions)", fontsize=9)
    fig.tight_layout()
    files["landscape_plot"] = _savefig(fig, out / "steering_landscape.png")
    plt.close(fig)
    return files


def _savefig(fig, path: Path) -> str:
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=110, format="png")
    return path.name


def _write(result: dict, out: Path) -> dict[str, str]:
    b, c = result["best"], result["control"]
    t = result["task"]
    searched = ("no schedule searched (the control run is silent)" if result.get("silent") else
                f"objective: {result['objective']}; up to {t['max_interventions']} intervention"
                f"{'s' if t['max_interventions'] != 1 else ''} at "
                f"{t['n_decisions']} decision times; {result['simulations']} twin simulations")
    lines = [f"# Steering: {result['goal']['text']}", "",
             f"Model `{t['model']}`; start population: {t['start_fate'] or 'model start state'} "
             f"({t['n_cells']} cells); {searched}.", ""]
    if result.get("excluded"):
        lines += [f"Left out of the search at the goal's request: {', '.join(result['excluded'])} "
                  "(no knockout or overexpression of them).", ""]
    if result.get("undefined_inputs"):
        lines += [f"Model note: {result['undefined_inputs']}", ""]
    if t.get("inputs"):
        lines += ["Milieu (inputs clamped for the whole run): "
                  + ", ".join(f"{k} = {v:g}" for k, v in t["inputs"].items()) + ".", ""]
    if result.get("silent"):
        lines += ["## Silent simulation", "", result["no_signal"], "",
                  "![fate shares without intervention](steering_fates.png)", ""]
        return {"markdown": write_text(out / "steering.md", "\n".join(lines)).name,
                "json": write_json(out / "steering.json", result).name}
    if result.get("no_signal"):
        head = "## Goal met without intervention" if result.get("goal_met_without_intervention") else "## No signal"
        lines += [head, "", result["no_signal"], "", "| fate | control | best found |", "|---|---|---|"]
        lines += [f"| {f} | {c['fractions'][f]:.3f} | {b['fractions'][f]:.3f} |" for f in b["fractions"]]
        lines += ["", "![fate fractions](steering_fates.png)", ""]
        return {"markdown": write_text(out / "steering.md", "\n".join(lines)).name,
                "json": write_json(out / "steering.json", result).name}
    lines += ["## Best schedule", ""]
    lines += [f"- t = {s['time']:.2f}: {s['intervention']}" for s in b["steps"]] or ["- do nothing"]
    if result.get("marker_note"):
        lines += ["", f"Note: {result['marker_note']}"]
    if result.get("silenced"):
        lines += ["", f"Not proposed: {_silenced_line(result)}"]
    if result.get("n_tied_best", 1) > 1:
        lines += ["", f"{result['n_tied_best']} schedules found reach the same objective "
                  f"({b['objective']:.3f}) on the search population; this is one of them "
                  f"({min(len(result['runner_up']), result['n_tied_best'] - 1)} of the others below)."]
    lines += ["", f"{t['target']} fraction over {len(result['interval_seeds'])} fresh population seeds: "
              f"{b['target_fraction_mean']:.3f} (min {b['target_fraction_min']:.3f}, max "
              f"{b['target_fraction_max']:.3f}); control {c['target_fraction_mean']:.3f} (min "
              f"{c['target_fraction_min']:.3f}, max {c['target_fraction_max']:.3f}).", "",
              "| fate | control | schedule |", "|---|---|---|"]
    lines += [f"| {f} | {c['fractions'][f]:.3f} | {b['fractions'][f]:.3f} |" for f in b["fractions"]]
    lines += ["", "## Proposals (steps ranked by marginal contribution)", ""]
    lines += [f"{p['rank']}. {p['perturbation']} at t = {p['time']:.2f}: {p['marginal_contribution']:+.3f}"
              for p in result["proposals"]] or ["none"]
    lines += ["", "## Runner-up schedules", "", "| schedule | objective | target fraction (mean, min-max) |",
              "|---|---|---|"]
    for r in result["runner_up"]:
        steps = "; ".join(f"t={s['time']:.2f} {s['intervention']}" for s in r["steps"]) or "do nothing"
        lines.append(f"| {steps} | {r['objective']:.3f} | {r['target_fraction_mean']:.3f} "
                     f"({r['target_fraction_min']:.3f}-{r['target_fraction_max']:.3f}) |")
    lines += ["", "## Searchers", "", "| searcher | simulations | best objective |", "|---|---|---|"]
    lines += [f"| {k} | {v['simulations']} | {v['best_objective']:.3f} |" for k, v in result["searchers"].items()]
    lines += ["", "![fate fractions](steering_fates.png)", "",
              f"Fate shares over time on the search population (seed {result['seed']}, {t['n_cells']} cells); the "
              f"figures above are over {len(result['interval_seeds'])} fresh population seeds.", "",
              "![landscape](steering_landscape.png)", ""]
    return {"markdown": write_text(out / "steering.md", "\n".join(lines)).name,
            "json": write_json(out / "steering.json", result).name}


def _silenced_line(result: dict) -> str:
    """The schedules that score higher but leave every cell all-off (not proposed)."""
    from scagents.twin.simulate import SILENT_ACTIVITY

    n, ex = result["silenced"]["n"], result["silenced"]["example"]
    steps = "; ".join(f"t={s['time']:.2f} {s['intervention']}" for s in ex)
    return (f"{n} schedule{'s' if n > 1 else ''} found score{'' if n > 1 else 's'} higher on the search population "
            f"but leave{'' if n > 1 else 's'} every cell all-off (no gene but the inputs above activity "
            f"{SILENT_ACTIVITY}), e.g. {steps}: the fate's share there comes from cells with no program at all.")


def print_answer(result: dict, out: Path, wall_time_s: float) -> None:
    """Print a steering answer in a few lines (the CLI's output)."""
    b, t = result["best"], result["task"]
    searched = "silent: no search" if result.get("silent") else f"{result['simulations']} twin simulations"
    print(f"{result['goal']['text']}  [steering on {t['model']}, {searched}]  run id: {out.name}")
    if result.get("excluded"):
        print(f"  left out of the search: {', '.join(result['excluded'])}")
    if result.get("undefined_inputs"):
        print(f"  model note: {result['undefined_inputs']}")
    if result.get("no_signal"):
        print("  " + result["no_signal"])
        print(f"report: {out / 'steering.md'}  ({wall_time_s:.1f} s)")
        return
    steps = "; ".join(f"t={s['time']:.2f} {s['intervention']}" for s in b["steps"]) or "do nothing"
    print(f"  best schedule: {steps}")
    if result.get("marker_note"):
        print(f"  note: {result['marker_note']}")
    if result.get("silenced"):
        print(f"  not proposed: {_silenced_line(result)}")
    print(f"  {t['target']} fraction: {b['target_fraction_mean']:.2f} (min {b['target_fraction_min']:.2f}, "
          f"max {b['target_fraction_max']:.2f} over {len(result['interval_seeds'])} seeds); control "
          f"{result['control']['target_fraction_mean']:.2f}")
    if result.get("n_tied_best", 1) > 1:
        print(f"  {result['n_tied_best']} schedules found reach the same objective; runner-ups in the report")
    for p in result["proposals"]:
        print(f"  step #{p['rank']}: {p['perturbation']} at t={p['time']:.2f} "
              f"(marginal {p['marginal_contribution']:+.3f})")
    print(f"report: {out / 'steering.md'}  ({wall_time_s:.1f} s)")
