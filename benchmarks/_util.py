"""Helpers shared by the benchmark scripts: result files and process measurements."""

from __future__ import annotations

import json
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
    js.write_text(json.dumps({"machine": machine(), **payload}, indent=2, default=str))
    md.write_text(markdown)
    return js, md
