"""Every `python -m scagents run ...` example of the README works on the default data (the
embedded twin), run in-process with a tiny training budget; every goal the README and the
`--goal` help quote parses on the default twin."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

from scagents.cli import main

README = Path(__file__).resolve().parents[1] / "README.md"
#: options whose value is a placeholder for the user's own file or folder: dropped, so the
#: example runs on the default data
PLACEHOLDER_OPTIONS = {"--data", "--out"}


#: data files whose README examples are treatment goals: they need that file, so they are parsed
#: against it (tests/agents/test_stimulation.py runs the goal) instead of run on the twin
TREATMENT_DATA = {"kang2018_ifnb_pbmc.h5ad": "stimulation/kang2018_ifnb_pbmc.h5ad"}


def treatment_examples(text: str) -> list[tuple[str, str]]:
    """(shared data file, goal) of the README's treatment-goal examples."""
    out = []
    for m in re.finditer(r"python -m scagents run ([^`\n|]*)", text):
        args = shlex.split(m.group(1))
        if "--data" in args and Path(args[args.index("--data") + 1]).name in TREATMENT_DATA:
            out.append((TREATMENT_DATA[Path(args[args.index("--data") + 1]).name],
                        args[args.index("--goal") + 1]))
    return out


def readme_runs(text: str) -> list[list[str]]:
    """The argument lists of the README's `python -m scagents run` examples (optional
    ``[...]`` parts and placeholder files dropped), in order, without repeats."""
    out: list[list[str]] = []
    for m in re.finditer(r"python -m scagents run ([^`\n|]*)", text):
        cmd = re.sub(r"\[[^\]]*\]", " ", m.group(1)).split("&&")[0]
        args = shlex.split(cmd)
        if "--data" in args and Path(args[args.index("--data") + 1]).name in TREATMENT_DATA:
            continue  # a treatment goal on its own data: see test_readme_treatment_goals_parse
        keep: list[str] = []
        i = 0
        while i < len(args):
            if args[i] in PLACEHOLDER_OPTIONS:
                i += 2
                continue
            keep.append(args[i])
            i += 1
        if keep not in out:
            out.append(keep)
    return out


def readme_goals(text: str) -> list[str]:
    return sorted(set(re.findall(r'"((?:predict|what happens)[^"]*)"', text)))


def test_readme_examples_are_found():
    runs = readme_runs(README.read_text())
    assert ["--goal", "predict IFNG knockout"] in runs
    assert any(a[:1] == ["--resume"] for a in runs)
    assert len(readme_goals(README.read_text())) >= 2


def test_every_readme_goal_parses_on_the_default_twin():
    from scagents.cli import build_parser
    from scagents.goal import TREATMENTS, _canon, parse_goal
    from scagents.twin import load_model

    net = load_model("th")
    run = next(a for a in build_parser()._subparsers._group_actions[0].choices["run"]._actions
               if "--goal" in a.option_strings)
    help_goals = readme_goals(run.help)  # the --goal help's example too
    assert help_goals
    treatment = {goal for _, goal in treatment_examples(README.read_text())}
    for goal in readme_goals(README.read_text()) + help_goals:
        # treatment goals (a treatment name of scagents.goal.TREATMENTS) are parsed on their data
        if goal not in treatment and not {_canon(w) for w in goal.split()} & set(TREATMENTS):
            parse_goal(goal, net.genes, aliases=net.aliases, inputs=net.inputs)


def test_readme_treatment_goals_parse_on_their_data():
    import anndata as ad

    from scagents.goal import find_stimulation_design, is_stimulation_goal, parse_stimulation_goal
    from tests.conftest import shared_file

    examples = treatment_examples(README.read_text())
    assert examples
    for rel, goal in examples:
        backed = ad.read_h5ad(shared_file(rel), backed="r")
        design = find_stimulation_design(backed.obs, str(backed.uns.get("source", "")))
        backed.file.close()
        assert is_stimulation_goal(goal, design)
        assert parse_stimulation_goal(goal, design).cell_type == "CD14 Mono"


@pytest.mark.slow  # three full runs and a steering run (~50 s on 2 cores)
def test_every_readme_run_example_works_on_the_default_data(tmp_path, monkeypatch, capsys):
    from scagents.agents import state as state_module

    class Tiny(state_module.RunOptions):
        """The user's options with a tiny training budget (the README examples as written,
        only faster)."""

        n_train_cells: int = 10
        policy_steps: int = 512
        max_policy_attempts: int = 1

    monkeypatch.setattr(state_module, "RunOptions", Tiny)
    monkeypatch.chdir(tmp_path)
    last_run = None
    for args in readme_runs(README.read_text()):
        if args[:1] == ["--resume"]:
            assert last_run is not None, "the README resumes a run before starting one"
            args = ["--resume", last_run]
        else:
            args = [*args, "--n-cells", "30"]
        code = main(["run", *args, "--quiet"])
        captured = capsys.readouterr()
        assert code == 0, (args, captured.err)
        run_id = re.search(r"run id: (\S+)", captured.out).group(1)
        if "best schedule:" in captured.out:  # a fate-steering goal: its own report, no prediction
            assert (tmp_path / "scagents_runs" / run_id / "steering.md").exists()
            continue
        assert (tmp_path / "scagents_runs" / run_id / "report.md").exists()
        if args[0] != "--resume":
            last_run = run_id
            # the answer's check is printed in plain words
            assert "How far to trust it:" in captured.out
