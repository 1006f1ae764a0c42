"""Helpers shared by the benchmark scripts: result files and process measurements."""

from __future__ import annotations

import platform
import statistics
from datetime import UTC, datetime
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"


def machine() -> dict:
    import os

    return {"python": platform.python_version(), "platform": platform.platform(),
            "cpus": os.cpu_count(), "date": datetime.now(UTC).isoformat(timespec="seconds")}


def median(xs: list[float]) -> float:
    return float(statistics.median(xs))


def write_results(name: str, payload: dict, markdown: str) -> tuple[Path, Path]:
    """Write ``results/<name>.json`` and ``results/<name>.md``."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    js, md = RESULTS / f"{name}.json", RESULTS / f"{name}.md"
    from scagents._atomic import write_json, write_text  # strict JSON (NaN → null), atomic

    write_json(js, {"machine": machine(), **payload}, indent=2)
    write_text(md, markdown)
    return js, md


def machine_line(load_start: float, load_end: float) -> str:
    """One sentence on the conditions of a timing run, from what was measured: CPUs, niceness and the
    1-minute load average at the start and the end (a load near or above the CPU count means other
    jobs shared the machine, so the times are upper bounds)."""
    import os

    cpus = os.cpu_count() or 1
    nice = os.nice(0)
    busy = max(load_start, load_end) >= 0.75 * cpus
    return (f"Machine: {cpus} cores{f', run under nice {nice}' if nice else ''}; 1-min load average "
            f"{load_start:.1f} at the start, {load_end:.1f} at the end"
            + (" (other jobs shared the machine, so the times are upper bounds)." if busy else
               " (no other heavy job)."))
