"""Ablation: PPO vs TRPO vs TRPO→PPO vs simple baselines on held-out perturbations.

Data sets
    ``twin``      the Th model (Mendoza 2006) twin, RNA only, knockout + over-expression of every
                  non-input gene (38 perturbations, 23 genes);
    ``papalexi``  Papalexi et al. 2021 THP-1 CRISPR knockouts (25 targets, 299 genes, log1p of
                  counts normalised to 10⁴), from ``../shared/data/perturbseq/``.

Protocol (``/work/shared/EVALUATION.md``): k-fold over perturbations, every seed reshuffles the
folds and seeds the policy; each method is scored on the held-out deltas with
:func:`scagents.metrics.prediction_report`; mean ± sd over seeds × folds of per-split averages
(:func:`scagents.evaluation.summarize`). The RL variants (pure and residual on the linear
baseline) share one :class:`TrainConfig` (:func:`scagents.evaluation.default_train_config`): same
network, rollout and step budget. Baselines: no change, mean of training effects, linear on gene
embeddings, network propagation (:func:`scagents.evaluation.fit_network_baseline`). One run writes
one merged ``results/<name>.{json,md}``.

Usage::

    python benchmarks/ablation.py           # default: twin 5 seeds × 5 folds, Papalexi 5 seeds ×
                                            # folds 0-1 (--papalexi-max-folds 0 for all 5); ~30 min
    python benchmarks/ablation.py --quick   # smoke: 2 seeds × 1 fold, 4096 steps
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._util import write_results  # noqa: E402
from scagents.evaluation import (  # noqa: E402
    BASELINE_METHODS,
    METHOD_LABELS,
    RESIDUAL_METHODS,
    RL_METHODS,
    default_train_config,
    heldout_scores,
    summarize,
)

PAPALEXI = Path(__file__).resolve().parents[2] / "shared" / "data" / "perturbseq" / \
    "papalexi2021_thp1_ifng_crispr.h5ad"
TABLE_METRICS = [("pearson_delta_topk", "Pearson Δ top-20"), ("mse", "MSE Δ"), ("rmse", "RMSE Δ"),
                 ("mae", "MAE Δ"), ("r2", "R² Δ (median)"), ("pearson", "Pearson Δ (all)"),
                 ("direction_accuracy", "dir. acc"), ("direction_precision", "dir. prec"),
                 ("direction_recall", "dir. rec"), ("direction_f1", "dir. F1"),
                 ("direction_auprc", "dir. AUPRC")]


def load_task(name: str, *, max_control_cells: int = 512):
    """The :class:`ResponseTask` of a data set, or ``None`` (with a reason) when its file is absent."""
    from scagents.envs.response import ResponseTask

    if name == "twin":
        return ResponseTask.from_twin("th", modalities=("rna",), n_cells=256, keep_cells=True), ""
    if name == "papalexi":
        if not PAPALEXI.exists():
            return None, f"{PAPALEXI} not found"
        import anndata as ad

        adata = ad.read_h5ad(PAPALEXI)
        return ResponseTask.from_anndata(adata, layer="lognorm",
                                         max_control_cells=max_control_cells, seed=0,
                                         keep_cells=True), ""
    raise SystemExit(f"Unknown data set {name!r}; choose twin or papalexi.")


def run_one(task, method: str, seed: int, fold: int, n_folds: int, steps: int) -> pd.DataFrame:
    """One (method, seed, fold) cell of the ablation (module level so Ray can ship it)."""
    algo = method.removesuffix("_residual")
    cfg = default_train_config(algo if algo in RL_METHODS else "trpo_ppo", total_steps=steps)
    return heldout_scores(task, method=method, seed=seed, fold=fold, n_folds=n_folds,
                          train_config=cfg)


def paired(per_split: pd.DataFrame, a: str, b: str, metric: str) -> dict:
    """Paired comparison ``a - b`` over the (seed, fold) splits both methods were scored on.

    ``ci95`` is mean ± 1.96 · sd / √n of the per-split differences; for MSE a negative difference
    means ``a`` is better.
    """
    x = per_split.loc[a, metric]
    y = per_split.loc[b, metric].reindex(x.index)
    d = (x - y).dropna()
    n = len(d)
    sd = float(d.std(ddof=1)) if n > 1 else float("nan")
    half = 1.96 * sd / np.sqrt(n) if n > 1 else float("nan")
    return {"a": a, "b": b, "metric": metric, "mean_diff": float(d.mean()), "sd_diff": sd, "n": n,
            "ci95": [float(d.mean() - half), float(d.mean() + half)],
            "frac_a_lower": float((d < 0).mean()) if n else float("nan")}


def _match_word(cmp: dict) -> tuple[str, str]:
    """Classify a paired MSE difference (a - baseline): beats / matches / does not match."""
    lo, hi = cmp["ci95"]
    if hi < 0:
        return "beats", "beats (95% CI of the paired difference below 0)"
    if lo <= 0:
        return "matches", "matches (95% CI of the paired difference contains 0)"
    return "worse", "does NOT match (95% CI of the paired difference above 0)"


def verdict(name: str, summary: pd.DataFrame, per_split: pd.DataFrame) -> tuple[list[str], dict]:
    """Plain-words verdicts computed from the numbers (paired per split)."""
    mse = summary[("mse", "mean")]
    pear = summary[("pearson_delta_topk", "mean")]
    baselines = [m for m in BASELINE_METHODS if m in mse.index]
    best_b = min(baselines, key=lambda m: mse[m])
    facts: dict = {"best_baseline_by_mse": best_b}
    lines = [f"Best simple baseline by held-out delta MSE: **{METHOD_LABELS[best_b]}** "
             f"({mse[best_b]:.4f}; Pearson Δ top-20 {pear[best_b]:.3f})."]
    for variant, suffix in (("pure", ""), ("residual", "_residual")):
        algos = [a + suffix for a in RL_METHODS]
        top = "trpo_ppo" + suffix
        if top in mse.index:
            cmp = paired(per_split, top, best_b, "mse")
            key, words = _match_word(cmp)
            facts[f"{variant}_trpo_ppo_vs_best_baseline"] = {**cmp, "verdict": key}
            lines.append(
                f"{METHOD_LABELS[top]} vs {METHOD_LABELS[best_b]}: {words}. MSE {mse[top]:.4f} vs "
                f"{mse[best_b]:.4f}; paired difference {cmp['mean_diff']:+.4f} ± {cmp['sd_diff']:.4f} "
                f"(95% CI [{cmp['ci95'][0]:+.4f}, {cmp['ci95'][1]:+.4f}], {cmp['n']} splits, lower in "
                f"{100 * cmp['frac_a_lower']:.0f}%). Pearson Δ top-20 {pear[top]:.3f} vs "
                f"{pear[best_b]:.3f}.")
        if all(a in mse.index for a in algos):
            p_, t_, tp_ = algos
            c1 = paired(per_split, tp_, t_, "mse")
            c2 = paired(per_split, t_, p_, "mse")
            holds_mean = bool(mse[tp_] < mse[t_] < mse[p_])
            holds_sig = bool(c1["ci95"][1] < 0 and c2["ci95"][1] < 0)
            holds_pear = bool(pear[tp_] > pear[t_] > pear[p_])
            facts[f"{variant}_paper_order"] = {"holds_on_mean_mse": holds_mean,
                                               "holds_paired_ci95": holds_sig,
                                               "holds_on_pearson_top20": holds_pear,
                                               "trpo_ppo_minus_trpo": c1, "trpo_minus_ppo": c2}
            rank = sorted(algos, key=lambda m: mse[m])
            lines.append(
                f"Paper ordering TRPO→PPO > TRPO > PPO ({variant}): "
                f"{'holds' if holds_mean else 'does NOT hold'} on mean MSE (best to worst: "
                f"{' > '.join(METHOD_LABELS[m] for m in rank)}; "
                + ", ".join(f"{METHOD_LABELS[m]} {mse[m]:.4f}" for m in algos)
                + f"); paired TRPO→PPO − TRPO {c1['mean_diff']:+.4f} (CI [{c1['ci95'][0]:+.4f}, "
                f"{c1['ci95'][1]:+.4f}]), TRPO − PPO {c2['mean_diff']:+.4f} (CI [{c2['ci95'][0]:+.4f}, "
                f"{c2['ci95'][1]:+.4f}]) → {'significant' if holds_sig else 'not significant'} in "
                f"both steps; on Pearson Δ top-20 it {'holds' if holds_pear else 'does NOT hold'} ("
                + ", ".join(f"{METHOD_LABELS[m]} {pear[m]:.3f}" for m in algos) + ").")
    return lines, facts


def markdown_table(summary: pd.DataFrame) -> str:
    head = "| method | " + " | ".join(lab for _, lab in TABLE_METRICS) + " |"
    sep = "|---" * (len(TABLE_METRICS) + 1) + "|"
    rows = [head, sep]
    for m in summary.index:
        cells = [f"{summary.loc[m, (k, 'mean')]:.3f} ± {summary.loc[m, (k, 'sd')]:.3f}"
                 if k not in ("mse", "rmse", "mae") else
                 f"{summary.loc[m, (k, 'mean')]:.4f} ± {summary.loc[m, (k, 'sd')]:.4f}"
                 for k, _ in TABLE_METRICS]
        rows.append(f"| {METHOD_LABELS.get(m, m)} | " + " | ".join(cells) + " |")
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seeds", type=int, default=5, help="number of seeds (0 … n-1)")
    ap.add_argument("--folds", type=int, default=5, help="k of the k-fold split over perturbations")
    ap.add_argument("--max-folds", type=int, default=None,
                    help="run only the first N folds of each seed on every data set")
    ap.add_argument("--papalexi-max-folds", type=int, default=2,
                    help="folds run per seed on Papalexi (its trainings are slower; 0 = all)")
    ap.add_argument("--steps", type=int, default=16_384, help="environment steps per RL training")
    ap.add_argument("--datasets", default="twin,papalexi")
    ap.add_argument("--methods", default=",".join(BASELINE_METHODS + RL_METHODS + RESIDUAL_METHODS))
    ap.add_argument("--quick", action="store_true", help="smoke run: 2 seeds × 1 fold, 4096 steps")
    ap.add_argument("--backend", choices=("local", "ray"), default="local",
                    help="ray: scagents.parallel.run_tasks (only worth it with spare cores)")
    ap.add_argument("--name", default="ablation", help="results file stem")
    args = ap.parse_args(argv)
    import torch

    torch.set_num_threads(1)
    if args.quick:
        args.seeds, args.max_folds, args.papalexi_max_folds, args.steps = 2, 1, 1, 4_096
        if args.name == "ablation":
            args.name = "ablation_quick"
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    cfg0 = default_train_config(total_steps=args.steps)
    command = f"python benchmarks/ablation.py {' '.join(argv if argv is not None else sys.argv[1:])}"
    payload: dict = {"command": command, "config": {**vars(args), "train_config": vars(cfg0)},
                     "datasets": {}}
    md = ["# Ablation: PPO vs TRPO vs TRPO→PPO vs simple baselines (held-out perturbations)", "",
          f"Command: `{command.strip()}` (one run writes this file and `ablation.json`).", "",
          "Protocol (`EVALUATION.md`): k-fold over perturbations (a held-out target is never seen in "
          "training); each seed reshuffles the folds and seeds the policy; every method is scored on "
          "the delta (change from control) of each held-out perturbation; mean ± sd over seeds × "
          "folds of per-split averages (R²: per-split median over perturbations, because R² explodes "
          "for perturbations with ~zero effect). Verdicts compare methods *paired per split*.", "",
          f"RL: {args.steps} env steps per training, one TrainConfig for every variant except `algo` "
          f"(hidden {cfg0.hidden_sizes}, {cfg0.n_envs} envs × {cfg0.n_steps} steps per rollout, "
          f"PPO {cfg0.ppo_epochs} epochs × {cfg0.n_minibatches} minibatches, lr {cfg0.lr}, TRPO δ "
          f"{cfg0.delta}, initial log σ {cfg0.init_log_std}, γ {cfg0.gamma}; TRPO→PPO switches at "
          f"{cfg0.trpo_fraction:.0%} of the steps). No hyper-parameter was tuned on any held-out fold "
          "(none was tuned per data set at all: the rollout layout comes from the throughput "
          "benchmark).", "",
          "Methods. *Network propagation*: ridge network (`scagents.grn.infer_network`, "
          "`method=\"ridge\"`, `alpha=\"auto\"`) inferred from the training fold's cells only "
          "(control cells + every cell of the training perturbations); the held-out perturbation's "
          "forced change (knockout → target to 0, over-expression → target to its maximum over those "
          "cells) is propagated 3 steps from the mean control profile with "
          "`scagents.grn.propagate_delta`. *Residual* RL variants: the observation also holds the "
          "linear baseline's delta for the episode's perturbation and the action is a correction "
          "added to it (initial policy mean ≈ 0, so training starts at the baseline); in training, "
          "the baseline of each training perturbation is cross-fitted (5 inner folds over the "
          "training perturbations), at test time it is the linear model fitted on the whole "
          "training fold.", "",
          "Additive: not applicable (both data sets have single-gene perturbations only; for an unseen "
          "single target the additive model equals the mean of training effects).", ""]
    t_all = time.perf_counter()
    for name in [d.strip() for d in args.datasets.split(",") if d.strip()]:
        task, why = load_task(name)
        if task is None:
            md += [f"## {name}", "", f"Skipped: {why}.", ""]
            payload["datasets"][name] = {"skipped": why}
            continue
        n_run = args.folds if args.max_folds is None else min(args.folds, args.max_folds)
        if name == "papalexi" and args.papalexi_max_folds:
            n_run = min(n_run, args.papalexi_max_folds)
        folds = range(n_run)
        t0 = time.perf_counter()
        jobs = [dict(task=task, method=m, seed=s, fold=f, n_folds=args.folds, steps=args.steps)
                for s in range(args.seeds) for f in folds for m in methods]
        if args.backend == "ray":
            from scagents.parallel import run_tasks

            frames = run_tasks(run_one, jobs, backend="ray")
        else:
            frames = []
            for i, job in enumerate(jobs):
                frames.append(run_one(**job))
                print(f"[{name}] {i + 1}/{len(jobs)} {job['method']} seed={job['seed']} "
                      f"fold={job['fold']} ({time.perf_counter() - t0:.0f}s)", flush=True)
        scores = pd.concat(frames, ignore_index=True)
        summary = summarize(scores)
        per_split = scores.groupby(["method", "seed", "fold"])[["mse", "pearson_delta_topk"]].mean()
        lines, facts = verdict(name, summary, per_split)
        wall = time.perf_counter() - t0
        t_train = scores.groupby(["method", "seed", "fold"])["train_time_s"].first()
        t_train = t_train.groupby(level=0).median()
        payload["datasets"][name] = {
            "task": repr(task), "seeds": args.seeds, "folds_run": list(folds),
            "n_folds": args.folds, "wall_s": wall, "verdict": lines, "facts": facts,
            "summary": {m: {k: {s: (None if np.isnan(v) else float(v)) for s, v in
                                summary.loc[m, k].items()} for k, _ in TABLE_METRICS}
                        for m in summary.index},
            "scores": scores.to_dict(orient="records")}
        scope = ("full protocol" if n_run == args.folds else
                 f"**reduced: folds {list(folds)} of {args.folds}** (time budget)")
        md += [f"## {name}: {task!r}", "",
               f"{args.seeds} seeds × {n_run} folds of a {args.folds}-fold split ({scope}); "
               f"{args.seeds * n_run} splits per method.", "",
               markdown_table(summary), "", "**Verdicts** (computed from the numbers above):", "",
               *[f"- {line}" for line in lines], "",
               f"Wall time {wall:.0f} s; median training time per split: "
               + ", ".join(f"{METHOD_LABELS.get(m, m)} {t:.1f} s" for m, t in t_train.items()) + ".",
               ""]
        print(markdown_table(summary), "\n", "\n".join(lines), flush=True)
    payload["wall_s"] = time.perf_counter() - t_all
    md.append(f"Total wall time {payload['wall_s']:.0f} s.")
    write_results(args.name, payload, "\n".join(md) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
