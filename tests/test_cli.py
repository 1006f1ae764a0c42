"""`python -m scagents` end to end, as a user runs it."""

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _cli(*args, cwd=None):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    return subprocess.run([sys.executable, "-m", "scagents", *args], capture_output=True, text=True,
                          cwd=cwd, check=False, env=env)


def test_help_lists_run():
    proc = _cli("--help")
    assert proc.returncode == 0 and "run" in proc.stdout
    proc = _cli("run", "--help")
    assert proc.returncode == 0 and "--goal" in proc.stdout and "--data" in proc.stdout


def test_run_default(tmp_path):
    proc = _cli("run", "--goal", "predict IFNG knockout", "--n-cells", "300", "--quiet",
                "--out", str(tmp_path / "out"))
    assert proc.returncode == 0, proc.stderr
    assert "report:" in proc.stdout
    assert (tmp_path / "out" / "report.md").exists()


def test_run_default_out_dir_and_runs_listing(tmp_path):
    proc = _cli("run", "--goal", "predict GATA3 overexpression", "--n-cells", "100", "--quiet",
                cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "FutureWarning" not in proc.stderr  # dependency warnings are filtered
    runs = list(Path(tmp_path, "scagents_runs").iterdir())
    assert len(runs) == 1 and (runs[0] / "report.json").exists()
    listing = _cli("runs", cwd=tmp_path)
    assert listing.returncode == 0, listing.stderr
    header, row = listing.stdout.splitlines()
    assert header.split() == ["run_id", "started", "goal", "state", "answer"]
    assert row.startswith(runs[0].name) and "predict GATA3 overexpression" in row
    assert "finished" in row and "GATA3 overexpression:" in row
    missing = _cli("runs", "--out", "nowhere", cwd=tmp_path)
    assert missing.returncode == 2 and missing.stderr.startswith("error: No runs folder 'nowhere'")


def test_usage_errors_answer_fast(tmp_path):
    """--help and usage errors come back before the scientific stack is imported (target < 2 s;
    the timing figure is in benchmarks/cli_startup.py, this bound only catches a regression)."""
    for args, rc, text in ((["--help"], 0, "runs"),
                           (["run"], 2, "give --goal"),
                           (["run", "--goal", "predict IFNG knockout", "--data", "nope.h5ad"], 2,
                            "'nope.h5ad' does not exist")):
        t0 = time.perf_counter()
        proc = _cli(*args, cwd=tmp_path)
        seconds = time.perf_counter() - t0
        assert proc.returncode == rc and text in proc.stdout + proc.stderr, proc.stderr
        assert "Traceback" not in proc.stderr
        assert seconds < 10, f"{args}: {seconds:.1f} s"
    assert not (tmp_path / "scagents_runs").exists()  # a missing data file creates no run folder


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--goal", "predict IFNGQ knockout"], "Closest gene names"),
        (["--goal", "predict something"], "No gene of the data"),
        (["--goal", "predict IFNG knockout", "--data", "does_not_exist.h5ad"], "does_not_exist.h5ad"),
    ],
)
def test_run_bad_input_clear_error(tmp_path, args, message):
    proc = _cli("run", *args, "--quiet", "--out", str(tmp_path / "o"))
    assert proc.returncode == 2
    assert message in proc.stderr
    assert "Traceback" not in proc.stderr
