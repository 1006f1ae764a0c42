"""The agent graph on a real Perturb-seq screen (Papalexi 2021), where 16 of 25 targets are not
among the measured genes: every model must still predict them (no crash), and the asked-for
perturbation is held out and checked against its observed cells."""

import json
from pathlib import Path

from scagents.agents.graph import run_graph
from scagents.agents.state import RunOptions
from tests.conftest import shared_file


def test_graph_on_papalexi_with_unmeasured_targets(tmp_path):
    path = shared_file("perturbseq/papalexi2021_thp1_ifng_crispr.h5ad")
    opts = RunOptions(goal="predict STAT1 knockout", data=str(path), policy_steps=2048,
                      max_policy_attempts=1)
    run_graph(opts, out=tmp_path / "run")
    report = json.loads(Path(tmp_path / "run" / "report.json").read_text())
    # 25 targets, STAT1 held out: every model is fitted on the other 24
    assert "fitted on 24 perturbations" in report["method"]["description"]
    ev = report["evaluation"]
    assert "held out" in ev["description"]
    # the observed STAT1 knockout lowers STAT1 itself; the prediction is scored against it
    assert set(ev["metrics"]) >= {"mse", "pearson_delta_topk"}
    assert report["validation"]["answered_by"] == report["method"]["name"]


def test_unmeasured_target_with_another_kind_word_is_held_out_and_checked(tmp_path):
    """IRF1 is perturbed in Papalexi but not measured; asked as a "knockdown" of data labelled
    knockout by default, its 1,073 cells answer the check and no model sees them."""
    path = shared_file("perturbseq/papalexi2021_thp1_ifng_crispr.h5ad")
    opts = RunOptions(goal="predict IRF1 knockdown", data=str(path), policy_steps=1024,
                      max_policy_attempts=1)
    state = run_graph(opts, out=tmp_path / "run")
    pol = state["policy"]
    assert pol["held_out"] == "IRF1" and pol["held_out_cells"] == 1073
    assert "IRF1" not in pol["train_labels"] + pol["fit_labels"] + pol["validation_labels"]
    report = json.loads(Path(tmp_path / "run" / "report.json").read_text())
    assert report["notes"][0].startswith("You asked for a knockdown; the data label the cells of "
                                         "'IRF1' a knockout")
    assert report["notes"][1].startswith("The goal's perturbation (IRF1 knockout) was held out: "
                                         "its 1073 measured cells (label 'IRF1')")
    assert "its 1073 cells (label 'IRF1') were held out" in report["evaluation"]["description"]
    assert report["headline"][1].startswith("**How far to trust it:** the prediction agrees with "
                                            "the 1073 observed cells of IRF1 knockout")


def test_papalexi_pair_with_an_unplaced_target_points_to_the_additive_reference(tmp_path):
    """STAT1+IRF1 knockout: IRF1's cells are measured but IRF1 is not among the genes worked on, so
    the answer is the mean training effect; the trust line says so and points to the sum of the
    measured singles, which holds STAT1's own knockout."""
    path = shared_file("perturbseq/papalexi2021_thp1_ifng_crispr.h5ad")
    opts = RunOptions(goal="predict STAT1 and IRF1 knockout", data=str(path), policy_steps=1024,
                      max_policy_attempts=1)
    state = run_graph(opts, out=tmp_path / "run")
    assert state["policy"]["generic"]["unplaced"] == ["IRF1"]
    report = json.loads(Path(tmp_path / "run" / "report.json").read_text())
    line = report["headline"][1]
    assert "in effect, the mean effect of the training perturbations" in line
    own = report["additive"]["targets"]["STAT1"]
    assert own["additive"] < own["predicted"]  # the measured knockout lowers STAT1 further
    assert (f"uses each target's own measured single effect (STAT1 {own['additive']:+.2f} in it vs "
            f"{own['predicted']:+.2f} here); it assumes the targets act independently") in line
