"""Ablation per modality (the paper's Tables I–III): RNA only, ATAC only, joint RNA + ATAC, protein.

arXiv:2510.13018 (v1) evaluates RNA, ATAC and joint RNA + ATAC perturbation prediction separately.
This runs the held-out-perturbation ablation of ``benchmarks/ablation.py`` once per modality view
of one twin simulation, and a held-out time-point comparison per modality on sci-CAR.

Twin (Th model, Mendoza 2006; knockout + over-expression of each of the 19 regulated genes = 38
perturbations; 256 control cells): one :meth:`ResponseTask.from_twin` run with RNA (23 genes),
ATAC (19 promoter accessibilities, the regulatory input of each regulated gene) and protein (6
surface genes), cut into views by :func:`scagents.envs.modalities.modality_task`:

* ``rna``  — observation = RNA state, action = RNA delta;
* ``atac`` — observation = ATAC state, action = ATAC delta; features named by their gene
  (gene-level accessibility) so the perturbation encoding and the linear model find the targets;
* ``joint`` — observation = RNA and ATAC state (one 64-unit branch each), action = the concatenated
  ``[RNA Δ | ATAC Δ]``; reward = mean of the two modalities' MSEs; scored on the concatenated delta
  (42 features) and on each block;
* ``prot`` — as ``atac`` for the 6 surface proteins.

Protocol and metrics as ``ablation.py`` (k-fold over perturbations, each seed reshuffles the folds
and seeds the policy, :func:`scagents.evaluation.heldout_scores` / :func:`summarize`); RL with
:func:`scagents.evaluation.default_train_config` unchanged (one TrainConfig for PPO, TRPO and
TRPO→PPO). Baselines: no change, mean of training effects, linear gene embedding; network
propagation on RNA only (it propagates a forced change of the target *gene's expression*).

sci-CAR (Cao et al. 2018, A549 + dexamethasone 0 / 1 / 3 h, RNA + ATAC of the same cells): no
genetic perturbation, so the held-out unit is a *time point*; see :func:`scicar_scores`.

Usage::

    python benchmarks/modality.py --workers 2              # twin (5 seeds × 5 folds) + sci-CAR
    python benchmarks/modality.py --max-folds 2            # fewer splits when time is short
    python benchmarks/modality.py --quick                  # smoke: 1 seed × 1 fold, 2,048 steps
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._util import load_record, machine_line_of, write_results  # noqa: E402
from benchmarks.ablation import LABELS, markdown_table, paired, run_one, verdict  # noqa: E402
from scagents.evaluation import (  # noqa: E402
    RL_METHODS,
    default_train_config,
    fit_baseline,
    heldout_scores,
    summarize,
)
from scagents.metrics import prediction_report  # noqa: E402

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data" / "multiome"
SCICAR = {m: SHARED / f"cao2018_scicar_a549_dex_{m}.h5ad" for m in ("rna", "atac")}
VIEWS: dict[str, tuple[str, ...]] = {"rna": ("rna",), "atac": ("atac",), "joint": ("rna", "atac"),
                                     "prot": ("prot",)}
VIEW_TITLES = {"rna": "Table I — RNA only", "atac": "Table II — ATAC only",
               "joint": "Table III — joint RNA + ATAC", "prot": "Extra — protein only"}
SIMPLE = ("no_change", "mean_effect", "linear")
COMBINATION = "combination"
"""The stacked combination (:func:`scagents.combination.fit_combination`), the candidate the policy
agent validates; its bases per modality are :func:`combination_bases`."""
COMBINATION_LABELS = {"rna": "combination (stacked: mean, linear, network)",
                      "atac": "combination (stacked: mean, linear)",
                      "prot": "combination (stacked: mean, linear)",
                      "joint": "combination (RNA: mean, linear, network; ATAC: mean, linear)"}


def use_view_labels(view: str) -> None:
    """Name the combination row after the bases it has in ``view`` (tables and verdicts read
    :data:`benchmarks.ablation.LABELS`)."""
    LABELS[COMBINATION] = COMBINATION_LABELS[view]


def twin_views(*, n_cells: int = 256) -> dict:
    """One twin simulation (RNA, ATAC, protein; cells kept) cut into the :data:`VIEWS`."""
    from scagents.envs import ResponseTask
    from scagents.envs.modalities import modality_task, twin_feature_genes

    full = ResponseTask.from_twin("th", modalities=("rna", "atac", "prot"), n_cells=n_cells,
                                  keep_cells=True)
    genes = twin_feature_genes(full)
    return {name: modality_task(full, mods, feature_genes=genes) for name, mods in VIEWS.items()}


def methods_for(view: str) -> list[str]:
    """Baselines that apply to a view, the stacked combination, then the RL optimisers."""
    return (list(SIMPLE) + (["network"] if view == "rna" else []) + [COMBINATION]
            + list(RL_METHODS))


def combination_bases(modality: str) -> tuple[str, ...]:
    """Base predictors of the combination for one modality.

    RNA: :data:`scagents.combination.COMBINATION_BASES` (mean effect, linear, network
    propagation). ATAC / protein: mean effect and linear only — network propagation forces a change
    of the target gene's *expression* and propagates it through a network inferred from expression;
    a knockout does not force the target's promoter accessibility or surface protein, so that base
    does not apply there.
    """
    from scagents.combination import COMBINATION_BASES

    return tuple(COMBINATION_BASES) if modality == "rna" else ("mean_effect", "linear")


def fit_view_combination(train_task, modality: str, seed: int):
    """:func:`scagents.combination.fit_combination` of :func:`combination_bases` on one modality
    of ``train_task`` (inner folds shuffled by ``seed``; held-out perturbations never enter)."""
    from scagents.combination import fit_combination

    fitters = {b: (lambda t, b=b: fit_baseline(b, t, modality=modality))
               for b in combination_bases(modality)}
    return fit_combination(train_task, fitters=fitters, seed=seed, modality=modality)


def combination_cell(task, view: str, seed: int, fold: int, n_folds: int) -> pd.DataFrame:
    """One (seed, fold) cell of the combination on a single-modality view (the rows of
    :func:`scagents.evaluation.heldout_scores` for a baseline)."""
    (mod,) = VIEWS[view]
    train, test = task.split(n_folds=n_folds, fold=fold, seed=seed)
    t0 = time.perf_counter()
    predict = fit_view_combination(train, mod, seed)
    meta = {"method": COMBINATION, "seed": int(seed), "fold": int(fold), "n_folds": int(n_folds),
            "train_time_s": time.perf_counter() - t0}
    rows = []
    for i, label in enumerate(test.labels):
        obs = test.observed_delta(i, modality=mod)
        rows.append({**meta, "perturbation": label,
                     **prediction_report(predict(test.perturbations[i]), obs,
                                         k=min(20, len(obs)))})
    return pd.DataFrame(rows)


# ================================================================================== joint view
def joint_cell(task, method: str, seed: int, fold: int, n_folds: int, rl: dict) -> pd.DataFrame:
    """One (method, seed, fold) cell of the joint view, scored on every block.

    RL: one policy predicts the concatenated delta (trained by :func:`heldout_scores`, which
    also scores its RNA block); baselines: one model per modality, predictions concatenated.
    Rows carry ``block`` = ``"joint"`` (the concatenated delta), ``"rna"`` or ``"atac"``.
    """
    from scagents.envs.response import predict_delta

    _, test = task.split(n_folds=n_folds, fold=fold, seed=seed)
    t0 = time.perf_counter()
    if method in RL_METHODS:
        cfg = default_train_config(method, **rl)
        df, policy = heldout_scores(task, method=method, seed=seed, fold=fold, n_folds=n_folds,
                                    train_config=cfg, return_policy=True)
        if bool(df["diverged"].any()):
            return pd.DataFrame([{"method": method, "seed": seed, "fold": fold, "block": b,
                                  "perturbation": lab, "diverged": True}
                                 for b in ("joint", *task.modalities) for lab in test.labels])

        def predict(i: int) -> np.ndarray:
            return predict_delta(policy, test, i, modality=None)
    else:
        train, _ = task.split(n_folds=n_folds, fold=fold, seed=seed)
        models = {m: (fit_view_combination(train, m, seed) if method == COMBINATION
                      else fit_baseline(method, train, modality=m)) for m in task.modalities}

        def predict(i: int) -> np.ndarray:
            p = test.perturbations[i]
            return np.concatenate([models[m](p) for m in task.modalities])
    elapsed = time.perf_counter() - t0
    rows = []
    for i, label in enumerate(test.labels):
        pred, obs = predict(i), test.observed_delta(i)
        for block, sl in (("joint", slice(None)), *test.action_slices.items()):
            o = obs[sl]
            rows.append({"method": method, "seed": seed, "fold": fold, "block": block,
                         "perturbation": label, "train_time_s": elapsed, "diverged": False,
                         **prediction_report(pred[sl], o, k=min(20, len(o)))})
    return pd.DataFrame(rows)


# ================================================================================== runner
def run_cell(task, view: str, job: dict) -> pd.DataFrame:
    """One ablation cell of a view: :func:`benchmarks.ablation.run_one` or :func:`joint_cell`."""
    if view == "joint":
        return joint_cell(task, **job)
    if job["method"] == COMBINATION:
        return combination_cell(task, view, job["seed"], job["fold"], job["n_folds"]).assign(
            block=view)
    return run_one(task, **job).assign(block=view)


_WORKER: tuple | None = None


def _in_worker(job: dict) -> pd.DataFrame:
    task, view = _WORKER
    return run_cell(task, view, job)


def run_view(task, view: str, jobs: list[dict], *, workers: int) -> pd.DataFrame:
    """Every cell of a view, in this process or in ``workers`` forked processes."""
    global _WORKER
    t0 = time.perf_counter()
    frames: list = [None] * len(jobs)

    def done(i: int, n: int) -> None:
        j = jobs[i]
        print(f"[{view}] {n}/{len(jobs)} {j['method']} seed={j['seed']} fold={j['fold']} "
              f"({time.perf_counter() - t0:.0f}s)", flush=True)

    if workers <= 1:
        for i, job in enumerate(jobs):
            frames[i] = run_cell(task, view, job)
            done(i, i + 1)
    else:
        import multiprocessing as mp
        from concurrent.futures import ProcessPoolExecutor, as_completed

        _WORKER = (task, view)
        with ProcessPoolExecutor(workers, mp_context=mp.get_context("fork")) as pool:
            futures = {pool.submit(_in_worker, job): i for i, job in enumerate(jobs)}
            for n, fut in enumerate(as_completed(futures), 1):
                frames[futures[fut]] = fut.result()
                done(futures[fut], n)
        _WORKER = None
    return pd.concat(frames, ignore_index=True)


def view_block(scores: pd.DataFrame, block: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Summary (mean ± sd over splits) and per-split MSE / Pearson-Δ of one scored block."""
    s = scores[scores["block"] == block].drop(columns="block")
    summary = summarize(s)
    per_split = s.groupby(["method", "seed", "fold"])[["mse", "pearson_delta_topk"]].mean()
    return summary, per_split


def ablation_steps_note(steps: int) -> str:
    """One sentence comparing this run's RL budget with ``results/ablation.json``'s (read, not
    assumed)."""
    import json

    from benchmarks._util import RESULTS

    path = RESULTS / "ablation.json"
    try:
        other = json.loads(path.read_text())["config"]["train_config"]["total_steps"]
    except (OSError, KeyError, ValueError):
        return "(`ablation.json` not readable: its RL budget is not compared here.)"
    if int(other) == int(steps):
        return f"(`ablation.md` used the same {int(other):,} steps.)"
    return (f"(`ablation.md` used {int(other):,} steps; this run keeps `default_train_config()`'s "
            f"{int(steps):,}, so its RNA RL rows differ from `ablation.md`'s.)")


def best_vs_baselines(summary: pd.DataFrame, per_split: pd.DataFrame,
                      scores: pd.DataFrame | None = None) -> tuple[list[str], dict]:
    """The best method of a view (lowest mean held-out delta MSE) against each baseline.

    Paired over the (seed, fold) splits, 95% CI = mean ± 1.96 · sd / √n of the per-split
    differences, on delta MSE and on Pearson-Δ top-20 (with ``scores``, the Pearson-Δ comparison
    uses the held-out perturbations where both methods have one; no change has none). Baselines:
    no change, mean of training effects, linear, and network propagation where it runs.
    """
    from benchmarks.ablation import _direction, common_pearson

    mse = summary[("mse", "mean")].dropna()
    pear = summary[("pearson_delta_topk", "mean")]
    best = str(mse.idxmin())
    baselines = [m for m in (*SIMPLE, "network") if m in mse.index and m != best]
    facts: dict = {"best_by_mse": best, "vs": {}}
    lines = [f"Best method by mean held-out delta MSE: **{LABELS.get(best, best)}** "
             f"({mse[best]:.4f}; Pearson Δ top-20 {pear[best]:.3f})."]
    not_beaten = []
    for b in baselines:
        c_mse = paired(per_split, best, b, "mse")
        c_pear = paired(per_split, best, b, "pearson_delta_topk")
        if scores is not None and b != "no_change":
            per, frac = common_pearson(scores, best, b)
            if len(per):
                c_pear = {**paired(per, best, b, "pearson_delta_topk"),
                          "common_support_fraction": frac}
        w_mse, w_pear = _direction(c_mse, True), _direction(c_pear, False)
        facts["vs"][b] = {"mse": {**c_mse, "verdict": w_mse},
                          "pearson_delta_topk": {**c_pear, "verdict": w_pear}}
        not_beaten += [f"{LABELS[b]} on MSE ({w_mse})"] if w_mse != "better" else []
        not_beaten += ([f"{LABELS[b]} on Pearson-Δ top-20 ({w_pear})"]
                       if w_pear not in ("better", "undefined") else [])
        pear_txt = (f"Pearson-Δ top-20 paired {c_pear['mean_diff']:+.3f} (95% CI "
                    f"[{c_pear['ci95'][0]:+.3f}, {c_pear['ci95'][1]:+.3f}], {c_pear['n']} splits) "
                    f"→ {w_pear}" if c_pear["n"] else
                    "Pearson-Δ top-20 undefined (a constant zero prediction has none)")
        lines.append(
            f"{LABELS.get(best, best)} vs {LABELS[b]}: MSE {mse[best]:.4f} vs {mse[b]:.4f}, paired "
            f"{c_mse['mean_diff']:+.4f} (95% CI [{c_mse['ci95'][0]:+.4f}, "
            f"{c_mse['ci95'][1]:+.4f}], {c_mse['n']} splits) → {w_mse}; {pear_txt}.")
    facts["beats_every_baseline_on_both"] = not not_beaten
    facts["not_beaten"] = not_beaten
    lines.append(f"**{LABELS.get(best, best)} beats every baseline on both delta MSE and Pearson-Δ "
                 f"top-20 (paired 95% CI): {'yes' if not not_beaten else 'no'}**"
                 + (f" — it does not beat: {'; '.join(not_beaten)}." if not_beaten else "."))
    return lines, facts


def summary_json(summary: pd.DataFrame) -> dict:
    from benchmarks.ablation import TABLE_METRICS

    return {m: {k: {s: (None if pd.isna(v) else float(v)) for s, v in summary.loc[m, k].items()}
                for k, _ in TABLE_METRICS} | {"n_splits": int(summary.loc[m, "n_splits"].iloc[0]
                                                              if hasattr(summary.loc[m, "n_splits"], "iloc")
                                                              else summary.loc[m, "n_splits"])}
            for m in summary.index}


# ================================================================================== sci-CAR
def scicar_data(*, bin_size: int = 1_000_000, min_peaks: int = 5):
    """sci-CAR RNA (all genes) and ATAC aggregated into genomic bins, same cells.

    The 52,761 peaks carry coordinates only (``chrom-start-end``, no gene annotation ships with
    the file, and none is available offline), so peak → gene aggregation is not possible; peaks on
    chromosomes 1–22 and X are pooled into ``bin_size`` windows by their start and each window's
    value is ``log1p`` of the *sum* of its peaks' stored (normalised) values in the cell (a
    gene-activity-like score on the log scale of the RNA values); windows with fewer than
    ``min_peaks`` peaks are dropped. This keeps memory bounded (a sparse cells × peaks product).
    """
    import anndata as ad
    import scipy.sparse as sp

    rna = ad.read_h5ad(SCICAR["rna"])
    atac = ad.read_h5ad(SCICAR["atac"])
    if not rna.obs_names.equals(atac.obs_names):
        raise SystemExit("sci-CAR RNA and ATAC files do not hold the same cells in the same order.")
    parts = pd.Series(atac.var_names.astype(str)).str.split("-", expand=True)
    canonical = parts[0].isin([str(i) for i in range(1, 23)] + ["X"]).to_numpy()
    start = pd.to_numeric(parts[1], errors="coerce").fillna(-1).to_numpy()
    key = parts[0] + ":" + (start // bin_size).astype(int).astype(str)
    key = key.where(canonical & (start >= 0))
    counts = key.value_counts()
    keep_bins = counts.index[counts >= min_peaks]
    col = pd.Index(keep_bins).get_indexer(key)
    rows = np.flatnonzero(col >= 0)
    B = sp.csr_matrix((np.ones(len(rows)), (rows, col[rows])), shape=(atac.n_vars, len(keep_bins)))
    Xa = (sp.csr_matrix(atac.X, dtype=np.float64) @ B).tocsr()
    Xa.data = np.log1p(Xa.data)
    Xr = rna.X.toarray() if sp.issparse(rna.X) else np.asarray(rna.X)
    hours = pd.to_numeric(rna.obs["Time"].astype(str), errors="coerce").to_numpy()
    info = {"cells": int(rna.n_obs), "genes": int(rna.n_vars), "peaks": int(atac.n_vars),
            "peaks_binned": int(len(rows)), "bins": int(len(keep_bins)), "bin_size": bin_size,
            "min_peaks": min_peaks, "cells_per_hour": {int(h): int((hours == h).sum())
                                                        for h in np.unique(hours)}}
    return {"rna": np.asarray(Xr, np.float64), "atac": np.asarray(Xa.toarray(), np.float64)}, hours, info


SCICAR_METHODS = {"no_change": "no change (0 h)",
                  "mean_shift": "mean shift (mean training-time delta)",
                  "linear_time": "linear in time (training delta × t_held / t_train)",
                  "same_time_other_half": "reference: same time point, other half of cells"}


def scicar_scores(X: dict, hours: np.ndarray, *, seeds: int = 5, control: int = 0,
                  points: tuple[int, ...] = (1, 3)) -> pd.DataFrame:
    """Held-out time-point response per modality on sci-CAR.

    Per seed the cells of every time point are split at random into halves A and B. For each
    held-out time point ``h`` (the "fold"), predictors see only half A's cells of the *other*
    time points and 0 h; the observed delta is half B's ``mean(h) − mean(0 h)`` (disjoint cells,
    so a predictor shares no sampling noise with the truth). Predictors: no change; mean shift
    (mean of the training time points' deltas, the issue's "mean shift over the other time
    points"); linear in time (piecewise-linear through 0 h and the training time points,
    extrapolated beyond them; with one training time point, the training delta scaled by
    ``h / t``) — the time-point candidates of :data:`scagents.stimulation.TIME_CANDIDATES`,
    applied to half A's means.
    The reference row uses half A's cells *at h* — not a predictor (it sees the held-out time),
    it shows how far sampling noise alone puts two halves apart. Blocks: ``rna`` (all genes),
    ``atac`` (bins) and ``joint`` (the two deltas concatenated, raw values).
    """
    from scagents.stimulation import (
        LINEAR_TIME,
        MEAN_SHIFT,
        REFERENCE,
        TIME_CANDIDATES,
        ConditionMeans,
    )

    rows = []
    for seed in range(seeds):
        rng = np.random.default_rng(seed)
        halves = {"A": {}, "B": {}}
        for h in (control, *points):
            cells = rng.permutation(np.flatnonzero(hours == h))
            halves["A"][h], halves["B"][h] = cells[: len(cells) // 2], cells[len(cells) // 2:]
        for fold, h in enumerate(points):
            def delta(half: str, t: int, mods, halves=halves) -> np.ndarray:
                return np.concatenate([X[m][halves[half][t]].mean(axis=0)
                                       - X[m][halves[half][control]].mean(axis=0) for m in mods])

            for block, mods in (("rna", ("rna",)), ("atac", ("atac",)), ("joint", ("rna", "atac"))):
                obs = delta("B", h, mods)
                # half A's means in the layout of scagents.stimulation (one group per treated time
                # point, the held-out one's treated profile removed) and its time-point candidates
                ctrl = np.concatenate([X[m][halves["A"][control]].mean(axis=0) for m in mods])
                treated = np.stack([ctrl + delta("A", t, mods) for t in points])
                means = ConditionMeans(
                    groups=tuple(f"{t} h" for t in points),
                    genes=tuple(str(j) for j in range(len(ctrl))),
                    control=np.tile(ctrl, (len(points), 1)), treated=treated,
                    n_control=np.full(len(points), len(halves["A"][control])),
                    n_treated=np.array([len(halves["A"][t]) for t in points]),
                    hours=np.asarray(points, float) - control).without_treated(fold)
                train = [i for i in range(len(points)) if i != fold]
                preds = {key: TIME_CANDIDATES[name].fn(means, train, fold, None)
                         for key, name in (("no_change", REFERENCE), ("mean_shift", MEAN_SHIFT),
                                           ("linear_time", LINEAR_TIME))}
                preds["same_time_other_half"] = delta("A", h, mods)
                for method, pred in preds.items():
                    rows.append({"method": method, "seed": seed, "fold": fold, "held_out_h": h,
                                 "block": block, "perturbation": f"dexamethasone {h} h",
                                 **prediction_report(pred, obs, k=20)})
    return pd.DataFrame(rows)


# ================================================================================== main
def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seeds", type=int, default=5, help="twin seeds (0 … n-1)")
    ap.add_argument("--scicar-seeds", type=int, default=5, help="sci-CAR cell-split seeds")
    ap.add_argument("--folds", type=int, default=5)
    ap.add_argument("--max-folds", type=int, default=None,
                    help="run only the first N folds of each seed (every method, every view)")
    ap.add_argument("--views", default="rna,atac,joint,prot")
    ap.add_argument("--datasets", default="twin,scicar")
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--steps", type=int, default=None, help="override RL env steps (smoke only)")
    ap.add_argument("--quick", action="store_true", help="smoke: 1 seed × 1 fold, 2,048 steps")
    ap.add_argument("--name", default="ablation_modality")
    ap.add_argument("--render-glance", action="store_true",
                    help="(re)write the at-a-glance, sci-CAR and paper sections of "
                         "results/<name>.md from its JSON (no training; the sci-CAR tables from "
                         "its stored per-split rows)")
    args = ap.parse_args(argv)
    if args.render_glance:
        render_glance(args.name)
        render_paper(args.name)
        return 0
    import torch

    torch.set_num_threads(1)
    if args.quick:
        args.seeds, args.scicar_seeds, args.max_folds, args.steps = 1, 1, 1, 2_048
        if args.name == "ablation_modality":
            args.name = "ablation_modality_quick"
    rl = {} if args.steps is None else {"total_steps": args.steps}
    cfg = default_train_config("trpo_ppo", **rl)
    views = [v.strip() for v in args.views.split(",") if v.strip()]
    bad = sorted(set(views) - set(VIEWS))
    if bad:
        ap.error(f"--views takes {', '.join(VIEWS)}; got {bad}")
    datasets = [d.strip() for d in args.datasets.split(",") if d.strip()]
    n_run = args.folds if args.max_folds is None else min(args.folds, args.max_folds)
    command = "python benchmarks/modality.py " + " ".join(argv if argv is not None else sys.argv[1:])
    payload: dict = {"command": command.strip(), "config": {**vars(args), "train_config": vars(cfg)},
                     "twin": {}, "scicar": {}}
    md = ["# Ablation per modality (the paper's Tables I–III): RNA, ATAC, joint RNA + ATAC", "",
          f"Command: `{command.strip()}` (wall times are not speed figures; machine: at the end).", ""]
    t_all = time.perf_counter()
    load0 = os.getloadavg()[0]
    sc_md: list[str] = []
    if "scicar" in datasets:
        if not all(p.exists() for p in SCICAR.values()):
            sc_md = ["## sci-CAR", "", f"Skipped: {SCICAR['rna'].parent} lacks the sci-CAR files.", ""]
            payload["scicar"] = {"skipped": "files absent"}
        else:
            t0 = time.perf_counter()
            X, hours, info = scicar_data()
            sc = scicar_scores(X, hours, seeds=args.scicar_seeds)
            sc_md = scicar_markdown(sc, info, args.scicar_seeds)
            payload["scicar"] = {"data": info, "wall_s": time.perf_counter() - t0,
                                 "summary": {b: summary_json(summarize(sc[sc.block == b]
                                                                       .drop(columns="block")))
                                             for b in ("rna", "atac", "joint")},
                                 "rows": sc.round(6).to_dict(orient="records")}
    tail = sc_md + paper_section()
    if "twin" in datasets:
        t0 = time.perf_counter()
        tasks = twin_views()
        md += ["## Twin: held-out perturbations per modality", "",
               f"One twin simulation (`ResponseTask.from_twin('th', modalities=('rna', 'atac', 'prot'), "
               f"n_cells=256, keep_cells=True)`: {tasks['rna'].n_perturbations} perturbations — "
               "knockout and over-expression of each regulated gene), cut into views with "
               "`scagents.envs.modalities.modality_task`. Protocol of `ablation.md`: "
               f"{args.seeds} seeds × {n_run} folds of a {args.folds}-fold split over perturbations "
               + ("(full protocol)" if n_run == args.folds and args.seeds >= 5 else
                  f"(**reduced from 5 seeds × 5 folds** to seeds {list(range(args.seeds))}, folds "
                  f"{list(range(n_run))} to fit the time budget; 1-min load average {load0:.1f} at "
                  "the start)")
               + f" = {args.seeds * n_run} splits per method, the same splits for every method and "
               "view (a held-out perturbation is held out of every modality); mean ± sd over splits "
               "of per-split averages (R²: per-split median); paired comparisons per split.", "",
               "**What each view is.**", "",
               "* **RNA** (Table I): observation = the control cell's 23-gene RNA state + the "
               "perturbation encoding; action = predicted RNA delta.",
               "* **ATAC** (Table II): the 19 ATAC features are the accessibility of each regulated "
               "gene's promoter (its regulatory input f_g(x), `scagents.twin`), renamed to their gene "
               "(gene-level accessibility) so the encoding — a PCA gene embedding of the *training* "
               "ATAC deltas — and the linear model find the targets. No RNA enters this view.",
               "* **Joint** (Table III): observation = RNA *and* ATAC state (one "
               f"{'×'.join(map(str, cfg.branch_sizes))}-unit branch per observation block — RNA, ATAC, perturbation "
               f"context — then the shared {_sizes(cfg.hidden_sizes)} layers); action = the concatenated delta "
               "`[RNA Δ (23) | ATAC Δ (19)]`; the reward is the mean of the two modalities' MSEs "
               "(per-feature rewards weighted 1 / (2 · d_m)); the encoding comes from the RNA "
               "deltas. Scored on the concatenated 42-feature delta (the table), and per block "
               "(below it) to compare with Tables I and II. Baselines predict each block with the "
               "model fitted on that modality, concatenated.",
               "* **Protein** (extra): the 6 surface genes' activity, as ATAC.",
               "",
               f"RL: `default_train_config()` unchanged for PPO, TRPO and TRPO→PPO ({cfg.total_steps} "
               f"env steps, {cfg.n_envs} envs × {cfg.n_steps} steps, hidden {cfg.hidden_sizes} after "
               f"{cfg.branch_sizes[0]}-unit branches, lr {cfg.lr}, TRPO δ {cfg.delta}, per-gene "
               f"rewards {cfg.reward_components}, TRPO→PPO switch at {cfg.trpo_fraction:.0%}). "
               + ablation_steps_note(cfg.total_steps) + " Network propagation is "
               "run on RNA only: it propagates a forced change of the target gene's *expression* "
               "through a network inferred from expression; for ATAC / protein features a knockout "
               "does not force the feature itself, and the joint baseline would need an ATAC block.",
               "",
               "Combination (`scagents.combination.fit_combination`, the candidate the policy "
               "agent validates): non-negative per-gene stacking of base predictors, cross-fitted "
               "and shrinkage-chosen by inner folds over the *training* perturbations only (inner "
               "folds shuffled by the split's seed). Bases: RNA — mean effect, linear, network "
               "propagation (`COMBINATION_BASES`); ATAC and protein — mean effect and linear only, "
               "because network propagation does not apply there (above); joint — the RNA "
               "combination and the ATAC combination, each fitted on its own modality, "
               "concatenated (as the joint baselines).",
               ""]
        for view in views:
            task = tasks[view]
            jobs = [dict(method=m, seed=s, fold=f, n_folds=args.folds, rl=rl)
                    for s in range(args.seeds) for f in range(n_run) for m in methods_for(view)]
            tv = time.perf_counter()
            use_view_labels(view)
            scores = run_view(task, view, jobs, workers=args.workers)
            wall = time.perf_counter() - tv
            summary, per_split = view_block(scores, view)
            own = scores[scores["block"] == view].drop(columns="block")
            lines, facts = verdict(view, summary, per_split, scores=own)
            b_lines, facts["best_vs_baselines"] = best_vs_baselines(summary, per_split, own)
            lines = b_lines + lines
            block = {"task": repr(task), "wall_s": wall, "methods": methods_for(view),
                     "summary": summary_json(summary), "verdict": lines, "facts": facts,
                     "split_scores": scores.groupby(["block", "method", "seed", "fold"])
                     .mean(numeric_only=True).round(6).reset_index().to_dict(orient="records")}
            md += [f"### {VIEW_TITLES[view]}: {task!r}", "", markdown_table(summary), "",
                   "**Verdicts** (computed from the numbers above):", "",
                   *[f"- {line}" for line in lines], ""]
            if view == "joint":
                block["blocks"] = {}
                for b in task.modalities:
                    s_b, ps_b = view_block(scores, b)
                    block["blocks"][b] = {"summary": summary_json(s_b)}
                    md += [f"Joint model scored on its **{b.upper()} block** only "
                           f"({task.dims[b]} features):", "", markdown_table(s_b), ""]
                    if b in tables_done:
                        ref = tables_done[b]
                        cmp_lines = []
                        for m in ("trpo_ppo", "linear"):
                            if m in s_b.index and m in ref.index:
                                a = ps_b.loc[m, "mse"]
                                r = ref.loc[m, "mse"].reindex(a.index)
                                d = (a - r).dropna()
                                half = 1.96 * d.std(ddof=1) / np.sqrt(len(d)) if len(d) > 1 else np.nan
                                cmp_lines.append(
                                    f"{LABELS[m]}: joint-view {b.upper()} MSE − {b.upper()}-only MSE "
                                    f"{d.mean():+.4f} (95% CI [{d.mean() - half:+.4f}, "
                                    f"{d.mean() + half:+.4f}], {len(d)} splits)")
                        block["blocks"][b]["vs_single"] = cmp_lines
                        md += [f"- Joint vs {b.upper()}-only, paired per split: "
                               + "; ".join(cmp_lines) + ".", ""]
            md += [f"Wall time {wall:.0f} s.", ""]
            if view != "joint":
                tables_done[view] = per_split
            payload["twin"][view] = block
            print(markdown_table(summary), "\n", "\n".join(lines), flush=True)
            payload["wall_s"] = time.perf_counter() - t_all
            payload["views_done"] = list(payload["twin"])
            write_results(args.name, payload, "\n".join(md + tail) + "\n")     # partial file per view
        payload["twin_wall_s"] = time.perf_counter() - t0
    md = md[:4] + glance(payload) + md[4:] + sc_md + paper_section(payload)
    payload["wall_s"] = time.perf_counter() - t_all
    payload["load_average_1min"] = load_record(load0)
    md.append(f"Total wall time {payload['wall_s']:.0f} s. "
              + machine_line_of(payload["load_average_1min"]))
    write_results(args.name, payload, "\n".join(md) + "\n")
    return 0


GLANCE = "## Tables I–III at a glance"
GLANCE_COLS = [("mse", "MSE", 4), ("rmse", "RMSE", 4), ("mae", "MAE", 4), ("r2", "R² (median)", 3),
               ("pearson", "Pearson (all)", 3), ("pearson_delta_topk", "Pearson top-20", 3),
               ("direction_accuracy", "dir. acc", 3), ("direction_precision", "dir. prec", 3),
               ("direction_recall", "dir. rec", 3), ("direction_f1", "dir. F1", 3),
               ("direction_auprc", "dir. AUPRC", 3)]


def glance(payload: dict) -> list[str]:
    """The paper-style summary: per view, the best baseline (by MSE) and the three optimisers."""
    twin = payload.get("twin", {})
    if not twin:
        return []
    md = [GLANCE, "",
          "Means over the twin splits of each view (the full tables, with sd, are below). "
          "Best baseline = lowest mean delta MSE among no change, mean effect, linear (and network "
          "propagation for RNA). Joint is scored on the concatenated [RNA Δ | ATAC Δ]. "
          "Rendered from `ablation_modality.json` by `python benchmarks/modality.py "
          "--render-glance` (no number recomputed).", "",
          "| view | method | " + " | ".join(n for _, n, _ in GLANCE_COLS) + " |",
          "|---" * (len(GLANCE_COLS) + 2) + "|"]
    notes = []
    for view, block in twin.items():
        use_view_labels(view)
        summ, facts = block["summary"], block.get("facts", {})
        best = facts.get("best_baseline_by_mse")
        top = facts.get("best_vs_baselines", {}).get("best_by_mse")
        for m in dict.fromkeys([best, COMBINATION, *RL_METHODS, top]):
            if m is None or m not in summ:
                continue
            cells = []
            for k, _, nd in GLANCE_COLS:
                v = summ[m][k]["mean"]
                cells.append("n/a" if v is None else f"{v:.{nd}f}")
            name = LABELS.get(m, m) + (" (best baseline)" if m == best else "") + (
                " (best method)" if m == top else "")
            md.append(f"| {VIEW_TITLES[view].split(' — ')[-1]} | {name} | " + " | ".join(cells) + " |")
        bvb = facts.get("best_vs_baselines")
        if bvb:
            nb = bvb.get("not_beaten", [])
            notes.append(f"- {VIEW_TITLES[view]}: best method by mean MSE "
                         f"{LABELS.get(top, top)}; beats every baseline on both MSE and Pearson-Δ "
                         f"top-20 (paired 95% CI): {'yes' if not nb else 'no — not: ' + '; '.join(nb)}.")
        order = facts.get("pure_paper_order", {})
        vs = facts.get("pure_trpo_ppo_vs_best_baseline", {})
        if order or vs:
            lo, hi = (vs.get("ci95") or [None, None])
            notes.append(f"- {VIEW_TITLES[view]}: TRPO→PPO vs {LABELS.get(best, best)} on MSE: "
                         f"{vs.get('verdict', 'n/a')} (paired difference {_num(vs.get('mean_diff'))}, "
                         f"95% CI [{_num(lo)}, {_num(hi)}]); paper ordering TRPO→PPO > TRPO > PPO "
                         f"on mean MSE: {'holds' if order.get('holds_on_mean_mse') else 'does not hold'}"
                         f", with paired significance: {'yes' if order.get('holds_paired_ci95') else 'no'}.")
    asked = [v.strip() for v in str(payload.get("config", {}).get("views", "")).split(",")
             if v.strip()]
    missing = [v for v in asked if v not in twin]
    if missing:
        notes.append("- Not in this run's results: " + ", ".join(VIEW_TITLES.get(v, v)
                                                               for v in missing)
                     + " — the run was stopped before these views finished (time budget); "
                     "the views above are complete.")
    return md + [""] + notes + [""]


def _num(v) -> str:
    """A signed 4-decimal number, or ``nan`` for a missing (JSON null) value."""
    return "nan" if v is None or pd.isna(v) else f"{v:+.4f}"


def _sizes(hidden: tuple[int, ...]) -> str:
    """``2 × 256`` for equal layers, else ``(256, 128)``."""
    return f"{len(hidden)} × {hidden[0]}" if hidden and len(set(hidden)) == 1 else str(tuple(hidden))


def render_glance(name: str) -> int:
    """Insert (or replace) the at-a-glance section of ``results/<name>.md`` from its JSON."""
    import json

    from benchmarks._util import RESULTS
    from scagents._atomic import write_text

    js, mdp = RESULTS / f"{name}.json", RESULTS / f"{name}.md"
    if not js.exists() or not mdp.exists():
        raise SystemExit(f"{js} or {mdp} is missing; run the benchmark first.")
    text = mdp.read_text()
    section = "\n".join(glance(json.loads(js.read_text())))
    if GLANCE in text:
        start = text.index(GLANCE)
        end = text.index("\n## ", start + len(GLANCE))
        text = text[:start] + section + text[end + 1:]
    else:
        at = text.index("\n## ")
        text = text[:at + 1] + section + "\n" + text[at + 1:]
    write_text(mdp, text)
    print(section)
    return 0


tables_done: dict[str, pd.DataFrame] = {}
"""Per-split MSE / Pearson of the single-modality views already run (for the joint comparison)."""


def scicar_markdown(sc: pd.DataFrame, info: dict, seeds: int) -> list[str]:
    md = ["## sci-CAR (A549 + dexamethasone 0 / 1 / 3 h): held-out time point per modality", "",
          "**Why not the twin's protocol.** sci-CAR has one treatment and three time points, no "
          "genetic perturbation: there is nothing to split by perturbation, and a perturbation-"
          "conditioned policy trained on the one remaining training time point can at best "
          "reproduce that time point's delta (the mean shift), so no RL rows are run here; nor "
          "is the combination: it stacks base predictors by inner folds over at least "
          "4 training perturbations, and here there is one training time point "
          "(`trajectories.md` fits a policy to the measured time course by cell halves instead). "
          "What the structure allows: hold out a *time point* and predict its response (delta "
          "from 0 h) from the other one, per modality.", "",
          f"Data: {info['cells']} cells ({', '.join(f'{h} h: {n}' for h, n in info['cells_per_hour'].items())}), "
          f"RNA {info['genes']} genes (all, values as stored: normalised); ATAC {info['peaks']:,} "
          "peaks named only by coordinates (no peak → gene annotation ships with the file, and none "
          f"is reachable offline), so peaks on chromosomes 1–22 and X were pooled into "
          f"{info['bin_size'] // 1_000_000}-Mb genomic bins (log1p of the sum of the bin's stored peak values per cell; "
          f"bins with ≥ {info['min_peaks']} peaks): {info['peaks_binned']:,} peaks → "
          f"{info['bins']:,} bins (memory: one sparse cells × peaks product, never a dense peak "
          "matrix). Joint = the RNA and ATAC-bin deltas concatenated (raw values, "
          f"{info['genes'] + info['bins']:,} features).", "",
          f"Protocol: {seeds} seeds; per seed the cells of each time point are split at random into "
          "halves A and B; folds = the held-out time point (1 h or 3 h); predictors see half A of "
          "0 h and of the other time point only; truth = half B's mean(h) − mean(0 h). "
          f"{seeds} × 2 = {2 * seeds} splits, one held-out condition each (so sd is over splits and "
          "mixes the two time points). Direction metrics use the library's threshold |Δ| > 0.05 "
          "(`scagents.metrics.DEFAULT_DIRECTION_EPS`).", ""]
    cols = [("pearson_delta_topk", "Pearson Δ top-20"), ("mse", "MSE Δ"), ("rmse", "RMSE Δ"),
            ("mae", "MAE Δ"), ("r2", "R² Δ"), ("pearson", "Pearson Δ (all)"),
            ("direction_accuracy", "dir. acc"), ("direction_precision", "dir. prec"),
            ("direction_recall", "dir. rec"), ("direction_f1", "dir. F1"),
            ("direction_auprc", "dir. AUPRC")]
    for block, title in (("rna", "RNA"), ("atac", "ATAC (1-Mb bins)"), ("joint", "joint RNA + ATAC")):
        s = sc[sc.block == block]
        g = s.groupby("method")[[c for c, _ in cols]]
        mean, sd = g.mean(), g.std(ddof=1)
        md += [f"### sci-CAR {title}", "", "| method | " + " | ".join(n for _, n in cols) + " |",
               "|---" * (len(cols) + 1) + "|"]
        for m in SCICAR_METHODS:
            if m in mean.index:
                md.append(f"| {SCICAR_METHODS[m]} | " + " | ".join(
                    f"{mean.loc[m, c]:.4g} ± {sd.loc[m, c]:.2g}" if c in ("mse", "rmse", "mae")
                    else f"{mean.loc[m, c]:.3f} ± {sd.loc[m, c]:.3f}" for c, _ in cols) + " |")
        ps = s.set_index(["method", "seed", "fold"]).sort_index()
        cmp = paired(ps, "linear_time", "mean_shift", "mse")
        cmp2 = paired(ps, "mean_shift", "no_change", "mse")
        by_h = s.groupby(["held_out_h", "method"])["mse"].mean().unstack()
        md += ["", f"- Mean shift vs no change (MSE, paired over {cmp2['n']} splits): "
               f"{cmp2['mean_diff']:+.4f} (95% CI [{cmp2['ci95'][0]:+.4f}, {cmp2['ci95'][1]:+.4f}]); "
               f"linear in time vs mean shift: {cmp['mean_diff']:+.4f} (95% CI "
               f"[{cmp['ci95'][0]:+.4f}, {cmp['ci95'][1]:+.4f}]).",
               "- MSE by held-out time point: " + "; ".join(
                   f"{h} h: " + ", ".join(f"{m} {by_h.loc[h, m]:.4f}" for m in SCICAR_METHODS
                                          if m in by_h.columns) for h in by_h.index) + ".", ""]
    return md


PAPER_SOURCE = {
    "repository": "boabangf/GNN_RL_gene_trajectory_perturbation",
    "path": "Multi-Step Differentiation Experiment/Escaping_Local_Optima_in_the_Waddington_Landscape"
            "__A_Multi_Stage_TRPO_PPO_Approach_for_Single_Cell_Perturbation_Analysis.pdf",
    "file_last_changed": "2025-10-12, commit c79f3eb",
    "header": "Submitted to IEEE Transactions on Computational Biology and Bioinformatics",
}
"""Where :data:`PAPER_TABLES` were read: the authors' manuscript PDF in their public repository
(two days before arXiv v1 of 2510.13018, 2025-10-14; its abstract is v1's)."""
PAPER_KEYS = ("direction_accuracy", "direction_precision", "direction_recall", "direction_f1",
              "direction_auprc", "mse", "rmse", "mae", "r2", "pearson")
PAPER_TABLES: dict[str, dict] = {
    # view: (the manuscript's table number and title, {method: values in PAPER_KEYS order})
    "rna": {"table": "Table II", "title": "PPO and TRPO PPO on the RNA single-cell data set",
            "rows": {"ppo": (0.575, 0.5892, 0.575, 0.5739, 0.5863, 0.6756, 0.8169, 0.7563, -0.1147,
                             0.5275),
                     "trpo_ppo": (0.5938, 0.6095, 0.5938, 0.5878, 0.6001, 0.6714, 0.8165, 0.7560,
                                  -0.1017, 0.5506)}},
    "atac": {"table": "Table III", "title": "algorithms on the ATAC single-cell test data set",
             "rows": {"ppo": (0.6083, 0.6436, 0.6083, 0.6033, 0.5930, 0.6704, 0.8148, 0.7500,
                              0.2546, 0.6405),
                      "trpo_ppo": (0.6521, 0.6798, 0.6521, 0.6510, 0.6356, 0.6638, 0.8111, 0.7444,
                                   0.2418, 0.6475)}},
    "joint": {"table": "Table I", "title": "algorithms on the joint (RNA and ATAC) test data set",
              "rows": {"ppo": (0.6281, 0.6577, 0.6281, 0.6283, 0.6095, 0.6044, 0.7755, 0.7004,
                               0.1741, 0.6388),
                       "trpo_ppo": (0.6661, 0.6940, 0.6661, 0.6675, 0.6428, 0.5948, 0.7672,
                                    0.6935, 0.1948, 0.6495)}},
}
"""The manuscript's Tables I–III as printed (one run each; no TRPO-alone row, no baseline, no
spread). Its Table I is the joint data, II RNA, III ATAC."""


def paper_section(payload: dict | None = None) -> list[str]:
    """The paper's Tables I–III beside this run's rows (from ``payload``, the results JSON; every
    sentence about this run is computed from it)."""
    src = PAPER_SOURCE
    md = ["## The paper's Tables I–III beside these", "",
          "**Source.** The arXiv pages of 2510.13018 that the project's search tool holds (v2 HTML, "
          "abstract page, v1 mirrors and summaries) show only the abstract and opening, never the "
          "tables. The numbers below were read from the authors' manuscript PDF in their public "
          f"repository `{src['repository']}`, file `{src['path']}` (last changed "
          f"{src['file_last_changed']}; two days before arXiv v1; header \"{src['header']}\"; "
          "same title and abstract as v1). That they equal arXiv v1's printed tables could not be "
          "checked. In that manuscript **Table I is the joint RNA + ATAC data, Table II RNA, "
          "Table III ATAC**; each has only PPO and TRPO→PPO rows (no TRPO alone, no baseline), one "
          "run each with no spread; MSE … Pearson are on the *final expression* (not the change "
          "from control); its precision and recall are class-weighted (recall equals accuracy in "
          "every row). The same repository's result CSVs "
          "(`policy_optimization_results_testing_overall_metrics_{rna,atac,all}.csv`) hold other, "
          "much better numbers (TRPO→PPO accuracy 0.90, MSE 0.066–0.091) that match no table of "
          "the manuscript; they are not used here.", "",
          "**Why the numbers cannot be compared directly.** Different data (theirs: an environment "
          "that simulates CRISPR perturbations of single cells, RNA and ATAC; ours: the Th twin's "
          "knockouts and over-expressions), different splits, and different targets: their MSE is on predicted "
          "expression, ours on the predicted *change*; our direction metrics are three-class "
          "accuracy and macro precision / recall / F1 over up and down at |Δ| > 0.05, AUPRC of "
          "ranking by |Δ|. What can be compared is the *ordering*: does TRPO→PPO beat PPO, and by "
          "how much relative to the run-to-run spread?", ""]
    twin = (payload or {}).get("twin", {})
    head = ("| view | source | method | acc | prec | rec | F1 | AUPRC | MSE | RMSE | MAE | R² "
            "| Pearson |")
    md += [head, "|---" * 13 + "|"]
    sentences = []
    for view in ("rna", "atac", "joint"):
        paper = PAPER_TABLES[view]
        use_view_labels(view)
        for m, vals in paper["rows"].items():
            md.append(f"| {VIEW_TITLES[view].split(' — ')[-1]} | paper {paper['table']} | "
                      f"{LABELS[m]} | " + " | ".join(f"{v:.4f}" for v in vals) + " |")
        block = twin.get(view)
        if not block:
            sentences.append(f"- {VIEW_TITLES[view]}: this run has no {view} rows.")
            continue
        summ, facts = block["summary"], block.get("facts", {})
        top = facts.get("best_vs_baselines", {}).get("best_by_mse")
        for m in dict.fromkeys(["ppo", "trpo_ppo", top]):
            if m is None or m not in summ:
                continue
            cells = ["n/a" if summ[m][k]["mean"] is None else f"{summ[m][k]['mean']:.4f}"
                     for k in PAPER_KEYS]
            tag = " (best by MSE)" if m == top and m not in ("ppo", "trpo_ppo") else ""
            md.append(f"| {VIEW_TITLES[view].split(' — ')[-1]} | this run, mean of "
                      f"{summ[m]['n_splits']} splits | {LABELS.get(m, m)}{tag} | "
                      + " | ".join(cells) + " |")
        pr = paper["rows"]
        d_paper = pr["trpo_ppo"][5] - pr["ppo"][5]
        rel_paper = d_paper / pr["ppo"][5]
        c = facts.get("pure_paper_order", {}).get("trpo_ppo_minus_ppo")
        ours = ""
        if c and c.get("n"):
            lo, hi = c["ci95"]
            word = ("better, significant" if hi < 0 else "worse, significant" if lo > 0
                    else "no significant difference")
            mppo = summ["ppo"]["mse"]["mean"]
            ours = (f"this run: paired TRPO→PPO − PPO {c['mean_diff']:+.4f} "
                    f"({100 * c['mean_diff'] / mppo:+.1f} % of PPO's MSE; 95% CI [{lo:+.4f}, "
                    f"{hi:+.4f}], {c['n']} splits) → {word}")
        sentences.append(
            f"- {VIEW_TITLES[view]} (paper {paper['table']}): paper TRPO→PPO − PPO MSE "
            f"{d_paper:+.4f} ({100 * rel_paper:+.1f} % of PPO's; one run each, no spread, so no "
            f"test is possible); {ours or 'this run: no paired comparison'}"
            + (f"; best method of this run by MSE: {LABELS.get(top, top)}" if top else "") + ".")
    md += ["", *sentences, ""]
    return md


def _replace_section(text: str, title: str, section: str) -> str:
    """``text`` with its ``title`` section (up to the next ``## `` heading or the closing "Total
    wall time" line) replaced by ``section`` (appended when absent)."""
    if title not in text:
        return text.rstrip("\n") + "\n\n" + section
    start = text.index(title)
    ends = [i for i in (text.find("\n## ", start + len(title)),
                        text.find("\nTotal wall time", start)) if i >= 0]
    end = min(ends) if ends else len(text)
    return text[:start] + section.rstrip("\n") + "\n" + text[end:]


def render_paper(name: str) -> None:
    """Re-render the sci-CAR sections and the paper section of ``results/<name>.md`` from its
    JSON (no number recomputed)."""
    import json

    from benchmarks._util import RESULTS
    from scagents._atomic import write_text

    js, mdp = RESULTS / f"{name}.json", RESULTS / f"{name}.md"
    payload = json.loads(js.read_text())
    text = mdp.read_text()
    sc = payload.get("scicar", {})
    if "rows" in sc:
        section = "\n".join(scicar_markdown(pd.DataFrame(sc["rows"]), sc["data"],
                                            int(payload["config"]["scicar_seeds"])))
        first = "## sci-CAR (A549 + dexamethasone 0 / 1 / 3 h)"
        if first in text:   # the sci-CAR block: its "## " section and its "### " subsections
            start = text.index(first)
            end = text.index("\n## ", start + len(first))
            text = text[:start] + section.rstrip("\n") + "\n" + text[end:]
    text = _replace_section(text, "## The paper's Tables I–III beside these",
                            "\n".join(paper_section(payload)))
    write_text(mdp, text)

if __name__ == "__main__":
    raise SystemExit(main())
