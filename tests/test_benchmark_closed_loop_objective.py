"""The objective-sign benchmark (benchmarks/closed_loop_objective.py): its report is computed from its record."""

from __future__ import annotations

import json
from pathlib import Path

from tests.conftest import load_benchmark

RESULTS = Path(__file__).resolve().parents[1] / "benchmarks" / "results"


def test_stored_report_is_rendered_from_the_stored_record():
    bench = load_benchmark("closed_loop_objective")
    rec = json.loads((RESULTS / "closed_loop_objective.json").read_text())
    md = (RESULTS / "closed_loop_objective.md").read_text()
    assert bench.markdown(rec) == md  # every figure and sentence of the .md comes from the .json
    assert rec["command"].startswith("nice -n 10 python benchmarks/closed_loop_objective.py")
    for res in rec["results"]:
        arms = res["arms"]
        assert {"default decrease", "default increase", "default either", "prior_only", "random"} <= set(arms)
        # the arms' designers are the benchmark's: round 1 of every non-random arm is the same prior top
        firsts = {label: a["seeds"][0]["first_genes"] for label, a in arms.items() if label != "random"}
        assert len({tuple(v) for v in firsts.values()}) == 1
