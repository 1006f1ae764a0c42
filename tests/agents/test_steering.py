"""The steering agent (:mod:`scagents.agents.steering`): its log line says what the answer computed."""

from __future__ import annotations

from scagents.agents.steering import steer

SILENT = """# @fate Afate = A & !B
# @fate Bfate = B & !A
targets, factors
A, SIG & !B
B, SIG & !A
"""


def test_silent_run_logs_no_schedule(tmp_path):
    path = tmp_path / "silent.bnet"
    path.write_text(SILENT)
    state = steer("steer cells to Afate", out=tmp_path / "run", model=str(path), n_cells=16, root=tmp_path)
    rec = [r for r in state["log"] if r["agent"] == "steering"][-1]
    assert rec["summary"] == "silent simulation: every control cell ends all-off, no schedule searched"
    assert rec["figures"]["simulations"] == 0 and state["steering"]["best"] is None
