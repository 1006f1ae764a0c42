"""Throughput of the digital-twin dynamics: cell-steps per second for 10,000 cells.

Runs :func:`scagents.twin.run_dynamics` (record only the final state) on both shipped models and
reports the median over ``--repeats`` runs. Also records the control fate fractions of both models
and the IFNG-knockout fate fractions of the T-helper model at the default simulation settings.

Usage::

    python benchmarks/twin_throughput.py [--cells 10000] [--steps 200] [--repeats 5]

Writes ``benchmarks/results/twin_throughput.json`` and ``.md``.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from scagents._atomic import write_json  # noqa: E402
from scagents.perturbation import Perturbation  # noqa: E402
from scagents.twin import initial_states, load_model, run_dynamics, simulate  # noqa: E402


def throughput(model: str, n_cells: int, n_steps: int, repeats: int) -> dict:
    net = load_model(model)
    x0 = initial_states(net, n_cells, np.random.default_rng(0))
    run_dynamics(net, x0, n_steps=5, rng=0, record_every=5)  # compile + warm up
    times = []
    for r in range(repeats):
        t0 = time.perf_counter()
        run_dynamics(net, x0, n_steps=n_steps, dt=0.05, noise=0.1, rng=r, record_every=n_steps)
        times.append(time.perf_counter() - t0)
    med = statistics.median(times)
    return {"model": net.name, "n_genes": net.n_genes, "n_cells": n_cells, "n_steps": n_steps,
            "repeats": repeats, "seconds": times, "median_seconds": med,
            "cell_steps_per_s": n_cells * n_steps / med, "steps_per_s": n_steps / med}


def fate_fractions(model: str, perturbations, n_cells: int) -> dict:
    m = simulate(model, perturbations=perturbations, n_cells=n_cells, modalities=("rna",), seed=0)
    obs = m["rna"].obs
    out = {}
    for label, sub in obs.groupby("perturbation", observed=True):
        out[str(label)] = {k: round(float(v), 3) for k, v in
                           sub["fate"].value_counts(normalize=True).items() if v > 0}
    return out


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cells", type=int, default=10_000)
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--fate-cells", type=int, default=2000)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    args = parser.parse_args(argv)
    try:  # the project's benchmarks run single-threaded
        import torch

        torch.set_num_threads(1)
    except ImportError:  # pragma: no cover
        pass

    result = {
        "benchmark": "twin_throughput",
        "machine": {"python": platform.python_version(), "numpy": np.__version__,
                    "processor": platform.processor() or platform.machine()},
        "throughput": [throughput(m, args.cells, args.steps, args.repeats)
                       for m in ("th_mendoza2006", "krumsiek11")],
        "fates": {
            "th_mendoza2006": fate_fractions("th", [None, Perturbation("IFNG")], args.fate_cells),
            "krumsiek11": fate_fractions("krumsiek11", [None, Perturbation("PU.1"),
                                                        Perturbation("GATA1")], args.fate_cells),
        },
    }
    args.out.mkdir(parents=True, exist_ok=True)
    write_json(args.out / "twin_throughput.json", result, indent=2)  # strict JSON, atomic
    lines = ["# Digital-twin throughput", "",
             f"numpy {np.__version__}, Python {platform.python_version()}, single process.", "",
             "| model | genes | cells | steps | median s | cell-steps/s | steps/s |",
             "|---|---|---|---|---|---|---|"]
    for t in result["throughput"]:
        lines.append(f"| {t['model']} | {t['n_genes']} | {t['n_cells']} | {t['n_steps']} | "
                     f"{t['median_seconds']:.3f} | {t['cell_steps_per_s']:.3g} | {t['steps_per_s']:.0f} |")
    lines += ["", f"## Fate fractions ({args.fate_cells} cells per condition, default settings, seed 0)", ""]
    for model, conds in result["fates"].items():
        for label, fr in conds.items():
            lines.append(f"- {model} / {label}: " + ", ".join(f"{k} {v:.3f}" for k, v in sorted(fr.items())))
    (args.out / "twin_throughput.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return result


if __name__ == "__main__":
    main()
