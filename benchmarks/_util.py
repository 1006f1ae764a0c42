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


def load_record(load_start: float) -> dict:
    """The conditions of a timing run, taken at its end: ``{"start", "end", "nice", "cpus"}``.

    Parameters
    ----------
    load_start
        The 1-minute load average taken when the run started (``os.getloadavg()[0]``).

    Returns
    -------
    dict
        The 1-minute load average at the start and now, this process's niceness and the CPU count,
        to store in the results JSON so that a re-rendered report shows the run's conditions.
    """
    import os

    return {"start": float(load_start), "end": float(os.getloadavg()[0]), "nice": os.nice(0),
            "cpus": os.cpu_count() or 1}


def machine_line(load_start: float, load_end: float, nice: int | None = None, cpus: int | None = None) -> str:
    """One sentence on the conditions of a timing run, from what was measured: CPUs, niceness and the
    1-minute load average at the start and the end (a load near or above the CPU count means other
    jobs shared the machine, so the times are upper bounds).

    Parameters
    ----------
    load_start, load_end
        1-minute load averages at the start and the end of the run.
    nice
        The run's niceness; ``None``: this process's (right only when called by the run itself).
    cpus
        The run machine's CPU count; ``None``: this machine's.
    """
    import os

    return _line(load_start, load_end, os.nice(0) if nice is None else nice, cpus)


def machine_line_of(load: dict | list | tuple, cpus: int | None = None) -> str:
    """:func:`machine_line` of a stored record: a :func:`load_record` dict, or from older results
    ``{"start", "end"}`` / ``[start, end]`` without the niceness, which the sentence then says was
    not recorded (rather than showing the renderer's).

    Parameters
    ----------
    load
        The stored record.
    cpus
        The run machine's CPU count when the record has none (older results: the ``machine`` entry
        :func:`write_results` stores); ``None``: this machine's.
    """
    if isinstance(load, dict):
        return _line(load["start"], load["end"], load.get("nice"), load.get("cpus") or cpus)
    return _line(load[0], load[1], None, cpus)


def _line(load_start: float, load_end: float, nice: int | None, cpus: int | None) -> str:
    import os

    cpus = cpus or os.cpu_count() or 1
    busy = max(load_start, load_end) >= 0.75 * cpus
    nice_text = "niceness not recorded" if nice is None else (f"run under nice {nice}" if nice else "")
    return (f"Machine: {cpus} cores{f', {nice_text}' if nice_text else ''}; 1-min load average "
            f"{load_start:.1f} at the start, {load_end:.1f} at the end"
            + (" (other jobs shared the machine, so the times are upper bounds)." if busy else
               " (no other heavy job)."))


def run_conditions(payload: dict) -> str:
    """The machine sentence of a results payload: its load record, or for results written before
    it the 1-minute field of the stored ``/proc/loadavg`` strings (niceness not recorded)."""
    if "load_average_1min" in payload:
        return machine_line_of(payload["load_average_1min"])
    try:
        old = [float(payload[k].split()[0]) for k in ("load_average_before", "load_average_after")]
    except (KeyError, ValueError, IndexError):
        return "Load average not recorded."
    return machine_line_of(old, cpus=payload.get("machine", {}).get("cpus"))
