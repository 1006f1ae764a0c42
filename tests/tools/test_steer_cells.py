"""The ``steer_cells`` tool: the CLI's steering answer, clear one-line refusals, steering runs in
``write_report`` / ``list_files`` / ``recommend_perturbations``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from scagents.cli import main
from scagents.tools import make_tools

# a toggle switch between two fates driven by a declared signal; EXT is read by C's rule but has no
# rule and no @input line: an input the answer names
TOGGLE = """# @input SIG = 0.5 sd 0.3
# @initial A = 0.3 sd 0.2
# @initial B = 0.3 sd 0.2
# @fate Afate = A & !B
# @fate Bfate = B & !A
targets, factors
A, (SIG | A) & !B
B, !A & !SIG | B & !A
C, A | EXT
"""


@pytest.fixture(scope="module")
def workdir(tmp_path_factory) -> Path:
    wd = tmp_path_factory.mktemp("steer_ws")
    (wd / "toggle.bnet").write_text(TOGGLE)
    return wd


@pytest.fixture(scope="module")
def tools(workdir) -> dict:
    return {t.name: t for t in make_tools(workdir, n_cells=16)}


@pytest.fixture(scope="module")
def steered(tools) -> dict:
    out = tools["steer_cells"].invoke({"target": "Afate", "start_fate": "Bfate", "model": "toggle.bnet",
                                       "inputs": {"SIG": 1}, "seed": 3})
    assert not out.startswith("error:"), out
    return json.loads(out)


def test_tool_answers_like_the_cli(steered, workdir, tmp_path, capsys):
    out = tmp_path / "cli"
    assert main(["run", "--model", str(workdir / "toggle.bnet"), "--goal", steered["goal"], "--inputs", "SIG=1",
                 "--n-cells", "16", "--seed", "3", "--out", str(out), "--quiet"]) == 0
    printed = capsys.readouterr().out
    cli = json.loads((out / "steering.json").read_text())
    tool = json.loads((workdir / steered["files"]["json"]).read_text())
    # the same search and the same answer: one steering path, one set of defaults
    for key in ("best", "control", "proposals", "runner_up", "searchers", "simulations", "task", "signal"):
        assert tool[key] == cli[key], key
    assert steered["goal"] == "drive Bfate cells to Afate" and steered["model"] == "toggle"
    assert [s["intervention"] for s in steered["best_schedule"]] == [s["intervention"] for s in cli["best"]["steps"]]
    assert steered["target_fraction"]["mean"] == round(cli["best"]["target_fraction_mean"], 3)
    assert steered["control_target_fraction"]["min"] == round(cli["control"]["target_fraction_min"], 3)
    assert steered["signal"] is True and steered["proposals"]
    assert "Afate fraction" in steered["answer"] and "without intervention" in steered["answer"]
    # the gene read without a rule is named, by the tool and by the CLI
    assert "1 gene has no rule and is treated as an input: EXT" in steered["model_note"]
    assert "EXT" in cli["undefined_inputs"] and "model note: 1 gene has no rule" in printed
    assert (workdir / steered["report"]).name == "steering.md"
    assert "Model note: 1 gene has no rule" in (workdir / steered["report"]).read_text()


def test_steering_runs_in_report_listing_and_recommend(steered, tools, workdir):
    md = workdir / steered["report"]
    md.unlink()
    rep = json.loads(tools["write_report"].invoke({"run": steered["run_id"]}))
    assert rep["kind"] == "steering" and md.is_file() and "# Steering: drive Bfate cells to Afate" in rep["excerpt"]
    latest = json.loads(tools["write_report"].invoke({}))  # the latest run, of either kind
    assert latest["run_id"] == steered["run_id"]
    listed = [f["path"] for f in json.loads(tools["list_files"].invoke({"folder": "runs"}))["files"]]
    assert steered["report"] in listed and steered["files"]["fates_plot"] in listed
    rec = tools["recommend_perturbations"].invoke({"run": steered["run_id"]})
    assert rec.startswith("error:") and "steer_cells run has no ranking" in rec and "\n" not in rec


@pytest.mark.parametrize("args, expect", [
    ({"target": "Th17"}, "Unknown fate 'Th17' in the goal; model 'th_mendoza2006' has fates: Th1, Th2, Th0"),
    ({"target": "Cfate", "model": "toggle.bnet"}, "Unknown fate 'Cfate'"),
    ({"target": "Th1", "model": "missing.bnet"}, "No shipped model or model file named 'missing.bnet'"),
    ({"target": "Th1", "model": "../outside.bnet"}, "outside the working directory"),
    ({"target": "Th1", "model": "/etc/hosts"}, "outside the working directory"),
    ({"goal": "predict IFNG knockout"}, "is not a steering goal"),
    ({"goal": "drive Th0 cells to Th1", "target": "Th1"}, "give goal or target, not both (got goal and target)"),
    ({"goal": "drive Th0 cells to Th1", "avoid": True}, "start_fate, avoid and exclude go with target"),
    ({"goal": "drive Th0 cells to Th1 with one intervention", "max_interventions": 2},
     "The goal asks for 'one intervention' but max_interventions is 2: give the budget once."),
    ({}, "give the goal in plain words"),
    ({"target": "Th1", "max_interventions": 5}, "argument 'max_interventions'"),
    ({"target": "Th1", "inputs": {"FOO": 1}}, "model 'th_mendoza2006' has no gene 'FOO'"),
    ({"target": "Th1", "exclude": ["NOTAGENE"]}, "Cannot leave out 'NOTAGENE'"),
    ({"target": "Th1", "exclude": ["IFNG; rm"]}, "cannot be named in a steering goal"),
    ({"target": "Afate", "model": "typo.bnet"}, "reads 'a' but the model defines 'A'"),
    ({"target": "Afate", "model": "model.sbml"}, "SBML"),
])
def test_bad_calls_are_one_clear_line(tools, workdir, args, expect):
    (workdir / "typo.bnet").write_text("# @fate Afate = A & !B\ntargets, factors\nA, !B\nB, !a\n")
    (workdir / "model.sbml").write_text('<?xml version="1.0" encoding="UTF-8"?>\n<sbml xmlns="http://www.sbml.org'
                                        '/sbml/level3/version1/core" qual:required="true"></sbml>\n')
    before = sorted(p.name for p in (workdir / "runs").iterdir()) if (workdir / "runs").is_dir() else []
    out = tools["steer_cells"].invoke(args)
    assert out.startswith("error:") and expect in out, out
    assert "\n" not in out and "Traceback" not in out and " fix: " in out
    after = sorted(p.name for p in (workdir / "runs").iterdir()) if (workdir / "runs").is_dir() else []
    assert after == before  # a refused call leaves no run folder


@pytest.mark.parametrize("args", [{"target": "Afate", "max_interventions": 1},
                                  {"goal": "steer cells to Afate", "max_interventions": 1}])
def test_silent_model_is_one_line_without_shares(tools, workdir, args):
    """Every control cell all-off: the answer names what to set and carries no schedule, no shares;
    the budget goes with a goal as with a target (the goal the CLI would be given)."""
    (workdir / "silent.bnet").write_text("# @fate Afate = A & !B\n# @fate Bfate = B & !A\ntargets, factors\n"
                                         "A, SIG & !B\nB, SIG & !A\n")
    res = json.loads(tools["steer_cells"].invoke({**args, "model": "silent.bnet"}))
    assert res["silent"] is True and res["signal"] is False and res["simulations"] == 0
    assert "all-off" in res["answer"] and "--inputs SIG=1" in res["answer"] and "\n" not in res["answer"]
    assert not {"best_schedule", "proposals", "target_fraction", "control_target_fraction"} & set(res)
    assert res["goal"] == "steer cells to Afate with one intervention"
