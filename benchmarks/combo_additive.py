"""Twin: is the agent's answer or the additive reference closer to a simulated double knockout?

Protocol, fixed before running (commit message of this script):

- pairs: the 5 twin (``th``) regulators with the most edges to other non-input genes (ties by
  name) — every one of their 10 pairs, knocked out together;
- seeds 0, 1, 2; each run is ``python -m scagents run --goal "predict A and B knockout" --seed S``
  with the CLI defaults (a fresh process); the twin simulates the pair itself (held out of every
  model) and both single knockouts (training perturbations);
- per run, from ``report.json``: the answer's and the additive reference's (sum of the simulated
  single knockouts' observed effects) MSE over all responding genes and Pearson-delta over the
  top-20 simulated DE genes (20 capped at the responding genes: 19 on ``th``), against the simulated pair (the report's twin check);
- paired statistics over the runs: answer − additive differences (median, IQR, mean ± s.e.), the
  runs each one wins, Wilcoxon signed-rank two-sided p. Reported only: which model answers is not
  changed by this benchmark.

Each finished run is cached in ``results/combo_additive_runs.jsonl`` so an interrupted benchmark
resumes. Usage::

    python benchmarks/combo_additive.py [--seeds 0,1,2] [--n-regulators 5]
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _util import RESULTS, write_results  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
CACHE = RESULTS / "combo_additive_runs.jsonl"
METRICS = ("mse", "pearson_delta_top20")
"""Stored names; the report's Pearson-delta key is ``pearson_delta_top{k}`` with ``k`` = 20 capped at
the responding genes (19 on the ``th`` twin), read whatever ``k`` is."""


def regulators(n: int) -> list[str]:
    """The ``n`` twin regulators with the most edges to other non-input genes (ties by name)."""
    from scagents.twin import load_model

    net = load_model("th")
    e = net.edges
    inputs = set(net.inputs)
    e = e[~e.source.isin(inputs) & ~e.target.isin(inputs) & (e.source != e.target)]
    counts = e.groupby("source").size()
    return sorted(counts.index, key=lambda g: (-int(counts[g]), str(g)))[:n]


def one_run(a: str, b: str, seed: int) -> dict:
    """One CLI run on the twin; the twin check's metrics of the answer and the additive reference."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "run"
        t0 = time.perf_counter()
        proc = subprocess.run([sys.executable, "-m", "scagents", "run", "--quiet", "--goal",
                               f"predict {a} and {b} knockout", "--seed", str(seed),
                               "--out", str(out)], cwd=ROOT, capture_output=True, text=True,
                              env={**os.environ, "PYTHONPATH": str(ROOT)})
        wall = time.perf_counter() - t0
        row: dict = {"pair": f"{a}+{b}", "seed": seed, "rc": proc.returncode,
                     "wall_s": round(wall, 1)}
        report = out / "report.json"
        if proc.returncode != 0 or not report.exists():
            row["error"] = proc.stderr[-500:]
            return row
        res = json.loads(report.read_text())
        add = res.get("additive") or {}
        tm = add.get("twin_metrics")
        if not tm:
            row["error"] = "no additive twin metrics in the report"
            return row
        row["method"] = res["method"]["name"]
        k = res["twin_check"]["k"]
        row["k"] = k
        for m in METRICS:
            key = f"pearson_delta_top{k}" if m.startswith("pearson_delta") else m
            row[f"answer_{m}"] = tm["prediction"].get(key)
            row[f"additive_{m}"] = tm["additive"].get(key)
        return row


def paired(rows: list[dict], metric: str, lower_better: bool) -> dict:
    """Paired answer − additive statistics of one metric over the runs that have both."""
    from scipy.stats import wilcoxon

    pairs = [(r[f"answer_{metric}"], r[f"additive_{metric}"]) for r in rows
             if r.get(f"answer_{metric}") is not None and r.get(f"additive_{metric}") is not None
             and np.isfinite(r[f"answer_{metric}"]) and np.isfinite(r[f"additive_{metric}"])]
    if not pairs:
        return {"n": 0}
    ans, add = np.array(pairs, dtype=float).T
    d = ans - add
    better = (d < 0) if lower_better else (d > 0)
    worse = (d > 0) if lower_better else (d < 0)
    p = float(wilcoxon(d).pvalue) if np.any(d != 0) and len(d) >= 2 else float("nan")
    return {"n": len(d), "answer_median": float(np.median(ans)),
            "additive_median": float(np.median(add)),
            "diff_median": float(np.median(d)),
            "diff_iqr": [float(np.percentile(d, 25)), float(np.percentile(d, 75))],
            "diff_mean": float(d.mean()),
            "diff_se": float(d.std(ddof=1) / np.sqrt(len(d))) if len(d) > 1 else float("nan"),
            "answer_wins": int(better.sum()), "additive_wins": int(worse.sum()),
            "ties": int((d == 0).sum()), "wilcoxon_p": p}


def stats_table(stats: dict) -> list[str]:
    """Markdown rows of :func:`paired`'s statistics per metric (answer vs additive reference)."""
    lines = ["| metric | n | answer median | additive median | diff median [IQR] | diff mean ± s.e. "
             "| answer better | additive better | Wilcoxon p |", "|" + "---|" * 9]
    for m, s in stats.items():
        if not s.get("n"):
            lines.append(f"| {m} | 0 | | | | | | | |")
            continue
        lines.append(f"| {m} | {s['n']} | {s['answer_median']:.4f} | {s['additive_median']:.4f} | "
                     f"{s['diff_median']:+.4f} [{s['diff_iqr'][0]:+.4f}, {s['diff_iqr'][1]:+.4f}] "
                     f"| {s['diff_mean']:+.4f} ± {s['diff_se']:.4f} | {s['answer_wins']} | "
                     f"{s['additive_wins']} | {s['wilcoxon_p']:.3g} |")
    return lines


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--n-regulators", type=int, default=5)
    ap.add_argument("--summarise-only", action="store_true",
                    help="write the results from the cached runs, starting no new one")
    args = ap.parse_args(argv)
    seeds = [int(s) for s in args.seeds.split(",")]
    regs = regulators(args.n_regulators)
    pairs = list(itertools.combinations(regs, 2))
    done: dict[tuple[str, int], dict] = {}
    if CACHE.exists():
        for line in CACHE.read_text().splitlines():
            r = json.loads(line)
            done[(r["pair"], r["seed"])] = r
    CACHE.parent.mkdir(parents=True, exist_ok=True)
    for seed in seeds:  # every pair at seed 0 first: a cut-short run still covers the pairs
        for a, b in pairs:
            if (f"{a}+{b}", seed) in done or args.summarise_only:
                continue
            row = one_run(a, b, seed)
            done[(row["pair"], seed)] = row
            with CACHE.open("a") as fh:
                fh.write(json.dumps(row) + "\n")
            print(json.dumps(row), flush=True)
    rows = [done[(f"{a}+{b}", s)] for s in seeds for a, b in pairs if (f"{a}+{b}", s) in done]
    ok = [r for r in rows if "error" not in r]
    stats = {"mse": paired(ok, "mse", lower_better=True),
             "pearson_delta_top20": paired(ok, "pearson_delta_top20", lower_better=False)}
    command = "python benchmarks/combo_additive.py " + " ".join(argv if argv is not None
                                                                 else sys.argv[1:])
    methods = sorted({r["method"] for r in ok})
    lines = ["# Twin double knockouts: the agent's answer vs the additive reference", "",
             f"Command: `{command.strip()}` (each run `python -m scagents run --goal \"predict A "
             "and B knockout\" --seed S`, CLI defaults).", "",
             f"Regulators (most edges to non-input genes): {', '.join(regs)}; {len(pairs)} pairs "
             f"× seeds {seeds}; {len(ok)} of {len(pairs) * len(seeds)} planned runs finished with both "
             f"scores ({len(rows)} started). Answering "
             f"methods seen: {', '.join(methods) or 'none'}.", "",
             "Differences are answer − additive, paired by run (MSE: lower is better; "
             "Pearson-delta top-20: higher is better; 20 is capped at the model's responding genes, 19 on "
             "the th twin, so the column named top-20 is top-19 there).", "",
             *stats_table(stats)]
    lines += ["", "| pair | seed | method | answer MSE | additive MSE | answer PΔ20 | additive PΔ20 |",
              "|" + "---|" * 7]
    for r in ok:
        lines.append(f"| {r['pair']} | {r['seed']} | {r['method']} | {r['answer_mse']} | "
                     f"{r['additive_mse']} | {r['answer_pearson_delta_top20']} | "
                     f"{r['additive_pearson_delta_top20']} |")
    failed = [r for r in rows if "error" in r]
    if failed:
        lines += ["", "Runs without scores: " + "; ".join(f"{r['pair']} seed {r['seed']} "
                                                          f"(rc {r['rc']})" for r in failed)]
    write_results("combo_additive", {"command": command.strip(), "regulators": regs,
                                     "seeds": seeds, "stats": stats, "runs": rows},
                  "\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
