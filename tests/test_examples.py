"""Every script in examples/ runs offline (no LLM provider, no network), with small budgets."""

from __future__ import annotations

import runpy
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"

#: fast arguments per example, and text its output must contain
RUNS = {
    "chat_loop.py": (["--workdir", "chat", "--n-cells", "40", "simulate GATA3 overexpression",
                      "list files", "hello"],
                     ["→ simulate_perturbation({'targets': ['GATA3'], 'kind': 'overexpression'})",
                      "scagents: GATA3 overexpression (the th_mendoza2006 twin simulation): down",
                      "scagents: Files: twin/", "I am the offline scripted model"]),
    "python_api.py": (["--out", "run", "--n-cells", "30", "--policy-steps", "256"],
                      ["STAT1 knockout", "strongest predicted decreases", "reloaded run: 23 genes"]),
    "closed_loop_twin.py": (["--workdir", "loop", "--rounds", "2", "--batch", "2", "--n-cells", "30"],
                            ["round 1: proposed", "round 2: proposed", "strongest IFNG decrease"]),
}


def test_every_example_is_covered():
    assert sorted(p.name for p in EXAMPLES.glob("*.py")) == sorted(RUNS), (
        "add the new example with fast arguments to RUNS")


@pytest.mark.parametrize("name", sorted(RUNS))
def test_example_runs_offline(name, tmp_path, monkeypatch, capsys):
    argv, expected = RUNS[name]
    for var in ("OPENAI_API_KEY", "ANTHROPIC_API_KEY"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "argv", [name, *argv])
    with pytest.raises(SystemExit) as done:
        runpy.run_path(str(EXAMPLES / name), run_name="__main__")
    out = capsys.readouterr().out
    assert done.value.code == 0, out
    for text in expected:
        assert text in out, f"{name}: {text!r} not in output:\n{out[-2000:]}"
    if name == "python_api.py":
        assert (tmp_path / "run" / "prediction_from_python.png").stat().st_size > 0
    if name == "closed_loop_twin.py":
        assert (tmp_path / "loop" / "ifng_down_progress.png").stat().st_size > 0
