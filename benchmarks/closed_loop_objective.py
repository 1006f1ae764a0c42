"""Does the default designer follow the objective's sign on a real screen? decrease vs increase vs either.

On one shared screen (default IFNG) the default designer of ``scagents next`` — built by
``benchmarks/closed_loop.py``'s own :func:`screen_campaign` (``designer_config`` → ``build_designer``, same
defaults, same features, expression prior and knowledge graphs) — runs campaigns with the objective
``decrease``, ``increase`` and ``either``, beside ``prior_only`` and ``random``. Reported per round (mean over
seeds, with the SD over seeds): the mean screen score of the picks and the hits found, where the hits are
the screen's 5 % most negative scores (for decrease) and its 5 % most positive (for increase) — a rule
fixed here, independent of the screen's own hit list. Nothing is tuned.

Usage::

    nice -n 10 python benchmarks/closed_loop_objective.py --seeds 3 --configs 5x128 3x32

Writes ``benchmarks/results/closed_loop_objective.{json,md}``.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

for _v in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_v, "1")

import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from _util import load_record, write_results  # noqa: E402
from closed_loop import screen_batch, screen_campaign  # noqa: E402

from scagents.campaign.features import align_features, expression_prior, pbmc_gene_features  # noqa: E402
from scagents.campaign.screens import load_screen, load_screen_file  # noqa: E402

#: (label, designer name — None = the default of ``scagents next`` —, objective, options). The last arm is a
#: diagnostic, not a candidate default: the default designer with ``prior_weight="learned"`` (the prior's weight ×
#: the posterior probability, from the campaign's own rounds, that it predicts the hit-like genes).
ARMS = (("default decrease", None, "decrease", {}), ("default increase", None, "increase", {}),
        ("default either", None, "either", {}), ("prior_only", "prior_only", "either", {}),
        ("random", "random", "either", {}),
        ("diagnostic: decrease, prior_weight=learned", None, "decrease", {"prior_weight": "learned"}))


def run(screen: str, seeds: int, rounds: int, batch: int, log) -> dict:
    s = load_screen_file(screen) if screen.endswith(".csv") else load_screen(screen)
    genes = list(s.scores.index)
    F = align_features(pbmc_gene_features(), genes)
    X, prior = F.to_numpy(), expression_prior(F).to_numpy()
    scores = s.scores.to_numpy()
    batch = screen_batch(len(genes), batch)
    low, high = np.quantile(scores, 0.05), np.quantile(scores, 0.95)
    hit_dec, hit_inc = scores <= low, scores >= high
    out = {"n_genes": len(genes), "batch": batch, "median_score": float(np.median(scores)),
           "hits_decrease": int(hit_dec.sum()), "hits_increase": int(hit_inc.sum()), "arms": {}}
    for label, designer, objective, options in ARMS:
        t = time.time()
        per_seed = []
        for seed in range(seeds):
            picks = screen_campaign(genes, X, scores, designer=designer, seed=seed, prior=prior,
                                    objective=objective, rounds=rounds, batch=batch, **options)
            per_seed.append({"mean_score": [float(scores[p].mean()) for p in picks],
                             "hits_decrease": [int(hit_dec[p].sum()) for p in picks],
                             "hits_increase": [int(hit_inc[p].sum()) for p in picks],
                             "first_genes": [genes[i] for i in picks[0][:10]]})
        arm = {"designer": designer or "default (bayes_prior)", "objective": objective, "options": options,
               "seeds": per_seed}
        for k in ("mean_score", "hits_decrease", "hits_increase"):
            a = np.array([p[k] for p in per_seed], dtype=np.float64)
            arm[k] = {"mean": a.mean(0).tolist(), "sd": (a.std(0, ddof=1) if seeds > 1 else np.zeros(a.shape[1])).tolist(),
                      "total_mean": float(a.sum(1).mean()) if k != "mean_score" else float(a.mean()),
                      "total_per_seed": (a.sum(1) if k != "mean_score" else a.mean(1)).tolist()}
        out["arms"][label] = arm
        log(f"{label}: mean score {arm['mean_score']['total_mean']:+.3f}, hits dec {arm['hits_decrease']['total_mean']:.1f}"
            f", inc {arm['hits_increase']['total_mean']:.1f} ({time.time() - t:.0f} s)")
    return out


def markdown(res: dict) -> str:
    lines = [f"# Closed loop: does the default designer follow the objective's sign? ({res['screen']})", ""]
    for r in res["results"]:
        lines += _section(res, r)
    lines += ["", f"Wall time {res['wall_time_s']:.0f} s.", "", f"Command: `{res['command']}`"]
    return "\n".join(lines) + "\n"


def _section(res: dict, r: dict) -> list[str]:
    rounds = len(next(iter(r["arms"].values()))["mean_score"]["mean"])
    same = [label for label, a in r["arms"].items() if len(a["seeds"]) > 1 and all(
        s["mean_score"] == a["seeds"][0]["mean_score"] for s in a["seeds"])]
    lines = [f"## {rounds} rounds × {r['batch']} picks", "",
             f"{r['n_genes']} genes, {rounds} rounds × {r['batch']} picks, {res['seeds']} seeds (mean ± SD over seeds). "
             f"Hits here = the screen's 5 % most negative scores ({r['hits_decrease']} genes, for decrease) and its "
             f"5 % most positive ({r['hits_increase']} genes, for increase); median score {r['median_score']:+.3f}. "
             "Designers built by benchmarks/closed_loop.py's screen_campaign (designer_config → build_designer, "
             "the defaults of `scagents next`)."
             + (f" Seed-invariant arms (every seed gave the same per-round scores): {', '.join(same)}." if same else ""),
             "",
             "### Mean screen score of the picks per round", "",
             "| arm | " + " | ".join(f"round {i + 1}" for i in range(rounds)) + " | all rounds |",
             "|---|" + "---|" * (rounds + 1)]
    for label, a in r["arms"].items():
        m, sd = a["mean_score"]["mean"], a["mean_score"]["sd"]
        lines.append(f"| {label} | " + " | ".join(f"{x:+.3f} ± {y:.3f}" for x, y in zip(m, sd, strict=True))
                     + f" | {a['mean_score']['total_mean']:+.3f} |")
    for key, what in (("hits_decrease", "5 % most negative"), ("hits_increase", "5 % most positive")):
        lines += ["", f"### Hits found per round ({what})", "",
                  "| arm | " + " | ".join(f"round {i + 1}" for i in range(rounds)) + " | total (per seed) |",
                  "|---|" + "---|" * (rounds + 1)]
        for label, a in r["arms"].items():
            m, sd = a[key]["mean"], a[key]["sd"]
            per = ", ".join(f"{v:.0f}" for v in a[key]["total_per_seed"])
            lines.append(f"| {label} | " + " | ".join(f"{x:.1f} ± {y:.1f}" for x, y in zip(m, sd, strict=True))
                         + f" | {a[key]['total_mean']:.1f} ({per}) |")
    A = r["arms"]
    dec, inc, po = A["default decrease"], A["default increase"], A["prior_only"]
    gap = [i - d for i, d in zip(inc["mean_score"]["total_per_seed"], dec["mean_score"]["total_per_seed"],
                                 strict=True)]
    lines += ["", "### Reading", "",
              f"- Mean score of all picks: decrease {dec['mean_score']['total_mean']:+.3f}, increase "
              f"{inc['mean_score']['total_mean']:+.3f} (increase − decrease per seed: "
              + ", ".join(f"{g:+.3f}" for g in gap) + f"), prior_only {po['mean_score']['total_mean']:+.3f}, random "
              f"{A['random']['mean_score']['total_mean']:+.3f}.",
              f"- Round 1 mean score (the expression prior's top, the same for every objective): "
              f"decrease {dec['mean_score']['mean'][0]:+.3f}, increase {inc['mean_score']['mean'][0]:+.3f}, "
              f"prior_only {po['mean_score']['mean'][0]:+.3f}.",
              f"- 5 % most negative found: decrease {dec['hits_decrease']['total_mean']:.1f}, increase "
              f"{inc['hits_decrease']['total_mean']:.1f}, prior_only {po['hits_decrease']['total_mean']:.1f}, random "
              f"{A['random']['hits_decrease']['total_mean']:.1f}; 5 % most positive found: increase "
              f"{inc['hits_increase']['total_mean']:.1f}, decrease {dec['hits_increase']['total_mean']:.1f}, "
              f"prior_only {po['hits_increase']['total_mean']:.1f}, random {A['random']['hits_increase']['total_mean']:.1f}.", ""]
    return lines


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--screen", default="IFNG", help="a shared screen name or a ground_truth_<NAME>.csv path")
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--configs", nargs="+", default=["5x128"], help="ROUNDSxBATCH campaigns to run, e.g. 5x128 3x32")
    args = ap.parse_args(argv)
    t0, load0 = time.time(), os.getloadavg()[0]

    def log(msg: str) -> None:
        print(f"[{time.time() - t0:6.0f}s] {msg}", flush=True)

    res = {"screen": args.screen, "seeds": args.seeds, "configs": args.configs,
           "command": "nice -n 10 python benchmarks/closed_loop_objective.py" + "".join(
               f" {a}" for a in (sys.argv[1:] if argv is None else argv))}
    res["results"] = []
    for c in args.configs:
        rounds, batch = (int(v) for v in c.lower().split("x"))
        res["results"].append(run(args.screen, args.seeds, rounds, batch, log))
    res["wall_time_s"] = time.time() - t0
    res["load_average_1min"] = load_record(load0)
    md = markdown(res)
    write_results("closed_loop_objective", res, md)
    print(md)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
