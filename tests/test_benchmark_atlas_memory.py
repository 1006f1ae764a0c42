"""The atlas-memory report is rendered from its payload only (benchmarks/atlas_memory.py)."""

from __future__ import annotations

from tests.conftest import load_benchmark


def _run(n: int, nnz: int, peak: float, after_open: float) -> dict:
    return {"n_cells": n, "n_genes": 100, "nnz": nnz, "file_mib": 1.0, "total_s": 1.0, "peak_rss_mib": peak,
            "import_rss_mib": 300.0, "rss_after_open_mib": after_open, "stages_s": {"open_backed": 0.1}}


def _payload(**extra) -> dict:
    return {"n_genes": 100, "n_perturbations": 10, "chunk_size": 1000,
            "runs": [_run(1000, 7000, 400.0, 310.0), _run(10000, 80000, 500.0, 350.0)],
            "load_average_before": "0.10 0.2 0.3", "load_average_after": "0.20 0.2 0.3", "machine": {"cpus": 2},
            **extra}


def test_report_computed_from_the_payload():
    bench = load_benchmark("atlas_memory")
    md = bench.render_markdown(_payload())
    assert "7.0–8.0 % non-zeros" in md and "Machine memory not recorded." in md
    assert "Machine: 2 cores, niceness not recorded; 1-min load average 0.1 at the start, 0.2 at the end" in md
    assert "peak RSS grows by 100 MiB (1.25×)" in md
    assert "adds 10 MiB over the imports at 1,000 cells and 50 MiB at 10,000" in md
    new = bench.render_markdown(_payload(memory_gib=23.5, load_average_1min={"start": 3.0, "end": 3.0, "nice": 10,
                                                                             "cpus": 2}))
    assert "Machine memory: 23.5 GiB." in new and "run under nice 10" in new and "upper bounds" in new
