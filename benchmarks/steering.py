"""Fate steering on the twin: searchers against the exhaustive optimum, budgets in twin simulations.

    PYTHONPATH=. nice -n 10 python benchmarks/steering.py [--seeds 10]

For each task the exhaustive search gives the optimum objective ``f*`` and the do-nothing objective
``f0`` on the search population (seed 0); a searcher's score after ``n`` simulations is the gap it
closed, ``(best_n - f0) / (f* - f0)`` (1 = the optimum). Every searcher runs with a budget of 25 % of
the exhaustive search's simulations, once per seed (the population is the same; the seed drives the
searcher). Local-optimum tasks are those where greedy one-at-a-time search ends below the optimum;
"first step alone lowers" says whether the optimum's first intervention alone scores below doing
nothing. Also measured in the same run: gene-cell-steps/s of the steering environment (no cache)
vs the plain twin integrator running the same schedule.

Writes ``benchmarks/results/steering.{json,md}``.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _util import load_record, machine_line_of, write_results  # noqa: E402

from scagents.envs.steering import (  # noqa: E402
    SteeringEnv,
    SteeringTask,
    TwinSteerer,
    default_candidates,
)
from scagents.perturbation import Perturbation  # noqa: E402
from scagents.policies.steering_search import RL_SEARCHERS, exhaustive, greedy, search  # noqa: E402
from scagents.twin import load_model, read_model  # noqa: E402

BNET = Path("/work/shared/data/grn/boolean_models/CD4_T_cell_differentiation.bnet")
SEARCHERS = ("random", "greedy", "cem", "bo", *RL_SEARCHERS)
CHECKPOINTS = (0.05, 0.10, 0.25)
SIZE = {"n_cells": 100, "n_steps": 240}


def th_task(**kw) -> SteeringTask:
    net = load_model("th")
    return SteeringTask(net, candidates=default_candidates(net), **SIZE, **kw)  # genes, not the milieu


def cd4_task() -> SteeringTask | None:
    """CD4 T-cell model (.bnet, 38 nodes): reach Th17 in a TGF-β + TCR milieu."""
    if not BNET.is_file():
        return None
    net = read_model(BNET)
    net.fates = {"Treg": "Foxp3 and not RORgt", "Th17": "RORgt and not Foxp3",
                 "Th1": "Tbet and not GATA3", "Th2": "GATA3 and not Tbet"}
    genes = ["TGFb", "IL6_e", "IL23", "IL12", "IL4_e", "IL27", "Foxp3", "RORgt", "STAT3", "Tbet", "GATA3", "IL2"]
    cands = [Perturbation(g, kind=k) for g in genes for k in ("knockout", "overexpression")]
    return SteeringTask(net, "Th17", candidates=cands, inputs={"TCR": 1.0, "TGFb": 1.0}, **SIZE)


def tasks() -> dict[str, SteeringTask]:
    out = {
        "th: Th0 -> Th1": th_task(target="Th1", start_fate="Th0"),
        "th: Th2 -> Th1": th_task(target="Th1", start_fate="Th2"),
        "krumsiek: make granulocytes": SteeringTask("krumsiek11", "granulocyte", **SIZE),
        "krumsiek: block erythroid": SteeringTask("krumsiek11", "erythroid", avoid=True, **SIZE),
        "krumsiek: make monocytes": SteeringTask("krumsiek11", "monocyte", **SIZE),
    }
    cd4 = cd4_task()
    if cd4 is not None:
        out["cd4 (.bnet, TCR+TGF-b): make Th17"] = cd4
    return out


def _greedy_on_table(table: dict, actions: list[int], d: int, budget: int) -> float:
    """Greedy one-at-a-time (as :func:`greedy`) on a precomputed table, candidates ``actions`` only."""
    current, best = [0] * d, table[(0,) * d]
    for _ in range(budget):
        moves = [(table[tuple(current[:k] + [a] + current[k + 1:])], k, a)
                 for k in range(d) if current[k] == 0 for a in actions]
        v, k, a = max(moves)
        if v <= best:
            break
        current[k], best = a, v
    return best


def find_traps(task: SteeringTask, table: dict, *, size: int = 8, tries: int = 3000, seed: int = 0) -> list[dict]:
    """Candidate menus (subsets of ``size`` candidates) on which greedy is trapped: its result is below
    the menu's optimum, whose first intervention alone scores below doing nothing. Found by
    exhaustive search: every objective comes from ``table`` (all schedules of the full menu)."""
    rng = np.random.default_rng(seed)
    d, ctrl = task.n_decisions, table[(0,) * task.n_decisions]
    found = {}
    for _ in range(tries):
        menu = sorted(rng.choice(np.arange(1, task.n_actions), size, replace=False).tolist())
        allowed = set(menu) | {0}
        sub = {s: v for s, v in table.items() if set(s) <= allowed}
        opt_s, opt = max(sub.items(), key=lambda e: e[1])
        if not any(opt_s):
            continue
        k = next(i for i, a in enumerate(opt_s) if a)
        alone = sub[tuple(opt_s[i] if i == k else 0 for i in range(d))]
        g = _greedy_on_table(sub, menu, d, task.max_interventions)
        if alone < ctrl and g < opt - 1e-12:
            found[tuple(menu)] = {"menu": menu, "optimum": opt, "greedy": g, "first_alone": alone,
                                  "margin": opt - g}
    return sorted(found.values(), key=lambda e: -e["margin"])


def throughput(reps: int = 3) -> dict:
    """Gene-cell-steps/s: the steering env (fresh steerer, no cache) vs the plain integrator."""
    from scagents.twin.dynamics import integrate

    rows = {}
    for n_cells in (100, 1000):
        task = SteeringTask("th", "Th1", n_cells=n_cells, n_steps=240)
        schedule = (0, 2 * 14 + 2, 2 * 17 + 2)  # two overexpressions at decisions 1 and 2
        work = task.network.n_genes * n_cells * task.n_steps
        env_t, plain_t = [], []
        for rep in range(reps):
            env = SteeringEnv(task, seed=rep, steerer=TwinSteerer(task, rep, cache=False))
            env.reset()
            t0 = time.perf_counter()
            for a in schedule:
                env.step(a)
            env_t.append(time.perf_counter() - t0)
            x0 = env.steerer.x0
            perts = [Perturbation(task.candidates[a - 1].targets, kind=task.candidates[a - 1].kind,
                                  start_time=k / task.n_decisions) for k, a in enumerate(schedule) if a]
            t0 = time.perf_counter()
            integrate(task.network, x0, n_steps=task.n_steps, dt=task.dt, noise=task.noise,
                      rng=np.random.default_rng(rep), perturbation=perts)
            plain_t.append(time.perf_counter() - t0)
        env_rate, plain_rate = work / np.median(env_t), work / np.median(plain_t)
        rows[n_cells] = {"env_gene_cell_steps_per_s": env_rate, "plain_gene_cell_steps_per_s": plain_rate,
                         "ratio": env_rate / plain_rate}
    return rows


def run_task(name: str, task: SteeringTask, seeds: list[int]) -> dict:
    steerer = TwinSteerer(task, 0)
    t0 = time.perf_counter()
    ex = exhaustive(steerer)
    ex_time = time.perf_counter() - t0
    table = dict(ex.evaluated)
    opt_s, opt = ex.best
    ctrl = table[(0,) * task.n_decisions]
    n_opt = sum(abs(v - opt) < 1e-12 for v in table.values())
    first = next(k for k, a in enumerate(opt_s) if a) if any(opt_s) else None
    alone = None
    if first is not None:
        one = [0] * task.n_decisions
        one[first] = opt_s[first]
        alone = table[tuple(one)]
    g = greedy(steerer, 10**9)
    budget = max(10, int(0.25 * len(table)))
    gap = max(opt - ctrl, 1e-12)
    per: dict[str, dict] = {}
    for sname in SEARCHERS:
        runs = []
        for seed in (seeds[:1] if sname == "greedy" else seeds):   # greedy is deterministic
            t1 = time.perf_counter()
            r = search(sname, steerer, budget, seed)
            dt = time.perf_counter() - t1
            runs.append({"seed": seed, "simulations": r.n_simulations, "time_s": dt,
                         "best": r.best[1], "best_schedule": task.describe(r.best[0]),
                         "found_optimum": bool(r.best[1] >= opt - 1e-12),
                         **{f"gap_closed@{c:.2f}": (r.best_within(int(c * len(table))) - ctrl) / gap
                            for c in CHECKPOINTS}})
        per[sname] = {"runs": runs,
                      **{f"gap_closed@{c:.2f}": float(np.mean([r[f"gap_closed@{c:.2f}"] for r in runs]))
                         for c in CHECKPOINTS},
                      "found_optimum_share": float(np.mean([r["found_optimum"] for r in runs])),
                      "simulations_mean": float(np.mean([r["simulations"] for r in runs])),
                      "time_s_mean": float(np.mean([r["time_s"] for r in runs]))}
        print(f"  {sname:9s} gap@25% {per[sname]['gap_closed@0.25']:.3f} optimum share "
              f"{per[sname]['found_optimum_share']:.2f} ({per[sname]['time_s_mean']:.1f} s/run)", flush=True)
    return {"task": task.to_dict(), "space": len(table), "exhaustive_time_s": ex_time,
            "exhaustive_segments": steerer.n_segments, "optimum": opt, "optimum_schedule": task.describe(opt_s),
            "n_optimal_schedules": int(n_opt), "control": ctrl, "budget": budget,
            "greedy_best": g.best[1], "greedy_schedule": task.describe(g.best[0]),
            "local_optimum": bool(g.best[1] < opt - 1e-12),
            "first_step_alone": alone, "first_step_alone_lowers": bool(alone is not None and alone < ctrl),
            "searchers": per}


def paired(results: dict, a: str, b: str, key: str = "gap_closed@0.25") -> dict:
    from scipy.stats import wilcoxon

    da, db = [], []
    for res in results.values():
        ra = {r["seed"]: r[key] for r in res["searchers"][a]["runs"]}
        rb = {r["seed"]: r[key] for r in res["searchers"][b]["runs"]}
        for s in ra:
            da.append(ra[s])
            db.append(rb[s])
    d = np.array(da) - np.array(db)
    p = float(wilcoxon(d).pvalue) if np.any(d != 0) else 1.0
    return {"a": a, "b": b, "n_pairs": len(d), "mean_difference": float(d.mean()), "wins": int((d > 0).sum()),
            "ties": int((d == 0).sum()), "losses": int((d < 0).sum()), "wilcoxon_p": p}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=10)
    ap.add_argument("--only", default=None, help="substring of the task names to run")
    ap.add_argument("--render", action="store_true", help="rewrite the .md from the saved .json and exit")
    args = ap.parse_args()
    if args.render:
        import json

        from _util import RESULTS

        from scagents._atomic import write_text

        write_text(RESULTS / "steering.md", markdown(json.loads((RESULTS / "steering.json").read_text())))
        return
    seeds = list(range(args.seeds))
    t_start = time.perf_counter()
    load0 = os.getloadavg()[0]
    tp = throughput()
    print("throughput", {k: round(v["ratio"], 2) for k, v in tp.items()}, flush=True)
    results = {}
    all_tasks = tasks()
    # local optima on purpose: candidate menus of the Krumsiek tasks on which greedy is trapped
    traps_found = {}
    for name in [n for n in all_tasks if n.startswith("krumsiek")]:
        task = all_tasks[name]
        st = TwinSteerer(task, 0)
        traps = find_traps(task, dict(exhaustive(st).evaluated))
        traps_found[name] = traps[:3]
        print(f"{name}: {len(traps)} trapping menus of 8 candidates", flush=True)
    ranked = sorted(((t["margin"], n, t) for n, ts in traps_found.items() for t in ts[:1]), reverse=True)
    for _margin, name, trap in ranked[:2]:
        base = all_tasks[name]
        menu = [base.candidates[a - 1] for a in trap["menu"]]
        label = ", ".join(base.action_label(a) for a in trap["menu"])
        all_tasks[f"TRAP {name} (menu: {label})"] = SteeringTask(
            base.network, base.target, start_fate=base.start_fate, avoid=base.avoid, candidates=menu, **SIZE)
    for name, task in all_tasks.items():
        if args.only and args.only not in name:
            continue
        print(name, flush=True)
        results[name] = run_task(name, task, seeds)
        r = results[name]
        print(f"  space {r['space']}, optimum {r['optimum']:.3f}, control {r['control']:.3f}, greedy "
              f"{r['greedy_best']:.3f}, exhaustive {r['exhaustive_time_s']:.0f} s", flush=True)
    tests = [paired(results, "trpo_ppo", "trpo"), paired(results, "trpo", "ppo"),
             paired(results, "trpo_ppo", "ppo"), paired(results, "ppo", "ppo_kl"),
             paired(results, "trpo_ppo", "cem")]
    wall = time.perf_counter() - t_start
    payload = {"seeds": seeds, "throughput": tp, "tasks": results,
               "trap_search": {k: v for k, v in traps_found.items()}, "paired": tests, "wall_time_s": wall,
               "load_average_1min": load_record(load0)}
    write_results("steering", payload, markdown(payload))
    print(f"done in {wall:.0f} s")


def markdown(p: dict) -> str:
    res = p["tasks"]
    lines = ["# Fate steering on the twin: searchers vs the exhaustive optimum", "",
             f"`PYTHONPATH=. nice -n 10 python benchmarks/steering.py --seeds {len(p['seeds'])}` — "
             f"{len(p['seeds'])} seeds, {p['wall_time_s'] / 60:.1f} min wall. "
             + (machine_line_of(load) if (load := p.get("load_average_1min"))
                else "Load average not recorded."),
             "", "Score: gap to the optimum closed, `(best - do nothing) / (optimum - do nothing)`, on the "
             "search population (seed 0), after 5 %, 10 % and 25 % of the exhaustive search's simulations "
             "(budget 25 %; one simulation = one schedule run to the end on the whole population; "
             "black-box searchers never pay twice for a schedule, RL searchers pay one per episode). "
             "Greedy is deterministic (one run) and stops when no addition improves.", ""]
    lines += ["## Tasks", "", "| task | space | optimum | do nothing | optimal schedule | greedy | "
              "local optimum | first step alone lowers | exhaustive s |", "|---|---|---|---|---|---|---|---|---|"]
    for name, r in res.items():
        opt = "; ".join(f"t={s['time']:.2f} {s['intervention']}" for s in r["optimum_schedule"]) or "none"
        lines.append(f"| {name} | {r['space']} | {r['optimum']:.3f} ({r['n_optimal_schedules']} schedules) | "
                     f"{r['control']:.3f} | {opt} | {r['greedy_best']:.3f} | {'yes' if r['local_optimum'] else 'no'} | "
                     f"{'yes' if r['first_step_alone_lowers'] else 'no'} | {r['exhaustive_time_s']:.0f} |")
    lines += ["", "## Gap closed at 25 % of the exhaustive simulations (mean over seeds)", ""]
    names = list(next(iter(res.values()))["searchers"])
    lines += ["| task | " + " | ".join(names) + " |", "|---|" + "---|" * len(names)]
    for name, r in res.items():
        lines.append(f"| {name} | " + " | ".join(f"{r['searchers'][s]['gap_closed@0.25']:.3f}" for s in names) + " |")
    for c in ("0.05", "0.10"):
        lines += ["", f"Gap closed at {float(c):.0%} of the exhaustive simulations:", "",
                  "| task | " + " | ".join(names) + " |", "|---|" + "---|" * len(names)]
        for name, r in res.items():
            lines.append(f"| {name} | " + " | ".join(f"{r['searchers'][s][f'gap_closed@{c}']:.3f}" for s in names) + " |")
    lines += ["", "## Share of seeds finding the global optimum (within the 25 % budget)", "",
              "| task | local optimum | " + " | ".join(names) + " |", "|---|---|" + "---|" * len(names)]
    for name, r in res.items():
        lines.append(f"| {name} | {'yes' if r['local_optimum'] else 'no'} | " +
                     " | ".join(f"{r['searchers'][s]['found_optimum_share']:.1f}" for s in names) + " |")
    ok = {s: sum(r["searchers"][s]["gap_closed@0.25"] >= 0.95 for r in res.values()) for s in names}
    lines += ["", "## Claims", "",
              f"- TRPO→PPO reaches ≥ 95 % of the optimum gap with ≤ 25 % of the exhaustive simulations on "
              f"{ok['trpo_ppo']} of {len(res)} tasks (mean over seeds); "
              + ", ".join(f"{s}: {n}" for s, n in ok.items()) + "."]
    for t in p["paired"]:
        lines.append(f"- {t['a']} vs {t['b']} (gap closed at 25 %, {t['n_pairs']} task×seed pairs): mean "
                     f"difference {t['mean_difference']:+.3f}, wins/ties/losses {t['wins']}/{t['ties']}/"
                     f"{t['losses']}, Wilcoxon p = {t['wilcoxon_p']:.3g}.")
    lines += ["", "## Speed: steering env vs plain twin simulation (same run)", "",
              "| cells | env gene-cell-steps/s | plain gene-cell-steps/s | ratio |", "|---|---|---|---|"]
    for n, r in p["throughput"].items():
        lines.append(f"| {n} | {r['env_gene_cell_steps_per_s']:.3g} | {r['plain_gene_cell_steps_per_s']:.3g} | "
                     f"{r['ratio']:.2f} |")
    n_cand = {name.split(":")[0]: r["task"]["n_candidates"] for name, r in res.items() if not name.startswith("TRAP")}
    lines += ["", f"Th tasks use knockouts/overexpressions of the non-input genes ({n_cand.get('th')} candidates); "
              f"Krumsiek tasks all genes ({n_cand.get('krumsiek')}); trap tasks a menu of 8 of the Krumsiek "
              "candidates found by exhaustive search (`find_traps`); "
              f"the CD4 `.bnet` task 12 inputs/regulators ({n_cand.get('cd4 (.bnet, TCR+TGF-b)')}) in a TCR + TGF-β "
              "milieu chosen by us (the `.about.md` documents no milieu; TGF-β + TCR is the Treg-polarising "
              "condition), fates by master regulators (Treg Foxp3, Th17 RORγt, Th1 T-bet, Th2 GATA3). "
              "Up to 2 interventions at 3 decision times, cost 0.02 each, 100 cells, 240 steps of dt 0.05.", ""]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
