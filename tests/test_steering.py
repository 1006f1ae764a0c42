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
    with pytest.raises(GoalError, match=r"Th17.*Th1, Th2, Th0.*--model FILE.bnet.*# @fate Th17 = "):
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


TOGGLE = """# a toggle switch between two fates, driven by a signal
# @input SIG = 0.5 sd 0.3
# @initial A = 0.3 sd 0.2
# @initial B = 0.3 sd 0.2
# @fate Afate = A & !B
# @fate Bfate = B & !A
targets, factors
A, (SIG | A) & !B
B, !A & !SIG | B & !A
C, A
"""

# every gene needs all the others: every simulation ends all-off, and no two interventions reach ABC
DEAD = """# @fate ABC = A & B & C
targets, factors
A, A & B & C & D
B, A & B & C & D
C, A & B & C & D
D, A & B & C & D
"""


@pytest.mark.parametrize("text, target, start", [
    ("which perturbations push cells towards Th2", "Th2", None),  # 'push' is no start fate
    ("how do I make Th1 cells", "Th1", None),  # the target's own word, not a Th1 start population
    ("drive Th0 cells to Th1", "Th1", "Th0"),
])
def test_parse_words_before_cells(text, target, start):
    g = parse_steering_goal(text)
    assert (g.target, g.start_fate) == (target, start)


def test_without_gene_leaves_it_out_of_the_search():
    from scagents.steering import _task

    g = parse_steering_goal("steer to Th1 without touching IFNG and tbet")
    assert g.exclude == ("IFNG", "TBX21")
    task = _task(g, n_cells=10, n_steps=30)
    assert not {t for p in task.candidates for t in p.targets} & {"IFNG", "TBX21"}
    assert len(task.candidates) == len(_task(parse_steering_goal("steer to Th1"), 10, 30).candidates) - 4
    with pytest.raises(GoalError, match="Cannot leave out 'FOO'"):
        parse_steering_goal("steer to Th1 without FOO")


def test_user_model_file_is_kept(tmp_path):
    path = tmp_path / "toggle.bnet"
    path.write_text(TOGGLE)
    g = parse_steering_goal("steer Bfate cells to Afate", str(path))
    assert (g.model, g.target, g.start_fate) == (str(path), "Afate", "Bfate")
    # a model file is not swapped for a shipped model whose fates the goal names
    with pytest.raises(GoalError, match="Unknown fate 'Th1'.*Afate, Bfate"):
        parse_steering_goal("drive cells to Th1", str(path))
    nofate = tmp_path / "nofate.bnet"
    nofate.write_text("targets, factors\nA, !B\nB, A\n")
    with pytest.raises(GoalError, match="defines no fates"):
        parse_steering_goal("make X", str(nofate))
    # a BooleanNet file takes '# @fate' lines like a .bnet, and the message says so
    booleannet = tmp_path / "nofate.booleannet"
    booleannet.write_text("A* = not B\nB* = A\n")
    with pytest.raises(GoalError, match=r"defines no fates \(.*\); add lines such as '# @fate NAME = A & !B'"):
        parse_steering_goal("make X", str(booleannet))


def test_cli_user_model_with_inputs(tmp_path, capsys):
    path = tmp_path / "toggle.bnet"
    path.write_text(TOGGLE)
    out = tmp_path / "run"
    assert main(["run", "--model", str(path), "--goal", "steer Bfate cells to Afate", "--inputs", "SIG=1",
                 "--n-cells", "16", "--out", str(out), "--quiet"]) == 0
    saved = json.loads((out / "steering.json").read_text())
    assert saved["task"]["model"] == "toggle" and saved["task"]["inputs"] == {"SIG": 1.0}
    assert "SIG = 1" in (out / "steering.md").read_text()


def test_no_signal_is_said_not_ranked(tmp_path):
    path = tmp_path / "dead.bnet"
    path.write_text(DEAD)
    r = answer_steering_goal(parse_steering_goal("steer cells to ABC", str(path)), tmp_path / "o", n_cells=16,
                             n_steps=45, rl_budget=16, n_seeds=2, n_runner_up=2)
    assert r["signal"] is False and r["proposals"] == []
    assert "carries no signal" in r["no_signal"] and "all-off" in r["no_signal"]
    md = (tmp_path / "o" / "steering.md").read_text()
    assert "## Silent simulation" in md and "## Best schedule" not in md and "## Runner-up" not in md


def test_signal_and_ties_are_reported(tmp_path):
    path = tmp_path / "toggle.bnet"
    path.write_text(TOGGLE)
    r = answer_steering_goal(parse_steering_goal("steer Bfate cells to Afate", str(path)), tmp_path, n_cells=16,
                             n_steps=45, rl_budget=16, n_seeds=2, n_runner_up=2)
    assert r["signal"] is True and r["no_signal"] is None and r["proposals"]
    ties = [v for v in [r["best"]] + r["runner_up"] if v["objective"] == r["best"]["objective"]]
    assert r["n_tied_best"] >= len(ties)
    md = (tmp_path / "steering.md").read_text()
    assert (f"{r['n_tied_best']} schedules found reach the same objective" in md) == (r["n_tied_best"] > 1)


@pytest.mark.parametrize("extra, message", [
    (["--data", "screen.h5ad"], "answered on the digital twin only"),
    (["--inputs", "FOO=1"], "--inputs FOO=1: model 'th_mendoza2006' has no gene 'FOO'"),
    (["--inputs", "GATA3=1"], "GATA3 is not an input"),
])
def test_cli_steering_bad_options_one_line_no_folder(tmp_path, capsys, extra, message):
    out = tmp_path / "r"
    assert main(["run", "--goal", "drive Th0 cells to Th1", "--out", str(out), "--quiet", *extra]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0] and not out.exists()


def test_finished_steering_run_is_listed_reported_and_resumed(tmp_path, capsys):
    path = tmp_path / "toggle.bnet"
    path.write_text(TOGGLE)
    root = tmp_path / "runs"
    out = root / "st"
    assert main(["run", "--model", str(path), "--goal", "steer Bfate cells to Afate", "--n-cells", "16",
                 "--out", str(out), "--quiet"]) == 0
    capsys.readouterr()
    assert main(["runs", "--out", str(root)]) == 0
    listing = capsys.readouterr().out
    assert "finished (steering)" in listing and "interrupted" not in listing and "-> Afate" in listing
    (out / "steering.md").unlink()
    assert main(["report", str(out)]) == 0
    assert "best schedule:" in capsys.readouterr().out and (out / "steering.md").is_file()
    assert main(["run", "--resume", str(out), "--quiet"]) == 0
    assert "best schedule:" in capsys.readouterr().out


@pytest.mark.parametrize("text", ["steer Th0 cells to Th1 with one intervention after t=0.5",
                                  "drive Th0 cells to Th1 at 6h", "block the erythroid fate before day 2"])
def test_fixed_times_are_refused_not_ignored(text):
    with pytest.raises(GoalError, match="cannot be set in a steering goal"):
        parse_steering_goal(text)
    parse_steering_goal("which two perturbations make granulocytes")  # no digit after a time word


def test_unreachable_start_fate_in_the_milieu_leaves_no_folder(tmp_path, capsys):
    out = tmp_path / "r"
    assert main(["run", "--goal", "drive Th1 cells to Th2", "--inputs", "TCR=0", "IL12A=0", "IFNB1=0", "IL18=0",
                 "--n-cells", "16", "--out", str(out), "--quiet"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "reaches the start fate 'Th1'" in err[0] and not out.exists()


@pytest.mark.parametrize("fields", [
    {"target": "Th1"},
    {"target": "th1", "start_fate": "Th0", "max_interventions": 1, "exclude": ["IFNG", "tbet"]},
    {"target": "Th2", "avoid": True},
    {"target": "Th2", "avoid": True, "start_fate": "Th0", "max_interventions": 3},
    {"target": "erythroid", "avoid": True, "exclude": ["Gata1"]},
])
def test_goal_text_reads_back_as_its_fields(fields):
    from scagents.steering import steering_goal_text

    text = steering_goal_text(**fields)
    g = parse_steering_goal(text)
    assert is_steering_goal(text)
    assert g.target.lower() == fields["target"].lower() and g.avoid == fields.get("avoid", False)
    assert g.start_fate == fields.get("start_fate")
    assert g.max_interventions == fields.get("max_interventions", 2)
    assert len(g.exclude) == len(fields.get("exclude", []))


def test_names_with_underscores_in_goals(tmp_path):
    path = tmp_path / "u.bnet"
    path.write_text("# @fate fate_A = Gene_a & !Gene_b\n# @fate fate_B = Gene_b & !Gene_a\ntargets, factors\n"
                    "Gene_a, !Gene_b\nGene_b, !Gene_a\nGene_c, Gene_a\n")
    g = parse_steering_goal("drive fate_B cells to fate_A without touching Gene_c", str(path))
    assert (g.target, g.start_fate, g.exclude) == ("fate_A", "fate_B", ("Gene_c",))


def test_goal_met_without_intervention_is_said_so(tmp_path):
    """A control that already ends in the target fate on every seed is no 'missing signal'."""
    path = tmp_path / "on.bnet"
    path.write_text("# @initial A = 1\n# @fate Afate = A & !B\n# @fate Bfate = B & !A\ntargets, factors\n"
                    "A, A & !B\nB, B & !A\n")
    r = answer_steering_goal(parse_steering_goal("steer cells to Afate", str(path)), tmp_path / "o", n_cells=16,
                             n_steps=45, rl_budget=16, n_seeds=2, n_runner_up=2)
    assert r["control"]["target_fraction_min"] == 1.0
    assert r["goal_met_without_intervention"] is True and r["signal"] is False and r["proposals"] == []
    assert "already" in r["no_signal"] and "carries no signal" not in r["no_signal"]
    assert "## Goal met without intervention" in (tmp_path / "o" / "steering.md").read_text()


def test_marker_of_the_fate_is_flagged(tmp_path):
    """A schedule that sets a gene the target fate is defined by says so (the fate changes by definition)."""
    path = tmp_path / "toggle.bnet"
    path.write_text(TOGGLE)
    r = answer_steering_goal(parse_steering_goal("steer Bfate cells to Afate", str(path)), tmp_path, n_cells=16,
                             n_steps=45, rl_budget=16, n_seeds=2, n_runner_up=2)
    assert [s["intervention"] for s in r["best"]["steps"]] == ["A overexpression"]
    assert "perturbs A, read by the Afate fate's own rule (Afate = A & !B)" in r["marker_note"]
    assert "without touching A" in r["marker_note"] and "Note: The schedule perturbs A" in (
        tmp_path / "steering.md").read_text()
    r = answer_steering_goal(parse_steering_goal("steer Bfate cells to Afate without touching A, B", str(path)),
                             tmp_path / "o", n_cells=16, n_steps=45, rl_budget=16, n_seeds=2, n_runner_up=2)
    assert r["marker_note"] is None


def test_model_without_fates_is_told_how_in_its_own_format(tmp_path):
    bnet = tmp_path / "nofate.bnet"
    bnet.write_text("targets, factors\nGa, !Gb\nGb, Ga\n")
    with pytest.raises(GoalError, match=r"'# @fate NAME = Ga & !Gb'.*nofate\.inputs\.json.*Its genes: Ga, Gb\."):
        parse_steering_goal("steer cells to X", str(bnet))
    boolode = tmp_path / "bo.txt"  # BoolODE files hold no directives: the sidecar is the way
    boolode.write_text("Gene\tRule\nGa\tnot Gb\nGb\tGa\n")
    with pytest.raises(GoalError) as err:
        parse_steering_goal("steer cells to X", str(boolode))
    assert "@fate" not in str(err.value) and 'bo.inputs.json beside it ({"fates": {"NAME": "Ga & !Gb"}}' in str(err.value)


# two fates that need the signal SIG (an input without a rule, 0 by default), and a fate that holds in
# all-off cells: from the file's defaults every cell ends all-off
SILENT = """# @fate Off = !A & !B
# @fate Afate = A & !B
# @fate Bfate = B & !A
targets, factors
A, SIG & !B
B, SIG & !A
"""


@pytest.mark.parametrize("goal", ["steer cells to Afate", "steer cells to Off", "block the Off fate"])
def test_silent_control_gives_no_plan_and_no_verdict(tmp_path, goal):
    """All-off control cells carry no signal: no schedule (overexpressing A 'makes' Afate from nothing),
    no 'goal met' (Off holds in all-off cells), one line naming the milieu that keeps cells active."""
    path = tmp_path / "silent.bnet"
    path.write_text(SILENT)
    r = answer_steering_goal(parse_steering_goal(goal, str(path)), tmp_path / "o", n_cells=16, n_steps=45,
                             rl_budget=16, n_seeds=2, n_runner_up=2)
    assert r["silent"] is True and r["signal"] is False and r["goal_met_without_intervention"] is False
    assert r["best"] is None and r["proposals"] == [] and r["runner_up"] == [] and r["simulations"] == 0
    line = r["no_signal"]
    assert "\n" not in line and "all-off" in line and "milieu SIG=0" in line and "--inputs SIG=1" in line
    md = (tmp_path / "o" / "steering.md").read_text()
    assert "## Silent simulation" in md and "Best schedule" not in md and "Goal met" not in md
    assert "| fate |" not in md and (tmp_path / "o" / "steering_fates.png").stat().st_size > 0


def test_silent_model_without_inputs_names_initial_states(tmp_path):
    path = tmp_path / "dead.bnet"
    path.write_text(DEAD)
    r = answer_steering_goal(parse_steering_goal("steer cells to ABC", str(path)), tmp_path / "o", n_cells=16,
                             n_steps=45, rl_budget=16, n_seeds=2)
    assert "the model has no inputs: give it initial states ('# @initial GENE = 0.8' lines or a sidecar)." in r["no_signal"]


def test_active_milieu_is_not_silent(tmp_path):
    path = tmp_path / "silent.bnet"
    path.write_text(SILENT)
    r = answer_steering_goal(parse_steering_goal("steer cells to Afate", str(path)), tmp_path / "o", n_cells=16,
                             n_steps=45, rl_budget=16, n_seeds=2, n_runner_up=2, inputs={"SIG": 1})
    assert r["silent"] is False and r["best"] is not None and r["simulations"] > 0


def test_start_fate_of_a_silent_model_names_what_to_set(tmp_path, capsys):
    """'No cell reaches Afate' must not send the user to the model's start state (it is all-off)."""
    path = tmp_path / "silent.bnet"
    path.write_text(SILENT)
    out = tmp_path / "r"
    assert main(["run", "--model", str(path), "--goal", "drive Afate cells to Bfate", "--n-cells", "16",
                 "--out", str(out), "--quiet"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and not out.exists()
    assert "every cell ends all-off (milieu SIG=0)" in err[0] and "1 of the 2 milieus checked (SIG = 0 and 1) keeps cells active and reaches Afate, e.g. --inputs SIG=1 (the closest" in err[0]
    assert "start from the model's start state (no start fate" not in err[0]


def test_cli_silent_answer_is_one_line(tmp_path, capsys):
    path = tmp_path / "silent.bnet"
    path.write_text(SILENT)
    out = tmp_path / "r"
    assert main(["run", "--model", str(path), "--goal", "steer cells to Afate", "--n-cells", "16",
                 "--out", str(out), "--quiet"]) == 0
    printed = capsys.readouterr().out
    assert "silent: no search" in printed and "best schedule" not in printed and "fraction" not in printed
    assert sum("all-off" in line for line in printed.splitlines()) == 1


def test_fates_plot_shows_lines_at_zero_and_labels_every_fate(tmp_path):
    """A fate at share 0 throughout sits above the x axis, and every fate is named at its line's end."""
    import matplotlib

    matplotlib.use("Agg")
    from scagents.envs.steering import TwinSteerer
    from scagents.steering import _plot_fates, _task

    path = tmp_path / "toggle.bnet"
    path.write_text(TOGGLE)
    task = _task(parse_steering_goal("steer Bfate cells to Afate", str(path)), n_cells=16, n_steps=45)
    steerer = TwinSteerer(task, 0)
    control = (0, 0, 0)
    fig = _plot_fates(steerer, task, control, (task.candidates.index(
        next(p for p in task.candidates if p.label == "A overexpression")) + 1, 0, 0))
    assert len(fig.axes) == 2
    for ax in fig.axes:
        assert ax.get_ylim()[0] < 0
        labels = [t.get_text() for t in ax.texts]
        assert all(any(t.startswith(f) for t in labels) for f in task.fate_names), labels
    # the control ends all Bfate: Afate's line lies at 0 and is drawn above the axis floor, labelled 0.00
    assert any(t.get_text() == "Afate (target) 0.00" for t in fig.axes[0].texts)


def test_label_heights_keep_their_gap():
    from scagents.steering import _spread_labels

    ys = _spread_labels([0.0, 0.0, 1.0, 0.0], 0.075, -0.04, 1.04)
    assert sorted(ys) == pytest.approx([0.0, 0.075, 0.15, 1.0])
    ys = _spread_labels([1.0, 1.0, 1.0], 0.1, 0.0, 1.0)
    assert max(ys) <= 1.0 and min(abs(a - b) for a in ys for b in ys if a is not b) >= 0.1 - 1e-9


@pytest.mark.parametrize("text, n, expect", [
    ("drive Th0 cells to Th1", 1, "drive Th0 cells to Th1 with one intervention"),
    ("steer to Th1 without touching IFNG.", 3, "steer to Th1 without touching IFNG with three interventions"),
    ("which two perturbations make granulocytes", 2, "which two perturbations make granulocytes"),
    ("drive Th0 cells to Th1", None, "drive Th0 cells to Th1"),
])
def test_goal_with_budget_reads_back(text, n, expect):
    from scagents.steering import goal_with_budget

    out = goal_with_budget(text, n)
    assert out == expect
    g = parse_steering_goal(out)
    assert g.max_interventions == (n or 2) and g.exclude == parse_steering_goal(text).exclude


def test_goal_with_a_second_budget_is_refused():
    from scagents.steering import goal_with_budget

    with pytest.raises(GoalError, match="asks for 'two perturbations' but max_interventions is 1"):
        goal_with_budget("which two perturbations make granulocytes", 1)


# a hub H keeps X and Y (mutual repressors) going; Zf holds when X and Y are off, so the hub's knockout
# 'reaches' Zf by switching every gene off (one intervention), while X and Y knockouts reach it with H on
HUB = """# @initial H = 1 sd 0
# @initial X = 0.3 sd 0.2
# @initial Y = 0.3 sd 0.2
# @fate Xf = X & !Y
# @fate Yf = Y & !X
# @fate Zf = !X & !Y
targets, factors
H, H | X | Y
X, H & !Y
Y, H & !X
"""


def test_schedule_that_silences_every_cell_is_not_proposed(tmp_path, capsys):
    from scagents.steering import print_answer

    path = tmp_path / "hub.bnet"
    path.write_text(HUB)
    r = answer_steering_goal(parse_steering_goal("steer cells to Zf", str(path)), tmp_path / "o", n_cells=16,
                             n_steps=300, rl_budget=32, n_seeds=2, n_runner_up=2)
    labels = {s["intervention"] for s in r["best"]["steps"]}
    assert "H knockout" not in labels and labels == {"X knockout", "Y knockout"}
    assert all("H knockout" not in {s["intervention"] for s in u["steps"]} for u in r["runner_up"])
    assert r["silenced"]["n"] >= 1 and r["silenced"]["example"][0]["intervention"] == "H knockout"
    print_answer(r, tmp_path / "o", 0.0)
    line = [ln for ln in capsys.readouterr().out.splitlines() if "not proposed" in ln]
    assert len(line) == 1 and "H knockout" in line[0] and "all-off" in line[0]
    assert "Not proposed: " in (tmp_path / "o" / "steering.md").read_text()


def test_silent_hint_changes_the_fewest_inputs(tmp_path):
    """The milieu named is the active one closest to the user's (EXTRA=1 kept), not the first scanned."""
    path = tmp_path / "two.bnet"
    path.write_text(SILENT + "C, EXTRA & A\n")
    r = answer_steering_goal(parse_steering_goal("steer cells to Afate", str(path)), tmp_path / "o", n_cells=16,
                             n_steps=45, inputs={"EXTRA": 1})
    assert r["silent"] and "milieu SIG=0, EXTRA=1" in r["no_signal"] and "e.g. --inputs SIG=1 (the closest to yours" in r["no_signal"]


@pytest.mark.parametrize("text", ["block JAK1", "suppress stat1"])
def test_blocking_a_gene_names_the_prediction_goal(text):
    """'block JAK1' names a gene, not a fate: one line saying how to ask for its loss."""
    gene = text.split()[1].upper()
    with pytest.raises(GoalError, match=rf"is a gene of model 'th_mendoza2006', not a fate.*"
                                        rf"\"predict {gene} knockdown\""):
        parse_steering_goal(text)
