"""Learned acquisition: the TRPO→PPO design policy, leave-one-screen-out, and the twin must-show.

Part 1 — screens (issue 12 item 3). For each held-out screen the design policy
(:mod:`scagents.campaign.design_policy`) is trained on simulated campaigns of the OTHER shared
screens (random ``--subsample``-gene subsets, batch scaled to the same share) and of twin effect
tables, never on the held-out screen's scores; it is then run, frozen, on the held-out screen
(5 rounds × 128 genes; screens under 10,000 genes get the same share per round, as in
``closed_loop.py``). PPO, TRPO and TRPO→PPO get the same step budget and the same seeds; the
references are the prior-anchored Bayesian designer (``bayes_prior``), ``prior_only`` and
``random``. Every designer is built through ``designer_config`` → ``build_designer`` (the path of
``scagents next``). Paired 95 % t intervals over seeds (seed ``i`` of every designer on the same
screen). The gate (:func:`~scagents.campaign.design_policy.loso_gate`) decides whether the learned
policy answers ``scagents next --designer learned_policy``; the full run then trains the policy
``next`` uses on every screen and twin task and writes it with the verdict to
``scagents/campaign/data/design_policy.pt``.

Part 2 — twin must-show: "the top-3 Th1-promoting perturbations found within 12 simulations in
≥ 80 % of seeds". Candidates: knockout and overexpression of every gene of the Th model; effect =
fraction of cells reaching Th1 minus control (``twin_effect_table``, ``--twin-cells`` cells);
top-3 = the three largest effects, candidates tied with the third counting as it. 3 rounds × 4
simulations; prior = :func:`~scagents.campaign.design_policy.network_fate_prior` (signed wiring
toward the Th1 markers, no simulation). The learned policy evaluated here is trained on the
screens and on the other twin tasks (Th2 and the Krumsiek fates), not on Th1.

Usage::

    PYTHONPATH=. nice -n 10 python benchmarks/design_policy.py            # full: 5 screens, 5 seeds, twin 10 seeds
    PYTHONPATH=. nice -n 10 python benchmarks/design_policy.py --quick    # IL2 held out, 2 seeds; writes nothing

Writes ``benchmarks/results/design_policy.{json,md}``.
"""

from __future__ import annotations

import os

for _v in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_v, "1")  # a small SVD per round: threads only contend on a shared machine

import argparse  # noqa: E402
import json  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from _util import RESULTS, load_record, machine_line_of, write_results  # noqa: E402
from closed_loop import screen_batch  # noqa: E402

from scagents._atomic import write_bytes  # noqa: E402
from scagents.campaign.acquisition import build_designer, designer_config  # noqa: E402
from scagents.campaign.design_policy import (  # noqa: E402
    DEFAULT_POLICY_FILE,
    CampaignTask,
    loso_gate,
    network_fate_prior,
    paired_ci,
    policy_state_bytes,
    train_design_policy,
)
from scagents.campaign.features import (  # noqa: E402
    align_features,
    expression_prior,
    pbmc_gene_features,
    symbol_families,
)
from scagents.campaign.screens import SCREENS, load_screen, retrospective_picks, screen_hits  # noqa: E402

ALGOS = ("trpo_ppo", "ppo", "trpo")
ALGO_NAME = {"trpo_ppo": "TRPO→PPO", "ppo": "PPO", "trpo": "TRPO"}
TWIN_TASKS = (("th", "Th1"), ("th", "Th2"), ("krumsiek11", "erythroid"), ("krumsiek11", "megakaryocyte"),
              ("krumsiek11", "monocyte"), ("krumsiek11", "granulocyte"))


# ================================================================================== tasks
def screen_task(name: str, feats, *, batch: int, rounds: int, subsample: int) -> tuple[CampaignTask, list[str]]:
    s = load_screen(name)
    genes = list(s.scores.index)
    F = align_features(feats, genes)
    task = CampaignTask(name, F.to_numpy(), s.scores.to_numpy(), screen_hits(s, "either"),
                        prior=expression_prior(F).to_numpy(), groups=symbol_families(genes),
                        batch=screen_batch(len(genes), batch), n_rounds=rounds, subsample=subsample,
                        objective="either")
    return task, genes


def top_k_mask(effect: np.ndarray, k: int) -> np.ndarray:
    """The ``k`` largest effects; candidates tied with the ``k``-th count as it."""
    kth = np.sort(effect)[::-1][k - 1]
    return effect >= kth - 1e-12


def twin_task(model: str, fate: str, *, cells: int, rounds: int, batch: int, k: int = 3
              ) -> tuple[CampaignTask, list[str], np.ndarray]:
    from scagents.envs.design import twin_effect_table
    from scagents.envs.encoding import encode_perturbations, network_gene_embedding
    from scagents.twin import load_model

    net = load_model(model)
    table = twin_effect_table(net, goal=fate, n_cells=cells, n_steps=200, seed=0)
    labels = list(table.index)
    X = encode_perturbations(labels, network_gene_embedding(net)).astype(np.float64)
    eff = table["effect"].to_numpy()
    prior = network_fate_prior(net, labels, fate)
    task = CampaignTask(f"twin {model} {fate}", X, eff, top_k_mask(eff, k), prior=prior, groups=None,
                        batch=batch, n_rounds=rounds, subsample=None, objective="increase")
    return task, labels, eff


def campaign(task: CampaignTask, genes, designer: str, seed: int, *, blob: bytes | None = None,
             groups: str = "symbol_families") -> list[np.ndarray]:
    """One full campaign of ``designer`` on ``task`` through designer_config → build_designer."""
    opts = {"require_validation": False} if designer == "learned_policy" else {}
    cfg = designer_config(designer, seed=seed, groups=groups, n_rounds=task.n_rounds, **opts)
    des = build_designer(cfg, genes, prior=task.prior, state=blob)
    return retrospective_picks(des, task.X, task.scores, n_rounds=task.n_rounds, batch=task.batch,
                               objective=task.objective)


def hit_curve(task: CampaignTask, picks) -> list[float]:
    total = max(int(task.hits.sum()), 1)
    return (np.cumsum([int(task.hits[p].sum()) for p in picks]) / total).tolist()


# ================================================================================== part 1
def run_screens(args, log, checkpoint=None) -> dict:
    """Leave-one-screen-out results of ``args.held_out``; ``checkpoint(out)`` is called after each
    held-out screen with the results so far (so a stopped run keeps the screens it finished)."""
    feats = pbmc_gene_features()
    screens = {n: screen_task(n, feats, batch=args.batch, rounds=args.rounds, subsample=args.subsample)
               for n in SCREENS}
    twins = [twin_task(m, f, cells=args.twin_cells, rounds=3, batch=4)[0] for m, f in TWIN_TASKS]
    out: dict = {}
    for held in args.held_out:
        task, genes = screens[held]
        train_tasks = [t for n, (t, _) in screens.items() if n != held] + twins
        res = {"n_genes": len(genes), "n_hits": int(task.hits.sum()), "batch": task.batch,
               "trained_on": [t.name for t in train_tasks], "designers": {}}
        refs = ("random", "prior_only", "bayes_prior")
        for d in refs:
            finals, curves = [], []
            for seed in range(args.seeds):
                c = hit_curve(task, campaign(task, genes, d, seed))
                curves.append(c)
                finals.append(c[-1])
            res["designers"][d] = {"per_seed": finals, "mean": float(np.mean(finals)),
                                   "mean_curve": np.mean(curves, axis=0).tolist()}
            log(f"{held} {d}: {np.mean(finals):.4f}")
        for algo in args.algos:
            finals, curves, secs = [], [], []
            for seed in range(args.seeds):
                t0 = time.time()
                pol, tlog = train_design_policy(train_tasks, algo=algo, total_steps=args.steps, seed=seed)
                secs.append(time.time() - t0)
                blob = policy_state_bytes(pol, trained_on=[t.name for t in train_tasks])
                c = hit_curve(task, campaign(task, genes, "learned_policy", seed, blob=blob))
                curves.append(c)
                finals.append(c[-1])
                ret = [r for r in tlog.column("episodic_return_mean") if r == r]
                log(f"{held} {algo} seed {seed}: {c[-1]:.4f} (train {secs[-1]:.0f} s, return "
                    f"{ret[0] if ret else float('nan'):.2f} → {ret[-1] if ret else float('nan'):.2f})")
            res["designers"][algo] = {"per_seed": finals, "mean": float(np.mean(finals)),
                                      "mean_curve": np.mean(curves, axis=0).tolist(),
                                      "train_s_mean": float(np.mean(secs))}
        b = res["designers"]["bayes_prior"]["per_seed"]
        p0 = res["designers"]["prior_only"]["per_seed"]
        res["paired"] = {}
        for algo in args.algos:
            a = res["designers"][algo]["per_seed"]
            res["paired"][f"{algo} - bayes_prior"] = paired_ci(np.subtract(a, b))
            res["paired"][f"{algo} - prior_only"] = paired_ci(np.subtract(a, p0))
        for x, y in (("trpo_ppo", "ppo"), ("trpo_ppo", "trpo")):
            if x in args.algos and y in args.algos:
                res["paired"][f"{x} - {y}"] = paired_ci(np.subtract(res["designers"][x]["per_seed"],
                                                                    res["designers"][y]["per_seed"]))
        res["paired"]["bayes_prior - prior_only"] = paired_ci(np.subtract(b, p0))
        out[held] = res
        if checkpoint is not None and held != args.held_out[-1]:
            checkpoint(out)
    return out


# ================================================================================== part 2
def run_twin(args, log) -> dict:
    feats = pbmc_gene_features()
    screens = [screen_task(n, feats, batch=args.batch, rounds=args.rounds, subsample=args.subsample)[0]
               for n in SCREENS]
    th1, labels, eff = twin_task("th", "Th1", cells=args.twin_cells, rounds=args.twin_rounds, batch=args.twin_batch)
    others = [twin_task(m, f, cells=args.twin_cells, rounds=3, batch=4)[0] for m, f in TWIN_TASKS if f != "Th1"]
    top = [labels[i] for i in np.flatnonzero(th1.hits)]
    sims = args.twin_rounds * args.twin_batch
    res = {"n_candidates": len(labels), "rounds": args.twin_rounds, "batch": args.twin_batch, "simulations": sims,
           "top3": {lab: float(eff[labels.index(lab)]) for lab in top},
           "third_best_effect": float(np.sort(eff)[::-1][2]), "trained_on": [t.name for t in screens + others],
           "prior_top8": [labels[i] for i in np.argsort(-th1.prior, kind="stable")[:8]], "designers": {}}

    def all_top3(picks) -> bool:
        seen = np.zeros(len(labels), bool)
        seen[np.concatenate(picks)] = True
        best = np.sort(eff)[::-1][:3]  # three best effect values; a tie with the third counts as it
        got = np.sort(eff[seen])[::-1][:3]
        return bool(len(got) == 3 and np.all(got >= best - 1e-12))

    designers = ["random", "prior_only", "bayes_prior", *args.algos]
    for d in designers:
        found, share = [], []
        for seed in range(args.twin_seeds):
            if d in ALGOS:
                pol, _ = train_design_policy(screens + others, algo=d, total_steps=args.steps, seed=seed)
                picks = campaign(th1, labels, "learned_policy", seed, groups="none", blob=policy_state_bytes(pol))
            else:
                picks = campaign(th1, labels, d, seed, groups="none")
            found.append(all_top3(picks))
            share.append(hit_curve(th1, picks)[-1])
        res["designers"][d] = {"all_top3_share": float(np.mean(found)), "hit_share_mean": float(np.mean(share)),
                               "per_seed_all_top3": found}
        log(f"twin {d}: all top-3 within {sims} sims in {np.mean(found):.0%} of seeds")
    # random picks: exact chance that 12 random simulations contain three given candidates
    from math import comb

    n = len(labels)
    res["random_exact_chance"] = comb(n - 3, sims - 3) / comb(n, sims)
    res["must_show_met_by"] = [d for d in designers if res["designers"][d]["all_top3_share"] >= 0.8]
    return res


# ================================================================================== report
def _ci(t) -> str:
    m, lo, hi = t
    return f"{m:+.4f} [{lo:+.4f}, {hi:+.4f}]"


def markdown(results: dict) -> str:
    p = results["protocol"]
    lines = ["# Learned acquisition: the TRPO→PPO design policy", "",
             "`" + "`; `".join(c.strip() for c in p["commands"]) + f"` — {p['seeds']} seeds, {p['steps']} training steps (simulated campaign rounds) per "
             f"policy for every algorithm, simulated campaigns of {p['subsample']} genes; wall "
             f"{results['wall_time_s'] / 60:.1f} min in all (the commands' wall times summed)."
             + (" Last command: " + machine_line_of(p["load"]) if p.get("load") else ""), "",
             *([f"**Partial (written while the last command ran; not its final output):** held-out screens still "
                f"to run: {', '.join(results['pending'])}. The gate and the table below cover only the screens "
                "listed.", ""] if results.get("pending") else []),
             "## Leave-one-screen-out (5 rounds × 128 genes; final hit ratio, mean over seeds)", "",
             f"Policy: {p['policy']}", "",
             "| held-out screen | random | prior_only | bayes_prior | " + " | ".join(ALGO_NAME[a] for a in p["algos"]) + " |",
             "|---|---|---|---|" + "---|" * len(p["algos"])]
    for name, r in results.get("screens", {}).items():
        d = r["designers"]
        lines.append(f"| {name} ({r['n_hits']} hits / {r['n_genes']}, batch {r['batch']}) | "
                     + " | ".join(f"{d[k]['mean']:.4f}" for k in ("random", "prior_only", "bayes_prior", *p["algos"]))
                     + " |")
    fixed = [k for k in ("prior_only", "bayes_prior")
             if results.get("screens") and all(len(set(r["designers"][k]["per_seed"])) == 1
                                               for r in results["screens"].values())]
    if fixed:
        lines += ["", f"{' and '.join(fixed)} gave the same final hit ratio for every seed on every screen, so "
                  "their paired intervals show only the other designer's seed spread."]
    lines += ["", "Paired differences (mean [95 % t CI] over seeds, same seed on the same screen):", "",
              "| held-out screen | comparison | difference |", "|---|---|---|"]
    for name, r in results.get("screens", {}).items():
        for k, v in r["paired"].items():
            lines.append(f"| {name} | {k} | {_ci(v)} |")
    if "gate" in results:
        g = results["gate"]
        lines += ["", f"**Gate ({'passed' if g['passed'] else 'not passed'})**: {g['reason']}.", "",
                  "Pooled over the held-out screens (all seed-paired differences; the gate uses TRPO→PPO, fixed "
                  "before the run): " + "; ".join(f"{k} {v}" for k, v in results["pooled"].items()) + "."]
    if "deployed" in results:
        lines += ["", f"Policy for `scagents next --designer learned_policy`: {results['deployed']}"]
    if "twin" in results:
        t = results["twin"]
        lines += ["", "## Twin must-show: top-3 Th1-promoting perturbations within 12 simulations", "",
                  f"{t['n_candidates']} candidates; {t['rounds']} rounds × {t['batch']} simulations = "
                  f"{t['simulations']}; top-3 (ties with the third count as it): "
                  + ", ".join(f"{k} ({v:.2f})" for k, v in t["top3"].items())
                  + f". Prior (signed wiring toward TBX21 and not GATA3), its top 8: {', '.join(t['prior_top8'])}. "
                  f"{p['twin_seeds']} seeds. A random 12 contains three given candidates with probability "
                  f"{t['random_exact_chance']:.3f}. The learned policies here were trained on the 5 screens and the "
                  "5 other twin tasks (Th2, 4 Krumsiek fates), never on Th1.", "",
                  "| designer | all top-3 found (share of seeds) | hits found (mean share) |", "|---|---|---|"]
        for d, e in t["designers"].items():
            lines.append(f"| {ALGO_NAME.get(d, d)} | {e['all_top3_share']:.0%} | {e['hit_share_mean']:.2f} |")
        met = t["must_show_met_by"]
        lines += ["", "Must-show (≥ 80 % of seeds): " + (f"met by {', '.join(met)}." if met else "not met by any designer.")]
    return "\n".join(lines) + "\n"


def _summarise_screens(results: dict, previous: dict) -> list[str]:
    """Add the gate and the pooled differences of ``results["screens"]``; the algorithms every screen has."""
    algos = [a for a in ALGOS if all(a in r["designers"] for r in results["screens"].values())]
    results["protocol"]["algos"] = algos
    pol = {n: r["designers"]["trpo_ppo"]["per_seed"] for n, r in results["screens"].items()
           if "trpo_ppo" in r["designers"]}
    bay = {n: r["designers"]["bayes_prior"]["per_seed"] for n, r in results["screens"].items()}
    results["gate"] = loso_gate(pol, bay)
    pooled = {}
    for a in algos:
        diffs = np.concatenate([np.subtract(r["designers"][a]["per_seed"], r["designers"]["bayes_prior"]["per_seed"])
                                for r in results["screens"].values()])
        pooled[f"{a} - bayes_prior"] = _ci(paired_ci(diffs))
    results["pooled"] = pooled
    if "deployed" in previous:
        results["deployed"] = previous["deployed"]
    return algos


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="IL2 held out, 2 seeds, TRPO→PPO only; writes nothing")
    ap.add_argument("--held-out", nargs="+", default=list(SCREENS), choices=SCREENS)
    ap.add_argument("--algos", nargs="+", default=list(ALGOS), choices=ALGOS)
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--steps", type=int, default=1024, help="training steps per policy (same for every algorithm)")
    ap.add_argument("--subsample", type=int, default=2000, help="genes per simulated screen campaign")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--twin-seeds", type=int, default=10)
    ap.add_argument("--twin-rounds", type=int, default=3)
    ap.add_argument("--twin-batch", type=int, default=4)
    ap.add_argument("--twin-cells", type=int, default=200)
    ap.add_argument("--no-twin", action="store_true")
    ap.add_argument("--no-screens", action="store_true")
    ap.add_argument("--deploy", action="store_true",
                    help="train the policy `next` uses on every screen and twin task and write it with the gate "
                         "verdict (needs all 5 held-out screens' results, merged)")
    ap.add_argument("--merge", action=argparse.BooleanOptionalAction, default=True,
                    help="merge into the recorded results (held-out screens / twin of earlier runs are kept)")
    args = ap.parse_args(argv)
    if args.quick:
        args.held_out, args.seeds, args.algos, args.twin_seeds = ["IL2"], 2, ["trpo_ppo"], 2
    import torch

    torch.set_num_threads(1)
    t0 = time.time()
    load0 = os.getloadavg()[0]

    def log(msg: str) -> None:
        print(f"[{time.time() - t0:6.0f}s] {msg}", flush=True)

    results: dict = {"protocol": {
        "commands": ["PYTHONPATH=. nice -n 10 python benchmarks/design_policy.py " + " ".join(argv if argv is not None
                                                                                      else sys.argv[1:])],
        "seeds": args.seeds, "twin_seeds": args.twin_seeds, "steps": args.steps, "subsample": args.subsample,
        "algos": args.algos, "held_out": args.held_out,
        "policy": "shared per-gene linear scorer post_mean + a·[post_mean, post_sd, prior, knn_mean, knn_max] "
                  "(posterior of the Bayesian designer with the options the policy was trained on, pinned in "
                  "posterior_state: anchor 0.5, family weight 0.5, residual evidence, no knowledge graphs — not "
                  "the current bayes_prior default; expression prior, 10 nearest measured feature neighbours; z-scored "
                  "over the untested genes), a = the policy's action from the campaign state; top-k batch; "
                  "trained on simulated campaigns of the other screens + 6 twin tasks (Th1, Th2, 4 Krumsiek "
                  "fates); reward = hits per round / hits of a random batch"}}
    previous = {}
    if not args.quick and args.merge and (RESULTS / "design_policy.json").is_file():
        previous = json.loads((RESULTS / "design_policy.json").read_text())
    def checkpoint(done: dict) -> None:
        if args.quick:
            return
        part = json.loads(json.dumps(results))
        part["screens"] = {**previous.get("screens", {}), **done}
        part["pending"] = [h for h in args.held_out if h not in done]
        _summarise_screens(part, previous)
        for k in ("twin", "deployed"):
            if k in previous:
                part[k] = previous[k]
        if "twin" in previous:
            part["protocol"]["twin_seeds"] = previous["protocol"]["twin_seeds"]
        part["wall_time_s"] = time.time() - t0 + previous.get("wall_time_s", 0.0)
        part["protocol"]["load"] = load_record(load0)
        part["protocol"]["commands"] = previous.get("protocol", {}).get("commands", []) + part["protocol"]["commands"]
        write_results("design_policy", part, markdown(part))
        log(f"checkpoint written ({len(done)} held-out screen(s) of this command)")

    if not args.no_screens:
        results["screens"] = {**previous.get("screens", {}), **run_screens(args, log, checkpoint)}
    elif "screens" in previous:
        results["screens"] = previous["screens"]
    if results.get("screens"):
        _summarise_screens(results, previous)
        if args.deploy:
            if set(results["screens"]) != set(SCREENS):
                print("error: --deploy needs the leave-one-screen-out results of all 5 screens (run the others "
                      "first, they merge)", file=sys.stderr)
                return 2
            feats = pbmc_gene_features()
            tasks = [screen_task(n, feats, batch=args.batch, rounds=args.rounds, subsample=args.subsample)[0]
                     for n in SCREENS]
            tasks += [twin_task(m, f, cells=args.twin_cells, rounds=3, batch=4)[0] for m, f in TWIN_TASKS]
            agent, _ = train_design_policy(tasks, algo="trpo_ppo", total_steps=args.steps, seed=0)
            DEFAULT_POLICY_FILE.parent.mkdir(parents=True, exist_ok=True)
            write_bytes(DEFAULT_POLICY_FILE, policy_state_bytes(agent, gate=results["gate"],
                                                                trained_on=[t.name for t in tasks]))
            results["deployed"] = (f"TRPO→PPO, seed 0, {args.steps} steps on all 5 screens + 6 twin tasks, "
                                   f"written to scagents/campaign/data/{DEFAULT_POLICY_FILE.name} with the gate "
                                   f"verdict ({'answers' if results['gate']['passed'] else 'does not answer: the Bayesian designer does'})")
            log(results["deployed"])
    if args.no_twin and "twin" in previous:
        results["twin"] = previous["twin"]
        results["protocol"]["twin_seeds"] = previous["protocol"]["twin_seeds"]
    if not args.no_twin:
        results["twin"] = run_twin(args, log)
    results["wall_time_s"] = time.time() - t0 + (previous.get("wall_time_s", 0.0) if previous else 0.0)
    results["protocol"]["load"] = load_record(load0)
    if previous:
        results["protocol"]["commands"] = previous["protocol"].get("commands", []) + results["protocol"]["commands"]
    md = markdown(results)
    if not args.quick:
        write_results("design_policy", results, md)
    print(md)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
