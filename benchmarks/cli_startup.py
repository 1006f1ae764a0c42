"""Start-up time of the command line: ``--help`` and usage errors, each a fresh Python process.

Target (issue 13): ``--help`` and usage errors answer in under 2 s. Each case is run ``--repeats``
times (median and maximum reported); the exit code and the first line of the answer are checked so
that a fast crash does not count.

Usage::

    python benchmarks/cli_startup.py [--repeats 7]
"""

from __future__ import annotations

import argparse
import os
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _util import load_record, machine_line_of, median, write_results  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
TARGET_S = 2.0

#: (name, arguments after `python -m scagents`, expected exit code, text the answer must contain)
CASES = [
    ("--help", ["--help"], 0, "runs"),
    ("run --help", ["run", "--help"], 0, "--goal"),
    ("run (no goal)", ["run"], 2, "give --goal"),
    ("run --data missing file", ["run", "--goal", "predict IFNG knockout", "--data", "nope.h5ad"],
     2, "does not exist"),
    ("campaigns --db missing file", ["campaigns", "--db", "nope.sqlite"], 2, "no campaign ledger"),
]


def measure(args: list[str], rc: int, text: str, cwd: str) -> float:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "scagents", *args], capture_output=True, text=True,
                          cwd=cwd, env=env, check=False)
    seconds = time.perf_counter() - t0
    if proc.returncode != rc or text not in proc.stdout + proc.stderr:
        raise RuntimeError(f"{args}: exit {proc.returncode}, expected {rc} and {text!r}:\n"
                           f"{proc.stdout}\n{proc.stderr}")
    return seconds


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=7)
    args = ap.parse_args()
    rows = []
    load0 = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as tmp:
        for name, argv, rc, text in CASES:
            times = [measure(argv, rc, text, tmp) for _ in range(args.repeats)]
            rows.append({"case": name, "argv": argv, "seconds": times, "median_s": median(times),
                         "max_s": max(times)})
            print(f"{name:30s} median {rows[-1]['median_s']:.2f} s, max {rows[-1]['max_s']:.2f} s",
                  flush=True)
    ok = all(r["median_s"] < TARGET_S for r in rows)
    load = load_record(load0)
    payload = {"repeats": args.repeats, "target_s": TARGET_S, "cases": rows, "meets_target": ok,
               "load_average_1min": load}
    lines = ["# Command-line start-up", "",
             f"`python benchmarks/cli_startup.py --repeats {args.repeats}`: each case is a fresh "
             "`python -m scagents …` process (interpreter start included); exit code and answer "
             f"checked. Target: under {TARGET_S:.0f} s.", "",
             "| case | median s | max s |", "|---|---|---|"]
    lines += [f"| `{shlex.join(r['argv'])}` | {r['median_s']:.2f} | {r['max_s']:.2f} |" for r in rows]
    lines += ["", f"Meets the target: {'yes' if ok else 'no'}.", "", machine_line_of(load), ""]
    js, md = write_results("cli_startup", payload, "\n".join(lines))
    print(f"wrote {js} and {md}")


if __name__ == "__main__":
    main()
