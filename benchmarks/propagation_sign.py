"""Network propagation: the ridge coefficients' own signs vs the drawn edges' signs (held-out perturbations).

``scagents.grn.infer_network`` signs its edges by Spearman correlation (``sign_from="spearman"``), but the
network-propagation baseline (:func:`scagents.evaluation.fit_network_baseline`) propagates the ridge
coefficients, whose sign (a partial effect, the other regulators held fixed) can differ from the drawn
edge's. This benchmark scores the two on the same splits:

``coef``
    the current propagation: the ridge coefficients in expression units as fitted
    (``network_matrix(adata, signs="coef")``);
``edges``
    the candidate: ``|ridge coefficient|`` x the edge table's sign (``signs="edges"``), everything else
    identical (same network, cells, α, regulators, 3 steps, same forced change).

Protocol (``benchmarks/ablation.py``'s for the ``network`` row, its task building :func:`load_task` and
its splits ``ResponseTask.split``): k-fold over perturbations (5 folds), seeds 0–4 reshuffle the folds,
the network is inferred from the training fold's cells only, every held-out perturbation is scored on
its delta with :func:`scagents.metrics.prediction_report`; per split the mean over its held-out
perturbations; on the twin and on Papalexi.

Pre-registered rule (written before any run): the candidate ``edges`` replaces ``coef`` as the
propagation only if, **on the twin and on Papalexi**, (1) the 95 % t interval (n − 1 degrees of freedom,
over the paired (seed, fold) splits) of the paired difference MSE(edges) − MSE(coef) lies entirely
below 0, and (2) Pearson-Δ top-20 is not lower: the 95 % t interval of the paired difference
Pearson(edges) − Pearson(coef) does not lie entirely below 0 (splits where either is undefined are
left out of that pair). Otherwise the ridge signs stay. Also reported (not part of the rule): how many
of each training network's edges have a coefficient whose sign is opposite to the edge's.

Usage::

    nice -n 10 python benchmarks/propagation_sign.py          # 5 seeds x 5 folds, twin + Papalexi
    python benchmarks/propagation_sign.py --seeds 1 --max-folds 1 --datasets twin   # smoke
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._util import load_record, machine_line_of, write_results  # noqa: E402
from benchmarks.ablation import load_task  # noqa: E402

VARIANTS: tuple[str, ...] = ("coef", "edges")
"""``signs=`` of :func:`scagents.evaluation.fit_network_baseline`: the current one first, then the candidate."""
LABELS = {"coef": "ridge coefficients' signs (current)", "edges": "abs(coef) × drawn edge sign (candidate)"}


def score_split(task, *, seed: int, fold: int, n_folds: int, k: int = 20) -> tuple[pd.DataFrame, dict]:
    """Both variants fitted on one training fold and scored on its held-out perturbations (one row
    per variant and perturbation), and the sign counts of the fold's network."""
    from scagents.evaluation import _score_rows, fit_network_baseline

    train_task, test_task = task.split(n_folds=n_folds, fold=fold, seed=seed)
    mod = task.embedding_modality
    rows, counts = [], {}
    for variant in VARIANTS:
        t0 = time.perf_counter()
        predict = fit_network_baseline(train_task, signs=variant)
        meta = {"variant": variant, "seed": int(seed), "fold": int(fold),
                "train_time_s": time.perf_counter() - t0}
        rows += _score_rows(lambda i, f=predict: f(test_task.perturbations[i]), test_task, mod, k, meta)
        counts = dict(predict.sign_agreement)  # the same network for both variants
    return pd.DataFrame(rows), {"seed": int(seed), "fold": int(fold), **counts}


def t_interval(d: np.ndarray) -> dict:
    """Mean, sd and 95 % t interval (n − 1 df) of paired differences ``d`` (NaN dropped)."""
    from scipy.stats import t

    d = np.asarray(d, dtype=float)
    d = d[np.isfinite(d)]
    n = len(d)
    mean = float(d.mean()) if n else float("nan")
    sd = float(d.std(ddof=1)) if n > 1 else float("nan")
    half = float(t.ppf(0.975, n - 1) * sd / np.sqrt(n)) if n > 1 else float("nan")
    return {"mean_diff": mean, "sd_diff": sd, "n": n, "ci95": [mean - half, mean + half],
            "frac_candidate_better": float(np.mean(d < 0)) if n else float("nan")}


def compare(scores: pd.DataFrame) -> dict:
    """Per-split means of both variants and the paired differences ``edges − coef``."""
    per = scores.groupby(["variant", "seed", "fold"])[["mse", "pearson_delta_topk"]].mean()
    a, b = per.loc["edges"], per.loc["coef"]
    mse = t_interval((a["mse"] - b["mse"]).to_numpy())
    pear = t_interval((a["pearson_delta_topk"] - b["pearson_delta_topk"]).to_numpy())
    pear["frac_candidate_better"] = float(np.mean(
        ((a["pearson_delta_topk"] - b["pearson_delta_topk"]).dropna() > 0).to_numpy()))
    means = {v: {m: {"mean": float(per.loc[v][m].mean()), "sd": float(per.loc[v][m].std(ddof=1))}
                 for m in ("mse", "pearson_delta_topk")} for v in VARIANTS}
    passes = {"mse_lower": bool(mse["ci95"][1] < 0),
              "pearson_not_lower": bool(not (pear["ci95"][1] < 0))}
    return {"per_variant": means, "paired_mse": mse, "paired_pearson_delta_topk": pear,
            "passes": passes, "n_splits": int(len(a))}


def ablation_check(name: str, current: dict) -> str:
    """One sentence comparing the current variant with the ``network`` row of ``results/ablation.json`` (same
    protocol and splits: the means should agree), '' when that file or row is absent."""
    import json

    from benchmarks._util import RESULTS

    path = RESULTS / "ablation.json"
    if not path.exists():
        return ""
    row = json.loads(path.read_text()).get("datasets", {}).get(name, {}).get("summary", {}).get("network")
    if not row:
        return ""
    dm = abs(current["mse"]["mean"] - row["mse"]["mean"])
    dp = abs(current["pearson_delta_topk"]["mean"] - row["pearson_delta_topk"]["mean"])
    return (f"Check: the current variant's means differ from the network row of `results/ablation.json` "
            f"(MSE {row['mse']['mean']:.5f}, Pearson-Δ top-20 {row['pearson_delta_topk']['mean']:.3f}) by "
            f"{dm:.1e} and {dp:.1e}.")


def main(argv: list[str] | None = None) -> int:
    import os

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--folds", type=int, default=5)
    ap.add_argument("--max-folds", type=int, default=None, help="run only the first N folds (smoke)")
    ap.add_argument("--datasets", default="twin,papalexi")
    ap.add_argument("--name", default="propagation_sign")
    args = ap.parse_args(argv)
    command = "python benchmarks/propagation_sign.py " + " ".join(argv if argv is not None else sys.argv[1:])
    load0 = os.getloadavg()[0]
    t_all = time.perf_counter()
    payload: dict = {"command": command.strip(), "config": vars(args), "datasets": {}}
    md = ["# Network propagation: ridge coefficients' signs vs drawn edge signs (held-out perturbations)", "",
          f"Command: `{command.strip()}`.", "",
          "`fit_network_baseline(signs=\"coef\")` propagates the ridge coefficients as fitted (the current "
          "propagation); `signs=\"edges\"` propagates |ridge coefficient| x the sign of the edge the network "
          "table draws (Spearman by default), everything else identical. Protocol of `benchmarks/ablation.py`'s "
          "network row (its `load_task` and splits): k-fold over perturbations, each seed reshuffles the folds, "
          "the network is inferred from the training fold's cells only; per split the mean over its held-out "
          "perturbations; differences are candidate − current, paired per (seed, fold), 95 % t intervals.", "",
          "Pre-registered rule (written before the run): the candidate replaces the current propagation only if on "
          "the twin and on Papalexi the 95 % t interval of the paired MSE difference lies below 0 and the one of "
          "the paired Pearson-Δ top-20 difference does not lie below 0.", ""]
    verdicts = {}
    for name in [d.strip() for d in args.datasets.split(",") if d.strip()]:
        task, why = load_task(name)
        if task is None:
            md += [f"## {name}", "", f"Skipped: {why}.", ""]
            payload["datasets"][name] = {"skipped": why}
            verdicts[name] = None
            continue
        n_run = args.folds if args.max_folds is None else min(args.folds, args.max_folds)
        t0 = time.perf_counter()
        frames, counts = [], []
        for s in range(args.seeds):
            for f in range(n_run):
                df, c = score_split(task, seed=s, fold=f, n_folds=args.folds)
                frames.append(df)
                counts.append(c)
                print(f"[{name}] seed={s} fold={f} ({time.perf_counter() - t0:.0f}s)", flush=True)
        scores = pd.concat(frames, ignore_index=True)
        cmp = compare(scores)
        cnt = pd.DataFrame(counts)
        frac = cnt["n_opposite"] / cnt["n_with_coef"].clip(lower=1)
        wall = time.perf_counter() - t0
        ok = cmp["passes"]["mse_lower"] and cmp["passes"]["pearson_not_lower"]
        verdicts[name] = ok
        payload["datasets"][name] = {
            "task": repr(task), "seeds": args.seeds, "folds_run": list(range(n_run)), "n_folds": args.folds,
            "wall_s": wall, **cmp, "sign_counts": counts,
            "split_scores": scores.groupby(["variant", "seed", "fold"]).mean(numeric_only=True).round(6)
            .reset_index().to_dict(orient="records")}
        pm, pp = cmp["paired_mse"], cmp["paired_pearson_delta_topk"]
        pv = cmp["per_variant"]
        check = ablation_check(name, pv["coef"])
        md += [f"## {name}: {task!r}", "",
               f"{args.seeds} seeds x {n_run} folds of a {args.folds}-fold split: {cmp['n_splits']} paired splits.", "",
               "| propagation | MSE Δ (mean ± sd over splits) | Pearson-Δ top-20 |", "|---|---|---|",
               *[f"| {LABELS[v]} | {pv[v]['mse']['mean']:.5f} ± {pv[v]['mse']['sd']:.5f} | "
                 f"{pv[v]['pearson_delta_topk']['mean']:.3f} ± {pv[v]['pearson_delta_topk']['sd']:.3f} |"
                 for v in VARIANTS], "",
               f"- Paired MSE difference (candidate − current): {pm['mean_diff']:+.5f} (95 % t interval "
               f"[{pm['ci95'][0]:+.5f}, {pm['ci95'][1]:+.5f}], {pm['n']} splits; candidate lower in "
               f"{pm['frac_candidate_better']:.0%} of them) → {'below 0' if cmp['passes']['mse_lower'] else 'not below 0'}.",
               f"- Paired Pearson-Δ top-20 difference: {pp['mean_diff']:+.4f} (95 % t interval "
               f"[{pp['ci95'][0]:+.4f}, {pp['ci95'][1]:+.4f}], {pp['n']} splits with both defined; candidate higher "
               f"in {pp['frac_candidate_better']:.0%}) → "
               f"{'not lower' if cmp['passes']['pearson_not_lower'] else 'lower'}.",
               f"- Training networks: {int(cnt['n_edges'].median())} edges (median over splits), "
               f"{int(cnt['n_with_coef'].median())} with a coefficient; the coefficient's sign is opposite to the "
               f"drawn edge's on a median {int(cnt['n_opposite'].median())} of them ({frac.median():.1%}; range "
               f"{int(cnt['n_opposite'].min())}–{int(cnt['n_opposite'].max())}).",
               *([f"- {check}"] if check else []),
               f"- Rule on {name}: {'passed' if ok else 'not passed'}.", "",
               f"Wall time {wall:.0f} s.", ""]
        payload["wall_s"] = time.perf_counter() - t_all
        write_results(args.name, payload, "\n".join(md) + "\n")
    run = [v for v in verdicts.values() if v is not None]
    both = len(verdicts) == 2 and len(run) == 2
    decision = ("the candidate replaces the ridge-signed propagation" if both and all(run) else
                "the ridge-signed propagation stays" + ("" if both else " (not every data set was run)"))
    payload["decision"] = decision
    payload["wall_s"] = time.perf_counter() - t_all
    payload["load_average_1min"] = load_record(load0)
    md += [f"**Decision by the pre-registered rule: {decision}** "
           f"({', '.join(f'{k}: ' + ('skipped' if v is None else 'passed' if v else 'not passed') for k, v in verdicts.items())}).",
           "", f"Total wall time {payload['wall_s']:.0f} s. {machine_line_of(payload['load_average_1min'])}"]
    write_results(args.name, payload, "\n".join(md) + "\n")
    print("\n".join(md), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
