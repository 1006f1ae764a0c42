"""Stimulation goals end to end on Kang 2018 (IFN-β PBMCs), through the command line in-process:
the held-out cell type's treated cells are used by no model, and the report compares the
prediction with them."""

import json

import numpy as np
import pytest

from scagents.cli import main
from tests.conftest import shared_file


@pytest.fixture(scope="module")
def kang_small(tmp_path_factory):
    """Kang 2018 with its 1,500 most expressed genes (every cell, the description kept)."""
    import anndata as ad

    src = ad.read_h5ad(shared_file("stimulation/kang2018_ifnb_pbmc.h5ad"))
    top = np.argsort(-np.asarray(src.X.sum(0)).ravel())[:1500]
    small = src[:, np.sort(top)].copy()
    path = tmp_path_factory.mktemp("kang") / "kang_small.h5ad"
    small.write_h5ad(path)
    return path


def test_cd14_goal_answers_with_a_held_out_check(kang_small, tmp_path, capsys):
    out = tmp_path / "run"
    rc = main(["run", "--data", str(kang_small), "--goal",
               "predict IFN-beta stimulation in CD14 monocytes", "--out", str(out), "--quiet"])
    printed = capsys.readouterr().out
    assert rc == 0
    assert "Goal read as: IFN-β stimulation in CD14 Mono" in printed
    assert "'CD14 monocytes' → 'CD14 Mono'" in printed
    report = json.loads((out / "report.json").read_text())
    ev = report["evaluation"]
    assert ev["metrics"]["pearson_delta_topk"] > 0.3  # the observed response, top-20 genes
    assert "no change" in ev["candidates"] and "mean shift" in ev["candidates"]
    assert report["validation"]["answered_by"] == report["method"]["name"]
    assert report["notes"][0].startswith("The 303 treated cells of cell type 'CD14 Mono' were "
                                         "held out of every model")
    assert {"mean shift", "similarity-weighted shift"} <= set(report["validation"]["scores"])
    from scagents.agents.graph import load_state

    pol = load_state(out)["policy"]
    trained = pol["stimulation"]["trained_on"]["CD14 Mono"]
    assert "CD14 Mono" not in trained and len(trained) == 11  # Eryth has no control cells
    assert pol["held_out_cells"] == 303
    md = (out / "report.md").read_text()
    assert md.count("## Check against observed cells") == 1
    # the validation table's columns are all filled (no change alone has no Pearson: "–")
    head = "| model | mse | mse_sd | pearson | pearson_delta_topk | direction_accuracy |"
    table = md.split(head, 1)[1].split("\n\n", 1)[0].strip().splitlines()[1:]
    assert len(table) >= 3
    for row in table:
        cells = [c.strip() for c in row.strip("|").split("|")]
        assert all(cells), row
        assert (cells[3] == "–") == (cells[0] == "no change"), row


@pytest.mark.parametrize(("goal", "match"), [
    ("predict IFN-beta stimulation in macrophages", "No cell type 'macrophages'"),
    ("predict dexamethasone stimulation", "'dexamethasone' (dexamethasone) is not a treatment"),
    ("predict IFN-beta stimulation in erythrocytes", "'Eryth' has no control cells"),
])
def test_unknown_cell_type_or_treatment_is_one_line(kang_small, tmp_path, capsys, goal, match):
    out = tmp_path / "run"
    rc = main(["run", "--data", str(kang_small), "--goal", goal, "--out", str(out), "--quiet"])
    err = capsys.readouterr().err
    assert rc == 2
    assert match in err and len(err.strip().splitlines()) == 1
    assert not out.exists()


def _assert_scicar_3h_answer(report: dict) -> None:
    """What a run of "predict dexamethasone 3h" on sci-CAR answers, from an .h5ad or an .h5mu."""
    assert report["notes"][0].startswith("The 1075 treated cells of time point '3' were held out")
    assert report["method"]["description"].startswith(
        "dexamethasone 3 h: predicted from the other time point's response;")
    rows = {r["agent"]: r["produced"] for r in report["agents"]}
    assert rows["integration"] == ("nothing — a treatment goal is predicted from RNA alone: nothing "
                                   "to integrate")
    # time point '3' has no control cells of its own: the time-0 cells are every time point's
    assert ("fitted on the control cells and the treated cells of the other time point ('1'); "
            "the 583 control cells, shared by every time point, are the input" in report["notes"][0])
    assert report["headline"][-1] == (
        "**Answered by:** mean shift, not validated: 1 other group ('1') is too few to validate a "
        "predictor on (leave-one-out inside training needs 3 cell types, or 2 time points); the mean "
        "shift assumes the least.")


def test_time_course_goal_on_scicar(tmp_path, capsys):
    path = shared_file("multiome/cao2018_scicar_a549_dex_rna.h5ad")
    out = tmp_path / "run"
    rc = main(["run", "--data", str(path), "--goal", "predict dexamethasone 3h", "--out", str(out),
               "--quiet"])
    assert rc == 0
    report = json.loads((out / "report.json").read_text())
    assert report["method"]["name"] == "mean shift"
    assert "not validated" in report["method"]["description"]
    _assert_scicar_3h_answer(report)
    # sci-CAR holds normalised values, not counts: the report must not say they were normalised
    assert report["data"]["is_counts"] is False
    md = (out / "report.md").read_text()
    assert "they are not counts" in md and "counts normalised to 10⁴" not in md


def test_goal_over_all_cells_predicts_each_cell_type_from_the_others(kang_small, tmp_path):
    out = tmp_path / "run"
    assert main(["run", "--data", str(kang_small), "--goal", "predict IFNB stimulation", "--out",
                 str(out), "--quiet"]) == 0
    report = json.loads((out / "report.json").read_text())
    rows = report["per_group"]
    assert len(rows) == 12 and "Eryth" not in {r["cell_type"] for r in rows}
    assert report["notes"][0].startswith("Each of the 12 cell types was predicted with its own "
                                         "treated cells held out")
    assert not any("not a held-out test" in n for n in report["notes"])
    assert any(n.startswith("Not predicted") and "Eryth" in n for n in report["notes"])
    assert report["evaluation"]["metrics"]["pearson_delta_topk"] > 0.5
    assert "## Per cell type" in (out / "report.md").read_text()


def test_time_course_goal_on_an_h5mu_uses_its_rna_modality(tmp_path, capsys):
    # an RNA + ATAC .h5mu used to stop with "No perturbation column found" for a treatment goal
    import anndata as ad
    import mudata as md

    rna = ad.read_h5ad(shared_file("multiome/cao2018_scicar_a549_dex_rna.h5ad"))
    atac = ad.AnnData(np.ones((rna.n_obs, 5), np.float32), obs=rna.obs.copy())
    atac.var_names = [f"peak{i}" for i in range(5)]
    path = tmp_path / "scicar.h5mu"
    md.MuData({"rna": rna, "atac": atac}).write(path)
    out = tmp_path / "run"
    rc = main(["run", "--data", str(path), "--goal", "predict dexamethasone 3h", "--out", str(out),
               "--quiet"])
    printed = capsys.readouterr()
    assert rc == 0, printed.err
    assert "RNA modality 'rna' is used" in printed.out and "'atac' is not used" in printed.out
    report = json.loads((out / "report.json").read_text())
    _assert_scicar_3h_answer(report)
