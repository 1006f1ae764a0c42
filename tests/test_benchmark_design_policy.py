"""benchmarks/design_policy.py: a stopped multi-screen run keeps the held-out screens it finished."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "benchmarks" / "design_policy.py"


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("benchmarks_design_policy", BENCH)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def _screen_result(bayes: float, policy: float) -> dict:
    d = {k: {"per_seed": [v, v + 0.01], "mean": v + 0.005}
         for k, v in (("random", 0.03), ("prior_only", 0.1), ("bayes_prior", bayes), ("trpo_ppo", policy))}
    return {"n_genes": 100, "n_hits": 10, "batch": 8, "designers": d, "paired": {}}


def test_results_are_written_after_each_held_out_screen(bench, monkeypatch):
    written = []
    monkeypatch.setattr(bench, "write_results", lambda name, payload, md: written.append((payload, md)))

    def fake_run_screens(args, log, checkpoint=None):
        out = {}
        for i, held in enumerate(args.held_out):
            out[held] = _screen_result(0.1, 0.05 + i)
            if checkpoint is not None and held != args.held_out[-1]:
                checkpoint(out)
            if i == 0:
                raise KeyboardInterrupt  # the run is stopped during the second screen
        return out

    monkeypatch.setattr(bench, "run_screens", fake_run_screens)
    with pytest.raises(KeyboardInterrupt):
        bench.main(["--held-out", "IFNG", "IL2", "--no-twin", "--no-merge", "--algos", "trpo_ppo"])
    assert len(written) == 1
    payload, md = written[0]
    assert list(payload["screens"]) == ["IFNG"] and payload["pending"] == ["IL2"]
    assert payload["gate"]["screens"] == ["IFNG"] and not payload["gate"]["passed"]
    assert "held-out screens still to run: IL2" in md and "| IFNG (10 hits / 100, batch 8) |" in md
