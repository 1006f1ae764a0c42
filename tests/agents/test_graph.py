"""The graph end to end: SIGKILL after an agent, resume, same report, no agent re-run."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _cli(*args, env_extra=None, cwd=None):
    env = {k: v for k, v in os.environ.items() if k != "SCAGENTS_TEST_KILL_AFTER"}
    env.update({"PYTHONPATH": str(ROOT), **(env_extra or {})})
    return subprocess.run([sys.executable, "-m", "scagents", *args], capture_output=True,
                          text=True, cwd=cwd, env=env, check=False, timeout=600)


def _events(run: Path):
    return [json.loads(line) for line in (run / "agents.log").read_text().splitlines()]


@pytest.mark.slow
def test_kill_and_resume(tmp_path):
    args = ["run", "--goal", "predict IFNG knockout", "--n-cells", "80", "--quick", "--quiet"]
    ref = _cli(*args, "--out", str(tmp_path / "ref"))
    assert ref.returncode == 0, ref.stderr
    killed = _cli(*args, "--out", str(tmp_path / "runs" / "k1"),
                  env_extra={"SCAGENTS_TEST_KILL_AFTER": "network"})
    assert killed.returncode == -9
    run = tmp_path / "runs" / "k1"
    done = {e["agent"] for e in _events(run) if e["event"] == "finished"}
    assert "network" in done and "policy" not in done and not (run / "report.json").exists()
    listing = _cli("runs", "--out", str(tmp_path / "runs"))
    assert listing.returncode == 0, listing.stderr
    assert "interrupted after network (run --resume k1)" in listing.stdout
    assert "predict IFNG knockout" in listing.stdout
    res = _cli("run", "--resume", "k1", "--quiet", cwd=tmp_path)  # RUN_ID under ./scagents_runs
    if res.returncode == 2 and "No run" in res.stderr:
        res = _cli("run", "--resume", str(run), "--quiet")          # or the run folder itself
    assert res.returncode == 0, res.stderr
    starts = [e["agent"] for e in _events(run) if e["event"] == "started"]
    assert starts.count("data") == 1 and starts.count("network") == 1  # not re-run
    assert starts.count("policy") >= 1 and starts.count("report") == 1
    assert (run / "report.json").read_bytes() == (tmp_path / "ref" / "report.json").read_bytes()


def test_resume_unknown_run(tmp_path):
    proc = _cli("run", "--resume", "nope", "--quiet", cwd=tmp_path)
    assert proc.returncode == 2 and "No run 'nope' to resume" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_unknown_run_error_says_a_run_folder_path_works(tmp_path):
    # a run written with --out elsewhere is not under ./scagents_runs: the error says what to give
    from scagents.agents.graph import RunNotFoundError, _run_folder

    with pytest.raises(RunNotFoundError, match="give the path of its folder"):
        _run_folder("my_run", tmp_path / "scagents_runs", "resume")
