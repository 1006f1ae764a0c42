"""Twin evidence: is a knocked-out gene's own change significant at the default cell count, and is
a silent model always answered "no detectable effect"?

Models: every shipped model (``scagents.twin.list_models()``) in its own milieu, and the shared
Boolean models (``../shared/data/grn/boolean_models``: the four CellCollective ``.bnet`` files and
BEELINE's GSD / mCAD with their initial-condition files) in the milieu given in :data:`MILIEU`.
The ``.bnet`` files declare no milieu, so each one is also run *silent* (its inputs at their
default 0), the case of issue 14.

For each model, milieu and seed: control cells and the knockout of every non-input gene are
simulated with ``RunOptions().n_cells`` cells per condition (the ``run`` default). For each
knockout:

* **own change significant**: the target's change of mean log-normalised expression is negative
  with Welch-test BH-adjusted p < 0.05 (``scagents.data.pseudobulk.gene_effects``, as the run's twin
  truth);
* **evidence**: the check ``run`` uses on the twin — :func:`scagents.evidence.noise_floor` on the
  cells, confirmed in an independent replicate simulation (seed ``+ REPLICATE_SEED_OFFSET``) —
  finds some gene above the noise ("detectable") or none ("no detectable effect").

A knockout can only change a gene that is expressed: genes whose mean control activity is below
``ACTIVE`` (0.1, :data:`scagents.twin.milieu.EXPRESSED_ACTIVITY`) are reported apart. For them
``run`` explains the answer (:func:`scagents.twin.milieu.target_expression`, the same call as the
data agent's): the target is not expressed under this milieu, and these milieus of the model's
inputs express it. The benchmark counts, among those knockouts, the ones whose own change does not
clear the noise *and* carry that explanation (what ``run`` shows as "Why:"), the ones whose whole
answer is "no detectable effect" (no gene clears), and the ones for which the scan found a milieu
that expresses the gene. Expressed genes whose knockout is *not* significant are listed.

Usage::

    python benchmarks/twin_evidence.py            # 2 seeds (~12 min on a loaded machine)
    python benchmarks/twin_evidence.py --seeds 1  # quick
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._util import load_record, machine_line_of, write_results  # noqa: E402

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data" / "grn" / "boolean_models"
ACTIVE = 0.1
"""Mean control activity from which a gene counts as expressed (its knockout can change it); the
same as :data:`scagents.twin.milieu.EXPRESSED_ACTIVITY`, the threshold of ``run``'s explanation."""

MILIEU: dict[str, dict] = {
    "Th_differentiation_Mendoza2006.bnet": {
        "inputs": {"TCR": 1.0, "IL12": 1.0},
        "why": "activated T cell in a Th1-polarising milieu (TCR and IL-12 on; Mendoza & "
               "Xenarios 2006 list IL-12 as the Th1 input)"},
    "CD4_T_cell_differentiation.bnet": {
        "inputs": {"TCR": 1.0, "IL12": 1.0},
        "why": "activated CD4 T cell under IL-12 (Th1 condition of the model's publication)"},
    "lymphoid_myeloid_specification.bnet": {
        "inputs": {"Il7": 1.0}, "initial_all": 0.5,
        "why": "IL-7 on (lymphoid milieu); every gene starts at 0.5 ± 0.05 (an uncommitted "
               "progenitor: from all-off the model stays silent even with IL-7)"},
    "mammalian_cell_cycle.bnet": {
        "inputs": {"EGF": 1.0}, "why": "growth-factor (EGF) stimulated cells"},
    "GSD.txt": {"inputs": {}, "why": "BEELINE's initial conditions (GSD_ics.txt: UGR on)"},
    "mCAD.txt": {"inputs": {}, "why": "BEELINE's initial conditions (mCAD_ics.txt: Fgf8 on)"},
}
"""The milieu chosen for each shared model (inputs, and initial states where needed) — chosen
here from the models' publications, not declared by the files themselves."""


def _simulate(net, genes, *, n_cells, seed, inputs):
    from scagents.data import lognormalize
    from scagents.perturbation import Perturbation
    from scagents.twin import simulate

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", UserWarning)
        md = simulate(net, perturbations=[None, *[Perturbation((g,)) for g in genes]],
                      n_cells=n_cells, seed=seed, modalities=["rna"], inputs=inputs or None)
    silent = any("all-off" in str(w.message) for w in caught)
    rna = md["rna"]
    lognormalize(rna)
    x = rna.layers["lognorm"]
    x = np.asarray(x.toarray() if hasattr(x, "toarray") else x, dtype=np.float64)
    act = np.asarray(rna.layers["activity"], dtype=np.float64)
    return x, act, rna.obs["perturbation"].astype(str).to_numpy(), list(rna.var_names), silent


def knockouts(net, *, n_cells: int, seed: int, inputs: dict | None) -> pd.DataFrame:
    """Simulate control + every non-input gene's knockout (and a replicate with another seed);
    one row per knockout."""
    from scagents.data.pseudobulk import gene_effects
    from scagents.evidence import REPLICATE_SEED_OFFSET, noise_floor
    from scagents.twin.milieu import scan_milieus, target_expression

    genes = [g for g in net.genes if g not in net.inputs]
    x, act, lab, names, silent = _simulate(net, genes, n_cells=n_cells, seed=seed, inputs=inputs)
    ctrl_act = {g: float(act[lab == "control", names.index(g)].mean()) for g in genes}
    scan = (scan_milieus(net, inputs=inputs, seed=seed)
            if net.inputs and min(ctrl_act.values(), default=1.0) < ACTIVE else None)
    x2, _, lab2, _, _ = _simulate(net, genes, n_cells=n_cells,
                                  seed=seed + REPLICATE_SEED_OFFSET, inputs=inputs)
    ctrl, ctrl2 = lab == "control", lab2 == "control"
    rows = []
    for g in genes:
        sel = lab == g
        eff = gene_effects(x[ctrl], x[sel], names)
        floor = noise_floor(x[ctrl], x[sel], names, min_effect=0.01, seed=seed)
        again = noise_floor(x2[ctrl2], x2[lab2 == g], names, min_effect=0.01, seed=seed)
        clears = floor["clears"] & again["clears"]
        why = target_expression(net, g, control_activity=ctrl_act[g], inputs=inputs, scan=scan)
        rows.append({"gene": g, "control_activity": ctrl_act[g],
                     "delta": float(eff.loc[g, "delta"]), "padj": float(eff.loc[g, "padj"]),
                     "significant": bool(eff.loc[g, "delta"] < 0 and eff.loc[g, "padj"] < 0.05),
                     "detectable": bool(clears.any()),
                     "detectable_single": bool(floor["clears"].any()),
                     "target_clears": bool(clears[g]), "silent": silent,
                     # run's "Why:" (policy._with_target_expression): off and not clearing
                     "explained": bool(not why["expressed"] and not clears[g]
                                       and why["sentence"]),
                     "switch_on_found": bool(why["switch_on"]),
                     "why": why["sentence"]})
    return pd.DataFrame(rows)


def summarise(df: pd.DataFrame) -> dict:
    active = df[df["control_activity"] >= ACTIVE]
    inactive = df[df["control_activity"] < ACTIVE]

    def frac(s: pd.Series) -> float | None:
        return None if len(s) == 0 else round(float(s.mean()), 4)

    return {"n_genes": len(df), "n_active": len(active),
            "significant_all": frac(df["significant"]),
            "significant_active": frac(active["significant"]),
            "detectable_active": frac(active["detectable"]),
            "no_effect_inactive": frac(~inactive["detectable"]),
            "n_inactive": len(inactive),
            "target_no_effect_inactive": frac(~inactive["target_clears"]),
            "explained_inactive": frac(inactive["explained"]),
            "switch_on_inactive": frac(inactive["switch_on_found"]),
            "inactive_target_clears": sorted(set(inactive.loc[inactive["target_clears"],
                                                              "gene"])),
            "no_effect_all": frac(~df["detectable"]),
            "no_effect_all_single": frac(~df["detectable_single"]),
            "failures_active": active.loc[~active["significant"], "gene"].tolist(),
            "silent": bool(df["silent"].any())}


def cases() -> list[tuple[str, str, object, dict | None, str]]:
    """(model, milieu name, network, inputs, description) of every benchmark case."""
    from scagents.twin import list_models, load_model

    out = []
    for name in list_models():
        out.append((name, "model's own", load_model(name), None, "the shipped model's milieu"))
    if not SHARED.is_dir():
        return out
    for fname, spec in MILIEU.items():
        path = SHARED / fname
        if not path.is_file():
            continue
        net = load_model(path)
        if spec.get("initial_all") is not None:
            net.initial_state = {g: spec["initial_all"] for g in net.genes if g not in net.inputs}
        out.append((fname, "chosen milieu", net, spec["inputs"], spec["why"]))
        if fname.endswith(".bnet"):
            out.append((fname, "silent (file defaults)", load_model(path), None,
                        "inputs and initial states at the file's defaults (0)"))
    return out


def main(argv: list[str] | None = None) -> int:
    from scagents.agents.state import RunOptions

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seeds", type=int, default=2)
    ap.add_argument("--n-cells", type=int, default=None,
                    help="cells per condition (default: the run default, RunOptions().n_cells)")
    args = ap.parse_args(argv)
    n_cells = args.n_cells or RunOptions.model_fields["n_cells"].default
    t0 = time.perf_counter()
    load0 = os.getloadavg()[0]
    results, rows_md = [], []

    def write(done: bool) -> list[str]:
        wall = time.perf_counter() - t0
        load = load_record(load0)
        live = [r for r in results if r["pooled"]["n_active"]]
        dead = [r for r in results if r["milieu"].startswith("silent")]
        n_act = sum(r["pooled"]["n_active"] for r in live)
        n_sig = sum(round(r["pooled"]["significant_active"] * r["pooled"]["n_active"]) for r in live)
        n_sil = sum(r["pooled"]["n_genes"] for r in dead)
        n_noeff = sum(round(r["pooled"]["no_effect_all"] * r["pooled"]["n_genes"]) for r in dead)
        n_single = sum(round(r["pooled"]["no_effect_all_single"] * r["pooled"]["n_genes"])
                       for r in dead)

        def count(key: str) -> int:
            return sum(round((r["pooled"][key] or 0) * r["pooled"]["n_inactive"]) for r in results)

        n_off = sum(r["pooled"]["n_inactive"] for r in results)
        n_expl, n_own, n_none, n_on = (count("explained_inactive"),
                                       count("target_no_effect_inactive"),
                                       count("no_effect_inactive"), count("switch_on_inactive"))
        fails = [f"{g} ({r['model']}, {r['milieu']})" for r in live
                 for g in sorted(set(r["pooled"]["failures_active"]))]
        clears_off = [f"{g} ({r['model']}, {r['milieu']})" for r in results
                      for g in r["pooled"]["inactive_target_clears"]]

        kos = [k for r in results for k in r["knockouts"] if k["control_activity"] < ACTIVE]
        quiet = [k["control_activity"] for k in kos if not k["target_clears"]]
        loud = [k["control_activity"] for k in kos if k["target_clears"]]
        overlap = ("" if not quiet or not loud else
                   f"Their mean control activity ({min(loud):.3f}–{max(loud):.3f}) "
                   + ("overlaps" if min(loud) <= max(quiet) else "lies above")
                   + f" that of the unexpressed genes whose change does not clear "
                     f"({min(quiet):.3f}–{max(quiet):.3f})"
                   + (": no activity threshold separates them, so `run` decides from the "
                      "measured change, not from the activity alone." if min(loud) <= max(quiet)
                      else "."))

        def pc(a: int, b: int) -> str:
            return f"{a} of {b} ({100 * a / max(b, 1):.1f} %)"
        headline = [
            f"Knockouts of active genes (mean control activity ≥ {ACTIVE}) whose own change is "
            f"significant (down, BH padj < 0.05) at the default {n_cells} cells: {n_sig} of {n_act} "
            f"({100 * n_sig / max(n_act, 1):.1f} %) over {len(live)} model/milieu cases with active "
            f"genes × {args.seeds} seeds (target 100 %).",
            f"Silent models (the .bnet files at their defaults): {n_noeff} of {n_sil} knockouts "
            f"({100 * n_noeff / max(n_sil, 1):.1f} %) answered \"no detectable effect\" by the "
            f"evidence check over {len(dead)} cases × {args.seeds} seeds (target 100 %); with the "
            f"run's cells alone (no replicate) {n_single} of {n_sil} "
            f"({100 * n_single / max(n_sil, 1):.1f} %).",
            "Expressed genes whose knockout is NOT significant: "
            + (", ".join(fails) if fails else "none") + ".",
            f"Knockouts of genes NOT expressed in the milieu (mean control activity < {ACTIVE}), "
            f"every case incl. the silent ones: {n_off} (model × milieu × seed × gene). Their own "
            f"change does not clear the noise for {pc(n_own, n_off)}; those answers carry the "
            f"explanation (\"not expressed under this milieu\" + the milieus of the inputs that "
            f"express it, the data agent's `target_expression`) in {pc(n_expl, n_own)} (target "
            f"100 %); a milieu of the model's inputs expressing the gene was found for "
            f"{pc(n_on, n_off)} (the rest: no input combination checked expresses it, or the model "
            f"has no inputs — the answer then says so); whole answer \"no detectable effect\" (no "
            f"gene clears at all): {pc(n_none, n_off)}.",
            f"The other {n_off - n_own} unexpressed knockouts are weakly or transiently expressed "
            "genes (mean activity along the trajectories below the threshold, yet the knockout "
            "changes them detectably): their own change clears the noise, so `run` reports that "
            "effect and no \"not expressed\" explanation. " + overlap + " They are: "
            + (", ".join(clears_off) if clears_off else "none") + "."]
        command = "python benchmarks/twin_evidence.py " + " ".join(argv if argv is not None
                                                                    else sys.argv[1:])
        md = ["# Twin evidence: knockouts at the default cell count, silent models", "",
              f"Command: `{command.strip()}`; {args.seeds} seeds; {n_cells} cells per condition "
              f"(`RunOptions().n_cells`). Wall time {wall:.0f} s"
          + ("." if done else " (partial: the run was still going).") + " " + machine_line_of(load), "",
              *[f"- {h}" for h in headline], "",
              "Columns: *active* = knocked-out genes whose mean control activity is ≥ "
              f"{ACTIVE} (mean per seed); *significant* = the target's own change is down with Welch BH "
              "padj < 0.05; *detectable* = the evidence check (`scagents.evidence.noise_floor`, "
              "bootstrap over cells, BH 5 %, confirmed in a replicate simulation with another seed, "
              "as `run` does on the twin) finds some gene above the noise; *silent* = every control "
              "cell ends all-off (the run's warning; cells sampled along the trajectories can still "
              "carry a transient); *no effect (inactive)* = "
              "knockouts of inactive genes answered \"no detectable effect\"; *no effect (silent)* = "
              "the same over every knockout of a silent model.", "",
              "*explained (inactive)* = knockouts of unexpressed genes whose own change does not "
              "clear the noise and whose answer carries the \"not expressed under this milieu\" "
              "explanation; *switch-on found* = the scan of the model's input combinations found a "
              "milieu expressing the gene.", "",
              "| model | milieu | silent | genes | active | significant (active) | detectable (active) "
              "| significant (all) | no effect (inactive) | no effect (silent) | explained (inactive) "
              "| switch-on found (inactive) | active failures |",
              "|---|---|---|---|---|---|---|---|---|---|---|---|---|", *rows_md, "",
              "Milieu of the shared models (chosen here from their publications; the files declare "
              "none):", "",
              *[f"- {r['model']} ({r['milieu']}): {r['why']}" for r in results], "",
              "One explanation per case, as `run` writes it under \"Why:\" (seed 0):", "",
              *[f"- {r['model']} ({r['milieu']}), {ex['gene']} knockout: {ex['why']}"
                for r in results for ex in [next((k for k in r["knockouts"]
                                                   if k["explained"]), None)] if ex], ""]
        write_results("twin_evidence", {"command": command, "n_cells": n_cells, "seeds": args.seeds,
                                        "active_threshold": ACTIVE, "headline": headline,
                                        "wall_s": wall, "load_average_1min": load,
                                        "results": results}, "\n".join(md))
        return md

    for model, milieu, net, inputs, why in cases():
        frames = [knockouts(net, n_cells=n_cells, seed=s, inputs=inputs)
                  for s in range(args.seeds)]
        per_seed = [summarise(f) for f in frames]
        allf = pd.concat([f.assign(seed=s) for s, f in enumerate(frames)], ignore_index=True)
        tot = summarise(allf)
        results.append({"model": model, "milieu": milieu, "inputs": inputs or {},
                        "why": why, "pooled": tot, "per_seed": per_seed,
                        "knockouts": allf.round(5).to_dict(orient="records")})
        print(model, milieu, tot, flush=True)
        write(False)

        def pct(v):
            return "—" if v is None else f"{100 * v:.0f} %"
        rows_md.append(
            f"| {model} | {milieu}{' (inputs ' + ', '.join(f'{k}={v:g}' for k, v in inputs.items()) + ')' if inputs else ''} "
            f"| {'yes' if tot['silent'] else 'no'} | {tot['n_genes'] // args.seeds} "
            f"| {tot['n_active'] / args.seeds:.1f} | {pct(tot['significant_active'])} "
            f"| {pct(tot['detectable_active'])} | {pct(tot['significant_all'])} "
            f"| {pct(tot['no_effect_inactive'])} | {pct(tot['no_effect_all'] if tot['silent'] else None)} "
            f"| {pct(tot['explained_inactive'])} | {pct(tot['switch_on_inactive'])} "
            f"| {', '.join(sorted(set(tot['failures_active']))) or '—'} |")
    print("\n".join(write(True)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
