"""Twin attractors: does the continuous twin hold a Boolean model's own stable states?

Models: every shipped model (``scagents.twin.list_models()``), every model in
``../shared/data/grn/boolean_models`` (``.bnet`` and BoolODE ``.txt``; the ``*_ics.txt``
initial-condition files are not models) and random networks of
:func:`scagents.twin.generate.random_network` (sizes and seeds in :data:`RANDOM`).

Boolean fixed points: states with ``f(x) = x`` (synchronous Boolean rules; inputs fixed) for each 0/1
combination of the inputs (all combinations when there are at most 16, else 16 drawn at random
without replacement). Per combination, the non-input genes are enumerated exhaustively when there
are at most 16 of them; otherwise the synchronous map is iterated from ``N_RANDOM`` random states
(at most ``MAX_ITER`` steps) and the fixed points reached are kept (a lower bound; the table says
which method).

Continuous check: each fixed point (at most ``MAX_FP`` per model, drawn at random when there are
more) is the initial state of every cell (initial sd 0; inputs clamped at their 0/1 value), the
dynamics run with ``simulate``'s default ``n_steps`` and ``dt`` at noise 0 (one cell) and at the
default noise (``N_CELLS`` cells), for the current (``hill="standard"``) and the Odefy-normalized
(``hill="normalized"``) Hill form. A cell *keeps* its fixed point when its final state binarised at
0.5 equals the fixed point in every gene.

Usage::

    python benchmarks/twin_attractors.py          # ~1-3 min
"""

from __future__ import annotations

import argparse
import inspect
import os
import statistics
import sys
import time
import warnings
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks._util import load_record, machine_line_of, write_results  # noqa: E402
from scagents.twin import list_models, load_model, read_model, simulate  # noqa: E402
from scagents.twin.dynamics import HILL_FORMS, _bool_eval, integrate  # noqa: E402
from scagents.twin.generate import random_network  # noqa: E402
from scagents.twin.rules import BooleanNetwork  # noqa: E402

SHARED = Path(os.environ.get("SCAGENTS_SHARED", "/work/shared/data")) / "grn" / "boolean_models"
RANDOM = [(n, s) for s, n in enumerate([10, 12, 14, 16, 18, 20, 22, 24, 26, 28,
                                        30, 32, 34, 36, 38, 40, 15, 25, 35, 40])]
MAX_COMBOS = 16
EXHAUSTIVE_MAX = 16
N_RANDOM = 3000
MAX_ITER = 300
MAX_FP = 64
N_CELLS = 100
_DEFAULTS = inspect.signature(simulate).parameters
N_STEPS, DT, NOISE = (_DEFAULTS[k].default for k in ("n_steps", "dt", "noise"))


def _models() -> list[tuple[str, str, BooleanNetwork]]:
    out = [("shipped", m, load_model(m)) for m in list_models()]
    if SHARED.is_dir():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the .bnet files' "no rule: treated as inputs" note
            for p in sorted(SHARED.iterdir()):
                if p.suffix in (".bnet", ".txt") and not p.name.endswith("_ics.txt"):
                    out.append(("shared", p.name, read_model(p)))
    else:
        print(f"shared models skipped: {SHARED} is absent", file=sys.stderr)
    out += [("random", f"random{n}_s{s}", random_network(n, seed=s)) for n, s in RANDOM]
    return out


def _step(net: BooleanNetwork, x: np.ndarray, dyn: list[int], idx: dict[str, int]) -> np.ndarray:
    """One synchronous Boolean update of states ``x`` (``(n_states, n_genes)`` bool); inputs kept."""
    y = x.copy()
    for j in dyn:
        y[:, j] = _bool_eval(net.asts[net.genes[j]], x, idx)
    return y


def boolean_fixed_points(net: BooleanNetwork, seed: int = 0) -> dict:
    """Boolean fixed points per input combination (see the module docstring)."""
    idx = {g: i for i, g in enumerate(net.genes)}
    inp = [idx[g] for g in net.inputs]
    dyn = [j for j in range(net.n_genes) if j not in inp]
    rng = np.random.default_rng(seed)
    n_all = 2 ** len(inp)
    combos = (np.arange(n_all) if n_all <= MAX_COMBOS
              else np.sort(rng.choice(n_all, MAX_COMBOS, replace=False)))
    exhaustive = len(dyn) <= EXHAUSTIVE_MAX
    fps: list[np.ndarray] = []
    for c in combos:
        bits = [(int(c) >> b) & 1 == 1 for b in range(len(inp))]
        if exhaustive:
            codes = np.arange(2 ** len(dyn))
            x = np.zeros((codes.size, net.n_genes), dtype=bool)
            for b, j in enumerate(dyn):
                x[:, j] = (codes >> b) & 1 == 1
        else:
            x = rng.random((N_RANDOM, net.n_genes)) < 0.5
        x[:, inp] = bits
        if not exhaustive:
            for _ in range(MAX_ITER):
                y = _step(net, x, dyn, idx)
                if np.array_equal(y, x):
                    break
                x = y
        fixed = x[np.all(_step(net, x, dyn, idx) == x, axis=1)]
        fps.extend(np.unique(fixed, axis=0))
    return {"fixed_points": np.array(fps, dtype=bool).reshape(-1, net.n_genes),
            "n_input_combos": int(n_all), "n_combos_used": int(combos.size),
            "method": "exhaustive" if exhaustive else f"sync map from {N_RANDOM} random states"}


def keep_share(net: BooleanNetwork, fps: np.ndarray, *, hill: str, noise: float, n_cells: int,
               seed: int = 0) -> dict:
    """Share of cells started at each fixed point whose binarised final state is that fixed point."""
    x0 = np.repeat(fps.astype(float), n_cells, axis=0)
    rng = np.random.default_rng(seed)
    final, _, _ = integrate(net, x0, n_steps=N_STEPS, dt=DT, noise=noise, rng=rng, hill=hill)
    target = np.repeat(fps, n_cells, axis=0)
    same = (final > 0.5) == target
    kept = same.all(axis=1).reshape(len(fps), n_cells).mean(axis=1)
    return {"per_fp": kept.tolist(), "share": float(kept.mean()),
            "genes_flipped": float((~same).sum(axis=1).mean())}


def _fmt(v: float | None) -> str:
    return "–" if v is None else f"{100 * v:.0f}%"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.parse_args(argv)
    load0 = os.getloadavg()[0]
    t0 = time.perf_counter()
    rows = []
    for group, name, net in _models():
        fp = boolean_fixed_points(net)
        fps = fp["fixed_points"]
        rng = np.random.default_rng(1)
        used = fps if len(fps) <= MAX_FP else fps[np.sort(rng.choice(len(fps), MAX_FP, replace=False))]
        row = {"group": group, "model": name, "genes": net.n_genes, "inputs": len(net.inputs),
               "n_input_combos": fp["n_input_combos"], "n_combos_used": fp["n_combos_used"],
               "method": fp["method"], "n_fixed_points": len(fps), "n_used": len(used), "kept": {}}
        for hill in HILL_FORMS:
            for noise, n_cells in ((0.0, 1), (NOISE, N_CELLS)):
                key = f"{hill}/noise={noise:g}"
                row["kept"][key] = keep_share(net, used, hill=hill, noise=noise, n_cells=n_cells) if len(used) else None
        rows.append(row)
        print(name, len(fps), {k: (v["share"] if v else None) for k, v in row["kept"].items()}, flush=True)
    seconds = time.perf_counter() - t0
    keys = [f"{h}/noise={n:g}" for h in HILL_FORMS for n in (0.0, NOISE)]

    def share(r, k):
        return None if r["kept"][k] is None else r["kept"][k]["share"]

    summary = {}
    for group in ("shipped", "shared", "random", "all"):
        rs = [r for r in rows if (group == "all" or r["group"] == group) and r["n_used"]]
        s = {"models_with_fixed_points": len(rs),
             "models_without": sum(1 for r in rows if (group == "all" or r["group"] == group) and not r["n_used"])}
        for k in keys:
            vals = [share(r, k) for r in rs]
            pooled = [v for r in rs for v in r["kept"][k]["per_fp"]]
            s[k] = {"median_over_models": statistics.median(vals) if vals else None,
                    "q1": float(np.percentile(vals, 25)) if vals else None,
                    "q3": float(np.percentile(vals, 75)) if vals else None,
                    "pooled_over_fixed_points": float(np.mean(pooled)) if pooled else None}
        for n in (0.0, NOISE):
            d = [share(r, f"normalized/noise={n:g}") - share(r, f"standard/noise={n:g}") for r in rs]
            s[f"paired/noise={n:g}"] = {"normalized_better": sum(x > 1e-12 for x in d),
                                        "equal": sum(abs(x) <= 1e-12 for x in d),
                                        "standard_better": sum(x < -1e-12 for x in d),
                                        "median_difference": statistics.median(d) if d else None}
        summary[group] = s

    command = "python benchmarks/twin_attractors.py " + " ".join(argv if argv is not None else sys.argv[1:])
    load = load_record(load0)
    md = ["# Twin attractors: are the Boolean fixed points held by the continuous twin?", "",
          f"Command: `{command.strip()}`; {seconds:.0f} s. {machine_line_of(load)}", "",
          f"Each Boolean fixed point (inputs fixed, ≤ {MAX_COMBOS} input combinations per model, at most "
          f"{MAX_FP} fixed points per model simulated) is the initial state of the cells (sd 0, inputs "
          f"clamped); `integrate` with n_steps = {N_STEPS}, dt = {DT:g} (the `simulate` defaults), noise 0 "
          f"(1 cell) and noise {NOISE:g} ({N_CELLS} cells). Kept: the final state binarised at 0.5 equals the "
          "fixed point in every gene. Standard: h(x) = x^n/(k^n + x^n) (the current default); normalized: "
          "h(x)/h(1) (Odefy's normalized HillCube, opt-in `hill=\"normalized\"`).", "",
          "## Summary (median [IQR] over models of the share of cells kept; pooled: mean over all fixed points)", "",
          "| models | n | without fixed points | standard, noise 0 | standard, noise "
          f"{NOISE:g} | normalized, noise 0 | normalized, noise {NOISE:g} |",
          "|---|---|---|---|---|---|---|"]
    for group, s in summary.items():
        cells = [f"{_fmt(s[k]['median_over_models'])} [{_fmt(s[k]['q1'])}–{_fmt(s[k]['q3'])}]; "
                 f"pooled {_fmt(s[k]['pooled_over_fixed_points'])}" for k in keys]
        md.append(f"| {group} | {s['models_with_fixed_points']} | {s['models_without']} | " + " | ".join(cells) + " |")
    md += ["", "Paired per model (normalized − standard share kept):", ""]
    for group, s in summary.items():
        parts = []
        for n in (0.0, NOISE):
            p = s[f"paired/noise={n:g}"]
            med = "–" if p["median_difference"] is None else f"{100 * p['median_difference']:+.0f} points"
            parts.append(f"noise {n:g}: normalized better in {p['normalized_better']}, equal in {p['equal']}, "
                         f"standard better in {p['standard_better']} (median {med})")
        md.append(f"- {group}: " + "; ".join(parts))
    md += ["", "## Per model", "",
           "| model | genes | inputs | input combos (used) | method | fixed points (simulated) | "
           "standard noise 0 | standard noise " + f"{NOISE:g} | normalized noise 0 | normalized noise {NOISE:g} | "
           "genes flipped (std / norm, noise " + f"{NOISE:g}) |",
           "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        kept = [_fmt(share(r, k)) for k in keys]
        fl = [r["kept"][f"{h}/noise={NOISE:g}"] for h in HILL_FORMS]
        flipped = " / ".join("–" if f is None else f"{f['genes_flipped']:.1f}" for f in fl)
        md.append(f"| {r['model']} | {r['genes']} | {r['inputs']} | {r['n_input_combos']} ({r['n_combos_used']}) | "
                  f"{r['method']} | {r['n_fixed_points']} ({r['n_used']}) | " + " | ".join(kept) + f" | {flipped} |")
    md.append("")
    write_results("twin_attractors", {"command": command.strip(), "seconds": seconds, "load": load,
                                      "n_steps": N_STEPS, "dt": DT, "noise": NOISE, "n_cells": N_CELLS,
                                      "max_combos": MAX_COMBOS, "max_fixed_points": MAX_FP,
                                      "summary": summary, "models": rows}, "\n".join(md))
    print("\n".join(md[:20]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
