"""Validation means per label or per gene, on Papalexi with several labels per target.

The policy's gate (:func:`scagents.agents.policy.compare_to_baseline`), the choice of the best
baseline and the reported validation scores average each target gene set's labels first, then the
genes (session 14), as the paired standard error already did; before, they averaged the labels, so a
gene measured under four guides weighed four times a gene measured under one. This script measures
what that changes on real data.

Data: Papalexi et al. 2021 (``/work/shared/data/perturbseq/papalexi2021_thp1_ifng_crispr.h5ad``,
25 targets, four guides each, ``obs['top_grna']``) relabelled two ways, written to a temporary
folder (never into the repository):

* ``promoter``: each target's cells split into ``GENE_P1`` (guides 1-2) and ``GENE_P2`` (guides
  3-4), as a CRISPRi library labels promoters (``STAT2_P1`` / ``STAT2_P2``);
* ``guide``: every guide its own label (``STAT1g1`` … ``STAT1g4``), as ``obs['top_grna']`` holds;
* ``mixed``: the targets in alphabetical order alternately split into ``GENE_P1`` / ``GENE_P2``
  (as ``promoter``) and kept as one label (``GENE``) — constructed, as a CRISPRi library where
  only some genes have two promoters: genes with one and with two labels side by side.

When every gene has the same number of labels the two averages are equal (each label weighs
1 / (genes × labels) either way); they differ only where genes have different numbers of labels.

For each seed the user's path runs (:func:`scagents.api.run`, goal ``predict STAT1 knockout``,
default options: data, network, policy with its retrains, fallback, report). Every policy attempt's
validation rows (one per validation label, every candidate) are recorded as the agent scored them,
and the decision is computed both ways on the same rows: per label (the code before session 14:
means over labels, paired s.e. over genes) and per gene (the agent's rule now). The target-direction
check of the goal itself (``answering_rule``'s ``wrong_targets``) is not part of either.

Usage::

    python benchmarks/units_papalexi.py                  # seeds 0-2, both labellings
    python benchmarks/units_papalexi.py --seeds 0 --variants promoter
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._util import load_record, write_results  # noqa: E402

DATA = Path("/work/shared/data/perturbseq/papalexi2021_thp1_ifng_crispr.h5ad")
GOAL = "predict STAT1 knockout"
VARIANTS = ("promoter", "guide", "mixed")
CHECKS = {"mse": "≥ 5 % lower MSE", "paired": "paired improvement > 1 s.e.",
          "pearson": "Pearson-delta not worse", "targets": "targets' own direction not worse"}


def relabel(src: Path, dst: Path, how: str) -> dict:
    """Write ``src`` with its targets' cells labelled per promoter pair or per guide."""
    import anndata as ad

    a = ad.read_h5ad(src)
    pert = a.obs["perturbation"].astype(str).to_numpy()
    guide = a.obs["top_grna"].astype(str)
    num = guide.str.extract(r"g(\d+)$")[0].astype(float).to_numpy()
    ctrl = pert == "non-targeting"
    if how in ("promoter", "mixed"):
        lab = np.array([f"{p}_P{1 if n <= 2 else 2}" for p, n in zip(pert, num, strict=True)], dtype=object)
        if how == "mixed":
            whole = set(sorted(set(pert[~ctrl]))[1::2])      # every other target: one label
            lab = np.where(np.isin(pert, list(whole)), pert, lab)
    else:
        lab = guide.to_numpy(dtype=object)
    a.obs["perturbation"] = np.where(ctrl, "non-targeting", lab)
    a.write_h5ad(dst)
    targeted = pd.Series(a.obs["perturbation"][~ctrl])
    return {"labels": int(targeted.nunique()), "targets": int(pd.Series(pert[~ctrl]).nunique())}


def label_compare(rows: dict[str, pd.DataFrame], *, policy: str, baselines: list[str],
                  min_improvement: float) -> dict:
    """The decision as before session 14: best baseline, relative MSE and Pearson-delta over
    labels; the paired mean and s.e. over genes (session 13)."""
    best = min(baselines, key=lambda k: (float(rows[k]["mse"].mean()), k))
    pol, base = rows[policy], rows[best].reindex(rows[policy].index)
    rel = 1.0 - float(pol["mse"].mean()) / max(float(base["mse"].mean()), 1e-12)
    diff = (pol["mse"] - base["mse"]).groupby(pol["target_group"].to_numpy(), sort=False).mean()
    mean, se = float(diff.mean()), float(diff.std(ddof=1) / np.sqrt(len(diff)))
    both = pol["pearson_delta_topk"].notna() & base["pearson_delta_topk"].notna()
    p_pol = float(pol.loc[both, "pearson_delta_topk"].mean())
    p_base = float(base.loc[both, "pearson_delta_topk"].mean())
    checks = {"mse": rel >= min_improvement, "paired": bool(mean < -se),
              "pearson": bool(np.isnan(p_base) or p_pol >= p_base)}
    if pol["target_direction"].notna().any():
        t_base = (float(np.nanmean(base["target_direction"]))
                  if base["target_direction"].notna().any() else float("nan"))
        checks["targets"] = bool(np.isnan(t_base) or float(np.nanmean(pol["target_direction"])) >= t_base)
    return {"best": best, "rel": rel, "paired_mean": mean, "paired_se": se,
            "pearson": [p_pol, p_base], "checks": checks, "validated": all(checks.values())}


def unit_compare(rows: dict[str, pd.DataFrame], *, policy: str, baselines: list[str],
                 min_improvement: float) -> dict:
    """The agent's decision now (:func:`scagents.agents.policy.compare_to_baseline`)."""
    from scagents.agents.policy import compare_to_baseline

    v = compare_to_baseline(rows, policy=policy, baselines=baselines,
                            min_improvement=min_improvement)
    names = {"mse": f"≥ {100 * min_improvement:.0f} % lower MSE",
             "paired": "paired improvement > 1 s.e.", "pearson": "Pearson-delta not worse",
             "targets": "targets' own direction not worse"}
    return {"best": v.best_baseline, "rel": v.relative_improvement, "paired_mean": v.paired_mean,
            "paired_se": v.paired_se, "pearson": list(v.pearson_pair),
            "checks": {k: v.checks[n] for k, n in names.items() if n in v.checks},
            "validated": v.validated, "n_units": v.n_units, "n_labels": v.n_rows}


def run_one(path: Path, seed: int, out: Path) -> dict:
    """The user's path on ``path``; every policy attempt's validation rows, decided both ways."""
    from scagents.agents import policy as pol_mod
    from scagents.api import run
    from scagents.perturbation import unit_mean

    attempts: list[dict] = []
    original = pol_mod._validate

    def spy(ctx, models):
        rows, validation = original(ctx, models)
        if pol_mod.POLICY in rows:
            opt = ctx.opts
            names = list(ctx.baselines)
            sizes = sorted((len(g) for g in ctx.val_groups), reverse=True)
            attempts.append({
                "counted": ctx.n_val, "labels": list(ctx.val_labels), "labels_per_unit": sizes,
                "per_label": label_compare(rows, policy=pol_mod.POLICY, baselines=names,
                                           min_improvement=opt.min_improvement),
                "per_gene": unit_compare(rows, policy=pol_mod.POLICY, baselines=names,
                                         min_improvement=opt.min_improvement),
                "mse_per_label": {k: float(r["mse"].mean()) for k, r in rows.items()},
                "mse_per_gene": {k: unit_mean(r["mse"], r["target_group"]) for k, r in rows.items()},
                "fallback_per_label": min(names, key=lambda k: (float(rows[k]["mse"].mean()), k)),
                "fallback_per_gene": min(names, key=lambda k: (unit_mean(rows[k]["mse"],
                                                                          rows[k]["target_group"]), k)),
            })
        return rows, validation

    pol_mod._validate = spy
    try:
        start = time.perf_counter()
        res = run(str(path), GOAL, seed=seed, out=out)
        wall = time.perf_counter() - start
    finally:
        pol_mod._validate = original
    return {"seed": seed, "wall_s": round(wall, 1), "answered_by": res.method,
            "status": res.status, "attempts": attempts}


def _fmt(x: float) -> str:
    return f"{x:.4g}"


def render(payload: dict) -> str:
    lines = ["# Validation means per label vs per gene (Papalexi, several labels per target)", "",
             f"Command: `{payload['command']}`", "",
             "Every policy attempt of the user's path (`scagents.api.run`, goal "
             f"`{GOAL}`, default options) decided two ways on the same validation rows: "
             "**per label** (before session 14: the best baseline, the relative MSE and the "
             "Pearson-delta averaged over labels, the paired s.e. over genes) and **per gene** "
             "(now: every mean over genes, each gene's labels averaged first).", ""]
    for variant, info in payload["variants"].items():
        lines += [f"## {variant}: {info['labels']} labels of {info['targets']} targets", "",
                  "| seed | attempt | validation (labels per gene) | best baseline (label / gene) | policy MSE (label / gene) "
                  "| best baseline MSE (label / gene) | rel. improvement (label / gene) | Pearson-Δ policy vs baseline (label / gene) "
                  "| validated (label / gene) | run answered by |",
                  "|---|---|---|---|---|---|---|---|---|---|"]
        for r in info["runs"]:
            for i, a in enumerate(r["attempts"], 1):
                lab, gen = a["per_label"], a["per_gene"]
                pol = "TRPO→PPO policy"
                lines.append(
                    f"| {r['seed']} | {i} | {a['counted']} ({', '.join(map(str, a['labels_per_unit']))}) | "
                    f"{lab['best']} / {gen['best']} | "
                    f"{_fmt(a['mse_per_label'][pol])} / {_fmt(a['mse_per_gene'][pol])} | "
                    f"{_fmt(a['mse_per_label'][lab['best']])} / {_fmt(a['mse_per_gene'][gen['best']])} | "
                    f"{100 * lab['rel']:+.1f} % / {100 * gen['rel']:+.1f} % | "
                    f"{lab['pearson'][0]:.3f} vs {lab['pearson'][1]:.3f} / "
                    f"{gen['pearson'][0]:.3f} vs {gen['pearson'][1]:.3f} | "
                    f"{'yes' if lab['validated'] else 'no'} / {'yes' if gen['validated'] else 'no'} | "
                    f"{r['answered_by']} |")
        lines.append("")
        atts = [a for r in info["runs"] for a in r["attempts"]]
        changed = sum(a["per_label"]["validated"] != a["per_gene"]["validated"] for a in atts)
        best = sum(a["per_label"]["best"] != a["per_gene"]["best"] for a in atts)
        fb = sum(a["fallback_per_label"] != a["fallback_per_gene"] for a in atts)
        gaps = [abs(a["mse_per_label"][k] - a["mse_per_gene"][k]) / a["mse_per_label"][k]
                for a in atts for k in a["mse_per_label"] if a["mse_per_label"][k] > 0]
        unequal = sum(len(set(a["labels_per_unit"])) > 1 for a in atts)
        flips = {c: sum(a["per_label"]["checks"].get(c) != a["per_gene"]["checks"].get(c) for a in atts)
                 for c in ("mse", "paired", "pearson", "targets")}
        flipped = ", ".join(f"{CHECKS[c]} in {n}" for c, n in flips.items() if n)
        lines += [f"Over {len(atts)} policy attempts ({unequal} with validation genes of different "
                  f"label counts): the gate's decision changes in {changed}, the best "
                  f"baseline in {best}, the fallback's choice in {fb}; a single check changes: "
                  f"{flipped or 'none'}; a model's mean validation MSE "
                  f"moves by at most {100 * max(gaps):.2f} % (median {100 * float(np.median(gaps)):.2f} %) "
                  "between the two averages.", ""]
        mse_rows = [(r["seed"], i, k, a["mse_per_label"][k], a["mse_per_gene"][k])
                    for r in info["runs"] for i, a in enumerate(r["attempts"], 1)
                    for k in a["mse_per_label"]]
        lines += ["| seed | attempt | model | validation MSE per label | per gene |", "|---|---|---|---|---|"]
        lines += [f"| {sd} | {i} | {k} | {_fmt(x)} | {_fmt(y)} |" for sd, i, k, x, y in mse_rows]
        lines.append("")
    lines += [f"Wall {payload['wall_s']:.0f} s; load {payload['load']['start']:.1f} → "
              f"{payload['load']['end']:.1f} on {payload['load']['cpus']} CPUs (nice "
              f"{payload['load']['nice']}).", ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--variants", nargs="+", choices=VARIANTS, default=list(VARIANTS))
    ap.add_argument("--render", action="store_true", help="rewrite the .md from the stored .json")
    args = ap.parse_args(argv)
    if args.render:
        import json

        from benchmarks._util import RESULTS

        payload = json.loads((RESULTS / "units_papalexi.json").read_text())
        (RESULTS / "units_papalexi.md").write_text(render(payload))
        return
    if not DATA.exists():
        sys.exit(f"{DATA} is absent: nothing to measure.")
    load0, start = os.getloadavg()[0], time.perf_counter()
    variants = {}
    with tempfile.TemporaryDirectory() as tmp:
        for how in args.variants:
            path = Path(tmp) / f"papalexi_{how}.h5ad"
            info = relabel(DATA, path, how)
            info["runs"] = [run_one(path, s, Path(tmp) / f"run_{how}_{s}") for s in args.seeds]
            variants[how] = info
            print(how, [(r["seed"], r["answered_by"]) for r in info["runs"]], flush=True)
    payload = {"command": "python benchmarks/units_papalexi.py " + " ".join(sys.argv[1:] if argv is None else argv),
               "goal": GOAL, "variants": variants, "wall_s": time.perf_counter() - start,
               "load": load_record(load0)}
    js, md = write_results("units_papalexi", payload, render(payload))
    print(md.read_text())


if __name__ == "__main__":
    main()
