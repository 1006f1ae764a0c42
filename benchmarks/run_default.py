"""Wall time and peak memory of ``python -m scagents run`` on the embedded default.

Each repetition is a fresh Python process (imports included, as a user runs it); peak memory is
the process's maximum resident set size. Target (issue 3): ≤ 60 s and ≤ 2 GB on a 2-core machine.

Usage::

    python benchmarks/run_default.py [--repeats 3] [--goal "predict IFNG knockout"]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _util import median, write_results  # noqa: E402

CHILD = """
import json, resource, sys
from scagents.cli import main
rc = main(sys.argv[1:])
print("__BENCH__" + json.dumps({"rc": rc, "maxrss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def measure(goal: str, out: Path) -> dict:
    t0 = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-c", CHILD, "run", "--goal", goal, "--out", str(out), "--quiet"],
        capture_output=True, text=True, check=False,
    )
    wall = time.perf_counter() - t0
    line = [x for x in proc.stdout.splitlines() if x.startswith("__BENCH__")]
    if proc.returncode != 0 or not line:
        raise RuntimeError(f"run failed:\n{proc.stdout}\n{proc.stderr}")
    info = json.loads(line[0][len("__BENCH__"):])
    return {"wall_s": wall, "peak_rss_mb": info["maxrss_mb"]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--goal", default="predict IFNG knockout")
    args = ap.parse_args()
    runs = []
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(args.repeats):
            runs.append(measure(args.goal, Path(tmp) / f"run{i}"))
            print(f"run {i}: {runs[-1]['wall_s']:.1f} s, {runs[-1]['peak_rss_mb']:.0f} MB", flush=True)
    wall = median([r["wall_s"] for r in runs])
    rss = median([r["peak_rss_mb"] for r in runs])
    payload = {"goal": args.goal, "repeats": runs, "median_wall_s": wall, "median_peak_rss_mb": rss,
               "target": {"wall_s": 60, "peak_rss_mb": 2048},
               "meets_target": wall <= 60 and rss <= 2048}
    md = (f"# `scagents run` on the embedded default\n\nGoal: `{args.goal}`, {args.repeats} fresh "
          f"processes.\n\n| | median | target |\n|---|---|---|\n| wall time (s) | {wall:.1f} | ≤ 60 |\n"
          f"| peak RSS (MB) | {rss:.0f} | ≤ 2048 |\n")
    js, mdp = write_results("run_default", payload, md)
    print(md)
    print(f"written {js} and {mdp}")


if __name__ == "__main__":
    main()
