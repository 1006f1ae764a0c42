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

    python benchmarks/ablation.py --workers 2   # inner-validation choice of the RL settings, then
                                                # twin and Papalexi, 5 seeds × 5 folds each
                                                # (the published run: ~45 min on 2 busy cores)
    python benchmarks/ablation.py --quick   # smoke: 2 seeds × 1 fold, 4096 steps
    # the published ablation.md: the non-RL rows, the combination and the answering predictor
    # rerun; the RL rows (unchanged configuration) reused from earlier runs, marked †
    python benchmarks/ablation.py --workers 2 --no-select --steps 65536 \
        --methods no_change,mean_effect,linear,network,combination,answering \
        --papalexi-methods same \
        --reuse-rows ablation_rl,ablation_combination_rl,ablation_combination_rl_papalexi

The answering predictor row (``answering``) is what the policy agent answers with:
:func:`scagents.agents.policy.answering_predictor` runs the agent's rule inside each training
fold (see :func:`run_answering`).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._util import RESULTS, write_results  # noqa: E402
from scagents.evaluation import (  # noqa: E402
    BASELINE_METHODS,
    COMBINATION_METHODS,
    COMBINATION_RESIDUAL_METHODS,
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


CANDIDATES: dict[str, dict] = {
    "32,768 steps, per-gene rewards, δ 0.02": dict(total_steps=32_768, delta=0.02),
    "65,536 steps, per-gene rewards, δ 0.02": dict(total_steps=65_536, delta=0.02),
    "32,768 steps, per-gene rewards, δ 0.1": dict(total_steps=32_768, delta=0.1),
    "65,536 steps, per-gene rewards, δ 0.1": dict(total_steps=65_536, delta=0.1),
    "32,768 steps, one scalar reward, δ 0.02": dict(total_steps=32_768, delta=0.02, reward_components=False),
}
"""RL configurations compared by inner validation (everything else: :func:`default_train_config`:
256 envs × 8 steps, 2 × 256 hidden units, PPO 4 epochs × 8 minibatches, lr 1e-3)."""

SCALAR = "trpo_ppo_scalar"
"""Ablation-only method: TRPO→PPO with one scalar reward per step (the paper's and SB3's form),
everything else as chosen for the other RL variants — shows what the per-gene rewards change."""
ANSWERING = "answering"
"""Ablation-only method: the policy agent's rule (:func:`scagents.agents.policy.answering_predictor`)
applied inside the training fold — validation split, candidates, policy training and retrain, the
decision and the refit exactly as the agent does them — scored on the held-out fold."""
LABELS = {**METHOD_LABELS, SCALAR: "TRPO→PPO (one scalar reward)",
          ANSWERING: "answering predictor (the agent's rule)"}
COMBINATION = COMBINATION_METHODS[0]
REUSED = " †"
"""Marks a table row reused from an earlier run (``--reuse-rows``), not recomputed in this one."""


def run_one(task, method: str, seed: int, fold: int, n_folds: int, rl: dict) -> pd.DataFrame:
    """One (method, seed, fold) cell of the ablation (module level so Ray can ship it).

    ``rl`` holds the :class:`TrainConfig` overrides shared by every RL variant (not used by
    :data:`ANSWERING`, which trains with the agent's own defaults).
    """
    if method == ANSWERING:
        return run_answering(task, seed=seed, fold=fold, n_folds=n_folds)
    if method == SCALAR:
        cfg = default_train_config("trpo_ppo", **{**rl, "reward_components": False})
        out = heldout_scores(task, method="trpo_ppo", seed=seed, fold=fold, n_folds=n_folds, train_config=cfg)
        out["method"] = SCALAR
        return out
    algo = method.removesuffix("_combination").removesuffix("_residual")
    cfg = default_train_config(algo if algo in RL_METHODS else "trpo_ppo", **rl)
    return heldout_scores(task, method=method, seed=seed, fold=fold, n_folds=n_folds,
                          train_config=cfg)


def run_answering(task, *, seed: int, fold: int, n_folds: int, k: int = 20) -> pd.DataFrame:
    """Score the agent's answer (:func:`scagents.agents.policy.answering_predictor`, the agent's
    defaults, the split's seed as the run's seed) fitted on the training fold; the held-out
    perturbations play the goals (their targets enter the policy's target check, their cells
    nothing). Each row records the candidate that answered (``answered_by``)."""
    from scagents.agents.policy import answering_predictor
    from scagents.evaluation import _score_rows

    train_task, test_task = task.split(n_folds=n_folds, fold=fold, seed=seed)
    t0 = time.perf_counter()
    predict, info = answering_predictor(train_task, seed=seed,
                                        answer_for=list(test_task.perturbations))
    meta = {"method": ANSWERING, "seed": int(seed), "fold": int(fold), "n_folds": int(n_folds),
            "train_time_s": time.perf_counter() - t0, "answered_by": info["answered_by"],
            "attempts": info["attempts"]}
    return pd.DataFrame(_score_rows(lambda i: predict(test_task.perturbations[i]), test_task,
                                    task.embedding_modality, k, meta))


def answered_counts(scores: pd.DataFrame) -> dict[str, int]:
    """How many splits each candidate answered in the :data:`ANSWERING` rows."""
    if "answered_by" not in scores.columns:
        return {}
    sub = scores[scores["method"] == ANSWERING]
    firsts = sub.groupby(["seed", "fold"])["answered_by"].first()
    return {str(k): int(v) for k, v in firsts.value_counts().items()}


def answered_line(scores: pd.DataFrame) -> str:
    """One sentence: which candidate answered in how many splits, and how often it retrained."""
    counts = answered_counts(scores)
    sub = scores[scores["method"] == ANSWERING].groupby(["seed", "fold"])["attempts"].first()
    return (f"Who answered in the {LABELS[ANSWERING]} row ({sum(counts.values())} splits): "
            + ", ".join(f"{k} {v}" for k, v in sorted(counts.items(), key=lambda kv: -kv[1]))
            + f"; the policy was retrained (2nd attempt) in {int((sub > 1).sum())} splits.")


_WORKER_TASK = None


def _run_in_worker(job: dict) -> pd.DataFrame:
    """Process-pool entry point: the task was inherited from the parent at fork time."""
    return run_one(_WORKER_TASK, **job)


def run_jobs(task, jobs: list[dict], *, workers: int, label: str) -> list[pd.DataFrame]:
    """Run ablation cells in order, in this process or in ``workers`` forked processes."""
    global _WORKER_TASK
    t0 = time.perf_counter()
    if workers <= 1:
        frames = []
        for i, job in enumerate(jobs):
            frames.append(run_one(task, **job))
            print(f"[{label}] {i + 1}/{len(jobs)} {job['method']} seed={job['seed']} "
                  f"fold={job['fold']} ({time.perf_counter() - t0:.0f}s)", flush=True)
        return frames
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor, as_completed

    _WORKER_TASK = task
    frames: list = [None] * len(jobs)
    with ProcessPoolExecutor(workers, mp_context=mp.get_context("fork")) as pool:
        futures = {pool.submit(_run_in_worker, job): i for i, job in enumerate(jobs)}
        for n, fut in enumerate(as_completed(futures)):
            i = futures[fut]
            frames[i] = fut.result()
            print(f"[{label}] {n + 1}/{len(jobs)} {jobs[i]['method']} seed={jobs[i]['seed']} "
                  f"fold={jobs[i]['fold']} ({time.perf_counter() - t0:.0f}s)", flush=True)
    _WORKER_TASK = None
    return frames


def choose_rl_config(task, *, seeds: tuple[int, ...] = (0, 1),
                     inner_fold_ids: tuple[int, ...] = (0, 1)) -> tuple[str, dict, pd.DataFrame]:
    """Inner-validation choice among :data:`CANDIDATES` (TRPO→PPO, twin fold 0's training set)."""
    from scagents.evaluation import select_train_config

    cands = {name: default_train_config("trpo_ppo", **kw) for name, kw in CANDIDATES.items()}
    best, table = select_train_config(task, cands, method="trpo_ppo", fold=0, n_folds=5,
                                      split_seed=0, inner_folds=5, inner_fold_ids=inner_fold_ids,
                                      seeds=seeds)
    return best, dict(CANDIDATES[best]), table


def selection_rows(best: str, table: pd.DataFrame) -> list[str]:
    """The inner-validation table of the RL candidates (markdown lines)."""
    rows = ["| candidate | inner-val MSE Δ | Pearson Δ top-20 | median train s | splits |",
            "|---|---|---|---|---|"]
    for name, r in table.iterrows():
        mark = " **(chosen)**" if name == best else ""
        rows.append(f"| {name}{mark} | {r.mse_mean:.4f} ± {r.mse_sd:.4f} | "
                    f"{r.pearson_delta_topk_mean:.3f} ± {r.pearson_delta_topk_sd:.3f} | "
                    f"{r.train_time_s:.1f} | {int(r.n_splits)} |")
    return rows


def earlier_selection(reuse_rows: str | None) -> tuple[str, dict] | None:
    """The RL selection record (and its file) of the first ``--reuse-rows`` run that has one."""
    import json

    for src in [r.strip() for r in (reuse_rows or "").split(",") if r.strip()]:
        path = RESULTS / f"{src}.json"
        if path.exists():
            payload = json.loads(path.read_text())
            if payload.get("selection", {}).get("table"):
                return src, {**payload["selection"], "command": payload.get("command", "?")}
    return None


def _agent_steps() -> int:
    """The policy agent's default first-attempt budget (``RunOptions.policy_steps``)."""
    from scagents.agents.state import RunOptions

    return int(RunOptions.model_fields["policy_steps"].default)


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


def verdict(name: str, summary: pd.DataFrame, per_split: pd.DataFrame,
            scores: pd.DataFrame | None = None) -> tuple[list[str], dict]:
    """Plain-words verdicts computed from the numbers (paired per split; ``scores``, the
    per-perturbation table, lets Pearson-Δ comparisons use the perturbations where both methods
    have one)."""
    mse = summary[("mse", "mean")]
    pear = summary[("pearson_delta_topk", "mean")]
    baselines = [m for m in BASELINE_METHODS if m in mse.index]
    best_b = min(baselines, key=lambda m: mse[m])
    facts: dict = {"best_baseline_by_mse": best_b}
    lines = [f"Best simple baseline by held-out delta MSE: **{LABELS[best_b]}** "
             f"({mse[best_b]:.4f}; Pearson Δ top-20 {pear[best_b]:.3f})."]
    if "n_diverged" in summary.columns:
        bad = {m: _count(summary, m, "n_diverged") for m in summary.index}
        bad = {m: n for m, n in bad.items() if n}
        facts["diverged_trainings"] = bad
        if bad:
            lines.append(
                "Diverged RL trainings (non-finite policy weights or predictions; those splits have "
                "no score and are left out of the means and of every paired comparison): "
                + ", ".join(f"{LABELS.get(m, m)} {n} of {_count(summary, m, 'n_splits')}"
                            for m, n in bad.items()) + ".")
    if SCALAR in mse.index and "trpo_ppo" in mse.index:
        cmp = paired(per_split, "trpo_ppo", SCALAR, "mse")
        lo, hi = cmp["ci95"]
        facts["per_gene_vs_scalar_reward"] = cmp
        lines.append(
            f"Per-gene rewards vs one scalar reward (TRPO→PPO, same budget): MSE {mse['trpo_ppo']:.4f} vs "
            f"{mse[SCALAR]:.4f}; paired difference {cmp['mean_diff']:+.4f} (95% CI [{lo:+.4f}, {hi:+.4f}], "
            f"{cmp['n']} splits) → " + ("per-gene better" if hi < 0 else "per-gene worse" if lo > 0 else
                                        "no significant difference") + ".")
    if ANSWERING in mse.index:
        a_lines, facts["answering"] = combination_verdict(summary, per_split, baselines,
                                                          name=ANSWERING, scores=scores)
        lines += a_lines
    if COMBINATION in mse.index:
        c_lines, facts["combination"] = combination_verdict(summary, per_split, baselines,
                                                            scores=scores)
        lines += c_lines
    for variant, suffix in (("pure", ""), ("residual", "_residual")):
        algos = [a + suffix for a in RL_METHODS]
        top = "trpo_ppo" + suffix
        if top in mse.index:
            cmp = paired(per_split, top, best_b, "mse")
            key, words = _match_word(cmp)
            facts[f"{variant}_trpo_ppo_vs_best_baseline"] = {**cmp, "verdict": key}
            lines.append(
                f"{LABELS[top]} vs {LABELS[best_b]}: {words}. MSE {mse[top]:.4f} vs "
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
            c3 = paired(per_split, tp_, p_, "mse")
            steps = []
            for label, c in (("TRPO→PPO vs TRPO", c1), ("TRPO vs PPO", c2), ("TRPO→PPO vs PPO", c3)):
                lo, hi = c["ci95"]
                steps.append(f"{label}: " + ("better, significant" if hi < 0 else
                                             "worse, significant" if lo > 0 else "not significant"))
            facts[f"{variant}_paper_order"] = {"holds_on_mean_mse": holds_mean,
                                               "holds_paired_ci95": holds_sig,
                                               "holds_on_pearson_top20": holds_pear,
                                               "trpo_ppo_minus_trpo": c1, "trpo_minus_ppo": c2,
                                               "trpo_ppo_minus_ppo": c3}
            rank = sorted(algos, key=lambda m: mse[m])
            lines.append(
                f"Paper ordering TRPO→PPO > TRPO > PPO ({variant}): "
                f"{'holds' if holds_mean else 'does NOT hold'} on mean MSE (best to worst: "
                f"{' > '.join(LABELS[m] for m in rank)}; "
                + ", ".join(f"{LABELS[m]} {mse[m]:.4f}" for m in algos)
                + f"); paired TRPO→PPO − TRPO {c1['mean_diff']:+.4f} (CI [{c1['ci95'][0]:+.4f}, "
                f"{c1['ci95'][1]:+.4f}]), TRPO − PPO {c2['mean_diff']:+.4f} (CI [{c2['ci95'][0]:+.4f}, "
                f"{c2['ci95'][1]:+.4f}]) → {'; '.join(steps)} (the ordering needs the first two better and "
                f"significant: {'yes' if holds_sig else 'no'}); on Pearson Δ top-20 it {'holds' if holds_pear else 'does NOT hold'} ("
                + ", ".join(f"{LABELS[m]} {pear[m]:.3f}" for m in algos) + ").")
    return lines, facts


def _direction(cmp: dict, lower_is_better: bool) -> str:
    """``better`` / ``worse`` / ``no significant difference`` / ``undefined`` from a paired CI."""
    if not cmp["n"]:
        return "undefined"
    lo, hi = cmp["ci95"]
    if lower_is_better:
        return "better" if hi < 0 else "worse" if lo > 0 else "no significant difference"
    return "better" if lo > 0 else "worse" if hi < 0 else "no significant difference"


def common_pearson(scores: pd.DataFrame, a: str, b: str) -> tuple[pd.DataFrame, float]:
    """Per-split mean Pearson-Δ top-20 of ``a`` and ``b`` over the held-out perturbations where
    *both* have one (a constant prediction, e.g. a zero one, has none), and the fraction of
    ``b``'s scored perturbations that have one."""
    sub = scores[scores["method"].isin([a, b])]
    wide = sub.set_index(["seed", "fold", "perturbation", "method"])["pearson_delta_topk"] \
        .unstack("method")
    both = wide.dropna(subset=[a, b])[[a, b]]
    per = both.groupby(level=["seed", "fold"]).mean().stack().rename("pearson_delta_topk")
    per = per.reorder_levels(["method", "seed", "fold"]).sort_index().to_frame()
    frac = float(sub.loc[sub["method"] == b, "pearson_delta_topk"].notna().mean())
    return per, frac


def combination_verdict(summary: pd.DataFrame, per_split: pd.DataFrame, baselines: list[str],
                        name: str = COMBINATION, scores: pd.DataFrame | None = None
                        ) -> tuple[list[str], dict]:
    """``name`` vs every single baseline (and TRPO→PPO when present) on delta MSE and Pearson-Δ
    top-20, paired per split (95% CI), and one line saying which it does not beat.

    With ``scores`` (per perturbation) the Pearson-Δ comparison with a method that has no
    Pearson-Δ for some perturbations (it predicts no change for them, e.g. network propagation
    for a target that is not a measured gene) uses only the perturbations where both have one;
    the line says how many that is."""
    mse = summary[("mse", "mean")]
    pear = summary[("pearson_delta_topk", "mean")]
    lines, facts, not_beaten = [], {"vs": {}}, []
    others = baselines + [m for m in (COMBINATION, "trpo_ppo") if m in mse.index and m != name]
    for b in others:
        c_mse = paired(per_split, name, b, "mse")
        c_pear = paired(per_split, name, b, "pearson_delta_topk")
        support = ""
        if scores is not None and b in set(scores["method"]) and b != "no_change":
            per, frac = common_pearson(scores, name, b)
            if frac < 1.0 and len(per):
                c_pear = paired(per, name, b, "pearson_delta_topk")
                means = per.groupby(level=0)["pearson_delta_topk"].mean()
                support = (f" [{LABELS.get(b, b)} has a Pearson-Δ for only {100 * frac:.0f}% of "
                           f"the held-out perturbations (none where its prediction or the observed change "
                           f"is constant); "
                           f"compared on those: {means[name]:.3f} vs {means[b]:.3f}]")
                c_pear["common_support_fraction"] = frac
        w_mse, w_pear = _direction(c_mse, True), _direction(c_pear, False)
        facts["vs"][b] = {"mse": {**c_mse, "verdict": w_mse},
                          "pearson_delta_topk": {**c_pear, "verdict": w_pear}}
        if b in baselines:
            not_beaten += [f"{LABELS[b]} on MSE ({w_mse})"] if w_mse != "better" else []
            not_beaten += ([f"{LABELS[b]} on Pearson-Δ top-20 ({w_pear})"]
                           if w_pear not in ("better", "undefined") else [])
        pear_txt = (f"Pearson-Δ top-20 {pear[name]:.3f} vs {pear[b]:.3f}, paired "
                    f"{c_pear['mean_diff']:+.3f} (95% CI [{c_pear['ci95'][0]:+.3f}, "
                    f"{c_pear['ci95'][1]:+.3f}]){support} → {w_pear}" if c_pear["n"] else
                    "Pearson-Δ top-20 undefined for a constant zero prediction")
        lines.append(
            f"{LABELS[name]} vs {LABELS.get(b, b)}{' (not a single baseline)' if b not in baselines else ''}: "
            f"MSE {mse[name]:.4f} vs {mse[b]:.4f}, paired {c_mse['mean_diff']:+.4f} (95% CI "
            f"[{c_mse['ci95'][0]:+.4f}, {c_mse['ci95'][1]:+.4f}], {c_mse['n']} splits) → {w_mse}; "
            f"{pear_txt}.")
    for r in COMBINATION_RESIDUAL_METHODS:
        if r in mse.index and name == COMBINATION:
            c_mse, c_pear = (paired(per_split, r, name, "mse"),
                             paired(per_split, r, name, "pearson_delta_topk"))
            w_mse, w_pear = _direction(c_mse, True), _direction(c_pear, False)
            facts[r] = {"mse": {**c_mse, "verdict": w_mse},
                        "pearson_delta_topk": {**c_pear, "verdict": w_pear}}
            lines.append(
                f"{LABELS[r]} vs {LABELS[name]} (does the policy's correction help?): MSE "
                f"{mse[r]:.4f} vs {mse[name]:.4f}, paired {c_mse['mean_diff']:+.4f} (95% CI "
                f"[{c_mse['ci95'][0]:+.4f}, {c_mse['ci95'][1]:+.4f}], {c_mse['n']} splits) → "
                f"{w_mse}; Pearson-Δ top-20 {pear[r]:.3f} vs {pear[name]:.3f}, paired "
                f"{c_pear['mean_diff']:+.3f} (95% CI [{c_pear['ci95'][0]:+.3f}, "
                f"{c_pear['ci95'][1]:+.3f}]) → {w_pear}.")
    facts["beats_every_single_baseline_on_both"] = not not_beaten
    facts["not_beaten"] = not_beaten
    lines.append(
        f"**{LABELS[name]} beats every single baseline on both delta MSE and Pearson-Δ top-20 "
        f"(paired 95% CI): {'yes' if not not_beaten else 'no'}**"
        + (f" — it does not beat: {'; '.join(not_beaten)}." if not_beaten else ".")
        + (" (No change has no Pearson-Δ; it is compared on MSE only.)"
           if "no_change" in baselines else ""))
    return lines, facts


def reused_rows(name: str, dataset: str, skip: list[str]) -> tuple[pd.DataFrame, pd.DataFrame, str]:
    """Summary and per-split MSE / Pearson-Δ rows of the methods *not* in ``skip`` from an earlier
    ``results/<name>.json`` (same seeds and folds), and that run's command."""
    import json

    path = RESULTS / f"{name}.json"
    if not path.exists():
        raise SystemExit(f"--reuse-rows: {path} not found; run the full ablation first.")
    payload = json.loads(path.read_text())
    block = payload["datasets"].get(dataset, {})
    if "summary" not in block:
        return pd.DataFrame(), pd.DataFrame(), payload.get("command", "?")
    keep = [m for m in block["summary"] if m not in skip]
    summary = pd.DataFrame({(k, stat): {m: (np.nan if block["summary"][m][k][stat] is None else
                                            block["summary"][m][k][stat]) for m in keep}
                            for k, _ in TABLE_METRICS for stat in ("mean", "sd")})
    splits = pd.DataFrame(block["split_scores"])
    splits = splits[splits["method"].isin(keep)].set_index(["method", "seed", "fold"])
    return summary, splits[["mse", "pearson_delta_topk"]], payload.get("command", "?")


def _count(summary: pd.DataFrame, method: str, column: str) -> int:
    """A per-method integer column of :func:`summarize` output (flat or MultiIndex columns)."""
    value = summary.loc[method, column]
    value = value.iloc[0] if hasattr(value, "iloc") else value
    return 0 if pd.isna(value) else int(value)


def markdown_table(summary: pd.DataFrame, reused: frozenset[str] | set[str] = frozenset()) -> str:
    """The results table; rows of ``reused`` methods are marked †."""
    failed = "n_diverged" in summary.columns
    head = ("| method | " + " | ".join(lab for _, lab in TABLE_METRICS)
            + (" | diverged trainings |" if failed else " |"))
    sep = "|---" * (len(TABLE_METRICS) + 1 + failed) + "|"
    rows = [head, sep]
    for m in summary.index:
        cells = [f"{summary.loc[m, (k, 'mean')]:.3f} ± {summary.loc[m, (k, 'sd')]:.3f}"
                 if k not in ("mse", "rmse", "mae") else
                 f"{summary.loc[m, (k, 'mean')]:.4f} ± {summary.loc[m, (k, 'sd')]:.4f}"
                 for k, _ in TABLE_METRICS]
        if failed:
            cells.append(f"{_count(summary, m, 'n_diverged')} / {_count(summary, m, 'n_splits')}")
        mark = REUSED if m in reused else ""
        rows.append(f"| {LABELS.get(m, m)}{mark} | " + " | ".join(cells) + " |")
    return "\n".join(rows)


def split_means(scores: pd.DataFrame) -> pd.DataFrame:
    """Per-split (method × seed × fold) means of the per-perturbation scores: what the results JSON
    keeps (the per-perturbation table goes to a CSV beside it, not committed)."""
    return (scores.groupby(["method", "seed", "fold"]).mean(numeric_only=True).round(6)
            .reset_index())


def write_scores(scores: pd.DataFrame, name: str, dataset: str) -> Path:
    """Write the full per-perturbation table to ``results/raw/`` (git-ignored)."""
    path = RESULTS / "raw" / f"{name}_{dataset}_scores.csv.gz"
    path.parent.mkdir(parents=True, exist_ok=True)
    scores.to_csv(path, index=False)
    return path.relative_to(RESULTS.parent)


def render_verdicts(name: str) -> int:
    """Rewrite the verdict bullets of ``results/<name>.md`` (and the JSON's) from the saved
    per-split scores and summaries, with the current :func:`verdict` — numbers are not recomputed."""
    import json

    from scagents._atomic import write_json

    js, mdp = RESULTS / f"{name}.json", RESULTS / f"{name}.md"
    payload = json.loads(js.read_text())
    md = mdp.read_text()
    for ds, block in payload["datasets"].items():
        if "summary" not in block:
            continue
        summary = pd.DataFrame({(k, stat): {m: (np.nan if v is None else v) for m, v in
                                            ((m, block["summary"][m][k][stat]) for m in block["summary"])}
                                for k, _ in TABLE_METRICS for stat in ("mean", "sd")})
        per_split = pd.DataFrame(block["split_scores"]).set_index(["method", "seed", "fold"])
        raw = RESULTS.parent / str(block.get("scores_csv", ""))
        scores = pd.read_csv(raw) if block.get("scores_csv") and raw.is_file() else None
        lines, facts = verdict(ds, summary, per_split, scores)
        block["verdict"], block["facts"] = lines, facts
        head = f"## {ds}: "
        start = md.index("**Verdicts**", md.index(head))
        begin = md.index("\n\n", start) + 2
        end = md.index("\n\nWall time", begin)
        md = md[:begin] + "\n".join(f"- {line}" for line in lines) + md[end:]
    write_json(js, payload, indent=2)  # strict JSON (NaN → null), atomic
    mdp.write_text(md)
    print(md)
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seeds", type=int, default=5, help="number of seeds (0 … n-1)")
    ap.add_argument("--folds", type=int, default=5, help="k of the k-fold split over perturbations")
    ap.add_argument("--max-folds", type=int, default=None,
                    help="run only the first N folds of each seed on every data set")
    ap.add_argument("--papalexi-max-folds", type=int, default=0,
                    help="folds run per seed on Papalexi (its trainings are slower; 0 = all)")
    ap.add_argument("--steps", type=int, default=None,
                    help="override the environment steps per RL training (default: chosen config)")
    ap.add_argument("--no-select", action="store_true",
                    help="skip the inner-validation choice; use default_train_config()")
    ap.add_argument("--workers", type=int, default=1,
                    help="forked worker processes for the ablation cells (one torch thread each)")
    ap.add_argument("--datasets", default="twin,papalexi")
    ap.add_argument("--methods", default=",".join(BASELINE_METHODS + COMBINATION_METHODS
                                                  + (ANSWERING,) + RL_METHODS
                                                  + (SCALAR,) + RESIDUAL_METHODS
                                                  + COMBINATION_RESIDUAL_METHODS),
                    help="comma-separated methods run on the twin (and on Papalexi with "
                         "--papalexi-methods same)")
    ap.add_argument("--papalexi-methods",
                    default=",".join(BASELINE_METHODS + COMBINATION_METHODS + (ANSWERING,)
                                     + RL_METHODS + (SCALAR,) + COMBINATION_RESIDUAL_METHODS),
                    help="methods on Papalexi (default: without the residual variants, for time; "
                         "'same': as --methods)")
    ap.add_argument("--reuse-rows", default=None, metavar="NAME",
                    help="add the rows of the methods not run here from results/NAME.json (an "
                         "earlier run, same seeds and folds), marked † in the table")
    ap.add_argument("--quick", action="store_true", help="smoke run: 2 seeds × 1 fold, 4096 steps")
    ap.add_argument("--backend", choices=("local", "ray"), default="local",
                    help="ray: scagents.parallel.run_tasks (only worth it with spare cores)")
    ap.add_argument("--name", default="ablation", help="results file stem")
    ap.add_argument("--render-verdicts", action="store_true",
                    help="recompute the verdict lines of results/<name>.md from its JSON (no training)")
    args = ap.parse_args(argv)
    if args.render_verdicts:
        return render_verdicts(args.name)
    import torch

    torch.set_num_threads(1)
    if args.quick:
        args.seeds, args.max_folds, args.papalexi_max_folds, args.steps = 2, 1, 1, 4_096
        args.no_select = True
        if args.name == "ablation":
            args.name = "ablation_quick"
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    all_methods = set(methods) | (set() if args.papalexi_methods == "same" else
                                  {m.strip() for m in args.papalexi_methods.split(",")})
    trains_rl = bool(all_methods & {*RL_METHODS, *RESIDUAL_METHODS, SCALAR, ANSWERING,
                                    *COMBINATION_RESIDUAL_METHODS})
    if not trains_rl:
        args.no_select = True  # nothing to choose an RL configuration for
    selection_md: list[str] = []
    selection: dict = {}
    if args.no_select:
        d = default_train_config()
        rl = dict(n_envs=d.n_envs, n_steps=d.n_steps, total_steps=d.total_steps,
                  hidden_sizes=d.hidden_sizes)
        selection_md = ["## How the RL budget was chosen", "",
                        "Not chosen in this run (`--no-select`): `default_train_config()`"
                        + (f" with {args.steps} steps" if args.steps else "") + ".", ""]
        earlier = earlier_selection(args.reuse_rows)
        if earlier is not None:
            src, selection = earlier
            selection_md[-2] += (
                f" The choice below was made by the run whose RL rows are reused (†, "
                f"`results/{src}.json`, command `{selection.get('command', '?')}`), before any "
                f"held-out scoring, as described there; it is not repeated here. The policy agent "
                f"trains with the chosen configuration by default "
                f"(`scagents.agents.policy.policy_train_config`, `RunOptions.policy_steps` = "
                f"{_agent_steps()}), and so does the answering-predictor row.")
            selection_md += [*selection_rows(selection["best"], pd.DataFrame(selection["table"])
                                             .set_index("candidate")), "",
                             f"Selection wall time {selection['wall_s']:.0f} s (that run).", ""]
    else:
        t_sel = time.perf_counter()
        twin, _ = load_task("twin")
        best, rl, table = choose_rl_config(twin)
        sel_wall = time.perf_counter() - t_sel
        n_sel = twin.split(n_folds=5, fold=0, seed=0)[0].n_perturbations
        selection = {"best": best, "rl": {k: list(v) if isinstance(v, tuple) else v
                                          for k, v in rl.items()},
                     "wall_s": sel_wall, "table": table.reset_index().to_dict(orient="records")}
        print(table.to_string(), "\nchosen:", best, flush=True)
        rows = selection_rows(best, table)
        selection_md = [
            "## How the RL budget was chosen", "",
            "Before any held-out scoring, TRPO→PPO (pure) was trained with each candidate below "
            "on the twin's **outer fold 0 training perturbations only** (5-fold split, shuffle "
            f"seed 0: {n_sel} of {twin.n_perturbations} perturbations); these were split once more by perturbation (inner "
            "5-fold, reshuffled by each seed) and scored on inner folds 0 and 1 for seeds 0 and 1 "
            "(4 inner splits per candidate, mean ± sd over them). Rule fixed in advance: lowest "
            "mean inner-validation delta MSE wins (`scagents.evaluation.select_train_config`). "
            "Every other setting is shared (`default_train_config`). The chosen configuration is "
            "used unchanged by PPO, TRPO and TRPO→PPO, pure and residual, on both data sets "
            "(Papalexi was not used in the selection). Caveat: for outer seeds ≠ 0 the held-out folds contain "
            f"some of the perturbations used here (one {len(CANDIDATES)}-way choice; the held-out "
            "targets of seed 0 fold 0 were never used).", "",
            *rows, "", f"Selection wall time {sel_wall:.0f} s.", ""]
    if args.steps:
        rl["total_steps"] = args.steps
    cfg0 = default_train_config(**rl)
    command = f"python benchmarks/ablation.py {' '.join(argv if argv is not None else sys.argv[1:])}"
    payload: dict = {"command": command, "config": {**vars(args), "train_config": vars(cfg0)},
                     "selection": selection, "datasets": {}}
    md = ["# Ablation: PPO vs TRPO vs TRPO→PPO vs simple baselines (held-out perturbations)", "",
          f"Command: `{command.strip()}` (one run writes this file and `{args.name}.json`).", "",
          "Protocol (`EVALUATION.md`): k-fold over perturbations (a held-out target is never seen in "
          "training); each seed reshuffles the folds and seeds the policy; every method is scored on "
          "the delta (change from control) of each held-out perturbation; mean ± sd over seeds × "
          "folds of per-split averages (R²: per-split median over perturbations, because R² explodes "
          "for perturbations with ~zero effect). Verdicts compare methods *paired per split*.", "",
          *(["RL: no RL method was trained in this run"
              + (f"; the RL rows marked † were trained as `{args.reuse_rows}.md` describes."
                 if args.reuse_rows else "."), ""] if not trains_rl else []),
          *([] if not trains_rl else [
          f"RL: {cfg0.total_steps} env steps per training, one TrainConfig for every variant "
          f"except `algo` (hidden {cfg0.hidden_sizes} shared by actor and critic after one "
          f"{'×'.join(map(str, cfg0.branch_sizes))}-unit branch per observation block — gene state, perturbation "
          f"encoding, and for residual variants the baseline delta; {cfg0.n_envs} envs × "
          f"{cfg0.n_steps} steps per rollout, "
          f"PPO {cfg0.ppo_epochs} epochs × {cfg0.n_minibatches} minibatches, lr {cfg0.lr}, TRPO δ "
          f"{cfg0.delta}, initial log σ {cfg0.init_log_std}, γ {cfg0.gamma}, value-head init gain "
          f"{cfg0.critic_init_gain}, "
          + ("per-gene rewards (`reward_components=True`: the environment splits the reward over the "
             "predicted genes and each gene's action gets its own advantage — unbiased here because a "
             "gene's error depends only on its own prediction and the next observation does not "
             "depend on the action; not in the paper)" if cfg0.reward_components else
             "one scalar reward per step (as in the paper)")
          + f"; TRPO→PPO switches at "
          f"{cfg0.trpo_fraction:.0%} of the steps). No hyper-parameter was tuned on any held-out fold "
          "and none per data set: the rollout layout and budget were chosen by inner validation "
          "on the twin (next section). Disclosure: while developing the per-gene rewards, PPO and "
          "TRPO→PPO were tried on seed 0, folds 0–1 of both data sets (to see whether training was "
          "stable and learned at all); that informed adding the option, not the candidates' values.", "",
          *selection_md]),
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
          "training fold. *Combination* (`scagents.combination.fit_combination`, the function the "
          "policy agent validates): per-gene non-negative stacking of mean of training effects, "
          "linear and network propagation, fitted on the training fold only — each base is "
          "cross-fitted over 5 inner folds of the training perturbations, a global non-negative "
          "weight per base is fitted by NNLS on those out-of-sample predictions, per-gene weights "
          "are shrunk toward it with strength κ ∈ {0.1, 1, 10, ∞} chosen by the lowest "
          "inner-validation MSE (rule fixed in advance; ties → larger κ), and the bases are "
          "refitted on the whole training fold. *TRPO→PPO (residual on combination)*: the residual "
          "variant with the combination as the baseline it corrects (cross-fitted the same way). "
          "*Answering predictor (the agent's rule)*: what `python -m scagents run` answers with, "
          "computed by the function the policy agent runs (`scagents.agents.policy."
          "answering_predictor`, the agent's defaults): inside the training fold a validation set "
          "is held out (at most `RunOptions.n_validation` = 10 target gene sets and a third of "
          "them, each with all its labels, stratified by kind, shuffled by the split's seed; a "
          "combination holding a single-gene validation target is kept out of training); linear, mean effect, network "
          "propagation and the combination (the constructors of the rows above) are fitted on the "
          "rest and TRPO→PPO is trained there with `policy_train_config` "
          f"({_agent_steps()} steps, the configuration of the RL rows); `answering_rule` lets the "
          "policy answer only if `compare_to_baseline` validates it (≥ 5 % lower validation MSE "
          "than the best candidate, paired improvement > 1 s.e., Pearson-Δ not worse, targets' "
          "own direction not worse) and it moves no held-out perturbation's own target the wrong "
          "way (predictions only, never their cells); a close miss (≤ 25 % worse) is retrained "
          "once with a doubled budget; otherwise the candidate with the lowest validation MSE "
          "answers, refitted on the whole training fold. The held-out fold is then scored; which "
          "candidate answered is counted under each table.", "",
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
        ms = methods if name != "papalexi" or args.papalexi_methods == "same" else \
            [m.strip() for m in args.papalexi_methods.split(",") if m.strip()]
        jobs = [dict(method=m, seed=s, fold=f, n_folds=args.folds, rl=rl)
                for s in range(args.seeds) for f in folds for m in ms]
        if args.backend == "ray":
            from scagents.parallel import run_tasks

            frames = run_tasks(run_one, [dict(task=task, **j) for j in jobs], backend="ray")
        else:
            frames = run_jobs(task, jobs, workers=args.workers, label=name)
        scores = pd.concat(frames, ignore_index=True)
        summary = summarize(scores)
        per_split = scores.groupby(["method", "seed", "fold"])[["mse", "pearson_delta_topk"]].mean()
        reuse_note, reused = "", set()
        old_splits: list[pd.DataFrame] = []
        if args.reuse_rows:
            notes = []
            summary = summary.drop(columns=[c for c in ("n_diverged", "n_splits")
                                            if c in summary.columns], level=0)
            for src in [r.strip() for r in args.reuse_rows.split(",") if r.strip()]:
                old_sum, old_split, old_cmd = reused_rows(src, name, [*ms, *reused])
                if old_sum.empty:
                    continue
                check = reused_rows(src, name, [])[0]
                same = [m for m in ms if m in check.index]
                drift = max((abs(summary.loc[m, (k, "mean")] - check.loc[m, (k, "mean")])
                             for m in same for k in ("mse", "pearson_delta_topk")
                             if np.isfinite(check.loc[m, (k, "mean")])), default=float("nan"))
                reused |= set(old_sum.index)
                summary = pd.concat([summary, old_sum])
                per_split = pd.concat([per_split, old_split])
                old_splits.append(old_split)
                notes.append(
                    f"{', '.join(LABELS.get(m, m) for m in old_sum.index)} from "
                    f"`results/{src}.json` (command `{old_cmd.strip()}`; its diverged-training "
                    f"counts are in `{src}.md`; the methods run in both — "
                    f"{', '.join(LABELS.get(m, m) for m in same) or 'none'} — differ from that "
                    f"run by at most {drift:.2g} in mean MSE / Pearson-Δ top-20)")
            if notes:
                reuse_note = ("Rows marked †: not rerun here, same seeds and folds — "
                              + "; ".join(notes) + ".")
                print(reuse_note, flush=True)
        lines, facts = verdict(name, summary, per_split, scores)
        wall = time.perf_counter() - t0
        t_train = scores.groupby(["method", "seed", "fold"])["train_time_s"].first()
        t_train = t_train.groupby(level=0).median()
        payload["datasets"][name] = {
            "task": repr(task), "seeds": args.seeds, "folds_run": list(folds),
            "n_folds": args.folds, "wall_s": wall, "verdict": lines, "facts": facts,
            "summary": {m: {k: {s: (None if np.isnan(v) else float(v)) for s, v in
                                summary.loc[m, k].items()} for k, _ in TABLE_METRICS}
                        for m in summary.index},
            "split_scores": split_means(scores).to_dict(orient="records")
            + [{**r, "reused": True} for old in old_splits
               for r in old.reset_index().to_dict(orient="records")],
            "answered_by": answered_counts(scores),
            "reused_methods": sorted(reused), "reused_note": reuse_note or None,
            "scores_csv": str(write_scores(scores, args.name, name))}
        scope = ("full protocol" if n_run == args.folds else
                 f"**reduced: folds {list(folds)} of {args.folds}** (time budget)")
        md += [f"## {name}: {task!r}", "",
               f"{args.seeds} seeds × {n_run} folds of a {args.folds}-fold split ({scope}); "
               f"{args.seeds * n_run} splits per method.", "",
               *([reuse_note, ""] if reuse_note else []),
               markdown_table(summary, reused), "",
               *([answered_line(scores), ""] if answered_counts(scores) else []),
               "**Verdicts** (computed from the numbers above):", "",
               *[f"- {line}" for line in lines], "",
               f"Wall time {wall:.0f} s; median training time per split: "
               + ", ".join(f"{LABELS.get(m, m)} {t:.1f} s" for m, t in t_train.items()) + ".",
               ""]
        print(markdown_table(summary), "\n", "\n".join(lines), flush=True)
        payload["wall_s"] = time.perf_counter() - t_all     # partial file after each data set
        write_results(args.name, payload, "\n".join(md) + "\n")
    payload["wall_s"] = time.perf_counter() - t_all
    md.append(f"Total wall time {payload['wall_s']:.0f} s.")
    write_results(args.name, payload, "\n".join(md) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
