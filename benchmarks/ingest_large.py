"""Time and peak memory of ``scagents ingest`` on large results files (issue 15, item 11).

A ledger with one campaign (4 candidates, 2 proposed) and three results files are generated under a
temporary folder (never in the repository):

* ``over_cap``: ~39 MiB of ``gene,score`` rows (over :data:`~scagents.campaign.ledger.MAX_RESULTS_BYTES`);
* ``under_cap``: ~15 MiB of rows whose genes are no candidates (parsed in full, then refused);
* ``bad_header``: ~15 MiB whose header has no score column (refused after reading the header).

Each file is ingested by a FRESH ``python -m scagents ingest`` process; the wall time and the
child's own peak RSS (``os.wait4`` resource usage) are recorded, with the time and RSS of a
trivially refused file (header only) as the start-up baseline. ``--src`` points the children at
another checkout (e.g. an older commit, to measure "before"). Results go to
``benchmarks/results/ingest_large.{json,md}``.

Usage::

    python benchmarks/ingest_large.py
    python benchmarks/ingest_large.py --src /tmp/old_checkout --name ingest_large_before
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))


def _rows(path: Path, mib: float, header: str) -> None:
    with path.open("w") as fh:
        fh.write(header)
        i = 0
        while fh.tell() < mib * 2**20:
            fh.write("".join(f"GENE{j},{(j % 997) / 97:.6f}\n" for j in range(i, i + 50_000)))
            i += 50_000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--src", default=str(ROOT), help="checkout whose scagents the children import")
    parser.add_argument("--name", default="ingest_large", help="results file name")
    args = parser.parse_args()
    from _util import write_results

    from scagents.campaign import create_campaign, propose_round

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        create_campaign(folder / "ledger.sqlite", "c", goal="find regulators", candidates=["A", "B", "C", "D"],
                        features=None)
        propose_round(folder / "ledger.sqlite", "c", batch=2, designer="random")
        (folder / "header_only.csv").write_text("gene,score\n")
        _rows(folder / "over_cap.csv", 39, "gene,score\n")
        _rows(folder / "under_cap.csv", 15, "gene,score\n")
        _rows(folder / "bad_header.csv", 15, "gene,value_missing\n")
        rows = {}
        for name in ("header_only", "over_cap", "under_cap", "bad_header"):
            rows[name] = _measure(Path(args.src), folder, folder / f"{name}.csv")
            print(name, rows[name], flush=True)
    md = ["# scagents ingest on large results files", "",
          f"Checkout: `{args.src}`. Fresh process per file; peak RSS of that process.", "",
          "| file | MiB | seconds | peak RSS MiB | exit | message |", "|---|---|---|---|---|---|"]
    md += [f"| {k} | {r['file_mib']} | {r['seconds']} | {r['peak_rss_mib']} | {r['exit_code']} | "
           f"{r['message'].replace('|', '/')} |" for k, r in rows.items()]
    js, mdp = write_results(args.name, {"src": args.src, "files": rows}, "\n".join(md) + "\n")
    print(f"wrote {js} and {mdp}")


def _measure(src: Path, folder: Path, results: Path) -> dict:
    """Run one ingest in a fresh process; its wall time and its own peak RSS (``os.wait4``)."""
    env = {**os.environ, "PYTHONPATH": str(src)}
    with tempfile.TemporaryFile("w+") as out:
        t0 = time.perf_counter()
        pid = subprocess.Popen([sys.executable, "-m", "scagents", "ingest", "--campaign", "c", str(results),
                                "--db", str(folder / "ledger.sqlite")], cwd=folder, env=env,
                               stdout=out, stderr=out).pid
        _, status, usage = os.wait4(pid, 0)
        seconds = time.perf_counter() - t0
        out.seek(0)
        text = out.read().strip()
    return {"file_mib": round(results.stat().st_size / 2**20, 1), "seconds": round(seconds, 2),
            "peak_rss_mib": round(usage.ru_maxrss / 1024, 1), "exit_code": os.waitstatus_to_exitcode(status),
            "message": text.splitlines()[-1][:160] if text else ""}


if __name__ == "__main__":
    main()
