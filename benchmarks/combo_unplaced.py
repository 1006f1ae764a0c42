"""Twin: a double knockout whose second target cannot be placed by the models — answer or additive?

The situation of Papalexi "STAT1 and IRF1 knockout" (IRF1's knockout cells are measured, but IRF1 is
not among the genes worked on, so no model can place it and the answer is in effect the mean
training effect), reproduced on the embedded twin, where the simulated pair is the truth.

Protocol, fixed before running (commit of this script, before its first run):

- pairs: the first 8 of the 10 pairs of ``benchmarks/combo_additive.py`` (its 5 ``th`` regulators
  with the most edges to other non-input genes, in ``itertools.combinations`` order); in each pair
  ``A+B`` the second target ``B`` is removed from the genes worked on (the data agent's gene
  selection, :func:`scagents.data.genes.select_genes`, returns it without ``B``: no column in the
  task, no gene embedding, no network node), while ``B``'s knockout cells stay in the data — the
  mechanism that leaves a target unplaced;
- seeds 0, 1, 2 (24 runs); each run is ``scagents.api.run(goal="predict A and B knockout",
  seed=S)``, the CLI's code path with its defaults, in this process;
- per run, scored with the report's own twin check (:func:`scagents.agents.report.twin_check`)
  against the twin's simulation of the pair (``twin_truth.csv``): MSE over the responding genes and
  Pearson-delta over the top-20 simulated DE genes (20 capped at the responding genes: 19 on
  ``th``), as ``benchmarks/combo_additive.py`` scores them (its ``paired`` statistics reused);
  ``B``'s own change is predicted by neither candidate (0 for both);
- candidates: ``answer`` — the agent's answer (``prediction.csv`` column ``delta``; a version that
  replaces the answer keeps the model's own in ``model_delta``, read when present) — and
  ``additive`` — the sum of the measured single effects (column ``additive_delta``); whether the
  answer is flagged as the mean training effect (:func:`scagents.agents.policy.generic_answer`,
  its value in the run's final answer) is recorded;
- decision. R1 (the rule asked for: answer with the additive reference when the answer is generic
  and every target's single is measured) is adopted only if at least 8 runs are flagged generic
  and, over them, the additive reference has the lower MSE (answer − additive median > 0) with a
  paired Wilcoxon signed-rank two-sided p < 0.05; with fewer than 8 flagged runs R1 is not judged
  (not adopted). R2 (the broader trigger: a goal's target is not among the genes worked on and
  every target's single is measured) is adopted only if, over all runs of the default arm, the
  same holds with p < 0.025 (0.05 / 2 tests); if R2 is adopted it is implemented (it covers R1),
  else R1 if adopted, else nothing changes. Pearson-delta is reported, not decisive. No other rule
  is scored.

Amendment (second commit, before the second arm's first run; the first arm had finished 3 runs,
none flagged generic: with network propagation among the candidates the stacked combination
answers, and network propagation of the placed target alone is not the mean effect). A second arm,
``skip_network`` — the same 24 runs with ``skip_network=True`` (the CLI's ``--skip-network``): every
candidate except the policy then answers an unplaced target with the mean training effect, the state
of the Papalexi answer (the linear model answering with the mean). R1 is judged over the runs flagged
generic in both arms together; R2 over all runs of the default arm, as above. The arms are cached
apart (``results/combo_unplaced_runs.jsonl`` and ``results/combo_unplaced_skip_network_runs.jsonl``).

Before this commit, two pilot runs checked only that the mechanism takes effect (the gene is left
out of ``genes_used.csv`` and the network): IFNAR1+IFNG seed 0 (not a benchmark pair) and GATA3+STAT1
seed 0 (a benchmark pair; its printed headline showed the answering method, the stacked combination,
and its sign agreement with the simulation — not the additive reference's scores).

Each finished run is cached in ``results/combo_unplaced_runs.jsonl`` so an interrupted benchmark
resumes. Usage::

    nice -n 10 python benchmarks/combo_unplaced.py [--seeds 0,1,2] [--n-pairs 8]
        [--arms network,skip_network]
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _util import RESULTS, write_results  # noqa: E402
from combo_additive import paired, regulators, stats_table  # noqa: E402

NAME = "combo_unplaced"
ARMS = ("network", "skip_network")
"""Arms: the CLI defaults, and the same with ``skip_network=True``."""


def cache(arm: str) -> Path:
    """The cached runs of one arm."""
    return RESULTS / (f"{NAME}_runs.jsonl" if arm == "network" else f"{NAME}_{arm}_runs.jsonl")
METRICS = ("mse", "pearson_delta_top20")
MIN_GENERIC = 8
ALPHA = {"R1": 0.05, "R2": 0.025}
LINEAR = "linear gene embedding"


def _drop_from_selection(gene: str):
    """Patch :func:`scagents.data.genes.select_genes` to leave ``gene`` out; returns the undo."""
    import scagents.data.genes as genes_mod

    original = genes_mod.select_genes

    def select_without(adata, **kw):
        table = original(adata, **kw)
        return table.drop(index=[gene], errors="ignore")

    genes_mod.select_genes = select_without
    return lambda: setattr(genes_mod, "select_genes", original)


def _record_generic():
    """Patch :func:`scagents.agents.policy.generic_answer` to record its last value."""
    import scagents.agents.policy as pol

    original, seen = pol.generic_answer, []

    def recording(*args, **kw):
        out = original(*args, **kw)
        seen.append(out)
        return out

    pol.generic_answer = recording
    return seen, lambda: setattr(pol, "generic_answer", original)


def one_run(a: str, b: str, seed: int, arm: str = "network") -> dict:
    """One agent run on the twin with ``b`` left out of the genes worked on; both candidates' scores."""
    import pandas as pd

    from scagents import api
    from scagents.agents.report import twin_check

    row: dict = {"pair": f"{a}+{b}", "unplaced": b, "seed": seed, "arm": arm}
    undo_sel = _drop_from_selection(b)
    seen, undo_gen = _record_generic()
    t0 = time.perf_counter()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            out = Path(tmp) / "run"
            try:
                res = api.run(goal=f"predict {a} and {b} knockout", seed=seed, out=out, quiet=True,
                              skip_network=arm == "skip_network")
            except Exception as exc:  # noqa: BLE001 - recorded, the benchmark goes on
                row["error"] = f"{type(exc).__name__}: {exc}"[-500:]
                return row
            pred = pd.read_csv(out / "prediction.csv", index_col="gene")
            truth = pd.read_csv(out / "twin_truth.csv", index_col=0)
            genes_used = pd.read_csv(out / "genes_used.csv", index_col=0).index.astype(str)
            row["b_in_genes_used"] = bool(b in set(genes_used))
            row["method"] = res.method
            row["status"] = res.status
            row["generic"] = seen[-1] if seen else None
            if "additive_delta" not in pred:
                row["error"] = "no additive reference in the prediction file"
                return row
            model = pred["model_delta"] if "model_delta" in pred else pred["delta"]
            for name, delta in (("answer", model), ("additive", pred["additive_delta"])):
                tc = twin_check(delta, truth, label=f"{a}+{b} knockout")
                k = tc["k"]
                row["k"] = k
                row[f"{name}_mse"] = tc["metrics"]["mse"]
                row[f"{name}_pearson_delta_top20"] = tc["metrics"][f"pearson_delta_top{k}"]
    finally:
        undo_sel()
        undo_gen()
        row["wall_s"] = round(time.perf_counter() - t0, 1)
    return row


def decide(stats: dict[str, dict], n_generic: int) -> dict:
    """The pre-registered decision from the MSE statistics (see the module docstring): R1 over
    ``stats["generic"]`` (both arms), R2 over ``stats["network"]`` (the default arm)."""
    out = {}
    for rule, key in (("R1", "generic"), ("R2", "network")):
        s = stats[key]["mse"]
        if rule == "R1" and n_generic < MIN_GENERIC:
            out[rule] = {"adopted": False, "judged": False,
                         "why": f"{n_generic} runs flagged generic, fewer than {MIN_GENERIC}"}
            continue
        ok = bool(s.get("n") and s["diff_median"] > 0 and s["wilcoxon_p"] < ALPHA[rule])
        out[rule] = {"adopted": ok, "judged": True,
                     "why": (f"over {s.get('n', 0)} runs: answer − additive MSE median "
                             f"{s.get('diff_median', float('nan')):+.4f}, Wilcoxon p "
                             f"{s.get('wilcoxon_p', float('nan')):.3g} (needs median > 0 and "
                             f"p < {ALPHA[rule]})")}
    out["implemented"] = "R2" if out["R2"]["adopted"] else ("R1" if out["R1"]["adopted"] else None)
    return out


def _stats(rows: list[dict]) -> dict:
    return {"mse": paired(rows, "mse", lower_better=True),
            "pearson_delta_top20": paired(rows, "pearson_delta_top20", lower_better=False)}


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--n-pairs", type=int, default=8)
    ap.add_argument("--arms", default=",".join(ARMS),
                    help="arms to run (the results always summarise every cached arm)")
    ap.add_argument("--summarise-only", action="store_true",
                    help="write the results from the cached runs, starting no new one")
    args = ap.parse_args(argv)
    seeds = [int(s) for s in args.seeds.split(",")]
    run_arms = [a for a in args.arms.split(",") if a]
    regs = regulators(5)
    pairs = list(itertools.combinations(regs, 2))[:args.n_pairs]
    done: dict[tuple[str, str, int], dict] = {}
    for arm in ARMS:
        if cache(arm).exists():
            for line in cache(arm).read_text().splitlines():
                r = json.loads(line)
                done[(arm, r["pair"], r["seed"])] = {"arm": arm, **r}
    RESULTS.mkdir(parents=True, exist_ok=True)
    t_start = time.process_time()
    for arm in run_arms:
        for seed in seeds:  # every pair at seed 0 first: a cut-short run still covers the pairs
            for a, b in pairs:
                if (arm, f"{a}+{b}", seed) in done or args.summarise_only:
                    continue
                row = one_run(a, b, seed, arm)
                done[(arm, row["pair"], seed)] = row
                with cache(arm).open("a") as fh:
                    fh.write(json.dumps(row) + "\n")
                print(json.dumps(row), flush=True)
    cpu_s = time.process_time() - t_start
    rows = [done[(arm, f"{a}+{b}", s)] for arm in ARMS for s in seeds for a, b in pairs
            if (arm, f"{a}+{b}", s) in done]
    ok = [r for r in rows if "error" not in r]
    generic = [r for r in ok if r.get("generic")]
    subsets = {arm: [r for r in ok if r["arm"] == arm] for arm in ARMS}
    subsets["generic"] = generic
    subsets["not_generic"] = [r for r in ok if not r.get("generic")]
    # post hoc, not part of the decision: the linear model answers a pair with an unplaced target
    # with the mean training effect by construction (LinearGeneEmbedding.predict)
    subsets["linear_post_hoc"] = [r for r in ok if r["method"] == LINEAR]
    stats = {key: _stats(sub) for key, sub in subsets.items()}
    decision = decide(stats, len(generic))
    command = f"nice -n 10 python benchmarks/{NAME}.py " + " ".join(argv if argv is not None
                                                                    else sys.argv[1:])
    lines = ["# Twin double knockouts with one target the models cannot place: answer vs additive "
             "reference", "",
             f"Command: `{command.strip()}` (each run `scagents.api.run(goal=\"predict A and B "
             "knockout\", seed=S)`, the CLI's path and defaults — arm skip_network with "
             "`skip_network=True`, the CLI's `--skip-network` — with B left out of the genes worked "
             "on and its knockout cells kept). The runs are cached per arm (results/"
             f"{NAME}_runs.jsonl, results/{NAME}_skip_network_runs.jsonl); a command with "
             "`--summarise-only` writes this file from them.", "",
             f"Pairs (first {len(pairs)} of combo_additive's, B = the second): "
             + ", ".join(f"{a}+{b}" for a, b in pairs) + f"; seeds {seeds}."]
    for arm in ARMS:
        sub = subsets[arm]
        n_rows = sum(r["arm"] == arm for r in rows)
        methods = {m: sum(r["method"] == m for r in sub) for m in sorted({r["method"] for r in sub})}
        walls = [r["wall_s"] for r in sub]
        lines.append(
            f"Arm {arm}: {len(sub)} of {len(pairs) * len(seeds)} planned runs scored ({n_rows} "
            f"started); B absent from genes_used.csv in "
            f"{sum(not r.get('b_in_genes_used', True) for r in sub)} of {len(sub)}; answering "
            "methods: " + (", ".join(f"{m} {n}" for m, n in methods.items()) or "none")
            + f"; answers flagged as the mean training effect (generic): "
            f"{sum(bool(r.get('generic')) for r in sub)} of {len(sub)}"
            + (f"; wall time per run median {np.median(walls):.0f} s (range {min(walls):.0f}–"
               f"{max(walls):.0f} s)." if walls else "."))
    lines += ["", "Differences are answer − additive, paired by run, against the twin's simulation "
              "of the pair (MSE over the responding genes: lower is better; Pearson-delta over the "
              "top-20 simulated DE genes, 20 capped at the responding genes — 19 on th: higher is "
              "better).", ""]
    titles = {"network": "Arm network (CLI defaults), all runs",
              "skip_network": "Arm skip_network, all runs",
              "generic": "Runs whose answer is flagged generic (both arms)",
              "not_generic": "Runs whose answer is not flagged generic (both arms)"}
    for key, title in titles.items():
        lines += [f"**{title}**", "", *stats_table(stats[key]), ""]
    lines += ["**Decision (pre-registered in the script's docstring)**", ""]
    for rule, text in (("R1", "R1, answer with the additive reference when the answer is generic "
                              "(runs flagged generic, both arms)"),
                       ("R2", "R2, answer with the additive reference when a target is not among "
                              "the genes worked on (arm network)")):
        d = decision[rule]
        lines.append(f"- {text}: {'adopted' if d['adopted'] else 'not adopted'} "
                     f"({'' if d['judged'] else 'not judged: '}{d['why']}).")
    lines += [f"- Implemented: {decision['implemented'] or 'nothing (current behaviour kept)'}.", ""]
    lin = subsets["linear_post_hoc"]
    ls = stats["linear_post_hoc"]
    if lin and ls["mse"].get("n"):
        m, p = ls["mse"], ls["pearson_delta_top20"]
        lines += [
            "**Post hoc (after the runs; not part of the decision)**", "",
            f"The linear gene embedding answers a pair with a target outside the genes worked on with "
            f"the mean training effect by construction (LinearGeneEmbedding.predict); it answered "
            f"{len(lin)} runs ({sum(r['arm'] == 'network' for r in lin)} network, "
            f"{sum(r['arm'] == 'skip_network' for r in lin)} skip_network), of which "
            f"{sum(bool(r.get('generic')) for r in lin)} were flagged generic. On them, answer − "
            f"additive MSE median {m['diff_median']:+.4f} [IQR {m['diff_iqr'][0]:+.4f}, "
            f"{m['diff_iqr'][1]:+.4f}], answer better in {m['answer_wins']}, additive in "
            f"{m['additive_wins']}, Wilcoxon p {m['wilcoxon_p']:.3g}; Pearson-delta median "
            f"{p['diff_median']:+.4f} [IQR {p['diff_iqr'][0]:+.4f}, {p['diff_iqr'][1]:+.4f}], "
            f"additive better in {p['additive_wins']} of {p['n']}, Wilcoxon p {p['wilcoxon_p']:.3g}.",
            ""]
    lines += [
              "| arm | pair | seed | method | generic | answer MSE | additive MSE | answer PΔ20 | "
              "additive PΔ20 |", "|" + "---|" * 9]
    for r in ok:
        lines.append(f"| {r['arm']} | {r['pair']} | {r['seed']} | {r['method']} | "
                     f"{'yes' if r.get('generic') else 'no'} | {r['answer_mse']} | "
                     f"{r['additive_mse']} | {r['answer_pearson_delta_top20']} | "
                     f"{r['additive_pearson_delta_top20']} |")
    failed = [r for r in rows if "error" in r]
    if failed:
        lines += ["", "Runs without scores: " + "; ".join(f"{r['arm']} {r['pair']} seed {r['seed']} "
                                                          f"({r['error'][:120]})" for r in failed)]
    write_results(NAME, {"command": command.strip(), "regulators": regs,
                         "pairs": [f"{a}+{b}" for a, b in pairs], "seeds": seeds, "arms": list(ARMS),
                         "stats": stats, "decision": decision, "runs": rows,
                         "cpu_s_this_invocation": round(cpu_s, 1)},
                  "\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
