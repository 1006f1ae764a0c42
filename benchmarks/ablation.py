"""Ablation: PPO vs TRPO vs TRPO→PPO vs simple baselines on held-out perturbations.

Data sets
    ``twin``      the Th model (Mendoza 2006) twin, RNA only, knockout + over-expression of every
                  non-input gene (38 perturbations, 23 genes);
    ``papalexi``  Papalexi et al. 2021 THP-1 CRISPR knockouts (25 targets, 299 genes, log1p of
                  counts normalised to 10⁴), from ``../shared/data/perturbseq/``.

Protocol (``/work/shared/EVALUATION.md``): k-fold over perturbations, every seed reshuffles the
folds and seeds the policy; each method is scored on the held-out deltas with
:func:`scagents.metrics.prediction_report`; mean ± sd over seeds × folds of per-split averages
(:func:`scagents.evaluation.summarize`). The RL variants share one :class:`TrainConfig`
(:func:`scagents.evaluation.default_train_config`): same network, batch and step budget.

Usage::

    python benchmarks/ablation.py                       # full default (5 seeds × 5 folds, both data sets)
    python benchmarks/ablation.py --quick               # 1–2 min smoke
    python benchmarks/ablation.py --seeds 5 --folds 5 --steps 30000 --datasets twin,papalexi
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
        return ResponseTask.from_twin("th", modalities=("rna",), n_cells=256), ""
    if name == "papalexi":
        if not PAPALEXI.exists():
            return None, f"{PAPALEXI} not found"
        import anndata as ad

        adata = ad.read_h5ad(PAPALEXI)
        return ResponseTask.from_anndata(adata, layer="lognorm",
                                         max_control_cells=max_control_cells, seed=0), ""
    raise SystemExit(f"Unknown data set {name!r}; choose twin or papalexi.")


def network_baseline_status() -> str:
    """Why the network-propagation column is (not) in the tables."""
    try:
        import scagents.grn as grn
    except ImportError as exc:  # pragma: no cover - depends on the checkout
        return f"scagents.grn cannot be imported ({exc})"
    names = [n for n in ("propagate_delta", "propagate", "in_silico_perturbation") if hasattr(grn, n)]
    if not names:
        return ("left out: scagents.grn offers no propagation function yet (no propagate_delta / "
                "in_silico_perturbation), so no network-propagation prediction could be made")
    return f"left out: scagents.grn.{names[0]} exists but is not wired into this benchmark yet"


def run_one(task, method: str, seed: int, fold: int, n_folds: int, steps: int) -> pd.DataFrame:
    """One (method, seed, fold) cell of the ablation (module level so Ray can ship it)."""
    cfg = default_train_config(method if method in RL_METHODS else "trpo_ppo", total_steps=steps)
    return heldout_scores(task, method=method, seed=seed, fold=fold, n_folds=n_folds,
                          train_config=cfg)


def paired(per_split: pd.DataFrame, a: str, b: str, metric: str) -> dict:
    """Paired comparison of methods ``a`` and ``b`` over the same (seed, fold) splits."""
    x = per_split.loc[a, metric]
    y = per_split.loc[b, metric].reindex(x.index)
    d = (x - y).dropna()
    return {"mean_diff": float(d.mean()), "sd_diff": float(d.std(ddof=1)) if len(d) > 1 else float("nan"),
            "n": int(len(d)), "frac_a_lower": float((d < 0).mean())}


def verdict(name: str, summary: pd.DataFrame, per_split: pd.DataFrame) -> tuple[str, dict]:
    """Plain-words verdict computed from the numbers."""
    mse = summary[("mse", "mean")]
    pear = summary[("pearson_delta_topk", "mean")]
    baselines = [m for m in BASELINE_METHODS if m in mse.index]
    best_b = min(baselines, key=lambda m: mse[m])
    facts: dict = {"best_baseline_by_mse": best_b}
    lines = []
    if "trpo_ppo" in mse.index:
        cmp = paired(per_split, "trpo_ppo", best_b, "mse")
        facts["trpo_ppo_vs_best_baseline_mse"] = cmp
        matches = mse["trpo_ppo"] <= mse[best_b]
        facts["trpo_ppo_matches_best_baseline"] = bool(matches)
        word = "matches or beats" if matches else "does NOT match"
        lines.append(
            f"On {name}, TRPO→PPO {word} the best simple baseline ({METHOD_LABELS[best_b]}) on held-out "
            f"delta MSE: {mse['trpo_ppo']:.4f} vs {mse[best_b]:.4f} (paired difference "
            f"{cmp['mean_diff']:+.4f} ± {cmp['sd_diff']:.4f} over {cmp['n']} splits; TRPO→PPO lower in "
            f"{100 * cmp['frac_a_lower']:.0f}% of them). Pearson Δ top-20: {pear['trpo_ppo']:.3f} vs "
            f"{pear[best_b]:.3f}.")
        beats_nc = mse["trpo_ppo"] < mse["no_change"]
        facts["trpo_ppo_beats_no_change"] = bool(beats_nc)
        lines.append(f"Against no change (MSE {mse['no_change']:.4f}) TRPO→PPO is "
                     f"{'better' if beats_nc else 'worse'}.")
    if all(m in mse.index for m in RL_METHODS):
        order_mse = mse["trpo_ppo"] < mse["trpo"] < mse["ppo"]
        order_p = pear["trpo_ppo"] > pear["trpo"] > pear["ppo"]
        facts["paper_order_holds_mse"] = bool(order_mse)
        facts["paper_order_holds_pearson_top20"] = bool(order_p)
        rank = sorted(RL_METHODS, key=lambda m: mse[m])
        lines.append(
            f"The paper's ordering TRPO→PPO > TRPO > PPO {'holds' if order_mse else 'does NOT hold'} on "
            f"MSE (best to worst: {' > '.join(METHOD_LABELS[m] for m in rank)}; "
            + ", ".join(f"{METHOD_LABELS[m]} {mse[m]:.4f}" for m in RL_METHODS)
            + f") and {'holds' if order_p else 'does NOT hold'} on Pearson Δ top-20 ("
            + ", ".join(f"{METHOD_LABELS[m]} {pear[m]:.3f}" for m in RL_METHODS) + ").")
    return " ".join(lines), facts


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
                    help="run only the first N folds of each seed (for a cheaper run)")
    ap.add_argument("--steps", type=int, default=30_000, help="environment steps per RL training")
    ap.add_argument("--datasets", default="twin,papalexi")
    ap.add_argument("--methods", default=",".join(BASELINE_METHODS + RL_METHODS))
    ap.add_argument("--quick", action="store_true", help="smoke run: 2 seeds × 1 fold, 4k steps")
    ap.add_argument("--backend", choices=("local", "ray"), default="local")
    ap.add_argument("--name", default="ablation", help="results file stem")
    args = ap.parse_args(argv)
    import torch

    torch.set_num_threads(1)
    if args.quick:
        args.seeds, args.max_folds, args.steps = 2, 1, 4_000
        if args.name == "ablation":
            args.name = "ablation_quick"
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    folds = range(min(args.folds, args.max_folds or args.folds))
    payload: dict = {"config": {**vars(args), "train_config": vars(default_train_config(
        total_steps=args.steps))}, "network_propagation": network_baseline_status(), "datasets": {}}
    md = ["# Ablation: PPO vs TRPO vs TRPO→PPO vs simple baselines (held-out perturbations)", "",
          f"Command: `python benchmarks/ablation.py {' '.join(argv if argv is not None else sys.argv[1:])}`",
          "", f"Seeds {args.seeds} × folds {list(folds)} of a {args.folds}-fold split over perturbations; "
          f"RL: {args.steps} env steps each, identical TrainConfig except `algo` "
          f"(hidden {default_train_config().hidden_sizes}, n_envs {default_train_config().n_envs}, "
          f"n_steps {default_train_config().n_steps}, lr {default_train_config().lr}, "
          f"δ {default_train_config().delta}). Metrics on the delta (change from control) of each "
          "held-out perturbation; mean ± sd over seeds × folds of per-split averages (R²: per-split "
          "median over perturbations, because R² explodes for perturbations with ~zero effect).", "",
          f"Network propagation: {payload['network_propagation']}.", "",
          "Additive: not applicable (both data sets have single-gene perturbations only; for an unseen "
          "single target the additive model equals the mean of training effects).", ""]
    t_all = time.perf_counter()
    for name in [d.strip() for d in args.datasets.split(",") if d.strip()]:
        task, why = load_task(name)
        if task is None:
            md += [f"## {name}", "", f"Skipped: {why}.", ""]
            payload["datasets"][name] = {"skipped": why}
            continue
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
        text, facts = verdict(name, summary, per_split)
        wall = time.perf_counter() - t0
        rl_time = scores[scores.method.isin(RL_METHODS)].groupby("method")["train_time_s"].first()
        payload["datasets"][name] = {
            "task": repr(task), "wall_s": wall, "verdict": text, "facts": facts,
            "summary": {m: {k: {s: (None if np.isnan(v) else float(v)) for s, v in
                                summary.loc[m, k].items()} for k, _ in TABLE_METRICS}
                        for m in summary.index},
            "scores": scores.to_dict(orient="records")}
        md += [f"## {name}: {task!r}", "", markdown_table(summary), "",
               f"**Verdict.** {text}", "",
               f"Wall time {wall:.0f} s; RL training times (first split): "
               + ", ".join(f"{METHOD_LABELS[m]} {t:.1f} s" for m, t in rl_time.items()) + ".", ""]
        print(markdown_table(summary), "\n", text, flush=True)
    payload["wall_s"] = time.perf_counter() - t_all
    write_results(args.name, payload, "\n".join(md))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
