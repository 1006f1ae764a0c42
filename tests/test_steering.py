"""Tests of steering goals: parsing, unknown fates, a fast end-to-end answer and the CLI route."""

from __future__ import annotations

import json

import pytest

from scagents.cli import main
from scagents.errors import GoalError
from scagents.steering import answer_steering_goal, is_steering_goal, parse_steering_goal


@pytest.mark.parametrize("text, model, target, start, avoid, budget", [
    ("drive Th0 cells to Th1", "th_mendoza2006", "Th1", "Th0", False, 2),
    ("turn Th2 cells into Th1", "th_mendoza2006", "Th1", "Th2", False, 2),
    ("block the erythroid fate", "krumsiek11", "erythroid", None, True, 2),
    ("which two perturbations make granulocytes", "krumsiek11", "granulocyte", None, False, 2),
    ("which single perturbation makes monocytes", "krumsiek11", "monocyte", None, False, 1),
])
def test_parse_goals(text, model, target, start, avoid, budget):
    g = parse_steering_goal(text)
    assert (g.model, g.target, g.start_fate, g.avoid, g.max_interventions) == (model, target, start, avoid, budget)
    assert is_steering_goal(text)


def test_prediction_goals_are_not_steering():
    assert not is_steering_goal("predict IFNG knockout")
    assert not is_steering_goal("what happens if I knock down JAK2?")


def test_unknown_fates_name_the_model_fates():
    with pytest.raises(GoalError, match="Th17.*Th1, Th2, Th0"):
        parse_steering_goal("drive Th0 cells to Th17")
    with pytest.raises(GoalError, match="start fate 'Th9'"):
        parse_steering_goal("drive Th9 cells to Th1")


def test_cli_unknown_fate_is_one_line_exit_2(tmp_path, capsys):
    assert main(["run", "--goal", "drive Th0 cells to Th17", "--out", str(tmp_path / "r"), "--quiet"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "Th1, Th2, Th0" in err[0]


def test_answer_end_to_end(tmp_path):
    r = answer_steering_goal("which two perturbations make granulocytes", tmp_path, n_cells=20, n_steps=45,
                             rl_budget=24, n_seeds=2, n_runner_up=2)
    for f in ("steering.md", "steering.json", "steering_fates.png", "steering_landscape.png"):
        assert (tmp_path / f).stat().st_size > 0
    saved = json.loads((tmp_path / "steering.json").read_text())
    assert saved["best"]["objective"] == r["best"]["objective"]
    best, ctrl = r["best"], r["control"]
    # the best schedule found is at least as good as doing nothing on the search population
    assert best["objective"] >= ctrl["objective"]
    assert len(r["runner_up"]) == 2 and all(u["objective"] <= best["objective"] for u in r["runner_up"])
    assert best["target_fraction_min"] <= best["target_fraction_mean"] <= best["target_fraction_max"]
    assert len(r["proposals"]) == len(best["steps"])
    assert r["simulations"] == sum(v["simulations"] for v in r["searchers"].values())


def test_cli_steering_run_through_the_agent_graph(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["run", "--goal", "block the erythroid fate", "--n-cells", "16", "--out", str(out), "--quiet"]) == 0
    text = capsys.readouterr().out
    assert "best schedule:" in text and "krumsiek11" in text
    saved = json.loads((out / "steering.json").read_text())
    assert saved["goal"]["avoid"] and saved["task"]["target"] == "erythroid" and saved["task"]["n_cells"] == 16
    log = [json.loads(line) for line in (out / "agents.log").read_text().splitlines()]
    assert [r["agent"] for r in log if r["event"] == "finished"] == ["steering"]


def test_cli_goal_searches_the_benchmark_candidates():
    """The user's steering goal and benchmarks/steering.py search the same interventions (genes,
    not the model's milieu inputs)."""
    import importlib.util
    from pathlib import Path

    from scagents.steering import _task

    bench = Path(__file__).resolve().parents[1] / "benchmarks" / "steering.py"
    spec = importlib.util.spec_from_file_location("steering_benchmark", bench)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    user = _task(parse_steering_goal("drive Th0 cells to Th1"), n_cells=20, n_steps=45)
    ref = mod.th_task(target="Th1", start_fate="Th0")
    assert [(p.targets, p.kind) for p in user.candidates] == [(p.targets, p.kind) for p in ref.candidates]
    assert not {p.targets[0] for p in user.candidates} & set(user.network.inputs)
